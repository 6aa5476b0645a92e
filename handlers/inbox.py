"""The inbox: webhook events written durably, then processed once each, in order per user, by any worker."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from datetime import datetime, timedelta
from typing import Callable, Iterable

from sqlalchemy import Integer, and_, bindparam, exists, literal_column, or_, select, text, update
from sqlalchemy.orm import aliased
from sqlalchemy.dialects import postgresql, sqlite

from scheduling import metrics
from storage import audit
from storage.db import Database
from storage.logids import tagged
from storage.models import InboxEvent

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)  # a worker that dies mid-event gives it up after this (a batch's last one too)
MAX_ATTEMPTS = 4  # then the event is parked as failed: the dead-letter list of the console
BACKOFF = (timedelta(seconds=2), timedelta(seconds=10), timedelta(seconds=30))
BATCH = 4  # events one worker takes per claim
OPEN = ("pending", "processing")


def event_key(event: dict) -> str:
    """LINE's webhookEventId; an event without one is keyed by its content, so a resend is still one event."""
    if event.get("webhookEventId"):
        return str(event["webhookEventId"])[:128]
    return "sha256:" + hashlib.sha256(json.dumps(event, sort_keys=True).encode()).hexdigest()


def user_key(event: dict) -> str:
    source = event.get("source") if isinstance(event.get("source"), dict) else {}
    return str(source.get("userId") or source.get("groupId") or source.get("roomId") or "")[:64]


def store_events(db: Database, events: Iterable[dict], source: str, now: datetime) -> int:
    """Write the events once each (a redelivered or repeated event is ignored); returns how many were new."""
    rows = [{"event_key": event_key(e), "user_key": user_key(e), "source": source, "payload": e,
             "received_at": now, "status": "pending", "attempts": 0} for e in events]
    if not rows:
        return 0
    # One statement for the request's events (SQLAlchemy sends them as one multi-row INSERT), built once, in a short
    # transaction shared with the acknowledgements being written at the same time: it waits for nothing else.
    return db.grouped(lambda conn: len(conn.execute(_STORE[db.is_postgres], rows).all()), urgent=True)


_STORE = {postgres: (postgresql if postgres else sqlite).insert(InboxEvent.__table__)
          .on_conflict_do_nothing(index_elements=["event_key"]).returning(InboxEvent.__table__.c.id)
          for postgres in (False, True)}


def backoff(attempts: int) -> timedelta:
    """How long a failed event waits before its next attempt; the user's later events wait behind it, in order."""
    return BACKOFF[min(attempts, len(BACKOFF)) - 1]


_candidate, _earlier = aliased(InboxEvent), aliased(InboxEvent)
_due = or_(_candidate.next_attempt_at.is_(None), _candidate.next_attempt_at <= bindparam("now"))
# The oldest events each the oldest unfinished one of its user: an event whose user has an earlier unfinished one is
# never a candidate, so no two workers (threads or processes) hold two events of one user.
# The statuses are written out, not bound: a plan PostgreSQL prepares once for any parameters can then see that the
# open events' index (ix_inbox_open, status IN ('pending', 'processing')) holds every candidate, and read it rather
# than walk the primary key through the whole history of done events.
_pending, _processing = (_candidate.status == literal_column(f"'{status}'") for status in OPEN)
_CANDIDATES = (select(_candidate.id).where(
    or_(and_(_pending, _due), and_(_processing, _candidate.lease_until < bindparam("now"))),
    ~exists().where(_earlier.user_key == _candidate.user_key, _earlier.id < _candidate.id, _earlier.status.in_(OPEN)))
    .order_by(_candidate.id).limit(bindparam("limit")))
# SQLite (it keeps no statistics here) would read every open event through the status index, check each and sort them
# all, for every claim: behind a backlog of thousands that is quadratic. The same query, told to walk the open events'
# index in id order (INDEXED BY, which SQLAlchemy does not write for SQLite), stops at the limit.
_SQLITE_CANDIDATES = text("""
    SELECT c.id FROM inbox_events AS c INDEXED BY ix_inbox_open
    WHERE c.status IN ('pending', 'processing')
      AND (c.status = 'pending' AND (c.next_attempt_at IS NULL OR c.next_attempt_at <= :now)
           OR c.status = 'processing' AND c.lease_until < :now)
      AND NOT EXISTS (SELECT 1 FROM inbox_events AS e WHERE e.user_key = c.user_key AND e.id < c.id
                      AND e.status IN ('pending', 'processing'))
    ORDER BY c.id LIMIT :limit""").bindparams(bindparam("now", type_=InboxEvent.__table__.c.next_attempt_at.type))
_ANY = _SQLITE_CANDIDATES


def _claim_statement(postgres: bool):
    # PostgreSQL skips the rows another worker is taking (FOR UPDATE SKIP LOCKED), so workers do not queue behind
    # each other; SQLite's single writer (BEGIN IMMEDIATE) serialises the claims.
    candidates = (_CANDIDATES.with_for_update(skip_locked=True, of=_candidate) if postgres
                  else select(_SQLITE_CANDIDATES.columns(id=Integer).subquery().c.id))
    # On the table, returning its columns: the taken events come back as rows (read only, InboxEvent's attributes),
    # which costs half what loading them as mapped objects did, inside the write lock.
    events = InboxEvent.__table__
    return (update(events).where(events.c.id.in_(candidates))
            .values(status="processing", lease_until=bindparam("lease_until"), attempts=events.c.attempts + 1)
            .returning(*events.c))


_CLAIM = {postgres: _claim_statement(postgres) for postgres in (False, True)}


def claim(db: Database, now: datetime, limit: int = 1, *, look_first: bool = True) -> list[InboxEvent]:
    """Take up to `limit` events, each the oldest unfinished one of its user, oldest first, in one statement; each
    comes as a row with InboxEvent's columns as attributes.

    On SQLite an idle worker looks first (`look_first`) without the write lock, which webhooks are waiting for.
    """
    params = {"now": now, "limit": limit, "lease_until": now + LEASE}
    if look_first and not db.is_postgres:
        with db.reading() as s:
            if s.execute(_ANY, {**params, "limit": 1}).first() is None:
                return []
    with db.unit_of_work() as s:
        taken = s.execute(_CLAIM[db.is_postgres], params).all()
        s.commit()
    return sorted(taken, key=lambda event: event.id)


def claim_next(db: Database, now: datetime) -> InboxEvent | None:
    """Take one event, as `claim` does."""
    taken = claim(db, now)
    return taken[0] if taken else None


def settle_parked(db: Database, event_id: int, *, retry: bool, who: str, now: datetime) -> bool:
    """Staff's answer to an event parked as failed: process it again from its first attempt (after the user's
    earlier events, before their later ones), or discard it for good. False when it is not parked (any more)."""
    values = (dict(status="pending", attempts=0, next_attempt_at=None, error=None) if retry
              else dict(status="discarded"))
    with db.unit_of_work() as s:
        changed = s.execute(update(InboxEvent).where(InboxEvent.id == event_id, InboxEvent.status == "failed")
                            .values(handled_by=who, **values)).rowcount
        if changed:
            audit.record(s, who, "change", f"inbox:{event_id}", now)
        s.commit()
    return bool(changed)


BACKGROUND_NICE = 10


def behind_webhooks() -> None:
    """Lower the calling thread's CPU priority (Linux schedules threads, not processes): a busy machine then gives
    LINE's webhooks, whose acknowledgement LINE waits for, the CPU before the work behind them (processing, sending)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: all threads at one priority, as before
        pass


class InboxWorker:
    """Threads that process inbox events with `process(event)`, woken by new events or a short poll."""

    def __init__(self, db: Database, process: Callable[[InboxEvent], None], clock, *,
                 threads: int = 2, poll: float = 1.0, on_idle: Callable[[], None] | None = None,
                 on_give_up: Callable[[InboxEvent], None] | None = None):
        self.db, self.process, self.clock = db, process, clock
        self.threads, self.poll, self.on_idle, self.on_give_up = threads, poll, on_idle, on_give_up
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def notify(self) -> None:
        self._wake.set()

    def start(self) -> None:
        for n in range(self.threads):
            t = threading.Thread(target=self._run, name=f"inbox-{n}", daemon=True)
            t.start()
            self._workers.append(t)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._workers:
            t.join(timeout=10)

    def drain(self) -> int:
        """Process every event that can be taken now, in this thread; returns how many."""
        done, events = 0, claim(self.db, self.clock.now(), BATCH)
        while events:
            for event in events:
                if event.lease_until > self.clock.now():  # else its lease ran out behind a slow one: anyone's again
                    self._handle(event)
                    done += 1
            events = claim(self.db, self.clock.now(), BATCH, look_first=False)  # busy: there is likely more
        return done

    def _run(self) -> None:
        behind_webhooks()
        while not self._stop.is_set():
            try:
                if self.drain() == 0:
                    if self.on_idle:
                        self.on_idle()
                    self._wake.wait(self.poll)
                    self._wake.clear()
            except Exception:
                log.exception("inbox worker loop failed; retrying shortly")
                self._stop.wait(self.poll)

    def _handle(self, event: InboxEvent) -> None:
        with tagged(f"event-{event.id}"):
            self._process(event)

    def _process(self, event: InboxEvent) -> None:
        try:
            self.process(event)
            metrics.events_processed.labels("done").inc()
            metrics.event_seconds.observe(max((self.clock.now() - event.received_at).total_seconds(), 0))
        except Exception as exc:
            final = event.attempts >= MAX_ATTEMPTS
            metrics.events_processed.labels("failed" if final else "retry").inc()
            log.exception("inbox event %s failed (attempt %s%s)", event.id, event.attempts, ", giving up" if final else "")
            with self.db.unit_of_work() as s:
                s.execute(update(InboxEvent).where(InboxEvent.id == event.id).values(
                    status="failed" if final else "pending", lease_until=None,
                    next_attempt_at=None if final else self.clock.now() + backoff(event.attempts),
                    error=f"{type(exc).__name__}"[:500]))
                s.commit()
            if final and self.on_give_up:
                try:
                    self.on_give_up(event)
                except Exception:  # the event is parked already; a failed apology must not stop the worker
                    log.exception("inbox event %s: telling the user failed", event.id)
