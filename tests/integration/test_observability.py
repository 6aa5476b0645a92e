"""What operators watch: /metrics in Prometheus format, and log lines as JSON with a request id on each."""
from __future__ import annotations

import io
import json
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from handlers import logs
from tests.helpers import LineUserDriver

PHRASE = "ひばり色の合言葉"  # typed by the user: never in a metric or a log line


def samples(client) -> dict[tuple, float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert PHRASE not in text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_events_processing_sends_and_latency_of_a_real_webhook(line_app, fake):
    client = line_app.test_client()
    before = samples(client)
    LineUserDriver(client, line_app, fake).say(f"こんにちは {PHRASE}")
    after = samples(client)

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("dxdesk_events_received_total", source="line") == 1
    assert grew("dxdesk_events_processed_total", result="done") == 1
    assert grew("dxdesk_sends_total", channel="line", result="sent") >= 1
    assert grew("dxdesk_webhook_ack_seconds_count") == 1
    assert grew("dxdesk_event_seconds_count") == 1
    assert after[("dxdesk_database_up", ())] == 1
    assert after[("dxdesk_backlog_items", (("queue", "inbox"),))] == 0


def test_metrics_show_the_backlog_waiting_and_its_age(line_app, fake, clock):
    client = line_app.test_client()
    services = line_app.extensions["dxdesk"]
    driver = LineUserDriver(client, line_app, fake)
    from tests.helpers import post
    assert post(client, {"destination": "Ubot", "events": [driver.event(
        message={"id": "1", "type": "text", "text": "a", "quoteToken": "q"})]}).status_code == 200
    clock.advance(seconds=40)  # not processed yet: no worker runs in tests until drained
    got = samples(client)
    assert got[("dxdesk_backlog_items", (("queue", "inbox"),))] == 1
    assert got[("dxdesk_backlog_oldest_age_seconds", (("queue", "inbox"),))] == 40
    services.inbox.drain()
    assert samples(client)[("dxdesk_backlog_items", (("queue", "inbox"),))] == 0


def test_metrics_still_answer_when_the_database_is_down(app, client):
    from storage.db import Database
    services = app.extensions["dxdesk"]
    answering, services.db = services.db, Database("postgresql+psycopg://postgres@127.0.0.1:1/x?connect_timeout=2")
    try:
        got = samples(client)
    finally:
        services.db.dispose()
        services.db = answering
    assert got[("dxdesk_database_up", ())] == 0


@pytest.fixture
def json_lines():
    """What the service's log handler writes, captured: the JSON formatter with the request-id filter."""
    stream = io.StringIO()
    handler = logs.handler(stream, json_format=True)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


def test_each_log_line_is_json_with_the_request_id_the_proxy_sent_back_on_the_response(app, client, json_lines):
    response = client.post("/admin/login", data={"login": "nobody", "password": "x", "csrf_token": "t"},
                           headers={"X-Request-Id": "req-1234"})
    assert response.headers["X-Request-Id"] == "req-1234"
    lines = [line for line in json_lines() if line["request_id"] == "req-1234"]
    assert lines, json_lines()
    assert {"time", "level", "logger", "message"} <= set(lines[0])


def test_the_served_access_line_carries_the_request_id_and_no_query_line_id_token_or_address(app, json_lines):
    import http.client

    from storage.logids import user_ref
    from tests.helpers import served_like_dxdesk_serve
    line_id = "U" + "4f" * 16
    with served_like_dxdesk_serve(app) as port:
        for n, path in enumerate(("/admin/consultations?q=099-777-8888", f"/admin/conversations/{line_id}",
                                  "/consult/done/MTI.secret-token", "/healthz", "/%E7%9B%B8%E8%AB%87?x=1")):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", path, headers={"X-Request-Id": f"req-access-{n}"})
            connection.getresponse().read()
            connection.close()

    access = {line["request_id"]: line["message"] for line in json_lines() if line["logger"] == "dxdesk.access"}
    assert access == {"req-access-0": '"GET /admin/consultations" 302',
                      "req-access-1": f'"GET /admin/conversations/{user_ref(line_id)}" 302',
                      "req-access-2": '"GET /consult/done/***" 404', "req-access-3": '"GET /healthz" 200',
                      "req-access-4": '"GET /%E7%9B%B8%E8%AB%87" 404'}


def test_a_request_without_a_sane_id_gets_a_fresh_one(client, json_lines):
    first = client.get("/healthz", headers={"X-Request-Id": "bad id <script>"}).headers["X-Request-Id"]
    second = client.get("/healthz").headers["X-Request-Id"]
    assert len(first) == 32 and first != second and " " not in first


def test_an_inbox_event_logs_under_its_own_id_and_an_exception_without_its_message(line_app, fake, json_lines):
    services = line_app.extensions["dxdesk"]
    services.conversations.handle_event = lambda *a: (_ for _ in ()).throw(ValueError(f"typed: {PHRASE}"))
    LineUserDriver(line_app.test_client(), line_app, fake).say(PHRASE)
    failed = [line for line in json_lines() if line.get("error") == "ValueError"]
    assert failed and failed[0]["request_id"].startswith("event-") and failed[0]["at"]
    assert all(PHRASE not in json.dumps(line, ensure_ascii=False) for line in json_lines())


def test_a_request_refused_before_the_app_is_answered_400_and_logged_without_its_request_line(app, json_lines):
    import socket

    from tests.helpers import served_like_dxdesk_serve
    with served_like_dxdesk_serve(app) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"GET /admin/consultations?q=099-777-8888 HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
            answer = raw.recv(4096)

    assert answer.startswith(b"HTTP/1.1 400")
    assert all("099-777-8888" not in line["message"] and "consultations" not in line["message"]
               for line in json_lines()), json_lines()
