"""「データ削除」 end to end over signed webhooks: the person's data leaves every table, the monthly figures still count."""
from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from app import create_app
from storage import activities, cases, reports
from storage.models import (
    Activity, ActivityPhoto, AuditEntry, Booking, CaseEvent, Consultation, DeletionRequest, LineUser, WebSubmission,
)
from storage.privacy import purge
from storage.queries import consultations_as_json
from tests.fakes.line_api import DEFAULT_DISPLAY_NAME, FakeLineApi
from tests.helpers import SECRET, LineUserDriver, database_text, line_intake, texts

CANARIES = {"company": "有限会社カナリア醸造", "name": "鳥居 かなり", "phone": "099-111-2233",
            "email": "kanari@example.jp", "phrase": "紙の請求書をやめたい、合言葉はひばり色"}


@pytest.fixture
def fake():
    with FakeLineApi() as fake:
        yield fake


@pytest.fixture
def line_app(settings, clock, fake):
    app = create_app(replace(settings, line_channel_secret=SECRET, line_channel_access_token="token",
                             line_api_base_url=fake.base_url, public_base_url="https://dx-desk.example.jp"), clock=clock)
    yield app
    app.extensions["dxdesk"].stop()
    app.extensions["dxdesk"].db.dispose()


@pytest.fixture
def user(line_app, fake):
    u = LineUserDriver(line_app.test_client(), line_app, fake)
    receipt = line_intake(u, company=CANARIES["company"], name=CANARIES["name"], phone=CANARIES["phone"],
                          email=CANARIES["email"], question=CANARIES["phrase"])
    assert "受付番号" in receipt
    return u


def personal_left(db) -> list[str]:
    dump = database_text(db)
    return [v for v in (*CANARIES.values(), "ひばり色", DEFAULT_DISPLAY_NAME) if v in dump]


def ask_and_confirm(u: LineUserDriver) -> str:
    asked = u.say("データ削除")
    button = next(i["action"]["data"] for m in asked for i in m.get("quickReply", {}).get("items", [])
                  if i["action"]["label"] == "削除する")
    return texts(u.tap(button))


def test_a_line_user_who_confirms_deletion_leaves_no_personal_data_in_any_table(user, line_app, clock):
    services = line_app.extensions["dxdesk"]
    assert personal_left(services.db)  # the intake did store them, so the search below can find them

    said = ask_and_confirm(user)

    assert "削除しました" in said
    assert personal_left(services.db) == []
    [c] = consultations_as_json(services.db)
    assert (c["category"], c["region"], c["municipality"], c["method"], c["channel"], c["origin"]) == (
        "efficiency", "kagoshima", "いちき串木野市", "online", "line", "menu")
    with services.db.unit_of_work() as s:
        month = reports.month_period("2026-11")
        assert reports.consultations(s, month) == 1 and reports.by_category(s, month) == {"efficiency": 1}
        assert reports.companies(s, month) == {"new": 1, "returning": 0}
        assert s.get(LineUser, user.user) is None
        request = s.scalar(select(DeletionRequest))
        assert (request.status, request.done_by) == ("done", "bot")
        assert [(e.who, e.action, e.record) for e in s.scalars(select(AuditEntry))] == [
            ("bot", "erase", f"deletion:{request.id}")]


def test_erasure_clears_what_staff_wrote_on_the_person_s_cases_but_keeps_their_history_of_codes(user, line_app, clock):
    services = line_app.extensions["dxdesk"]
    now = clock.now()
    with services.db.unit_of_work() as s:
        c = s.scalar(select(Consultation))
        cases.add_note(s, c, f"{CANARIES['name']}さんに電話した。合言葉はつぐみ色", "tanaka", now)
        cases.correct_field(s, c, {"phone": "099-999-8877"}, "tanaka", now)
        referral = cases.refer(s, c, "yorozu", "つぐみ色の件で紹介", "tanaka", now)
        cases.set_referral_outcome(s, referral, "accepted", "つぐみ色の支援が始まった", "tanaka", now)
        cases.set_status(s, c, "in_progress", "tanaka", now)
        s.commit()
    assert "つぐみ色" in database_text(services.db) and "099-999-8877" in database_text(services.db)

    ask_and_confirm(user)

    dump = database_text(services.db)
    assert "つぐみ色" not in dump and "099-999-8877" not in dump and personal_left(services.db) == []
    with services.db.unit_of_work() as s:
        assert [(e.kind, e.old, e.new) for e in s.scalars(select(CaseEvent).order_by(CaseEvent.id))] == [
            ("field", None, None), ("referral", "pending", "accepted"), ("status", "received", "in_progress")]


def test_erasure_clears_the_activity_records_of_the_person_s_company_and_their_photos_but_keeps_the_counts(
        user, line_app, clock):
    from tests.integration.test_retention import add_activity
    services = line_app.extensions["dxdesk"]
    now = clock.now()
    with services.db.unit_of_work() as s:
        c = s.scalar(select(Consultation))
        linked = add_activity(s, services, now, CANARIES["company"], consultation_id=c.id, photo=True)
        add_activity(s, services, now, CANARIES["company"], kind="visit", photo=True)  # the company, not the case
        elsewhere = add_activity(s, services, now, "別の商店", kind="visit")
        elsewhere.notes = f"{CANARIES['name']}さんの紹介で訪問"  # notes naming them on another company's visit
        other = add_activity(s, services, now, "無関係の工務店", photo=True)
        s.add(WebSubmission(key="form-1", address="a" * 64, consultation_id=c.id, consent_version="2026-11",
                            created_at=now))
        s.commit()
    year = (now.replace(month=4, day=1), now.replace(year=now.year + 1))
    with services.db.unit_of_work() as s:
        before = activities.counts_by_kind(s, *year), activities.progress(s, *year)
    photos = services.settings.var_dir / "photos"
    assert len(list(photos.glob("*.jpg"))) == 3 and personal_left(services.db)

    assert "削除しました" in ask_and_confirm(user)

    assert personal_left(services.db) == []
    with services.db.unit_of_work() as s:
        assert (activities.counts_by_kind(s, *year), activities.progress(s, *year)) == before
        cleared = s.get(Activity, linked.id)
        assert cleared.company.startswith("（削除済み）") and (cleared.notes, cleared.topics) == (None, None)
        assert (cleared.kind, cleared.attendees, cleared.consultation_id) == ("training", 5, linked.consultation_id)
        assert (s.get(Activity, elsewhere.id).company, s.get(Activity, elsewhere.id).notes) == ("別の商店", None)
        assert s.get(Activity, other.id).notes == "無関係の工務店の社長と話した"
        [kept] = s.scalars(select(ActivityPhoto)).all()
        assert kept.activity_id == other.id
        assert s.scalar(select(WebSubmission.address)) == "（削除済み）"
    assert sorted(str(p.relative_to(photos)) for p in photos.rglob("*") if p.is_file()) == [
        kept.stored_name, f"thumbs/{kept.stored_name}"]  # the other company's photo and its thumbnail


def test_the_line_id_stays_only_on_the_done_notice_until_the_purge_gives_it_the_tombstone(user, line_app, clock):
    services = line_app.extensions["dxdesk"]
    ask_and_confirm(user)
    dump = database_text(services.db)
    assert dump.count(user.user) == 1  # outbound_messages.to of the notice, which was sent

    with services.db.unit_of_work() as s:
        done = purge(s, clock.now(), retention_months=24, copies_days=30, who="cli")
        s.commit()
    assert done.counts["deletion_notices"] == 1
    assert user.user not in database_text(services.db)


def test_a_user_who_writes_again_after_erasure_starts_afresh(user, line_app):
    ask_and_confirm(user)
    again = texts(user.say("こんにちは"))
    assert "同意" in again or "相談" in again
    with line_app.extensions["dxdesk"].db.unit_of_work() as s:
        assert s.get(LineUser, user.user).company is None


def test_a_booking_ahead_leaves_the_request_for_staff_and_erases_nothing_yet(user, line_app):
    services = line_app.extensions["dxdesk"]
    assert "予約" in texts(user.book("action=slot&c=tanaka&t=202611251000"))

    said = ask_and_confirm(user)

    assert "担当者が取り消しを確認" in said and "11月25日(水) 10:00" in said
    assert CANARIES["phone"] in database_text(services.db)
    with services.db.unit_of_work() as s:
        assert s.scalar(select(DeletionRequest.status)) == "pending"
        assert s.scalar(select(Booking.status)) == "confirmed"
    ask_and_confirm(user)  # asking twice makes one request
    with services.db.unit_of_work() as s:
        assert len(s.scalars(select(DeletionRequest)).all()) == 1
