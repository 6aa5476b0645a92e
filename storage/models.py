"""The database tables, as SQLAlchemy 2 typed models."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, TypeDecorator, and_, text,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TOKYO = ZoneInfo("Asia/Tokyo")


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (which keeps no zone) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class LineUser(Base):
    """Someone who talks to the bot (a LINE user, or a simulated one), and what is on record for them."""

    __tablename__ = "line_users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), default="line")
    following: Mapped[bool] = mapped_column(Boolean, default=True)
    consent_version: Mapped[str | None] = mapped_column(String(32))
    consent_at: Mapped[datetime | None]
    company: Mapped[str | None] = mapped_column(String(200))
    industry: Mapped[str | None] = mapped_column(String(50))
    employees: Mapped[str | None] = mapped_column(String(50))
    municipality: Mapped[str | None] = mapped_column(String(50))
    contact_name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254))
    display_name: Mapped[str | None] = mapped_column(String(100))  # LINE's profile name, offered as the contact name
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ConversationRow(Base):
    """Where a user is in the conversation; the only place conversation state lives."""

    __tablename__ = "conversations"

    user_id: Mapped[str] = mapped_column(ForeignKey("line_users.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(40), default="idle")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    suspended: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime]
    # Set when the user asks for staff or writes to them; cleared only when staff answer or give the conversation
    # back, so a question stays in 担当者の対応待ち whatever the user taps meanwhile.
    staff_waiting_since: Mapped[datetime | None] = mapped_column(index=True)


_INBOX_OPEN = text("status IN ('pending', 'processing')")


class InboxEvent(Base):
    """A webhook event as received: written before the 200, processed once, in order per user."""

    __tablename__ = "inbox_events"
    __table_args__ = (Index("ix_inbox_user_status", "user_key", "status", "id"),
                      # The open events in id order: what the claim reads however long the history grows.
                      Index("ix_inbox_open", "id", sqlite_where=_INBOX_OPEN, postgresql_where=_INBOX_OPEN))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_key: Mapped[str] = mapped_column(String(128), unique=True)
    user_key: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16), default="line")
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]  # after a failed attempt: not before this (back-off)
    processed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    # Who retried or discarded it in the console after it was parked as failed (the dead-letter list).
    handled_by: Mapped[str | None] = mapped_column(String(64))


class OutboundMessage(Base):
    """Messages to one user: kept with their retry key before the first attempt, and with the error if they fail."""

    __tablename__ = "outbound_messages"
    # One message per reply token: a token is good for one reply, and delivery reads "Invalid reply token"
    # after an unanswered attempt as "that attempt was shown", which holds only if no other message used it.
    __table_args__ = (Index("ix_outbound_status_next", "status", "next_attempt_at"),
                      Index("ux_outbound_reply_token", "reply_token", unique=True))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16), default="line")
    to: Mapped[str] = mapped_column(String(64), index=True)
    messages: Mapped[list[Any]]
    reply_token: Mapped[str | None] = mapped_column(String(256))
    reply_until: Mapped[datetime | None]
    # Set before a reply goes out, cleared when LINE's answer says it was not shown: a crash or a lost answer
    # leaves it set, and the next attempt asks LINE again with the same token.
    reply_in_doubt: Mapped[bool] = mapped_column(Boolean, default=False)
    retry_key: Mapped[str] = mapped_column(String(36), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    sender: Mapped[str] = mapped_column(String(16), default="bot")
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class Consultation(Base):
    """A consultation request on record."""

    __tablename__ = "consultations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(index=True)
    channel: Mapped[str] = mapped_column(String(16))
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("line_users.id"))
    company: Mapped[str] = mapped_column(String(200))
    industry: Mapped[str | None] = mapped_column(String(50))
    employees: Mapped[str | None] = mapped_column(String(50))
    municipality: Mapped[str | None] = mapped_column(String(50))
    region: Mapped[str | None] = mapped_column(String(20))
    contact_name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254))
    category: Mapped[str] = mapped_column(String(20))  # what the user settled on
    # The triage model's guess, which confidence and keywords describe; None on rows from before it was kept.
    suggested_category: Mapped[str | None] = mapped_column(String(20))
    confidence: Mapped[float | None] = mapped_column(Float)
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    method: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(16), default="received")
    question: Mapped[str] = mapped_column(Text)
    # How it came: "menu" (the LINE intake), "web" (the form), "seminar:<id>" (a survey's 「はい」), "popup:<id>".
    origin: Mapped[str | None] = mapped_column(String(40), index=True)
    # The coordinator in charge of the case (a [[coordinators]] id): set when it is booked or assigned in the console.
    coordinator_id: Mapped[str | None] = mapped_column(String(40), index=True)

    @property
    def receipt_no(self) -> str:
        return receipt_no(self.id, self.received_at)


def receipt_no(consultation_id: int, received_at: datetime) -> str:
    """The number the user is given: readable on the phone, derived from the id so it needs no column."""
    return f"DX{received_at.astimezone(TOKYO).year}-{consultation_id:05d}"


class StaffUser(Base):
    """A staff-console login."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    coordinator_id: Mapped[str | None] = mapped_column(String(40))  # the [[coordinators]] id this login is, if any
    created_at: Mapped[datetime]


class StaffSession(Base):
    """A signed-in browser: the cookie names this row, so logging out or changing the password ends it."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the cookie's token, not the token
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class LoginThrottle(Base):
    """Recent failed sign-ins of one typed login or one address, and until when they must wait."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of "login:<name>" or "address:<ip>"
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(index=True)
    locked_until: Mapped[datetime | None]



class WebSubmission(Base):
    """One consultation sent through the web form: its form's key (a second post of the same form finds it), the
    keyed hash of the sender's address (the rate limit counts them) and the privacy-policy version consented to."""

    __tablename__ = "web_submissions"
    __table_args__ = (Index("ix_web_submission_address_at", "address", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str] = mapped_column(String(64))  # storage.logids-style keyed hash, never the address itself
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"))
    consent_version: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


ACTIVE_BOOKING = ("pending", "confirmed")
# A booking in these states with a calendar_error waits for staff: the calendar refused its event for good, the
# insert (or move) of a pending booking's, or the delete of a cancelled one's (the cancellation itself stands).
CALENDAR_REFUSED_STATUSES = ("pending", "cancelling")


class Booking(Base):
    """A coordinator's time given to a consultation. Pending until its calendar event exists, then confirmed.

    A pending booking the calendar refused for good (calendar_error) waits for staff rather than the reconciler.
    """

    __tablename__ = "bookings"
    __table_args__ = (
        # The database decides: one active booking per coordinator and start time, whoever asks first. Simulated
        # bookings have a namespace of their own, so a demo in the simulator never takes a real user's slot.
        Index("uq_booking_active_slot", "coordinator_id", "start", "simulated", unique=True,
              sqlite_where=text("status IN ('pending', 'confirmed')"),
              postgresql_where=text("status IN ('pending', 'confirmed')")),
        Index("ix_booking_coordinator_time", "coordinator_id", "start", "end"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consultation_id: Mapped[int | None] = mapped_column(ForeignKey("consultations.id"), index=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("line_users.id"), index=True)
    coordinator_id: Mapped[str] = mapped_column(String(40))
    start: Mapped[datetime]
    end: Mapped[datetime]
    method: Mapped[str] = mapped_column(String(10))
    channel: Mapped[str] = mapped_column(String(16), default="line")
    simulated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))  # a simulator user's
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    calendar_event_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    meet_url: Mapped[str | None] = mapped_column(String(200))
    popup_day_id: Mapped[int | None] = mapped_column(Integer)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    cancelled_by: Mapped[str | None] = mapped_column(String(16))
    acknowledged_at: Mapped[datetime | None]  # the coordinator tapped 確認, or staff marked it 確認済み
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))  # the staff login; None for the coordinator's tap
    swap_requested_at: Mapped[datetime | None]  # the coordinator asked staff for someone else
    # The calendar refused the event for good ("403 forbidden", "404 notFound", "400 badRequest"): the booking stays
    # pending, holding its slot, but the reconciler leaves it to staff, who retry it (once the calendar is shared
    # again) or cancel it. On a cancelling booking, the refusal was to delete its event: the slot is free and the
    # user told, but the event may still be in the calendar until staff remove it or retry.
    calendar_error: Mapped[str | None] = mapped_column(String(40))
    calendar_error_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    @hybrid_property
    def calendar_refused(self) -> bool:
        """Refused by the calendar for good and waiting for staff (the reconciler leaves it be); in SQL too."""
        return self.status in CALENDAR_REFUSED_STATUSES and self.calendar_error is not None

    @calendar_refused.inplace.expression
    @classmethod
    def _calendar_refused(cls):
        return and_(cls.status.in_(CALENDAR_REFUSED_STATUSES), cls.calendar_error.is_not(None))


class OutboxItem(Base):
    """A scheduled send (reminder, survey, announcement): one row per business key, sent at most once."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    ref: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16), default="line")
    to: Mapped[str] = mapped_column(String(64))
    messages: Mapped[list[Any]]
    due_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]  # past this it is skipped, not sent late (a reminder after the meeting)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    outbound_id: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]


class PopupDay(Base):
    """A pop-up consultation day (出張相談会) at a chamber of commerce: slots with a number of seats each."""

    __tablename__ = "popup_days"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    region: Mapped[str] = mapped_column(String(20), index=True)
    venue: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(300))
    start_at: Mapped[datetime] = mapped_column(index=True)
    end_at: Mapped[datetime]
    slot_minutes: Mapped[int] = mapped_column(Integer, default=60)
    capacity: Mapped[int] = mapped_column(Integer, default=1)  # consultations at the same time
    coordinator_id: Mapped[str | None] = mapped_column(String(40))  # whose calendar holds the bookings, if anyone's
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime]


def popup_desk(day_id: int, seat: int) -> str:
    """The booking's coordinator_id for a seat at a pop-up day: the active-slot index then caps each slot at its capacity."""
    return f"popup-{day_id}-{seat}"


class Seminar(Base):
    """A DX seminar held on site (かごゆいテラス by default) and online at once, with separate capacities."""

    __tablename__ = "seminars"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    start_at: Mapped[datetime] = mapped_column(index=True)
    end_at: Mapped[datetime]
    venue: Mapped[str | None] = mapped_column(String(200))  # None: online only
    venue_address: Mapped[str | None] = mapped_column(String(300))
    map_url: Mapped[str | None] = mapped_column(String(500))
    online_url: Mapped[str | None] = mapped_column(String(500))  # sent to online participants only
    onsite_seats: Mapped[int] = mapped_column(Integer, default=0)
    online_seats: Mapped[int] = mapped_column(Integer, default=0)
    deadline_at: Mapped[datetime | None]  # registrations close then (None: at the start)
    subsidy_briefing: Mapped[bool] = mapped_column(Boolean, default=False)
    survey_id: Mapped[str | None] = mapped_column(String(40))  # a [[surveys]] id of the configuration
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, cancelled
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


SEMINAR_MODES = ("onsite", "online")
HOLDS_SEAT = ("registered", "attended")  # a registration in one of these takes a seat of its mode
LIVE_REGISTRATION = (*HOLDS_SEAT, "waiting")


class SeminarRegistration(Base):
    """One person's place at a seminar (or on its waiting list), in one mode."""

    __tablename__ = "seminar_registrations"
    __table_args__ = (
        # One live registration per person and seminar; cancelled ones stay as history.
        Index("uq_registration_live", "seminar_id", "user_id", unique=True,
              sqlite_where=text("status IN ('registered', 'waiting', 'attended')"),
              postgresql_where=text("status IN ('registered', 'waiting', 'attended')")),
        Index("ix_registration_seminar_status", "seminar_id", "status", "mode", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seminar_id: Mapped[int] = mapped_column(ForeignKey("seminars.id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("line_users.id"), index=True)
    mode: Mapped[str] = mapped_column(String(10))  # onsite, online
    status: Mapped[str] = mapped_column(String(16))  # registered, waiting, cancelled, attended
    company: Mapped[str | None] = mapped_column(String(200))
    contact_name: Mapped[str | None] = mapped_column(String(100))
    simulated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    checkin_token: Mapped[str] = mapped_column(String(64), unique=True)  # the secret in the check-in QR code
    waiting_since: Mapped[datetime | None]  # the waiting list's order (then id)
    promoted_at: Mapped[datetime | None]  # moved from the waiting list to a seat
    attended_at: Mapped[datetime | None]
    attended_by: Mapped[str | None] = mapped_column(String(64))  # the staff login, or "cli"
    cancelled_at: Mapped[datetime | None]
    cancelled_by: Mapped[str | None] = mapped_column(String(16))  # user, staff, declined (a promotion turned down)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SurveyResponse(Base):
    """One person's answers to a seminar's survey: one row per person and seminar, updated, never duplicated."""

    __tablename__ = "survey_responses"
    __table_args__ = (Index("uq_survey_response", "seminar_id", "user_id", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seminar_id: Mapped[int] = mapped_column(ForeignKey("seminars.id"))
    survey_id: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[str] = mapped_column(ForeignKey("line_users.id"), index=True)
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)  # question id -> value (a list for multiple choice)
    completed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Multicast(Base):
    """One multicast request (at most 500 recipients) of an announcement or a reminder, kept with its retry key.

    `key` is the business key of the batch (e.g. "announce:3:all:0"), so planning it again finds the same row and a
    retry of the request reuses the same X-Line-Retry-Key: a batch is never sent twice.
    """

    __tablename__ = "multicasts"
    __table_args__ = (Index("ix_multicast_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))  # announcement, seminar_reminder, ...
    ref: Mapped[str] = mapped_column(String(64), index=True)  # e.g. seminar:3
    recipients: Mapped[list[Any]]
    messages: Mapped[list[Any]]
    retry_key: Mapped[str] = mapped_column(String(36), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


AUDIT_ACTIONS = ("view", "export", "change", "erase", "purge")


class AuditEntry(Base):
    """Who looked at, exported, changed or erased which record, and when. Never personal data itself: a record is
    named by its kind and id (`consultation:12`), a LINE user by storage.logids.user_ref. Rows are only ever added."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_who_at", "who", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    who: Mapped[str] = mapped_column(String(64))  # a staff login, or "cli", "bot", "scheduler"
    action: Mapped[str] = mapped_column(String(16))  # one of AUDIT_ACTIONS
    record: Mapped[str] = mapped_column(String(80))


class DeletionRequest(Base):
    """A person's request to erase their data (「データ削除」): done at once by the bot, or left for staff to carry out
    when a booking or a seminar registration lies ahead. Once done, `user_id` holds the tombstone that replaced the
    LINE id everywhere, and `notice_id` the message that told them (it alone keeps the LINE id, until it is sent)."""

    __tablename__ = "deletion_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending, done
    requested_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    done_by: Mapped[str | None] = mapped_column(String(64))  # "bot", or the staff login who carried it out
    notice_id: Mapped[int | None] = mapped_column(Integer)


CASE_STATUSES = ("received", "scheduling", "in_progress", "closed", "follow_up")  # 受付 → 日程調整中 → 対応中 → 完了 → フォローアップ


class CaseEvent(Base):
    """One change to a case, kept as its history: a status, an assignment or a corrected profile field.

    `old` and `new` hold the values (a corrected phone number is personal data: erasure clears them with the rest)."""

    __tablename__ = "case_events"
    __table_args__ = (Index("ix_case_event_consultation", "consultation_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"))
    at: Mapped[datetime]
    who: Mapped[str] = mapped_column(String(64))  # the staff login, "bot" or "cli"
    kind: Mapped[str] = mapped_column(String(16))  # status, assign, field, referral (an outcome; field: its id)
    field: Mapped[str | None] = mapped_column(String(40))  # the profile field, for kind "field"
    old: Mapped[str | None] = mapped_column(Text)
    new: Mapped[str | None] = mapped_column(Text)


class CaseNote(Base):
    """A coordinator's note on a case (対応記録)."""

    __tablename__ = "case_notes"
    __table_args__ = (Index("ix_case_note_consultation", "consultation_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"))
    at: Mapped[datetime]
    author: Mapped[str] = mapped_column(String(64))  # the staff login
    text: Mapped[str] = mapped_column(Text)


REFERRAL_OUTCOMES = ("pending", "accepted", "declined", "done")  # 紹介済み, 支援開始, 見送り, 支援完了


class Referral(Base):
    """A case referred to a partner institution ([[partners]] of the configuration), and what came of it."""

    __tablename__ = "referrals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"), index=True)
    partner_id: Mapped[str] = mapped_column(String(40), index=True)
    referred_at: Mapped[datetime] = mapped_column(index=True)
    referred_by: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16), default="pending")  # one of REFERRAL_OUTCOMES
    outcome_note: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]


# The contract's other work, which the monthly report counts.
ACTIVITY_KINDS = ("visit", "training", "partner_visit", "partner_talk", "subsidy_followup", "model_case")
MODEL_CASE_STAGES = ("surveyed", "analysed", "planned")  # 調査, 課題分析, 計画策定


class Activity(Base):
    """A coordinator's piece of work other than a consultation: a support visit, an in-company training session, a
    visit or talk at a partner institution, a follow-up of a past subsidy recipient, or DX model-case work."""

    __tablename__ = "activities"
    __table_args__ = (Index("ix_activity_kind_date", "kind", "date"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))  # one of ACTIVITY_KINDS
    date: Mapped[datetime] = mapped_column(index=True)  # when it took place (its start)
    coordinator_id: Mapped[str | None] = mapped_column(String(40), index=True)
    company: Mapped[str | None] = mapped_column(String(200))  # the company visited or trained, or the partner
    consultation_id: Mapped[int | None] = mapped_column(ForeignKey("consultations.id"), index=True)
    partner_id: Mapped[str | None] = mapped_column(String(40))  # for partner visits and talks
    session_no: Mapped[int | None] = mapped_column(Integer)  # a training's session number (1, 2, 3)
    topics: Mapped[str | None] = mapped_column(Text)
    attendees: Mapped[int | None] = mapped_column(Integer)
    model_stage: Mapped[str | None] = mapped_column(String(16))  # one of MODEL_CASE_STAGES, for model-case work
    notes: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ActivityPhoto(Base):
    """A photo of an activity: stored under a random name outside the static folder, served to staff only."""

    __tablename__ = "activity_photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id"), index=True)
    stored_name: Mapped[str] = mapped_column(String(80), unique=True)  # random; the uploaded name is never used
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
