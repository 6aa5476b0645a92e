"""storage.db.GroupCommit (Database.grouped): concurrent short writes share one transaction, and never each other's fate."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError

from storage.db import Database, GroupCommit


def wait_until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path}/group.sqlite3")
    with database.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    yield database
    database.dispose()


def insert(n: int):
    return lambda conn: conn.execute(text("INSERT INTO t (id, v) VALUES (:id, 'x')"), {"id": n}).rowcount


def run_all(db: Database, works, *, urgent: bool = False) -> list:
    """Each work in its own thread, all waiting behind a writer that holds SQLite's lock, then let go."""
    results: list = [None] * len(works)

    def call(i: int) -> None:
        try:
            results[i] = db.grouped(works[i], urgent=urgent)
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            results[i] = exc

    with db.unit_of_work() as holder:
        holder.execute(text("SELECT 1 FROM t"))  # BEGIN IMMEDIATE: the write lock is this session's
        threads = [threading.Thread(target=call, args=(i,)) for i in range(len(works))]
        for t in threads:
            t.start()
        group = db._urgent_group if urgent else db._group
        wait_until(lambda: len(group._waiting) == len(works))
        holder.commit()
    for t in threads:
        t.join(10)
    return results


def test_writes_waiting_for_the_lock_are_committed_together_in_one_transaction(db):
    commits = []
    event.listen(db.engine, "commit", lambda conn: commits.append(1))
    results = run_all(db, [insert(n) for n in range(1, 6)], urgent=True)
    assert results == [1] * 5  # each caller gets what its own work returned
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 5
    assert len(commits) == 1 + 1  # the holder's, and one for the five


def test_a_failing_write_fails_only_its_own_caller_the_others_are_committed(db):
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO t (id, v) VALUES (3, 'taken')"))
    results = run_all(db, [insert(1), insert(2), insert(3), insert(4)])
    assert results[:2] == [1, 1] and results[3] == 1
    assert isinstance(results[2], IntegrityError)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM t ORDER BY id")).scalars().all() == [1, 2, 3, 4]


def test_a_transaction_that_cannot_begin_fails_its_callers_and_the_next_write_goes_through():
    began, down = [], [True]

    @contextmanager
    def begin():
        began.append(1)
        if down[0]:
            raise ConnectionError("database down")
        yield "conn"

    group = GroupCommit(begin)
    with pytest.raises(ConnectionError):
        group.run(lambda conn: "written")
    down[0] = False
    assert group.run(lambda conn: f"written on {conn}") == "written on conn"
    assert len(began) == 2


def test_an_interrupted_group_never_reports_success_and_hands_the_lead_on():
    gate, entered = threading.Event(), threading.Event()

    @contextmanager
    def begin():
        yield "conn"

    group = GroupCommit(begin)
    outcome: dict = {}

    def slow(conn):
        entered.set()
        gate.wait(5)
        raise KeyboardInterrupt  # not an Exception: the leader's thread is being stopped

    def leader() -> None:
        try:
            group.run(slow)
        except KeyboardInterrupt:
            outcome["leader"] = "interrupted"

    first = threading.Thread(target=leader)
    first.start()
    entered.wait(5)
    follower = threading.Thread(target=lambda: outcome.setdefault("follower", group.run(lambda conn: "mine")))
    follower.start()
    wait_until(lambda: len(group._waiting) == 1)
    gate.set()
    first.join(5)
    follower.join(5)
    assert outcome == {"leader": "interrupted", "follower": "mine"}
