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
from tests.helpers import say, tap

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


@pytest.fixture(autouse=True)
def _no_inherited_line_channel(monkeypatch):
    for name in ("LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
