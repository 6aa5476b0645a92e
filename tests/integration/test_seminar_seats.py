"""Seat counts per mode and the waiting list's order, straight from the tables."""
from __future__ import annotations

from datetime import timedelta

from storage import seminars
from storage.models import LineUser, SeminarRegistration


def _register(s, seminar, user, mode, status, now):
    if s.get(LineUser, user) is None:
        s.add(LineUser(id=user, source="line", following=True, created_at=now, updated_at=now))
    s.add(SeminarRegistration(seminar_id=seminar.id, user_id=user, mode=mode, status=status,
                              checkin_token=seminars.new_checkin_token(), waiting_since=now if status == "waiting" else None,
                              created_at=now, updated_at=now))
    s.flush()


def test_seats_count_registered_and_attended_per_mode_and_waiting_apart(services):
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        a = seminars.create(s, title="DX入門", start_at=now + timedelta(days=10), end_at=now + timedelta(days=10, hours=2),
                            onsite_seats=2, online_seats=3, now=now)
        b = seminars.create(s, title="補助金説明会", start_at=now + timedelta(days=20),
                            end_at=now + timedelta(days=20, hours=2), onsite_seats=1, online_seats=0, now=now)
        for n, (mode, status) in enumerate([("onsite", "registered"), ("onsite", "attended"), ("online", "registered"),
                                            ("onsite", "waiting"), ("online", "cancelled")]):
            _register(s, a, f"U{n}", mode, status, now + timedelta(minutes=n))
        counts = seminars.seats(s, [a.id, b.id])
        s.commit()
    assert counts[a.id].taken == {"onsite": 2, "online": 1} and counts[a.id].waiting == {"onsite": 1, "online": 0}
    assert (counts[a.id].left("onsite"), counts[a.id].left("online"), counts[a.id].waiting_total) == (0, 2, 1)
    assert counts[b.id].taken == {"onsite": 0, "online": 0} and counts[b.id].left("onsite") == 1


def test_the_waiting_list_is_first_come_first_and_upcoming_leaves_out_past_and_cancelled(services):
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        soon = seminars.create(s, title="A", start_at=now + timedelta(days=1), end_at=now + timedelta(days=1, hours=1),
                               onsite_seats=0, online_seats=0, now=now)
        past = seminars.create(s, title="B", start_at=now - timedelta(days=1), end_at=now - timedelta(hours=20),
                               onsite_seats=1, online_seats=1, now=now)
        off = seminars.create(s, title="C", start_at=now + timedelta(days=2), end_at=now + timedelta(days=2, hours=1),
                              onsite_seats=1, online_seats=1, now=now)
        off.status = "cancelled"
        for n, user in enumerate(("U2", "U1", "U3")):
            _register(s, soon, user, "onsite", "waiting", now + timedelta(minutes=n))
        assert [r.user_id for r in seminars.waiting_list(s, soon.id, "onsite")] == ["U2", "U1", "U3"]
        assert [x.title for x in seminars.upcoming(s, now)] == ["A"]
        assert seminars.closes_at(soon) == soon.start_at and past.venue == seminars.DEFAULT_VENUE
