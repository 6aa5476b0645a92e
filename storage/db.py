"""The database: engine set-up for SQLite and PostgreSQL, the unit of work, and migrations."""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")
MIGRATIONS = Path(__file__).with_name("migrations")
READ_ONLY = "dxdesk_read_only"
URGENT = "dxdesk_urgent"  # a write someone waits on (LINE, for its webhook's answer)


class NoResultRows(logging.Filter):
    """SQLAlchemy's engine logger at DEBUG writes every result row ("Row (...)"), and hide_parameters does not
    hide those: rows carry names, phones and questions, so they never reach a handler. Statements still do."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(("Row ", "Col ")))


def _drop_result_rows() -> None:
    logger = logging.getLogger("sqlalchemy.engine.Engine")
    if not any(isinstance(f, NoResultRows) for f in logger.filters):
        logger.addFilter(NoResultRows())


class WriterQueue:
    """One writer at a time; when it lets go, it hands the turn straight to the urgent writer waiting longest, else to
    the writer waiting longest (one wakes, not every waiter to look and wait again)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._held = False
        self._urgent: deque[threading.Lock] = deque()  # each waiter's gate, released when its turn comes
        self._others: deque[threading.Lock] = deque()

    def waiting(self, *, urgent: bool) -> int:
        return len(self._urgent if urgent else self._others)

    def acquire(self, *, urgent: bool, timeout: float) -> bool:
        with self._lock:
            if not self._held:
                self._held = True
                return True
            gate, line = threading.Lock(), self._urgent if urgent else self._others
            gate.acquire()
            line.append(gate)
        if gate.acquire(timeout=timeout):
            return True
        with self._lock:
            if gate in line:
                line.remove(gate)
                return False
        return True  # handed the turn just as the wait ran out: it is ours

    def release(self) -> None:
        with self._lock:
            line = self._urgent or self._others
            if line:
                line.popleft().release()  # the lock stays held: it is the next writer's now
            else:
                self._held = False


_UNDONE = object()


class _Job:
    def __init__(self, work):
        self.work, self.result, self.error = work, _UNDONE, None
        self.done, self.lead = threading.Event(), False


class GroupCommit:
    """Short writes from several threads committed together: the thread that finds none under way leads, and once it
    is in a transaction (on SQLite, once it has the write lock) it runs every write waiting by then, its own among
    them, and commits them as one. Under load an acknowledgement then waits for one turn of the lock with the others
    instead of one turn each. The next waiting thread leads the next group, so no thread writes more than one group.
    When a group fails, each of its writes is tried again alone: one bad write fails only its own caller."""

    def __init__(self, begin):
        self._begin = begin  # () -> a context manager giving a connection in a transaction, committed on exit
        self._lock = threading.Lock()
        self._waiting: list[_Job] = []
        self._busy = False

    def run(self, work):
        """work(conn) in a transaction, perhaps shared with other threads' work; returns what it returned."""
        job = _Job(work)
        with self._lock:
            self._waiting.append(job)
            if not self._busy:
                self._busy = job.lead = True
        if not job.lead:
            job.done.wait()
        if job.lead:  # first, or handed the lead by the group before: its job is still waiting
            self._write_group()
        if job.error is not None:
            raise job.error
        return job.result

    def _take(self) -> list[_Job]:
        with self._lock:
            group, self._waiting = self._waiting, []
        return group

    def _write_group(self) -> None:
        group: list[_Job] = []
        try:
            try:
                with self._begin() as conn:
                    group = self._take()
                    for job in group:
                        job.result = job.work(conn)
            except Exception as exc:
                group = group or self._take()  # it could not begin: each tries alone (and likely fails alike)
                for job in group:
                    job.result = _UNDONE
                    if len(group) == 1:
                        job.error = exc
                    else:
                        self._alone(job)
        finally:
            with self._lock:
                following = self._waiting[0] if self._waiting else None
                if following is None:
                    self._busy = False
                else:
                    following.lead = True
            for job in group:
                if job.result is _UNDONE and job.error is None:  # interrupted: never a silent success
                    job.error = RuntimeError("the group commit was interrupted")
                job.done.set()
            if following is not None:
                following.done.set()

    def _alone(self, job: _Job) -> None:
        try:
            with self._begin() as conn:
                job.result = job.work(conn)
        except Exception as exc:
            job.result, job.error = _UNDONE, exc


def make_engine(url: str) -> Engine:
    """An engine for `url`; for SQLite, creates the folder and makes every transaction BEGIN IMMEDIATE.

    Statement parameters are hidden from error messages: they carry names, phones and questions.
    """
    _drop_result_rows()
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return _pinged_when_idle(create_engine(url, pool_size=10, max_overflow=20, hide_parameters=True))
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)

    # pysqlite's deferred BEGIN lets two writers deadlock on the read->write upgrade (SQLITE_BUSY with no
    # wait); taking the write lock at BEGIN makes SQLite queue writers instead, which is what locking
    # reads (claiming an event, booking a slot) rely on.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL syncs at checkpoints, not at every commit (5 ms each here, all under the one write lock):
        # a commit survives the service being killed, not a power cut of the machine. Production runs PostgreSQL.
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")
        dbapi_conn.execute("PRAGMA busy_timeout=30000")

    # SQLite makes a writer that finds the lock taken sleep and look again (1, 2, 5 ... up to 100 ms), so under load
    # writers sleep while the lock is free. This process's writers queue here instead and take SQLite's the moment
    # the one before them has committed; an acknowledgement's write (URGENT) goes before the others waiting. Other
    # processes still meet busy_timeout, and so does a writer that waited here 30 s.
    writers, holder = WriterQueue(), [None]  # the DBAPI connection in a write transaction, if any

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # A reading session (Database.reading) begins deferred: in WAL mode it never waits for the writer.
        options = conn.get_execution_options()
        if options.get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
            return
        if writers.acquire(urgent=bool(options.get(URGENT)), timeout=30):
            holder[0] = conn.connection.dbapi_connection
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _end_write(conn.connection.dbapi_connection)
            raise

    def _end_write(dbapi_conn) -> None:
        dbapi_conn = getattr(dbapi_conn, "dbapi_connection", dbapi_conn)  # the pool's proxy, or the connection
        if holder[0] is dbapi_conn and dbapi_conn is not None:
            holder[0] = None
            writers.release()

    def _then_end_write(finish):
        def wrapped(dbapi_conn):
            try:
                finish(dbapi_conn)
            finally:
                _end_write(dbapi_conn)
        return wrapped

    engine.dialect.do_commit = _then_end_write(engine.dialect.do_commit)
    engine.dialect.do_rollback = _then_end_write(engine.dialect.do_rollback)
    # A connection handed back without either (invalidated, say) lets go too.
    event.listen(engine, "checkin", lambda dbapi_conn, _record: _end_write(dbapi_conn))
    return engine


PING_AFTER = 1.0  # seconds: a pooled connection idle for longer is checked before use


def _pinged_when_idle(engine: Engine) -> Engine:
    """SQLAlchemy's pool_pre_ping, for connections idle over PING_AFTER only: under load each checkout would cost a
    round trip to PostgreSQL. One that died while busy fails its statement, which invalidates the pool (and the
    webhook answers 503, an inbox event is tried again)."""
    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn, record, _proxy):
        if time.monotonic() - record.info.get("idle_since", 0.0) <= PING_AFTER:
            return
        try:
            dbapi_conn.execute("SELECT 1")
            dbapi_conn.rollback()
        except Exception as exc:
            raise DisconnectionError("stale connection") from exc  # the pool connects afresh and tries again

    return engine


def missing_sqlite_file(url: str) -> Path | None:
    """The absolute path of the SQLite file `url` names when that file does not exist (opening it would create it)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    path = Path(parsed.database).absolute()
    return None if path.exists() else path


class Database:
    """One engine and its session factory, built once per app."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readers = sessionmaker(self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)
        self._urgent_engine = self.engine.execution_options(**{URGENT: True})
        self._urgent = sessionmaker(self._urgent_engine, expire_on_commit=False)
        self._group, self._urgent_group = GroupCommit(self.engine.begin), GroupCommit(self._urgent_engine.begin)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def unit_of_work(self, *, urgent: bool = False) -> Iterator[Session]:
        """A session whose work is rolled back unless the caller commits it. An `urgent` one (a short write that
        someone waits on) goes before the other writers waiting on SQLite's lock."""
        session = (self._urgent if urgent else self.sessions)()
        try:
            yield session
        finally:
            session.close()  # rolls back what was not committed; loaded objects stay readable

    def grouped(self, work: Callable[[Connection], T], *, urgent: bool = False) -> T:
        """work(conn) on a connection in a transaction: for a few plain statements on a hot path (an acknowledgement's
        INSERT, a send's outcome), which a Session would cost half as much again. On SQLite, whose writers take turns,
        the transaction is shared with the grouped work of other threads waiting at the same time (GroupCommit), and
        `work` may run twice; on PostgreSQL each has its own, side by side with the others."""
        if self.is_postgres:
            with (self._urgent_engine if urgent else self.engine).begin() as conn:
                return work(conn)
        return (self._urgent_group if urgent else self._group).run(work)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for looking only: on SQLite it does not take the write lock, so polling for work (is a message
        due? an event to take?) never queues behind a writer nor holds one up. Not for writing: use unit_of_work."""
        session = self._readers()
        try:
            yield session
        finally:
            session.close()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def upgrade(self) -> None:
        """Bring the schema to the newest migration."""
        upgrade(self.url, self.engine)

    def is_current(self) -> bool:
        """Whether every migration has been applied (an empty database has none)."""
        heads = set(ScriptDirectory.from_config(alembic_config(self.url)).get_heads())
        with self.engine.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads()) == heads

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


# Several web workers starting at once on a fresh PostgreSQL database must not race to create alembic_version: each
# migrates under this transaction-level advisory lock, so the later ones wait and then find nothing to do. (SQLite
# already serialises them: every transaction there begins IMMEDIATE.)
MIGRATION_LOCK = 0x64786D67  # "dxmg"


def upgrade(url: str, engine: Engine) -> None:
    cfg = alembic_config(url)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
