"""Conversations with users: the queue waiting for staff, transcripts, replies and take-over."""

import logging
from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, flash, g, redirect, render_template, session, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import replies as r
from bot.conversation import Conversation, State
from bot.intake import FIELD_LABELS
from bot.jatime import format_datetime
from bot.menu import suspend
from handlers.console.common import (
    ACTING_ROLES, CHANNEL_LABELS, SENDER_LABELS, WAITING_FOR_STAFF, _error, _form_text, _services, audited,
    refuse_viewers,
)
from storage import audit
from storage.logids import user_ref
from storage.models import Consultation, ConversationRow, InboxEvent, LineUser, OutboundMessage
from storage.outbound import queue_messages

log = logging.getLogger(__name__)

bp = Blueprint("conversations", __name__)
bp.before_request(refuse_viewers("会話には相談者のメッセージやお名前、連絡先が含まれるため、閲覧専用のアカウントでは"
                                 "ご覧いただけません。件数などの集計はホームと月次報告でご覧いただけます。"))

MAX_REPLY = 2000
RECENT_CONVERSATIONS = 50
TRANSCRIPT_LIMIT = 200
TAKEN_OVER = "担当者が対応します。このままメッセージをお送りください。"
BACK_TO_BOT = "担当者との会話を終了しました。メニューからいつでもご利用ください。"
STATE_LABELS = {State.WITH_STAFF: "担当者対応中", State.IDLE: "ボット対応"}
# What a message without text is shown as in the transcript.
KIND_LABELS = {"image": "画像", "video": "動画", "audio": "音声", "file": "ファイル", "location": "位置情報",
               "sticker": "スタンプ", "imagemap": "画像", "template": "ボタン"}

def count_unanswered() -> None:
    """Before each signed-in request: conversations whose question to staff is not answered yet (one COUNT).

    Counted before the view opens its own transaction, since a page rendered inside one must not open a second
    (SQLite allows one writer). As on the dashboard, the simulator's users are left out: a number there means work.
    """
    if not session.get("staff") or session["staff"]["role"] not in ACTING_ROLES:  # a viewer's menu has no 会話
        return
    with _services().db.unit_of_work() as s:
        g.unanswered = s.scalar(select(func.count()).select_from(ConversationRow).join(
            LineUser, LineUser.id == ConversationRow.user_id).where(
            ConversationRow.staff_waiting_since.is_not(None), LineUser.source == "line"))


def queue_count() -> dict:
    """The count for the navigation on every page."""
    return {"unanswered": g.get("unanswered", 0)}


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
        elif message.get("type") == "flex":
            text, described = r.flex_summary(message), False
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
    return redirect(url_for("console.conversations.conversation", user_id=user_id))


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
    back = redirect(url_for("console.conversations.conversation", user_id=user_id))
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

