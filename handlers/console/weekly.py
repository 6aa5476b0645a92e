"""The staff's weekly log as a download (the same file as `dxdesk report weekly`), each export in the audit log."""
from __future__ import annotations

import io
import logging
import tempfile
from datetime import timedelta
from pathlib import Path

from flask import Blueprint, render_template, request, send_file, session

from bot.jatime import to_tokyo
from handlers.console.common import _error, _services, audited, refuse_viewers
from handlers.report_files import weekly_file
from storage.reports import week_period

log = logging.getLogger(__name__)

bp = Blueprint("weekly", __name__)
bp.before_request(refuse_viewers("週報には相談者のお名前や連絡先が含まれるため、閲覧専用のアカウントでは書き出せません。"
                                 "件数は月次報告でご確認ください。"))

MIMETYPES = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@bp.get("/weekly")
def weekly_form():
    """Choose an ISO week (this one by default, and the one before offered) and a format."""
    today = to_tokyo(_services().clock.now()).date()
    weeks = [f"{d.isocalendar().year}-W{d.isocalendar().week:02d}" for d in (today, today - timedelta(days=7))]
    return render_template("console/weekly.html", this_week=weeks[0], last_week=weeks[1])


@bp.get("/weekly/download")
def weekly_download():
    """The week's log as .csv (consultations) or .xlsx (six sheets); recorded as an export by this staff login."""
    week_text = request.args.get("week", "").strip()
    kind = request.args.get("format", "xlsx")
    if kind not in MIMETYPES:
        return _error(400, "形式は CSV か Excel（xlsx）からお選びください。")
    try:
        week = week_period(week_text)
    except ValueError as exc:
        return _error(400, str(exc))
    services = _services()
    with tempfile.TemporaryDirectory() as folder, services.db.unit_of_work() as s:
        out = Path(folder) / f"weekly.{kind}"
        weekly_file(s, services.config, week, out)
        data = out.read_bytes()
    audited("export", f"weekly:{week_text}")
    log.info("weekly log %s downloaded as %s by staff %s", week_text, kind, session["staff"]["id"])
    return send_file(io.BytesIO(data), as_attachment=True, download_name=f"weekly-{week_text}.{kind}",
                     mimetype=MIMETYPES[kind])
