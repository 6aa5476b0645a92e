"""The staff console and the pages' Content-Security-Policy in headless Chromium."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect

from storage.staff import add_user

pytestmark = pytest.mark.browser

PASSWORD = "kagoshima-dx-2026"
NEW_PASSWORD = "sakurajima-2027"
PAGES = {"ホーム": "ホーム", "相談": "相談一覧", "会話": "会話", "予約": "予約", "出張相談会": "出張相談会",
         "セミナー": "セミナー", "コーディネーター": "コーディネーター", "送信失敗": "送信"}


def wait_for(condition, page: Page) -> None:
    for _ in range(100):  # console messages arrive a moment after what caused them
        if condition():
            return
        page.wait_for_timeout(50)


def test_the_policy_blocks_a_script_injected_into_the_simulator(simulator, csp_violations):
    simulator.evaluate("""() => {
        const script = document.createElement("script");
        script.textContent = "window.injected = true";
        document.body.append(script);
    }""")
    wait_for(lambda: csp_violations, simulator)

    assert simulator.evaluate("() => window.injected === undefined")
    assert any("inline script" in violation for violation in csp_violations)
    csp_violations.clear()  # seen and expected: the page fixture must not count it against the test


def test_the_privacy_policy_keeps_its_styles_under_the_policy(page, live_server):
    page.goto(f"{live_server}/privacy")

    expect(page.get_by_role("heading", name="個人情報の取り扱いについて")).to_have_css("border-bottom-style", "solid")


def test_staff_sign_in_use_every_page_change_the_password_and_sign_out(page, live_app):
    app, base = live_app
    add_user(app.extensions["dxdesk"].db, "e2e-admin", PASSWORD, "admin", datetime.now(UTC))
    page.goto(f"{base}/admin/consultations")
    page.get_by_label("ログインID").fill("e2e-admin")
    page.get_by_label("パスワード", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    expect(page).to_have_url(f"{base}/admin/consultations")

    nav = page.get_by_role("navigation", name="メインメニュー")
    for link, heading in PAGES.items():
        nav.get_by_role("link", name=link, exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text(heading)

    nav.get_by_role("link", name="コーディネーター").click()
    page.get_by_role("button", name="コピー").first.click()  # the page's script, now a file the policy allows
    expect(page.locator(".copy-status").first).to_contain_text("コピー")

    page.get_by_role("link", name="パスワード変更").click()
    page.get_by_label("現在のパスワード").fill(PASSWORD)
    page.get_by_label("新しいパスワード", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("新しいパスワード（確認のためもう一度）").fill(NEW_PASSWORD)
    page.get_by_role("button", name="パスワードを変更する").click()
    expect(page.get_by_role("status")).to_contain_text("パスワードを変更しました")

    page.get_by_role("button", name="ログアウト").click()
    expect(page.get_by_role("status")).to_contain_text("ログアウトしました")
    page.goto(f"{base}/admin")
    expect(page.get_by_role("heading", name="ログイン")).to_be_visible()
