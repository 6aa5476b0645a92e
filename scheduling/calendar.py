"""What dxdesk needs of a calendar: busy times, and idempotent event insert, move and delete."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class CalendarEvent:
    id: str
    start: datetime
    end: datetime
    meet_url: str | None = None


class CalendarError(Exception):
    """The calendar refused or could not be reached; `retryable` says whether trying later may help.

    `refusal` names a refusal for good that only a person can resolve (`403 forbidden`: the calendar is no longer
    shared with the service account; `404 notFound`; `400 badRequest`): a booking it meets waits for staff, whether the
    refusal was to write its event or, for a cancelled booking, to delete it.
    """

    def __init__(self, message: str, *, retryable: bool, refusal: str | None = None):
        super().__init__(message)
        self.retryable, self.refusal = retryable, refusal


class CalendarGateway(Protocol):
    def busy(self, calendar_ids: list[str], start: datetime, end: datetime) -> dict[str, list[tuple[datetime, datetime]]]:
        """Busy intervals per calendar id between start and end (aware datetimes)."""

    def insert_event(self, calendar_id: str, event_id: str, start: datetime, end: datetime, *,
                     summary: str, description: str, meet: bool) -> CalendarEvent:
        """Create the event with our own id; if it exists already (a retry), return the existing one, and if it was
        deleted since (its id is kept), confirm it again at this time."""

    def get_event(self, calendar_id: str, event_id: str) -> CalendarEvent | None:
        """The event, or None when it does not exist or was cancelled."""

    def move_event(self, calendar_id: str, event_id: str, start: datetime, end: datetime) -> CalendarEvent:
        """Give the event a new time."""

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        """Delete the event; one already gone is fine."""
