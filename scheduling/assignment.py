"""Who is in charge of a case: assigning a coordinator, kept in the case's history, with its booking moving along."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.jatime import format_time_range
from scheduling.bookings import BookingService, Reserved
from storage.models import ACTIVE_BOOKING, Booking, CaseEvent, Consultation

log = logging.getLogger(__name__)

KEPT_FOR_OLD = "{when}のご予約は、日時の調整がつくまで、あなたの予定に残っています。"
KEPT_FOR_NEW = "{when}のご予約は、前の担当者の予定のままです。日時はスタッフが調整してご連絡します。"


@dataclass
class Assigned:
    """What an assignment did, in the caller's transaction; `moved` is finished after the commit."""

    consultation: Consultation
    previous: str | None
    changed: bool = True
    moved: Reserved | None = None  # the case's coming booking, now the new coordinator's
    kept: Booking | None = None  # the case's coming booking, left where it was: the new coordinator is not free then
    notices: list[int] = field(default_factory=list)


def coming_booking(s: Session, consultation_id: int, now: datetime) -> Booking | None:
    """The case's next active booking with a coordinator (a seat at a pop-up day has none to hand over)."""
    return s.scalar(select(Booking).where(
        Booking.consultation_id == consultation_id, Booking.status.in_(ACTIVE_BOOKING), Booking.start > now,
        Booking.popup_day_id.is_(None)).order_by(Booking.start).limit(1))


def assign(s: Session, bookings: BookingService, consultation_id: int, coordinator_id: str, *, who: str,
           now: datetime) -> Assigned | None:
    """Put `coordinator_id` in charge of the case; its coming booking goes with them if they are free at that time.

    None if there is no such case. The history row and both coordinators' notices are in this transaction.
    """
    c = s.get(Consultation, consultation_id, with_for_update=True)
    if c is None:
        return None
    previous = c.coordinator_id
    if previous == coordinator_id:
        return Assigned(c, previous, changed=False)
    c.coordinator_id = coordinator_id
    s.add(CaseEvent(consultation_id=c.id, at=now, who=who, kind="assign", old=previous, new=coordinator_id))
    done = Assigned(c, previous)
    booking = coming_booking(s, c.id, now)
    if booking is not None and booking.coordinator_id != coordinator_id:
        held_by = booking.coordinator_id
        done.moved = bookings.reserve(
            s, user_id=booking.user_id, coordinator=coordinator_id, start=booking.start, method=booking.method,
            region=None, consultation_id=c.id, now=now, replaces=booking.id, by="staff", reason="担当の変更",
            notice="unassigned")
        if done.moved is not None:
            done.notices += done.moved.notices  # the old coordinator's; the new one's comes with the confirmation
            if previous and previous != held_by:
                done.notices += _tell(bookings, s, "unassigned", previous, c, now)
            log.info("consultation %s assigned; booking %s moved to booking %s", c.id, booking.id,
                     done.moved.booking.id)
            return done
        done.kept = booking
    when = format_time_range(done.kept.start, done.kept.end) if done.kept else ""
    # Who had the case: its coordinator, or else whoever holds its booking, which stays theirs for now.
    old = previous or (done.kept.coordinator_id if done.kept else None)
    if old:
        done.notices += _tell(bookings, s, "unassigned", old, c, now,
                              note=KEPT_FOR_OLD.format(when=when) if done.kept and old == done.kept.coordinator_id
                              else "")
    done.notices += _tell(bookings, s, "assigned", coordinator_id, c, now,
                          note=KEPT_FOR_NEW.format(when=when) if done.kept else "")
    log.info("consultation %s assigned (booking kept: %s)", c.id, done.kept.id if done.kept else None)
    return done


def follow_booking(s: Session, consultation_id: int | None, old: str, new: str, *, who: str, now: datetime) -> bool:
    """A booking staff moved from `old` to `new`: a case that was `old`'s is now `new`'s too, in its history."""
    c = s.get(Consultation, consultation_id, with_for_update=True) if consultation_id else None
    if c is None or c.coordinator_id != old or old == new:
        return False
    c.coordinator_id = new
    s.add(CaseEvent(consultation_id=c.id, at=now, who=who, kind="assign", old=old, new=new))
    return True


def _tell(bookings: BookingService, s: Session, kind: str, coordinator_id: str, c: Consultation, now: datetime, *,
          note: str = "") -> list[int]:
    case = getattr(bookings.notify, "case", None)  # a notifier that only knows bookings tells nobody of cases
    return case(s, kind, coordinator_id, c, now, note=note) if case else []
