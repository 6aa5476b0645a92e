"""出張相談会: pop-up consultation days at venues across the prefecture, their seats, and booking one."""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.config import Config
from bot.conversation import OfferedSlot, PopupOffer
from bot.municipalities import REGIONS
from bot.jatime import to_tokyo
from storage.models import ACTIVE_BOOKING, Booking, PopupDay, popup_desk

log = logging.getLogger(__name__)

LOOK_AHEAD = timedelta(days=60)
REGION_IDS = {r.id for r in REGIONS}


def add_day(s: Session, *, region: str, venue: str, start_at: datetime, end_at: datetime, slot_minutes: int,
            capacity: int, now: datetime, address: str | None = None, coordinator_id: str | None = None,
            note: str | None = None, config: Config | None = None) -> PopupDay:
    """Define a day; raises ValueError with a Japanese reason when the day cannot work."""
    if region not in REGION_IDS:
        raise ValueError(f"地域は {', '.join(sorted(REGION_IDS))} のいずれかです")
    if not venue.strip():
        raise ValueError("会場名を入れてください")
    if end_at - start_at < timedelta(minutes=slot_minutes) or slot_minutes < 10:
        raise ValueError("終了時刻は、開始時刻から少なくとも1枠（10分以上）あとにしてください")
    if not 1 <= capacity <= 20:
        raise ValueError("同時に受けられる人数は1〜20です")
    if coordinator_id and config and config.coordinator(coordinator_id) is None:
        raise ValueError(f"コーディネーター {coordinator_id} は設定にありません")
    day = PopupDay(region=region, venue=venue.strip(), address=(address or "").strip() or None, start_at=start_at,
                   end_at=end_at, slot_minutes=slot_minutes, capacity=capacity, coordinator_id=coordinator_id or None,
                   note=note, status="open", created_at=now)
    s.add(day)
    s.flush()
    return day


def slot_starts(day: PopupDay) -> list[datetime]:
    length = timedelta(minutes=day.slot_minutes)
    starts, t = [], to_tokyo(day.start_at)
    while t + length <= to_tokyo(day.end_at):
        starts.append(t)
        t += length
    return starts


def offers(s: Session, config: Config, *, now: datetime, region: str | None,
           simulated: bool = False) -> list[PopupOffer]:
    """Open days ahead with their free slots; days in `region` first, then by date.

    Real users' seats ignore simulated bookings; a simulated user's count every booking, real or simulated.
    """
    earliest = now + timedelta(hours=config.booking.min_notice_hours)
    days = s.scalars(select(PopupDay).where(PopupDay.status == "open", PopupDay.end_at > earliest,
                                            PopupDay.start_at < now + LOOK_AHEAD).order_by(PopupDay.start_at)).all()
    rows = s.execute(select(Booking.popup_day_id, Booking.start, func.count()).where(
        Booking.popup_day_id.in_([d.id for d in days]), Booking.status.in_(ACTIVE_BOOKING),
        *(() if simulated else (Booking.simulated.is_(False),)))
        .group_by(Booking.popup_day_id, Booking.start))
    taken = {(day_id, to_tokyo(start)): n for day_id, start, n in rows}
    result = []
    for day in days:
        length = timedelta(minutes=day.slot_minutes)
        free = tuple(OfferedSlot(f"popup:{day.id}", t, t + length) for t in slot_starts(day)
                     if t >= earliest and taken.get((day.id, t), 0) < day.capacity)
        if free:
            result.append(PopupOffer(day.id, day.venue, day.address, day.region, to_tokyo(day.start_at),
                                     to_tokyo(day.end_at), free, nearby=day.region == region, note=day.note))
    return sorted(result, key=lambda o: (not o.nearby, o.start))


def _lock_key(day_id: int) -> int:
    return int.from_bytes(hashlib.sha256(f"popup-{day_id}".encode()).digest()[:4], "big", signed=True)


def reserve(s: Session, config: Config, *, day_id: int, start: datetime, user_id: str | None,
            consultation_id: int | None, now: datetime, is_postgres: bool, simulated: bool = False) -> Booking | None:
    """A pending booking on a free seat of that slot, or None when the day, the time or every seat is not to be had.

    A simulated booking takes a seat in its own namespace of the unique index, and only one no real booking holds.
    """
    if is_postgres:
        s.execute(select(func.pg_advisory_xact_lock(_lock_key(day_id))))
    day = s.get(PopupDay, day_id)
    start = to_tokyo(start)
    if day is None or day.status != "open" or start not in slot_starts(day) \
            or start < now + timedelta(hours=config.booking.min_notice_hours):
        log.warning("popup booking refused: day %s at %s is not offered", day_id, start.isoformat())
        return None
    end = start + timedelta(minutes=day.slot_minutes)
    held = set(s.scalars(select(Booking.coordinator_id).where(
        Booking.popup_day_id == day.id, Booking.start == start, Booking.status.in_(ACTIVE_BOOKING),
        Booking.simulated.is_(False)))) if simulated else set()
    for seat in range(1, day.capacity + 1):
        if popup_desk(day.id, seat) in held:
            continue
        savepoint = s.begin_nested()
        try:
            booking = Booking(consultation_id=consultation_id, user_id=user_id, coordinator_id=popup_desk(day.id, seat),
                              start=start, end=end, method="visit", channel="popup", simulated=simulated, status="pending",
                              popup_day_id=day.id, created_at=now, updated_at=now)
            s.add(booking)
            s.flush()
            savepoint.commit()
            return booking
        except IntegrityError:
            savepoint.rollback()
    log.info("popup day %s at %s is full", day_id, start.isoformat())
    return None
