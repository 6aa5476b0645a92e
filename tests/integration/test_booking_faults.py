"""Bookings while Google Calendar misbehaves: each ends confirmed or cleanly cancelled, never orphaned, the user told once.

The real BookingService writes through the real GoogleCalendarGateway (googleapiclient, the service-account flow) to
the local FakeGoogleCalendar, scripted to answer 403 rateLimitExceeded, 503 or 409, or to drop the connection. After
every scenario the bookings table and the fake's calendar are compared: an active booking has exactly its event, and
every event belongs to an active booking.
"""
from __future__ import annotations

import textwrap
from dataclasses import replace
from datetime import datetime, timedelta

import googleapiclient.http
import pytest
from sqlalchemy import select

from app import create_app
from bot.jatime import TOKYO
from scheduling import outbox
from scheduling.bookings import RECONCILE_AFTER
from storage.models import Booking, LineUser
from tests.fakes.google_calendar import DROP, DROP_AFTER, FakeGoogleCalendar
from tests.fakes.line_api import FakeLineApi
from tests.helpers import SECRET, assert_bookings_match_calendar, texts

CAL = "tanaka@example.jp"
EVENTS = f"/calendar/v3/calendars/{CAL}/events"
# Enough faults for a confirm to give up: its own try and the client's three retries, each of which httplib2 repeats
# once more on a dropped connection.
ATTEMPTS = 8
PASSES = ATTEMPTS + 2  # reconciler passes a scenario may take (a 409 is not retried by the client: one per pass)
SLOT = datetime(2026, 11, 26, 10, 0, tzinfo=TOKYO)  # Thursday, two days after the clock's start
LATER = datetime(2026, 11, 27, 15, 0, tzinfo=TOKYO)
USER = "U" + "b" * 32
CONFIG = textwrap.dedent(f"""
    [[coordinators]]
    id = "tanaka"
    name = "田中 一郎"
    calendar_id = "{CAL}"
    methods = ["visit", "online", "phone"]
    regions = []
    slot_minutes = 60
    [coordinators.hours]
    mon = ["09:00-12:00", "13:00-17:00"]
    tue = ["09:00-12:00", "13:00-17:00"]
    wed = ["09:00-12:00", "13:00-17:00"]
    thu = ["09:00-12:00", "13:00-17:00"]
    fri = ["09:00-12:00", "13:00-17:00"]
""")
FAULTS = {"rate-limited": (403, "rateLimitExceeded"), "unavailable": 503, "conflict": 409,
          "dropped": DROP, "answer-lost": DROP_AFTER}


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    """The client's back-off between retries takes no time (it reads time.sleep when it builds a request)."""
    monkeypatch.setattr(googleapiclient.http.time, "sleep", lambda seconds: None)


@pytest.fixture
def line():
    with FakeLineApi() as fake:
        yield fake


@pytest.fixture
def gcal():
    with FakeGoogleCalendar() as fake:
        yield fake


@pytest.fixture
def services(settings, tmp_path, clock, line, gcal):
    config = tmp_path / "dxdesk.toml"
    config.write_text(CONFIG)
    key = gcal.write_service_account_key(tmp_path / "service-account.json")
    app = create_app(replace(settings, config_path=str(config), line_channel_secret=SECRET,
                             line_channel_access_token="token", line_api_base_url=line.base_url,
                             google_service_account_file=str(key), google_calendar_api_base_url=gcal.api_url),
                     clock=clock)
    services = app.extensions["dxdesk"]
    with services.db.unit_of_work() as s:
        now = clock.now()
        s.add(LineUser(id=USER, source="line", following=True, created_at=now, updated_at=now))
        s.commit()
    yield services
    services.stop()
    services.db.dispose()


def reserve(services, start=SLOT, replaces=None):
    with services.db.unit_of_work() as s:
        reserved = services.bookings.reserve(s, user_id=USER, coordinator="tanaka", start=start, method="online",
                                             region=None, consultation_id=None, now=services.clock.now(),
                                             replaces=replaces)
        s.commit()
    assert reserved is not None
    return reserved


def book(services):
    reserved = reserve(services)
    services.bookings.confirm(reserved.booking.id)
    return reserved.booking.id


def cancel(services, booking_id):
    with services.db.unit_of_work() as s:
        assert services.bookings.cancel(s, booking_id, user_id=USER, reason="都合", by="user",
                                        now=services.clock.now()) is not None
        s.commit()
    services.bookings.finish_cancel(booking_id)


def reconcile(services, until) -> None:
    """Reconciler passes, each past RECONCILE_AFTER, until `until()` holds (or the passes run out)."""
    for _ in range(PASSES):
        if until():
            return
        services.clock.advance(seconds=RECONCILE_AFTER.total_seconds() + 1)
        services.bookings.reconcile()


def bookings(services) -> dict[int, Booking]:
    with services.db.unit_of_work() as s:
        return {b.id: b for b in s.scalars(select(Booking))}


def statuses(services) -> list[str]:
    return [b.status for b in bookings(services).values()]


def assert_one_to_one(services, gcal) -> None:
    assert_bookings_match_calendar(services.db, gcal, CAL)


def told(line, words: str) -> int:
    return sum(words in texts(batch) for batch in line.delivered(USER))


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_a_booking_whose_calendar_insert_fails_is_confirmed_by_the_reconciler_and_told_once(services, gcal, line, fault):
    gcal.script("POST", EVENTS, [fault] * ATTEMPTS)

    booking_id = book(services)
    assert statuses(services) == ["pending"]
    reconcile(services, until=lambda: statuses(services) == ["confirmed"])

    assert bookings(services)[booking_id].status == "confirmed"
    assert_one_to_one(services, gcal)
    services.clock.advance(minutes=10)
    services.bookings.reconcile()  # a pass with nothing to do changes nothing and says nothing
    assert told(line, "ご予約が確定しました") == 1


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_a_booking_cancelled_while_its_calendar_insert_fails_ends_cancelled_without_an_event(services, gcal, line,
                                                                                              fault):
    gcal.script("POST", EVENTS, [fault] * ATTEMPTS)
    booking_id = book(services)
    assert statuses(services) == ["pending"]

    cancel(services, booking_id)
    reconcile(services, until=lambda: statuses(services) == ["cancelled"])

    assert statuses(services) == ["cancelled"]
    assert_one_to_one(services, gcal)
    assert told(line, "ご予約が確定しました") == 0


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_a_cancellation_whose_calendar_delete_fails_is_finished_by_the_reconciler(services, gcal, fault):
    booking_id = book(services)
    gcal.script("DELETE", EVENTS, [fault] * ATTEMPTS)

    cancel(services, booking_id)
    assert statuses(services) == ["cancelling"]
    reconcile(services, until=lambda: statuses(services) == ["cancelled"])

    assert statuses(services) == ["cancelled"]
    assert_one_to_one(services, gcal)


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_a_change_of_date_whose_calendar_move_fails_is_moved_by_the_reconciler_and_told_once(services, gcal, line,
                                                                                              fault):
    booking_id = book(services)
    services.clock.advance(minutes=1)
    gcal.script("PATCH", EVENTS, [fault] * ATTEMPTS)

    moved = reserve(services, start=LATER, replaces=booking_id)
    services.bookings.confirm(booking_id, changed=True, previous=moved.previous)
    assert statuses(services) == ["pending"]
    reconcile(services, until=lambda: statuses(services) == ["confirmed"])

    assert statuses(services) == ["confirmed"] and bookings(services)[booking_id].start == LATER
    assert_one_to_one(services, gcal)
    assert (told(line, "ご予約が確定しました"), told(line, "ご予約を変更しました")) == (1, 1)


def test_a_booking_whose_event_was_deleted_by_hand_gets_it_back_when_its_date_changes(services, gcal, line):
    """Google keeps a deleted event's id: the insert gets 409, and the event, status "cancelled", is confirmed again."""
    booking_id = book(services)
    services.bookings.calendar.delete_event(CAL, bookings(services)[booking_id].calendar_event_id)  # in the calendar
    services.clock.advance(minutes=1)

    moved = reserve(services, start=LATER, replaces=booking_id)
    services.bookings.confirm(booking_id, changed=True, previous=moved.previous)

    assert statuses(services) == ["confirmed"] and bookings(services)[booking_id].start == LATER
    assert_one_to_one(services, gcal)
    assert len(gcal.requests("POST", EVENTS)) == 2  # the first insert and the one that met 409: no retrying for ever
    assert (told(line, "ご予約が確定しました"), told(line, "ご予約を変更しました")) == (1, 1)


class CancelledDuringInsert:
    """The calendar gateway, with the user's cancellation landing while the insert is on its way to Google."""

    def __init__(self, gateway, cancel):
        self.gateway, self.cancel = gateway, cancel

    def __getattr__(self, name):
        return getattr(self.gateway, name)

    def insert_event(self, *args, **kwargs):
        self.cancel()
        return self.gateway.insert_event(*args, **kwargs)


def test_a_booking_cancelled_while_its_event_is_being_inserted_leaves_no_event_behind(services, gcal, line):
    reserved = reserve(services)
    booking_id = reserved.booking.id
    gateway = services.bookings.calendar
    services.bookings.calendar = CancelledDuringInsert(gateway, lambda: cancel(services, booking_id))

    services.bookings.confirm(booking_id)
    services.bookings.calendar = gateway
    reconcile(services, until=lambda: statuses(services) == ["cancelled"] and not gcal.events(CAL))

    assert statuses(services) == ["cancelled"]
    assert_one_to_one(services, gcal)
    assert told(line, "ご予約が確定しました") == 0


def test_a_booking_changed_away_and_back_to_its_first_time_is_reminded_again(services, line):
    """Found by the property test's reminder invariant: the first time's reminders, cancelled by the change, stayed so."""
    booking_id = book(services)
    for start in (LATER, SLOT):
        services.clock.advance(minutes=1)
        moved = reserve(services, start=start, replaces=booking_id)
        services.bookings.confirm(booking_id, changed=True, previous=moved.previous)

    for moment in (datetime(2026, 11, 25, 18, 1, tzinfo=TOKYO), SLOT - timedelta(minutes=30)):
        services.clock.set(moment)
        outbox.send_due(services.db, services.delivery, services.clock)
    assert [told(line, words) for words in ("【リマインダー】明日", "【リマインダー】まもなく")] == [1, 1]
