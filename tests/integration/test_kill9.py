"""`kill -9` of `dxdesk serve` at random moments under a load of bookings, twenty times: nothing lost, nothing twice.

The service runs as a real process on the test database, reaching local fakes of LINE and Google Calendar. Fake users
tap 予約する (and some cancel) by signed webhooks over HTTP, from several threads; a body that got no 200 is sent again,
as LINE redelivers. After the last restart one reconciler pass runs, then the reminders fall due: the inbox is drained,
bookings and calendar events are one to one, no reminder goes out twice, and no user is shown anything twice: each reply
token served at most one reply, each retry key at most one push, and no user saw the same messages twice.
"""
from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import googleapiclient.http
import pytest
from sqlalchemy import func, select

from app import create_app
from bot.jatime import TOKYO
from scheduling import outbox
from scheduling.bookings import RECONCILE_AFTER
from scheduling.clock import MovableClock
from storage.models import Booking, ConversationRow, InboxEvent, LineUser, OutboundMessage, OutboxItem
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.line_api import FakeLineApi
from tests.helpers import (
    SECRET, LineUserDriver, assert_bookings_match_calendar, assert_nothing_shown_twice, drain_through_retries, sign, texts,
)

ROOT = Path(__file__).resolve().parents[2]
CAL = "tanaka@example.jp"
SEED = 912
CYCLES = 20
NEW_PER_CYCLE = 3  # users tapping 予約する in one life of the process
CONFIG = textwrap.dedent(f"""
    [[coordinators]]
    id = "tanaka"
    name = "田中 一郎"
    calendar_id = "{CAL}"
    methods = ["visit", "online", "phone"]
    regions = []
    slot_minutes = 60
    [coordinators.hours]
    mon = ["09:00-12:00", "13:00-17:00"]
    tue = ["09:00-12:00", "13:00-17:00"]
    wed = ["09:00-12:00", "13:00-17:00"]
    thu = ["09:00-12:00", "13:00-17:00"]
    fri = ["09:00-12:00", "13:00-17:00"]
""")
CONFIRMED = "ご予約が確定しました"
CANCELLED = "キャンセルしました"
REMINDERS = ("【リマインダー】明日", "【リマインダー】まもなく")


@pytest.fixture
def fakes():
    with FakeLineApi() as line, FakeGoogleCalendar() as gcal:
        yield line, gcal


@pytest.fixture
def configured(settings, tmp_path, fakes):
    line, gcal = fakes
    config = tmp_path / "dxdesk.toml"
    config.write_text(CONFIG)
    key = gcal.write_service_account_key(tmp_path / "service-account.json")
    return replace(settings, config_path=str(config), line_channel_secret=SECRET, line_channel_access_token="token",
                   line_api_base_url=line.base_url, google_service_account_file=str(key),
                   google_calendar_api_base_url=gcal.api_url, public_base_url="http://127.0.0.1")


def seed_users(configured, n: int) -> dict[str, datetime]:
    """n users who finished the intake and chose a free slot each: each looks at 「この日時で予約しますか」."""
    clock = MovableClock(datetime.now(UTC))
    app = create_app(replace(configured, start_workers=False), clock=clock)
    services = app.extensions["dxdesk"]
    try:
        start = datetime.combine((clock.now() + timedelta(days=2)).astimezone(TOKYO).date(), datetime.min.time(), TOKYO)
        with services.db.unit_of_work() as s:
            slots = services.bookings.free(s, start=start, end=start + timedelta(days=28), now=clock.now())
        chosen = {f"U{k:032x}": slot.start for k, slot in zip(range(1, n + 1), slots)}
        assert len(chosen) == n
        now = clock.now()
        with services.db.unit_of_work() as s:
            s.add_all(LineUser(id=u, source="line", following=True, consent_version="2026-11", consent_at=now,
                               created_at=now, updated_at=now) for u in chosen)
            s.flush()
            s.add_all(ConversationRow(user_id=u, state="choose_slot", suspended=None, updated_at=now, data={
                "method": "online", "region": "kagoshima",
                "chosen": {"c": "tanaka", "t": f"{at.astimezone(TOKYO):%Y%m%d%H%M}"}}) for u, at in chosen.items())
            s.commit()
        return chosen
    finally:
        services.db.dispose()


# `dxdesk serve` as forks of one process that has imported it once: the service's imports (the LINE SDK above all)
# take seconds on a loaded machine, twenty-one lives of the process need not. Each fork runs the real command.
LAUNCHER = """
import os, signal, sys
from handlers import cli
import app
child = None
for command in sys.stdin:
    if command.startswith("start"):
        child = os.fork()
        if child == 0:
            out = os.open(command.split()[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(out, 1)
            os.dup2(out, 2)
            os._exit(cli.main(["serve", "--port", "0", "--no-scheduler"]))
        print(child, flush=True)
    elif command.startswith("kill"):
        os.kill(child, signal.SIGKILL)
        print(os.WTERMSIG(os.waitpid(child, 0)[1]), flush=True)
"""


class Service:
    """`dxdesk serve` as a process of its own, started and killed with SIGKILL."""

    def __init__(self, configured, tmp_path):
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DXDESK_DATABASE_URL": configured.database_url,
               "DXDESK_SECRET_KEY": "test", "DXDESK_CONFIG": configured.config_path,
               "LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": "token",
               "LINE_API_BASE_URL": configured.line_api_base_url, "DXDESK_PUBLIC_URL": "http://127.0.0.1",
               "GOOGLE_SERVICE_ACCOUNT_FILE": configured.google_service_account_file,
               "GOOGLE_CALENDAR_API_BASE_URL": configured.google_calendar_api_base_url}
        self.launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER], cwd=tmp_path, env=env, text=True,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.tmp_path, self.port, self.lives, self.running = tmp_path, None, 0, False

    def _ask(self, command: str) -> int:
        self.launcher.stdin.write(command + "\n")
        self.launcher.stdin.flush()
        return int(self.launcher.stdout.readline())

    def start(self) -> None:
        self.lives += 1
        out = self.tmp_path / f"serve-{self.lives}.out"
        self._ask(f"start {out}")
        self.running = True
        deadline = time.monotonic() + 60
        while not (out.exists() and (found := re.search(r"http://127\.0\.0\.1:(\d+)", out.read_text()))):
            assert time.monotonic() < deadline, out.read_text()[-3000:] if out.exists() else "no output"
            time.sleep(0.02)
        self.port = int(found.group(1))

    def kill(self) -> None:
        self.running = False
        assert self._ask("kill") == signal.SIGKILL

    def close(self) -> None:
        if self.running:
            self.kill()
        self.launcher.stdin.close()
        self.launcher.wait(timeout=30)

    def post(self, body: bytes) -> bool:
        """True when the service acknowledged the body (LINE would not send it again)."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/callback", data=body, headers={
            "Content-Type": "application/json", "X-Line-Signature": sign(body)})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False


def body(line, user: str, *steps: dict) -> bytes:
    driver = LineUserDriver(None, None, line, user)
    return json.dumps({"destination": "Ubot", "events": [driver.event(**step) for step in steps]}).encode()


def confirm(line, user: str) -> bytes:
    return body(line, user, {"type": "postback", "postback": {"data": "action=confirm_slot"}})


def cancel(line, user: str, booking_id: int) -> bytes:
    return body(line, user, {"type": "postback", "postback": {"data": f"action=cancel_booking&b={booking_id}"}},
                {"type": "postback", "postback": {"data": "action=cancel_reason&v=問題が解決した"}})


def confirmed_bookings(db) -> dict[str, int]:
    with db.unit_of_work() as s:
        return dict(s.execute(select(Booking.user_id, Booking.id).where(Booking.status == "confirmed")).all())


def half_done(db) -> int:
    """What a kill left for later: events not processed, bookings between states, messages not yet sent."""
    with db.unit_of_work() as s:
        return sum(s.scalar(select(func.count()).select_from(model).where(condition)) for model, condition in (
            (InboxEvent, InboxEvent.status.in_(("pending", "processing"))),
            (Booking, Booking.status.in_(("pending", "cancelling"))),
            (OutboundMessage, OutboundMessage.status == "pending")))


def test_kill_9_twenty_times_during_bookings_loses_nothing_and_repeats_nothing(configured, fakes, tmp_path,
                                                                               monkeypatch):
    line, gcal = fakes
    rng = random.Random(SEED)
    chosen = seed_users(configured, CYCLES * NEW_PER_CYCLE)
    users = iter(chosen)
    service = Service(configured, tmp_path)
    unacknowledged: list[bytes] = []  # LINE sends these again until they are acknowledged
    cancelling: set[str] = set()
    interrupted = 0  # lives that ended with work half done
    clock = MovableClock(datetime.now(UTC))
    app = create_app(replace(configured, start_workers=False, migrate=False), clock=clock)
    services = app.extensions["dxdesk"]  # reads the database between the lives of the process
    try:
        for _ in range(CYCLES):
            service.start()
            batch = unacknowledged + [confirm(line, next(users)) for _ in range(NEW_PER_CYCLE)]
            booked = [u for u in confirmed_bookings(services.db).items() if u[0] not in cancelling]
            for user, booking_id in rng.sample(booked, min(len(booked), rng.choice([0, 1, 1, 2]))):
                cancelling.add(user)
                batch.append(cancel(line, user, booking_id))
            unacknowledged = []
            lock = threading.Lock()

            def send(b: bytes) -> None:
                if not service.post(b):
                    with lock:
                        unacknowledged.append(b)

            threads = [threading.Thread(target=send, args=(b,), daemon=True) for b in batch]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.0, 0.8))  # the bodies arriving, being processed, replies and calendar on the way
            service.kill()
            for t in threads:
                t.join(timeout=15)
            interrupted += half_done(services.db) > 0
        service.start()  # the last life: everything still owed is sent and processed
        for b in unacknowledged:
            assert service.post(b)
        time.sleep(1.0)
        service.kill()

        # One reconciler pass after the leases of the killed workers have run out.
        monkeypatch.setattr(googleapiclient.http.time, "sleep", lambda seconds: None)
        clock.set(datetime.now(UTC) + RECONCILE_AFTER + timedelta(minutes=2))
        drain_through_retries(services)
        services.bookings.reconcile()
        for _ in range(3):
            services.delivery.send_due()
            clock.advance(minutes=2)
        with services.db.unit_of_work() as s:
            due = sorted(set(s.scalars(select(OutboxItem.due_at).where(OutboxItem.status == "pending"))))
        for moment in due:  # the reminders fall due, one moment after another
            clock.set(moment)
            outbox.send_due(services.db, services.delivery, clock)
        services.delivery.send_due()

        with services.db.unit_of_work() as s:
            open_events = s.scalar(select(func.count()).select_from(InboxEvent).where(
                InboxEvent.status.in_(("pending", "processing"))))
            by_status = dict(s.execute(select(Booking.status, func.count()).group_by(Booking.status)).all())
            reminders = dict(s.execute(select(OutboxItem.status, func.count()).where(
                OutboxItem.kind.like("reminder_%")).group_by(OutboxItem.status)).all())
        assert open_events == 0
        assert set(by_status) <= {"confirmed", "cancelled"}, by_status
        assert_bookings_match_calendar(services.db, gcal, CAL)
        assert by_status == {"confirmed": len(chosen) - len(cancelling), "cancelled": len(cancelling)}

        live = confirmed_bookings(services.db)
        assert_nothing_shown_twice(line, chosen)
        said = {u: [texts(batch) for batch in line.delivered(u)] for u in chosen}
        for user, batches in said.items():
            assert sum(CONFIRMED in t for t in batches) <= 1, (user, batches)
            assert sum(CANCELLED in t for t in batches) <= 1, (user, batches)
            for reminder in REMINDERS:
                assert sum(reminder in t for t in batches) == (1 if user in live else 0), (user, reminder, batches)
        assert sum(any(CONFIRMED in t for t in batches) for batches in said.values()) >= len(chosen) // 2
        assert reminders.get("sent", 0) == 2 * len(live)
        assert service.lives == CYCLES + 1 and interrupted >= CYCLES // 2, interrupted
    finally:
        service.close()
        services.db.dispose()
