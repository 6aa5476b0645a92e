"""担当者の対応待ち in headless Chromium with JavaScript off: the count in the navigation, and a long conversation that
opens at its newest message."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from bot import replies as r
from bot.conversation import State
from storage.models import ConversationRow, LineUser
from storage.outbound import queue_messages
from storage.staff import add_user

pytestmark = pytest.mark.browser

PASSWORD = "kagoshima-dx-2026"
USER = "U" + "e" * 32


@pytest.fixture
def no_script_page(browser):
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", viewport={"width": 390, "height": 844},
                                  java_script_enabled=False)
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


def waiting_with_a_long_transcript(db) -> None:
    start = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    with db.unit_of_work() as s:
        s.add(LineUser(id=USER, source="line", company="桜島製作所", created_at=start, updated_at=start))
        s.flush()
        s.add(ConversationRow(user_id=USER, state=State.WITH_STAFF, data={}, updated_at=start,
                              staff_waiting_since=start))
        for n in range(1, 41):
            queue_messages(s, "line", USER, [r.text(f"メッセージ{n}番目")], start + timedelta(minutes=n))
        s.commit()


def open_from_the_queue(page, base: str, login: str):
    page.goto(f"{base}/admin/login")
    page.get_by_label("ログインID").fill(login)
    page.get_by_label("パスワード", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    nav = page.get_by_role("navigation", name="メインメニュー")
    expect(nav.locator(".badge")).to_have_text("1件の未返信")
    nav.get_by_role("link", name="会話").click()
    page.get_by_role("link", name="桜島製作所").click()


@pytest.fixture(scope="module")
def waiting(live_app):
    db = live_app[0].extensions["dxdesk"].db
    waiting_with_a_long_transcript(db)
    add_user(db, "e2e-coordinator", PASSWORD, "coordinator", datetime.now(UTC))
    return live_app[1]


def test_a_waiting_conversation_is_counted_and_opens_at_its_newest_message_without_javascript(no_script_page,
                                                                                            waiting):
    open_from_the_queue(no_script_page, waiting, "e2e-coordinator")

    expect(no_script_page.get_by_text("メッセージ40番目")).to_be_in_viewport()
    expect(no_script_page.get_by_text("メッセージ1番目", exact=True)).not_to_be_in_viewport()
    expect(no_script_page.get_by_label("返信の内容")).to_be_focused()
