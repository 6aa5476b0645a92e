"""Sending to many: batches of at most 500 planned as Multicast rows, each sent with its own X-Line-Retry-Key.

A batch is planned once (its business key is unique) and committed before any request, so a crash between planning
and sending leaves rows the next run sends; a repeat of a request reuses the row's retry key, and LINE answers 409
to a key it has accepted, which counts as sent. So each batch reaches its recipients once.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.db import Database
from storage.models import Multicast

log = logging.getLogger(__name__)

BATCH_SIZE = 500  # LINE's most recipients per multicast request
MAX_ATTEMPTS = 8
# While one sender has a batch in hand (the SDK retries a 5xx itself, with back-off), no other takes it.
CLAIM = timedelta(minutes=2)


@dataclass(frozen=True)
class Quota:
    limit: int | None  # None: LINE sets no limit this month
    used: int

    def allows(self, recipients: int) -> bool:
        return self.limit is None or self.used + recipients <= self.limit

    @property
    def left(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)


def batches(recipients: list[str]) -> list[list[str]]:
    return [recipients[i:i + BATCH_SIZE] for i in range(0, len(recipients), BATCH_SIZE)]


def plan(s: Session, *, key: str, kind: str, ref: str, recipients: list[str], messages: list[dict], now: datetime,
         created_by: str | None = None) -> int:
    """Add the batches `key:0`, `key:1`, ... of `recipients` unless they exist; returns how many were added.

    The caller commits: the batches, and whatever they stand for (outbox items marked sent), in one transaction.
    """
    dialect = postgresql if s.get_bind().dialect.name == "postgresql" else sqlite
    added = 0
    for n, batch in enumerate(batches(recipients)):
        statement = (dialect.insert(Multicast)
                     .values(key=f"{key}:{n}", kind=kind, ref=ref, recipients=batch, messages=messages,
                             retry_key=str(uuid.uuid4()), status="pending", attempts=0, next_attempt_at=now,
                             created_by=created_by, created_at=now)
                     .on_conflict_do_nothing(index_elements=["key"])
                     .returning(Multicast.id))
        added += s.execute(statement).first() is not None
    return added


def planned(s: Session, key: str) -> int:
    """How many batches of `key` exist, whatever became of them."""
    return len(s.scalars(select(Multicast.id).where(_of(key))).all())


def send_due(db: Database, line, clock, key: str | None = None) -> int:
    """Send every pending batch whose time has come (only the batches of `key` if given); returns how many went."""
    if line is None:
        return 0
    sent = 0
    while (batch := _claim(db, clock.now(), key)) is not None:
        result = line.multicast(batch.recipients, batch.messages, batch.retry_key)
        sent += _finish(db, batch.id, result, clock.now())
    return sent


def _claim(db: Database, now: datetime, key: str | None):
    """The next due batch, taken for CLAIM by a conditional UPDATE so two schedulers never both send it."""
    with db.unit_of_work() as s:
        query = select(Multicast.id).where(Multicast.status == "pending", Multicast.next_attempt_at <= now)
        if key is not None:
            query = query.where(_of(key))
        for batch_id in s.scalars(query.order_by(Multicast.next_attempt_at, Multicast.id).limit(10)):
            taken = s.execute(
                update(Multicast)
                .where(Multicast.id == batch_id, Multicast.status == "pending", Multicast.next_attempt_at <= now)
                .values(next_attempt_at=now + CLAIM, attempts=Multicast.attempts + 1)
                .returning(Multicast.id, Multicast.recipients, Multicast.messages, Multicast.retry_key,
                           Multicast.attempts)
                .execution_options(synchronize_session=False)).first()
            if taken is not None:
                s.commit()
                return taken
    return None


def _finish(db: Database, batch_id: int, result, now: datetime) -> int:
    with db.unit_of_work() as s:
        batch = s.get(Multicast, batch_id)
        if result.status == "sent":
            batch.status, batch.sent_at, batch.last_error = "sent", now, None
        elif result.status == "retry" and batch.attempts < MAX_ATTEMPTS:
            wait = result.retry_after or min(30 * 2 ** (batch.attempts - 1), 3600)
            batch.next_attempt_at, batch.last_error = now + timedelta(seconds=wait), result.error
        else:
            batch.status, batch.last_error = "failed", result.error or result.status
        s.commit()
        log.log(logging.INFO if batch.status == "sent" else logging.WARNING,
                "multicast %s (%s recipients) %s: %s", batch.key, len(batch.recipients), batch.status,
                batch.last_error or "ok")
        return batch.status == "sent"


def _of(key: str):
    """The batches `key:0`, `key:1`, ... of one plan."""
    escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return Multicast.key.like(f"{escaped}:%", escape="\\")
