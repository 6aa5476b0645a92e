"""storage.cases.search on the real database (SQLite, and PostgreSQL with DXDESK_TEST_DATABASE_URL): what matches."""
from __future__ import annotations

from datetime import timedelta

import pytest

from storage import cases
from storage.models import Booking, CaseNote, Consultation


@pytest.fixture
def db(services, clock):
    now = clock.now()
    with services.db.unit_of_work() as s:
        for n, (company, phone, coordinator) in enumerate([("Sakura Design", "099-286-2111", None),
                                                           ("さくら設計", "0995-12-3456", "tanaka"),
                                                           ("50%オフ商店", None, None),
                                                           ("シミュレーター商店", "099-286-2111", None)]):
            s.add(Consultation(received_at=now + timedelta(minutes=n), channel="line", company=company, phone=phone,
                               category="efficiency", method="online", question="相談", coordinator_id=coordinator,
                               simulated=company.startswith("シミュレーター")))
        s.flush()
        s.add(Booking(consultation_id=1, coordinator_id="tanaka", start=now, end=now + timedelta(hours=1),
                      method="online", status="confirmed", created_at=now, updated_at=now))
        s.add(Booking(consultation_id=3, coordinator_id="tanaka", start=now, end=now + timedelta(hours=1),
                      method="online", status="cancelled", created_at=now, updated_at=now))
        s.add(CaseNote(consultation_id=3, at=now, author="tanaka", text="Follow-Up の電話"))
        s.commit()
    return services.db


def companies(db, **filters) -> list[str]:
    with db.unit_of_work() as s:
        return [c.company for c in cases.search(s, cases.Filters(**filters)).rows]


@pytest.mark.parametrize(("q", "found"), [
    ("SAKURA", ["Sakura Design"]), ("design", ["Sakura Design"]), ("さくら", ["さくら設計"]),
    ("2862111", ["Sakura Design"]), ("099 286 2111", ["Sakura Design"]), ("099－286－2111", ["Sakura Design"]),
    ("50%", ["50%オフ商店"]), ("%オ", ["50%オフ商店"]), ("follow-up", ["50%オフ商店"]), ("3", ["50%オフ商店"]),
    ("DX2026-00002", ["さくら設計"]), ("", ["50%オフ商店", "さくら設計", "Sakura Design"]),
])
def test_search_matches_ignoring_case_hyphens_and_like_wildcards(db, q, found):
    assert companies(db, q=q) == found


def test_simulated_cases_are_found_only_when_asked_for(db):
    assert companies(db, q="2862111", simulated=True) == ["シミュレーター商店", "Sakura Design"]


def test_a_coordinator_s_cases_are_assigned_ones_and_unassigned_ones_booked_with_them(db):
    assert companies(db, coordinator="tanaka") == ["さくら設計", "Sakura Design"]
    assert companies(db, coordinator="yamashita") == []
    with db.unit_of_work() as s:
        found = cases.search(s, cases.Filters())
        assert cases.coordinators_of(s, found.rows) == {1: "tanaka", 2: "tanaka"}


def test_a_page_says_how_many_match_in_all_and_whether_more_follow(db):
    with db.unit_of_work() as s:
        first, last = (cases.search(s, cases.Filters(), page, page_size=2) for page in (1, 2))
    assert (first.total, first.has_next, len(first.rows)) == (3, True, 2)
    assert (last.total, last.has_next, [c.company for c in last.rows]) == (3, False, ["Sakura Design"])
