"""Assigning a case's coordinator in the console: the history, the booking moving with it when they are free, who is told."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from storage.models import AuditEntry, CaseEvent, Consultation
from tests.integration.test_booking import (  # noqa: F401 - configured, gcal, line and user are fixtures used here
    COORDINATOR_LINE_ID, configured, gcal, line, user,
)
from tests.integration.test_console import add_consultation, page, post, sign_in
from tests.integration.test_console_bookings import book_over_line
from tests.integration.test_console_reschedule import (  # noqa: F401 - app and services are fixtures used here
    SUZUKI_LINE_ID, active, app, at, book_with_tanaka, booking, said_to, services,
)


def assign(client, consultation_id: int, coordinator: str):
    return post(client, f"/admin/consultations/{consultation_id}/assign", coordinator=coordinator)


def history(services, consultation_id: int) -> list[tuple[str, str | None, str | None, str]]:
    with services.db.unit_of_work() as s:
        return [(e.kind, e.old, e.new, e.who) for e in s.scalars(
            select(CaseEvent).where(CaseEvent.consultation_id == consultation_id).order_by(CaseEvent.id))]


def coordinator_of(services, consultation_id: int) -> str | None:
    with services.db.unit_of_work() as s:
        return s.get(Consultation, consultation_id).coordinator_id


def test_the_case_page_has_the_assignment_form_with_every_coordinator(client, services):
    case = add_consultation(services)
    sign_in(client, services)

    text = page(client, f"/admin/consultations/{case}")

    form = text[text.index('id="assign"'):]
    assert f'action="/admin/consultations/{case}/assign"' in form
    assert all(f'<option value="{c}"' in form for c in ("tanaka", "suzuki", "yamada"))
    assert "未定" in form


def test_assigning_a_case_without_a_booking_records_it_and_tells_the_new_coordinator(client, services, line):
    case = add_consultation(services)
    sign_in(client, services)

    response = assign(client, case, "suzuki")

    assert response.location == f"/admin/consultations/{case}"
    assert coordinator_of(services, case) == "suzuki"
    assert history(services, case) == [("assign", None, "suzuki", "coordinator-staff")]
    told = said_to(line, SUZUKI_LINE_ID)
    assert "担当になりました" in told and "桜島製作所" in told
    assert "担当を鈴木 花子に変更しました" in page(client, response.location)
    assert "鈴木 花子" in page(client, f"/admin/consultations/{case}").split('id="assign"')[1].split("</p>")[0]
    with services.db.unit_of_work() as s:
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "change",
                                                 AuditEntry.record == f"consultation:{case}")) is not None

    assign(client, case, "tanaka")

    assert history(services, case)[-1] == ("assign", "suzuki", "tanaka", "coordinator-staff")
    assert "担当が変わりました" in said_to(line, SUZUKI_LINE_ID) and "担当になりました" in said_to(line, COORDINATOR_LINE_ID)


def test_the_booking_moves_to_a_new_coordinator_free_at_that_time(client, services, user, line, gcal):
    made = book_over_line(user)  # 11月26日(木) 10:00: given to 鈴木, the less busy of the two free then
    assert made.coordinator_id == "suzuki"
    told_user = len(line.delivered(user.user))
    sign_in(client, services)

    response = assign(client, made.consultation_id, "tanaka")

    [now_active] = active(services)
    assert (now_active.coordinator_id, now_active.start, now_active.status) == ("tanaka", at(26, 10), "confirmed")
    assert booking(services, made.id).status == "cancelled"
    assert gcal.events("suzuki@example.jp") == []
    [event] = gcal.events("tanaka@example.jp")
    assert event["start"]["dateTime"].startswith("2026-11-26T10:00:00+09:00")
    to_user = said_to(line, user.user, told_user)
    assert "ご予約の担当者が変わりました" in to_user and "田中 一郎" in to_user and "11月26日(木) 10:00〜11:00" in to_user
    assert "担当が変わりました" in said_to(line, SUZUKI_LINE_ID)
    to_tanaka = said_to(line, COORDINATOR_LINE_ID)
    assert "担当になりました" in to_tanaka and "11月26日(木) 10:00〜11:00" in to_tanaka and "オンライン" in to_tanaka
    assert history(services, made.consultation_id) == [("assign", "suzuki", "tanaka", "coordinator-staff")]  # booked with suzuki
    assert "ご予約も田中 一郎の予定に移し" in page(client, response.location)


@pytest.mark.parametrize(("to", "why"), [("suzuki", "not working on Thursday afternoons"), ("yamada", "visits only")])
def test_a_new_coordinator_who_cannot_take_the_time_gets_the_case_but_the_booking_stays(client, services, user, line,
                                                                                       gcal, to, why):
    made = book_with_tanaka(user)  # 11月26日(木) 13:00
    told_user = len(line.delivered(user.user))
    sign_in(client, services)

    response = assign(client, made.consultation_id, to)

    assert coordinator_of(services, made.consultation_id) == to, why
    assert [(b.id, b.coordinator_id, b.status) for b in active(services)] == [(made.id, "tanaka", "confirmed")]
    assert len(gcal.events("tanaka@example.jp")) == 1
    assert len(line.delivered(user.user)) == told_user  # nothing changed for the user
    assert response.location == f"/admin/bookings/{made.id}/reschedule?coordinator={to}"
    text = page(client, response.location)
    assert "ご予約は前の担当者のままです" in text and "11月26日(木) 13:00〜14:00" in text
    to_tanaka = said_to(line, COORDINATOR_LINE_ID)
    assert "担当が変わりました" in to_tanaka and "あなたの予定に残っています" in to_tanaka


def test_assigning_the_same_coordinator_again_changes_nothing(client, services, line):
    case = add_consultation(services)
    sign_in(client, services)
    assign(client, case, "suzuki")
    told = len(line.delivered(SUZUKI_LINE_ID))

    response = assign(client, case, "suzuki")

    assert "すでに鈴木 花子です" in page(client, response.location)
    assert len(history(services, case)) == 1 and len(line.delivered(SUZUKI_LINE_ID)) == told


def test_an_unknown_coordinator_or_case_is_refused_kindly(client, services):
    case = add_consultation(services)
    sign_in(client, services)

    response = assign(client, case, "nobody")

    assert "一覧から選んでください" in page(client, response.location)
    assert coordinator_of(services, case) is None and history(services, case) == []
    assert assign(client, 999, "tanaka").status_code == 404


def test_a_viewer_can_neither_open_the_case_nor_assign(client, services):
    case = add_consultation(services)
    sign_in(client, services, "viewer")

    opened = client.get(f"/admin/consultations/{case}")  # viewers see aggregates only
    response = assign(client, case, "tanaka")

    assert opened.status_code == 403
    assert response.status_code == 403 and coordinator_of(services, case) is None
