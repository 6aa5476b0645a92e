"""How the service logs: one JSON object per line (or plain text when DXDESK_LOG_FORMAT=text), each with the request
id of the web request, inbox event, message or job it belongs to. What goes in is already free of personal data
(storage/logids.py): ids of rows, hashed LINE ids, masked tokens, never SQL parameters."""
from __future__ import annotations

import json
import logging
import os
import sys
import traceback
import uuid
from datetime import UTC, datetime

from storage.logids import request_id

QUIET = ("alembic", "apscheduler", "googleapiclient.discovery_cache")
HEADER = "X-Request-Id"
ENVIRON_KEY = "dxdesk.request_id"  # the WSGI environ's copy, for the server's access line after the request ended
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname.lower(), "logger": record.name, "request_id": request_id.get(),
                "message": record.getMessage()}
        if record.exc_info and record.exc_info[0]:
            # The exception's type and where it was raised, not its message: that can quote what a user typed.
            line["error"] = record.exc_info[0].__name__
            frames = traceback.extract_tb(record.exc_info[2])
            ours = [f for f in frames if "site-packages" not in f.filename] or frames  # the product's frames first
            line["at"] = [f"{f.filename}:{f.lineno} {f.name}" for f in ours][-8:]
        return json.dumps(line, ensure_ascii=False)


class _WithRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def handler(stream, *, json_format: bool) -> logging.Handler:
    """A handler writing the service's lines (JSON, or the text format) to `stream`, each with its request id."""
    out = logging.StreamHandler(stream)
    out.dxdesk = True
    out.addFilter(_WithRequestId())
    out.setFormatter(JsonFormatter() if json_format else logging.Formatter(TEXT_FORMAT))
    return out


def configure(env=os.environ) -> None:
    """Log to stderr, once per process, JSON lines unless DXDESK_LOG_FORMAT=text; level INFO (DXDESK_LOG_LEVEL)."""
    root = logging.getLogger()
    if any(getattr(h, "dxdesk", False) for h in root.handlers):
        return
    root.addHandler(handler(sys.stderr, json_format=(env.get("DXDESK_LOG_FORMAT") or "json").lower() != "text"))
    root.setLevel((env.get("DXDESK_LOG_LEVEL") or "INFO").upper())
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def install(app) -> None:
    """Give every request an id (the proxy's X-Request-Id when it is a sane one), on its log lines and its response."""
    from flask import g, request  # here: the commands that never serve a page do not import Flask

    @app.before_request
    def _start() -> None:
        sent = request.headers.get(HEADER, "")
        request.environ[ENVIRON_KEY] = sent if _sane(sent) else uuid.uuid4().hex
        g.request_token = request_id.set(request.environ[ENVIRON_KEY])

    @app.after_request
    def _finish(response):
        response.headers[HEADER] = request_id.get()
        return response

    @app.teardown_request
    def _reset(exc) -> None:
        token = g.pop("request_token", None)
        if token is not None:
            request_id.reset(token)


def _sane(value: str) -> bool:
    return 0 < len(value) <= 64 and value.isascii() and all(c.isalnum() or c in "-_." for c in value)
