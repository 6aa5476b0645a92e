"""Checking and normalizing the phone numbers and email addresses people type, with reasons in Japanese."""
from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

PHONE_EXAMPLE = "例: 099-286-2111、090-1234-5678"
EMAIL_EXAMPLE = "例: taro@example.jp"

# Every dash people (and their IMEs) type between digits; NFKC leaves most of them alone.
_DASHES = str.maketrans({c: "-" for c in "ー‐‑‒–—―−﹣－ｰ"})

# Area codes whose length is certain from their first digits: Kagoshima's own, and the two-digit 03 and 06.
# Longest prefix first, because 09969 (甑島) lies inside 0996. Elsewhere the length would need the national
# table, so the number keeps the grouping the person typed, or stays plain digits.
_AREA_CODES = ("09969", "0993", "0994", "0995", "0996", "0997", "0986", "099", "03", "06")


def _clean_phone(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(_DASHES).strip()


def parse_phone(text: str) -> tuple[str | None, str | None]:
    """(090-1234-5678, None) for a Japanese phone number, or (None, what is wrong and an example).

    The result is hyphenated: mobile, IP, free-dial and the area codes in _AREA_CODES are grouped the
    standard way; any other fixed line keeps the grouping typed, or is plain digits when none was.
    """
    s = _clean_phone(text)
    # +81 stands for the leading 0 of the national form; "+81 (0)99" and "+81 099" repeat it.
    s = re.sub(r"^\+81[\s-]*(?:\(?0\)?)?[\s-]*\(?", "0", s)
    if not re.fullmatch(r"[\d\s()-]*", s):
        return None, f"電話番号に使えない文字が含まれています。数字とハイフンで入力してください（{PHONE_EXAMPLE}）。"
    groups = re.findall(r"\d+", s)
    digits = "".join(groups)
    if not digits:
        return None, f"電話番号を入力してください（{PHONE_EXAMPLE}）。"
    if not digits.startswith("0"):
        return None, f"電話番号は市外局番の「0」から入力してください（{PHONE_EXAMPLE}）。"
    expected, layout = _phone_kind(digits)
    if expected is None:
        return None, f"この番号にはこちらからお電話できないことがあります。固定電話か携帯電話の番号を入力してください（{PHONE_EXAMPLE}）。"
    if len(digits) != expected:
        return None, (
            f"{layout[0]}の番号は{expected}桁ですが、{len(digits)}桁入力されています。"
            f"もう一度ご確認ください（例: {layout[1]}）。"
        )
    return _hyphenate(digits, groups), None


def _phone_kind(digits: str) -> tuple[int | None, tuple[str, str]]:
    """The digit count a number of this kind has, and how to name it in a reason."""
    if digits[:3] in ("070", "080", "090"):
        return 11, ("携帯電話", "090-1234-5678")
    if digits[:3] == "050":
        return 11, ("IP電話（050）", "050-1234-5678")
    if digits[:4] == "0120":
        return 10, ("フリーダイヤル（0120）", "0120-123-456")
    if digits[:4] == "0800":
        return 11, ("フリーダイヤル（0800）", "0800-123-4567")
    # Area codes never start 00 (international) or 0A0, and 0570/0180/0990 are charged services.
    if "0" not in digits[1:3] and digits[:4] not in ("0570", "0180", "0990"):
        return 10, ("固定電話", "099-286-2111")
    return None, ("", "")


def _hyphenate(digits: str, groups: list[str]) -> str:
    if digits[:4] in ("0120", "0800"):
        return f"{digits[:4]}-{digits[4:7]}-{digits[7:]}"
    if len(digits) == 11:
        return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    code = next((c for c in _AREA_CODES if digits.startswith(c)), None)
    if code:
        # Area code and local exchange together are always six digits; the subscriber number is four.
        return f"{code}-{digits[len(code):6]}-{digits[6:]}"
    if len(groups) == 3 and 2 <= len(groups[0]) <= 5 and len(groups[2]) == 4:
        return "-".join(groups)
    return digits


# Mistakes seen in addresses at the big Japanese providers; a real domain is never rejected as a typo.
_DOMAIN_TYPOS = {
    "gmail.com": ("gmail.con", "gmail.co", "gmail.cm", "gmail.om", "gmail.comm", "gmai.com", "gmial.com",
                  "gamil.com", "gmali.com", "gmil.com", "gmail.jp", "gmail.co.jp"),
    "yahoo.co.jp": ("yahoo.co.jo", "yahoo.co.j", "yahoo.cojp", "yahoo.co.jpp", "yaho.co.jp", "yahooo.co.jp",
                    "yahoo.jp", "yahoo.ne.jp"),
    "icloud.com": ("icloud.con", "icoud.com", "iclod.com", "icloud.co", "icloud.jp"),
    "outlook.com": ("outlook.con", "outlok.com", "outlook.co"),
    "outlook.jp": ("outlook.jo",),
    "hotmail.com": ("hotmail.con", "hotmal.com", "hotmail.co"),
    "docomo.ne.jp": ("docomo.ne.jo", "docomo.nejp", "docomo.co.jp", "docomo.ne.j", "docomo.jp"),
    "ezweb.ne.jp": ("ezweb.ne.jo", "ezweb.nejp", "ezweb.co.jp", "ezweb.ne.j"),
    "softbank.ne.jp": ("softbank.ne.jo", "softbank.nejp", "softbank.co.jp"),
}
_TYPO_FIX = {typo: right for right, typos in _DOMAIN_TYPOS.items() for typo in typos}
_TLD_TYPOS = {".con": ".com", ".cojp": ".co.jp", ".nejp": ".ne.jp", ".orjp": ".or.jp", ".co.jo": ".co.jp",
              ".ne.jo": ".ne.jp", ".or.jo": ".or.jp", ".lg.jo": ".lg.jp"}

# Japanese mobile carriers once issued local parts with ".." or a dot before "@", still in use, so the local
# part is checked for its characters only, not RFC 5322's dot placement.
_LOCAL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def parse_email(text: str) -> tuple[str | None, str | None]:
    """(address, None) with the domain in lower case, or (None, what is wrong and an example)."""
    s = unicodedata.normalize("NFKC", text).strip()
    if not s:
        return None, f"メールアドレスを入力してください（{EMAIL_EXAMPLE}）。"
    if re.search(r"\s", s):
        return None, f"メールアドレスに空白が入っています。空白を除いて入力してください（{EMAIL_EXAMPLE}）。"
    if "," in s:
        return None, f"「,」（カンマ）が入っています。「.」（ドット）の間違いではありませんか（{EMAIL_EXAMPLE}）。"
    if s.count("@") != 1:
        problem = "「@」が見つかりません" if "@" not in s else "「@」が2つ以上あります"
        return None, f"{problem}。メールアドレスをもう一度ご確認ください（{EMAIL_EXAMPLE}）。"
    if not s.isascii():
        return None, f"メールアドレスは半角の英数字と記号で入力してください（{EMAIL_EXAMPLE}）。"
    if len(s) > 254:
        return None, "メールアドレスが長すぎます（254文字まで）。別のアドレスを入力してください。"
    local, domain = s.split("@")
    domain = domain.lower()
    if not _LOCAL.fullmatch(local):
        return None, f"「@」の前の部分が正しくありません。もう一度ご確認ください（{EMAIL_EXAMPLE}）。"
    hint = _typo_hint(domain)
    if hint:
        return None, f"「{domain}」は「{hint}」の間違いではありませんか。もう一度ご確認ください。"
    labels = domain.split(".")
    if len(labels) < 2:
        return None, f"「@」の後ろに「.」（ドット）がありません。もう一度ご確認ください（{EMAIL_EXAMPLE}）。"
    if not all(_LABEL.fullmatch(label) for label in labels) or not labels[-1].isalpha():
        return None, f"「@」の後ろの部分（{domain}）が正しくありません。もう一度ご確認ください（{EMAIL_EXAMPLE}）。"
    return f"{local}@{domain}", None


def _typo_hint(domain: str) -> str | None:
    if domain in _TYPO_FIX:
        return _TYPO_FIX[domain]
    for typo, right in _TLD_TYPOS.items():
        if domain.endswith(typo):
            return domain[: -len(typo)] + right
    return None


class Contact(NamedTuple):
    phone: str | None
    email: str | None
    reason: str | None


# Loose shapes of what may be an address or a number in a message; parse_email and parse_phone then judge.
# A comma is taken into the domain only before a letter ("example,jp"), so "a@b.jp,090-..." still splits.
_EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9.!#$%&'*+=?^_`{|}~-]*@[A-Za-z0-9_-]*(?:(?:\.|,(?=[A-Za-z]))[A-Za-z0-9_-]+)*")
_PHONE_IN_TEXT = re.compile(r"(?:\+81)?[\s(]*\d[\d\s()-]*\d\)?")


def parse_contact(text: str) -> Contact:
    """The first valid phone number and email address in a message; a reason only when neither is valid."""
    s = _clean_phone(text)
    emails = [m.group() for m in _EMAIL_IN_TEXT.finditer(s)]
    rest = _EMAIL_IN_TEXT.sub(" ", s)
    phones = [m.group() for m in _PHONE_IN_TEXT.finditer(rest) if sum(c.isdigit() for c in m.group()) >= 6]
    email_results = [parse_email(e) for e in emails]
    phone_results = [parse_phone(p) for p in phones]
    email = next((value for value, _ in email_results if value), None)
    phone = next((value for value, _ in phone_results if value), None)
    if phone or email:
        return Contact(phone, email, None)
    reasons = [reason for _, reason in email_results + phone_results]
    if not reasons:
        reasons = ["電話番号かメールアドレスを入力してください（例: 090-1234-5678 / taro@example.jp）。"]
    return Contact(None, None, reasons[0])
