"""A seeded fuzz of signed webhook bodies: mutations of LINE's own samples never get a 5xx and leave no one stuck.

Every body is signed with the channel secret (so it reaches the parser and the inbox), posted to the real
Flask app, and the inbox is drained with the real worker, the real bot and a real local fake of LINE.
Run it on PostgreSQL too (DXDESK_TEST_DATABASE_URL): NaN and U+0000 behave differently there.
"""
from __future__ import annotations

import copy
import json
import random
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app import create_app
from storage.models import InboxEvent
from tests.fakes.line_api import FakeLineApi
from tests.helpers import SECRET, LineUserDriver, drain_through_retries, post, texts

SAMPLES = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "line" / "webhook-samples.json").read_text())
SEED = 20261124
BODIES = 5000
DRAIN_EVERY = 100  # keeps the inbox short, as the workers would

NASTY_VALUES = [
    "", "署名🍣", "a\x00b", "\x00", "x" * 300, "あ" * 5000, "\ud7ff\ue000", "NaN", "-1", "null",
    0, -1, 2 ** 63, -(2 ** 70), 1.5, float("nan"), float("inf"), -float("inf"),
    True, False, None, [], {}, [1, "a", None], {"type": "user"}, {"userId": 42}, {"": ""},
]


def _deep(levels: int):
    node: list = []
    for _ in range(levels):
        node = [node]
    return node


def _paths(node, prefix=()):
    """Every (container, key) in the event, so a mutation can reach any field, however nested."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield node, key
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for n, value in enumerate(node):
            yield node, n
            yield from _paths(value, prefix + (n,))


def _mutate(rng: random.Random, event: dict) -> None:
    kind = rng.randrange(10)
    if kind == 0:  # delete a field anywhere
        container, key = rng.choice(list(_paths(event)))
        del container[key]
    elif kind == 1:  # a field anywhere changes type
        container, key = rng.choice(list(_paths(event)))
        container[key] = copy.deepcopy(rng.choice(NASTY_VALUES))
    elif kind == 2:  # the source of the wrong kind
        event["source"] = rng.choice(["U4af4980629a1b2c3d4e5f60718293a4b", 42, 1.5, [event.get("source")], None, True,
                                      {"type": rng.choice(["user", "group", "room", "alien", 7]),
                                       "userId": rng.choice(NASTY_VALUES)}])
    elif kind == 3:  # message or postback of the wrong kind
        field = rng.choice(["message", "postback"])
        event[field] = rng.choice([
            "こんにちは", 42, [], None, {"type": rng.choice(["text", "sticker", "image", "weird", 5])},
            {"type": "text", "id": "1", "text": rng.choice(NASTY_VALUES), "quoteToken": "q"},
            {"data": rng.choice(NASTY_VALUES), "params": rng.choice([{"date": "2026-13-40"}, [], "x", {"datetime": 5}])},
        ])
    elif kind == 4:  # the event becomes another type
        event["type"] = rng.choice(["message", "postback", "follow", "unfollow", "join", "beacon", "memberJoined",
                                    "somethingNew", "", "MESSAGE", 5, None])
    elif kind == 5:  # huge or deep values
        container, key = rng.choice(list(_paths(event)))
        container[key] = rng.choice([_deep(rng.choice([10, 40, 200])), "長" * rng.choice([1000, 20000]),
                                     list(range(rng.choice([100, 5000])))])
    elif kind == 6:  # a user's text: non-ASCII, NUL, long, control characters
        event.update(type="message", message={"id": str(rng.getrandbits(40)), "type": "text", "quoteToken": "q",
                                              "text": rng.choice(["メニュー", "担当者と話したい", "\x00", "a\x00" * 100,
                                                                  "紙" * 6000, "\u202e\u200b\ufeff", "\t\r\n", "🍣" * 50])})
    elif kind == 7:  # a reply token too long, empty, or of the wrong type
        event["replyToken"] = rng.choice(["r" * 257, "r" * 5000, "", 5, None, ["r"], "署名"])
    elif kind == 8:  # a postback as a user could forge it
        event.update(type="postback", postback={"data": rng.choice([
            "action=consent&v=2026-11", "action=book&c=tanaka&s=2026-99-99T99:99", "action=cancel&b=-1",
            "action=" + "x" * 290, "a=b&a=c&=&&", "action=method&v=\x00", "action=industry&v=製造業"]),
            **({"params": rng.choice([{"date": "2026-12-01"}, {"time": "25:61"}, {"datetime": "x"}])}
               if rng.random() < 0.3 else {})})
    else:  # the base fields every event has
        event[rng.choice(["timestamp", "mode", "webhookEventId", "deliveryContext"])] = copy.deepcopy(
            rng.choice(NASTY_VALUES + [{"isRedelivery": "yes"}, "standby", "active"]))


def _bodies(rng: random.Random):
    for n in range(BODIES):
        events = []
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            event = copy.deepcopy(rng.choice(SAMPLES["events"]))
            event["webhookEventId"] = f"FUZZ{n:05d}{len(events)}"
            for _ in range(rng.choice([1, 1, 2, 3])):
                _mutate(rng, event)
            events.append(event)
        body = {"destination": SAMPLES["destination"], "events": events}
        if rng.random() < 0.02:  # the wrapper itself goes wrong
            body = rng.choice([{"events": events[0]}, {"destination": 5}, events, {"events": [events, events]}])
        yield json.dumps(body, ensure_ascii=rng.random() < 0.5).encode()


@pytest.fixture
def fuzzed_app(settings, clock):
    if settings.database_url.startswith("sqlite") and Path("/dev/shm").is_dir():
        # The same SQLite, in memory-backed files: thousands of commits without waiting for the disk each time.
        shm = tempfile.TemporaryDirectory(dir="/dev/shm")
        settings = replace(settings, database_url=f"sqlite:///{shm.name}/fuzz.sqlite3")
    with FakeLineApi() as fake:
        app = create_app(replace(settings, line_channel_secret=SECRET, line_channel_access_token="token",
                                 line_api_base_url=fake.base_url), clock=clock)
        services = app.extensions["dxdesk"]
        services.line._api.api_client.configuration.retries.backoff_factor = 0
        yield app, fake
        services.stop()
        services.db.dispose()


def test_five_thousand_mutated_signed_bodies_get_no_5xx_and_leave_no_event_or_user_stuck(fuzzed_app):
    app, fake = fuzzed_app
    services = app.extensions["dxdesk"]
    client = app.test_client()
    rng = random.Random(SEED)
    answers: dict[int, int] = {}
    server_errors: list[bytes] = []
    for n, body in enumerate(_bodies(rng), 1):
        status = post(client, body).status_code
        answers[status] = answers.get(status, 0) + 1
        if status >= 500:
            server_errors.append(body[:300])
        if n % DRAIN_EVERY == 0:
            services.inbox.drain()
    drain_through_retries(services)  # a mutated body can make an event fail: it is retried, then parked

    assert server_errors == []
    assert set(answers) <= {200, 400, 413} and answers.get(200, 0) > BODIES // 10, answers
    with services.db.unit_of_work() as s:
        statuses = dict(s.execute(select(InboxEvent.status, func.count()).group_by(InboxEvent.status)).all())
        stuck = s.scalars(select(InboxEvent.error).where(InboxEvent.status.not_in(("done", "failed")))).all()
    assert stuck == [] and statuses.get("done", 0) > 0, statuses

    # The samples' users, whatever state the fuzz left them in, and a newcomer still get their answers.
    for user in {e["source"]["userId"] for e in SAMPLES["events"] if e.get("source", {}).get("type") == "user"} | {
            "U" + "f" * 32}:
        u = LineUserDriver(client, app, fake, user)
        assert texts(u.say("メニュー")), user
