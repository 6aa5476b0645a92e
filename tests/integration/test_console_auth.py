"""Staff sign-in and sessions: lock-outs, the same answer for unknown logins, sessions that really end, password changes."""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from sqlalchemy import func, select

import storage.staff
from app import create_app
from storage.models import LoginThrottle, StaffSession
from storage.staff import add_user
from tests.integration.test_console import PASSWORD, csrf, page, post, sign_in

NEW_PASSWORD = "sakurajima-2027"


def attempt(client, login: str, password: str, address: str = "192.0.2.10"):
    client.get("/admin/login", environ_base={"REMOTE_ADDR": address})
    return client.post("/admin/login", data={"login": login, "password": password, "csrf_token": csrf(client)},
                       environ_base={"REMOTE_ADDR": address})


def signed_in(client) -> bool:
    return client.get("/admin").status_code == 200


# --- locking out repeated failures (issue 7.5) ----------------------------------------------------------

def test_five_wrong_passwords_lock_the_login_for_15_minutes_even_against_the_right_one(client, services, clock):
    add_user(services.db, "tanaka", PASSWORD, "coordinator", clock.now())
    for _ in range(4):
        assert attempt(client, "tanaka", "wrong-password").status_code == 401

    fifth = attempt(client, "tanaka", "wrong-password")
    right_at_once = attempt(client, "tanaka", PASSWORD)
    clock.advance(minutes=14, seconds=59)
    right_just_before = attempt(client, "tanaka", PASSWORD)
    clock.advance(seconds=1)
    right_after = attempt(client, "tanaka", PASSWORD)

    assert fifth.status_code == 401
    assert right_at_once.status_code == right_just_before.status_code == 429
    told = right_at_once.get_data(as_text=True)
    assert "ログインの失敗が続いたため" in told and "11月24日(火) 10:15以降" in told  # locked at 10:00 Tokyo
    assert int(right_at_once.headers["Retry-After"]) == 15 * 60
    assert right_after.status_code == 302 and signed_in(client)


def test_an_unknown_login_is_locked_and_answered_exactly_like_a_known_one(services, app, clock):
    add_user(services.db, "tanaka", PASSWORD, "coordinator", clock.now())
    answers = {}
    for login in ("tanaka", "nobody"):
        client = app.test_client()
        failures = [attempt(client, login, "wrong-password") for _ in range(5)]
        locked = attempt(client, login, PASSWORD)
        shown = re.sub(r'name="csrf_token" value="[^"]*"', "", locked.get_data(as_text=True))
        answers[login] = ([f.status_code for f in failures], locked.status_code, shown.replace(login, "LOGIN"))

    assert answers["tanaka"] == answers["nobody"]
    assert answers["nobody"][1] == 429


def test_a_burst_of_parallel_attempts_gets_no_more_than_five_tries(app, services, clock):
    add_user(services.db, "tanaka", PASSWORD, "coordinator", clock.now())
    clients = [app.test_client() for _ in range(12)]
    for client in clients:
        client.get("/admin/login")
    forms = [{"login": "tanaka", "password": "wrong-password", "csrf_token": csrf(client)} for client in clients]

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        codes = list(pool.map(lambda pair: pair[0].post("/admin/login", data=pair[1]).status_code,
                              zip(clients, forms)))

    assert sorted(codes) == [401] * 5 + [429] * 7


def test_a_success_before_the_fifth_failure_starts_the_count_again(client, services, clock):
    add_user(services.db, "tanaka", PASSWORD, "coordinator", clock.now())
    for _ in range(4):
        attempt(client, "tanaka", "wrong-password")
    assert attempt(client, "tanaka", PASSWORD).status_code == 302
    post(client, "/admin/logout")

    for _ in range(4):
        assert attempt(client, "tanaka", "wrong-password").status_code == 401
    assert attempt(client, "tanaka", PASSWORD).status_code == 302


def test_a_lock_holds_in_another_worker_and_after_a_restart(settings, app, services, clock):
    add_user(services.db, "tanaka", PASSWORD, "coordinator", clock.now())
    for _ in range(5):
        attempt(app.test_client(), "tanaka", "wrong-password")

    other = create_app(replace(settings), clock=clock)
    try:
        refused = attempt(other.test_client(), "tanaka", PASSWORD)
    finally:
        other.extensions["dxdesk"].db.dispose()

    assert refused.status_code == 429


def test_many_failures_from_one_address_make_that_address_wait_longer_and_longer(app, services, clock):
    add_user(services.db, "tanaka", PASSWORD, "coordinator", clock.now())
    client = app.test_client()
    for n in range(10):  # ten different logins: no login is locked, only the address counts up
        assert attempt(client, f"guess-{n}", "wrong-password").status_code == 401

    eleventh = attempt(client, "guess-10", "wrong-password")
    refused = attempt(client, "tanaka", PASSWORD)
    elsewhere = attempt(app.test_client(), "tanaka", PASSWORD, address="198.51.100.7")
    clock.advance(seconds=1)
    twelfth = attempt(client, "guess-11", "wrong-password")
    waits = [int(attempt(client, "tanaka", PASSWORD).headers["Retry-After"])]
    clock.advance(seconds=2)
    attempt(client, "guess-12", "wrong-password")
    waits.append(int(attempt(client, "tanaka", PASSWORD).headers["Retry-After"]))

    assert eleventh.status_code == 401 and refused.status_code == 429
    assert elsewhere.status_code == 302
    assert twelfth.status_code == 401 and waits == [2, 4]


def test_an_address_that_keeps_failing_waits_at_most_15_minutes_at_a_time(client, services, clock):
    for n in range(60):  # each attempt just as the wait before it ends, for fifteen hours
        with services.db.unit_of_work() as s:
            clock.set(max([clock.now(), *filter(None, s.scalars(select(LoginThrottle.locked_until)))]))
        assert attempt(client, f"guess-{n}", "wrong-password").status_code == 401

    assert int(attempt(client, "guess-60", "wrong-password").headers["Retry-After"]) == 15 * 60


def test_an_unknown_login_costs_the_same_password_hash_as_a_known_one(services, client, clock, monkeypatch):
    add_user(services.db, "tanaka", PASSWORD, "coordinator", clock.now())
    checked = []
    real_check = storage.staff.check_password_hash

    def counting_check(pwhash, password):
        checked.append(pwhash.split("$", 1)[0])  # the method and its cost, e.g. scrypt:32768:8:1
        return real_check(pwhash, password)

    monkeypatch.setattr(storage.staff, "check_password_hash", counting_check)
    attempt(client, "tanaka", "wrong-password")
    attempt(client, "nobody", "wrong-password")

    assert len(checked) == 2 and checked[0] == checked[1]


def test_a_login_with_a_control_character_is_simply_wrong(client, services, clock):
    add_user(services.db, "tanaka", PASSWORD, "coordinator", clock.now())

    assert attempt(client, "tan\x00aka", PASSWORD).status_code == 401


def test_head_with_a_form_body_does_not_sign_in(client, services, clock):
    add_user(services.db, "tanaka", PASSWORD, "coordinator", clock.now())

    response = client.open("/admin/login", method="HEAD", data={"login": "tanaka", "password": PASSWORD})

    assert response.status_code == 200
    assert not signed_in(client)


def test_the_throttle_keeps_no_typed_login_or_address_readable(client, services):
    attempt(client, "my-secret-password", "wrong-password", address="203.0.113.5")

    with services.db.unit_of_work() as s:
        keys = s.scalars(select(LoginThrottle.key)).all()
    assert len(keys) == 2 and not any("my-secret" in k or "203.0.113" in k for k in keys)


# --- sessions that end (issue 7.6) -----------------------------------------------------------------------

def test_a_session_cookie_saved_before_logout_no_longer_works_after_it(client, services):
    sign_in(client, services)
    saved = client.get_cookie("session").value

    post(client, "/admin/logout")
    client.set_cookie("session", saved)

    assert client.get("/admin").status_code == 302


def test_an_idle_session_ends_after_an_hour_but_use_keeps_it_alive(client, services, clock):
    sign_in(client, services)
    for _ in range(3):
        clock.advance(minutes=59)
        assert signed_in(client)

    clock.advance(hours=1)
    response = client.get("/admin")

    assert response.status_code == 302
    assert "ログインの有効期限が切れました" in client.get(response.location).get_data(as_text=True)
    with services.db.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(StaffSession)) == 0


def test_a_session_ends_after_twelve_hours_however_busy(client, services, clock):
    sign_in(client, services)
    for _ in range(12):
        clock.advance(minutes=59)
        assert signed_in(client)
    clock.advance(minutes=12)

    assert not signed_in(client)


def test_changing_the_password_ends_every_other_session_and_keeps_this_one(app, services):
    here, elsewhere = app.test_client(), app.test_client()
    sign_in(elsewhere, services, login="tanaka")
    attempt(here, "tanaka", PASSWORD)

    response = post(here, "/admin/password", current_password=PASSWORD, new_password=NEW_PASSWORD,
                    new_password_again=NEW_PASSWORD)

    assert response.status_code == 302
    assert "パスワードを変更しました" in page(here, response.location)
    assert not signed_in(elsewhere)
    assert attempt(app.test_client(), "tanaka", PASSWORD).status_code == 401
    assert attempt(app.test_client(), "tanaka", NEW_PASSWORD).status_code == 302


@pytest.mark.parametrize(("current", "new", "again", "said"), [
    ("wrong-password", NEW_PASSWORD, NEW_PASSWORD, "現在のパスワードが違います"),
    (PASSWORD, "short", "short", "8文字以上"),
    (PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x", "確認用と一致しません"),
])
def test_a_password_change_that_cannot_be_made_says_why_and_changes_nothing(client, services, current, new, again,
                                                                             said):
    sign_in(client, services, login="tanaka")

    response = post(client, "/admin/password", current_password=current, new_password=new, new_password_again=again)

    assert response.status_code == 400 and said in response.get_data(as_text=True)
    assert signed_in(client)
    assert attempt(client, "tanaka", PASSWORD).status_code == 302


def test_a_viewer_may_change_their_own_password(client, services):
    sign_in(client, services, role="viewer", login="yamada")
    assert "パスワードの変更" in page(client, "/admin/password")

    response = post(client, "/admin/password", current_password=PASSWORD, new_password=NEW_PASSWORD,
                    new_password_again=NEW_PASSWORD)

    assert response.status_code == 302 and signed_in(client)


@pytest.mark.parametrize(("trust_proxy", "base_url", "headers", "secure"), [
    (False, "http://localhost", {}, False),
    (False, "https://localhost", {}, True),
    (True, "http://localhost", {"X-Forwarded-Proto": "https"}, True),
    (False, "http://localhost", {"X-Forwarded-Proto": "https"}, False),  # a proxy header nobody vouches for
])
def test_the_session_cookie_is_secure_whenever_the_console_is_reached_over_https(settings, clock, trust_proxy,
                                                                                  base_url, headers, secure):
    app = create_app(replace(settings, trust_proxy=trust_proxy), clock=clock)
    try:
        response = app.test_client().get("/admin/login", base_url=base_url, headers=headers)
    finally:
        app.extensions["dxdesk"].db.dispose()

    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("session=") and "HttpOnly" in cookie
    assert ("Secure" in cookie) == secure
