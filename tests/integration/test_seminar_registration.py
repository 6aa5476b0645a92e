"""Registering for a seminar under the lock: seats never oversold, the waiting list promoted in order."""
from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select

from scheduling import seminars as registrations
from storage import seminars
from storage.models import LineUser, OutboundMessage, SeminarRegistration
from tests.helpers import actions, texts

PUBLIC = "http://localhost"


def _seminar(services, onsite=30, online=60, **kw):
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        seminar = seminars.create(s, title="DX入門セミナー", start_at=now + timedelta(days=10),
                                  end_at=now + timedelta(days=10, hours=2), onsite_seats=onsite, online_seats=online,
                                  now=now, **kw)
        s.commit()
        return seminar.id


def _users(services, n, prefix="U"):
    now = services.clock.now()
    ids = [f"{prefix}{k:032d}" for k in range(n)]
    with services.db.unit_of_work() as s:
        s.add_all(LineUser(id=u, source="line", following=True, created_at=now, updated_at=now) for u in ids)
        s.commit()
    return ids


def _register(services, seminar_id, user, mode, wait=True, minutes=0):
    with services.db.unit_of_work() as s:
        got = registrations.register(s, seminar_id, user, mode, services.clock.now() + timedelta(minutes=minutes),
                                     wait=wait, company="さつま商事", contact_name="西郷 隆子")
        s.commit()
        return got


def _statuses(services, seminar_id):
    with services.db.unit_of_work() as s:
        rows = s.scalars(select(SeminarRegistration).where(SeminarRegistration.seminar_id == seminar_id))
        out = {}
        for row in rows:
            out[(row.mode, row.status)] = out.get((row.mode, row.status), 0) + 1
        return out


def test_a_hundred_concurrent_registrations_fill_thirty_plus_sixty_seats_and_ten_wait(services, database_url):
    seminar_id = _seminar(services)
    users = _users(services, 100)
    barrier = threading.Barrier(len(users))
    results: list[str] = []

    def go(n, user):
        barrier.wait(timeout=30)
        # 40 want to come on site and 60 online: 10 on site wait (wait=True: put me on the list when full).
        results.append(_register(services, seminar_id, user, "onsite" if n < 40 else "online").outcome)

    threads = [threading.Thread(target=go, args=(n, u)) for n, u in enumerate(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 100
    assert results.count("registered") == 90 and results.count("waiting") == 10
    assert _statuses(services, seminar_id) == {("onsite", "registered"): 30, ("online", "registered"): 60,
                                               ("onsite", "waiting"): 10}


def test_a_cancellation_promotes_the_first_waiting_user_who_is_told_with_a_decline_button(services, database_url):
    seminar_id = _seminar(services, onsite=1, online=5)
    first, second, third = _users(services, 3)
    seated = _register(services, seminar_id, first, "onsite").registration
    assert _register(services, seminar_id, second, "onsite", minutes=1).position == 1
    assert _register(services, seminar_id, third, "onsite", minutes=2).position == 2
    with services.db.unit_of_work() as s:
        done = registrations.cancel(s, s.get(SeminarRegistration, seated.id), by="user", now=services.clock.now(),
                                    public_url=PUBLIC)
        s.commit()
    assert done.promoted.user_id == second and done.promoted.status == "registered" and done.outbound_ids
    with services.db.unit_of_work() as s:
        told = [m for row in s.scalars(select(OutboundMessage).where(OutboundMessage.to == second)) for m in row.messages]
        assert not list(s.scalars(select(OutboundMessage).where(OutboundMessage.to == third)))
        assert registrations.waiting_position(s, s.get(SeminarRegistration, done.promoted.id + 1)) == 1
    said = texts(told)
    assert "繰り上がりました" in said and "辞退する" in said and "受付用のQRコード" in said
    decline = next(a for m in told if m["type"] == "flex" for a in actions(m) if a.get("label") == "辞退する")
    assert decline["data"] == f"action=seminar_decline&r={done.promoted.id}"

    # The promoted person declines with one tap: the seat goes to the next (third).
    with services.db.unit_of_work() as s:
        assert registrations.decline(s, done.promoted.id, first, now=services.clock.now(), public_url=PUBLIC) is None
        again = registrations.decline(s, done.promoted.id, second, now=services.clock.now(), public_url=PUBLIC)
        s.commit()
    assert again.registration.cancelled_by == "declined" and again.promoted.user_id == third
    assert _statuses(services, seminar_id) == {("onsite", "cancelled"): 2, ("onsite", "registered"): 1}


def test_refusals_change_nothing(services, database_url):
    now = services.clock.now()
    seminar_id = _seminar(services, onsite=1, online=0, deadline_at=now + timedelta(days=2))
    a, b = _users(services, 2)
    assert _register(services, seminar_id, a, "onsite").outcome == "registered"
    assert _register(services, seminar_id, a, "onsite").outcome == "already"
    assert _register(services, seminar_id, b, "online").outcome == "no_mode"
    full = _register(services, seminar_id, b, "onsite", wait=False)
    assert (full.outcome, full.other_left, full.registration) == ("full", 0, None)
    assert _register(services, 999, b, "onsite").outcome == "unknown"
    services.clock.advance(days=3)
    assert _register(services, seminar_id, b, "onsite").outcome == "closed"
    services.clock.advance(days=8)
    assert _register(services, seminar_id, b, "onsite").outcome == "past"
    assert _statuses(services, seminar_id) == {("onsite", "registered"): 1}


def test_simulator_users_take_no_real_seat(services, database_url):
    seminar_id = _seminar(services, onsite=1, online=1)
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        s.add(LineUser(id="sim-demo", source="simulator", following=True, created_at=now, updated_at=now))
        s.commit()
    demo = _register(services, seminar_id, "sim-demo", "onsite")
    assert demo.outcome == "registered" and demo.registration.simulated
    (real,) = _users(services, 1)
    assert _register(services, seminar_id, real, "onsite", wait=False).outcome == "registered"


def test_raising_a_capacity_promotes_as_many_as_the_new_seats_in_order(services, database_url):
    seminar_id = _seminar(services, onsite=1, online=1)
    a, b, c, d = _users(services, 4)
    _register(services, seminar_id, a, "onsite")
    for n, u in enumerate((b, c, d)):
        _register(services, seminar_id, u, "onsite", minutes=n + 1)
    with services.db.unit_of_work() as s:
        seminar = registrations.locked(s, seminar_id)
        seminars.update(s, seminar, now=services.clock.now(), onsite_seats=3)
        ids = registrations.fill_freed_seats(s, seminar, now=services.clock.now(), public_url=PUBLIC)
        s.commit()
    assert len(ids) == 2
    with services.db.unit_of_work() as s:
        status = {r.user_id: r.status for r in s.scalars(select(SeminarRegistration))}
    assert status == {a: "registered", b: "registered", c: "registered", d: "waiting"}
