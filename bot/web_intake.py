"""The web form's intake: one page of answers checked by the LINE intake's own rules, with reasons per field."""
from __future__ import annotations

import re
import unicodedata
from typing import Any

from bot.intake import (
    EMPLOYEES, INDUSTRIES, MAX_COMPANY, MAX_CONTACT_NAME, MAX_QUESTION, METHODS, company_problem, contact_name_problem,
    question_problem,
)
from bot.municipalities import match_municipality
from bot.validation import parse_email, parse_phone

# What a text box takes at most: the LINE intake's limits (and the columns'), the phone's with room for spaces.
LIMITS = {"question": MAX_QUESTION, "company": MAX_COMPANY, "contact_name": MAX_CONTACT_NAME, "phone": 32,
          "email": 254, "municipality": 50, "industry": 50, "employees": 50, "method": 10}
FIELDS = tuple(LIMITS)
EMPLOYEE_LABELS = tuple(label for label, _, _ in EMPLOYEES)
# Markup has no place in any answer: a tag, a script URL or an event handler is refused, not stored.
_MARKUP = re.compile(r"<\s*/?\s*[a-z!?]|javascript\s*:|\bon[a-z]+\s*=", re.IGNORECASE)


def _bad_characters(value: str, multiline: bool) -> bool:
    """Control characters (a NUL, which PostgreSQL refuses) are refused; the question may have line breaks."""
    allowed = "\n\r\t" if multiline else ""
    return any(unicodedata.category(c) in ("Cc", "Cf") and c not in allowed for c in value)


def check_answers(form: dict[str, str], consent_version: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(answers, {}) ready for a consultation, or (what was typed, {field: reason in Japanese}).

    The answers are normalized the way the LINE intake keeps them: the phone hyphenated, the municipality's
    official name with its region.
    """
    typed = {f: (form.get(f) or "").strip() for f in FIELDS}
    errors: dict[str, str] = {}
    for field, value in typed.items():
        if len(value) > LIMITS[field]:
            errors[field] = f"{LIMITS[field]}文字以内で入力してください（いま{len(value)}文字です）。"
        elif _MARKUP.search(value):
            errors[field] = "「<」で始まるタグやスクリプトのような入力は受け付けていません。文字だけで入力してください。"
        elif _bad_characters(value, multiline=field == "question"):
            errors[field] = "使えない文字（制御文字）が含まれています。入力し直してください。"
    answers: dict[str, Any] = {}
    checks = {
        "question": lambda v: question_problem(v) if v else "ご相談内容を入力してください。",
        "company": lambda v: company_problem(v) if v else "会社名（屋号）を入力してください。",
        "industry": lambda v: None if v in INDUSTRIES else "業種を選んでください。",
        "employees": lambda v: None if v in EMPLOYEE_LABELS else "従業員数を選んでください。",
        "municipality": lambda v: None if match_municipality(v) else "事業所のある市町村を選んでください。",
        "contact_name": lambda v: contact_name_problem(v) if v else "ご担当者のお名前を入力してください。",
        "method": lambda v: None if v in METHODS else "ご希望の相談方法を選んでください。",
    }
    for field, check in checks.items():
        if field not in errors and (reason := check(typed[field])):
            errors[field] = reason
        answers[field] = typed[field]
    if "municipality" not in errors:
        found = match_municipality(typed["municipality"])
        answers["municipality"], answers["region"] = found.name, found.region
    for field, parse in (("phone", parse_phone), ("email", parse_email)):
        answers[field] = None
        if typed[field] and field not in errors:
            answers[field], reason = parse(typed[field])
            if reason:
                errors[field] = reason
    _require_contact(typed, answers, errors)
    if form.get("consent") != consent_version:
        errors["consent"] = ("個人情報の取り扱いが更新されました。内容をご確認のうえ、あらためて同意してください。"
                             if form.get("consent") else "個人情報の取り扱いに同意いただくと、お申し込みいただけます。")
    return (typed, errors) if errors else (answers, {})


def _require_contact(typed: dict[str, str], answers: dict[str, Any], errors: dict[str, str]) -> None:
    """As in LINE: a phone consultation needs the phone, an email one the address, and any one at least one of them."""
    method = typed["method"]
    if method == "phone" and not typed["phone"]:
        errors.setdefault("phone", "お電話でのご相談には電話番号が必要です。日中につながる電話番号を入力してください。")
    elif method == "email" and not typed["email"]:
        errors.setdefault("email", "メールでのご相談のため、メールアドレスが必要です。")
    elif not typed["phone"] and not typed["email"]:
        errors.setdefault("phone", "ご連絡のため、電話番号かメールアドレスのどちらかを入力してください。")


def receipt_email(program_name: str, receipt_no: str, category: str, method: str, when: str | None,
                  contact_phone: str = "") -> tuple[str, str]:
    """The email that tells the person the form's consultation is on record: subject and plain-text body."""
    rows = [("受付番号", receipt_no), ("分野", category), ("ご希望の相談方法", METHODS.get(method, method)),
            ("ご相談の日時", when or "担当者からご連絡して決めます")]
    lines = [f"{program_name}にご相談いただき、ありがとうございます。", "ご相談を受け付けました。", "",
             *(f"{k}：{v}" for k, v in rows), "",
             "担当のDXコーディネーターからご連絡します。お問い合わせの際は受付番号をお伝えください。"]
    if contact_phone:
        lines.append(f"お電話：{contact_phone}")
    lines += ["", "--", f"このメールは{program_name}のWeb相談フォームから自動で送信しています。"
              "お心当たりのない場合は、お手数ですがこのメールを破棄してください。"]
    return f"【{program_name}】ご相談を受け付けました（受付番号 {receipt_no}）", "\n".join(lines) + "\n"
