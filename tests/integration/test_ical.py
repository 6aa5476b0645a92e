"""The no-Google calendar: coordinators' iCalendar feeds over real database rows, and LocalCalendarGateway."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from handlers.ical import bp, feed_token, feed_url
from scheduling.calendar import CalendarEvent
from scheduling.local_calendar import LocalCalendarGateway
from storage.models import Booking, Consultation, LineUser

SECRET = "test"  # the secret key of the settings fixture
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # the clock fixture's time
TOMORROW = NOW + timedelta(days=1)


@pytest.fixture
def app(app):
    if "ical" not in app.blueprints:
        app.register_blueprint(bp)
    return app


def add_booking(services, *, event_id="booking0001", coordinator="tanaka", start=TOMORROW, status="confirmed",
                method="online", company="株式会社さつま工房", question="受発注をFAXから切り替えたい") -> None:
    with services.db.unit_of_work() as s:
        if s.get(LineUser, "U1") is None:
            s.add(LineUser(id="U1", created_at=NOW, updated_at=NOW))
            s.flush()  # no relationship tells the session to write the user before the consultation
        consultation = Consultation(received_at=NOW, channel="line", user_id="U1", company=company,
                                    category="efficiency", method=method, question=question,
                                    contact_name="鹿児島 花子", phone="099-123-4567", email="hanako@example.jp")
        s.add(consultation)
        s.flush()
        s.add(Booking(consultation_id=consultation.id, user_id="U1", coordinator_id=coordinator, start=start,
                      end=start + timedelta(hours=1), method=method, status=status, calendar_event_id=event_id,
                      created_at=NOW, updated_at=NOW))
        s.commit()


def get_feed(client, coordinator="tanaka"):
    return client.get(feed_url(SECRET, coordinator))


def parse(body: bytes) -> tuple[dict, list[dict]]:
    """The calendar's properties and its events' properties, unfolded and unescaped."""
    unfolded = body.decode().replace("\r\n ", "").split("\r\n")
    assert unfolded[-1] == ""
    calendar, events, current = {}, [], None
    for line in unfolded[:-1]:
        name, _, value = line.partition(":")
        value = re.sub(r"\\([\\;,nN])", lambda m: "\n" if m[1] in "nN" else m[1], value)
        if line == "BEGIN:VEVENT":
            current = {}
        elif line == "END:VEVENT":
            events.append(current)
            current = None
        else:
            (calendar if current is None else current)[name] = value
    return calendar, events


def test_the_feed_lists_a_coordinators_bookings_in_utc_with_what_they_need_to_prepare(client, services):
    add_booking(services, event_id="booking0001", method="online")
    add_booking(services, event_id="booking0002", method="visit", status="pending", start=TOMORROW + timedelta(hours=2))

    response = get_feed(client)

    assert response.status_code == 200
    calendar, events = parse(response.data)
    assert (calendar["BEGIN"], calendar["VERSION"], calendar["END"]) == ("VCALENDAR", "2.0", "VCALENDAR")
    assert [(e["UID"], e["DTSTART"], e["DTEND"], e["SUMMARY"], e["STATUS"]) for e in events] == [
        ("booking0001@dxdesk", "20261125T010000Z", "20261125T020000Z", "DX相談（オンライン）", "CONFIRMED"),
        ("booking0002@dxdesk", "20261125T030000Z", "20261125T040000Z", "DX相談（対面）", "TENTATIVE"),
    ]
    description = events[0]["DESCRIPTION"]
    for expected in ("株式会社さつま工房", "業務効率化・ペーパーレス", "受発注をFAXから切り替えたい",
                     "鹿児島 花子", "099-123-4567", "hanako@example.jp"):
        assert expected in description


@pytest.mark.parametrize(("coordinator", "start", "status", "listed"), [
    ("tanaka", TOMORROW, "cancelled", "CANCELLED"),
    ("tanaka", NOW - timedelta(days=29), "confirmed", "CONFIRMED"),
    ("tanaka", NOW - timedelta(days=31), "confirmed", None),
    ("tanaka", NOW - timedelta(days=31), "cancelled", None),
    ("yamashita", TOMORROW, "confirmed", None),
])
def test_the_feed_holds_the_coordinators_own_bookings_from_30_days_ago_on_cancelled_ones_marked(
        client, services, coordinator, start, status, listed):
    add_booking(services, coordinator=coordinator, start=start, status=status)

    _, events = parse(get_feed(client).data)

    assert [e["STATUS"] for e in events] == ([listed] if listed else [])


@pytest.mark.parametrize("path", [
    f"/calendar/tanaka/{'0' * 32}.ics",
    f"/calendar/yamashita/{feed_token(SECRET, 'tanaka')}.ics",
    f"/calendar/tanaka/{feed_token('another secret', 'tanaka')}.ics",
    feed_url(SECRET, "nobody"),
])
def test_a_wrong_token_or_unknown_coordinator_gets_the_same_404(client, services, path):
    add_booking(services)
    not_found = client.get("/calendar/nobody/nothing.ics")

    response = client.get(path)

    assert response.status_code == 404
    assert response.data == not_found.data
    assert "さつま" not in response.get_data(as_text=True)


@pytest.mark.parametrize("company", [
    "株式会社A,B;C\\D",
    "二行の\n会社名\r\nです",
    "<script>alert(1)</script>",
])
def test_text_comes_back_as_written_with_commas_semicolons_and_newlines_escaped(client, services, company):
    add_booking(services, company=company)

    response = get_feed(client)

    raw = response.data.decode().replace("\r\n ", "")
    description_line = next(line for line in raw.split("\r\n") if line.startswith("DESCRIPTION:"))
    assert re.search(r"(?<!\\)[,;]", description_line.removeprefix("DESCRIPTION:")) is None
    assert "\n" not in description_line
    [event] = parse(response.data)[1]
    assert f"会社名: {company.replace(chr(13) + chr(10), chr(10))}\n" in event["DESCRIPTION"]


def test_the_feed_is_served_as_a_calendar_never_sniffed_as_a_page_nor_cached(client, services):
    add_booking(services, company="<script>alert(1)</script>")

    response = get_feed(client)

    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response.headers["Cache-Control"]


def test_long_lines_are_folded_at_75_octets_without_splitting_a_character(client, services):
    question = "紙の伝票と手入力をやめて、受発注から請求までをクラウドでつなぎたいと考えています。" * 4
    add_booking(services, question=question)

    body = get_feed(client).data

    physical = body.split(b"\r\n")
    assert body.count(b"\n") == body.count(b"\r\n")
    assert max(len(line) for line in physical) <= 75
    assert sum(line.startswith(b" ") for line in physical) >= 4
    for line in physical:
        line.decode()  # each folded piece is whole UTF-8 characters
    assert f"ご相談内容: {question}" in parse(body)[1][0]["DESCRIPTION"]


def test_the_feed_token_is_stable_and_differs_per_coordinator_and_secret():
    token = feed_token(SECRET, "tanaka")

    assert re.fullmatch(r"[0-9a-f]{32}", token)
    assert feed_token(SECRET, "tanaka") == token
    assert feed_token(SECRET, "yamashita") != token
    assert feed_token("another secret", "tanaka") != token
    assert feed_url(SECRET, "tanaka") == f"/calendar/tanaka/{token}.ics"


@pytest.mark.parametrize(("status", "found"), [("pending", True), ("confirmed", True), ("cancelled", False)])
def test_the_local_calendar_finds_an_event_by_its_active_booking(services, status, found):
    add_booking(services, event_id="booking0001", status=status)
    gateway = LocalCalendarGateway(services.db)

    event = gateway.get_event("", "booking0001")

    assert event == (CalendarEvent("booking0001", TOMORROW, TOMORROW + timedelta(hours=1)) if found else None)
    assert gateway.get_event("", "booking0404") is None


def test_the_local_calendar_keeps_nothing_of_its_own(services):
    gateway = LocalCalendarGateway(services.db)
    end = TOMORROW + timedelta(hours=1)

    assert gateway.busy(["tanaka", "yamashita"], NOW, NOW + timedelta(days=30)) == {"tanaka": [], "yamashita": []}
    assert gateway.insert_event("", "booking0001", TOMORROW, end, summary="s", description="d", meet=True) == \
        CalendarEvent("booking0001", TOMORROW, end)
    assert gateway.move_event("", "booking0001", NOW, NOW + timedelta(hours=1)) == \
        CalendarEvent("booking0001", NOW, NOW + timedelta(hours=1))
    gateway.delete_event("", "booking0001")
