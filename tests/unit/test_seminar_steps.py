"""The seminar steps with no database: the carousel, the mode, a full mode, details from the record, refusals."""
from __future__ import annotations

import json
import logging
from datetime import timedelta

from bot.conversation import (
    CancelRegistration, Conversation, Intent, Profile, RegisterSeminar, RegistrationSummary, SaveProfile, SeminarOffer,
    State,
)
from bot.flow import advance
from storage.logids import MaskFeedTokens
from tests.unit.test_flow import NOW, ctx

OFFER = SeminarOffer(7, "DX入門セミナー", NOW + timedelta(days=10), NOW + timedelta(days=10, hours=2),
                     NOW + timedelta(days=9), "かごゆいテラス（鹿児島県庁18階）", "鹿児島市", None, 2, 3, 0, 3,
                     onsite_waiting=4)
KNOWN = Profile(company="さつま商事", contact_name="西郷 隆子", consent_version="2026-11")


def said(outcome) -> str:
    return json.dumps(outcome.replies, ensure_ascii=False)


def run(state, intent, profile=KNOWN, data=None, **kw):
    return advance(Conversation("U1", state, data or {}), intent, ctx(profile, seminars=(OFFER,), **kw))


def test_the_carousel_shows_seats_and_the_waiting_list_per_mode():
    out = run(State.IDLE, Intent("seminars"))
    assert "会場 満席（キャンセル待ち4人）" in said(out) and "オンライン 残り3席" in said(out)
    assert "action=seminar&id=7" in said(out)


def test_consent_first_when_not_on_record_then_the_mode():
    out = run(State.IDLE, Intent("seminar", data={"id": "7"}), profile=Profile())
    assert out.next_state == State.SEMINAR_CONSENT and "個人情報の取り扱い" in said(out)
    out = run(State.IDLE, Intent("seminar", data={"id": "7"}))
    assert out.next_state == State.SEMINAR_MODE and "参加方法をお選びください" in said(out)


def test_a_full_mode_offers_the_other_and_the_waiting_list_and_the_record_is_confirmed_with_one_tap():
    out = run(State.SEMINAR_MODE, Intent("seminar_mode", data={"v": "onsite"}), data={"seminar": 7})
    assert out.next_state == State.SEMINAR_FULL and "オンラインでしたら、残り3席" in said(out)
    out = run(State.SEMINAR_FULL, Intent("seminar_wait"), data=out.data)
    assert out.next_state == State.SEMINAR_CONFIRM and "さつま商事" in said(out)
    out = run(State.SEMINAR_CONFIRM, Intent("seminar_submit"), data=out.data)
    assert out.effects == [RegisterSeminar(7, "onsite", True, "さつま商事", "西郷 隆子")]


def test_company_and_name_are_asked_when_not_on_record_and_checked_like_the_intake():
    data = {"seminar": 7, "mode": "online", "wait": False}
    out = run(State.SEMINAR_MODE, Intent("seminar_mode", data={"v": "online"}), profile=Profile(consent_version="2026-11"),
              data={"seminar": 7})
    assert out.next_state == State.SEMINAR_COMPANY
    again = run(State.SEMINAR_COMPANY, Intent("text", text="!!!"), data=data)
    assert again.next_state == State.SEMINAR_COMPANY and "文字で" in said(again)
    out = run(State.SEMINAR_COMPANY, Intent("text", text="さつま商事"), profile=Profile(), data=data)
    out = run(State.SEMINAR_NAME, Intent("text", text="西郷 隆子"), profile=Profile(), data=out.data)
    out = run(State.SEMINAR_CONFIRM, Intent("seminar_submit"), profile=Profile(), data=out.data)
    assert SaveProfile({"company": "さつま商事", "contact_name": "西郷 隆子"}) in out.effects


def test_stale_or_foreign_ids_change_nothing():
    assert run(State.IDLE, Intent("seminar", data={"id": "8"})).effects == []
    assert "見つからないか" in said(run(State.IDLE, Intent("seminar", data={"id": "8"})))
    mine = RegistrationSummary(5, 7, OFFER.title, OFFER.start_at, OFFER.end_at, "online", "registered")
    assert "すでにお申し込み" in said(run(State.IDLE, Intent("seminar", data={"id": "7"}), registrations=(mine,)))
    assert run(State.IDLE, Intent("seminar_cancel_yes", data={"r": "6"}), registrations=(mine,)).effects == []
    assert run(State.IDLE, Intent("seminar_cancel_yes", data={"r": "5"}),
               registrations=(mine,)).effects == [CancelRegistration(5)]


def test_the_access_log_masks_the_registration_calendar_token():
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '"GET %s HTTP/1.1" 200 -',
                               ("/seminars/abcDEF-123_x.ics",), None)
    MaskFeedTokens().filter(record)
    assert "abcDEF" not in record.getMessage() and "/seminars/***.ics" in record.getMessage()
