"""Seminar registrations: take a seat or a place on the waiting list, cancel, promote the next one, decline a promotion.

Everything runs in the caller's transaction, under a lock on the seminar so seats are never oversold: on PostgreSQL
`SELECT ... FOR UPDATE` on the seminar's row; on SQLite every transaction already holds the writer lock
(storage.db begins IMMEDIATE), so the counts read here cannot change before the commit.

Simulator users (sim-...) register with simulated=True: they see the real seats (a demo shows real availability),
but their registrations take no real seat and real users never see them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import seminars as texts
from scheduling.bookings import is_simulated
from storage import seminars as store
from storage.logids import user_ref
from storage.models import HOLDS_SEAT, LIVE_REGISTRATION, SEMINAR_MODES, LineUser, Seminar, SeminarRegistration
from storage.outbound import queue_messages

log = logging.getLogger(__name__)

# The refusals register() may answer with (the registration is then None and nothing changed).
REFUSALS = ("unknown", "cancelled", "past", "closed", "already", "no_mode", "full")


@dataclass
class Registered:
    """What register() did: "registered", "waiting", or one of REFUSALS."""

    outcome: str
    seminar: Seminar | None = None
    registration: SeminarRegistration | None = None
    other_left: int = 0  # "full": the seats left in the other mode
    waiting: int = 0  # "full": how many already wait for this mode
    position: int | None = None  # "waiting": the place on the list (1 = next)

    @property
    def ok(self) -> bool:
        return self.outcome in ("registered", "waiting")


@dataclass
class Cancelled:
    registration: SeminarRegistration
    promoted: SeminarRegistration | None = None
    outbound_ids: list[int] = field(default_factory=list)  # the promoted person's notice, to send after the commit


def other_mode(mode: str) -> str:
    return "online" if mode == "onsite" else "onsite"


def capacity(seminar: Seminar, mode: str) -> int:
    return seminar.onsite_seats if mode == "onsite" else seminar.online_seats


def locked(s: Session, seminar_id: int) -> Seminar | None:
    """The seminar, its row locked until the commit (SQLite ignores FOR UPDATE: its writer lock is held already)."""
    return s.get(Seminar, seminar_id, with_for_update=True, populate_existing=True)


def live_registration(s: Session, seminar_id: int, user_id: str) -> SeminarRegistration | None:
    return s.scalar(select(SeminarRegistration).where(SeminarRegistration.seminar_id == seminar_id,
                                                      SeminarRegistration.user_id == user_id,
                                                      SeminarRegistration.status.in_(LIVE_REGISTRATION)))


def refusal(seminar: Seminar | None, now: datetime) -> str | None:
    """Why nobody can register for this seminar now, or None."""
    if seminar is None:
        return "unknown"
    if seminar.status != "open":
        return "cancelled"
    if seminar.start_at <= now:
        return "past"
    if store.closes_at(seminar) <= now:
        return "closed"
    return None


def counted(user_id: str) -> bool | None:
    """Whose registrations a user's seats are counted among: real users real ones only, simulated users all."""
    return None if is_simulated(user_id) else False


def register(s: Session, seminar_id: int, user_id: str, mode: str, now: datetime, *, wait: bool = False,
             company: str | None = None, contact_name: str | None = None) -> Registered:
    """A seat of `mode` if one is free; with `wait`, a place on that mode's waiting list when it is full."""
    seminar = locked(s, seminar_id)
    why = refusal(seminar, now)
    if why:
        return Registered(why, seminar)
    if mode not in SEMINAR_MODES or capacity(seminar, mode) <= 0:
        return Registered("no_mode", seminar)
    if live_registration(s, seminar_id, user_id) is not None:
        return Registered("already", seminar)
    seats = store.seats(s, [seminar_id], simulated=counted(user_id))[seminar_id]
    free = seats.left(mode) > 0 and seats.waiting.get(mode, 0) == 0  # nobody jumps the queue
    if not free and not wait:
        return Registered("full", seminar, other_left=seats.left(other_mode(mode)), waiting=seats.waiting.get(mode, 0))
    registration = SeminarRegistration(
        seminar_id=seminar_id, user_id=user_id, mode=mode, status="registered" if free else "waiting",
        company=company, contact_name=contact_name, simulated=is_simulated(user_id),
        checkin_token=store.new_checkin_token(), waiting_since=None if free else now, created_at=now, updated_at=now)
    s.add(registration)
    s.flush()
    log.info("seminar %s: registration %s %s (%s) for user %s", seminar_id, registration.id, registration.status,
             mode, user_ref(user_id))
    if free:
        return Registered("registered", seminar, registration)
    return Registered("waiting", seminar, registration, position=seats.waiting.get(mode, 0) + 1)


def waiting_position(s: Session, registration: SeminarRegistration) -> int | None:
    """1 for the next to be promoted; None unless waiting."""
    if registration.status != "waiting":
        return None
    queue = store.waiting_list(s, registration.seminar_id, registration.mode, simulated=registration.simulated)
    return next((n for n, r in enumerate(queue, 1) if r.id == registration.id), None)


def cancel(s: Session, registration: SeminarRegistration, *, by: str, now: datetime, public_url: str) -> Cancelled | None:
    """Cancel a live registration; a freed seat goes to the first who waits for that mode (told in this transaction).

    None (nothing changed) when the registration is no longer live (cancelled or attended already).
    """
    seminar = locked(s, registration.seminar_id)
    s.refresh(registration)
    if registration.status not in ("registered", "waiting"):
        return None
    held_seat = registration.status in HOLDS_SEAT
    registration.status, registration.cancelled_at, registration.cancelled_by = "cancelled", now, by
    registration.updated_at = now
    s.flush()
    log.info("seminar %s: registration %s cancelled by %s", seminar.id, registration.id, by)
    done = Cancelled(registration)
    if held_seat:
        done.promoted, done.outbound_ids = promote(s, seminar, registration.mode, now=now, public_url=public_url,
                                                   simulated=registration.simulated)
    return done


def promote(s: Session, seminar: Seminar, mode: str, *, now: datetime, public_url: str,
            simulated: bool = False) -> tuple[SeminarRegistration | None, list[int]]:
    """Give a free seat of `mode` to the first who waits for it and queue their notice; the caller holds the lock.

    Also for staff raising a capacity (storage.seminars.update): call once per freed seat.
    """
    if seminar.status != "open" or seminar.start_at <= now:
        return None, []
    seats = store.seats(s, [seminar.id], simulated=None if simulated else False)[seminar.id]
    if seats.left(mode) <= 0:
        return None, []
    queue = store.waiting_list(s, seminar.id, mode, simulated=simulated)
    if not queue:
        return None, []
    first = queue[0]
    first.status, first.promoted_at, first.updated_at = "registered", now, now
    s.flush()
    user = s.get(LineUser, first.user_id)
    ids = queue_messages(s, user.source if user else "line", first.user_id,
                         texts.promoted_messages(seminar, first, public_url), now)
    log.info("seminar %s: registration %s promoted from the waiting list (%s)", seminar.id, first.id, mode)
    return first, ids


def decline(s: Session, registration_id: int, user_id: str, *, now: datetime, public_url: str) -> Cancelled | None:
    """A promoted person's one tap: give the seat up, and it goes to the next who waits. None if not theirs to give."""
    registration = s.get(SeminarRegistration, registration_id)
    if registration is None or registration.user_id != user_id or registration.promoted_at is None \
            or registration.status != "registered":
        log.warning("decline refused: registration %s is not a promoted seat of user %s", registration_id,
                    user_ref(user_id))
        return None
    return cancel(s, registration, by="declined", now=now, public_url=public_url)


def fill_freed_seats(s: Session, seminar: Seminar, *, now: datetime, public_url: str) -> list[int]:
    """After staff raised a capacity (storage.seminars.update): promote whoever waits into the new seats.

    The caller holds the seminar's lock; returns the notices queued, which the delivery worker sends after the commit.
    """
    ids: list[int] = []
    for mode in SEMINAR_MODES:
        for simulated in (False, True):
            while True:
                promoted, queued = promote(s, seminar, mode, now=now, public_url=public_url, simulated=simulated)
                if promoted is None:
                    break
                ids += queued
    return ids
