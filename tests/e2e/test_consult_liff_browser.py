"""The web form as a LIFF page inside LINE, in headless Chromium: handlers/static/consult-liff.js run for real against
a stand-in for LINE's LIFF SDK (served in place of static.line-scdn.net), and the server asking the fake LINE whose
the token is."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from handlers.liff import SDK_URL
from storage.models import Consultation
from tests.e2e.conftest import served
from tests.fakes.line_api import FakeLineApi

pytestmark = pytest.mark.browser

LIFF_ID = "1657000000-AbCdEfGh"
LINE_USER = "U0123456789abcdef0123456789abcdef"
SCREENSHOTS = Path(os.environ.get("DXDESK_SCREENSHOTS", "var/screenshots"))

# What the page may ask of LINE's SDK, answering as LINE would for the case under test; calls are noted on window.
FAKE_SDK = """
window.liffCalls = [];
window.liff = {
  init: function (config) { liffCalls.push(["init", config.liffId]);
    return CASE.initFails ? Promise.reject(new Error("init failed")) : Promise.resolve(); },
  isInClient: function () { return CASE.inClient; },
  isLoggedIn: function () { return CASE.loggedIn; },
  login: function () { liffCalls.push(["login"]); },
  getAccessToken: function () { liffCalls.push(["getAccessToken"]); return CASE.token; }
};
"""


@pytest.fixture(scope="module")
def line():
    with FakeLineApi() as fake:
        yield fake


@pytest.fixture(scope="module")
def liff_app(tmp_path_factory, line):
    from app import Settings, create_app

    tmp = tmp_path_factory.mktemp("liff")
    app = create_app(Settings(database_url=f"sqlite:///{tmp}/liff.sqlite3", var_dir=tmp, start_workers=False,
                              liff_id=LIFF_ID, line_api_base_url=line.base_url))
    with served(app) as base:
        yield app, base


def open_form(page, base: str, **case) -> None:
    """/consult as LINE's in-app browser shows it, the SDK answering as `case` says."""
    script = f"var CASE = {json.dumps({'inClient': True, 'loggedIn': True, 'token': None, 'initFails': False, **case})};"
    page.route(SDK_URL, lambda route: route.fulfill(status=200, content_type="application/javascript",
                                                    body=script + FAKE_SDK))
    page.goto(f"{base}/consult")
    page.wait_for_function("window.liffCalls && window.liffCalls.length > 0")


def token_fields(page) -> list[str]:
    return page.locator("input[name=access_token]").evaluate_all("inputs => inputs.map(i => i.value)")


def fill_profile(page) -> None:
    page.get_by_label("個人情報の取り扱いに同意する").check()
    page.get_by_label("ご相談内容").fill("LINEから、在庫の管理を表計算からクラウドに移したいと相談したい。")
    page.get_by_label("会社名・屋号").fill("有限会社LIFF商店")
    page.get_by_label("業種").select_option("卸売業・小売業")
    page.get_by_label("従業員数").select_option("6〜20人")
    page.get_by_label("市町村").select_option("鹿屋市")
    page.get_by_label("ご担当者名").fill("山下 花子")
    page.get_by_label("電話番号").fill("090-2345-6789")
    page.get_by_label("オンライン").check()


def test_inside_line_the_pages_token_links_the_consultation_to_the_line_user(page, liff_app, line):
    app, base = liff_app
    token = line.issue_liff_token(LINE_USER, channel_id="1657000000")
    open_form(page, base, token=token)
    assert page.evaluate("liffCalls") == [["init", LIFF_ID], ["getAccessToken"]]
    fields = token_fields(page)
    assert fields and set(fields) == {token}
    fill_profile(page)
    page.wait_for_timeout(3100)  # the form's minimum fill time
    page.get_by_role("button", name="次へ（分野の確認）").click()
    expect(page.get_by_role("heading", name="ご相談の分野")).to_be_visible()
    assert set(token_fields(page)) == {token}  # each page of the form gets it again
    page.get_by_role("button", name="次へ（日時の選択）").click()
    expect(page.get_by_role("heading", name="ご相談の日時")).to_be_visible()
    page.locator("input[name=slot]").first.check()
    page.get_by_role("button", name="この内容で申し込む").click()
    expect(page.get_by_role("heading", name="ご相談を受け付けました")).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "consult-liff-done-390.png"), full_page=True)
    with app.extensions["dxdesk"].db.unit_of_work() as s:
        c = s.scalar(select(Consultation).where(Consultation.company == "有限会社LIFF商店"))
    assert (c.user_id, c.channel) == (LINE_USER, "web")
    assert [r.query for r in line.requests("/oauth2/v2.1/verify")][-1] == {"access_token": token}


def test_inside_line_but_not_logged_in_the_page_asks_line_to_log_in_and_sends_no_token(page, liff_app):
    _, base = liff_app
    open_form(page, base, loggedIn=False, token="never-read")
    page.wait_for_function("liffCalls.length >= 2")
    assert page.evaluate("liffCalls") == [["init", LIFF_ID], ["login"]]
    assert set(token_fields(page)) <= {""}


@pytest.mark.parametrize("case", [{"inClient": False, "token": "a-browser-token"}, {"initFails": True}],
                         ids=["outside-line", "sdk-fails"])
def test_outside_line_or_when_the_sdk_fails_the_form_works_as_without_javascript(page, liff_app, case):
    _, base = liff_app
    open_form(page, base, **case)
    page.wait_for_timeout(200)  # what the SDK's promise would lead to, had the page gone on
    assert page.evaluate("liffCalls") == [["init", LIFF_ID]]
    assert set(token_fields(page)) <= {""}
    fill_profile(page)
    page.wait_for_timeout(3100)
    page.get_by_role("button", name="次へ（分野の確認）").click()
    expect(page.get_by_role("heading", name="ご相談の分野")).to_be_visible()
