"""A schema-driven fuzz of the webhook body: events of every type LINE sends, their fields drawn by hypothesis.

The schema is read off LINE's own samples (tests/fixtures/line): each field keeps its place and gets a value of its
JSON type (or, now and then, of another type, or goes missing). 10,000 events in signed batches go to the real app;
no 5xx, and afterwards no event is left pending or processing and every sample user is still answered.
"""
from __future__ import annotations

import itertools
import json

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from sqlalchemy import func, select

from storage.models import InboxEvent
from tests.helpers import LineUserDriver, drain_through_retries, post, texts
from tests.integration.test_webhook_fuzz import SAMPLES, fuzzed_app  # noqa: F401 - the app on the fake LINE

EVENTS_PER_BODY = 40
BODIES = 250  # 10,000 events
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=40))
# Fields whose strings name one of a few values in LINE's schema: a valid event keeps the sample's.
ENUMS = {"type", "mode", "stickerResourceType", "result", "mediaType"}


def valid_like(sample, key=None):
    """Values as LINE's schema has them: every field there, each leaf a value of the sample's type."""
    if isinstance(sample, dict):
        return st.fixed_dictionaries({k: valid_like(v, k) for k, v in sample.items()})
    if isinstance(sample, list):
        return st.lists(valid_like(sample[0], key), min_size=1, max_size=3) if sample else st.just([])
    if isinstance(sample, str) and key not in ENUMS:
        return st.one_of(st.just(sample), st.text(min_size=1, max_size=300))
    if type(sample) is int:
        return st.integers(min_value=0, max_value=2 ** 53)
    return st.just(sample)


def wild_like(sample):
    """Values with the sample's shape, but any field may go missing and any leaf be of any type."""
    if isinstance(sample, dict):
        return st.fixed_dictionaries({}, optional={k: wild_like(v) for k, v in sample.items()})
    if isinstance(sample, list):
        return st.lists(wild_like(sample[0]), max_size=3) if sample else st.just([])
    return st.one_of(st.just(sample), SCALARS)


def of_type(fields, sample):
    """The sample's event type, and most of the time its user (so the conversation is taken further)."""
    return st.tuples(fields, st.booleans()).map(
        lambda drawn: {**drawn[0], "type": sample["type"], **({"source": sample["source"]} if drawn[1] else {})})


VALID = st.one_of([of_type(valid_like(sample), sample) for sample in SAMPLES["events"]])
WILD = st.one_of([of_type(wild_like(sample), sample) for sample in SAMPLES["events"]])
# Most bodies are LINE's schema throughout (taken whole); the others carry one event LINE would not send.
BODY = st.one_of(st.lists(VALID, min_size=EVENTS_PER_BODY, max_size=EVENTS_PER_BODY),
                 st.lists(VALID, min_size=EVENTS_PER_BODY - 1, max_size=EVENTS_PER_BODY - 1).flatmap(
                     lambda events: WILD.map(lambda odd: [*events, odd])))


def test_ten_thousand_schema_driven_events_get_no_5xx_and_leave_no_event_or_user_stuck(fuzzed_app):  # noqa: F811
    app, fake = fuzzed_app
    services = app.extensions["dxdesk"]
    client = app.test_client()
    ids = itertools.count()
    statuses: list[int] = []

    @hypothesis_settings(max_examples=BODIES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(BODY)
    def webhook(events):
        for event in events:
            event["webhookEventId"] = f"SCHEMA{next(ids):06d}"  # each event new: a repeat is the inbox's own test
        body = json.dumps({"destination": SAMPLES["destination"], "events": events}).encode()
        status = post(client, body).status_code
        statuses.append(status)
        assert status < 500, body[:500]
        if len(statuses) % 5 == 0:
            services.inbox.drain()

    webhook()
    drain_through_retries(services)

    assert len(statuses) == BODIES and statuses.count(200) > BODIES // 4, statuses
    with services.db.unit_of_work() as s:
        stuck = s.scalar(select(func.count()).select_from(InboxEvent).where(
            InboxEvent.status.in_(("pending", "processing"))))
        total = s.scalar(select(func.count()).select_from(InboxEvent))
    assert stuck == 0 and total > BODIES * EVENTS_PER_BODY // 4, (stuck, total)
    for user in {e["source"]["userId"] for e in SAMPLES["events"] if e.get("source", {}).get("type") == "user"}:
        assert texts(LineUserDriver(client, app, fake, user).say("メニュー")), user
