"""Bookings: the list, one booking, and the staff's acknowledge and cancel."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from sqlalchemy import or_, select

from bot import booking as booking_texts
from bot import replies as r
from bot.booking import parse_slot_key, slot_key
from bot.jatime import format_date, format_time_range
from handlers.console.common import (
    BOOKING_STATUS_LABELS, MAX_REASON, PAGE_SIZE, _date_arg, _error, _form_text, _page_number, _services,
    _today_start, audited, refuse_viewers,
)
from scheduling.assignment import follow_booking
from scheduling.availability import group_by_day
from scheduling.mailer import email_message, recipients_of
from storage import audit
from storage.models import ACTIVE_BOOKING, Booking, Consultation, LineUser, PopupDay
from storage.outbound import queue_messages

log = logging.getLogger(__name__)

bp = Blueprint("bookings", __name__)
bp.before_request(refuse_viewers("予約には相談者の会社名やお名前、連絡先が含まれるため、閲覧専用のアカウントでは"
                                 "ご覧いただけません。件数などの集計はホームと月次報告でご覧いただけます。"))

# The staff's own reason stays in the record and goes to the coordinator; the user is told it more gently.
CANCELLED_BY_STAFF = ("{when}のご相談のご予約は、担当者の都合によりキャンセルとなりました。"
                      "ご迷惑をおかけし、誠に申し訳ございません。\n"
                      "別の日時でのご相談をご希望の場合は、メニューの「予約の確認・変更」から改めてご予約いただけます。")
SLOT_TAKEN = ("申し訳ありません。その時間は、ほかの予約や予定が入ったか、選べない時間になりました。"
              "あらためて空いている時間からお選びください。")
RESCHEDULE_DAYS = 7
BOOKING_CHANNELS = ("line", "popup", "web")
CANCELLED_BY_LABELS = {"user": "利用者", "staff": "担当者（スタッフ画面）"}
# Why Google Calendar refused a booking for good, by the HTTP status of its answer, and what staff can check.
CALENDAR_REFUSALS = {
    "403": ("Googleカレンダーが、担当者のカレンダーへの予定の書き込みを拒否しました。"
            "カレンダーとサービスアカウントの共有が外れたか、共有の権限が「予定の変更」より弱くなっている可能性があります。"),
    "404": ("担当者のGoogleカレンダーが見つかりませんでした。設定ファイルの calendar_id が正しいか、"
            "カレンダーが削除されたり、サービスアカウントとの共有が外れたりしていないかをご確認ください。"),
    "400": "Googleカレンダーが予定の内容を受け付けませんでした。設定ファイルの calendar_id などの設定をご確認ください。",
}
# The same for the delete of a cancelled booking's event (a 404 there is no refusal: the event is gone already).
CALENDAR_DELETE_REFUSALS = {
    "403": ("Googleカレンダーが、担当者のカレンダーの予定の削除を拒否しました。"
            "カレンダーとサービスアカウントの共有が外れたか、共有の権限が「予定の変更」より弱くなっている可能性があります。"),
    "400": "Googleカレンダーが予定の削除を受け付けませんでした。設定ファイルの calendar_id などの設定をご確認ください。",
}


def calendar_refusal(code: str, *, deleting: bool = False) -> str:
    """Staff's explanation of a booking's calendar_error ("403 forbidden" and the like), of its insert or delete."""
    if deleting:
        return CALENDAR_DELETE_REFUSALS.get(code.partition(" ")[0], "Googleカレンダーが予定の削除を拒否しました。")
    return CALENDAR_REFUSALS.get(code.partition(" ")[0], "Googleカレンダーが予定の登録を拒否しました。")


def _refused_now(booking_id: int) -> str | None:
    """The booking's calendar_error if the calendar has refused it for good (Booking.calendar_refused), else None."""
    with _services().db.unit_of_work() as s:
        booking = s.get(Booking, booking_id)
        return booking.calendar_error if booking is not None and booking.calendar_refused else None


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
    refused = args.get("refused") == "1"
    since = _date_arg(args.get("from", ""))
    page = _page_number()
    query = _bookings_query().order_by(Booking.start, Booking.id)
    if since or not refused:  # the refused ones wait for staff whatever their date (see the dashboard's tile)
        query = query.where(Booking.start >= (since or _today_start()))
    if status != "all" and (status or not refused):  # refused ones include cancellations whose event is left over
        query = query.where(Booking.status.in_([status] if status else ACTIVE_BOOKING))
    if coordinator:
        # A coordinator's day includes the pop-up days they staff.
        query = query.where(or_(Booking.coordinator_id == coordinator, Booking.popup_day_id.in_(
            select(PopupDay.id).where(PopupDay.coordinator_id == coordinator))))
    if channel:
        query = query.where(Booking.channel == channel)
    if swap:
        query = query.where(Booking.swap_requested_at.is_not(None))
    if refused:
        query = query.where(Booking.calendar_refused)
    with _services().db.unit_of_work() as s:
        rows = s.execute(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
    filters = {key: value for key, value in
               (("coordinator", coordinator), ("status", status), ("channel", channel), ("swap", "1" if swap else ""),
                ("refused", "1" if refused else ""), ("from", since.date().isoformat() if since else "")) if value}
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
                           cancelled_by=CANCELLED_BY_LABELS.get(cancelled_by, cancelled_by),
                           refusal=calendar_refusal(row.booking.calendar_error or "",
                                                    deleting=row.booking.status == "cancelling")), status


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
    if not removed and _refused_now(booking_id):
        message += "ただし、Googleカレンダーが予定の削除を拒否しました。下の説明をご確認ください。"
    elif not removed:
        message += "カレンダーの予定はまだ削除できていません。自動で削除を再試行します。"
    flash(message, "ok")
    return back


@bp.post("/bookings/<int:booking_id>/retry")
def retry_calendar(booking_id: int):
    """Ask the calendar again for a booking it refused for good (once the sharing is fixed); in the audit log.

    A pending booking's event is inserted again; a cancelled booking's event is deleted again.
    """
    services = _services()
    back = redirect(url_for("console.bookings.booking", booking_id=booking_id))
    with services.db.unit_of_work() as s:
        booking = s.get(Booking, booking_id)
        if booking is None:
            return _error(404, "お探しの予約は見つかりませんでした。")
        if not booking.calendar_refused:
            flash("この予約は、カレンダーへの登録を再試行する必要はありません。", "ok")
            return back
        deleting = booking.status == "cancelling"
        audit.record(s, session["staff"]["login"], "change", f"booking:{booking_id}", services.clock.now())
        s.commit()
    if deleting:
        removed = services.bookings.finish_cancel(booking_id)
        refused = None if removed else _refused_now(booking_id)
        log.info("staff %s retried the calendar delete of booking %s (removed: %s)", session["staff"]["id"],
                 booking_id, removed)
        if removed:
            flash("カレンダーの予定を削除し、キャンセルの手続きを終えました。", "ok")
        elif refused:
            flash("カレンダーがまた予定の削除を拒否しました。" + calendar_refusal(refused, deleting=True), "error")
        else:
            flash("Googleカレンダーが一時的に応答しませんでした。自動で削除を再試行します。", "ok")
        return back
    booking = services.bookings.confirm(booking_id)
    log.info("staff %s retried booking %s in the calendar (now %s)", session["staff"]["id"], booking_id,
             booking.status if booking else "waiting for the calendar")
    if booking is None:
        flash("Googleカレンダーが一時的に応答しませんでした。自動で再試行し、登録できしだい利用者に確定をお知らせします。", "ok")
    elif booking.status == "confirmed":
        flash("カレンダーに登録し、予約を確定しました。" + ("利用者に確定のお知らせを送りました。" if booking.user_id else ""), "ok")
    elif booking.status == "pending":
        flash("カレンダーがまた登録を拒否しました。" + calendar_refusal(booking.calendar_error), "error")
    else:
        flash("この予約はキャンセルされています。", "error")
    return back


# --- changing the date (or the coordinator) from the console ------------------------------------------------

@bp.get("/bookings/<int:booking_id>/reschedule")
def reschedule(booking_id: int):
    """Free slots for the booking's method, a week at a time, with its coordinator or another who does that method."""
    return _reschedule_page(booking_id)


@bp.post("/bookings/<int:booking_id>/reschedule")
def move_booking(booking_id: int):
    """Move the booking to the chosen slot, as the user's own change would: the database decides a race."""
    coordinator, _, key = request.form.get("slot", "").partition("|")
    start = parse_slot_key(key)
    services = _services()
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        booking = s.get(Booking, booking_id)
        if booking is None:
            return _error(404, "お探しの予約は見つかりませんでした。")
        refused = _not_movable(booking, now)
        if refused:
            flash(refused, "error")
            return redirect(url_for("console.bookings.booking", booking_id=booking_id))
        reserved = None
        if start is not None and services.config.coordinator(coordinator):
            reserved = services.bookings.reserve(
                s, user_id=booking.user_id, coordinator=coordinator, start=start, method=booking.method, region=None,
                consultation_id=booking.consultation_id, now=now, replaces=booking.id, by="staff",
                reason="スタッフ画面での日時の変更")
        if reserved is not None:
            # The coordinators are told of the booking itself; the case's own coordinator follows it, if it was theirs.
            follow_booking(s, booking.consultation_id, booking.coordinator_id, coordinator,
                           who=session["staff"]["login"], now=now)
            audit.record(s, session["staff"]["login"], "change", f"booking:{booking_id}", now)
            s.commit()
    if reserved is None:  # out of the transaction, which has rolled back: the page reads afresh
        return _reschedule_page(booking_id, error=SLOT_TAKEN, status=409)
    services.delivery.send(reserved.notices)
    moved = services.bookings.finish(reserved)
    emailed = _email_user(reserved.booking.id, reserved.previous)
    log.info("staff %s moved booking %s (now booking %s)", session["staff"]["id"], booking_id, reserved.booking.id)
    message = f"予約を{format_time_range(reserved.booking.start, reserved.booking.end)}に変更しました。"
    message += "利用者にメールでお知らせしました。" if emailed else ""
    if moved is not None and moved.calendar_refused:
        message += "ただし、Googleカレンダーが登録を拒否したため、まだ確定していません。下の説明をご確認ください。"
    elif moved is None or moved.status != "confirmed":
        message += "カレンダーへの登録はまだ済んでいません。自動で再試行し、済みしだい利用者にお知らせします。"
    flash(message, "ok")
    return redirect(url_for("console.bookings.booking", booking_id=reserved.booking.id))


def _not_movable(booking: Booking, now: datetime) -> str:
    if booking.popup_day_id:
        return "出張相談会の予約は、日時を変更できません。キャンセルしてから、別の日程をご案内ください。"
    if booking.status not in ACTIVE_BOOKING or booking.end <= now:
        return "この予約はキャンセル済みか終了しているため、日時を変更できません。"
    return ""


def _reschedule_page(booking_id: int, error: str = "", status: int = 200):
    services = _services()
    config, now = services.config, services.clock.now()
    with services.db.unit_of_work() as s:
        found = s.execute(_bookings_query().where(Booking.id == booking_id)).first()
        if found is None:
            return _error(404, "お探しの予約は見つかりませんでした。")
        row = _booking_row(*found)
        refused = _not_movable(row.booking, now)
        if refused:
            return _error(409, refused)
        chosen = request.args.get("coordinator", "")
        chosen = chosen if config.coordinator(chosen) else ""
        first = max(_date_arg(request.args.get("from", "")) or _today_start(), _today_start())
        # As `dxdesk slots --from`: staff may look past the horizon and inside the minimum notice, not into the past.
        slots = [x for x in services.bookings.free(
            s, start=first, end=first + timedelta(days=RESCHEDULE_DAYS), now=None, method=row.booking.method,
            coordinator=chosen or None, simulated=row.booking.simulated) if x.start > now]
    days = [(format_date(day), [(x, _coordinator_name(x.coordinator), f"{x.coordinator}|{slot_key(x.start)}")
                                for x in day_slots]) for day, day_slots in group_by_day(slots)]
    doing = [c for c in config.coordinators if row.booking.method in c.methods]
    return render_template("console/reschedule.html", row=row, b=row.booking, days=days, error=error,
                           coordinators=doing, chosen=chosen, first=first.date(),
                           earlier=(first - timedelta(days=RESCHEDULE_DAYS)).date() if first > _today_start() else None,
                           later=(first + timedelta(days=RESCHEDULE_DAYS)).date()), status


def _coordinator_name(coordinator_id: str) -> str:
    c = _services().config.coordinator(coordinator_id)
    return c.name if c else coordinator_id


def _email_user(booking_id: int, previous: tuple[datetime, datetime] | None) -> bool:
    """Someone without LINE (a web or email consultation) hears of the new date by email, if an address is on record."""
    services = _services()
    if previous is None or services.delivery.mailer is None:
        return False
    with services.db.unit_of_work() as s:
        booking = s.get(Booking, booking_id)
        c = s.get(Consultation, booking.consultation_id) if booking.consultation_id else None
        if booking.user_id is not None or c is None or not recipients_of(c.email):
            return False
        subject, body = booking_texts.change_email(services.bookings.summary(booking, s=s), previous,
                                                   services.config.program_name, c.contact_name)
        ids = queue_messages(s, "email", c.receipt_no, [email_message(recipients_of(c.email), subject, body)],
                             services.clock.now(), sender="staff")
        s.commit()
    services.delivery.send(ids)
    return True
