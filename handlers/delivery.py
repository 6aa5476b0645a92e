"""Delivery of queued messages: LINE replies or pushes (with the stored retry key) and emails; retry, then keep the failure."""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Iterable

from sqlalchemy import select, update

from handlers.line_api import LineMessenger
from storage.outbound import SendResult
from scheduling.mailer import Mailer
from storage.db import Database
from storage.models import OutboundMessage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
CLAIM = timedelta(minutes=2)  # while one worker sends a message, no other picks it up


def backoff(attempt: int) -> timedelta:
    return timedelta(seconds=min(10 * 2 ** (attempt - 1), 1800))


class Delivery:
    def __init__(self, db: Database, clock, line: LineMessenger | None, *, mailer: Mailer | None = None):
        self.db, self.clock, self.line, self.mailer = db, clock, line, mailer

    def send(self, ids: Iterable[int]) -> None:
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
        now = self.clock.now()
        with self.db.unit_of_work() as s:
            claimed = s.execute(update(OutboundMessage).where(
                OutboundMessage.id == message_id, OutboundMessage.status == "pending",
                OutboundMessage.next_attempt_at <= now).values(
                attempts=OutboundMessage.attempts + 1, next_attempt_at=now + CLAIM)).rowcount
            s.commit()
            if not claimed:
                return
            msg = s.get(OutboundMessage, message_id)
        result = self._attempt(msg, now)
        with self.db.unit_of_work() as s:
            row = s.get(OutboundMessage, message_id)
            if result.status == "sent":
                row.status, row.sent_at, row.last_error = "sent", self.clock.now(), result.error  # e.g. partly refused
            elif result.status == "failed" or row.attempts >= MAX_ATTEMPTS:
                row.status, row.last_error = "failed", result.error
                log.warning("message %s to %s failed for good: %s", row.id, row.channel, result.error)
            else:
                wait = timedelta(seconds=result.retry_after) if result.retry_after else backoff(row.attempts)
                row.next_attempt_at, row.last_error = now + wait, result.error
            s.commit()

    def _attempt(self, msg: OutboundMessage, now) -> SendResult:
        if msg.channel == "email":
            return self._email(msg)
        if msg.channel != "line":
            return SendResult("sent")  # the simulator reads its messages from the table
        if self.line is None:
            return SendResult("failed", error="line_not_configured")
        if msg.reply_token and msg.reply_until and now < msg.reply_until and msg.attempts == 1:
            result = self.line.reply(msg.reply_token, msg.messages)
            if result.status == "sent" or result.error not in ("reply_token", "timeout", "network") \
                    and not (result.error or "").startswith("http_5"):
                return result
        return self.line.push(msg.to, msg.messages, msg.retry_key)

    def _email(self, msg: OutboundMessage) -> SendResult:
        if self.mailer is None:
            return SendResult("failed", error="smtp_not_configured")
        # One email per row (see scheduling.mailer.email_message), so a retry never resends another.
        [mail] = msg.messages
        return self.mailer.send(mail["to"], mail["subject"], mail["body"], key=msg.retry_key)
