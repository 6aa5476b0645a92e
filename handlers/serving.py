"""The HTTP server of `dxdesk serve`: waitress, in this one process, with an access line of our own.

waitress reads requests in one thread and hands each whole request to a pool of worker threads: no thread is started
per request (werkzeug's development server starts one), an idle keep-alive connection holds no worker, and a request
costs about half the CPU werkzeug's took, which under a burst of webhooks is CPU the inbox and the senders get.
"""
from __future__ import annotations

import logging
import re
from urllib.parse import quote

import waitress

from handlers.logs import ENVIRON_KEY
from storage.logids import tagged, user_ref

THREADS = 8
access_log = logging.getLogger("dxdesk.access")
LINE_ID = re.compile(r"U[0-9a-f]{32}")


class AccessLog:
    """WSGI middleware writing one line per request, with the request's id as the app's own lines have it: the method,
    the path without its query string (a search for a name or a phone, a next= address), LINE ids hashed as in every
    log line and tokens masked (storage.logids.MaskFeedTokens), and the status; not the client's address."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        status = ["-"]

        def start(line, headers, exc_info=None):
            status[0] = line.split(" ", 1)[0]
            return start_response(line, headers, exc_info)

        try:
            return self.app(environ, start)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                raw = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
                path = LINE_ID.sub(lambda m: user_ref(m[0]), quote(raw.encode("latin-1"), safe="/:@!$&'()*+,;=~"))
                with tagged(environ.get(ENVIRON_KEY, "-")):
                    access_log.info('"%s %s" %s', environ.get("REQUEST_METHOD", "-"), path, status[0])


def make_server(app, host: str, port: int, *, max_body: int):
    """The server, bound and not yet running: `.run()` serves until SIGINT (or KeyboardInterrupt raised in the main
    thread), then lets the requests in hand finish; `.effective_port` is the port bound (port 0 picks one)."""
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth is N" at every busy moment
    return waitress.create_server(
        AccessLog(app), host=host, port=port, threads=THREADS, ident="dxdesk",
        # X-Forwarded-* are the app's to trust or not (DXDESK_TRUST_PROXY): waitress would drop them.
        clear_untrusted_proxy_headers=False,
        # The app refuses bodies over max_body with its own (Japanese) 413; waitress stops only far larger ones
        # before buffering them to disk.
        max_request_body_size=4 * max_body)
