"""A stateful property test: random runs of booking, change, cancel, seminar seats, duplicate webhooks, reminder ticks,
calendar outages and restarts keep the promises that hold whatever happens.

Hypothesis drives the real services (BookingService, the seminar registrations, the outbox, the inbox) on the test
database, with local fakes of Google Calendar and LINE; after every step the invariants are read back from the database
and the fakes: no coordinator booked twice at once, an event for each confirmed booking and none for a cancelled one,
no seminar seat oversold, each scheduled send delivered at most once, nothing sent for a cancelled booking or seat.
"""
from __future__ import annotations

import itertools
import textwrap
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import googleapiclient.http
from hypothesis import HealthCheck, settings as hypothesis_settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select, text

from app import create_app
from bot.jatime import TOKYO
from handlers.inbox import store_events
from scheduling import outbox, seminar_reminders
from scheduling import seminars as seminar_domain
from scheduling.bookings import RECONCILE_AFTER
from scheduling.clock import MovableClock
from storage import seminars as seminar_store
from storage.models import (
    ACTIVE_BOOKING, HOLDS_SEAT, LIVE_REGISTRATION, Base, Booking, InboxEvent, LineUser, OutboxItem, Seminar,
    SeminarRegistration,
)
from tests.conftest import START
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.line_api import FakeLineApi
from tests.helpers import SECRET, texts

CALENDARS = {"tanaka": "tanaka@example.jp", "yamashita": "yamashita@example.jp"}
USERS = [f"U{n:032x}" for n in range(1, 4)]
SEATS = {"onsite": 1, "online": 2}  # small, so full and waiting happen
HOURS = '["09:00-12:00", "13:00-17:00"]'
CONFIG = "".join(textwrap.dedent(f"""
    [[coordinators]]
    id = "{c}"
    name = "{c}"
    calendar_id = "{cal}"
    methods = ["visit", "online", "phone"]
    regions = []
    slot_minutes = 60
    [coordinators.hours]
    mon = {HOURS}
    tue = {HOURS}
    wed = {HOURS}
    thu = {HOURS}
    fri = {HOURS}
""") for c, cal in CALENDARS.items())
PUBLIC_URL = "http://localhost"
RUNS = hypothesis_settings(max_examples=20, stateful_step_count=30, deadline=None, database=None,
                           suppress_health_check=list(HealthCheck))


def test_random_runs_of_bookings_seats_webhooks_ticks_and_restarts_keep_every_invariant(settings, tmp_path,
                                                                                        monkeypatch):
    monkeypatch.setattr(googleapiclient.http.time, "sleep", lambda seconds: None)
    config = tmp_path / "dxdesk.toml"
    config.write_text(CONFIG)
    runs = itertools.count()

    class Desk(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.run = next(runs)
            self.clock = MovableClock(START)
            self.gcal = FakeGoogleCalendar().__enter__()
            self.line = FakeLineApi().__enter__()
            key = self.gcal.write_service_account_key(tmp_path / f"key-{self.run}.json")
            url = settings.database_url
            if url.startswith("sqlite"):
                url = f"sqlite:///{tmp_path}/run-{self.run}.sqlite3"
            self.settings = replace(settings, database_url=url, config_path=str(config), line_channel_secret=SECRET,
                                    line_channel_access_token="token", line_api_base_url=self.line.base_url,
                                    google_service_account_file=str(key),
                                    google_calendar_api_base_url=self.gcal.api_url, public_base_url=PUBLIC_URL)
            self.services = self._start(migrate=True)
            self._empty_database()
            now = self.clock.now()
            with self.services.db.unit_of_work() as s:
                s.add_all(LineUser(id=u, source="line", following=True, created_at=now, updated_at=now) for u in USERS)
                s.flush()
                for n in (3, 6):  # a seminar three days ahead, one six
                    start = datetime.combine(now.astimezone(TOKYO).date() + timedelta(days=n),
                                             datetime.min.time(), TOKYO).replace(hour=14)
                    seminar_store.create(s, title=f"DXセミナー{n}", start_at=start, end_at=start + timedelta(hours=2),
                                         onsite_seats=SEATS["onsite"], online_seats=SEATS["online"], now=now,
                                         online_url="https://meet.example.jp/x")
                s.commit()
            self.webhooks = 0
            self.before = {}  # booking id: (coordinator, start) before its last change of date

        def _start(self, migrate: bool):
            app = create_app(replace(self.settings, migrate=migrate), clock=self.clock)
            return app.extensions["dxdesk"]

        def _empty_database(self):
            if self.services.db.is_postgres:
                tables = ", ".join(t.name for t in Base.metadata.sorted_tables if t.name != "alembic_version")
                with self.services.db.engine.begin() as conn:
                    conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))

        def teardown(self):
            self.services.stop()
            self.services.db.dispose()
            self.gcal.__exit__(None, None, None)
            self.line.__exit__(None, None, None)

        # --- helpers ------------------------------------------------------------------------------------------

        def _rows(self, model, *where):
            with self.services.db.unit_of_work() as s:
                return list(s.scalars(select(model).where(*where)))

        def _free(self, pick: int, coordinator: str | None = None):
            now = self.clock.now()
            with self.services.db.unit_of_work() as s:
                slots = self.services.bookings.free(s, start=now, end=now + timedelta(days=4), now=now,
                                                    coordinator=coordinator)
            return slots[pick % len(slots)] if slots else None

        def _reserve(self, user, coordinator, start, replaces=None):
            bookings = self.services.bookings
            with self.services.db.unit_of_work() as s:
                reserved = bookings.reserve(s, user_id=user, coordinator=coordinator, start=start, method="online",
                                            region=None, consultation_id=None, now=self.clock.now(),
                                            replaces=replaces)
                s.commit()
            if reserved is None:
                return
            if reserved.changed and reserved.replaced is None:
                self.before[reserved.booking.id] = (reserved.booking.coordinator_id, reserved.previous[0])
            self.services.delivery.send(reserved.notices)
            if reserved.replaced is not None:
                bookings.finish_cancel(reserved.replaced.id)
            bookings.confirm(reserved.booking.id, changed=reserved.changed, previous=reserved.previous)

        def _own(self, user, pick, model, statuses):
            rows = self._rows(model, model.user_id == user, model.status.in_(statuses))
            return rows[pick % len(rows)] if rows else None

        # --- rules --------------------------------------------------------------------------------------------

        @rule(user=st.sampled_from(USERS), pick=st.integers(0, 60),
              coordinator=st.sampled_from([None, *CALENDARS]))
        def book(self, user, pick, coordinator):
            slot = self._free(pick, coordinator)
            if slot is not None:
                self._reserve(user, slot.coordinator, slot.start)

        @rule(user=st.sampled_from(USERS), pick=st.integers(0, 60))
        def book_a_taken_slot(self, user, pick):
            taken = self._rows(Booking, Booking.status.in_(ACTIVE_BOOKING))
            if taken:
                b = taken[pick % len(taken)]
                self._reserve(user, b.coordinator_id, b.start)

        @rule(user=st.sampled_from(USERS), pick=st.integers(0, 60), other=st.booleans())
        def change(self, user, pick, other):
            booking = self._own(user, pick, Booking, ACTIVE_BOOKING)
            if booking is None:
                return
            coordinator = next(c for c in CALENDARS if (c != booking.coordinator_id) == other)
            slot = self._free(pick, coordinator)
            if slot is not None:
                self._reserve(user, slot.coordinator, slot.start, replaces=booking.id)

        @rule(user=st.sampled_from(USERS), pick=st.integers(0, 60))
        def change_back(self, user, pick):
            """Back to the time the booking had before its last change, if that is still free."""
            booking = self._own(user, pick, Booking, ACTIVE_BOOKING)
            if booking is not None and booking.id in self.before:
                self._reserve(user, *self.before[booking.id], replaces=booking.id)

        @rule(user=st.sampled_from(USERS), pick=st.integers(0, 60))
        def cancel(self, user, pick):
            booking = self._own(user, pick, Booking, ACTIVE_BOOKING)
            if booking is None:
                return
            with self.services.db.unit_of_work() as s:
                notices = self.services.bookings.cancel(s, booking.id, user_id=user, reason="都合", by="user",
                                                        now=self.clock.now())
                s.commit()
            self.services.delivery.send(notices or [])
            self.services.bookings.finish_cancel(booking.id)

        @rule(user=st.sampled_from(USERS), which=st.integers(0, 1), mode=st.sampled_from(sorted(SEATS)),
              wait=st.booleans())
        def register(self, user, which, mode, wait):
            seminar = self._rows(Seminar)[which]
            with self.services.db.unit_of_work() as s:
                seminar_domain.register(s, seminar.id, user, mode, self.clock.now(), wait=wait, company="鹿屋商店",
                                        contact_name="大隅 太郎")
                s.commit()

        @rule(user=st.sampled_from(USERS), pick=st.integers(0, 60))
        def cancel_registration(self, user, pick):
            registration = self._own(user, pick, SeminarRegistration, LIVE_REGISTRATION)
            if registration is None:
                return
            with self.services.db.unit_of_work() as s:
                done = seminar_domain.cancel(s, s.get(SeminarRegistration, registration.id), by="user",
                                             now=self.clock.now(), public_url=PUBLIC_URL)
                s.commit()
            self.services.delivery.send(done.outbound_ids if done else [])

        @rule(user=st.sampled_from(USERS), words=st.sampled_from(["メニュー", "予約の確認", "こんにちは"]))
        def duplicate_webhook(self, user, words):
            self.webhooks += 1
            event = {"type": "message", "mode": "active", "timestamp": 1, "webhookEventId": f"DUP{self.webhooks:06d}",
                     "deliveryContext": {"isRedelivery": False}, "source": {"type": "user", "userId": user},
                     "replyToken": self.line.issue_reply_token(user),
                     "message": {"id": str(self.webhooks), "type": "text", "text": words, "quoteToken": "q"}}
            now = self.clock.now()
            assert store_events(self.services.db, [event, dict(event)], "line", now) == 1
            redelivered = {**event, "deliveryContext": {"isRedelivery": True}}
            assert store_events(self.services.db, [redelivered], "line", now) == 0
            self.services.inbox.drain()
            with self.services.db.unit_of_work() as s:
                assert s.scalar(select(func.count()).select_from(InboxEvent).where(
                    InboxEvent.event_key == event["webhookEventId"])) == 1

        @rule(hours=st.sampled_from([1, 3, 8, 20]))
        def tick(self, hours):
            """Time passes: the scheduler's jobs run (reminders planned and sent, retries, the reconciler)."""
            self.clock.advance(hours=hours)
            seminar_reminders.plan(self.services.db, self.services.config.seminars, self.clock)
            outbox.send_due(self.services.db, self.services.delivery, self.clock)
            self.services.delivery.send_due()
            self.services.bookings.reconcile()
            self.services.inbox.drain()
            # The jobs take a moment: what anyone does next is after them, not at their very instant (else a cancel
            # right after a reminder went would look, by its timestamps, as if the reminder went after it).
            self.clock.advance(seconds=1)

        @rule(fault=st.sampled_from([503, (403, "rateLimitExceeded"), 409]))
        def calendar_outage(self, fault):
            """The next bookings' calendar writes fail for a while; they stay pending until the reconciler."""
            self.gcal.script("POST", "/calendar/v3/calendars/", [fault] * 8)

        @rule()
        def reconcile(self):
            self.clock.advance(seconds=RECONCILE_AFTER.total_seconds() + 1)
            self.services.bookings.reconcile()

        @rule()
        def restart(self):
            self.services.stop()
            self.services.db.dispose()
            self.services = self._start(migrate=False)

        # --- invariants ---------------------------------------------------------------------------------------

        @invariant()
        def no_coordinator_is_booked_twice_at_once(self):
            active = sorted(self._rows(Booking, Booking.status.in_(ACTIVE_BOOKING)),
                            key=lambda b: (b.coordinator_id, b.start))
            for a, b in zip(active, active[1:]):
                assert a.coordinator_id != b.coordinator_id or a.end <= b.start, (a.id, b.id)

        @invariant()
        def each_confirmed_booking_has_its_one_event_and_no_event_outlives_its_booking(self):
            by_status = {}
            for b in self._rows(Booking):
                by_status.setdefault(b.status, {})[b.calendar_event_id] = b
            events = {}
            for coordinator, calendar in CALENDARS.items():
                for e in self.gcal.events(calendar):
                    assert e["id"] not in events
                    events[e["id"]] = (coordinator, datetime.fromisoformat(e["start"]["dateTime"]))
            for event_id, b in by_status.get("confirmed", {}).items():
                assert events.get(event_id) == (b.coordinator_id, b.start), b.id
            live = {**by_status.get("confirmed", {}), **by_status.get("pending", {}),
                    **by_status.get("cancelling", {})}  # pending: maybe inserted; cancelling: the delete may lag
            assert set(events) <= set(live)

        @invariant()
        def no_seat_is_oversold_and_nobody_waits_beside_a_free_seat(self):
            for seminar in self._rows(Seminar):
                regs = self._rows(SeminarRegistration, SeminarRegistration.seminar_id == seminar.id)
                for mode, capacity in SEATS.items():
                    holders = sum(r.mode == mode and r.status in HOLDS_SEAT for r in regs)
                    waiting = sum(r.mode == mode and r.status == "waiting" for r in regs)
                    assert holders <= capacity, (seminar.id, mode)
                    assert not waiting or holders == capacity or seminar.start_at <= self.clock.now(), (seminar.id, mode)
                users = [r.user_id for r in regs if r.status in LIVE_REGISTRATION]
                assert len(users) == len(set(users))

        @invariant()
        def each_scheduled_send_reaches_its_user_at_most_once(self):
            sent = self._rows(OutboxItem, OutboxItem.status == "sent")
            for user in USERS:
                said = [texts(batch) for batch in self.line.delivered(user)]
                for item in sent:
                    if item.to == user:
                        assert sum(texts(item.messages) == t or texts(item.messages) in t for t in said) <= 1, item.key
                for kind in ("reminder_day_before", "reminder_hour_before"):
                    refs = [(i.ref, i.key.rsplit(":", 1)[1]) for i in sent if i.to == user and i.kind == kind]
                    assert len(refs) == len(set(refs))

        @invariant()
        def each_confirmed_booking_keeps_its_reminders(self):
            rules = self.services.config.reminders
            for b in self._rows(Booking, Booking.status == "confirmed"):
                start = b.start.astimezone(TOKYO)
                day_before = datetime.combine(start.date() - timedelta(days=1),
                                              datetime.strptime(rules.day_before_at, "%H:%M").time(), TOKYO)
                for kind, due in (("reminder_day_before", day_before),
                                  ("reminder_hour_before", start - timedelta(hours=rules.hours_before))):
                    if due <= b.updated_at:
                        continue  # confirmed too late for this one
                    [item] = self._rows(OutboxItem, OutboxItem.key == f"{kind}:booking:{b.id}:{start:%Y%m%d%H%M}")
                    assert item.status != "cancelled", item.key

        @invariant()
        def nothing_is_sent_for_a_cancelled_booking_or_registration(self):
            cancelled_at = {f"booking:{b.id}": b.updated_at for b in self._rows(
                Booking, Booking.status.in_(("cancelling", "cancelled")))}
            cancelled_at |= {f"{seminar_reminders.REF}{r.id}": r.cancelled_at for r in self._rows(
                SeminarRegistration, SeminarRegistration.status == "cancelled")}
            for item in self._rows(OutboxItem, OutboxItem.status == "sent", OutboxItem.ref.in_(list(cancelled_at))):
                assert item.done_at < cancelled_at[item.ref], item.key

    run_state_machine_as_test(Desk, settings=RUNS)
