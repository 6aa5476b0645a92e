"""The console's home: what needs attention, and the programme's figures."""

from datetime import timedelta

from flask import Blueprint, render_template
from sqlalchemy import func, or_, select

from handlers.console.common import WAITING_FOR_STAFF, _services, _today_start
from storage.models import ACTIVE_BOOKING, Booking, Consultation, ConversationRow, LineUser, OutboundMessage, OutboxItem


bp = Blueprint("reports", __name__)

STUCK_AFTER = timedelta(minutes=15)

@bp.get("")
def dashboard():
    """What needs attention: new consultations, conversations waiting for staff, bookings, and failed messages.

    Every count leaves out what the simulator made (its users, their bookings and messages), so a tile means work.
    """
    real_users = select(LineUser.id).where(LineUser.source == "line")
    real_booking = or_(Booking.user_id.is_(None), Booking.user_id.in_(real_users))  # staff-made and pop-up seats too
    upcoming = select(func.count()).select_from(Booking).where(Booking.status.in_(ACTIVE_BOOKING),
                                                               Booking.start >= _today_start(), real_booking)
    with _services().db.unit_of_work() as s:
        received = select(func.count()).select_from(Consultation).where(Consultation.status == "received")
        counts = {
            "received": s.scalar(received.where(Consultation.simulated.is_(False))),
            "received_simulated": s.scalar(received.where(Consultation.simulated.is_(True))),
            "waiting": s.scalar(select(func.count()).select_from(ConversationRow).where(
                WAITING_FOR_STAFF, ConversationRow.user_id.in_(real_users))),
            "failed": s.scalar(select(func.count()).select_from(OutboundMessage).where(
                OutboundMessage.status == "failed", OutboundMessage.channel != "simulator"))
            + s.scalar(select(func.count()).select_from(OutboxItem).where(
                OutboxItem.status == "failed", OutboxItem.channel != "simulator")),
            "bookings": s.scalar(upcoming),
            "swaps": s.scalar(upcoming.where(Booking.swap_requested_at.is_not(None))),
            # The reconciler retries every minute: a booking still pending after this needs a person
            # (a calendar not shared with the service account, a quota used up).
            "stuck": s.scalar(select(func.count()).select_from(Booking).where(
                Booking.status == "pending", Booking.updated_at < _services().clock.now() - STUCK_AFTER, real_booking)),
        }
    return render_template("console/dashboard.html", counts=counts)

