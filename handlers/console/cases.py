"""Consultations: the list and one case in full, and moving it on."""

import logging

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from sqlalchemy import select

from bot.intake import FIELD_LABELS, METHODS
from bot.jatime import format_date, format_datetime, to_tokyo
from bot.menu import STATUS_LABELS
from handlers.console.bookings import _booking_row, _bookings_query
from handlers.console.common import CHANNEL_LABELS, PAGE_SIZE, REGION_NAMES, _error, _page_number, _services, audited
from storage import audit
from storage.models import Booking, Consultation
from storage.privacy import purge_date

log = logging.getLogger(__name__)

bp = Blueprint("cases", __name__)

@bp.get("/consultations")
def consultations():
    """Consultations, newest first, by status and category; simulated ones only when asked for."""
    config = _services().config
    status = request.args.get("status", "")
    status = status if status in STATUS_LABELS else ""
    category = request.args.get("category", "")
    category = category if category in {c.id for c in config.categories} else ""
    simulated = request.args.get("simulated") == "1"
    page = _page_number()
    query = select(Consultation).order_by(Consultation.received_at.desc(), Consultation.id.desc())
    if status:
        query = query.where(Consultation.status == status)
    if category:
        query = query.where(Consultation.category == category)
    if not simulated:
        query = query.where(Consultation.simulated.is_(False))
    with _services().db.unit_of_work() as s:
        rows = s.scalars(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
    filters = {key: value for key, value in
               (("status", status), ("category", category), ("simulated", "1" if simulated else "")) if value}
    return render_template("console/consultations.html", rows=rows[:PAGE_SIZE], has_next=len(rows) > PAGE_SIZE,
                           page=page, filters=filters, categories=config.categories)


@bp.get("/consultations/<int:consultation_id>")
def consultation(consultation_id: int):
    """One consultation in full, its bookings, and the form that moves its status on."""
    with _services().db.unit_of_work() as s:
        c = s.get(Consultation, consultation_id)
        booked = s.execute(_bookings_query().where(Booking.consultation_id == consultation_id)
                           .order_by(Booking.start.desc(), Booking.id.desc())).all()
    if c is None:
        return _error(404, "お探しの相談は見つかりませんでした。")
    audited("view", f"consultation:{consultation_id}")
    return render_template("console/consultation.html", c=c, fields=_consultation_fields(c),
                           bookings=[_booking_row(*row) for row in booked], purge_note=_purge_note(c))


def _purge_note(c: Consultation) -> str:
    """When this case's personal data will be purged (storage/privacy.purge), as the console says it."""
    months = _services().config.privacy.retention_months
    if c.company == "（削除済み）":
        return "この相談の個人情報は削除済みです（集計用の項目だけが残っています）。"
    when = format_date(to_tokyo(purge_date(c, months)).date())
    if c.status == "closed":
        return f"この相談の個人情報は{when}に削除されます（受付から{months}か月、対応完了の相談）。"
    return f"対応完了にすると、受付から{months}か月後（{when}）に個人情報が削除されます。"


def _consultation_fields(c: Consultation) -> list[tuple[str, str]]:
    config = _services().config
    municipality = c.municipality or ""
    if c.region in REGION_NAMES:
        municipality += f"（{REGION_NAMES[c.region]}）"
    channel = CHANNEL_LABELS.get(c.channel, c.channel) + ("（シミュレーター）" if c.simulated else "")
    return [
        ("受付番号", c.receipt_no), ("受付日時", format_datetime(c.received_at)), ("受付経路", channel),
        ("状態", STATUS_LABELS.get(c.status, c.status)), (FIELD_LABELS["category"], config.category(c.category).name),
        ("自動判定（参考）", _model_guess(c)), (FIELD_LABELS["method"], METHODS.get(c.method, c.method)),
        (FIELD_LABELS["company"], c.company), (FIELD_LABELS["industry"], c.industry or ""),
        (FIELD_LABELS["employees"], c.employees or ""), (FIELD_LABELS["municipality"], municipality),
        (FIELD_LABELS["contact_name"], c.contact_name or ""), (FIELD_LABELS["phone"], c.phone or ""),
        (FIELD_LABELS["email"], c.email or ""),
    ]


def _model_guess(c: Consultation) -> str:
    """The triage model's guess, labelled as such: the category above is the one the user chose."""
    if c.confidence is None and not c.suggested_category and not c.keywords:
        return ""
    guess = (f"「{_services().config.category(c.suggested_category).name}」と推定" if c.suggested_category
             else "推定した分野は記録されていません")  # rows from before the guess was kept
    details = [f"確からしさ {c.confidence:.0%}"] if c.confidence is not None else []
    if c.keywords:
        details.append(f"手がかりの語 {'、'.join(f'「{k}」' for k in c.keywords)}")
    note = "。利用者の選んだ分野と同じです" if c.suggested_category == c.category else ""
    return f"{guess}（{'、'.join(details)}）{note}" if details else guess + note


@bp.post("/consultations/<int:consultation_id>/status")
def change_status(consultation_id: int):
    """Move a consultation to received, in progress or closed."""
    status = request.form.get("status", "")
    back = redirect(url_for("console.cases.consultation", consultation_id=consultation_id))
    if status not in STATUS_LABELS:
        flash("状態を選んでから変更してください。", "error")
        return back
    with _services().db.unit_of_work() as s:
        c = s.get(Consultation, consultation_id)
        if c is None:
            return _error(404, "お探しの相談は見つかりませんでした。")
        c.status = status
        audit.record(s, session["staff"]["login"], "change", f"consultation:{consultation_id}",
                     _services().clock.now())
        s.commit()
    log.info("staff %s set consultation %s to %s", session["staff"]["id"], consultation_id, status)
    flash(f"状態を「{STATUS_LABELS[status]}」に変更しました。", "ok")
    return back

