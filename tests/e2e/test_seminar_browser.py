"""A staff member creates a seminar in the console, then checks people in, in headless Chromium."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from storage.staff import add_user
from tests.helpers import add_registration

pytestmark = pytest.mark.browser

PASSWORD = "kagoshima-dx-2026"


def test_staff_create_a_seminar_and_mark_attendance_from_the_list_and_by_the_qr_code(page, live_app):
    app, base = live_app
    db = app.extensions["dxdesk"].db
    add_user(db, "e2e-seminars", PASSWORD, "coordinator", datetime.now(UTC))
    page.goto(f"{base}/admin/seminars")
    page.get_by_label("ログインID").fill("e2e-seminars")
    page.get_by_label("パスワード", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()

    page.get_by_role("link", name="セミナーを登録する").click()
    page.get_by_label("タイトル").fill("生成AIを業務に活かすセミナー")
    page.get_by_label("開始（日本時間）").fill("2030-01-10T14:00")
    page.get_by_label("終了").fill("2030-01-10T16:00")
    page.get_by_label("会場の定員").fill("20")
    page.get_by_label("オンラインの定員").fill("40")
    page.get_by_role("button", name="登録する").click()
    expect(page.get_by_role("status")).to_contain_text("登録しました")
    seminar_id = int(page.url.rstrip("/").rsplit("/", 1)[1])

    first, _ = add_registration(db, seminar_id, "U-e2e-1", company="桜島製作所", name="西郷 花子")
    _, token = add_registration(db, seminar_id, "U-e2e-2", company="霧島食品", name="島津 一郎")
    page.reload()
    row = page.locator(f"#registration-{first}")
    row.get_by_role("button", name="出席にする").click()
    expect(page.locator(f"#registration-{first}")).to_contain_text("受付済み")

    page.goto(f"{base}/admin/checkin/{token}")  # what the phone at the door opens from the QR code
    expect(page.locator(".checkin-company")).to_have_text("霧島食品")
    page.get_by_role("button", name="受付する（出席にする）").click()
    expect(page.get_by_role("status")).to_contain_text("受付しました")
    page.goto(f"{base}/admin/checkin/{token}")  # a second scan
    expect(page.get_by_role("status")).to_contain_text("すでに受付済み")

    page.get_by_role("link", name="セミナー", exact=True).click()
    expect(page.locator(f"#seminar-{seminar_id} .seats-onsite")).to_contain_text("2／20席・残り18")
