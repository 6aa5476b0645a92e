"""Events the bot could not process: retried with back-off, parked, then retried or discarded by staff in the console."""
from __future__ import annotations

from sqlalchemy import select

from storage.models import AuditEntry, InboxEvent
from tests.helpers import LineUserDriver, drain_through_retries, texts
from tests.integration.test_console import page, post, sign_in


def parked_event(line_app, fake, monkeypatch) -> tuple[LineUserDriver, int]:
    services = line_app.extensions["dxdesk"]
    handle = services.conversations.handle_event
    monkeypatch.setattr(services.conversations, "handle_event", lambda *a: 1 / 0)
    u = LineUserDriver(line_app.test_client(), line_app, fake)
    u.say("メニュー")
    drain_through_retries(services)
    monkeypatch.setattr(services.conversations, "handle_event", handle)  # the bug is fixed
    with services.db.unit_of_work() as s:
        event = s.scalars(select(InboxEvent)).one()
        assert (event.status, event.error) == ("failed", "ZeroDivisionError")
        return u, event.id


def status_of(services, event_id: int) -> tuple[str, str | None]:
    with services.db.unit_of_work() as s:
        event = s.get(InboxEvent, event_id)
        return event.status, event.handled_by


def test_a_parked_event_is_listed_and_retried_by_staff_and_the_user_gets_the_answer(line_app, fake, monkeypatch):
    services = line_app.extensions["dxdesk"]
    u, event_id = parked_event(line_app, fake, monkeypatch)
    client = line_app.test_client()
    sign_in(client, services)
    listed = page(client, "/admin/messages")
    assert "処理できなかった受信 <span class=\"count\">1件</span>" in listed and "ZeroDivisionError" in listed
    assert "メッセージ（テキスト）" in listed and "メニュー</td>" not in listed  # what, not the text itself
    before = len(fake.delivered(u.user))
    assert post(client, f"/admin/events/{event_id}/retry").status_code == 302
    services.inbox.drain()
    assert status_of(services, event_id) == ("done", "coordinator-staff")
    assert texts([m for batch in fake.delivered(u.user)[before:] for m in batch])  # the menu came after all
    assert post(client, f"/admin/events/{event_id}/retry").status_code == 302  # a second press: nothing to do
    assert "すでに対応済み" in page(client, "/admin/messages")
    with services.db.unit_of_work() as s:
        assert s.scalars(select(AuditEntry.record).where(AuditEntry.action == "change")).all() == [f"inbox:{event_id}"]


def test_a_discarded_event_is_never_processed_and_viewers_cannot_touch_the_list(line_app, fake, monkeypatch):
    services = line_app.extensions["dxdesk"]
    u, event_id = parked_event(line_app, fake, monkeypatch)
    viewer = line_app.test_client()
    sign_in(viewer, services, role="viewer")
    assert viewer.get("/admin/messages").status_code == 403  # the list names the people the messages were for
    assert post(viewer, f"/admin/events/{event_id}/discard").status_code == 403
    admin = line_app.test_client()
    sign_in(admin, services, role="admin")
    assert post(admin, f"/admin/events/{event_id}/discard").status_code == 302
    assert services.inbox.drain() == 0
    assert status_of(services, event_id) == ("discarded", "admin-staff")
    assert post(admin, "/admin/events/999/retry").status_code == 302  # unknown: said plainly, nothing changes
