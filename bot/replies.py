"""Builders for replies as plain LINE message JSON: the one format LINE and the simulator both render."""
from __future__ import annotations

from urllib.parse import urlencode

QUICK_REPLY_MAX = 13
LABEL_MAX = 20


def label(s: str) -> str:
    return s if len(s) <= LABEL_MAX else s[: LABEL_MAX - 1] + "…"


def postback(text: str, action: str, display: str | None = None, **data: str) -> dict:
    """A postback action; `display` is what appears as the user's own message."""
    payload = urlencode({"action": action, **data})
    if len(payload) > 300:
        raise ValueError("postback data over LINE's 300 characters")
    return {"type": "postback", "label": label(text), "data": payload, "displayText": display or text}


def say(text: str) -> dict:
    """A message action: the user sends `text`."""
    return {"type": "message", "label": label(text), "text": text}


def uri(text: str, link: str) -> dict:
    return {"type": "uri", "label": label(text), "uri": link}


def datetime_picker(text: str, action: str, mode: str = "datetime", **limits: str) -> dict:
    return {"type": "datetimepicker", "label": label(text), "data": urlencode({"action": action}), "mode": mode, **limits}


def text(body: str, quick: list[dict] | None = None) -> dict:
    message = {"type": "text", "text": body[:5000]}
    if quick:
        message["quickReply"] = {"items": [{"type": "action", "action": a} for a in quick[:QUICK_REPLY_MAX]]}
    return message


def flex(alt: str, contents: dict, quick: list[dict] | None = None) -> dict:
    message = {"type": "flex", "altText": alt[:400], "contents": contents}
    if quick:
        message["quickReply"] = {"items": [{"type": "action", "action": a} for a in quick[:QUICK_REPLY_MAX]]}
    return message


def with_quick(message: dict, actions: list[dict]) -> dict:
    """The message with `actions` added to its quick replies, as many as LINE's limit leaves room for."""
    items = list(message.get("quickReply", {}).get("items", []))
    items += [{"type": "action", "action": a} for a in actions][: max(0, QUICK_REPLY_MAX - len(items))]
    return {**message, "quickReply": {"items": items}} if items else message


def card(title: str, rows: list[tuple[str, str]] = (), body: list[str] = (), buttons: list[dict] = ()) -> dict:
    """A bubble with a title, label/value rows or paragraphs, and buttons (the first one primary)."""
    contents: list[dict] = [{"type": "text", "text": title, "weight": "bold", "size": "lg", "wrap": True}]
    if rows:
        contents.append({"type": "separator", "margin": "md"})
        contents.append({
            "type": "box", "layout": "vertical", "margin": "md", "spacing": "sm",
            "contents": [
                {"type": "box", "layout": "baseline", "spacing": "sm", "contents": [
                    {"type": "text", "text": k, "size": "sm", "color": "#888888", "flex": 3, "wrap": True},
                    {"type": "text", "text": v or "—", "size": "sm", "color": "#333333", "flex": 5, "wrap": True},
                ]}
                for k, v in rows
            ],
        })
    contents += [{"type": "text", "text": p, "size": "sm", "wrap": True, "margin": "md"} for p in body]
    bubble: dict = {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": contents}}
    if buttons:
        bubble["footer"] = {
            "type": "box", "layout": "vertical", "spacing": "sm",
            "contents": [
                {"type": "button", "style": "primary" if i == 0 else "secondary", "height": "sm", "action": b}
                for i, b in enumerate(buttons)
            ],
        }
    return bubble


# --- reading a Flex message back, for people (the staff console's transcript) ---------------------------

def flex_summary(message: dict) -> str:
    """A Flex message as plain lines: its alt text, then each bubble's texts and button labels in order.

    A carousel gets one line per bubble (「・11月26日(木)：10:00〜11:00 / 11:00〜12:00」), so staff see which slots
    were offered, not only the alt text.
    """
    contents = message.get("contents") or {}
    bubbles = contents.get("contents", []) if contents.get("type") == "carousel" else [contents]
    lines = [message.get("altText", "")] if message.get("altText") else []
    for bubble in bubbles:
        parts = [p for section in ("header", "hero", "body", "footer") for p in _flex_parts(bubble.get(section))]
        if parts:
            line = parts[0] + ("：" + " / ".join(parts[1:]) if len(parts) > 1 else "")
            lines.append(f"・{line}" if len(bubbles) > 1 else line)
    return "\n".join(lines)


def _flex_parts(node) -> list[str]:
    """The readable pieces of one Flex component: texts, button labels; a row (baseline/horizontal box) as one."""
    if not isinstance(node, dict):
        return []
    kind = node.get("type")
    if kind == "text":
        said = node.get("text") or "".join(s.get("text", "") for s in node.get("contents", []) if isinstance(s, dict))
        return [said] if said else []
    if kind == "button":
        shown = (node.get("action") or {}).get("label")
        return [shown] if shown else []
    if kind == "box":
        parts = [p for child in node.get("contents", []) for p in _flex_parts(child)]
        return [" ".join(parts)] if parts and node.get("layout") in ("baseline", "horizontal") else parts
    return []
