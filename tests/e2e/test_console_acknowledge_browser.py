"""The staff console in headless Chromium: a coordinator marks a booking 確認済み."""
from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from storage.models import Booking
from storage.staff import add_user
from tests.e2e.conftest import served

pytestmark = pytest.mark.browser
PASSWORD = "kagoshima-dx-2026"


@pytest.fixture
def console(tmp_path):
    """The whole app on a loopback port, with its services, so a test can put a booking on record first."""
    from app import Settings, create_app

    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/console.sqlite3", var_dir=tmp_path,
                              start_workers=False))
    with served(app) as base:
        yield base, app.extensions["dxdesk"]
    app.extensions["dxdesk"].db.dispose()


def test_a_coordinator_marks_a_booking_acknowledged_in_the_browser(console, page):
    base, services = console
    now = services.clock.now()
    add_user(services.db, "sato", PASSWORD, "coordinator", now)
    with services.db.unit_of_work() as s:
        start = now + timedelta(days=3)
        booking = Booking(coordinator_id="tanaka", start=start, end=start + timedelta(hours=1), method="online",
                          status="confirmed", created_at=now, updated_at=now)
        s.add(booking)
        s.commit()

    page.goto(f"{base}/admin/bookings/{booking.id}")
    page.get_by_label("ログインID").fill("sato")
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    expect(page.get_by_text("未確認")).to_be_visible()
    page.get_by_role("button", name="確認済みにする").click()

    expect(page.get_by_text("予約を確認済みにしました。")).to_be_visible()
    expect(page.get_by_text("sato（スタッフ画面）が確認")).to_be_visible()
    expect(page.get_by_role("button", name="確認済みにする")).to_have_count(0)
    with services.db.unit_of_work() as s:
        assert s.get(Booking, booking.id).acknowledged_by == "sato"
