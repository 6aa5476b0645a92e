"""The inbox's promises: each event once, a user's events in order and never two at once, across threads and processes."""
from __future__ import annotations

import multiprocessing
import threading
import time
from datetime import UTC, datetime

from sqlalchemy import func, select

from handlers.inbox import BACKOFF, MAX_ATTEMPTS, InboxWorker, claim, claim_next, store_events
from scheduling.clock import MovableClock, SystemClock
from storage.db import Database
from storage.models import InboxEvent

NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def event(user: str, n: int) -> dict:
    return {"type": "message", "webhookEventId": f"{user}-{n:04d}", "source": {"type": "user", "userId": user},
            "message": {"type": "text", "text": str(n)}}


def migrated(url: str) -> Database:
    db = Database(url)
    db.upgrade()
    return db


def finish(db: Database, event_id: int) -> None:
    with db.unit_of_work() as s:
        s.get(InboxEvent, event_id).status = "done"
        s.commit()


def test_only_a_users_oldest_unfinished_event_can_be_taken(database_url):
    db = migrated(database_url)
    store_events(db, [event("U1", 1), event("U1", 2), event("U2", 1)], "line", NOW)
    first = claim_next(db, NOW)
    second = claim_next(db, NOW)
    assert (first.event_key, second.event_key) == ("U1-0001", "U2-0001")
    assert claim_next(db, NOW) is None  # U1's second waits for its first
    finish(db, first.id)
    assert claim_next(db, NOW).event_key == "U1-0002"
    db.dispose()


def test_a_repeated_event_is_stored_once(database_url):
    db = migrated(database_url)
    assert store_events(db, [event("U1", 1)], "line", NOW) == 1
    assert store_events(db, [event("U1", 1), event("U1", 1)], "line", NOW) == 0
    without_id = {"type": "follow", "source": {"type": "user", "userId": "U9"}, "timestamp": 5}
    assert store_events(db, [without_id, dict(without_id)], "line", NOW) == 1
    db.dispose()


def _check_and_finish(db: Database, ev: InboxEvent, violations) -> None:
    """Process an event: first check nobody broke the user's order, then take a little time, then finish."""
    with db.unit_of_work() as s:
        earlier_open = s.scalar(select(func.count()).where(
            InboxEvent.user_key == ev.user_key, InboxEvent.id < ev.id, InboxEvent.status != "done"))
        others_running = s.scalar(select(func.count()).where(
            InboxEvent.user_key == ev.user_key, InboxEvent.id != ev.id, InboxEvent.status == "processing"))
    if earlier_open or others_running:
        violations.append(ev.event_key)
    time.sleep(0.005)
    finish(db, ev.id)


def _process_worker(url: str, seconds: float, out) -> None:
    """A second process draining the same inbox (run with multiprocessing's spawn)."""
    db = Database(url)
    violations: list[str] = []
    worker = InboxWorker(db, lambda ev: _check_and_finish(db, ev, violations), SystemClock(), threads=2, poll=0.02)
    worker.start()
    time.sleep(seconds)
    worker.stop()
    out.put(violations)
    db.dispose()


def test_workers_in_several_threads_and_processes_keep_each_users_order(database_url):
    db = migrated(database_url)
    users = [f"U{n}" for n in range(5)]
    store_events(db, [event(u, n) for n in range(15) for u in users], "line", datetime.now(UTC))

    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    other = ctx.Process(target=_process_worker, args=(database_url, 8.0, out))
    other.start()
    violations: list[str] = []
    worker = InboxWorker(db, lambda ev: _check_and_finish(db, ev, violations), SystemClock(), threads=3, poll=0.02)
    worker.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with db.unit_of_work() as s:
            if s.scalar(select(func.count()).where(InboxEvent.status != "done")) == 0:
                break
        time.sleep(0.05)
    worker.stop()
    other.join(timeout=30)
    violations += out.get(timeout=10)

    with db.unit_of_work() as s:
        assert s.scalar(select(func.count()).where(InboxEvent.status == "done")) == 75
    assert violations == []
    db.dispose()


def test_an_event_whose_processing_keeps_failing_is_retried_with_back_off_then_set_aside_and_the_user_is_not_stuck(
        database_url):
    db = migrated(database_url)
    store_events(db, [event("U1", 1), event("U1", 2), event("U2", 1)], "line", NOW)
    seen: list[str] = []

    def process(ev):
        seen.append(ev.event_key)
        if ev.event_key == "U1-0001":
            raise RuntimeError("boom")
        finish(db, ev.id)

    clock = MovableClock(NOW)
    worker = InboxWorker(db, process, clock)
    worker.drain()
    assert seen == ["U1-0001", "U2-0001"]  # U1's second waits behind its first, which waits out its back-off
    for wait in BACKOFF:
        clock.advance(seconds=wait.total_seconds() - 1)
        assert worker.drain() == 0  # not before its time
        clock.advance(seconds=1)
        worker.drain()
    with db.unit_of_work() as s:
        statuses = dict(s.execute(select(InboxEvent.event_key, InboxEvent.status)).all())
    assert statuses == {"U1-0001": "failed", "U1-0002": "done", "U2-0001": "done"}
    assert seen == ["U1-0001", "U2-0001"] + ["U1-0001"] * (MAX_ATTEMPTS - 1) + ["U1-0002"]
    db.dispose()


def test_one_claim_takes_a_batch_of_different_users_first_events(database_url):
    db = migrated(database_url)
    store_events(db, [event("U1", 1), event("U1", 2), event("U2", 1), event("U3", 1)], "line", NOW)
    assert [e.event_key for e in claim(db, NOW, 4)] == ["U1-0001", "U2-0001", "U3-0001"]
    assert claim(db, NOW, 4) == []
    db.dispose()


def test_new_events_wake_the_workers(database_url):
    db = migrated(database_url)
    done = threading.Event()

    def process(ev):
        finish(db, ev.id)
        done.set()

    worker = InboxWorker(db, process, SystemClock(), threads=1, poll=30)
    worker.start()
    time.sleep(0.1)  # the worker is now asleep for up to 30 s
    store_events(db, [event("U1", 1)], "line", datetime.now(UTC))
    worker.notify()
    assert done.wait(10)
    worker.stop()
    db.dispose()


def test_an_apology_that_fails_does_not_stop_the_worker_from_taking_the_users_next_event(database_url):
    db = migrated(database_url)
    store_events(db, [event("U1", 1), event("U1", 2)], "line", NOW)
    done: list[str] = []

    def process(ev):
        if ev.event_key == "U1-0001":
            raise RuntimeError("boom")
        finish(db, ev.id)
        done.append(ev.event_key)

    def apologise(ev):
        raise RuntimeError("the apology broke too")

    clock = MovableClock(NOW)
    worker = InboxWorker(db, process, clock, on_give_up=apologise)
    for _ in range(MAX_ATTEMPTS):  # through every back-off, to the giving up
        worker.drain()
        clock.advance(seconds=BACKOFF[-1].total_seconds())
    assert done == ["U1-0002"]
    db.dispose()


def test_an_event_whose_source_is_not_an_object_is_stored_under_no_user(database_url):
    db = migrated(database_url)
    odd = [{**event("U1", n), "source": source} for n, source in enumerate(("U1", 42, ["U1"], None))]
    assert store_events(db, odd, "line", NOW) == 4
    with db.unit_of_work() as s:
        assert set(s.scalars(select(InboxEvent.user_key))) == {""}
    db.dispose()


def test_behind_a_long_history_and_a_backlog_a_claim_takes_the_oldest_open_events_in_order(database_url):
    db = migrated(database_url)
    store_events(db, [event(f"D{n}", 1) for n in range(300)], "line", NOW)  # a history of done events
    with db.unit_of_work() as s:
        s.query(InboxEvent).update({"status": "done"})
        s.commit()
    store_events(db, [event(f"U{n % 40}", n) for n in range(200)], "line", NOW)  # 40 users, 5 events each
    lease_ran_out = claim(db, NOW, 1)[0]  # taken and abandoned: anyone's again once its lease is over

    later = NOW.replace(hour=2)
    taken = claim(db, later, 4)

    assert [e.id for e in taken] == sorted(e.id for e in taken)
    assert [e.payload["webhookEventId"] for e in taken] == ["U0-0000", "U1-0001", "U2-0002", "U3-0003"]
    assert taken[0].id == lease_ran_out.id and taken[0].attempts == 2


def test_on_sqlite_a_claim_walks_the_open_events_index_not_the_whole_inbox(tmp_path):
    from handlers.inbox import _SQLITE_CANDIDATES
    db = migrated(f"sqlite:///{tmp_path}/plan.sqlite3")
    sql = str(_SQLITE_CANDIDATES.compile(dialect=db.engine.dialect))
    with db.engine.connect() as conn:
        plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, (NOW.isoformat(),) * 2 + (4,))]

    assert any("ix_inbox_open" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan  # no sort of every open event
