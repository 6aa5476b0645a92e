"""Consultations as cases: the list with its search and filters, one case in full with its history, and the work
done on it (status, 対応記録, referrals to partners, corrected profile fields). Personal data throughout: staff
who act only; a viewer's account sees the aggregates on the dashboard and in the reports."""

import logging
from datetime import datetime, timedelta

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from sqlalchemy import select

from bot.intake import EMPLOYEES, FIELD_LABELS, INDUSTRIES, METHODS, profile_value
from bot.jatime import format_date, format_datetime, to_tokyo
from bot.menu import STATUS_LABELS
from handlers.console.bookings import _booking_row, _bookings_query
from handlers.console.common import (
    ACTING_ROLES, CHANNEL_LABELS, PAGE_SIZE, REGION_NAMES, _date_arg, _error, _form_text, _page_number, _services,
    audited,
)
from storage import audit, cases
from storage.models import REFERRAL_OUTCOMES, Booking, CaseEvent, CaseNote, Consultation, Referral, StaffUser
from storage.privacy import ERASED, purge_date

log = logging.getLogger(__name__)

bp = Blueprint("cases", __name__)

MAX_NOTE = 4000
MAX_REFERRAL_NOTE = 1000
MAX_QUERY = 200
ORIGIN_LABELS = {"menu": "LINEの相談メニュー", "web": "Webフォーム", "seminar": "セミナーのアンケート", "popup": "出張相談会"}
OUTCOME_LABELS = dict(zip(REFERRAL_OUTCOMES, ("紹介済み", "支援開始", "見送り", "支援完了"), strict=True))
NOT_FOUND = "お探しの相談は見つかりませんでした。"


@bp.before_request
def acting_staff_only():
    """Every page here shows personal data: a viewer's account is refused, whatever it asks for."""
    if session["staff"]["role"] not in ACTING_ROLES:
        return _error(403, "閲覧のみのアカウントでは、個人情報を含む相談の一覧や内容は表示できません。"
                           "相談件数などの集計はホームと報告書でご覧いただけます。")
    return None


# --- the list -------------------------------------------------------------------------------------------------

@bp.get("/consultations")
def consultations():
    """Consultations, newest first, found by receipt number or text and narrowed by the filters; 自分の担当 with mine=1."""
    filters, shown, problem = _filters()
    page = _page_number()
    found, in_charge = None, {}
    if problem is None:
        with _services().db.unit_of_work() as s:
            found = cases.search(s, filters, page, PAGE_SIZE)
            in_charge = cases.coordinators_of(s, found.rows)
    config = _services().config
    return render_template(
        "console/consultations.html", found=found, in_charge=in_charge, page=page, filters=shown,
        problem=problem[1] if problem else None, problem_kind="error" if problem and problem[0] == 400 else "attention",
        category_options=[(c.id, c.name) for c in config.categories], origin_labels=ORIGIN_LABELS,
        coordinator_options=[(c.id, c.name) for c in config.coordinators],
        coordinator_name=_coordinator_name), problem[0] if problem else 200


def _filters() -> tuple[cases.Filters, dict, tuple[int, str] | None]:
    """The filters asked for: unknown values are dropped, as a stale link's would be; a wrong date range (400) or
    自分の担当 for a login that is no coordinator (200) is a message to show instead of the list."""
    config, args = _services().config, request.args

    def choice(name: str, allowed) -> str:
        value = args.get(name, "")
        return value if value in allowed else ""

    shown = {"q": args.get("q", "").replace("\x00", "").strip()[:MAX_QUERY],
             "status": choice("status", STATUS_LABELS), "category": choice("category", {c.id for c in config.categories}),
             "region": choice("region", REGION_NAMES), "method": choice("method", METHODS),
             "coordinator": choice("coordinator", {c.id for c in config.coordinators}),
             "channel": choice("channel", CHANNEL_LABELS), "origin": choice("origin", ORIGIN_LABELS),
             "from": args.get("from", "").strip(), "to": args.get("to", "").strip(),
             "simulated": "1" if args.get("simulated") == "1" else "", "mine": "1" if args.get("mine") == "1" else ""}
    since, until, wrong_dates = _received_between(shown["from"], shown["to"])
    problem = (400, wrong_dates) if wrong_dates else None
    coordinator = shown["coordinator"]
    if shown["mine"]:
        coordinator = _my_coordinator()
        if not coordinator:
            problem = problem or (200, "このログインはコーディネーターと結び付けられていないため、「自分の担当」を表示できません。"
                                  "管理者に、コマンド dxdesk users link でコーディネーターIDとの結び付けを依頼してください。"
                                  "「すべての相談」からは、これまでどおり探せます。")
    filters = cases.Filters(
        q=shown["q"], status=shown["status"], category=shown["category"], region=shown["region"], method=shown["method"],
        coordinator=coordinator or "", channel=shown["channel"], origin=shown["origin"], since=since, until=until,
        simulated=bool(shown["simulated"]))
    return filters, {key: value for key, value in shown.items() if value}, problem


def _received_between(first: str, last: str) -> tuple[datetime | None, datetime | None, str | None]:
    """The period [first day's start, the day after the last) in Tokyo, or what is wrong with the dates typed."""
    since, until = _date_arg(first), _date_arg(last)
    if first and since is None or last and until is None:
        return None, None, "期間の日付は 2026-11-01 のように、年-月-日で入力してください。"
    if since and until and since > until:
        return None, None, "期間の開始日が終了日より後になっています。開始日と終了日を確かめてください。"
    return since, until + timedelta(days=1) if until else None, None


def _my_coordinator() -> str | None:
    """The [[coordinators]] id of the signed-in login, read afresh: a link made since sign-in counts at once."""
    with _services().db.unit_of_work() as s:
        coordinator_id = s.scalar(select(StaffUser.coordinator_id).where(StaffUser.id == session["staff"]["id"]))
    return coordinator_id if coordinator_id and _services().config.coordinator(coordinator_id) else None


def _coordinator_name(coordinator_id: str | None) -> str:
    found = _services().config.coordinator(coordinator_id) if coordinator_id else None
    return found.name if found else (coordinator_id or "")


# --- one case -------------------------------------------------------------------------------------------------

@bp.get("/consultations/<int:consultation_id>")
def consultation(consultation_id: int):
    """One consultation in full: its fields, bookings, history, and the forms that work on it."""
    return _case_page(consultation_id)


def _case_page(consultation_id: int, status: int = 200, **form):
    """The case page; `form` keeps what was typed into a refused form (its draft and the reason), to try again."""
    with _services().db.unit_of_work() as s:
        c = s.get(Consultation, consultation_id)
        if c is None:
            return _error(404, NOT_FOUND)
        booked = s.execute(_bookings_query().where(Booking.consultation_id == consultation_id)
                           .order_by(Booking.start.desc(), Booking.id.desc())).all()
        referrals = cases.referrals(s, consultation_id)
        history = _history_rows(cases.history(s, consultation_id), {r.id: r for r in referrals})
        in_charge = cases.coordinators_of(s, [c]).get(c.id)
    audited("view", f"consultation:{consultation_id}")
    config = _services().config
    return render_template(
        "console/consultation.html", c=c, fields=_consultation_fields(c, in_charge),
        bookings=[_booking_row(*row) for row in booked], purge_note=_purge_note(c), history=history,
        referrals=referrals, partners=config.partners, partner_name=_partner_name, outcome_labels=OUTCOME_LABELS,
        correctable={f: FIELD_LABELS[f] for f in cases.CORRECTABLE}, industries=INDUSTRIES,
        employees=[label for label, _, _ in EMPLOYEES], max_note=MAX_NOTE, max_referral_note=MAX_REFERRAL_NOTE,
        form=form), status


def _purge_note(c: Consultation) -> str:
    """When this case's personal data will be purged (storage/privacy.purge), as the console says it."""
    months = _services().config.privacy.retention_months
    if c.company == ERASED:
        return "この相談の個人情報は削除済みです（集計用の項目だけが残っています）。"
    when = format_date(to_tokyo(purge_date(c, months)).date())
    if c.status in cases.CLOSED_STATUSES:
        return f"この相談の個人情報は{when}に削除されます（受付から{months}か月、完了・フォローアップの相談）。"
    return f"完了かフォローアップにすると、受付から{months}か月後（{when}）に個人情報が削除されます。"


def _consultation_fields(c: Consultation, in_charge: str | None) -> list[tuple[str, str]]:
    config = _services().config
    municipality = c.municipality or ""
    if c.region in REGION_NAMES:
        municipality += f"（{REGION_NAMES[c.region]}）"
    channel = CHANNEL_LABELS.get(c.channel, c.channel) + ("（シミュレーター）" if c.simulated else "")
    return [
        ("受付番号", c.receipt_no), ("受付日時", format_datetime(c.received_at)), ("受付経路", channel),
        ("状態", STATUS_LABELS.get(c.status, c.status)), ("担当コーディネーター", _coordinator_name(in_charge)),
        (FIELD_LABELS["category"], config.category(c.category).name),
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


def _partner_name(partner_id: str) -> str:
    return next((p.name for p in _services().config.partners if p.id == partner_id), partner_id)


def _history_rows(items: list, referrals: dict[int, Referral]) -> list[dict]:
    """The case's history as the page says it: when, who, what, and the detail (old → new, or the note)."""
    rows = []
    for item in items:
        if isinstance(item, CaseNote):
            rows.append({"at": item.at, "who": item.author, "what": "対応記録", "detail": item.text, "note": True})
        elif isinstance(item, Referral):
            rows.append({"at": item.referred_at, "who": item.referred_by, "what": f"{_partner_name(item.partner_id)}に紹介",
                         "detail": ""})
        else:
            rows.append({"at": item.at, "who": item.who, **_event_text(item, referrals)})
    return rows


def _event_text(e: CaseEvent, referrals: dict[int, Referral]) -> dict:
    if e.kind == "status":
        return {"what": f"状態: {STATUS_LABELS.get(e.old, e.old)} → {STATUS_LABELS.get(e.new, e.new)}", "detail": ""}
    if e.kind == "field":
        cleared = e.old is None and e.new is None  # erased or purged with the rest of the person's data
        return {"what": f"{FIELD_LABELS.get(e.field, e.field)}を訂正",
                "detail": "（個人情報のため削除済み）" if cleared else f"{e.old or '（空欄）'} → {e.new or '（空欄）'}"}
    if e.kind == "referral":
        referral = referrals.get(int(e.field)) if (e.field or "").isdecimal() else None
        partner = _partner_name(referral.partner_id) if referral else "紹介先"
        return {"what": f"{partner}の結果: {OUTCOME_LABELS.get(e.old, e.old)} → {OUTCOME_LABELS.get(e.new, e.new)}",
                "detail": ""}
    if e.kind == "assign":
        return {"what": f"担当: {_coordinator_name(e.old) or '（なし）'} → {_coordinator_name(e.new) or '（なし）'}",
                "detail": ""}
    return {"what": e.kind, "detail": ""}


# --- work on a case -------------------------------------------------------------------------------------------

def _back(consultation_id: int, anchor: str = ""):
    return redirect(url_for("console.cases.consultation", consultation_id=consultation_id) + anchor)


def _changed(s, consultation_id: int) -> None:
    """Every change to a case is in the audit log, committed with the change."""
    audit.record(s, session["staff"]["login"], "change", f"consultation:{consultation_id}", _services().clock.now())


@bp.post("/consultations/<int:consultation_id>/status")
def change_status(consultation_id: int):
    """Move a consultation to any status; the move is kept in its history."""
    status = request.form.get("status", "")
    if status not in STATUS_LABELS:
        flash("状態を選んでから変更してください。", "error")
        return _back(consultation_id)
    with _services().db.unit_of_work() as s:
        c = s.get(Consultation, consultation_id)
        if c is None:
            return _error(404, NOT_FOUND)
        if not cases.set_status(s, c, status, session["staff"]["login"], _services().clock.now()):
            flash(f"状態はすでに「{STATUS_LABELS[status]}」です。", "ok")
            return _back(consultation_id)
        _changed(s, consultation_id)
        s.commit()
    log.info("staff %s set consultation %s to %s", session["staff"]["id"], consultation_id, status)
    flash(f"状態を「{STATUS_LABELS[status]}」に変更しました。", "ok")
    return _back(consultation_id)


@bp.post("/consultations/<int:consultation_id>/notes")
def add_note(consultation_id: int):
    """Write a 対応記録 on the case; a refused one comes back in the form, as typed."""
    text = _form_text("text")
    problem = ("対応記録を入力してください。" if not text else
               f"対応記録は{MAX_NOTE}文字以内で入力してください（いま{len(text)}文字です）。" if len(text) > MAX_NOTE else None)
    if problem:
        return _case_page(consultation_id, 400, note_draft=text, note_error=problem)
    with _services().db.unit_of_work() as s:
        c = s.get(Consultation, consultation_id)
        if c is None:
            return _error(404, NOT_FOUND)
        cases.add_note(s, c, text, session["staff"]["login"], _services().clock.now())
        _changed(s, consultation_id)
        s.commit()
    log.info("staff %s wrote a note on consultation %s", session["staff"]["id"], consultation_id)
    flash("対応記録を保存しました。", "ok")
    return _back(consultation_id, "#history")


@bp.post("/consultations/<int:consultation_id>/referrals")
def refer(consultation_id: int):
    """Refer the case to a partner institution of the configuration."""
    partner, note = request.form.get("partner", ""), _form_text("note")
    problem = ("紹介先を選んでください。" if partner not in {p.id for p in _services().config.partners} else
               _referral_note_problem(note))
    if problem:
        return _case_page(consultation_id, 400, refer_partner=partner, refer_note=note, refer_error=problem)
    with _services().db.unit_of_work() as s:
        c = s.get(Consultation, consultation_id)
        if c is None:
            return _error(404, NOT_FOUND)
        cases.refer(s, c, partner, note, session["staff"]["login"], _services().clock.now())
        _changed(s, consultation_id)
        s.commit()
    log.info("staff %s referred consultation %s to %s", session["staff"]["id"], consultation_id, partner)
    flash(f"{_partner_name(partner)}への紹介を記録しました。", "ok")
    return _back(consultation_id, "#referrals")


def _referral_note_problem(note: str) -> str | None:
    if len(note) > MAX_REFERRAL_NOTE:
        return f"メモは{MAX_REFERRAL_NOTE}文字以内で入力してください（いま{len(note)}文字です）。"
    return None


@bp.post("/consultations/<int:consultation_id>/referrals/<int:referral_id>")
def referral_outcome(consultation_id: int, referral_id: int):
    """Record what came of a referral (and its note); a changed outcome is kept in the history."""
    outcome, note = request.form.get("outcome", ""), _form_text("note")
    problem = "結果を選んでください。" if outcome not in OUTCOME_LABELS else _referral_note_problem(note)
    with _services().db.unit_of_work() as s:
        referral = cases.referral_of(s, consultation_id, referral_id)
        if referral is None:
            return _error(404, "お探しの紹介の記録は見つかりませんでした。")
        if problem is None:
            cases.set_referral_outcome(s, referral, outcome, note, session["staff"]["login"], _services().clock.now())
            _changed(s, consultation_id)
            s.commit()
    if problem:
        return _case_page(consultation_id, 400, outcome_for=referral_id, outcome_note=note, outcome_error=problem)
    log.info("staff %s set referral %s to %s", session["staff"]["id"], referral_id, outcome)
    flash(f"紹介の結果を「{OUTCOME_LABELS[outcome]}」として記録しました。", "ok")
    return _back(consultation_id, "#referrals")


@bp.post("/consultations/<int:consultation_id>/fields")
def correct_field(consultation_id: int):
    """Put right a profile field entered wrongly, checked as the LINE intake checks it; kept in the history."""
    field, value = request.form.get("field", ""), _form_text("value")
    if field not in cases.CORRECTABLE:
        return _case_page(consultation_id, 400, fix_value=value, fix_error="訂正する項目を選んでください。")
    values, problem = profile_value(field, value)
    if problem:
        return _case_page(consultation_id, 400, fix_field=field, fix_value=value, fix_error=problem)
    with _services().db.unit_of_work() as s:
        c = s.get(Consultation, consultation_id)
        if c is None:
            return _error(404, NOT_FOUND)
        if c.company == ERASED:
            return _case_page(consultation_id, 400, fix_field=field, fix_value=value,
                              fix_error="個人情報を削除した相談のため、登録内容は訂正できません。")
        if not cases.correct_field(s, c, values, session["staff"]["login"], _services().clock.now()):
            flash(f"{FIELD_LABELS[field]}は、すでにその内容です。", "ok")
            return _back(consultation_id)
        _changed(s, consultation_id)
        s.commit()
    log.info("staff %s corrected %s of consultation %s", session["staff"]["id"], field, consultation_id)
    flash(f"{FIELD_LABELS[field]}を訂正しました（履歴に残ります）。", "ok")
    return _back(consultation_id, "#history")
