"""The simulator: a LINE-like chat page that drives the same bot and storage through the same inbox."""
from __future__ import annotations

import re
import time
import uuid

from flask import Blueprint, current_app, render_template, request
from sqlalchemy import func, select

from bot.intents import MENU_ITEMS
from handlers.inbox import store_events
from handlers.richmenu import RICH_MENU_ITEMS
from storage.models import InboxEvent, OutboundMessage

bp = Blueprint("simulator", __name__, url_prefix="/simulator")

USER_ID = re.compile(r"^sim-[A-Za-z0-9_-]{1,40}$")
EVENT_TYPES = {"message", "postback", "follow", "unfollow"}
WAIT_SECONDS = 10


@bp.get("")
def page():
    """The chat page."""
    return render_template("simulator.html", program_name=current_app.extensions["dxdesk"].config.program_name)


@bp.get("/api/richmenu")
def richmenu():
    """The rich menu the LINE channel shows, as the simulator draws it."""
    return {"items": [{"id": key, "label": label, "data": f"action=menu&item={key}"}
                      for key, label in RICH_MENU_ITEMS if key in MENU_ITEMS]}


@bp.get("/api/messages")
def messages():
    """A simulated user's chat, both ways, numbered in order; `after` skips what the page has."""
    user = request.args.get("user", "")
    if not USER_ID.match(user):
        return {"error": "ユーザーIDが正しくありません（sim- で始まる英数字）"}, 400
    after = request.args.get("after", "0")
    return {"messages": transcript(user, int(after) if after.isdigit() else 0)}


@bp.post("/api/send")
def send():
    """Put one simulated event through the inbox like a webhook event, and answer with what followed."""
    body = request.get_json(silent=True) or {}
    user, event = body.get("user", ""), body.get("event")
    if not USER_ID.match(str(user)):
        return {"error": "ユーザーIDが正しくありません（sim- で始まる英数字）"}, 400
    if not isinstance(event, dict) or event.get("type") not in EVENT_TYPES:
        return {"error": "送信内容を読み取れませんでした。もう一度お試しください。"}, 400
    services = current_app.extensions["dxdesk"]
    with services.db.unit_of_work() as s:
        seen_in = s.scalar(select(func.max(InboxEvent.id))) or 0
        seen_out = s.scalar(select(func.max(OutboundMessage.id))) or 0
    now = services.clock.now()
    event = {**event, "source": {"type": "user", "userId": user}, "webhookEventId": f"sim-{uuid.uuid4().hex}",
             "timestamp": int(now.timestamp() * 1000), "mode": "active"}
    store_events(services.db, [event], "simulator", now)
    services.inbox.notify()
    deadline = time.monotonic() + WAIT_SECONDS
    while not _done(event["webhookEventId"]) and time.monotonic() < deadline:
        if services.inbox.drain() == 0:
            time.sleep(0.05)
    return {"messages": [m for m in transcript(user, 0, rows=True) if m.pop("row") > (seen_in if m["direction"] == "in" else seen_out)]}


def _done(event_key: str) -> bool:
    with current_app.extensions["dxdesk"].db.unit_of_work() as s:
        status = s.scalar(select(InboxEvent.status).where(InboxEvent.event_key == event_key))
    return status in ("done", "failed")


def transcript(user: str, after: int, rows: bool = False) -> list[dict]:
    """Every event in and message out for `user`, in time order, numbered from 1 (with `rows`, each item's table row id)."""
    with current_app.extensions["dxdesk"].db.unit_of_work() as s:
        ins = s.scalars(select(InboxEvent).where(InboxEvent.user_key == user, InboxEvent.source == "simulator"))
        outs = s.scalars(select(OutboundMessage).where(OutboundMessage.to == user, OutboundMessage.channel == "simulator",
                                                       OutboundMessage.status == "sent"))
        items = [(e.received_at, 0, e.id, "in", shown) for e in ins if (shown := _shown(e.payload))]
        items += [(m.created_at, 1, m.id, "out", message) for m in outs for message in m.messages]
    items.sort(key=lambda item: item[:3])
    return [{"id": n, "direction": direction, "message": message, "at": at.isoformat(), **({"row": row} if rows else {})}
            for n, (at, _, row, direction, message) in enumerate(items, start=1) if n > after]


def _shown(event: dict) -> dict | None:
    """What the user's own bubble shows for an event they sent."""
    if event.get("type") == "message":
        return event.get("message")
    if event.get("type") == "postback":
        postback = event.get("postback") or {}
        return {"type": "postback", "data": postback.get("data", ""),
                "displayText": event.get("displayText") or postback.get("displayText", "")}
    return None
