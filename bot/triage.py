"""Triage: the DX topic of a consultation message, the configured keywords behind it, and next steps."""
from __future__ import annotations

import csv
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from typing import Iterable

from bot.config import Category, Config

OTHER = "other"
EXAMPLES_FILE = "triage_examples.tsv"

# LINE refuses text messages longer than this, so anything longer is not a real message and
# reading further would only cost time.
MAX_CHARS = 5000

# Tuned by cross-validation on the training split only, so the held-out split stays an honest measure.
NGRAM_SIZES = (1, 2)
SMOOTHING = 0.5
KEYWORD_WEIGHT = 3.0
UNSURE = 0.4
# "other" means no topic was recognised; it must never read as a confident finding.
OTHER_CONFIDENCE_CAP = 0.3

_KANA_SHIFT = ord("ァ") - ord("ぁ")
_HIRAGANA_TO_KATAKANA = {c: c + _KANA_SHIFT for c in range(ord("ぁ"), ord("ゖ") + 1)} | {
    ord("ゝ"): ord("ヽ"),
    ord("ゞ"): ord("ヾ"),
}
_ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def normalize(text: str) -> str:
    """One spelling for what owners type many ways: width, case, hiragana/katakana, spacing."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_HIRAGANA_TO_KATAKANA)
    return " ".join(text.split())


@dataclass(frozen=True)
class Triage:
    """The topic of one message, how sure we are, the keywords that decided it, and where to go next."""

    category: str
    confidence: float
    keywords: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = ()

    def as_json(self) -> dict:
        return {
            "category": self.category,
            "confidence": round(self.confidence, 3),
            "keywords": list(self.keywords),
            "suggestions": list(self.suggestions),
        }


def load_examples(split: str | None = None) -> list[tuple[str, str]]:
    """The shipped labelled messages as (text, category) pairs, of one split ("train", "heldout") or all."""
    with resources.files("bot").joinpath(EXAMPLES_FILE).open(encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [(r["text"], r["category"]) for r in rows if split is None or r["split"] == split]


class Triager:
    """Classifies messages for one configuration; build it once, it trains its model on creation."""

    def __init__(self, config: Config, examples: Iterable[tuple[str, str]] | None = None):
        self._config = config
        self._ids = tuple(c.id for c in config.categories)
        if OTHER not in self._ids:
            self._ids += (OTHER,)
        self._lexicon = _Lexicon(config.categories)
        if examples is None:
            examples = load_examples("train")
        self._model = _NaiveBayes([(t, c) for t, c in examples if c in self._ids])

    def classify(self, text: str) -> Triage:
        norm = normalize(text[:MAX_CHARS])
        hits = self._lexicon.find(norm)
        fit = self._model.fit(norm, self._ids)
        scores = {
            c: fit[c] + KEYWORD_WEIGHT * sum(weight for _, weight in hits.get(c, ())) for c in self._ids
        }
        probabilities = _softmax(scores)
        best = max(self._ids, key=lambda c: probabilities[c])
        # Without a keyword, a topic the model is unsure about is a guess; a person should look.
        if best != OTHER and not hits.get(best) and probabilities[best] < UNSURE:
            best = OTHER
        confidence = probabilities[best]
        if best == OTHER:
            confidence = min(confidence, OTHER_CONFIDENCE_CAP)
        return Triage(
            category=best,
            confidence=confidence,
            keywords=tuple(keyword for keyword, _ in hits.get(best, ())),
            suggestions=self._suggestions(best),
        )

    def _suggestions(self, category_id: str) -> tuple[str, ...]:
        config = self._config
        subsidy = config.subsidy
        if category_id == OTHER:
            return (
                "DXに関わることでしたら、どんなことでもコーディネーターがお話を伺います。"
                "ご相談のご予約もお気軽にどうぞ。",
            )
        name = config.category(category_id).name
        lines = [
            f"「{name}」については、{p.name}でもご相談いただけます。" + (f" {p.url}" if p.url else "")
            for p in config.partners
            if category_id in p.categories
        ]
        if subsidy.name and category_id == "subsidy":
            lines.append(f"{subsidy.name}: {subsidy.summary} {subsidy.url}".strip())
        elif subsidy.name and category_id in ("tools", "ai_iot"):
            lines.append(f"導入の費用には{subsidy.name}を使える場合があります。 {subsidy.url}".strip())
        if not lines:
            lines.append(f"「{name}」のご相談は、コーディネーターが一緒に考えます。ご予約をお待ちしています。")
        return tuple(lines)


class _Lexicon:
    """The configured keywords; longer keywords are more specific and weigh more."""

    def __init__(self, categories: Iterable[Category]):
        self._entries = []
        for category in categories:
            for keyword in category.keywords:
                norm = normalize(keyword)
                if norm:
                    weight = math.sqrt(_specificity(norm))
                    self._entries.append((category.id, keyword, _keyword_pattern(norm), weight))

    def find(self, norm: str) -> dict[str, list[tuple[str, float]]]:
        """Per category, the (keyword as configured, weight) found in `norm`, in order of appearance."""
        matches = sorted(
            (m.start(), -m.end(), category_id, keyword, weight)
            for category_id, keyword, pattern, weight in self._entries
            for m in pattern.finditer(norm)
        )
        # "IT導入補助金" is about subsidies; the "導入" inside it must not also count for tools. A match
        # is inside a longer one when an earlier span in (start, longest first) order reaches as far.
        found: dict[str, list[tuple[str, float]]] = {}
        reach = covering_reach = -1
        span = None
        for start, neg_end, category_id, keyword, weight in matches:
            if (start, neg_end) != span:
                span, covering_reach = (start, neg_end), reach
                reach = max(reach, -neg_end)
            if covering_reach >= -neg_end:
                continue
            entries = found.setdefault(category_id, [])
            if all(keyword != k for k, _ in entries):
                entries.append((keyword, weight))
        return found


def _specificity(norm: str) -> float:
    # Katakana and latin letters spell a word with more characters than kanji do ("セキュリティ",
    # "研修"), so they count half; otherwise a long loanword would outweigh a precise kanji term.
    return sum(0.5 if ch in _ASCII_ALNUM or "ァ" <= ch <= "ヺ" or ch == "ー" else 1.0 for ch in norm)


def _keyword_pattern(norm: str) -> re.Pattern:
    # Latin keywords match whole words only, so "ai" is not found in "mail" nor "ec" in "select".
    head = r"(?<![a-z])" if norm[0] in _ASCII_ALNUM else ""
    tail = r"(?![a-z])" if norm[-1] in _ASCII_ALNUM else ""
    return re.compile(head + re.escape(norm) + tail)


class _NaiveBayes:
    """Multinomial naive Bayes over the character n-grams present in a message."""

    def __init__(self, examples: list[tuple[str, str]]):
        counts: dict[str, Counter] = {}
        for text, category_id in examples:
            counts.setdefault(category_id, Counter()).update(_ngrams(normalize(text)))
        vocabulary = set().union(*counts.values()) if counts else set()
        self._log_likelihood: dict[str, dict[str, float]] = {}
        self._unseen: dict[str, float] = {}
        for category_id, c in counts.items():
            total = sum(c.values()) + SMOOTHING * len(vocabulary)
            self._log_likelihood[category_id] = {f: math.log((c[f] + SMOOTHING) / total) for f in c}
            self._unseen[category_id] = math.log(SMOOTHING / total)
        self._vocabulary = vocabulary

    def fit(self, norm: str, category_ids: tuple[str, ...]) -> dict[str, float]:
        """Log-likelihood per category over the square root of the n-gram count, the best shifted to 0.

        N-grams of one message overlap and are far from independent; the full sum would make a long
        message look certain just by its length. Categories without examples get the lowest score:
        the model knows nothing of them, so only their keywords can lift them."""
        features = [f for f in _ngrams(norm) if f in self._vocabulary]
        known = [c for c in category_ids if c in self._log_likelihood]
        if not features or not known:
            return {c: 0.0 for c in category_ids}
        scale = math.sqrt(len(features))
        fit = {
            c: sum(self._log_likelihood[c].get(f, self._unseen[c]) for f in features) / scale for c in known
        }
        top, bottom = max(fit.values()), min(fit.values())
        return {c: fit.get(c, bottom) - top for c in category_ids}


def _ngrams(norm: str) -> set[str]:
    # Presence, not frequency: a short message repeating a word is not more about that topic.
    # A lone kanji or kana carries meaning (紙, 客); a lone latin letter or symbol does not, and
    # counting them would send any SQL, HTML or English to whichever topic has the most brand names.
    padded = f" {norm} "
    grams = (padded[i : i + n] for n in NGRAM_SIZES for i in range(len(padded) - n + 1))
    return {g for g in grams if len(g) > 1 or (g.isalpha() and not g.isascii())}


def _softmax(scores: dict[str, float]) -> dict[str, float]:
    top = max(scores.values())
    exps = {c: math.exp(s - top) for c, s in scores.items()}
    total = sum(exps.values())
    return {c: e / total for c, e in exps.items()}
