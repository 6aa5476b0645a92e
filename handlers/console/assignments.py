"""Assigning a case to a coordinator from its page (the form is console/_assign.html, included there)."""

import logging

from flask import Blueprint, flash, redirect, request, session, url_for

from bot.jatime import format_time_range
from handlers.console.common import _error, _services
from scheduling.assignment import assign
from storage import audit

log = logging.getLogger(__name__)

bp = Blueprint("assignments", __name__)


def helpers() -> dict:
    """What the assignment form needs on any page that includes it."""
    coordinators = _services().config.coordinators
    return {"assignable": coordinators, "coordinator_name": lambda cid: next(
        (c.name for c in coordinators if c.id == cid), cid or "")}


@bp.post("/consultations/<int:consultation_id>/assign")
def assign_coordinator(consultation_id: int):
    """Put a coordinator in charge; the coming booking goes with them when they are free then; everyone concerned told."""
    services = _services()
    back = redirect(url_for("console.cases.consultation", consultation_id=consultation_id))
    chosen = services.config.coordinator(request.form.get("coordinator", ""))
    if chosen is None:
        flash("担当にするコーディネーターを一覧から選んでください。", "error")
        return back
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        done = assign(s, services.bookings, consultation_id, chosen.id, who=session["staff"]["login"], now=now)
        if done is None:
            return _error(404, "お探しの相談は見つかりませんでした。")
        if not done.changed:
            flash(f"この相談の担当は、すでに{chosen.name}です。", "ok")
            return back
        audit.record(s, session["staff"]["login"], "change", f"consultation:{consultation_id}", now)
        s.commit()
    services.delivery.send(done.notices)
    log.info("staff %s assigned consultation %s to %s", session["staff"]["id"], consultation_id, chosen.id)
    if done.moved is not None:
        confirmed = services.bookings.finish(done.moved, reassigned=True)
        message = (f"担当を{chosen.name}に変更しました。ご予約も{chosen.name}の予定に移し、"
                   "利用者と前後の担当者にお知らせしました。")
        if confirmed is None or confirmed.status != "confirmed":
            message += "カレンダーへの登録はまだ済んでいません。自動で再試行します。"
        flash(message, "ok")
    elif done.kept is not None:
        flash(f"担当を{chosen.name}に変更しました。ただし、{chosen.name}はご予約の時間"
              f"（{format_time_range(done.kept.start, done.kept.end)}）に空きがないか、この相談方法を担当していないため、"
              "ご予約は前の担当者のままです。日時の変更画面から、別の日時か担当者に移してください。", "error")
        return redirect(url_for("console.bookings.reschedule", booking_id=done.kept.id, coordinator=chosen.id))
    else:
        flash(f"担当を{chosen.name}に変更しました。担当者にお知らせしました。", "ok")
    return back
