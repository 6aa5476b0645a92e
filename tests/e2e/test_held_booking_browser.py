"""Bookings Google Calendar refuses for good, in headless Chromium: two users' bookings are held (403 forbidden,
404) through signed LINE events, the real GoogleCalendarGateway and the local FakeGoogleCalendar; a staff user
finds them from the dashboard's red tile, reads why on the booking page, retries one once the calendar accepts
again (the user hears over LINE that it is confirmed) and cancels the other, and the tile is gone."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from storage.staff import add_user
from tests.e2e.conftest import served
from tests.helpers import LineUserDriver, texts
from tests.integration.test_booking import (  # noqa: F401 - app, configured, gcal, line and user are fixtures used here
    app, configured, gcal, intake, line, slot_actions, user,
)
from tests.integration.test_booking_refused import EVENTS, HELD, TILE, book, cancel_over_line, told

pytestmark = pytest.mark.browser

PASSWORD = "kagoshima-dx-2026"
PHONE = {"width": 390, "height": 844}
RETRY = "カレンダーへの登録を再試行する"
OTHER_USER = "U" + "7" * 32


def sign_in(tab, base: str, services) -> None:
    add_user(services.db, "sato-held", PASSWORD, "coordinator", services.clock.now())
    tab.goto(f"{base}/admin")
    tab.get_by_label("ログインID").fill("sato-held")
    tab.get_by_label("パスワード", exact=True).fill(PASSWORD)
    tab.get_by_role("button", name="ログイン").click()


def book_refused(u: LineUserDriver, gcal, refusal, slot: str) -> str:
    """The user books `slot` over LINE while the calendar refuses the insert for good: what they were told."""
    gcal.script("POST", EVENTS, [refusal])
    return texts(u.book(next(a for a in slot_actions(intake(u)) if slot in a["displayText"])["data"]))


def shoot(tab, path: Path) -> None:
    """Full-page screenshots at 1366x768 and at a phone's 390 px, neither wider than its window."""
    for size, suffix in (({"width": 1366, "height": 768}, ""), (PHONE, "-phone")):
        tab.set_viewport_size(size)
        tab.screenshot(path=str(path.with_name(path.stem + suffix + path.suffix)), full_page=True)
        assert tab.evaluate("document.documentElement.scrollWidth") <= size["width"], f"{path.name} overflows at {size}"
    tab.set_viewport_size({"width": 1366, "height": 768})


def test_staff_retry_one_held_booking_from_the_dashboard_and_cancel_the_other(app, user, gcal, line, laptop,
                                                                              tmp_path):
    shots = Path(os.environ.get("DXDESK_SCREENSHOTS") or tmp_path)
    services = app.extensions["dxdesk"]
    other = LineUserDriver(app.test_client(), app, line, OTHER_USER)
    assert HELD in book_refused(user, gcal, (403, "forbidden"), "11月26日(木) 10:00")
    assert HELD in book_refused(other, gcal, 404, "11月26日(木) 11:00")

    with served(app) as base:
        sign_in(laptop, base, services)
        tile = laptop.get_by_role("link", name=TILE)
        expect(tile).to_be_visible()
        expect(tile).to_contain_text("2件")
        shoot(laptop, shots / "held-dashboard.png")

        tile.click()
        expect(laptop.get_by_text("Googleカレンダーが予定の登録または削除を拒否した予約です。")).to_be_visible()
        rows = laptop.locator("tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.filter(has_text="カレンダー登録不可")).to_have_count(2)
        red = rows.first.evaluate("row => getComputedStyle(row).backgroundColor")
        laptop.set_viewport_size(PHONE)  # each row a card: still red
        assert rows.first.evaluate("row => getComputedStyle(row).backgroundColor") == red != "rgb(255, 255, 255)"
        shoot(laptop, shots / "held-list.png")

        rows.first.get_by_role("link", name="11月26日(木) 10:00", exact=False).click()
        alert = laptop.locator("#calendar-refused")
        expect(alert).to_contain_text("この予約はGoogleカレンダーに登録できず、まだ確定していません。")
        expect(alert).to_contain_text("共有が外れた")
        expect(alert).to_contain_text("「403 forbidden」")
        assert [p for p in alert.locator("p").all_inner_texts() if "。 " in p] == []  # no stray space between sentences
        expect(laptop.get_by_role("button", name=RETRY)).to_have_class("button button-primary")  # what to do next
        event_id = laptop.locator("dt", has_text="カレンダーの予定ID").locator("xpath=following-sibling::dd")
        expect(event_id).to_have_text("—（まだカレンダーに登録できていません）")  # no event yet, so no id
        shoot(laptop, shots / "held-booking.png")

        laptop.get_by_role("button", name=RETRY).click()  # the fake calendar accepts again
        expect(laptop.get_by_text("カレンダーに登録し、予約を確定しました。利用者に確定のお知らせを送りました。")).to_be_visible()
        expect(laptop.locator(".heading-row .status")).to_have_text("確定")
        expect(laptop.get_by_role("button", name=RETRY)).to_have_count(0)
        expect(laptop.get_by_text("カレンダー登録不可")).to_have_count(0)
        expect(event_id).to_have_text(re.compile(r"^kgdesk[0-9a-v]+$"))
        shoot(laptop, shots / "held-booking-retried.png")
        assert told(line, user.user, "ご予約が確定しました") == 1

        laptop.get_by_role("link", name="ホーム", exact=True).click()
        expect(laptop.get_by_role("link", name=TILE)).to_contain_text("1件")
        laptop.get_by_role("link", name=TILE).click()
        expect(rows).to_have_count(1)
        rows.first.get_by_role("link", name="11月26日(木) 11:00", exact=False).click()
        expect(laptop.locator("#calendar-refused")).to_contain_text("「404 notFound」")
        laptop.get_by_label("理由", exact=False).fill("カレンダーの共有を戻せないため、お電話で日程を調整します")
        laptop.get_by_role("button", name="この予約をキャンセルする").click()
        expect(laptop.locator(".heading-row .status")).to_have_text("取消")
        expect(laptop.locator("#calendar-refused")).to_have_count(0)
        assert "担当者の都合によりキャンセル" in texts(line.delivered(OTHER_USER))

        laptop.goto(f"{base}/admin")
        expect(laptop.get_by_role("heading", level=1)).to_be_visible()
        expect(laptop.get_by_role("link", name=TILE)).to_have_count(0)
        shoot(laptop, shots / "held-dashboard-after.png")


def test_staff_find_a_cancellation_whose_event_the_calendar_would_not_delete_and_retry_it(app, user, gcal, line,
                                                                                          laptop, tmp_path):
    shots = Path(os.environ.get("DXDESK_SCREENSHOTS") or tmp_path)
    services = app.extensions["dxdesk"]
    booking = book(user)
    gcal.script("DELETE", EVENTS, [(403, "forbidden")])
    assert "キャンセルしました" in cancel_over_line(user, booking)  # the user's cancellation stands

    with served(app) as base:
        sign_in(laptop, base, services)
        tile = laptop.get_by_role("link", name=TILE)
        expect(tile).to_contain_text("1件")
        tile.click()
        rows = laptop.locator("tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("カレンダー削除不可")
        expect(rows.first).to_contain_text("取消処理中")

        rows.first.get_by_role("link", name="11月26日(木) 10:00", exact=False).click()
        alert = laptop.locator("#calendar-refused")
        expect(alert).to_contain_text("この予約はキャンセルしましたが、Googleカレンダーの予定を削除できませんでした。")
        expect(alert).to_contain_text("手作業で削除してください")
        expect(alert).to_contain_text("「403 forbidden」")
        assert [p for p in alert.locator("p").all_inner_texts() if "。 " in p] == []
        retry = laptop.get_by_role("button", name="カレンダーの予定の削除を再試行する")
        expect(retry).to_have_class("button button-primary")
        shoot(laptop, shots / "held-delete.png")

        retry.click()  # the calendar is shared again
        expect(laptop.get_by_text("カレンダーの予定を削除し、キャンセルの手続きを終えました。")).to_be_visible()
        expect(laptop.locator(".heading-row .status")).to_have_text("取消")
        expect(alert).to_have_count(0)
        assert gcal.events("tanaka@example.jp") == []
        laptop.get_by_role("link", name="ホーム", exact=True).click()
        expect(laptop.get_by_role("heading", level=1)).to_be_visible()
        expect(laptop.get_by_role("link", name=TILE)).to_have_count(0)
