"""Seminars in LINE: the carousel of what is on, registering (mode, consent, company and name), the confirmation,
the promotion notice and cancelling (pure steps: no database, no clock calls)."""
from __future__ import annotations

from typing import Protocol

from bot import replies as r
from bot.jatime import format_time_range
from bot.seminar_checkin import checkin_messages

MODES = {"onsite": "会場", "online": "オンライン"}


class SeminarLike(Protocol):
    id: int
    title: str
    venue: str | None


def ics_url(public_url: str, token: str) -> str:
    """The registration's calendar file (handlers/ical.py), absolute on the public address."""
    return f"{public_url.rstrip('/')}/seminars/{token}.ics"


def where(seminar, mode: str) -> str:
    if mode == "online":
        return "オンライン（参加用URLは開催前にこのLINEでお送りします）"
    return seminar.venue or "会場"


def promoted_messages(seminar, registration, public_url: str) -> list[dict]:
    """The notice to someone moved from the waiting list to a seat, with a one-tap 辞退する."""
    bubble = r.card("キャンセル待ちから繰り上がりました", rows=[
        ("セミナー", seminar.title), ("日時", format_time_range(seminar.start_at, seminar.end_at)),
        ("参加方法", MODES.get(registration.mode, registration.mode)), ("場所", where(seminar, registration.mode))],
        body=["お席をご用意できましたので、お申し込みを確定しました。ご都合が合わなくなった場合は「辞退する」を押してください。"
              "次にお待ちの方にお席をお回しします。"],
        buttons=[r.uri("カレンダーに追加", ics_url(public_url, registration.checkin_token)),
                 r.postback("辞退する", "seminar_decline", display="辞退する", r=str(registration.id))])
    return [r.flex(f"キャンセル待ちから繰り上がりました：{seminar.title}", bubble),
            *checkin_messages(registration, public_url)]
