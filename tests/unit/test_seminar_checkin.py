"""The check-in QR messages a registrant gets in LINE, and the check-in token kept out of the access log."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from bot.seminar_checkin import checkin_messages, checkin_url, qr_image_url
from storage.logids import MaskFeedTokens

TOKEN = "Zq3_x-Y7abcDEF0123456789abcdefGH"


def registration(mode: str = "onsite", status: str = "registered"):
    return SimpleNamespace(mode=mode, status=status, checkin_token=TOKEN)


def test_a_seated_onsite_registrant_gets_a_text_and_the_qr_image_on_the_public_address():
    text, image = checkin_messages(registration(), "https://dx.example.jp")
    assert text["type"] == "text" and "会場の受付でこの画像をお見せください" in text["text"]
    assert image == {"type": "image", "originalContentUrl": f"https://dx.example.jp/checkin/{TOKEN}.png",
                     "previewImageUrl": f"https://dx.example.jp/checkin/{TOKEN}.png"}


@pytest.mark.parametrize("mode, status", [("online", "registered"), ("onsite", "waiting"), ("onsite", "cancelled")])
def test_no_qr_code_for_an_online_waiting_or_cancelled_registration(mode, status):
    assert checkin_messages(registration(mode, status), "https://dx.example.jp") == []


def test_the_code_opens_the_console_page_and_a_trailing_slash_does_not_double():
    assert checkin_url("https://dx.example.jp/", TOKEN) == f"https://dx.example.jp/admin/checkin/{TOKEN}"
    assert qr_image_url("https://dx.example.jp/", TOKEN) == f"https://dx.example.jp/checkin/{TOKEN}.png"


@pytest.mark.parametrize("path, shown", [(f"/checkin/{TOKEN}.png", "/checkin/***.png"),
                                         (f"/admin/checkin/{TOKEN}", "/admin/checkin/***")])
def test_the_access_log_masks_the_check_in_token(path, shown):
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '127.0.0.1 - - "GET %s HTTP/1.1" 200 -',
                               (path,), None)
    MaskFeedTokens().filter(record)
    assert TOKEN not in record.getMessage() and shown in record.getMessage()
