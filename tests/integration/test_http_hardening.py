"""What every answer carries (security headers, no server versions) and kind errors instead of 500s (issue 7.7)."""
from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import replace

import pytest

from app import MAX_BODY, create_app
from storage.db import Database
from storage.staff import add_user
from tests.helpers import served_like_dxdesk_serve
from tests.integration.test_console import PASSWORD, add_consultation, csrf, sign_in

PAGES = ["/simulator", "/privacy", "/admin/login", "/healthz", "/static/console.css", "/no-such-page"]


@pytest.mark.parametrize("path", PAGES)
def test_every_answer_carries_the_security_headers(client, path):
    headers = client.get(path).headers

    policy = headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in headers  # plain http: HSTS would mean nothing


@pytest.mark.parametrize(("trust_proxy", "base_url", "headers", "hsts"), [
    (False, "https://localhost", {}, True),
    (True, "http://localhost", {"X-Forwarded-Proto": "https"}, True),
    (False, "http://localhost", {"X-Forwarded-Proto": "https"}, False),
])
def test_hsts_is_sent_only_over_https(settings, clock, trust_proxy, base_url, headers, hsts):
    app = create_app(replace(settings, trust_proxy=trust_proxy), clock=clock)
    try:
        response = app.test_client().get("/simulator", base_url=base_url, headers=headers)
    finally:
        app.extensions["dxdesk"].db.dispose()

    assert ("max-age=31536000" == response.headers.get("Strict-Transport-Security")) == hsts


def test_the_served_app_names_no_server_or_python_version(app):
    with served_like_dxdesk_serve(app) as port:
        ok = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10)
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/no-such-page", timeout=10)

    for response in (ok, missing.value):
        assert response.headers.get_all("Server") == ["dxdesk"]


@pytest.mark.parametrize("size", [MAX_BODY + 1, 3 * MAX_BODY])
def test_a_body_over_the_limit_gets_the_apps_japanese_413_through_the_server(app, size):
    with served_like_dxdesk_serve(app) as port:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(_form_post(port, size), timeout=30)

    assert refused.value.code == 413
    assert "大きすぎ" in refused.value.read().decode()


def test_a_far_larger_body_is_cut_off_by_the_server_which_goes_on_serving(app):
    with served_like_dxdesk_serve(app) as port:
        with pytest.raises((urllib.error.URLError, ConnectionError)) as refused:  # 413, or reset while sending
            urllib.request.urlopen(_form_post(port, 8 * MAX_BODY), timeout=30)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as after:
            assert after.status == 200

    assert getattr(refused.value, "code", 413) == 413


def _form_post(port: int, size: int) -> urllib.request.Request:
    return urllib.request.Request(f"http://127.0.0.1:{port}/consult", data=b"company=" + b"x" * size,
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})


@pytest.mark.parametrize("path", [
    "/admin/consultations/99999999999999999999", "/admin/bookings/99999999999999999999",
    "/admin/consultations?page=99999999999999999999", "/admin/bookings?page=99999999999999999999",
])
def test_an_id_or_page_beyond_any_record_is_a_kind_404(client, services, path):
    sign_in(client, services)

    response = client.get(path)

    assert response.status_code == 404
    assert "見つかりません" in response.get_data(as_text=True) or "ページはありません" in response.get_data(as_text=True)


def test_a_control_character_in_an_address_is_a_kind_404(client, services):
    sign_in(client, services)

    assert client.get("/admin/conversations/sim-a%00").status_code == 404
    assert client.post("/admin/conversations/%00/reply", data={"csrf_token": csrf(client), "text": "こんにちは"}
                       ).status_code == 404


@pytest.mark.parametrize("path", ["/admin/consultations/99999999999999999999/status",
                                  "/admin/messages/99999999999999999999/resend"])
def test_a_post_to_an_id_beyond_any_record_is_a_kind_404(client, services, path):
    sign_in(client, services)

    assert client.post(path, data={"csrf_token": csrf(client), "status": "closed"}).status_code == 404


def test_a_page_number_in_other_digits_is_read_as_the_first_page(client, services):
    add_consultation(services)
    sign_in(client, services)

    assert client.get("/admin/consultations?page=²").status_code == 200


@pytest.mark.parametrize("day", ["0001-01-01", "1899-12-31"])
def test_a_list_from_a_date_out_of_range_is_a_kind_400(client, services, day):
    sign_in(client, services)

    response = client.get(f"/admin/bookings?from={day}")

    assert response.status_code == 400
    assert "1900年から9999年までの間で指定してください" in response.get_data(as_text=True)


@pytest.mark.parametrize("next_url", ["/admin\r\nSet-Cookie: planted=1", "/admin/%0d%0aX: 1", "/admin\n"])
def test_a_next_address_with_a_line_break_is_ignored_on_sign_in(client, services, next_url):
    add_user(services.db, "tanaka", PASSWORD, "coordinator", services.clock.now())
    assert client.get("/admin/login", query_string={"next": next_url}).status_code == 200

    response = client.post("/admin/login", data={"login": "tanaka", "password": PASSWORD, "next": next_url,
                                                 "csrf_token": csrf(client)})

    assert response.status_code == 302 and response.location == "/admin"


def test_an_unknown_address_is_a_kind_japanese_page(client):
    response = client.get("/no-such-page")

    assert response.status_code == 404 and response.mimetype == "text/html"
    text = response.get_data(as_text=True)
    assert "お探しのページは見つかりませんでした" in text and "Not Found" not in text


def test_an_api_caller_asking_for_json_gets_the_error_as_json(client):
    response = client.get("/simulator/api/nothing", headers={"Accept": "application/json"})

    assert response.status_code == 404
    assert "お探しのページは見つかりませんでした" in response.json["error"]


def test_a_wrong_method_is_a_kind_405_that_names_the_allowed_ones(client):
    response = client.get("/admin/logout")

    assert response.status_code == 405 and "POST" in response.headers["Allow"]
    assert "このページではその操作はできません" in response.get_data(as_text=True)


def test_a_server_failure_is_a_kind_japanese_500_that_shows_no_details(app, client, services):
    client.get("/admin/login")
    answering = services.db
    services.db = Database("postgresql+psycopg://postgres@127.0.0.1:1/nothing?connect_timeout=2")  # nothing listens
    try:
        response = client.post("/admin/login", data={"login": "tanaka", "password": PASSWORD,
                                                     "csrf_token": csrf(client)})
    finally:
        services.db.dispose()
        services.db = answering

    assert response.status_code == 500
    text = response.get_data(as_text=True)
    assert "サーバーで問題が起きたため" in text and "psycopg" not in text and "Traceback" not in text
    assert response.headers["Content-Security-Policy"]
