"""Shared fixtures: a real database (SQLite file, or PostgreSQL with DXDESK_TEST_DATABASE_URL), the app, a movable clock."""
from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from app import Settings, create_app
from scheduling.clock import MovableClock
from storage.db import Database
from storage.models import Base

PG_URL = os.environ.get("DXDESK_TEST_DATABASE_URL")
# Tuesday 2026-11-24 10:00 in Tokyo: inside office hours, a normal working day.
START = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def pytest_collection_modifyitems(items):
    for item in items:
        if "database_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


def pytest_report_header(config):
    return f"database tests run on: {'PostgreSQL ' + PG_URL if PG_URL else 'SQLite (set DXDESK_TEST_DATABASE_URL for PostgreSQL)'}"


@pytest.fixture(scope="session")
def _pg_schema():
    db = Database(PG_URL)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture
def database_url(tmp_path, request):
    """A fresh, migrated database for one test."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path}/test.sqlite3"
        return
    db = request.getfixturevalue("_pg_schema")
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield PG_URL


@pytest.fixture
def clock():
    return MovableClock(START)


@pytest.fixture
def settings(tmp_path, database_url):
    # The public address is the test client's own, so links in messages are absolute (LINE mode requires it).
    return Settings(database_url=database_url, var_dir=tmp_path, start_workers=False, secret_key="test",
                    public_base_url="http://localhost")


@pytest.fixture
def app(settings, clock):
    app = create_app(settings, clock=clock)
    yield app
    services = app.extensions["dxdesk"]
    services.stop()
    services.db.dispose()


@pytest.fixture
def services(app):
    return app.extensions["dxdesk"]


@pytest.fixture
def client(app):
    return app.test_client()
