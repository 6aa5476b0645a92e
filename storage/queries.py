"""Read-side queries: consultations as the contract's JSON, and what the staff console lists."""
from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select

from storage.db import Database
from storage.models import Consultation

TOKYO = ZoneInfo("Asia/Tokyo")


def consultation_json(c: Consultation) -> dict:
    return {
        "id": c.id,
        "receipt_no": c.receipt_no,
        "received_at": c.received_at.astimezone(TOKYO).isoformat(),
        "channel": c.channel,
        "simulated": c.simulated,
        "company": c.company,
        "industry": c.industry,
        "employees": c.employees,
        "municipality": c.municipality,
        "region": c.region,
        "contact_name": c.contact_name,
        "phone": c.phone,
        "email": c.email,
        "category": c.category,
        "confidence": c.confidence,
        "keywords": list(c.keywords or []),
        "method": c.method,
        "status": c.status,
        "question": c.question,
        "booking": None,
    }


def consultations_as_json(db: Database, since: date | None = None) -> list[dict]:
    query = select(Consultation).order_by(Consultation.received_at, Consultation.id)
    if since:
        query = query.where(Consultation.received_at >= datetime.combine(since, time.min, TOKYO))
    with db.unit_of_work() as s:
        return [consultation_json(c) for c in s.scalars(query)]
