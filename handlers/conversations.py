"""The conversation service: load a user's state, run the bot, carry out its effects and queue its replies, in one transaction."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Callable

from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.orm import Session

from bot.config import Config
from bot.conversation import (
    BookingSummary, BookSlot, CancelBooking, Classifier, ConsultationSummary, Context, Conversation, CoordinatorAnswer,
    Commitment, HandOver, Intent, RequestErasure,
    OfferedSlot, PopupOffer, Profile, RecordConsent, RecordConsultation, SaveProfile, SaveSurveyAnswer, SetFollowing,
    State, SurveyProgress,
)
from bot import seminars as seminar_texts
from bot.conversation import (
    CancelRegistration, DeclinePromotion, RegisterSeminar, RegistrationSummary, SeminarOffer,
)
from bot.flow import INTAKE_STATES, advance
from bot.intents import intent_of
from bot.booking import pending_notice
from bot.jatime import to_tokyo
from bot.replies import text
from scheduling import popup
from scheduling import seminars as seminar_domain
from storage import seminars as seminar_store
from scheduling.bookings import is_simulated
from storage import privacy
from storage.activities import remove_files
from storage.cases import CLOSED_STATUSES
from storage.logids import user_ref
from storage.models import (
    ACTIVE_BOOKING, LIVE_REGISTRATION, Booking, Consultation, ConversationRow, DeletionRequest, InboxEvent, LineUser,
    Seminar, SeminarRegistration, SurveyResponse,
)
from storage.outbound import queue_messages

log = logging.getLogger(__name__)

# The conversation row is read and written with plain statements on its table, in every event: the ORM's flush of
# the mapped row cost about 0.2 ms more CPU per event, under SQLite's write lock (bench/README.md). It is read with the
# user in one query, half the cost of two. Only the row is locked: PostgreSQL cannot lock the missing side of an outer
# join, so a user with no row yet is read in two (see _user_and_row).
_conversations = ConversationRow.__table__
_USER_AND_ROW = (select(LineUser, *_conversations.c).join(_conversations, _conversations.c.user_id == LineUser.id)
                 .where(LineUser.id == bindparam("user")).with_for_update(of=_conversations))
_ROW = select(_conversations).where(_conversations.c.user_id == bindparam("user")).with_for_update()
_ROW_VALUES = {"state": bindparam("state"), "data": bindparam("data"), "suspended": bindparam("suspended"),
               "updated_at": bindparam("updated_at"), "staff_waiting_since": bindparam("waiting_since")}
_SAVE_ROW = update(_conversations).where(_conversations.c.user_id == bindparam("user")).values(_ROW_VALUES)
_NEW_ROW = insert(_conversations).values(user_id=bindparam("user"), **_ROW_VALUES)

# LINE takes a reply token once, shortly after the event; past this we push instead.
REPLY_TOKEN_LIFETIME = timedelta(seconds=50)
REPLY_TOKEN_MAX = 256  # outbound_messages.reply_token; LINE's are 32 characters
PROFILE_FIELDS = ("company", "industry", "employees", "municipality", "contact_name", "phone", "email")
# Intents whose steps read the user's consultations and bookings.
RECORD_INTENTS = frozenset({"bookings", "book", "reschedule", "cancel_booking"})
# Intents whose steps read the user's survey of a seminar.
SURVEY_INTENTS = frozenset({"survey", "survey_answer", "survey_pick", "survey_next", "survey_skip"})
# Seminar intents, and the states of a registration, whose steps read the seminars on and the user's registrations.
SEMINAR_INTENTS = frozenset({"seminars", "seminar", "seminar_cancel", "seminar_cancel_yes", "bookings"})
SEMINAR_STATES = frozenset(s for s in State if s.startswith("seminar_"))
# Intents whose steps search the calendars for free times: slow enough to show LINE's loading animation first.
SLOW_INTENTS = frozenset({"submit", "more_slots", "pick_slot", "prefer", "book", "reschedule", "slot", "confirm_slot",
                          "popup", "popup_slot"})


def is_slow(payload: dict) -> bool:
    intent = intent_of(payload)
    return intent is not None and intent.name in SLOW_INTENTS


@dataclass
class Handled:
    """What one event led to: messages queued in the transaction, and work to do once it is committed."""

    outbound_ids: list[int] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    erase: DeletionRequest | None = None  # carried out once the replies are queued, so the last one still reaches them


@dataclass
class SessionSlots:
    """The bot's SlotFinder, reading in the event's own transaction (a second one would wait on SQLite's lock)."""

    bookings: object
    s: Session
    user_id: str
    now: datetime

    def offer(self, *, method: str, region: str | None, after: date | None, days: int,
              preferred: str | None = None) -> list[OfferedSlot]:
        return self.bookings.offer(self.s, user_id=self.user_id, method=method, region=region, after=after,
                                   days=days, now=self.now, preferred=preferred)

    def previous(self, *, method: str, region: str | None) -> tuple[str, str] | None:
        return self.bookings.previous(self.s, user_id=self.user_id, method=method, region=region)

    def popups(self, *, region: str | None) -> list[PopupOffer]:
        return popup.offers(self.s, self.bookings.config, now=self.now, region=region,
                            simulated=is_simulated(self.user_id))


class ConversationService:
    def __init__(self, config: Config, triager: Classifier, policy_url: str, bookings=None,
                 loading: Callable[[str], None] | None = None, profile_name: Callable[[str], str | None] | None = None,
                 public_url: str = "", notify_waiting: Callable[[Session, str, datetime], list[int]] | None = None,
                 var_dir: Path | None = None):
        self.config, self.triager, self.policy_url = config, triager, policy_url
        self.var_dir = var_dir  # where activity photos are: an erasure removes those of the person's company
        self.notify_waiting = notify_waiting  # queues the notice to coordinators that a conversation waits for staff
        self.public_url = public_url  # links in messages (a registration's .ics and check-in QR code)
        self.bookings = bookings
        self.loading = loading  # shows LINE's loading animation before slow work
        self.profile_name = profile_name  # reads a LINE user's display name

    def handle_event(self, s: Session, event: InboxEvent, now: datetime) -> Handled:
        """Process one inbox event inside the caller's transaction."""
        payload = event.payload
        intent = intent_of(payload)
        if intent is None:
            log.info("inbox event %s: type %s not taken by the conversation", event.id, payload.get("type"))
            return Handled()
        reply_token = payload.get("replyToken")
        if not isinstance(reply_token, str) or not reply_token or len(reply_token) > REPLY_TOKEN_MAX:
            reply_token = None  # not one LINE issued: it could not be stored nor used, so the answer is pushed
        received = event.received_at
        reply_until = received + REPLY_TOKEN_LIFETIME if reply_token else None
        return self.handle(s, event.user_key, event.source, intent, now,
                           reply_token=reply_token, reply_until=reply_until)

    def handle(self, s: Session, user_id: str, source: str, intent: Intent, now: datetime, *,
               reply_token: str | None = None, reply_until: datetime | None = None) -> Handled:
        user, row = self._user_and_row(s, user_id, source, now)
        state, data, suspended = State.IDLE, {}, None
        if row is not None:
            suspended = row.suspended
            try:
                state, data = State(row.state), row.data or {}
            except ValueError:  # a state from an older version of the flow: it starts afresh
                pass
        conv = Conversation(user_id, state, dict(data), suspended, row.updated_at if row else now)
        if self.profile_name and source == "line" and user.display_name is None and state in INTAKE_STATES:
            # Once per user, during an intake: the name is proposed as the contact name. "" when LINE will not say.
            user.display_name = (self.profile_name(user_id) or "")[:100]
        records = intent.name in RECORD_INTENTS
        seminars = intent.name in SEMINAR_INTENTS or state in SEMINAR_STATES
        ctx = Context(self.config, self.triager, now, profile=_profile(user),
                      consultations=self._consultations(s, user_id) if records else (),
                      bookings=self._bookings(s, user_id, now) if records else (),
                      slots=SessionSlots(self.bookings, s, user_id, now) if self.bookings else None,
                      policy_url=self.policy_url,
                      seminars=self._seminars(s, user_id, now) if seminars else (),
                      registrations=self._registrations(s, user_id, now) if seminars else (),
                      survey=self._survey(s, user_id, intent, conv)
                      if intent.name in SURVEY_INTENTS or state == State.ANSWER_SURVEY else None,
                      ahead=_commitments(s, user_id, now) if state == State.CONFIRM_ERASE else ())
        outcome = advance(conv, intent, ctx)
        handled = Handled()
        said: list[dict] = []
        for effect in outcome.effects:
            said += self._apply(s, effect, user, source, now, outcome, conv, handled,
                                reply_token=reply_token, reply_until=reply_until)
        replies = said + outcome.replies
        waiting_since = row.staff_waiting_since if row else None
        log.info("conversation %s: %s --%s--> %s", user_ref(user_id), state, intent.name, outcome.next_state)
        if any(isinstance(e, HandOver) for e in outcome.effects) or (
                state == State.WITH_STAFF and intent.name in ("text", "media")):
            if waiting_since is None:  # in the staff's queue until they answer; told once per wait
                waiting_since = now
                handled.outbound_ids += self.notify_waiting(s, user_id, now) if self.notify_waiting else []
        s.execute(_NEW_ROW if row is None else _SAVE_ROW, {
            "user": user_id, "state": outcome.next_state, "data": data if outcome.data is None else outcome.data,
            "suspended": suspended if outcome.suspended is False else outcome.suspended, "updated_at": now,
            "waiting_since": waiting_since})
        queued = queue_messages(s, source, user_id, replies, now, reply_token=reply_token,
                                reply_until=reply_until) if replies else []
        handled.outbound_ids = queued + handled.outbound_ids
        if handled.erase is not None:
            erased = privacy.complete(s, handled.erase, "bot", now, queued)
            if self.var_dir is not None:
                handled.after_commit.append(lambda: remove_files(self.var_dir, erased.photos))
            log.info("deletion request %s: erased by the bot", handled.erase.id)
        return handled

    def _apply(self, s: Session, effect, user: LineUser, source: str, now: datetime, outcome, conv: Conversation,
               handled: Handled, **reply) -> list[dict]:
        match effect:
            case RecordConsent(version):
                user.consent_version, user.consent_at = version, now
            case SaveProfile(fields):
                for key, value in fields.items():
                    setattr(user, key, value)
                user.updated_at = now
            case SetFollowing(following):
                user.following = following
            case HandOver():
                log.info("conversation %s handed over to staff", user_ref(user.id))
            case RecordConsultation(fields, receipt):
                # `category` is what the user settled on; suggested_category, confidence and keywords are the model's.
                c = Consultation(received_at=now, simulated=source != "line", user_id=user.id, status="received",
                                 **{"channel": "line", **fields, "keywords": list(fields.get("keywords") or [])})
                s.add(c)
                s.flush()
                log.info("consultation %s recorded (category %s)", c.id, c.category)
                outcome.data = {**(conv.data if outcome.data is None else outcome.data), "consultation_id": c.id}
                return receipt(c.receipt_no)
            case BookSlot() as book:
                # A booking made with the intake's submit belongs to the consultation recorded just before it.
                consultation_id = book.consultation_id or (outcome.data or {}).get("consultation_id")
                if book.popup_day:
                    reserved = self.bookings.reserve_popup(s, day_id=book.popup_day, start=book.start, user_id=user.id,
                                                           consultation_id=consultation_id, now=now)
                else:
                    reserved = self.bookings.reserve(
                        s, user_id=user.id, coordinator=book.coordinator, start=book.start, method=book.method,
                        region=book.region, consultation_id=consultation_id, now=now, replaces=book.replaces)
                if reserved is None:
                    outcome.next_state = State.CHOOSE_SLOT
                    outcome.data = {**conv.data, **(outcome.data or {})} if conv.state != State.CHOOSE_SLOT else conv.data
                    return book.taken()
                handled.outbound_ids += reserved.notices
                handled.after_commit.append(lambda: self._finish_booking(reserved, user, **reply))
            case CancelBooking(booking_id, reason):
                notices = self.bookings.cancel(s, booking_id, user_id=user.id, reason=reason, by="user", now=now)
                if notices is None:
                    outcome.replies = []
                    return [text("そのご予約はキャンセルできませんでした。すでに変更・キャンセル済みの可能性があります。")]
                handled.outbound_ids += notices
                handled.after_commit.append(lambda: self.bookings.finish_cancel(booking_id))
            case CoordinatorAnswer(booking_id, swap):
                return self._coordinator_answer(s, booking_id, swap, user, now)
            case SaveSurveyAnswer() as given:
                _save_answer(s, user.id, given, now)
            case RegisterSeminar() | CancelRegistration() | DeclinePromotion():
                return self._seminar_effect(s, effect, user, now, outcome, conv, handled)
            case RequestErasure(immediate):
                request = privacy.request_deletion(s, user.id, now)
                if immediate:
                    handled.erase = request
                else:
                    log.info("deletion request %s left for staff: something of theirs lies ahead", request.id)
        return []

    # --- seminars ------------------------------------------------------------------------------------------

    def _seminar_effect(self, s: Session, effect, user: LineUser, now: datetime, outcome, conv: Conversation,
                        handled: Handled) -> list[dict]:
        match effect:
            case RegisterSeminar(seminar_id, mode, wait, company, contact_name):
                got = seminar_domain.register(s, seminar_id, user.id, mode, now, wait=wait, company=company,
                                              contact_name=contact_name)
                if got.outcome == "full":  # taken meanwhile: offer the other mode or the waiting list again
                    outcome.next_state, outcome.data = State.SEMINAR_FULL, {**conv.data, "wait": False}
                    asked = Conversation(user.id, State.SEMINAR_FULL, outcome.data)
                    fresh = Context(self.config, self.triager, now, seminars=self._seminars(s, user.id, now))
                    return [text("お手続きの間にお席が埋まってしまいました。"), *seminar_texts.ask_full(asked, fresh)]
                if not got.ok:
                    return seminar_texts.refused_messages(got.outcome)
                return seminar_texts.registered_messages(got.seminar, got.registration, self.public_url,
                                                         position=got.position)
            case CancelRegistration(registration_id) | DeclinePromotion(registration_id):
                if isinstance(effect, DeclinePromotion):
                    done = seminar_domain.decline(s, registration_id, user.id, now=now, public_url=self.public_url)
                else:
                    registration = s.get(SeminarRegistration, registration_id)
                    done = None
                    if registration is not None and registration.user_id == user.id:
                        done = seminar_domain.cancel(s, registration, by="user", now=now, public_url=self.public_url)
                if done is None:
                    log.warning("seminar registration %s: cancel/decline refused for user %s", registration_id,
                                user_ref(user.id))
                    outcome.replies = []
                    return [text("そのお申し込みは見つかりませんでした。すでにキャンセル済みの可能性があります。")]
                handled.outbound_ids += done.outbound_ids
        return []

    def _seminars(self, s: Session, user_id: str, now: datetime) -> tuple[SeminarOffer, ...]:
        rows = seminar_store.upcoming(s, now)
        counts = seminar_store.seats(s, [x.id for x in rows], simulated=seminar_domain.counted(user_id))
        return tuple(SeminarOffer(
            x.id, x.title, to_tokyo(x.start_at), to_tokyo(x.end_at), to_tokyo(seminar_store.closes_at(x)), x.venue,
            x.venue_address, x.map_url, x.onsite_seats, x.online_seats, counts[x.id].left("onsite"),
            counts[x.id].left("online"), counts[x.id].waiting["onsite"], counts[x.id].waiting["online"],
            x.subsidy_briefing, x.description or "") for x in rows)

    def _registrations(self, s: Session, user_id: str, now: datetime) -> tuple[RegistrationSummary, ...]:
        rows = s.execute(select(SeminarRegistration, Seminar).join(Seminar, SeminarRegistration.seminar_id == Seminar.id)
                         .where(SeminarRegistration.user_id == user_id,
                                SeminarRegistration.status.in_(LIVE_REGISTRATION), Seminar.end_at > now)
                         .order_by(Seminar.start_at))
        return tuple(RegistrationSummary(reg.id, x.id, x.title, to_tokyo(x.start_at), to_tokyo(x.end_at), reg.mode,
                                         reg.status, x.venue, seminar_domain.waiting_position(s, reg))
                     for reg, x in rows)

    def _coordinator_answer(self, s: Session, booking_id: int, swap: bool, user: LineUser, now: datetime) -> list[dict]:
        booking = s.get(Booking, booking_id)
        coordinator = self.config.coordinator(booking.coordinator_id) if booking else None
        if coordinator is None or coordinator.line_user_id != user.id:
            log.warning("coordinator answer refused: user %s is not booking %s's coordinator", user_ref(user.id),
                        booking_id)
            return [text("この操作はご利用いただけません。")]
        if swap:
            booking.swap_requested_at = now
            log.info("booking %s: coordinator asked for someone else", booking_id)
            return [text("担当の変更を事務局に依頼しました。調整のうえ、あらためてご連絡します。")]
        booking.acknowledged_at = now
        return [text("確認ありがとうございます。記録しました。")]

    def _finish_booking(self, reserved, user: LineUser, reply_token=None, reply_until=None) -> None:
        """After the commit: the calendar, then the truth to the user (confirmed, or held and pending)."""
        if self.loading and user.source == "line":
            self.loading(user.id)
        if reserved.replaced is not None:
            self.bookings.finish_cancel(reserved.replaced.id)
        booking = self.bookings.confirm(reserved.booking.id, changed=reserved.changed, previous=reserved.previous,
                                        reply_token=reply_token, reply_until=reply_until)
        if booking is None:
            with self.bookings.db.unit_of_work() as s:
                ids = queue_messages(s, user.source, user.id, pending_notice(), self.bookings.clock.now(),
                                     reply_token=reply_token, reply_until=reply_until)
                s.commit()
            self.bookings.delivery.send(ids)

    def _user_and_row(self, s: Session, user_id: str, source: str, now: datetime) -> tuple[LineUser, Row | None]:
        """The user, and their conversation row locked (the console writes it too) as a row of the table's columns,
        or None before their first event: one query once both exist."""
        found = s.execute(_USER_AND_ROW, {"user": user_id}).first()
        if found is not None:
            return found[0], found
        return self._user(s, user_id, source, now), s.execute(_ROW, {"user": user_id}).first()

    def _user(self, s: Session, user_id: str, source: str, now: datetime) -> LineUser:
        user = s.get(LineUser, user_id)
        if user is None:
            user = LineUser(id=user_id, source=source, following=True, created_at=now, updated_at=now)
            s.add(user)
            s.flush()
        return user

    def _survey(self, s: Session, user_id: str, intent: Intent, conv: Conversation) -> SurveyProgress | None:
        """The survey of the seminar the tap names (or the one being answered), if this user attended it."""
        named = intent.data.get("seminar") or (conv.data.get("survey") or {}).get("seminar")
        try:
            seminar = s.get(Seminar, int(named))
        except (TypeError, ValueError, OverflowError):
            return None
        if seminar is None or self.config.survey(seminar.survey_id) is None:
            return None
        attended = s.scalar(select(SeminarRegistration.id).where(
            SeminarRegistration.seminar_id == seminar.id, SeminarRegistration.user_id == user_id,
            SeminarRegistration.status == "attended"))
        if attended is None:
            log.info("survey of seminar %s refused to %s: not an attendee", seminar.id, user_ref(user_id))
            return None
        response = s.scalar(select(SurveyResponse).where(SurveyResponse.seminar_id == seminar.id,
                                                         SurveyResponse.user_id == user_id))
        return SurveyProgress(seminar.id, seminar.title, seminar.survey_id,
                              dict(response.answers or {}) if response else {},
                              completed=bool(response and response.completed_at))

    def _consultations(self, s: Session, user_id: str) -> tuple[ConsultationSummary, ...]:
        booked = select(Booking.consultation_id).where(Booking.status.in_(ACTIVE_BOOKING), Booking.consultation_id.is_not(None))
        rows = s.scalars(select(Consultation).where(Consultation.user_id == user_id,
                                                   Consultation.status.not_in(CLOSED_STATUSES))
                         .order_by(Consultation.id.desc()).limit(5))
        booked_ids = set(s.scalars(booked))
        return tuple(ConsultationSummary(c.id, c.receipt_no, self.config.category(c.category).name, c.status,
                                         to_tokyo(c.received_at), c.method, c.region,
                                         bookable=self.bookings is not None and c.id not in booked_ids) for c in rows)

    def _bookings(self, s: Session, user_id: str, now: datetime) -> tuple[BookingSummary, ...]:
        rows = s.execute(select(Booking, Consultation.region).outerjoin(Consultation, Booking.consultation_id == Consultation.id)
                         .where(Booking.user_id == user_id, Booking.status.in_(ACTIVE_BOOKING), Booking.end > now)
                         .order_by(Booking.start))
        return tuple(self.bookings.summary(b, region=region) for b, region in rows)


def _save_answer(s: Session, user_id: str, given: SaveSurveyAnswer, now: datetime) -> None:
    """One response per person and seminar: a new answer updates it (the conversation's row lock orders a user's taps)."""
    response = s.scalar(select(SurveyResponse).where(SurveyResponse.seminar_id == given.seminar_id,
                                                     SurveyResponse.user_id == user_id))
    if response is None:
        response = SurveyResponse(seminar_id=given.seminar_id, survey_id=given.survey_id, user_id=user_id, answers={},
                                  created_at=now)
        s.add(response)
    response.answers = {**(response.answers or {}), given.question_id: given.value}
    response.updated_at = now
    if given.completed:
        response.completed_at = now
def _commitments(s: Session, user_id: str, now: datetime) -> tuple[Commitment, ...]:
    ahead = privacy.ahead(s, user_id, now)
    seminars = [s.get(Seminar, r.seminar_id) for r in ahead.registrations]
    return (*(Commitment("booking", b.start) for b in ahead.bookings),
            *(Commitment("seminar", x.start_at, x.title) for x in seminars))


def _profile(user: LineUser) -> Profile:
    return Profile(**{f: getattr(user, f) for f in PROFILE_FIELDS}, consent_version=user.consent_version,
                   display_name=user.display_name)

