"""The flow table (state -> intent -> step) and `advance`, the one function that moves a conversation."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from bot import booking as b
from bot import intake as i
from bot import menu as m
from bot import privacy as p
from bot import replies as r
from bot import survey as sv
from bot import seminars as sem
from bot.conversation import INTAKE_TTL, Context, Conversation, Intent, Outcome, State

StepFn = Callable[[Conversation, Intent, Context], Outcome]
PromptFn = Callable[[Conversation, Context], list[dict]]


class FlowError(RuntimeError):
    """A step went to a state its table entry does not declare: a bug, caught by the table's tests."""


@dataclass(frozen=True)
class Step:
    run: StepFn
    to: tuple[State, ...] = ()
    stays: bool = False  # may keep the current state (asking again)


@dataclass(frozen=True)
class Spec:
    prompt: PromptFn | None
    on: dict[str, Step] = field(default_factory=dict)
    intake: bool = True  # part of an unfinished intake: it expires, and can be put aside and resumed


S = State
FIELDS = (S.ASK_COMPANY, S.ASK_INDUSTRY, S.ASK_EMPLOYEES, S.ASK_MUNICIPALITY, S.ASK_CONTACT_NAME,
          S.ASK_PHONE, S.ASK_EMAIL, S.ASK_METHOD, S.CONFIRM_SUMMARY, S.CONFIRM_PROFILE)
ANSWERED = (*FIELDS, S.ASK_QUESTION)  # where an answered field leads: the next one missing, or the summary
# Where a seminar registration's answers lead: the next thing missing, or the confirmation.
SEMINAR_DETAILS = (S.SEMINAR_FULL, S.SEMINAR_COMPANY, S.SEMINAR_NAME, S.SEMINAR_CONFIRM, S.IDLE)


def answer(step: StepFn, *also: str) -> dict[str, Step]:
    """Typed text and tapped choices go to the same step."""
    entry = Step(step, ANSWERED, stays=True)
    return {"text": entry, **{name: entry for name in also}}


FLOW: dict[State, Spec] = {
    S.IDLE: Spec(None, {"text": Step(m.idle_text, stays=True)}, intake=False),
    S.ASK_CONSENT: Spec(i.privacy_notice_prompt, {
        "consent": Step(i.take_consent, (S.ASK_QUESTION, S.CONFIRM_CATEGORY)),
        "decline": Step(i.decline, (S.IDLE,)),
        "text": Step(i.consent_text, (S.ASK_QUESTION, S.CONFIRM_CATEGORY), stays=True),
    }),
    S.ASK_QUESTION: Spec(i.ask_question, {"text": Step(i.take_question, (S.CONFIRM_CATEGORY,), stays=True)}),
    S.CONFIRM_CATEGORY: Spec(i.ask_category_confirm, {
        name: Step(i.confirm_category, (*ANSWERED, S.CHOOSE_CATEGORY), stays=True)
        for name in ("text", "yes", "no", "category")}),
    S.CHOOSE_CATEGORY: Spec(i.ask_category, answer(i.choose_category, "category")),
    S.CONFIRM_PROFILE: Spec(i.ask_profile_confirm, {
        name: Step(i.confirm_profile, ANSWERED, stays=True) for name in ("text", "yes", "no")}),
    S.ASK_COMPANY: Spec(i.ask_company, answer(i.take_company)),
    S.ASK_INDUSTRY: Spec(i.ask_industry, answer(i.take_industry, "industry")),
    S.ASK_EMPLOYEES: Spec(i.ask_employees, answer(i.take_employees, "employees")),
    S.ASK_MUNICIPALITY: Spec(i.ask_municipality, {
        **answer(i.take_municipality, "municipality"), "region": Step(i.pick_region, stays=True)}),
    S.ASK_CONTACT_NAME: Spec(i.ask_contact_name, answer(i.take_contact_name, "name")),
    S.ASK_PHONE: Spec(i.ask_phone, answer(i.take_phone, "skip", "contact")),
    S.ASK_EMAIL: Spec(i.ask_email, answer(i.take_email, "skip", "contact")),
    S.ASK_METHOD: Spec(i.ask_method, answer(i.take_method, "method")),
    S.CONFIRM_SUMMARY: Spec(i.ask_summary, {
        "submit": Step(b.submit, (S.CHOOSE_SLOT, S.IDLE, *ANSWERED)),
        "edit": Step(lambda conv, intent, ctx: Outcome(S.CHOOSE_EDIT), (S.CHOOSE_EDIT,)),
        "text": Step(b.summary_text, (S.CHOOSE_SLOT, S.IDLE, S.CHOOSE_EDIT, *ANSWERED), stays=True),
    }),
    S.CHOOSE_EDIT: Spec(i.ask_edit, {
        name: Step(i.choose_edit, tuple(i.EDIT_TARGETS.values()), stays=True) for name in ("text", "field")}),
    S.CHOOSE_SLOT: Spec(b.ask_slot, {
        "slot": Step(b.take_slot, (S.IDLE,), stays=True),
        "popup_slot": Step(b.popup_slot, (S.IDLE,), stays=True),
        "pick_slot": Step(b.picked_slot, (S.IDLE,), stays=True),
        "more_slots": Step(b.more_slots, stays=True),
        "confirm_slot": Step(b.confirm_slot, (S.IDLE,), stays=True),
        "other_slot": Step(b.other_slot, stays=True),
        "prefer": Step(b.prefer, stays=True),
        "later": Step(b.later, (S.IDLE,)),
        "text": Step(b.slot_text, (S.IDLE,), stays=True),
    }, intake=False),
    S.ASK_CANCEL_REASON: Spec(b.ask_cancel_reason, {
        name: Step(b.take_cancel_reason, (S.IDLE,), stays=True) for name in ("text", "cancel_reason")} | {
        "keep": Step(b.keep_booking, (S.IDLE,))}, intake=False),
    S.WITH_STAFF: Spec(None, {"text": Step(m.with_staff_message, stays=True)}, intake=False),
    # The seminar survey: answered one question at a time; a 「はい」 to the consultation question leads into the intake.
    S.ANSWER_SURVEY: Spec(sv.ask, {
        **{name: Step(sv.answer, (S.IDLE, S.ASK_CONSENT, S.ASK_QUESTION), stays=True)
           for name in ("survey_answer", "text")},
        "survey_pick": Step(sv.pick, stays=True),
        "survey_next": Step(sv.next_question, (S.IDLE, S.ASK_CONSENT, S.ASK_QUESTION), stays=True),
        "survey_skip": Step(sv.skip, (S.IDLE, S.ASK_CONSENT, S.ASK_QUESTION), stays=True),
    }, intake=False),
    # --- seminars (bot/seminars.py): 申し込む -> consent if not on record -> mode -> (full: other mode or wait)
    # -> company and name unless on record -> confirm; the service registers under the seminar's lock.
    S.SEMINAR_CONSENT: Spec(sem.ask_consent, {
        "consent": Step(sem.take_consent, (S.SEMINAR_MODE,)),
        "decline": Step(i.decline, (S.IDLE,)),
        "text": Step(sem.consent_text, (S.SEMINAR_MODE,), stays=True),
    }, intake=False),
    S.SEMINAR_MODE: Spec(sem.ask_mode, {
        name: Step(sem.take_mode, SEMINAR_DETAILS, stays=True) for name in ("text", "seminar_mode")}, intake=False),
    S.SEMINAR_FULL: Spec(sem.ask_full, {
        "seminar_mode": Step(sem.take_mode, SEMINAR_DETAILS, stays=True),
        "seminar_wait": Step(sem.take_wait, SEMINAR_DETAILS),
        "text": Step(sem.full_text, SEMINAR_DETAILS, stays=True),
    }, intake=False),
    S.SEMINAR_COMPANY: Spec(i.ask_company, {"text": Step(sem.take_company, SEMINAR_DETAILS, stays=True)}, intake=False),
    S.SEMINAR_NAME: Spec(i.ask_contact_name, {
        name: Step(sem.take_name, SEMINAR_DETAILS, stays=True) for name in ("text", "name")}, intake=False),
    S.SEMINAR_CONFIRM: Spec(sem.ask_confirm, {
        "seminar_submit": Step(sem.submit, (S.IDLE, S.SEMINAR_FULL)),
        "seminar_edit": Step(sem.edit, (S.SEMINAR_COMPANY,)),
        "text": Step(sem.confirm_text, (S.IDLE, S.SEMINAR_FULL), stays=True),
    }, intake=False),
    S.CONFIRM_ERASE: Spec(None, {
        "erase_confirm": Step(p.confirm, (S.IDLE,)),
        "erase_keep": Step(p.keep, (S.IDLE,)),
        "cancel": Step(p.keep, (S.IDLE,)),
        "text": Step(p.typed, (S.IDLE,), stays=True),
    }, intake=False),
}

INTAKE_STATES = tuple(s for s, spec in FLOW.items() if spec.intake)
# The steps of the intake where 戻る and やめる are offered, and where 戻る may lead.
NAV_STATES = (S.ASK_QUESTION, S.CONFIRM_CATEGORY, S.CHOOSE_CATEGORY, *FIELDS)

# From any state, unless the state's own table takes the intent first.
GLOBAL: dict[str, Step] = {
    "follow": Step(m.follow, (S.IDLE, S.ASK_CONSENT), stays=True),
    "unfollow": Step(m.unfollow, (S.IDLE,)),
    "menu": Step(m.menu, (S.IDLE,)),
    "cancel": Step(m.cancel, (S.IDLE,)),
    "restart": Step(m.restart, (S.ASK_CONSENT, S.ASK_QUESTION)),
    "back": Step(i.go_back, NAV_STATES, stays=True),
    "resume": Step(m.resume, (S.IDLE, *INTAKE_STATES), stays=True),
    "handover": Step(m.handover, (S.WITH_STAFF,)),
    "consult": Step(m.consult, (S.ASK_CONSENT, S.ASK_QUESTION, S.CONFIRM_CATEGORY, S.IDLE), stays=True),
    "faq": Step(m.faq, (S.IDLE,), stays=True),
    "seminars": Step(sem.list_seminars, (S.IDLE,), stays=True),
    "seminar": Step(sem.apply, (S.IDLE, S.SEMINAR_CONSENT, S.SEMINAR_MODE), stays=True),
    "seminar_cancel": Step(sem.ask_cancel, (S.IDLE,), stays=True),
    "seminar_cancel_yes": Step(sem.do_cancel, (S.IDLE,), stays=True),
    "seminar_decline": Step(sem.decline, (S.IDLE,), stays=True),
    "popup": Step(b.list_popups, (S.IDLE,), stays=True),
    "popup_slot": Step(b.popup_slot, (S.IDLE, S.ASK_CONSENT, *ANSWERED), stays=True),
    "bookings": Step(b.list_bookings, (S.IDLE,), stays=True),
    "book": Step(b.book_later, (S.IDLE, S.CHOOSE_SLOT)),
    "reschedule": Step(b.reschedule, (S.IDLE, S.CHOOSE_SLOT)),
    "cancel_booking": Step(b.cancel_booking, (S.IDLE, S.ASK_CANCEL_REASON)),
    "coord_ack": Step(b.coordinator_answer, stays=True),
    "coord_swap": Step(b.coordinator_answer, stays=True),
    "media": Step(m.media, stays=True),
    "survey": Step(sv.start, (S.ANSWER_SURVEY,), stays=True),
    **{name: Step(sv.no_survey, stays=True) for name in ("survey_answer", "survey_pick", "survey_next", "survey_skip")},
    "erase": Step(p.ask, (S.CONFIRM_ERASE,), stays=True),
}
FALLBACK = Step(m.not_understood, stays=True)


def step_for(state: State, intent_name: str) -> Step:
    return FLOW[state].on.get(intent_name) or GLOBAL.get(intent_name) or FALLBACK


def advance(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """Run the step for `intent` in the conversation's state; the outcome carries every reply to send."""
    notice: list[dict] = []
    if FLOW[conv.state].intake and conv.updated_at and ctx.now - conv.updated_at > INTAKE_TTL and intent.name != "follow":
        notice.append(r.text("前回のご相談の入力は24時間が過ぎたため、いったん終了しました。"
                             "お手数ですが、必要でしたらもう一度お願いします。"))
        conv = Conversation(conv.user_id, S.IDLE, {}, None, conv.updated_at)
    step = step_for(conv.state, intent.name)
    outcome = step.run(conv, intent, ctx)
    if outcome.next_state not in step.to and not (step.stays and outcome.next_state == conv.state):
        raise FlowError(f"{step.run.__name__} went from {conv.state} to {outcome.next_state}")
    outcome.replies = notice + outcome.replies
    if conv.state in NAV_STATES and outcome.next_state in NAV_STATES and outcome.next_state != conv.state \
            and intent.name != "back":
        outcome.data = i.with_trail(conv.data if outcome.data is None else outcome.data, conv.state)
    if outcome.prompt:
        prompt = FLOW[outcome.next_state].prompt
        if prompt:
            after = Conversation(conv.user_id, outcome.next_state,
                                 conv.data if outcome.data is None else outcome.data, conv.suspended)
            asked = prompt(after, ctx)
            if outcome.next_state in NAV_STATES and asked:
                asked[-1] = r.with_quick(asked[-1], i.nav_actions(after))
            outcome.replies += asked
    if notice and outcome.data is None:
        outcome.data = {}
    if notice and outcome.suspended is False:
        outcome.suspended = None
    return outcome
