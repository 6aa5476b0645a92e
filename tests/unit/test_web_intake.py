"""The web form's answers, checked by the LINE intake's rules without Flask or a database."""
from __future__ import annotations

from bot.web_intake import check_answers, receipt_email

FORM = {"consent": "2026-11", "question": "在庫管理をエクセルから卒業したい", "company": "さつま商店", "industry": "卸売業・小売業",
        "employees": "1〜5人", "municipality": "霧島市", "contact_name": "島津 一郎", "phone": "０９０１２３４５６７８",
        "email": "Ichiro@Example.JP", "method": "visit"}


def test_answers_are_normalized_as_the_line_intake_keeps_them():
    answers, errors = check_answers(FORM, "2026-11")
    assert errors == {}
    assert (answers["phone"], answers["email"], answers["region"]) == ("090-1234-5678", "Ichiro@example.jp", "aira_isa")


def test_an_email_consultation_needs_the_address_and_nothing_else_is_lost():
    typed, errors = check_answers({**FORM, "method": "email", "email": ""}, "2026-11")
    assert list(errors) == ["email"] and typed["company"] == "さつま商店"


def test_every_field_over_its_limit_is_named():
    _, errors = check_answers({**FORM, "phone": "0" * 33, "municipality": "市" * 51}, "2026-11")
    assert "32文字以内" in errors["phone"] and "50文字以内" in errors["municipality"]


def test_a_question_may_have_line_breaks_but_a_name_may_not_have_control_characters():
    _, errors = check_answers({**FORM, "question": "一行目\n二行目", "company": "さつま\u200b商店"}, "2026-11")
    assert list(errors) == ["company"]


def test_the_receipt_email_names_the_receipt_number_and_the_time():
    subject, body = receipt_email("かごしまDX相談窓口", "DX2026-00012", "業務効率化・ペーパーレス", "online", "12月4日(金) 9:00〜10:00")
    assert "DX2026-00012" in subject and "受付番号：DX2026-00012" in body and "12月4日(金) 9:00〜10:00" in body
    assert "担当者からご連絡して決めます" in receipt_email("x", "DX2026-00013", "その他", "phone", None)[1]
