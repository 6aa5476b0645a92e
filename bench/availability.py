"""Benchmark of free_slots: 10 coordinators x 60 days x 200 busy intervals each, and the bot's usual 3 x 30 days."""
from __future__ import annotations

import random
import statistics
import time
from dataclasses import replace
from datetime import datetime, timedelta

from bot.config import Coordinator, load_config, parse_hours
from bot.jatime import TOKYO
from scheduling.availability import free_slots

START = datetime(2026, 11, 24, tzinfo=TOKYO)
HOURS = parse_hours({day: ["09:00-12:00", "13:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat")}
                    | {"holiday": ["10:00-12:00"]})


def busy_for(coordinators, days: int, per_coordinator: int, rng: random.Random) -> dict:
    busy = {}
    for c in coordinators:
        intervals = []
        for _ in range(per_coordinator):
            s = START + timedelta(days=rng.randrange(days), hours=rng.randrange(8, 19), minutes=rng.choice((0, 15, 30, 45)))
            intervals.append((s, s + timedelta(minutes=rng.choice((30, 60, 90, 120)))))
        busy[c.id] = intervals
    return busy


def measure(config, days: int, busy: dict, repeat: int = 20) -> tuple[float, float, int]:
    end = START + timedelta(days=days)
    timings = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        slots = free_slots(config, START, end, busy)
        timings.append(time.perf_counter() - t0)
    return min(timings) * 1000, statistics.median(timings) * 1000, len(slots)


def main() -> None:
    rng = random.Random(20261124)
    base = load_config()
    ten = replace(base, coordinators=tuple(
        Coordinator(id=f"c{n:02d}", name=f"c{n:02d}", hours=HOURS) for n in range(10)
    ))
    cases = [
        ("10 coordinators x 60 days x 200 busy each", ten, 60, busy_for(ten.coordinators, 60, 200, rng)),
        ("built-in 3 coordinators x 30 days x 40 busy each", base, 30, busy_for(base.coordinators, 30, 40, rng)),
    ]
    for label, config, days, busy in cases:
        best, median, count = measure(config, days, busy)
        print(f"{label}: best {best:.2f} ms, median {median:.2f} ms, {count} free slots")


if __name__ == "__main__":
    main()
