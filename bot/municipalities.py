"""Kagoshima Prefecture's 43 municipalities, their seven regions, and matching free text to them."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Municipality:
    name: str
    kana: str
    region: str


@dataclass(frozen=True)
class Region:
    id: str
    name: str
    municipalities: tuple[Municipality, ...]


# The prefecture's regional divisions (地域振興局の管轄), in the prefecture's usual order.
_TABLE = (
    ("kagoshima", "鹿児島", (
        ("鹿児島市", "かごしまし"), ("日置市", "ひおきし"), ("いちき串木野市", "いちきくしきのし"),
        ("三島村", "みしまむら"), ("十島村", "としまむら"),
    )),
    ("nansatsu", "南薩", (
        ("枕崎市", "まくらざきし"), ("指宿市", "いぶすきし"), ("南さつま市", "みなみさつまし"),
        ("南九州市", "みなみきゅうしゅうし"),
    )),
    ("hokusatsu", "北薩", (
        ("阿久根市", "あくねし"), ("出水市", "いずみし"), ("薩摩川内市", "さつませんだいし"),
        ("さつま町", "さつまちょう"), ("長島町", "ながしまちょう"),
    )),
    ("aira_isa", "姶良・伊佐", (
        ("霧島市", "きりしまし"), ("伊佐市", "いさし"), ("姶良市", "あいらし"), ("湧水町", "ゆうすいちょう"),
    )),
    ("osumi", "大隅", (
        ("鹿屋市", "かのやし"), ("垂水市", "たるみずし"), ("曽於市", "そおし"), ("志布志市", "しぶしし"),
        ("大崎町", "おおさきちょう"), ("東串良町", "ひがしくしらちょう"), ("錦江町", "きんこうちょう"),
        ("南大隅町", "みなみおおすみちょう"), ("肝付町", "きもつきちょう"),
    )),
    ("kumage", "熊毛", (
        ("西之表市", "にしのおもてし"), ("中種子町", "なかたねちょう"), ("南種子町", "みなみたねちょう"),
        ("屋久島町", "やくしまちょう"),
    )),
    ("amami", "奄美", (
        ("奄美市", "あまみし"), ("大和村", "やまとそん"), ("宇検村", "うけんそん"), ("瀬戸内町", "せとうちちょう"),
        ("龍郷町", "たつごうちょう"), ("喜界町", "きかいちょう"), ("徳之島町", "とくのしまちょう"),
        ("天城町", "あまぎちょう"), ("伊仙町", "いせんちょう"), ("和泊町", "わどまりちょう"),
        ("知名町", "ちなちょう"), ("与論町", "よろんちょう"),
    )),
)

REGIONS: tuple[Region, ...] = tuple(
    Region(rid, rname, tuple(Municipality(name, kana, rid) for name, kana in towns))
    for rid, rname, towns in _TABLE
)
ALL: tuple[Municipality, ...] = tuple(m for r in REGIONS for m in r.municipalities)

# People write the prefecture and the district (郡) in front of a town; neither names a municipality.
_NOISE = re.compile(
    "鹿児島県|かごしまけん|(?:鹿児島|薩摩|出水|姶良|曽於|肝属|熊毛|大島)郡"
    "|(?:かごしま|さつま|いずみ|あいら|そお|きもつき|くまげ|おおしま)ぐん"
)
_KANA_SUFFIXES = ("ちょう", "そん", "むら", "し")


def _kana_stem(kana: str) -> str:
    return next(kana[: -len(s)] for s in _KANA_SUFFIXES if kana.endswith(s))


def _normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    # Katakana to hiragana, so キリシマ and ｷﾘｼﾏ (already widened by NFKC) read as きりしま.
    text = "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in text)
    return _NOISE.sub("", re.sub(r"\s+", "", text))


# Names are matched anywhere in the text ("鹿児島県霧島市隼人町"); readings only at its start, because short
# readings hide inside ordinary words (いさ in ちいさい, きかい for 機械).
_NAME_KEYS = tuple((key, m) for m in ALL for key in (m.name, m.name[:-1]))
_KANA_KEYS = tuple((key, m) for m in ALL for key in (m.kana, _kana_stem(m.kana)))


def _matches(text: str) -> tuple[Municipality, ...]:
    """Municipalities named in normalized text, ignoring a name that lies inside a longer one."""
    spans = [
        (start, start + len(key), m)
        for key, m in _NAME_KEYS
        for start in (i.start() for i in re.finditer(re.escape(key), text))
    ] + [(0, len(key), m) for key, m in _KANA_KEYS if text.startswith(key)]
    # Longest match wins: さつま inside 南さつま is not さつま町.
    kept = {
        m for s, e, m in spans
        if not any(s2 <= s and e <= e2 and e2 - s2 > e - s for s2, e2, _ in spans)
    }
    return tuple(m for m in ALL if m in kept)


def match_municipality(text: str) -> Municipality | None:
    """The one municipality the text names, or None when it names none or several."""
    found = _matches(_normalize(text))
    return found[0] if len(found) == 1 else None


def candidates(text: str) -> tuple[Municipality, ...]:
    """Municipalities the text may mean, to offer as choices: those it names and those containing it."""
    query = _normalize(text)
    named = set(_matches(query))
    # One character (し, 市) is in too many names to make a useful list of choices.
    partial = len(query) >= 2
    return tuple(m for m in ALL if m in named or partial and (query in m.name or query in m.kana))


def region(region_id: str) -> Region:
    for r in REGIONS:
        if r.id == region_id:
            return r
    raise KeyError(f"地域 {region_id!r} はありません")
