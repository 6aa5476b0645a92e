"""The flow table itself, and the conversation driven step by step with no database."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import load_config
from bot.conversation import (
    BookingSummary, BookSlot, CancelBooking, Context, Conversation, Intent, OfferedSlot, PopupOffer, Profile, RecordConsent,
    RecordConsultation, SaveProfile, State,
)
from bot.flow import FLOW, GLOBAL, INTAKE_STATES, FlowError, Step, advance, step_for
from bot.intents import intent_of
from bot.jatime import TOKYO
from bot.triage import Triager

CONFIG = load_config()
TRIAGER = Triager(CONFIG)
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
PROFILE = Profile(company="有限会社さつま", industry="製造業", employees="6〜20人", municipality="霧島市",
                  contact_name="西郷 花子", phone="099-286-2111", email="hanako@example.jp", consent_version="2026-11")


class FakeSlots:
    """A SlotFinder with two free hours a day at 10:00 and 11:00 Tokyo time, from tomorrow, and pop-up days if given."""

    def __init__(self, taken: set[datetime] = frozenset(), popups=()):
        self.taken = set(taken)
        self._popups = list(popups)

    def popups(self, *, region):
        return [replace(p, nearby=p.region == region) for p in self._popups]

    met = None  # (id, name) of the coordinator met before, if any

    def previous(self, *, method, region):
        return self.met

    def offer(self, *, method, region, after, days, preferred=None):
        self.preferred = preferred
        first = after or (NOW + timedelta(days=1)).date()
        slots = []
        for n in range(days):
            for hour in (1, 2):  # 10:00 and 11:00 in Tokyo
                start = datetime.combine(first + timedelta(days=n), datetime.min.time(), UTC) + timedelta(hours=hour)
                if start not in self.taken:
                    slots.append(OfferedSlot("tanaka", start, start + timedelta(hours=1)))
        return slots


def ctx(profile: Profile = Profile(consent_version="2026-11"), now: datetime = NOW, **kw) -> Context:
    return Context(CONFIG, TRIAGER, now, profile=profile, slots=kw.pop("slots", FakeSlots()), **kw)


def all_text(outcome) -> str:
    import json
    return json.dumps(outcome.replies, ensure_ascii=False)


class Driver:
    """Feeds intents to `advance` and keeps the conversation as the service would."""

    def __init__(self, profile: Profile = Profile(consent_version="2026-11"), **context):
        self.conv = Conversation("U1")
        self.profile = profile
        self.context = context
        self.effects: list = []
        self.now = NOW

    def send(self, intent: Intent):
        outcome = advance(self.conv, intent, ctx(self.profile, self.now, **self.context))
        self.effects += outcome.effects
        self.conv = Conversation("U1", outcome.next_state,
                                 self.conv.data if outcome.data is None else outcome.data,
                                 self.conv.suspended if outcome.suspended is False else outcome.suspended, self.now)
        return outcome

    def say(self, text: str):
        return self.send(intent_of({"type": "message", "source": {"type": "user"},
                                    "message": {"type": "text", "text": text}}))

    def tap(self, action: str, **data):
        return self.send(Intent(action, data=data))


# --- the table ---------------------------------------------------------------------------------------------

def _edges() -> dict[State, set[State]]:
    edges = {s: set() for s in State}
    for state, spec in FLOW.items():
        steps = list(spec.on.values()) + list(GLOBAL.values())
        for step in steps:
            edges[state].update(step.to)
            if step.stays:
                edges[state].add(state)
    return edges


def _reachable(start: State, edges) -> set[State]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_every_state_has_an_entry_in_the_table():
    assert set(FLOW) == set(State)


def test_every_target_of_every_step_is_a_state():
    for step in [s for spec in FLOW.values() for s in spec.on.values()] + list(GLOBAL.values()):
        assert all(isinstance(t, State) for t in step.to), step.run.__name__


def test_every_state_is_reachable_from_idle():
    assert _reachable(State.IDLE, _edges()) == set(State)


def test_no_state_is_a_dead_end():
    edges = _edges()
    for state in State:
        assert State.IDLE in _reachable(state, edges), f"{state} cannot get back to idle"


def test_every_state_that_asks_a_question_takes_a_typed_answer():
    for state, spec in FLOW.items():
        assert "text" in spec.on, f"{state} has no step for typed text"


def test_a_step_that_goes_where_it_did_not_declare_is_caught():
    rogue = Step(lambda conv, intent, c: __import__("bot.conversation").conversation.Outcome(State.WITH_STAFF))
    FLOW[State.ASK_COMPANY].on["rogue"] = rogue
    try:
        with pytest.raises(FlowError):
            advance(Conversation("U1", State.ASK_COMPANY, {"question": "x"}), Intent("rogue"), ctx())
    finally:
        del FLOW[State.ASK_COMPANY].on["rogue"]


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("intent", ["menu", "cancel", "restart", "handover", "resume", "media", "gibberish"])
def test_global_fallbacks_answer_from_every_state(state, intent):
    data = {"question": "紙をやめたい", "category": "efficiency", "consented": True}
    outcome = advance(Conversation("U1", state, data, updated_at=NOW), Intent(intent, data={"type": "sticker"}), ctx())
    assert outcome.replies, f"{intent} in {state} said nothing"
    assert step_for(state, intent) is not None


# --- the intake ---------------------------------------------------------------------------------------------

def test_a_new_friend_gets_the_greeting_and_the_privacy_notice_before_anything_personal():
    d = Driver(Profile())
    out = d.send(Intent("follow"))
    assert d.conv.state == State.ASK_CONSENT
    assert "個人情報の取り扱い" in all_text(out) and "同意して始める" in all_text(out)
    assert [i["action"]["label"] for i in out.replies[-1]["quickReply"]["items"]] == [
        "相談を申し込む", "予約の確認・変更", "セミナー", "よくある質問・補助金", "出張相談会", "担当者と話す"]


def test_a_question_typed_before_consent_is_kept_and_triaged_after_consent():
    d = Driver(Profile())
    d.send(Intent("follow"))
    out = d.say("紙の請求書をやめたいが何から始めれば…")
    assert d.conv.state == State.ASK_CONSENT and "同意" in all_text(out)
    out = d.tap("consent", v=CONFIG.privacy_policy_version)
    assert RecordConsent(CONFIG.privacy_policy_version) in d.effects
    assert d.conv.state == State.CONFIRM_CATEGORY
    assert "業務効率化・ペーパーレス" in all_text(out)


def test_declining_consent_asks_nothing_personal_and_offers_the_phone():
    d = Driver(Profile())
    d.send(Intent("follow"))
    out = d.tap("decline")
    assert d.conv.state == State.IDLE
    assert CONFIG.contact_phone in all_text(out)


def at_phone_question() -> Driver:
    """A user whose intake has reached the phone number."""
    d = Driver()
    d.tap("consult")
    d.say("HPを作りたい")
    d.tap("yes")
    for answer in ("テスト", "製造業", "1〜5人", "鹿児島市", "山田"):
        d.say(answer)
    return d


def run_intake(d: Driver, *, method: str = "オンライン"):
    d.tap("consult")
    d.say("紙の請求書をやめたいが何から始めれば…")
    d.tap("yes")
    d.say("有限会社テスト商店")
    d.tap("industry", v="製造業")
    d.say("12人")
    d.say("霧島")
    d.say("山田 太郎")
    d.say("０９０－１２３４－５６７８")
    d.say("taro@example.jp")
    return d.say(method)


def test_a_whole_intake_ends_with_a_summary_and_records_the_consultation_on_submit():
    d = Driver()
    out = run_intake(d)
    assert d.conv.state == State.CONFIRM_SUMMARY
    text = all_text(out)
    for shown in ("有限会社テスト商店", "製造業", "6〜20人", "霧島市", "山田 太郎", "090-1234-5678", "オンライン"):
        assert shown in text
    out = d.tap("submit")
    assert d.conv.state == State.CHOOSE_SLOT and "ご相談の日時を選んでください" in all_text(out)
    recorded = next(e for e in d.effects if isinstance(e, RecordConsultation))
    assert recorded.fields["category"] == "efficiency"
    assert recorded.fields["region"] == "aira_isa"
    assert recorded.fields["method"] == "online"
    assert "DX2026-00007" in all_text(type("O", (), {"replies": recorded.receipt("DX2026-00007")}))
    assert any(isinstance(e, SaveProfile) for e in d.effects)
    assert d.conv.data == {"method": "online", "region": "aira_isa"}


@pytest.mark.parametrize("bad, reason", [
    ("12345", "電話番号"),
    ("abc", "電話番号"),
])
def test_a_wrong_phone_is_asked_again_with_the_reason(bad, reason):
    d = at_phone_question()
    assert d.conv.state == State.ASK_PHONE
    out = d.say(bad)
    assert d.conv.state == State.ASK_PHONE
    assert reason in all_text(out)


def test_skipping_both_phone_and_email_is_not_allowed():
    d = at_phone_question()
    d.tap("skip")
    out = d.tap("skip")
    assert d.conv.state == State.ASK_EMAIL
    assert "どちらか" in all_text(out)


def test_a_phone_consultation_without_a_phone_number_asks_for_one():
    d = at_phone_question()
    d.tap("skip")
    d.say("yamada@example.jp")
    d.tap("method", v="phone")
    assert d.conv.state == State.ASK_PHONE
    d.say("099-286-2111")
    assert d.conv.state == State.CONFIRM_SUMMARY


def test_editing_one_field_from_the_summary_returns_to_the_summary():
    d = Driver()
    run_intake(d)
    d.tap("edit")
    d.tap("field", v="company")
    assert d.conv.state == State.ASK_COMPANY
    out = d.say("株式会社あたらしい")
    assert d.conv.state == State.CONFIRM_SUMMARY
    assert "株式会社あたらしい" in all_text(out)
    assert d.conv.data["contact_name"] == "山田 太郎"


def test_a_returning_user_confirms_what_is_on_record_instead_of_typing_it_again():
    d = Driver(PROFILE)
    d.tap("consult")
    d.say("インスタで集客したい")
    out = d.tap("yes")
    assert d.conv.state == State.CONFIRM_PROFILE
    assert "有限会社さつま" in all_text(out)
    d.tap("yes")
    assert d.conv.state == State.ASK_METHOD
    d.tap("method", v="visit")
    assert d.conv.state == State.CONFIRM_SUMMARY
    assert d.conv.data["company"] == "有限会社さつま"


def test_a_returning_user_can_change_what_is_on_record():
    d = Driver(PROFILE)
    d.tap("consult")
    d.say("インスタで集客したい")
    d.tap("yes")
    d.tap("no")
    assert d.conv.state == State.ASK_COMPANY


def test_the_user_can_pick_another_category():
    d = Driver()
    d.tap("consult")
    d.say("よくわからないけど相談したい")
    d.tap("no")
    assert d.conv.state == State.CHOOSE_CATEGORY
    d.tap("category", v="security")
    assert d.conv.data["category"] == "security"


@pytest.mark.parametrize("kind", ["sticker", "image", "location", "file"])
def test_a_sticker_or_file_during_intake_gets_a_kind_answer_and_the_question_again(kind):
    d = Driver()
    d.tap("consult")
    d.say("HPを作りたい")
    d.tap("yes")
    out = d.send(Intent("media", data={"type": kind}))
    assert d.conv.state == State.ASK_COMPANY
    assert "文字でお答えください" in all_text(out) and "ボタン" not in out.replies[0]["text"] and "会社名" in all_text(out)


def test_the_menu_puts_an_unfinished_intake_aside_and_resume_brings_it_back():
    d = Driver()
    d.tap("consult")
    d.say("HPを作りたい")
    d.tap("yes")
    d.say("有限会社テスト")
    out = d.say("メニュー")
    assert d.conv.state == State.IDLE and "続きから" in all_text(out)
    d.now += timedelta(hours=23)
    out = d.say("続きから")
    assert d.conv.state == State.ASK_INDUSTRY
    assert d.conv.data["company"] == "有限会社テスト"


def test_an_intake_put_aside_for_more_than_a_day_expires_politely():
    d = Driver()
    d.tap("consult")
    d.say("HPを作りたい")
    d.say("メニュー")
    d.now += timedelta(hours=25)
    out = d.say("続きから")
    assert d.conv.state == State.IDLE and d.conv.suspended is None
    assert "24時間" in all_text(out)


def test_an_intake_left_open_for_more_than_a_day_ends_politely_at_the_next_message():
    d = Driver()
    d.tap("consult")
    d.say("HPを作りたい")
    d.tap("yes")
    d.now += timedelta(hours=25)
    out = d.say("有限会社テスト")
    assert "24時間が過ぎた" in all_text(out)
    assert d.conv.state == State.IDLE


def test_cancel_discards_the_intake():
    d = Driver()
    d.tap("consult")
    d.say("HPを作りたい")
    out = d.say("キャンセル")
    assert d.conv.state == State.IDLE and d.conv.data == {}
    assert "取り消しました" in all_text(out)


def test_start_over_goes_back_to_the_question():
    d = Driver()
    d.tap("consult")
    d.say("HPを作りたい")
    d.tap("yes")
    d.say("最初から")
    assert d.conv.state == State.ASK_QUESTION
    assert "question" not in d.conv.data


@pytest.mark.parametrize("now, expected", [
    (datetime(2026, 11, 24, 1, 0, tzinfo=UTC), "まもなく"),          # Tuesday 10:00 in Tokyo
    (datetime(2026, 11, 27, 10, 0, tzinfo=UTC), "11月30日(月) 9:00"),  # Friday 19:00 -> Monday
    (datetime(2026, 11, 28, 3, 0, tzinfo=UTC), "11月30日(月) 9:00"),   # Saturday
])
def test_asking_for_a_person_hands_over_and_says_when_staff_will_answer(now, expected):
    d = Driver()
    d.now = now
    out = d.say("担当者と話したい")
    assert d.conv.state == State.WITH_STAFF
    assert expected in all_text(out)


def test_while_staff_have_the_conversation_the_bot_stays_quiet_but_acknowledges_now_and_then():
    d = Driver()
    d.say("担当者と話したい")
    assert d.say("よろしくお願いします").replies == []
    d.now += timedelta(minutes=11)
    assert "届いています" in all_text(d.say("まだですか"))


def test_a_question_outside_any_flow_gets_help_and_an_offer_to_consult():
    d = Driver()
    out = d.say("補助金でパソコンを買えますか")
    assert "補助金" in all_text(out) and "この内容で相談する" in all_text(out)
    out = d.tap("consult", q="1")
    assert d.conv.state == State.CONFIRM_CATEGORY
    assert d.conv.data["question"] == "補助金でパソコンを買えますか"


@pytest.mark.parametrize("hostile", [
    "<script>alert(1)</script>", "'; DROP TABLE consultations; --", "😀DX化😀", "ｶﾞｲｺｸｼﾞﾝ ｺﾖｳ",
    ("紙の請求書をやめたい。" * 100)[:1000],
])
def test_hostile_or_odd_text_is_kept_as_text_in_every_field(hostile):
    d = Driver()
    d.tap("consult")
    d.say(hostile)
    assert d.conv.data["question"] == hostile
    d.tap("yes")
    d.say(hostile[:100])
    assert d.conv.data["company"] == hostile[:100]


def test_config_renames_show_in_the_bot():
    renamed = replace(CONFIG, categories=tuple(replace(c, name="業務のカイゼン") if c.id == "efficiency" else c
                                                for c in CONFIG.categories))
    out = advance(Conversation("U1", State.ASK_QUESTION, {"consented": True}), Intent("text", text="紙の請求書をやめたい"),
                  Context(renamed, Triager(renamed), NOW, profile=Profile(consent_version="2026-11")))
    assert "業務のカイゼン" in all_text(out)


def test_intake_states_are_exactly_the_ones_that_expire():
    assert State.IDLE not in INTAKE_STATES and State.WITH_STAFF not in INTAKE_STATES
    assert State.ASK_COMPANY in INTAKE_STATES


# --- booking ------------------------------------------------------------------------------------------------

def slot_buttons(outcome) -> list[dict]:
    carousel = next(m for m in outcome.replies if m.get("type") == "flex" and m["contents"]["type"] == "carousel")
    return [b["action"] for bubble in carousel["contents"]["contents"] for b in bubble.get("body", {}).get("contents", [])
            if b.get("type") == "button"]


def choosing() -> tuple[Driver, object]:
    d = Driver()
    run_intake(d)
    return d, d.tap("submit")


def test_after_the_intake_the_user_sees_days_and_times_and_taps_one_to_book():
    d, out = choosing()
    first = slot_buttons(out)[0]
    assert first["label"] == "10:00〜11:00" and "11月25日(水)" in first["displayText"]
    out = d.send(intent_of({"type": "postback", "source": {"type": "user"}, "postback": {"data": first["data"]}}))
    assert "この日時で予約しますか" in all_text(out) and not [e for e in d.effects if isinstance(e, BookSlot)]
    d.tap("confirm_slot")
    book = next(e for e in d.effects if isinstance(e, BookSlot))
    assert (book.coordinator, book.start, book.method) == ("tanaka", datetime(2026, 11, 25, 1, 0, tzinfo=UTC), "online")
    assert "埋まってしまいました" in json_of(book.taken())


def json_of(replies) -> str:
    import json
    return json.dumps(replies, ensure_ascii=False)


def test_other_days_page_forward():
    d, out = choosing()
    more = next(i["action"] for i in out.replies[-1]["quickReply"]["items"] if i["action"]["label"] == "他の日を見る")
    assert "start=2026-12-02" in more["data"]
    d.tap("more_slots", start="2026-12-02")
    assert d.conv.state == State.CHOOSE_SLOT and d.conv.data["slot_from"] == "2026-12-02"


def test_the_datetime_picker_books_a_free_time_and_offers_that_day_otherwise():
    d, _ = choosing()
    d.send(Intent("pick_slot", params={"datetime": "2026-11-26T11:00"}))
    d.tap("confirm_slot")
    assert any(isinstance(e, BookSlot) and e.start == datetime(2026, 11, 26, 2, 0, tzinfo=UTC) for e in d.effects)
    d, _ = choosing()
    out = d.send(Intent("pick_slot", params={"datetime": "2026-11-26T15:00"}))
    assert d.conv.state == State.CHOOSE_SLOT and "空いていませんでした" in all_text(out)
    assert d.conv.data["slot_from"] == "2026-11-26"


def test_a_typed_date_while_choosing_shows_that_date():
    d, _ = choosing()
    d.say("12月3日がいいです")
    assert d.conv.data["slot_from"] == "2026-12-03"


def test_booking_later_leaves_the_choice_for_the_menu():
    d, _ = choosing()
    out = d.tap("later")
    assert d.conv.state == State.IDLE and "予約の確認・変更" in all_text(out)


BOOKED = BookingSummary(7, datetime(2026, 11, 28, 10, 0, tzinfo=TOKYO), datetime(2026, 11, 28, 11, 0, tzinfo=TOKYO),
                        "visit", "田中 一郎", "confirmed",
                        region="kagoshima", consultation_id=3)


def test_the_bookings_menu_lists_upcoming_bookings_with_change_and_cancel():
    d = Driver(bookings=(BOOKED,))
    out = d.tap("bookings")
    assert "11月28日(土) 10:00〜11:00" in all_text(out) and "日時を変更する" in all_text(out)


def test_changing_a_booking_offers_slots_for_the_same_method_and_books_as_a_replacement():
    d = Driver(bookings=(BOOKED,))
    out = d.tap("reschedule", b="7")
    assert d.conv.state == State.CHOOSE_SLOT and d.conv.data["replaces"] == 7
    d.tap("slot", c="tanaka", t=slot_buttons(out)[0]["data"].split("t=")[1])
    d.tap("confirm_slot")
    book = next(e for e in d.effects if isinstance(e, BookSlot))
    assert (book.replaces, book.method, book.consultation_id) == (7, "visit", 3)


def test_cancelling_asks_for_a_reason_and_cancels():
    d = Driver(bookings=(BOOKED,))
    d.tap("cancel_booking", b="7")
    assert d.conv.state == State.ASK_CANCEL_REASON
    out = d.tap("cancel_reason", v="問題が解決した")
    assert CancelBooking(7, "問題が解決した") in d.effects and "キャンセルしました" in all_text(out)


@pytest.mark.parametrize("action", ["reschedule", "cancel_booking"])
def test_someone_elses_booking_id_is_refused(action):
    d = Driver(bookings=(BOOKED,))
    out = d.tap(action, b="8")
    assert d.conv.state == State.IDLE and "見つかりませんでした" in all_text(out)
    assert not [e for e in d.effects if isinstance(e, (BookSlot, CancelBooking))]


@pytest.mark.parametrize("now, allowed", [
    (datetime(2026, 11, 27, 7, 59, tzinfo=UTC), True),   # Friday 16:59 in Tokyo: before 17:00 the day before
    (datetime(2026, 11, 27, 8, 0, tzinfo=UTC), False),   # Friday 17:00: the cut-off for a Saturday visit
])
def test_a_visit_can_be_changed_until_17_00_the_day_before(now, allowed):
    d = Driver(bookings=(BOOKED,))
    d.now = now
    out = d.tap("cancel_booking", b="7")
    assert (d.conv.state == State.ASK_CANCEL_REASON) is allowed
    if not allowed:
        assert "受付期限" in all_text(out) and "田中 一郎" in all_text(out)


KANOYA = PopupOffer(4, "鹿屋商工会議所", "鹿屋市新川町", "osumi", datetime(2026, 12, 5, 10, 0, tzinfo=TOKYO),
                    datetime(2026, 12, 5, 12, 0, tzinfo=TOKYO),
                    (OfferedSlot("popup:4", datetime(2026, 12, 5, 10, 0, tzinfo=TOKYO), datetime(2026, 12, 5, 11, 0, tzinfo=TOKYO)),))


def test_the_popup_menu_lists_days_and_a_tap_starts_the_intake_that_ends_booking_that_seat():
    d = Driver(slots=FakeSlots(popups=[KANOYA]))
    out = d.tap("popup")
    assert "鹿屋商工会議所" in all_text(out) and "10:00〜11:00" in all_text(out)
    d.tap("popup_slot", d="4", t="202612051000")
    assert d.conv.state == State.ASK_QUESTION and d.conv.data["method"] == "visit"
    d.say("レジを新しくしたい")
    d.tap("yes")
    for answer in ("鹿屋商店", "卸売業・小売業", "3人", "鹿屋市", "大隅 太郎", "0994-31-1111", "スキップ"):
        d.say(answer)
    assert d.conv.state == State.CONFIRM_SUMMARY  # the method was set by the pop-up choice
    d.tap("submit")
    recorded = next(e for e in d.effects if isinstance(e, RecordConsultation))
    booked = next(e for e in d.effects if isinstance(e, BookSlot))
    assert recorded.fields["channel"] == "popup"
    assert (booked.popup_day, booked.start) == (4, datetime(2026, 12, 5, 10, 0, tzinfo=TOKYO))


def test_users_in_the_popup_region_see_it_first_when_choosing_a_visit():
    d = Driver(slots=FakeSlots(popups=[KANOYA]))
    d.tap("consult")
    d.say("レジを新しくしたい")
    d.tap("yes")
    for answer in ("鹿屋商店", "卸売業・小売業", "3人", "鹿屋市", "大隅 太郎", "0994-31-1111", "スキップ"):
        d.say(answer)
    d.tap("method", v="visit")
    out = d.tap("submit")
    carousel = next(m for m in out.replies if m.get("type") == "flex")
    assert "出張相談会" in json_of(carousel["contents"]["contents"][0])
    d2 = Driver(slots=FakeSlots(popups=[KANOYA]))
    d2.tap("consult")
    d2.say("レジを新しくしたい")
    d2.tap("yes")
    for answer in ("鹿児島商店", "卸売業・小売業", "3人", "鹿児島市", "薩摩 花子", "099-286-2111", "スキップ"):
        d2.say(answer)
    d2.tap("method", v="visit")
    assert "出張相談会" not in json_of(d2.tap("submit").replies)


def test_a_user_who_met_a_coordinator_before_can_ask_for_them_and_go_back_to_everyone():
    slots = FakeSlots()
    slots.met = ("yamashita", "山下 美咲")
    d = Driver(slots=slots)
    run_intake(d)
    out = d.tap("submit")
    chip = next(i["action"] for i in out.replies[-1]["quickReply"]["items"] if i["action"]["label"] == "前回の担当者で探す")
    assert chip["displayText"] == "前回の担当（山下 美咲）で探す" and slots.preferred is None
    out = d.tap("prefer", v="yamashita")
    assert d.conv.data["prefer"] == "yamashita" and slots.preferred == "yamashita"
    assert "全員の空きを見る" in all_text(out)
    d.tap("prefer", v="")
    assert "prefer" not in d.conv.data and slots.preferred is None
