"""The ticker's promises: one scheduler per database, even after a crash; jobs run again and again, failing or not."""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from scheduling.ticker import SchedulerLock, Ticker
from storage.db import Database

ROOT = Path(__file__).resolve().parents[2]


def eventually(condition, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


class Counter:
    def __init__(self):
        self.runs = 0
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            self.runs += 1


@pytest.fixture
def db(database_url):
    db = Database(database_url)
    yield db
    db.dispose()


def _hold_the_lock(url: str, holding, release) -> None:
    lock = SchedulerLock(Database(url))
    assert lock.acquire()
    holding.set()
    release.wait(60)
    lock.release()


@pytest.mark.parametrize("holder_ends_by", ["release", "kill -9"])
def test_a_second_process_gets_the_lock_only_after_the_holder_lets_go(db, database_url, holder_ends_by):
    ctx = multiprocessing.get_context("spawn")
    holding, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_the_lock, args=(database_url, holding, release))
    holder.start()
    assert holding.wait(60)

    mine = SchedulerLock(db)
    assert not mine.acquire()
    assert not mine.held

    if holder_ends_by == "release":
        release.set()
    else:
        os.kill(holder.pid, signal.SIGKILL)
    assert eventually(mine.acquire)
    holder.join(timeout=30)
    mine.release()


def test_a_released_lock_can_be_taken_again_in_the_same_process(db):
    first, second = SchedulerLock(db), SchedulerLock(db)
    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


def test_waiting_for_the_lock_ends_when_asked_to_stop(db):
    holder, waiter = SchedulerLock(db), SchedulerLock(db)
    holder.acquire()
    stop = threading.Event()
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(waiter.acquire(wait=True, poll=0.05, stop=stop)))
    thread.start()
    stop.set()
    thread.join(timeout=10)
    assert result == [False]
    holder.release()


def test_the_ticker_runs_its_jobs_again_and_again(db):
    counter = Counter()
    ticker = Ticker(db, [("count", counter, 0.1)])
    ticker.start()
    assert eventually(lambda: counter.runs >= 3)
    ticker.stop()
    assert not ticker.lock.held


def test_a_failing_job_is_logged_by_name_without_its_message_and_keeps_running(db, caplog):
    calls = Counter()

    def failing():
        calls()
        raise RuntimeError("山田太郎 090-1234-5678")

    ticker = Ticker(db, [("reminders", failing, 0.1)])
    with caplog.at_level(logging.ERROR, logger="scheduling.ticker"):
        ticker.start()
        assert eventually(lambda: calls.runs >= 2)
        ticker.stop()
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert failures and all(m == "scheduled job reminders failed: RuntimeError" for m in failures)


def test_a_second_ticker_on_the_same_database_waits_until_the_first_stops(db, database_url):
    first_runs, second_runs = Counter(), Counter()
    first = Ticker(db, [("first", first_runs, 0.05)], lock_wait_poll=0.05)
    second = Ticker(Database(database_url), [("second", second_runs, 0.05)], lock_wait_poll=0.05)
    first.start()
    assert eventually(lambda: first.lock.held)
    second.start()
    assert eventually(lambda: first_runs.runs >= 10)
    assert second_runs.runs == 0

    first.stop()
    assert eventually(lambda: second_runs.runs >= 1)
    second.stop()
    second.lock.db.dispose()


SCHEDULER = """
import sys
from pathlib import Path
from storage.db import Database
from scheduling.ticker import Ticker

out = Path(sys.argv[2])
Ticker(Database(sys.argv[1]), [("mark", lambda: out.open("a").write("x"), 0.05)], lock_wait_poll=0.05).run_forever()
"""


def test_the_scheduler_command_waits_for_a_running_one_and_takes_over_when_it_is_terminated(database_url, tmp_path):
    def scheduler(name: str) -> tuple[subprocess.Popen, Path, Path]:
        marks, printed = tmp_path / f"{name}.marks", tmp_path / f"{name}.out"
        marks.touch()
        process = subprocess.Popen([sys.executable, "-c", SCHEDULER, database_url, str(marks)], cwd=ROOT,
                                   stdout=printed.open("w"), stderr=subprocess.STDOUT)
        return process, marks, printed

    first, first_marks, first_out = scheduler("first")
    assert eventually(lambda: first_marks.read_text())
    second, second_marks, second_out = scheduler("second")
    try:
        assert eventually(lambda: "待機します" in second_out.read_text())
        assert second_marks.read_text() == ""

        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
        assert "スケジューラーを停止しました" in first_out.read_text()
        assert eventually(lambda: second_marks.read_text())
        second.send_signal(signal.SIGINT)
        assert second.wait(timeout=30) == 0
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
