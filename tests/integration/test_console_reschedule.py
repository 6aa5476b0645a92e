"""Changing a booking's date or coordinator from the console: free slots, the move, the race, the calendar, who is told."""
from __future__ import annotations

import textwrap
from dataclasses import replace
from datetime import datetime

import pytest
from sqlalchemy import select

from app import create_app
from bot.jatime import TOKYO
from storage.models import AuditEntry, Booking, CaseEvent, Consultation, OutboundMessage
from tests.fakes.smtp import FakeSmtpServer
from tests.helpers import LineUserDriver, texts
from tests.integration.test_booking import (  # noqa: F401 - configured, gcal, line and user are fixtures used here
    CONFIG, COORDINATOR_LINE_ID, configured, gcal, intake, line, slot_actions, user,
)
from tests.integration.test_console import page, post, sign_in
from tests.integration.test_console_bookings import add_popup_day, book_over_line, reserve_seat

SUZUKI_LINE_ID = "Ucoordinatorsuzuki00000000000002"
# Suzuki does online and phone consultations on Thursday mornings and Friday afternoons; Yamada visits only.
TWO_MORE = textwrap.dedent(f"""
    [[coordinators]]
    id = "suzuki"
    name = "鈴木 花子"
    line_user_id = "{SUZUKI_LINE_ID}"
    calendar_id = "suzuki@example.jp"
    methods = ["online", "phone"]
    [coordinators.hours]
    thu = ["09:00-12:00"]
    fri = ["13:00-17:00"]

    [[coordinators]]
    id = "yamada"
    name = "山田 太郎"
    calendar_id = "yamada@example.jp"
    methods = ["visit"]
    [coordinators.hours]
    thu = ["09:00-12:00"]
""")


@pytest.fixture
def app(configured, clock, tmp_path):
    config = tmp_path / "three.toml"
    config.write_text(CONFIG + TWO_MORE)
    app = create_app(replace(configured, config_path=str(config)), clock=clock)
    yield app
    app.extensions["dxdesk"].stop()
    app.extensions["dxdesk"].db.dispose()


@pytest.fixture
def services(app):
    return app.extensions["dxdesk"]


def at(day: int, hour: int, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=TOKYO)


def booking(services, booking_id: int) -> Booking:
    with services.db.unit_of_work() as s:
        return s.get(Booking, booking_id)


def active(services) -> list[Booking]:
    with services.db.unit_of_work() as s:
        return list(s.scalars(select(Booking).where(Booking.status.in_(("pending", "confirmed"))).order_by(Booking.id)))


def book_with_tanaka(user) -> Booking:
    """Online, 11月26日(木) 13:00: only 田中 works Thursday afternoons."""
    made = book_over_line(user, "11月26日(木) 13:00")
    assert made.coordinator_id == "tanaka"
    return made


def move(client, booking_id: int, coordinator: str, start: datetime):
    return post(client, f"/admin/bookings/{booking_id}/reschedule", slot=f"{coordinator}|{start:%Y%m%d%H%M}")


def slot_buttons(text: str) -> list[str]:
    """The values of the slot buttons on the page, e.g. 'tanaka|202611261400'."""
    return [part.split('"', 1)[0] for part in text.split('name="slot" value="')[1:]]


def said_to(line, user_id: str, since: int = 0) -> str:
    return texts([m for batch in line.delivered(user_id)[since:] for m in batch])


# --- the free slots -----------------------------------------------------------------------------------

def test_the_page_offers_free_times_for_the_booking_s_method_from_every_coordinator_who_does_it(client, services, user):
    made = book_with_tanaka(user)
    sign_in(client, services)

    text = page(client, f"/admin/bookings/{made.id}/reschedule?from=2026-11-26")
    buttons = slot_buttons(text)

    assert "tanaka|202611261100" in buttons and "suzuki|202611261000" in buttons
    assert "tanaka|202611261300" not in buttons  # its own time is not a change
    assert not any(b.startswith("yamada|") for b in buttons)  # visits only
    assert "11月26日(木) 11:00〜12:00・田中 一郎" in text and "鈴木 花子" in text
    assert [b for b in slot_buttons(page(client, f"/admin/bookings/{made.id}/reschedule?from=2026-11-26&coordinator=suzuki"))
            if not b.startswith("suzuki|")] == []


def test_staff_may_choose_inside_the_minimum_notice_and_past_the_horizon_but_not_in_the_past(client, services, user):
    made = book_with_tanaka(user)
    sign_in(client, services)  # now: 11月24日(火) 10:00

    today = slot_buttons(page(client, f"/admin/bookings/{made.id}/reschedule"))
    far = slot_buttons(page(client, f"/admin/bookings/{made.id}/reschedule?from=2026-12-25"))

    assert "tanaka|202611241100" in today  # within the 2 hours a user must give
    assert "tanaka|202611240900" not in today and "tanaka|202611241000" not in today  # begun or gone
    assert "tanaka|202612251000" in far  # past the 30 days the bot offers


def test_a_popup_seat_and_a_cancelled_booking_have_no_reschedule_page(client, services):
    day = add_popup_day(services)
    seat = reserve_seat(services, day, at(5, 10, month=12))
    sign_in(client, services)

    assert client.get(f"/admin/bookings/{seat}/reschedule").status_code == 409
    response = move(client, seat, "tanaka", at(26, 14))
    assert response.location == f"/admin/bookings/{seat}"
    assert "出張相談会の予約は、日時を変更できません" in page(client, response.location)
    assert booking(services, seat).start == at(5, 10, month=12)
    assert client.get("/admin/bookings/999/reschedule").status_code == 404


# --- moving -------------------------------------------------------------------------------------------

def test_moving_with_the_same_coordinator_moves_the_event_and_tells_the_user_before_and_after(client, services,
                                                                                            user, line, gcal):
    made = book_with_tanaka(user)
    told_user, told_tanaka = len(line.delivered(user.user)), len(line.delivered(COORDINATOR_LINE_ID))
    sign_in(client, services)

    response = move(client, made.id, "tanaka", at(26, 14))

    assert response.status_code == 302 and response.location == f"/admin/bookings/{made.id}"
    moved = booking(services, made.id)
    assert (moved.status, moved.start, moved.coordinator_id) == ("confirmed", at(26, 14), "tanaka")
    [event] = gcal.events("tanaka@example.jp")
    assert event["id"] == made.calendar_event_id and event["start"]["dateTime"].startswith("2026-11-26T14:00:00+09:00")
    to_user = said_to(line, user.user, told_user)
    assert "ご予約を変更しました" in to_user
    assert "変更前" in to_user and "11月26日(木) 13:00〜14:00" in to_user
    assert "変更後" in to_user and "11月26日(木) 14:00〜15:00" in to_user
    assert "ご予約の変更" in said_to(line, COORDINATOR_LINE_ID, told_tanaka)
    assert "予約を11月26日(木) 14:00〜15:00に変更しました" in page(client, f"/admin/bookings/{made.id}")
    with services.db.unit_of_work() as s:
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "change",
                                                 AuditEntry.record == f"booking:{made.id}")) is not None


def test_moving_to_another_coordinator_puts_the_event_in_their_calendar_and_tells_both(client, services, user,
                                                                                      line, gcal):
    made = book_with_tanaka(user)
    told_user, told_tanaka = len(line.delivered(user.user)), len(line.delivered(COORDINATOR_LINE_ID))
    sign_in(client, services)

    response = move(client, made.id, "suzuki", at(26, 11))

    [now_active] = active(services)
    assert response.location == f"/admin/bookings/{now_active.id}"
    assert (now_active.coordinator_id, now_active.start, now_active.status) == ("suzuki", at(26, 11), "confirmed")
    assert booking(services, made.id).status == "cancelled" and booking(services, made.id).cancelled_by == "staff"
    assert gcal.events("tanaka@example.jp") == []
    [event] = gcal.events("suzuki@example.jp")
    assert event["start"]["dateTime"].startswith("2026-11-26T11:00:00+09:00")
    to_user = said_to(line, user.user, told_user)
    assert "変更前" in to_user and "11月26日(木) 13:00〜14:00" in to_user and "鈴木 花子" in to_user
    assert "ご予約のキャンセル" in said_to(line, COORDINATOR_LINE_ID, told_tanaka)
    assert "新しいご予約" in said_to(line, SUZUKI_LINE_ID)


def test_a_move_to_another_coordinator_whose_old_event_the_calendar_will_not_delete_is_left_to_staff(client, services,
                                                                                                   user, gcal, clock):
    made = book_with_tanaka(user)
    sign_in(client, services)
    gcal.script("DELETE", "/calendar/v3/calendars/tanaka@example.jp/events", [(403, "forbidden")])

    move(client, made.id, "suzuki", at(26, 11))

    [now_active] = active(services)
    assert (now_active.coordinator_id, now_active.status) == ("suzuki", "confirmed")
    old = booking(services, made.id)
    assert (old.status, old.calendar_error) == ("cancelling", "403 forbidden")
    clock.advance(minutes=4)
    services.bookings.reconcile()
    assert len(gcal.requests("DELETE", "/calendar/v3/calendars/tanaka@example.jp/events")) == 1
    assert booking(services, made.id).status == "cancelling" and len(gcal.events("tanaka@example.jp")) == 1
    assert "カレンダー削除不可" in page(client, "/admin/bookings?refused=1")


def test_a_time_taken_meanwhile_gets_a_kind_message_and_the_list_again(client, services, user, line, gcal):
    made = book_with_tanaka(user)
    sign_in(client, services)
    other = LineUserDriver(user.client, client.application, line, "U2" + "0" * 31)
    other.book(next(a for a in slot_actions(intake(other)) if "11月26日(木) 14:00" in a["displayText"])["data"])
    told_user = len(line.delivered(user.user))

    response = move(client, made.id, "tanaka", at(26, 14))

    text = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "申し訳ありません。その時間は、ほかの予約や予定が入ったか" in text
    assert "tanaka|202611261100" in slot_buttons(text)  # the choices again
    assert booking(services, made.id).start == at(26, 13)
    assert len(line.delivered(user.user)) == told_user
    assert sorted(e["start"]["dateTime"][:16] for e in gcal.events("tanaka@example.jp")) == ["2026-11-26T13:00",
                                                                                            "2026-11-26T14:00"]


def test_the_database_decides_a_race_that_the_free_busy_check_missed(client, services, user, monkeypatch):
    made = book_with_tanaka(user)
    other = LineUserDriver(user.client, client.application, user.fake, "U3" + "0" * 31)
    other.book(next(a for a in slot_actions(intake(other)) if "11月26日(木) 15:00" in a["displayText"])["data"])
    sign_in(client, services)
    # As if the other booking were committed between our check and our write: the check sees nothing.
    monkeypatch.setattr(services.bookings, "busy", lambda *args, **kwargs: {})

    response = move(client, made.id, "tanaka", at(26, 15))

    assert response.status_code == 409 and "申し訳ありません" in response.get_data(as_text=True)
    assert sorted(b.start for b in active(services)) == [at(26, 13), at(26, 15)]
    assert booking(services, made.id).start == at(26, 13)


def test_a_calendar_that_fails_leaves_the_new_booking_held_and_the_reconciler_finishes_it(client, services, user,
                                                                                         gcal, clock):
    made = book_with_tanaka(user)
    sign_in(client, services)
    gcal.script("POST", "/calendar/v3/calendars/suzuki@example.jp/events", [503] * 4)  # the try and 3 retries

    text = client.get(move(client, made.id, "suzuki", at(26, 11)).location).get_data(as_text=True)

    assert "カレンダーへの登録はまだ済んでいません" in text
    [held] = active(services)
    assert (held.coordinator_id, held.status) == ("suzuki", "pending")
    assert gcal.events("tanaka@example.jp") == [] and gcal.events("suzuki@example.jp") == []
    clock.advance(minutes=4)
    services.bookings.reconcile()
    assert booking(services, held.id).status == "confirmed"
    assert len(gcal.events("suzuki@example.jp")) == 1


def test_a_viewer_cannot_move_a_booking(client, services, user):
    made = book_with_tanaka(user)
    sign_in(client, services, "viewer")

    response = move(client, made.id, "tanaka", at(26, 14))

    assert response.status_code == 403
    assert booking(services, made.id).start == at(26, 13)
    for path in (f"/admin/bookings/{made.id}", f"/admin/bookings/{made.id}/reschedule"):  # they name the person
        assert client.get(path).status_code == 403


def test_a_forged_slot_is_refused_with_the_list(client, services, user):
    made = book_with_tanaka(user)
    sign_in(client, services)

    for forged in ("tanaka|202611260830", "nobody|202611261400", "tanaka|not-a-time", "suzuki|202611261400",
                   "tanaka|202611230900"):
        response = post(client, f"/admin/bookings/{made.id}/reschedule", slot=forged)
        assert response.status_code == 409, forged
    assert booking(services, made.id).start == at(26, 13)


# --- someone without LINE -----------------------------------------------------------------------------

@pytest.fixture
def smtp():
    with FakeSmtpServer() as server:
        yield server


@pytest.fixture
def mail_app(configured, clock, tmp_path, smtp):
    config = tmp_path / "three.toml"
    config.write_text(CONFIG + TWO_MORE)
    app = create_app(replace(configured, config_path=str(config), smtp_url=smtp.url,
                             mail_from="かごしまDX相談窓口 <dx-desk@example.jp>"), clock=clock)
    yield app
    app.extensions["dxdesk"].stop()
    app.extensions["dxdesk"].db.dispose()


def web_booking(services, method: str) -> int:
    """A booking made through the web form by someone without LINE, confirmed with tanaka on the 26th at 10:00."""
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        c = Consultation(received_at=now, channel="web", company="霧島工業", category="efficiency", method=method,
                         question="在庫管理", contact_name="霧島 花子", email="hanako@example.jp", origin="web")
        s.add(c)
        s.flush()
        b = Booking(consultation_id=c.id, coordinator_id="tanaka", start=at(26, 10), end=at(26, 11), method=method,
                    channel="line", status="confirmed", calendar_event_id="kgdesk00000001", created_at=now,
                    updated_at=now)
        s.add(b)
        s.commit()
        return b.id


def test_someone_who_came_by_the_web_form_is_told_the_new_date_by_email(mail_app, smtp):
    services, client = mail_app.extensions["dxdesk"], mail_app.test_client()
    booking_id = web_booking(services, "phone")
    sign_in(client, services)

    move(client, booking_id, "tanaka", at(26, 14))

    [mail] = [m for m in smtp.mails if "hanako@example.jp" in m.rcpt_tos]
    body = mail.parsed().get_body().get_content()
    assert "霧島 花子 様" in body and "変更前：11月26日(木) 10:00〜11:00" in body and "変更後：11月26日(木) 14:00〜15:00" in body
    assert "ご予約の日時を変更しました" in mail.parsed()["Subject"]
    with services.db.unit_of_work() as s:
        assert s.scalar(select(OutboundMessage.status).where(OutboundMessage.channel == "email",
                                                             OutboundMessage.sender == "staff")) == "sent"
    assert booking(services, booking_id).start == at(26, 14)


@pytest.mark.parametrize("calendar_down", [False, True], ids=["calendar-up", "calendar-down"])
def test_an_online_web_booking_moved_by_staff_gets_its_new_meet_link_by_email_once_confirmed(mail_app, smtp, gcal,
                                                                                            calendar_down):
    services, client = mail_app.extensions["dxdesk"], mail_app.test_client()
    booking_id = web_booking(services, "online")
    sign_in(client, services)
    if calendar_down:
        gcal.script("POST", "/calendar/v3/calendars/", [503] * 4)  # the first try and the client's three retries

    move(client, booking_id, "tanaka", at(26, 14))
    if calendar_down:
        assert booking(services, booking_id).status == "pending"
        services.clock.advance(minutes=5)
        services.bookings.reconcile()

    moved = booking(services, booking_id)
    assert moved.status == "confirmed" and moved.meet_url
    mails = [m for m in smtp.mails if "hanako@example.jp" in m.rcpt_tos]
    [change] = [m for m in mails if "ご予約の日時を変更しました" in m.parsed()["Subject"]]
    assert "別のメールでお送りします" in change.parsed().get_body().get_content()
    [meet] = [m for m in mails if "Google Meet" in m.parsed()["Subject"]]
    assert moved.meet_url in meet.parsed().get_body().get_content()


# No one in charge: the new booking's coordinator takes the case, as any booking of an unassigned case does.
@pytest.mark.parametrize(("in_charge", "after"), [("tanaka", "suzuki"), ("yamada", "yamada"), (None, "suzuki")])
def test_the_case_follows_its_booking_to_the_new_coordinator_only_if_it_was_the_old_one_s(client, services, user,
                                                                                        in_charge, after):
    made = book_with_tanaka(user)
    with services.db.unit_of_work() as s:
        s.get(Consultation, made.consultation_id).coordinator_id = in_charge
        s.commit()
    sign_in(client, services)

    move(client, made.id, "suzuki", at(26, 11))

    with services.db.unit_of_work() as s:
        assert s.get(Consultation, made.consultation_id).coordinator_id == after
        events = [(e.kind, e.old, e.new) for e in s.scalars(select(CaseEvent).where(
            CaseEvent.consultation_id == made.consultation_id))]
    assert events == ([("assign", "tanaka", "suzuki")] if in_charge == "tanaka" else [])
