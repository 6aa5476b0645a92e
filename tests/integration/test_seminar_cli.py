"""`dxdesk seminar add / list / attend` as operators run them: real processes over the test database."""
from __future__ import annotations

import json

import pytest

from storage.db import Database
from storage.models import Seminar, SeminarRegistration
from tests.helpers import add_registration
from tests.integration.test_cli import dxdesk

GOOD = ("--title", "DXはじめの一歩", "--start", "2030-01-10 14:00", "--end", "2030-01-10 16:00",
        "--onsite-seats", "30", "--online-seats", "60")


def add(database_url, *extra: str):
    return dxdesk("seminar", "add", *extra, env={"DXDESK_DATABASE_URL": database_url})


def listed(database_url) -> list[dict]:
    result = dxdesk("seminar", "list", "--json", env={"DXDESK_DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_seminar_added_is_listed_with_its_seats_in_tokyo_time(database_url):
    Database(database_url).upgrade()
    result = add(database_url, *GOOD, "--online-url", "https://meet.example.jp/dx", "--deadline", "2030-01-09 17:00",
                 "--subsidy-briefing", "--json")
    assert result.returncode == 0, result.stderr
    seminar_id = json.loads(result.stdout)["id"]
    [item] = listed(database_url)
    assert item["id"] == seminar_id and item["title"] == "DXはじめの一歩"
    assert item["start"] == "2030-01-10T14:00:00+09:00" and item["end"] == "2030-01-10T16:00:00+09:00"
    assert (item["onsite_seats"], item["online_seats"], item["onsite_taken"], item["online_taken"], item["waiting"]) \
        == (30, 60, 0, 0, 0)


def test_the_list_counts_seats_taken_per_mode_and_the_waiting_list(database_url):
    db = Database(database_url)
    db.upgrade()
    seminar_id = json.loads(add(database_url, *GOOD, "--json").stdout)["id"]
    add_registration(db, seminar_id, "U1", mode="onsite")
    add_registration(db, seminar_id, "U2", mode="onsite", status="attended")
    add_registration(db, seminar_id, "U3", mode="online")
    add_registration(db, seminar_id, "U4", mode="online", status="cancelled")
    add_registration(db, seminar_id, "U5", mode="onsite", status="waiting")
    [item] = listed(database_url)
    assert (item["onsite_taken"], item["online_taken"], item["waiting"]) == (2, 1, 1)
    text = dxdesk("seminar", "list", env={"DXDESK_DATABASE_URL": database_url}).stdout
    assert "2030年1月10日(木) 14:00〜16:00" in text and "2/30" in text and "1/60" in text


@pytest.mark.parametrize("change, said", [
    ({"--end": "2030-01-10 13:00"}, "終了日時は開始日時より後にしてください"),
    ({"--onsite-seats": "-1"}, "定員は0以上"),
    ({"--onsite-seats": "0", "--online-seats": "0"}, "両方0です"),
    ({"--deadline": "2030-01-10 15:00"}, "申込締切は開始日時より前に"),
    ({"--start": "2020-01-10 14:00", "--end": "2020-01-10 16:00"}, "開始日時が過ぎています"),
    ({"--online-url": "meet.example.jp/dx"}, "http:// か https://"),
    ({"--online-url": "javascript:alert(1)"}, "http:// か https://"),
    ({"--start": "2030/01/10 14:00"}, "YYYY-MM-DD HH:MM"),
    ({"--title": "  "}, "タイトルを入れてください"),
])
def test_a_seminar_that_cannot_work_is_refused_in_japanese_and_nothing_is_added(database_url, change, said):
    Database(database_url).upgrade()
    args = list(GOOD)
    for flag, value in change.items():
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    result = add(database_url, *args)
    assert result.returncode == 2 and said in result.stderr, result.stderr
    assert listed(database_url) == []


def test_attend_marks_one_registration_once_and_says_so_the_second_time(database_url):
    db = Database(database_url)
    db.upgrade()
    seminar_id = json.loads(add(database_url, *GOOD, "--json").stdout)["id"]
    registration, _ = add_registration(db, seminar_id, "U1")
    env = {"DXDESK_DATABASE_URL": database_url}
    first = dxdesk("seminar", "attend", str(seminar_id), "--registration", str(registration), env=env)
    assert first.returncode == 0 and "出席にしました" in first.stdout, first.stderr
    again = dxdesk("seminar", "attend", str(seminar_id), "--registration", str(registration), env=env)
    assert again.returncode == 0 and "すでに出席" in again.stdout
    with db.unit_of_work() as s:
        row = s.get(SeminarRegistration, registration)
        assert row.status == "attended" and row.attended_by == "cli" and row.attended_at is not None


def test_attend_by_user_and_all_registered_leave_waiting_and_cancelled_people_alone(database_url):
    db = Database(database_url)
    db.upgrade()
    seminar_id = json.loads(add(database_url, *GOOD, "--json").stdout)["id"]
    ids = {user: add_registration(db, seminar_id, user, status=status)[0]
           for user, status in (("U1", "registered"), ("U2", "registered"), ("U3", "waiting"), ("U4", "cancelled"))}
    env = {"DXDESK_DATABASE_URL": database_url}
    by_user = dxdesk("seminar", "attend", str(seminar_id), "--user", "U1", env=env)
    assert by_user.returncode == 0, by_user.stderr
    waiting = dxdesk("seminar", "attend", str(seminar_id), "--user", "U3", env=env)
    assert waiting.returncode == 2 and "キャンセル待ちのため、出席にできません" in waiting.stderr
    everyone = dxdesk("seminar", "attend", str(seminar_id), "--all-registered", env=env)
    assert everyone.returncode == 0 and "出席にしました: 1名" in everyone.stdout
    with db.unit_of_work() as s:
        assert {u: s.get(SeminarRegistration, i).status for u, i in ids.items()} == \
            {"U1": "attended", "U2": "attended", "U3": "waiting", "U4": "cancelled"}


@pytest.mark.parametrize("args, said", [
    (["999", "--all-registered"], "セミナー（ID 999）は見つかりません"),
    (["{id}", "--registration", "999"], "指定されたお申し込みは見つかりません"),
    (["{id}", "--user", "U-nobody"], "指定されたお申し込みは見つかりません"),
])
def test_attend_for_something_unknown_is_refused_kindly(database_url, args, said):
    Database(database_url).upgrade()
    seminar_id = json.loads(add(database_url, *GOOD, "--json").stdout)["id"]
    result = dxdesk("seminar", "attend", *[a.format(id=seminar_id) for a in args],
                    env={"DXDESK_DATABASE_URL": database_url})
    assert result.returncode == 2 and said in result.stderr, result.stderr


def test_attend_needs_exactly_one_way_of_saying_who(database_url):
    result = dxdesk("seminar", "attend", "1", env={"DXDESK_DATABASE_URL": database_url})
    assert result.returncode == 2 and "--registration" in result.stderr


def test_a_seminar_names_a_configured_survey_or_is_refused(database_url):
    Database(database_url).upgrade()
    result = add(database_url, *GOOD, "--survey", "dx-basic", "--json")
    assert result.returncode == 2 and "seminar" in result.stderr and "dx-basic" in result.stderr, result.stderr
    result = add(database_url, *GOOD, "--survey", "seminar", "--json")
    assert result.returncode == 0, result.stderr
    with Database(database_url).unit_of_work() as s:
        assert s.get(Seminar, json.loads(result.stdout)["id"]).survey_id == "seminar"
