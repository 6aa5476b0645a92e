"""Choosing a date as a first user saw it: the horizon, closures, region, confirmation, picker limits, forged taps."""
from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from bot import booking as b
from bot.conversation import BookingSummary, BookSlot, Intent, RecordConsultation, State
from bot.jatime import TOKYO
from tests.unit.test_flow import KANOYA, Driver, FakeSlots, all_text, run_intake, slot_buttons


class RecordingSlots(FakeSlots):
    """FakeSlots that remembers the region each search was made for."""

    regions: list

    def offer(self, *, method, region, after, days, preferred=None):
        self.regions = [*getattr(self, "regions", []), region]
        return super().offer(method=method, region=region, after=after, days=days, preferred=preferred)


def choosing(method: str = "オンライン", now: datetime | None = None, slots=None) -> tuple[Driver, object]:
    d = Driver(slots=slots or FakeSlots())
    if now:
        d.now = now
    run_intake(d, method=method)
    return d, d.tap("submit")


def quick(outcome) -> dict[str, dict]:
    return {i["action"]["label"]: i["action"] for i in outcome.replies[-1].get("quickReply", {}).get("items", [])}


def booked(d: Driver) -> list[BookSlot]:
    return [e for e in d.effects if isinstance(e, BookSlot)]


# --- the horizon and closures (6.9) ----------------------------------------------------------------------

def test_other_days_stop_at_the_horizon_and_say_until_when_bookings_are_taken():
    d, _ = choosing()
    out = d.tap("more_slots", start="2026-12-20")  # the horizon is 30 days: the last day is 12月24日
    assert "他の日を見る" not in quick(out)
    assert "12月24日(木)までの日程で承っています" in all_text(out)


def test_a_page_past_the_horizon_is_not_searched_and_says_what_to_do_instead():
    d, _ = choosing()
    out = d.tap("more_slots", start="2027-01-05")
    assert "12月24日(木)まで" in all_text(out) and "担当者と話す" in quick(out)
    assert "空いている時間がありませんでした" not in all_text(out)


class SlotsFrom(FakeSlots):
    """FakeSlots whose first page starts on `first` (the day after the test's own now)."""

    def __init__(self, first):
        super().__init__()
        self.first = first

    def offer(self, *, method, region, after, days, preferred=None):
        return super().offer(method=method, region=region, after=after or self.first, days=days, preferred=preferred)


def test_closed_periods_are_named_on_the_page_that_shows_them():
    d, out = choosing(now=datetime(2026, 12, 22, 1, 0, tzinfo=UTC), slots=SlotsFrom(date(2026, 12, 23)))
    assert "12月29日(火)〜1月3日(日)は年末年始休業" in all_text(out)


# --- region matters for visits only (6.10) ----------------------------------------------------------------

@pytest.mark.parametrize("method, region", [("オンライン", None), ("電話", None), ("対面", "aira_isa")])
def test_only_visits_are_searched_by_region(method, region):
    slots = RecordingSlots()
    d, _ = choosing(method, slots=slots)
    assert set(slots.regions) == {region}


# --- confirm before booking, coloured days, receipt and old → new (6.11) ----------------------------------

def test_a_tapped_time_is_confirmed_with_date_method_and_coordinator_before_booking():
    d, out = choosing()
    first = slot_buttons(out)[0]
    out = d.send(Intent("slot", data=dict(x.split("=") for x in first["data"].split("&") if not x.startswith("action"))))
    text = all_text(out)
    assert "この日時で予約しますか" in text and "11月25日(水) 10:00〜11:00" in text
    assert "オンライン" in text and "田中 一郎" in text
    assert not booked(d)
    d.tap("other_slot")
    assert not booked(d) and d.conv.state == State.CHOOSE_SLOT and "chosen" not in d.conv.data
    d.send(Intent("slot", data={"c": "tanaka", "t": "202611251000"}))
    d.tap("confirm_slot")
    assert [(x.coordinator, x.start) for x in booked(d)] == [("tanaka", datetime(2026, 11, 25, 10, 0, tzinfo=TOKYO))]


def test_confirm_without_a_chosen_time_books_nothing():
    d, _ = choosing()
    out = d.tap("confirm_slot")
    assert not booked(d) and "選ばれていません" in all_text(out)


def test_saturday_headers_are_blue_and_sunday_and_holiday_headers_red():
    d, out = choosing()
    carousel = next(m for m in out.replies if m.get("type") == "flex")["contents"]["contents"]
    colours = {bubble["header"]["contents"][0]["text"]: bubble["header"]["backgroundColor"]
               for bubble in carousel if "header" in bubble}
    assert colours["11月28日(土)"] == b.DAY_COLOURS["saturday"]
    assert colours["11月29日(日)"] == b.DAY_COLOURS["holiday"]
    assert colours["11月25日(水)"] == b.DAY_COLOURS["weekday"]
    assert b.day_colour(datetime(2026, 11, 23).date()) == b.DAY_COLOURS["holiday"]  # 勤労感謝の日, a Monday


SUMMARY = BookingSummary(9, datetime(2026, 12, 3, 14, 0, tzinfo=TOKYO), datetime(2026, 12, 3, 15, 0, tzinfo=TOKYO),
                         "phone", "田中 一郎", "confirmed", receipt_no="DX2026-00042", topic="業務効率化・ペーパーレス")


def test_the_confirmation_shows_the_receipt_number_and_topic():
    text = json.dumps(b.confirmation(SUMMARY), ensure_ascii=False)
    assert "DX2026-00042" in text and "業務効率化・ペーパーレス" in text


def test_a_change_notice_shows_old_and_new_times():
    old = (datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO), datetime(2026, 12, 1, 11, 0, tzinfo=TOKYO))
    text = json.dumps(b.confirmation(SUMMARY, changed=True, previous=old), ensure_ascii=False)
    assert "変更前" in text and "12月1日(火) 10:00〜11:00" in text
    assert "変更後" in text and "12月3日(木) 14:00〜15:00" in text


# --- the picker's limits (6.12) --------------------------------------------------------------------------

@pytest.mark.parametrize("method, earliest", [("オンライン", "2026-11-24T12:00"), ("対面", "2026-11-25T10:00")])
def test_the_picker_allows_only_what_can_be_booked(method, earliest):
    d, out = choosing(method)
    picker = quick(out)["日時を指定"]
    assert picker["min"] == earliest and picker["max"] == "2026-12-24T23:59"
    assert picker["min"] <= picker["initial"] <= picker["max"]


def test_a_picked_time_inside_the_minimum_notice_is_explained():
    d, _ = choosing("対面")
    out = d.send(Intent("pick_slot", params={"datetime": "2026-11-24T15:00"}))
    assert "24時間前まで" in all_text(out) and not booked(d)


# --- forged and impossible taps (7.8) --------------------------------------------------------------------

@pytest.mark.parametrize("intent, said", [
    (Intent("pick_slot", params={"datetime": "9999-12-31T23:59"}), "12月24日(木)までの日程"),
    (Intent("pick_slot", params={"datetime": ["2026-11-26T11:00"]}), "読み取れませんでした"),
    (Intent("pick_slot", params={"datetime": "2026-11-20T10:00"}), "過ぎています"),
    (Intent("more_slots", data={"start": "9999-12-31"}), "12月24日(木)まで"),
    (Intent("slot", data={"c": "tanaka", "t": "202611260300"}), "受付時間外"),
    (Intent("slot", data={"c": "tanaka", "t": "202611201000"}), "過ぎています"),
    (Intent("slot", data={"c": "nobody", "t": "202611261000"}), "読み取れませんでした"),
    (Intent("slot", data={"c": "tanaka", "t": "999912312359"}), "12月24日(木)までの日程"),
])
def test_forged_or_impossible_slots_are_answered_plainly(intent, said):
    d, _ = choosing()
    out = d.send(intent)
    text = all_text(out)
    assert said in text and "ちょうど埋まって" not in text
    assert not booked(d) and d.conv.state == State.CHOOSE_SLOT


def test_a_popup_postback_for_a_day_that_does_not_exist_starts_no_intake():
    d = Driver(slots=FakeSlots(popups=[KANOYA]))
    out = d.tap("popup_slot", d="999", t="202612051000")
    assert d.conv.state == State.IDLE and "終了したか満席" in all_text(out)
    out = d.tap("popup_slot", d="4", t="202612050300")  # a time the day does not have
    assert d.conv.state == State.IDLE and "終了したか満席" in all_text(out)


# --- a pop-up seat reads as a seat at a fixed venue (6.13) ------------------------------------------------

def test_a_popup_booking_says_nothing_about_choosing_a_date_after_the_intake():
    d = Driver(slots=FakeSlots(popups=[KANOYA]))
    d.tap("popup_slot", d="4", t="202612051000")
    d.say("レジを新しくしたい")
    d.tap("yes")
    for answer in ("鹿屋商店", "卸売業・小売業", "3人", "鹿屋市", "大隅 太郎", "0994-31-1111", "スキップ"):
        d.say(answer)
    d.tap("submit")
    recorded = next(e for e in d.effects if isinstance(e, RecordConsultation))
    said = json.dumps(recorded.receipt("DX2026-00001"), ensure_ascii=False)
    assert "DX2026-00001" in said and "日時をお選びください" not in said


def test_a_popup_confirmation_names_the_venue_with_address_and_map():
    seat = BookingSummary(5, datetime(2026, 12, 5, 10, 0, tzinfo=TOKYO), datetime(2026, 12, 5, 11, 0, tzinfo=TOKYO),
                          "visit", "出張相談会（鹿屋商工会議所）", "confirmed", venue="鹿屋商工会議所", address="鹿屋市新川町")
    message = b.confirmation(seat)[0]
    text = json.dumps(message, ensure_ascii=False)
    assert "鹿屋商工会議所" in text and "鹿屋市新川町" in text and "google.com/maps" in text
    assert "対面（訪問・来所）" not in text and "確認のご連絡" not in text
    rows = [row["contents"][0]["text"] for row in message["contents"]["body"]["contents"][2]["contents"]]
    assert "担当" not in rows and "会場" in rows


def test_tapping_a_popup_time_with_the_consultation_on_record_confirms_the_venue_first():
    d = Driver(slots=FakeSlots(popups=[KANOYA]))
    d.conv = type(d.conv)("U1", State.CHOOSE_SLOT, {"consultation_id": 3, "method": "visit"})
    out = d.tap("popup_slot", d="4", t="202612051000")
    assert "この日時で予約しますか" in all_text(out) and "鹿屋商工会議所" in all_text(out) and not booked(d)
    d.tap("confirm_slot")
    assert [(x.popup_day, x.start) for x in booked(d)] == [(4, datetime(2026, 12, 5, 10, 0, tzinfo=TOKYO))]


def test_a_popup_time_tapped_in_the_middle_of_an_intake_joins_that_intake():
    d = Driver(slots=FakeSlots(popups=[KANOYA]))
    d.tap("consult")
    d.say("レジを新しくしたい")
    d.tap("yes")
    d.say("鹿屋商店")
    d.tap("popup")
    d.tap("popup_slot", d="4", t="202612051000")
    assert d.conv.data["company"] == "鹿屋商店" and d.conv.data["popup"] == 4 and d.conv.data["method"] == "visit"
    assert d.conv.state == State.ASK_INDUSTRY
