"""PostgreSQL stopped and started under the service: a throwaway cluster (initdb / pg_ctl) on loopback.

While it is down `/callback` answers 503, so LINE redelivers; nothing accepted before is lost, and once it is back
the redelivered events and the kept ones are all processed, each once."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app
from storage.models import InboxEvent
from tests.fakes.line_api import FakeLineApi
from tests.helpers import SECRET, LineUserDriver, post

PG_BIN = next((Path(p) for p in ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")
               if (Path(p) / "pg_ctl").exists()), None) or (Path(shutil.which("pg_ctl")).parent if shutil.which("pg_ctl") else None)


def _as_postgres(args: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: as root, run them as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class Cluster:
    def __init__(self, folder: Path):
        self.folder, self.data = folder, folder / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres?connect_timeout=3"

    def run(self, *args: str) -> None:
        subprocess.run(_as_postgres([str(PG_BIN / args[0]), *args[1:]]), check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"), "-w", "-t", "30", "-o",
                 f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")


@pytest.fixture
def cluster():
    if PG_BIN is None:
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    folder = Path(tempfile.mkdtemp(prefix="dxdesk-pg-"))  # not under pytest's folder, which the postgres user cannot enter
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    c = Cluster(folder)
    c.run("initdb", "-D", str(c.data), "-A", "trust", "-U", "postgres", "--no-sync")
    c.start()
    yield c
    subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(c.data), "-m", "immediate", "stop"]),
                   capture_output=True, timeout=60)
    shutil.rmtree(folder, ignore_errors=True)


def test_callback_answers_503_while_postgres_is_down_and_loses_nothing_it_accepted(cluster, settings, clock):
    with FakeLineApi() as fake:
        app = create_app(replace(settings, database_url=cluster.url, line_channel_secret=SECRET,
                                 line_channel_access_token="token", line_api_base_url=fake.base_url,
                                 public_base_url="https://dx-desk.example.jp"), clock=clock)
        services = app.extensions["dxdesk"]
        client = app.test_client()
        u = LineUserDriver(client, app, fake)
        accepted = u.event(message={"id": "1", "type": "text", "text": "メニュー", "quoteToken": "q"})
        assert post(client, {"destination": "U", "events": [accepted]}).status_code == 200  # stored, not processed yet

        cluster.stop()
        refused = u.event(message={"id": "2", "type": "text", "text": "よくある質問", "quoteToken": "q"})
        down = post(client, {"destination": "U", "events": [refused]})
        assert down.status_code == 503 and down.headers["Retry-After"]
        assert client.get("/healthz").status_code == 503

        cluster.start()
        assert post(client, {"destination": "U", "events": [refused]}).status_code == 200  # LINE's redelivery
        services.inbox.drain()
        with services.db.unit_of_work() as s:
            rows = s.execute(select(InboxEvent.event_key, InboxEvent.status)).all()
        assert sorted(rows) == sorted([(accepted["webhookEventId"], "done"), (refused["webhookEventId"], "done")])
        assert len(fake.delivered(u.user)) == 2  # one answer each
        services.stop()
        services.db.dispose()
