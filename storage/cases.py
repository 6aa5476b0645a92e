"""Case work on consultations: finding them, and moving them on (status, notes, referrals, corrected fields), each
change kept in the case's history in the caller's transaction: the caller commits, with its audit entry."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from storage.models import (
    ACTIVE_BOOKING, Booking, CaseEvent, CaseNote, Consultation, LineUser, Referral, REFERRAL_OUTCOMES,
)

CLOSED_STATUSES = ("closed", "follow_up")  # done with: the retention runs from here (storage/privacy.purge)
CORRECTABLE = ("company", "industry", "employees", "municipality", "contact_name", "phone", "email")
ORIGIN_KINDS = ("menu", "web", "seminar", "popup")  # Consultation.origin is "menu", "web", "seminar:<id>", "popup:<id>"

# DX2026-00012 (in any width or case), or a bare number of at most the receipt's five digits: the case's id.
_RECEIPT = re.compile(r"(?:dx\s*\d{4}\s*-\s*)?0*(\d{1,9})", re.IGNORECASE)
_BARE_ID_DIGITS = 5
_PHONE_SEPARATORS = re.compile(r"[\s()\-‐‑‒–—―−ー－]")


@dataclass(frozen=True)
class Filters:
    """What the consultation list is narrowed to; empty values narrow nothing. `until` is exclusive."""

    q: str = ""
    status: str = ""
    category: str = ""
    region: str = ""
    method: str = ""
    coordinator: str = ""
    channel: str = ""
    origin: str = ""
    since: datetime | None = None
    until: datetime | None = None
    simulated: bool = False  # include the simulator's


@dataclass(frozen=True)
class Found:
    rows: list[Consultation]
    total: int
    has_next: bool


def search(s: Session, filters: Filters, page: int = 1, page_size: int = 50) -> Found:
    """One page of the consultations that match, newest first, with how many match in all."""
    conditions = _conditions(filters)
    total = s.scalar(select(func.count()).select_from(Consultation).where(*conditions))
    rows = list(s.scalars(select(Consultation).where(*conditions)
                          .order_by(Consultation.received_at.desc(), Consultation.id.desc())
                          .offset((page - 1) * page_size).limit(page_size)))
    return Found(rows, total, page * page_size < total)


def _conditions(f: Filters) -> list:
    conditions = [] if f.simulated else [Consultation.simulated.is_(False)]
    for column, value in ((Consultation.status, f.status), (Consultation.category, f.category),
                          (Consultation.region, f.region), (Consultation.method, f.method),
                          (Consultation.channel, f.channel)):
        if value:
            conditions.append(column == value)
    if f.origin:
        conditions.append(or_(Consultation.origin == f.origin, Consultation.origin.startswith(f"{f.origin}:")))
    if f.coordinator:
        conditions.append(in_charge_of(f.coordinator))
    if f.since:
        conditions.append(Consultation.received_at >= f.since)
    if f.until:
        conditions.append(Consultation.received_at < f.until)
    if f.q.strip():
        conditions.append(_matching(f.q.strip()))
    return conditions


def in_charge_of(coordinator_id: str):
    """The cases of a coordinator: assigned to them, or (not assigned yet) with an active booking of theirs."""
    booked = exists().where(Booking.consultation_id == Consultation.id, Booking.coordinator_id == coordinator_id,
                            Booking.status.in_(ACTIVE_BOOKING))
    return or_(Consultation.coordinator_id == coordinator_id, and_(Consultation.coordinator_id.is_(None), booked))


def _matching(q: str):
    """A receipt number or a short number is the case's id; other text is looked for in the company, contact, email,
    question and notes (ignoring case), and, when it is a phone number's digits, in the phone ignoring hyphens."""
    wanted = receipt_id(q)
    if wanted is not None:
        return Consultation.id == wanted
    plain = unicodedata.normalize("NFKC", q).strip()
    needle = q.lower()
    texts = [func.lower(column).contains(needle, autoescape=True) for column in
             (Consultation.company, Consultation.contact_name, Consultation.email, Consultation.question)]
    if plain != q:  # typed full-width (ＡＢＣ, ０９９): the half-width form too
        texts += [func.lower(column).contains(plain.lower(), autoescape=True) for column in
                  (Consultation.company, Consultation.contact_name, Consultation.email)]
    texts.append(exists().where(CaseNote.consultation_id == Consultation.id,
                                func.lower(CaseNote.text).contains(needle, autoescape=True)))
    digits = _PHONE_SEPARATORS.sub("", plain)
    if len(digits) >= 3 and digits.isdecimal():
        texts.append(func.replace(Consultation.phone, "-", "").contains(digits, autoescape=True))
    return or_(*texts)


def receipt_id(q: str) -> int | None:
    """The case id a search names: DX2026-00012 (any width or case) or 12; None for anything else.

    A bare number longer than the receipt's five digits is taken as (part of) a phone number instead."""
    plain = unicodedata.normalize("NFKC", q).strip()
    receipt = _RECEIPT.fullmatch(plain)
    if receipt is None or (plain.isdecimal() and len(plain) > _BARE_ID_DIGITS):
        return None
    return int(receipt[1])


def coordinators_of(s: Session, rows: list[Consultation]) -> dict[int, str]:
    """Who is in charge of each case: its assigned coordinator, else the coordinator of its active booking."""
    found = {c.id: c.coordinator_id for c in rows if c.coordinator_id}
    unassigned = [c.id for c in rows if not c.coordinator_id]
    if unassigned:
        for consultation_id, coordinator_id in s.execute(
                select(Booking.consultation_id, Booking.coordinator_id).where(
                    Booking.consultation_id.in_(unassigned), Booking.status.in_(ACTIVE_BOOKING)).order_by(Booking.id)):
            found.setdefault(consultation_id, coordinator_id)
    return found


# --- changes ----------------------------------------------------------------------------------------------------

def assign_when_booked(s: Session, consultation_id: int, coordinator_id: str) -> None:
    """A case booked with a coordinator becomes theirs, unless someone is in charge of it already."""
    s.execute(update(Consultation).where(Consultation.id == consultation_id, Consultation.coordinator_id.is_(None))
              .values(coordinator_id=coordinator_id))


def set_status(s: Session, c: Consultation, status: str, who: str, now: datetime) -> bool:
    """Move the case to `status` (any to any); False, and nothing recorded, when it is there already."""
    if c.status == status:
        return False
    s.add(CaseEvent(consultation_id=c.id, at=now, who=who, kind="status", old=c.status, new=status))
    c.status = status
    return True


def add_note(s: Session, c: Consultation, text: str, who: str, now: datetime) -> CaseNote:
    note = CaseNote(consultation_id=c.id, at=now, author=who, text=text)
    s.add(note)
    s.flush()
    return note


def refer(s: Session, c: Consultation, partner_id: str, note: str | None, who: str, now: datetime) -> Referral:
    referral = Referral(consultation_id=c.id, partner_id=partner_id, referred_at=now, referred_by=who,
                        outcome="pending", outcome_note=note or None, updated_at=now)
    s.add(referral)
    s.flush()
    return referral


def set_referral_outcome(s: Session, referral: Referral, outcome: str, note: str | None, who: str,
                         now: datetime) -> None:
    """A referral's outcome (and its note) as the partner reported it; a changed outcome goes into the history."""
    if outcome not in REFERRAL_OUTCOMES:
        raise ValueError(f"unknown referral outcome {outcome!r}")
    if outcome != referral.outcome:
        s.add(CaseEvent(consultation_id=referral.consultation_id, at=now, who=who, kind="referral",
                        field=str(referral.id), old=referral.outcome, new=outcome))
    referral.outcome, referral.outcome_note, referral.updated_at = outcome, note or None, now


def correct_field(s: Session, c: Consultation, values: dict[str, str | None], who: str, now: datetime) -> bool:
    """Put right what was entered wrongly: `values` maps a field of CORRECTABLE (and the region, which follows the
    municipality) to its new value; each corrected field of CORRECTABLE is kept in the history, old and new.

    The LINE profile the next intake proposes is put right too where it holds the same wrong value (where it has
    changed since, by a later intake, it is newer than the correction and stays)."""
    changed = False
    user = s.get(LineUser, c.user_id) if c.user_id else None
    for field, value in values.items():
        old = getattr(c, field)
        if old == value:
            continue
        if field in CORRECTABLE:
            s.add(CaseEvent(consultation_id=c.id, at=now, who=who, kind="field", field=field, old=old, new=value))
            changed = True
            if user is not None and getattr(user, field) == old:
                setattr(user, field, value)
                user.updated_at = now
        setattr(c, field, value)
    return changed


def referral_of(s: Session, consultation_id: int, referral_id: int) -> Referral | None:
    """The referral, if it is one of this case's."""
    referral = s.get(Referral, referral_id)
    return referral if referral is not None and referral.consultation_id == consultation_id else None


def referrals(s: Session, consultation_id: int) -> list[Referral]:
    return list(s.scalars(select(Referral).where(Referral.consultation_id == consultation_id)
                          .order_by(Referral.referred_at, Referral.id)))


def history(s: Session, consultation_id: int) -> list[CaseEvent | CaseNote | Referral]:
    """Everything done on the case in time order (oldest first): its events, notes and referrals."""
    events = s.scalars(select(CaseEvent).where(CaseEvent.consultation_id == consultation_id))
    notes = s.scalars(select(CaseNote).where(CaseNote.consultation_id == consultation_id))
    order = {CaseEvent: 0, Referral: 1, CaseNote: 2}  # at the same moment: the change, then what it led to
    return sorted([*events, *notes, *referrals(s, consultation_id)],
                  key=lambda row: (row.referred_at if isinstance(row, Referral) else row.at, order[type(row)], row.id))
