"""Delivery to LINE when LINE misbehaves: each message shown exactly once, in order, and one slow call holds up no one else.

Everything runs against the real local fake of the Messaging API through line-bot-sdk; the fake records what the
user sees, so a reply it carried out counts as shown even when its answer never reaches the product.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from app import create_app
from handlers.line_api import LineMessenger
from storage.models import OutboundMessage
from storage.outbound import queue_messages
from tests.fakes.line_api import (
    HOLD, LOST, RESET_AFTER, RESET_BEFORE, STALL, Fault, FakeLineApi, random_faults,
)
from tests.helpers import SECRET, LineUserDriver, post, sign, texts

ROOT = Path(__file__).resolve().parents[2]
REPLY = "/v2/bot/message/reply"
PUSH = "/v2/bot/message/push"
USER = LineUserDriver.USER


def user_id(n: int) -> str:
    return f"U{n:032x}"


def eventually(condition, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


@pytest.fixture
def fake(clock):
    with FakeLineApi(clock) as fake:
        fake.wait_seconds = 2.0
        yield fake


def start(settings, clock, fake, **overrides):
    """The app on the fake LINE, sending with short time-outs (the fake's waits outlast them)."""
    app = create_app(replace(settings, line_channel_secret=SECRET, line_channel_access_token="token",
                             line_api_base_url=fake.base_url, **overrides), clock=clock)
    services = app.extensions["dxdesk"]
    services.delivery.line = LineMessenger("token", fake.base_url, timeout=0.5, backoff=0)
    return app, services


def stop(services) -> None:
    services.stop()
    services.db.dispose()


def rows(services, to: str) -> list[OutboundMessage]:
    with services.db.unit_of_work() as s:
        return list(s.scalars(select(OutboundMessage).where(OutboundMessage.to == to).order_by(OutboundMessage.id)))


def first_reply_fails_with(fault: Fault):
    faults = [fault]
    return lambda request, recipient: faults.pop() if request.path == REPLY and faults else None


@pytest.mark.parametrize("fault", [LOST, RESET_AFTER, RESET_BEFORE, STALL, Fault.answer(500)],
                         ids=["answer-lost", "reset-after-taken", "reset-before-taken", "stalled", "500"])
def test_a_reply_whose_outcome_is_unknown_is_shown_exactly_once(settings, clock, fake, fault):
    app, services = start(settings, clock, fake)
    fake.faults = first_reply_fails_with(fault)
    try:
        LineUserDriver(app.test_client(), app, fake).send(type="follow")
        for _ in range(5):  # the product checks again with the same token, as soon as it may
            clock.advance(seconds=1)
            services.delivery.send_due()
        [shown] = fake.delivered(USER)
        assert "友だち追加ありがとうございます" in texts(shown)
        assert not fake.requests(PUSH)
        assert [row.status for row in rows(services, USER)] == ["sent"]
    finally:
        stop(services)


def test_a_reply_token_already_given_to_an_earlier_message_is_not_given_to_a_later_one(settings, clock, fake):
    app, services = start(settings, clock, fake)
    try:
        token = fake.issue_reply_token(USER)
        until = clock.now() + timedelta(seconds=50)
        with services.db.unit_of_work() as s:
            first = queue_messages(s, "line", USER, [{"type": "text", "text": "一"}], clock.now(),
                                   reply_token=token, reply_until=until)
            s.commit()
        with services.db.unit_of_work() as s:
            second = queue_messages(s, "line", USER, [{"type": "text", "text": "二"}], clock.now(),
                                    reply_token=token, reply_until=until)
            s.commit()
        assert [(r.reply_token, r.id) for r in rows(services, USER)] == [(token, first[0]), (None, second[0])]
    finally:
        stop(services)


def test_messages_are_queued_five_to_a_request_and_nothing_is_queued_for_none(settings, clock, fake):
    app, services = start(settings, clock, fake)
    try:
        with services.db.unit_of_work() as s:
            assert queue_messages(s, "line", USER, [], clock.now()) == []
            ids = queue_messages(s, "line", USER, [{"type": "text", "text": str(n)} for n in range(7)], clock.now())
            s.commit()
        assert [len(r.messages) for r in rows(services, USER)] == [5, 2] and len(ids) == 2
    finally:
        stop(services)


def test_a_users_later_message_waits_for_an_earlier_one_still_being_retried(settings, clock, fake):
    app, services = start(settings, clock, fake)
    fake.script(PUSH, [500] * 4)  # the first push and the SDK's three retries
    try:
        ids = []
        for words in ("一通目", "二通目"):
            with services.db.unit_of_work() as s:
                ids += queue_messages(s, "line", USER, [{"type": "text", "text": words}], clock.now())
                s.commit()
            services.delivery.send(ids[-1:])
        assert fake.delivered(USER) == []
        clock.advance(minutes=1)
        services.delivery.send_due()
        assert [texts(batch) for batch in fake.delivered(USER)] == ["一通目", "二通目"]
    finally:
        stop(services)


def test_replies_hanging_at_line_for_two_users_do_not_hold_up_a_third_users_reply(settings, clock, fake):
    app = create_app(replace(settings, line_channel_secret=SECRET, line_channel_access_token="token",
                             line_api_base_url=fake.base_url, start_workers=True), clock=clock)
    services = app.extensions["dxdesk"]
    client = app.test_client()
    hung, other = [LineUserDriver(client, app, fake, user=user_id(n)) for n in (1, 2)], LineUserDriver(
        client, app, fake, user=user_id(3))
    fake.wait_seconds = 60
    fake.faults = lambda request, recipient: HOLD if request.path == REPLY and recipient != other.user else None
    try:
        for u in hung:
            assert post(client, {"destination": "U", "events": [u.event(type="follow")]}).status_code == 200
        assert eventually(lambda: fake.waiting(REPLY) == 2)
        assert post(client, {"destination": "U", "events": [other.event(type="follow")]}).status_code == 200
        assert eventually(lambda: fake.delivered(other.user))
        assert fake.waiting(REPLY) == 2
        for u in hung:  # still in the middle of their first attempt, nothing decided
            assert [(r.status, r.last_error) for r in rows(services, u.user)] == [("pending", None)]
        fake.release()
        assert eventually(lambda: all(fake.delivered(u.user) for u in hung))
    finally:
        fake.release()
        stop(services)


def test_a_429_with_retry_after_waits_as_long_as_line_asks(settings, clock, fake):
    app, services = start(settings, clock, fake)
    fake.faults = lambda request, recipient: Fault.answer(429, retry_after=7) if request.path == PUSH else None
    try:
        with services.db.unit_of_work() as s:
            [message_id] = queue_messages(s, "line", USER, [{"type": "text", "text": "お知らせ"}], clock.now())
            s.commit()
        services.delivery.send([message_id])
        [row] = rows(services, USER)
        assert (row.status, row.last_error, row.next_attempt_at) == (
            "pending", "rate_limited", clock.now() + timedelta(seconds=7))
        assert len(fake.requests(PUSH)) == 1  # not waited out inside the call, where it would hold a sender thread
    finally:
        stop(services)


# --- everything at once: 30 users, half of LINE's answers going wrong ----------------------------------------

STEPS = [
    {"type": "follow"},
    {"type": "postback", "postback": {"data": "action=consent&v=2026-11"}},
    {"type": "message", "message": {"id": "1", "type": "text", "text": "紙の請求書をやめたいが何から始めれば…",
                                    "quoteToken": "q"}},
    {"type": "postback", "postback": {"data": "action=yes"}},
    {"type": "message", "message": {"id": "2", "type": "text", "text": "有限会社さつま揚げ本舗", "quoteToken": "q"}},
]


def test_under_half_failing_line_calls_thirty_users_each_see_every_message_once_in_order(settings, clock, fake):
    reference, users = user_id(0), [user_id(n) for n in range(1, 31)]
    chaos = random_faults(seed=7, rate=0.5, paths={REPLY, PUSH})
    fake.wait_seconds = 1.0  # a stalled or lost request outlasts the 0.5 s time-out
    fake.faults = lambda request, recipient: None if recipient == reference else chaos(request, recipient)
    app, services = start(settings, clock, fake, start_workers=True, inbox_threads=2, sender_threads=8)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    done = threading.Event()

    def time_flies():  # ten times faster, so back-offs of a minute pass in seconds and reply tokens age
        while not done.wait(0.1):
            clock.advance(seconds=1)

    def webhook(user: str, step: dict) -> None:
        event = LineUserDriver(None, app, fake, user=user).event(**step)
        body = json.dumps({"destination": "Ubot", "events": [event]}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{server.server_port}/callback", data=body, headers={
            "Content-Type": "application/json", "X-Line-Signature": sign(body)})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def run(user: str, counts: list[int]) -> None:
        for step, count in zip(STEPS, counts):
            webhook(user, step)
            eventually(lambda: len(fake.delivered(user)) >= count, seconds=60)  # then the user taps on

    threading.Thread(target=time_flies, daemon=True).start()
    try:
        counts = []
        for step in STEPS:
            webhook(reference, step)
            assert eventually(lambda: len(fake.delivered(reference)) > (counts or [0])[-1])
            counts.append(len(fake.delivered(reference)))
        expected = fake.delivered(reference)
        threads = [threading.Thread(target=run, args=(user, counts), daemon=True) for user in users]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert eventually(lambda: all(len(fake.delivered(u)) >= len(expected) for u in users), seconds=30)
        time.sleep(1)  # ten seconds on the clock: time for a duplicate to show, if there were one
        assert {u: fake.delivered(u) for u in users} == {u: expected for u in users}
        assert len(fake.requests(REPLY) + fake.requests(PUSH)) > 2 * len(users) * len(expected)  # faults did happen
    finally:
        done.set()
        server.shutdown()
        fake.release()
        stop(services)


# --- kill -9 in the middle of a reply --------------------------------------------------------------------------

def serve_and_kill_during_replies(database_url, tmp_path, fake, users: dict[str, Fault]) -> None:
    """`dxdesk serve` in a process of its own, killed with SIGKILL while LINE holds each user's reply."""
    once = dict(users)  # only the reply in flight when the process dies is held up
    fake.faults = lambda request, recipient: once.pop(recipient, None) if request.path == REPLY else None
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DXDESK_DATABASE_URL": database_url,
           "DXDESK_SECRET_KEY": "test", "LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": "token",
           "LINE_API_BASE_URL": fake.base_url, "DXDESK_PUBLIC_URL": "http://127.0.0.1"}
    out = tmp_path / "serve.out"
    process = subprocess.Popen([str(Path(sys.executable).parent / "dxdesk"), "serve", "--port", "0", "--no-scheduler"],
                               cwd=tmp_path, env=env, stdout=out.open("w"), stderr=subprocess.STDOUT)
    try:
        assert eventually(lambda: re.search(r"http://127\.0\.0\.1:(\d+)", out.read_text()), seconds=60), out.read_text()
        port = re.search(r"http://127\.0\.0\.1:(\d+)", out.read_text()).group(1)
        for user in users:
            event = LineUserDriver(None, None, fake, user=user).event(type="follow")
            body = json.dumps({"destination": "Ubot", "events": [event]}).encode()
            request = urllib.request.Request(f"http://127.0.0.1:{port}/callback", data=body, headers={
                "Content-Type": "application/json", "X-Line-Signature": sign(body)})
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
        assert eventually(lambda: len(fake.requests(REPLY)) == len(users)), out.read_text()
        assert eventually(lambda: fake.waiting(REPLY) == sum(f.wait_before for f in users.values()))
    finally:
        process.kill()
        process.wait(timeout=30)
    assert process.returncode == -9


@pytest.mark.parametrize("restart", ["within the token's lifetime", "after the token's lifetime"])
def test_kill_9_during_a_reply_neither_loses_nor_repeats_it_after_restart(settings, database_url, tmp_path, restart):
    from scheduling.clock import MovableClock
    clock = MovableClock(datetime.now(UTC))
    taken, lost = user_id(1), user_id(2)
    # After the token's lifetime a reply in doubt is taken as shown (see handlers.delivery): only the one LINE took.
    users = {taken: LOST, lost: STALL} if restart.startswith("within") else {taken: LOST}
    with FakeLineApi(clock) as fake:
        serve_and_kill_during_replies(database_url, tmp_path, fake, users)
        assert [len(fake.delivered(u)) for u in users] == [1, 0][:len(users)]

        app, services = start(replace(settings, start_workers=False), clock, fake)
        try:
            reply_until = min(row.reply_until for u in users for row in rows(services, u))
            clock.set(reply_until - timedelta(seconds=10) if restart.startswith("within") else
                      reply_until + timedelta(minutes=2))
            for _ in range(3):
                services.delivery.send_due()
                clock.advance(seconds=1)
            fake.release()
            clock.advance(minutes=10)
            services.delivery.send_due()
            assert [len(fake.delivered(u)) for u in users] == [1] * len(users)
            assert "友だち追加ありがとうございます" in texts(fake.delivered())
            assert {row.status for u in users for row in rows(services, u)} == {"sent"}
        finally:
            stop(services)


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="thread priorities are Linux's")
def test_the_inbox_and_sender_threads_run_at_a_lower_cpu_priority_than_the_webhook(settings, clock, fake):
    app, services = start(settings, clock, fake, start_workers=True)
    try:
        threads = services.inbox._workers + services.delivery._senders
        assert threads
        own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        assert eventually(lambda: all(os.getpriority(os.PRIO_PROCESS, t.native_id) > own for t in threads), 5)
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own  # the caller's own is untouched
    finally:
        stop(services)
