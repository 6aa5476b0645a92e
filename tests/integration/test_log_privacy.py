"""No personal data in logs or error pages, proven with canaries.

Canary values (a name, a phone, an email, a phrase) go through the LINE intake (signed webhooks, one over a real
werkzeug server so its access log runs), the simulator, the staff console (views and a reply) and the CLI exports;
then every log record captured at DEBUG, SQLAlchemy's and werkzeug's included, and every error page is searched.
"""
from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import replace

import pytest
from sqlalchemy import select

from app import create_app
from handlers import cli
from storage.models import Consultation
from storage.staff import add_user
from tests.fakes.line_api import FakeLineApi
from tests.helpers import SECRET, LineUserDriver, line_intake, say, served_like_dxdesk_serve, sign, tap

NAME, PHONE, EMAIL, PHRASE = "鳥居 かなり", "099-777-8888", "kanari-canary@example.jp", "ひばり色の合言葉"
CANARIES = (NAME, PHONE, EMAIL, PHRASE, "有限会社カナリア醸造")
QUESTION = f"紙の請求書をやめたい。{PHRASE}"
PASSWORD = "kagoshima-dx-2026"


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "werkzeug", "dxdesk", "waitress", "handlers",
                 "scheduling", "storage", "urllib3"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def leaked(caplog) -> list[str]:
    found = []
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "") + repr(getattr(record, "args", ""))
        found += [f"{record.name}: {value}" for value in CANARIES if value in text]
    return found


@pytest.fixture
def fake():
    with FakeLineApi() as fake:
        yield fake


@pytest.fixture
def line_app(settings, clock, fake, logs):
    app = create_app(replace(settings, line_channel_secret=SECRET, line_channel_access_token="token",
                             line_api_base_url=fake.base_url, public_base_url="https://dx-desk.example.jp"), clock=clock)
    yield app
    app.extensions["dxdesk"].stop()
    app.extensions["dxdesk"].db.dispose()


def sign_in(client, services, role="admin"):
    add_user(services.db, f"{role}-1", PASSWORD, role, services.clock.now())
    client.get("/admin/login")
    with client.session_transaction() as session:
        token = session["csrf"]
    assert client.post("/admin/login", data={"login": f"{role}-1", "password": PASSWORD,
                                             "csrf_token": token}).status_code == 302
    with client.session_transaction() as session:
        return session["csrf"]  # a new one at sign-in


def test_sql_echo_is_off_and_parameters_are_hidden_from_every_logger(line_app, logs):
    services = line_app.extensions["dxdesk"]
    assert not services.db.engine.echo and services.db.engine.hide_parameters is True
    with services.db.unit_of_work() as s:
        s.execute(select(Consultation).where(Consultation.phone == PHONE)).all()
    statements = [r for r in logs.records if r.name.startswith("sqlalchemy.engine") and "SELECT" in r.getMessage()]
    assert statements, "the SQL logger was not on: the search below would prove nothing"
    assert leaked(logs) == []


def test_canaries_through_line_the_console_and_the_cli_reach_no_log_record_nor_error_page(
        line_app, fake, logs, tmp_path, monkeypatch, database_url, capsys):
    services = line_app.extensions["dxdesk"]
    client = line_app.test_client()
    u = LineUserDriver(client, line_app, fake)
    fake.profiles[u.user] = NAME  # LINE's display name is a canary too
    assert "受付番号" in line_intake(u, company="有限会社カナリア醸造", name=NAME, phone=PHONE, email=EMAIL,
                                 question=QUESTION)
    u.book("action=slot&c=tanaka&t=202611251000")
    u.say("担当者と話したい")
    u.say(f"{NAME}です。電話は{PHONE}、メールは{EMAIL}。{PHRASE}")

    # One webhook over `dxdesk serve`'s server, so its access log writes its line.
    with served_like_dxdesk_serve(line_app) as port:
        body = json.dumps({"destination": "Ubot", "events": [u.event(message={
            "id": "9", "type": "text", "text": f"{PHRASE} {PHONE}", "quoteToken": "q"})]}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/callback", data=body, headers={
            "Content-Type": "application/json", "X-Line-Signature": sign(body)})
        assert urllib.request.urlopen(request, timeout=10).status == 200
    services.inbox.drain()

    token = sign_in(client, services)
    with services.db.unit_of_work() as s:
        [c] = s.scalars(select(Consultation)).all()
    for path in ("/admin", "/admin/consultations", f"/admin/consultations/{c.id}", "/admin/conversations",
                 f"/admin/conversations/{u.user}", "/admin/bookings", "/admin/messages"):
        assert client.get(path).status_code == 200, path
    assert client.post(f"/admin/conversations/{u.user}/reply",
                       data={"csrf_token": token, "text": f"{NAME}様、{PHONE}にお電話します。"}).status_code in (200, 302)
    services.delivery.send_due()
    errors = [client.get(f"/admin/conversations/{PHONE}"), client.get(f"/admin/consultations/{c.id + 99}"),
              client.post(f"/admin/conversations/{u.user}/reply", data={"text": f"{NAME} {EMAIL}"}),  # no CSRF token
              client.post("/callback", data=json.dumps({"events": [{"message": {"text": PHRASE}}]}),
                          headers={"X-Line-Signature": "forged", "Content-Type": "application/json"})]
    assert [e.status_code for e in errors] == [404, 404, 400, 400]
    for page in errors:
        assert not [v for v in CANARIES if v in page.get_data(as_text=True)]

    monkeypatch.setenv("DXDESK_DATABASE_URL", database_url)
    assert cli.main(["report", "weekly", "--week", "2026-W48", "--out", str(tmp_path / "w.csv")]) == 0
    assert cli.main(["report", "weekly", "--week", "2026-W48", "--out", str(tmp_path / "w.xlsx")]) == 0
    assert cli.main(["consultations", "--json"]) == 0
    assert EMAIL in capsys.readouterr().out  # the export itself carries the data: its output is not a log
    assert cli.main(["privacy", "purge", "--dry-run"]) == 0

    assert any(r.name == "dxdesk.access" for r in logs.records), "the access log did not run"
    assert leaked(logs) == []


def test_the_simulator_logs_no_canary(client, logs):
    user = "sim-canary"
    tap(client, user, "action=consult")
    tap(client, user, "action=consent&v=2026-11")
    say(client, user, QUESTION)
    tap(client, user, "action=yes")
    for answer in ("有限会社カナリア醸造", "製造業", "3人", "鹿屋市", NAME, PHONE, EMAIL):
        say(client, user, answer)
    tap(client, user, "action=method&v=phone")
    tap(client, user, "action=submit")
    say(client, user, "データ削除")
    assert client.post("/simulator/api/send", json={"user": PHONE, "event": {"type": "message", "message": {
        "type": "text", "text": PHRASE}}}).status_code in (400, 403, 404)
    assert leaked(logs) == []
