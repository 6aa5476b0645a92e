"""The outbox: scheduled sends (reminders, surveys, announcements), each sent at most once and never past its expiry."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Iterable

from sqlalchemy import and_, case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage import surveys
from storage.outbound import queue_messages
from handlers.delivery import Delivery
from scheduling import seminar_reminders
from storage.db import Database
from storage.models import TOKYO, OutboxItem

log = logging.getLogger(__name__)

BATCH = 100


def schedule(s: Session, *, key: str, kind: str, ref: str, channel: str, to: str, messages: list[dict],
             due_at: datetime, expires_at: datetime | None, now: datetime, revive: bool = False) -> bool:
    """Add a pending send unless one with this key exists, whatever its status; True if it was added.

    A key once used stays used, so re-running whatever schedules (a retried booking, a restart) never
    brings back a send that was made, skipped or cancelled. With `revive`, a cancelled one comes back: for a
    caller that schedules once per change of state (a booking moved away from a time and back to it).
    """
    if not messages:
        raise ValueError("an outbox item needs at least one message")
    dialect = postgresql if s.get_bind().dialect.name == "postgresql" else sqlite
    values = dict(kind=kind, ref=ref, channel=channel, to=to, messages=messages, due_at=due_at,
                  expires_at=expires_at, status="pending", created_at=now)
    statement = dialect.insert(OutboxItem).values(key=key, **values)
    if revive:
        statement = statement.on_conflict_do_update(index_elements=["key"], where=OutboxItem.status == "cancelled",
                                                    set_={**values, "done_at": None, "error": None})
    else:
        statement = statement.on_conflict_do_nothing(index_elements=["key"])
    return s.execute(statement.returning(OutboxItem.id)).first() is not None


def cancel(s: Session, ref: str, now: datetime, kinds: Iterable[str] | None = None) -> int:
    """Cancel the pending sends about `ref` (only those of `kinds` if given); returns how many."""
    conditions = [OutboxItem.ref == ref, OutboxItem.status == "pending"]
    if kinds is not None:
        conditions.append(OutboxItem.kind.in_(list(kinds)))
    return s.execute(update(OutboxItem).where(*conditions).values(status="cancelled", done_at=now)
                     .execution_options(synchronize_session=False)).rowcount


def send_due(db: Database, delivery: Delivery, clock) -> int:
    """Send every pending item whose time has come, oldest first; returns how many were sent.

    Seminar reminders to LINE users go as multicasts, one per identical content, instead of a push each.
    """
    sent = 0
    seminar_reminders.skip_released(db, clock)
    grouped = []
    if delivery.line is not None:
        sent += seminar_reminders.group_due(db, delivery.line, clock)
        grouped = [~and_(OutboxItem.kind == seminar_reminders.KIND, OutboxItem.channel == "line")]
    while True:
        now = clock.now()
        with db.unit_of_work() as s:
            due = s.scalars(select(OutboxItem.id)
                            .where(OutboxItem.status == "pending", OutboxItem.due_at <= now, *grouped)
                            .order_by(OutboxItem.due_at, OutboxItem.id).limit(BATCH)).all()
        for item_id in due:
            outbound = _take(db, item_id, now)
            if outbound:
                delivery.send(outbound)
                sent += 1
        # Every item of a batch has left "pending" (taken here, by another scheduler, or skipped), so this ends.
        if len(due) < BATCH:
            return sent


def _take(db: Database, item_id: int, now: datetime) -> list[int]:
    """Mark one item sent and queue its messages in one transaction; [] if it expired or someone else took it.

    The conditional UPDATE is what keeps two schedulers (or a restarted one) from both sending it.
    """
    expired = and_(OutboxItem.expires_at.is_not(None), OutboxItem.expires_at <= now)
    with db.unit_of_work() as s:
        taken = s.execute(
            update(OutboxItem)
            .where(OutboxItem.id == item_id, OutboxItem.status == "pending", OutboxItem.due_at <= now)
            .values(status=case((expired, "skipped"), else_="sent"), done_at=now)
            .returning(OutboxItem.status, OutboxItem.kind, OutboxItem.ref, OutboxItem.channel, OutboxItem.to,
                       OutboxItem.messages)
            .execution_options(synchronize_session=False)).first()
        if taken is None:
            return []
        if taken.status == "sent" and not _still_wanted(s, taken):
            s.execute(update(OutboxItem).where(OutboxItem.id == item_id).values(status="skipped")
                      .execution_options(synchronize_session=False))
            s.commit()
            log.info("outbox item %s (%s) no longer needed; skipped", item_id, taken.kind)
            return []
        if taken.status == "skipped":
            s.commit()
            log.info("outbox item %s expired before it could be sent; skipped", item_id)
            return []
        outbound = queue_messages(s, taken.channel, taken.to, taken.messages, now, sender="outbox")
        s.execute(update(OutboxItem).where(OutboxItem.id == item_id).values(outbound_id=outbound[0])
                  .execution_options(synchronize_session=False))
        s.commit()
    log.info("outbox item %s queued as outbound message %s", item_id, outbound[0])
    return outbound


def _still_wanted(s: Session, item) -> bool:
    """Whether a send still makes sense when its time comes: a survey reminder not after the survey was finished."""
    if item.kind == "survey_reminder":
        seminar_id = int(item.ref.removeprefix("seminar:"))
        return not surveys.finished(s, seminar_id, item.to)
    return True


def items(db: Database, *, all: bool = False) -> list[dict]:
    """The pending sends (or all of them) as JSON-ready dicts, by due time, for `dxdesk outbox --json`."""
    query = select(OutboxItem).order_by(OutboxItem.due_at, OutboxItem.id)
    if not all:
        query = query.where(OutboxItem.status == "pending")
    with db.unit_of_work() as s:
        return [_as_json(item) for item in s.scalars(query)]


def _as_json(item: OutboxItem) -> dict:
    return {"id": item.id, "key": item.key, "kind": item.kind, "ref": item.ref, "channel": item.channel,
            "to": item.to, "status": item.status, "due_at": _iso(item.due_at), "expires_at": _iso(item.expires_at),
            "created_at": _iso(item.created_at), "done_at": _iso(item.done_at), "outbound_id": item.outbound_id,
            "error": item.error}


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(TOKYO).isoformat() if moment else None
