"""`dxdesk users add --coordinator`, `users link` and the coordinator in `users list`: real processes."""
from __future__ import annotations

import json

from storage.db import Database
from storage.models import StaffUser
from tests.integration.test_cli import dxdesk

PASSWORD = "correct horse battery\n"


def coordinator_of(database_url: str, login: str) -> str | None:
    db = Database(database_url)
    try:
        with db.unit_of_work() as s:
            return s.query(StaffUser.coordinator_id).filter_by(login=login).scalar()
    finally:
        db.dispose()


def test_a_login_is_added_as_a_coordinator_linked_unlinked_and_listed_with_it(database_url):
    env = {"DXDESK_DATABASE_URL": database_url}
    assert dxdesk("db", "upgrade", env=env).returncode == 0

    added = dxdesk("users", "add", "tanaka", "--role", "coordinator", "--coordinator", "tanaka", env=env, stdin=PASSWORD)
    plain = dxdesk("users", "add", "office", "--role", "admin", env=env, stdin=PASSWORD)
    assert added.returncode == plain.returncode == 0, added.stderr + plain.stderr
    assert "コーディネーター tanaka として" in added.stdout
    assert (coordinator_of(database_url, "tanaka"), coordinator_of(database_url, "office")) == ("tanaka", None)

    linked = dxdesk("users", "link", "office", "--coordinator", "yamashita", env=env)
    assert linked.returncode == 0 and "yamashita に結び付けました" in linked.stdout
    listed = {u["login"]: u["coordinator"] for u in json.loads(dxdesk("users", "list", "--json", env=env).stdout)}
    assert listed == {"office": "yamashita", "tanaka": "tanaka"}
    table = dxdesk("users", "list", env=env).stdout.splitlines()
    assert table[0].split()[-1] == "コーディネーター" and table[1].split()[-1] == "yamashita"

    unlinked = dxdesk("users", "link", "office", "--coordinator", "", env=env)
    assert unlinked.returncode == 0 and "外しました" in unlinked.stdout
    assert coordinator_of(database_url, "office") is None
    assert dxdesk("users", "list", env=env).stdout.splitlines()[1].split()[-1] == "—"


def test_an_unknown_coordinator_or_login_is_refused_in_japanese_and_changes_nothing(database_url):
    env = {"DXDESK_DATABASE_URL": database_url}
    assert dxdesk("db", "upgrade", env=env).returncode == 0
    assert dxdesk("users", "add", "office", "--role", "admin", env=env, stdin=PASSWORD).returncode == 0

    unknown_add = dxdesk("users", "add", "sato", "--role", "coordinator", "--coordinator", "sato", env=env, stdin=PASSWORD)
    unknown_link = dxdesk("users", "link", "office", "--coordinator", "nobody", env=env)
    no_login = dxdesk("users", "link", "nobody", "--coordinator", "tanaka", env=env)

    for result in (unknown_add, unknown_link, no_login):
        assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "コーディネーター「sato」は設定にありません" in unknown_add.stderr and "tanaka" in unknown_add.stderr
    assert "コーディネーター「nobody」は設定にありません" in unknown_link.stderr
    assert "ユーザー nobody は登録されていません" in no_login.stderr
    assert [u["login"] for u in json.loads(dxdesk("users", "list", "--json", env=env).stdout)] == ["office"]
    assert coordinator_of(database_url, "office") is None
