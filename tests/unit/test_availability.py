import random
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from bot.config import Coordinator, load_config, parse_hours, parse_ranges
from bot.jatime import TOKYO
from scheduling.availability import Slot, free_slots, group_by_day, is_bookable, offer, opening_hours, week_start

BASE = load_config()
WEEKDAYS_WITH_LUNCH = {day: ["09:00-12:00", "13:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
EVERY_DAY = {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun", "holiday")}


def tokyo(*args) -> datetime:
    return datetime(*args, tzinfo=TOKYO)


def person(id: str, hours: dict = WEEKDAYS_WITH_LUNCH, **fields) -> Coordinator:
    return Coordinator(id=id, name=id, hours=parse_hours(hours), **fields)


def program(*coordinators: Coordinator, closures=BASE.closures, **booking):
    return replace(BASE, coordinators=coordinators, closures=closures, booking=replace(BASE.booking, **booking))


def on(config, day: date, busy=None, **filters) -> list[Slot]:
    midnight = datetime.combine(day, time(), TOKYO)
    return free_slots(config, midnight, midnight + timedelta(days=1), busy or {}, **filters)


def clocks(slots: list[Slot]) -> list[str]:
    return [s.start.strftime("%H:%M") for s in slots]


TUE = date(2026, 11, 24)
ALL_TUESDAY = ["09:00", "10:00", "11:00", "13:00", "14:00", "15:00", "16:00"]


@pytest.mark.parametrize("minutes, hours, expected", [
    (60, ["09:00-12:00", "13:00-17:00"], ALL_TUESDAY),
    (90, ["09:00-12:00", "13:00-17:00"], ["09:00", "10:30", "13:00", "14:30"]),
    (45, ["09:00-10:00"], ["09:00"]),
    (30, ["13:00-14:00", "09:00-10:00"], ["09:00", "09:30", "13:00", "13:30"]),
])
def test_lays_slots_on_a_grid_from_the_start_of_each_range_and_drops_a_short_remainder(minutes, hours, expected):
    config = program(person("aoki", {"tue": hours}, slot_minutes=minutes))
    slots = on(config, TUE)
    assert clocks(slots) == expected
    assert all(s.end - s.start == timedelta(minutes=minutes) and s.coordinator == "aoki" for s in slots)


@pytest.mark.parametrize("minutes", [30, 45, 60, 90, 120])
def test_no_slot_overlaps_the_lunch_break(minutes):
    slots = on(program(person("aoki", slot_minutes=minutes)), TUE)
    lunch = (tokyo(2026, 11, 24, 12), tokyo(2026, 11, 24, 13))
    assert any(s.end <= lunch[0] for s in slots) and any(s.start >= lunch[1] for s in slots)
    assert not [s for s in slots if s.start < lunch[1] and s.end > lunch[0]]


@pytest.mark.parametrize("start, end, expected", [
    (tokyo(2026, 11, 24, 9, 30), tokyo(2026, 11, 24, 11, 30), ["10:00"]),
    (tokyo(2026, 11, 24, 9), tokyo(2026, 11, 24, 11), ["09:00", "10:00"]),
    (datetime(2026, 11, 24, 4, 30, tzinfo=UTC), tokyo(2026, 11, 25), ["14:00", "15:00", "16:00"]),
])
def test_keeps_only_slots_lying_wholly_within_the_window(start, end, expected):
    assert clocks(free_slots(program(person("aoki")), start, end, {})) == expected


@pytest.mark.parametrize("day, coordinators", [
    (date(2026, 11, 27), {"aoki", "sato"}),
    (date(2026, 11, 28), {"sato"}),
    (date(2026, 11, 29), set()),
])
def test_a_saturday_is_open_only_for_the_coordinator_whose_hours_open_it(day, coordinators):
    config = program(person("aoki"), person("sato", WEEKDAYS_WITH_LUNCH | {"sat": ["10:00-15:00"]}))
    assert {s.coordinator for s in on(config, day)} == coordinators


WITH_HOLIDAY = WEEKDAYS_WITH_LUNCH | {"holiday": ["10:00-12:00"]}


@pytest.mark.parametrize("day, hours, expected", [
    (date(2026, 11, 23), WITH_HOLIDAY, ["10:00", "11:00"]),
    (date(2026, 11, 23), WEEKDAYS_WITH_LUNCH, []),
    (date(2026, 5, 6), WITH_HOLIDAY, ["10:00", "11:00"]),
    (date(2026, 5, 6), WEEKDAYS_WITH_LUNCH, []),
    (date(2026, 11, 30), WITH_HOLIDAY, ALL_TUESDAY),
])
def test_a_public_holiday_uses_the_holiday_hours_and_never_the_weekdays(day, hours, expected):
    assert clocks(on(program(person("aoki", hours)), day)) == expected


@pytest.mark.parametrize("day", [date(2026, 11, 23), date(2026, 5, 6)])
def test_on_a_holiday_only_the_built_in_coordinator_with_holiday_hours_is_free(day):
    slots = on(BASE, day)
    assert [(s.coordinator, s.start.hour) for s in slots] == [("yamashita", 10), ("yamashita", 11)]


def test_opening_hours_are_tokyo_aware_intervals_in_order():
    coordinator = person("aoki", {"mon": ["13:00-17:00", "09:00-12:00"]})
    assert opening_hours(coordinator, date(2026, 11, 30), BASE) == (
        (tokyo(2026, 11, 30, 9), tokyo(2026, 11, 30, 12)),
        (tokyo(2026, 11, 30, 13), tokyo(2026, 11, 30, 17)),
    )


@pytest.mark.parametrize("day, ranges, expected", [
    (date(2026, 11, 29), ["10:00-12:00"], ["10:00", "11:00"]),
    (TUE, [], []),
    (TUE, ["14:00-16:00"], ["14:00", "15:00"]),
    (date(2026, 11, 23), ["09:00-10:00"], ["09:00"]),
    (date(2026, 12, 30), ["10:00-12:00"], []),
])
def test_a_date_override_replaces_the_days_hours_but_not_a_closure(day, ranges, expected):
    config = program(person("aoki", dates={day: parse_ranges(ranges)}))
    assert clocks(on(config, day)) == expected


def test_the_year_end_closure_has_no_slots_for_anyone():
    slots = free_slots(BASE, tokyo(2026, 12, 28), tokyo(2027, 1, 5), {})
    assert {s.start.date() for s in slots} == {date(2026, 12, 28), date(2027, 1, 4)}
    closed = [date(2026, 12, 29) + timedelta(days=n) for n in range(6)]
    assert not [d for d in closed for c in BASE.coordinators if opening_hours(c, d, BASE)]


@pytest.mark.parametrize("busy, blocked", [
    ((datetime(2026, 11, 24, 1, tzinfo=UTC), datetime(2026, 11, 24, 2, tzinfo=UTC)), ["10:00"]),
    ((datetime(2026, 11, 24, 1, 30, tzinfo=UTC), datetime(2026, 11, 24, 1, 45, tzinfo=UTC)), ["10:00"]),
    ((datetime(2026, 11, 24, 2, 59, tzinfo=UTC), datetime(2026, 11, 24, 3, 1, tzinfo=UTC)), ["11:00"]),
    ((datetime(2026, 11, 23, 23, tzinfo=UTC), datetime(2026, 11, 24, 0, tzinfo=UTC)), []),
    ((datetime(2026, 11, 23, 20, tzinfo=timezone(timedelta(hours=-5))),
      datetime(2026, 11, 23, 21, tzinfo=timezone(timedelta(hours=-5)))), ["10:00"]),
])
def test_a_busy_interval_in_another_zone_blocks_the_slot_at_the_same_moment(busy, blocked):
    slots = on(program(person("aoki")), TUE, {"aoki": [busy]})
    assert clocks(slots) == [c for c in ALL_TUESDAY if c not in blocked]


@pytest.mark.parametrize("busy_until, buffer, blocked", [
    (time(11), 0, ["10:00"]),
    (time(11), 15, ["09:00", "10:00", "11:00"]),
    (time(10, 45), 15, ["09:00", "10:00"]),
    (time(10, 45), 0, ["10:00"]),
])
def test_the_buffer_keeps_the_neighbouring_slots_free_of_meetings(busy_until, buffer, blocked):
    busy = {"aoki": [(tokyo(2026, 11, 24, 10), datetime.combine(TUE, busy_until, TOKYO))]}
    slots = on(program(person("aoki"), buffer_minutes=buffer), TUE, busy)
    assert clocks(slots) == [c for c in ALL_TUESDAY if c not in blocked]


def test_overlapping_unsorted_busy_intervals_of_one_coordinator_block_only_that_coordinator():
    busy = {"aoki": [(tokyo(2026, 11, 24, 13, 30), tokyo(2026, 11, 24, 14, 30)),
                     (tokyo(2026, 11, 24, 9), tokyo(2026, 11, 24, 9, 30)),
                     (tokyo(2026, 11, 24, 14), tokyo(2026, 11, 24, 16, 10))]}
    slots = on(program(person("aoki"), person("sato")), TUE, busy)
    assert clocks([s for s in slots if s.coordinator == "aoki"]) == ["10:00", "11:00"]
    assert clocks([s for s in slots if s.coordinator == "sato"]) == ALL_TUESDAY


@pytest.mark.parametrize("seed", range(8))
def test_free_slots_agree_with_checking_every_busy_interval_for_every_slot(seed):
    rng = random.Random(seed)
    config = program(person("aoki", EVERY_DAY, slot_minutes=rng.choice((30, 45, 60))),
                     buffer_minutes=rng.choice((0, 10, 30)))
    start = tokyo(2026, 11, 24)
    zones = (TOKYO, UTC, timezone(timedelta(hours=-5)))
    busy = []
    for _ in range(rng.randrange(1, 40)):
        s = start + timedelta(minutes=rng.randrange(0, 7 * 24 * 60, 5))
        e = s + timedelta(minutes=rng.randrange(5, 300, 5))
        busy.append((s.astimezone(rng.choice(zones)), e.astimezone(rng.choice(zones))))
    every = free_slots(config, start, start + timedelta(days=7), {})
    pad = timedelta(minutes=config.booking.buffer_minutes)
    expected = [x for x in every if not any(b0 < x.end + pad and b1 > x.start - pad for b0, b1 in busy)]
    assert free_slots(config, start, start + timedelta(days=7), {"aoki": busy}) == expected


@pytest.mark.parametrize("method, first", [
    ("online", tokyo(2026, 11, 24, 11)),
    ("phone", tokyo(2026, 11, 24, 11)),
    ("email", tokyo(2026, 11, 24, 11)),
    (None, tokyo(2026, 11, 24, 11)),
    ("visit", tokyo(2026, 11, 25, 9)),
])
def test_minimum_notice_is_longer_for_a_visit_than_for_other_methods(method, first):
    slots = free_slots(program(person("aoki")), tokyo(2026, 11, 24), tokyo(2026, 11, 27), {},
                       now=tokyo(2026, 11, 24, 9), method=method)
    assert slots[0].start == first


@pytest.mark.parametrize("horizon_days, last", [
    (30, tokyo(2026, 12, 24, 9)),
    (7, tokyo(2026, 12, 1, 9)),
])
def test_the_booking_horizon_cuts_off_slots_starting_at_or_after_it(horizon_days, last):
    config = program(person("aoki", EVERY_DAY), closures=(), horizon_days=horizon_days)
    slots = free_slots(config, tokyo(2026, 11, 24), tokyo(2027, 1, 23), {}, now=tokyo(2026, 11, 24, 9, 30))
    assert slots[-1].start == last


def test_without_now_neither_the_notice_nor_the_horizon_applies():
    config = program(person("aoki", EVERY_DAY), closures=())
    slots = free_slots(config, tokyo(2026, 11, 24), tokyo(2027, 1, 23), {})
    assert (slots[0].start, slots[-1].start) == (tokyo(2026, 11, 24, 9), tokyo(2027, 1, 22, 16))


@pytest.mark.parametrize("filters, coordinators", [
    ({}, {"tanaka", "yamashita", "nishimura"}),
    ({"method": "visit"}, {"tanaka", "nishimura"}),
    ({"method": "email"}, {"tanaka", "yamashita"}),
    ({"method": "fax"}, set()),
    ({"region": "amami"}, {"yamashita", "nishimura"}),
    ({"method": "visit", "region": "amami"}, {"nishimura"}),
    ({"method": "email", "region": "amami"}, {"yamashita"}),
    ({"method": "visit", "region": "kagoshima"}, {"tanaka"}),
    ({"coordinator": "nishimura"}, {"nishimura"}),
    ({"coordinator": "tanaka", "region": "amami"}, set()),
])
def test_filters_coordinators_by_method_region_and_id(filters, coordinators):
    slots = free_slots(BASE, tokyo(2026, 11, 30), tokyo(2026, 12, 6), {}, **filters)
    assert {s.coordinator for s in slots} == coordinators


def test_slots_are_sorted_by_start_then_coordinator_id():
    slots = on(BASE, date(2026, 12, 1))
    assert slots == sorted(slots, key=lambda s: (s.start, s.coordinator))
    assert [s.coordinator for s in slots if s.start == tokyo(2026, 12, 1, 9)] == ["nishimura", "tanaka"]


@pytest.mark.parametrize("monday", [date(2026, 3, 9), date(2026, 3, 30), date(2026, 7, 6), date(2026, 11, 2)])
def test_slots_are_aware_tokyo_times_whatever_daylight_saving_does_elsewhere(monday):
    window_start = datetime.combine(monday, time(), TOKYO).astimezone(UTC)
    slots = free_slots(BASE, window_start, window_start + timedelta(days=1), {}, coordinator="tanaka")
    assert slots[0].start == datetime.combine(monday, time(0), UTC)
    assert slots[0].start.isoformat() == f"{monday.isoformat()}T09:00:00+09:00"
    assert all(s.start.tzinfo is TOKYO and s.end.utcoffset() == timedelta(hours=9) for s in slots)


NOW = tokyo(2026, 12, 21, 10)  # a Monday; the horizon ends 2027-01-20 10:00
BUSY = {"tanaka": [(tokyo(2026, 12, 24, 14, 30), tokyo(2026, 12, 24, 15))]}


def slot(*start, coordinator="tanaka", minutes=60) -> Slot:
    s = tokyo(*start)
    return Slot(s, s + timedelta(minutes=minutes), coordinator)


@pytest.mark.parametrize("candidate, method, region, bookable", [
    (slot(2026, 12, 24, 10), "online", None, True),
    (Slot(datetime(2026, 12, 24, 1, tzinfo=UTC), datetime(2026, 12, 24, 2, tzinfo=UTC), "tanaka"), "online", None, True),
    (slot(2026, 12, 24, 10, 30), "online", None, False),
    (slot(2026, 12, 24, 10, minutes=30), "online", None, False),
    (slot(2026, 12, 24, 10, minutes=120), "online", None, False),
    (slot(2026, 12, 24, 17), "online", None, False),
    (slot(2026, 12, 24, 12), "online", None, False),
    (slot(2026, 12, 30, 10), "online", None, False),
    (slot(2026, 12, 18, 10), "online", None, False),
    (slot(2026, 12, 21, 11), "online", None, False),
    (slot(2026, 12, 21, 13), "online", None, True),
    (slot(2026, 12, 22, 9), "visit", None, False),
    (slot(2026, 12, 22, 13), "visit", None, True),
    (slot(2027, 1, 20, 9), "online", None, True),
    (slot(2027, 1, 20, 10), "online", None, False),
    (slot(2026, 12, 23, 13, coordinator="yamashita"), "visit", None, False),
    (slot(2026, 12, 23, 13, coordinator="yamashita"), "online", None, True),
    (slot(2026, 12, 22, 13, coordinator="nishimura"), "online", "kagoshima", False),
    (slot(2026, 12, 22, 13, coordinator="nishimura"), "online", "amami", True),
    (slot(2026, 12, 24, 14), "online", None, False),
    (slot(2026, 12, 24, 10, coordinator="suzuki"), "online", None, False),
], ids=[
    "a free slot on the grid", "the same slot in UTC", "off the grid", "too short", "too long", "after hours",
    "in the lunch break", "on the year-end closure", "in the past", "too soon for online", "just enough notice",
    "too soon for a visit", "a visit a day ahead", "the last hour within the horizon", "at the horizon",
    "a method the coordinator does not do", "a method the coordinator does", "outside the coordinator's regions",
    "inside the coordinator's regions", "overlapping a busy interval", "an unknown coordinator",
])
def test_is_bookable_refuses_forged_or_stale_slots_and_accepts_a_good_one(candidate, method, region, bookable):
    assert is_bookable(BASE, candidate, BUSY, now=NOW, method=method, region=region) is bookable


def test_is_bookable_without_now_only_checks_hours_and_busy_time():
    assert is_bookable(BASE, slot(2026, 12, 18, 10), BUSY, now=None, method="visit", region=None)
    assert not is_bookable(BASE, slot(2026, 12, 24, 14), BUSY, now=None, method="visit", region=None)


MON, NEXT_MON = date(2026, 11, 30), date(2026, 12, 7)
T1, T2, T3 = tokyo(2026, 11, 30, 13), tokyo(2026, 11, 30, 14), tokyo(2026, 12, 9, 13)


def at(start: datetime, coordinator: str) -> Slot:
    return Slot(start, start + timedelta(hours=1), coordinator)


@pytest.mark.parametrize("free, load, preferred, offered", [
    ([(T1, "tanaka"), (T1, "yamashita")], {("tanaka", MON): 3, ("yamashita", MON): 1}, None, [(T1, "yamashita")]),
    ([(T1, "yamashita"), (T1, "tanaka")], {}, None, [(T1, "tanaka")]),
    ([(T1, "tanaka"), (T1, "yamashita")], {("tanaka", MON): 2, ("yamashita", MON): 2}, None, [(T1, "tanaka")]),
    ([(T3, "tanaka"), (T3, "yamashita")], {("tanaka", MON): 5}, None, [(T3, "tanaka")]),
    ([(T3, "tanaka"), (T3, "yamashita")], {("tanaka", NEXT_MON): 5}, None, [(T3, "yamashita")]),
    ([(T1, "tanaka"), (T1, "yamashita")], {("yamashita", MON): 9}, "yamashita", [(T1, "yamashita")]),
    ([(T2, "nishimura"), (T1, "yamashita"), (T1, "tanaka")], {("tanaka", MON): 1}, "tanaka",
     [(T1, "tanaka"), (T2, "nishimura")]),
    ([(T2, "nishimura"), (T2, "yamashita"), (T1, "tanaka")], {}, None, [(T1, "tanaka"), (T2, "nishimura")]),
], ids=[
    "the least loaded that week", "ties broken by id", "equal loads broken by id", "another week's load ignored",
    "the slot's own week counts", "preferred wins though busier", "times without preferred still offered",
    "one slot per start time in time order",
])
def test_offer_assigns_each_start_time_to_one_coordinator(free, load, preferred, offered):
    result = offer([at(s, c) for s, c in free], load, preferred)
    assert [(s.start, s.coordinator) for s in result] == offered


@pytest.mark.parametrize("day, monday", [
    (date(2026, 11, 23), date(2026, 11, 23)),
    (date(2026, 11, 29), date(2026, 11, 23)),
    (date(2026, 11, 30), date(2026, 11, 30)),
    (date(2027, 1, 1), date(2026, 12, 28)),
])
def test_week_start_is_the_monday_of_the_iso_week(day, monday):
    assert week_start(day) == monday


def test_groups_slots_by_tokyo_day_in_day_order():
    late = at(tokyo(2026, 12, 1, 15), "tanaka")
    early = at(tokyo(2026, 12, 1, 9), "yamashita")
    just_after_midnight = Slot(datetime(2026, 11, 30, 15, 30, tzinfo=UTC), datetime(2026, 11, 30, 16, 30, tzinfo=UTC),
                               "tanaka")
    monday = at(tokyo(2026, 11, 30, 13), "tanaka")
    assert group_by_day([late, monday, just_after_midnight, early]) == [
        (date(2026, 11, 30), [monday]),
        (date(2026, 12, 1), [just_after_midnight, early, late]),
    ]
