"""Telling coordinators about their bookings: a LINE card to their own LINE account."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot import booking as texts
from bot.config import Config
from handlers.conversations import queue_messages
from scheduling.bookings import BookingService
from storage.models import Booking, Consultation


def channel_of(user_id: str) -> str:
    """Simulated users (sim-...) live in the simulator; everyone else on LINE."""
    return "simulator" if user_id.startswith("sim-") else "line"


class CoordinatorNotifier:
    def __init__(self, config: Config, line_enabled: bool):
        self.config, self.line_enabled = config, line_enabled

    def __call__(self, s: Session, kind: str, booking: Booking, now: datetime) -> list[int]:
        c = self.config.coordinator(booking.coordinator_id)
        if c is None or not c.line_user_id:
            return []
        channel = channel_of(c.line_user_id)
        if channel == "line" and not self.line_enabled:
            return []
        consultation = s.get(Consultation, booking.consultation_id) if booking.consultation_id else None
        contact = " / ".join(x for x in (consultation.contact_name, consultation.phone, consultation.email) if x) if consultation else ""
        messages = texts.coordinator_notice(
            kind, BookingService.summary_of(self.config, booking),
            consultation.company if consultation else "", self.config.category(consultation.category).name if consultation else "",
            consultation.question if consultation else "", contact)
        return queue_messages(s, channel, c.line_user_id, messages, now, sender="notice")
