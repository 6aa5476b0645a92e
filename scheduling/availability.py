"""Availability: each coordinator's opening hours, the free consultation slots, and which slot to offer."""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import groupby

from bot.config import WEEKDAY_KEYS, Config, Coordinator
from bot.jatime import TOKYO, holiday_name, to_tokyo

Interval = tuple[datetime, datetime]


@dataclass(frozen=True, order=True)
class Slot:
    start: datetime
    end: datetime
    coordinator: str


def opening_hours(coordinator: Coordinator, day: date, config: Config) -> tuple[Interval, ...]:
    """The coordinator's open intervals on `day`, Tokyo-aware, earliest first."""
    if config.is_closed(day):
        return ()
    if day in coordinator.dates:
        ranges = coordinator.dates[day]
    elif holiday_name(day):
        # A holiday never falls back to the weekday's hours: no "holiday" key means a day off.
        ranges = coordinator.hours.get("holiday", ())
    else:
        ranges = coordinator.hours.get(WEEKDAY_KEYS[day.weekday()], ())
    return tuple(sorted((datetime.combine(day, s, TOKYO), datetime.combine(day, e, TOKYO)) for s, e in ranges))


def free_slots(
    config: Config,
    start: datetime,
    end: datetime,
    busy: Mapping[str, Iterable[Interval]],
    *,
    now: datetime | None = None,
    method: str | None = None,
    region: str | None = None,
    coordinator: str | None = None,
) -> list[Slot]:
    """Free slots lying within [start, end), sorted by (start, coordinator).

    With `now`, the minimum notice and the booking horizon apply; without it (staff looking ahead) neither does.
    """
    start, end = to_tokyo(start), to_tokyo(end)
    # A slot must start at or after `earliest` and before `horizon`, and end by `end`.
    earliest, horizon = start, end
    if now is not None:
        now = to_tokyo(now)
        rules = config.booking
        notice = rules.min_notice_hours_visit if method == "visit" else rules.min_notice_hours
        earliest = max(earliest, now + timedelta(hours=notice))
        horizon = min(horizon, now + timedelta(days=rules.horizon_days))
    buffer = timedelta(minutes=config.booking.buffer_minutes)
    days = [start.date() + timedelta(days=n) for n in range((end.date() - start.date()).days + 1)]

    slots = []
    for c in config.coordinators:
        if not _serves(c, method, region) or (coordinator is not None and c.id != coordinator):
            continue
        blocked = _Busy(busy.get(c.id, ()))
        length = timedelta(minutes=c.slot_minutes)
        for day in days:
            for opens, closes in opening_hours(c, day, config):
                s = opens
                while s + length <= closes:
                    e = s + length
                    if earliest <= s < horizon and e <= end and not blocked.overlaps(s - buffer, e + buffer):
                        slots.append(Slot(s, e, c.id))
                    s = e
    slots.sort(key=lambda slot: (slot.start, slot.coordinator))
    return slots


def is_bookable(
    config: Config,
    slot: Slot,
    busy: Mapping[str, Iterable[Interval]],
    *,
    now: datetime | None,
    method: str | None,
    region: str | None,
) -> bool:
    """Whether `slot` is one free_slots would offer now; refuses forged and stale slots."""
    # Asking free_slots for the slot's own span keeps one set of rules: the slot must be on the grid as well as free.
    candidates = free_slots(config, slot.start, slot.end, busy, now=now, method=method, region=region,
                            coordinator=slot.coordinator)
    return slot in candidates


def week_start(d: date) -> date:
    """The Monday of d's ISO week."""
    return d - timedelta(days=d.weekday())


def offer(slots: list[Slot], week_load: Mapping[tuple[str, date], int], preferred: str | None = None) -> list[Slot]:
    """One slot per start time: `preferred` if free then, else the coordinator with the fewest bookings that week."""
    offered = []
    for start, same_time in groupby(sorted(slots, key=lambda s: (s.start, s.coordinator)), key=lambda s: s.start):
        candidates = list(same_time)
        monday = week_start(to_tokyo(start).date())
        chosen = next((s for s in candidates if s.coordinator == preferred), None)
        if chosen is None:
            chosen = min(candidates, key=lambda s: (week_load.get((s.coordinator, monday), 0), s.coordinator))
        offered.append(chosen)
    return offered


def group_by_day(slots: Iterable[Slot]) -> list[tuple[date, list[Slot]]]:
    """The slots per Tokyo day, days in order and slots in (start, coordinator) order within each."""
    ordered = sorted(slots, key=lambda s: (s.start, s.coordinator))
    return [(day, list(group)) for day, group in groupby(ordered, key=lambda s: to_tokyo(s.start).date())]


def _serves(c: Coordinator, method: str | None, region: str | None) -> bool:
    return (method is None or method in c.methods) and (region is None or not c.regions or region in c.regions)


class _Busy:
    """One coordinator's busy time merged into disjoint sorted intervals, so an overlap test is one bisect."""

    def __init__(self, intervals: Iterable[Interval]):
        starts: list[datetime] = []
        ends: list[datetime] = []
        for s, e in sorted((to_tokyo(s), to_tokyo(e)) for s, e in intervals):
            if ends and s <= ends[-1]:
                ends[-1] = max(ends[-1], e)
            else:
                starts.append(s)
                ends.append(e)
        self._starts, self._ends = starts, ends

    def overlaps(self, start: datetime, end: datetime) -> bool:
        # The first interval ending after `start` is the only one that can reach into [start, end).
        i = bisect_right(self._ends, start)
        return i < len(self._starts) and self._starts[i] < end
