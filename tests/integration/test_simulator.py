"""The simulator's API over the real server on loopback: bad input is refused kindly and leaves nothing behind."""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from dataclasses import replace

import pytest
from werkzeug.serving import make_server

from app import create_app

HELLO = {"type": "message", "message": {"type": "text", "text": "こんにちは"}}

MALFORMED = [
    pytest.param(b"{not json", "application/json", id="not-json"),
    pytest.param(b"user=sim-a&event=follow", "application/x-www-form-urlencoded", id="form"),
    pytest.param([HELLO], None, id="array"),
    pytest.param({"user": "sim-a"}, None, id="no-event"),
    pytest.param({"user": "sim-a", "event": "follow"}, None, id="event-string"),
    pytest.param({"user": "sim-a", "event": {"type": "beacon"}}, None, id="unknown-type"),
    pytest.param({"user": "sim-a", "event": {"type": "message", "message": "こんにちは"}}, None, id="message-string"),
    pytest.param({"user": "sim-a", "event": {"type": "message", "message": {"type": "text", "text": ["あ"]}}}, None,
                 id="text-list"),
    pytest.param({"user": "sim-a", "event": {"type": "message", "message": {"type": "image"}}}, None, id="image"),
    pytest.param({"user": "sim-a", "event": {"type": "postback", "postback": "action=consult"}}, None,
                 id="postback-string"),
    pytest.param({"user": "sim-a", "event": {"type": "postback", "postback": {"data": 1}}}, None, id="data-number"),
    pytest.param({"user": "sim-a", "event": {"type": "postback", "postback": {"data": "a", "params": "x"}}}, None,
                 id="params-string"),
    pytest.param({"user": "sim-a", "event": {"type": "postback", "postback": {"data": "a", "params": {"evil": "1"}}}},
                 None, id="params-unknown"),
    pytest.param({"user": "sim-a", "event": {"type": "postback", "postback": {"data": "a"}, "displayText": 3}}, None,
                 id="display-number"),
    pytest.param({"user": 7, "event": HELLO}, None, id="user-number"),
]


@pytest.fixture
def server(settings, clock):
    """The whole app with its inbox workers running, served by werkzeug's threaded server on a loopback port."""
    app = create_app(replace(settings, start_workers=True), clock=clock)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join()
    app.extensions["dxdesk"].inbox.stop()
    app.extensions["dxdesk"].db.dispose()


def call(base: str, body, content_type: str | None = None) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}/simulator/api/send", data=data,
                                     headers={"Content-Type": content_type or "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


def out_texts(answer: dict) -> str:
    return "\n".join(m["message"].get("text", "") for m in answer["messages"] if m["direction"] == "out")


@pytest.mark.parametrize("body, content_type", MALFORMED)
def test_malformed_simulator_input_gets_400_with_a_japanese_message(server, body, content_type):
    status, answer = call(server, body, content_type)

    assert status == 400
    assert "送信内容を読み取れませんでした" in answer["error"] or "ユーザーID" in answer["error"]


def test_a_huge_text_is_refused_with_the_limit_named(server):
    status, answer = call(server, {"user": "sim-a", "event": {"type": "message",
                                                              "message": {"type": "text", "text": "あ" * 5001}}})

    assert status == 400
    assert answer["error"] == "メッセージが長すぎます。5000文字以内でお送りください。"


def test_after_many_malformed_requests_normal_requests_still_work(server):
    assert call(server, {"user": "sim-a", "event": {"type": "follow"}})[0] == 200
    for n in range(3):
        for param in MALFORMED:
            body, content_type = param.values
            assert call(server, body, content_type)[0] == 400, param.id

    for user in ("sim-a", "sim-b"):
        status, answer = call(server, {"user": user, "event": HELLO})
        assert status == 200, answer
        assert out_texts(answer)
