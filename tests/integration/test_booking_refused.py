"""A booking Google Calendar refuses for good (403 forbidden, 404, 400): left to staff, not retried for ever.

Through signed LINE events, the real GoogleCalendarGateway (googleapiclient) and the local FakeGoogleCalendar: the
user hears that the time is held but not confirmed and that staff will contact them; the reconciler stops calling the
calendar; staff find the booking on the dashboard, in the bookings list and on its page, with why, and retry it once
the calendar is shared again, or cancel it, each in the audit log. Transient refusals keep being retried by the
reconciler (tests/integration/test_booking_faults.py).
"""
from __future__ import annotations

from datetime import timedelta

import googleapiclient.http
import pytest
from sqlalchemy import select

from bot.jatime import TOKYO
from scheduling.bookings import RECONCILE_AFTER
from storage.models import AuditEntry, Booking
from tests.helpers import LineUserDriver, assert_bookings_match_calendar, texts
from tests.integration.test_booking import (  # noqa: F401 - app, configured, gcal, line and user are fixtures used here
    COORDINATOR_LINE_ID, app, configured, gcal, intake, line, slot_actions, user,
)
from tests.integration.test_console import page, post, sign_in

CAL = "tanaka@example.jp"
EVENTS = f"/calendar/v3/calendars/{CAL}/events"
SLOT = "11月26日(木) 10:00"
# What the calendar answers, and the refusal kept on the booking.
REFUSALS = {"forbidden": ((403, "forbidden"), "403 forbidden"), "not-found": (404, "404 notFound"),
            "bad-request": (400, "400 badRequest")}
HELD = "まだ確定しておりません"
TILE = "カレンダーが登録・削除を拒否した予約（要対応）"


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(googleapiclient.http.time, "sleep", lambda seconds: None)


def book_refused(u: LineUserDriver, gcal, refusal, times: int = 1) -> tuple[Booking, str]:
    """The user books over LINE while the calendar refuses the insert; the booking, and what the user was told."""
    gcal.script("POST", EVENTS, [refusal] * times)
    said = texts(u.book(next(a for a in slot_actions(intake(u)) if SLOT in a["displayText"])["data"]))
    [booking] = bookings(u.services)
    return booking, said


def bookings(services) -> list[Booking]:
    with services.db.unit_of_work() as s:
        return list(s.scalars(select(Booking)))


def reconcile_passes(services, passes: int = 3) -> None:
    for _ in range(passes):
        services.clock.advance(seconds=RECONCILE_AFTER.total_seconds() + 1)
        services.bookings.reconcile()


def told(line, to: str, words: str) -> int:
    """How many deliveries to `to` said `words`."""
    return sum(words in texts(batch) for batch in line.delivered(to))


def audit_records(services) -> list[tuple[str, str]]:
    with services.db.unit_of_work() as s:
        return [(e.action, e.record) for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]


@pytest.mark.parametrize(("refusal", "kept"), REFUSALS.values(), ids=REFUSALS.keys())
def test_a_booking_the_calendar_refuses_for_good_is_held_told_and_no_longer_retried(app, user, gcal, line, refusal,
                                                                                     kept):
    services = app.extensions["dxdesk"]
    booking, said = book_refused(user, gcal, refusal)

    assert (booking.status, booking.calendar_error) == ("pending", kept)
    assert HELD in said and "事務局の担当者から改めてご連絡いたします" in said
    assert "ご予約が確定しました" not in said and "確定しだいこのLINEでお知らせします" not in said
    inserts = len(gcal.requests("POST", EVENTS))
    assert inserts == 1  # a refusal for good is not retried by the client either

    reconcile_passes(services)

    assert len(gcal.requests("POST", EVENTS)) == inserts
    assert [b.status for b in bookings(services)] == ["pending"]
    assert told(line, user.user, HELD) == 1  # told once
    assert "新しいご予約" not in texts(line.delivered(COORDINATOR_LINE_ID))
    shown = texts(user.tap("action=bookings"))  # 予約の確認・変更: held, not being registered
    assert "事務局の担当者から改めてご連絡いたします" in shown and "カレンダーに登録中です" not in shown


def test_a_transient_refusal_after_a_pending_notice_still_leaves_the_booking_to_the_reconciler(app, user, gcal):
    services = app.extensions["dxdesk"]
    booking, said = book_refused(user, gcal, (403, "rateLimitExceeded"), times=4)  # the client's try and 3 retries
    assert "確定しだいこのLINEでお知らせします" in said and booking.calendar_error is None

    gcal.script("POST", EVENTS, [(403, "forbidden")])  # the next pass meets a refusal for good
    reconcile_passes(services, passes=1)
    [booking] = bookings(services)
    assert booking.calendar_error == "403 forbidden"
    assert HELD in texts(user.fake.delivered(user.user))


def test_staff_see_a_refused_booking_with_why_and_retry_it_once_the_calendar_is_shared_again(app, user, gcal, line):
    services = app.extensions["dxdesk"]
    booking, _ = book_refused(user, gcal, (403, "forbidden"))
    client = app.test_client()
    sign_in(client, services)

    assert TILE in page(client, "/admin")
    listed = page(client, "/admin/bookings?refused=1")
    assert f"/admin/bookings/{booking.id}" in listed and "カレンダー登録不可" in listed
    shown = page(client, f"/admin/bookings/{booking.id}")
    assert "Googleカレンダーに登録できず、まだ確定していません" in shown and "共有が外れた" in shown
    assert '<button class="button button-primary" type="submit">カレンダーへの登録を再試行する</button>' in shown
    assert booking.calendar_event_id not in shown and "まだカレンダーに登録できていません" in shown  # no event to name

    gcal.script("POST", EVENTS, [(403, "forbidden")])  # not fixed yet: refused again, the user is not told twice
    answer = post(client, f"/admin/bookings/{booking.id}/retry")
    assert answer.status_code == 302
    assert "カレンダーがまた登録を拒否しました" in page(client, f"/admin/bookings/{booking.id}")
    assert told(line, user.user, HELD) == 1

    post(client, f"/admin/bookings/{booking.id}/retry")  # shared again

    [booking] = bookings(services)
    assert (booking.status, booking.calendar_error) == ("confirmed", None)
    shown = page(client, f"/admin/bookings/{booking.id}")
    assert "予約を確定しました" in shown and booking.calendar_event_id in shown
    assert told(line, user.user, "ご予約が確定しました") == 1
    assert "新しいご予約" in texts(line.delivered(COORDINATOR_LINE_ID))
    assert_bookings_match_calendar(services.db, gcal, CAL)
    assert audit_records(services).count(("change", f"booking:{booking.id}")) == 2
    assert TILE not in page(client, "/admin")


def test_a_refused_booking_whose_time_has_passed_still_waits_for_staff_on_the_tile_and_in_the_list(app, user, gcal,
                                                                                                    clock):
    services = app.extensions["dxdesk"]
    booking, _ = book_refused(user, gcal, (403, "forbidden"))
    clock.advance(days=30)  # the user was told staff would be in touch: the date passing does not settle that
    client = app.test_client()
    sign_in(client, services)

    assert TILE in page(client, "/admin")
    assert f"/admin/bookings/{booking.id}" in page(client, "/admin/bookings?refused=1")
    assert f"/admin/bookings/{booking.id}" not in page(client, "/admin/bookings")  # the plain list: from today on


def test_staff_cancel_a_refused_booking_and_the_user_is_told(app, user, gcal, line):
    services = app.extensions["dxdesk"]
    booking, _ = book_refused(user, gcal, 404)
    client = app.test_client()
    sign_in(client, services)

    post(client, f"/admin/bookings/{booking.id}/cancel", reason="カレンダーの共有を戻せないため")

    assert [b.status for b in bookings(services)] == ["cancelled"]
    assert "担当者の都合によりキャンセル" in texts(line.delivered(user.user))
    assert ("change", f"booking:{booking.id}") in audit_records(services)
    assert TILE not in page(client, "/admin")
    assert_bookings_match_calendar(services.db, gcal, CAL)


def test_a_viewer_counts_a_refused_booking_on_the_home_page_but_cannot_open_nor_retry_it(app, user, gcal):
    services = app.extensions["dxdesk"]
    booking, _ = book_refused(user, gcal, (403, "forbidden"))
    client = app.test_client()
    sign_in(client, services, role="viewer")

    assert "カレンダーが登録・削除を拒否した予約" in page(client, "/admin")
    assert client.get(f"/admin/bookings/{booking.id}").status_code == 403  # it names the person
    assert post(client, f"/admin/bookings/{booking.id}/retry").status_code == 403
    assert bookings(services)[0].calendar_error == "403 forbidden"


def move_by_bot(services, user, booking, later) -> None:
    """The user's booking moved to `later` as the bot moves it: reserved in place of the old one, then confirmed."""
    with services.db.unit_of_work() as s:
        moved = services.bookings.reserve(s, user_id=user.user, coordinator="tanaka", start=later, method="online",
                                          region=None, consultation_id=None, now=services.clock.now(),
                                          replaces=booking.id)
        s.commit()
    services.bookings.confirm(booking.id, changed=True, previous=moved.previous)


def test_a_held_booking_moved_to_another_time_asks_the_calendar_afresh(app, user, gcal, line):
    services = app.extensions["dxdesk"]
    booking, _ = book_refused(user, gcal, (403, "forbidden"))
    later = booking.start + timedelta(days=1)
    move_by_bot(services, user, booking, later)

    [booking] = bookings(services)
    assert (booking.status, booking.calendar_error, booking.start) == ("confirmed", None, later)
    assert told(line, user.user, "ご予約を変更しました") == 1
    assert_bookings_match_calendar(services.db, gcal, CAL)


def test_staff_moving_a_booking_the_calendar_refuses_are_told_it_is_not_confirmed_and_so_is_the_user(app, user, gcal,
                                                                                                      line):
    services = app.extensions["dxdesk"]
    booking, _ = book_refused(user, gcal, (403, "forbidden"))
    client = app.test_client()
    sign_in(client, services)
    later = booking.start + timedelta(days=1)
    gcal.script("POST", EVENTS, [(403, "forbidden")])

    post(client, f"/admin/bookings/{booking.id}/reschedule", slot=f"tanaka|{later.astimezone(TOKYO):%Y%m%d%H%M}")

    shown = page(client, f"/admin/bookings/{booking.id}")
    assert "Googleカレンダーが登録を拒否したため、まだ確定していません" in shown
    [booking] = bookings(services)
    assert (booking.status, booking.calendar_error, booking.start) == ("pending", "403 forbidden", later)
    assert told(line, user.user, HELD) == 2  # once for each time


def test_one_expression_on_the_booking_says_which_bookings_the_calendar_refused_in_python_and_in_sql(app):
    services = app.extensions["dxdesk"]
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        kinds = [(status, error) for status in ("pending", "confirmed", "cancelling", "cancelled")
                 for error in (None, "403 forbidden")]
        for i, (status, error) in enumerate(kinds):
            start = now + timedelta(days=1, hours=i)
            s.add(Booking(user_id=None, coordinator_id="tanaka", start=start, end=start + timedelta(hours=1),
                          method="online", status=status, calendar_error=error, created_at=now, updated_at=now))
        s.commit()
        every = list(s.scalars(select(Booking).order_by(Booking.id)))
        in_sql = list(s.scalars(select(Booking).where(Booking.calendar_refused).order_by(Booking.id)))
        not_in_sql = list(s.scalars(select(Booking).where(~Booking.calendar_refused).order_by(Booking.id)))

    assert [(b.status, b.calendar_error) for b in in_sql] == [("pending", "403 forbidden"),
                                                              ("cancelling", "403 forbidden")]
    assert in_sql == [b for b in every if b.calendar_refused]
    assert not_in_sql == [b for b in every if not b.calendar_refused]


# --- a cancellation whose event the calendar will not delete ----------------------------------------------------

def book(u: LineUserDriver) -> Booking:
    """The user books over LINE and the calendar takes it: the confirmed booking."""
    u.book(next(a for a in slot_actions(intake(u)) if SLOT in a["displayText"])["data"])
    [booking] = bookings(u.services)
    assert booking.status == "confirmed"
    return booking


def cancel_over_line(u: LineUserDriver, booking: Booking) -> str:
    u.tap(f"action=cancel_booking&b={booking.id}")
    return texts(u.tap("action=cancel_reason&v=問題が解決した"))


def test_a_cancellation_whose_event_the_calendar_refuses_to_delete_stands_and_is_left_to_staff(app, user, gcal, line):
    services = app.extensions["dxdesk"]
    booking = book(user)
    gcal.script("DELETE", EVENTS, [(403, "forbidden")])

    assert "キャンセルしました" in cancel_over_line(user, booking)

    [booking] = bookings(services)
    assert (booking.status, booking.calendar_error) == ("cancelling", "403 forbidden")
    assert "ご予約のキャンセル" in texts(line.delivered(COORDINATOR_LINE_ID))
    reconcile_passes(services)
    assert len(gcal.requests("DELETE", EVENTS)) == 1  # not retried for ever
    assert [b.status for b in bookings(services)] == ["cancelling"]
    assert len(gcal.events(CAL)) == 1  # the event is still there, for staff to remove

    client = app.test_client()
    sign_in(client, services)
    assert TILE in page(client, "/admin")
    listed = page(client, "/admin/bookings?refused=1")
    assert f"/admin/bookings/{booking.id}" in listed and "カレンダー削除不可" in listed
    shown = page(client, f"/admin/bookings/{booking.id}")
    assert "この予約はキャンセルしましたが、Googleカレンダーの予定を削除できませんでした。" in shown
    assert "予定の削除を拒否しました" in shown and "共有が外れた" in shown and "手作業で削除してください" in shown
    assert "カレンダーの予定の削除を再試行する" in shown and "カレンダーへの登録を再試行する" not in shown

    gcal.script("DELETE", EVENTS, [(403, "forbidden")])  # not fixed yet
    post(client, f"/admin/bookings/{booking.id}/retry")
    assert "カレンダーがまた予定の削除を拒否しました" in page(client, f"/admin/bookings/{booking.id}")

    post(client, f"/admin/bookings/{booking.id}/retry")  # shared again

    [booking] = bookings(services)
    assert (booking.status, booking.calendar_error, booking.calendar_error_at) == ("cancelled", None, None)
    assert "カレンダーの予定を削除し、キャンセルの手続きを終えました" in page(client, f"/admin/bookings/{booking.id}")
    assert gcal.events(CAL) == []
    assert audit_records(services).count(("change", f"booking:{booking.id}")) == 2
    assert TILE not in page(client, "/admin")
    assert told(line, user.user, "キャンセルしました") == 1  # the user heard once, at the time, that it is cancelled


def test_a_change_of_date_whose_event_the_calendar_refuses_to_move_is_held_and_not_retried(app, user, gcal, line):
    services = app.extensions["dxdesk"]
    booking = book(user)
    later = booking.start + timedelta(days=1)
    gcal.script("PATCH", EVENTS, [(403, "forbidden")])
    move_by_bot(services, user, booking, later)
    reconcile_passes(services)

    assert [(b.status, b.calendar_error) for b in bookings(services)] == [("pending", "403 forbidden")]
    assert len(gcal.requests("PATCH", EVENTS)) == 1
    assert told(line, user.user, HELD) == 1


def test_staff_cancelling_a_booking_whose_event_the_calendar_refuses_to_delete_are_told_so(app, user, gcal):
    services = app.extensions["dxdesk"]
    booking = book(user)
    client = app.test_client()
    sign_in(client, services)
    gcal.script("DELETE", EVENTS, [400])

    post(client, f"/admin/bookings/{booking.id}/cancel", reason="ご本人からお電話でキャンセルの連絡")

    shown = page(client, f"/admin/bookings/{booking.id}")
    assert "予約をキャンセルしました" in shown and "Googleカレンダーが予定の削除を拒否しました。下の説明をご確認ください" in shown
    assert "自動で削除を再試行します" not in shown
    assert "予定の削除を受け付けませんでした" in shown
    assert [(b.status, b.calendar_error) for b in bookings(services)] == [("cancelling", "400 badRequest")]


def test_a_retried_delete_that_meets_an_outage_goes_back_to_the_reconciler(app, user, gcal):
    services = app.extensions["dxdesk"]
    booking = book(user)
    gcal.script("DELETE", EVENTS, [(403, "forbidden")])
    cancel_over_line(user, booking)
    client = app.test_client()
    sign_in(client, services)
    gcal.script("DELETE", EVENTS, [503] * 4)  # the try and the client's three retries

    post(client, f"/admin/bookings/{booking.id}/retry")

    assert "一時的に応答しませんでした。自動で削除を再試行します" in page(client, f"/admin/bookings/{booking.id}")
    assert [(b.status, b.calendar_error) for b in bookings(services)] == [("cancelling", None)]
    reconcile_passes(services, passes=1)
    assert [b.status for b in bookings(services)] == ["cancelled"] and gcal.events(CAL) == []


def test_a_held_booking_cancelled_during_an_outage_is_finished_by_the_reconciler(app, user, gcal):
    services = app.extensions["dxdesk"]
    booking, _ = book_refused(user, gcal, (403, "forbidden"))
    gcal.script("DELETE", EVENTS, [503] * 4)

    cancel_over_line(user, booking)

    # The insert's refusal is not the delete's: the cancellation is the reconciler's to finish.
    assert [(b.status, b.calendar_error) for b in bookings(services)] == [("cancelling", None)]
    reconcile_passes(services, passes=1)
    assert [b.status for b in bookings(services)] == ["cancelled"]
