"""Signing in and out of the console, and changing one's password."""

import logging
import math
from datetime import datetime, timedelta

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from bot.jatime import format_datetime
from handlers.console.common import _services, csrf_token
from storage.staff import MIN_PASSWORD, close_session, open_session, sign_in
from storage.staff import change_password as set_password

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

@bp.route("/login", methods=["GET", "POST"])
def login():
    """The sign-in form; a wrong login or password is answered 401 without saying which, repeated failures wait."""
    next_url = _safe_next(request.values.get("next", ""))
    if request.method != "POST":  # HEAD too: only a POST (with its CSRF token) may sign in
        return render_template("console/login.html", next_url=next_url, login="")
    name = request.form.get("login", "").strip()
    services = _services()
    result = sign_in(services.db, name, request.form.get("password", ""), request.remote_addr or "",
                     services.clock.now())
    if result.locked_until:
        log.info("console sign-in refused: locked")
        return _locked(render_template("console/login.html", next_url=next_url, login=name,
                                       error=_locked_message(result.locked_until)), result.locked_until)
    if result.user is None:
        log.info("console sign-in refused")
        return render_template("console/login.html", next_url=next_url, login=name,
                               error="ログインIDまたはパスワードが違います。"), 401
    user = result.user
    session.clear()  # a new session (and CSRF token) at sign-in, so one planted before it is worthless
    _start_session(user)
    log.info("staff %s signed in", user.id)
    return redirect(next_url or url_for("console.reports.dashboard"))


def _start_session(user) -> None:
    token = open_session(_services().db, user.id, _services().clock.now())
    session["staff"] = {"id": user.id, "login": user.login, "role": user.role, "sid": token}
    csrf_token()


def _locked_message(until: datetime) -> str:
    # Said alike whether the login exists or not; the minute is rounded up so that "以降" holds.
    shown = format_datetime((until + timedelta(seconds=59)).replace(second=0, microsecond=0))
    return (f"ログインの失敗が続いたため、しばらくログインを受け付けていません。{shown}以降にもう一度お試しください。"
            "パスワードがわからない場合は、管理者にご連絡ください。")


def _locked(page: str, until: datetime):
    wait = max(math.ceil((until - _services().clock.now()).total_seconds()), 1)
    return page, 429, {"Retry-After": str(wait)}


@bp.post("/logout")
def logout():
    """Sign out, ending the session on the server too, and go back to the sign-in form."""
    staff = session["staff"]
    close_session(_services().db, staff["sid"])
    log.info("staff %s signed out", staff["id"])
    session.clear()
    flash("ログアウトしました。", "ok")
    return redirect(url_for("console.auth.login"))


@bp.route("/password", methods=["GET", "POST"])
def change_password():
    """The signed-in user changes their own password; every other session of theirs ends."""
    if request.method != "POST":
        return render_template("console/password.html", min_password=MIN_PASSWORD)
    services = _services()
    staff = session["staff"]
    new, again = request.form.get("new_password", ""), request.form.get("new_password_again", "")
    error = ""
    if len(new) < MIN_PASSWORD:
        error = f"新しいパスワードは{MIN_PASSWORD}文字以上にしてください。"
    elif new != again:
        error = "新しいパスワードが確認用と一致しません。もう一度入力してください。"
    if error:
        return render_template("console/password.html", min_password=MIN_PASSWORD, error=error), 400
    result = sign_in(services.db, staff["login"], request.form.get("current_password", ""),
                     request.remote_addr or "", services.clock.now())
    if result.locked_until:
        return _locked(render_template("console/password.html", min_password=MIN_PASSWORD,
                                       error=_locked_message(result.locked_until)), result.locked_until)
    if result.user is None or result.user.id != staff["id"]:
        return render_template("console/password.html", min_password=MIN_PASSWORD,
                               error="現在のパスワードが違います。"), 400
    set_password(services.db, staff["login"], new)
    session.clear()
    _start_session(result.user)
    log.info("staff %s changed their password", staff["id"])
    flash("パスワードを変更しました。ほかの端末やブラウザーでのログインは解除されました。", "ok")
    return redirect(url_for("console.reports.dashboard"))


def _safe_next(target: str) -> str:
    # Only back into the console: anything else would make the login form an open redirect, and a control
    # character (CR/LF) has no place in a Location header.
    safe = target.startswith("/admin") and "\\" not in target and target.isprintable() and " " not in target
    return target if safe else ""

