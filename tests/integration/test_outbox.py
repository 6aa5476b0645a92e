"""The outbox's promises: one send per key, not before due, never expired or cancelled, once across processes."""
from __future__ import annotations

import multiprocessing
import threading
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from app import create_app
from handlers.delivery import Delivery
from scheduling import outbox
from scheduling.clock import MovableClock
from storage.db import Database
from storage.models import OutboundMessage, OutboxItem
from tests.fakes.line_api import FakeLineApi
from tests.helpers import adopt

HELLO = [{"type": "text", "text": "明日10時からのご相談のリマインドです。"}]


def add(services, key: str, *, due_in: timedelta = timedelta(hours=1), expires_in: timedelta | None = None,
        ref: str = "booking:42", kind: str = "reminder", channel: str = "simulator", to: str = "sim-x") -> bool:
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        added = outbox.schedule(s, key=key, kind=kind, ref=ref, channel=channel, to=to, messages=HELLO,
                                due_at=now + due_in, expires_at=now + expires_in if expires_in else None, now=now)
        s.commit()
    return added


def statuses(db: Database) -> dict[str, str]:
    with db.unit_of_work() as s:
        return dict(s.execute(select(OutboxItem.key, OutboxItem.status)).all())


def outbound_count(db: Database) -> int:
    with db.unit_of_work() as s:
        return s.scalar(select(func.count()).select_from(OutboundMessage))


def bot_said(client, user: str = "sim-x") -> list[dict]:
    adopt(client, user)
    response = client.get(f"/simulator/api/messages?user={user}&after=0")
    assert response.status_code == 200
    return [m["message"] for m in response.json["messages"] if m["direction"] == "out"]


@pytest.mark.parametrize("first_ends", ["pending", "sent", "cancelled", "skipped"])
def test_a_key_is_scheduled_once_whatever_became_of_the_first(services, clock, first_ends):
    assert add(services, "reminder:42", expires_in=timedelta(hours=2))
    if first_ends == "sent":
        clock.advance(hours=1)
    if first_ends == "skipped":
        clock.advance(hours=3)
    if first_ends == "cancelled":
        with services.db.unit_of_work() as s:
            outbox.cancel(s, "booking:42", clock.now())
            s.commit()
    outbox.send_due(services.db, services.delivery, clock)
    assert statuses(services.db) == {"reminder:42": first_ends}

    assert not add(services, "reminder:42")
    assert statuses(services.db) == {"reminder:42": first_ends}


def test_a_due_item_is_sent_once_and_shows_in_the_simulator(services, clock, client):
    add(services, "reminder:42", due_in=timedelta(hours=1))
    assert outbox.send_due(services.db, services.delivery, clock) == 0
    clock.advance(minutes=59)
    assert outbox.send_due(services.db, services.delivery, clock) == 0
    assert bot_said(client) == []

    clock.advance(minutes=1)
    assert outbox.send_due(services.db, services.delivery, clock) == 1
    assert outbox.send_due(services.db, services.delivery, clock) == 0
    assert bot_said(client) == HELLO
    with services.db.unit_of_work() as s:
        item = s.scalar(select(OutboxItem))
        message = s.get(OutboundMessage, item.outbound_id)
    assert (item.status, item.done_at) == ("sent", clock.now())
    assert (message.sender, message.status, message.to) == ("outbox", "sent", "sim-x")


def test_a_line_item_is_pushed_to_line_exactly_once(settings, clock):
    with FakeLineApi() as fake:
        app = create_app(replace(settings, line_channel_secret="s", line_channel_access_token="t",
                                 line_api_base_url=fake.base_url), clock=clock)
        services = app.extensions["dxdesk"]
        add(services, "reminder:42", channel="line", to="U1234567890abcdef1234567890abcdef", due_in=timedelta(0))
        assert outbox.send_due(services.db, services.delivery, clock) == 1
        assert outbox.send_due(services.db, services.delivery, clock) == 0
        services.delivery.send_due()
        pushes = fake.requests("/v2/bot/message/push")
        services.db.dispose()
    assert len(pushes) == 1
    assert pushes[0].body["to"] == "U1234567890abcdef1234567890abcdef"
    assert [m["text"] for m in pushes[0].body["messages"]] == [HELLO[0]["text"]]
    assert pushes[0].headers.get("x-line-retry-key")


@pytest.mark.parametrize("kinds, left", [
    (None, {"survey:43"}),
    (["reminder"], {"survey:42", "survey:43"}),
    (["survey", "announcement"], {"reminder:42", "survey:43"}),
])
def test_cancelled_items_are_never_sent(services, clock, kinds, left):
    add(services, "reminder:42", kind="reminder")
    add(services, "survey:42", kind="survey")
    add(services, "survey:43", kind="survey", ref="booking:43")
    with services.db.unit_of_work() as s:
        assert outbox.cancel(s, "booking:42", clock.now(), kinds) == 3 - len(left)
        s.commit()
    clock.advance(days=1)
    assert outbox.send_due(services.db, services.delivery, clock) == len(left)
    assert {key for key, status in statuses(services.db).items() if status == "sent"} == left
    assert outbound_count(services.db) == len(left)


def test_an_item_past_its_expiry_is_skipped_not_sent_late(services, clock, client):
    add(services, "reminder:42", due_in=timedelta(hours=1), expires_in=timedelta(hours=2))
    add(services, "survey:42", kind="survey", due_in=timedelta(hours=1))
    clock.advance(hours=2)  # the scheduler was down past the meeting

    assert outbox.send_due(services.db, services.delivery, clock) == 1
    assert statuses(services.db) == {"reminder:42": "skipped", "survey:42": "sent"}
    assert outbound_count(services.db) == 1
    assert len(bot_said(client)) == 1


def test_send_due_in_concurrent_threads_sends_each_item_once(services, clock):
    for n in range(40):
        add(services, f"reminder:{n}", ref=f"booking:{n}", due_in=timedelta(0))
    results: list[int] = []
    start = threading.Barrier(4)

    def run():
        start.wait()
        results.append(outbox.send_due(services.db, services.delivery, clock))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(results) == 40
    assert_each_item_sent_once(services.db, 40)


def assert_each_item_sent_once(db: Database, n: int) -> None:
    with db.unit_of_work() as s:
        rows = s.execute(select(OutboxItem.status, OutboxItem.outbound_id)).all()
        outbound = s.scalars(select(OutboundMessage.id).where(OutboundMessage.sender == "outbox")).all()
    assert [status for status, _ in rows] == ["sent"] * n
    assert sorted(outbound_id for _, outbound_id in rows) == sorted(outbound)


def _send_due_in_another_process(url: str, now: datetime, start, out) -> None:
    db = Database(url)
    clock = MovableClock(now)
    start.wait()
    out.put(outbox.send_due(db, Delivery(db, clock, None), clock))
    db.dispose()


def test_send_due_in_two_processes_sends_each_item_once(services, clock, database_url):
    for n in range(60):
        add(services, f"reminder:{n}", ref=f"booking:{n}", due_in=timedelta(0))
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(3), ctx.Queue()
    others = [ctx.Process(target=_send_due_in_another_process, args=(database_url, clock.now(), start, out))
              for _ in range(2)]
    for p in others:
        p.start()
    start.wait(timeout=60)
    mine = outbox.send_due(services.db, services.delivery, clock)
    theirs = [out.get(timeout=60) for _ in others]
    for p in others:
        p.join(timeout=30)
    assert mine + sum(theirs) == 60
    assert_each_item_sent_once(services.db, 60)


def test_items_lists_what_is_pending_by_due_time_or_everything_with_all(services, clock):
    add(services, "survey:42", kind="survey", due_in=timedelta(days=2), expires_in=timedelta(days=9))
    add(services, "reminder:42", due_in=timedelta(days=1))
    add(services, "reminder:43", ref="booking:43", due_in=timedelta(hours=3))
    with services.db.unit_of_work() as s:
        outbox.cancel(s, "booking:43", clock.now())
        s.commit()

    pending = outbox.items(services.db)
    assert [i["key"] for i in pending] == ["reminder:42", "survey:42"]
    assert pending[1] == {
        "id": 1, "key": "survey:42", "kind": "survey", "ref": "booking:42", "channel": "simulator", "to": "sim-x",
        "status": "pending", "due_at": "2026-11-26T10:00:00+09:00", "expires_at": "2026-12-03T10:00:00+09:00",
        "created_at": "2026-11-24T10:00:00+09:00", "done_at": None, "outbound_id": None, "error": None,
    }
    everything = outbox.items(services.db, all=True)
    assert [(i["key"], i["status"]) for i in everything] == [
        ("reminder:43", "cancelled"), ("reminder:42", "pending"), ("survey:42", "pending")]


def test_scheduling_nothing_to_say_is_refused(services, clock):
    with services.db.unit_of_work() as s, pytest.raises(ValueError):
        outbox.schedule(s, key="empty", kind="reminder", ref="booking:1", channel="simulator", to="sim-x",
                        messages=[], due_at=clock.now(), expires_at=None, now=clock.now())
