"""Seminar announcements through line-bot-sdk to the fake Messaging API: batches of 500, each with its retry key,
sent once whatever happens (a second announce, a crash, a 5xx), the month's quota checked first."""
from __future__ import annotations

import os
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app import build_services, create_app
from scheduling import announcements, multicast
from scheduling.announcements import AnnouncementRefused
from storage import seminars
from storage.db import Database
from storage.models import LineUser, Multicast, SeminarRegistration
from tests.fakes.line_api import FakeLineApi
from tests.helpers import SECRET, LineUserDriver, texts
from tests.integration.test_cli import dxdesk

MULTICAST = "/v2/bot/message/multicast"


@pytest.fixture
def line():
    with FakeLineApi() as fake:
        yield fake


@pytest.fixture
def configured(settings, line):
    return replace(settings, line_channel_secret=SECRET, line_channel_access_token="token",
                   line_api_base_url=line.base_url)


@pytest.fixture
def app(configured, clock):
    app = create_app(configured, clock=clock)
    yield app
    app.extensions["dxdesk"].stop()
    app.extensions["dxdesk"].db.dispose()


@pytest.fixture
def services(app):
    return app.extensions["dxdesk"]


def add_users(db: Database, count: int, now: datetime, prefix: str = "U", **fields) -> list[str]:
    ids = [f"{prefix}{n:05d}{uuid.uuid4().hex[:8]}" for n in range(count)]
    with db.unit_of_work() as s:
        s.add_all(LineUser(id=i, source="line", following=True, created_at=now, updated_at=now, **fields) for i in ids)
        s.commit()
    return ids


def add_seminar(db: Database, start: datetime, now: datetime) -> int:
    with db.unit_of_work() as s:
        seminar = seminars.create(s, title="はじめてのDX", start_at=start, end_at=start + timedelta(hours=2),
                                  onsite_seats=30, online_seats=100, online_url="https://meet.example.jp/dx",
                                  now=now)
        s.commit()
        return seminar.id


def batches(db: Database) -> list[Multicast]:
    with db.unit_of_work() as s:
        rows = list(s.scalars(select(Multicast).order_by(Multicast.id)))
        s.expunge_all()
        return rows


def announce(services, seminar_id, segment="all"):
    return announcements.announce(services.db, services.config, services.line, services.clock, seminar_id, segment)


def test_1200_users_get_three_multicasts_with_their_own_stored_retry_keys_and_a_second_announce_sends_nothing(
        services, line, clock):
    now = clock.now()
    users = add_users(services.db, 1200, now)
    seminar_id = add_seminar(services.db, now + timedelta(days=14), now)

    done = announce(services, seminar_id)

    requests = line.requests(MULTICAST)
    assert [len(r.body["to"]) for r in requests] == [500, 500, 200]
    stored = batches(services.db)
    assert [r.headers["x-line-retry-key"] for r in requests] == [b.retry_key for b in stored]
    assert len({b.retry_key for b in stored}) == 3 and all(b.status == "sent" for b in stored)
    assert sorted(u for r in requests for u in r.body["to"]) == sorted(users)
    assert (done.recipients, done.batches, done.sent) == (1200, 3, 3)
    card = requests[0].body["messages"][0]
    assert card["type"] == "flex" and "はじめてのDX" in texts([card])
    assert card["contents"]["footer"]["contents"][0]["action"]["data"] == f"action=seminar&id={seminar_id}"

    again = announce(services, seminar_id)
    assert again.already and again.sent == 0
    assert len(line.requests(MULTICAST)) == 3 and len(batches(services.db)) == 3


def test_a_crash_between_planning_and_sending_sends_each_batch_once_from_a_new_service(
        services, configured, line, clock):
    now = clock.now()
    add_users(services.db, 700, now)
    seminar_id = add_seminar(services.db, now + timedelta(days=14), now)
    with services.db.unit_of_work() as s:
        users = announcements.recipients(s, services.config, seminar_id, "all")
        multicast.plan(s, key=announcements.announcement_key(seminar_id, "all"), kind="announcement",
                       ref=f"seminar:{seminar_id}", recipients=users, messages=[{"type": "text", "text": "ご案内"}],
                       now=now)
        s.commit()
    assert line.requests(MULTICAST) == []  # the process died here

    restarted = build_services(replace(configured, migrate=False), clock)
    try:
        assert announce(restarted, seminar_id).already  # not planned twice...
        assert multicast.send_due(restarted.db, restarted.line, clock) == 0  # ...and the scheduler finds none left
    finally:
        restarted.stop()
        restarted.db.dispose()
    assert [len(r.body["to"]) for r in line.requests(MULTICAST)] == [500, 200]
    assert len(line.delivered()) == 700


def test_a_500_then_200_is_retried_with_the_same_retry_key(services, line, clock):
    now = clock.now()
    add_users(services.db, 3, now)
    seminar_id = add_seminar(services.db, now + timedelta(days=14), now)
    line.script(MULTICAST, [500, 200])

    announce(services, seminar_id)

    keys = [r.headers["x-line-retry-key"] for r in line.requests(MULTICAST)]
    assert len(keys) == 2 and keys[0] == keys[1] == batches(services.db)[0].retry_key
    assert len(line.delivered()) == 3 and batches(services.db)[0].status == "sent"


def test_a_batch_still_failing_is_sent_later_by_the_scheduler_with_the_same_key(services, line, clock):
    now = clock.now()
    add_users(services.db, 2, now)
    seminar_id = add_seminar(services.db, now + timedelta(days=14), now)
    line.script(MULTICAST, [503] * 4)  # the first try and the SDK's three retries

    first = announce(services, seminar_id)
    assert first.sent == 0 and batches(services.db)[0].status == "pending" and line.delivered() == []

    assert multicast.send_due(services.db, services.line, clock) == 0  # not before its back-off
    clock.advance(minutes=5)
    assert multicast.send_due(services.db, services.line, clock) == 1
    assert {r.headers["x-line-retry-key"] for r in line.requests(MULTICAST)} == {batches(services.db)[0].retry_key}
    assert len(line.requests(MULTICAST)) == 5 and len(line.delivered()) == 2


def test_a_409_on_a_repeated_retry_key_counts_as_sent_and_delivers_nothing_again(services, line, clock):
    now = clock.now()
    add_users(services.db, 2, now)
    seminar_id = add_seminar(services.db, now + timedelta(days=14), now)
    announce(services, seminar_id)
    with services.db.unit_of_work() as s:  # as if the process died before it recorded LINE's 200
        s.get(Multicast, batches(services.db)[0].id).status = "pending"
        s.commit()
    assert multicast.send_due(services.db, services.line, clock) == 0  # its sender's claim has not run out yet
    clock.advance(seconds=multicast.CLAIM.total_seconds())

    assert multicast.send_due(services.db, services.line, clock) == 1

    assert batches(services.db)[0].status == "sent" and len(line.requests(MULTICAST)) == 2
    assert len(line.delivered()) == 2


def test_users_who_blocked_the_account_are_skipped(app, services, line, clock):
    now = clock.now()
    seminar_id = add_seminar(services.db, now + timedelta(days=14), now)
    staying = LineUserDriver(app.test_client(), app, line, user="U" + "a" * 32)
    leaving = LineUserDriver(app.test_client(), app, line, user="U" + "b" * 32)
    for u in (staying, leaving):
        u.send(type="follow")
    leaving.send(type="unfollow", replyToken=None)

    done = announce(services, seminar_id)

    assert done.recipients == 1
    assert [r.body["to"] for r in line.requests(MULTICAST)] == [[staying.user]]


def test_segments_reach_only_their_users_and_not_those_already_registered(services, clock):
    now = clock.now()
    kagoshima = add_users(services.db, 2, now, prefix="Ukago", municipality="鹿児島市", industry="製造業")
    amami = add_users(services.db, 1, now, prefix="Uamami", municipality="奄美市", industry="建設業")
    seminar_id = add_seminar(services.db, now + timedelta(days=14), now)
    earlier = add_seminar(services.db, now + timedelta(days=1), now)
    with services.db.unit_of_work() as s:
        for user, seminar, status in ((amami[0], earlier, "attended"), (kagoshima[1], seminar_id, "registered")):
            s.add(SeminarRegistration(seminar_id=seminar, user_id=user, mode="onsite", status=status,
                                      checkin_token=seminars.new_checkin_token(), created_at=now, updated_at=now))
        s.commit()

        def reach(segment):
            return announcements.recipients(s, services.config, seminar_id, segment)

        assert reach("region:kagoshima") == [kagoshima[0]]
        assert reach("industry:建設業") == amami
        assert reach("past-participants") == amami
        with pytest.raises(AnnouncementRefused, match="地域 mars はありません"):
            reach("region:mars")
        with pytest.raises(AnnouncementRefused, match="送信対象 everyone は指定できません"):
            reach("everyone")


def test_an_announcement_over_the_quota_is_refused_with_the_numbers(services, line, clock):
    now = clock.now()
    add_users(services.db, 120, now)
    seminar_id = add_seminar(services.db, now + timedelta(days=14), now)
    line.quota, line.quota_used = 1000, 950

    with pytest.raises(AnnouncementRefused) as refused:
        announce(services, seminar_id)

    assert all(n in str(refused.value) for n in ("120通", "1,000通", "950通", "残り: 50通"))
    assert line.requests(MULTICAST) == [] and batches(services.db) == []
    line.quota = 1070
    assert announce(services, seminar_id).sent == 1 and line.quota_used == 1070


@pytest.fixture
def cli_env(configured, line):
    return {"DXDESK_DATABASE_URL": configured.database_url, "LINE_CHANNEL_SECRET": SECRET,
            "LINE_CHANNEL_ACCESS_TOKEN": "token", "LINE_API_BASE_URL": line.base_url,
            "DXDESK_PUBLIC_URL": "https://dx-desk.example.jp", "PYTHONPATH": os.getcwd()}


def test_the_cli_dry_runs_refuses_without_yes_off_a_terminal_sends_once_and_refuses_over_quota(
        services, line, cli_env):
    # The command runs on the system clock: the seminar lies far ahead of it.
    now = datetime.now(UTC)
    add_users(services.db, 600, now)
    seminar_id = add_seminar(services.db, now + timedelta(days=3650), now)
    args = ("seminar", "announce", str(seminar_id), "--segment", "all")

    dry = dxdesk(*args, "--dry-run", env=cli_env)
    assert dry.returncode == 0 and "600人" in dry.stdout and line.requests(MULTICAST) == []

    unconfirmed = dxdesk(*args, env=cli_env, stdin="y\n")
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr and line.requests(MULTICAST) == []

    line.quota = 500
    over = dxdesk(*args, "--yes", env=cli_env)
    assert over.returncode == 2 and "上限: 500通" in over.stderr and line.requests(MULTICAST) == []

    line.quota = None
    sent = dxdesk(*args, "--yes", env=cli_env)
    assert sent.returncode == 0, sent.stderr
    assert "600人" in sent.stdout and [len(r.body["to"]) for r in line.requests(MULTICAST)] == [500, 100]

    again = dxdesk(*args, "--yes", env=cli_env)
    assert again.returncode == 0 and "すでに送っています" in again.stdout
    assert len(line.requests(MULTICAST)) == 2


def test_the_console_shows_the_recipient_count_first_sends_once_and_a_second_press_sends_nothing(
        services, line, clock, client):
    from tests.integration.test_console import csrf, page, sign_in
    now = clock.now()
    add_users(services.db, 3, now, prefix="Ufollow")
    blocked = add_users(services.db, 2, now, prefix="Ublocked")
    with services.db.unit_of_work() as s:
        for user_id in blocked:
            s.get(LineUser, user_id).following = False
        s.commit()
    seminar_id = add_seminar(services.db, now + timedelta(days=20), now)
    sign_in(client, services, "coordinator")
    html = page(client, f"/admin/seminars/{seminar_id}/announce?segment=all")
    assert "送信対象: <strong>3人</strong>" in html and line.requests(MULTICAST) == []  # counted, nothing sent
    for _ in range(2):
        sent = client.post(f"/admin/seminars/{seminar_id}/announce",
                           data={"segment": "all", "csrf_token": csrf(client)}, follow_redirects=True)
        assert sent.status_code == 200
    [request] = line.requests(MULTICAST)
    assert len(request.body["to"]) == 3 and all(u.startswith("Ufollow") for u in request.body["to"])
    assert "すでにお知らせを送っています" in sent.get_data(as_text=True)
    assert "すでにお知らせを送っています" in page(client, f"/admin/seminars/{seminar_id}/announce?segment=all")
    assert client.get(f"/admin/seminars/{seminar_id}/announce?segment=nobody").status_code == 400


def test_a_viewer_may_count_but_not_send_an_announcement(services, line, clock, client):
    from tests.integration.test_console import csrf, page, sign_in
    now = clock.now()
    add_users(services.db, 2, now)
    seminar_id = add_seminar(services.db, now + timedelta(days=20), now)
    sign_in(client, services, "viewer")
    assert "2人に送信する" not in page(client, f"/admin/seminars/{seminar_id}/announce?segment=all")
    refused = client.post(f"/admin/seminars/{seminar_id}/announce", data={"segment": "all", "csrf_token": csrf(client)})
    assert refused.status_code == 403 and line.requests(MULTICAST) == []
