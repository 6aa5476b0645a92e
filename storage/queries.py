"""Read-side queries: consultations as the contract's JSON, and what the staff console lists."""
from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select

from storage.db import Database
from storage.models import ACTIVE_BOOKING, Booking, Consultation

TOKYO = ZoneInfo("Asia/Tokyo")


def consultation_json(c: Consultation, booking: Booking | None = None) -> dict:
    return {
        "id": c.id,
        "receipt_no": c.receipt_no,
        "received_at": c.received_at.astimezone(TOKYO).isoformat(),
        "channel": c.channel,
        "origin": c.origin,
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
        "suggested_category": c.suggested_category,
        "confidence": c.confidence,
        "keywords": list(c.keywords or []),
        "method": c.method,
        "status": c.status,
        "question": c.question,
        "booking": booking_json(booking) if booking else None,
    }


def booking_json(b: Booking) -> dict:
    return {"id": b.id, "start": b.start.astimezone(TOKYO).isoformat(), "end": b.end.astimezone(TOKYO).isoformat(),
            "coordinator": b.coordinator_id, "method": b.method, "status": b.status,
            "calendar_event_id": b.calendar_event_id, "meet_url": b.meet_url}


def consultations_as_json(db: Database, since: date | None = None) -> list[dict]:
    query = select(Consultation).order_by(Consultation.received_at, Consultation.id)
    if since:
        query = query.where(Consultation.received_at >= datetime.combine(since, time.min, TOKYO))
    with db.unit_of_work() as s:
        rows = list(s.scalars(query))
        # The booking shown is the active one, else the latest (a cancelled one says so in its status).
        latest: dict[int, Booking] = {}
        for b in s.scalars(select(Booking).where(Booking.consultation_id.in_([c.id for c in rows])).order_by(Booking.id)):
            current = latest.get(b.consultation_id)
            if current is None or current.status not in ACTIVE_BOOKING or b.status in ACTIVE_BOOKING:
                latest[b.consultation_id] = b
        return [consultation_json(c, latest.get(c.id)) for c in rows]


def backlog(s, now: datetime) -> dict:
    """What waits to be done: inbox events not yet processed, messages not yet sent, scheduled sends overdue.

    Each with its count and the age in seconds of its oldest item (None when there is none); failed items are
    set aside and counted apart, so one bad event does not keep the service "behind" for ever.
    """
    from sqlalchemy import func

    from storage.models import InboxEvent, OutboundMessage, OutboxItem

    def waiting(column, *conditions) -> dict:
        count, oldest = s.execute(select(func.count(), func.min(column)).where(*conditions)).one()
        if oldest is not None and oldest.tzinfo is None:  # SQLite keeps no zone: the column is UTC
            oldest = oldest.replace(tzinfo=ZoneInfo("UTC"))
        return {"count": count, "oldest_age_seconds": round((now - oldest).total_seconds(), 1) if oldest else None}

    return {
        "inbox": waiting(InboxEvent.received_at, InboxEvent.status.in_(("pending", "processing"))),
        "outbound": waiting(OutboundMessage.created_at, OutboundMessage.status == "pending"),
        "outbox": waiting(OutboxItem.due_at, OutboxItem.status == "pending", OutboxItem.due_at <= now),
        "failed": {"inbox": s.scalar(select(func.count()).where(InboxEvent.status == "failed")),
                   "outbound": s.scalar(select(func.count()).where(OutboundMessage.status == "failed"))},
    }
