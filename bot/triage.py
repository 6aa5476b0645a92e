"""Triage: the DX topic of a consultation message by a trained text classifier, the words behind it, next steps."""
from __future__ import annotations

import csv
import hashlib
import io
import math
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from bot.config import Config

OTHER = "other"
CORPUS_DIR = "triage_corpus"
MODEL_FILE = "triage_model.npz"
# Messages written by people outside the team, each writer with their own voices; 20% of each is held out.
WRITERS = ("w1", "w2", "w3")
# The older examples were written by the same hand as the old keyword lists: they only ever train.
TEAM = "team"
HELDOUT_SHARE = 0.2

# LINE refuses text messages longer than this, so anything longer is not a real message and
# reading further would only cost time.
MAX_CHARS = 5000
NGRAM_SIZES = (1, 2, 3)
# How many of the message's spans that pushed hardest for the chosen category are shown as keywords.
MAX_KEYWORDS = 3
MAX_KEYWORD_CHARS = 12
# A message with fewer distinct known n-grams than this ("AI", "xxxx", a row of emoji) is too little to read.
MIN_FEATURES = 4

_KANA_SHIFT = ord("ァ") - ord("ぁ")
_HIRAGANA_TO_KATAKANA = {c: c + _KANA_SHIFT for c in range(ord("ぁ"), ord("ゖ") + 1)} | {
    ord("ゝ"): ord("ヽ"),
    ord("ゞ"): ord("ヾ"),
}


def readable(text: str) -> str:
    """The message as the model reads it, still in the user's own case and kana: width and spacing unified."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def normalize(text: str) -> str:
    """One spelling for what owners type many ways: width, case, hiragana/katakana, spacing."""
    return readable(text).lower().translate(_HIRAGANA_TO_KATAKANA)


def ngrams(norm: str) -> list[str]:
    """The character n-grams the model counts: no word splitting, so dialect and typos still share most of them."""
    return [norm[i : i + n] for n in NGRAM_SIZES for i in range(len(norm) - n + 1)]


@dataclass(frozen=True)
class Triage:
    """The topic of one message, how sure we are, the words that decided it, and where to go next.

    `confidence` is calibrated: of the messages given 0.9, about nine in ten are right. `sure` says it is
    high enough to ask the user a yes/no on this one category; `ranking` is the likeliest categories first.
    """

    category: str
    confidence: float
    keywords: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = ()
    ranking: tuple[str, ...] = ()
    sure: bool = False

    def as_json(self) -> dict:
        return {
            "category": self.category,
            "confidence": round(self.confidence, 3),
            "keywords": list(self.keywords),
            "suggestions": list(self.suggestions),
        }


@dataclass(frozen=True)
class Example:
    text: str
    category: str
    secondary: str  # the second topic of a message about two, or ""
    writer: str


def load_corpus(split: str | None = None) -> list[Example]:
    """The shipped labelled messages, of one split ("train", "heldout") or all.

    The held-out split is, per writer and category, the 20% of distinct texts whose SHA-256 comes first: it
    is the same on every machine, and a text found twice is on one side only. Team examples only train, and
    only those whose text is not held out."""
    corpus = resources.files("bot").joinpath(CORPUS_DIR)
    examples = []
    for writer in (*WRITERS, TEAM):
        with corpus.joinpath(f"{writer}.tsv").open(encoding="utf-8", newline="") as f:
            rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            examples += [Example(r["text"], r["category"], r["secondary"] or "", writer) for r in rows]
    heldout = _heldout_texts(examples)
    if split == "heldout":
        return [e for e in examples if e.text in heldout and e.writer != TEAM]
    if split == "train":  # a team example that says what a held-out one says would leak it into training
        return [e for e in examples if e.text not in heldout]
    return examples


def _heldout_texts(examples: list[Example]) -> set[str]:
    groups: dict[tuple[str, str], set[str]] = {}
    for e in examples:
        if e.writer != TEAM:
            groups.setdefault((e.writer, e.category), set()).add(e.text)
    heldout: set[str] = set()
    for texts in groups.values():
        ranked = sorted(texts, key=lambda t: hashlib.sha256(t.encode("utf-8")).hexdigest())
        heldout.update(ranked[: round(len(ranked) * HELDOUT_SHARE)])
    return heldout


@dataclass(frozen=True, eq=False)
class Model:
    """A linear model over TF-IDF weighted character n-grams, with its calibration.

    Probabilities are softmax(scale * (coef @ x + intercept)); `scale` and `threshold` were chosen by
    cross-validation on the training split (see bot/triage_training.py)."""

    categories: tuple[str, ...]
    features: tuple[str, ...]
    idf: np.ndarray
    coef: np.ndarray  # categories x features
    intercept: np.ndarray
    scale: float
    threshold: float
    vocabulary: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "vocabulary", {f: i for i, f in enumerate(self.features)})

    def weigh(self, norm: str) -> tuple[np.ndarray, np.ndarray]:
        """The feature indices present in `norm` and their TF-IDF weights (sublinear tf, L2-normalised)."""
        counts = Counter(i for i in map(self.vocabulary.get, ngrams(norm)) if i is not None)
        index = np.fromiter(counts, dtype=np.int64, count=len(counts))
        weight = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))) * self.idf[index]
        length = math.sqrt(float(weight @ weight))
        return index, weight / length if length else weight

    def probabilities(self, index: np.ndarray, weight: np.ndarray) -> np.ndarray:
        logits = self.scale * (self.coef[:, index] @ weight + self.intercept)
        exps = np.exp(logits - logits.max())
        return exps / exps.sum()

    def save(self, path: Path) -> None:
        """An .npz without pickles and with fixed timestamps: the same model gives the same bytes."""
        arrays = {
            "categories": np.array(self.categories),
            "features": np.array(self.features),
            "idf": self.idf.astype(np.float32),
            "coef": self.coef.astype(np.float32),
            "intercept": self.intercept.astype(np.float32),
            "calibration": np.array([self.scale, self.threshold], dtype=np.float64),
        }
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for name, array in arrays.items():
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, array, allow_pickle=False)
                z.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buffer.getvalue(),
                           compress_type=zipfile.ZIP_DEFLATED)

    @classmethod
    def load(cls, source) -> Model:
        with np.load(source, allow_pickle=False) as z:
            scale, threshold = (float(v) for v in z["calibration"])
            return cls(
                categories=tuple(str(c) for c in z["categories"]),
                features=tuple(str(f) for f in z["features"]),
                idf=z["idf"].astype(np.float64),
                coef=z["coef"].astype(np.float64),
                intercept=z["intercept"].astype(np.float64),
                scale=scale,
                threshold=threshold,
            )


_shipped: Model | None = None


def shipped_model() -> Model:
    """The committed model, read once per process however many Triagers are built."""
    global _shipped
    if _shipped is None:
        with resources.files("bot").joinpath(MODEL_FILE).open("rb") as f:
            _shipped = Model.load(io.BytesIO(f.read()))
    return _shipped


class Triager:
    """Classifies messages for one configuration with a trained model (the shipped one unless given)."""

    def __init__(self, config: Config, model: Model | None = None):
        self._config = config
        self._model = model or shipped_model()
        configured = {c.id for c in config.categories} | {OTHER}
        # Only the configured categories the model knows can be chosen; a renamed one keeps its id.
        self._known = np.array([c in configured for c in self._model.categories])

    def classify(self, text: str) -> Triage:
        model = self._model
        shown = readable(text[:MAX_CHARS])
        norm = shown.lower().translate(_HIRAGANA_TO_KATAKANA)
        index, weight = model.weigh(norm)
        p = np.where(self._known, model.probabilities(index, weight), 0.0)
        p /= p.sum()
        order = np.argsort(-p, kind="stable")
        if len(index) < MIN_FEATURES and OTHER in model.categories:
            order = np.array([model.categories.index(OTHER), *(i for i in order if model.categories[i] != OTHER)])
        best = model.categories[order[0]]
        confidence = float(p[order[0]])
        keywords = () if best == OTHER else self._keywords(shown, norm, index, weight * model.coef[order[0], index])
        return Triage(
            category=best,
            confidence=confidence,
            keywords=keywords,
            suggestions=self._suggestions(best),
            ranking=tuple(model.categories[i] for i in order if self._known[i]),
            sure=confidence >= model.threshold,
        )

    def _keywords(self, shown: str, norm: str, index: np.ndarray, contribution: np.ndarray) -> tuple[str, ...]:
        """The message's own words under the n-grams that pushed hardest for the chosen category.

        A word is shown whole when any of its n-grams is among the strongest, so "ランサムウェア" rather than "ランサ"."""
        if len(shown) != len(norm):  # lower() lengthened a rare letter: spans would not line up, show the folded text
            shown = norm
        strength = [0.0] * len(norm)
        for k in np.argsort(-contribution, kind="stable")[: MAX_KEYWORDS * 3]:
            if contribution[k] <= 0:
                break
            name = self._model.features[index[k]]
            start = norm.find(name)
            while start >= 0:
                for at in range(start, start + len(name)):
                    strength[at] = max(strength[at], float(contribution[k]))
                start = norm.find(name, start + 1)
        found: dict[str, float] = {}
        for start, end in _words(shown):
            strongest = max(strength[start:end])
            if strongest > 0:
                word = shown[start:end][:MAX_KEYWORD_CHARS]
                found[word] = max(found.get(word, 0.0), strongest)
        return tuple(sorted(found, key=lambda w: -found[w])[:MAX_KEYWORDS])

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


def _script(ch: str) -> str:
    if ch.isascii():
        return "latin" if ch.isalnum() else ""
    name = unicodedata.name(ch, "")
    if name.startswith("CJK UNIFIED") or ch in "々〆ヶ":
        return "kanji"
    if name.startswith("KATAKANA") or ch == "ー":
        return "katakana"
    return ""  # hiragana is grammar here ("を", "したい"); punctuation and emoji say nothing either


def _words(shown: str) -> list[tuple[int, int]]:
    """Spans of one script each: a kanji compound, a katakana or latin word. Without a tokenizer, the best
    approximation of the words a coordinator would underline."""
    spans, start = [], 0
    for end in range(1, len(shown) + 1):
        if end == len(shown) or _script(shown[end]) != _script(shown[start]):
            if _script(shown[start]):
                spans.append((start, end))
            start = end
    return spans
