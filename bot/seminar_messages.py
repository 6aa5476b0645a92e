"""What is sent to many about a seminar: its announcement (a Flex bubble with 申し込む) and its reminders.

Pure: a seminar is any object with the Seminar fields (title, start_at, end_at, venue, ...), so this module needs
neither the database nor its models.
"""
from __future__ import annotations

from bot.jatime import format_time_range
from bot.replies import card, flex, postback, text

REMINDER_KINDS = ("before", "day_of")


def announcement(seminar) -> list[dict]:
    """The announcement: the seminar as a card whose 申し込む starts registration (postback action=seminar&id=N)."""
    when = format_time_range(seminar.start_at, seminar.end_at)
    rows = [("日時", when), ("会場", _where(seminar))]
    if seminar.subsidy_briefing:
        rows.append(("", "補助金の説明もあります"))
    body = [seminar.description] if seminar.description else []
    bubble = card(seminar.title, rows=rows, body=body,
                  buttons=[postback("申し込む", "seminar", display="このセミナーに申し込みます", id=str(seminar.id))])
    return [flex(f"セミナーのご案内: {seminar.title}（{when}）", bubble)]


def reminder(seminar, kind: str, mode: str, days_before: int) -> list[dict]:
    """The reminder of `kind` for a participant in `mode`: the meeting URL online, the venue on site.

    Everyone of one seminar, kind and mode gets the same messages, so they can share one multicast.
    """
    when = format_time_range(seminar.start_at, seminar.end_at)
    opening = ("本日はセミナーの開催日です。" if kind == "day_of"
               else f"{days_before}日後にセミナーを開催します。")
    lines = [f"{opening}お申し込みいただき、ありがとうございます。", "", f"【{seminar.title}】", f"日時: {when}"]
    if mode == "online":
        lines.append("参加方法: オンライン")
        if seminar.online_url:
            lines.append(f"参加URL: {seminar.online_url}")
        else:
            lines.append("参加URLは開催までにあらためてお送りします。")
    else:
        lines.append(f"会場: {seminar.venue or '（追ってご案内します）'}")
        if seminar.venue_address:
            lines.append(f"所在地: {seminar.venue_address}")
        if seminar.map_url:
            lines.append(f"地図: {seminar.map_url}")
    lines += ["", "ご都合が悪くなった場合は、メニューの「予約の確認・変更」から取り消しをお願いいたします。"]
    return [text("\n".join(lines))]


def _where(seminar) -> str:
    if seminar.venue and seminar.online_seats:
        return f"{seminar.venue}／オンライン"
    return seminar.venue or "オンライン"
