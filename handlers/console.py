"""The staff console at /admin: consultations, conversations, bookings, pop-up days, coordinators, failed sends."""
from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from bot import replies as r
from bot.config import WEEKDAY_KEYS, Coordinator
from bot.conversation import Conversation, State
from bot.intake import FIELD_LABELS, METHODS
from bot.jatime import TOKYO, WEEKDAYS, format_clock, format_date, format_datetime, format_time_range, to_tokyo
from bot.menu import STATUS_LABELS, suspend
from bot.municipalities import REGIONS
from handlers.hardening import csrf_ok, csrf_token
from handlers.ical import feed_url
from scheduling import popup
from storage.models import (
    ACTIVE_BOOKING, Booking, Consultation, ConversationRow, InboxEvent, LineUser, OutboundMessage, OutboxItem, PopupDay,
)
from storage import audit
from storage.logids import user_ref
from storage.outbound import queue_messages
from storage.privacy import purge_date
from storage.staff import MIN_PASSWORD, close_session, open_session, session_user, sign_in
from storage.staff import change_password as set_password

log = logging.getLogger(__name__)

bp = Blueprint("console", __name__, url_prefix="/admin")

ACTING_ROLES = ("admin", "coordinator")
SELF_SERVICE = ("console.login", "console.logout", "console.change_password")  # POSTs a viewer may make too
ROLE_LABELS = {"admin": "管理者", "coordinator": "コーディネーター", "viewer": "閲覧のみ"}
MAX_REPLY = 2000
PAGE_SIZE = 50
MAX_PAGE = 100_000
MIN_YEAR, MAX_YEAR = 1900, 9999
STUCK_AFTER = timedelta(minutes=15)
RECENT_CONVERSATIONS = 50
TRANSCRIPT_LIMIT = 200
FAILED_LIMIT = 200

MAX_REASON = 1000
PAST_POPUP_DAYS = 30

TAKEN_OVER = "担当者が対応します。このままメッセージをお送りください。"
BACK_TO_BOT = "担当者との会話を終了しました。メニューからいつでもご利用ください。"
# The staff's own reason stays in the record and goes to the coordinator; the user is told it more gently.
CANCELLED_BY_STAFF = ("{when}のご相談のご予約は、担当者の都合によりキャンセルとなりました。"
                      "ご迷惑をおかけし、誠に申し訳ございません。\n"
                      "別の日時でのご相談をご希望の場合は、メニューの「予約の確認・変更」から改めてご予約いただけます。")

CHANNEL_LABELS = {"line": "LINE", "simulator": "シミュレーター", "web": "Webフォーム", "popup": "出張相談会"}
SENDER_LABELS = {"user": "利用者", "bot": "ボット", "staff": "担当者"}
STATE_LABELS = {State.WITH_STAFF: "担当者対応中", State.IDLE: "ボット対応"}
REGION_NAMES = {region.id: region.name for region in REGIONS}
BOOKING_STATUS_LABELS = {"pending": "仮予約", "confirmed": "確定", "cancelling": "取消処理中", "cancelled": "取消"}
BOOKING_CHANNELS = ("line", "popup", "web")
CANCELLED_BY_LABELS = {"user": "利用者", "staff": "担当者（スタッフ画面）"}
OUTBOX_KIND_LABELS = {"reminder_day_before": "前日のリマインダー", "reminder_hour_before": "直前のリマインダー",
                      "survey": "アンケート", "announcement": "お知らせ"}
HOURS_LABELS = dict(zip(WEEKDAY_KEYS + ("holiday",), (*WEEKDAYS, "祝日")))
POPUP_FIELDS = ("date", "region", "venue", "address", "start", "end", "slot_minutes", "capacity", "coordinator", "note")
POPUP_DEFAULTS = {"start": "10:00", "end": "16:00", "slot_minutes": "60", "capacity": "1"}
# What a message without text is shown as in the transcript.
KIND_LABELS = {"image": "画像", "video": "動画", "audio": "音声", "file": "ファイル", "location": "位置情報",
               "sticker": "スタンプ", "imagemap": "画像", "template": "ボタン"}


# --- sign-in, CSRF and roles ----------------------------------------------------------------------------

@bp.before_request
def guard():
    """Sign-in for every page but the login form, a CSRF token on every POST, and only acting roles may change things."""
    staff = current_staff()
    if staff is None and request.endpoint != "console.login":
        return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
    if request.method != "POST":
        return None
    if not csrf_ok():
        log.info("console POST to %s refused: CSRF token mismatch", request.endpoint)
        return _error(400, "フォームの有効期限が切れたか、正しく送信されませんでした。"
                           "ページを再読み込みしてから、もう一度お試しください。")
    if staff and staff["role"] not in ACTING_ROLES and request.endpoint not in SELF_SERVICE:
        log.info("staff %s (%s) refused %s", staff["id"], staff["role"], request.endpoint)
        return _error(403, "このアカウントは閲覧専用のため、変更の操作はできません。必要な場合は管理者にご連絡ください。")
    return None


def current_staff() -> dict | None:
    """The signed-in staff member, checked against their session record (ended at logout, password change, idling)."""
    staff = session.get("staff")
    if staff is None:
        return None
    user = session_user(_services().db, staff.get("sid", ""), _services().clock.now())
    if user is None:
        session.clear()
        flash("ログインの有効期限が切れました。お手数ですが、もう一度ログインしてください。", "error")
        return None
    if user.role != staff["role"]:  # a role changed since sign-in counts from the next page on
        session["staff"] = staff | {"role": user.role}
    return session["staff"]


@bp.after_request
def private(response):
    # The pages carry personal data: keep them out of shared caches and other sites' frames.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


@bp.context_processor
def helpers() -> dict:
    config = _services().config
    staff = session.get("staff")
    return {"csrf_token": csrf_token, "staff": staff, "can_act": bool(staff) and staff["role"] in ACTING_ROLES,
            "role_labels": ROLE_LABELS, "program_name": config.program_name, "when": format_datetime,
            "time_range": format_time_range, "status_labels": STATUS_LABELS, "method_labels": METHODS,
            "booking_status_labels": BOOKING_STATUS_LABELS, "channel_labels": CHANNEL_LABELS,
            "region_names": REGION_NAMES, "category_name": lambda category_id: config.category(category_id).name}


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The sign-in form; a wrong login or password is answered 401 without saying which, repeated failures wait."""
    next_url = _safe_next(request.values.get("next", ""))
    if request.method != "POST":  # HEAD too: only a POST (with its CSRF token) may sign in
        return render_template("console/login.html", next_url=next_url, login="")
    name = request.form.get("login", "").strip()
    services = _services()
    result = sign_in(services.db, name, request.form.get("password", ""), request.remote_addr or "",
                     services.clock.now())
    if result.locked_until:
        log.info("console sign-in refused: locked")
        return _locked(render_template("console/login.html", next_url=next_url, login=name,
                                       error=_locked_message(result.locked_until)), result.locked_until)
    if result.user is None:
        log.info("console sign-in refused")
        return render_template("console/login.html", next_url=next_url, login=name,
                               error="ログインIDまたはパスワードが違います。"), 401
    user = result.user
    session.clear()  # a new session (and CSRF token) at sign-in, so one planted before it is worthless
    _start_session(user)
    log.info("staff %s signed in", user.id)
    return redirect(next_url or url_for("console.dashboard"))


def _start_session(user) -> None:
    token = open_session(_services().db, user.id, _services().clock.now())
    session["staff"] = {"id": user.id, "login": user.login, "role": user.role, "sid": token}
    csrf_token()


def _locked_message(until: datetime) -> str:
    # Said alike whether the login exists or not; the minute is rounded up so that "以降" holds.
    shown = format_datetime((until + timedelta(seconds=59)).replace(second=0, microsecond=0))
    return (f"ログインの失敗が続いたため、しばらくログインを受け付けていません。{shown}以降にもう一度お試しください。"
            "パスワードがわからない場合は、管理者にご連絡ください。")


def _locked(page: str, until: datetime):
    wait = max(math.ceil((until - _services().clock.now()).total_seconds()), 1)
    return page, 429, {"Retry-After": str(wait)}


@bp.post("/logout")
def logout():
    """Sign out, ending the session on the server too, and go back to the sign-in form."""
    staff = session["staff"]
    close_session(_services().db, staff["sid"])
    log.info("staff %s signed out", staff["id"])
    session.clear()
    flash("ログアウトしました。", "ok")
    return redirect(url_for("console.login"))


@bp.route("/password", methods=["GET", "POST"])
def change_password():
    """The signed-in user changes their own password; every other session of theirs ends."""
    if request.method != "POST":
        return render_template("console/password.html", min_password=MIN_PASSWORD)
    services = _services()
    staff = session["staff"]
    new, again = request.form.get("new_password", ""), request.form.get("new_password_again", "")
    error = ""
    if len(new) < MIN_PASSWORD:
        error = f"新しいパスワードは{MIN_PASSWORD}文字以上にしてください。"
    elif new != again:
        error = "新しいパスワードが確認用と一致しません。もう一度入力してください。"
    if error:
        return render_template("console/password.html", min_password=MIN_PASSWORD, error=error), 400
    result = sign_in(services.db, staff["login"], request.form.get("current_password", ""),
                     request.remote_addr or "", services.clock.now())
    if result.locked_until:
        return _locked(render_template("console/password.html", min_password=MIN_PASSWORD,
                                       error=_locked_message(result.locked_until)), result.locked_until)
    if result.user is None or result.user.id != staff["id"]:
        return render_template("console/password.html", min_password=MIN_PASSWORD,
                               error="現在のパスワードが違います。"), 400
    set_password(services.db, staff["login"], new)
    session.clear()
    _start_session(result.user)
    log.info("staff %s changed their password", staff["id"])
    flash("パスワードを変更しました。ほかの端末やブラウザーでのログインは解除されました。", "ok")
    return redirect(url_for("console.dashboard"))


def _safe_next(target: str) -> str:
    # Only back into the console: anything else would make the login form an open redirect, and a control
    # character (CR/LF) has no place in a Location header.
    safe = target.startswith("/admin") and "\\" not in target and target.isprintable() and " " not in target
    return target if safe else ""


# --- dashboard and consultations ----------------------------------------------------------------------

@bp.get("")
def dashboard():
    """What needs attention: new consultations, conversations waiting for staff, bookings, and failed messages.

    Every count leaves out what the simulator made (its users, their bookings and messages), so a tile means work.
    """
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
                Booking.status == "pending", Booking.updated_at < _services().clock.now() - STUCK_AFTER, real_booking)),
        }
    return render_template("console/dashboard.html", counts=counts)


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
    back = redirect(url_for("console.consultation", consultation_id=consultation_id))
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


# --- conversations ------------------------------------------------------------------------------------

# In 担当者の対応待ち: with staff, or asked staff something not yet answered (whatever the user tapped since).
WAITING_FOR_STAFF = or_(ConversationRow.state == State.WITH_STAFF, ConversationRow.staff_waiting_since.is_not(None))

@bp.get("/conversations")
def conversations():
    """Conversations waiting for staff, longest-waiting first, then the most recent others."""
    base = select(ConversationRow, LineUser).join(LineUser, LineUser.id == ConversationRow.user_id)
    with _services().db.unit_of_work() as s:
        waiting = s.execute(base.where(WAITING_FOR_STAFF).order_by(
            func.coalesce(ConversationRow.staff_waiting_since, ConversationRow.updated_at), ConversationRow.user_id)).all()
        others = s.execute(base.where(~WAITING_FOR_STAFF)
                           .order_by(ConversationRow.updated_at.desc()).limit(RECENT_CONVERSATIONS)).all()
    return render_template("console/conversations.html", waiting=waiting, others=others,
                           state_label=_state_label, channel_labels=CHANNEL_LABELS)


@dataclass(frozen=True)
class Line:
    """One bubble of the transcript."""

    at: datetime
    order: tuple[int, int]  # what the user sent comes before what answered it at the same moment
    who: str  # user, bot or staff
    text: str
    described: bool = False  # the text stands for something that is not text (a sticker, a button tap)
    status: str = "sent"


@bp.get("/conversations/<user_id>")
def conversation(user_id: str):
    """A user's transcript, what is on record for them, and the staff's reply and hand-over buttons."""
    page = _conversation_page(user_id)
    if page[1] == 200:
        audited("view", audit.conversation(user_id))
    return page


def _conversation_page(user_id: str, draft: str = "", error: str = "", status: int = 200):
    with _services().db.unit_of_work() as s:
        user = s.get(LineUser, user_id)
        if user is None:
            return _error(404, "この利用者は見つかりませんでした。")
        row = s.get(ConversationRow, user_id)
        events = s.scalars(select(InboxEvent).where(InboxEvent.user_key == user_id)
                           .order_by(InboxEvent.id.desc()).limit(TRANSCRIPT_LIMIT)).all()
        sent = s.scalars(select(OutboundMessage).where(OutboundMessage.to == user_id)
                         .order_by(OutboundMessage.id.desc()).limit(TRANSCRIPT_LIMIT)).all()
        history = s.scalars(select(Consultation).where(Consultation.user_id == user_id)
                            .order_by(Consultation.id.desc()).limit(10)).all()
    lines = sorted([*filter(None, map(_user_line, events)), *(line for m in sent for line in _outbound_lines(m))],
                   key=lambda line: (line.at, line.order))[-TRANSCRIPT_LIMIT:]
    profile = [(FIELD_LABELS[f], getattr(user, f)) for f in
               ("company", "industry", "employees", "municipality", "contact_name", "phone", "email")]
    waiting = row.staff_waiting_since if row is not None else None
    return render_template("console/conversation.html", user=user, state=row.state if row else State.IDLE,
                           waiting_since=format_datetime(waiting) if waiting else None,
                           state_label=_state_label(row.state if row else State.IDLE), lines=lines,
                           profile=profile, history=history, draft=draft, error=error, max_reply=MAX_REPLY,
                           channel_labels=CHANNEL_LABELS, sender_labels=SENDER_LABELS), status


def _user_line(event: InboxEvent) -> Line | None:
    payload = event.payload
    at, order = event.received_at, (0, event.id)
    if payload.get("type") == "message":
        message = payload.get("message") or {}
        if message.get("type") == "text":
            return Line(at, order, "user", message.get("text", ""))
        return Line(at, order, "user", f"（{KIND_LABELS.get(message.get('type'), 'メッセージ')}を送信）", described=True)
    if payload.get("type") == "postback":
        shown = payload.get("displayText") or (payload.get("postback") or {}).get("displayText")
        return Line(at, order, "user", shown) if shown else Line(at, order, "user", "（ボタンを選択）", described=True)
    return None


def _outbound_lines(m: OutboundMessage) -> list[Line]:
    lines = []
    for message in m.messages:
        if message.get("type") == "text":
            text, described = message.get("text", ""), False
        elif message.get("altText"):
            text, described = message["altText"], False
        else:
            text, described = f"（{KIND_LABELS.get(message.get('type'), 'メッセージ')}）", True
        lines.append(Line(m.created_at, (1, m.id), m.sender, text, described, m.status))
    return lines


def _form_text(name: str) -> str:
    """A form field as typed, with browsers' CRLF line ends made plain, NULs dropped and the outer blanks trimmed."""
    # PostgreSQL text cannot hold U+0000, and no one means to type it.
    return request.form.get(name, "").replace("\r\n", "\n").replace("\x00", "").strip()


def _state_label(state: str) -> str:
    return STATE_LABELS.get(state, "相談を入力中")


@bp.post("/conversations/<user_id>/reply")
def reply(user_id: str):
    """Send the staff's text to the user, through the same queue as the bot's messages."""
    body = _form_text("text")
    if not body:
        return _conversation_page(user_id, error="送信する内容を入力してください。", status=400)
    if len(body) > MAX_REPLY:
        return _conversation_page(user_id, draft=body, status=400,
                                  error=f"一度に送れるのは{MAX_REPLY}文字までです（いま{len(body)}文字です）。分けてお送りください。")
    services = _services()
    with services.db.unit_of_work() as s:
        user = s.get(LineUser, user_id)
        if user is None:
            return _error(404, "この利用者は見つかりませんでした。")
        ids = queue_messages(s, user.source, user.id, [r.text(body)], services.clock.now(), sender="staff")
        row = s.get(ConversationRow, user_id, with_for_update=True)
        if row is not None:
            row.staff_waiting_since = None  # answered: out of 担当者の対応待ち
        audit.record(s, session["staff"]["login"], "change", audit.conversation(user_id), services.clock.now())
        s.commit()
    services.delivery.send(ids)
    log.info("staff %s replied to %s (messages %s)", session["staff"]["id"], user_ref(user_id), ids)
    flash("返信を送りました。", "ok")
    return redirect(url_for("console.conversation", user_id=user_id))


@bp.post("/conversations/<user_id>/takeover")
def take_over(user_id: str):
    """Hand the conversation to staff: the bot stops answering and the user is told so."""
    return _switch(user_id, to_staff=True)


@bp.post("/conversations/<user_id>/release")
def release(user_id: str):
    """Give the conversation back to the bot and tell the user."""
    return _switch(user_id, to_staff=False)


def _switch(user_id: str, to_staff: bool):
    services = _services()
    now = services.clock.now()
    back = redirect(url_for("console.conversation", user_id=user_id))
    with services.db.unit_of_work() as s:
        user = s.get(LineUser, user_id)
        if user is None:
            return _error(404, "この利用者は見つかりませんでした。")
        row = _locked_row(s, user_id, now)
        with_staff = row.state == State.WITH_STAFF
        if with_staff == to_staff and (to_staff or row.staff_waiting_since is None):
            flash("すでに担当者が対応中です。" if to_staff else "この会話はすでにボットが対応しています。", "ok")
            return back
        if to_staff:
            # As when the user asks for staff: an unfinished intake is kept for 続きから, and the bot's
            # "message received" note is held back since the user has just been told staff are on it.
            kept = suspend(Conversation(user_id, _state(row.state), dict(row.data or {}), row.suspended), now)
            if kept is not False:
                row.suspended = kept
            row.state, row.data = State.WITH_STAFF, {"acked_at": now.isoformat()}
        elif with_staff:
            row.state, row.data = State.IDLE, {}
        row.updated_at, row.staff_waiting_since = now, None
        # Dequeuing a conversation the bot already has (the user went on to the menu) tells the user nothing.
        said = [r.text(TAKEN_OVER if to_staff else BACK_TO_BOT)] if with_staff != to_staff else []
        ids = queue_messages(s, user.source, user.id, said, now, sender="staff") if said else []
        s.commit()
    services.delivery.send(ids)
    log.info("staff %s %s conversation %s", session["staff"]["id"], "took over" if to_staff else "released",
             user_ref(user_id))
    flash("担当者の対応に切り替えました。ボットは応答を止めます。" if to_staff
          else "ボットの対応に戻しました。" if with_staff else "対応済みにしました。", "ok")
    return back


def _locked_row(s: Session, user_id: str, now: datetime) -> ConversationRow:
    # Locked like the bot's own turn, so a message being processed right now is not overwritten.
    row = s.get(ConversationRow, user_id, with_for_update=True)
    if row is None:
        row = ConversationRow(user_id=user_id, state=State.IDLE, data={}, suspended=None, updated_at=now)
        s.add(row)
    return row


def _state(value: str) -> State:
    try:
        return State(value)
    except ValueError:  # a state from an older version of the flow
        return State.IDLE


# --- bookings -----------------------------------------------------------------------------------------

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
    back = redirect(url_for("console.booking", booking_id=booking_id))
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
    back = redirect(url_for("console.booking", booking_id=booking_id))
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


# --- pop-up days (出張相談会) ----------------------------------------------------------------------------

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
    return redirect(url_for("console.popup_days", _anchor=f"day-{day.id}"))


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
            return redirect(url_for("console.popup_days", _anchor=f"day-{day_id}"))
        day.status = "cancelled"
        booked = s.scalar(select(func.count()).select_from(Booking).where(
            Booking.popup_day_id == day_id, Booking.status.in_(ACTIVE_BOOKING)))
        s.commit()
    log.info("staff %s cancelled pop-up day %s (%s bookings stay)", session["staff"]["id"], day_id, booked)
    message = "出張相談会を中止にしました。LINEでの受付も止めました。"
    if booked:
        message += f"すでに{booked}件の予約があります。下の一覧の方へ個別にご連絡ください。"
    flash(message, "ok")
    return redirect(url_for("console.popup_days", _anchor=f"day-{day_id}"))


# --- coordinators -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CoordinatorView:
    coordinator: Coordinator
    methods: list[str]
    regions: list[str]  # Japanese names; empty means the whole prefecture
    hours: list[tuple[str, str]]  # (曜日 or 祝日, 9:00〜12:00・13:00〜17:00 or 休み)
    dates: list[tuple[str, str]]  # dates from today on whose hours differ from the week's
    feed: str  # the calendar feed's absolute URL, for admins only


@bp.get("/coordinators")
def coordinators():
    """Each coordinator's methods, regions and hours; for admins, the secret URL of their calendar feed."""
    services = _services()
    is_admin = session["staff"]["role"] == "admin"
    base = (services.settings.public_base_url or request.host_url).rstrip("/")
    today = to_tokyo(services.clock.now()).date()
    views = [CoordinatorView(
        c, [METHODS.get(m, m) for m in c.methods], [REGION_NAMES.get(x, x) for x in c.regions],
        [(HOURS_LABELS[key], _ranges(c.hours.get(key, ()))) for key in HOURS_LABELS],
        [(format_date(d), _ranges(ranges)) for d, ranges in sorted(c.dates.items()) if d >= today],
        base + feed_url(current_app.secret_key, c.id) if is_admin else "") for c in services.config.coordinators]
    return render_template("console/coordinators.html", views=views, is_admin=is_admin)


def _ranges(ranges) -> str:
    return "・".join(f"{format_clock(s)}〜{format_clock(e)}" for s, e in sorted(ranges)) or "休み"


# --- failed messages ----------------------------------------------------------------------------------

@bp.get("/messages")
def messages():
    """Messages that could not be delivered, each with its error and a resend button; below, failed scheduled sends."""
    with _services().db.unit_of_work() as s:
        rows = s.scalars(select(OutboundMessage).where(OutboundMessage.status == "failed")
                         .order_by(OutboundMessage.created_at.desc(), OutboundMessage.id.desc())
                         .limit(FAILED_LIMIT)).all()
        scheduled = s.scalars(select(OutboxItem).where(OutboxItem.status == "failed")
                              .order_by(OutboxItem.due_at.desc(), OutboxItem.id.desc()).limit(FAILED_LIMIT)).all()
    return render_template("console/messages.html", rows=rows, scheduled=scheduled, sender_labels=SENDER_LABELS,
                           kind_labels=OUTBOX_KIND_LABELS, booking_of=_booking_ref,
                           preview=lambda m: " / ".join(line.text for line in _outbound_lines(m)))


def _booking_ref(ref: str) -> int | None:
    """The booking id of an outbox ref such as booking:42, for a link to it."""
    kind, _, value = ref.partition(":")
    return int(value) if kind == "booking" and value.isdecimal() and value.isascii() else None


@bp.post("/messages/<int:message_id>/resend")
def resend(message_id: int):
    """Put a failed message back in the queue and try it at once."""
    services = _services()
    with services.db.unit_of_work() as s:
        requeued = s.execute(update(OutboundMessage).where(
            OutboundMessage.id == message_id, OutboundMessage.status == "failed").values(
            status="pending", attempts=0, next_attempt_at=services.clock.now())).rowcount
        s.commit()
    if not requeued:
        flash("このメッセージは見つからないか、すでに再送されています。", "error")
        return redirect(url_for("console.messages"))
    services.delivery.send([message_id])
    with services.db.unit_of_work() as s:
        status = s.scalar(select(OutboundMessage.status).where(OutboundMessage.id == message_id))
    log.info("staff %s resent message %s: %s", session["staff"]["id"], message_id, status)
    if status == "sent":
        flash("再送しました。", "ok")
    elif status == "failed":
        flash("再送しましたが、今回も届けられませんでした。エラーの内容をご確認ください。", "error")
    else:
        flash("再送を受け付けました。届くまで自動で再試行します。", "ok")
    return redirect(url_for("console.messages"))


# --- shared -------------------------------------------------------------------------------------------

def _services():
    return current_app.extensions["dxdesk"]


def _today_start() -> datetime:
    return datetime.combine(to_tokyo(_services().clock.now()).date(), time.min, TOKYO)


def _date_arg(value: str) -> datetime | None:
    """The start of a YYYY-MM-DD day in Tokyo, or None when the value is not a date; 400 for one out of range."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    if not MIN_YEAR <= day.year <= MAX_YEAR:  # 0001-01-01 in Tokyo is still year 0 in UTC: an overflow
        abort(400, description=f"日付は{MIN_YEAR}年から{MAX_YEAR}年までの間で指定してください。")
    return datetime.combine(day, time.min, TOKYO)


def _page_number() -> int:
    value = request.args.get("page", "1")
    if value.isdecimal() and int(value) > MAX_PAGE:  # far past any list, and too big for the database's OFFSET
        abort(404, description="このページ番号のページはありません。一覧の最初のページからお探しください。")
    return max(int(value), 1) if value.isdecimal() else 1


def audited(action: str, record: str) -> None:
    """One line in a console view: write who did `action` on `record` now (storage/audit.py), committed at once."""
    services = _services()
    with services.db.unit_of_work() as s:
        audit.record(s, session["staff"]["login"], action, record, services.clock.now())
        s.commit()


def _error(status: int, message: str):
    return render_template("console/error.html", status=status, message=message), status
from handlers import seminar_pages  # noqa: E402,F401  (its routes join this blueprint; moves into the package)
