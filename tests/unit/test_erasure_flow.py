"""「データ削除」 driven step by step with no database: the explanation, the confirmation, and every refusal."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import pytest

from bot.config import load_config
from bot.conversation import Commitment, Context, Conversation, Intent, RequestErasure, State
from bot.flow import advance
from bot.intents import intent_of
from bot.triage import Triager
from tests.helpers import texts

CONFIG = load_config()
TRIAGER = Triager(CONFIG)
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
USER = "Uaaaa"


def ctx(now=NOW, **kw) -> Context:
    return Context(CONFIG, TRIAGER, now, **kw)


def typed(text: str) -> Intent:
    return intent_of({"type": "message", "source": {"type": "user", "userId": USER},
                      "message": {"type": "text", "text": text}})


def tapped(data: str) -> Intent:
    return intent_of({"type": "postback", "source": {"type": "user", "userId": USER}, "postback": {"data": data}})


def asked(state=State.IDLE, data=None) -> tuple[Conversation, str]:
    """The conversation after 「データ削除」, and the data of its 削除する button."""
    out = advance(Conversation(USER, state, data or {}), typed("データ削除"), ctx())
    assert out.next_state == State.CONFIRM_ERASE and out.effects == []
    button = next(i["action"]["data"] for i in out.replies[-1]["quickReply"]["items"] if i["action"]["label"] == "削除する")
    return Conversation(USER, out.next_state, out.data, out.suspended), button


@pytest.mark.parametrize("words", ["データ削除", "データを削除", "個人情報の削除", "データ削除。"])
def test_typing_data_deletion_explains_what_is_erased_and_what_stays_then_asks(words):
    out = advance(Conversation(USER), typed(words), ctx())
    said = texts(out.replies)
    assert out.next_state == State.CONFIRM_ERASE
    assert "電話番号" in said and "ご相談の内容" in said and "やりとりの記録" in said and "元に戻せません" in said
    assert "分野・地域・相談方法・日付" in said
    assert "削除してよろしいですか" in said and out.effects == []


def test_the_faq_card_and_the_rich_menu_offer_deletion():
    faq = advance(Conversation(USER), tapped("action=menu&item=faq"), ctx())
    assert "データ削除" in texts(faq.replies)
    assert tapped("action=menu&item=erase").name == "erase"


def test_confirming_with_nothing_ahead_erases_at_once_and_says_so():
    conv, button = asked()
    out = advance(conv, tapped(button), ctx(now=NOW + timedelta(minutes=1)))
    assert out.effects == [RequestErasure(immediate=True)]
    assert out.next_state == State.IDLE and "削除しました" in texts(out.replies)


def test_typed_sakujo_suru_confirms_too_and_iie_keeps():
    conv, _ = asked()
    assert advance(conv, typed("削除する"), ctx()).effects == [RequestErasure(immediate=True)]
    kept = advance(conv, typed("いいえ"), ctx())
    assert kept.effects == [] and "取りやめました" in texts(kept.replies)


def test_a_booking_ahead_leaves_the_erasure_to_staff_and_names_it():
    conv, button = asked()
    booking = Commitment("booking", datetime(2026, 11, 28, 1, 0, tzinfo=UTC))
    seminar = Commitment("seminar", datetime(2026, 12, 5, 4, 0, tzinfo=UTC), "DX入門セミナー")
    out = advance(conv, tapped(button), ctx(ahead=(booking, seminar)))
    said = texts(out.replies)
    assert out.effects == [RequestErasure(immediate=False)]
    assert "11月28日(土) 10:00" in said and "DX入門セミナー" in said and "担当者" in said and "削除しました" not in said


@pytest.mark.parametrize("data", ["action=erase_confirm", "action=erase_confirm&at=2026-11-24T01:00:00+00:00"])
def test_a_deletion_postback_without_the_question_before_it_is_refused_and_changes_nothing(data):
    out = advance(Conversation(USER), tapped(data), ctx())
    assert out.effects == [] and "無効" in texts(out.replies)


def test_a_forged_button_of_another_question_is_refused():
    conv, _ = asked()
    out = advance(conv, tapped("action=erase_confirm&at=2020-01-01T00:00:00+00:00"), ctx())
    assert out.effects == [] and "無効" in texts(out.replies)


def test_a_postback_naming_another_users_id_is_refused_plainly():
    conv, button = asked()
    out = advance(conv, tapped(button + "&user=Ubbbb"), ctx())
    assert out.effects == [] and "ほかの方のデータを削除することはできません" in texts(out.replies)
    assert dict(parse_qsl(button))["action"] == "erase_confirm"


def test_a_confirmation_a_day_later_is_not_taken():
    conv, button = asked()
    out = advance(conv, tapped(button), ctx(now=NOW + timedelta(hours=25)))
    assert out.effects == [] and "時間がたった" in texts(out.replies)


def test_asking_in_the_middle_of_an_intake_keeps_it_to_resume_if_the_person_says_no():
    conv, _ = asked(State.ASK_PHONE, {"consented": True, "company": "有限会社さつま"})
    assert conv.suspended["state"] == "ask_phone"
    kept = advance(conv, tapped("action=erase_keep"), ctx())
    assert kept.next_state == State.IDLE and kept.suspended is False  # what was kept aside stays for 続きから
