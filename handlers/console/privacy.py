"""The console's privacy pages: the audit log (/admin/audit) and deletion requests (/admin/deletions)."""
from __future__ import annotations

import logging
from datetime import timedelta

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from bot.privacy import done_notice
from handlers.console.common import _date_arg, _error, _page_number, _services
from storage import audit, privacy
from storage.activities import remove_files
from storage.logids import user_ref
from storage.models import AUDIT_ACTIONS, DeletionRequest, LineUser
from storage.outbound import queue_messages

log = logging.getLogger(__name__)

bp = Blueprint("privacy", __name__)

AUDIT_LABELS = {"view": "閲覧", "export": "書き出し", "change": "変更", "erase": "削除（本人の依頼）",
                "purge": "削除（保存期間の経過）"}
PAGE_SIZE = 100
ERASE_REASON = "ご本人の依頼によるデータ削除"


def _admin_only():
    if session["staff"]["role"] != "admin":
        return _error(403, "このページは管理者だけが表示できます。")
    return None


@bp.get("/audit")
def audit_log():
    """The audit log, newest first, by who, action and date range (admins only; no route changes it)."""
    refused = _admin_only()
    if refused:
        return refused
    who = request.args.get("who", "").strip()[:64]
    action = request.args.get("action", "")
    action = action if action in AUDIT_ACTIONS else ""
    start, end = _date_arg(request.args.get("from", "")), _date_arg(request.args.get("to", ""))
    if end is not None:
        end += timedelta(days=1)  # the day named is included
    page = _page_number()
    with _services().db.unit_of_work() as s:
        rows = audit.entries(s, who=who, action=action, start=start, end=end, limit=PAGE_SIZE + 1,
                             offset=(page - 1) * PAGE_SIZE)
    filters = {k: v for k, v in (("who", who), ("action", action), ("from", request.args.get("from", "")),
                                 ("to", request.args.get("to", ""))) if v}
    return render_template("console/audit.html", rows=rows[:PAGE_SIZE], has_next=len(rows) > PAGE_SIZE, page=page,
                           filters=filters, labels=AUDIT_LABELS)


@bp.get("/deletions")
def deletions():
    """Deletion requests waiting for staff: the person has a booking or a seminar place ahead."""
    with _services().db.unit_of_work() as s:
        rows = [(r, user_ref(r.user_id), privacy.ahead(s, r.user_id, _services().clock.now()))
                for r in privacy.pending_requests(s)]
    return render_template("console/deletions.html", rows=rows)


@bp.post("/deletions/<int:request_id>/erase")
def carry_out_deletion(request_id: int):
    """Cancel what lies ahead (calendar and coordinator told), erase the person's data, and tell them it is done."""
    services = _services()
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        req = s.get(DeletionRequest, request_id, with_for_update=True)
        if req is None or req.status != "pending":
            return _error(404, "この削除依頼は見つからないか、すでに処理されています。")
        ahead = privacy.ahead(s, req.user_id, now)
        coordinator_notices: list[int] = []
        for booking in ahead.bookings:
            coordinator_notices += services.bookings.cancel(s, booking.id, user_id=None, reason=ERASE_REASON,
                                                            by="staff", now=now) or []
        for registration in ahead.registrations:
            registration.status, registration.cancelled_at, registration.cancelled_by = "cancelled", now, "staff"
            registration.updated_at = now
        user = s.get(LineUser, req.user_id)
        told = queue_messages(s, user.source if user else "line", req.user_id, done_notice(), now)
        # The coordinators' cancellation notices quote the person; they go as they are and the copies purge clears them.
        erased = privacy.complete(s, req, session["staff"]["login"], now, told + coordinator_notices)
        s.commit()
    remove_files(services.settings.var_dir, erased.photos)
    services.delivery.send(told + coordinator_notices)
    for booking in ahead.bookings:
        services.bookings.finish_cancel(booking.id)
    log.info("staff %s carried out deletion request %s", session["staff"]["id"], request_id)
    flash("データを削除し、ご本人にお知らせしました。", "ok")
    return redirect(url_for("console.privacy.deletions"))
