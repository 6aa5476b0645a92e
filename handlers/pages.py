"""Small pages: the health check and the privacy policy the bot links to."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, current_app, render_template

from scheduling import metrics
from storage import queries

bp = Blueprint("pages", __name__)

BACKLOG_LIMIT = timedelta(minutes=2)  # LINE redelivers for a while; past this, users notice


@bp.get("/healthz")
def healthz():
    """200 with the database's state and the backlogs; 503 when the database does not answer, or the oldest
    unprocessed webhook event has waited longer than BACKLOG_LIMIT: the bot is not keeping up. Messages waiting for
    LINE and overdue scheduled sends are reported but do not fail the check: LINE being slow is no reason to stop
    taking webhooks."""
    services = current_app.extensions["dxdesk"]
    try:
        services.db.ping()
        with services.db.unit_of_work() as s:
            backlog = queries.backlog(s, services.clock.now())
    except Exception:
        return {"status": "error", "database": "unreachable"}, 503
    behind = (backlog["inbox"]["oldest_age_seconds"] or 0) > BACKLOG_LIMIT.total_seconds()
    body = {"status": "behind" if behind else "ok", "database": "ok",
            "line": "configured" if services.line else "simulator",
            "calendar": "google" if services.settings.google_service_account_file else "local",
            "backlog": backlog, "backlog_limit_seconds": BACKLOG_LIMIT.total_seconds()}
    return body, 503 if behind else 200


@bp.get("/metrics")
def metrics_page():
    """Prometheus text format: events, sends, bookings, latency histograms, and the backlogs measured now. It holds
    no personal data; keep it to the monitoring network at the proxy (docs/deploy.md)."""
    services = current_app.extensions["dxdesk"]
    try:
        with services.db.unit_of_work() as s:
            backlog = queries.backlog(s, services.clock.now())
    except Exception:
        backlog = None  # still answer: dxdesk_database_up 0 is what an alert wants to see
    return Response(metrics.exposition(backlog), mimetype="text/plain; version=0.0.4; charset=utf-8")


@bp.get("/privacy")
def privacy():
    """The privacy policy users consent to in the bot."""
    config = current_app.extensions["dxdesk"].config
    return render_template("privacy.html", config=config)
