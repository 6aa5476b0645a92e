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
import threading
from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import aliased

from handlers.line_api import LineMessenger
from storage.outbound import SendResult
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
REMOTE = ("line", "email")  # the channels that go over the network; the simulator's are just marked sent


def backoff(attempt: int) -> timedelta:
    return timedelta(seconds=min(10 * 2 ** (attempt - 1), 1800))


_earlier = aliased(OutboundMessage)
# A message waits while an earlier one to the same recipient is still pending: that keeps each user's order.
_first_in_line = ~select(_earlier.id).where(
    _earlier.channel == OutboundMessage.channel, _earlier.to == OutboundMessage.to,
    _earlier.id < OutboundMessage.id, _earlier.status == "pending").exists()


def _due(now: datetime):
    return (OutboundMessage.status == "pending", OutboundMessage.next_attempt_at <= now, _first_in_line)


class Delivery:
    def __init__(self, db: Database, clock, line: LineMessenger | None, *, mailer: Mailer | None = None):
        self.db, self.clock, self.line, self.mailer = db, clock, line, mailer
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._senders: list[threading.Thread] = []

    def start(self, threads: int = 4, poll: float = 1.0) -> None:
        """Sender threads, so a slow LINE call holds up only its own user; they also send retries as they fall due."""
        for n in range(threads):
            t = threading.Thread(target=self._run, args=(poll,), name=f"sender-{n}", daemon=True)
            t.start()
            self._senders.append(t)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._senders:
            t.join(timeout=20)

    def send(self, ids: Iterable[int]) -> None:
        """Send these queued messages: in this thread, or by the sender threads when they run."""
        ids = list(ids)
        if self._senders and ids:
            with self.db.unit_of_work() as s:
                remote = set(s.scalars(select(OutboundMessage.id).where(
                    OutboundMessage.id.in_(ids), OutboundMessage.channel.in_(REMOTE))))
            ids = [i for i in ids if i not in remote]
            if remote:
                self._wake.set()
        for message_id in ids:
            self.send_one(message_id)

    def send_due(self) -> int:
        """Send every pending message whose time has come (retries, and messages a crash left behind)."""
        with self.db.unit_of_work() as s:
            due = s.scalars(select(OutboundMessage.id).where(
                OutboundMessage.status == "pending", OutboundMessage.next_attempt_at <= self.clock.now())
                .order_by(OutboundMessage.id).limit(100)).all()
        self.send(due)
        return len(due)

    def send_one(self, message_id: int) -> None:
        # A reply the token no longer serves becomes a push at once, so this may take a second attempt.
        for _ in range(2):
            if not self._send_first(OutboundMessage.id == message_id):
                return

    def _run(self, poll: float) -> None:
        while not self._stop.is_set():
            try:
                if not self._send_first():
                    self._wake.wait(poll)
                    self._wake.clear()
            except Exception:
                log.exception("sender loop failed; retrying shortly")
                self._stop.wait(poll)

    def _send_first(self, *where) -> bool:
        """Take the oldest due message (of those `where` picks) and make one attempt; False if none could be taken."""
        now = self.clock.now()
        with self.db.unit_of_work() as s:
            candidates = s.scalars(select(OutboundMessage).where(*_due(now), *where)
                                   .order_by(OutboundMessage.id).limit(10)).all()
            for msg in candidates:
                action = self._action(msg, now)
                replying = action in ("reply", "check")
                s.expunge(msg)  # keep it as read: the attempt works from this copy
                # Taken only as read (same attempts) and still first in line; the doubt is on record before the reply.
                taken = s.execute(update(OutboundMessage).where(
                    OutboundMessage.id == msg.id, OutboundMessage.attempts == msg.attempts, *_due(now)).values(
                    attempts=msg.attempts + 1, next_attempt_at=now + (REPLY_CLAIM if replying else CLAIM),
                    reply_in_doubt=msg.reply_in_doubt or replying)).rowcount
                s.commit()
                if taken:
                    break
            else:
                return False
        with tagged(f"message-{msg.id}"):
            result = self._attempt(msg, action)
            self._finish(msg, action, result, now)
        return True

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
        if action == "local":
            return SendResult("sent")  # the simulator reads its messages from the table
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

    def _finish(self, msg: OutboundMessage, action: str, result: SendResult, now: datetime) -> None:
        values: dict = {"last_error": result.error}
        if action == "reply" and result.status != "unknown":
            values["reply_in_doubt"] = False  # LINE answered: the reply was not shown unless it says so
        in_doubt = action == "check" or result.status == "unknown"
        if result.status == "sent":
            values.update(status="sent", sent_at=self.clock.now())  # the error says e.g. partly refused, or unconfirmed
            if action == "unconfirmed":
                log.warning("message %s: a reply in doubt outlived its token; taken as shown", msg.id)
        elif action == "reply" and result.error == "reply_token":
            values.update(reply_until=None, next_attempt_at=now)  # the token is spent or expired: push instead
        elif in_doubt:
            values["next_attempt_at"] = now + CHECK_AGAIN  # never failed for good: it may have been shown
        elif result.status == "failed" or msg.attempts + 1 >= MAX_ATTEMPTS:
            values["status"] = "failed"
            log.warning("message %s to %s failed for good: %s", msg.id, msg.channel, result.error)
        else:
            wait = timedelta(seconds=result.retry_after) if result.retry_after else backoff(msg.attempts + 1)
            values["next_attempt_at"] = now + wait
        metrics.sends.labels(msg.channel, "in_doubt" if in_doubt and "status" not in values
                             else values.get("status", "retry")).inc()
        with self.db.unit_of_work() as s:
            # Only if no one took it meanwhile (a claim that ran out): the newer attempt has the say.
            s.execute(update(OutboundMessage).where(
                OutboundMessage.id == msg.id, OutboundMessage.attempts == msg.attempts + 1,
                OutboundMessage.status == "pending").values(**values))
            s.commit()
        if values.get("status") and self._senders:
            self._wake.set()  # the user's next message may go now

    def _email(self, msg: OutboundMessage) -> SendResult:
        if self.mailer is None:
            return SendResult("failed", error="smtp_not_configured")
        # One email per row (see scheduling.mailer.email_message), so a retry never resends another.
        [mail] = msg.messages
        return self.mailer.send(mail["to"], mail["subject"], mail["body"], key=msg.retry_key)
