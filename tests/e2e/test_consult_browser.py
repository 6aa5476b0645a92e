"""Someone not on LINE sends a consultation through /consult and books a slot, in headless Chromium on a phone's width;
the canary values typed reach no log record, werkzeug's access log of the real server included."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from bot.booking import slot_key

from storage.models import Booking, Consultation
from tests.integration.test_log_privacy import EMAIL, NAME, PHONE, PHRASE, leaked, logs  # noqa: F401 - logs: fixture

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(os.environ.get("DXDESK_SCREENSHOTS", "var/screenshots"))


def test_a_consultation_sent_through_the_web_form_books_a_slot(page, live_app, logs):
    app, base = live_app
    services = app.extensions["dxdesk"]
    page.goto(f"{base}/consult")
    expect(page.get_by_role("heading", name="個人情報の取り扱いについて")).to_be_visible()
    page.get_by_label("個人情報の取り扱いに同意する").check()
    page.get_by_label("ご相談内容").fill(f"紙の請求書をやめて、クラウドの会計ソフトに切り替えたい。{PHRASE}")
    page.get_by_label("会社名・屋号").fill("有限会社カナリア醸造")
    page.get_by_label("業種").select_option("卸売業・小売業")
    page.get_by_label("従業員数").select_option("6〜20人")
    page.get_by_label("市町村").select_option("霧島市")
    page.get_by_label("ご担当者名").fill(NAME)
    page.get_by_label("電話番号").fill(PHONE)
    page.get_by_role("textbox", name="メール").fill(EMAIL)
    page.get_by_label("オンライン").check()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "consult-390.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the form is wider than the phone"
    page.wait_for_timeout(3100)  # a person takes longer than the form's minimum fill time; a bot would not
    page.get_by_role("button", name="次へ（分野の確認）").click()

    expect(page.get_by_role("heading", name="ご相談の分野")).to_be_visible()
    expect(page.locator("input[name=category]:checked")).to_have_count(1)  # the triage's suggestion, preselected
    page.get_by_role("button", name="次へ（日時の選択）").click()

    expect(page.get_by_role("heading", name="ご相談の日時")).to_be_visible()
    first = page.locator("input[name=slot]").first
    chosen = first.get_attribute("value")
    first.check()
    page.screenshot(path=str(SCREENSHOTS / "consult-slots-390.png"), full_page=True)
    page.get_by_role("button", name="この内容で申し込む").click()

    expect(page.get_by_role("heading", name="ご相談を受け付けました")).to_be_visible()
    receipt = page.locator(".receipt-no").inner_text()
    with services.db.unit_of_work() as s:
        c = s.scalar(select(Consultation).where(Consultation.company == "有限会社カナリア醸造"))
        booking = s.scalar(select(Booking).where(Booking.consultation_id == c.id))
    assert (c.channel, c.origin, c.receipt_no) == ("web", "web", receipt)
    coordinator, _, key = chosen.partition("|")
    assert (booking.coordinator_id, slot_key(booking.start), booking.status) == (coordinator, key, "confirmed")
    page.screenshot(path=str(SCREENSHOTS / "consult-done-390.png"), full_page=True)
    assert any(r.name == "werkzeug" for r in logs.records), "werkzeug's access log did not run"
    assert leaked(logs) == []
