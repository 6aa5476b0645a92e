"""What a first real user typed where the intake expected something else: contacts, questions, free text, 戻る/やめる."""
from __future__ import annotations

import pytest

from bot.conversation import Intent, Profile, State
from tests.unit.test_flow import Driver, all_text, at_phone_question


def quick_labels(outcome) -> list[str]:
    return [i["action"]["label"] for i in outcome.replies[-1].get("quickReply", {}).get("items", [])]


def at_company_question() -> Driver:
    d = Driver()
    d.tap("consult")
    d.say("HPを作りたい")
    d.asked = d.tap("yes")  # the outcome that asked for the company
    assert d.conv.state == State.ASK_COMPANY
    return d


# --- phone or email (6.5) -------------------------------------------------------------------------------

def test_skipping_both_contacts_offers_a_clear_choice_instead_of_the_same_skip_again():
    d = at_phone_question()
    d.tap("skip")
    out = d.tap("skip")
    assert d.conv.state == State.ASK_EMAIL
    assert "スキップ" not in quick_labels(out)
    assert "電話番号を入力する" in quick_labels(out)
    out = d.tap("contact", v="phone")
    assert d.conv.state == State.ASK_PHONE
    assert "スキップ" not in quick_labels(out) and "メールで連絡を受ける" in quick_labels(out)
    d.say("099-286-2111")
    assert d.conv.data["phone"] == "099-286-2111"
    assert d.conv.state == State.ASK_EMAIL
    d.tap("skip")
    assert d.conv.state == State.ASK_METHOD


def test_a_phone_number_typed_at_the_email_question_is_taken_as_the_phone():
    d = at_phone_question()
    d.tap("skip")
    out = d.say("090-1234-5678")
    assert d.conv.data["phone"] == "090-1234-5678" and d.conv.data["email"] is None
    assert d.conv.state == State.ASK_METHOD, all_text(out)


def test_an_address_typed_at_the_phone_question_is_taken_as_the_email():
    d = at_phone_question()
    d.say("yamada@example.jp")
    assert d.conv.data["email"] == "yamada@example.jp" and d.conv.data["phone"] is None
    assert d.conv.state == State.ASK_METHOD


# --- answers that are not answers (6.6) ------------------------------------------------------------------

def test_a_question_typed_as_the_company_name_is_answered_and_the_company_asked_again():
    d = at_company_question()
    out = d.say("相談って無料ですか？")
    assert "company" not in d.conv.data and d.conv.state == State.ASK_COMPANY
    assert "無料です" in all_text(out) and "会社名" in all_text(out)


@pytest.mark.parametrize("typed", ["👍", "09012345678", "。。。", "!!!"])
def test_no_letters_is_not_a_company_name(typed):
    d = at_company_question()
    out = d.say(typed)
    assert "company" not in d.conv.data and d.conv.state == State.ASK_COMPANY
    assert "文字で" in all_text(out)


def test_a_phone_number_is_not_a_contact_name():
    d = at_phone_question()
    d.tap("back")  # back to the contact name
    assert d.conv.state == State.ASK_CONTACT_NAME
    out = d.say("09012345678")
    assert "contact_name" not in d.conv.data and "文字で" in all_text(out)
    d.say("山田 太郎")
    assert d.conv.data["contact_name"] == "山田 太郎"


@pytest.mark.parametrize("typed", ["😀😀", "ああああああ", "sdfghjkl", "asdfasdf", "？？"])
def test_emoji_or_keyboard_mash_is_not_a_question(typed):
    d = Driver()
    d.tap("consult")
    out = d.say(typed)
    assert "question" not in d.conv.data and d.conv.state == State.ASK_QUESTION
    assert "文字で" in all_text(out)


@pytest.mark.parametrize("name", ["有限会社さつま", "(株)カゴシマ123", "Café Kagoshima", "たか商店", "DX工房"])
def test_real_company_names_are_taken(name):
    d = at_company_question()
    d.say(name)
    assert d.conv.data["company"] == name


# --- 戻る and やめる (6.7) -----------------------------------------------------------------------------------

@pytest.mark.parametrize("state", [State.ASK_COMPANY, State.ASK_INDUSTRY, State.ASK_EMPLOYEES, State.ASK_MUNICIPALITY,
                                   State.ASK_CONTACT_NAME, State.ASK_PHONE, State.ASK_EMAIL, State.ASK_METHOD])
def test_every_field_question_offers_back_and_quit(state):
    d = at_company_question()
    answers = {State.ASK_COMPANY: "テスト商店", State.ASK_INDUSTRY: "製造業", State.ASK_EMPLOYEES: "3人",
               State.ASK_MUNICIPALITY: "鹿児島市", State.ASK_CONTACT_NAME: "山田", State.ASK_PHONE: "099-286-2111",
               State.ASK_EMAIL: "skip"}
    out = d.asked
    while d.conv.state != state:
        out = d.tap("skip") if answers[d.conv.state] == "skip" else d.say(answers[d.conv.state])
    assert {"戻る", "やめる"} <= set(quick_labels(out))


def test_back_goes_to_the_previous_question_and_forgets_its_answer():
    d = at_company_question()
    d.say("テスト商店")
    d.say("製造業")
    assert d.conv.state == State.ASK_EMPLOYEES
    out = d.tap("back")
    assert d.conv.state == State.ASK_INDUSTRY and "industry" not in d.conv.data
    assert "業種" in all_text(out)
    d.say("建設業")
    assert d.conv.data["industry"] == "建設業" and d.conv.state == State.ASK_EMPLOYEES


def test_typed_modoru_goes_back_too():
    d = at_company_question()
    d.say("テスト商店")
    d.say("戻る")
    assert d.conv.state == State.ASK_COMPANY and "company" not in d.conv.data


def test_quit_from_a_field_ends_the_intake():
    d = at_company_question()
    out = d.tap("cancel")
    assert d.conv.state == State.IDLE and "取り消しました" in all_text(out)


# --- free text at button steps (6.8) --------------------------------------------------------------------

@pytest.mark.parametrize("typed, industry", [
    ("うちは焼酎の製造です", "製造業"), ("工務店をやっています", "建設業"), ("旅館です", "飲食・宿泊業"),
    ("漁協の事務をしています", "農林水産業"), ("介護事業所", "医療・福祉"), ("美容室を経営", "サービス業"),
    ("運送会社", "運輸業"), ("小さな商店です", "卸売業・小売業"),
])
def test_industry_words_map_to_the_choice(typed, industry):
    d = at_company_question()
    d.say("テスト商店")
    d.say(typed)
    assert d.conv.data["industry"] == industry


@pytest.mark.parametrize("typed, employees", [
    ("5人です", "1〜5人"), ("社員は30名くらい", "21〜50人"), ("ひとりでやってます", "1〜5人"), ("150", "101〜300人"),
])
def test_employee_numbers_in_words_map_to_a_range(typed, employees):
    d = at_company_question()
    d.say("テスト商店")
    d.say("製造業")
    d.say(typed)
    assert d.conv.data["employees"] == employees


def test_free_text_that_fits_no_industry_shows_the_choices_again():
    d = at_company_question()
    d.say("テスト商店")
    out = d.say("よくわからない")
    assert d.conv.state == State.ASK_INDUSTRY and "製造業" in quick_labels(out)


def test_back_on_the_first_question_says_so():
    d = Driver()
    d.tap("consult")
    out = d.send(Intent("back"))
    assert d.conv.state == State.ASK_QUESTION and "戻れません" in all_text(out)


# --- menu taps, follows, stickers and old buttons in the middle of things (6.14) ---------------------------

@pytest.mark.parametrize("looked_up", ["faq", "seminars", "bookings", "popup"])
def test_looking_something_up_mid_intake_keeps_the_intake_and_the_next_answer_continues_it(looked_up):
    d = at_company_question()
    out = d.tap(looked_up)
    assert d.conv.state == State.ASK_COMPANY and "会社名" in all_text(out)
    d.say("有限会社さつま")
    assert d.conv.data["company"] == "有限会社さつま" and d.conv.state == State.ASK_INDUSTRY


def test_a_second_follow_mid_intake_keeps_the_intake():
    d = at_company_question()
    d.say("有限会社さつま")
    out = d.send(Intent("follow"))
    assert d.conv.state == State.ASK_INDUSTRY and d.conv.data["company"] == "有限会社さつま"
    assert "続き" in all_text(out) and "業種" in all_text(out)


def test_an_off_topic_question_outside_the_intake_is_answered_once_not_twice():
    d = Driver()
    out = d.say("相談って無料ですか？")
    text = all_text(out)
    assert "無料です" in text
    assert "どんなことでも" not in text  # the same offer was said twice in other words


def test_a_sticker_at_a_typed_question_does_not_ask_for_buttons():
    d = at_company_question()
    out = d.send(Intent("media", data={"type": "sticker"}))
    assert "ボタンで" not in out.replies[0]["text"]


@pytest.mark.parametrize("stale", ["slot", "more_slots", "submit", "industry"])
def test_an_old_button_says_why_it_no_longer_works(stale):
    d = Driver()
    out = d.tap(stale, t="202612011000", c="tanaka", v="製造業", start="2026-12-01")
    assert d.conv.state == State.IDLE
    assert "古い" in all_text(out) or "終わった" in all_text(out)


# --- a greeting is no question (seen in the simulator: 「こんにちは」 became the consultation's question) -------------

GREETINGS = ["こんにちは", "こんにちは！", "はじめまして。よろしくお願いします🙇", "おはようございます", "Hello"]


@pytest.mark.parametrize("typed", GREETINGS)
def test_a_greeting_before_consent_is_not_kept_as_the_question(typed):
    d = Driver(profile=Profile())
    d.tap("consult")
    assert d.conv.state == State.ASK_CONSENT
    out = d.say(typed)
    assert "pending_question" not in d.conv.data and "覚えています" not in all_text(out)
    assert "同意して始める" in all_text(out)
    out = d.tap("consent")
    assert d.conv.state == State.ASK_QUESTION and "question" not in d.conv.data
    assert "ご相談内容を自由に" in all_text(out)


def test_a_question_after_a_greeting_before_consent_is_still_kept():
    d = Driver(profile=Profile())
    d.tap("consult")
    d.say("こんにちは、紙の請求書をやめたいです")
    d.tap("consent")
    assert d.conv.data["question"] == "こんにちは、紙の請求書をやめたいです"


@pytest.mark.parametrize("typed", GREETINGS)
def test_a_greeting_at_the_question_is_answered_kindly_and_the_question_asked_again(typed):
    d = Driver()
    d.tap("consult")
    out = d.say(typed)
    assert "question" not in d.conv.data and d.conv.state == State.ASK_QUESTION
    assert "どんなことでお困りですか" in all_text(out)


def test_a_greeting_outside_any_flow_gets_the_menu_and_no_offer_to_make_it_a_consultation():
    d = Driver()
    out = d.say("こんにちは")
    assert d.conv.state == State.IDLE and "pending_question" not in d.conv.data
    assert "相談を申し込む" in quick_labels(out) and "この内容で相談する" not in quick_labels(out)
    out = d.say("請求書を電子化したい")
    assert "この内容で相談する" in quick_labels(out)  # a real question still gets the offer
