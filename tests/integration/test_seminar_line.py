"""Seminars over LINE end to end: signed webhook events, the local fake of LINE's API, a movable clock."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from app import create_app
from storage import seminars
from storage.models import LineUser, SeminarRegistration
from tests.fakes.line_api import FakeLineApi
from tests.helpers import actions, SECRET, LineUserDriver, add_registration, texts

OTHER = "U0000000000000000000000000000beef"


@pytest.fixture
def line():
    with FakeLineApi() as fake:
        yield fake


@pytest.fixture
def app(settings, clock, line):
    app = create_app(replace(settings, line_channel_secret=SECRET, line_channel_access_token="token",
                             line_api_base_url=line.base_url), clock=clock)
    yield app
    app.extensions["dxdesk"].stop()
    app.extensions["dxdesk"].db.dispose()


@pytest.fixture
def services(app):
    return app.extensions["dxdesk"]


@pytest.fixture
def user(app, line):
    return LineUserDriver(app.test_client(), app, line)


def _seminar(services, onsite=2, online=2, **kw) -> int:
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        seminar = seminars.create(s, title="DX入門セミナー", start_at=now + timedelta(days=10),
                                  end_at=now + timedelta(days=10, hours=2), onsite_seats=onsite, online_seats=online,
                                  now=now, subsidy_briefing=True, **kw)
        s.commit()
        return seminar.id


def _on_record(services, user_id, **fields):
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        s.add(LineUser(id=user_id, source="line", following=True, consent_version="2026-11", consent_at=now,
                       created_at=now, updated_at=now, **fields))
        s.commit()


def _registrations(services, seminar_id):
    with services.db.unit_of_work() as s:
        return list(s.scalars(select(SeminarRegistration).where(SeminarRegistration.seminar_id == seminar_id)
                              .order_by(SeminarRegistration.id)))


def test_a_new_user_sees_the_carousel_consents_chooses_on_site_and_gets_calendar_and_qr(user, services, client):
    seminar_id = _seminar(services, onsite=1, online=3)
    said = user.tap("action=menu&item=seminars")
    carousel = next(m for m in said if m["type"] == "flex")
    assert carousel["contents"]["type"] == "carousel"
    shown = texts(said)
    assert "DX入門セミナー" in shown and "12月4日(金) 10:00〜12:00" in shown
    assert "会場 残り1席" in shown and "オンライン 残り3席" in shown and "補助金説明あり" in shown
    (apply,) = [a for a in actions(carousel["contents"]) if a.get("label") == "申し込む"]
    assert apply["type"] == "postback" and apply["data"] == f"action=seminar&id={seminar_id}"

    assert "個人情報の取り扱い" in texts(user.tap(f"action=seminar&id={seminar_id}"))
    asked = user.tap("action=consent&v=2026-11")
    assert "参加方法をお選びください" in texts(asked)
    assert "会社名（屋号）" in texts(user.tap("action=seminar_mode&v=onsite"))
    assert "お名前" in texts(user.say("さつま商事"))
    confirm = user.say("西郷 隆子")
    assert "この内容で申し込みますか" in texts(confirm) and "さつま商事" in texts(confirm)
    done = user.tap("action=seminar_submit")
    (reg,) = _registrations(services, seminar_id)
    assert (reg.status, reg.mode, reg.company, reg.contact_name) == ("registered", "onsite", "さつま商事", "西郷 隆子")
    said = texts(done)
    assert "お申し込みを承りました" in said and "かごゆいテラス" in said and "受付用のQRコード" in said
    ics = next(a for a in actions(done) if a.get("label") == "カレンダーに追加")
    assert ics["uri"] == f"http://localhost/seminars/{reg.checkin_token}.ics"
    assert any(m["type"] == "image" for m in done)
    response = client.get(f"/seminars/{reg.checkin_token}.ics")
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "BEGIN:VEVENT" in body and "DTSTART:20261204T010000Z" in body
    assert "LOCATION:かごゆいテラス" in body
    assert client.get("/seminars/not-a-token.ics").status_code == 404
    with services.db.unit_of_work() as s:
        assert s.get(LineUser, user.user).company == "さつま商事"  # kept for the next time

    # Registering twice, even with the old button, changes nothing.
    assert "すでにお申し込み" in texts(user.tap(f"action=seminar&id={seminar_id}"))
    assert len(_registrations(services, seminar_id)) == 1


def test_a_known_user_confirms_with_one_tap_and_a_full_mode_offers_the_other_then_the_waiting_list(user, services):
    seminar_id = _seminar(services, onsite=1, online=1)
    add_registration(services.db, seminar_id, OTHER, mode="onsite")
    _on_record(services, user.user, company="有限会社さつま", contact_name="西郷 花子")
    user.tap(f"action=seminar&id={seminar_id}")
    full = user.tap("action=seminar_mode&v=onsite")
    said = texts(full)
    assert "会場のお席は満席です" in said and "オンラインでしたら、残り1席" in said and "キャンセル待ちに登録" in said
    confirm = user.tap("action=seminar_wait")
    assert "有限会社さつま" in texts(confirm) and "キャンセル待ち" in texts(confirm)
    done = user.tap("action=seminar_submit")
    assert "キャンセル待ちに登録しました（1番目）" in texts(done)
    assert [r.status for r in _registrations(services, seminar_id)] == ["registered", "waiting"]

    # 予約の確認・変更 lists it with a cancel button; cancelling asks first, then cancels.
    listing = user.tap("action=menu&item=bookings")
    assert "セミナー：DX入門セミナー" in texts(listing) and "キャンセル待ち（1番目）" in texts(listing)
    cancel = next(a for a in actions(listing) if a.get("label") == "キャンセルする")
    assert "キャンセルしますか" in texts(user.tap(cancel["data"]))
    reg = _registrations(services, seminar_id)[1]
    assert "キャンセルしました" in texts(user.tap(f"action=seminar_cancel_yes&r={reg.id}"))
    assert _registrations(services, seminar_id)[1].status == "cancelled"


def test_a_cancellation_over_line_promotes_the_first_waiting_user_who_can_decline_with_one_tap(user, services, line):
    seminar_id = _seminar(services, onsite=1, online=0)
    _on_record(services, user.user, company="さつま商事", contact_name="西郷 隆子")
    user.tap(f"action=seminar&id={seminar_id}")
    user.tap("action=seminar_mode&v=onsite")
    user.tap("action=seminar_submit")
    waiting_id, _ = add_registration(services.db, seminar_id, OTHER, mode="onsite", status="waiting")
    mine = _registrations(services, seminar_id)[0]
    user.tap(f"action=seminar_cancel_yes&r={mine.id}")
    promoted = [m for batch in line.delivered(OTHER) for m in batch]
    assert "繰り上がりました" in texts(promoted) and "辞退する" in texts(promoted)
    assert [r.status for r in _registrations(services, seminar_id)] == ["cancelled", "registered"]

    # The promoted user's 辞退する cannot be tapped by anyone else.
    other = LineUserDriver(user.client, None, line)
    other.services = services
    assert "見つかりませんでした" in texts(user.tap(f"action=seminar_decline&r={waiting_id}"))
    other.user = OTHER
    assert "辞退を承りました" in texts(other.tap(f"action=seminar_decline&r={waiting_id}"))
    assert _registrations(services, seminar_id)[1].cancelled_by == "declined"


def test_forged_and_stale_postbacks_get_a_plain_answer_and_change_nothing(user, services, clock):
    seminar_id = _seminar(services, onsite=1, online=1, deadline_at=clock.now() + timedelta(days=1))
    _on_record(services, user.user, company="さつま商事", contact_name="西郷 隆子")
    other_reg, _ = add_registration(services.db, seminar_id, OTHER, mode="online")
    assert "見つからないか" in texts(user.tap("action=seminar&id=9999"))
    assert "見つからないか" in texts(user.tap("action=seminar&id=abc"))
    assert "見つかりませんでした" in texts(user.tap(f"action=seminar_cancel_yes&r={other_reg}"))
    assert "見つかりませんでした" in texts(user.tap(f"action=seminar_cancel&r={other_reg}"))
    # Started, then past the deadline before submitting: refused at the submit.
    user.tap(f"action=seminar&id={seminar_id}")
    user.tap("action=seminar_mode&v=onsite")
    clock.advance(days=2)
    assert "締め切りました" in texts(user.tap("action=seminar_submit"))
    assert "締め切りました" in texts(user.tap(f"action=seminar&id={seminar_id}"))
    assert [r.user_id for r in _registrations(services, seminar_id)] == [OTHER]
    assert _registrations(services, seminar_id)[0].status == "registered"
