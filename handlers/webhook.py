"""POST /callback: check LINE's signature, write the events to the inbox, answer at once."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging

from flask import Blueprint, current_app, request

from handlers.inbox import store_events

log = logging.getLogger(__name__)
bp = Blueprint("webhook", __name__)


def signature_ok(secret: str, body: bytes, signature: str) -> bool:
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, signature)


def parse_events(body: bytes) -> list[dict] | None:
    """The body's events, or None when it is not a webhook body."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    events = doc.get("events") if isinstance(doc, dict) else None
    if not isinstance(events, list) or not all(isinstance(e, dict) and isinstance(e.get("type"), str) for e in events):
        return None
    return events


@bp.post("/callback")
def callback():
    """LINE webhook: 400 unless signed and well-formed; otherwise queued and 200."""
    services = current_app.extensions["dxdesk"]
    secret = services.settings.line_channel_secret
    if not secret:
        return {"error": "LINEチャネルが設定されていません（シミュレーターモード）"}, 503
    body = request.get_data(cache=False)
    signature = request.headers.get("X-Line-Signature", "")
    if not signature or not signature_ok(secret, body, signature):
        log.warning("webhook refused: bad or missing signature")
        return {"error": "invalid signature"}, 400
    events = parse_events(body)
    if events is None:
        log.warning("webhook refused: malformed body")
        return {"error": "malformed body"}, 400
    new = store_events(services.db, events, "line", services.clock.now())
    log.info("webhook: %d events, %d new", len(events), new)
    if new:
        services.inbox.notify()
    return {"status": "ok"}
