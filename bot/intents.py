"""From a LINE webhook event (plain JSON) to an Intent: a table, not an if/elif on text."""
from __future__ import annotations

import re
import unicodedata
from urllib.parse import parse_qsl

from bot.conversation import Intent

# Typed commands that work from any state, matched whole after normalisation.
COMMANDS: dict[str, tuple[str, ...]] = {
    "menu": ("メニュー", "めにゅー", "menu"),
    "cancel": ("やめる", "止める", "キャンセル", "中止"),
    "restart": ("最初から", "はじめから", "初めから"),
    "handover": ("担当者と話したい", "担当者と話す", "人と話したい", "オペレーター"),
    "resume": ("続きから", "つづきから"),
    "erase": ("データ削除", "データを削除", "データの削除", "データ削除したい", "データを削除したい", "個人情報削除",
              "個人情報の削除", "個人情報を削除", "登録情報の削除", "登録情報を削除"),
    "back": ("戻る", "もどる", "前に戻る", "ひとつ戻る", "一つ戻る", "back"),
}
_COMMAND_OF = {word: name for name, words in COMMANDS.items() for word in words}

# Rich-menu items (postback action=menu&item=ID) and the intents they stand for.
MENU_ITEMS: dict[str, str] = {
    "consult": "consult",
    "bookings": "bookings",
    "seminars": "seminars",
    "faq": "faq",
    "popup": "popup",
    "staff": "handover",
    "erase": "erase",
}

MEDIA_TYPES = frozenset({"image", "video", "audio", "file", "location", "sticker"})


def _command_key(text: str) -> str:
    return re.sub(r"[\s。．.!！?？]+", "", unicodedata.normalize("NFKC", text)).lower()


def intent_of(event: dict) -> Intent | None:
    """The intent behind a one-to-one event, or None for events the conversation does not take."""
    if event.get("source", {}).get("type", "user") != "user":
        return None
    kind = event.get("type")
    if kind == "follow":
        return Intent("follow")
    if kind == "unfollow":
        return Intent("unfollow")
    if kind == "postback":
        postback = event.get("postback") or {}
        data = dict(parse_qsl(str(postback.get("data", "")), keep_blank_values=True))
        action = data.pop("action", "")
        if action == "menu":
            action = MENU_ITEMS.get(data.pop("item", ""), "")
        if not action:
            return Intent("unknown_postback")
        return Intent(action, data=data, params=dict(postback.get("params") or {}))
    if kind == "message":
        message = event.get("message") or {}
        if message.get("type") == "text":
            text = str(message.get("text", ""))
            return Intent(_COMMAND_OF.get(_command_key(text), "text"), text=text)
        if message.get("type") in MEDIA_TYPES:
            return Intent("media", data={"type": message["type"]})
    return None
