"""Fixtures of the integration tests: the fake Messaging API and the app in LINE mode against it.

Modules that still define their own `fake` or `line_app` override these (pytest takes the nearest); new modules
should use these."""
from __future__ import annotations

from dataclasses import replace

import pytest

from app import create_app
from tests.fakes.line_api import FakeLineApi
from tests.helpers import SECRET


@pytest.fixture
def fake():
    with FakeLineApi() as fake:
        yield fake


@pytest.fixture
def line_app(settings, clock, fake):
    app = create_app(replace(settings, line_channel_secret=SECRET, line_channel_access_token="token",
                             line_api_base_url=fake.base_url, public_base_url="https://dx-desk.example.jp"), clock=clock)
    yield app
    app.extensions["dxdesk"].stop()
