"""The `dxdesk` command as operators run it: real processes, the database given by DXDESK_DATABASE_URL."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import unicodedata
import urllib.request
from pathlib import Path

import pytest
from alembic import command as alembic

from storage.db import Database, alembic_config
from storage.models import Consultation
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
                "status", "question", "booking", "origin"):
        assert key in c
    assert c["channel"] == "line" and c["origin"] == "menu" and c["company"] == "鹿屋商店" and c["municipality"] == "鹿屋市"
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


def test_triage_answers_one_json_line_per_input_line_from_stdin_and_null_for_a_blank_one():
    result = dxdesk("triage", "--json", stdin="紙の請求書をやめたい\n\nウイルスに感染したかも\n  \n")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line and line["category"] for line in lines] == ["efficiency", None, "security", None]
    assert set(lines[0]) == {"category", "confidence", "keywords", "suggestions"}
    assert 0 <= lines[0]["confidence"] <= 1
    assert "2行目は空のため分類しませんでした" in result.stderr and "4行目" in result.stderr


def test_triage_text_mode_answers_a_blank_line_with_an_empty_line():
    result = dxdesk("triage", stdin="\n紙の請求書をやめたい\n")
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.split("\n")[:2]
    assert first == "" and second.startswith("efficiency\t")
    assert "1行目は空" in result.stderr


@pytest.mark.parametrize("blank", ["", "  "])
def test_triage_refuses_a_blank_message_argument_in_japanese(blank):
    result = dxdesk("triage", blank)
    assert result.returncode == 2 and result.stdout == ""
    assert "相談文が空です" in result.stderr


def test_triage_takes_one_message_as_an_argument():
    result = dxdesk("triage", "IT導入補助金を使いたい", "--json")
    assert json.loads(result.stdout)["category"] == "subsidy"


def test_users_add_reads_the_password_from_stdin(database_url):
    env = {"DXDESK_DATABASE_URL": database_url}
    assert dxdesk("db", "upgrade", env=env).returncode == 0
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


def without_database_url() -> dict:
    """The environment of an operator who set no DXDESK_DATABASE_URL (the default path is relative to the folder)."""
    env = {name: value for name, value in os.environ.items() if name != "DXDESK_DATABASE_URL"}
    return {**env, "PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize("command", [["consultations"], ["users", "add", "sato", "--role", "viewer"], ["users", "list"],
                                     ["outbox"], ["slots"], ["popup", "list"], ["scheduler"]])
def test_a_command_run_from_another_folder_says_where_it_looked_and_creates_no_database(tmp_path, command):
    result = subprocess.run([sys.executable, "-c", "import app, sys; sys.exit(app.main())", *command],
                            input="correct horse battery\n", capture_output=True, text=True, timeout=120,
                            cwd=tmp_path, env=without_database_url())

    assert result.returncode == 2, result.stdout + result.stderr
    assert str(tmp_path / "var" / "dxdesk.sqlite3") in result.stderr
    assert "DXDESK_DATABASE_URL" in result.stderr and "見つかりません" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "var").exists()


def test_a_database_behind_the_migrations_is_refused_until_db_upgrade_is_run(tmp_path):
    url = f"sqlite:///{tmp_path}/old.sqlite3"
    alembic.upgrade(alembic_config(url), "0002")
    env = {"DXDESK_DATABASE_URL": url}

    behind = dxdesk("consultations", env=env)
    assert behind.returncode == 2 and "dxdesk db upgrade" in behind.stderr and "Traceback" not in behind.stderr

    assert dxdesk("db", "upgrade", env=env).returncode == 0
    current = dxdesk("consultations", env=env)
    assert current.returncode == 0 and "記録された相談はありません" in current.stdout


def test_users_list_shows_logins_and_roles_but_no_passwords(database_url):
    env = {"DXDESK_DATABASE_URL": database_url}
    assert dxdesk("db", "upgrade", env=env).returncode == 0
    for login, role in (("yamada", "admin"), ("suzuki", "viewer")):
        assert dxdesk("users", "add", login, "--role", role, env=env, stdin="correct horse battery\n").returncode == 0

    shown = dxdesk("users", "list", env=env)
    listed = json.loads(dxdesk("users", "list", "--json", env=env).stdout)

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["ログインID", "役割", "登録日", "コーディネーター"]
    assert lines[1].split()[:2] == ["suzuki", "閲覧のみ（viewer）"] and lines[2].split()[:2] == ["yamada", "管理者（admin）"]
    assert [(u["login"], u["role"]) for u in listed] == [("suzuki", "viewer"), ("yamada", "admin")]
    assert "correct horse" not in shown.stdout + json.dumps(listed) and "scrypt" not in shown.stdout + json.dumps(listed)


def test_users_passwd_sets_a_new_password_read_from_stdin(database_url):
    env = {"DXDESK_DATABASE_URL": database_url}
    assert dxdesk("db", "upgrade", env=env).returncode == 0
    assert dxdesk("users", "add", "suzuki", "--role", "coordinator", env=env, stdin="old password 1\n").returncode == 0

    changed = dxdesk("users", "passwd", "suzuki", env=env, stdin="new password 2\n")
    short = dxdesk("users", "passwd", "suzuki", env=env, stdin="short\n")
    unknown = dxdesk("users", "passwd", "nobody", env=env, stdin="new password 3\n")

    assert changed.returncode == 0 and "suzuki" in changed.stdout, changed.stderr
    assert short.returncode == 2 and "8文字" in short.stderr
    assert unknown.returncode == 2 and "nobody" in unknown.stderr and "登録されていません" in unknown.stderr
    db = Database(database_url)
    assert authenticate(db, "suzuki", "new password 2").role == "coordinator"
    assert authenticate(db, "suzuki", "old password 1") is None
    db.dispose()


def cells(text: str) -> int:
    """How many terminal cells `text` takes (East Asian wide characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def test_consultations_text_shows_japanese_names_in_columns_aligned_on_screen(client, services, database_url):
    complete_intake(client)
    with services.db.unit_of_work() as s:
        s.add(Consultation(received_at=services.clock.now(), channel="line", company="ABC", category="efficiency",
                           method="visit", status="in_progress", question="紙を減らしたい"))
        s.commit()

    result = dxdesk("consultations", env={"DXDESK_DATABASE_URL": database_url})

    assert result.returncode == 0, result.stderr
    header, sales, paper = result.stdout.splitlines()
    assert "EC・Web集客・販路開拓" in sales and "電話" in sales and "受付" in sales and sales.endswith("鹿屋商店")
    assert "業務効率化・ペーパーレス" in paper and "訪問" in paper and "対応中" in paper and paper.endswith("ABC")
    assert not {"sales", "phone", "received", "efficiency", "visit", "in_progress"} & set(result.stdout.split())
    # Each column starts at the same screen position on every line.
    for heading, values in (("方法", ("電話", "訪問")), ("状態", ("受付", "対応中")), ("会社名", ("鹿屋商店", "ABC"))):
        starts = {cells(line[:line.index(value)]) for line, value in zip((header, sales, paper), (heading, *values))}
        assert len(starts) == 1, (heading, starts)


def slots_config(tmp_path: Path) -> Path:
    config = tmp_path / "weekend.toml"
    config.write_text(SATURDAY_AND_HOLIDAY)
    return config


def test_slots_on_a_holiday_print_the_heading_once_and_the_hours_under_it(tmp_path):
    config = slots_config(tmp_path)
    result = dxdesk("slots", "--from", "2026-11-21", "--days", "3", env=slots_env(config, tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    at = lines.index("11月23日(月・祝 勤労感謝の日)")
    assert lines[at + 1] == "  15:00〜16:00  祝日 担当（holiday）"


def test_slots_into_a_pipe_whose_reader_has_gone_end_without_a_traceback(tmp_path):
    env = {**os.environ, **slots_env(slots_config(tmp_path), tmp_path)}
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `| head` does once it has its lines
    try:
        result = subprocess.run([sys.executable, "-c", "import app, sys; sys.exit(app.main())", "slots", "--from",
                                 "2026-11-21", "--days", "3"], stdout=write_end, stderr=subprocess.PIPE, text=True,
                                timeout=120, cwd=ROOT, env=env)
    finally:
        os.close(write_end)
    assert result.returncode != 0 and result.stderr == ""


def test_slots_for_an_unknown_coordinator_is_an_error_naming_the_known_ones(tmp_path):
    env = slots_env(slots_config(tmp_path), tmp_path)
    for extra in ((), ("--json",)):
        result = dxdesk("slots", "--coordinator", "nobody", *extra, env=env)
        assert result.returncode == 2 and result.stdout == ""
        assert "nobody" in result.stderr and "weekend" in result.stderr and "holiday" in result.stderr
        assert "空いている枠はありません" not in result.stderr


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
        assert {k: health[k] for k in ("status", "database", "line", "calendar")} == {
            "status": "ok", "database": "ok", "line": "simulator", "calendar": "local"}
        assert health["backlog"]["inbox"] == {"count": 0, "oldest_age_seconds": None}
        assert (tmp_path / "var" / "dxdesk.sqlite3").exists()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/simulator", timeout=5) as r:
            assert "シミュレーター" in r.read().decode() or r.status == 200
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0]
    assert proc.returncode == 0, output  # SIGTERM stops it cleanly: the requests in hand finish, the workers stop
    assert f"http://127.0.0.1:{port}/simulator" in output
    assert "dxdesk users add" in output  # a fresh database has no staff user yet: say how to make one


@pytest.mark.parametrize("simulator, shown", [("", False), ("on", True)])
def test_serve_in_line_mode_names_the_simulator_only_when_it_is_enabled(tmp_path, simulator, shown):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DXDESK_DATABASE_URL": f"sqlite:///{tmp_path}/line.sqlite3",
           "LINE_CHANNEL_SECRET": "secret", "LINE_CHANNEL_ACCESS_TOKEN": "token", "DXDESK_SIMULATOR": simulator,
           "DXDESK_PUBLIC_URL": "https://dx-desk.example.jp", "LINE_API_BASE_URL": "http://127.0.0.1:9"}
    proc = subprocess.Popen([sys.executable, "-c", "import app, sys; sys.exit(app.main())", "serve", "--port", "0",
                             "--no-scheduler"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        printed = _wait_for_line(proc, "ヘルスチェック")
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    assert "LINE Webhook" in printed
    assert ("/simulator" in printed) is shown


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


def slots_env(config: Path, tmp_path: Path) -> dict:
    """The environment for `dxdesk slots` on a database created (once) with `dxdesk db upgrade`."""
    env = {"DXDESK_CONFIG": str(config), "DXDESK_DATABASE_URL": f"sqlite:///{tmp_path}/slots.sqlite3"}
    if not (tmp_path / "slots.sqlite3").exists():
        assert dxdesk("db", "upgrade", env=env).returncode == 0
    return env


def slots_json(config: Path, *args: str, tmp_path: Path) -> list[dict]:
    env = slots_env(config, tmp_path)
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
    shown = dxdesk("slots", "--from", "2026-11-21", "--days", "3", env=slots_env(config, tmp_path)).stdout
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
    assert dxdesk("db", "upgrade", env=env).returncode == 0
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
