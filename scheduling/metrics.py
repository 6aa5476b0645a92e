"""The service's Prometheus metrics, which the webhook, the inbox, the sender and the booking service update, and
/metrics shows (handlers/pages.py). Under gunicorn, set PROMETHEUS_MULTIPROC_DIR (docs/deploy.md) so that every
worker's counts are added up; without it each process counts for itself, as `dxdesk serve` needs.
No label ever holds personal data: channels, results and kinds only."""
from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, REGISTRY

# Seconds: LINE counts a webhook answer after about a second as failed; end to end is seconds when busy.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
E2E_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # each process writes its counts there; the folder may be new
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

events_received = Counter("dxdesk_events_received", "Webhook events written to the inbox (new ones only)", ["source"])
events_processed = Counter("dxdesk_events_processed", "Inbox events processed, by result (done, retry, failed)",
                           ["result"])
sends = Counter("dxdesk_sends", "Attempts to deliver a message, by channel and result (sent, retry, failed, in_doubt)",
                ["channel", "result"])
bookings = Counter("dxdesk_bookings", "Bookings confirmed on the calendar, and bookings cancelled", ["action"])
ack_seconds = Histogram("dxdesk_webhook_ack_seconds", "Time from a webhook request to its answer", buckets=ACK_BUCKETS)
event_seconds = Histogram("dxdesk_event_seconds", "Time from receiving an event to having processed it",
                          buckets=E2E_BUCKETS)


def exposition(backlog: dict | None) -> bytes:
    """The text /metrics serves: this process's (or, in multiprocess mode, every worker's) metrics, and the
    backlogs as measured just now (`backlog` as storage.queries.backlog gives it; None when the database is down)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)
    else:
        counted = REGISTRY
    measured = CollectorRegistry()
    measured.register(_Backlog(backlog))
    return generate_latest(counted) + generate_latest(measured)


class _Backlog:
    def __init__(self, backlog: dict | None):
        self.backlog = backlog

    def collect(self):
        up = GaugeMetricFamily("dxdesk_database_up", "1 when the database answered the scrape's query")
        up.add_metric([], 1 if self.backlog is not None else 0)
        yield up
        if self.backlog is None:
            return
        count = GaugeMetricFamily("dxdesk_backlog_items", "Items waiting: inbox events, messages, due scheduled sends",
                                  labels=["queue"])
        age = GaugeMetricFamily("dxdesk_backlog_oldest_age_seconds", "Age of the oldest waiting item (0 when none)",
                                labels=["queue"])
        failed = GaugeMetricFamily("dxdesk_failed_items", "Inbox events and messages parked as failed",
                                   labels=["queue"])
        for queue in ("inbox", "outbound", "outbox"):
            count.add_metric([queue], self.backlog[queue]["count"])
            age.add_metric([queue], self.backlog[queue]["oldest_age_seconds"] or 0)
        for queue, n in self.backlog["failed"].items():
            failed.add_metric([queue], n)
        yield from (count, age, failed)
