"""The console's seminars: list with seats, create, edit, one seminar's registrations, attendance and check-in."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import io
import tempfile
from pathlib import Path

from flask import Blueprint, flash, redirect, render_template, request, send_file, session, url_for

from bot.jatime import TOKYO, to_tokyo
from handlers.console.common import _error, _form_text, _services, refuse_viewers
from bot.intake import INDUSTRIES
from bot.municipalities import REGIONS
from handlers.survey_files import write
from scheduling import announcements
from scheduling.seminars import fill_freed_seats
from storage import seminars, surveys
from storage.models import SEMINAR_MODES, Seminar, SeminarRegistration

log = logging.getLogger(__name__)

bp = Blueprint("seminars", __name__)
# A viewer sees the seminars, their seats and counts (the registrants' names left out) and the forms it cannot send,
# not the check-in pages nor the survey files with their free texts.
bp.before_request(refuse_viewers("このページには申し込まれた方のお名前やアンケートの自由記述が含まれるため、閲覧専用のアカウントでは"
                                 "ご覧いただけません。席数や申込数はセミナーのページでご覧いただけます。",
                                 allow=tuple(f"console.seminars.{view}" for view in (
                                     "seminars_list", "seminar", "new_seminar", "edit_seminar", "announce_form"))))

MODE_LABELS = {"onsite": "会場", "online": "オンライン"}
REGISTRATION_LABELS = {"registered": "申込済み", "waiting": "キャンセル待ち", "cancelled": "キャンセル", "attended": "出席"}
FORM_FIELDS = ("title", "description", "start", "end", "venue", "online_url", "onsite_seats", "online_seats",
               "deadline", "survey_id")
MAX_DESCRIPTION = 2000
NOT_FOUND = "お探しのセミナーは見つかりませんでした。一覧からお選びください。"


@dataclass(frozen=True)
class Row:
    registration: SeminarRegistration
    waiting_position: int | None


def _labels() -> dict:
    return {"mode_labels": MODE_LABELS, "registration_labels": REGISTRATION_LABELS, "modes": SEMINAR_MODES}


@bp.get("/seminars")
def seminars_list():
    """Every seminar with its seats taken and left per mode and its waiting list."""
    with _services().db.unit_of_work() as s:
        rows = seminars.listing(s)
    return render_template("console/seminars.html", rows=rows, now=_services().clock.now(), **_labels())


@bp.get("/seminars/new")
def new_seminar():
    """The form for a new seminar (かごゆいテラス unless another venue is typed)."""
    return _form_page(None, {"venue": seminars.DEFAULT_VENUE, "onsite_seats": "30", "online_seats": "60"})


@bp.post("/seminars")
def add_seminar():
    """Create a seminar; what cannot work is explained and the form keeps what was typed."""
    form = _typed()
    services = _services()
    now = services.clock.now()
    try:
        values = _values(form)
        seminars.validate(**_checked(values), now=now, survey_ids=seminars.configured_survey_ids(services.config))
        with services.db.unit_of_work() as s:
            seminar = seminars.create(s, **_with_venue(values), now=now)
            s.commit()
    except ValueError as exc:
        return _form_page(None, form, str(exc), 400)
    log.info("staff %s added seminar %s", session["staff"]["id"], seminar.id)
    flash(f"セミナー「{seminar.title}」を登録しました。", "ok")
    return redirect(url_for("console.seminars.seminar", seminar_id=seminar.id))


@bp.get("/seminars/<int:seminar_id>/edit")
def edit_seminar(seminar_id: int):
    """The form filled with the seminar as it is."""
    with _services().db.unit_of_work() as s:
        seminar = s.get(Seminar, seminar_id)
    if seminar is None:
        return _error(404, NOT_FOUND)
    return _form_page(seminar, _as_form(seminar))


@bp.post("/seminars/<int:seminar_id>")
def change_seminar(seminar_id: int):
    """Save an edit; a capacity below the seats already taken is refused with the number."""
    form = _typed()
    services = _services()
    with services.db.unit_of_work() as s:
        seminar = s.get(Seminar, seminar_id, with_for_update=True)
        if seminar is None:
            return _error(404, NOT_FOUND)
        try:
            values = _values(form)
            if values["venue"] != seminar.venue:
                values |= _venue_of(values["venue"])
            seminars.update(s, seminar, now=services.clock.now(),
                            survey_ids=seminars.configured_survey_ids(services.config), **_editable(values))
            fill_freed_seats(s, seminar, now=services.clock.now(), public_url=services.settings.public_base_url)
        except ValueError as exc:
            return _form_page(seminar, form, str(exc), 400)
        s.commit()
    log.info("staff %s edited seminar %s", session["staff"]["id"], seminar_id)
    flash("セミナーの内容を保存しました。", "ok")
    return redirect(url_for("console.seminars.seminar", seminar_id=seminar_id))


@bp.get("/seminars/<int:seminar_id>")
def seminar(seminar_id: int):
    """One seminar and its registrations: company, name, mode, status, place on the waiting list, check-in."""
    with _services().db.unit_of_work() as s:
        found = s.get(Seminar, seminar_id)
        if found is None:
            return _error(404, NOT_FOUND)
        seats = seminars.seats(s, [seminar_id])[seminar_id]
        places = {r.id: n for mode in SEMINAR_MODES
                  for n, r in enumerate(seminars.waiting_list(s, seminar_id, mode), start=1)}
        rows = [Row(r, places.get(r.id)) for r in seminars.registrations(s, seminar_id)]
        survey = _services().config.survey(found.survey_id)
        answers = surveys.results(s, seminar_id, survey) if survey else None
    return render_template("console/seminar.html", seminar=found, seats=seats, rows=rows, survey=survey,
                           answers=answers, **_labels())


@bp.get("/seminars/<int:seminar_id>/survey.<any(csv, xlsx):kind>")
def survey_results(seminar_id: int, kind: str):
    """The survey's results as a file (no names in it: answers are counted and free texts listed)."""
    with _services().db.unit_of_work() as s:
        found = s.get(Seminar, seminar_id)
        survey = _services().config.survey(found.survey_id) if found else None
        if survey is None:
            return _error(404, NOT_FOUND)
        responses, _, questions = surveys.results(s, seminar_id, survey)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / f"survey.{kind}"
        write(questions, f"{found.title} アンケート結果（回答 {responses}件）", out)
        data = out.read_bytes()
    log.info("survey results of seminar %s downloaded as %s by staff %s", seminar_id, kind, session["staff"]["id"])
    return send_file(io.BytesIO(data), as_attachment=True, download_name=f"seminar-{seminar_id}-survey.{kind}",
                     mimetype="text/csv" if kind == "csv" else
                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@bp.post("/seminars/<int:seminar_id>/registrations/<int:registration_id>/attend")
def attend(seminar_id: int, registration_id: int):
    """Mark one registration attended from the list (the same as scanning their QR code)."""
    services = _services()
    with services.db.unit_of_work() as s:
        registration = s.get(SeminarRegistration, registration_id)
        if registration is None or registration.seminar_id != seminar_id:
            return _error(404, "お探しのお申し込みは見つかりませんでした。")
        result = seminars.mark_attended(s, registration, by=session["staff"]["login"], now=services.clock.now())
        s.commit()
    flash(*_attend_notice(result, registration))
    return redirect(url_for("console.seminars.seminar", seminar_id=seminar_id, _anchor=f"registration-{registration_id}"))


@bp.get("/checkin/<token>")
def checkin(token: str):
    """What staff see when they scan a QR code at the venue: who it is, and one button to check them in."""
    return _checkin_page(token)


@bp.post("/checkin/<token>")
def check_in(token: str):
    """Check the person in, recording who did; a second scan is told they are already in."""
    services = _services()
    with services.db.unit_of_work() as s:
        registration = seminars.by_checkin_token(s, token)
        result = registration and seminars.mark_attended(s, registration, by=session["staff"]["login"],
                                                         now=services.clock.now())
        s.commit()
    if result == "marked":
        log.info("staff %s checked in registration %s", session["staff"]["id"], registration.id)
    return _checkin_page(token, result=result or "")


def _checkin_page(token: str, result: str = ""):
    with _services().db.unit_of_work() as s:
        registration = seminars.by_checkin_token(s, token)
        found = s.get(Seminar, registration.seminar_id) if registration else None
    if registration is None:
        return _error(404, "このQRコードのお申し込みは見つかりませんでした。"
                           "お手数ですが、お名前を伺い、セミナーのお申し込み一覧からお探しください。")
    if registration.status in ("cancelled", "waiting"):
        state = "キャンセルされています" if registration.status == "cancelled" else "キャンセル待ちのままです"
        return _error(409, f"このお申し込みは{state}。お席の確保がないため受付できません。"
                           "お申し込み一覧でご確認のうえ、ご案内ください。")
    return render_template("console/seminar_checkin.html", registration=registration, seminar=found, result=result,
                           **_labels())


def _attend_notice(result: str, registration: SeminarRegistration) -> tuple[str, str]:
    who = registration.company or registration.contact_name or f"お申し込み {registration.id}"
    if result == "marked":
        return f"{who} を出席にしました。", "ok"
    if result == "already":
        return f"{who} はすでに出席になっています。", "ok"
    return f"{who} はキャンセル待ちかキャンセル済みのため、出席にできません。", "error"


def _form_page(seminar: Seminar | None, form: dict, error: str = "", status: int = 200):
    return render_template("console/seminar_form.html", seminar=seminar, form=form, error=error,
                           subsidy=form.get("subsidy_briefing") == "on", default_venue=seminars.DEFAULT_VENUE), status


def _typed() -> dict:
    form = {name: _form_text(name) for name in FORM_FIELDS}
    form["subsidy_briefing"] = "on" if request.form.get("subsidy_briefing") else ""
    return form


def _as_form(seminar: Seminar) -> dict:
    local = lambda moment: to_tokyo(moment).strftime("%Y-%m-%dT%H:%M") if moment else ""  # noqa: E731
    return {"title": seminar.title, "description": seminar.description, "start": local(seminar.start_at),
            "end": local(seminar.end_at), "venue": seminar.venue or "", "online_url": seminar.online_url or "",
            "onsite_seats": str(seminar.onsite_seats), "online_seats": str(seminar.online_seats),
            "deadline": local(seminar.deadline_at), "survey_id": seminar.survey_id or "",
            "subsidy_briefing": "on" if seminar.subsidy_briefing else ""}


def _values(form: dict) -> dict:
    """The form as the seminar's fields; ValueError with a Japanese reason for what validate() cannot judge."""
    try:
        onsite, online = int(form["onsite_seats"] or "0"), int(form["online_seats"] or "0")
    except ValueError:
        raise ValueError("定員は数字で入れてください。") from None
    if len(form["description"]) > MAX_DESCRIPTION:
        raise ValueError(f"説明は{MAX_DESCRIPTION}文字以内で入れてください。")
    if len(form["venue"]) > 200:
        raise ValueError("会場名は200文字以内で入れてください。")
    return {"title": form["title"], "description": form["description"],
            "start_at": _moment(form["start"], "開始日時"), "end_at": _moment(form["end"], "終了日時"),
            "venue": form["venue"] or None, "online_url": form["online_url"] or None, "onsite_seats": onsite,
            "online_seats": online, "deadline_at": _moment(form["deadline"], "申込締切") if form["deadline"] else None,
            "subsidy_briefing": form["subsidy_briefing"] == "on", "survey_id": form["survey_id"] or None}


def _moment(text: str, label: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M").replace(tzinfo=TOKYO)
    except ValueError:
        raise ValueError(f"{label}を選んでください。") from None


def _checked(values: dict) -> dict:
    return {name: values[name] for name in ("title", "start_at", "end_at", "onsite_seats", "online_seats",
                                            "online_url", "deadline_at", "survey_id")}


def _editable(values: dict) -> dict:
    return {name: value for name, value in values.items() if name in seminars.EDITABLE}


def _venue_of(venue: str | None) -> dict:
    """The default venue comes with its address and map; another one with none (staff add them to the description)."""
    if venue == seminars.DEFAULT_VENUE:
        return {"venue_address": seminars.DEFAULT_ADDRESS, "map_url": seminars.DEFAULT_MAP_URL}
    return {"venue_address": None, "map_url": None}


def _with_venue(values: dict) -> dict:
    return values | _venue_of(values["venue"])


def _segments() -> list[tuple[str, str]]:
    """The segments staff can announce to, with their labels."""
    config = _services().config
    return ([("all", "友だち全員"), ("past-participants", "過去のセミナー参加者")]
            + [(f"region:{r.id}", f"地域: {r.name}") for r in REGIONS]
            + [(f"industry:{name}", f"業種: {name}") for name in INDUSTRIES]
            + [(f"category:{c.id}", f"相談分野: {c.name}") for c in config.categories])


@bp.get("/seminars/<int:seminar_id>/announce")
def announce_form(seminar_id: int):
    """Choose a segment; once chosen, the number of recipients is shown before anything can be sent."""
    segment = request.args.get("segment", "")
    segments = _segments()
    with _services().db.unit_of_work() as s:
        found = s.get(Seminar, seminar_id)
    if found is None:
        return _error(404, NOT_FOUND)
    preview = error = None
    if segment:
        if segment not in dict(segments):
            return _error(400, "送信先の選び方が正しくありません。一覧からお選びください。")
        try:
            preview = announcements.preview(_services().db, _services().config, seminar_id, segment)
        except announcements.AnnouncementRefused as exc:
            error = str(exc)
    return render_template("console/seminar_announce.html", seminar=found, segments=segments, segment=segment,
                           preview=preview, error=error, line=_services().line is not None)


@bp.post("/seminars/<int:seminar_id>/announce")
def announce(seminar_id: int):
    services = _services()
    segment = request.form.get("segment", "")
    if segment not in dict(_segments()):
        return _error(400, "送信先の選び方が正しくありません。一覧からお選びください。")
    if services.line is None:
        flash("LINEチャネルが設定されていないため、お知らせは送れません（シミュレーターのみの運用です）。", "error")
        return redirect(url_for("console.seminars.announce_form", seminar_id=seminar_id, segment=segment))
    try:
        done = announcements.announce(services.db, services.config, services.line, services.clock, seminar_id,
                                      segment, created_by=session["staff"]["login"])
    except announcements.AnnouncementRefused as exc:
        flash(str(exc), "error")
        return redirect(url_for("console.seminars.announce_form", seminar_id=seminar_id, segment=segment))
    log.info("staff %s announced seminar %s to %s: %s recipients, already=%s", session["staff"]["id"], seminar_id,
             segment, done.recipients, done.already)
    if done.already:
        flash("この対象にはすでにお知らせを送っています。もう一度は送りません。", "error")
    elif done.recipients == 0:
        flash("送信対象の方がいないため、送信していません。", "error")
    else:
        flash(f"{done.recipients:,}人にお知らせを送りました（{done.sent}/{done.batches}回の一斉送信が完了）。", "ok")
    return redirect(url_for("console.seminars.seminar", seminar_id=seminar_id))
