"""`dxdesk seminar registrations ID [--json]`: who registered, with the waiting list's order."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from storage.db import Database
from tests.helpers import add_registration
from tests.integration.test_cli import dxdesk
from tests.integration.test_seminar_cli import GOOD, add

AT = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def test_registrations_list_modes_statuses_and_waiting_positions(database_url):
    db = Database(database_url)
    db.upgrade()
    env = {"DXDESK_DATABASE_URL": database_url}
    seminar_id = json.loads(add(database_url, *GOOD, "--json").stdout)["id"]
    seated, _ = add_registration(db, seminar_id, "U1", mode="onsite", at=AT)
    second, _ = add_registration(db, seminar_id, "U2", mode="onsite", status="waiting", at=AT + timedelta(minutes=5))
    first, _ = add_registration(db, seminar_id, "U3", mode="onsite", status="waiting", at=AT + timedelta(minutes=1))
    online, _ = add_registration(db, seminar_id, "U4", mode="online", status="waiting", at=AT + timedelta(minutes=9))
    result = dxdesk("seminar", "registrations", str(seminar_id), "--json", env=env)
    assert result.returncode == 0, result.stderr
    items = {i["id"]: i for i in json.loads(result.stdout)}
    assert {k: items[seated][k] for k in ("user", "mode", "status", "waiting_position")} == \
        {"user": "U1", "mode": "onsite", "status": "registered", "waiting_position": None}
    assert (items[first]["waiting_position"], items[second]["waiting_position"], items[online]["waiting_position"]) \
        == (1, 2, 1)
    text = dxdesk("seminar", "registrations", str(seminar_id), env=env).stdout
    assert "キャンセル待ち（2番目）" in text and "鹿屋商店" in text


def test_an_unknown_seminar_is_refused_in_japanese(database_url):
    Database(database_url).upgrade()
    result = dxdesk("seminar", "registrations", "999", env={"DXDESK_DATABASE_URL": database_url})
    assert result.returncode == 2 and "見つかりません" in result.stderr
