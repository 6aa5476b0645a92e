"""Activity records: the list with the month's counts against the visit target, a form per kind, one activity with
its company's consultations and photos (uploaded, shown as thumbnails, served to staff only, deleted)."""
from __future__ import annotations

import logging
import unicodedata

from flask import Blueprint, flash, redirect, render_template, request, send_file, session, url_for

from bot.jatime import TOKYO, format_datetime, to_tokyo
from handlers.console.common import (
    PAGE_SIZE, _error, _form_text, _page_number, _services, audited, refuse_viewers,
)
from handlers.console.seminars import _moment
from storage import activities, audit
from storage.models import ACTIVITY_KINDS, MODEL_CASE_STAGES, Activity, ActivityPhoto, Consultation, StaffUser
from storage.reports import fiscal_year_to_date, month_period

log = logging.getLogger(__name__)

bp = Blueprint("activities", __name__)

MAX_FILES = 10  # photos in one upload
# The one POST that carries photos may be this large; every other request keeps the app's limit (the webhook's 1 MiB).
MAX_UPLOAD_BODY = MAX_FILES * activities.MAX_PHOTO_BYTES + 1024 * 1024
UPLOAD_ENDPOINT = "console.activities.add_photos"
FORM_FIELDS = ("date", "coordinator", "company", "receipt_no", "partner", "partner_name", "session_no", "topics",
               "attendees", "model_stage", "notes")
NOT_FOUND = "お探しの活動記録は見つかりませんでした。一覧からお選びください。"
PHOTO_NOT_FOUND = "お探しの写真は見つかりませんでした。"
VIEWERS_REFUSED = ("活動記録には企業名やメモ、写真が含まれるため、閲覧専用のアカウントではご覧いただけません。"
                   "件数は月次報告でご確認ください。")


def allow_photo_uploads():
    """Raise the body limit for the photo upload alone; run before the console's guard reads the form."""
    if request.endpoint == UPLOAD_ENDPOINT:
        request.max_content_length = MAX_UPLOAD_BODY


bp.before_request(refuse_viewers(VIEWERS_REFUSED))  # activities name companies and carry notes and photos


@bp.errorhandler(413)
def too_large(_error_):
    return _error(413, f"送信された写真が大きすぎるため、受け付けられませんでした（何も保存していません）。"
                       f"写真は1枚10MBまで、1回に{MAX_FILES}枚までお選びください。")


def _labels() -> dict:
    config = _services().config
    return {"kind_labels": activities.KIND_LABELS, "stage_labels": activities.STAGE_LABELS,
            "kind_fields": activities.KIND_FIELDS, "partner_kinds": activities.PARTNER_KINDS,
            "coordinators": {c.id: c.name for c in config.coordinators},
            "partners": {p.id: p.name for p in config.partners}, "stages": MODEL_CASE_STAGES}


@bp.get("/activities")
def activities_list():
    """A month's activities by kind and coordinator, with the month's count of each kind against the visit target."""
    config = _services().config
    month_text = request.args.get("month", "") or f"{to_tokyo(_services().clock.now()):%Y-%m}"
    try:
        month = month_period(month_text)
    except ValueError as exc:
        return _error(400, str(exc))
    if not 1900 <= month.start.year <= 9998:
        return _error(400, "月は1900年から9998年までの間で指定してください。")
    kind = request.args.get("kind", "")
    kind = kind if kind in ACTIVITY_KINDS else ""
    coordinator = request.args.get("coordinator", "")
    coordinator = coordinator if config.coordinator(coordinator) else ""
    page = _page_number()
    with _services().db.unit_of_work() as s:
        rows = activities.listing(s, start=month.start, end=month.end, kind=kind, coordinator_id=coordinator,
                                  limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
        counts = activities.counts_by_kind(s, month.start, month.end)
        year = fiscal_year_to_date(month)
        progress = activities.progress(s, year.start, year.end)
    first = month.start.astimezone(TOKYO).date()
    previous = f"{first.year - (first.month == 1)}-{(first.month - 2) % 12 + 1:02d}"
    following = f"{first.year + (first.month == 12)}-{first.month % 12 + 1:02d}"
    filters = {key: value for key, value in (("month", month_text), ("kind", kind), ("coordinator", coordinator))
               if value}
    return render_template("console/activities.html", rows=rows[:PAGE_SIZE], has_next=len(rows) > PAGE_SIZE,
                           page=page, filters=filters, counts=counts, first=first, previous=previous,
                           following=following, target=_services().config.targets.visits_per_month, progress=progress,
                           year_start=year.start.astimezone(TOKYO).date(), targets=activities.TARGETS, **_labels())


@bp.get("/activities/new")
def new_activity():
    """The form for one kind of activity (the list offers a button per kind)."""
    kind = request.args.get("kind", "")
    if kind not in ACTIVITY_KINDS:
        return _error(404, "活動の種類を一覧のボタンからお選びください。")
    with _services().db.unit_of_work() as s:
        user = s.get(StaffUser, session["staff"]["id"])
        mine = user.coordinator_id if user else None
    return _form_page(None, kind, {"coordinator": mine or "", "receipt_no": request.args.get("receipt_no", "")[:20]})


@bp.post("/activities")
def add_activity():
    """Record an activity; what cannot be saved is explained and the form keeps what was typed."""
    kind = request.form.get("kind", "")
    if kind not in ACTIVITY_KINDS:
        return _error(400, "活動の種類を一覧のボタンからお選びください。")
    form = _typed()
    services = _services()
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        try:
            fields = _fields(s, kind, form)
        except ValueError as exc:
            return _form_page(None, kind, form, str(exc), 400)
        activity = activities.create(s, fields, by=session["staff"]["login"], now=now)
        audit.record(s, session["staff"]["login"], "change", f"activity:{activity.id}", now)
        s.commit()
    log.info("staff %s recorded activity %s (%s)", session["staff"]["id"], activity.id, kind)
    flash(f"{activities.KIND_LABELS[kind]}を記録しました。写真はこのページから追加できます。", "ok")
    return redirect(url_for("console.activities.activity", activity_id=activity.id))


@bp.get("/activities/<int:activity_id>")
def activity(activity_id: int):
    """One activity: its fields, the company's consultations, its photos as thumbnails and the upload form."""
    with _services().db.unit_of_work() as s:
        found = s.get(Activity, activity_id)
        if found is None:
            return _error(404, NOT_FOUND)
        consultations = activities.company_consultations(s, found)
        photos = activities.photos_of(s, activity_id)
    audited("view", f"activity:{activity_id}")
    return render_template("console/activity.html", a=found, consultations=consultations, photos=photos,
                           max_files=MAX_FILES, **_labels())


@bp.get("/activities/<int:activity_id>/edit")
def edit_activity(activity_id: int):
    with _services().db.unit_of_work() as s:
        found = s.get(Activity, activity_id)
        linked = s.get(Consultation, found.consultation_id) if found and found.consultation_id else None
    if found is None:
        return _error(404, NOT_FOUND)
    audited("view", f"activity:{activity_id}")
    return _form_page(found, found.kind, _as_form(found, linked))


@bp.post("/activities/<int:activity_id>")
def change_activity(activity_id: int):
    """Save an edit (the kind stays what it was)."""
    form = _typed()
    services = _services()
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        found = s.get(Activity, activity_id, with_for_update=True)
        if found is None:
            return _error(404, NOT_FOUND)
        try:
            fields = _fields(s, found.kind, form)
        except ValueError as exc:
            return _form_page(found, found.kind, form, str(exc), 400)
        activities.update(found, fields, now=now)
        audit.record(s, session["staff"]["login"], "change", f"activity:{activity_id}", now)
        s.commit()
    log.info("staff %s edited activity %s", session["staff"]["id"], activity_id)
    flash("活動記録を保存しました。", "ok")
    return redirect(url_for("console.activities.activity", activity_id=activity_id))


@bp.post("/activities/<int:activity_id>/delete")
def delete_activity(activity_id: int):
    """Delete an activity recorded by mistake, with its photos (rows, then files)."""
    services = _services()
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        found = s.get(Activity, activity_id, with_for_update=True)
        if found is None:
            return _error(404, NOT_FOUND)
        photos = activities.photos_of(s, activity_id)
        for row in photos:
            s.delete(row)
        s.flush()
        s.delete(found)
        audit.record(s, session["staff"]["login"], "change", f"activity:{activity_id}", now)
        s.commit()
    activities.remove_files(services.settings.var_dir, [row.stored_name for row in photos])
    log.info("staff %s deleted activity %s and its %s photos", session["staff"]["id"], activity_id, len(photos))
    flash(f"{activities.KIND_LABELS[found.kind]}の記録（{format_datetime(found.date)}）を削除しました。", "ok")
    return redirect(url_for("console.activities.activities_list", month=f"{to_tokyo(found.date):%Y-%m}"))


@bp.post("/activities/<int:activity_id>/consultation")
def link_consultation(activity_id: int):
    """Link the activity to one of its company's consultations (or unlink it, with an empty choice)."""
    chosen = request.form.get("consultation_id", "")
    services = _services()
    now = services.clock.now()
    back = redirect(url_for("console.activities.activity", activity_id=activity_id))
    with services.db.unit_of_work() as s:
        found = s.get(Activity, activity_id, with_for_update=True)
        if found is None:
            return _error(404, NOT_FOUND)
        allowed = {c.id: c for c in activities.company_consultations(s, found)}
        if chosen and (not chosen.isdecimal() or int(chosen) not in allowed):
            flash("紐づける相談は、この企業の相談の一覧からお選びください。", "error")
            return back
        found.consultation_id, found.updated_at = (int(chosen) if chosen else None), now
        audit.record(s, session["staff"]["login"], "change", f"activity:{activity_id}", now)
        s.commit()
    flash(f"相談 {allowed[int(chosen)].receipt_no} に紐づけました。" if chosen else "相談との紐づけを外しました。", "ok")
    return back


@bp.post("/activities/<int:activity_id>/photos")
def add_photos(activity_id: int):
    """Add photos: each is checked by its content; if any is refused, none is kept and each refusal says why."""
    services = _services()
    now = services.clock.now()
    back = redirect(url_for("console.activities.activity", activity_id=activity_id, _anchor="photos"))
    uploads = [f for f in request.files.getlist("photos") if f.filename or f.content_length]
    with services.db.unit_of_work() as s:
        found = s.get(Activity, activity_id)
        if found is None:
            return _error(404, NOT_FOUND)
        if not uploads:
            flash("追加する写真を選んでください。", "error")
            return back
        if len(uploads) > MAX_FILES:
            flash(f"写真は1回に{MAX_FILES}枚までです。分けて追加してください（何も保存していません）。", "error")
            return back
        checked, refused = [], []
        for upload in uploads:
            try:
                checked.append(activities.check_photo(upload.filename or "", upload.stream.read(
                    activities.MAX_PHOTO_BYTES + 1)))
            except activities.PhotoRefused as exc:
                refused.append(str(exc))
        if refused:
            for reason in refused:
                flash(reason, "error")
            flash("写真は1枚も保存していません。受け付けられないファイルを除いて、もう一度お選びください。", "error")
            log.info("staff %s: %s of %s photos refused for activity %s", session["staff"]["id"], len(refused),
                     len(uploads), activity_id)
            return back
        rows = activities.add_photos(s, services.settings.var_dir, found, checked, by=session["staff"]["login"],
                                     now=now)
        audit.record(s, session["staff"]["login"], "change", f"activity:{activity_id}", now)
        try:
            s.commit()
        except BaseException:
            activities.remove_files(services.settings.var_dir, [r.stored_name for r in rows])
            raise
    log.info("staff %s added %s photos to activity %s", session["staff"]["id"], len(rows), activity_id)
    flash(f"写真を{len(rows)}枚追加しました。", "ok")
    return back


@bp.get("/activities/photos/<int:photo_id>")
def photo(photo_id: int):
    """The photo as uploaded, with the type its content was checked to be."""
    found = _photo(photo_id)
    if found is None:
        return _error(404, PHOTO_NOT_FOUND)
    path = activities.photo_path(_services().settings.var_dir, found.stored_name)
    if not path.is_file():
        log.warning("photo %s has no file", photo_id)
        return _error(404, PHOTO_NOT_FOUND)
    audited("view", f"activity:{found.activity_id}")
    return _image(send_file(path, mimetype=found.content_type, conditional=False))


@bp.get("/activities/photos/<int:photo_id>/thumbnail")
def thumbnail(photo_id: int):
    """The photo's thumbnail (made again if its cached copy is gone); part of the activity's page, whose view is
    the one audited."""
    found = _photo(photo_id)
    var_dir = _services().settings.var_dir
    if found is None or not activities.photo_path(var_dir, found.stored_name).is_file():
        return _error(404, PHOTO_NOT_FOUND)
    return _image(send_file(activities.make_thumbnail(var_dir, found.stored_name), mimetype="image/jpeg",
                            conditional=False))


@bp.post("/activities/photos/<int:photo_id>/delete")
def delete_photo(photo_id: int):
    """Delete a photo: its row, then its file and thumbnail."""
    services = _services()
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        found = s.get(ActivityPhoto, photo_id)
        if found is None:
            return _error(404, PHOTO_NOT_FOUND)
        s.delete(found)
        audit.record(s, session["staff"]["login"], "change", f"activity:{found.activity_id}", now)
        s.commit()
    activities.remove_files(services.settings.var_dir, [found.stored_name])
    log.info("staff %s deleted photo %s of activity %s", session["staff"]["id"], photo_id, found.activity_id)
    flash("写真を削除しました。", "ok")
    return redirect(url_for("console.activities.activity", activity_id=found.activity_id, _anchor="photos"))


def _photo(photo_id: int) -> ActivityPhoto | None:
    with _services().db.unit_of_work() as s:
        return s.get(ActivityPhoto, photo_id)


def _image(response):
    # A checked image, shown by the console only: never sniffed as something else, never kept by a cache.
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = "inline"
    return response


def _form_page(found: Activity | None, kind: str, form: dict, error: str = "", status: int = 200):
    return render_template("console/activity_form.html", a=found, kind=kind, form=form, error=error,
                           **_labels()), status


def _typed() -> dict:
    return {name: _form_text(name) for name in FORM_FIELDS}


def _as_form(found: Activity, linked: Consultation | None) -> dict:
    partner_named = found.kind in activities.PARTNER_KINDS and not found.partner_id
    return {"date": to_tokyo(found.date).strftime("%Y-%m-%dT%H:%M"), "coordinator": found.coordinator_id or "",
            "company": "" if found.kind in activities.PARTNER_KINDS else found.company or "",
            "receipt_no": linked.receipt_no if linked else "", "partner": found.partner_id or "",
            "partner_name": (found.company or "") if partner_named else "",
            "session_no": str(found.session_no or ""), "topics": found.topics or "",
            "attendees": "" if found.attendees is None else str(found.attendees),
            "model_stage": found.model_stage or "", "notes": found.notes or ""}


def _fields(s, kind: str, form: dict) -> dict:
    """The form as the activity's fields, checked (storage.activities.check); ValueError with a Japanese reason."""
    config = _services().config
    values = {"kind": kind, "date": _moment(form["date"], "実施日時"), "coordinator_id": form["coordinator"],
              "company": form["company"], "consultation_id": None, "topics": form["topics"], "notes": form["notes"],
              "session_no": _number(form["session_no"], "研修の回"), "attendees": _number(form["attendees"], "参加人数"),
              "model_stage": form["model_stage"] or None}
    if kind in activities.PARTNER_KINDS:
        partner = next((p for p in config.partners if p.id == form["partner"]), None)
        values |= {"partner_id": form["partner"], "company": partner.name if partner else form["partner_name"]}
    elif form["receipt_no"]:
        linked = activities.by_receipt_no(s, form["receipt_no"])
        if linked is None:
            raise ValueError(f"受付番号「{form['receipt_no'][:20]}」の相談は見つかりませんでした。"
                             "DX2026-00012 のように入れてください。")
        values |= {"consultation_id": linked.id, "company": form["company"] or linked.company}
    return activities.check(values, coordinator_ids={c.id for c in config.coordinators},
                            partner_ids={p.id for p in config.partners})


def _number(text: str, label: str) -> int | None:
    text = unicodedata.normalize("NFKC", text)  # ３ typed with a Japanese keyboard is 3
    if not text:
        return None
    if not text.isascii() or not text.isdecimal() or len(text) > 6:
        raise ValueError(f"{label}は数字で入れてください。")
    return int(text)
