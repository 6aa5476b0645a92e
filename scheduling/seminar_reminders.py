"""Seminar reminders: one outbox item per registration and reminder, sent as multicasts of identical content.

Planning only adds outbox items (key `seminar-reminder:<registration>:<kind>`), so it may run as often as it likes
and across restarts; the outbox decides at due time, re-checking that the registration still holds a seat.
"""
from __future__ import annotations

import json
from datetime import datetime, time, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.config import SeminarReminders
from bot.jatime import to_tokyo
from bot.seminar_messages import REMINDER_KINDS, reminder
from scheduling import multicast
from storage.db import Database
from storage.models import HOLDS_SEAT, TOKYO, LineUser, OutboxItem, Seminar, SeminarRegistration

KIND = "seminar_reminder"
REF = "seminar_registration:"
# A reminder whose time passed this long ago when the registration is first seen (someone who registered after
# it) is not planned: "3日後に開催します" sent the day before would be wrong.
LATE = timedelta(hours=1)
# Each run reads only the seminars starting within days_before + AHEAD: a bounded set, planned well before due.
AHEAD = timedelta(days=7)


def due_at(seminar: Seminar, kind: str, settings: SeminarReminders) -> datetime:
    day = to_tokyo(seminar.start_at).date()
    if kind == "before":
        moment = datetime.combine(day - timedelta(days=settings.days_before),
                                  time.fromisoformat(settings.days_before_at), TOKYO)
    else:
        moment = datetime.combine(day, time.fromisoformat(settings.on_the_day_at), TOKYO)
    return min(moment, seminar.start_at)


def plan(db: Database, settings: SeminarReminders, clock) -> int:
    """Add the reminders of every seat-holding registration of the seminars ahead; returns how many were added."""
    now = clock.now()
    horizon = now + timedelta(days=settings.days_before) + AHEAD
    with db.unit_of_work() as s:
        rows = s.execute(
            select(SeminarRegistration.id, SeminarRegistration.mode, SeminarRegistration.user_id, LineUser.source,
                   Seminar)
            .join(Seminar, Seminar.id == SeminarRegistration.seminar_id)
            .join(LineUser, LineUser.id == SeminarRegistration.user_id)
            .where(Seminar.status == "open", Seminar.start_at > now, Seminar.start_at <= horizon,
                   SeminarRegistration.status.in_(HOLDS_SEAT))).all()
        keys = {f"seminar-reminder:{row.id}:{kind}": (row, kind) for row in rows for kind in REMINDER_KINDS}
        existing = set(s.scalars(select(OutboxItem.key).where(OutboxItem.key.in_(list(keys))))) if keys else set()
        contents: dict[tuple[int, str, str], list[dict]] = {}
        items = []
        for key, (row, kind) in keys.items():
            due = due_at(row.Seminar, kind, settings)
            if key in existing or due < now - LATE:
                continue
            messages = contents.setdefault((row.Seminar.id, kind, row.mode),
                                           reminder(row.Seminar, kind, row.mode, settings.days_before))
            items.append(dict(key=key, kind=KIND, ref=f"{REF}{row.id}", channel=row.source, to=row.user_id,
                              messages=messages, due_at=due, expires_at=row.Seminar.start_at, status="pending",
                              created_at=now))
        if items:
            dialect = postgresql if db.is_postgres else sqlite
            s.execute(dialect.insert(OutboxItem).on_conflict_do_nothing(index_elements=["key"]), items)
        s.commit()
    return len(items)


def skip_released(db: Database, clock) -> int:
    """Mark skipped the due reminders, on any channel, whose registration no longer holds a seat; returns how many."""
    now = clock.now()
    with db.unit_of_work() as s:
        due = s.execute(select(OutboxItem.id, OutboxItem.ref)
                        .where(OutboxItem.kind == KIND, OutboxItem.status == "pending", OutboxItem.due_at <= now)).all()
        holders = _seat_holders(s, [_registration(item) for item in due])
        released = [item.id for item in due if _registration(item) not in holders]
        if released:
            s.execute(update(OutboxItem).where(OutboxItem.id.in_(released), OutboxItem.status == "pending")
                      .values(status="skipped", done_at=now).execution_options(synchronize_session=False))
        s.commit()
    return len(released)


def group_due(db: Database, line, clock) -> int:
    """Take the due reminders to LINE users, skip those whose registration no longer holds a seat, and plan one
    multicast per seminar and identical content, marking the items sent in the same transaction; then send.

    Returns how many items went into multicasts.
    """
    now = clock.now()
    with db.unit_of_work() as s:
        taken = s.execute(
            update(OutboxItem)
            .where(OutboxItem.kind == KIND, OutboxItem.channel == "line", OutboxItem.status == "pending",
                   OutboxItem.due_at <= now)
            .values(status="sent", done_at=now)
            .returning(OutboxItem.id, OutboxItem.ref, OutboxItem.to, OutboxItem.messages, OutboxItem.expires_at)
            .execution_options(synchronize_session=False)).all()
        if not taken:
            return 0
        # Checked again here: a cancellation may have come since skip_released looked.
        seats = _seat_holders(s, [_registration(item) for item in taken])
        groups: dict[tuple[int, str], list] = {}
        skipped = []
        for item in sorted(taken, key=lambda item: item.id):
            seminar_id = seats.get(_registration(item))
            if seminar_id is None or (item.expires_at is not None and item.expires_at <= now):
                skipped.append(item.id)
                continue
            groups.setdefault((seminar_id, json.dumps(item.messages, sort_keys=True)), []).append(item)
        if skipped:
            s.execute(update(OutboxItem).where(OutboxItem.id.in_(skipped)).values(status="skipped")
                      .execution_options(synchronize_session=False))
        for (seminar_id, _), members in groups.items():
            multicast.plan(s, key=f"outbox:{members[0].id}", kind=KIND, ref=f"seminar:{seminar_id}",
                           recipients=[m.to for m in members], messages=members[0].messages, now=now)
        s.commit()
    multicast.send_due(db, line, clock)
    return sum(len(members) for members in groups.values())


def _registration(item) -> int:
    return int(item.ref.removeprefix(REF))


def _seat_holders(s: Session, registration_ids: list[int]) -> dict[int, int]:
    """registration id -> seminar id, for those that still hold a seat at a seminar that is still on."""
    rows = s.execute(select(SeminarRegistration.id, SeminarRegistration.seminar_id)
                     .join(Seminar, Seminar.id == SeminarRegistration.seminar_id)
                     .where(SeminarRegistration.id.in_(registration_ids),
                            SeminarRegistration.status.in_(HOLDS_SEAT), Seminar.status == "open"))
    return dict(rows.all())
