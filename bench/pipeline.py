"""dxdesk end to end next to its peers, in the same run and interleaved (loopback only; prints figures, asserts nothing).

Targets, each a real server process answering signed LINE webhooks, replies going to one fake Messaging API here:
  bare     a Flask endpoint that only checks the signature (gunicorn -w2 --threads 4): the ceiling
  echo     line-bot-sdk's flask-echo example (gunicorn -w2 --threads 4): the peer, replying inside the request
  sqlite   `dxdesk serve` on SQLite (one process, the scheduler off)
  postgres dxdesk under gunicorn with 4 workers on PostgreSQL (deploy/gunicorn.conf.py)
Each round sends N signed text events from 50 users with 16 concurrent senders as fast as they go (throughput, ack
and end-to-end latency: event sent to reply received), then a paced run at --rate events/s (ack p99); the table
shows the median of the rounds. Targets: dxdesk e2e throughput >= 1.0x echo's on PostgreSQL, >= 0.5x on SQLite;
ack p99 < 50 ms at 200 events/s on both.

Usage: python bench/pipeline.py [--events 1000] [--rounds 3] [--rate 200] [--paced-events 600]
       [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench] [--only bare,echo,sqlite,postgres]
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.line_api import FakeLineApi  # noqa: E402

SECRET, TOKEN = "bench-secret", "bench-token"
USERS, SENDERS = 50, 16
BIN = Path(sys.executable).parent
TEXT = "請求書を電子化したい"  # a question outside any flow: dxdesk triages it and offers help and its menu, echo echoes it


class TimedLineApi(FakeLineApi):
    """The fake Messaging API, noting when each reply (by its token) or push (by its user) arrived."""

    def __init__(self):
        super().__init__()
        self.arrived: dict[str, float] = {}
        self.pushed: dict[str, list[float]] = {}

    def _reply(self, request):
        answer = super()._reply(request)
        if answer[0] == 200:
            self.arrived.setdefault(request.body["replyToken"], time.perf_counter())
        return answer

    def _push(self, request):
        answer = super()._push(request)
        if answer[0] == 200:
            self.pushed.setdefault(request.body["to"], []).append(time.perf_counter())
        return answer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(name: str, fake: TimedLineApi, tmp: Path, database_url: str | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
           "LINE_API_BASE_URL": fake.base_url, "DXDESK_PUBLIC_URL": "https://dx-desk.example.jp",
           "DXDESK_SECRET_KEY": "bench", "DXDESK_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    peers = ["-w", "2", "--threads", "4", "-b", f"127.0.0.1:{port}", "--chdir", str(ROOT / "bench" / "peers")]
    if name in ("bare", "echo"):
        command = [BIN / "gunicorn", *peers, f"{name}:app"]
    elif name == "sqlite":
        env["DXDESK_DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
        command = [BIN / "dxdesk", "serve", "--port", str(port), "--no-scheduler"]
    else:
        env.update(DXDESK_DATABASE_URL=database_url, DXDESK_WORKERS="4", DXDESK_BIND=f"127.0.0.1:{port}",
                   PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"))
        subprocess.run([BIN / "dxdesk", "db", "upgrade"], env=env, check=True, capture_output=True, cwd=tmp)
        command = [BIN / "gunicorn", "-c", ROOT / "deploy" / "gunicorn.conf.py", "app:create_app()"]
    process = subprocess.Popen(command, env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=open(tmp / f"{name}.log", "w"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(urllib.request.Request(url + "/callback", data=b"{}"), timeout=2)
        except urllib.error.HTTPError:
            break  # it answers (400 for the unsigned body)
        except OSError:
            time.sleep(0.2)
            continue
        break
    else:
        raise SystemExit(f"{name} did not start; see {tmp / (name + '.log')}")
    # The first worker answering is not all of them: the others may still be importing, on the same cores.
    used = cpu_seconds(process.pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        used, before = cpu_seconds(process.pid), used
        if used - before < 0.05:
            return process, url
    raise SystemExit(f"{name} did not settle; see {tmp / (name + '.log')}")


def cpu_seconds(pid: int) -> float:
    """CPU time used so far by the process `pid` and its children (gunicorn's workers)."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))  # ppid, utime + stime
    tree = {pid} | {child for child, (parent, _) in stats.items() if parent == pid}
    return sum(stats[p][1] for p in tree if p in stats) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU time the whole machine has used (this script, the fake, PostgreSQL and the target alike)."""
    user, nice, system = (int(v) for v in Path("/proc/stat").read_text().split()[1:4])
    return (user + nice + system) / os.sysconf("SC_CLK_TCK")


def run(url: str, fake: TimedLineApi, events: int, rate: float | None, pid: int) -> dict:
    """Send `events` signed events (paced at `rate`/s, or as fast as SENDERS go); ack and end-to-end figures, and
    the CPU time per event of the target and of the whole machine."""
    cpu_before, machine_before = cpu_seconds(pid), machine_cpu_seconds()
    tokens: list[tuple[str, float]] = []
    acks: list[float] = []
    lock = threading.Lock()
    started = time.perf_counter()

    def send(n: int) -> None:
        if rate:
            time.sleep(max(started + n / rate - time.perf_counter(), 0))
        user = f"U{n % USERS:032x}"
        token = fake.issue_reply_token(user)
        body = json.dumps({"destination": "Ubench", "events": [{
            "type": "message", "mode": "active", "timestamp": int(time.time() * 1000),
            "webhookEventId": uuid.uuid4().hex.upper(), "deliveryContext": {"isRedelivery": False},
            "source": {"type": "user", "userId": user}, "replyToken": token,
            "message": {"id": str(n), "type": "text", "text": TEXT, "quoteToken": "q"}}]}).encode()
        signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
        request = urllib.request.Request(url + "/callback", data=body, headers={
            "Content-Type": "application/json", "X-Line-Signature": signature})
        sent = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
        with lock:
            acks.append(time.perf_counter() - sent)
            tokens.append((token, sent))

    with ThreadPoolExecutor(SENDERS) as pool:
        list(pool.map(send, range(events)))
    sent_all = time.perf_counter() - started
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and sum(t in fake.arrived for t, _ in tokens) < len(tokens):
        time.sleep(0.05)
    e2e = sorted(fake.arrived[t] - at for t, at in tokens if t in fake.arrived)
    last = max((fake.arrived[t] for t, _ in tokens if t in fake.arrived), default=started)
    acks.sort()
    cpu, machine = cpu_seconds(pid) - cpu_before, machine_cpu_seconds() - machine_before
    return {"cpu_ms": cpu * 1000 / events, "machine_ms": machine * 1000 / events, "acks_per_s": events / sent_all, "ack_p50": pct(acks, 50), "ack_p99": pct(acks, 99),
            "e2e_per_s": len(e2e) / (last - started) if e2e else 0.0, "e2e_p50": pct(e2e, 50),
            "e2e_p99": pct(e2e, 99), "answered": len(e2e) / events}


def pct(values: list[float], p: int) -> float | None:
    return values[min(len(values) - 1, int(len(values) * p / 100))] if values else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--paced-events", type=int, default=600)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/bench")
    parser.add_argument("--only", default="bare,echo,sqlite,postgres")
    args = parser.parse_args()
    names = args.only.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="dxdesk-bench-"))
    if "postgres" in names:
        _fresh_database(args.database_url)
    results: dict[str, list[dict]] = {name: [] for name in names}
    paced: dict[str, list[dict]] = {name: [] for name in names}
    with TimedLineApi() as fake:
        servers = {name: start(name, fake, tmp, args.database_url) for name in names}
        try:
            for round_no in range(args.rounds):
                for name in names:  # interleaved: every target in each round, so drift hits them alike
                    process, url = servers[name]
                    results[name].append(run(url, fake, args.events, None, process.pid))
                    paced[name].append(run(url, fake, args.paced_events, args.rate, process.pid))
                    print(f"round {round_no + 1} {name}: {results[name][-1]['e2e_per_s']:.0f} events/s e2e", flush=True)
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait(timeout=30)
    table(names, results, paced, args)
    shutil.rmtree(tmp, ignore_errors=True)


def _fresh_database(url: str) -> None:
    import psycopg
    server, name = url.replace("postgresql+psycopg:", "postgresql:").rsplit("/", 1)
    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


def table(names, results, paced, args) -> None:
    med = lambda rows, key: statistics.median(r[key] for r in rows if r[key] is not None) if any(  # noqa: E731
        r[key] is not None for r in rows) else None
    ms = lambda v: "–" if v is None else f"{v * 1000:.0f} ms"  # noqa: E731
    echo = med(results["echo"], "e2e_per_s") if "echo" in results else None
    print(f"\n{args.events} events, {USERS} users, {SENDERS} senders; paced {args.paced_events} at {args.rate:.0f}/s; "
          f"median of {args.rounds} interleaved rounds\n")
    print("| target | acks/s | ack p99 | e2e events/s | e2e p50 | e2e p99 | answered | vs echo (e2e) | paced ack p99 "
          "| CPU/event (target) | CPU/event (machine) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    goal = {"sqlite": 0.5, "postgres": 1.0}
    for name in names:
        rows = results[name]
        e2e = med(rows, "e2e_per_s") if name != "bare" else None
        ratio = f"{e2e / echo:.2f}× (target ≥ {goal[name]}×)" if name in goal and echo and e2e else "–"
        paced_p99 = med(paced[name], "ack_p99")
        answered = "–" if name == "bare" else f"{med(rows, 'answered'):.0%}"
        latency = ("–", "–") if name == "bare" else (ms(med(rows, "e2e_p50")), ms(med(rows, "e2e_p99")))
        print(f"| {name} | {med(rows, 'acks_per_s'):.0f} | {ms(med(rows, 'ack_p99'))} | "
              f"{'–' if e2e is None else f'{e2e:.0f}'} | {latency[0]} | {latency[1]} | {answered} | {ratio} | "
              f"{ms(paced_p99)}{' (target < 50 ms)' if name in goal else ''} | "
              f"{med(rows, 'cpu_ms'):.1f} ms | {med(rows, 'machine_ms'):.1f} ms |")

if __name__ == "__main__":
    main()
