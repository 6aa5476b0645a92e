"""POST /callback: check LINE's signature, validate the events with the SDK's webhook models, write them to the inbox."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging

from flask import Blueprint, current_app, request
from linebot.v3.models.events import UnknownEvent
from linebot.v3.webhooks import Event
from pydantic.v1 import ValidationError  # what the SDK's webhook models raise

from handlers.inbox import store_events
from scheduling import metrics

log = logging.getLogger(__name__)
bp = Blueprint("webhook", __name__)

# LINE's bodies nest six levels or so; a far deeper one is not LINE's and would only cost stack further on.
MAX_DEPTH = 32


def signature_ok(secret: str, body: bytes, signature: str) -> bool:
    if not signature.isascii():  # hmac.compare_digest raises on non-ASCII text; such a header is simply wrong
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, signature)


def parse_events(body: bytes) -> list[dict] | None:
    """The body's events as sent, or None when it is not a webhook body LINE could have sent.

    The JSON must be strict (UTF-8, no NaN or Infinity, not absurdly deep) and every event must pass
    line-bot-sdk's webhook models.
    """
    try:
        text = body.decode("utf-8")
        doc = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list) or _too_deep(doc):
        return None
    if not all(_is_line_event(event) for event in doc["events"]):
        return None
    return [_without_nul(event) for event in doc["events"]]


def _is_line_event(event) -> bool:
    """Whether the SDK's models take the event: a known type must fit its model whole (source, message, postback).

    What the SDK cannot name (a new event type, a new message or source type) passes, as with its
    WebhookParser, if it has the base fields every event has. Unlike WebhookParser, a known event that
    fails its own model is refused rather than let through as an unknown one.
    """
    # The models let a null source through, and pydantic v1 turns a list of pairs into an object: LINE sends neither.
    if not isinstance(event, dict) or not isinstance(event.get("source", {}), dict):
        return False
    try:
        try:
            Event.from_dict(event)
        except ValidationError:
            return False
        except ValueError:  # the SDK's lookup of a type it does not know
            UnknownEvent.new_from_json_dict(event)
    except (ValueError, TypeError, KeyError, AttributeError):  # the models' ways of saying "not an event"
        return False
    return True


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _too_deep(doc) -> bool:
    level, depth = [doc], 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            return True
        level = [child for node in level for child in (node.values() if isinstance(node, dict) else node)
                 if isinstance(child, (dict, list))]
    return False


def _without_nul(node):
    """U+0000 becomes U+FFFD: PostgreSQL's text cannot hold it, and no one types it."""
    if isinstance(node, str):
        return node.replace("\x00", "\ufffd")
    if isinstance(node, dict):
        return {_without_nul(key): _without_nul(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_without_nul(value) for value in node]
    return node


@bp.post("/callback")
@metrics.ack_seconds.time()
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
    metrics.events_received.labels("line").inc(new)
    if new:
        services.inbox.notify()
    return {"status": "ok"}
