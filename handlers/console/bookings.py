"""Bookings: the list, one booking, and the staff's acknowledge and cancel."""

import logging
from dataclasses import dataclass

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from sqlalchemy import or_, select

from bot import replies as r
from bot.jatime import format_time_range
from handlers.console.common import (
    BOOKING_STATUS_LABELS, MAX_REASON, PAGE_SIZE, _date_arg, _error, _form_text, _page_number, _services,
    _today_start, audited,
)
from storage import audit
from storage.models import ACTIVE_BOOKING, Booking, Consultation, LineUser, PopupDay
from storage.outbound import queue_messages

log = logging.getLogger(__name__)

bp = Blueprint("bookings", __name__)

# The staff's own reason stays in the record and goes to the coordinator; the user is told it more gently.
CANCELLED_BY_STAFF = ("{when}のご相談のご予約は、担当者の都合によりキャンセルとなりました。"
                      "ご迷惑をおかけし、誠に申し訳ございません。\n"
                      "別の日時でのご相談をご希望の場合は、メニューの「予約の確認・変更」から改めてご予約いただけます。")
BOOKING_CHANNELS = ("line", "popup")
CANCELLED_BY_LABELS = {"user": "利用者", "staff": "担当者（スタッフ画面）"}


@dataclass(frozen=True)
class BookingRow:
    """A booking with what is shown beside it."""

    booking: Booking
    consultation: Consultation | None
    day: PopupDay | None
    desk: str  # the coordinator's name, or 出張相談会（venue）for a seat at a pop-up day
    company: str


def _bookings_query():
    return (select(Booking, Consultation, PopupDay, LineUser.company)
            .outerjoin(Consultation, Booking.consultation_id == Consultation.id)
            .outerjoin(PopupDay, Booking.popup_day_id == PopupDay.id)
            .outerjoin(LineUser, Booking.user_id == LineUser.id))


def _booking_row(booking: Booking, c: Consultation | None, day: PopupDay | None,
                 user_company: str | None) -> BookingRow:
    if day is not None:
        desk = f"出張相談会（{day.venue}）"
    else:
        coordinator = _services().config.coordinator(booking.coordinator_id)
        desk = coordinator.name if coordinator else booking.coordinator_id
    return BookingRow(booking, c, day, desk, (c.company if c else user_company) or "")


@bp.get("/bookings")
def bookings():
    """Bookings from a day on (today unless asked), in time order, by coordinator, status and channel."""
    config = _services().config
    args = request.args
    coordinator = args.get("coordinator", "")
    coordinator = coordinator if config.coordinator(coordinator) else ""
    status = args.get("status", "")
    status = status if status in BOOKING_STATUS_LABELS or status == "all" else ""
    channel = args.get("channel", "")
    channel = channel if channel in BOOKING_CHANNELS else ""
    swap = args.get("swap") == "1"
    since = _date_arg(args.get("from", ""))
    page = _page_number()
    query = _bookings_query().where(Booking.start >= (since or _today_start())).order_by(Booking.start, Booking.id)
    if status != "all":
        query = query.where(Booking.status.in_([status] if status else ACTIVE_BOOKING))
    if coordinator:
        # A coordinator's day includes the pop-up days they staff.
        query = query.where(or_(Booking.coordinator_id == coordinator, Booking.popup_day_id.in_(
            select(PopupDay.id).where(PopupDay.coordinator_id == coordinator))))
    if channel:
        query = query.where(Booking.channel == channel)
    if swap:
        query = query.where(Booking.swap_requested_at.is_not(None))
    with _services().db.unit_of_work() as s:
        rows = s.execute(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
    filters = {key: value for key, value in
               (("coordinator", coordinator), ("status", status), ("channel", channel), ("swap", "1" if swap else ""),
                ("from", since.date().isoformat() if since else "")) if value}
    return render_template("console/bookings.html", rows=[_booking_row(*row) for row in rows[:PAGE_SIZE]],
                           has_next=len(rows) > PAGE_SIZE, page=page, filters=filters,
                           since=(since or _today_start()).date(), coordinators=config.coordinators,
                           channels=BOOKING_CHANNELS)


@bp.get("/bookings/<int:booking_id>")
def booking(booking_id: int):
    """One booking in full, with the staff's cancel form while it is still to come."""
    page = _booking_page(booking_id)
    if page[1] == 200:
        audited("view", f"booking:{booking_id}")
    return page


def _booking_page(booking_id: int, error: str = "", reason: str = "", status: int = 200):
    with _services().db.unit_of_work() as s:
        found = s.execute(_bookings_query().where(Booking.id == booking_id)).first()
    if found is None:
        return _error(404, "お探しの予約は見つかりませんでした。")
    row = _booking_row(*found)
    cancellable = row.booking.status in ACTIVE_BOOKING and row.booking.end > _services().clock.now()
    cancelled_by = row.booking.cancelled_by or ""
    return render_template("console/booking.html", row=row, b=row.booking, cancellable=cancellable, error=error,
                           reason=reason, max_reason=MAX_REASON, seat=_seat_of(row.booking),
                           cancelled_by=CANCELLED_BY_LABELS.get(cancelled_by, cancelled_by)), status


def _seat_of(booking: Booking) -> str:
    # A pop-up booking's coordinator_id is its seat (popup-<day>-<seat>); staff know it as 席.
    return booking.coordinator_id.rsplit("-", 1)[-1] if booking.popup_day_id else ""


@bp.post("/bookings/<int:booking_id>/acknowledge")
def acknowledge_booking(booking_id: int):
    """Mark a booking 確認済み for its coordinator (told by phone, say), recording which staff member did and when."""
    services = _services()
    back = redirect(url_for("console.bookings.booking", booking_id=booking_id))
    with services.db.unit_of_work() as s:
        booking = s.get(Booking, booking_id, with_for_update=True)
        if booking is None:
            return _error(404, "お探しの予約は見つかりませんでした。")
        if booking.acknowledged_at is not None:
            flash("この予約はすでに確認済みです。", "ok")
            return back
        if booking.status not in ACTIVE_BOOKING or booking.popup_day_id:
            flash("キャンセルされた予約や出張相談会の予約は、確認済みにできません。", "error")
            return back
        # updated_at stays: it dates the calendar work, which tells a stuck pending booking apart.
        booking.acknowledged_at, booking.acknowledged_by = services.clock.now(), session["staff"]["login"]
        s.commit()
    log.info("staff %s marked booking %s acknowledged", session["staff"]["id"], booking_id)
    flash("予約を確認済みにしました。", "ok")
    return back


@bp.post("/bookings/<int:booking_id>/cancel")
def cancel_booking(booking_id: int):
    """Cancel for the program: free the slot, remove the calendar event, and tell the coordinator and the user."""
    reason = _form_text("reason")
    if not reason:
        return _booking_page(booking_id, error="キャンセルの理由を入力してください。", status=400)
    if len(reason) > MAX_REASON:
        return _booking_page(booking_id, reason=reason, status=400,
                             error=f"理由は{MAX_REASON}文字以内で入力してください（いま{len(reason)}文字です）。")
    services = _services()
    now = services.clock.now()
    back = redirect(url_for("console.bookings.booking", booking_id=booking_id))
    with services.db.unit_of_work() as s:
        booking = s.get(Booking, booking_id, with_for_update=True)
        if booking is None:
            return _error(404, "お探しの予約は見つかりませんでした。")
        if booking.status not in ACTIVE_BOOKING or booking.end <= now:
            flash("この予約はすでにキャンセルされているか、終了しているため、キャンセルできません。", "error")
            return back
        when = format_time_range(booking.start, booking.end)
        ids = services.bookings.cancel(s, booking_id, user_id=None, reason=reason, by="staff", now=now)
        told = ["担当コーディネーター"] if ids else []
        user = s.get(LineUser, booking.user_id) if booking.user_id else None
        if user is not None:
            ids += queue_messages(s, user.source, user.id, [r.text(CANCELLED_BY_STAFF.format(when=when))], now,
                                  sender="staff")
            told.append("利用者")
        audit.record(s, session["staff"]["login"], "change", f"booking:{booking_id}", now)
        s.commit()
    services.delivery.send(ids)
    removed = services.bookings.finish_cancel(booking_id)
    log.info("staff %s cancelled booking %s (calendar event removed: %s)", session["staff"]["id"], booking_id, removed)
    message = "予約をキャンセルしました。"
    if told:
        message += f"{'と'.join(told)}にお知らせを送りました。"
    if not removed:
        message += "カレンダーの予定はまだ削除できていません。自動で削除を再試行します。"
    flash(message, "ok")
    return back

