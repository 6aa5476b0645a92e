"""Seminars: creating and editing one, what is on, how many seats each mode has taken, and who attended."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlsplit

from sqlalchemy import func, select
from sqlalchemy import update as update_
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


def _kind(simulated: bool | None) -> tuple:
    """None: every registration; False: real ones only; True: the simulator's only."""
    return () if simulated is None else (SeminarRegistration.simulated.is_(simulated),)


def seats(s: Session, seminar_ids: list[int], *, simulated: bool | None = None) -> dict[int, Seats]:
    """Seat counts for each of the seminars (two queries, whatever their number).

    `simulated=False` counts real registrations only: the simulator's demo registrations take no real seat.
    """
    counts = s.execute(select(SeminarRegistration.seminar_id, SeminarRegistration.status, SeminarRegistration.mode,
                              func.count())
                       .where(SeminarRegistration.seminar_id.in_(seminar_ids),
                              SeminarRegistration.status.in_((*HOLDS_SEAT, "waiting")), *_kind(simulated))
                       .group_by(SeminarRegistration.seminar_id, SeminarRegistration.status, SeminarRegistration.mode))
    result = {row.id: Seats(row.onsite_seats, row.online_seats, dict.fromkeys(SEMINAR_MODES, 0),
                            dict.fromkeys(SEMINAR_MODES, 0))
              for row in s.execute(select(Seminar.id, Seminar.onsite_seats, Seminar.online_seats)
                                   .where(Seminar.id.in_(seminar_ids)))}
    for seminar_id, status, mode, n in counts:
        bucket = result[seminar_id].waiting if status == "waiting" else result[seminar_id].taken
        bucket[mode] = bucket.get(mode, 0) + n
    return result


def waiting_list(s: Session, seminar_id: int, mode: str, *, simulated: bool | None = None) -> list[SeminarRegistration]:
    """Who waits for a seat of `mode`, first come first (`simulated` as in seats())."""
    return list(s.scalars(select(SeminarRegistration)
                          .where(SeminarRegistration.seminar_id == seminar_id, SeminarRegistration.mode == mode,
                                 SeminarRegistration.status == "waiting", *_kind(simulated))
                          .order_by(SeminarRegistration.waiting_since, SeminarRegistration.id)))


def new_checkin_token() -> str:
    """The secret of a registration's check-in QR code: unguessable, URL-safe."""
    return secrets.token_urlsafe(24)


MAX_TITLE = 200
MAX_URL = 500
# The fields a seminar is edited by: the same names as create()'s keywords and the model's columns.
EDITABLE = ("title", "description", "start_at", "end_at", "venue", "venue_address", "map_url", "online_url",
            "onsite_seats", "online_seats", "deadline_at", "subsidy_briefing", "survey_id")


def validate(*, title: str, start_at: datetime, end_at: datetime, onsite_seats: int, online_seats: int,
             now: datetime | None, online_url: str | None = None, deadline_at: datetime | None = None,
             survey_id: str | None = None, survey_ids: tuple[str, ...] | None = None,
             taken: dict[str, int] | None = None) -> None:
    """Refuse a seminar that cannot work, with a Japanese reason (ValueError); the CLI and the console share it.

    `now` None skips the past-start check (an edit that keeps the start); `survey_ids` None skips the survey check
    (no surveys configured yet); `taken` are the seats already taken per mode, which an edit cannot go below.
    """
    if not title.strip():
        raise ValueError("タイトルを入れてください。")
    if len(title) > MAX_TITLE:
        raise ValueError(f"タイトルは{MAX_TITLE}文字以内にしてください。")
    if end_at <= start_at:
        raise ValueError("終了日時は開始日時より後にしてください。")
    if now is not None and start_at <= now:
        raise ValueError("開始日時が過ぎています。これから先の日時を指定してください。")
    if onsite_seats < 0 or online_seats < 0:
        raise ValueError("定員は0以上の数で指定してください。")
    if onsite_seats == 0 and online_seats == 0:
        raise ValueError("会場とオンラインの定員が両方0です。どちらか一方は1以上にしてください。")
    if deadline_at is not None and deadline_at > start_at:
        raise ValueError("申込締切は開始日時より前にしてください。")
    if online_url and not _is_web_address(online_url):
        raise ValueError(f"オンラインのURLは http:// か https:// で始まる完全なアドレスにしてください: {online_url}")
    if survey_id and survey_ids is not None and survey_id not in survey_ids:
        raise ValueError(f"アンケート「{survey_id}」は設定にありません。"
                         f"指定できるID: {', '.join(survey_ids) or '（設定されたアンケートがありません）'}")
    for mode, capacity, label in (("onsite", onsite_seats, "会場"), ("online", online_seats, "オンライン")):
        already = (taken or {}).get(mode, 0)
        if capacity < already:
            raise ValueError(f"{label}の定員は、すでにお申し込みいただいている{already}名より少なくできません。"
                             f"{already}以上の数を指定してください。")


def _is_web_address(url: str) -> bool:
    parts = urlsplit(url)
    return (len(url) <= MAX_URL and parts.scheme in ("http", "https") and bool(parts.hostname)
            and url.isprintable() and " " not in url)


def update(s: Session, seminar: Seminar, *, now: datetime, survey_ids: tuple[str, ...] | None = None,
           **fields) -> Seminar:
    """Change a seminar's fields after validate() with what is already taken; raising a capacity frees seats.

    Whoever waits for a freed seat is promoted by the registration domain (scheduling.seminars.promote): the caller
    does it in the same transaction, so this module stays a repository.
    """
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise TypeError(f"not editable: {sorted(unknown)}")
    merged = {name: fields.get(name, getattr(seminar, name)) for name in EDITABLE}
    start_moved = merged["start_at"] != seminar.start_at
    validate(title=merged["title"], start_at=merged["start_at"], end_at=merged["end_at"],
             onsite_seats=merged["onsite_seats"], online_seats=merged["online_seats"],
             now=now if start_moved else None, online_url=merged["online_url"], deadline_at=merged["deadline_at"],
             survey_id=merged["survey_id"] if merged["survey_id"] != seminar.survey_id else None,
             survey_ids=survey_ids, taken=seats(s, [seminar.id])[seminar.id].taken)
    for name, value in merged.items():
        setattr(seminar, name, value)
    seminar.updated_at = now
    s.flush()
    return seminar


def listing(s: Session) -> list[tuple[Seminar, Seats]]:
    """Every seminar with its seats, the newest start first (staff look at what is coming and what just was)."""
    seminars = list(s.scalars(select(Seminar).order_by(Seminar.start_at.desc(), Seminar.id.desc())))
    counts = seats(s, [x.id for x in seminars])
    return [(x, counts[x.id]) for x in seminars]


def registrations(s: Session, seminar_id: int) -> list[SeminarRegistration]:
    """A seminar's registrations in the order they came (cancelled ones too, as history)."""
    return list(s.scalars(select(SeminarRegistration).where(SeminarRegistration.seminar_id == seminar_id)
                          .order_by(SeminarRegistration.created_at, SeminarRegistration.id)))


def by_checkin_token(s: Session, token: str) -> SeminarRegistration | None:
    return s.scalar(select(SeminarRegistration).where(SeminarRegistration.checkin_token == token))


def mark_attended(s: Session, registration: SeminarRegistration, *, by: str, now: datetime) -> str:
    """Mark one registration attended: "marked", "already" (attended before) or "no_seat" (waiting or cancelled).

    A conditional UPDATE, so two staff scanning the same code at once mark it once and the second hears "already".
    """
    marked = s.execute(update_(SeminarRegistration)
                       .where(SeminarRegistration.id == registration.id, SeminarRegistration.status == "registered")
                       .values(status="attended", attended_at=now, attended_by=by, updated_at=now)
                       .execution_options(synchronize_session=False)).rowcount
    s.refresh(registration)
    if marked:
        return "marked"
    return "already" if registration.status == "attended" else "no_seat"


def attend_all(s: Session, seminar_id: int, *, by: str, now: datetime) -> int:
    """Mark every registered (seated, not yet attended) person of a seminar attended; how many were marked."""
    return s.execute(update_(SeminarRegistration)
                     .where(SeminarRegistration.seminar_id == seminar_id, SeminarRegistration.status == "registered")
                     .values(status="attended", attended_at=now, attended_by=by, updated_at=now)
                     .execution_options(synchronize_session=False)).rowcount


def configured_survey_ids(config) -> tuple[str, ...]:
    """The [[surveys]] ids of the configuration: a seminar may name only one of them."""
    return tuple(x.id for x in config.surveys)
