"""Pop-up consultation days (出張相談会): seats per slot, adding and calling off a day."""

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import Blueprint, flash, redirect, render_template, session, url_for
from sqlalchemy import func, select

from bot.jatime import TOKYO, format_clock, format_date, to_tokyo
from bot.municipalities import REGIONS
from handlers.console.bookings import BookingRow, _booking_row, _bookings_query
from handlers.console.common import MAX_REASON, _error, _form_text, _services
from scheduling import popup
from storage.models import ACTIVE_BOOKING, Booking, PopupDay

log = logging.getLogger(__name__)

bp = Blueprint("popup", __name__)

PAST_POPUP_DAYS = 30
POPUP_FIELDS = ("date", "region", "venue", "address", "start", "end", "slot_minutes", "capacity", "coordinator", "note")
POPUP_DEFAULTS = {"start": "10:00", "end": "16:00", "slot_minutes": "60", "capacity": "1"}


@dataclass(frozen=True)
class SlotSeats:
    start: datetime
    end: datetime
    taken: int
    capacity: int

    @property
    def free(self) -> int:
        return max(self.capacity - self.taken, 0)


@dataclass(frozen=True)
class PopupDayView:
    day: PopupDay
    slots: list[SlotSeats]
    bookings: list[BookingRow]  # active ones, listed when the day is cancelled: those users must be contacted
    coordinator: str


@bp.get("/popup")
def popup_days():
    """The pop-up days, upcoming first then past, each slot with its seats; and the form to add a day."""
    return _popup_page()


def _popup_page(form: dict | None = None, error: str = "", status: int = 200):
    services = _services()
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        upcoming = s.scalars(select(PopupDay).where(PopupDay.end_at > now)
                             .order_by(PopupDay.start_at, PopupDay.id)).all()
        past = s.scalars(select(PopupDay).where(PopupDay.end_at <= now)
                         .order_by(PopupDay.start_at.desc(), PopupDay.id.desc()).limit(PAST_POPUP_DAYS)).all()
        booked = s.execute(_bookings_query().where(
            Booking.popup_day_id.in_([d.id for d in (*upcoming, *past)]), Booking.status.in_(ACTIVE_BOOKING))
            .order_by(Booking.start, Booking.id)).all()
    rows = [_booking_row(*row) for row in booked]
    return render_template("console/popup.html", upcoming=[_popup_view(d, rows) for d in upcoming],
                           past=[_popup_view(d, rows) for d in past], form=form or POPUP_DEFAULTS, error=error,
                           regions=REGIONS, coordinators=services.config.coordinators,
                           today=to_tokyo(now).date().isoformat(),
                           clock=lambda moment: format_clock(to_tokyo(moment).time())), status


def _popup_view(day: PopupDay, rows: list[BookingRow]) -> PopupDayView:
    mine = [row for row in rows if row.booking.popup_day_id == day.id]
    taken = Counter(row.booking.start for row in mine)
    length = timedelta(minutes=day.slot_minutes)
    coordinator = _services().config.coordinator(day.coordinator_id) if day.coordinator_id else None
    return PopupDayView(day, [SlotSeats(t, t + length, taken[t], day.capacity) for t in popup.slot_starts(day)],
                        mine if day.status == "cancelled" else [],
                        coordinator.name if coordinator else day.coordinator_id or "")


@bp.post("/popup")
def add_popup_day():
    """Add a pop-up day; what cannot work is explained and the form keeps what was typed."""
    form = {name: _form_text(name) for name in POPUP_FIELDS}
    services = _services()
    now = services.clock.now()
    try:
        values = _popup_values(form, now)
        with services.db.unit_of_work() as s:
            day = popup.add_day(s, **values, now=now, config=services.config)
            s.commit()
    except ValueError as exc:
        return _popup_page(form, str(exc).rstrip("。"), 400)
    log.info("staff %s added pop-up day %s", session["staff"]["id"], day.id)
    flash(f"{format_date(to_tokyo(day.start_at).date())}の出張相談会を登録しました。LINEでの受付を始めます。", "ok")
    return redirect(url_for("console.popup.popup_days", _anchor=f"day-{day.id}"))


def _popup_values(form: dict, now: datetime) -> dict:
    """The form as add_day's arguments; ValueError with a Japanese reason for what add_day cannot judge."""
    try:
        day = date.fromisoformat(form["date"])
    except ValueError:
        raise ValueError("開催日を選んでください") from None
    try:
        start, end = time.fromisoformat(form["start"]), time.fromisoformat(form["end"])
    except ValueError:
        raise ValueError("開始時刻と終了時刻を「10:00」の形で入れてください") from None
    try:
        slot_minutes, capacity = int(form["slot_minutes"]), int(form["capacity"])
    except ValueError:
        raise ValueError("1枠の長さ（分）と同時に受けられる人数は、数字で入れてください") from None
    if slot_minutes > 24 * 60:  # beyond a day it cannot fit, and a huge number would overflow timedelta
        raise ValueError("1枠の長さは、開始から終了までの時間に収まるようにしてください")
    start_at, end_at = datetime.combine(day, start, TOKYO), datetime.combine(day, end, TOKYO)
    if start_at <= now:
        raise ValueError("過去の日時には登録できません。開催日と開始時刻をご確認ください")
    for name, label, limit in (("venue", "会場名", 200), ("address", "住所", 300), ("note", "備考", MAX_REASON)):
        if len(form[name]) > limit:
            raise ValueError(f"{label}は{limit}文字以内で入れてください")
    return {"region": form["region"], "venue": form["venue"], "address": form["address"] or None,
            "start_at": start_at, "end_at": end_at, "slot_minutes": slot_minutes, "capacity": capacity,
            "coordinator_id": form["coordinator"] or None, "note": form["note"] or None}


@bp.post("/popup/<int:day_id>/cancel")
def cancel_popup_day(day_id: int):
    """Call a day off: the bot stops offering it; bookings already made stay, for staff to contact each user."""
    services = _services()
    with services.db.unit_of_work() as s:
        day = s.get(PopupDay, day_id, with_for_update=True)
        if day is None:
            return _error(404, "お探しの出張相談会は見つかりませんでした。")
        if day.status == "cancelled":
            flash("この出張相談会はすでに中止になっています。", "ok")
            return redirect(url_for("console.popup.popup_days", _anchor=f"day-{day_id}"))
        day.status = "cancelled"
        booked = s.scalar(select(func.count()).select_from(Booking).where(
            Booking.popup_day_id == day_id, Booking.status.in_(ACTIVE_BOOKING)))
        s.commit()
    log.info("staff %s cancelled pop-up day %s (%s bookings stay)", session["staff"]["id"], day_id, booked)
    message = "出張相談会を中止にしました。LINEでの受付も止めました。"
    if booked:
        message += f"すでに{booked}件の予約があります。下の一覧の方へ個別にご連絡ください。"
    flash(message, "ok")
    return redirect(url_for("console.popup.popup_days", _anchor=f"day-{day_id}"))

