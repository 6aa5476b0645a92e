"""The web consultation form at /consult: the LINE intake's consent, questions and triage on pages that work without
JavaScript, booked on the same availability and through the same booking service; inside LINE a LIFF page too."""
from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.booking import PAGE_DAYS, parse_slot_key, slot_key
from bot.intake import EMPLOYEES, FIELD_LABELS, INDUSTRIES, METHODS, PROFILE_FIELDS, consent_paragraphs
from bot.jatime import format_clock, format_date, format_time_range, to_tokyo
from bot.municipalities import REGIONS
from bot.web_intake import LIMITS, check_answers, receipt_email
from handlers.hardening import CONTENT_SECURITY_POLICY, csrf_ok, csrf_token
from handlers.liff import SDK_URL
from scheduling.mailer import email_message
from storage import web_submissions
from storage.logids import user_ref
from storage.models import ACTIVE_BOOKING, Booking, Consultation, LineUser, WebSubmission
from storage.outbound import queue_messages

log = logging.getLogger(__name__)

bp = Blueprint("consult", __name__, url_prefix="/consult")

FORM_LIFETIME = timedelta(hours=3)  # a form in progress stays good this long after it was opened
MIN_FILL = timedelta(seconds=3)  # reading the consent and filling in the first page takes a person longer
RATE_LIMIT, RATE_WINDOW = 5, timedelta(minutes=10)  # consultations from one address
LATER = "later"  # 日程は担当者からの連絡で決める
# Inside LINE the page loads LINE's LIFF SDK, which talks to LINE's servers; nothing else is let in.
LIFF_CSP = (CONTENT_SECURITY_POLICY + "; script-src 'self' https://static.line-scdn.net"
            "; connect-src 'self' https://*.line.me https://*.line-scdn.net https://*.line-apps.com")

EXPIRED = "フォームの有効期限が切れたか、正しく送信されませんでした。お手数ですが、最初からもう一度お申し込みください。"
REFUSED = "送信内容を受け付けられませんでした。お手数ですが、ページを開き直してもう一度お申し込みください。"
TOO_FAST = "送信が早すぎたため、受け付けられませんでした。内容をご確認のうえ、少し待ってからもう一度送信してください。"
TOO_MANY = "短い時間に続けてお申し込みがあったため、受け付けを一時停止しています。10分ほどおいてからお試しください。"
TAKEN = "申し訳ありません。その時間はちょうど埋まってしまいました。あらためて空いている時間をお選びください。"
UNREADABLE = "日時を読み取れませんでした。一覧からお選びください。"
LIFF_REFUSED = ("LINEでのご本人の確認ができませんでした。お手数ですが、LINEからこのページを開き直して、"
                "もう一度お申し込みください。")


def _services():
    return current_app.extensions["dxdesk"]


def _serializer(purpose: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt=f"dxdesk-consult-{purpose}")


def _load_state(token: str) -> dict[str, Any] | None:
    """The form's progress as the server signed it: the browser carries it, but cannot change it."""
    try:
        state = _serializer("state").loads(token or "")
    except BadSignature:
        return None
    if not isinstance(state, dict) or not isinstance(state.get("key"), str) or not isinstance(state.get("t"), float):
        return None
    return state


def _address() -> str:
    """The sender's address as a keyed hash: the rate limit counts it, nobody can read it back."""
    return hmac.new(current_app.secret_key.encode(), f"address:{request.remote_addr}".encode(), hashlib.sha256).hexdigest()


@bp.after_request
def private(response):
    # A form in progress carries the person's answers: keep it out of caches.
    response.headers["Cache-Control"] = "no-store"
    if _services().liff:
        response.headers["Content-Security-Policy"] = LIFF_CSP
    return response


@bp.get("")
def start():
    """The first page: consent, the question and the company's details."""
    state = {"key": uuid.uuid4().hex, "t": _services().clock.now().timestamp()}
    return _page("profile", state, values={}, errors={})


@bp.post("")
def step():
    """One page of the form sent: refused without the session's token, when too fast or filled in by a bot."""
    if not csrf_ok():
        log.info("consult form POST refused: CSRF token mismatch")
        abort(400, description=EXPIRED)
    state = _load_state(request.form.get("state", ""))
    if state is None:
        log.info("consult form POST refused: no valid form state")
        abort(400, description=EXPIRED)
    if request.form.get("website"):
        log.info("consult form POST refused: the hidden field was filled in")
        abort(400, description=REFUSED)
    age = _services().clock.now().timestamp() - state["t"]  # the app's clock, so tests can move it
    if age > FORM_LIFETIME.total_seconds():
        log.info("consult form POST refused: the form was opened too long ago")
        abort(400, description=EXPIRED)
    if age < MIN_FILL.total_seconds():
        log.info("consult form POST refused: sent too soon after the form was opened")
        abort(400, description=TOO_FAST)
    steps = {"profile": _take_profile, "category": _take_category, "slot": _take_slot}
    wanted = request.form.get("step", "")
    if wanted not in steps or wanted != "profile" and "answers" not in state:
        abort(400, description=EXPIRED)
    return steps[wanted](state)


def _take_profile(state: dict[str, Any]):
    config = _services().config
    answers, errors = check_answers(request.form.to_dict(), config.privacy_policy_version)
    if errors:
        return _page("profile", state, values=answers, errors=errors)
    result = _services().triager.classify(answers["question"])
    # `category` becomes the person's choice; suggested_category, confidence and keywords stay the model's.
    state = {**state, "answers": answers, "suggested": result.category, "category": result.category,
             "confidence": result.confidence, "keywords": list(result.keywords)}
    state.pop("from", None)
    return _page("category", state)


def _take_category(state: dict[str, Any]):
    if request.form.get("back"):
        return _back_to_profile(state)
    chosen = request.form.get("category", "")
    if chosen not in {c.id for c in _services().config.categories}:
        return _page("category", state, errors={"category": "ご相談の分野を選んでください。"})
    return _slot_page({**state, "category": chosen})


def _take_slot(state: dict[str, Any]):
    if request.form.get("back"):
        return _page("category", state)
    if "more" in request.form:  # 他の日を見る / 最初の日程に戻る
        return _slot_page({**state, "from": _page_from(request.form["more"])})
    choice = request.form.get("slot", "")
    if choice == LATER:
        return _submit(state, None, None)
    coordinator, _, key = choice.partition("|")
    start = parse_slot_key(key)
    if not coordinator or start is None:
        return _slot_page(state, error="ご相談の日時を選んでください。" if not choice else UNREADABLE)
    return _submit(state, coordinator, start)


def _back_to_profile(state: dict[str, Any]):
    values = {**state["answers"], "consent": _services().config.privacy_policy_version}
    return _page("profile", state, values=values, errors={})


# --- the slots ---------------------------------------------------------------------------------------------------

def _region(state: dict[str, Any]) -> str | None:
    """Where the company is matters for visits only, as in LINE: other methods go to any coordinator."""
    answers = state["answers"]
    return answers.get("region") if answers["method"] == "visit" else None


def _last_day() -> date:
    return to_tokyo(_services().clock.now()).date() + timedelta(days=_services().config.booking.horizon_days)


def _page_from(value: str) -> str | None:
    """A page of days asked for: kept only when it lies between today and the booking horizon."""
    try:
        wanted = date.fromisoformat(value)
    except ValueError:
        return None
    today = to_tokyo(_services().clock.now()).date()
    return wanted.isoformat() if today < wanted <= _last_day() else None


def _slot_page(state: dict[str, Any], error: str = "", status: int = 200):
    """The free times of the next days, the same the bot offers (notice, horizon, region for visits only)."""
    services = _services()
    now = services.clock.now()
    first = date.fromisoformat(state["from"]) if state.get("from") else to_tokyo(now).date()
    with services.db.unit_of_work() as s:
        offers = services.bookings.offer(s, user_id=None, method=state["answers"]["method"], region=_region(state),
                                         after=first, days=PAGE_DAYS, now=now)
    days: dict[date, list[tuple[str, str]]] = {}
    for o in offers:
        label = f"{format_clock(to_tokyo(o.start).time())}〜{format_clock(to_tokyo(o.end).time())}"
        days.setdefault(to_tokyo(o.start).date(), []).append((f"{o.coordinator}|{slot_key(o.start)}", label))
    next_from = first + timedelta(days=PAGE_DAYS)
    return _page("slot", state, status=status, error=error, days=[(format_date(d), times) for d, times in days.items()],
                 period=f"{format_date(first)}〜{format_date(next_from - timedelta(days=1))}",
                 more=next_from.isoformat() if next_from <= _last_day() else "", paged=bool(state.get("from")),
                 last_day=format_date(_last_day()))


# --- sending -----------------------------------------------------------------------------------------------------

def _submit(state: dict[str, Any], coordinator: str | None, start: datetime | None):
    """Record the consultation (and book the slot) once per form; a second post shows the same confirmation."""
    services = _services()
    now = services.clock.now()
    line_user = None
    token = request.form.get("access_token", "")
    if services.liff and token:
        line_user = services.liff.user_id(token)
        if line_user is None:
            return _slot_page(state, error=LIFF_REFUSED, status=403)
    address = _address()
    with services.db.unit_of_work() as s:
        done = web_submissions.consultation_for(s, state["key"])
        if done is not None:
            log.info("consult form sent again: consultation %s already recorded", done)
            return _to_done(done)
        if web_submissions.sent_since(s, address, now - RATE_WINDOW) >= RATE_LIMIT:
            log.info("consult form refused: rate limit of its address reached")
            s.rollback()  # the slots are read in a transaction of their own
            return _slot_page(state, error=TOO_MANY, status=429)  # the answers stay in the form for later
        c = _record(s, state, line_user, now)
        s.add(WebSubmission(key=state["key"], address=address, consultation_id=c.id,
                            consent_version=services.config.privacy_policy_version, created_at=now))
        try:
            s.flush()  # the unique form key decides between two posts of the same form sent at once
        except IntegrityError:
            s.rollback()
            return _to_done(web_submissions.consultation_for(s, state["key"]))
        reserved = None
        if coordinator:
            reserved = services.bookings.reserve(
                s, user_id=line_user, coordinator=coordinator, start=start, method=c.method, region=_region(state),
                consultation_id=c.id, now=now, channel="web")
            if reserved is None:
                s.rollback()  # nothing is kept: the person chooses again, their answers still in the form
                return _slot_page(state, error=TAKEN, status=409)
        ids = _queue_receipt(s, c, reserved.booking if reserved else None, now)
        s.commit()
        consultation_id = c.id
        log.info("consultation %s recorded from the web form (category %s, LINE user %s)", c.id, c.category,
                 user_ref(line_user))
    services.delivery.send(ids + (reserved.notices if reserved else []))
    if reserved:
        # As after a LINE booking: the calendar event (a Meet link for online), then confirmed; the reconciler
        # finishes it if the calendar does not answer now.
        services.bookings.confirm(reserved.booking.id)
    return _to_done(consultation_id)


def _record(s: Session, state: dict[str, Any], line_user: str | None, now: datetime) -> Consultation:
    answers = state["answers"]
    profile = {f: answers.get(f) for f in PROFILE_FIELDS}
    if line_user:  # the LIFF page: the LINE user consented here and gave these details, as in the LINE intake
        user = s.get(LineUser, line_user)
        if user is None:
            user = LineUser(id=line_user, source="line", following=False, created_at=now, updated_at=now)
            s.add(user)
            s.flush()  # before the consultation that names it (no relationship orders the inserts)
        user.consent_version, user.consent_at = _services().config.privacy_policy_version, now
        for key, value in profile.items():
            setattr(user, key, value)
        user.updated_at = now
    c = Consultation(received_at=now, channel="web", origin="web", simulated=False, user_id=line_user,
                     status="received", question=answers["question"], category=state["category"],
                     suggested_category=state["suggested"], confidence=state["confidence"],
                     keywords=list(state["keywords"]), method=answers["method"], region=answers.get("region"), **profile)
    s.add(c)
    s.flush()
    return c


def _queue_receipt(s: Session, c: Consultation, booking: Booking | None, now: datetime) -> list[int]:
    """The receipt by email, queued in the consultation's transaction and sent by the delivery like every email."""
    services = _services()
    if not c.email or services.delivery.mailer is None:
        return []
    config = services.config
    when = format_time_range(booking.start, booking.end) if booking else None
    subject, body = receipt_email(config.program_name, c.receipt_no, config.category(c.category).name, c.method, when,
                                  config.contact_phone)
    # `to` is shown in the staff console, so it names the consultation; the address stays in the message.
    return queue_messages(s, "email", f"consultation:{c.id}", [email_message([c.email], subject, body)], now)


def _to_done(consultation_id: int):
    token = _serializer("done").dumps(consultation_id)
    return redirect(url_for("consult.done", token=token), 303)


@bp.get("/done/<token>")
def done(token: str):
    """The confirmation: the receipt number, and the time booked if one was."""
    try:
        consultation_id = _serializer("done").loads(token)
    except BadSignature:
        abort(404)
    if not isinstance(consultation_id, int):
        abort(404)
    services = _services()
    with services.db.unit_of_work() as s:
        c = s.get(Consultation, consultation_id)
        if c is None or c.channel != "web":
            abort(404)
        booking = s.scalar(select(Booking).where(Booking.consultation_id == c.id, Booking.status.in_(ACTIVE_BOOKING)))
        facts = {"receipt_no": c.receipt_no, "category": services.config.category(c.category).name,
                 "method": METHODS.get(c.method, c.method),
                 "when": format_time_range(booking.start, booking.end) if booking else "",
                 "emailed": bool(c.email and services.delivery.mailer)}
    return render_template("consult/done.html", **facts, **_common())


# --- pages -------------------------------------------------------------------------------------------------------

def _common() -> dict[str, Any]:
    services = _services()
    return {"program_name": services.config.program_name, "contact_phone": services.config.contact_phone,
            "liff_id": services.liff.liff_id if services.liff else "", "liff_sdk": SDK_URL}


def _page(step: str, state: dict[str, Any], *, status: int = 200, errors: dict[str, str] | None = None, **extra):
    config = _services().config
    return render_template(
        f"consult/{step}.html", step=step, state_token=_serializer("state").dumps(state), csrf_token=csrf_token(), state=state,
        errors=errors or {}, labels=FIELD_LABELS, limits=LIMITS, industries=INDUSTRIES,
        employees=[label for label, _, _ in EMPLOYEES], regions=REGIONS, methods=METHODS,
        categories=config.categories, consent=consent_paragraphs(config), version=config.privacy_policy_version,
        later=LATER, **_common(), **extra), status
