from datetime import date, datetime, time, timezone

import pytest

from bot.jatime import (
    TOKYO,
    WEEKDAYS,
    describe_hours,
    describe_staff_reply,
    format_date,
    format_datetime,
    format_time_range,
    holiday_name,
    next_open_time,
)

WEEKDAY_HOURS = {day: ((time(9), time(17)),) for day in ("mon", "tue", "wed", "thu", "fri")}


def year_end_closure(day: date) -> bool:
    return date(2026, 12, 29) <= day <= date(2027, 1, 3)


def never_closed(day: date) -> bool:
    return False


def tokyo(*args) -> datetime:
    return datetime(*args, tzinfo=TOKYO)


def test_weekdays_run_from_monday():
    assert WEEKDAYS == "月火水木金土日"


@pytest.mark.parametrize("day, name", [
    (date(2026, 11, 23), "勤労感謝の日"),
    (date(2026, 5, 6), "振替休日"),
    (date(2025, 11, 24), "振替休日"),
    (date(2026, 9, 22), "国民の休日"),
    (date(2027, 1, 1), "元日"),
    (date(2025, 11, 29), None),
    (date(2026, 12, 29), None),
])
def test_names_public_holidays(day, name):
    assert holiday_name(day) == name


@pytest.mark.parametrize("day, text", [
    (date(2025, 11, 29), "11月29日(土)"),
    (date(2026, 11, 23), "11月23日(月・祝 勤労感謝の日)"),
    (date(2026, 5, 6), "5月6日(水・祝 振替休日)"),
    (date(2026, 9, 22), "9月22日(火・祝 国民の休日)"),
])
def test_formats_a_date_with_its_weekday_and_holiday(day, text):
    assert format_date(day) == text


@pytest.mark.parametrize("moment, text", [
    (datetime(2025, 11, 29, 10, 0), "11月29日(土) 10:00"),
    (tokyo(2025, 11, 29, 10, 0), "11月29日(土) 10:00"),
    (datetime(2025, 11, 29, 1, 0, tzinfo=timezone.utc), "11月29日(土) 10:00"),
    (datetime(2025, 11, 28, 15, 30, tzinfo=timezone.utc), "11月29日(土) 0:30"),
    (datetime(2026, 11, 30, 9, 5), "11月30日(月) 9:05"),
])
def test_formats_a_datetime_in_tokyo_time(moment, text):
    assert format_datetime(moment) == text


def test_formats_a_time_range_on_one_day():
    assert format_time_range(tokyo(2025, 11, 29, 10), tokyo(2025, 11, 29, 11)) == "11月29日(土) 10:00〜11:00"


def test_a_time_range_across_midnight_shows_both_dates():
    text = format_time_range(tokyo(2025, 11, 29, 23), tokyo(2025, 11, 30, 1))
    assert text == "11月29日(土) 23:00〜11月30日(日) 1:00"


@pytest.mark.parametrize("now, opens", [
    (tokyo(2026, 11, 30, 10, 0), tokyo(2026, 11, 30, 10, 0)),
    (tokyo(2026, 11, 30, 9, 0), tokyo(2026, 11, 30, 9, 0)),
    (tokyo(2026, 11, 30, 8, 0), tokyo(2026, 11, 30, 9, 0)),
    (tokyo(2026, 11, 30, 17, 0), tokyo(2026, 12, 1, 9, 0)),
    (tokyo(2026, 11, 27, 18, 0), tokyo(2026, 11, 30, 9, 0)),
    (tokyo(2026, 11, 28, 10, 0), tokyo(2026, 11, 30, 9, 0)),
    (tokyo(2026, 11, 20, 18, 0), tokyo(2026, 11, 24, 9, 0)),
    (tokyo(2026, 12, 28, 17, 30), tokyo(2027, 1, 4, 9, 0)),
    (tokyo(2026, 12, 31, 12, 0), tokyo(2027, 1, 4, 9, 0)),
    (datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc), tokyo(2026, 11, 30, 9, 0)),
    (datetime(2026, 11, 27, 18, 0), tokyo(2026, 11, 30, 9, 0)),
])
def test_finds_the_next_moment_staff_are_in(now, opens):
    assert next_open_time(now, WEEKDAY_HOURS, year_end_closure) == opens


def test_a_public_holiday_follows_the_holiday_hours():
    hours = WEEKDAY_HOURS | {"holiday": ((time(10), time(12)),)}
    assert next_open_time(tokyo(2026, 11, 23, 8), hours, never_closed) == tokyo(2026, 11, 23, 10)


def test_the_second_range_of_a_day_counts_after_the_first_has_ended():
    hours = {"mon": ((time(13), time(17)), (time(9), time(12)))}
    assert next_open_time(tokyo(2026, 11, 30, 12, 30), hours, never_closed) == tokyo(2026, 11, 30, 13)


def test_gives_up_after_limit_days():
    def always_closed(day: date) -> bool:
        return True

    assert next_open_time(tokyo(2026, 11, 30, 10), WEEKDAY_HOURS, always_closed) is None
    assert next_open_time(tokyo(2026, 11, 28, 10), WEEKDAY_HOURS, never_closed, limit_days=1) is None
    assert next_open_time(tokyo(2026, 11, 28, 10), WEEKDAY_HOURS, never_closed, limit_days=2) is not None


@pytest.mark.parametrize("hours, text", [
    (WEEKDAY_HOURS, "平日 9:00〜17:00"),
    ({"mon": ((time(9), time(12)), (time(13), time(17))), "sat": ((time(10), time(15)),)},
     "月 9:00〜12:00・13:00〜17:00、土 10:00〜15:00"),
    ({"sat": ((time(10), time(12)),), "sun": ((time(10), time(12)),), "holiday": ((time(10), time(12)),)},
     "土日・祝 10:00〜12:00"),
])
def test_describes_opening_hours_in_one_line(hours, text):
    assert describe_hours(hours) == text


@pytest.mark.parametrize("now, text", [
    (tokyo(2026, 11, 30, 10), "担当者が確認して、まもなくお返事します（平日 9:00〜17:00）。"),
    (tokyo(2026, 11, 27, 18), "担当者から11月30日(月) 9:00以降にお返事します。"),
    (tokyo(2026, 11, 28, 10), "担当者から11月30日(月) 9:00以降にお返事します。"),
    (tokyo(2026, 11, 20, 18), "担当者から11月24日(火) 9:00以降にお返事します。"),
    (tokyo(2026, 12, 30, 10), "担当者から1月4日(月) 9:00以降にお返事します。"),
])
def test_tells_a_person_when_staff_will_answer(now, text):
    assert describe_staff_reply(now, WEEKDAY_HOURS, year_end_closure) == text


def test_says_staff_will_answer_later_when_no_opening_is_in_sight():
    now = tokyo(2026, 11, 30, 10)
    text = describe_staff_reply(now, WEEKDAY_HOURS, lambda day: True)
    assert text == "担当者が確認のうえ、改めてお返事します。"
