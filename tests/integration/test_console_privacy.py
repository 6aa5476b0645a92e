"""The console's privacy side: every view of personal data is in the audit log, admins read it with filters, nobody
changes it, staff carry out deletion requests, and each case says when it will be purged."""
from __future__ import annotations

from sqlalchemy import func, select

from storage.models import AuditEntry, Booking, OutboundMessage, Consultation, DeletionRequest, LineUser
from tests.helpers import database_text, say, tap, texts
from tests.integration.test_console import csrf, sign_in
from tests.integration.test_cli import complete_intake


def entries(services) -> list[tuple[str, str, str]]:
    with services.db.unit_of_work() as s:
        return [(e.who, e.action, e.record) for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def test_views_and_changes_of_personal_data_are_audited_and_admins_filter_them(client, services):
    complete_intake(client)
    sign_in(client, services, "admin", login="admin-1")
    with services.db.unit_of_work() as s:
        c = s.scalar(select(Consultation))
    page = client.get(f"/admin/consultations/{c.id}").get_data(as_text=True)
    assert "完了かフォローアップにすると、受付から24か月後" in page
    client.get("/admin/conversations/sim-cli")
    client.post(f"/admin/consultations/{c.id}/status", data={"status": "closed", "csrf_token": csrf(client)})
    assert "2028年" not in page and "に削除されます" in client.get(f"/admin/consultations/{c.id}").get_data(as_text=True)
    assert entries(services)[:3] == [("admin-1", "view", f"consultation:{c.id}"),
                                     ("admin-1", "view", entries(services)[1][2]),
                                     ("admin-1", "change", f"consultation:{c.id}")]
    assert entries(services)[1][2].startswith("conversation:u:")  # named by its hash, not the LINE id
    assert not [e for e in entries(services) if "sim-cli" in e[2]]

    listed = client.get("/admin/audit?action=change").get_data(as_text=True)
    assert f"consultation:{c.id}" in listed and "閲覧</td>" not in listed
    assert "該当する記録はありません" in client.get("/admin/audit?who=nobody").get_data(as_text=True)
    assert "該当する記録はありません" in client.get("/admin/audit?from=2030-01-01").get_data(as_text=True)
    for method in ("post", "put", "delete"):
        assert getattr(client, method)("/admin/audit", data={"csrf_token": csrf(client)}).status_code == 405


def test_a_coordinator_cannot_read_the_audit_log(client, services):
    sign_in(client, services, "coordinator")
    assert client.get("/admin/audit").status_code == 403


def test_staff_carry_out_a_deletion_request_cancelling_the_booking_first(client, services):
    user = "sim-erase"
    complete_intake(client, user)
    assert "予約" in texts(tap(client, user, "action=slot&c=tanaka&t=202611251000"))
    tap(client, user, "action=confirm_slot")
    asked = say(client, user, "データ削除")
    button = next(i["action"]["data"] for m in asked for i in m.get("quickReply", {}).get("items", [])
                  if i["action"]["label"] == "削除する")
    assert "担当者が取り消しを確認" in texts(tap(client, user, button))
    with services.db.unit_of_work() as s:  # a visit to their company, with a photo
        from tests.integration.test_retention import add_activity
        add_activity(s, services, services.clock.now(), "鹿屋商店", kind="visit", photo=True)
        s.commit()
    photos = services.settings.var_dir / "photos"
    assert [p for p in photos.rglob("*.jpg")]
    sign_in(client, services, "coordinator", login="coord-1")
    listed = client.get("/admin/deletions").get_data(as_text=True)
    assert "予約 1件" in listed and user not in listed
    with services.db.unit_of_work() as s:
        request_id = s.scalar(select(DeletionRequest.id))

    response = client.post(f"/admin/deletions/{request_id}/erase", data={"csrf_token": csrf(client)})

    assert response.status_code == 302
    dump = database_text(services.db)
    assert "鹿屋商店" not in dump and "大隅 太郎" not in dump and "0994-31-1111" not in dump
    assert [p for p in photos.rglob("*.jpg")] == []  # the photo and its thumbnail, once the erasure was committed
    with services.db.unit_of_work() as s:
        assert s.scalar(select(Booking.status)) == "cancelled"
        assert s.get(LineUser, user) is None
        assert s.scalar(select(func.count()).select_from(Consultation)) == 1
        [notice] = s.scalars(select(OutboundMessage).where(OutboundMessage.to == user)).all()
        assert "削除しました" in texts(notice.messages)
    assert ("coord-1", "erase", f"deletion:{request_id}") in entries(services)
    again = client.post(f"/admin/deletions/{request_id}/erase", data={"csrf_token": csrf(client)})
    assert again.status_code == 404
