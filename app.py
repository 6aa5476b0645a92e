"""dxdesk's composition root: settings, `create_app` (the Flask factory) and `main` (the `dxdesk` command)."""
from __future__ import annotations

import logging
import os
import secrets
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, redirect
from sqlalchemy import bindparam, update

from bot.config import Config, ConfigError, load_config
from bot.replies import text
from bot.triage import Triager
from handlers import checkin, console, consult, hardening, ical, logs, pages, simulator, webhook
from handlers.conversations import ConversationService, is_slow
from handlers.delivery import Delivery
from handlers.inbox import InboxWorker
from handlers.liff import LiffVerifier, channel_of
from handlers.line_api import LINE_API_BASE_URL, LineMessenger
from scheduling import multicast, outbox, retention, seminar_reminders, surveys
from scheduling.bookings import BookingService
from scheduling.clock import SystemClock
from scheduling.mailer import Mailer
from scheduling.notifications import CoordinatorNotifier
from storage import logids
from storage.db import Database
from storage.models import InboxEvent
from storage.outbound import queue_messages

log = logging.getLogger("dxdesk")

DONE = update(InboxEvent.__table__).where(InboxEvent.__table__.c.id == bindparam("event_id")).values(
    status="done", processed_at=bindparam("now"), lease_until=None, error=None)  # Core: no ORM plan per event
BACKLOG = timedelta(seconds=2)  # an event that waited longer is answered after LINE's loading animation
LOADING_COVERS = timedelta(seconds=20)  # the animation's length: one per user per this, behind a backlog
MAX_BODY = 1024 * 1024  # LINE's own bodies are far smaller; anything over this is refused with 413


@dataclass
class Settings:
    database_url: str = "sqlite:///var/dxdesk.sqlite3"
    config_path: str | None = None
    secret_key: str | None = None
    line_channel_secret: str | None = None
    line_channel_access_token: str | None = None
    line_api_base_url: str = LINE_API_BASE_URL
    google_service_account_file: str | None = None
    google_impersonate_user: str | None = None
    google_calendar_api_base_url: str | None = None
    smtp_url: str | None = None  # smtp://, smtp+starttls:// or smtps://[user:pass@]host[:port]
    mail_from: str | None = None  # e.g. かごしまDX相談窓口 <dx-desk@example.jp>
    public_base_url: str = ""  # how users reach this service, for links in LINE messages
    trust_proxy: bool = False  # behind a reverse proxy: take https and the client address from its X-Forwarded-*
    var_dir: Path = field(default_factory=lambda: Path("var"))  # the generated secret key, activity photos
    start_workers: bool = True
    inbox_threads: int = 2  # per process (DXDESK_INBOX_THREADS); deploy/gunicorn.conf.py gives each worker 1
    sender_threads: int = 4  # LINE calls at once per process: each user's messages still go one by one, in order
    migrate: bool = True
    simulator: bool = False  # with a LINE channel, the simulator only when this is on (and for signed-in staff)
    liff_id: str | None = None  # the LIFF app /consult is opened as inside LINE ("<channel id>-<random>")

    @classmethod
    def from_env(cls, env=os.environ) -> Settings:
        get = lambda name: env.get(name) or None  # noqa: E731 - an empty variable counts as unset
        return cls(
            database_url=get("DXDESK_DATABASE_URL") or cls.database_url,
            config_path=get("DXDESK_CONFIG"),
            secret_key=get("DXDESK_SECRET_KEY"),
            line_channel_secret=get("LINE_CHANNEL_SECRET"),
            line_channel_access_token=get("LINE_CHANNEL_ACCESS_TOKEN"),
            line_api_base_url=get("LINE_API_BASE_URL") or LINE_API_BASE_URL,
            google_service_account_file=get("GOOGLE_SERVICE_ACCOUNT_FILE"),
            google_impersonate_user=get("GOOGLE_IMPERSONATE_USER"),
            google_calendar_api_base_url=get("GOOGLE_CALENDAR_API_BASE_URL"),
            smtp_url=get("DXDESK_SMTP_URL"),
            mail_from=get("DXDESK_MAIL_FROM"),
            public_base_url=get("DXDESK_PUBLIC_URL") or "",
            trust_proxy=get("DXDESK_TRUST_PROXY") == "1",
            simulator=(get("DXDESK_SIMULATOR") or "").lower() == "on",
            liff_id=get("DXDESK_LIFF_ID"),
            var_dir=Path(get("DXDESK_VAR_DIR") or "var"),
            inbox_threads=_threads(get("DXDESK_INBOX_THREADS"), "DXDESK_INBOX_THREADS", cls.inbox_threads),
            sender_threads=_threads(get("DXDESK_SENDER_THREADS"), "DXDESK_SENDER_THREADS", cls.sender_threads),
        )

    @property
    def line_configured(self) -> bool:
        return bool(self.line_channel_secret and self.line_channel_access_token)


def _threads(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    if value.strip().isdecimal() and 1 <= int(value) <= 32:
        return int(value)
    raise ConfigError(f"{name} はスレッドの数（1 から 32 までの整数）にしてください。いまの値: {value}")


@dataclass
class Services:
    """Everything built once per app and shared by its requests and workers."""

    settings: Settings
    config: Config
    db: Database
    clock: object
    triager: Triager
    line: LineMessenger | None
    delivery: Delivery
    conversations: ConversationService
    bookings: BookingService
    inbox: InboxWorker | None = None
    liff: LiffVerifier | None = None  # the web form's LINE user check, when it is a LIFF app too
    loading_shown: dict[str, datetime] = field(default_factory=dict)  # when each user last saw it, behind a backlog

    def process(self, event: InboxEvent) -> None:
        """Run one inbox event through the bot in one transaction, then send what it queued."""
        now = self.clock.now()
        if self.line and event.source == "line" and (is_slow(event.payload) or self._behind(event, now)):
            self.line.show_loading(event.user_key)  # a backlog or a calendar search: let the user see we are on it
        with self.db.unit_of_work() as s:
            handled = self.conversations.handle_event(s, event, now)
            s.execute(DONE, {"event_id": event.id, "now": now})
            taken = self.delivery.take(s, handled.outbound_ids, now)  # claimed with the answer itself
            s.commit()
        self.delivery.dispatch(taken)
        for work in handled.after_commit:
            work()

    def _behind(self, event: InboxEvent, now: datetime) -> bool:
        """Whether the event waited long enough for an animation, and none was shown to its user lately: behind a
        backlog, one covers the user's next events for a while instead of doubling the calls to LINE."""
        if now - event.received_at <= BACKLOG:
            return False
        shown = self.loading_shown.get(event.user_key)
        if shown is not None and now - shown < LOADING_COVERS:
            return False
        if len(self.loading_shown) > 10_000:
            self.loading_shown.clear()
        self.loading_shown[event.user_key] = now
        return True

    def stop(self) -> None:
        """Stop this process's inbox workers and sender threads (tests, and `dxdesk serve` on its way out)."""
        if self.inbox:
            self.inbox.stop()
        self.delivery.stop()

    def jobs(self) -> list[tuple[str, object, float]]:
        """What the scheduler runs: scheduled sends, retries of failed deliveries, the booking reconciler, and the
        daily purge of personal data past its retention (at start-up, then every day)."""
        return [("outbox", lambda: outbox.send_due(self.db, self.delivery, self.clock), 15.0),
                ("delivery", self.delivery.send_due, 10.0),
                ("reconcile", self.bookings.reconcile, 60.0),
                ("surveys", self.plan_surveys, 60.0),
                # seminars: reminders planned into the outbox; multicast batches retried when due
                ("seminar_reminders", lambda: seminar_reminders.plan(self.db, self.config.seminars, self.clock), 60.0),
                ("multicast", lambda: multicast.send_due(self.db, self.line, self.clock), 15.0),
                ("privacy", lambda: retention.purge_due(self.db, self.config.privacy, self.clock,
                                                        self.settings.var_dir), 86400.0)]

    def plan_surveys(self, seminar_id: int | None = None) -> int:
        """Put the surveys whose time has come (or seminar_id's, now) in the outbox; the outbox job sends them."""
        with self.db.unit_of_work() as s:
            added = surveys.plan(s, self.config, self.clock.now(), seminar_id)
            s.commit()
        return added

    def apologise(self, event: InboxEvent) -> None:
        """An event the bot could not process: tell the user rather than leave them waiting."""
        source = event.payload.get("source")
        user_id = source.get("userId") if isinstance(source, dict) else None
        if not user_id or event.payload.get("type") not in ("message", "postback"):
            return
        with self.db.unit_of_work() as s:
            ids = queue_messages(s, event.source, event.user_key, [text(
                "申し訳ありません。ただいまメッセージをうまく処理できませんでした。"
                "お手数ですが、少し時間をおいてもう一度お送りいただくか、「担当者と話したい」とお送りください。")],
                self.clock.now())
            s.commit()
        self.delivery.send(ids)


def build_services(settings: Settings, clock=None) -> Services:
    config = load_config(settings.config_path)
    db = Database(settings.database_url)
    if settings.migrate:
        db.upgrade()
    clock = clock or SystemClock()
    line = (LineMessenger(settings.line_channel_access_token, settings.line_api_base_url)
            if settings.line_configured else None)
    policy_url = f"{settings.public_base_url.rstrip('/')}/privacy" if settings.public_base_url else "/privacy"
    triager = Triager(config)
    mailer = Mailer(settings.smtp_url, settings.mail_from or "") if settings.smtp_url else None
    delivery = Delivery(db, clock, line, mailer=mailer)
    notifier = CoordinatorNotifier(config, line_enabled=line is not None, email_enabled=mailer is not None,
                                   public_url=settings.public_base_url)
    bookings = BookingService(db, config, _calendar(settings, db), clock, delivery, notify=notifier)
    services = Services(settings, config, db, clock, triager, line, delivery,
                        ConversationService(config, triager, policy_url, bookings,
                                            loading=line.show_loading if line else None,
                                            profile_name=line.profile_name if line else None,
                                            public_url=settings.public_base_url,
                                            notify_waiting=notifier.waiting, var_dir=settings.var_dir), bookings)
    if settings.liff_id:
        services.liff = LiffVerifier(settings.liff_id, settings.line_api_base_url)
    services.inbox = InboxWorker(db, services.process, clock, threads=settings.inbox_threads,
                                 on_give_up=services.apologise)
    return services


def _calendar(settings: Settings, db: Database):
    """Google Calendar when a service-account key is configured, else the database-only local calendar."""
    if settings.google_service_account_file:
        from scheduling.google_calendar import GoogleCalendarGateway
        return GoogleCalendarGateway(settings.google_service_account_file, settings.google_impersonate_user,
                                     settings.google_calendar_api_base_url)
    from scheduling.local_calendar import LocalCalendarGateway
    return LocalCalendarGateway(db)


def _secret_key(settings: Settings) -> str:
    if settings.secret_key:
        return settings.secret_key
    path = settings.var_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def check_settings(settings: Settings) -> None:
    """Refuse settings the service would start with but fail users on: LINE takes only absolute links in messages."""
    if settings.liff_id and channel_of(settings.liff_id) is None:
        raise ConfigError(f"DXDESK_LIFF_ID はLINE Developersコンソールに表示されるLIFF ID（例: 1234567890-AbcdEfgh）にしてください。"
                          f"いまの値: {settings.liff_id}")
    url = settings.public_base_url
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ConfigError(f"DXDESK_PUBLIC_URL は http:// か https:// で始まる完全なアドレスにしてください"
                              f"（例: https://dx-desk.example.jp）。いまの値: {url}")
    elif settings.line_configured:
        raise ConfigError("LINEチャネル（LINE_CHANNEL_SECRET / LINE_CHANNEL_ACCESS_TOKEN）を使うときは "
                          "DXDESK_PUBLIC_URL に、利用者がこのサービスにアクセスできる https:// のアドレスを設定してください"
                          "（例: https://dx-desk.example.jp）。LINEは相対リンク（/privacy など）を含むメッセージを受け付けません。")


def create_app(settings: Settings | None = None, clock=None) -> Flask:
    """The Flask app: webhook, simulator, staff console and health check over one set of services."""
    settings = settings or Settings.from_env()
    check_settings(settings)
    services = build_services(settings, clock)
    app = Flask("dxdesk", template_folder=str(Path(__file__).parent / "handlers" / "templates"),
                static_folder=str(Path(__file__).parent / "handlers" / "static"))
    app.config.update(SECRET_KEY=_secret_key(settings), MAX_CONTENT_LENGTH=MAX_BODY,
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", JSON_AS_ASCII=False)
    app.json.ensure_ascii = False
    app.extensions["dxdesk"] = services
    logs.configure()
    logs.install(app)
    hardening.install(app, trust_proxy=settings.trust_proxy)
    logids.use_key(app.config["SECRET_KEY"])
    logids.mask_feed_tokens_in_access_log()
    for blueprint in (webhook.bp, simulator.bp, pages.bp, console.bp, ical.bp, checkin.bp, consult.bp):
        app.register_blueprint(blueprint)

    @app.get("/")
    def index():
        """Newcomers land on the simulator when there is no LINE channel, else on the console."""
        return redirect("/admin" if services.line else "/simulator")

    if settings.start_workers:
        services.delivery.start(settings.sender_threads)
        services.inbox.start()
    return app


def main(argv: list[str] | None = None) -> int:
    """The `dxdesk` command; it lives in handlers/cli.py, imported here so it can build on this module."""
    from handlers import cli

    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
