"""Booking end to end: signed webhook events, a real local fake of Google Calendar and of LINE, a movable clock."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from werkzeug.serving import make_server

from app import create_app
from bot.jatime import TOKYO
from scheduling import outbox
from storage.models import Booking, ConversationRow, LineUser, OutboxItem
from storage.queries import consultations_as_json
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.line_api import FakeLineApi
from tests.helpers import SECRET, LineUserDriver, sign, texts

ROOT = Path(__file__).resolve().parents[2]
COORDINATOR_LINE_ID = "Ucoordinatortanaka0000000000000001"
CONFIG = textwrap.dedent(f"""
    [[coordinators]]
    id = "tanaka"
    name = "田中 一郎"
    line_user_id = "{COORDINATOR_LINE_ID}"
    calendar_id = "tanaka@example.jp"
    methods = ["visit", "online", "phone", "email"]
    regions = []
    slot_minutes = 60
    [coordinators.hours]
    mon = ["09:00-12:00", "13:00-17:00"]
    tue = ["09:00-12:00", "13:00-17:00"]
    wed = ["09:00-12:00", "13:00-17:00"]
    thu = ["09:00-12:00", "13:00-17:00"]
    fri = ["09:00-12:00", "13:00-17:00"]
""")


@pytest.fixture
def line():
    with FakeLineApi() as fake:
        yield fake


@pytest.fixture
def gcal(tmp_path):
    with FakeGoogleCalendar() as fake:
        yield fake


@pytest.fixture
def configured(settings, tmp_path, line, gcal):
    config = tmp_path / "dxdesk.toml"
    config.write_text(CONFIG)
    key = tmp_path / "service-account.json"
    gcal.write_service_account_key(key)
    return replace(settings, config_path=str(config), line_channel_secret=SECRET, line_channel_access_token="token",
                   line_api_base_url=line.base_url, google_service_account_file=str(key),
                   google_impersonate_user="dx@example.jp", google_calendar_api_base_url=gcal.api_url)


@pytest.fixture
def app(configured, clock):
    app = create_app(configured, clock=clock)
    yield app
    app.extensions["dxdesk"].stop()
    app.extensions["dxdesk"].db.dispose()


@pytest.fixture
def user(app, line):
    return LineUserDriver(app.test_client(), app, line)


def intake(u: LineUserDriver, method: str = "online") -> list[dict]:
    """A new user's whole intake, up to the slot carousel; returns the carousel message."""
    u.send(type="follow")
    u.tap("action=consent&v=2026-11")
    u.say("インボイス対応の会計ソフトを選びたい")
    u.tap("action=yes")
    for answer in ("さつま商事", "卸売業・小売業", "4人", "鹿児島市", "西郷 隆子", "099-286-2111", "takako@example.jp"):
        u.say(answer)
    u.tap(f"action=method&v={method}")
    said = u.tap("action=submit")
    return next(m for m in said if m.get("type") == "flex" and m["contents"]["type"] == "carousel")


def slot_actions(carousel: dict) -> list[dict]:
    return [b["action"] for bubble in carousel["contents"]["contents"]
            for b in bubble.get("body", {}).get("contents", []) if b.get("type") == "button"]


def active_bookings(services) -> list[Booking]:
    with services.db.unit_of_work() as s:
        return list(s.scalars(select(Booking).where(Booking.status.in_(("pending", "confirmed")))))


def test_a_booking_made_over_line_creates_one_event_notifies_the_coordinator_and_reminds_twice(app, user, line, gcal, clock):
    services = app.extensions["dxdesk"]
    carousel = intake(user)
    # Thursday 11月26日 10:00: far enough ahead for both reminders.
    chosen = next(a for a in slot_actions(carousel) if "11月26日(木) 10:00" in a["displayText"])
    said = texts(user.book(chosen["data"]))
    assert "ご予約が確定しました" in said and "11月26日(木) 10:00〜11:00" in said
    assert "https://meet.google.com/" in said

    [event] = gcal.events("tanaka@example.jp")
    assert event["start"]["dateTime"].startswith("2026-11-26T10:00:00+09:00")
    assert event["conferenceData"]["createRequest"]["conferenceSolutionKey"]["type"] == "hangoutsMeet"
    assert "さつま商事" in event["description"] and "インボイス" in event["description"]
    assert "takako@example.jp" in event["description"]
    [booking] = active_bookings(services)
    assert (booking.status, booking.calendar_event_id) == ("confirmed", event["id"])
    assert "新しいご予約" in texts(line.delivered(COORDINATOR_LINE_ID))
    [listed] = consultations_as_json(services.db)
    assert listed["booking"] == {"id": booking.id, "start": "2026-11-26T10:00:00+09:00", "end": "2026-11-26T11:00:00+09:00",
                                 "coordinator": "tanaka", "method": "online", "status": "confirmed",
                                 "calendar_event_id": event["id"], "meet_url": booking.meet_url}
    assert booking.meet_url.startswith("https://meet.google.com/")

    def reminders_so_far() -> str:
        return texts([m for batch in line.delivered(user.user) for m in batch if "【リマインダー】" in json.dumps(m, ensure_ascii=False)])

    clock.set(datetime(2026, 11, 25, 17, 59, tzinfo=TOKYO))
    outbox.send_due(services.db, services.delivery, clock)
    assert reminders_so_far() == ""
    clock.set(datetime(2026, 11, 25, 18, 0, tzinfo=TOKYO))
    outbox.send_due(services.db, services.delivery, clock)
    outbox.send_due(services.db, services.delivery, clock)
    assert reminders_so_far().count("明日") == 1
    clock.set(datetime(2026, 11, 26, 9, 0, tzinfo=TOKYO))
    outbox.send_due(services.db, services.delivery, clock)
    assert reminders_so_far().count("まもなく") == 1 and "https://meet.google.com/" in reminders_so_far()


def test_cancelling_deletes_the_event_tells_the_coordinator_and_no_reminder_goes_out(app, user, line, gcal, clock):
    services = app.extensions["dxdesk"]
    carousel = intake(user, method="phone")
    chosen = next(a for a in slot_actions(carousel) if "11月26日(木) 13:00" in a["displayText"])
    user.book(chosen["data"])
    [booking] = active_bookings(services)
    assert "action=cancel_booking" in json.dumps(user.tap("action=menu&item=bookings"))
    user.tap(f"action=cancel_booking&b={booking.id}")
    said = texts(user.tap("action=cancel_reason&v=問題が解決した"))
    assert "キャンセルしました" in said
    assert gcal.events("tanaka@example.jp") == []
    assert "ご予約のキャンセル" in texts(line.delivered(COORDINATOR_LINE_ID))
    clock.set(datetime(2026, 11, 26, 13, 0, tzinfo=TOKYO))
    assert outbox.send_due(services.db, services.delivery, clock) == 0
    with services.db.unit_of_work() as s:
        assert set(s.scalars(select(OutboxItem.status))) == {"cancelled"}


def test_changing_the_date_frees_the_old_slot_and_moves_the_event(app, user, gcal, line):
    services = app.extensions["dxdesk"]
    carousel = intake(user)
    first = next(a for a in slot_actions(carousel) if "11月26日(木) 10:00" in a["displayText"])
    user.book(first["data"])
    [old] = active_bookings(services)
    said = user.tap(f"action=reschedule&b={old.id}")
    again = next(m for m in said if m.get("type") == "flex")
    second = next(a for a in slot_actions(again) if "11月26日(木) 14:00" in a["displayText"])
    assert "ご予約を変更しました" in texts(user.book(second["data"]))
    assert "ご予約の変更" in texts(line.delivered(COORDINATOR_LINE_ID))
    [new] = active_bookings(services)
    assert (new.id, new.status, new.start) == (old.id, "confirmed", datetime(2026, 11, 26, 14, 0, tzinfo=TOKYO))
    [event] = gcal.events("tanaka@example.jp")
    assert event["id"] == old.calendar_event_id and event["start"]["dateTime"].startswith("2026-11-26T14:00:00+09:00")
    assert [r.method for r in gcal.requests(path_prefix="/calendar/v3/calendars/")].count("PATCH") == 1
    with services.db.unit_of_work() as s:  # the reminders follow the booking to its new time
        due = sorted(i.due_at for i in s.scalars(select(OutboxItem).where(OutboxItem.status == "pending")))
    assert due == [datetime(2026, 11, 25, 18, 0, tzinfo=TOKYO), datetime(2026, 11, 26, 13, 0, tzinfo=TOKYO)]
    assert next(a for a in slot_actions(intake(LineUserDriver(user.client, app, user.fake, "U2" + "0" * 31)))
                if "11月26日(木) 10:00" in a["displayText"])  # the old time is free again


@pytest.mark.parametrize("forged", [
    "action=slot&c=tanaka&t=202611260830",   # before opening
    "action=slot&c=tanaka&t=202611261215",   # off the grid, in the lunch break
    "action=slot&c=tanaka&t=202611240800",   # in the past
    "action=slot&c=nobody&t=202611261000",   # a coordinator who does not exist
    "action=slot&c=tanaka&t=202612301000",   # the year-end closure
])
def test_a_forged_or_stale_slot_is_refused_with_fresh_choices(app, user, gcal, forged, caplog):
    caplog.set_level("WARNING")
    intake(user)
    said = user.tap(forged)
    assert "あらためて空いている時間からお選びください" in texts(said) and "埋まってしまいました" not in texts(said)
    assert any(m.get("type") == "flex" for m in said)
    assert active_bookings(app.extensions["dxdesk"]) == [] and gcal.events("tanaka@example.jp") == []
    assert "refused" in caplog.text
    assert user.user not in caplog.text  # LINE user ids are logged as a keyed hash


def test_google_errors_never_lose_the_booking_and_the_reconciler_finishes_it(app, user, line, gcal, clock, monkeypatch):
    import googleapiclient.http
    monkeypatch.setattr(googleapiclient.http.time, "sleep", lambda seconds: None)
    services = app.extensions["dxdesk"]
    carousel = intake(user)
    gcal.script("POST", "/calendar/v3/calendars/", [503] * 4)  # the first try and the client's three retries
    chosen = next(a for a in slot_actions(carousel) if "11月27日(金) 10:00" in a["displayText"])
    said = texts(user.book(chosen["data"]))
    assert "時間がかかっています" in said and "確定しだい" in said
    [booking] = active_bookings(services)
    assert booking.status == "pending"
    clock.advance(minutes=5)
    assert services.bookings.reconcile() == 1
    [booking] = active_bookings(services)
    assert booking.status == "confirmed" and len(gcal.events("tanaka@example.jp")) == 1
    assert "ご予約が確定しました" in texts(line.delivered(user.user))


def _users_choosing(services, n: int) -> list[str]:
    """n users who have finished the intake and tapped 11月26日 10:00: each is looking at 「この日時で予約しますか」."""
    users = [f"U{k:032d}" for k in range(n)]
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        for u in users:
            s.add(LineUser(id=u, source="line", following=True, consent_version="2026-11", consent_at=now,
                           created_at=now, updated_at=now))
        s.flush()  # users first: no ORM relationship orders these inserts
        for u in users:
            s.add(ConversationRow(user_id=u, state="choose_slot", data={
                "method": "online", "region": "kagoshima", "chosen": {"c": "tanaka", "t": "202611261000"}},
                suspended=None, updated_at=now))
        s.commit()
    return users


def test_fifty_concurrent_requests_for_one_slot_give_one_booking_and_forty_nine_fresh_offers(configured, clock, line, gcal):
    app = create_app(replace(configured, start_workers=True, inbox_threads=8), clock=clock)
    services = app.extensions["dxdesk"]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        users = _users_choosing(services, 50)
        drivers = [LineUserDriver(None, app, line, u) for u in users]
        bodies = [json.dumps({"destination": "U", "events": [d.event(type="postback", postback={
            "data": "action=confirm_slot"})]}).encode() for d in drivers]
        start = threading.Barrier(len(bodies))

        def tap(body):
            start.wait(timeout=30)
            request = urllib.request.Request(f"http://127.0.0.1:{server.server_port}/callback", data=body,
                                             headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)})
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200

        threads = [threading.Thread(target=tap, args=(b,)) for b in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        for _ in range(600):  # bounded wait for the workers
            if all(line.delivered(u) for u in users):
                break
            threading.Event().wait(0.05)
        answers = [texts(line.delivered(u)) for u in users]
        assert sum("ご予約が確定しました" in a for a in answers) == 1
        assert sum("埋まってしまいました" in a and "ご相談の日時を選んでください" in a for a in answers) == 49
        assert len(active_bookings(services)) == 1
        assert len(gcal.events("tanaka@example.jp")) == 1
    finally:
        server.shutdown()
        services.stop()
        services.db.dispose()


def test_concurrent_reservations_through_the_service_never_double_book(app, database_url):
    services = app.extensions["dxdesk"]
    users = _users_choosing(services, 20)
    start = datetime(2026, 11, 26, 10, 0, tzinfo=TOKYO)
    results: list[bool] = []
    barrier = threading.Barrier(len(users))

    def reserve(u):
        barrier.wait(timeout=30)
        with services.db.unit_of_work() as s:
            got = services.bookings.reserve(s, user_id=u, coordinator="tanaka", start=start, method="online",
                                            region=None, consultation_id=None, now=services.clock.now())
            s.commit()
        results.append(got is not None)

    threads = [threading.Thread(target=reserve, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results.count(True) == 1 and len(results) == 20
    assert len(active_bookings(services)) == 1


CRASHING_BOOKER = """
import os, signal, sys
from datetime import datetime
from app import Settings, build_services
from dataclasses import replace
settings = Settings.from_env()
services = build_services(replace(settings, start_workers=False))
start = datetime.fromisoformat(sys.argv[1])
with services.db.unit_of_work() as s:
    reserved = services.bookings.reserve(s, user_id=None, coordinator="tanaka", start=start, method="online",
                                         region=None, consultation_id=None, now=services.clock.now())
    s.commit()
if sys.argv[2] == "after_insert":
    b = reserved.booking
    services.bookings.calendar.insert_event("tanaka@example.jp", b.calendar_event_id, b.start, b.end,
                                            summary="x", description="x", meet=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_kill_9_between_pending_and_confirm_is_resolved_by_one_reconciler_pass(configured, gcal, clock):
    env = {**os.environ, "DXDESK_DATABASE_URL": configured.database_url, "DXDESK_CONFIG": configured.config_path,
           "GOOGLE_SERVICE_ACCOUNT_FILE": configured.google_service_account_file,
           "GOOGLE_CALENDAR_API_BASE_URL": configured.google_calendar_api_base_url, "PYTHONPATH": str(ROOT)}
    today = datetime.now(TOKYO).date()
    days = [today + timedelta(days=n) for n in range(3, 12)]
    weekdays = [d for d in days if d.weekday() < 5 and not __import__("jpholiday").is_holiday(d)][:2]
    for day, when in zip(weekdays, ("before_insert", "after_insert")):
        start = datetime.combine(day, datetime.min.time(), TOKYO).replace(hour=10)
        proc = subprocess.run([sys.executable, "-c", CRASHING_BOOKER, start.isoformat(), when], env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == -9, proc.stderr

    app = create_app(configured, clock=clock)
    services = app.extensions["dxdesk"]
    clock.set(datetime.now(UTC) + timedelta(minutes=10))
    assert [b.status for b in active_bookings(services)] == ["pending", "pending"]
    assert len(gcal.events("tanaka@example.jp")) == 1
    services.bookings.reconcile()
    bookings = active_bookings(services)
    events = gcal.events("tanaka@example.jp")
    assert [b.status for b in bookings] == ["confirmed", "confirmed"]
    assert sorted(b.calendar_event_id for b in bookings) == sorted(e["id"] for e in events)
    services.db.dispose()


def test_a_user_cannot_cancel_someone_elses_booking(app, user, line, clock, caplog):
    services = app.extensions["dxdesk"]
    carousel = intake(user)
    user.book(next(a for a in slot_actions(carousel) if "11月26日(木) 10:00" in a["displayText"])["data"])
    [booking] = active_bookings(services)
    stranger = LineUserDriver(user.client, app, line, "U9" + "0" * 31)
    stranger.send(type="follow")
    said = texts(stranger.tap(f"action=cancel_booking&b={booking.id}"))
    assert "見つかりませんでした" in said
    assert "not among the user's upcoming bookings" in caplog.text
    assert [b.status for b in active_bookings(services)] == ["confirmed"]


def test_the_postgres_and_sqlite_unique_index_refuses_a_second_active_booking_of_one_slot(app):
    services = app.extensions["dxdesk"]
    now = services.clock.now()
    start = datetime(2026, 11, 26, 10, 0, tzinfo=TOKYO)
    from sqlalchemy.exc import IntegrityError
    with services.db.unit_of_work() as s:
        for n in range(2):
            s.add(Booking(coordinator_id="tanaka", start=start, end=start + timedelta(hours=1), method="online",
                          status="pending", created_at=now, updated_at=now))
        with pytest.raises(IntegrityError):
            s.flush()
    with services.db.unit_of_work() as s:
        s.add(Booking(coordinator_id="tanaka", start=start, end=start + timedelta(hours=1), method="online",
                      status="cancelled", created_at=now, updated_at=now))
        s.add(Booking(coordinator_id="tanaka", start=start, end=start + timedelta(hours=1), method="online",
                      status="confirmed", created_at=now, updated_at=now))
        s.commit()
    with services.db.unit_of_work() as s:
        s.execute(update(Booking).values(status="cancelled"))
        s.commit()



def test_the_coordinator_confirms_or_asks_for_someone_else_and_nobody_else_can(app, user, line):
    services = app.extensions["dxdesk"]
    carousel = intake(user)
    user.book(next(a for a in slot_actions(carousel) if "11月26日(木) 10:00" in a["displayText"])["data"])
    [booking] = active_bookings(services)
    coordinator = LineUserDriver(user.client, app, line, COORDINATOR_LINE_ID)
    assert "記録しました" in texts(coordinator.tap(f"action=coord_ack&b={booking.id}"))
    assert "事務局に依頼しました" in texts(coordinator.tap(f"action=coord_swap&b={booking.id}"))
    assert "ご利用いただけません" in texts(user.tap(f"action=coord_swap&b={booking.id}"))
    with services.db.unit_of_work() as s:
        b = s.get(Booking, booking.id)
        assert b.acknowledged_at is not None and b.swap_requested_at is not None


def add_popup_day(services, *, capacity=2, region="osumi", coordinator=None, day=5) -> int:
    from scheduling import popup
    with services.db.unit_of_work() as s:
        day = popup.add_day(s, region=region, venue="鹿屋商工会議所", address="鹿屋市", capacity=capacity,
                            start_at=datetime(2026, 12, day, 10, 0, tzinfo=TOKYO),
                            end_at=datetime(2026, 12, day, 12, 0, tzinfo=TOKYO),
                            slot_minutes=60, coordinator_id=coordinator, now=services.clock.now(), config=services.config)
        s.commit()
        return day.id


def test_a_popup_day_is_booked_over_line_with_channel_popup_until_its_seats_are_full(app, line, gcal):
    services = app.extensions["dxdesk"]
    day = add_popup_day(services, capacity=2, coordinator="tanaka")
    users = [LineUserDriver(app.test_client(), app, line, f"U7{n:031d}") for n in range(3)]
    answers = []
    for u in users:  # all three choose the 10:00 seat while two are still free ...
        listed = u.tap("action=menu&item=popup")
        assert "鹿屋商工会議所" in texts(listed)
        assert "お申し込みを承ります" in texts(u.tap(f"action=popup_slot&d={day}&t=202612051000"))
    for u in users:  # ... then finish their intakes one after another
        u.tap("action=consent&v=2026-11")
        u.say("POSレジを入れたい")
        u.tap("action=yes")
        for answer in ("鹿屋商店", "卸売業・小売業", "3人", "鹿屋市", "大隅 太郎", "0994-31-1111", "スキップ"):
            u.say(answer)
        answers.append(texts(u.tap("action=submit")))
    assert ["ご予約が確定しました" in a for a in answers] == [True, True, False]
    assert "埋まってしまいました" in answers[2]
    bookings = active_bookings(services)
    assert [(b.channel, b.popup_day_id, b.method) for b in bookings] == [("popup", day, "visit")] * 2
    assert len(gcal.events("tanaka@example.jp")) == 2  # the pop-up day's coordinator has them in the calendar
    [c] = {(c["channel"], c["origin"]) for c in __import__("storage.queries", fromlist=["x"]).consultations_as_json(services.db)}
    assert c == ("popup", f"popup:{day}")


def test_a_coordinator_at_a_popup_day_is_not_offered_for_other_consultations_then(app, user):
    services = app.extensions["dxdesk"]
    add_popup_day(services, coordinator="tanaka", day=4)  # a Friday, when tanaka works 09:00-12:00 and 13:00-17:00
    with services.db.unit_of_work() as s:
        free = services.bookings.free(s, start=datetime(2026, 12, 4, 0, 0, tzinfo=TOKYO),
                                      end=datetime(2026, 12, 5, 0, 0, tzinfo=TOKYO), now=None, coordinator="tanaka")
    assert [f"{x.start:%H:%M}" for x in free] == ["09:00", "13:00", "14:00", "15:00", "16:00"]


def test_a_date_change_during_a_calendar_outage_is_moved_by_the_reconciler(app, user, gcal, clock, monkeypatch):
    import googleapiclient.http
    monkeypatch.setattr(googleapiclient.http.time, "sleep", lambda seconds: None)
    services = app.extensions["dxdesk"]
    carousel = intake(user)
    user.book(next(a for a in slot_actions(carousel) if "11月26日(木) 10:00" in a["displayText"])["data"])
    [old] = active_bookings(services)
    said = user.tap(f"action=reschedule&b={old.id}")
    again = next(m for m in said if m.get("type") == "flex")
    gcal.script("POST", "/calendar/v3/calendars/", [503] * 4)
    assert "時間がかかっています" in texts(user.book(next(
        a for a in slot_actions(again) if "11月27日(金) 15:00" in a["displayText"])["data"]))
    assert gcal.events("tanaka@example.jp")[0]["start"]["dateTime"].startswith("2026-11-26T10:00")  # not moved yet
    clock.advance(minutes=5)
    assert services.bookings.reconcile() == 1
    [event] = gcal.events("tanaka@example.jp")
    assert event["start"]["dateTime"].startswith("2026-11-27T15:00:00+09:00")
    assert [b.status for b in active_bookings(services)] == ["confirmed"]


def test_round_robin_goes_to_the_less_busy_coordinator_unless_the_user_asks_for_the_one_they_met(configured, clock, tmp_path):
    config = tmp_path / "two.toml"
    config.write_text(CONFIG + textwrap.dedent("""
        [[coordinators]]
        id = "suzuki"
        name = "鈴木 二郎"
        calendar_id = "suzuki@example.jp"
        methods = ["online"]
        [coordinators.hours]
        thu = ["09:00-12:00"]
    """))
    app = create_app(replace(configured, config_path=str(config)), clock=clock)
    services = app.extensions["dxdesk"]
    now = clock.now()
    with services.db.unit_of_work() as s:
        s.add_all([LineUser(id=u, source="line", following=True, created_at=now, updated_at=now) for u in ("Uasker", "Uother")])
        s.flush()
        # The asker met tanaka last week; this week tanaka already has two bookings, suzuki none.
        for user, start in (("Uasker", datetime(2026, 11, 19, 9, 0, tzinfo=TOKYO)),
                            ("Uother", datetime(2026, 11, 25, 13, 0, tzinfo=TOKYO)),
                            ("Uother", datetime(2026, 11, 25, 14, 0, tzinfo=TOKYO))):
            s.add(Booking(user_id=user, coordinator_id="tanaka", start=start, end=start + timedelta(hours=1), method="online",
                          status="confirmed", created_at=now, updated_at=now))
        s.commit()
    thursday_nine = datetime(2026, 11, 26, 9, 0, tzinfo=TOKYO)
    with services.db.unit_of_work() as s:
        offered = services.bookings.offer(s, user_id="Uasker", method="online", region="kagoshima",
                                          after=thursday_nine.date(), days=1, now=now)
        asked = services.bookings.offer(s, user_id="Uasker", method="online", region="kagoshima",
                                        after=thursday_nine.date(), days=1, now=now, preferred="tanaka")
        met = services.bookings.previous(s, user_id="Uasker", method="online", region="kagoshima")
    assert next(o.coordinator for o in offered if o.start == thursday_nine) == "suzuki"
    assert {o.coordinator for o in asked} == {"tanaka"} and thursday_nine in {o.start for o in asked}
    assert met == ("tanaka", "田中 一郎")
    services.stop()
    services.db.dispose()
