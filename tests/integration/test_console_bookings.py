"""The console's bookings, pop-up days and coordinators, on bookings made by signed LINE events (fake LINE, Google)."""
from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from app import create_app
from bot.jatime import TOKYO
from storage.models import Booking, Consultation, OutboundMessage, OutboxItem, PopupDay, popup_desk
from tests.helpers import LineUserDriver, texts
from tests.integration.test_booking import (  # noqa: F401 - app, configured, gcal, line and user are fixtures used here
    COORDINATOR_LINE_ID, active_bookings, add_popup_day, app, configured, gcal, intake, line, slot_actions, user,
)
from tests.integration.test_console import MARKUP, csrf, page, post, section, sign_in

GOOD_DAY = {"date": "2026-12-05", "region": "osumi", "venue": "鹿屋商工会議所 2階", "address": "鹿屋市打馬1-2-3",
            "start": "10:00", "end": "12:00", "slot_minutes": "60", "capacity": "2", "coordinator": "",
            "note": "駐車場は裏手です"}


# --- helpers ------------------------------------------------------------------------------------------

def book_over_line(u: LineUserDriver, when: str = "11月26日(木) 10:00") -> Booking:
    """The user's whole intake and a tap on the slot at `when`; returns the confirmed booking."""
    u.book(next(a for a in slot_actions(intake(u)) if when in a["displayText"])["data"])
    [booking] = active_bookings(u.services)
    assert booking.status == "confirmed"
    return booking


def add_booking(services, *, start: datetime, company: str = "", status: str = "confirmed",
                coordinator: str = "tanaka", day: int | None = None, minutes: int = 60) -> int:
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        consultation = None
        if company:
            consultation = Consultation(received_at=now, channel="popup" if day else "line", company=company,
                                        category="efficiency", method="visit", question="POSレジを入れたい")
            s.add(consultation)
            s.flush()
        booking = Booking(consultation_id=consultation.id if consultation else None,
                          coordinator_id=popup_desk(day, 1) if day else coordinator, start=start,
                          end=start + timedelta(minutes=minutes), method="visit" if day else "online",
                          channel="popup" if day else "line", status=status, popup_day_id=day,
                          created_at=now, updated_at=now)
        s.add(booking)
        s.commit()
        return booking.id


def reserve_seat(services, day: int, start: datetime) -> int:
    with services.db.unit_of_work() as s:
        reserved = services.bookings.reserve_popup(s, day_id=day, start=start, user_id=None, consultation_id=None,
                                                   now=services.clock.now())
        s.commit()
    return reserved.booking.id


def booking(services, booking_id: int) -> Booking:
    with services.db.unit_of_work() as s:
        return s.get(Booking, booking_id)


def popup_days(services) -> list[PopupDay]:
    with services.db.unit_of_work() as s:
        return list(s.scalars(select(PopupDay).order_by(PopupDay.id)))


def rows_of(text: str) -> str:
    return section(text, "<tbody>", "</tbody>") if "<tbody>" in text else ""


def at(day: int, hour: int, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=TOKYO)


# --- who may see and do what --------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/admin/bookings", "/admin/bookings/1", "/admin/popup", "/admin/coordinators"])
def test_the_new_pages_send_a_signed_out_visitor_to_the_login_form(client, path):
    response = client.get(path)

    assert response.status_code == 302 and response.location.startswith("/admin/login")


@pytest.mark.parametrize("path", ["/admin/bookings", "/admin/bookings/{id}", "/admin/bookings/{id}/reschedule",
                                  "/admin/bookings?coordinator=tanaka"])
def test_a_viewer_is_refused_the_bookings_which_name_people_with_a_kind_message(client, services, path):
    booking_id = add_booking(services, start=at(26, 10), company="さつま商事")
    sign_in(client, services, "viewer")

    response = client.get(path.format(id=booking_id))

    assert response.status_code == 403
    text = response.get_data(as_text=True)
    assert "閲覧専用のアカウントではご覧いただけません" in text and "さつま商事" not in text


@pytest.mark.parametrize("path", ["/admin/popup", "/admin/coordinators"])
def test_a_viewer_reads_the_popup_days_and_coordinators_without_names_forms_or_links_to_bookings(client, services,
                                                                                                 path):
    day = add_popup_day(services)
    add_booking(services, start=at(5, 10, month=12), company="鹿屋商店", day=day)
    sign_in(client, services)
    post(client, f"/admin/popup/{day}/cancel")  # a called-off day lists its bookings to contact, by company
    viewer = client.application.test_client()
    sign_in(viewer, services, "viewer")

    text = page(viewer, path)

    assert "ログアウト" in text
    assert 'method="post"' not in text.replace('method="post" action="/admin/logout"', "")
    assert "鹿屋商店" not in text and "/admin/bookings" not in text and "/admin/conversations" not in text
    if path == "/admin/popup":
        assert "1件の予約が残っています" in text  # the count stays
    assert "鹿屋商店" in page(client, "/admin/popup")  # staff who act still see whom to call


@pytest.mark.parametrize(("path", "form"), [
    ("/admin/bookings/{booking}/cancel", {"reason": "担当者の急な出張"}),
    ("/admin/popup", GOOD_DAY | {"date": "2026-12-12"}),
    ("/admin/popup/{day}/cancel", {}),
])
def test_a_viewer_cannot_cancel_a_booking_nor_add_or_call_off_a_popup_day(client, services, path, form):
    booking_id = add_booking(services, start=at(26, 10), company="さつま商事")
    day = add_popup_day(services)
    sign_in(client, services, "viewer")

    response = post(client, path.format(booking=booking_id, day=day), **form)

    assert response.status_code == 403
    assert "閲覧専用" in response.get_data(as_text=True)
    assert booking(services, booking_id).status == "confirmed"
    assert [(d.id, d.status) for d in popup_days(services)] == [(day, "open")]


# --- bookings -----------------------------------------------------------------------------------------

def test_a_booking_made_over_line_is_listed_with_its_company_coordinator_and_status(client, services, user):
    made = book_over_line(user)
    sign_in(client, services)

    rows = rows_of(page(client, "/admin/bookings"))

    for shown in ("11月26日(木) 10:00〜11:00", "オンライン", "田中 一郎", "さつま商事", "確定", "未確認",
                  f"/admin/bookings/{made.id}"):
        assert shown in rows
    assert "担当変更の依頼あり" not in rows


@pytest.mark.parametrize(("answer", "flagged", "acknowledged"), [
    (None, False, False),
    ("coord_ack", False, True),
    ("coord_swap", True, False),
])
def test_the_coordinator_s_answer_shows_in_the_list_and_a_swap_request_on_the_dashboard(client, services, app, user,
                                                                                         line, answer, flagged,
                                                                                         acknowledged):
    made = book_over_line(user)
    if answer:
        LineUserDriver(user.client, app, line, COORDINATOR_LINE_ID).tap(f"action={answer}&b={made.id}")
    sign_in(client, services)

    rows = rows_of(page(client, "/admin/bookings"))
    dashboard = page(client, "/admin")

    assert ("担当変更の依頼あり" in rows) is flagged
    assert ("確認済み" in rows) is acknowledged
    assert 'class="tile-label">今後の予約</span>\n    <span class="tile-count">1<small>' in dashboard
    assert f'class="tile-label">担当変更の依頼</span>\n    <span class="tile-count">{int(flagged)}<small>' in dashboard
    assert ("さつま商事" in rows_of(page(client, "/admin/bookings?swap=1"))) is flagged


@pytest.mark.parametrize(("query", "listed"), [
    ("", ["明日の個別", "会場の"]),
    ("?status=cancelled", ["取消の"]),
    ("?status=all", ["明日の個別", "取消の", "会場の"]),
    ("?channel=popup", ["会場の"]),
    ("?channel=line", ["明日の個別"]),
    ("?coordinator=tanaka", ["明日の個別"]),
    ("?from=2026-11-01", ["昨日の", "明日の個別", "会場の"]),
    ("?from=2026-12-01&status=all", ["会場の"]),
    ("?from=not-a-date", ["明日の個別", "会場の"]),
])
def test_the_booking_list_starts_today_in_time_order_and_filters(client, services, query, listed):
    day = add_popup_day(services)
    add_booking(services, start=at(5, 10, month=12), company="会場の商店", day=day)
    add_booking(services, start=at(23, 10), company="昨日の商店")
    add_booking(services, start=at(25, 10), company="明日の個別商店")
    add_booking(services, start=at(25, 14), company="取消の商店", status="cancelled")
    sign_in(client, services)

    rows = rows_of(page(client, f"/admin/bookings{query}"))

    shown = [name for name in ("昨日の", "明日の個別", "取消の", "会場の") if f"{name}商店" in rows]
    assert shown == listed
    assert sorted(shown, key=lambda name: rows.index(f"{name}商店")) == listed  # in time order on the page


def test_a_popup_seat_is_named_by_its_venue(client, services):
    day = add_popup_day(services)
    add_booking(services, start=at(5, 10, month=12), company="鹿屋商店", day=day)
    sign_in(client, services)

    rows = rows_of(page(client, "/admin/bookings"))

    assert "出張相談会（鹿屋商工会議所）" in rows and "対面（訪問・来所）" in rows


def test_the_booking_detail_shows_meet_link_calendar_event_and_consultation(client, services, user):
    made = book_over_line(user)
    sign_in(client, services)

    text = page(client, f"/admin/bookings/{made.id}")

    assert made.meet_url.startswith("https://meet.google.com/") and f'href="{made.meet_url}"' in text
    assert made.calendar_event_id in text
    assert f"/admin/consultations/{made.consultation_id}" in text
    for shown in ("11月26日(木) 10:00〜11:00", "田中 一郎", "さつま商事", "西郷 隆子", "099-286-2111",
                  f"/admin/conversations/{user.user}", "この予約をキャンセルする"):
        assert shown in text
    assert f"/admin/bookings/{made.id}" in page(client, f"/admin/consultations/{made.consultation_id}")


def test_a_staff_cancel_frees_the_slot_deletes_the_event_and_tells_the_coordinator_and_the_user(
        client, services, user, line, gcal, app):
    made = book_over_line(user)
    assert len(gcal.events("tanaka@example.jp")) == 1
    sign_in(client, services)

    response = post(client, f"/admin/bookings/{made.id}/cancel", reason="田中が急な出張のため\r\n別日で調整")

    cancelled = booking(services, made.id)
    assert (cancelled.status, cancelled.cancelled_by, cancelled.cancel_reason) == \
        ("cancelled", "staff", "田中が急な出張のため\n別日で調整")
    assert gcal.events("tanaka@example.jp") == []
    assert "ご予約のキャンセル" in texts(line.delivered(COORDINATOR_LINE_ID))
    told = texts(line.delivered(user.user)[-1])
    assert "11月26日(木) 10:00〜11:00のご相談のご予約は、担当者の都合によりキャンセルとなりました" in told
    assert "急な出張" not in told  # the staff's own reason stays with the staff and the coordinator
    with services.db.unit_of_work() as s:
        last = s.scalars(select(OutboundMessage).where(OutboundMessage.to == user.user)
                         .order_by(OutboundMessage.id.desc())).first()
    assert (last.sender, last.status) == ("staff", "sent")
    detail = page(client, response.location)
    assert "担当コーディネーターと利用者にお知らせを送りました" in detail
    assert "田中が急な出張のため\n別日で調整" in detail and "この予約をキャンセルする" not in detail
    other = LineUserDriver(app.test_client(), app, line, "U2" + "0" * 31)
    assert any("11月26日(木) 10:00" in a["displayText"] for a in slot_actions(intake(other)))


@pytest.mark.parametrize(("reason", "said"), [
    ("", "キャンセルの理由を入力してください"),
    (" \r\n ", "キャンセルの理由を入力してください"),
    ("あ" * 1001, "理由は1000文字以内で入力してください"),
])
def test_a_staff_cancel_without_a_usable_reason_changes_nothing(client, services, user, line, gcal, reason, said):
    made = book_over_line(user)
    delivered = len(line.delivered(user.user))
    sign_in(client, services)

    response = post(client, f"/admin/bookings/{made.id}/cancel", reason=reason)

    assert response.status_code == 400
    assert said in response.get_data(as_text=True)
    assert booking(services, made.id).status == "confirmed"
    assert len(gcal.events("tanaka@example.jp")) == 1
    assert len(line.delivered(user.user)) == delivered


@pytest.mark.parametrize(("status", "start"), [("cancelled", at(26, 10)), ("confirmed", at(23, 10))])
def test_a_booking_already_cancelled_or_over_cannot_be_cancelled_again(client, services, status, start):
    booking_id = add_booking(services, start=start, company="さつま商事", status=status)
    sign_in(client, services)

    response = post(client, f"/admin/bookings/{booking_id}/cancel", reason="重複")

    assert "キャンセルできません" in page(client, response.location)
    assert booking(services, booking_id).status == status
    assert booking(services, booking_id).cancel_reason is None


def test_an_unknown_booking_is_a_polite_404(client, services):
    sign_in(client, services)

    response = client.get("/admin/bookings/999")

    assert response.status_code == 404 and "見つかりませんでした" in response.get_data(as_text=True)


# --- pop-up days --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("typed", "reason"), [
    ({"venue": ""}, "会場名を入れてください"),
    ({"end": "10:30"}, "終了時刻は、開始時刻から少なくとも1枠"),
    ({"slot_minutes": "5", "end": "10:05"}, "終了時刻は、開始時刻から少なくとも1枠"),
    ({"capacity": "21"}, "同時に受けられる人数は1〜20です"),
    ({"capacity": "二人"}, "数字で入れてください"),
    ({"date": ""}, "開催日を選んでください"),
    ({"start": "朝"}, "開始時刻と終了時刻を「10:00」の形で入れてください"),
    ({"date": "2026-11-20"}, "過去の日時には登録できません"),
    ({"coordinator": "nobody"}, "コーディネーター nobody は設定にありません"),
    ({"venue": "あ" * 201}, "会場名は200文字以内で入れてください"),
    ({"slot_minutes": "9" * 30}, "1枠の長さは、開始から終了までの時間に収まるように"),
])
def test_a_popup_day_that_cannot_work_is_explained_and_the_form_keeps_what_was_typed(client, services, typed, reason):
    sign_in(client, services)
    form = GOOD_DAY | typed

    response = post(client, "/admin/popup", **form)

    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert reason in section(text, 'role="alert"', "</p>")
    kept = section(text, 'id="new-day"', "</form>")
    for name in ("date", "venue", "address", "start", "end", "slot_minutes", "capacity"):
        assert f'name="{name}" value="{html.escape(form[name])}"' in kept
    assert '<option value="osumi" selected>' in kept and ">駐車場は裏手です</textarea>" in kept
    assert popup_days(services) == []


def test_a_popup_day_is_added_listed_with_its_seats_and_offered_over_line(client, services, user):
    sign_in(client, services)

    response = post(client, "/admin/popup", **GOOD_DAY)

    [day] = popup_days(services)
    assert response.location == f"/admin/popup#day-{day.id}"
    assert (day.venue, day.region, day.capacity, day.coordinator_id, day.note) == \
        ("鹿屋商工会議所 2階", "osumi", 2, None, "駐車場は裏手です")
    assert "鹿屋商工会議所 2階" in texts(user.tap("action=menu&item=popup"))
    reserve_seat(services, day.id, at(5, 10, month=12))
    reserve_seat(services, day.id, at(5, 10, month=12))
    reserve_seat(services, day.id, at(5, 11, month=12))
    listed = section(page(client, "/admin/popup"), f'id="day-{day.id}"', "</article>")
    for shown in ("12月5日(土) 10:00〜12:00", "鹿屋商工会議所 2階", "大隅", "鹿屋市打馬1-2-3", "1枠60分", "受付中",
                  "駐車場は裏手です"):
        assert shown in listed
    slots = section(listed, '<ul class="slots"', "</ul>")
    assert re.findall(r'slot-time">(.*?)</span>\s*<span class="slot-seats">(.*?)</span>', slots) == [
        ("10:00〜11:00", "予約 2／2席（満席）"), ("11:00〜12:00", "予約 1／2席（空き 1）")]


def test_upcoming_popup_days_come_first_then_past_ones(client, services, clock):
    add_popup_day(services, day=5)
    add_popup_day(services, day=4)
    clock.set(datetime(2026, 12, 4, 15, 0, tzinfo=TOKYO))
    sign_in(client, services)

    text = page(client, "/admin/popup")

    upcoming, past = section(text, "これからの開催", "終了した開催"), text[text.index("終了した開催"):]
    assert "12月5日(土)" in upcoming and "12月4日(金)" not in upcoming
    assert "12月4日(金)" in past and "終了" in past


def test_calling_off_a_popup_day_stops_its_offers_and_lists_the_bookings_to_contact(client, services, user):
    day = add_popup_day(services)
    booking_id = add_booking(services, start=at(5, 10, month=12), company="鹿屋商店", day=day)
    sign_in(client, services)

    response = post(client, f"/admin/popup/{day}/cancel")

    assert [d.status for d in popup_days(services)] == ["cancelled"]
    assert booking(services, booking_id).status == "confirmed"
    text = page(client, response.location)
    assert "すでに1件の予約があります" in text
    listed = section(text, f'id="day-{day}"', "</article>")
    assert "中止" in listed and "1件の予約が残っています" in listed
    assert "鹿屋商店" in listed and f"/admin/bookings/{booking_id}" in listed
    assert "この日を中止する" not in listed
    assert "鹿屋商工会議所" not in texts(user.tap("action=menu&item=popup"))


def test_calling_off_a_day_twice_says_so(client, services):
    day = add_popup_day(services)
    sign_in(client, services)
    post(client, f"/admin/popup/{day}/cancel")

    response = post(client, f"/admin/popup/{day}/cancel")

    assert "すでに中止になっています" in page(client, response.location)


# --- coordinators -------------------------------------------------------------------------------------

FEED = re.compile(r'value="(http://localhost/calendar/tanaka/[0-9a-f]{32}\.ics)"')


def test_an_admin_sees_each_coordinator_s_feed_url_and_it_serves_their_calendar(client, services, user):
    made = book_over_line(user)
    sign_in(client, services, "admin")

    text = page(client, "/admin/coordinators")

    [url] = FEED.findall(text)
    assert 'data-copy="feed-tanaka"' in text
    feed = client.get(url.removeprefix("http://localhost"))
    assert feed.status_code == 200 and feed.content_type == "text/calendar; charset=utf-8"
    assert f"UID:{made.calendar_event_id}@dxdesk" in feed.get_data(as_text=True)


@pytest.mark.parametrize("role", ["coordinator", "viewer"])
def test_the_feed_url_is_hidden_from_anyone_but_an_admin(client, services, role):
    sign_in(client, services, role)

    text = page(client, "/admin/coordinators")

    assert "/calendar/" not in text and "data-copy" not in text
    assert "管理者のアカウントでのみ表示されます" in text and "田中 一郎" in text


@pytest.fixture
def default_client(settings, clock):
    """A console on the built-in Kagoshima configuration: three coordinators with regions and holiday hours."""
    app = create_app(settings, clock=clock)
    yield app.test_client(), app.extensions["dxdesk"]
    app.extensions["dxdesk"].stop()
    app.extensions["dxdesk"].db.dispose()


@pytest.mark.parametrize(("coordinator", "shown"), [
    ("tanaka", ["対面（訪問・来所）、オンライン、電話、メール", "鹿児島、南薩、北薩", "<th scope=\"row\">月</th><td>9:00〜12:00・13:00〜17:00</td>",
                "<th scope=\"row\">土</th><td>10:00〜15:00</td>", "<th scope=\"row\">祝日</th><td>休み</td>"]),
    ("yamashita", ["オンライン、電話、メール", "県内全域", "<th scope=\"row\">祝日</th><td>10:00〜12:00</td>",
                   "<th scope=\"row\">火</th><td>休み</td>"]),
    ("nishimura", ["姶良・伊佐、大隅、熊毛、奄美", "<th scope=\"row\">金</th><td>9:00〜12:00</td>"]),
])
def test_the_coordinators_page_shows_methods_regions_in_japanese_and_hours(default_client, coordinator, shown):
    client, services = default_client
    sign_in(client, services, "viewer")

    card = section(page(client, "/admin/coordinators"), f'id="coordinator-{coordinator}"', "</section>")

    for text in shown:
        assert text in card


# --- failed scheduled sends, escaping -------------------------------------------------------------------

def test_a_failed_scheduled_send_is_listed_below_the_failed_messages(client, services):
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        s.add(OutboxItem(key="reminder_day_before:booking:7:202611261000", kind="reminder_day_before", ref="booking:7",
                         to="U" + "1" * 32, messages=[{"type": "text", "text": "明日です"}], due_at=now,
                         status="failed", error="blocked_by_user", created_at=now))
        s.add(OutboxItem(key="survey:booking:8", kind="survey", ref="booking:8", to="U" + "2" * 32,
                         messages=[{"type": "text", "text": "アンケート"}], due_at=now, status="sent", created_at=now))
        s.commit()
    sign_in(client, services)

    text = page(client, "/admin/messages")

    scheduled = text[text.index("送れなかった予定の送信"):]
    assert "送信に失敗したメッセージはありません" in text[:text.index("送れなかった予定の送信")]
    assert "前日のリマインダー" in scheduled and "blocked_by_user" in scheduled and "/admin/bookings/7" in scheduled
    assert "/admin/bookings/8" not in scheduled and "1件" in scheduled
    assert 'class="tile-label">送信失敗</span>\n    <span class="tile-count">1<small>' in page(client, "/admin")


@pytest.mark.parametrize("path", ["/admin/bookings", "/admin/bookings/{booking}", "/admin/popup",
                                  "/admin/consultations/{consultation}"])
def test_markup_in_a_venue_or_company_is_shown_as_text(client, services, path):
    with services.db.unit_of_work() as s:
        day = PopupDay(region="osumi", venue=MARKUP, address=MARKUP, start_at=at(5, 10, month=12),
                       end_at=at(5, 12, month=12), slot_minutes=60, capacity=1, note=MARKUP, status="open",
                       created_at=services.clock.now())
        s.add(day)
        s.commit()
    booking_id = add_booking(services, start=at(5, 10, month=12), company=MARKUP, day=day.id)
    with services.db.unit_of_work() as s:
        consultation_id = s.scalar(select(func.max(Consultation.id)))
    sign_in(client, services)

    text = page(client, path.format(booking=booking_id, consultation=consultation_id))

    assert MARKUP not in text
    assert html.escape(MARKUP) in text


def test_a_booking_the_calendar_never_took_is_flagged_on_the_dashboard(client, services, clock):
    now = clock.now()
    with services.db.unit_of_work() as s:
        start = now + timedelta(days=2)
        s.add(Booking(coordinator_id="tanaka", start=start, end=start + timedelta(hours=1), method="online",
                      status="pending", created_at=now, updated_at=now))
        s.commit()
    sign_in(client, services)
    assert "カレンダーに登録できていない予約" not in page(client, "/admin")  # the reconciler still has time
    clock.advance(minutes=16)
    dashboard = page(client, "/admin")
    assert "カレンダーに登録できていない予約" in dashboard and "status=pending" in dashboard


# --- staff acknowledging a booking ------------------------------------------------------------------------

def acknowledgement(services, booking_id: int) -> tuple:
    with services.db.unit_of_work() as s:
        b = s.get(Booking, booking_id)
        return b.acknowledged_at, b.acknowledged_by


def test_staff_mark_a_booking_acknowledged_and_the_console_says_who_and_when(client, services, clock):
    booking_id = add_booking(services, start=at(26, 10), company="桜島製作所")
    sign_in(client, services)
    assert "確認済みにする" in page(client, f"/admin/bookings/{booking_id}")
    clock.advance(minutes=3)

    response = post(client, f"/admin/bookings/{booking_id}/acknowledge")

    assert response.status_code == 302
    assert acknowledgement(services, booking_id) == (clock.now(), "coordinator-staff")
    text = page(client, f"/admin/bookings/{booking_id}")
    assert "✓ 11月24日(火) 10:03にcoordinator-staff（スタッフ画面）が確認" in text and "確認済みにする" not in text
    assert "coordinator-staff（スタッフ画面）が確認" in page(client, "/admin/bookings")


def test_a_viewer_cannot_acknowledge_a_booking_nor_anyone_without_the_form_s_token(client, services):
    booking_id = add_booking(services, start=at(26, 10), company="桜島製作所")
    sign_in(client, services, role="viewer")
    assert client.get(f"/admin/bookings/{booking_id}").status_code == 403

    assert post(client, f"/admin/bookings/{booking_id}/acknowledge").status_code == 403
    client.post("/admin/logout", data={"csrf_token": csrf(client)})
    sign_in(client, services, role="admin")
    assert client.post(f"/admin/bookings/{booking_id}/acknowledge", data={}).status_code == 400
    assert acknowledgement(services, booking_id) == (None, None)


def test_a_cancelled_booking_cannot_be_acknowledged(client, services):
    booking_id = add_booking(services, start=at(26, 10), company="桜島製作所", status="cancelled")
    sign_in(client, services)

    post(client, f"/admin/bookings/{booking_id}/acknowledge")

    assert acknowledgement(services, booking_id) == (None, None)
    assert "確認済みにする" not in page(client, f"/admin/bookings/{booking_id}")
