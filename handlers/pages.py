"""Small pages: the health check and the privacy policy the bot links to."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template

bp = Blueprint("pages", __name__)


@bp.get("/healthz")
def healthz():
    """200 with the database's state; 503 when it does not answer."""
    services = current_app.extensions["dxdesk"]
    try:
        services.db.ping()
    except Exception:
        return {"status": "error", "database": "unreachable"}, 503
    return {"status": "ok", "database": "ok", "line": "configured" if services.line else "simulator",
            "calendar": "google" if services.settings.google_service_account_file else "local"}


@bp.get("/privacy")
def privacy():
    """The privacy policy users consent to in the bot."""
    config = current_app.extensions["dxdesk"].config
    return render_template("privacy.html", config=config)
