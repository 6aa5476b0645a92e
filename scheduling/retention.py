"""The daily purge of personal data past its retention, as a scheduler job (the rules are in storage/privacy.py)."""
from __future__ import annotations

import logging

from pathlib import Path

from bot.config import Privacy
from storage.activities import remove_files
from storage.db import Database
from storage.privacy import purge

log = logging.getLogger(__name__)


def purge_due(db: Database, settings: Privacy, clock, var_dir: Path) -> dict[str, int]:
    """Purge what is due now, in one transaction, then the photos' files; logs the counts only."""
    with db.unit_of_work() as s:
        done = purge(s, clock.now(), retention_months=settings.retention_months, copies_days=settings.copies_days,
                     who="scheduler")
        s.commit()
    remove_files(var_dir, done.photos)
    log.info("privacy purge: %s", ", ".join(f"{kind} {n}" for kind, n in sorted(done.counts.items())))
    return done.counts
