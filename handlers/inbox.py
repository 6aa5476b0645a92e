"""The inbox: webhook events written durably, then processed once each, in order per user, by any worker."""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from datetime import datetime, timedelta
from typing import Callable, Iterable

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from scheduling import metrics
from storage.db import Database
from storage.logids import tagged
from storage.models import InboxEvent

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)  # a worker that dies mid-event gives it up after this
MAX_ATTEMPTS = 3


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
    dialect = postgresql if db.is_postgres else sqlite
    statement = (dialect.insert(InboxEvent).on_conflict_do_nothing(index_elements=["event_key"])
                 .returning(InboxEvent.id))
    with db.unit_of_work() as s:
        new = sum(len(s.execute(statement, row).all()) for row in rows)
        s.commit()
    return new


def _claimable(now: datetime):
    return or_(InboxEvent.status == "pending",
               and_(InboxEvent.status == "processing", InboxEvent.lease_until < now))


def claim_next(db: Database, now: datetime) -> InboxEvent | None:
    """Take the oldest unfinished event of some user whose earlier events are all done.

    Only a user's oldest unfinished event is ever a candidate, and taking it is a conditional UPDATE, so
    two workers (threads or processes) can neither take the same event nor two events of one user.
    """
    oldest = (select(func.min(InboxEvent.id))
              .where(InboxEvent.status.in_(("pending", "processing")))
              .group_by(InboxEvent.user_key))
    with db.unit_of_work() as s:
        candidates = s.scalars(select(InboxEvent.id).where(InboxEvent.id.in_(oldest), _claimable(now))
                               .order_by(InboxEvent.id).limit(10)).all()
        for event_id in candidates:
            taken = s.execute(update(InboxEvent).where(InboxEvent.id == event_id, _claimable(now))
                              .values(status="processing", lease_until=now + LEASE,
                                      attempts=InboxEvent.attempts + 1))
            if taken.rowcount == 1:
                s.commit()
                return s.get(InboxEvent, event_id)
        return None


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
        done = 0
        while (event := claim_next(self.db, self.clock.now())) is not None:
            self._handle(event)
            done += 1
        return done

    def _run(self) -> None:
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
                    error=f"{type(exc).__name__}"[:500]))
                s.commit()
            if final and self.on_give_up:
                try:
                    self.on_give_up(event)
                except Exception:  # the event is parked already; a failed apology must not stop the worker
                    log.exception("inbox event %s: telling the user failed", event.id)
