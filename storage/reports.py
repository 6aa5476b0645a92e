"""Report figures for the prefecture, one small query per figure, over a period [start, end) in Asia/Tokyo.

Simulator rows (Consultation.simulated, Booking.simulated) are demos, not consultations: every figure leaves them out.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import distinct, exists, func, select
from sqlalchemy.orm import Session, aliased

from bot.jatime import TOKYO, holiday_name
from storage.models import (
    ACTIVE_BOOKING, Activity, Booking, Consultation, PopupDay, Referral, Seminar, SeminarRegistration, SurveyResponse,
)


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime  # exclusive


def month_period(text: str) -> Period:
    """2026-11 → November 2026 in Tokyo; ValueError in Japanese for anything else."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", text)
    if not match or not 1 <= int(match[2]) <= 12:
        raise ValueError(f"月は YYYY-MM の形で指定してください（例: 2026-11）: {text}")
    first = date(int(match[1]), int(match[2]), 1)
    return Period(_midnight(first), _midnight(_next_month(first)))


def week_period(text: str) -> Period:
    """2026-W48 → that ISO week, Monday 00:00 to the next Monday 00:00 in Tokyo."""
    match = re.fullmatch(r"(\d{4})-W(\d{2})", text)
    try:
        monday = date.fromisocalendar(int(match[1]), int(match[2]), 1) if match else None
    except ValueError:
        monday = None
    if monday is None:
        raise ValueError(f"週は YYYY-Www の形で指定してください（例: 2026-W48）: {text}")
    return Period(_midnight(monday), _midnight(monday + timedelta(days=7)))


def previous_month(period: Period) -> Period:
    first = period.start.astimezone(TOKYO).date()
    start = (first - timedelta(days=1)).replace(day=1)
    return Period(_midnight(start), period.start)


def fiscal_year_to_date(period: Period) -> Period:
    """From 1 April of the fiscal year (April–March) the period starts in, to the period's end."""
    first = period.start.astimezone(TOKYO).date()
    return Period(_midnight(date(first.year if first.month >= 4 else first.year - 1, 4, 1)), period.end)


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time.min, TOKYO)


def _next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def _in(period: Period):
    """The consultations that count: real ones received in the period."""
    return (Consultation.received_at >= period.start, Consultation.received_at < period.end,
            Consultation.simulated.is_(False))


def _count_by(s: Session, column, period: Period) -> dict[str | None, int]:
    rows = s.execute(select(column, func.count(Consultation.id)).where(*_in(period)).group_by(column))
    return {key: n for key, n in rows}


def by_channel(s: Session, period: Period) -> dict[str | None, int]:
    return _count_by(s, Consultation.channel, period)


def by_category(s: Session, period: Period) -> dict[str | None, int]:
    return _count_by(s, Consultation.category, period)


def by_industry(s: Session, period: Period) -> dict[str | None, int]:
    return _count_by(s, Consultation.industry, period)


def by_region(s: Session, period: Period) -> dict[str | None, int]:
    return _count_by(s, Consultation.region, period)


def by_municipality(s: Session, period: Period) -> dict[str | None, int]:
    return _count_by(s, Consultation.municipality, period)


def by_method(s: Session, period: Period) -> dict[str | None, int]:
    return _count_by(s, Consultation.method, period)


def by_status(s: Session, period: Period) -> dict[str | None, int]:
    return _count_by(s, Consultation.status, period)


def consultations(s: Session, period: Period) -> int:
    return s.scalar(select(func.count(Consultation.id)).where(*_in(period)))


def companies(s: Session, period: Period) -> dict[str, int]:
    """Companies (LINE users) who consulted in the period: returning if they had a real consultation before it.

    A consultation with no user on record cannot be matched to an earlier one; each counts as a new company.
    """
    earlier = aliased(Consultation)
    had_earlier = exists(select(earlier.id).where(earlier.user_id == Consultation.user_id,
                                                   earlier.received_at < period.start, earlier.simulated.is_(False)))
    users = s.scalar(select(func.count(distinct(Consultation.user_id))).where(*_in(period)))
    returning = s.scalar(select(func.count(distinct(Consultation.user_id))).where(*_in(period), had_earlier))
    anonymous = s.scalar(select(func.count(Consultation.id)).where(*_in(period), Consultation.user_id.is_(None)))
    return {"new": users - returning + anonymous, "returning": returning}


def booking_starts(s: Session, period: Period) -> list[datetime]:
    """When the real, still active bookings starting in the period begin."""
    return list(s.scalars(select(Booking.start).where(
        Booking.start >= period.start, Booking.start < period.end, Booking.simulated.is_(False),
        Booking.status.in_(ACTIVE_BOOKING))))


def bookings_held(s: Session, period: Period) -> dict[str, int]:
    """Bookings held, and how many of them fall on a Saturday or Sunday, or on a public holiday (the desk's
    out-of-hours service, which the prefecture asks about). A holiday on a weekend counts in both."""
    days = [start.astimezone(TOKYO).date() for start in booking_starts(s, period)]
    return {"total": len(days), "weekend": sum(d.weekday() >= 5 for d in days),
            "holiday": sum(holiday_name(d) is not None for d in days)}


def popup_days(s: Session, period: Period) -> int:
    """出張相談会 days held in the period (a cancelled day was not held)."""
    return s.scalar(select(func.count(PopupDay.id)).where(
        PopupDay.start_at >= period.start, PopupDay.start_at < period.end, PopupDay.status != "cancelled"))


def popup_consultations(s: Session, period: Period) -> int:
    return by_channel(s, period).get("popup", 0)


def week_consultations(s: Session, period: Period) -> list[tuple[Consultation, Booking | None]]:
    """The real consultations received in the period, oldest first, each with its active booking if any."""
    rows = list(s.scalars(select(Consultation).where(*_in(period)).order_by(Consultation.received_at, Consultation.id)))
    active = {b.consultation_id: b for b in s.scalars(
        select(Booking).where(Booking.consultation_id.in_([c.id for c in rows]),
                              Booking.status.in_(ACTIVE_BOOKING)).order_by(Booking.id))}
    return [(c, active.get(c.id)) for c in rows]


def week_bookings(s: Session, period: Period) -> list[tuple[Booking, Consultation | None]]:
    """The real, active bookings starting in the period, in time order, with their consultation."""
    rows = s.execute(select(Booking, Consultation).outerjoin(Consultation, Consultation.id == Booking.consultation_id)
                     .where(Booking.start >= period.start, Booking.start < period.end, Booking.simulated.is_(False),
                            Booking.status.in_(ACTIVE_BOOKING)).order_by(Booking.start, Booking.id))
    return [(b, c) for b, c in rows]


def week_registrations(s: Session, period: Period) -> list[tuple[SeminarRegistration, Seminar]]:
    """The real seminar registrations made in the period (whenever the seminar is, and cancelled ones too, with their
    status), oldest first, each with its seminar."""
    rows = s.execute(select(SeminarRegistration, Seminar).join(Seminar, Seminar.id == SeminarRegistration.seminar_id)
                     .where(SeminarRegistration.created_at >= period.start, SeminarRegistration.created_at < period.end,
                            SeminarRegistration.simulated.is_(False))
                     .order_by(SeminarRegistration.created_at, SeminarRegistration.id))
    return [(r, seminar) for r, seminar in rows]


def week_survey_answers(s: Session, period: Period) -> list[tuple[SurveyResponse, Seminar, SeminarRegistration | None]]:
    """The survey answers completed in the period (simulator users left out, as in storage.surveys), oldest first,
    each with its seminar and the person's registration for it (for the company and name), if any is left."""
    rows = list(s.execute(select(SurveyResponse, Seminar).join(Seminar, Seminar.id == SurveyResponse.seminar_id)
                          .where(SurveyResponse.completed_at >= period.start, SurveyResponse.completed_at < period.end,
                                 ~SurveyResponse.user_id.like("sim-%"))
                          .order_by(SurveyResponse.completed_at, SurveyResponse.id)))
    registrations = {(r.seminar_id, r.user_id): r for r in s.scalars(
        select(SeminarRegistration).where(SeminarRegistration.seminar_id.in_({x.seminar_id for x, _ in rows}),
                                          SeminarRegistration.user_id.in_({x.user_id for x, _ in rows}))
        .order_by(SeminarRegistration.id))}  # the latest registration of a person for a seminar wins
    return [(x, seminar, registrations.get((x.seminar_id, x.user_id))) for x, seminar in rows]


def week_referrals(s: Session, period: Period) -> list[tuple[Referral, Consultation]]:
    """The referrals to partner institutions made in the period for real consultations, oldest first."""
    rows = s.execute(select(Referral, Consultation).join(Consultation, Consultation.id == Referral.consultation_id)
                     .where(Referral.referred_at >= period.start, Referral.referred_at < period.end,
                            Consultation.simulated.is_(False))
                     .order_by(Referral.referred_at, Referral.id))
    return [(r, c) for r, c in rows]


def week_activities(s: Session, period: Period) -> list[tuple[Activity, Consultation | None]]:
    """The activities that took place in the period, in time order, each with the consultation it is linked to."""
    rows = s.execute(select(Activity, Consultation).outerjoin(Consultation, Consultation.id == Activity.consultation_id)
                     .where(Activity.date >= period.start, Activity.date < period.end)
                     .order_by(Activity.date, Activity.id))
    return [(a, c) for a, c in rows]
