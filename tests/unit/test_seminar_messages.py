"""The announcement card and the reminders' content per mode, from a seminar's fields alone."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from bot.config import ConfigError, load_config
from bot.seminar_messages import announcement, reminder

SEMINAR = SimpleNamespace(
    id=7, title="はじめてのDX", description="業務のデジタル化の第一歩を学びます。",
    start_at=datetime(2026, 12, 1, 5, 0, tzinfo=UTC), end_at=datetime(2026, 12, 1, 7, 0, tzinfo=UTC),
    venue="かごゆいテラス（鹿児島県庁18階）", venue_address="鹿児島県鹿児島市鴨池新町10番1号",
    map_url="https://www.google.com/maps/search/?api=1&query=x", online_url="https://meet.example.jp/dx",
    online_seats=50, subsidy_briefing=True)


def texts(messages: list[dict]) -> str:
    return json.dumps(messages, ensure_ascii=False)


def test_the_announcement_is_a_card_of_the_seminar_with_a_register_button_carrying_its_id():
    [message] = announcement(SEMINAR)
    assert message["type"] == "flex" and "はじめてのDX" in message["altText"]
    shown = texts([message])
    assert "12月1日(火) 14:00〜16:00" in shown and "補助金" in shown and "meet.example.jp" not in shown
    button = message["contents"]["footer"]["contents"][0]["action"]
    assert (button["label"], button["data"]) == ("申し込む", "action=seminar&id=7")


@pytest.mark.parametrize("mode, present, absent", [
    ("online", ["https://meet.example.jp/dx"], ["かごゆいテラス", "google.com/maps"]),
    ("onsite", ["かごゆいテラス（鹿児島県庁18階）", "鴨池新町", "google.com/maps"], ["meet.example.jp"]),
])
def test_a_reminder_gives_online_participants_the_url_and_on_site_ones_the_venue(mode, present, absent):
    shown = texts(reminder(SEMINAR, "before", mode, 3))
    assert "3日後" in shown and "12月1日(火) 14:00〜16:00" in shown
    assert all(p in shown for p in present) and not any(a in shown for a in absent)
    assert "本日" in texts(reminder(SEMINAR, "day_of", mode, 3))


def test_the_seminars_section_is_read_and_a_bad_time_refused(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[seminars]\ndays_before = 2\ndays_before_at = "09:30"\non_the_day_at = "07:00"\n')
    assert (load_config(good).seminars.days_before, load_config(good).seminars.on_the_day_at) == (2, "07:00")
    bad = tmp_path / "bad.toml"
    bad.write_text('[seminars]\non_the_day_at = "8時"\n')
    with pytest.raises(ConfigError):
        load_config(bad)
