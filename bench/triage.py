"""Triage on the held-out split and across writers: accuracy, macro-F1, confusion, calibration, messages per second.

Usage: python bench/triage.py [--no-writers]   (leave-one-writer-out retrains three models: needs the train extra)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import load_config  # noqa: E402
from bot.triage import WRITERS, Example, Triager, load_corpus, shipped_model  # noqa: E402


def scores(triager: Triager, examples: list[Example]) -> dict:
    results = [triager.classify(e.text) for e in examples]
    truth = [e.category for e in examples]
    guess = [r.category for r in results]
    categories = sorted(set(truth) | set(guess))
    f1 = []
    for c in categories:
        tp = sum(t == g == c for t, g in zip(truth, guess))
        predicted, actual = guess.count(c), truth.count(c)
        precision, recall = tp / predicted if predicted else 0.0, tp / actual if actual else 0.0
        f1.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return {
        "n": len(examples),
        "accuracy": float(np.mean([t == g for t, g in zip(truth, guess)])),
        # A message on two topics counts as right when the guess is either of them.
        "either_topic": float(np.mean([e.category == r.category or e.secondary == r.category
                                       for e, r in zip(examples, results)])),
        "top3": float(np.mean([e.category in r.ranking[:3] for e, r in zip(examples, results)])),
        "macro_f1": float(np.mean(f1)),
        "results": results,
        "truth": truth,
    }


def print_confusion(truth: list[str], guess: list[str]) -> None:
    categories = sorted(set(truth) | set(guess))
    short = [c[:5] for c in categories]
    print(f"{'expected/got':<14}" + "".join(f"{s:>6}" for s in short))
    for c in categories:
        row = [sum(1 for t, g in zip(truth, guess) if t == c and g == d) for d in categories]
        print(f"{c:<14}" + "".join(f"{n:>6}" for n in row))


def print_calibration(results, truth) -> None:
    confidence = np.array([r.confidence for r in results])
    right = np.array([r.category == t for r, t in zip(results, truth)])
    edges = [0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0001]
    print(f"{'confidence':<12}{'messages':>9}{'mean conf':>11}{'right':>8}")
    for low, high in zip(edges, edges[1:]):
        inside = (confidence >= low) & (confidence < high)
        if inside.any():
            print(f"{low:.2f}-{min(high, 1):.2f}   {inside.sum():>9}{confidence[inside].mean():>11.3f}{right[inside].mean():>8.3f}")
    gap = sum(abs(confidence[b].mean() - right[b].mean()) * b.sum()
              for b in ((np.minimum((confidence * 10).astype(int), 9) == k) for k in range(10)) if b.any())
    sure = np.array([r.sure for r in results])
    print(f"expected calibration error {gap / len(results):.3f}; above the confirm threshold "
          f"{shipped_model().threshold:.3f}: {sure.mean():.1%} of messages, {right[sure].mean():.1%} right; "
          f"below it the right category is among the three offered for {np.mean([t in r.ranking[:3] for r, t in zip(results, truth) if not r.sure] or [1]):.1%}")


def throughput(triager: Triager, examples: list[Example], rounds: int = 5) -> tuple[float, float]:
    texts = [e.text for e in examples]
    best = min(_timed(triager, texts) for _ in range(rounds))
    return len(texts) / best, best / len(texts) * 1000


def _timed(triager: Triager, texts: list[str]) -> float:
    start = time.perf_counter()
    for text in texts:
        triager.classify(text)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-writers", action="store_true", help="skip the leave-one-writer-out retraining")
    args = parser.parse_args()
    config = load_config()
    start = time.perf_counter()
    triager = Triager(config)
    triager.classify("起動")
    loaded = time.perf_counter() - start
    heldout = load_corpus("heldout")
    s = scores(triager, heldout)
    print(f"held-out split ({s['n']} messages, never trained or tuned on), the committed model:")
    print(f"  accuracy {s['accuracy']:.1%}   either topic {s['either_topic']:.1%}   in the top three {s['top3']:.1%}   "
          f"macro-F1 {s['macro_f1']:.3f}")
    print()
    print_confusion(s["truth"], [r.category for r in s["results"]])
    print()
    print_calibration(s["results"], s["truth"])
    print()
    per_second, ms = throughput(triager, heldout)
    print(f"speed: model loaded in {loaded * 1000:.0f} ms; {per_second:,.0f} messages/s on one core ({ms:.2f} ms each)")
    if args.no_writers:
        return
    from bot.triage_training import train  # here, so the figures above need no scikit-learn

    print()
    print("leave one writer out (trained on the other writers' training split and the team's examples):")
    train_split = load_corpus("train")
    everything = load_corpus()
    for writer in WRITERS:
        model = train([e for e in train_split if e.writer != writer])
        w = scores(Triager(config, model), [e for e in everything if e.writer == writer])
        print(f"  {writer}: accuracy {w['accuracy']:.1%}   either topic {w['either_topic']:.1%}   "
              f"macro-F1 {w['macro_f1']:.3f}   ({w['n']} messages)")


if __name__ == "__main__":
    main()
