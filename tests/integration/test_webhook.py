"""The LINE webhook end to end: signed events in, the inbox, the bot, and replies out to a real local fake of LINE."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from werkzeug.serving import make_server

from app import create_app
from bot.config import ConfigError
from storage.models import ConversationRow, InboxEvent, OutboundMessage
from storage.queries import consultations_as_json
from tests.fakes.line_api import FakeLineApi
from tests.helpers import SECRET, LineUserDriver, drain_through_retries, post, quick_labels, sign, texts

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "line" / "webhook-samples.json"
USER = LineUserDriver.USER
REPLY = "/v2/bot/message/reply"
PUSH = "/v2/bot/message/push"


@pytest.fixture
def fake():
    with FakeLineApi() as fake:
        yield fake


@pytest.fixture
def line_app(settings, clock, fake):
    app = create_app(replace(settings, line_channel_secret=SECRET, line_channel_access_token="token",
                             line_api_base_url=fake.base_url, public_base_url="https://dx-desk.example.jp"), clock=clock)
    yield app
    app.extensions["dxdesk"].stop()
    app.extensions["dxdesk"].db.dispose()


@pytest.fixture
def line_client(line_app):
    return line_app.test_client()


def test_a_full_intake_driven_only_by_signed_webhook_events_records_the_consultation(line_client, line_app, fake):
    u = LineUserDriver(line_client, line_app, fake)
    assert "同意して始める" in texts(u.send(type="follow"))
    assert "ご相談内容を自由に" in texts(u.tap("action=consent&v=2026-11"))
    assert "業務効率化・ペーパーレス" in texts(u.say("紙の請求書をやめたいが何から始めれば…"))
    assert "会社名" in texts(u.tap("action=yes"))
    assert "製造業" in quick_labels(u.say("有限会社さつま揚げ本舗"))
    u.tap("action=industry&v=製造業")
    u.say("8人")
    u.say("いちき串木野")
    u.say("薩摩 次郎")
    u.say("099-286-2111")
    u.say("jiro@example.jp")
    assert "ご相談内容の確認" in texts(u.tap("action=method&v=visit"))
    receipt = texts(u.tap("action=submit"))
    assert "受付番号：DX2026-00001" in receipt

    [c] = consultations_as_json(line_app.extensions["dxdesk"].db)
    assert c["channel"] == "line" and c["simulated"] is False
    assert (c["company"], c["municipality"], c["region"], c["category"], c["method"]) == (
        "有限会社さつま揚げ本舗", "いちき串木野市", "kagoshima", "efficiency", "visit")
    assert c["received_at"].endswith("+09:00")
    assert all(r.path == REPLY for r in fake.requests() if r.path.startswith("/v2/bot/message"))


def test_a_conversation_left_in_a_state_an_older_version_had_starts_afresh_and_is_saved_valid(line_client, line_app, fake):
    u = LineUserDriver(line_client, line_app, fake)
    u.tap("action=consent&v=2026-11")
    db, now = line_app.extensions["dxdesk"].db, line_app.extensions["dxdesk"].clock.now()
    put_aside = {"state": "ask_company", "data": {"question": "在庫管理"}, "at": now.isoformat()}
    with db.unit_of_work() as s:  # a step since removed from the flow, with its half-typed answers
        s.execute(update(ConversationRow).where(ConversationRow.user_id == u.user).values(
            state="ask_fax_number", data={"fax": "099-000"}, suspended=put_aside))
        s.commit()

    answer = u.say("こんにちは")

    assert "メッセージありがとうございます" in texts(answer) and "続きから" in quick_labels(answer)

    with db.reading() as s:
        row = s.get(ConversationRow, u.user)
        assert (row.state, "fax" in row.data) == ("idle", False)
        assert row.suspended == put_aside  # an intake put aside before stays resumable


def test_the_same_event_posted_five_times_concurrently_yields_one_reply(settings, clock, fake):
    app = create_app(replace(settings, line_channel_secret=SECRET, line_channel_access_token="token",
                             line_api_base_url=fake.base_url, start_workers=True, inbox_threads=3), clock=clock)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        import urllib.request
        event = LineUserDriver(None, app, fake).event(type="follow")
        body = json.dumps({"destination": "Ubot", "events": [event]}).encode()
        statuses: list[int] = []

        def deliver():
            request = urllib.request.Request(f"http://127.0.0.1:{server.server_port}/callback", data=body, headers={
                "Content-Type": "application/json", "X-Line-Signature": sign(body)})
            with urllib.request.urlopen(request, timeout=10) as response:
                statuses.append(response.status)

        posters = [threading.Thread(target=deliver) for _ in range(5)]
        for t in posters:
            t.start()
        for t in posters:
            t.join(timeout=15)
        assert statuses == [200] * 5
        services = app.extensions["dxdesk"]
        for _ in range(200):  # the workers are asynchronous: wait for them, boundedly
            with services.db.unit_of_work() as s:
                if s.scalar(select(func.count()).where(InboxEvent.status == "done")) == 1 and fake.requests(REPLY):
                    break
            threading.Event().wait(0.05)
        with services.db.unit_of_work() as s:
            assert s.scalar(select(func.count()).select_from(InboxEvent)) == 1
        assert len(fake.requests(REPLY)) == 1
        assert len(fake.delivered(USER)) == 1
    finally:
        server.shutdown()
        app.extensions["dxdesk"].stop()
        app.extensions["dxdesk"].db.dispose()


def test_every_real_webhook_sample_gets_200_and_is_processed_without_error(line_client, line_app):
    samples = json.loads(SAMPLES.read_text())
    assert post(line_client, samples).status_code == 200
    for n, event in enumerate(samples["events"]):
        one = {"destination": samples["destination"], "events": [{**event, "webhookEventId": f"SAMPLE{n}"}]}
        assert post(line_client, one).status_code == 200, event["type"]
    services = line_app.extensions["dxdesk"]
    services.inbox.drain()
    with services.db.unit_of_work() as s:
        statuses = dict(s.execute(select(InboxEvent.status, func.count()).group_by(InboxEvent.status)).all())
    assert statuses == {"done": len(samples["events"]) + 1}


@pytest.mark.parametrize("body, signature, status", [
    (b'{"destination":"U","events":[]}', "", 400),
    (b'{"destination":"U","events":[]}', "bm90IGEgc2lnbmF0dXJl", 400),
    (b"not json", None, 400),
    (b'{"destination":"U"}', None, 400),
    (b'{"destination":"U","events":{}}', None, 400),
    (b'{"destination":"U","events":[42]}', None, 400),
    (b'[]', None, 400),
    (b'{"destination":"U","events":[]}', None, 200),
    (b'{"destination":"U","events":[{"type":"somethingNew","mode":"active","timestamp":1,"webhookEventId":"01J0",'
     b'"deliveryContext":{"isRedelivery":false}}]}', None, 200),
])
def test_the_webhook_answers_each_kind_of_body_as_line_expects(line_client, body, signature, status):
    assert post(line_client, body, signature).status_code == status


def test_a_body_over_one_megabyte_is_refused_with_413(line_client):
    body = json.dumps({"destination": "U", "events": [], "pad": "x" * (1024 * 1024)}).encode()
    assert post(line_client, body).status_code == 413


def test_without_a_line_channel_the_webhook_answers_503(client):
    assert post(client, {"destination": "U", "events": []}).status_code == 503


def test_a_redelivered_event_is_processed_once(line_client, line_app, fake):
    u = LineUserDriver(line_client, line_app, fake)
    event = u.event(type="follow")
    for redelivery in (False, True, True):
        body = {"destination": "U", "events": [{**event, "deliveryContext": {"isRedelivery": redelivery}}]}
        assert post(line_client, body).status_code == 200
    line_app.extensions["dxdesk"].inbox.drain()
    assert len(fake.delivered(USER)) == 1


def test_a_reply_token_gone_stale_in_the_inbox_is_replaced_by_a_push_with_a_retry_key(line_client, line_app, fake, clock):
    u = LineUserDriver(line_client, line_app, fake)
    assert post(line_client, {"destination": "U", "events": [u.event(type="follow")]}).status_code == 200
    clock.advance(seconds=55)
    line_app.extensions["dxdesk"].inbox.drain()
    assert not fake.requests(REPLY)
    [push] = fake.requests(PUSH)
    uuid.UUID(push.headers["x-line-retry-key"])
    assert "友だち追加ありがとうございます" in texts(fake.delivered(USER))


def test_events_left_in_the_inbox_when_the_process_died_are_processed_after_restart(settings, clock, fake):
    configured = replace(settings, line_channel_secret=SECRET, line_channel_access_token="token",
                         line_api_base_url=fake.base_url)
    first = create_app(configured, clock=clock)
    u = LineUserDriver(first.test_client(), first, fake)
    events = [u.event(type="follow"), u.event(type="message", message={"id": "2", "type": "text", "text": "メニュー",
                                                                           "quoteToken": "q"})]
    assert post(first.test_client(), {"destination": "U", "events": events}).status_code == 200
    from handlers.inbox import claim_next
    assert claim_next(first.extensions["dxdesk"].db, clock.now()) is not None  # taken, then the process "dies"
    first.extensions["dxdesk"].db.dispose()

    second = create_app(configured, clock=clock)
    services = second.extensions["dxdesk"]
    assert services.inbox.drain() == 0  # the dead worker's lease still holds
    clock.advance(minutes=2)
    assert services.inbox.drain() == 2
    said = texts(fake.delivered(USER))
    assert "友だち追加" in said and "ご用件を選んでください" in said
    services.db.dispose()


def test_a_push_that_gets_500_500_200_is_delivered_once_with_one_retry_key(services_with_line, fake):
    services = services_with_line
    fake.script(PUSH, [500, 500, 200])
    with services.db.unit_of_work() as s:
        from storage.outbound import queue_messages
        [message_id] = queue_messages(s, "line", USER, [{"type": "text", "text": "お知らせ"}], services.clock.now())
        s.commit()
    services.delivery.send([message_id])
    keys = {r.headers["x-line-retry-key"] for r in fake.requests(PUSH)}
    assert len(fake.requests(PUSH)) == 3 and len(keys) == 1
    assert fake.delivered(USER) == [[{"type": "text", "text": "お知らせ"}]]
    with services.db.unit_of_work() as s:
        row = s.get(OutboundMessage, message_id)
        assert (row.status, row.retry_key) == ("sent", keys.pop())


@pytest.mark.parametrize("script, status, error", [
    ([400], "failed", "http_400"),
    ([403], "failed", "http_403"),
    ([429], "pending", "rate_limited"),
    ([500] * 4, "pending", "http_500"),
])
def test_a_push_that_does_not_go_through_is_kept_with_its_error(services_with_line, fake, script, status, error):
    services = services_with_line
    fake.script(PUSH, script)
    with services.db.unit_of_work() as s:
        from storage.outbound import queue_messages
        [message_id] = queue_messages(s, "line", USER, [{"type": "text", "text": "お知らせ"}], services.clock.now())
        s.commit()
    services.delivery.send([message_id])
    with services.db.unit_of_work() as s:
        row = s.get(OutboundMessage, message_id)
        assert (row.status, row.last_error) == (status, error)
        if status == "pending":
            assert row.next_attempt_at > services.clock.now()


def test_a_message_retried_later_goes_out_with_the_same_retry_key(services_with_line, fake, clock):
    services = services_with_line
    fake.script(PUSH, [500] * 4)
    with services.db.unit_of_work() as s:
        from storage.outbound import queue_messages
        [message_id] = queue_messages(s, "line", USER, [{"type": "text", "text": "お知らせ"}], clock.now())
        s.commit()
    services.delivery.send([message_id])
    assert services.delivery.send_due() == 0  # not yet: it backs off
    clock.advance(minutes=5)
    assert services.delivery.send_due() == 1
    assert len({r.headers["x-line-retry-key"] for r in fake.requests(PUSH)}) == 1
    assert len(fake.delivered(USER)) == 1


def test_a_message_that_keeps_failing_is_marked_failed_after_the_last_attempt(services_with_line, fake, clock):
    services = services_with_line
    fake.script(PUSH, [503] * 100)
    with services.db.unit_of_work() as s:
        from storage.outbound import queue_messages
        [message_id] = queue_messages(s, "line", USER, [{"type": "text", "text": "お知らせ"}], clock.now())
        s.commit()
    from handlers.delivery import MAX_ATTEMPTS
    services.delivery.send([message_id])
    for _ in range(MAX_ATTEMPTS):
        clock.advance(hours=1)
        services.delivery.send_due()
    with services.db.unit_of_work() as s:
        row = s.get(OutboundMessage, message_id)
        assert (row.status, row.attempts) == ("failed", MAX_ATTEMPTS)


@pytest.fixture
def services_with_line(line_app):
    services = line_app.extensions["dxdesk"]
    services.line._api.api_client.configuration.retries.backoff_factor = 0  # keep the SDK's own retries quick
    return services


def test_a_sticker_during_intake_gets_a_kind_answer_over_line(line_client, line_app, fake):
    u = LineUserDriver(line_client, line_app, fake)
    u.send(type="follow")
    u.tap("action=consent&v=2026-11")
    said = texts(u.send(message={"id": "5", "type": "sticker", "packageId": "446", "stickerId": "1988",
                                 "stickerResourceType": "STATIC", "quoteToken": "q"}))
    assert "文字でお答えください" in said and "ご相談内容" in said


def test_logs_carry_no_personal_data(line_client, line_app, fake, caplog):
    caplog.set_level("DEBUG")
    u = LineUserDriver(line_client, line_app, fake)
    u.send(type="follow")
    u.tap("action=consent&v=2026-11")
    u.say("個人的な悩みで090-9999-8888に電話ください")
    u.tap("action=yes")
    u.say("秘密商事")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("090-9999-8888", "秘密商事", "個人的な悩み"):
        assert secret not in logged


def test_a_message_the_bot_cannot_process_gets_an_apology_instead_of_silence(line_client, line_app, fake, monkeypatch):
    services = line_app.extensions["dxdesk"]

    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(services.conversations, "handle_event", broken)
    u = LineUserDriver(line_client, line_app, fake)
    u.say("こんにちは")
    drain_through_retries(services)
    said = texts([m for batch in fake.delivered(u.user) for m in batch])
    assert "うまく処理できませんでした" in said
    with services.db.unit_of_work() as s:
        assert s.scalar(select(InboxEvent.status)) == "failed"


def test_an_event_that_waited_in_a_backlog_shows_the_loading_animation_first(line_client, line_app, fake, clock):
    u = LineUserDriver(line_client, line_app, fake)
    assert post(line_client, {"destination": "U", "events": [u.event(type="follow")]}).status_code == 200
    line_app.extensions["dxdesk"].inbox.drain()
    assert not fake.requests("/v2/bot/chat/loading/start")  # answered at once: no animation
    assert post(line_client, {"destination": "U", "events": [u.event(type="message", message={
        "id": "9", "type": "text", "text": "メニュー", "quoteToken": "q"})]}).status_code == 200
    clock.advance(seconds=3)
    line_app.extensions["dxdesk"].inbox.drain()
    [loading] = fake.requests("/v2/bot/chat/loading/start")
    assert loading.body["chatId"] == USER


def test_behind_a_backlog_one_animation_covers_a_users_next_events_for_a_while(line_client, line_app, fake, clock):
    """Each of a backlog's events asking LINE for an animation would double the calls to LINE just when behind."""
    u = LineUserDriver(line_client, line_app, fake)
    for n in range(3):
        assert post(line_client, {"destination": "U", "events": [u.event(type="message", message={
            "id": str(n), "type": "text", "text": "メニュー", "quoteToken": "q"})]}).status_code == 200
    clock.advance(seconds=3)
    line_app.extensions["dxdesk"].inbox.drain()
    assert len(fake.requests("/v2/bot/chat/loading/start")) == 1
    assert len(fake.delivered(u.user)) == 3
    for n in range(3, 5):
        assert post(line_client, {"destination": "U", "events": [u.event(type="message", message={
            "id": str(n), "type": "text", "text": "メニュー", "quoteToken": "q"})]}).status_code == 200
    clock.advance(seconds=30)  # later, still behind: shown again
    line_app.extensions["dxdesk"].inbox.drain()
    assert len(fake.requests("/v2/bot/chat/loading/start")) == 2


def _to_contact_name(u: LineUserDriver) -> list[dict]:
    u.send(type="follow")
    u.tap("action=consent&v=2026-11")
    u.say("紙の請求書をやめたい")
    u.tap("action=yes")
    u.say("有限会社さつま揚げ本舗")
    u.tap("action=industry&v=製造業")
    u.say("8人")
    return u.say("いちき串木野")


def test_the_contact_name_question_proposes_the_line_display_name_and_the_user_confirms(line_client, line_app, fake):
    fake.profiles[USER] = "薩摩 花子"
    u = LineUserDriver(line_client, line_app, fake)
    asked = _to_contact_name(u)
    assert "「薩摩 花子」" in texts(asked) and "薩摩 花子で登録" in quick_labels(asked)
    u.tap("action=name")
    u.say("099-286-2111")
    u.tap("action=skip")
    u.tap("action=method&v=phone")
    u.tap("action=submit")
    [c] = consultations_as_json(line_app.extensions["dxdesk"].db)
    assert c["contact_name"] == "薩摩 花子"
    assert len(fake.requests(f"/v2/bot/profile/{USER}")) == 1  # read once, kept on the user's record


def test_a_calendar_search_shows_the_loading_animation_before_the_slots(line_client, line_app, fake):
    u = LineUserDriver(line_client, line_app, fake)
    _to_contact_name(u)
    for answer in ("薩摩 次郎", "099-286-2111", "jiro@example.jp"):
        u.say(answer)
    u.tap("action=method&v=online")
    assert not fake.requests("/v2/bot/chat/loading/start")  # typed answers are quick: no animation
    u.tap("action=submit")
    [loading] = fake.requests("/v2/bot/chat/loading/start")
    replies = [r for r in fake.requests() if r.path == REPLY]
    assert loading.body["chatId"] == USER and fake.requests().index(loading) < fake.requests().index(replies[-1])


@pytest.mark.parametrize("public_url", ["", "dx-desk.example.jp", "/", "ftp://dx-desk.example.jp", "https://",
                                        "https://dx-desk.example.jp/?a=1"])
def test_line_mode_without_an_absolute_public_url_refuses_to_start(settings, clock, fake, public_url):
    with pytest.raises(ConfigError, match="DXDESK_PUBLIC_URL"):
        create_app(replace(settings, line_channel_secret=SECRET, line_channel_access_token="token",
                           line_api_base_url=fake.base_url, public_base_url=public_url), clock=clock)


def test_dxdesk_serve_in_line_mode_without_a_public_url_says_why_and_exits(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": "token",
           "DXDESK_DATABASE_URL": f"sqlite:///{tmp_path}/dxdesk.sqlite3"}
    env.pop("DXDESK_PUBLIC_URL", None)
    result = subprocess.run([sys.executable, "-c", "import app, sys; sys.exit(app.main())", "serve", "--port", "0"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "DXDESK_PUBLIC_URL" in result.stderr and "Traceback" not in result.stderr


def test_a_new_friend_over_line_gets_the_greeting_with_an_absolute_privacy_link(line_client, line_app, fake):
    said = LineUserDriver(line_client, line_app, fake).send(type="follow")
    assert "同意して始める" in texts(said)
    uris = [a["uri"] for m in said for a in _actions(m) if a.get("type") == "uri"]
    assert uris == ["https://dx-desk.example.jp/privacy"]


def _actions(node):
    if isinstance(node, dict):
        if "type" in node and "label" in node:
            yield node
        for value in node.values():
            yield from _actions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _actions(value)


def _message(**fields) -> dict:
    return {"type": "message", "mode": "active", "timestamp": 1, "webhookEventId": uuid.uuid4().hex.upper(),
            "deliveryContext": {"isRedelivery": False}, "source": {"type": "user", "userId": USER},
            "replyToken": "r" * 32, "message": {"id": "1", "type": "text", "text": "こんにちは", "quoteToken": "q"},
            **fields}


@pytest.mark.parametrize("event", [
    {"type": "message"},
    {"type": "follow", "timestamp": 1, "mode": "active"},
    {"type": "somethingNew"},
    {k: v for k, v in _message().items() if k != "webhookEventId"},
    _message(timestamp="yesterday"),
    _message(mode="sleepy"),
    _message(message={"type": "text", "id": "1"}),
    _message(message="こんにちは"),
    {**_message(type="postback", postback="action=menu"), "message": None},
], ids=lambda e: json.dumps(e)[:60])
def test_a_signed_event_without_what_every_line_event_has_is_refused_and_not_stored(line_client, line_app, event):
    assert post(line_client, {"destination": "U", "events": [event]}).status_code == 400
    with line_app.extensions["dxdesk"].db.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(InboxEvent)) == 0


@pytest.mark.parametrize("signature", ["署名", "é", "abc\u00e9=="])
def test_a_non_ascii_signature_is_refused_with_400(line_client, signature):
    assert post(line_client, {"destination": "U", "events": []}, signature).status_code == 400


def test_a_signature_header_with_a_raw_non_ascii_byte_gets_400_from_the_real_server(line_app):
    import http.client
    server = make_server("127.0.0.1", 0, line_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        body = b'{"destination":"U","events":[]}'
        for raw in (b"\xe9", "署名".encode()):
            connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
            connection.putrequest("POST", "/callback")
            connection.putheader("Content-Type", "application/json")
            connection.putheader("Content-Length", str(len(body)))
            connection.putheader("X-Line-Signature", raw)
            connection.endheaders(body)
            assert connection.getresponse().status == 400
            connection.close()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("body", [
    json.dumps({"destination": "U", "events": [_message(source="U4af4980629a1b2c3d4e5f60718293a4b")]}),
    json.dumps({"destination": "U", "events": [_message(source=42)]}),
    json.dumps({"destination": "U", "events": [_message(source=[{"type": "user", "userId": USER}])]}),
    json.dumps({"destination": "U", "events": [_message(source={"type": 7, "userId": USER})]}),
    json.dumps({"destination": "U", "events": [_message(source=None)]}),
    json.dumps({"destination": "U", "events": [_message(source=[{"type": "user", "userId": USER}],
                                                        message={"id": "1", "type": "brandNew"})]}),
    json.dumps({"destination": "U", "events": [_message(type="postback", postback=["action=menu"])]}),
    '{"destination":"U","events":[' + "[" * 1500 + "]" * 1500 + "]}",
    json.dumps({"destination": "U", "events": [_message(extra=json.loads("[" * 100 + "]" * 100))]}),
    json.dumps({"destination": "U", "events": [_message(timestamp=float("nan"))]}),
    json.dumps({"destination": "U", "events": [_message(extra=float("inf"))]}),
    json.dumps({"destination": "U", "events": {}}),
    '{"destination":"U","events":[]}'.encode("utf-16").decode("latin-1"),
], ids=lambda b: b[:50])
def test_a_signed_body_of_the_wrong_shape_is_a_400_not_a_500(line_client, body):
    data = body.encode("latin-1") if body.startswith("\xff") else body.encode()
    assert post(line_client, data).status_code == 400


def test_texts_with_a_nul_character_go_through_the_whole_intake_on_any_database(line_client, line_app, fake):
    u = LineUserDriver(line_client, line_app, fake)
    u.send(type="follow")
    u.tap("action=consent&v=2026-11")
    assert "業務効率化・ペーパーレス" in texts(u.say("紙の\u0000請求書をやめたい"))
    u.tap("action=yes")
    u.say("有限会社\u0000さつま揚げ本舗")
    u.tap("action=industry&v=製造業")
    for answer in ("8人", "いちき串木野", "薩摩\u0000次郎", "099-286-2111", "jiro@example.jp"):
        u.say(answer)
    u.tap("action=method&v=visit")
    assert "受付番号" in texts(u.tap("action=submit"))
    [c] = consultations_as_json(line_app.extensions["dxdesk"].db)
    assert "\x00" not in c["question"] + c["company"] and c["question"].startswith("紙の")
    with line_app.extensions["dxdesk"].db.unit_of_work() as s:
        assert set(s.scalars(select(InboxEvent.status))) == {"done"}


def test_a_reply_token_longer_than_line_issues_is_answered_by_push(line_client, line_app, fake):
    follow = {k: v for k, v in _message(type="follow", replyToken="r" * 300).items() if k != "message"}
    follow["follow"] = {"isUnblocked": False}
    assert post(line_client, {"destination": "U", "events": [follow]}).status_code == 200
    line_app.extensions["dxdesk"].inbox.drain()
    assert "友だち追加ありがとうございます" in texts(fake.delivered(USER))
    assert fake.requests(PUSH) and not fake.requests(REPLY)


def test_events_with_an_empty_reply_token_are_answered_by_push_each_time(line_client, line_app, fake):
    u = LineUserDriver(line_client, line_app, fake)
    for text in ("メニュー", "メニュー"):
        event = {**u.event(message={"id": "1", "type": "text", "text": text, "quoteToken": "q"}), "replyToken": ""}
        assert post(line_client, {"destination": "U", "events": [event]}).status_code == 200
        line_app.extensions["dxdesk"].inbox.drain()
    assert len(fake.delivered(USER)) == 2
    with line_app.extensions["dxdesk"].db.unit_of_work() as s:
        assert set(s.scalars(select(InboxEvent.status))) == {"done"}


@pytest.mark.parametrize("source", ["U4af4980629a1b2c3d4e5f60718293a4b", 42, [USER], None])
def test_an_event_the_bot_gives_up_on_is_parked_whatever_its_source_looks_like(line_app, fake, monkeypatch, source):
    services = line_app.extensions["dxdesk"]

    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(services.conversations, "handle_event", broken)
    from handlers.inbox import store_events
    store_events(services.db, [{**_message(), "source": source}], "line", services.clock.now())
    drain_through_retries(services)
    with services.db.unit_of_work() as s:
        assert s.scalar(select(InboxEvent.status)) == "failed"
    assert fake.delivered(USER) == []  # no user to tell, and nothing else broke


def test_a_message_of_a_type_the_sdk_does_not_know_yet_is_taken_with_200(line_client, line_app):
    assert post(line_client, {"destination": "U", "events": [_message(message={"id": "1", "type": "brandNew"})]}
                ).status_code == 200
    line_app.extensions["dxdesk"].inbox.drain()
    with line_app.extensions["dxdesk"].db.unit_of_work() as s:
        assert s.scalar(select(InboxEvent.status)) == "done"


def test_logs_name_a_line_user_by_a_short_keyed_hash_never_by_the_id(line_client, line_app, fake, caplog):
    caplog.set_level("INFO")
    u = LineUserDriver(line_client, line_app, fake)
    u.send(type="follow")
    u.tap("action=consent&v=2026-11")
    u.say("担当者と話したい")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert USER not in logged and USER[1:11] not in logged
    expected = "u:" + hmac.new(b"test", USER.encode(), hashlib.sha256).hexdigest()[:10]  # keyed with DXDESK_SECRET_KEY
    assert logged.count(f"conversation {expected}:") >= 3


def test_the_access_log_masks_the_ical_feed_token(settings, clock):
    """The real server's access log, as `dxdesk serve` writes it, for a feed fetch that is answered."""
    import logging
    import urllib.request
    from handlers.ical import feed_token
    from tests.helpers import served_like_dxdesk_serve
    app = create_app(settings, clock=clock)
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(handler.format(record))
    access = logging.getLogger("dxdesk.access")
    access.addHandler(handler)
    level, access.level = access.level, logging.INFO
    try:
        with served_like_dxdesk_serve(app) as port:
            token = feed_token(app.config["SECRET_KEY"], "tanaka")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/calendar/tanaka/{token}.ics", timeout=10) as r:
                assert r.status == 200
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
        app.extensions["dxdesk"].db.dispose()
    [line] = [r for r in records if "/calendar/" in r]
    assert token not in line and "/calendar/tanaka/***.ics" in line and " 200" in line
