"""Small helpers shared by tests: driving the simulator API and reading what the bot said."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from handlers.simulator import SESSION_KEY

SECRET = "channel-secret"


def say(client, user: str, text: str) -> list[dict]:
    return send(client, user, {"type": "message", "message": {"type": "text", "text": text}})


def tap(client, user: str, data: str, display: str = "") -> list[dict]:
    return send(client, user, {"type": "postback", "postback": {"data": data}, "displayText": display})


def book(client, user: str, data: str) -> list[dict]:
    """Tap a time in the simulator, then 予約する on the confirmation card."""
    asked = tap(client, user, data)
    assert "この日時で予約しますか" in texts(asked), texts(asked)
    return tap(client, user, "action=confirm_slot")


def adopt(client, user: str) -> None:
    """Give the test client's browser session the simulated user `user`, as if the simulator had issued it.

    The simulator issues random ids; tests name their users instead, to find them in the console and the database.
    """
    with client.session_transaction() as session:
        if user not in session.get(SESSION_KEY, []):
            session[SESSION_KEY] = [*session.get(SESSION_KEY, []), user]


def send(client, user: str, event: dict) -> list[dict]:
    """The bot's messages (LINE JSON) in answer to one simulated event."""
    adopt(client, user)
    response = client.post("/simulator/api/send", json={"user": user, "event": event})
    assert response.status_code == 200, response.get_data(as_text=True)
    return [m["message"] for m in response.json["messages"] if m["direction"] == "out"]


def texts(messages: list[dict]) -> str:
    """Everything a person would read in the messages, flex cards included, as one string."""
    out: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("text", "altText", "label"):
                if isinstance(node.get(key), str):
                    out.append(node[key])
            for value in node.values():
                if isinstance(value, (dict, list)):
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(messages)
    return "\n".join(out)


def actions(messages) -> list[dict]:
    """Every action in the messages (buttons, quick replies), in order."""
    found: list[dict] = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("action"), dict):
                found.append(node["action"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(messages)
    return found


def quick_labels(messages: list[dict]) -> list[str]:
    return [i["action"]["label"] for m in messages for i in m.get("quickReply", {}).get("items", [])]


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def post(client, payload, signature: str | None = None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    headers["X-Line-Signature"] = sign(body) if signature is None else signature
    return client.post("/callback", data=body, headers=headers)


class LineUserDriver:
    """A LINE user: each action is a signed webhook event; the answer is what LINE delivered to them."""

    USER = "U4af4980629a1b2c3d4e5f60718293a4b"

    def __init__(self, client, app, fake, user=USER):
        self.client, self.fake, self.user = client, fake, user
        self.services = app.extensions["dxdesk"] if app else None  # without an app: only to make events

    def event(self, **body) -> dict:
        """An event as LINE sends it; a follow carries `follow.isUnblocked`, as LINE's (and the SDK's model) do."""
        extra = {"follow": {"isUnblocked": False}} if body.get("type") == "follow" else {}
        return {"type": "message", "mode": "active", "timestamp": 1, "webhookEventId": uuid.uuid4().hex.upper(),
                "deliveryContext": {"isRedelivery": False}, "source": {"type": "user", "userId": self.user},
                "replyToken": self.fake.issue_reply_token(self.user), **extra, **body}

    def send(self, **body) -> list[dict]:
        before = len(self.fake.delivered(self.user))
        assert post(self.client, {"destination": "Ubot", "events": [self.event(**body)]}).status_code == 200
        self.services.inbox.drain()
        return [m for batch in self.fake.delivered(self.user)[before:] for m in batch]

    def say(self, text):
        return self.send(message={"id": "1", "type": "text", "text": text, "quoteToken": "q"})

    def tap(self, data, **params):
        return self.send(type="postback", postback={"data": data, **({"params": params} if params else {})})

    def book(self, data, **params):
        """Tap a time (or pick one), then 予約する on 「この日時で予約しますか」: what the confirmation said."""
        asked = self.tap(data, **params)
        assert "この日時で予約しますか" in texts(asked), texts(asked)
        return self.tap("action=confirm_slot")


def add_registration(db, seminar_id: int, user: str, *, mode: str = "onsite", status: str = "registered",
                     company: str = "鹿屋商店", name: str = "大隅 太郎", at=None) -> tuple[int, str]:
    """A registration put straight into the database (the LINE conversation is tested elsewhere).

    Returns (registration id, check-in token)."""
    from datetime import UTC, datetime

    from storage.models import LineUser, SeminarRegistration
    from storage.seminars import new_checkin_token

    at = at or datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    with db.unit_of_work() as s:
        if s.get(LineUser, user) is None:
            s.add(LineUser(id=user, company=company, contact_name=name, created_at=at, updated_at=at))
        registration = SeminarRegistration(seminar_id=seminar_id, user_id=user, mode=mode, status=status,
                                           company=company, contact_name=name, checkin_token=new_checkin_token(),
                                           waiting_since=at if status == "waiting" else None,
                                           attended_at=at if status == "attended" else None,
                                           attended_by="cli" if status == "attended" else None,
                                           created_at=at, updated_at=at)
        s.add(registration)
        s.commit()
        return registration.id, registration.checkin_token


def line_intake(u: LineUserDriver, *, company: str, name: str, phone: str, email: str, question: str,
                method: str = "online") -> str:
    """A LINE user's whole intake by signed webhook events, up to the receipt; what the receipt said.

    `question` should speak of paper invoices, so the triage proposes 業務効率化 and 「はい」 accepts it.
    """
    u.send(type="follow")
    u.tap("action=consent&v=2026-11")
    u.say(question)
    u.tap("action=yes")
    u.say(company)
    u.tap("action=industry&v=製造業")
    u.say("8人")
    u.say("いちき串木野")
    u.say(name)
    u.say(phone)
    u.say(email)
    u.tap(f"action=method&v={method}")
    return texts(u.tap("action=submit"))


def drain_through_retries(services) -> None:
    """Process the inbox until every failing event has used up its attempts, waiting out each back-off."""
    from handlers.inbox import BACKOFF, MAX_ATTEMPTS
    for _ in range(MAX_ATTEMPTS):
        services.inbox.drain()
        services.clock.advance(seconds=BACKOFF[-1].total_seconds())
    services.inbox.drain()


def database_text(db) -> str:
    """Every row of every table as one text, to search for values that must not be there."""
    from sqlalchemy import select

    from storage.models import Base
    with db.engine.connect() as conn:
        rows = [dict(row._mapping) for table in Base.metadata.sorted_tables for row in conn.execute(select(table))]
    return json.dumps(rows, ensure_ascii=False, default=str)


def assert_bookings_match_calendar(db, gcal, calendar_id: str) -> None:
    """Every active booking has its event at its time in the fake calendar, and every live event an active booking."""
    from datetime import datetime

    from sqlalchemy import select

    from storage.models import ACTIVE_BOOKING, Booking
    with db.unit_of_work() as s:
        active = {b.calendar_event_id: b.start for b in s.scalars(select(Booking).where(
            Booking.status.in_(ACTIVE_BOOKING), Booking.simulated.is_(False)))}
    events = {e["id"]: datetime.fromisoformat(e["start"]["dateTime"]) for e in gcal.events(calendar_id)}
    assert events == active


def assert_nothing_shown_twice(line, users) -> None:
    """What the fake LINE showed: each reply token served at most one reply, to the user it was issued for; each retry
    key at most one push to a user; and no user saw the same messages twice, however they came (a reply, then the same
    messages again as a push, say)."""
    from collections import Counter

    deliveries = line.deliveries()
    issued = line.issued_reply_tokens()
    replies = [d for d in deliveries if d.via == "reply"]
    assert [d.key for d in replies if issued.get(d.key) != d.to] == []
    tokens = Counter(d.key for d in replies)
    assert [token for token, n in tokens.items() if n > 1] == []
    keys = Counter((d.key, d.to) for d in deliveries if d.via != "reply")
    assert [key for key, n in keys.items() if n > 1 or key[0] is None] == []
    for user in users:
        shown = Counter(json.dumps(d.messages, sort_keys=True, ensure_ascii=False) for d in deliveries if d.to == user)
        twice = [(texts(json.loads(m)), n) for m, n in shown.items() if n > 1]
        assert twice == [], (user, twice)


@contextmanager
def served_like_dxdesk_serve(app) -> Iterator[int]:
    """`app` behind `dxdesk serve`'s own server (handlers.serving: waitress and the access line) in a thread; its port."""
    from app import MAX_BODY
    from handlers.serving import make_server
    server = make_server(app, "127.0.0.1", 0, max_body=MAX_BODY)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield server.effective_port
    finally:
        server.close()
        server.task_dispatcher.shutdown()
        thread.join(timeout=10)
