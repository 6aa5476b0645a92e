"""The conversation service: load a user's state, run the bot, carry out its effects and queue its replies, in one transaction."""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import Config
from bot.conversation import (
    Classifier, ConsultationSummary, Context, Conversation, HandOver, Intent, Profile, RecordConsent,
    RecordConsultation, SaveProfile, SetFollowing, State,
)
from bot.flow import advance
from bot.intents import intent_of
from bot.jatime import to_tokyo
from storage.models import Consultation, ConversationRow, InboxEvent, LineUser, OutboundMessage

log = logging.getLogger(__name__)

# LINE takes a reply token once, shortly after the event; past this we push instead.
REPLY_TOKEN_LIFETIME = timedelta(seconds=50)
MESSAGES_PER_REQUEST = 5
PROFILE_FIELDS = ("company", "industry", "employees", "municipality", "contact_name", "phone", "email")


def queue_messages(s: Session, channel: str, to: str, messages: list[dict], now: datetime, *,
                   reply_token: str | None = None, reply_until: datetime | None = None,
                   sender: str = "bot") -> list[int]:
    """Store messages to send, five to a request, each with its retry key, before any attempt."""
    rows = []
    for n in range(0, len(messages), MESSAGES_PER_REQUEST):
        rows.append(OutboundMessage(
            channel=channel, to=to, messages=messages[n:n + MESSAGES_PER_REQUEST],
            reply_token=reply_token if n == 0 else None, reply_until=reply_until if n == 0 else None,
            retry_key=str(uuid.uuid4()), status="pending", attempts=0, next_attempt_at=now,
            sender=sender, created_at=now))
    s.add_all(rows)
    s.flush()
    return [row.id for row in rows]


class ConversationService:
    def __init__(self, config: Config, triager: Classifier, policy_url: str):
        self.config, self.triager, self.policy_url = config, triager, policy_url

    def handle_event(self, s: Session, event: InboxEvent, now: datetime) -> list[int]:
        """Process one inbox event inside the caller's transaction; returns the outbound message ids queued."""
        payload = event.payload
        intent = intent_of(payload)
        if intent is None:
            log.info("inbox event %s: type %s not taken by the conversation", event.id, payload.get("type"))
            return []
        reply_token = payload.get("replyToken")
        received = event.received_at
        reply_until = received + REPLY_TOKEN_LIFETIME if reply_token else None
        return self.handle(s, event.user_key, event.source, intent, now,
                           reply_token=reply_token, reply_until=reply_until)

    def handle(self, s: Session, user_id: str, source: str, intent: Intent, now: datetime, *,
               reply_token: str | None = None, reply_until: datetime | None = None) -> list[int]:
        user = self._user(s, user_id, source, now)
        row = s.get(ConversationRow, user_id, with_for_update=True)
        if row is None:
            row = ConversationRow(user_id=user_id, state=State.IDLE, data={}, suspended=None, updated_at=now)
            s.add(row)
        try:
            state = State(row.state)
        except ValueError:  # a state from an older version of the flow
            state, row.data = State.IDLE, {}
        conv = Conversation(user_id, state, dict(row.data or {}), row.suspended, row.updated_at)
        ctx = Context(self.config, self.triager, now, profile=_profile(user),
                      consultations=self._consultations(s, user_id) if intent.name == "bookings" else (),
                      policy_url=self.policy_url)
        outcome = advance(conv, intent, ctx)
        replies = list(outcome.replies)
        for effect in outcome.effects:
            replies += self._apply(s, effect, user, source, now)
        log.info("conversation %s: %s --%s--> %s", user_id, state, intent.name, outcome.next_state)
        row.state = outcome.next_state
        if outcome.data is not None:
            row.data = outcome.data
        if outcome.suspended is not False:
            row.suspended = outcome.suspended
        row.updated_at = now
        if not replies:
            return []
        return queue_messages(s, source, user_id, replies, now, reply_token=reply_token, reply_until=reply_until)

    def _apply(self, s: Session, effect, user: LineUser, source: str, now: datetime) -> list[dict]:
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
                log.info("conversation %s handed over to staff", user.id)
            case RecordConsultation(fields, receipt):
                c = Consultation(received_at=now, channel="line", simulated=source != "line", user_id=user.id,
                                 status="received", **{**fields, "keywords": list(fields.get("keywords") or [])})
                s.add(c)
                s.flush()
                log.info("consultation %s recorded (category %s)", c.id, c.category)
                return receipt(c.receipt_no)
        return []

    def _user(self, s: Session, user_id: str, source: str, now: datetime) -> LineUser:
        user = s.get(LineUser, user_id)
        if user is None:
            user = LineUser(id=user_id, source=source, following=True, created_at=now, updated_at=now)
            s.add(user)
            s.flush()
        return user

    def _consultations(self, s: Session, user_id: str) -> tuple[ConsultationSummary, ...]:
        rows = s.scalars(select(Consultation).where(Consultation.user_id == user_id, Consultation.status != "closed")
                         .order_by(Consultation.id.desc()).limit(5))
        return tuple(ConsultationSummary(c.receipt_no, self.config.category(c.category).name, c.status,
                                         to_tokyo(c.received_at)) for c in rows)


def _profile(user: LineUser) -> Profile:
    return Profile(**{f: getattr(user, f) for f in PROFILE_FIELDS}, consent_version=user.consent_version)

