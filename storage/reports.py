"""Report figures for the prefecture, one small query per figure, over a period [start, end) in Asia/Tokyo.

Simulator rows (Consultation.simulated, Booking.simulated, SeminarRegistration.simulated, survey answers of sim- users,
activities and referrals of simulated consultations) are demos: every figure leaves them out. FIGURES names the
figures a report shows; figures() runs each over each of the report's periods, and the renderer only lays them out.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import case, exists, func, select
from sqlalchemy.orm import Session

from bot.jatime import TOKYO, holiday_name
from storage.models import (ACTIVE_BOOKING, HOLDS_SEAT, SEMINAR_MODES, Activity, ActivityPhoto, Booking, Consultation,
                            PopupDay, Referral, Seminar, SeminarRegistration, SurveyResponse)


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


def fiscal_year(text: str) -> Period:
    """2025 → fiscal year 2025, 1 April 2025 to 1 April 2026 in Tokyo."""
    if not re.fullmatch(r"\d{4}", text) or int(text) < 2000:
        raise ValueError(f"年度は西暦4桁で指定してください（例: 2025 は2025年4月〜2026年3月）: {text}")
    return Period(_midnight(date(int(text), 4, 1)), _midnight(date(int(text) + 1, 4, 1)))


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


def by_origin(s: Session, period: Period) -> dict[str | None, int]:
    """How consultations came: menu, web, seminar (a survey's 「はい」, whichever seminar), popup (whichever day)."""
    origin = case((Consultation.origin.like("seminar:%"), "seminar"), (Consultation.origin.like("popup:%"), "popup"),
                  else_=Consultation.origin)
    return _count_by(s, origin, period)


def companies(s: Session, period: Period) -> dict[str, int]:
    """Companies (LINE users) who consulted in the period: returning if they had a real consultation before it.

    A consultation with no user on record cannot be matched to an earlier one; each counts as a new company.
    One pass over each user's real consultations up to the period's end: the last in the period, the first before it.
    """
    per_user = (select(func.min(Consultation.received_at).label("first"))
                .where(Consultation.simulated.is_(False), Consultation.user_id.is_not(None),
                       Consultation.received_at < period.end)
                .group_by(Consultation.user_id).having(func.max(Consultation.received_at) >= period.start).subquery())
    users, returning = s.execute(select(func.count(), func.coalesce(func.sum(
        case((per_user.c.first < period.start, 1), else_=0)), 0)).select_from(per_user)).one()
    anonymous = s.scalar(select(func.count(Consultation.id)).where(*_in(period), Consultation.user_id.is_(None)))
    return {"new": users - returning + anonymous, "returning": returning}


def booking_starts(s: Session, period: Period) -> dict[datetime, int]:
    """When the real, still active bookings starting in the period begin, and how many begin then."""
    return {start: n for start, n in s.execute(
        select(Booking.start, func.count(Booking.id)).where(
            Booking.start >= period.start, Booking.start < period.end, Booking.simulated.is_(False),
            Booking.status.in_(ACTIVE_BOOKING)).group_by(Booking.start))}


def bookings_held(s: Session, period: Period) -> dict[str, int]:
    """Bookings held, and how many of them fall on a Saturday or Sunday, or on a public holiday (the desk's
    out-of-hours service, which the prefecture asks about). A holiday on a weekend counts in both, and once in
    off_days (on a weekend or a holiday)."""
    days: Counter[date] = Counter()
    for start, n in booking_starts(s, period).items():
        days[start.astimezone(TOKYO).date()] += n
    weekend = {d for d in days if d.weekday() >= 5}
    holiday = {d for d in days if holiday_name(d) is not None}
    return {"total": sum(days.values()), "weekend": sum(days[d] for d in weekend),
            "holiday": sum(days[d] for d in holiday), "off_days": sum(days[d] for d in weekend | holiday)}


def popup_days(s: Session, period: Period) -> int:
    """出張相談会 days held in the period (a cancelled day was not held)."""
    return s.scalar(select(func.count(PopupDay.id)).where(
        PopupDay.start_at >= period.start, PopupDay.start_at < period.end, PopupDay.status != "cancelled"))


def _seminars_in(period: Period) -> tuple:
    """Seminars held in the period: started in it and not cancelled."""
    return (Seminar.start_at >= period.start, Seminar.start_at < period.end, Seminar.status != "cancelled")


def seminars_held(s: Session, period: Period) -> int:
    return s.scalar(select(func.count(Seminar.id)).where(*_seminars_in(period)))


def _registrations_by_mode(s: Session, period: Period, statuses: tuple[str, ...]) -> dict[str, int]:
    rows = s.execute(select(SeminarRegistration.mode, func.count(SeminarRegistration.id))
                     .join(Seminar, Seminar.id == SeminarRegistration.seminar_id)
                     .where(*_seminars_in(period), SeminarRegistration.simulated.is_(False),
                            SeminarRegistration.status.in_(statuses))
                     .group_by(SeminarRegistration.mode))
    return dict.fromkeys(SEMINAR_MODES, 0) | {mode: n for mode, n in rows}


def seminar_registrations(s: Session, period: Period) -> dict[str, int]:
    """Real registrations holding a seat (registered or attended) at the period's seminars, per mode."""
    return _registrations_by_mode(s, period, HOLDS_SEAT)


def seminar_attendees(s: Session, period: Period) -> dict[str, int]:
    """Real registrations marked attended at the period's seminars, per mode (onsite, online)."""
    return _registrations_by_mode(s, period, ("attended",))


@dataclass(frozen=True)
class Rating:
    answered: int
    total: int

    @property
    def average(self) -> float | None:
        return round(self.total / self.answered, 2) if self.answered else None


def survey_ratings(s: Session, period: Period) -> dict[tuple[str, str], Rating]:
    """(survey id, question id) → the 1–5 ratings given in surveys of the period's seminars, by real users.

    Answers are JSON (question id → value); a rating is the only whole number among them, so the numbers are
    summed here rather than in SQL, whose JSON functions differ between SQLite and PostgreSQL.
    """
    rows = s.execute(select(SurveyResponse.survey_id, SurveyResponse.answers)
                     .join(Seminar, Seminar.id == SurveyResponse.seminar_id)
                     .where(*_seminars_in(period), ~SurveyResponse.user_id.like("sim-%")))
    ratings: dict[tuple[str, str], list[int]] = {}
    for survey_id, answers in rows:
        for question_id, value in (answers or {}).items():
            if isinstance(value, int) and not isinstance(value, bool):
                ratings.setdefault((survey_id, question_id), []).append(value)
    return {key: Rating(len(values), sum(values)) for key, values in ratings.items()}


def _real_case(column) -> tuple:
    """No case, or a real one: work on a simulator consultation is a demo too."""
    return (~exists(select(Consultation.id).where(Consultation.id == column, Consultation.simulated.is_(True))),)


def _activities_in(period: Period) -> tuple:
    return (Activity.date >= period.start, Activity.date < period.end, *_real_case(Activity.consultation_id))


def activities(s: Session, period: Period) -> dict[str, int]:
    """The coordinators' other work in the period by kind (visit, training, partner_visit, ...)."""
    rows = s.execute(select(Activity.kind, func.count(Activity.id)).where(*_activities_in(period))
                     .group_by(Activity.kind))
    return {kind: n for kind, n in rows}


def training_attendees(s: Session, period: Period) -> int:
    """People who took part in the period's in-company training sessions, as recorded per session."""
    return s.scalar(select(func.coalesce(func.sum(Activity.attendees), 0))
                    .where(*_activities_in(period), Activity.kind == "training"))


def referrals(s: Session, period: Period) -> dict[str, int]:
    """Cases referred to each partner institution in the period."""
    rows = s.execute(select(Referral.partner_id, func.count(Referral.id))
                     .where(Referral.referred_at >= period.start, Referral.referred_at < period.end,
                            *_real_case(Referral.consultation_id))
                     .group_by(Referral.partner_id))
    return {partner: n for partner, n in rows}


def activity_list(s: Session, period: Period) -> list[tuple[Activity, list[ActivityPhoto]]]:
    """The period's activities in date order, each with its photos in the order they were added."""
    rows = list(s.scalars(select(Activity).where(*_activities_in(period)).order_by(Activity.date, Activity.id)))
    photos: dict[int, list[ActivityPhoto]] = {}
    for photo in s.scalars(select(ActivityPhoto).where(ActivityPhoto.activity_id.in_([a.id for a in rows]))
                           .order_by(ActivityPhoto.id)):
        photos.setdefault(photo.activity_id, []).append(photo)
    return [(a, photos.get(a.id, [])) for a in rows]


def months_in(period: Period) -> int:
    """How many calendar months the period touches (a fiscal year to November: 8), for a per-month target."""
    first, last = period.start.astimezone(TOKYO), (period.end - timedelta(microseconds=1)).astimezone(TOKYO)
    return (last.year - first.year) * 12 + last.month - first.month + 1


# The figures a report lays out, by name: each is one function of (session, period) above.
FIGURES = {
    "consultations": consultations, "companies": companies, "bookings": bookings_held, "popup_days": popup_days,
    "channel": by_channel, "origin": by_origin, "category": by_category, "industry": by_industry,
    "region": by_region, "municipality": by_municipality, "method": by_method, "status": by_status,
    "seminars": seminars_held, "registrations": seminar_registrations, "attendees": seminar_attendees,
    "ratings": survey_ratings, "activities": activities, "training_attendees": training_attendees,
    "referrals": referrals,
}


@dataclass(frozen=True)
class Figures:
    """Every figure of a report, each as a list with one value per period (the report's columns)."""

    periods: tuple[Period, ...]
    values: dict[str, list]

    def __getitem__(self, name: str) -> list:
        return self.values[name]


def figures(s: Session, periods: tuple[Period, ...]) -> Figures:
    return Figures(periods, {name: [figure(s, p) for p in periods] for name, figure in FIGURES.items()})


def monthly(s: Session, month: Period) -> Figures:
    """The month, the month before it and the fiscal year to the month's end: the monthly report's columns."""
    return figures(s, (month, previous_month(month), fiscal_year_to_date(month)))


def yearly(s: Session, fy: Period) -> Figures:
    """The fiscal year and the one before it."""
    first = fy.start.astimezone(TOKYO).date()
    previous = Period(_midnight(first.replace(year=first.year - 1)), fy.start)
    return figures(s, (fy, previous))


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
