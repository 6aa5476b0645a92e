"""The staff console at /admin: sign-in, consultations, conversations handed to staff, and failed messages."""
from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot import replies as r
from bot.conversation import Conversation, State
from bot.intake import FIELD_LABELS, METHODS
from bot.jatime import format_datetime
from bot.menu import STATUS_LABELS, suspend
from bot.municipalities import REGIONS
from handlers.conversations import queue_messages
from storage.models import Consultation, ConversationRow, InboxEvent, LineUser, OutboundMessage
from storage.staff import authenticate

log = logging.getLogger(__name__)

bp = Blueprint("console", __name__, url_prefix="/admin")

ACTING_ROLES = ("admin", "coordinator")
ROLE_LABELS = {"admin": "管理者", "coordinator": "コーディネーター", "viewer": "閲覧のみ"}
MAX_REPLY = 2000
PAGE_SIZE = 50
RECENT_CONVERSATIONS = 50
TRANSCRIPT_LIMIT = 200
FAILED_LIMIT = 200

TAKEN_OVER = "担当者が対応します。このままメッセージをお送りください。"
BACK_TO_BOT = "担当者との会話を終了しました。メニューからいつでもご利用ください。"

CHANNEL_LABELS = {"line": "LINE", "simulator": "シミュレーター", "web": "Webフォーム", "popup": "出張相談会"}
SENDER_LABELS = {"user": "利用者", "bot": "ボット", "staff": "担当者"}
STATE_LABELS = {State.WITH_STAFF: "担当者対応中", State.IDLE: "ボット対応"}
REGION_NAMES = {region.id: region.name for region in REGIONS}
# What a message without text is shown as in the transcript.
KIND_LABELS = {"image": "画像", "video": "動画", "audio": "音声", "file": "ファイル", "location": "位置情報",
               "sticker": "スタンプ", "imagemap": "画像", "template": "ボタン"}


# --- sign-in, CSRF and roles ----------------------------------------------------------------------------

def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def _csrf_ok() -> bool:
    expected, sent = session.get("csrf", ""), request.form.get("csrf_token", "")
    return bool(expected) and hmac.compare_digest(expected.encode(), sent.encode())


@bp.before_request
def guard():
    """Sign-in for every page but the login form, a CSRF token on every POST, and only acting roles may change things."""
    staff = session.get("staff")
    if staff is None and request.endpoint != "console.login":
        return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
    if request.method != "POST":
        return None
    if not _csrf_ok():
        log.info("console POST to %s refused: CSRF token mismatch", request.endpoint)
        return _error(400, "フォームの有効期限が切れたか、正しく送信されませんでした。"
                           "ページを再読み込みしてから、もう一度お試しください。")
    if staff and staff["role"] not in ACTING_ROLES and request.endpoint not in ("console.login", "console.logout"):
        log.info("staff %s (%s) refused %s", staff["id"], staff["role"], request.endpoint)
        return _error(403, "このアカウントは閲覧専用のため、変更の操作はできません。必要な場合は管理者にご連絡ください。")
    return None


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
            "status_labels": STATUS_LABELS, "method_labels": METHODS,
            "category_name": lambda category_id: config.category(category_id).name}


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The sign-in form; a wrong login or password is answered 401 without saying which."""
    next_url = _safe_next(request.values.get("next", ""))
    if request.method == "GET":
        return render_template("console/login.html", next_url=next_url, login="")
    name = request.form.get("login", "").strip()
    user = authenticate(_services().db, name, request.form.get("password", ""))
    if user is None:
        log.info("console sign-in refused")
        return render_template("console/login.html", next_url=next_url, login=name,
                               error="ログインIDまたはパスワードが違います。"), 401
    session.clear()  # a new session (and CSRF token) at sign-in, so one planted before it is worthless
    session["staff"] = {"id": user.id, "login": user.login, "role": user.role}
    csrf_token()
    log.info("staff %s signed in", user.id)
    return redirect(next_url or url_for("console.dashboard"))


@bp.post("/logout")
def logout():
    """Sign out and go back to the sign-in form."""
    log.info("staff %s signed out", session["staff"]["id"])
    session.clear()
    flash("ログアウトしました。", "ok")
    return redirect(url_for("console.login"))


def _safe_next(target: str) -> str:
    # Only back into the console: anything else would make the login form an open redirect.
    return target if target.startswith("/admin") and "\\" not in target else ""


# --- dashboard and consultations ----------------------------------------------------------------------

@bp.get("")
def dashboard():
    """What needs attention: new consultations, conversations waiting for staff, and failed messages."""
    with _services().db.unit_of_work() as s:
        received = select(func.count()).select_from(Consultation).where(Consultation.status == "received")
        counts = {
            "received": s.scalar(received.where(Consultation.simulated.is_(False))),
            "received_simulated": s.scalar(received.where(Consultation.simulated.is_(True))),
            "waiting": s.scalar(select(func.count()).select_from(ConversationRow)
                                .where(ConversationRow.state == State.WITH_STAFF)),
            "failed": s.scalar(select(func.count()).select_from(OutboundMessage)
                               .where(OutboundMessage.status == "failed")),
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
    page_arg = request.args.get("page", "1")
    page = max(int(page_arg), 1) if page_arg.isdigit() else 1
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
    """One consultation in full, with the form that moves its status on."""
    with _services().db.unit_of_work() as s:
        c = s.get(Consultation, consultation_id)
    if c is None:
        return _error(404, "お探しの相談は見つかりませんでした。")
    return render_template("console/consultation.html", c=c, fields=_consultation_fields(c))


def _consultation_fields(c: Consultation) -> list[tuple[str, str]]:
    config = _services().config
    category = config.category(c.category).name
    if c.confidence is not None:
        category += f"（自動判定の確からしさ {c.confidence:.0%}）"
    municipality = c.municipality or ""
    if c.region in REGION_NAMES:
        municipality += f"（{REGION_NAMES[c.region]}）"
    channel = CHANNEL_LABELS.get(c.channel, c.channel) + ("（シミュレーター）" if c.simulated else "")
    return [
        ("受付番号", c.receipt_no), ("受付日時", format_datetime(c.received_at)), ("受付経路", channel),
        ("状態", STATUS_LABELS.get(c.status, c.status)), (FIELD_LABELS["category"], category),
        ("キーワード", "、".join(c.keywords or [])), (FIELD_LABELS["method"], METHODS.get(c.method, c.method)),
        (FIELD_LABELS["company"], c.company), (FIELD_LABELS["industry"], c.industry or ""),
        (FIELD_LABELS["employees"], c.employees or ""), (FIELD_LABELS["municipality"], municipality),
        (FIELD_LABELS["contact_name"], c.contact_name or ""), (FIELD_LABELS["phone"], c.phone or ""),
        (FIELD_LABELS["email"], c.email or ""),
    ]


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
        s.commit()
    log.info("staff %s set consultation %s to %s", session["staff"]["id"], consultation_id, status)
    flash(f"状態を「{STATUS_LABELS[status]}」に変更しました。", "ok")
    return back


# --- conversations ------------------------------------------------------------------------------------

@bp.get("/conversations")
def conversations():
    """Conversations waiting for staff, longest-waiting first, then the most recent others."""
    base = select(ConversationRow, LineUser).join(LineUser, LineUser.id == ConversationRow.user_id)
    with _services().db.unit_of_work() as s:
        waiting = s.execute(base.where(ConversationRow.state == State.WITH_STAFF)
                            .order_by(ConversationRow.updated_at, ConversationRow.user_id)).all()
        others = s.execute(base.where(ConversationRow.state != State.WITH_STAFF)
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
    return _conversation_page(user_id)


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
    return render_template("console/conversation.html", user=user, state=row.state if row else State.IDLE,
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


def _state_label(state: str) -> str:
    return STATE_LABELS.get(state, "相談を入力中")


@bp.post("/conversations/<user_id>/reply")
def reply(user_id: str):
    """Send the staff's text to the user, through the same queue as the bot's messages."""
    body = request.form.get("text", "").replace("\r\n", "\n").strip()
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
        s.commit()
    services.delivery.send(ids)
    log.info("staff %s replied to %s (messages %s)", session["staff"]["id"], user_id, ids)
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
        if (row.state == State.WITH_STAFF) == to_staff:
            flash("すでに担当者が対応中です。" if to_staff else "この会話はすでにボットが対応しています。", "ok")
            return back
        if to_staff:
            # As when the user asks for staff: an unfinished intake is kept for 続きから, and the bot's
            # "message received" note is held back since the user has just been told staff are on it.
            kept = suspend(Conversation(user_id, _state(row.state), dict(row.data or {}), row.suspended), now)
            if kept is not False:
                row.suspended = kept
            row.state, row.data = State.WITH_STAFF, {"acked_at": now.isoformat()}
        else:
            row.state, row.data = State.IDLE, {}
        row.updated_at = now
        ids = queue_messages(s, user.source, user.id, [r.text(TAKEN_OVER if to_staff else BACK_TO_BOT)], now,
                             sender="staff")
        s.commit()
    services.delivery.send(ids)
    log.info("staff %s %s conversation %s", session["staff"]["id"], "took over" if to_staff else "released", user_id)
    flash("担当者の対応に切り替えました。ボットは応答を止めます。" if to_staff
          else "ボットの対応に戻しました。", "ok")
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


# --- failed messages ----------------------------------------------------------------------------------

@bp.get("/messages")
def messages():
    """Messages that could not be delivered, newest first, each with its error and a resend button."""
    with _services().db.unit_of_work() as s:
        rows = s.scalars(select(OutboundMessage).where(OutboundMessage.status == "failed")
                         .order_by(OutboundMessage.created_at.desc(), OutboundMessage.id.desc())
                         .limit(FAILED_LIMIT)).all()
    return render_template("console/messages.html", rows=rows, sender_labels=SENDER_LABELS,
                           preview=lambda m: " / ".join(line.text for line in _outbound_lines(m)))


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


def _error(status: int, message: str):
    return render_template("console/error.html", status=status, message=message), status
