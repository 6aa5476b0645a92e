"""The report's sections from given figures (no database): masking of counts, shares and averages, and the targets
the configuration sets."""
from __future__ import annotations

from dataclasses import replace

import pytest

from bot.config import ConfigError, Targets, load_config
from handlers.report_sections import (Row, Section, average, bar_widths, masked, monthly_targets, revealed, sections,
                                     share, suppressed)
from storage.reports import FIGURES, Figures, Rating, fiscal_year, fiscal_year_to_date, month_period, previous_month

CONFIG = load_config()


def figures(**given) -> Figures:
    """November 2026's columns with every figure empty, except those given (one value per column)."""
    month = month_period("2026-11")
    periods = (month, previous_month(month), fiscal_year_to_date(month))
    empty = {"consultations": 0, "popup_days": 0, "seminars": 0, "training_attendees": 0,
             "companies": {"new": 0, "returning": 0}, "bookings": {"total": 0, "weekend": 0, "holiday": 0, "off_days": 0},
             "registrations": {"onsite": 0, "online": 0}, "attendees": {"onsite": 0, "online": 0}}
    return Figures(periods, {name: given.get(name, [empty.get(name, {})] * 3) for name in FIGURES})


@pytest.mark.parametrize("n, shown", [(0, 0), (1, "3未満"), (2, "3未満"), (3, 3), (40, 40)])
def test_counts_of_one_or_two_are_hidden(n, shown):
    assert masked(n) == shown


@pytest.mark.parametrize("done, target, shown", [(0, 90, "0%"), (2, 90, "3未満"), (45, 90, "50%"), (5, 0, "－")])
def test_a_share_of_a_target_is_hidden_when_it_would_tell_a_count_of_one_or_two(done, target, shown):
    assert share(done, target) == shown


@pytest.mark.parametrize("rating, shown", [(None, "－"), (Rating(0, 0), "－"), (Rating(2, 9), "3未満"),
                                           (Rating(3, 13), 4.33)])
def test_an_average_of_one_or_two_answers_is_hidden(rating, shown):
    assert average(rating) == shown


def test_visits_are_measured_against_the_configured_target_per_month_over_the_fiscal_year_so_far():
    config = replace(CONFIG, targets=Targets(seminar_attendees_per_year=120, visits_per_month=4))
    f = figures(activities=[{"visit": 5}, {"visit": 1}, {"visit": 20}],
                attendees=[{"onsite": 10, "online": 20}, {"onsite": 0, "online": 0}, {"onsite": 30, "online": 30}])
    rows = {row.label: row.values for row in monthly_targets(config, f).rows}
    assert rows["セミナー出席者（年度累計）"] == [60, 120, "50%"]
    assert rows["企業訪問（当月）"] == [5, 4, "125%"]
    assert rows["企業訪問（年度累計）"] == [20, 32, "62%"]  # April to November: 8 months


def test_a_breakdown_lists_keys_outside_the_configured_order_too_so_its_total_adds_up():
    f = figures(status=[{"received": 4, "archived": 5}, {}, {"received": 4, "archived": 5}])
    [status] = [x for x in sections(CONFIG, f, ("当月", "前月", "年度累計")) if x.title == "状況別"]
    rows = {row.label: row.values[0] for row in status.rows}
    assert rows["archived"] == 5 and rows["合計"] == 9


def test_targets_come_from_the_configuration_with_defaults(tmp_path):
    assert load_config().targets == Targets(90, 3)
    path = tmp_path / "config.toml"
    path.write_text("[targets]\nvisits_per_month = 5\n", encoding="utf-8")
    assert load_config(path).targets == Targets(90, 5)
    path.write_text("[targets]\nvisits_per_month = -1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[targets\] visits_per_month"):
        load_config(path)


@pytest.mark.parametrize("text", ["2025", "２０２５"])
def test_a_fiscal_year_runs_from_april_to_march(text):
    fy = fiscal_year(text)
    assert (fy.start.year, fy.start.month, fy.end.year, fy.end.month) == (2025, 4, 2026, 4)


def test_bars_are_shares_of_the_largest_count_and_a_hidden_count_draws_none():
    part = Section("分野別", "区分", ("当月",), [Row("a", [40]), Row("b", [10]), Row("c", ["3未満"]), Row("d", [0]),
                                             Row("合計", [52], total=True)], chart=True)
    assert bar_widths(part) == [100, 25, 0, 0, 0]
    assert bar_widths(Section("空", "区分", ("当月",), [Row("合計", [0], total=True)])) == [0]


def test_the_weekend_and_holiday_share_is_a_percentage_of_the_bookings_held():
    f = figures(bookings=[{"total": 10, "weekend": 3, "holiday": 4, "off_days": 6},  # one on a weekend holiday
                          {"total": 0, "weekend": 0, "holiday": 0, "off_days": 0},
                          {"total": 40, "weekend": 1, "holiday": 1, "off_days": 2}])
    [summary] = [x for x in sections(CONFIG, f, ("当月", "前月", "年度累計")) if x.title == "概要"]
    rows = {row.label: row.values for row in summary.rows}
    assert rows["土日・祝日の割合"] == ["60%", "－", "3未満"]


# Secondary suppression: a breakdown's column with its total shown must not let a hidden count be worked out.
@pytest.mark.parametrize("counts, shown", [
    ([1, 5, 7], ["3未満", "秘匿", 7]),  # total 13 - 5 - 7 = 1: the 5 hidden too (then 1+5 or 2+4)
    ([1, 1, 5, 7], ["3未満", "3未満", "秘匿", 7]),  # two hidden summing to 2: each is 1
    ([2, 2, 5, 7], ["3未満", "3未満", "秘匿", 7]),  # two summing to 4: each is 2
    ([1, 2, 5, 7], ["3未満", "3未満", 5, 7]),  # summing to 3: 1+2 or 2+1, nothing told
    ([1, 3, 5, 7], ["3未満", "秘匿", "秘匿", 7]),  # 1 and the 3 hidden sum to 4, which tells 1+3: the 5 as well
    ([1, 4, 5, 7], ["3未満", "秘匿", 5, 7]),  # 1 and the 4 sum to 5: 1+4 or 2+3
    ([2, 0, 0], ["3未満", 0, 0]),  # the total (2) is hidden too: nothing to work it out from
    ([1, 1, 0], ["3未満", "3未満", 0]),  # total hidden, two hidden: each 1, but no count of 3 or more to hide
    ([0, 3, 4], [0, 3, 4]),
])
def test_a_column_hides_the_smallest_counts_of_3_or_more_while_a_hidden_one_could_be_worked_out(counts, shown):
    assert suppressed(counts) == shown


@pytest.mark.parametrize("counts, hidden, told", [
    ([1, 5, 7], {0}, True), ([1, 5, 7], {0, 1}, False), ([1, 1, 5], {0, 1}, True), ([1, 2, 5], {0, 1}, False),
    ([2, 2, 5], {0, 1}, True), ([1, 3, 5], {0, 1}, True), ([1, 4, 5], {0, 1}, False), ([1, 1, 0], {0, 1}, True),
])
def test_a_hidden_count_is_told_when_the_total_and_the_other_bounds_leave_it_one_value(counts, hidden, told):
    assert revealed(counts, hidden) is told


def test_every_breakdown_hides_a_second_count_in_each_column_where_the_total_would_tell_a_hidden_one():
    f = figures(category=[{"efficiency": 4, "sales": 1, "security": 6}, {"efficiency": 1, "sales": 1},
                          {"efficiency": 10, "sales": 2, "security": 6}])
    [category] = [x for x in sections(CONFIG, f, ("当月", "前月", "年度累計")) if x.title == "分野別"]
    rows = {row.label: row.values for row in category.rows}
    assert rows["業務効率化・ペーパーレス"] == ["秘匿", "3未満", 10]
    assert rows["EC・Web集客・販路開拓"] == ["3未満", "3未満", "3未満"]
    assert rows["セキュリティ・ITトラブル"] == [6, 0, "秘匿"]
    assert rows["合計"] == [11, "3未満", 18]
    # The chart draws no bar for the count hidden second either: only security's 6 has one.
    widths = dict(zip(rows, bar_widths(category)))
    assert widths["業務効率化・ペーパーレス"] == 0 and widths["セキュリティ・ITトラブル"] == 100


def test_the_overviews_popup_consultations_are_hidden_as_the_channel_breakdown_hides_them():
    f = figures(channel=[{"line": 1, "popup": 3, "web": 8}] * 3)
    parts = {x.title: x for x in sections(CONFIG, f, ("当月", "前月", "年度累計"))}
    channel = {row.label: row.values for row in parts["経路別"].rows}
    summary = {row.label: row.values for row in parts["概要"].rows}
    assert channel["出張相談会"] == summary["出張相談会での相談件数"] == ["秘匿"] * 3


@pytest.mark.parametrize("bookings, shown", [
    ({"total": 10, "weekend": 5, "holiday": 1, "off_days": 6}, "秘匿"),  # 60% of 10 is 6: the holiday one is 1
    ({"total": 10, "weekend": 2, "holiday": 2, "off_days": 4}, "秘匿"),  # 4 of two hidden counts: each is 2
    ({"total": 10, "weekend": 2, "holiday": 1, "off_days": 3}, "30%"),  # 3: 1+2 or 2+1
    # One on a holiday that falls on a weekend: 3 + 2 - 1 = 4. Hidden all the same, as if the two added up to
    # off_days (a reader may not know whether anyone booked that day; the rule does not guess what they know).
    ({"total": 10, "weekend": 3, "holiday": 2, "off_days": 4}, "秘匿"),
    ({"total": 10, "weekend": 3, "holiday": 4, "off_days": 7}, "70%"),  # nothing hidden
    ({"total": 10, "weekend": 2, "holiday": 0, "off_days": 2}, "3未満"),
])
def test_the_weekend_and_holiday_share_is_hidden_when_it_would_tell_a_hidden_weekend_or_holiday_count(
        bookings, shown):
    f = figures(bookings=[bookings] * 3)
    [summary] = [x for x in sections(CONFIG, f, ("当月", "前月", "年度累計")) if x.title == "概要"]
    rows = {row.label: row.values for row in summary.rows}
    assert rows["土日・祝日の割合"] == [shown] * 3


def test_after_suppression_no_hidden_count_of_a_small_column_has_only_one_possible_value():
    """Every column of 3 or 4 counts up to 5, read as a reader would: every filling-in of its hidden cells (1–2 for
    「3未満」, 3 or more for 「秘匿」) that adds up to the total shown, or to 1–2 when the total is 「3未満」. Each
    「3未満」 must have two possible values, unless no count of 3 or more was left to hide."""
    from itertools import product
    for size in (3, 4):
        for counts in product(range(6), repeat=size):
            shown, total = suppressed(list(counts)), sum(counts)
            totals = [total] if masked(total) == total else [1, 2]
            ranges = [[v] if isinstance(v, int) else [1, 2] if v == "3未満" else range(3, total + 1) for v in shown]
            fillings = [x for x in product(*ranges) if sum(x) in totals]
            for i, v in enumerate(shown):
                if v == "3未満" and any(isinstance(w, int) and w >= 3 for w in shown):
                    assert len({x[i] for x in fillings}) == 2, (counts, shown)


def test_a_seminars_onsite_and_online_figures_are_hidden_second_so_their_total_cannot_tell_a_hidden_one():
    f = figures(attendees=[{"onsite": 3, "online": 2}, {"onsite": 1, "online": 0}, {"onsite": 12, "online": 4}],
                registrations=[{"onsite": 6, "online": 1}] * 3)
    [seminar] = [x for x in sections(CONFIG, f, ("当月", "前月", "年度累計")) if x.title == "セミナー"]
    rows = {row.label: row.values for row in seminar.rows}
    assert rows["出席（会場）"] == ["秘匿", "3未満", 12]
    assert rows["出席（オンライン）"] == ["3未満", 0, 4]
    assert rows["出席 計"] == [5, "3未満", 16]
    assert rows["申込（会場）"] == ["秘匿"] * 3 and rows["申込（オンライン）"] == ["3未満"] * 3


def test_a_municipality_hidden_under_a_region_shown_in_the_region_breakdown_is_hidden_second_within_its_region():
    # The column's rule alone hides 霧島市's 4 next to 曽於市's 1 (the total then tells neither), but 大隅 6 in
    # 地域別 is 鹿屋市 5 and 曽於市 1: with 鹿屋市 shown, the region's count would tell 曽於市's 1.
    counts = {"鹿屋市": 5, "曽於市": 1, "鹿児島市": 20, "霧島市": 4}
    f = figures(region=[{"osumi": 6, "kagoshima": 20, "aira_isa": 4}] * 3, municipality=[counts] * 3)
    parts = {x.title: x for x in sections(CONFIG, f, ("当月", "前月", "年度累計"))}
    regions = {row.label: row.values for row in parts["地域別"].rows}
    towns = {row.label: row.values for row in parts["市町村別"].rows}
    assert regions["大隅"] == [6, 6, 6]
    assert towns["曽於市"] == ["3未満"] * 3 and towns["鹿屋市"] == ["秘匿"] * 3
    assert towns["鹿児島市"] == [20] * 3  # another region's: nothing of it needs hiding
