"""Dates and times shown the Japanese way in Asia/Tokyo, public holidays, and when staff next answer."""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import jpholiday

from bot.config import WEEKDAY_KEYS

TOKYO = ZoneInfo("Asia/Tokyo")
WEEKDAYS = "月火水木金土日"

Hours = dict[str, tuple[tuple[time, time], ...]]


@lru_cache(maxsize=4096)  # a date's holiday never changes, and jpholiday takes a while to say (reports ask often)
def holiday_name(d: date) -> str | None:
    name = jpholiday.is_holiday_name(d)
    # jpholiday 1.x calls a substitute holiday "憲法記念日 振替休日"; calendars and people say 振替休日.
    if name and name.endswith("振替休日"):
        return "振替休日"
    return name


def format_date(d: date) -> str:
    """11月29日(土), or 11月23日(月・祝 勤労感謝の日) on a public holiday."""
    weekday = WEEKDAYS[d.weekday()]
    name = holiday_name(d)
    label = f"{weekday}・祝 {name}" if name else weekday
    return f"{d.month}月{d.day}日({label})"


def to_tokyo(dt: datetime) -> datetime:
    """The same moment in Asia/Tokyo; a naive datetime is taken to be Tokyo time already."""
    return dt.replace(tzinfo=TOKYO) if dt.tzinfo is None else dt.astimezone(TOKYO)


def format_clock(t: time) -> str:
    # Hours without a leading zero (9:00), as Japanese notices write them.
    return f"{t.hour}:{t.minute:02d}"


def format_datetime(dt: datetime) -> str:
    """11月29日(土) 10:00 in Tokyo time."""
    local = to_tokyo(dt)
    return f"{format_date(local.date())} {format_clock(local.time())}"


def format_time_range(start: datetime, end: datetime) -> str:
    """11月29日(土) 10:00〜11:00; the end keeps its date when it falls on another day."""
    s, e = to_tokyo(start), to_tokyo(end)
    end_text = format_clock(e.time()) if e.date() == s.date() else format_datetime(e)
    return f"{format_datetime(s)}〜{end_text}"


def _ranges_on(day: date, hours: Hours) -> tuple[tuple[time, time], ...]:
    key = "holiday" if holiday_name(day) else WEEKDAY_KEYS[day.weekday()]
    return tuple(sorted(hours.get(key, ())))


def next_open_time(
    now: datetime, hours: Hours, is_closed: Callable[[date], bool], limit_days: int = 60
) -> datetime | None:
    """The first moment at or after `now` within opening hours, in Tokyo time; None if none within limit_days.

    A public holiday follows the "holiday" ranges (closed when there are none); a day for which
    is_closed is true is skipped whole.
    """
    local = to_tokyo(now)
    for offset in range(limit_days + 1):
        day = local.date() + timedelta(days=offset)
        if is_closed(day):
            continue
        for start, end in _ranges_on(day, hours):
            opens = datetime.combine(day, start, TOKYO)
            if local < datetime.combine(day, end, TOKYO):
                return max(local, opens)
    return None


def describe_hours(hours: Hours) -> str:
    """平日 9:00〜17:00: the opening hours in one line, days with the same hours grouped."""
    keys = WEEKDAY_KEYS + ("holiday",)
    groups: dict[tuple[tuple[time, time], ...], list[str]] = {}
    for key in keys:
        if hours.get(key):
            groups.setdefault(tuple(sorted(hours[key])), []).append(key)
    return "、".join(f"{_days_label(days)} {_ranges_label(ranges)}" for ranges, days in groups.items())


_DAY_BLOCKS = ((WEEKDAY_KEYS, "毎日"), (WEEKDAY_KEYS[:5], "平日"), (WEEKDAY_KEYS[5:], "土日"))


def _days_label(days: list[str]) -> str:
    names = []
    for block, name in _DAY_BLOCKS:
        if tuple(days[: len(block)]) == block:
            names, days = [name], days[len(block):]
            break
    names += ["祝" if k == "holiday" else WEEKDAYS[WEEKDAY_KEYS.index(k)] for k in days]
    return "・".join(names)


def _ranges_label(ranges: tuple[tuple[time, time], ...]) -> str:
    return "・".join(f"{format_clock(s)}〜{format_clock(e)}" for s, e in ranges)


def describe_staff_reply(now: datetime, hours: Hours, is_closed: Callable[[date], bool]) -> str:
    """What to tell a person about when staff will answer them."""
    opens = next_open_time(now, hours, is_closed)
    if opens is None:
        return "担当者が確認のうえ、改めてお返事します。"
    if opens == to_tokyo(now):
        return f"担当者が確認して、まもなくお返事します（{describe_hours(hours)}）。"
    return f"担当者から{format_datetime(opens)}以降にお返事します。"
