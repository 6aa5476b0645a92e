"""End-to-end fixtures: the real app served on a loopback port, and headless Chromium pointed at it."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking"]


@contextmanager
def served(app) -> Iterator[str]:
    """`app` served by werkzeug in a thread on an ephemeral loopback port: its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture(scope="module")
def live_app(tmp_path_factory):
    """The whole app, served on loopback: (app, base URL)."""
    from app import Settings, create_app

    tmp = tmp_path_factory.mktemp("e2e")
    app = create_app(Settings(database_url=f"sqlite:///{tmp}/e2e.sqlite3", var_dir=tmp, start_workers=False))
    with served(app) as base:
        yield app, base


@pytest.fixture(scope="module")
def live_server(live_app):
    """Base URL of the served app."""
    return live_app[1]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not installed: {CHROMIUM} is missing (Debian package 'chromium')")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def csp_violations():
    """What the browser console reported as blocked by the Content-Security-Policy, in the tab under test."""
    return []


def _tab(browser, csp_violations, timeout: int, **context):
    """A fresh tab in a context of its own (Tokyo, Japanese); no test may leave a CSP violation in its console."""
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", **context)
    tab = context.new_page()
    tab.set_default_timeout(timeout)
    tab.on("console", lambda message: csp_violations.append(message.text)
           if "Content Security Policy" in message.text else None)
    yield tab
    context.close()
    assert csp_violations == [], "the page broke its Content-Security-Policy"


@pytest.fixture
def page(browser, csp_violations):
    """A fresh phone-sized tab with its own localStorage and cookies (so the simulator gives it users of its own)."""
    yield from _tab(browser, csp_violations, 10_000, viewport={"width": 390, "height": 844})


@pytest.fixture
def simulator(page, live_server):
    """The simulator page, as a first-time visitor."""
    page.goto(f"{live_server}/simulator")
    return page


@pytest.fixture
def laptop(browser, csp_violations):
    """A laptop-sized tab (downloads allowed) for the console."""
    yield from _tab(browser, csp_violations, 15_000, viewport={"width": 1366, "height": 900}, accept_downloads=True)
