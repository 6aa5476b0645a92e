"""The conversation's data: states, intents, effects, outcomes, and the ports the bot reaches the world by."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Callable, Protocol

from bot.config import Config


class State(StrEnum):
    IDLE = "idle"
    ASK_CONSENT = "ask_consent"
    ASK_QUESTION = "ask_question"
    CONFIRM_CATEGORY = "confirm_category"
    CHOOSE_CATEGORY = "choose_category"
    CONFIRM_PROFILE = "confirm_profile"
    ASK_COMPANY = "ask_company"
    ASK_INDUSTRY = "ask_industry"
    ASK_EMPLOYEES = "ask_employees"
    ASK_MUNICIPALITY = "ask_municipality"
    ASK_CONTACT_NAME = "ask_contact_name"
    ASK_PHONE = "ask_phone"
    ASK_EMAIL = "ask_email"
    ASK_METHOD = "ask_method"
    CONFIRM_SUMMARY = "confirm_summary"
    CHOOSE_EDIT = "choose_edit"
    CHOOSE_SLOT = "choose_slot"
    ASK_CANCEL_REASON = "ask_cancel_reason"
    WITH_STAFF = "with_staff"
    ANSWER_SURVEY = "answer_survey"
    # --- seminars (bot/seminars.py) ---
    SEMINAR_CONSENT = "seminar_consent"
    SEMINAR_MODE = "seminar_mode"
    SEMINAR_FULL = "seminar_full"
    SEMINAR_COMPANY = "seminar_company"
    SEMINAR_NAME = "seminar_name"
    SEMINAR_CONFIRM = "seminar_confirm"
    CONFIRM_ERASE = "confirm_erase"


# An unfinished intake is kept this long, then ends politely.
INTAKE_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class Intent:
    """What the user meant: a name from the intent table, with the text or postback data behind it."""

    name: str
    text: str = ""
    data: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    @property
    def value(self) -> str:
        """The answer given: a tapped choice's value, or the typed text."""
        return self.data.get("v", self.text).strip()


@dataclass
class Conversation:
    user_id: str
    state: State = State.IDLE
    data: dict[str, Any] = field(default_factory=dict)
    suspended: dict[str, Any] | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Profile:
    """What is on record for a returning user."""

    company: str | None = None
    industry: str | None = None
    employees: str | None = None
    municipality: str | None = None
    contact_name: str | None = None
    phone: str | None = None
    email: str | None = None
    consent_version: str | None = None
    display_name: str | None = None  # the LINE profile's name, proposed as the contact name (the user confirms)

    @property
    def complete(self) -> bool:
        return bool(self.company and self.industry and self.employees and self.municipality
                    and self.contact_name and (self.phone or self.email))


# Effects: what the bot wants done, carried out by a service in the same transaction as the new state.
@dataclass(frozen=True)
class RecordConsent:
    version: str


@dataclass(frozen=True)
class RecordConsultation:
    """Record the intake; `receipt` turns the receipt number into the replies that tell the user.

    The service keeps the new consultation's id in the conversation's data as `consultation_id`.
    """

    fields: dict[str, Any]
    receipt: Callable[[str], list[dict]]


@dataclass(frozen=True)
class SaveProfile:
    fields: dict[str, Any]


@dataclass(frozen=True)
class HandOver:
    """Put the conversation in the staff's hands."""


@dataclass(frozen=True)
class BookSlot:
    """Book `start` with `coordinator`, replacing booking `replaces` if given (a change of date).

    The service decides under a lock; if the slot is gone it keeps the conversation choosing, with `taken()` said.
    """

    coordinator: str
    start: datetime
    method: str
    region: str | None
    consultation_id: int | None
    replaces: int | None
    taken: Callable[[], list[dict]]
    popup_day: int | None = None  # a seat at a pop-up day rather than a coordinator's slot


@dataclass(frozen=True)
class CancelBooking:
    booking_id: int
    reason: str


@dataclass(frozen=True)
class CoordinatorAnswer:
    """A coordinator's tap on a booking notice; the service checks it is that booking's coordinator."""

    booking_id: int
    swap: bool  # True: 担当を代わってほしい; False: 確認


@dataclass(frozen=True)
class RequestErasure:
    """The person confirmed 「データ削除」: erase now (`immediate`), or record the request for staff to carry out.

    Erasing at once happens after this event's replies are queued, so the reply that says so still reaches them.
    """

    immediate: bool


@dataclass(frozen=True)
class SetFollowing:
    following: bool


@dataclass(frozen=True)
class SaveSurveyAnswer:
    """Keep one answer (None: skipped) in the user's response to the seminar's survey; one response per person."""

    seminar_id: int
    survey_id: str
    question_id: str
    value: Any
    completed: bool


# --- seminars: the service registers under the seminar's lock and says what came of it -----------------------
@dataclass(frozen=True)
class RegisterSeminar:
    seminar_id: int
    mode: str
    wait: bool  # a place on the waiting list if the mode is full by now
    company: str
    contact_name: str


@dataclass(frozen=True)
class CancelRegistration:
    """The user's own cancellation (checked by the service); a freed seat goes to the first who waits."""

    registration_id: int


@dataclass(frozen=True)
class DeclinePromotion:
    """A promoted person's one tap 辞退する: the seat goes to the next who waits."""

    registration_id: int


Effect = (RecordConsent | RecordConsultation | SaveProfile | HandOver | SetFollowing | BookSlot | CancelBooking
          | CoordinatorAnswer | SaveSurveyAnswer | RegisterSeminar | CancelRegistration | DeclinePromotion
          | RequestErasure)


@dataclass
class Outcome:
    next_state: State
    replies: list[dict] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    data: dict[str, Any] | None = None  # the conversation's new data; None keeps it
    suspended: dict[str, Any] | None | bool = False  # False keeps it, None clears it
    prompt: bool = True  # ask the next state's question after the replies


class Triage(Protocol):
    category: str
    confidence: float
    keywords: tuple[str, ...]
    suggestions: tuple[str, ...]


class Classifier(Protocol):
    def classify(self, text: str) -> Triage: ...


@dataclass(frozen=True)
class ConsultationSummary:
    id: int
    receipt_no: str
    category: str
    status: str
    received_at: datetime
    method: str = "online"
    region: str | None = None
    bookable: bool = False  # open, and with no active booking


@dataclass(frozen=True)
class OfferedSlot:
    coordinator: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class BookingSummary:
    id: int
    start: datetime
    end: datetime
    method: str
    coordinator_name: str
    status: str
    meet_url: str | None = None
    region: str | None = None
    consultation_id: int | None = None
    venue: str | None = None  # a seat at a pop-up day: where
    address: str | None = None
    receipt_no: str | None = None
    topic: str | None = None  # the consultation's category, by name
    held: bool = False  # pending, and the calendar refused it for good: staff will contact the user


@dataclass(frozen=True)
class PopupOffer:
    """A pop-up consultation day (出張相談会) with its free slots."""

    day_id: int
    venue: str
    address: str | None
    region: str
    start: datetime
    end: datetime
    slots: tuple[OfferedSlot, ...]
    nearby: bool = False  # in the user's own region
    note: str | None = None


@dataclass(frozen=True)
class SeminarOffer:
    """An upcoming seminar with the seats this user can still have (the names of the Seminar model's fields)."""

    id: int
    title: str
    start_at: datetime
    end_at: datetime
    closes_at: datetime
    venue: str | None
    venue_address: str | None
    map_url: str | None
    onsite_seats: int
    online_seats: int
    onsite_left: int
    online_left: int
    onsite_waiting: int = 0
    online_waiting: int = 0
    subsidy_briefing: bool = False
    description: str = ""

    def capacity(self, mode: str) -> int:
        return self.onsite_seats if mode == "onsite" else self.online_seats

    def left(self, mode: str) -> int:
        return self.onsite_left if mode == "onsite" else self.online_left

    def waiting(self, mode: str) -> int:
        return self.onsite_waiting if mode == "onsite" else self.online_waiting


@dataclass(frozen=True)
class RegistrationSummary:
    """One of the user's live seminar registrations."""

    id: int
    seminar_id: int
    title: str
    start_at: datetime
    end_at: datetime
    mode: str
    status: str  # registered, waiting, attended
    venue: str | None = None
    position: int | None = None  # on the waiting list


class SlotFinder(Protocol):
    def offer(self, *, method: str, region: str | None, after: date | None, days: int,
              preferred: str | None = None) -> list[OfferedSlot]:
        """Free slots to offer this user, one per start time, from `after` (or the earliest allowed) for `days` days:
        round-robin among the coordinators, or only `preferred`'s when the user asked for that coordinator."""

    def previous(self, *, method: str, region: str | None) -> tuple[str, str] | None:
        """(id, name) of the coordinator this user met last, if that coordinator takes this method and region."""

    def popups(self, *, region: str | None) -> list[PopupOffer]:
        """Pop-up days ahead with free slots, those in `region` first."""


@dataclass(frozen=True)
class SurveyProgress:
    """The user's own survey for a seminar they attended, and what they have answered so far."""

    seminar_id: int
    seminar_title: str
    survey_id: str
    answers: dict[str, Any] = field(default_factory=dict)
    completed: bool = False


@dataclass(frozen=True)
class Commitment:
    """Something of the person's still to come that staff must cancel before their data can be erased."""

    kind: str  # booking, seminar
    start: datetime
    title: str = ""


@dataclass(frozen=True)
class Context:
    """Everything a step may read besides the conversation: never a connection, never a clock call."""

    config: Config
    triager: Classifier
    now: datetime
    profile: Profile = Profile()
    consultations: tuple[ConsultationSummary, ...] = ()
    bookings: tuple[BookingSummary, ...] = ()  # the user's upcoming bookings, when the step needs them
    slots: SlotFinder | None = None
    policy_url: str = "/privacy"
    seminars: tuple[SeminarOffer, ...] = ()  # upcoming seminars, when the step needs them
    registrations: tuple[RegistrationSummary, ...] = ()  # the user's live seminar registrations, likewise
    survey: SurveyProgress | None = None  # loaded for survey taps and while a survey is being answered
    ahead: tuple[Commitment, ...] = ()  # in CONFIRM_ERASE: the person's bookings and seminar places to come
