"""What logs say instead of personal identifiers: a keyed hash for LINE user ids, masks for secret URL tokens."""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

# Until the app sets its secret key (commands that never build one), a key of this process: still no ids in logs.
_key = secrets.token_bytes(32)

_ICAL_TOKEN = re.compile(r"(/calendar/[^/\s?\"]+/)[^/\s?\"]+(\.ics)")
_CHECKIN_TOKEN = re.compile(r"(/checkin/)[^/\s?\".]+")  # /checkin/<token>.png and /admin/checkin/<token>
_SEMINAR_ICS = re.compile(r"(/seminars/)[^/\s?\".]+(\.ics)")  # a registration's calendar file: the same token
_DONE_TOKEN = re.compile(r"(/consult/done/)[^/\s?\"]+")  # the web form's confirmation page: it shows the receipt


def use_key(secret_key: str) -> None:
    """Key the hashes with the app's secret key, so one user reads the same in every process and every line."""
    global _key
    _key = secret_key.encode()


def user_ref(user_id: str | None) -> str:
    """`u:` and 10 hex characters of HMAC-SHA256(secret key, id): one user can be followed in the logs, not named."""
    if not user_id:
        return "u:-"
    return "u:" + hmac.new(_key, str(user_id).encode(), hashlib.sha256).hexdigest()[:10]


class MaskFeedTokens(logging.Filter):
    """Rewrites `/calendar/<coordinator>/<token>.ics` to `/calendar/<coordinator>/***.ics` in a logged line,
    and a seminar check-in token (`/checkin/<token>`) and the web form's confirmation (`/consult/done/<token>`)
    likewise."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(part in message for part in ("/calendar/", "/checkin/", "/seminars/", "/consult/done/")):
            message = _SEMINAR_ICS.sub(r"\1***\2", _ICAL_TOKEN.sub(r"\1***\2", message))
            record.msg, record.args = _DONE_TOKEN.sub(r"\1***", _CHECKIN_TOKEN.sub(r"\1***", message)), ()
        return True


def mask_feed_tokens_in_access_log() -> None:
    """An access line names the request's path: the iCalendar feed's secret token (and the other tokens in paths) must
    not be in it. dxdesk.access is `dxdesk serve`'s (handlers.serving); werkzeug's is that of `flask run`."""
    for name in ("dxdesk.access", "werkzeug"):
        access = logging.getLogger(name)
        if not any(isinstance(f, MaskFeedTokens) for f in access.filters):
            access.addFilter(MaskFeedTokens())


# The request (or event, or job) a log line belongs to: set by the web request, the inbox worker, the sender, a job.
request_id: ContextVar[str] = ContextVar("request_id", default="-")


@contextmanager
def tagged(value: str) -> Iterator[None]:
    """Log lines written inside carry `value` as their request id."""
    token = request_id.set(value)
    try:
        yield
    finally:
        request_id.reset(token)
