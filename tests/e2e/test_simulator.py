"""The simulator page in headless Chromium, driving the real bot: intake, escaping, rich menu, users, pickers."""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

RICH_MENU_LABELS = ["相談を申し込む", "予約の確認・変更", "セミナー", "よくある質問・補助金", "出張相談会", "担当者と話す"]


def log(page: Page):
    return page.get_by_role("log", name="トーク")


def type_and_send(page: Page, text: str) -> None:
    page.get_by_label("メッセージ", exact=True).fill(text)
    page.get_by_role("button", name="送信", exact=True).click()


def chip(page: Page, label: str):
    return page.get_by_role("group", name="クイックリプライ").get_by_role("button", name=label, exact=True)


def bot_says(page: Page, text: str | re.Pattern) -> None:
    expect(log(page).locator(".row-bot").filter(has_text=text).last).to_be_visible()


def test_a_whole_intake_by_chips_and_typing_ends_with_a_receipt_number(simulator):
    page = simulator
    bot_says(page, "友だち追加ありがとうございます")
    expect(page.get_by_role("link", name="プライバシーポリシーを読む")).to_have_attribute("target", "_blank")
    page.get_by_role("button", name="同意して始める", exact=True).click()
    bot_says(page, "ご相談内容を自由にお書きください")

    type_and_send(page, "紙の請求書をやめて、会計ソフトで管理したいです")
    bot_says(page, re.compile("のご相談として承ります。よろしいですか？"))
    chip(page, "はい").click()
    expect(chip(page, "別の分野を選ぶ")).to_have_count(0)
    bot_says(page, "会社名（屋号）を教えてください")

    type_and_send(page, "霧島テスト工業")
    bot_says(page, "業種を選んでください")
    chip(page, "製造業").click()
    bot_says(page, "従業員数")
    chip(page, "1〜5人").click()
    bot_says(page, "市町村を教えてください")
    type_and_send(page, "霧島市")
    bot_says(page, "ご担当者のお名前を教えてください")
    type_and_send(page, "鹿児島 花子")
    bot_says(page, "電話番号を教えてください")
    type_and_send(page, "099-123-4567")
    bot_says(page, "メールアドレスを教えてください")
    chip(page, "スキップ").click()
    bot_says(page, "ご希望の相談方法を選んでください")
    chip(page, "オンライン").click()

    bot_says(page, "霧島テスト工業")
    page.get_by_role("button", name="この内容で申し込む", exact=True).click()
    bot_says(page, re.compile(r"受付番号：\S+"))


@pytest.mark.parametrize("typed", [
    "<b>x</b><script>window.__injected = true</script>",
    '<img src="nowhere" onerror="window.__injected = true">',
])
def test_html_typed_by_the_user_is_shown_as_text(simulator, typed):
    page = simulator
    bot_says(page, "友だち追加ありがとうございます")
    type_and_send(page, typed)
    bubble = log(page).locator(".row-user .bubble").filter(has_text=typed)
    expect(bubble).to_have_text(typed)
    expect(log(page).locator("b, script, img")).to_have_count(0)
    assert page.evaluate("window.__injected") is None


def test_the_rich_menu_shows_six_buttons_and_staff_answers_a_tap_on_its_last_one(simulator):
    page = simulator
    menu = page.get_by_role("navigation", name="リッチメニュー")
    expect(menu.locator(".richmenu-grid").get_by_role("button")).to_have_text(RICH_MENU_LABELS)
    menu.get_by_role("button", name="担当者と話す", exact=True).click()
    expect(log(page).locator(".row-user .bubble").last).to_have_text("担当者と話す")
    bot_says(page, "担当者におつなぎ")


def test_the_menu_bar_collapses_and_reopens_the_rich_menu(simulator):
    page = simulator
    menu = page.get_by_role("navigation", name="リッチメニュー")
    toggle = menu.get_by_role("button", name=re.compile("^メニュー"))
    grid_button = menu.locator(".richmenu-grid").get_by_role("button", name="セミナー", exact=True)
    expect(grid_button).to_be_visible()
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(grid_button).to_be_hidden()
    toggle.click()
    expect(grid_button).to_be_visible()


def test_switching_users_shows_each_their_own_history(simulator):
    page = simulator
    users = page.get_by_label("ユーザー", exact=True)
    bot_says(page, "友だち追加ありがとうございます")
    type_and_send(page, "最初のユーザーの書き込み")
    expect(log(page)).to_contain_text("最初のユーザーの書き込み")
    first = users.input_value()

    users.select_option(label="＋ 新しいユーザー")
    expect(users.locator("option:checked")).to_have_text("ユーザー2")
    assert re.fullmatch(r"sim-[A-Za-z0-9_-]{20,}", users.input_value()) and users.input_value() != first
    bot_says(page, "友だち追加ありがとうございます")
    expect(log(page)).not_to_contain_text("最初のユーザーの書き込み")

    users.select_option(first)
    expect(log(page)).to_contain_text("最初のユーザーの書き込み")
    page.reload()
    expect(users).to_have_value(first)
    expect(log(page)).to_contain_text("最初のユーザーの書き込み")


def test_another_browser_gets_users_of_its_own_and_cannot_read_this_ones_chat(simulator, browser, live_server):
    page = simulator
    bot_says(page, "友だち追加ありがとうございます")
    type_and_send(page, "鹿児島 花子です")
    expect(log(page)).to_contain_text("鹿児島 花子です")
    mine = page.get_by_label("ユーザー", exact=True).input_value()

    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo")
    try:
        other = context.new_page()
        other.set_default_timeout(10_000)
        other.add_init_script(f"localStorage.setItem('dxdesk.simulator.user', {json.dumps(mine)})")
        other.goto(f"{live_server}/simulator")
        bot_says(other, "友だち追加ありがとうございます")
        expect(other.get_by_label("ユーザー", exact=True)).not_to_have_value(mine)
        expect(log(other)).not_to_contain_text("鹿児島 花子です")
        answer = other.request.get(f"{live_server}/simulator/api/messages?user={mine}&after=0")
        assert answer.status == 404 and "鹿児島 花子です" not in answer.text()
    finally:
        context.close()


def test_a_failed_send_is_explained_and_keeps_what_was_typed(simulator):
    page = simulator
    bot_says(page, "友だち追加ありがとうございます")
    page.route("**/simulator/api/send", lambda route: route.fulfill(
        status=503, json={"error": "ただいま処理できませんでした。"}))
    type_and_send(page, "届かなかった文章")
    expect(page.get_by_role("alert")).to_contain_text("ただいま処理できませんでした。")
    expect(page.get_by_label("メッセージ", exact=True)).to_have_value("届かなかった文章")

    page.unroute("**/simulator/api/send")
    page.get_by_role("button", name="送信", exact=True).click()
    expect(log(page).locator(".row-user .bubble").last).to_have_text("届かなかった文章")


@pytest.mark.parametrize("mode, input_type, value, params, shown", [
    ("datetime", "datetime-local", "2026-12-01T10:00", {"datetime": "2026-12-01T10:00"}, "12月1日(火) 10:00"),
    ("date", "date", "2026-12-01", {"date": "2026-12-01"}, "12月1日(火)"),
    ("time", "time", "10:00", {"time": "10:00"}, "10:00"),
])
def test_a_datetime_picker_chip_opens_the_native_picker_and_posts_its_value(
        page, live_server, mode, input_type, value, params, shown):
    """Against canned API answers, since the bot decides when it offers a picker."""
    limits = {"datetime": ("2026-11-01T09:00", "2027-01-31T17:00"), "date": ("2026-11-01", "2027-01-31"),
              "time": ("09:00", "17:00")}[mode]
    action = {"type": "datetimepicker", "label": "日時を選ぶ", "data": "action=pick", "mode": mode,
              "initial": value.lower(), "min": limits[0], "max": limits[1]}
    offered = {"id": 1, "direction": "out", "at": "2026-11-20T10:00:00+09:00", "message": {
        "type": "text", "text": "ご希望の日時を選んでください。",
        "quickReply": {"items": [{"type": "action", "action": action}]}}}
    posted = []
    page.route("**/simulator/api/messages?*", lambda route: route.fulfill(json={"messages": [offered]}))
    page.route("**/simulator/api/send", lambda route: (
        posted.append(json.loads(route.request.post_data)), route.fulfill(json={"messages": []})))
    page.goto(f"{live_server}/simulator")

    chip(page, "日時を選ぶ").click()
    picker = page.locator("#picker-input")
    expect(picker).to_have_attribute("type", input_type)
    expect(picker).to_have_attribute("min", limits[0])
    expect(picker).to_have_value(value)
    page.get_by_role("button", name="決定", exact=True).click()

    expect(page.get_by_role("dialog")).to_be_hidden()
    page.wait_for_function("document.querySelector('#typing').hidden")
    assert posted[-1]["event"] == {"type": "postback", "postback": {"data": "action=pick", "params": params},
                                   "displayText": shown}


def test_a_tapped_time_is_confirmed_before_it_is_booked_and_day_headers_are_coloured(simulator):
    page = simulator
    page.get_by_role("button", name="同意して始める", exact=True).click()
    type_and_send(page, "紙の請求書をやめて、会計ソフトで管理したいです")
    chip(page, "はい").click()
    for answer in ("霧島テスト工業", "製造業", "3人", "霧島市", "鹿児島 花子", "099-123-4567"):
        type_and_send(page, answer)
    chip(page, "スキップ").click()
    chip(page, "電話").click()
    page.get_by_role("button", name="この内容で申し込む", exact=True).click()
    bot_says(page, "ご相談の日時を選んでください")

    headers = page.locator(".row-bot .flex-header > div")
    expect(headers.first).to_be_visible()
    colours = {"土": "rgb(26, 102, 204)", "日": "rgb(217, 54, 54)", "祝": "rgb(217, 54, 54)"}
    for header in headers.all():
        day = header.inner_text()
        kind = "祝" if "祝" in day else re.search(r"\((.)", day).group(1)
        expected = colours.get(kind, "rgb(6, 199, 85)")
        assert header.evaluate("node => getComputedStyle(node).backgroundColor") == expected, day

    first_time = log(page).get_by_role("button", name=re.compile(r"^\d+:\d\d〜\d+:\d\d$")).first
    first_time.click()
    bot_says(page, "この日時で予約しますか？")
    expect(log(page).locator(".row-bot").filter(has_text="ご予約が確定しました")).to_have_count(0)
    page.get_by_role("button", name="予約する", exact=True).click()
    confirmed = log(page).locator(".row-bot").filter(has_text="ご予約が確定しました").last
    expect(confirmed).to_contain_text("受付番号")
    expect(confirmed).to_contain_text("業務効率化")
