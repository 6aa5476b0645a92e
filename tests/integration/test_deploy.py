"""The deploy recipe of docs/deploy.md, run for real: a fresh PostgreSQL database, `dxdesk db upgrade`, gunicorn
with 4 workers (deploy/gunicorn.conf.py, multiprocess metrics) and one `dxdesk scheduler`, on loopback; LINE and Google
are the fakes. A whole intake and booking goes through it by signed webhooks, and a backup is restored in the drill.

It needs a PostgreSQL server: DXDESK_TEST_DATABASE_URL's, or 127.0.0.1:5432; it is skipped, saying so, without one.
"""
from __future__ import annotations

import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest

from app import Settings
from bot.config import ConfigError

from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.line_api import FakeLineApi
from tests.helpers import SECRET, LineUserDriver, line_intake, sign, texts

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SERVER = (os.environ.get("DXDESK_TEST_DATABASE_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/test").rsplit("/", 1)[0]
WAIT = 90.0  # seconds any one step may take on a loaded 2-core machine
EVERY_DAY = {day: ["08:00-20:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun", "holiday")}


def _pg(dbname: str) -> str:
    return SERVER.replace("postgresql+psycopg:", "postgresql:") + "/" + dbname


@pytest.fixture
def database():
    name = f"dxdesk_deploy_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(_pg("postgres"), autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE DATABASE {name}")
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server reachable at {SERVER} ({type(exc).__name__}): the deploy recipe needs one")
    yield f"{SERVER}/{name}"
    with psycopg.connect(_pg("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(check, what: str):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if (found := check()):
            return found
        time.sleep(0.1)
    raise AssertionError(f"not within {WAIT:.0f} s: {what}")


class HttpLineUser(LineUserDriver):
    """A LINE user whose events go to a real server over HTTP; the answer is what the fake LINE received."""

    def __init__(self, base: str, fake):
        super().__init__(None, None, fake)
        self.base, self.posted = base, 0

    def send(self, **body) -> list[dict]:
        before = len(self.fake.delivered(self.user))
        data = json.dumps({"destination": "Ubot", "events": [self.event(**body)]}).encode()
        request = urllib.request.Request(self.base + "/callback", data=data, headers={
            "Content-Type": "application/json", "X-Line-Signature": sign(data)})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        self.posted += 1
        _until(lambda: len(self.fake.delivered(self.user)) > before, f"an answer to {body.get('type', 'message')}")
        time.sleep(0.2)  # a second message of the same answer
        return [m for batch in self.fake.delivered(self.user)[before:] for m in batch]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def test_the_deploy_recipe_takes_a_whole_intake_and_booking_through_four_workers_and_a_scheduler(database, tmp_path):
    with FakeLineApi() as line, FakeGoogleCalendar() as gcal:
        config = tmp_path / "dxdesk.toml"
        hours = "\n".join(f'{day} = {json.dumps(ranges)}' for day, ranges in EVERY_DAY.items())
        config.write_text(textwrap.dedent("""
            [[coordinators]]
            id = "tanaka"
            name = "田中 一郎"
            calendar_id = "tanaka@example.jp"
            methods = ["visit", "online", "phone", "email"]
            slot_minutes = 60
            [coordinators.hours]
        """) + hours + "\n")
        key = gcal.write_service_account_key(tmp_path / "service-account.json")
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "DXDESK_DATABASE_URL": database, "DXDESK_CONFIG": str(config),
               "DXDESK_SECRET_KEY": "deploy-test", "LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": "token",
               "LINE_API_BASE_URL": line.base_url, "DXDESK_PUBLIC_URL": "https://dx-desk.example.jp",
               "GOOGLE_SERVICE_ACCOUNT_FILE": str(key), "GOOGLE_IMPERSONATE_USER": "dx@example.jp",
               "GOOGLE_CALENDAR_API_BASE_URL": gcal.api_url, "DXDESK_BIND": f"127.0.0.1:{port}",
               "DXDESK_WORKERS": "4"}
        upgrade = subprocess.run([BIN / "dxdesk", "db", "upgrade"], env=env, cwd=tmp_path, capture_output=True,
                                 text=True, timeout=120)
        assert upgrade.returncode == 0, upgrade.stderr
        logs = (tmp_path / "web.log").open("w"), (tmp_path / "scheduler.log").open("w")
        web = subprocess.Popen([BIN / "gunicorn", "-c", ROOT / "deploy" / "gunicorn.conf.py", "app:create_app()"],
                               env={**env, "PYTHONPATH": str(ROOT), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")},
                               cwd=tmp_path, stdout=logs[0], stderr=logs[0])
        scheduler = subprocess.Popen([BIN / "dxdesk", "scheduler"], env=env, cwd=tmp_path, stdout=logs[1],
                                     stderr=logs[1])
        try:
            _until(lambda: _get(base + "/healthz")[0] == 200, "gunicorn answering /healthz")
            user = HttpLineUser(base, line)
            receipt = line_intake(user, company="さつま商事", name="西郷 隆子", phone="099-286-2111",
                                  email="takako@example.jp", question="紙の請求書をやめてインボイス対応の会計ソフトにしたい")
            assert "受付番号" in receipt, receipt
            carousel = next(m for m in user.fake.delivered(user.user)[-1] if m.get("type") == "flex")
            slot = next(b["action"] for bubble in carousel["contents"]["contents"]
                        for b in bubble.get("body", {}).get("contents", []) if b.get("type") == "button")
            assert "ご予約が確定しました" in texts(user.book(slot["data"]))
            [event] = _until(lambda: gcal.events("tanaka@example.jp"), "the calendar event")

            listed = subprocess.run([BIN / "dxdesk", "consultations", "--json"], env=env, cwd=tmp_path,
                                    capture_output=True, text=True, timeout=60)
            [consultation] = json.loads(listed.stdout)
            assert consultation["booking"]["calendar_event_id"] == event["id"]

            status, metrics = _get(base + "/metrics")  # whichever worker answers adds up all four
            assert status == 200
            received = sum(float(line.split()[-1]) for line in metrics.splitlines()
                           if line.startswith('dxdesk_events_received_total{source="line"}'))
            assert received == user.posted
            body = json.loads(_get(base + "/healthz")[1])
            assert body["backlog"]["inbox"]["count"] == 0
        finally:
            for process in (web, scheduler):
                process.send_signal(signal.SIGTERM)
            for process in (web, scheduler):
                process.wait(timeout=30)
            for log in logs:
                log.close()
        lines = [json.loads(l) for l in (tmp_path / "web.log").read_text().splitlines() if l.startswith("{")]
        assert lines and all("request_id" in l for l in lines)
        assert not any("西郷" in l["message"] or "099-286-2111" in l["message"] for l in lines)

        backup_env = {**env, "DXDESK_BACKUP_DIR": str(tmp_path / "backups")}
        dump = subprocess.run([ROOT / "scripts" / "backup-db"], env=backup_env, capture_output=True, text=True,
                              timeout=120)
        assert dump.returncode == 0, dump.stderr
        drill = subprocess.run([ROOT / "scripts" / "restore-drill"], env=backup_env, capture_output=True, text=True,
                               timeout=120)
        assert drill.returncode == 0, drill.stderr
        assert "consultations 1" in drill.stdout and "restored and readable" in drill.stdout


def test_gunicorn_workers_take_one_inbox_thread_and_two_senders_each_unless_told_otherwise(monkeypatch):
    """Four processes of a single process's threads overloaded two cores (bench/README.md): the recipe's config
    lowers them for its workers, and an operator's own numbers still win."""
    env = {name: value for name, value in os.environ.items() if "_THREADS" not in name}
    monkeypatch.setattr(os, "environ", env)  # what the config sets stays in this test
    assert (Settings.from_env(env).inbox_threads, Settings.from_env(env).sender_threads) == (2, 4)  # dxdesk serve's

    runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))  # as gunicorn's master reads it, before the fork
    assert (Settings.from_env(env).inbox_threads, Settings.from_env(env).sender_threads) == (1, 2)

    env["DXDESK_INBOX_THREADS"] = "3"
    runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))
    assert Settings.from_env(env).inbox_threads == 3


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "33"])
def test_a_thread_count_that_is_not_one_to_thirty_two_stops_the_start_saying_why_in_japanese(value):
    with pytest.raises(ConfigError, match=f"DXDESK_SENDER_THREADS はスレッドの数（1 から 32 までの整数）.*{value}"):
        Settings.from_env({"DXDESK_SENDER_THREADS": value})
