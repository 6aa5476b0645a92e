"""Coordinator emails: bookings over signed LINE events, the durable outbound queue, and a real local SMTP server."""
from __future__ import annotations

import logging
import socket
from dataclasses import replace

import pytest
from sqlalchemy import select

from app import create_app
from bot.config import ConfigError
from handlers.delivery import Delivery
from storage.outbound import SendResult
from scheduling.mailer import Mailer, email_message
from storage.db import Database
from storage.models import Booking, Consultation, OutboundMessage
from storage.outbound import queue_messages
from tests.fakes.smtp import FakeSmtpServer
from tests.helpers import LineUserDriver, texts
from tests.integration.test_booking import (  # noqa: F401 - configured, gcal and line are fixtures used here
    CONFIG, COORDINATOR_LINE_ID, configured, gcal, intake, line, slot_actions,
)

SENDER = "かごしまDX相談窓口 <dx-desk@example.jp>"
SUBJECT = "【かごしまDX相談窓口】新しいご予約 11月26日(木) 10:00〜11:00"


@pytest.fixture
def smtp():
    with FakeSmtpServer() as server:
        yield server


@pytest.fixture
def coordinator_email():
    return "tanaka@example.jp"


@pytest.fixture
def app(configured, clock, smtp, tmp_path, coordinator_email):
    config = tmp_path / "mail.toml"
    config.write_text(CONFIG.replace("calendar_id =", f'email = "{coordinator_email}"\ncalendar_id =', 1))
    app = create_app(replace(configured, config_path=str(config), smtp_url=smtp.url, mail_from=SENDER), clock=clock)
    services = app.extensions["dxdesk"]
    yield app
    services.stop()
    services.db.dispose()


@pytest.fixture
def services(app):
    return app.extensions["dxdesk"]


@pytest.fixture
def user(app, line):
    return LineUserDriver(app.test_client(), app, line)


def book(user: LineUserDriver, when: str = "11月26日(木) 10:00") -> list[dict]:
    carousel = intake(user)
    return user.book(next(a for a in slot_actions(carousel) if when in a["displayText"])["data"])


def email_rows(services) -> list[OutboundMessage]:
    with services.db.unit_of_work() as s:
        return list(s.scalars(select(OutboundMessage).where(OutboundMessage.channel == "email")
                              .order_by(OutboundMessage.id)))


def active_booking(services) -> Booking:
    with services.db.unit_of_work() as s:
        return s.scalars(select(Booking).where(Booking.status == "confirmed")).one()


# --- the booking flow ------------------------------------------------------------------------------------

def test_a_booking_made_over_line_emails_the_coordinator_once_with_what_the_meeting_needs(services, user, smtp, line, clock):
    book(user)
    [mail] = smtp.mails
    message = mail.parsed()
    assert (mail.mail_from, mail.rcpt_tos) == ("dx-desk@example.jp", ["tanaka@example.jp"])
    assert (message["Subject"], message["From"], message["To"]) == (SUBJECT, SENDER, "tanaka@example.jp")
    with services.db.unit_of_work() as s:
        consultation = s.scalars(select(Consultation)).one()
        category, receipt = services.config.category(consultation.category).name, consultation.receipt_no
    body = message.get_content()
    for expected in ("田中 一郎 様", "日時：11月26日(木) 10:00〜11:00", "方法：オンライン", "会社：さつま商事", f"分野：{category}",
                     "連絡先：西郷 隆子 / 099-286-2111 / takako@example.jp", f"受付番号：{receipt}",
                     "ご相談内容：\nインボイス対応の会計ソフトを選びたい", "Google Meet：https://meet.google.com/"):
        assert expected in body
    assert "新しいご予約" in texts(line.delivered(COORDINATOR_LINE_ID))
    [row] = email_rows(services)
    assert (row.to, row.sender, row.status, row.attempts) == ("tanaka", "notice", "sent", 1)
    clock.advance(hours=1)
    assert services.delivery.send_due() == 0
    assert len(smtp.mails) == 1


@pytest.mark.parametrize("coordinator_email", ["tanaka@example.jp, jimukyoku@example.jp", "田中 一郎 <tanaka@example.jp>,jimukyoku@example.jp, "])
def test_several_coordinator_addresses_are_all_blind_copies(user, smtp, coordinator_email):
    book(user)
    [mail] = smtp.mails
    message = mail.parsed()
    assert mail.rcpt_tos == ["tanaka@example.jp", "jimukyoku@example.jp"]
    assert (message["To"], message["Cc"], message["Bcc"]) == ("dx-desk@example.jp", None, None)
    for address in mail.rcpt_tos:
        assert address.encode() not in mail.data


@pytest.mark.parametrize("command", ["RCPT", "DATA"])
def test_a_temporary_refusal_is_retried_on_the_same_message_and_delivered_once(services, user, smtp, clock, command):
    smtp.script(command, [451])
    assert "ご予約が確定しました" in texts(book(user))
    assert smtp.mails == []
    [row] = email_rows(services)
    assert (row.status, row.last_error, row.attempts) == ("pending", "smtp_451", 1)
    assert services.delivery.send_due() == 0  # not before its back-off
    clock.advance(minutes=1)
    assert services.delivery.send_due() == 1
    [mail] = smtp.mails
    [again] = email_rows(services)
    assert (again.id, again.status, again.last_error, again.attempts) == (row.id, "sent", None, 2)
    assert mail.parsed()["Message-ID"] == f"<{row.retry_key}@example.jp>"
    clock.advance(hours=1)
    services.delivery.send_due()
    assert len(smtp.mails) == 1


def test_an_unknown_recipient_fails_for_good_and_the_error_stays_for_staff(services, user, smtp, line, clock):
    smtp.script("RCPT", [550])
    book(user)
    assert [(r.status, r.last_error, r.attempts) for r in email_rows(services)] == [("failed", "smtp_550", 1)]
    clock.advance(hours=2)
    services.delivery.send_due()
    assert smtp.mails == [] and email_rows(services)[0].attempts == 1
    assert "新しいご予約" in texts(line.delivered(COORDINATOR_LINE_ID))


def test_a_stopped_server_is_retried_until_it_is_back(services, user, smtp, clock):
    smtp.stop()
    book(user)
    assert [(r.status, r.last_error) for r in email_rows(services)] == [("pending", "network")]
    clock.advance(minutes=1)
    services.delivery.send_due()
    assert [(r.status, r.attempts) for r in email_rows(services)] == [("pending", 2)]
    smtp.start()
    clock.advance(minutes=1)
    services.delivery.send_due()
    assert [(r.status, r.attempts) for r in email_rows(services)] == [("sent", 3)]
    assert len(smtp.mails) == 1


def test_a_change_and_a_cancellation_each_email_the_coordinator(services, user, smtp):
    book(user)
    said = user.tap(f"action=reschedule&b={active_booking(services).id}")
    again = next(m for m in said if m.get("type") == "flex")
    user.book(next(a for a in slot_actions(again) if "11月26日(木) 14:00" in a["displayText"])["data"])
    user.tap(f"action=cancel_booking&b={active_booking(services).id}")
    user.tap("action=cancel_reason&v=問題が解決した")
    assert [m.parsed()["Subject"] for m in smtp.mails] == [
        SUBJECT, "【かごしまDX相談窓口】ご予約の変更 11月26日(木) 14:00〜15:00",
        "【かごしまDX相談窓口】ご予約のキャンセル 11月26日(木) 14:00〜15:00"]
    cancelled = smtp.mails[-1].parsed().get_content()
    assert "キャンセル理由：問題が解決した" in cancelled and "会社：さつま商事" in cancelled
    assert "meet.google.com" not in cancelled


@pytest.mark.parametrize("coordinator_email", ["tanaka@example.jp, jimukyoku@example.jp"])
def test_no_address_subject_or_body_reaches_the_logs(services, user, smtp, clock, caplog, coordinator_email):
    caplog.set_level(logging.DEBUG)
    smtp.script("DATA", [451])
    book(user)
    clock.advance(minutes=1)
    services.delivery.send_due()
    smtp.script("RCPT", [250, 550])  # the cancellation reaches one of the two
    user.tap(f"action=cancel_booking&b={active_booking(services).id}")
    user.tap("action=cancel_reason&v=問題が解決した")
    assert [(r.status, r.last_error) for r in email_rows(services)] == [("sent", None), ("sent", "smtp_550_partly_refused")]
    assert "SMTP 451" in caplog.text and "accepted by the SMTP server" in caplog.text
    assert "1 of 2 recipients refused" in caplog.text
    subjects = [m.parsed()["Subject"] for m in smtp.mails]
    for private in ("tanaka@example.jp", "jimukyoku@example.jp", "dx-desk@example.jp", *subjects, "さつま商事",
                    "インボイス", "西郷", "takako@example.jp", "099-286-2111", "問題が解決した"):
        assert private not in caplog.text


def test_without_smtp_settings_only_the_line_card_is_sent(configured, clock, line, tmp_path):
    config = tmp_path / "mail.toml"
    config.write_text(CONFIG.replace("calendar_id =", 'email = "tanaka@example.jp"\ncalendar_id =', 1))
    app = create_app(replace(configured, config_path=str(config)), clock=clock)
    services = app.extensions["dxdesk"]
    try:
        book(LineUserDriver(app.test_client(), app, line))
        assert "新しいご予約" in texts(line.delivered(COORDINATOR_LINE_ID))
        assert email_rows(services) == []
    finally:
        services.stop()
        services.db.dispose()


# --- the queue, without the booking flow -----------------------------------------------------------------

@pytest.mark.parametrize("with_mailer, status, error, delivered", [
    (True, "sent", None, 1),
    (False, "failed", "smtp_not_configured", 0),
])
def test_delivery_sends_an_email_row_through_its_mailer_or_keeps_it_failed(database_url, clock, smtp, with_mailer,
                                                                          status, error, delivered):
    db = Database(database_url)
    db.upgrade()
    try:
        with db.unit_of_work() as s:
            ids = queue_messages(s, "email", "tanaka", [email_message(["tanaka@example.jp"], "件名", "本文")],
                                 clock.now(), sender="notice")
            s.commit()
        Delivery(db, clock, None, mailer=Mailer(smtp.url, SENDER) if with_mailer else None).send(ids)
        with db.unit_of_work() as s:
            row = s.get(OutboundMessage, ids[0])
            assert (row.status, row.last_error, row.attempts) == (status, error, 1)
        assert len(smtp.mails) == delivered
    finally:
        db.dispose()


# --- the mailer against the SMTP server ------------------------------------------------------------------

@pytest.mark.parametrize("url, security, host, port, username", [
    ("smtp://mail.example.jp", "smtp", "mail.example.jp", 25, None),
    ("smtp+starttls://dx%40example.jp:p%40ss@mail.example.jp", "smtp+starttls", "mail.example.jp", 587, "dx@example.jp"),
    ("smtps://user:secret@mail.example.jp:2465", "smtps", "mail.example.jp", 2465, "user"),
])
def test_the_smtp_url_gives_security_host_port_and_decoded_user(url, security, host, port, username):
    mailer = Mailer(url, SENDER)
    assert (mailer.security, mailer.host, mailer.port, mailer.username) == (security, host, port, username)


@pytest.mark.parametrize("url, sender", [
    ("http://mail.example.jp", SENDER),
    ("smtp://", SENDER),
    ("smtp://mail.example.jp:port", SENDER),
    ("smtp://mail.example.jp", ""),
    ("smtp://mail.example.jp", "かごしまDX相談窓口"),
])
def test_an_unusable_smtp_url_or_sender_is_a_configuration_error(url, sender):
    with pytest.raises(ConfigError):
        Mailer(url, sender)


def test_one_recipient_is_in_to_and_the_message_is_properly_mime_encoded(smtp):
    body = "田中様\n\n.から始まる行と、長い行" + "あ" * 300 + "\n"
    result = Mailer(smtp.url, SENDER).send(["tanaka@example.jp"], SUBJECT, body, key="4b8e0c1e-key")
    assert result == SendResult("sent")
    [mail] = smtp.mails
    head = mail.data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()  # non-ASCII only as RFC 2047 encoded words
    message = mail.parsed()
    assert (message["To"], message["Subject"], message["From"]) == ("tanaka@example.jp", SUBJECT, SENDER)
    assert message["Message-ID"] == "<4b8e0c1e-key@example.jp>" and message["Date"]
    assert message.get_content_charset() == "utf-8" and message.get_content() == body


@pytest.mark.parametrize("command, codes, recipients, result, delivered_to", [
    ("RCPT", [451], ["a@example.jp"], SendResult("retry", error="smtp_451"), None),
    ("RCPT", [550], ["a@example.jp"], SendResult("failed", error="smtp_550"), None),
    ("RCPT", [550, 451], ["a@example.jp", "b@example.jp"], SendResult("retry", error="smtp_451"), None),
    ("RCPT", [250, 550], ["a@example.jp", "b@example.jp"], SendResult("sent", error="smtp_550_partly_refused"), ["a@example.jp"]),
    ("MAIL", [421], ["a@example.jp"], SendResult("retry", error="smtp_421"), None),
    ("DATA", [451], ["a@example.jp"], SendResult("retry", error="smtp_451"), None),
    ("DATA", [554], ["a@example.jp"], SendResult("failed", error="smtp_554"), None),
])
def test_smtp_replies_map_to_retry_for_4xx_and_failed_for_5xx(smtp, command, codes, recipients, result, delivered_to):
    smtp.script(command, codes)
    assert Mailer(smtp.url, SENDER).send(recipients, "件名", "本文") == result
    assert [m.rcpt_tos for m in smtp.mails] == ([delivered_to] if delivered_to else [])


@pytest.mark.parametrize("recipients", [[], ["tanaka"], ["tanaka@"], ["田中@example.jp"], ["a@example.jp\r\nBcc: x@example.jp"],
                                        ["a@example.jp", "b@example jp"]])
def test_a_malformed_address_fails_without_contacting_the_server(smtp, recipients):
    assert Mailer(smtp.url, SENDER).send(recipients, "件名", "本文") == SendResult("failed", error="invalid_address")
    assert smtp.mails == []


def test_a_stopped_server_and_a_silent_one_are_worth_a_retry(smtp):
    smtp.stop()
    assert Mailer(smtp.url, SENDER).send(["a@example.jp"], "件名", "本文") == SendResult("retry", error="network")
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts the connection, never greets
        mailer = Mailer(f"smtp://127.0.0.1:{silent.getsockname()[1]}", SENDER, timeout=0.2)
        assert mailer.send(["a@example.jp"], "件名", "本文") == SendResult("retry", error="timeout")


@pytest.mark.parametrize("auth, credentials, result", [
    (("PLAIN",), "dx%40example.jp:p%40ss%3Aword", SendResult("sent")),
    (("LOGIN",), "dx%40example.jp:p%40ss%3Aword", SendResult("sent")),
    (("PLAIN", "LOGIN"), "dx%40example.jp:wrong", SendResult("failed", error="smtp_535")),
])
def test_the_user_and_password_sign_in_with_auth(auth, credentials, result):
    with FakeSmtpServer(users={"dx@example.jp": "p@ss:word"}, auth=auth) as server:
        mailer = Mailer(server.url.replace("smtp://", f"smtp://{credentials}@"), SENDER)
        assert mailer.send(["a@example.jp"], "件名", "本文") == result
        assert [m.user for m in server.mails] == (["dx@example.jp"] if result.status == "sent" else [])


@pytest.mark.parametrize("url", ["smtp://user:secret@{host}", "smtp+starttls://{host}"])
def test_asking_for_what_the_server_does_not_offer_fails_as_a_configuration_problem(smtp, url):
    mailer = Mailer(url.format(host=smtp.url.removeprefix("smtp://")), SENDER)
    assert mailer.send(["a@example.jp"], "件名", "本文") == SendResult("failed", error="smtp_unsupported")
