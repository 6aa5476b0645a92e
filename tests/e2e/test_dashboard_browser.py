"""The console's home in headless Chromium: the month's figures with their bars drawn under the page's
Content-Security-Policy, another month chosen with the form, and the monthly report downloaded as a viewer."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from openpyxl import load_workbook
from playwright.sync_api import expect

from storage.models import Consultation
from storage.staff import add_user

PASSWORD = "kagoshima-dx-2026"


def seed(app) -> datetime:
    """Five efficiency and three sales consultations today, one of data a month before."""
    now = datetime.now(UTC)
    with app.extensions["dxdesk"].db.unit_of_work() as s:
        for n, (category, at) in enumerate([("efficiency", now)] * 5 + [("sales", now)] * 3
                                           + [("data", now - timedelta(days=31))]):
            s.add(Consultation(received_at=at, channel="line", company=f"ブラウザ商事{n}", category=category,
                               method="online", status="received", question="相談", region="kagoshima"))
        s.commit()
    return now


def test_a_viewer_sees_the_months_figures_with_bars_and_downloads_the_report(page, live_app, tmp_path):
    app, base = live_app
    now = seed(app)
    add_user(app.extensions["dxdesk"].db, "e2e-viewer", PASSWORD, "viewer", now)
    page.goto(f"{base}/admin")
    page.get_by_label("ログインID").fill("e2e-viewer")
    page.get_by_label("パスワード", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()

    categories = page.locator("table.figures-table", has=page.locator("caption", has_text="分野別"))
    efficiency = categories.locator("tr", has_text="業務効率化・ペーパーレス")
    expect(efficiency.locator("td").first).to_have_text("5")
    longest = efficiency.locator("svg").bounding_box()
    bar = efficiency.locator("rect").bounding_box()
    sales = categories.locator("tr", has_text="EC・Web集客・販路開拓").locator("rect").bounding_box()
    assert bar["width"] > 0 and abs(bar["width"] - longest["width"]) < 1  # the largest count fills its cell
    assert 0.5 * bar["width"] < sales["width"] < 0.7 * bar["width"]  # 3 of 5
    note = page.locator(".figures-note")  # under the last table: what the two marks mean
    expect(note).to_have_text("3未満：1〜2件。秘匿：3未満の件数が他の数値から計算できないよう伏せた数値。")
    assert note.bounding_box()["y"] > page.locator("table.figures-table").last.bounding_box()["y"]

    with page.expect_download() as download:
        page.get_by_role("link", name="月次報告（Excel）をダウンロード").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert load_workbook(saved).active.title == "月次報告"

    earlier = (now.astimezone() - timedelta(days=31)).strftime("%Y-%m")
    page.get_by_label("月", exact=True).fill(earlier)
    page.get_by_role("button", name="表示する").click()
    expect(page).to_have_url(f"{base}/admin?month={earlier}")
    data = page.locator("table.figures-table", has=page.locator("caption", has_text="分野別")).locator(
        "tr", has_text="データ活用・見える化")
    expect(data.locator("td").first).to_have_text("3未満")
