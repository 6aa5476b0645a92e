"""What every answer of the service gets: security headers, a session cookie that is Secure over https, ids that
cannot overflow the database, friendly Japanese error pages, and the CSRF token the console and the web form check.
(The server's own answers, its Server header and access line, are handlers.serving's.)"""
from __future__ import annotations

import hmac
import secrets

from flask import Flask, current_app, render_template, request, session
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, UnicodeConverter, ValidationError

# Everything the pages use is served from here: scripts and styles as files, never inline. Images may also come
# from https, as the images in LINE messages the simulator shows do.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'", "img-src 'self' data: https:", "object-src 'none'", "base-uri 'none'",
    "frame-ancestors 'none'", "form-action 'self'",
))
HSTS = "max-age=31536000"
MAX_ID = 2**31 - 1  # PostgreSQL's INTEGER, the ids' column type

TITLES = {400: "送信内容を読み取れませんでした", 403: "操作できません", 404: "ページが見つかりません",
          405: "この操作はできません", 413: "送信されたデータが大きすぎます", 429: "しばらくお待ちください",
          500: "申し訳ありません。エラーが発生しました"}
MESSAGES = {
    400: "送信された内容を読み取れませんでした。入力を確かめて、もう一度お試しください。",
    403: "このページを表示する権限がありません。",
    404: "お探しのページは見つかりませんでした。アドレスが正しいか、もう一度お確かめください。",
    405: "このページではその操作はできません。画面のボタンやリンクからお進みください。",
    413: "送信されたデータが大きすぎるため、受け付けられませんでした。",
    429: "アクセスが集中しています。少し時間をおいてから、もう一度お試しください。",
    500: "サーバーで問題が起きたため、ページを表示できませんでした。少し時間をおいてから、もう一度お試しください。"
         "解決しない場合は、窓口の担当者にご連絡ください。",
}


def install(app: Flask, trust_proxy: bool) -> None:
    """Wire the hardening into an app; call before registering blueprints (the id converter applies to routes)."""
    if trust_proxy:
        # Only behind a proxy that sets these headers: else anyone could claim https or another address.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    app.session_interface = SessionInterface()
    app.url_map.converters["int"] = IdConverter
    app.url_map.converters["default"] = app.url_map.converters["string"] = TextConverter
    app.after_request(secure_headers)
    app.register_error_handler(HTTPException, error_page)


def csrf_token() -> str:
    """The session's CSRF token (made on first use): forms carry it, and a POST without it is refused."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_ok() -> bool:
    """The POST carries the session's token. Another site's form has no way to read it, nor (SameSite=Lax) our cookie."""
    expected, sent = session.get("csrf", ""), request.form.get("csrf_token", "")
    return bool(expected) and hmac.compare_digest(expected.encode(), sent.encode())


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, with the cookie marked Secure whenever the request came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure or super().get_cookie_secure(app)


class IdConverter(IntegerConverter):
    """`<int:...>` in routes: a number beyond the ids' column names nothing, so it is a 404, not an overflow."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = MAX_ID,
                 signed: bool = False):
        super().__init__(map, fixed_digits, min, max, signed)


class TextConverter(UnicodeConverter):
    """`<name>` in routes: a control character (a NUL, which PostgreSQL refuses in text) names nothing: a 404."""

    def to_python(self, value: str) -> str:
        if not value.isprintable():
            raise ValidationError()
        return value


def secure_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")  # console addresses carry ids; keep them in the site
    if request.is_secure:  # over plain http the header means nothing, and would pin a test host to https
        headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def error_page(error: HTTPException):
    """A kind Japanese answer for every HTTP error: JSON for the simulator's API calls, a page for browsers."""
    status = error.code or 500
    custom = error.description != type(error).description  # abort(..., description=...) says what went wrong
    message = error.description if custom else MESSAGES.get(status, MESSAGES[500] if status >= 500 else MESSAGES[400])
    headers = {key: value for key, value in error.get_headers() if key.lower() in ("allow", "retry-after")}
    if request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json":
        return {"error": message}, status, headers
    title = TITLES.get(status, TITLES[500] if status >= 500 else TITLES[400])
    services = current_app.extensions.get("dxdesk")
    return render_template("error.html", status=status, title=title, message=message,
                           program_name=services.config.program_name if services else "",
                           home="/admin" if request.path.startswith("/admin") else "/"), status, headers
