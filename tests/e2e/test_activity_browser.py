"""A coordinator records a support visit and adds photos in headless Chromium: the thumbnails load under the
console's Content-Security-Policy, a file that is not an image is refused with the reason, and nothing of it is kept."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from PIL import Image
from playwright.sync_api import expect

from storage.staff import add_user

pytestmark = pytest.mark.browser

PASSWORD = "kagoshima-dx-2026"


def test_a_visit_is_recorded_and_its_photos_shown_as_thumbnails(page, live_app, tmp_path):
    app, base = live_app
    add_user(app.extensions["dxdesk"].db, "e2e-activities", PASSWORD, "coordinator", datetime.now(UTC))
    Image.new("RGB", (1200, 900), (20, 110, 180)).save(tmp_path / "訪問の様子.jpg")
    Image.new("RGBA", (500, 500), (200, 40, 40, 120)).save(tmp_path / "whiteboard.png")
    (tmp_path / "memo.jpg").write_text("画像ではありません")
    page.goto(f"{base}/admin/activities")
    page.get_by_label("ログインID").fill("e2e-activities")
    page.get_by_label("パスワード", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()

    page.get_by_role("link", name="企業への支援訪問").click()
    page.get_by_label("実施日時（日本時間）").fill("2026-11-20T10:00")
    page.get_by_label("企業名", exact=True).fill("桜島製作所")
    page.get_by_label("メモ（任意）").fill("受発注の紙をなくす段取りを相談")
    page.get_by_role("button", name="記録する").click()
    expect(page.get_by_role("status")).to_contain_text("企業への支援訪問を記録しました")

    page.get_by_label("写真を追加").set_input_files([tmp_path / "訪問の様子.jpg", tmp_path / "whiteboard.png"])
    page.get_by_role("button", name="追加する").click()
    expect(page.get_by_role("status")).to_contain_text("写真を2枚追加しました")
    thumbnails = page.locator(".photos img")
    expect(thumbnails).to_have_count(2)
    for n in range(2):
        assert thumbnails.nth(n).evaluate("img => img.complete && img.naturalWidth") == 320

    page.get_by_label("写真を追加").set_input_files([tmp_path / "memo.jpg"])
    page.get_by_role("button", name="追加する").click()
    expect(page.get_by_role("alert").first).to_contain_text("「memo.jpg」は画像（JPEG・PNG・WebP・GIF）として読み取れない")
    expect(page.locator(".photos img")).to_have_count(2)
