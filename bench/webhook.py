"""How fast /callback answers signed LINE webhooks while the inbox workers process them (loopback only).

Prints latency percentiles of the HTTP answer (what LINE times out on) and how long the backlog took to drain.
Usage: python bench/webhook.py [--requests 300] [--concurrency 8] [--database-url URL]
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from werkzeug.serving import make_server  # noqa: E402

from app import Settings, create_app  # noqa: E402
from tests.fakes.line_api import FakeLineApi  # noqa: E402

SECRET = "bench-secret"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    with FakeLineApi() as fake:
        settings = replace(Settings(database_url=args.database_url or f"sqlite:///{tmp}/bench.sqlite3", var_dir=tmp),
                           line_channel_secret=SECRET, line_channel_access_token="token",
                           line_api_base_url=fake.base_url, public_base_url="https://dx-desk.example.jp", inbox_threads=2)
        app = create_app(settings)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}/callback"

        def post(n: int) -> float:
            user = f"U{n % 50:032d}"  # 50 users, several messages each
            body = json.dumps({"destination": "U", "events": [{
                "type": "message", "mode": "active", "timestamp": 1, "webhookEventId": uuid.uuid4().hex,
                "source": {"type": "user", "userId": user}, "replyToken": fake.issue_reply_token(user),
                "message": {"id": str(n), "type": "text", "text": "紙の請求書をやめたい"}}]}).encode()
            signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
            request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json",
                                                                      "X-Line-Signature": signature})
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
            return time.perf_counter() - started

        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            latencies = sorted(pool.map(post, range(args.requests)))
        posted = time.perf_counter() - started
        deadline = time.monotonic() + 120
        while len(fake.requests("/v2/bot/message/reply")) + len(fake.requests("/v2/bot/message/push")) < args.requests \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        drained = time.perf_counter() - started
        server.shutdown()
        app.extensions["dxdesk"].stop()

    pct = lambda p: latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000  # noqa: E731
    print(f"database          {settings.database_url.split(':')[0]}")
    print(f"requests          {args.requests} at concurrency {args.concurrency}")
    print(f"answer latency    p50 {pct(50):.1f} ms   p95 {pct(95):.1f} ms   p99 {pct(99):.1f} ms   "
          f"max {latencies[-1] * 1000:.1f} ms   mean {statistics.mean(latencies) * 1000:.1f} ms")
    print(f"posting took      {posted:.2f} s ({args.requests / posted:.0f} req/s)")
    print(f"all replied after {drained:.2f} s")


if __name__ == "__main__":
    main()
