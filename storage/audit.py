"""The audit log: who viewed, exported, changed or erased which record of personal data, and when (append-only)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.logids import user_ref
from storage.models import AUDIT_ACTIONS, AuditEntry


def record(s: Session, who: str, action: str, record: str, now: datetime) -> None:
    """Add one entry in the caller's transaction (committed with the work it records, or by the caller for a view).

    `record` names the record, never its content: `consultation:12`, `booking:3`, `conversation:u:1a2b...`.
    """
    if action not in AUDIT_ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    s.add(AuditEntry(at=now, who=who[:64], action=action, record=record[:80]))


def conversation(user_id: str) -> str:
    """How a LINE user's conversation is named in the log: by its keyed hash, so the log holds no LINE id."""
    return f"conversation:{user_ref(user_id)}"


def entries(s: Session, *, who: str = "", action: str = "", start: datetime | None = None,
            end: datetime | None = None, limit: int | None = None, offset: int = 0) -> list[AuditEntry]:
    """Entries newest first, filtered by who, action and the range [start, end)."""
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if who:
        query = query.where(AuditEntry.who == who)
    if action:
        query = query.where(AuditEntry.action == action)
    if start:
        query = query.where(AuditEntry.at >= start)
    if end:
        query = query.where(AuditEntry.at < end)
    if limit is not None:
        query = query.offset(offset).limit(limit)
    return list(s.scalars(query))
