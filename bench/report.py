"""Benchmark of the monthly report over a year of data: 50,000 consultations (with their users, bookings, pop-up days,
seminars, registrations, survey answers, referrals and activities), the time to gather the figures of March (so the fiscal-year column
spans the whole year) and to write the workbook, on a fresh SQLite file and, with --database-url, on that database
too (an empty one: PostgreSQL as in production). Target: under 2 s. It prints figures and asserts nothing.

Usage: python bench/report.py [--consultations 50000] [--database-url postgresql+psycopg://...]
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select  # noqa: E402

from bot.config import load_config  # noqa: E402
from bot.municipalities import REGIONS  # noqa: E402
from handlers.report_files import monthly_workbook  # noqa: E402
from storage import reports  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import (ACTIVITY_KINDS, TOKYO, Activity, Booking, Consultation, LineUser,  # noqa: E402
                            PopupDay, Referral, Seminar, SeminarRegistration, SurveyResponse)

TARGET_SECONDS = 2.0
FY_START = datetime(2025, 4, 1, tzinfo=TOKYO)
MONTH = "2026-03"
BATCH = 5_000


def seed(db: Database, consultations: int, rng: random.Random) -> None:
    config = load_config()
    categories = [c.id for c in config.categories]
    users = [f"U{n:032x}" for n in range(max(consultations // 3, 1))]
    now = FY_START
    with db.unit_of_work() as s:
        for chunk in range(0, len(users), BATCH):
            s.execute(insert(LineUser), [dict(id=u, source="line", following=True, created_at=now, updated_at=now)
                                         for u in users[chunk:chunk + BATCH]])
        # In the order they were received, as the desk records them (ids grow with time).
        times = sorted(FY_START + timedelta(minutes=rng.randrange(365 * 24 * 60)) for _ in range(consultations))
        for chunk in range(0, consultations, BATCH):
            rows = []
            for n in range(chunk, min(chunk + BATCH, consultations)):
                at = times[n]
                region = rng.choice(REGIONS)
                rows.append(dict(received_at=at, channel=rng.choice(("line", "line", "line", "web", "popup")),
                                 simulated=n % 50 == 0, user_id=rng.choice(users), company=f"会社{n}",
                                 industry=rng.choice(("製造業", "小売業", "建設業", "サービス業")),
                                 municipality=region.name, region=region.id, category=rng.choice(categories),
                                 method=rng.choice(("visit", "online", "phone", "email")),
                                 status=rng.choice(("received", "in_progress", "closed")), question="相談内容",
                                 origin=rng.choice(("menu", "menu", "web", "seminar:1", "popup:1")), keywords=[]))
            s.execute(insert(Consultation), rows)
        ids = s.scalars(select(Consultation.id).where(Consultation.simulated.is_(False))).all()
        booked = rng.sample(ids, len(ids) * 2 // 5)
        for chunk in range(0, len(booked), BATCH):
            rows = []
            for n, cid in enumerate(booked[chunk:chunk + BATCH], start=chunk):
                start = FY_START + timedelta(days=rng.randrange(365), hours=rng.randrange(9, 17))
                rows.append(dict(consultation_id=cid, coordinator_id=f"c{n}", start=start,
                                 end=start + timedelta(hours=1), method="visit", simulated=False,
                                 status=rng.choice(("confirmed", "confirmed", "cancelled")), created_at=now,
                                 updated_at=now))
            s.execute(insert(Booking), rows)
        s.execute(insert(PopupDay), [dict(region=rng.choice(REGIONS).id, venue="商工会議所",
                                          start_at=FY_START + timedelta(days=15 * n, hours=10),
                                          end_at=FY_START + timedelta(days=15 * n, hours=16), created_at=now)
                                     for n in range(24)])
        for n in range(3):
            start = FY_START + timedelta(days=60 + 100 * n, hours=14)
            seminar = Seminar(title=f"セミナー{n}", start_at=start, end_at=start + timedelta(hours=2), onsite_seats=60,
                              online_seats=100, survey_id="seminar", created_at=now, updated_at=now)
            s.add(seminar)
            s.flush()
            people = users[n * 150:(n + 1) * 150]
            s.execute(insert(SeminarRegistration), [
                dict(seminar_id=seminar.id, user_id=u, mode="onsite" if k % 3 else "online",
                     status="attended" if k % 4 else "registered", checkin_token=f"t{n}-{k}", created_at=now,
                     updated_at=now) for k, u in enumerate(people)])
            s.execute(insert(SurveyResponse), [
                dict(seminar_id=seminar.id, survey_id="seminar", user_id=u, answers={"satisfaction": rng.randint(1, 5)},
                     completed_at=now, created_at=now, updated_at=now) for u in people[::2]])
        partners = [p.id for p in config.partners]
        s.execute(insert(Referral), [dict(consultation_id=cid, partner_id=rng.choice(partners), referred_by="bench",
                                          referred_at=FY_START + timedelta(days=rng.randrange(365)), updated_at=now)
                                     for cid in rng.sample(ids, len(ids) // 20)])
        s.execute(insert(Activity), [dict(kind=rng.choice(ACTIVITY_KINDS), date=FY_START + timedelta(days=n % 365),
                                          coordinator_id="tanaka", company=f"訪問先{n}", attendees=rng.randrange(5, 30),
                                          created_by="bench", created_at=now, updated_at=now) for n in range(600)])
        s.commit()


def measure(db: Database, out: Path, repeat: int = 5) -> tuple[list[float], list[float]]:
    config, month = load_config(), reports.month_period(MONTH)
    gathering, writing = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        with db.unit_of_work() as s:
            figures = reports.monthly(s, month)
        t1 = time.perf_counter()
        monthly_workbook(figures, config, out)
        gathering.append(t1 - t0)
        writing.append(time.perf_counter() - t1)
    return gathering, writing


def run(label: str, url: str, consultations: int, out: Path) -> None:
    db = Database(url)
    try:
        db.upgrade()
        with db.unit_of_work() as s:
            if s.scalar(select(func.count(Consultation.id))):
                print(f"{label}: the database already holds consultations; give an empty one")
                return
        t0 = time.perf_counter()
        seed(db, consultations, random.Random(20260301))
        seeded = time.perf_counter() - t0
        gathering, writing = measure(db, out)
    finally:
        db.dispose()
    total = [g + w for g, w in zip(gathering, writing)]
    best, median = min(total), statistics.median(total)
    print(f"{label}: {consultations:,} consultations seeded in {seeded:.1f} s; monthly report of {MONTH}: "
          f"best {best:.2f} s, median {median:.2f} s (figures {statistics.median(gathering):.2f} s, "
          f"workbook {statistics.median(writing):.2f} s); target under {TARGET_SECONDS:.0f} s "
          f"{'OK' if median < TARGET_SECONDS else 'SLOW'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--consultations", type=int, default=50_000)
    parser.add_argument("--database-url", help="also run on this (empty) database, e.g. PostgreSQL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run("SQLite", f"sqlite:///{tmp}/bench.sqlite3", args.consultations, Path(tmp) / "monthly.xlsx")
        if args.database_url:
            run(args.database_url.split(":")[0], args.database_url, args.consultations, Path(tmp) / "monthly.xlsx")


if __name__ == "__main__":
    main()
