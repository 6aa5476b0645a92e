"""A category the user picks over the triage model's guess is stored beside the guess (real database, real webhook)."""
from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from app import create_app
from bot.triage import Triager
from storage.models import Consultation
from tests.fakes.line_api import FakeLineApi
from tests.helpers import SECRET, LineUserDriver, quick_labels

pytestmark = pytest.mark.db


@pytest.fixture
def fake():
    with FakeLineApi() as fake:
        yield fake


@pytest.fixture
def line_app(settings, clock, fake):
    app = create_app(replace(settings, line_channel_secret=SECRET, line_channel_access_token="token",
                             line_api_base_url=fake.base_url), clock=clock)
    yield app
    app.extensions["dxdesk"].stop()
    app.extensions["dxdesk"].db.dispose()


def test_the_users_pick_is_the_category_and_the_models_guess_is_kept_apart(line_app, fake):
    services = line_app.extensions["dxdesk"]
    question = "在庫管理をなんとかしたい"
    guess = Triager(services.config).classify(question)
    assert not guess.sure and guess.category == "data"
    u = LineUserDriver(line_app.test_client(), line_app, fake)
    u.send(type="follow")
    u.tap("action=consent&v=2026-11")

    offered = quick_labels(u.say(question))
    likeliest = [c for c in guess.ranking if c != "other"][:3]
    assert offered[:4] == [services.config.category(c).name for c in likeliest] + ["その他"]
    assert likeliest[1] == "efficiency"
    u.tap("action=category&v=efficiency")
    u.say("有限会社さつま揚げ本舗")
    u.tap("action=industry&v=製造業")
    u.say("8人")
    u.say("いちき串木野")
    u.say("薩摩 次郎")
    u.say("099-286-2111")
    u.say("jiro@example.jp")
    u.tap("action=method&v=visit")
    u.tap("action=submit")

    with services.db.sessions() as s:
        c = s.scalars(select(Consultation)).one()
    assert (c.category, c.suggested_category) == ("efficiency", "data")
    assert c.confidence == pytest.approx(guess.confidence) and c.keywords == list(guess.keywords)
