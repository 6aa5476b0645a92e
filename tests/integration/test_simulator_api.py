"""The simulator's API over the real server on loopback: who may use it, whose chats they see, and bad input."""
from __future__ import annotations

import http.cookiejar
import json
import re
import threading
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import datetime

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from app import Settings, create_app
from bot.jatime import TOKYO
from scheduling import popup
from storage.models import ACTIVE_BOOKING, Booking, LineUser
from storage.staff import add_user
from tests.fakes.smtp import FakeSmtpServer
from tests.helpers import SECRET, LineUserDriver, book, say, send, tap, texts
from tests.integration.test_booking import (  # noqa: F401 - configured, gcal and line are fixtures used here
    CONFIG, COORDINATOR_LINE_ID, add_popup_day, configured, gcal, intake, line, slot_actions,
)

HELLO = {"type": "message", "message": {"type": "text", "text": "こんにちは"}}

MALFORMED = [
    pytest.param(b"{not json", "application/json", id="not-json"),
    pytest.param(b"user=sim-a&event=follow", "application/x-www-form-urlencoded", id="form"),
    pytest.param([HELLO], None, id="array"),
    pytest.param({"user": "USER"}, None, id="no-event"),
    pytest.param({"user": "USER", "event": "follow"}, None, id="event-string"),
    pytest.param({"user": "USER", "event": {"type": "beacon"}}, None, id="unknown-type"),
    pytest.param({"user": "USER", "event": {"type": "message", "message": "こんにちは"}}, None, id="message-string"),
    pytest.param({"user": "USER", "event": {"type": "message", "message": {"type": "text", "text": ["あ"]}}}, None,
                 id="text-list"),
    pytest.param({"user": "USER", "event": {"type": "message", "message": {"type": "image"}}}, None, id="image"),
    pytest.param({"user": "USER", "event": {"type": "postback", "postback": "action=consult"}}, None,
                 id="postback-string"),
    pytest.param({"user": "USER", "event": {"type": "postback", "postback": {"data": 1}}}, None, id="data-number"),
    pytest.param({"user": "USER", "event": {"type": "postback", "postback": {"data": "a", "params": "x"}}}, None,
                 id="params-string"),
    pytest.param({"user": "USER", "event": {"type": "postback", "postback": {"data": "a", "params": {"evil": "1"}}}},
                 None, id="params-unknown"),
    pytest.param({"user": "USER", "event": {"type": "postback", "postback": {"data": "a"}, "displayText": 3}}, None,
                 id="display-number"),
    pytest.param({"user": 7, "event": HELLO}, None, id="user-number"),
]


def serve(settings: Settings, clock):
    """The whole app with its inbox workers running, served by werkzeug's threaded server on a loopback port."""
    app = create_app(replace(settings, start_workers=True), clock=clock)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join()
    app.extensions["dxdesk"].stop()
    app.extensions["dxdesk"].db.dispose()


@pytest.fixture
def server(settings, clock):
    """Simulator mode: no LINE channel."""
    yield from (base for _, base in serve(settings, clock))


@pytest.fixture
def line_server(line_mode, clock):
    """LINE mode, DXDESK_SIMULATOR unset."""
    yield from (base for _, base in serve(line_mode, clock))


@pytest.fixture
def line_app(line_mode, clock):
    """LINE mode with the simulator enabled, through Flask's test client (the console's sign-in is a form)."""
    app = create_app(replace(line_mode, simulator=True), clock=clock)
    yield app
    app.extensions["dxdesk"].stop()
    app.extensions["dxdesk"].db.dispose()


@pytest.fixture
def line_mode(settings, line):
    return replace(settings, line_channel_secret=SECRET, line_channel_access_token="token",
                   line_api_base_url=line.base_url)


class Browser:
    """One browser: its own cookie jar, so its own session; redirects are left for the test to see."""

    first: str | None = None  # the user the test made first

    class _Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
                                                  self._Stay)

    def request(self, method: str, path: str, body=None, content_type: str | None = None) -> tuple[int, dict, str]:
        """Status, the JSON answer ({} for a page) and the Location header."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type or "application/json"} if data is not None else {}
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method, headers=headers)
        try:
            response = self.opener.open(request, timeout=30)
        except urllib.error.HTTPError as error:
            response = error
        with response:
            raw = response.read()
            is_json = response.headers.get("Content-Type", "").startswith("application/json")
            return response.status, json.loads(raw) if is_json else {}, response.headers.get("Location", "")

    def new_user(self) -> str:
        status, answer, _ = self.request("POST", "/simulator/api/users", {})
        assert status == 201, answer
        return answer["user"]


def call(browser: Browser, body, content_type: str | None = None) -> tuple[int, dict]:
    """POST /simulator/api/send, with "USER" in the body standing for the browser's first user."""
    if not isinstance(body, bytes):
        body = json.loads(json.dumps(body).replace('"USER"', json.dumps(browser.first)))
    status, answer, _ = browser.request("POST", "/simulator/api/send", body, content_type)
    return status, answer


@pytest.fixture
def browser(server):
    b = Browser(server)
    b.first = b.new_user()
    return b


def out_texts(answer: dict) -> str:
    return "\n".join(m["message"].get("text", "") for m in answer["messages"] if m["direction"] == "out")


@pytest.mark.parametrize("body, content_type", MALFORMED)
def test_malformed_simulator_input_gets_400_with_a_japanese_message(browser, body, content_type):
    status, answer = call(browser, body, content_type)

    assert status == 400
    assert "送信内容を読み取れませんでした" in answer["error"] or "ユーザーID" in answer["error"]


def test_a_huge_text_is_refused_with_the_limit_named(browser):
    status, answer = call(browser, {"user": "USER", "event": {"type": "message",
                                                              "message": {"type": "text", "text": "あ" * 5001}}})

    assert status == 400
    assert answer["error"] == "メッセージが長すぎます。5000文字以内でお送りください。"


def test_after_many_malformed_requests_normal_requests_still_work(browser):
    assert call(browser, {"user": "USER", "event": {"type": "follow"}})[0] == 200
    for n in range(3):
        for param in MALFORMED:
            body, content_type = param.values
            assert call(browser, body, content_type)[0] == 400, param.id

    for user in (browser.first, browser.new_user()):
        status, answer = call(browser, {"user": user, "event": HELLO})
        assert status == 200, answer
        assert out_texts(answer)


# --- who may use it ---------------------------------------------------------------------------------------

def sign_in(client, services) -> None:
    add_user(services.db, "sato", "kagoshima-dx-2026", "viewer", services.clock.now())
    client.get("/admin/login")
    with client.session_transaction() as session:
        csrf = session["csrf"]
    response = client.post("/admin/login", data={"login": "sato", "password": "kagoshima-dx-2026", "csrf_token": csrf})
    assert response.status_code == 302


def test_in_simulator_mode_the_first_visitor_just_uses_it_with_a_random_id(browser):
    assert browser.request("GET", "/simulator")[0] == 200
    assert re.fullmatch(r"sim-[A-Za-z0-9_-]{20,}", browser.first)
    assert browser.request("GET", "/simulator/api/users")[1] == {"users": [browser.first]}
    status, answer = call(browser, {"user": "USER", "event": {"type": "follow"}})
    assert status == 200 and "友だち追加ありがとうございます" in texts([m["message"] for m in answer["messages"]])


def test_ids_are_random_and_a_chat_is_readable_only_by_the_session_that_made_it(browser, server):
    call(browser, {"user": "USER", "event": {"type": "message", "message": {"type": "text", "text": "鹿児島 花子です"}}})
    second = browser.new_user()
    stranger = Browser(server)

    assert second != browser.first and re.fullmatch(r"sim-[A-Za-z0-9_-]{20,}", second)
    assert stranger.request("GET", "/simulator/api/users")[1] == {"users": []}
    for user in (browser.first, "sim-user-1"):
        status, answer, _ = stranger.request("GET", f"/simulator/api/messages?user={user}&after=0")
        assert status == 404 and "見つかりませんでした" in answer["error"]
        assert call(stranger, {"user": user, "event": HELLO})[0] == 404
    mine = browser.request("GET", f"/simulator/api/messages?user={browser.first}&after=0")[1]["messages"]
    assert "鹿児島 花子です" in [m["message"].get("text") for m in mine]
    status, odd, _ = browser.request("GET", f"/simulator/api/messages?user={browser.first}&after=%C2%B2")  # ², not a number
    assert status == 200 and len(odd["messages"]) == len(mine)


def test_in_line_mode_the_simulator_is_not_there_unless_enabled(line_server):
    anonymous = Browser(line_server)
    assert anonymous.request("GET", "/simulator")[0] == 404
    assert anonymous.request("GET", "/simulator/api/users")[0] == 404
    assert anonymous.request("POST", "/simulator/api/users", {})[0] == 404
    assert call(anonymous, {"user": "sim-user-1", "event": HELLO})[0] == 404
    assert anonymous.request("GET", "/simulator/api/messages?user=sim-user-1")[0] == 404


def test_enabled_in_line_mode_it_is_for_signed_in_staff_only(line_app):
    services = line_app.extensions["dxdesk"]
    client = line_app.test_client()

    page = client.get("/simulator")
    assert page.status_code == 302 and page.location == "/admin/login"
    for response in (client.get("/simulator/api/users"), client.post("/simulator/api/users", json={}),
                     client.post("/simulator/api/send", json={"user": "sim-user-1", "event": HELLO})):
        assert response.status_code == 401 and "ログインしてください" in response.json["error"]

    sign_in(client, services)
    assert client.get("/simulator").status_code == 200
    user = client.post("/simulator/api/users", json={}).json["user"]
    sent = client.post("/simulator/api/send", json={"user": user, "event": {"type": "follow"}})
    assert sent.status_code == 200 and any(m["direction"] == "out" for m in sent.json["messages"])


def test_dxdesk_simulator_on_enables_it():
    assert Settings.from_env({"DXDESK_SIMULATOR": "on"}).simulator is True
    assert Settings.from_env({"DXDESK_SIMULATOR": "off"}).simulator is False
    assert Settings.from_env({}).simulator is False


# --- simulated bookings ----------------------------------------------------------------------------------

@pytest.fixture
def smtp():
    with FakeSmtpServer() as server:
        yield server


@pytest.fixture
def demo(configured, clock, smtp, tmp_path):
    """LINE mode with Google Calendar, coordinator emails and the simulator enabled: a live desk giving a demo."""
    config = tmp_path / "mail.toml"
    config.write_text(CONFIG.replace("calendar_id =", 'email = "tanaka@example.jp"\ncalendar_id =', 1))
    app = create_app(replace(configured, config_path=str(config), smtp_url=smtp.url,
                             mail_from="かごしまDX相談窓口 <dx-desk@example.jp>", simulator=True), clock=clock)
    yield app
    app.extensions["dxdesk"].stop()
    app.extensions["dxdesk"].db.dispose()


def simulated_intake(client, user: str) -> dict:
    """The same intake as test_booking's over LINE, in the simulator; returns the slot carousel."""
    send(client, user, {"type": "follow"})
    tap(client, user, "action=consent&v=2026-11")
    say(client, user, "インボイス対応の会計ソフトを選びたい")
    tap(client, user, "action=yes")
    for answer in ("さつま商事", "卸売業・小売業", "4人", "鹿児島市", "西郷 隆子", "099-286-2111", "takako@example.jp"):
        say(client, user, answer)
    tap(client, user, "action=method&v=online")
    return next(m for m in tap(client, user, "action=submit")
                if m.get("type") == "flex" and m["contents"]["type"] == "carousel")


def at(carousel: dict, when: str) -> dict | None:
    return next((a for a in slot_actions(carousel) if when in a["displayText"]), None)


def test_a_simulated_booking_takes_no_real_slot_puts_nothing_in_the_calendar_and_notifies_nobody(demo, line, gcal, smtp):
    services = demo.extensions["dxdesk"]
    staff = demo.test_client()
    sign_in(staff, services)
    first = staff.post("/simulator/api/users", json={}).json["user"]
    chosen = at(simulated_intake(staff, first), "11月26日(木) 10:00")

    assert "ご予約が確定しました" in texts(book(staff, first, chosen["data"]))
    assert gcal.events("tanaka@example.jp") == []
    assert line.delivered(COORDINATOR_LINE_ID) == [] and smtp.mails == []
    with services.db.unit_of_work() as s:
        [booking] = s.scalars(select(Booking).where(Booking.status.in_(ACTIVE_BOOKING)))
        assert (booking.status, booking.simulated) == ("confirmed", True)

    real = LineUserDriver(demo.test_client(), demo, line)
    again = at(intake(real), "11月26日(木) 10:00")
    assert again is not None
    assert "ご予約が確定しました" in texts(real.book(again["data"]))
    assert len(gcal.events("tanaka@example.jp")) == 1
    assert "新しいご予約" in texts(line.delivered(COORDINATOR_LINE_ID)) and len(smtp.mails) == 1

    # The real booking stands in a demo user's way, as it would on LINE.
    second = staff.post("/simulator/api/users", json={}).json["user"]
    carousel = simulated_intake(staff, second)
    assert at(carousel, "11月26日(木) 11:00") is not None and at(carousel, "11月26日(木) 10:00") is None


def test_a_simulated_popup_booking_leaves_the_seat_to_a_real_user(demo, gcal):
    services = demo.extensions["dxdesk"]
    day = add_popup_day(services, capacity=1, coordinator="tanaka")
    ten = datetime(2026, 12, 5, 10, 0, tzinfo=TOKYO)
    now = services.clock.now()

    def free_at_ten(simulated: bool) -> bool:
        with services.db.unit_of_work() as s:
            offered = popup.offers(s, services.config, now=now, region=None, simulated=simulated)
        return any(slot.start == ten for o in offered if o.day_id == day for slot in o.slots)

    def book(user: str):
        with services.db.unit_of_work() as s:
            s.add(LineUser(id=user, source="simulator" if user.startswith("sim-") else "line", following=True,
                           created_at=now, updated_at=now))
            reserved = services.bookings.reserve_popup(s, day_id=day, start=ten, user_id=user, consultation_id=None, now=now)
            s.commit()
        return reserved and services.bookings.confirm(reserved.booking.id)

    assert book("sim-demo").simulated
    assert free_at_ten(simulated=False) and not free_at_ten(simulated=True)
    real = book("U7" + "0" * 31)
    assert real is not None and real.status == "confirmed" and not real.simulated
    assert not free_at_ten(simulated=False)
    assert book("sim-demo-2") is None  # the real booking holds the only seat
    assert len(gcal.events("tanaka@example.jp")) == 1
