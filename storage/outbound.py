"""Messages waiting to be sent: each stored with its retry key before any attempt."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from storage.models import OutboundMessage

MESSAGES_PER_REQUEST = 5  # LINE's limit for one reply or push


def queue_messages(s: Session, channel: str, to: str, messages: list[dict], now: datetime, *,
                   reply_token: str | None = None, reply_until: datetime | None = None,
                   sender: str = "bot") -> list[int]:
    """Store messages to send, five to a request, each with its retry key, before any attempt."""
    rows = []
    for n in range(0, len(messages), MESSAGES_PER_REQUEST):
        rows.append(OutboundMessage(
            channel=channel, to=to, messages=messages[n:n + MESSAGES_PER_REQUEST],
            reply_token=reply_token if n == 0 else None, reply_until=reply_until if n == 0 else None,
            retry_key=str(uuid.uuid4()), status="pending", attempts=0, next_attempt_at=now,
            sender=sender, created_at=now))
    s.add_all(rows)
    s.flush()
    return [row.id for row in rows]
