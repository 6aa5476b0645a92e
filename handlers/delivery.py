"""Delivery of queued messages: LINE replies or pushes (with the stored retry key) and emails; retry, then keep the failure.

Each message is shown once: a push carries its retry key (a repeat answers 409), and a reply whose outcome is
unknown (no answer, or a 5xx) is sent again with the same token while the token lives. LINE takes a token once,
so the repeat either is the one shown or meets "Invalid reply token", which then means the first was shown.
A reply still in doubt when its token has expired (the process died during it, or LINE stayed silent until then)
cannot be checked: it is taken as shown and kept with the error "reply_unconfirmed". The request had left us, so
LINE has most likely shown it; pushing it again is what showed users their greeting twice.

Each user's messages go in order: one is sent only when the user's earlier ones are sent or failed for good.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from handlers.inbox import behind_webhooks
from handlers.line_api import LineMessenger
from storage.outbound import SendResult, just_queued
from scheduling import metrics
from scheduling.mailer import Mailer
from storage.db import Database
from storage.logids import tagged
from storage.models import OutboundMessage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
CLAIM = timedelta(minutes=2)  # while one worker sends a message, no other picks it up (a push with the SDK's retries)
# A reply is one request (LineMessenger's time-outs: 3 s to connect, 10 s to read), so its claim is short: after a
# crash the reply is checked again while the token still lives. A first reply is sent only when that still fits.
REPLY_CLAIM = timedelta(seconds=15)
CHECK_AGAIN = timedelta(seconds=1)  # a reply in doubt is sent again this soon, with the same token


def backoff(attempt: int) -> timedelta:
    return timedelta(seconds=min(10 * 2 ** (attempt - 1), 1800))


# The hot statements are built once, on the table rather than the mapped class: SQLAlchemy then runs them as plain
# Core statements, finding their compiled form without working out a cache key or an ORM plan each time.
_messages = OutboundMessage.__table__
_earlier = _messages.alias("earlier")
# A message waits while an earlier one to the same recipient is still pending: that keeps each user's order.
_first_in_line = ~select(_earlier.c.id).where(
    _earlier.c.channel == _messages.c.channel, _earlier.c.to == _messages.c.to,
    _earlier.c.id < _messages.c.id, _earlier.c.status == "pending").exists()
_DUE = (_messages.c.status == "pending", _messages.c.next_attempt_at <= bindparam("now"), _first_in_line)
_AS_READ = (_messages.c.id == bindparam("m_id"), _messages.c.attempts == bindparam("m_was"))
_CLAIM = update(_messages).where(*_AS_READ, *_DUE).values(
    attempts=bindparam("m_attempt"), next_attempt_at=bindparam("m_until"), reply_in_doubt=bindparam("m_doubt"))
_CLAIM_DONE = update(_messages).where(*_AS_READ, *_DUE).values(
    attempts=bindparam("m_attempt"), status="sent", sent_at=bindparam("now"))
_FINISH: dict[tuple[str, ...], object] = {}  # by the columns an outcome sets


def _finish_statement(columns: tuple[str, ...]):
    if columns not in _FINISH:
        _FINISH[columns] = update(_messages).where(
            _messages.c.id == bindparam("m_id"), _messages.c.attempts == bindparam("m_attempt"),
            _messages.c.status == "pending").values({c: bindparam(f"v_{c}") for c in columns})
    return _FINISH[columns]


@dataclass(frozen=True)
class Taken:
    """A message claimed for one attempt: `attempt` is its attempts count once this one is on record."""

    msg: OutboundMessage  # or the row queue_messages just stored: the same attributes, read only
    action: str
    attempt: int
    until: datetime  # when the claim runs out and the message is anyone's again


class Delivery:
    """Sends queued messages. A message is claimed in a transaction (the caller's, when it has just queued it, so the
    claim costs nothing more) and then sent once by a sender thread, which the claim is handed to in memory; the
    senders also look for what falls due (retries, and messages a crash or another process left behind)."""

    def __init__(self, db: Database, clock, line: LineMessenger | None, *, mailer: Mailer | None = None):
        self.db, self.clock, self.line, self.mailer = db, clock, line, mailer
        self._queue: queue.SimpleQueue[Taken | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._senders: list[threading.Thread] = []
        self._waiting: set[tuple[str, str]] = set()  # recipients with a message that waits behind one being sent
        self._lock = threading.Lock()

    def start(self, threads: int = 4, poll: float = 1.0) -> None:
        """Sender threads, so a slow LINE call holds up only its own user; they also send retries as they fall due."""
        for n in range(threads):
            t = threading.Thread(target=self._run, args=(poll,), name=f"sender-{n}", daemon=True)
            t.start()
            self._senders.append(t)

    def stop(self) -> None:
        self._stop.set()
        for _ in self._senders:
            self._queue.put(None)
        for t in self._senders:
            t.join(timeout=20)

    def send(self, ids: Iterable[int]) -> None:
        """Send these queued messages: by the sender threads when they run, else in this thread."""
        ids = list(ids)
        if not ids:
            return
        with self.db.unit_of_work() as s:
            taken = self.take(s, ids, self.clock.now())
            s.commit()
        self.dispatch(taken)

    def take(self, s: Session, ids: Iterable[int], now: datetime) -> list[Taken]:
        """Claim, in the caller's transaction, those of these messages that are due and first in line; `dispatch`
        them once it commits. The others go when the user's earlier message is done, or when they fall due."""
        ids = list(ids)
        if not ids:
            return []
        taken: list[Taken] = []
        for message_id in sorted(ids):
            msg = just_queued(s, message_id) or s.get(OutboundMessage, message_id)
            if msg is None or msg.status != "pending" or msg.next_attempt_at > now:
                continue
            claimed = self._claim(s, msg, now)
            if claimed is None:  # an earlier message to the same recipient is still on its way
                with self._lock:
                    if len(self._waiting) > 10_000:  # those behind another process's message: its poll sends them
                        self._waiting.clear()
                    self._waiting.add((msg.channel, msg.to))
            elif claimed.action != "local":
                taken.append(claimed)
        return taken

    def dispatch(self, taken: list[Taken]) -> None:
        """Hand claimed messages to the sender threads, or send them here when none run."""
        for item in taken:
            if self._senders:
                self._queue.put(item)
            else:
                self._deliver(item)

    def send_due(self) -> int:
        """Send every pending message whose time has come (retries, and messages a crash left behind)."""
        with self.db.reading() as s:
            due = s.scalars(select(OutboundMessage.id).where(
                OutboundMessage.status == "pending", OutboundMessage.next_attempt_at <= self.clock.now())
                .order_by(OutboundMessage.id).limit(100)).all()
        self.send(due)
        return len(due)

    def send_one(self, message_id: int) -> None:
        self._send_first(OutboundMessage.id == message_id)

    def _run(self, poll: float) -> None:
        behind_webhooks()
        polled = time.monotonic()
        while not self._stop.is_set():
            try:
                try:
                    item = self._queue.get(timeout=poll)
                except queue.Empty:
                    item = None
                if item is not None:
                    self._deliver(item)
                if item is None or time.monotonic() - polled >= poll:  # what falls due is looked for even when busy
                    polled = time.monotonic()
                    while not self._stop.is_set() and self._send_first():
                        pass
            except Exception:
                log.exception("sender loop failed; retrying shortly")
                self._stop.wait(poll)

    def _claim(self, s: Session, msg: OutboundMessage, now: datetime) -> Taken | None:
        """Put the attempt on record, if the message is still as read and first in line; the doubt is on record
        before the reply. A simulator's message is done there and then (the simulator reads it from the table)."""
        action = self._action(msg, now)
        replying = action in ("reply", "check")
        until = now + (REPLY_CLAIM if replying else CLAIM)
        params = {"m_id": msg.id, "m_was": msg.attempts, "m_attempt": msg.attempts + 1, "now": now,
                  "m_until": until, "m_doubt": msg.reply_in_doubt or replying}
        claimed = s.execute(_CLAIM_DONE if action == "local" else _CLAIM, params).rowcount
        return Taken(msg, action, msg.attempts + 1, until) if claimed else None

    def _send_first(self, *where) -> bool:
        """Take the oldest due message (of those `where` picks) and make one attempt; False if none could be taken."""
        now = self.clock.now()
        with self.db.reading() as s:  # looking takes no write lock: idle senders hold up no one
            candidates = s.scalars(select(OutboundMessage).where(*_DUE, *where)
                                   .order_by(OutboundMessage.id).limit(10), {"now": now}).all()
        if not candidates:
            return False
        with self.db.unit_of_work() as s:
            for msg in candidates:
                claimed = self._claim(s, msg, now)
                s.commit()
                if claimed:
                    break
            else:
                return False
        if claimed.action != "local":
            self._deliver(claimed)
        return True

    def _deliver(self, item: Taken) -> None:
        """One attempt, its outcome on record, then what it lets go: the same message as a push when the reply
        token no longer served, or the recipient's next message once this one is done."""
        msg = item.msg
        if self.clock.now() >= item.until:
            return  # it waited for a sender longer than its claim: it is anyone's again, and goes when found due
        with tagged(f"message-{msg.id}"):
            result = self._attempt(msg, item.action)
            outcome = self._finish(item, result, self.clock.now())
        if outcome == "push":
            self.send_one(msg.id)
        elif outcome == "done":
            with self._lock:
                waiting = (msg.channel, msg.to) in self._waiting
                self._waiting.discard((msg.channel, msg.to))
            while waiting and self._send_first(OutboundMessage.channel == msg.channel, OutboundMessage.to == msg.to):
                pass

    def _action(self, msg: OutboundMessage, now: datetime) -> str:
        if msg.channel == "email":
            return "email"
        if msg.channel != "line":
            return "local"
        if msg.reply_token and msg.reply_until:
            if msg.reply_in_doubt:
                return "check" if now < msg.reply_until else "unconfirmed"
            if now + REPLY_CLAIM < msg.reply_until:
                return "reply"
        return "push"

    def _attempt(self, msg: OutboundMessage, action: str) -> SendResult:
        if action == "email":
            return self._email(msg)
        if action == "unconfirmed":
            return SendResult("sent", error="reply_unconfirmed")
        if self.line is None:
            return SendResult("failed", error="line_not_configured")
        if action == "push":
            return self.line.push(msg.to, msg.messages, msg.retry_key)
        result = self.line.reply(msg.reply_token, msg.messages)
        if action == "check" and result.error == "reply_token":
            return SendResult("sent")  # the token was used within its lifetime: by our earlier attempt
        return result

    def _finish(self, item: Taken, result: SendResult, now: datetime) -> str:
        """Record the attempt's outcome; returns "done" (sent or failed for good), "push" (the token is spent or
        expired: to go again at once as a push) or "later"."""
        msg, action = item.msg, item.action
        values: dict = {"last_error": result.error}
        if action == "reply" and result.status != "unknown":
            values["reply_in_doubt"] = False  # LINE answered: the reply was not shown unless it says so
        in_doubt = action == "check" or result.status == "unknown"
        outcome = "later"
        if result.status == "sent":
            values.update(status="sent", sent_at=now)  # the error says e.g. partly refused, or unconfirmed
            if action == "unconfirmed":
                log.warning("message %s: a reply in doubt outlived its token; taken as shown", msg.id)
        elif action == "reply" and result.error == "reply_token":
            values.update(reply_until=None, next_attempt_at=now)  # the token is spent or expired: push instead
            outcome = "push"
        elif in_doubt:
            values["next_attempt_at"] = now + CHECK_AGAIN  # never failed for good: it may have been shown
        elif result.status == "failed" or item.attempt >= MAX_ATTEMPTS:
            values["status"] = "failed"
            log.warning("message %s to %s failed for good: %s", msg.id, msg.channel, result.error)
        else:
            wait = timedelta(seconds=result.retry_after) if result.retry_after else backoff(item.attempt)
            values["next_attempt_at"] = now + wait
        metrics.sends.labels(msg.channel, "in_doubt" if in_doubt and "status" not in values
                             else values.get("status", "retry")).inc()
        # Only if no one took it meanwhile (a claim that ran out): the newer attempt has the say.
        statement = _finish_statement(tuple(sorted(values)))
        params = {"m_id": msg.id, "m_attempt": item.attempt, **{f"v_{c}": v for c, v in values.items()}}
        changed = self.db.grouped(lambda conn: conn.execute(statement, params).rowcount)
        if not changed:
            return "later"
        return "done" if values.get("status") else outcome

    def _email(self, msg: OutboundMessage) -> SendResult:
        if self.mailer is None:
            return SendResult("failed", error="smtp_not_configured")
        # One email per row (see scheduling.mailer.email_message), so a retry never resends another.
        [mail] = msg.messages
        return self.mailer.send(mail["to"], mail["subject"], mail["body"], key=msg.retry_key)
