"""A Flex message read back for staff: the texts and button labels of the cards the bot really sends."""
from __future__ import annotations

from datetime import date, datetime

from bot import booking
from bot import replies as r
from bot.conversation import BookingSummary, OfferedSlot
from bot.jatime import TOKYO


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 12, day, hour, 0, tzinfo=TOKYO)


def test_a_slot_carousel_lists_each_day_with_the_times_offered():
    slots = [OfferedSlot("tanaka", at(5, 10), at(5, 11)), OfferedSlot("tanaka", at(5, 11), at(5, 12))]
    carousel = r.flex("ご相談の日時を選んでください", {"type": "carousel", "contents": [
        booking._day_bubble(date(2026, 12, 5), slots),
        booking._day_bubble(date(2026, 12, 7), [OfferedSlot("suzuki", at(7, 13), at(7, 14))])]})

    summary = r.flex_summary(carousel)

    assert summary.splitlines() == ["ご相談の日時を選んでください", "・12月5日(土)：10:00〜11:00 / 11:00〜12:00",
                                    "・12月7日(月)：13:00〜14:00"]


def test_a_confirmation_card_reads_as_its_title_rows_and_buttons():
    summary = BookingSummary(7, at(5, 10), at(5, 11), "online", "田中 一郎", "confirmed",
                             meet_url="https://meet.google.com/abc-defg-hij", receipt_no="DX2026-00007")
    [message] = booking.confirmation(summary, changed=True, previous=(at(4, 10), at(4, 11)))

    text = r.flex_summary(message)

    assert text.startswith("ご予約を変更しました：12月5日(土) 10:00〜11:00\nご予約を変更しました：")
    for shown in ("受付番号 DX2026-00007", "変更前 12月4日(金) 10:00〜11:00", "変更後 12月5日(土) 10:00〜11:00",
                  "担当 田中 一郎", "Google Meetを開く", "予約の確認・変更"):
        assert shown in text
    assert "\n" not in text.split("\n", 1)[1]  # one bubble: one line after the alt text


def test_a_message_without_bubbles_or_texts_is_its_alt_text_alone():
    assert r.flex_summary({"type": "flex", "altText": "お知らせ", "contents": {"type": "bubble"}}) == "お知らせ"
    assert r.flex_summary({"type": "flex", "contents": {"type": "carousel", "contents": []}}) == ""


def test_spans_and_horizontal_rows_are_read_as_one_piece():
    bubble = {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": [
        {"type": "text", "contents": [{"type": "span", "text": "合計 "}, {"type": "span", "text": "3件"}]},
        {"type": "box", "layout": "horizontal", "contents": [{"type": "text", "text": "方法"},
                                                             {"type": "text", "text": "電話"}]},
        {"type": "image", "url": "https://example.jp/a.png"}]}}

    assert r.flex_summary(r.flex("一覧", bubble)) == "一覧\n合計 3件：方法 電話"
