"""The web consultation form at /consult, through the Flask test client without JavaScript: the LINE intake's checks,
consent and triage, a slot from the same availability as LINE, one consultation per form, and the bots kept out."""
from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import datetime

import pytest
from sqlalchemy import func, select

from app import create_app
from bot.jatime import TOKYO
from storage.models import Booking, Consultation, LineUser, OutboundMessage, WebSubmission
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.line_api import FakeLineApi
from tests.fakes.smtp import FakeSmtpServer
from tests.integration.test_log_privacy import CANARIES, EMAIL, NAME, PHONE, PHRASE, leaked, logs  # noqa: F401 - logs: fixture

SENDER = "かごしまDX相談窓口 <dx-desk@example.jp>"
ANSWERS = {"consent": "2026-11", "question": "紙の請求書をやめて、会計ソフトで請求書を出したい。", "company": "有限会社さつま工房",
           "industry": "製造業", "employees": "6〜20人", "municipality": "鹿屋市", "contact_name": "薩摩 花子",
           "phone": "0994-12-3456", "email": "hanako@example.jp", "method": "online"}


@pytest.fixture
def smtp():
    with FakeSmtpServer() as server:
        yield server


@pytest.fixture
def app(settings, clock, smtp):
    app = create_app(replace(settings, smtp_url=smtp.url, mail_from=SENDER), clock=clock)
    yield app
    app.extensions["dxdesk"].stop()
    app.extensions["dxdesk"].db.dispose()


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden {name} in the page"
    return found.group(1)


class Form:
    """A person filling in /consult in a browser without JavaScript: each page's hidden fields go back with the next post."""

    def __init__(self, client, clock):
        self.client, self.clock = client, clock
        self.page = client.get("/consult")
        assert self.page.status_code == 200

    @property
    def html(self) -> str:
        return self.page.get_data(as_text=True)

    def post(self, html: str | None = None, **fields):
        """Send the page shown (or an earlier one, `html`, as the browser's back button would)."""
        html = html or self.html
        data = {"csrf_token": hidden(html, "csrf_token"), "state": hidden(html, "state"), "step": hidden(html, "step"),
                "website": "", **fields}
        self.page = self.client.post("/consult", data=data)
        return self.page

    def profile(self, **changes):
        self.clock.advance(seconds=20)  # reading the consent and filling in the page
        return self.post(**{**ANSWERS, **changes})

    def slots(self) -> list[str]:
        return re.findall(r'name="slot" value="([^"]+\|\d+)"', self.html)

    def through_category(self, **changes):
        assert self.profile(**changes).status_code == 200
        assert hidden(self.html, "step") == "category", self.html
        self.post(category=re.search(r'name="category" value="(\w+)" checked', self.html).group(1))
        assert hidden(self.html, "step") == "slot", self.html


def consultations(services) -> list[Consultation]:
    with services.db.unit_of_work() as s:
        return s.scalars(select(Consultation).order_by(Consultation.id)).all()


def bookings(services) -> list[Booking]:
    with services.db.unit_of_work() as s:
        return s.scalars(select(Booking).order_by(Booking.id)).all()


def test_a_consultation_sent_through_the_form_books_a_slot_and_shows_its_receipt_number(client, clock, services):
    form = Form(client, clock)
    assert 'name="viewport"' in form.html and "/privacy" in form.html
    assert "個人情報の取り扱いについて" in form.html and "会社名・ご担当者名・連絡先・ご相談内容をお預かりします" in form.html
    form.through_category()
    slot = form.slots()[0]
    done = form.post(slot=slot)
    assert done.status_code == 303
    page = client.get(done.headers["Location"])
    [c] = consultations(services)
    assert (c.channel, c.origin, c.user_id, c.simulated, c.status) == ("web", "web", None, False, "received")
    assert (c.company, c.municipality, c.region, c.phone, c.method) == ("有限会社さつま工房", "鹿屋市", "osumi", "0994-12-3456",
                                                                      "online")
    assert c.suggested_category and c.category == c.suggested_category and c.keywords is not None
    [b] = bookings(services)
    coordinator, _, key = slot.partition("|")
    assert (b.consultation_id, b.coordinator_id, b.channel, b.user_id) == (c.id, coordinator, "web", None)
    assert b.start == datetime.strptime(key, "%Y%m%d%H%M").replace(tzinfo=TOKYO)
    assert b.status == "confirmed"  # the same confirm as LINE bookings: the calendar (local here) holds it
    assert page.status_code == 200 and c.receipt_no in page.get_data(as_text=True)
    with services.db.unit_of_work() as s:
        [w] = s.scalars(select(WebSubmission)).all()
    assert (w.consultation_id, w.consent_version) == (c.id, "2026-11")
    assert "127.0.0.1" not in w.address


def test_the_slots_offered_are_the_ones_the_bot_and_dxdesk_slots_offer(client, clock, services):
    form = Form(client, clock)
    form.through_category(method="visit")
    with services.db.unit_of_work() as s:
        expected = services.bookings.offer(s, user_id=None, method="visit", region="osumi", after=None, days=7,
                                           now=clock.now())
    assert form.slots() == [f"{o.coordinator}|{o.start:%Y%m%d%H%M}" for o in expected]
    assert expected and {o.coordinator for o in expected} == {"nishimura"}  # 鹿屋市 (大隅): visits by its coordinator only
    # The minimum notice for visits (24 hours) applies: nothing on the first day.
    assert all(o.start >= clock.now().replace(day=25) for o in expected)


def test_later_records_the_consultation_without_a_booking(client, clock, services):
    form = Form(client, clock)
    form.through_category()
    assert "日程は担当者からの連絡で決める" in form.html
    assert form.post(slot="later").status_code == 303
    assert len(consultations(services)) == 1 and bookings(services) == []


def test_the_suggested_category_is_preselected_and_another_one_may_be_chosen(client, clock, services):
    form = Form(client, clock)
    form.profile()
    html = form.html
    suggested = re.search(r'name="category" value="(\w+)" checked', html).group(1)
    assert len(re.findall(r'name="category" value=', html)) == len(services.config.categories)
    form.post(category="security")
    form.post(slot="later")
    [c] = consultations(services)
    assert (c.category, c.suggested_category) == ("security", suggested)


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"question": ""}, "question", "ご相談内容を入力してください"),
    ({"question": "あ" * 2001}, "question", "2000文字以内"),
    ({"company": "ああああ"}, "company", "会社名（屋号）を文字で教えてください"),
    ({"company": "株" * 101}, "company", "100文字以内"),
    ({"contact_name": "090-1234-5678"}, "contact_name", "ご担当者のお名前を文字で教えてください"),
    ({"phone": "099-286-211"}, "phone", "10桁"),
    ({"email": "hanako@gmail.con"}, "email", "gmail.com"),
    ({"phone": "", "email": ""}, "phone", "電話番号かメールアドレスのどちらか"),
    ({"method": "phone", "phone": ""}, "phone", "お電話でのご相談には電話番号が必要です"),
    ({"industry": "宇宙業"}, "industry", "業種を選んでください"),
    ({"municipality": "東京都"}, "municipality", "市町村を選んでください"),
    ({"consent": ""}, "consent", "同意いただくと"),
    ({"consent": "2025-01"}, "consent", "更新されました"),
    ({"company": "<script>alert(1)</script>"}, "company", "スクリプト"),
    ({"question": "相談です <img src=x onerror=alert(1)>"}, "question", "スクリプト"),
    ({"contact_name": "薩摩\x00花子"}, "contact_name", "制御文字"),
])
def test_a_bad_answer_is_refused_in_japanese_keeping_the_other_answers(client, clock, services, changes, field, message):
    form = Form(client, clock)
    page = form.profile(**changes)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and hidden(html, "step") == "profile"
    assert message in re.search(rf'id="{field}-error">([^<]*)<', html).group(1)
    kept = {k: v for k, v in ANSWERS.items() if k not in changes and k != "consent"}
    for value in kept.values():
        assert value in html
    assert "<script>alert" not in html and "<img src=x" not in html
    assert consultations(services) == []


def test_the_hidden_field_filled_in_is_refused_and_nothing_is_stored(client, clock, services):
    form = Form(client, clock)
    clock.advance(seconds=20)
    page = form.post(**ANSWERS, website="https://spam.example")
    assert page.status_code == 400 and "受け付けられませんでした" in page.get_data(as_text=True)
    assert consultations(services) == []


def test_a_form_sent_faster_than_a_person_could_is_refused(client, clock, services):
    form = Form(client, clock)
    clock.advance(seconds=1)
    page = form.post(**ANSWERS)
    assert page.status_code == 400 and "送信が早すぎた" in page.get_data(as_text=True)


def test_a_post_without_the_sessions_csrf_token_is_refused(client, app, clock, services):
    form = Form(client, clock)
    clock.advance(seconds=20)
    state = hidden(form.html, "state")
    # Another site's form: its own browser session (no cookie of ours), or ours without the token.
    other = app.test_client()
    for sender, token in ((other, hidden(form.html, "csrf_token")), (client, ""), (client, "forged")):
        page = sender.post("/consult", data={**ANSWERS, "state": state, "step": "profile", "csrf_token": token},
                           headers={"Origin": "https://evil.example"})
        assert page.status_code == 400 and "正しく送信されませんでした" in page.get_data(as_text=True)
    assert consultations(services) == []


def test_a_forged_or_stale_form_state_is_refused(client, clock, services):
    form = Form(client, clock)
    clock.advance(seconds=20)
    page = client.post("/consult", data={**ANSWERS, "state": hidden(form.html, "state") + "x", "step": "profile",
                                         "csrf_token": hidden(form.html, "csrf_token")})
    assert page.status_code == 400
    clock.advance(hours=4)
    assert form.post(**ANSWERS).status_code == 400
    assert consultations(services) == []


def test_the_same_form_posted_twice_makes_one_consultation_and_shows_the_same_receipt(client, clock, services):
    form = Form(client, clock)
    form.through_category()
    slot_page = form.html
    slot = form.slots()[0]
    first = form.post(slot=slot)
    second = form.post(slot_page, slot=slot)  # the browser's back button, and the same button again
    assert first.status_code == second.status_code == 303
    [c] = consultations(services)
    assert len(bookings(services)) == 1
    for answer in (first, second):
        assert c.receipt_no in client.get(answer.headers["Location"]).get_data(as_text=True)


def test_a_slot_taken_meanwhile_gets_a_kind_message_and_the_choice_again(client, app, clock, services):
    form = Form(client, clock)
    form.through_category()
    slot = form.slots()[0]
    rival = Form(app.test_client(), clock)
    rival.through_category()
    assert rival.post(slot=slot).status_code == 303
    page = form.post(slot=slot)
    html = page.get_data(as_text=True)
    assert page.status_code == 409 and "ちょうど埋まってしまいました" in html
    assert slot not in form.slots() and form.slots()
    assert len(consultations(services)) == 1  # the rival's; nothing of this form is kept
    assert form.post(slot=form.slots()[0]).status_code == 303
    assert len(consultations(services)) == 2 and len(bookings(services)) == 2


def test_a_forged_slot_is_not_booked(client, clock, services):
    form = Form(client, clock)
    form.through_category()
    page = form.post(slot="tanaka|202611240300")  # 03:00, outside anyone's hours
    assert page.status_code == 409 and consultations(services) == [] and bookings(services) == []
    assert "読み取れませんでした" in form.post(slot="tanaka|tomorrow").get_data(as_text=True)


def test_more_than_five_consultations_from_one_address_in_ten_minutes_are_refused(client, app, clock, services):
    for _ in range(5):
        form = Form(app.test_client(), clock)
        form.through_category()
        assert form.post(slot="later").status_code == 303
    form = Form(app.test_client(), clock)
    form.through_category()
    page = form.post(slot="later")
    assert page.status_code == 429 and "10分ほどおいて" in page.get_data(as_text=True)
    assert len(consultations(services)) == 5
    clock.advance(minutes=10)
    assert form.post(slot="later").status_code == 303
    other = Form(app.test_client(), clock)
    other.through_category()
    other.client.environ_base["REMOTE_ADDR"] = "192.0.2.9"  # another address has its own count
    assert other.post(slot="later").status_code == 303


def test_an_oversized_body_is_refused_with_413_and_nothing_is_stored(client, clock, services):
    form = Form(client, clock)
    clock.advance(seconds=20)
    page = client.post("/consult", data={**ANSWERS, "state": hidden(form.html, "state"), "step": "profile",
                                         "csrf_token": hidden(form.html, "csrf_token"), "question": "あ" * 2_000_000})
    assert page.status_code == 413 and "大きすぎる" in page.get_data(as_text=True)
    assert consultations(services) == []


def test_the_receipt_email_is_queued_with_the_receipt_number_and_sent_by_the_delivery(client, clock, services, smtp):
    form = Form(client, clock)
    form.through_category()
    form.post(slot=form.slots()[0])
    [c] = consultations(services)
    with services.db.unit_of_work() as s:
        [mail] = s.scalars(select(OutboundMessage).where(OutboundMessage.channel == "email")).all()
    assert mail.to == f"consultation:{c.id}" and mail.status == "sent"
    [received] = smtp.mails
    assert received.rcpt_tos == ["hanako@example.jp"]
    body = received.parsed().get_body().get_content()
    assert c.receipt_no in body and c.receipt_no in received.parsed()["Subject"] and "11月" in body
    assert "確認のメールをお送りしました" in client.get(form.page.headers["Location"]).get_data(as_text=True)


def test_without_an_email_address_no_mail_is_queued(client, clock, services, smtp):
    form = Form(client, clock)
    form.through_category(email="")
    form.post(slot="later")
    with services.db.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(OutboundMessage)) == 0


def test_back_returns_to_the_answers_given(client, clock, services):
    form = Form(client, clock)
    form.through_category()
    form.post(back="1")
    assert hidden(form.html, "step") == "category"
    form.post(back="1")
    assert hidden(form.html, "step") == "profile" and "有限会社さつま工房" in form.html and "checked" in form.html


def test_the_privacy_policy_links_to_the_form(client):
    assert 'href="/consult"' in client.get("/privacy").get_data(as_text=True)


def test_the_confirmation_page_of_a_forged_token_is_a_404(client):
    assert client.get("/consult/done/forged").status_code == 404


def test_canaries_sent_through_the_form_reach_no_log_record_nor_error_page(client, clock, services, logs):
    canary = {"company": "有限会社カナリア醸造", "contact_name": NAME, "phone": PHONE, "email": EMAIL,
              "question": f"紙の請求書をやめたい。{PHRASE}"}
    form = Form(client, clock)
    errors = [form.profile(**{**canary, "email": "bad@@example.jp"})]  # a validation error shows the answers to their owner
    form.through_category(**canary)
    errors += [client.post("/consult", data={**canary, "step": "profile"}),  # no CSRF token, no state
               form.post(slot="tanaka|202611240300")]  # a refused slot
    assert form.post(slot=form.slots()[0]).status_code == 303
    for page in errors[1:]:
        assert not [v for v in CANARIES if v in page.get_data(as_text=True)]
    assert client.get(form.page.headers["Location"]).status_code == 200
    services.delivery.send_due()
    assert [c.email for c in consultations(services)] == [EMAIL]
    records = [r for r in logs.records if r.name.startswith(("handlers", "werkzeug", "sqlalchemy"))]
    assert records, "nothing was logged: the search would prove nothing"
    assert leaked(logs) == []


# --- LIFF: the form inside LINE --------------------------------------------------------------------------------

LIFF_ID = "1657000000-AbCdEfGh"
LINE_USER = "U0123456789abcdef0123456789abcdef"


@pytest.fixture
def line():
    with FakeLineApi() as fake:
        yield fake


@pytest.fixture
def liff_app(settings, clock, line):
    app = create_app(replace(settings, liff_id=LIFF_ID, line_api_base_url=line.base_url), clock=clock)
    yield app
    app.extensions["dxdesk"].stop()
    app.extensions["dxdesk"].db.dispose()


def test_the_liff_page_loads_the_sdk_and_lets_it_talk_to_line_only(liff_app, clock):
    page = liff_app.test_client().get("/consult")
    html = page.get_data(as_text=True)
    assert 'data-liff-id="1657000000-AbCdEfGh"' in html and "static.line-scdn.net/liff" in html
    assert "script-src 'self' https://static.line-scdn.net" in page.headers["Content-Security-Policy"]


def test_a_verified_liff_token_links_the_consultation_to_the_line_user(liff_app, clock, line):
    services = liff_app.extensions["dxdesk"]
    token = line.issue_liff_token(LINE_USER, channel_id="1657000000")
    form = Form(liff_app.test_client(), clock)
    form.through_category()
    assert form.post(slot=form.slots()[0], access_token=token).status_code == 303
    [c] = consultations(services)
    assert (c.user_id, c.channel) == (LINE_USER, "web")
    [b] = bookings(services)
    assert b.user_id == LINE_USER
    with services.db.unit_of_work() as s:
        user = s.get(LineUser, LINE_USER)
        assert (user.consent_version, user.company) == ("2026-11", "有限会社さつま工房")
    verify = line.requests("/oauth2/v2.1/verify")
    assert verify and verify[0].query == {"access_token": token}


@pytest.mark.parametrize("kind", ["forged", "expired", "other_channel"])
def test_a_liff_token_line_does_not_vouch_for_is_refused_and_nothing_is_stored(liff_app, clock, line, kind):
    services = liff_app.extensions["dxdesk"]
    token = {"forged": "forged-token",
             "expired": line.issue_liff_token(LINE_USER, channel_id="1657000000", expires_in=0),
             "other_channel": line.issue_liff_token(LINE_USER, channel_id="1999999999")}[kind]
    form = Form(liff_app.test_client(), clock)
    form.through_category()
    page = form.post(slot=form.slots()[0], access_token=token)
    assert page.status_code == 403 and "LINEでのご本人の確認ができませんでした" in page.get_data(as_text=True)
    assert consultations(services) == [] and form.slots()  # the choice again, answers kept in the form


def test_a_user_id_sent_by_the_browser_is_never_taken(liff_app, clock, line):
    services = liff_app.extensions["dxdesk"]
    form = Form(liff_app.test_client(), clock)
    form.through_category()
    assert form.post(slot="later", user_id=LINE_USER, userId=LINE_USER).status_code == 303
    [c] = consultations(services)
    assert c.user_id is None and line.requests("/oauth2/v2.1/verify") == []


def test_staff_find_the_forms_bookings_under_the_web_channel(client, app, clock, services):
    from tests.integration.test_log_privacy import sign_in

    form = Form(client, clock)
    form.through_category()
    form.post(slot=form.slots()[0])
    staff = app.test_client()
    sign_in(staff, services)
    [b] = bookings(services)
    page = staff.get("/admin/bookings?channel=web").get_data(as_text=True)
    assert f"/admin/bookings/{b.id}" in page and '<option value="web" selected>Webフォーム' in page
    assert f"/admin/bookings/{b.id}" not in staff.get("/admin/bookings?channel=line").get_data(as_text=True)


def test_a_liff_id_of_another_shape_stops_the_service_with_a_reason(settings, clock):
    from bot.config import ConfigError

    with pytest.raises(ConfigError, match="DXDESK_LIFF_ID"):
        create_app(replace(settings, liff_id="not-a-liff-id"), clock=clock)


def test_other_days_are_shown_a_week_at_a_time_up_to_the_horizon(client, clock, services):
    form = Form(client, clock)
    form.through_category()
    first_week = form.slots()
    form.post(more="2026-12-01")
    later = form.slots()
    assert later and not set(later) & set(first_week)
    assert all(s.partition("|")[2] >= "202612010000" for s in later) and "最初の日程に戻る" in form.html
    form.post(more="2027-06-01")  # past the 30-day horizon: the first page again
    assert form.slots() == first_week
    form.post(more="2026-12-22")
    assert "他の日を見る" not in form.html and "12月24日(木)までの日程で承っています" in form.html


def test_a_category_that_is_not_one_of_the_programmes_is_asked_again(client, clock, services):
    form = Form(client, clock)
    form.profile()
    page = form.post(category="astrology")
    assert hidden(page.get_data(as_text=True), "step") == "category"
    assert "ご相談の分野を選んでください" in page.get_data(as_text=True)


# --- online bookings: the Meet link by email ----------------------------------------------------------------------

@pytest.fixture
def google_app(settings, clock, smtp, tmp_path):
    with FakeGoogleCalendar() as gcal:
        key = tmp_path / "service-account.json"
        gcal.write_service_account_key(key)
        app = create_app(replace(settings, smtp_url=smtp.url, mail_from=SENDER, google_service_account_file=str(key),
                                 google_impersonate_user="dx@example.jp", google_calendar_api_base_url=gcal.api_url),
                         clock=clock)
        yield app
        app.extensions["dxdesk"].stop()
        app.extensions["dxdesk"].db.dispose()


@pytest.mark.parametrize("method", ["online", "visit"])
def test_someone_without_line_gets_the_meet_link_of_an_online_booking_by_email_once_it_is_confirmed(
        google_app, clock, smtp, method):
    services = google_app.extensions["dxdesk"]
    form = Form(google_app.test_client(), clock)
    form.through_category(method=method)
    form.post(slot=form.slots()[0])
    [b] = bookings(services)
    assert b.status == "confirmed" and (b.meet_url is not None) == (method == "online")
    subjects = [m.parsed()["Subject"] for m in smtp.mails]
    if method != "online":
        assert len(smtp.mails) == 1 and "ご相談を受け付けました" in subjects[0]  # the receipt only
        return
    receipt, meet = smtp.mails
    assert "ご相談を受け付けました" in receipt.parsed()["Subject"] and "Google Meet" in meet.parsed()["Subject"]
    assert meet.rcpt_tos == ["hanako@example.jp"]
    body = meet.parsed().get_body().get_content()
    [c] = consultations(services)
    assert b.meet_url in body and c.receipt_no in body and "薩摩 花子 様" in body
