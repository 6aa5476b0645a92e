"""Migrating a fresh database from several processes at once, as several web workers starting together do."""
from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from storage.db import Database
from tests.conftest import PG_URL

pytestmark = pytest.mark.db
ROOT = Path(__file__).resolve().parents[2]
WORKERS = 4


@pytest.fixture
def fresh_url(tmp_path):
    """The URL of a database nobody has migrated: a new PostgreSQL database beside the test one, or a new SQLite file."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path}/fresh.sqlite3"
        return
    name = f"dxdesk_fresh_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_several_processes_migrating_a_fresh_database_at_once_all_succeed(fresh_url, tmp_path):
    command = [sys.executable, "-c", "import app, sys; sys.exit(app.main())", "db", "upgrade"]
    env = {"DXDESK_DATABASE_URL": fresh_url, "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    workers = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(WORKERS)]
    results = [(w.wait(timeout=120), w.stderr.read()) for w in workers]
    for w in workers:
        w.stdout.close()
        w.stderr.close()

    assert [code for code, _ in results] == [0] * WORKERS, [err[-500:] for _, err in results]
    db = Database(fresh_url)
    try:
        assert db.is_current()
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        db.dispose()


def test_the_migrations_build_exactly_the_tables_the_models_describe(fresh_url):
    """Alembic's own comparison finds nothing between the migrated schema and storage/models.py."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from storage.models import Base

    db = Database(fresh_url)
    try:
        db.upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            differences = [d for d in compare_metadata(context, Base.metadata)
                           if not (isinstance(d, tuple) and d[0] in ("add_index", "remove_index")
                                   and d[1].name.startswith("sqlite_autoindex"))]
    finally:
        db.dispose()
    assert differences == []
