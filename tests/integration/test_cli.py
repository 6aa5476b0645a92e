"""The `dxdesk` command as operators run it: real processes, the database given by DXDESK_DATABASE_URL."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from storage.db import Database
from storage.staff import authenticate
from tests.fakes.line_api import FakeLineApi
from tests.helpers import book, say, tap

ROOT = Path(__file__).resolve().parents[2]


def dxdesk(*args: str, env: dict | None = None, stdin: str | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import app, sys; sys.exit(app.main())", *args],
                          input=stdin, capture_output=True, text=True, timeout=120, cwd=cwd or ROOT,
                          env={**os.environ, **(env or {})})


def complete_intake(client, user="sim-cli"):
    tap(client, user, "action=consult")
    tap(client, user, "action=consent&v=2026-11")
    say(client, user, "インスタで集客したい。<b>HTML</b>も")
    tap(client, user, "action=yes")
    for answer in ("鹿屋商店", "卸売業・小売業", "3人", "鹿屋市", "大隅 太郎", "0994-31-1111", "スキップ"):
        say(client, user, answer)
    tap(client, user, "action=method&v=phone")
    tap(client, user, "action=submit")


def test_consultations_json_prints_what_the_contract_promises(client, database_url):
    complete_intake(client)
    result = dxdesk("consultations", "--json", env={"DXDESK_DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    [c] = json.loads(result.stdout)
    for key in ("id", "received_at", "channel", "company", "industry", "municipality", "category", "method",
                "status", "question", "booking"):
        assert key in c
    assert c["channel"] == "line" and c["company"] == "鹿屋商店" and c["municipality"] == "鹿屋市"
    assert c["category"] == "sales" and c["method"] == "phone" and c["booking"] is None
    assert c["question"] == "インスタで集客したい。<b>HTML</b>も"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+09:00", c["received_at"])


def test_consultations_since_filters_by_date(client, database_url):
    complete_intake(client)
    env = {"DXDESK_DATABASE_URL": database_url}
    assert json.loads(dxdesk("consultations", "--json", "--since", "2026-11-24", env=env).stdout) != []
    assert json.loads(dxdesk("consultations", "--json", "--since", "2026-11-25", env=env).stdout) == []
    bad = dxdesk("consultations", "--since", "yesterday", env=env)
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr


def test_triage_answers_one_json_object_per_line_from_stdin():
    result = dxdesk("triage", "--json", stdin="紙の請求書をやめたい\nウイルスに感染したかも\n\n")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["category"] for line in lines] == ["efficiency", "security", "other"]
    assert set(lines[0]) == {"category", "confidence", "keywords", "suggestions"}
    assert 0 <= lines[0]["confidence"] <= 1


def test_triage_takes_one_message_as_an_argument():
    result = dxdesk("triage", "IT導入補助金を使いたい", "--json")
    assert json.loads(result.stdout)["category"] == "subsidy"


def test_users_add_reads_the_password_from_stdin(database_url):
    env = {"DXDESK_DATABASE_URL": database_url}
    result = dxdesk("users", "add", "suzuki", "--role", "coordinator", env=env, stdin="correct horse battery\n")
    assert result.returncode == 0, result.stderr
    db = Database(database_url)
    assert authenticate(db, "suzuki", "correct horse battery").role == "coordinator"
    assert authenticate(db, "suzuki", "wrong") is None
    again = dxdesk("users", "add", "suzuki", "--role", "viewer", env=env, stdin="another password\n")
    assert again.returncode == 2 and "すでに" in again.stderr
    short = dxdesk("users", "add", "sato", "--role", "viewer", env=env, stdin="short\n")
    assert short.returncode == 2 and "8文字" in short.stderr
    db.dispose()


def test_db_upgrade_creates_the_schema(tmp_path):
    url = f"sqlite:///{tmp_path}/fresh.sqlite3"
    result = dxdesk("db", "upgrade", env={"DXDESK_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "fresh.sqlite3").exists()


def test_a_broken_config_file_is_reported_in_japanese(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[program\nname=")
    result = dxdesk("triage", "テスト", env={"DXDESK_CONFIG": str(broken)})
    assert result.returncode == 2 and "設定ファイル" in result.stderr


def test_line_richmenu_installs_the_menu_on_the_channel():
    with FakeLineApi() as fake:
        result = dxdesk("line", "richmenu", env={"LINE_CHANNEL_ACCESS_TOKEN": "token", "LINE_API_BASE_URL": fake.base_url})
        assert result.returncode == 0, result.stderr
        assert fake.default_rich_menu_id and fake.default_rich_menu_id in result.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_starts_on_the_embedded_defaults_and_prints_its_urls(tmp_path):
    port = _free_port()
    env = {**os.environ}
    for name in ("DXDESK_DATABASE_URL", "LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN", "DXDESK_CONFIG"):
        env.pop(name, None)
    proc = subprocess.Popen([sys.executable, "-c", "import app, sys; sys.exit(app.main())", "serve", "--port", str(port)],
                            cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        health = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    health = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.1)
        assert health == {"status": "ok", "database": "ok", "line": "simulator", "calendar": "local"}
        assert (tmp_path / "var" / "dxdesk.sqlite3").exists()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/simulator", timeout=5) as r:
            assert "シミュレーター" in r.read().decode() or r.status == 200
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0]
    assert f"http://127.0.0.1:{port}/simulator" in output
    assert "dxdesk users add" in output  # a fresh database has no staff user yet: say how to make one


@pytest.fixture(autouse=True)
def _no_inherited_line_channel(monkeypatch):
    for name in ("LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)


SATURDAY_AND_HOLIDAY = """
[[coordinators]]
id = "weekend"
name = "土曜 担当"
methods = ["online"]
[coordinators.hours]
mon = ["09:00-11:00"]
sat = ["10:00-12:00"]

[[coordinators]]
id = "holiday"
name = "祝日 担当"
methods = ["online"]
[coordinators.hours]
mon = ["13:00-14:00"]
holiday = ["15:00-16:00"]
"""


def slots_json(config: Path, *args: str, tmp_path: Path) -> list[dict]:
    env = {"DXDESK_CONFIG": str(config), "DXDESK_DATABASE_URL": f"sqlite:///{tmp_path}/slots.sqlite3"}
    result = dxdesk("slots", "--from", "2026-11-21", "--days", "3", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_saturday_and_a_public_holiday_appear_exactly_when_the_configuration_opens_them(tmp_path):
    config = tmp_path / "weekend.toml"
    config.write_text(SATURDAY_AND_HOLIDAY)
    got = [(s["coordinator"], s["start"]) for s in slots_json(config, tmp_path=tmp_path)]
    # Sat 11/21: only the coordinator with Saturday hours. Mon 11/23 is 勤労感謝の日: holiday hours only,
    # so neither Monday range (09:00, 13:00) is offered.
    assert got == [("weekend", "2026-11-21T10:00:00+09:00"), ("weekend", "2026-11-21T11:00:00+09:00"),
                   ("holiday", "2026-11-23T15:00:00+09:00")]
    config.write_text(SATURDAY_AND_HOLIDAY.replace('sat = ["10:00-12:00"]', "").replace('holiday = ["15:00-16:00"]', ""))
    assert slots_json(config, tmp_path=tmp_path) == []


def test_slots_filter_by_method_and_coordinator_and_print_in_japanese(tmp_path):
    config = tmp_path / "weekend.toml"
    config.write_text(SATURDAY_AND_HOLIDAY)
    assert slots_json(config, "--method", "visit", tmp_path=tmp_path) == []
    assert {s["coordinator"] for s in slots_json(config, "--coordinator", "holiday", tmp_path=tmp_path)} == {"holiday"}
    env = {"DXDESK_CONFIG": str(config), "DXDESK_DATABASE_URL": f"sqlite:///{tmp_path}/slots.sqlite3"}
    shown = dxdesk("slots", "--from", "2026-11-21", "--days", "3", env=env).stdout
    assert "11月23日(月・祝 勤労感謝の日)" in shown and "15:00〜16:00" in shown and "祝日 担当" in shown


def test_outbox_lists_the_reminders_of_a_booking(client, database_url):
    complete_intake(client, "sim-outbox")
    carousel = next(m for m in tap(client, "sim-outbox", "action=more_slots&start=2026-11-30")
                    if m.get("type") == "flex")
    first = carousel["contents"]["contents"][0]["body"]["contents"][0]["action"]["data"]
    book(client, "sim-outbox", first)
    result = dxdesk("outbox", "--json", env={"DXDESK_DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    assert [i["kind"] for i in items] == ["reminder_day_before", "reminder_hour_before"]
    assert all(i["status"] == "pending" and i["to"] == "sim-outbox" and i["ref"].startswith("booking:") for i in items)
    assert items[0]["due_at"].endswith("T18:00:00+09:00")


def _wait_for_line(proc: subprocess.Popen, phrase: str, lines: int = 50) -> str:
    """Read the process's output until `phrase` appears (bounded by a line count; the caller's timeout ends it)."""
    seen = ""
    for _ in range(lines):
        line = proc.stdout.readline()
        seen += line
        if phrase in line or not line:
            break
    return seen


def test_only_one_scheduler_runs_at_a_time(tmp_path):
    env = {**os.environ, "DXDESK_DATABASE_URL": f"sqlite:///{tmp_path}/sched.sqlite3", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", "import app, sys; sys.exit(app.main())", "scheduler"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    second = None
    try:
        assert "スケジューラーを開始しました" in _wait_for_line(first, "スケジューラーを開始しました")
        second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert "別のスケジューラーが動いています" in _wait_for_line(second, "別のスケジューラーが動いています")
        first.terminate()
        assert first.wait(timeout=20) == 0
        assert "スケジューラーを開始しました" in _wait_for_line(second, "スケジューラーを開始しました")
    finally:
        for proc in (first, second):
            if proc and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)
