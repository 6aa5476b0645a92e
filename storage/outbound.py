"""Messages waiting to be sent: each stored with its retry key before any attempt."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from storage.models import OutboundMessage

MESSAGES_PER_REQUEST = 5  # LINE's limit for one reply or push


@dataclass(frozen=True)
class SendResult:
    """The outcome of one attempt to send (to LINE or by email). sent: it is there. retry: not delivered yet, try
    again later (not before `retry_after` seconds when given) with the same retry key. failed: it will never go as it is.
    unknown: it may be there (LINE took the request, its answer was lost); only for replies, which have no retry key."""

    status: Literal["sent", "retry", "failed", "unknown"]
    error: str | None = None
    retry_after: float | None = None


def queue_messages(s: Session, channel: str, to: str, messages: list[dict], now: datetime, *,
                   reply_token: str | None = None, reply_until: datetime | None = None,
                   sender: str = "bot") -> list[int]:
    """Store messages to send, five to a request, each with its retry key, before any attempt.

    The reply token goes to the first message only, and only if no earlier message has it.
    """
    reply_token = reply_token or None  # "" is no token: stored, it would clash with the next ""
    if reply_token and s.scalar(_TOKEN_USED, {"token": reply_token}):
        reply_token = reply_until = None
    rows = [dict(channel=channel, to=to, messages=messages[n:n + MESSAGES_PER_REQUEST],
                 reply_token=reply_token if n == 0 else None, reply_until=reply_until if n == 0 else None,
                 reply_in_doubt=False, retry_key=str(uuid.uuid4()), status="pending", attempts=0,
                 next_attempt_at=now, last_error=None, sender=sender, created_at=now, sent_at=None)
            for n in range(0, len(messages), MESSAGES_PER_REQUEST)]
    if not rows:
        return []
    queued = s.execute(_QUEUE, rows).all()
    # The rows as stored, held for the session's life: claiming them for delivery in the same transaction (see
    # just_queued) then costs no read. A plain INSERT on the table: the ORM's bulk insert of mapped objects took twice
    # the CPU, and nothing here needs them as objects.
    s.info.setdefault("queued", {}).update((row.id, row) for row in queued)
    return [row.id for row in queued]


def just_queued(s: Session, message_id: int):
    """The message as queue_messages stored it in this session (its columns as attributes), or None."""
    return s.info.get("queued", {}).get(message_id)


_messages = OutboundMessage.__table__
_TOKEN_USED = select(_messages.c.id).where(_messages.c.reply_token == bindparam("token"))
_QUEUE = insert(_messages).returning(*_messages.c, sort_by_parameter_order=True)
