"""storage.db.WriterQueue: one SQLite writer at a time in a process, an acknowledgement's write first."""
from __future__ import annotations

import threading
import time

from storage.db import WriterQueue


def wait_until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_an_urgent_writer_goes_before_the_writers_already_waiting():
    queue, order = WriterQueue(), []
    assert queue.acquire(urgent=False, timeout=1)

    def write(name: str, urgent: bool) -> None:
        assert queue.acquire(urgent=urgent, timeout=5)
        order.append(name)
        queue.release()

    plain = [threading.Thread(target=write, args=(f"worker-{n}", False)) for n in range(3)]
    for t in plain:
        t.start()
    urgent = threading.Thread(target=write, args=("webhook", True))
    urgent.start()
    wait_until(lambda: queue.waiting(urgent=True) == 1)  # waiting, like the workers
    queue.release()
    for t in (*plain, urgent):
        t.join(5)
    assert order[0] == "webhook" and sorted(order[1:]) == ["worker-0", "worker-1", "worker-2"]


def test_a_writer_that_waits_too_long_is_told_so_and_the_holder_keeps_the_lock():
    queue = WriterQueue()
    assert queue.acquire(urgent=False, timeout=1)
    assert not queue.acquire(urgent=True, timeout=0.05)
    assert not queue.acquire(urgent=False, timeout=0.05)
    queue.release()
    assert queue.acquire(urgent=False, timeout=0.05)


def test_a_writer_that_gave_up_is_not_handed_the_turn_the_next_one_is():
    queue, got = WriterQueue(), []
    assert queue.acquire(urgent=False, timeout=1)
    assert not queue.acquire(urgent=False, timeout=0.05)  # gave up waiting
    waiter = threading.Thread(target=lambda: got.append(queue.acquire(urgent=False, timeout=5)))
    waiter.start()
    wait_until(lambda: queue.waiting(urgent=False) == 1)
    queue.release()
    waiter.join(5)
    assert got == [True]
    assert not queue.acquire(urgent=True, timeout=0.05)  # the waiter holds it now
    queue.release()
    assert queue.acquire(urgent=False, timeout=0.05)
