"""GoogleCalendarGateway against FakeGoogleCalendar, through the real googleapiclient and the real service-account flow."""

import logging
import socket
import threading
from datetime import UTC, datetime, timedelta

import googleapiclient.http
import pytest

from scheduling.calendar import CalendarError
from scheduling.google_calendar import MEET_POLL_DELAYS, GoogleCalendarGateway
from tests.fakes.google_calendar import MEET_URL, FakeGoogleCalendar

CAL = "tanaka@example.jp"
OTHER_CAL = "yamashita@example.jp"
EVENTS = f"/calendar/v3/calendars/{CAL}/events"
START = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
END = START + timedelta(hours=1)
RETRIES = 2
DESCRIPTION = "会社名: 株式会社さつま工房\nご相談内容: 受発注をFAXから切り替えたい"
SUMMARY = "DX相談（オンライン）株式会社さつま工房"


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    """The client's backoff and the Meet wait take no time (the client reads time.sleep when it builds a request)."""
    monkeypatch.setattr(googleapiclient.http.time, "sleep", lambda seconds: None)


@pytest.fixture
def fake():
    with FakeGoogleCalendar() as fake:
        yield fake


@pytest.fixture
def key_file(fake, tmp_path):
    return str(fake.write_service_account_key(tmp_path / "service-account.json"))


@pytest.fixture
def gateway(fake, key_file):
    return GoogleCalendarGateway(key_file, impersonate=CAL, api_url=fake.api_url, num_retries=RETRIES)


def insert(gateway, event_id="booking0001", *, meet=False, calendar_id=CAL, start=START):
    return gateway.insert_event(calendar_id, event_id, start, start + timedelta(hours=1),
                                summary=SUMMARY, description=DESCRIPTION, meet=meet)


def test_an_online_booking_becomes_one_event_in_tokyo_time_with_a_meet_link(fake, gateway):
    event = insert(gateway, meet=True)

    assert (event.id, event.start, event.end, event.meet_url) == ("booking0001", START, END, MEET_URL)
    [stored] = fake.events(CAL)
    assert stored["start"] == {"dateTime": "2026-11-24T10:00:00+09:00", "timeZone": "Asia/Tokyo"}
    assert stored["end"] == {"dateTime": "2026-11-24T11:00:00+09:00", "timeZone": "Asia/Tokyo"}
    assert (stored["summary"], stored["description"]) == (SUMMARY, DESCRIPTION)
    [sent] = fake.requests("POST", EVENTS)
    assert sent.query["conferenceDataVersion"] == "1"
    assert sent.body["conferenceData"]["createRequest"] == {
        "requestId": "booking0001", "conferenceSolutionKey": {"type": "hangoutsMeet"}}
    assert stored["hangoutLink"] == MEET_URL


def test_a_booking_not_online_asks_for_no_meet_conference(fake, gateway):
    event = insert(gateway, meet=False)

    assert event.meet_url is None
    [sent] = fake.requests("POST", EVENTS)
    assert "conferenceData" not in sent.body
    assert fake.requests("GET") == []


def test_a_meet_link_still_pending_after_a_short_wait_is_read_later_with_get_event(fake, gateway):
    fake.meet_pending_reads = len(MEET_POLL_DELAYS)

    event = insert(gateway, meet=True)

    assert event.meet_url is None
    assert len(fake.requests("GET", EVENTS)) == len(MEET_POLL_DELAYS)
    assert gateway.get_event(CAL, event.id).meet_url == MEET_URL


def test_a_retried_insert_with_the_same_id_returns_the_existing_event_without_a_duplicate(fake, gateway):
    first = insert(gateway, meet=True)

    again = insert(gateway, meet=True)

    assert again == first
    assert len(fake.events(CAL)) == 1
    assert len(fake.requests("POST", EVENTS)) == 2


@pytest.mark.parametrize("meet", [True, False], ids=["online", "not online"])
def test_an_insert_whose_id_belongs_to_a_deleted_event_brings_that_event_back_at_the_new_time(fake, gateway, meet):
    insert(gateway, meet=meet)
    gateway.delete_event(CAL, "booking0001")
    later = START + timedelta(days=1)

    event = insert(gateway, meet=meet, start=later)  # Google answers 409: the id is kept by the deleted event

    assert (event.id, event.start, event.end) == ("booking0001", later, later + timedelta(hours=1))
    assert event.meet_url == (MEET_URL if meet else None)
    [stored] = fake.events(CAL)
    assert stored["status"] == "confirmed" and stored["start"]["dateTime"] == "2026-11-25T10:00:00+09:00"
    assert (stored["summary"], stored["description"]) == (SUMMARY, DESCRIPTION)
    [patch] = fake.requests("PATCH", EVENTS)
    assert patch.body["status"] == "confirmed" and "conferenceData" not in patch.body  # its Meet is kept
    assert gateway.get_event(CAL, "booking0001") == event


def test_an_insert_whose_deleted_event_cannot_be_restored_is_a_refusal_for_good(fake, gateway):
    insert(gateway)
    gateway.delete_event(CAL, "booking0001")
    fake.script("PATCH", EVENTS, [(403, "forbidden")])

    with pytest.raises(CalendarError) as raised:
        insert(gateway)

    assert (raised.value.retryable, raised.value.refusal) == (False, "403 forbidden")
    assert fake.events(CAL) == []


def test_busy_returns_each_calendars_intervals_made_elsewhere_and_by_events(fake, gateway):
    elsewhere = (START + timedelta(hours=3), START + timedelta(hours=4))
    fake.add_busy(CAL, *elsewhere)
    fake.add_busy(OTHER_CAL, START, START + timedelta(minutes=30))
    fake.add_busy(CAL, START + timedelta(days=3), START + timedelta(days=3, hours=1))  # outside the window
    insert(gateway)

    busy = gateway.busy([CAL, OTHER_CAL, "free@example.jp"], START - timedelta(hours=1), START + timedelta(days=1))

    assert busy == {CAL: [(START, END), elsewhere], OTHER_CAL: [(START, START + timedelta(minutes=30))],
                    "free@example.jp": []}


def test_busy_of_a_calendar_not_shared_with_the_service_account_is_an_error_not_free_time(tmp_path):
    with FakeGoogleCalendar(calendars=[CAL]) as fake:
        key_file = fake.write_service_account_key(tmp_path / "service-account.json")
        gateway = GoogleCalendarGateway(str(key_file), api_url=fake.api_url, num_retries=RETRIES)

        with pytest.raises(CalendarError) as raised:
            gateway.busy([CAL, OTHER_CAL], START, END)

    assert raised.value.retryable is False
    assert len(fake.requests("POST", "/calendar/v3/freeBusy")) == 1


@pytest.mark.parametrize("failures", [
    [500, 500],
    [503],
    [429],
    [(403, "rateLimitExceeded")],
    [(403, "userRateLimitExceeded")],
])
def test_an_insert_that_fails_for_a_moment_is_retried_by_the_client_and_succeeds(fake, gateway, failures):
    fake.script("POST", EVENTS, failures)

    event = insert(gateway)

    assert event.id == "booking0001"
    assert len(fake.requests("POST", EVENTS)) == len(failures) + 1
    assert len(fake.events(CAL)) == 1


@pytest.mark.parametrize(("refusal", "for_good"), [(400, "400 badRequest"), ((403, "quotaExceeded"), None),
                                                   ((403, "forbidden"), "403 forbidden"), (404, "404 notFound")])
def test_an_insert_refused_with_a_4xx_is_not_retried_and_not_retryable(fake, gateway, refusal, for_good):
    """Not retryable; a refusal for good (not a usage limit) is named, for the booking to wait for staff."""
    fake.script("POST", EVENTS, [refusal])

    with pytest.raises(CalendarError) as raised:
        insert(gateway)

    assert (raised.value.retryable, raised.value.refusal) == (False, for_good)
    assert len(fake.requests("POST", EVENTS)) == 1
    assert fake.events(CAL) == []


@pytest.mark.parametrize("failure", [503, 500, 429, (403, "rateLimitExceeded")])
def test_an_insert_that_keeps_failing_for_google_reasons_is_left_to_retry_later(fake, gateway, failure):
    fake.script("POST", EVENTS, [failure] * (RETRIES + 1))

    with pytest.raises(CalendarError) as raised:
        insert(gateway)

    assert (raised.value.retryable, raised.value.refusal) == (True, None)
    assert len(fake.requests("POST", EVENTS)) == RETRIES + 1


def test_a_calendar_api_that_cannot_be_reached_is_retryable(fake, key_file):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    gateway = GoogleCalendarGateway(key_file, api_url=f"http://127.0.0.1:{closed_port}/calendar/v3/",
                                    num_retries=RETRIES)

    with pytest.raises(CalendarError) as raised:
        insert(gateway)

    assert raised.value.retryable is True


def test_a_token_refused_for_the_impersonated_user_is_not_retryable(fake, gateway):
    fake.script("POST", "/token", [(401, "unauthorized_client")])

    with pytest.raises(CalendarError) as raised:
        insert(gateway)

    assert raised.value.retryable is False
    assert fake.requests("POST", EVENTS) == []


@pytest.mark.parametrize(("impersonate", "expected_sub"), [(CAL, CAL), (None, None)])
def test_the_token_is_asked_for_the_impersonated_user_when_one_is_given(fake, key_file, impersonate, expected_sub):
    gateway = GoogleCalendarGateway(key_file, impersonate=impersonate, api_url=fake.api_url)

    insert(gateway)

    [claims] = fake.token_claims()
    assert claims.get("sub") == expected_sub
    assert claims["scope"] == "https://www.googleapis.com/auth/calendar"
    assert fake.requests("POST", EVENTS)[0].headers["authorization"].startswith("Bearer ya29.fake-")


def test_moving_an_event_gives_it_the_new_time(fake, gateway):
    insert(gateway)
    later = START + timedelta(days=1, hours=2)

    moved = gateway.move_event(CAL, "booking0001", later, later + timedelta(hours=1))

    assert (moved.start, moved.end) == (later, later + timedelta(hours=1))
    [stored] = fake.events(CAL)
    assert stored["start"]["dateTime"] == "2026-11-25T12:00:00+09:00"
    assert gateway.get_event(CAL, "booking0001").start == later


def test_moving_an_event_that_does_not_exist_is_not_retryable(gateway):
    with pytest.raises(CalendarError) as raised:
        gateway.move_event(CAL, "booking0404", START, END)

    assert raised.value.retryable is False


def test_a_deleted_event_is_gone(fake, gateway):
    insert(gateway)

    gateway.delete_event(CAL, "booking0001")

    assert fake.events(CAL) == []
    assert gateway.get_event(CAL, "booking0001") is None


@pytest.mark.parametrize("deleted_before", [True, False], ids=["deleted before", "never made"])
def test_deleting_an_event_already_gone_is_fine(fake, gateway, deleted_before):
    if deleted_before:
        insert(gateway)
        gateway.delete_event(CAL, "booking0001")

    gateway.delete_event(CAL, "booking0001")

    assert fake.events(CAL) == []
    assert len(fake.requests("DELETE", EVENTS)) == (2 if deleted_before else 1)


def test_getting_an_event_that_never_existed_gives_none(gateway):
    assert gateway.get_event(CAL, "booking0404") is None


def test_one_gateway_serves_several_threads_at_once(fake, gateway):
    errors: list[Exception] = []

    def book(n: int) -> None:
        try:
            insert(gateway, f"booking{n:04d}", start=START + timedelta(hours=n))
        except Exception as exc:  # noqa: BLE001 - collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=book, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sorted(e["id"] for e in fake.events(CAL)) == [f"booking{n:04d}" for n in range(8)]


def test_logs_carry_ids_and_statuses_but_not_the_events_text(fake, gateway, caplog):
    caplog.set_level(logging.DEBUG)
    fake.script("POST", EVENTS, [500])
    insert(gateway, meet=True)
    fake.script("PATCH", EVENTS, [400])
    with pytest.raises(CalendarError):
        gateway.move_event(CAL, "booking0001", START, END)

    assert fake.events(CAL)[0]["description"] == DESCRIPTION
    assert "booking0001" in caplog.text and "400" in caplog.text
    for secret in ("さつま工房", "FAX", "DX相談"):
        assert secret not in caplog.text
