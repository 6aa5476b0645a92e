"""Messages that could not be delivered, and resending them."""

import logging

from flask import Blueprint, flash, redirect, render_template, session, url_for
from sqlalchemy import select, update

from handlers.console.common import SENDER_LABELS, _services, refuse_viewers
from handlers.console.conversations import KIND_LABELS, _outbound_lines
from handlers.inbox import settle_parked
from storage.models import InboxEvent, OutboundMessage, OutboxItem

log = logging.getLogger(__name__)

bp = Blueprint("messages", __name__)
bp.before_request(refuse_viewers("送れなかったメッセージには宛先や本文が含まれるため、閲覧専用のアカウントでは"
                                 "ご覧いただけません。件数などの集計はホームと月次報告でご覧いただけます。"))

FAILED_LIMIT = 200
EVENT_LABELS = {"postback": "ボタンの選択", "follow": "友だち追加", "unfollow": "ブロック", "join": "グループ参加",
                "leave": "グループ退出", "beacon": "ビーコン", "accountLink": "アカウント連携"}
OUTBOX_KIND_LABELS = {"reminder_day_before": "前日のリマインダー", "reminder_hour_before": "直前のリマインダー",
                      "survey": "アンケート", "announcement": "お知らせ"}


@bp.get("/messages")
def messages():
    """Messages that could not be delivered, each with its error and a resend button; below, failed scheduled sends."""
    with _services().db.unit_of_work() as s:
        rows = s.scalars(select(OutboundMessage).where(OutboundMessage.status == "failed")
                         .order_by(OutboundMessage.created_at.desc(), OutboundMessage.id.desc())
                         .limit(FAILED_LIMIT)).all()
        scheduled = s.scalars(select(OutboxItem).where(OutboxItem.status == "failed")
                              .order_by(OutboxItem.due_at.desc(), OutboxItem.id.desc()).limit(FAILED_LIMIT)).all()
        parked = s.scalars(select(InboxEvent).where(InboxEvent.status == "failed")
                           .order_by(InboxEvent.received_at.desc(), InboxEvent.id.desc()).limit(FAILED_LIMIT)).all()
    return render_template("console/messages.html", rows=rows, scheduled=scheduled, sender_labels=SENDER_LABELS,
                           kind_labels=OUTBOX_KIND_LABELS, booking_of=_booking_ref, parked=parked,
                           event_kind=_event_kind,
                           preview=lambda m: " / ".join(line.text for line in _outbound_lines(m)))


def _event_kind(event: InboxEvent) -> str:
    """What the user did, in words, without its content: 「メッセージ（テキスト）」, 「ボタンの選択」, 「友だち追加」."""
    payload = event.payload or {}
    kind = payload.get("type")
    if kind == "message":
        message_type = (payload.get("message") or {}).get("type")
        return "メッセージ（" + ("テキスト" if message_type == "text" else KIND_LABELS.get(message_type, "その他")) + "）"
    return EVENT_LABELS.get(kind, kind or "不明")


@bp.post("/events/<int:event_id>/<any(retry, discard):answer>")
def settle_event(event_id: int, answer: str):
    """Process a parked event again, or discard it; recorded with the staff login in the event and the audit log."""
    services = _services()
    if not settle_parked(services.db, event_id, retry=answer == "retry", who=session["staff"]["login"],
                         now=services.clock.now()):
        flash("このイベントは見つからないか、すでに対応済みです。", "error")
        return redirect(url_for("console.messages.messages", _anchor="events"))
    log.info("staff %s %s inbox event %s", session["staff"]["id"], "retried" if answer == "retry" else "discarded",
             event_id)
    if answer == "retry":
        if services.inbox:
            services.inbox.notify()
        flash("もう一度処理するよう受け付けました。処理できると、利用者に返信が届きます。", "ok")
    else:
        flash("イベントを破棄しました。利用者には何も送られません。", "ok")
    return redirect(url_for("console.messages.messages", _anchor="events"))


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
        return redirect(url_for("console.messages.messages"))
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
    return redirect(url_for("console.messages.messages"))

