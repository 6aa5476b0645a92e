"""The console's home: what needs attention, and the programme's figures (the monthly report's, for any month)."""

import io
from datetime import timedelta

from flask import Blueprint, abort, render_template, request, send_file
from sqlalchemy import func, or_, select

from bot.jatime import TOKYO, to_tokyo
from handlers.console.common import WAITING_FOR_STAFF, _services, _today_start, audited
from handlers.report_files import monthly_workbook
from handlers.report_sections import MONTH_COLUMNS, NOTES, bar_widths, monthly_targets, sections
from storage import reports as figures_of
from storage.models import ACTIVE_BOOKING, Booking, Consultation, ConversationRow, LineUser, OutboundMessage, OutboxItem
from storage.reports import Period


bp = Blueprint("reports", __name__)

STUCK_AFTER = timedelta(minutes=15)

@bp.get("")
def dashboard():
    """What needs attention: new consultations, conversations waiting for staff, bookings, and failed messages.

    Every count leaves out what the simulator made (its users, their bookings and messages), so a tile means work.
    Under the tiles, the monthly report's figures of the month asked for (this month by default), with bars.
    """
    month_text, month = _month()
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
                Booking.status == "pending", ~Booking.calendar_refused,
                Booking.updated_at < _services().clock.now() - STUCK_AFTER, real_booking)),
            # Refused by the calendar for good: the reconciler has stopped, only staff can retry or cancel these
            # (or remove by hand the event of a cancellation the calendar would not delete).
            # Whatever their date: a user told that staff will be in touch is still waiting once the time has passed.
            "refused": s.scalar(select(func.count()).select_from(Booking).where(Booking.calendar_refused,
                                                                                real_booking)),
        }
        found = figures_of.monthly(s, month)
    config = _services().config
    parts = [monthly_targets(config, found), *sections(config, found, MONTH_COLUMNS)]
    first = month.start.astimezone(TOKYO)
    return render_template("console/dashboard.html", counts=counts, month=month_text,
                           month_label=f"{first.year}年{first.month}月", fy_start=found.periods[2].start.year,
                           figures=[(part, bar_widths(part) if part.chart else None) for part in parts],
                           notes="".join(NOTES))


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@bp.get("/reports/monthly.xlsx")
def monthly_report():
    """The monthly report for the prefecture, as `dxdesk report monthly` writes it; recorded as an export."""
    month_text, month = _month()
    with _services().db.unit_of_work() as s:
        found = figures_of.monthly(s, month)
    data = io.BytesIO()
    monthly_workbook(found, _services().config, data)
    audited("export", f"monthly:{month_text}")
    data.seek(0)
    return send_file(data, as_attachment=True, download_name=f"monthly-report-{month_text}.xlsx", mimetype=XLSX)


def _month() -> tuple[str, Period]:
    """The month asked for (?month=YYYY-MM), this month in Tokyo when none is; 400 in Japanese for another form."""
    text = request.args.get("month") or f"{to_tokyo(_services().clock.now()):%Y-%m}"
    try:
        return text, figures_of.month_period(text)
    except ValueError as exc:
        abort(400, description=str(exc))

