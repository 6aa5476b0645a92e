"""Erasing a person's data on request, and purging personal data past its retention: the aggregates stay countable.

What stays of an erased consultation: category, region, municipality, industry, employees, method, dates, status,
channel and origin, which the monthly figures count (storage/reports.py). The LINE id is replaced everywhere by one
tombstone per person, so `companies()` still tells a returning company from a new one without knowing who it was.
"""
from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Text, cast, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from bot.jatime import TOKYO
from storage import audit
from storage.cases import CLOSED_STATUSES
from storage.logids import user_ref
from storage.models import (
    ACTIVE_BOOKING, Activity, ActivityPhoto, Booking, CaseEvent, CaseNote, Consultation, ConversationRow,
    DeletionRequest, InboxEvent, LineUser, Multicast, OutboundMessage, OutboxItem, Referral, Seminar,
    SeminarRegistration, SurveyResponse, WebSubmission,
)

ERASED = "（削除済み）"  # what a required text column (company, question) holds once erased
PROFILE = ("company", "industry", "employees", "municipality", "contact_name", "phone", "email", "display_name")
LIVE_REGISTRATION = ("registered", "waiting")


@dataclass(frozen=True)
class Erased:
    """A person erased: their tombstone id, and the activity photos whose rows went, whose files the caller removes
    once the transaction is committed (storage.activities.remove_files)."""

    tomb: str
    photos: list[str] = field(default_factory=list)


def erase(s: Session, user_id: str, now: datetime, *, keep_outbound: tuple[int, ...] = ()) -> Erased:
    """Erase one person's data from every table, in the caller's transaction.

    The messages in `keep_outbound` (the notice that tells them it is done) keep their LINE id and body until they
    are sent; `purge` gives them the tombstone afterwards. Bookings and registrations ahead are the caller's to
    cancel first (the calendar and the coordinator must hear of it). Activity records of their consultations or
    their company lose the company's name, notes, topics and photos; those whose notes or topics name them, the
    notes and topics.
    """
    s.flush()  # the caller's pending changes to this user's rows go first: the statements below work on the tables
    user = s.get(LineUser, user_id)
    tomb = f"erased-{uuid.uuid4().hex}"
    values = _identifying_values(s, user_id, user)
    theirs = select(Consultation.id).where(Consultation.user_id == user_id)
    photos = _clear_activities(s, s.scalars(select(Activity).where(or_(
        Activity.consultation_id.in_(theirs), Activity.company.in_(_company_names(s, user_id, user))))).all())
    mentions = [column.contains(v, autoescape=True) for v in values for column in (Activity.notes, Activity.topics)]
    for mentioned in s.scalars(select(Activity).where(or_(*mentions))) if mentions else ():
        mentioned.notes = mentioned.topics = None
    s.add(LineUser(id=tomb, source=user.source if user else "line", following=False,
                   created_at=user.created_at if user else now, updated_at=now))
    s.flush()
    run = lambda statement: s.execute(statement.execution_options(synchronize_session=False))  # noqa: E731
    _clear_case_work(s, theirs)
    run(update(WebSubmission).where(WebSubmission.consultation_id.in_(theirs)).values(address=ERASED))
    run(update(Consultation).where(Consultation.user_id == user_id).values(
        user_id=tomb, **_consultation_cleared()))
    run(update(Booking).where(Booking.user_id == user_id).values(user_id=tomb, cancel_reason=None))
    run(update(InboxEvent).where(InboxEvent.user_key == user_id).values(user_key=tomb, payload={}, error=None))
    mine = OutboundMessage.to == user_id
    if keep_outbound:
        mine &= OutboundMessage.id.not_in(keep_outbound)
    run(update(OutboundMessage).where(mine, OutboundMessage.status == "pending").values(status="cancelled"))
    run(update(OutboundMessage).where(mine).values(to=tomb, messages=[], last_error=None))
    _erase_notices(s, values)
    run(update(OutboxItem).where(OutboxItem.to == user_id, OutboxItem.status == "pending")
        .values(status="cancelled", done_at=now))
    run(update(OutboxItem).where(OutboxItem.to == user_id).values(to=tomb, messages=[], error=None))
    run(update(SeminarRegistration).where(SeminarRegistration.user_id == user_id).values(
        user_id=tomb, company=None, contact_name=None))
    for response in s.scalars(select(SurveyResponse).where(SurveyResponse.user_id == user_id)):
        response.user_id, response.answers = tomb, _without_free_text(response.answers)
    s.flush()
    for batch in s.scalars(select(Multicast).where(cast(Multicast.recipients, Text).like(f'%"{user_id}"%'))):
        batch.recipients = [r for r in batch.recipients if r != user_id]
    run(update(DeletionRequest).where(DeletionRequest.user_id == user_id).values(user_id=tomb))
    run(delete(ConversationRow).where(ConversationRow.user_id == user_id))
    run(delete(LineUser).where(LineUser.id == user_id))
    if user is not None:
        s.expunge(user)
    return Erased(tomb, photos)


def _consultation_cleared() -> dict:
    return {"company": ERASED, "question": ERASED, "contact_name": None, "phone": None, "email": None,
            "keywords": []}


def _clear_case_work(s: Session, consultation_ids) -> None:
    """What staff wrote on the cases may name the person: notes, referral notes, and corrected fields' old and new
    values (a status change or an outcome holds codes only, and stays for the case's history)."""
    run = lambda statement: s.execute(statement.execution_options(synchronize_session=False))  # noqa: E731
    run(update(CaseNote).where(CaseNote.consultation_id.in_(consultation_ids), CaseNote.text != ERASED)
        .values(text=ERASED))
    run(update(CaseEvent).where(CaseEvent.consultation_id.in_(consultation_ids), CaseEvent.kind == "field")
        .values(old=None, new=None))
    run(update(Referral).where(Referral.consultation_id.in_(consultation_ids)).values(outcome_note=None))


def _clear_activities(s: Session, activities: list[Activity]) -> list[str]:
    """Clear what activity records tell of a company: its name (each company's own marker, so the yearly targets
    still count companies once each), notes, topics and photos (their rows; returns their stored names, whose files
    go once committed). Kind, date, coordinator, partner, session, attendees and stage stay for the figures."""
    markers: dict[str, str] = {}
    for activity in activities:
        if activity.company and not activity.company.startswith(ERASED):
            activity.company = markers.setdefault(activity.company, f"{ERASED}{secrets.token_hex(3)}")
        activity.notes = activity.topics = None
    ids = [a.id for a in activities]
    photos = list(s.scalars(select(ActivityPhoto.stored_name).where(ActivityPhoto.activity_id.in_(ids))))
    s.execute(delete(ActivityPhoto).where(ActivityPhoto.activity_id.in_(ids))
              .execution_options(synchronize_session=False))
    return photos


def _company_names(s: Session, user_id: str, user: LineUser | None) -> set[str]:
    names = set(s.scalars(select(Consultation.company).where(Consultation.user_id == user_id)))
    return {n for n in names | {user.company if user else None} if n and n != ERASED}


def _identifying_values(s: Session, user_id: str, user: LineUser | None) -> set[str]:
    """The person's name, company, phone and email as on record: what a coordinator's notice about them quotes."""
    values = {getattr(user, f) for f in ("company", "contact_name", "phone", "email")} if user else set()
    for row in s.execute(select(Consultation.company, Consultation.contact_name, Consultation.phone,
                                Consultation.email).where(Consultation.user_id == user_id)):
        values.update(row)
    return {v for v in values if v and len(v) >= 3 and v != ERASED}


def _erase_notices(s: Session, values: set[str]) -> None:
    """Coordinators' notices (LINE and email) quote the person's details and name no user: found by those details."""
    if not values:
        return
    for message in s.scalars(select(OutboundMessage).where(OutboundMessage.sender == "notice")):
        body = json.dumps(message.messages, ensure_ascii=False)
        if any(v in body for v in values):
            message.messages = []
            if message.status == "pending":
                message.status = "cancelled"


def _without_free_text(answers: dict) -> dict:
    """Ratings (numbers) and multiple choices (lists) stay countable; typed answers (strings) may say anything."""
    return {k: v for k, v in (answers or {}).items() if not isinstance(v, str)}


@dataclass(frozen=True)
class Ahead:
    """What must be cancelled before a person's data can be erased: their bookings and seminar places to come."""

    bookings: tuple[Booking, ...] = ()
    registrations: tuple[SeminarRegistration, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.bookings or self.registrations)


def ahead(s: Session, user_id: str, now: datetime) -> Ahead:
    bookings = s.scalars(select(Booking).where(Booking.user_id == user_id, Booking.status.in_(ACTIVE_BOOKING),
                                               Booking.end > now).order_by(Booking.start))
    registrations = s.scalars(select(SeminarRegistration).join(Seminar, Seminar.id == SeminarRegistration.seminar_id)
                              .where(SeminarRegistration.user_id == user_id,
                                     SeminarRegistration.status.in_(LIVE_REGISTRATION), Seminar.end_at > now))
    return Ahead(tuple(bookings), tuple(registrations))


def request_deletion(s: Session, user_id: str, now: datetime) -> DeletionRequest:
    """The person's pending request, made once however often they confirm."""
    existing = s.scalar(select(DeletionRequest).where(DeletionRequest.user_id == user_id,
                                                      DeletionRequest.status == "pending"))
    if existing:
        return existing
    request = DeletionRequest(user_id=user_id, status="pending", requested_at=now)
    s.add(request)
    s.flush()
    return request


def complete(s: Session, request: DeletionRequest, who: str, now: datetime, notice_ids: list[int]) -> Erased:
    """Erase the requester's data, mark the request done, and write it in the audit log."""
    request.status, request.done_at, request.done_by = "done", now, who
    request.notice_id = notice_ids[0] if notice_ids else None
    erased = erase(s, request.user_id, now, keep_outbound=tuple(notice_ids))
    audit.record(s, who, "erase", f"deletion:{request.id}", now)
    return erased


def pending_requests(s: Session) -> list[DeletionRequest]:
    return list(s.scalars(select(DeletionRequest).where(DeletionRequest.status == "pending")
                          .order_by(DeletionRequest.requested_at, DeletionRequest.id)))


# --- retention ------------------------------------------------------------------------------------------------

def months_before(moment: datetime, months: int) -> datetime:
    """The same wall-clock time `months` calendar months earlier in Tokyo (the 31st becomes the month's last day)."""
    local = moment.astimezone(TOKYO)
    index = local.year * 12 + local.month - 1 - months
    year, month = divmod(index, 12)
    day = min(local.day, _days_in(year, month + 1))
    return local.replace(year=year, month=month + 1, day=day)


def _days_in(year: int, month: int) -> int:
    following = datetime(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def purge_date(c: Consultation, retention_months: int) -> datetime:
    """When a closed consultation's personal data goes: its retention counted from when it was received."""
    local = c.received_at.astimezone(TOKYO)
    index = local.year * 12 + local.month - 1 + retention_months
    year, month = divmod(index, 12)
    return local.replace(year=year, month=month + 1, day=min(local.day, _days_in(year, month + 1)))


@dataclass
class Purged:
    """How many rows a purge cleared (or would clear), by kind: counts only, never what they held."""

    counts: dict[str, int] = field(default_factory=dict)
    photos: list[str] = field(default_factory=list)  # activity photos whose rows went: the caller removes the files

    def add(self, kind: str, n: int) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n


def purge(s: Session, now: datetime, *, retention_months: int, copies_days: int, who: str,
          dry_run: bool = False) -> Purged:
    """Clear closed consultations (完了 or フォローアップ) received more than `retention_months` ago with what staff
    wrote on them and the activity records linked to them, activity records of no case older than that, the
    profiles and conversations of people with nothing newer, and the copies (inbox payloads, message bodies,
    multicast recipients, the web form's hashed sender addresses) older than `copies_days`. Idempotent: what is
    cleared is not counted again. The caller commits, then removes the files of `Purged.photos`."""
    done = Purged()
    cutoff, copies = months_before(now, retention_months), now - timedelta(days=copies_days)
    closed = s.scalars(select(Consultation).where(Consultation.status.in_(CLOSED_STATUSES), Consultation.received_at < cutoff,
                                                  Consultation.question != ERASED).order_by(Consultation.id)).all()
    done.add("consultations", len(closed))
    stale = _stale_profiles(s, cutoff)
    done.add("profiles", len(stale))
    inbox = (InboxEvent.received_at < copies, InboxEvent.status.in_(("done", "failed")),
             cast(InboxEvent.payload, Text) != "{}")
    outbound = (OutboundMessage.created_at < copies, OutboundMessage.status != "pending",
                cast(OutboundMessage.messages, Text) != "[]")
    outbox = (OutboxItem.due_at < copies, OutboxItem.status != "pending", cast(OutboxItem.messages, Text) != "[]")
    multicast = (Multicast.created_at < copies, Multicast.status != "pending", cast(Multicast.recipients, Text) != "[]")
    web = (WebSubmission.created_at < copies, WebSubmission.address != ERASED)  # the rate limit counts 10 minutes
    for kind, model, where in (("inbox_payloads", InboxEvent, inbox), ("message_bodies", OutboundMessage, outbound),
                               ("scheduled_bodies", OutboxItem, outbox), ("multicast_recipients", Multicast, multicast),
                               ("web_submissions", WebSubmission, web)):
        done.add(kind, s.scalar(select(func.count()).select_from(model).where(*where)))
    work = _past_activities(s, cutoff)
    done.add("activities", len(work))
    done.add("activity_photos", s.scalar(select(func.count()).select_from(ActivityPhoto).where(
        ActivityPhoto.activity_id.in_([a.id for a in work]))))
    notices = s.execute(select(OutboundMessage, DeletionRequest.user_id).join(
        DeletionRequest, DeletionRequest.notice_id == OutboundMessage.id).where(
        DeletionRequest.status == "done", OutboundMessage.status != "pending",
        OutboundMessage.to != DeletionRequest.user_id)).all()
    done.add("deletion_notices", len(notices))
    if dry_run:
        return done
    run = lambda statement: s.execute(statement.execution_options(synchronize_session=False))  # noqa: E731
    for c in closed:
        for key, value in _consultation_cleared().items():
            setattr(c, key, value)
        audit.record(s, who, "purge", f"consultation:{c.id}", now)
    run(update(Booking).where(Booking.consultation_id.in_([c.id for c in closed])).values(cancel_reason=None))
    _clear_case_work(s, [c.id for c in closed])
    for user in stale:
        for key in PROFILE:
            setattr(user, key, None)
        user.updated_at = now
        audit.record(s, who, "purge", f"profile:{user_ref(user.id)}", now)
    run(update(ConversationRow).where(ConversationRow.user_id.in_([u.id for u in stale]))
        .values(data={}, suspended=None))
    run(update(InboxEvent).where(*inbox).values(payload={}, error=None))
    run(update(OutboundMessage).where(*outbound).values(messages=[], last_error=None))
    run(update(OutboxItem).where(*outbox).values(messages=[]))
    run(update(Multicast).where(*multicast).values(recipients=[]))
    run(update(WebSubmission).where(*web).values(address=ERASED))
    done.photos = _clear_activities(s, work)
    for activity in work:
        audit.record(s, who, "purge", f"activity:{activity.id}", now)
    for message, tomb in notices:
        message.to, message.messages = tomb, []
    return done


def _past_activities(s: Session, cutoff: datetime) -> list[Activity]:
    """Activity records not yet cleared that are linked to a consultation past retention, or to none and took place
    before `cutoff` (one linked to a consultation still kept stays with it)."""
    past_cases = select(Consultation.id).where(Consultation.status.in_(CLOSED_STATUSES),
                                               Consultation.received_at < cutoff)
    named = Activity.company.is_not(None) & ~Activity.company.startswith(ERASED, autoescape=True)
    photographed = exists(select(ActivityPhoto.id).where(ActivityPhoto.activity_id == Activity.id))
    return list(s.scalars(select(Activity).where(
        named | Activity.notes.is_not(None) | Activity.topics.is_not(None) | photographed,
        Activity.consultation_id.in_(past_cases) | ((Activity.date < cutoff) & Activity.consultation_id.is_(None)))
        .order_by(Activity.id)))


def _stale_profiles(s: Session, cutoff: datetime) -> list[LineUser]:
    """People with a profile on record who have written nothing since `cutoff` and have no consultation received
    since then or still open: their details are kept no longer than their consultations'."""
    recent = select(Consultation.user_id).where(Consultation.user_id.is_not(None)) \
        .where((Consultation.received_at >= cutoff) | Consultation.status.not_in(CLOSED_STATUSES))
    active = select(ConversationRow.user_id).where(ConversationRow.updated_at >= cutoff)
    has_profile = (LineUser.company.is_not(None) | LineUser.contact_name.is_not(None) | LineUser.phone.is_not(None)
                   | LineUser.email.is_not(None) | LineUser.display_name.is_not(None))
    return list(s.scalars(select(LineUser).where(LineUser.updated_at < cutoff, has_profile,
                                                 LineUser.id.not_in(recent), LineUser.id.not_in(active))))
