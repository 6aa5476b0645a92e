"""LocalCalendarGateway: the CalendarGateway for deployments without Google, where bookings live in the database only."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from scheduling.calendar import CalendarEvent
from storage.db import Database
from storage.models import ACTIVE_BOOKING, Booking


class LocalCalendarGateway:
    """No calendar outside the database: coordinators read their bookings from their iCalendar feed."""

    def __init__(self, db: Database):
        self._db = db

    def busy(self, calendar_ids: list[str], start: datetime, end: datetime) -> dict[str, list[tuple[datetime, datetime]]]:
        # Nothing is booked elsewhere; the program's own bookings are merged in by availability.
        return {calendar_id: [] for calendar_id in calendar_ids}

    def insert_event(self, calendar_id: str, event_id: str, start: datetime, end: datetime, *,
                     summary: str, description: str, meet: bool) -> CalendarEvent:
        return CalendarEvent(event_id, start, end)

    def get_event(self, calendar_id: str, event_id: str) -> CalendarEvent | None:
        with self._db.unit_of_work() as s:
            booking = s.scalars(select(Booking).where(Booking.calendar_event_id == event_id,
                                                      Booking.status.in_(ACTIVE_BOOKING))).first()
            return None if booking is None else CalendarEvent(event_id, booking.start, booking.end, booking.meet_url)

    def move_event(self, calendar_id: str, event_id: str, start: datetime, end: datetime) -> CalendarEvent:
        return CalendarEvent(event_id, start, end)

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        pass
