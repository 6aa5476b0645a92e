"""Seminar reminders: due 3 days before at 10:00 and on the day at 8:00 (Tokyo, configurable), the online URL to
online participants only and the venue to on-site ones, one multicast per identical content, once across restarts,
nothing to a registration cancelled meanwhile."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from app import build_services
from bot.config import SeminarReminders
from scheduling import outbox, seminar_reminders
from storage import seminars
from storage.models import TOKYO, LineUser, OutboundMessage, OutboxItem, Seminar, SeminarRegistration
from tests.helpers import LineUserDriver, texts
from tests.integration.test_announcements import MULTICAST, app, configured, line, services  # noqa: F401

# The conftest clock starts on Tuesday 2026-11-24 10:00 in Tokyo; the seminar is a week later.
SEMINAR_START = datetime(2026, 12, 1, 14, 0, tzinfo=TOKYO)


def tokyo(month, day, hour, minute=0):
    return datetime(2026, month, day, hour, minute, tzinfo=TOKYO)


def move_to(clock, moment):
    clock.advance(seconds=(moment - clock.now()).total_seconds())


@pytest.fixture
def seminar(services, clock):
    with services.db.unit_of_work() as s:
        row = seminars.create(s, title="生成AI活用セミナー", start_at=SEMINAR_START,
                              end_at=SEMINAR_START + timedelta(hours=2), onsite_seats=10, online_seats=10,
                              online_url="https://meet.example.jp/ai-seminar", now=clock.now())
        s.commit()
        return row.id


def register(app, line, services, seminar_id, user, mode, status="registered") -> int:
    """A LINE user who follows the account (a signed follow event) and holds a registration row."""
    LineUserDriver(app.test_client(), app, line, user=user).send(type="follow")
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        row = SeminarRegistration(seminar_id=seminar_id, user_id=user, mode=mode, status=status,
                                  checkin_token=seminars.new_checkin_token(), created_at=now, updated_at=now)
        s.add(row)
        s.commit()
        return row.id


def tick(services):
    """What the scheduler's jobs do, in order: plan reminders, then send what is due."""
    seminar_reminders.plan(services.db, services.config.seminars, services.clock)
    return outbox.send_due(services.db, services.delivery, services.clock)


def user(n):
    return f"U{n:032x}"


def test_reminders_go_at_their_times_with_the_right_content_per_mode_once_and_not_to_the_cancelled(
        app, services, configured, line, clock, seminar):
    onsite = [register(app, line, services, seminar, user(n), "onsite") for n in range(3)]
    online = [register(app, line, services, seminar, user(n), "online") for n in range(3, 5)]
    register(app, line, services, seminar, user(5), "onsite", status="waiting")
    register(app, line, services, seminar, user(6), "online", status="cancelled")
    line_before = len(line.requests())

    move_to(clock, tokyo(11, 27, 9))
    assert tick(services) == 0
    with services.db.unit_of_work() as s:
        items = list(s.scalars(select(OutboxItem).where(OutboxItem.kind == "seminar_reminder")))
        assert len(items) == 10  # 5 seats held, 2 reminders each; nothing for the waiting or the cancelled
        assert {i.due_at.astimezone(TOKYO) for i in items} == {tokyo(11, 28, 10), tokyo(12, 1, 8)}
        assert {i.ref for i in items} == {f"seminar_registration:{r}" for r in onsite + online}
    with services.db.unit_of_work() as s:  # cancelled after the reminders were planned
        s.get(SeminarRegistration, onsite[2]).status = "cancelled"
        s.commit()

    move_to(clock, tokyo(11, 28, 9, 59))
    assert tick(services) == 0 and line.requests(MULTICAST) == []
    move_to(clock, tokyo(11, 28, 10))
    assert tick(services) == 4

    sent = {tuple(sorted(r.body["to"])): texts(r.body["messages"]) for r in line.requests(MULTICAST)}
    assert set(sent) == {(user(0), user(1)), (user(3), user(4))}
    on_site, online = sent[(user(0), user(1))], sent[(user(3), user(4))]
    assert "3日後" in on_site and "かごゆいテラス（鹿児島県庁18階）" in on_site and "google.com/maps" in on_site
    assert "meet.example.jp" not in on_site
    assert "https://meet.example.jp/ai-seminar" in online and "かごゆいテラス" not in online
    assert "12月1日(火) 14:00〜16:00" in online
    with services.db.unit_of_work() as s:
        cancelled = s.scalar(select(OutboxItem).where(OutboxItem.key == f"seminar-reminder:{onsite[2]}:before"))
        assert cancelled.status == "skipped"

    # A restart of the scheduler: a new set of services plans and sends nothing twice.
    restarted = build_services(replace(configured, migrate=False), clock)
    try:
        assert tick(restarted) == 0 and tick(services) == 0
        move_to(clock, tokyo(12, 1, 8))
        assert tick(restarted) == 4 and tick(services) == 0
    finally:
        restarted.stop()
        restarted.db.dispose()
    day_of = [r for r in line.requests(MULTICAST)][2:]
    assert len(day_of) == 2 and all("本日" in texts(r.body["messages"]) for r in day_of)
    assert len(line.requests()) - line_before == 4  # four multicasts, no push


def test_reminder_times_come_from_the_seminars_section(services, seminar):
    with services.db.unit_of_work() as s:
        row = s.get(Seminar, seminar)
        setting = SeminarReminders(days_before=2, days_before_at="09:30", on_the_day_at="07:45")
        assert seminar_reminders.due_at(row, "before", setting).astimezone(TOKYO) == tokyo(11, 29, 9, 30)
        assert seminar_reminders.due_at(row, "day_of", setting).astimezone(TOKYO) == tokyo(12, 1, 7, 45)


def test_a_registration_made_after_the_first_reminder_time_gets_only_the_one_of_the_day(
        app, services, line, clock, seminar):
    move_to(clock, tokyo(11, 29, 12))
    registration = register(app, line, services, seminar, user(9), "online")
    tick(services)
    with services.db.unit_of_work() as s:
        keys = set(s.scalars(select(OutboxItem.key).where(OutboxItem.kind == "seminar_reminder")))
    assert keys == {f"seminar-reminder:{registration}:day_of"}


def test_a_reminder_to_a_simulator_user_cancelled_meanwhile_is_skipped_too(services, clock, seminar):
    now = clock.now()
    with services.db.unit_of_work() as s:
        s.add(LineUser(id="sim-1", source="simulator", following=True, created_at=now, updated_at=now))
        s.flush()
        row = SeminarRegistration(seminar_id=seminar, user_id="sim-1", mode="online", status="registered",
                                  checkin_token=seminars.new_checkin_token(), created_at=now, updated_at=now)
        s.add(row)
        s.commit()
        registration = row.id
    tick(services)
    with services.db.unit_of_work() as s:
        s.get(SeminarRegistration, registration).status = "cancelled"
        s.commit()

    move_to(clock, tokyo(11, 28, 10))
    assert tick(services) == 0

    with services.db.unit_of_work() as s:
        assert s.scalar(select(OutboxItem.status).where(OutboxItem.key == f"seminar-reminder:{registration}:before")) \
            == "skipped"
        assert s.scalar(select(func.count()).select_from(OutboundMessage)) == 0
