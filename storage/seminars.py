"""Seminars: creating one, what is on, and how many seats each mode has taken."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import HOLDS_SEAT, SEMINAR_MODES, Seminar, SeminarRegistration

DEFAULT_VENUE = "かごゆいテラス（鹿児島県庁18階）"
DEFAULT_ADDRESS = "鹿児島県鹿児島市鴨池新町10番1号 鹿児島県庁 行政庁舎18階"
DEFAULT_MAP_URL = "https://www.google.com/maps/search/?api=1&query=" + quote("鹿児島県庁")


@dataclass(frozen=True)
class Seats:
    """Taken seats per mode (registered or attended) and the waiting list's length per mode."""

    onsite_seats: int
    online_seats: int
    taken: dict[str, int]
    waiting: dict[str, int]

    def left(self, mode: str) -> int:
        capacity = self.onsite_seats if mode == "onsite" else self.online_seats
        return max(capacity - self.taken.get(mode, 0), 0)

    @property
    def waiting_total(self) -> int:
        return sum(self.waiting.values())


def create(s: Session, *, title: str, start_at: datetime, end_at: datetime, onsite_seats: int, online_seats: int,
           now: datetime, description: str = "", venue: str | None = DEFAULT_VENUE,
           venue_address: str | None = DEFAULT_ADDRESS, map_url: str | None = DEFAULT_MAP_URL,
           online_url: str | None = None, deadline_at: datetime | None = None, subsidy_briefing: bool = False,
           survey_id: str | None = None) -> Seminar:
    seminar = Seminar(title=title, description=description, start_at=start_at, end_at=end_at, venue=venue,
                      venue_address=venue_address, map_url=map_url, online_url=online_url, onsite_seats=onsite_seats,
                      online_seats=online_seats, deadline_at=deadline_at, subsidy_briefing=subsidy_briefing,
                      survey_id=survey_id, status="open", created_at=now, updated_at=now)
    s.add(seminar)
    s.flush()
    return seminar


def closes_at(seminar: Seminar) -> datetime:
    """When registrations close: the deadline, or the start when there is none."""
    return seminar.deadline_at or seminar.start_at


def upcoming(s: Session, now: datetime) -> list[Seminar]:
    """Open seminars that have not started, soonest first."""
    return list(s.scalars(select(Seminar).where(Seminar.status == "open", Seminar.start_at > now)
                          .order_by(Seminar.start_at, Seminar.id)))


def seats(s: Session, seminar_ids: list[int]) -> dict[int, Seats]:
    """Seat counts for each of the seminars (two queries, whatever their number)."""
    counts = s.execute(select(SeminarRegistration.seminar_id, SeminarRegistration.status, SeminarRegistration.mode,
                              func.count())
                       .where(SeminarRegistration.seminar_id.in_(seminar_ids),
                              SeminarRegistration.status.in_((*HOLDS_SEAT, "waiting")))
                       .group_by(SeminarRegistration.seminar_id, SeminarRegistration.status, SeminarRegistration.mode))
    result = {row.id: Seats(row.onsite_seats, row.online_seats, dict.fromkeys(SEMINAR_MODES, 0),
                            dict.fromkeys(SEMINAR_MODES, 0))
              for row in s.execute(select(Seminar.id, Seminar.onsite_seats, Seminar.online_seats)
                                   .where(Seminar.id.in_(seminar_ids)))}
    for seminar_id, status, mode, n in counts:
        bucket = result[seminar_id].waiting if status == "waiting" else result[seminar_id].taken
        bucket[mode] = bucket.get(mode, 0) + n
    return result


def waiting_list(s: Session, seminar_id: int, mode: str) -> list[SeminarRegistration]:
    """Who waits for a seat of `mode`, first come first."""
    return list(s.scalars(select(SeminarRegistration)
                          .where(SeminarRegistration.seminar_id == seminar_id, SeminarRegistration.mode == mode,
                                 SeminarRegistration.status == "waiting")
                          .order_by(SeminarRegistration.waiting_since, SeminarRegistration.id)))


def new_checkin_token() -> str:
    """The secret of a registration's check-in QR code: unguessable, URL-safe."""
    return secrets.token_urlsafe(24)
