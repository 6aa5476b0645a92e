"""The simulator: a LINE-like chat page that drives the same bot and storage through the same inbox.

Without a LINE channel it is the product's front door, open to anyone. With one it is off unless
DXDESK_SIMULATOR=on, and then only for staff signed in to the console. Either way each browser session
gets random user ids of its own and can read only those users' chats.
"""
from __future__ import annotations

import re
import secrets
import time
import uuid

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from sqlalchemy import func, select

from bot.intents import MENU_ITEMS
from handlers.console.common import current_staff
from handlers.inbox import store_events
from handlers.richmenu import RICH_MENU_ITEMS
from storage.models import InboxEvent, OutboundMessage

bp = Blueprint("simulator", __name__, url_prefix="/simulator")

USER_ID = re.compile(r"^sim-[A-Za-z0-9_-]{1,40}$")
SESSION_KEY = "simulator_users"  # the user ids this browser session was given, oldest first
MAX_USERS = 20  # per session: the ids travel in the session cookie
WAIT_SECONDS = 10
MAX_TEXT = 5000  # LINE's own limit for a text message
MAX_DATA = 300  # LINE's limit for postback data and a display text
PICKER_MODES = ("date", "time", "datetime")
UNREADABLE = "送信内容を読み取れませんでした。ページを再読み込みしてから、もう一度お試しください。"


class Unreadable(ValueError):
    """Input the simulator page would never send; its message says so kindly, in Japanese."""


@bp.before_request
def guard():
    """Open in simulator mode; in LINE mode hidden unless enabled, and then for signed-in staff only."""
    services = current_app.extensions["dxdesk"]
    if services.line is None:
        return None
    if not services.settings.simulator:
        abort(404)
    if current_staff() is None:  # checked against the session record: a cookie kept after logout is refused
        if request.endpoint == "simulator.page":
            return redirect(url_for("console.auth.login"))
        return {"error": "シミュレーターを使うには、スタッフ画面にログインしてください。"}, 401
    return None


@bp.get("")
def page():
    """The chat page."""
    return render_template("simulator.html", program_name=current_app.extensions["dxdesk"].config.program_name)


@bp.get("/api/richmenu")
def richmenu():
    """The rich menu the LINE channel shows, as the simulator draws it."""
    return {"items": [{"id": key, "label": label, "data": f"action=menu&item={key}"}
                      for key, label in RICH_MENU_ITEMS if key in MENU_ITEMS]}


@bp.get("/api/users")
def users():
    """The simulated users of this browser session."""
    return {"users": session.get(SESSION_KEY, [])}


@bp.post("/api/users")
def new_user():
    """A new simulated user for this browser session, with a random id nobody can guess."""
    owned = session.get(SESSION_KEY, [])
    if len(owned) >= MAX_USERS:
        return {"error": f"ユーザーは{MAX_USERS}人まで作れます。今いるユーザーをお使いください。"}, 400
    user = f"sim-{secrets.token_urlsafe(16)}"
    session[SESSION_KEY] = [*owned, user]
    return {"user": user}, 201


def _refused(user) -> tuple[dict, int] | None:
    """Why a request may not act as `user`: an id of the wrong form, or one this browser session was not given."""
    if not isinstance(user, str) or not USER_ID.match(user):
        return {"error": "ユーザーIDが正しくありません（sim- で始まる英数字）"}, 400
    if user not in session.get(SESSION_KEY, []):
        return {"error": "このユーザーのトークは見つかりませんでした。ページを再読み込みしてください。"}, 404
    return None


@bp.get("/api/messages")
def messages():
    """A simulated user's chat, both ways, numbered in order; `after` skips what the page has."""
    user = request.args.get("user", "")
    if refused := _refused(user):
        return refused
    after = request.args.get("after", "0")
    return {"messages": transcript(user, int(after) if after.isdecimal() and after.isascii() else 0)}


@bp.post("/api/send")
def send():
    """Put one simulated event through the inbox like a webhook event, and answer with what followed."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return {"error": UNREADABLE}, 400
    user = body.get("user")
    if refused := _refused(user):
        return refused
    try:
        event = _event(body.get("event"))
    except Unreadable as exc:
        return {"error": str(exc)}, 400
    services = current_app.extensions["dxdesk"]
    with services.db.unit_of_work() as s:
        seen_in = s.scalar(select(func.max(InboxEvent.id))) or 0
        seen_out = s.scalar(select(func.max(OutboundMessage.id))) or 0
    now = services.clock.now()
    event |= {"source": {"type": "user", "userId": user}, "webhookEventId": f"sim-{uuid.uuid4().hex}",
              "timestamp": int(now.timestamp() * 1000), "mode": "active"}
    store_events(services.db, [event], "simulator", now)
    services.inbox.notify()
    deadline = time.monotonic() + WAIT_SECONDS
    while not _settled(event["webhookEventId"], user, seen_out) and time.monotonic() < deadline:
        if services.inbox.drain() == 0:
            time.sleep(0.05)
    return {"messages": [m for m in transcript(user, 0, rows=True) if m.pop("row") > (seen_in if m["direction"] == "in" else seen_out)]}


def _event(raw) -> dict:
    """The event rebuilt from the fields the page sends, each checked, so nothing odd reaches the inbox."""
    if not isinstance(raw, dict):
        raise Unreadable(UNREADABLE)
    kind = raw.get("type")
    if kind in ("follow", "unfollow"):
        return {"type": kind}
    if kind == "message":
        return {"type": "message", "message": _message(raw.get("message"))}
    if kind == "postback":
        postback, shown = raw.get("postback"), raw.get("displayText")
        if not isinstance(postback, dict) or shown is not None and not _short(shown, MAX_DATA):
            raise Unreadable(UNREADABLE)
        event = {"type": "postback", "postback": {"data": _text(postback.get("data"), MAX_DATA)}}
        params = postback.get("params")
        if params is not None:
            if not isinstance(params, dict) or not params.keys() <= set(PICKER_MODES) \
                    or not all(_short(v, 20) for v in params.values()):
                raise Unreadable(UNREADABLE)
            event["postback"]["params"] = dict(params)
        return event | ({"displayText": shown} if shown else {})
    raise Unreadable(UNREADABLE)


def _message(raw) -> dict:
    if isinstance(raw, dict) and raw.get("type") == "text":
        return {"type": "text", "text": _text(raw.get("text"), MAX_TEXT)}
    if isinstance(raw, dict) and raw.get("type") == "sticker":
        return {"type": "sticker", "packageId": _text(raw.get("packageId"), 20), "stickerId": _text(raw.get("stickerId"), 20)}
    raise Unreadable(UNREADABLE)


def _text(value, limit: int) -> str:
    if not isinstance(value, str):
        raise Unreadable(UNREADABLE)
    if len(value) > limit:
        raise Unreadable(f"メッセージが長すぎます。{limit}文字以内でお送りください。")
    return value


def _short(value, limit: int) -> bool:
    return isinstance(value, str) and len(value) <= limit


def _settled(event_key: str, user: str, seen_out: int) -> bool:
    """The event is processed and what it queued for the user is delivered (a worker thread may be the one sending)."""
    with current_app.extensions["dxdesk"].db.unit_of_work() as s:
        status = s.scalar(select(InboxEvent.status).where(InboxEvent.event_key == event_key))
        undelivered = s.scalar(select(func.count()).select_from(OutboundMessage).where(
            OutboundMessage.to == user, OutboundMessage.channel == "simulator", OutboundMessage.id > seen_out,
            OutboundMessage.status == "pending"))
    return status == "failed" or status == "done" and not undelivered


def transcript(user: str, after: int, rows: bool = False) -> list[dict]:
    """Every event in and message out for `user`, in time order, numbered from 1 (with `rows`, each item's table row id)."""
    # Both are read to the end at once: a cursor left open by an exception would keep its SQLite snapshot on the
    # pooled connection, and the next transaction there would fail with "database is locked".
    with current_app.extensions["dxdesk"].db.unit_of_work() as s:
        ins = s.scalars(select(InboxEvent).where(InboxEvent.user_key == user, InboxEvent.source == "simulator")).all()
        outs = s.scalars(select(OutboundMessage).where(OutboundMessage.to == user, OutboundMessage.channel == "simulator",
                                                       OutboundMessage.status == "sent")).all()
        items = [(e.received_at, 0, e.id, "in", shown) for e in ins if (shown := _shown(e.payload))]
        items += [(m.created_at, 1, m.id, "out", message) for m in outs for message in m.messages]
    items.sort(key=lambda item: item[:3])
    return [{"id": n, "direction": direction, "message": message, "at": at.isoformat(), **({"row": row} if rows else {})}
            for n, (at, _, row, direction, message) in enumerate(items, start=1) if n > after]


def _shown(event: dict) -> dict | None:
    """What the user's own bubble shows for an event they sent (an odd one stored before the checks shows nothing)."""
    if event.get("type") == "message":
        return event.get("message") if isinstance(event.get("message"), dict) else None
    if event.get("type") == "postback":
        postback = event.get("postback") if isinstance(event.get("postback"), dict) else {}
        return {"type": "postback", "data": postback.get("data", ""),
                "displayText": event.get("displayText") or postback.get("displayText", "")}
    return None
