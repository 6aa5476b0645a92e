"""Training the triage model from the committed corpus: `python -m bot.triage_training` rewrites bot/triage_model.npz.

Needs the `train` extra (scikit-learn); the bot itself only reads the model file with numpy. Training is
deterministic: the same corpus gives the same model file.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from bot.triage import MODEL_FILE, Example, Model, load_corpus, ngrams, normalize

# Chosen by leave-one-writer-out accuracy within the training split (README, "Triage"): a linear SVM beat
# logistic regression and complement naive Bayes, n-grams 1-3 beat 1-2 and 1-4, kana folding and the team's
# examples helped, word features from a tokenizer did not pay for the dependency; C from 1 to 2 made no difference.
C = 1.0
FOLDS = 5
# Below this share of right answers among the messages at least as confident, the bot asks the user to
# pick among the likeliest categories instead of confirming one.
CONFIRM_ACCURACY = 0.95


def _analyzer(text: str) -> list[str]:
    return ngrams(normalize(text))


def _fit(texts: list[str], labels: list[str]) -> tuple[TfidfVectorizer, LinearSVC]:
    vectorizer = TfidfVectorizer(analyzer=_analyzer, sublinear_tf=True, dtype=np.float64)
    features = vectorizer.fit_transform(texts)
    svm = LinearSVC(C=C, class_weight="balanced", random_state=0).fit(features, labels)
    return vectorizer, svm


def train(examples: Iterable[Example]) -> Model:
    """The model for these examples, its confidence calibrated on out-of-fold scores of the same examples."""
    examples = sorted(examples, key=lambda e: (e.category, e.text))  # the order of files does not matter
    texts, labels = [e.text for e in examples], [e.category for e in examples]
    vectorizer, svm = _fit(texts, labels)
    categories = tuple(str(c) for c in svm.classes_)
    if len(categories) < 3:
        raise ValueError("the triage model needs examples of at least three categories")
    scale, threshold = calibrate(texts, labels, categories)
    features = vectorizer.get_feature_names_out()
    return Model(categories=categories, features=tuple(str(f) for f in features), idf=vectorizer.idf_,
                 coef=svm.coef_, intercept=svm.intercept_, scale=scale, threshold=threshold)


def out_of_fold_scores(texts: list[str], labels: list[str], categories: tuple[str, ...]) -> np.ndarray:
    """SVM scores of each example by a model trained without its fold."""
    scores = np.zeros((len(texts), len(categories)))
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=0)
    for fit_rows, score_rows in folds.split(texts, labels):
        vectorizer, svm = _fit([texts[i] for i in fit_rows], [labels[i] for i in fit_rows])
        scores[score_rows] = svm.decision_function(vectorizer.transform([texts[i] for i in score_rows]))
    return scores


def calibrate(texts: list[str], labels: list[str], categories: tuple[str, ...]) -> tuple[float, float]:
    """The softmax scale that makes out-of-fold confidences honest (least log-loss), and the confirm threshold."""
    scores = out_of_fold_scores(texts, labels, categories)
    truth = np.array([categories.index(c) for c in labels])

    def log_loss(scale: float) -> float:
        logits = scale * scores
        logits -= logits.max(axis=1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return -float(log_p[np.arange(len(truth)), truth].mean())

    scale = float(minimize_scalar(log_loss, bounds=(0.1, 100.0), method="bounded").x)
    logits = scale * scores
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return scale, confirm_threshold(p.max(axis=1), p.argmax(axis=1) == truth)


def confirm_threshold(confidence: np.ndarray, right: np.ndarray) -> float:
    """The lowest confidence above which at least CONFIRM_ACCURACY of the answers are right."""
    order = np.argsort(-confidence, kind="stable")
    share_right = np.cumsum(right[order]) / np.arange(1, len(order) + 1)
    good = np.nonzero(share_right >= CONFIRM_ACCURACY)[0]
    return float(confidence[order][good[-1]]) if len(good) else 1.0


def main() -> int:
    model = train(load_corpus("train"))
    path = Path(__file__).with_name(MODEL_FILE)
    model.save(path)
    print(f"{path}: {len(model.features)} features, {len(model.categories)} categories, "
          f"scale {model.scale:.3f}, confirm threshold {model.threshold:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
