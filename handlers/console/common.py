"""What every page of the console shares: sign-in and CSRF checks, roles, labels, the services, error pages."""

import logging
from datetime import date, datetime, time

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from sqlalchemy import or_

from bot.conversation import State
from bot.intake import METHODS
from bot.jatime import TOKYO, format_datetime, format_time_range, to_tokyo
from bot.menu import STATUS_LABELS
from bot.municipalities import REGIONS
from handlers.hardening import csrf_ok, csrf_token
from storage import audit
from storage.models import ConversationRow
from storage.staff import session_user

log = logging.getLogger(__name__)


ACTING_ROLES = ("admin", "coordinator")
SELF_SERVICE = ("console.auth.login", "console.auth.logout", "console.auth.change_password")  # POSTs a viewer may make too
ROLE_LABELS = {"admin": "管理者", "coordinator": "コーディネーター", "viewer": "閲覧のみ"}
PAGE_SIZE = 50
MAX_PAGE = 100_000
MIN_YEAR, MAX_YEAR = 1900, 9999

MAX_REASON = 1000


CHANNEL_LABELS = {"line": "LINE", "simulator": "シミュレーター", "web": "Webフォーム", "popup": "出張相談会"}
SENDER_LABELS = {"user": "利用者", "bot": "ボット", "staff": "担当者"}
REGION_NAMES = {region.id: region.name for region in REGIONS}
BOOKING_STATUS_LABELS = {"pending": "仮予約", "confirmed": "確定", "cancelling": "取消処理中", "cancelled": "取消"}
# The flag of a booking the calendar refused for good (Booking.calendar_refused), by what it refused.
CALENDAR_REFUSED_FLAGS = {"pending": "カレンダー登録不可", "cancelling": "カレンダー削除不可"}

# --- sign-in, CSRF and roles ----------------------------------------------------------------------------

def guard():
    """Sign-in for every page but the login form, a CSRF token on every POST, and only acting roles may change things."""
    staff = current_staff()
    if staff is None and request.endpoint != "console.auth.login":
        return redirect(url_for("console.auth.login", next=request.full_path.rstrip("?")))
    if request.method != "POST":
        return None
    if not csrf_ok():
        log.info("console POST to %s refused: CSRF token mismatch", request.endpoint)
        return _error(400, "フォームの有効期限が切れたか、正しく送信されませんでした。"
                           "ページを再読み込みしてから、もう一度お試しください。")
    if staff and staff["role"] not in ACTING_ROLES and request.endpoint not in SELF_SERVICE:
        log.info("staff %s (%s) refused %s", staff["id"], staff["role"], request.endpoint)
        return _error(403, "このアカウントは閲覧専用のため、変更の操作はできません。必要な場合は管理者にご連絡ください。")
    return None


def current_staff() -> dict | None:
    """The signed-in staff member, checked against their session record (ended at logout, password change, idling)."""
    staff = session.get("staff")
    if staff is None:
        return None
    user = session_user(_services().db, staff.get("sid", ""), _services().clock.now())
    if user is None:
        session.clear()
        flash("ログインの有効期限が切れました。お手数ですが、もう一度ログインしてください。", "error")
        return None
    if user.role != staff["role"]:  # a role changed since sign-in counts from the next page on
        session["staff"] = staff | {"role": user.role}
    return session["staff"]


def private(response):
    # The pages carry personal data: keep them out of shared caches and other sites' frames.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def helpers() -> dict:
    config = _services().config
    staff = session.get("staff")
    return {"csrf_token": csrf_token, "staff": staff, "can_act": bool(staff) and staff["role"] in ACTING_ROLES,
            "role_labels": ROLE_LABELS, "program_name": config.program_name, "when": format_datetime,
            "time_range": format_time_range, "status_labels": STATUS_LABELS, "method_labels": METHODS,
            "booking_status_labels": BOOKING_STATUS_LABELS, "channel_labels": CHANNEL_LABELS,
            "calendar_refused_flags": CALENDAR_REFUSED_FLAGS,
            "region_names": REGION_NAMES, "category_name": lambda category_id: config.category(category_id).name}

# --- shared -------------------------------------------------------------------------------------------

def _services():
    return current_app.extensions["dxdesk"]


def _today_start() -> datetime:
    return datetime.combine(to_tokyo(_services().clock.now()).date(), time.min, TOKYO)


def _date_arg(value: str) -> datetime | None:
    """The start of a YYYY-MM-DD day in Tokyo, or None when the value is not a date; 400 for one out of range."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    if not MIN_YEAR <= day.year <= MAX_YEAR:  # 0001-01-01 in Tokyo is still year 0 in UTC: an overflow
        abort(400, description=f"日付は{MIN_YEAR}年から{MAX_YEAR}年までの間で指定してください。")
    return datetime.combine(day, time.min, TOKYO)


def _page_number() -> int:
    value = request.args.get("page", "1")
    if value.isdecimal() and int(value) > MAX_PAGE:  # far past any list, and too big for the database's OFFSET
        abort(404, description="このページ番号のページはありません。一覧の最初のページからお探しください。")
    return max(int(value), 1) if value.isdecimal() else 1


def audited(action: str, record: str) -> None:
    """One line in a console view: write who did `action` on `record` now (storage/audit.py), committed at once."""
    services = _services()
    with services.db.unit_of_work() as s:
        audit.record(s, session["staff"]["login"], action, record, services.clock.now())
        s.commit()


def _error(status: int, message: str):
    return render_template("console/error.html", status=status, message=message), status


# In 担当者の対応待ち: with staff, or asked staff something not yet answered (whatever the user tapped since).
WAITING_FOR_STAFF = or_(ConversationRow.state == State.WITH_STAFF, ConversationRow.staff_waiting_since.is_not(None))


def _form_text(name: str) -> str:
    """A form field as typed, with browsers' CRLF line ends made plain, NULs dropped and the outer blanks trimmed."""
    # PostgreSQL text cannot hold U+0000, and no one means to type it.
    return request.form.get(name, "").replace("\r\n", "\n").replace("\x00", "").strip()


def refuse_viewers(message: str, *, allow: tuple[str, ...] = ()):
    """A before_request hook for an area whose pages name people or companies: admins and coordinators only, a viewer
    is told why (403). The endpoints in `allow` show a viewer no personal data (counts, or the page without names)."""
    def acting_staff_only():
        if session["staff"]["role"] not in ACTING_ROLES and request.endpoint not in allow:
            return _error(403, message)
        return None
    return acting_staff_only
