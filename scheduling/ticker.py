"""The ticker: one scheduler process per database (a lock), running periodic jobs with APScheduler."""
from __future__ import annotations

import fcntl
import logging
import os
import signal
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Connection, create_engine, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from storage.db import Database

log = logging.getLogger(__name__)

# The PostgreSQL advisory lock key of "the scheduler" (the bytes of "dxdesk" read as one number).
ADVISORY_LOCK_KEY = int.from_bytes(b"dxdesk", "big")

Job = tuple[str, Callable[[], object], float]


def lock_file(db: Database) -> Path:
    """Where SQLite's scheduler lock lives: beside the database file, which every process of this database sees."""
    database = db.engine.url.database
    if not database or database == ":memory:":
        # A memory database is private to its process, so its lock needs to be seen by no one else.
        return Path(tempfile.mkdtemp(prefix="dxdesk-")) / "scheduler.lock"
    return Path(f"{database}.scheduler.lock")


class SchedulerLock:
    """At most one holder per database, released by `release()` or by the holder's process dying.

    PostgreSQL: a session advisory lock on a connection of its own (not from the pool, where it could
    outlive us in another request's hands). SQLite: `flock` on a file beside the database.
    """

    def __init__(self, db: Database):
        self.db = db
        self.path = None if db.is_postgres else lock_file(db)
        self._conn: Connection | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fd is not None

    def acquire(self, wait: bool = False, poll: float = 5.0, stop: threading.Event | None = None) -> bool:
        """Take the lock; with `wait`, try every `poll` seconds until it is free or `stop` is set."""
        while not self._try():
            if not wait:
                return False
            if stop is None:
                time.sleep(poll)
            elif stop.wait(poll):
                return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()  # ends the session, and with it the advisory lock
            self._conn = None
        if self._fd is not None:
            os.close(self._fd)  # drops the flock; the file stays, removing it would race with a waiter
            self._fd = None

    def _try(self) -> bool:
        if self.held:
            return True
        return self._try_postgres() if self.db.is_postgres else self._try_file()

    def _try_postgres(self) -> bool:
        # Autocommit: an idle-in-transaction session could be ended by the server, taking the lock with it.
        engine = create_engine(self.db.engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            conn = engine.connect()
        except DBAPIError as exc:
            log.warning("scheduler lock: database unreachable (%s)", type(exc).__name__)
            return False
        try:
            taken = conn.execute(select(func.pg_try_advisory_lock(ADVISORY_LOCK_KEY))).scalar()
        except DBAPIError as exc:
            log.warning("scheduler lock: could not ask for it (%s)", type(exc).__name__)
            taken = False
        if taken:
            self._conn = conn
        else:
            conn.close()
        return bool(taken)

    def _try_file(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True


class Ticker:
    """Runs `jobs` (name, callable, every so many seconds) while holding the scheduler lock.

    APScheduler only says when; what is due lives in the database (the outbox), so a run lost to a crash
    or a restart is made up by the next one.
    """

    def __init__(self, db: Database, jobs: list[Job], *, lock_wait_poll: float = 5.0):
        self.jobs = jobs
        self.lock = SchedulerLock(db)
        self.lock_wait_poll = lock_wait_poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run in a background thread (for `dxdesk serve`): wait for the lock, then tick until `stop()`."""
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def run_forever(self) -> None:
        """Run in this (main) thread until SIGTERM or SIGINT, for `dxdesk scheduler`."""
        # The handler only sets an event: shutting APScheduler down from inside a signal handler could
        # deadlock on its own locks, so the scheduler runs in the background and this thread waits.
        previous = {sig: signal.signal(sig, lambda *_: self._stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._run(say=lambda text: print(text, flush=True))
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _run(self, say: Callable[[str], None] = lambda text: None) -> None:
        if not self.lock.acquire():
            log.info("waiting for the scheduler lock: another scheduler holds it")
            say("別のスケジューラーが動いています。止まるまで待機します。")
            if not self.lock.acquire(wait=True, poll=self.lock_wait_poll, stop=self._stop):
                return
        try:
            scheduler = self._scheduler()
            scheduler.start()
            log.info("scheduler running: %s", ", ".join(name for name, _, _ in self.jobs))
            say("スケジューラーを開始しました。")
            self._stop.wait()
            scheduler.shutdown(wait=True)
            say("スケジューラーを停止しました。")
        finally:
            self.lock.release()

    def _scheduler(self) -> BackgroundScheduler:
        # APScheduler logs every run at INFO; with jobs every few seconds that buries the lines that matter.
        logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
        scheduler = BackgroundScheduler(timezone=UTC)
        for name, job, seconds in self.jobs:
            # A run later than one interval is superseded by the next; coalesce makes missed runs one.
            scheduler.add_job(_guarded(name, job), "interval", seconds=seconds, id=name, name=name,
                              coalesce=True, max_instances=1, misfire_grace_time=max(1, int(seconds)),
                              next_run_time=datetime.now(UTC))
        return scheduler


def _guarded(name: str, job: Callable[[], object]) -> Callable[[], None]:
    """The job, with its failures logged by name and kind only: messages may carry personal data."""
    def run() -> None:
        try:
            job()
        except Exception as exc:
            log.error("scheduled job %s failed: %s", name, type(exc).__name__)
    return run


def run_scheduler_command(services, jobs: list[Job]) -> int:
    """`dxdesk scheduler`: the jobs, in this process only while it holds the lock, until stopped."""
    Ticker(services.db, jobs).run_forever()
    return 0
