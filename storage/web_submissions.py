"""The web form's record of what it took: one row per consultation sent, by form key and (hashed) address."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import WebSubmission


def consultation_for(s: Session, key: str) -> int | None:
    """The consultation a form (by its key) already sent, if it did."""
    return s.scalar(select(WebSubmission.consultation_id).where(WebSubmission.key == key))


def sent_since(s: Session, address: str, since: datetime) -> int:
    """How many consultations came from this (hashed) address since then."""
    return s.scalar(select(func.count()).select_from(WebSubmission).where(
        WebSubmission.address == address, WebSubmission.created_at >= since)) or 0
