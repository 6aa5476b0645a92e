"""dxdesk's composition root: settings, `create_app` (the Flask factory) and `main` (the `dxdesk` command)."""
from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import secrets
import signal
import sys
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, redirect

from bot.config import Config, ConfigError, load_config
from bot.replies import text
from bot.triage import Triager
from handlers import console, ical, pages, simulator, webhook
from handlers.conversations import ConversationService
from handlers.delivery import Delivery
from handlers.inbox import InboxWorker
from handlers.line_api import LINE_API_BASE_URL, LineMessenger
from handlers.richmenu import install_rich_menu
from scheduling import outbox, popup
from scheduling.bookings import BookingService
from scheduling.clock import SystemClock
from scheduling.mailer import Mailer
from scheduling.notifications import CoordinatorNotifier
from scheduling.ticker import Ticker, run_scheduler_command
from storage import logids
from storage.db import Database
from storage.models import InboxEvent
from storage.outbound import queue_messages
from storage.staff import add_user, has_users

log = logging.getLogger("dxdesk")

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
    var_dir: Path = field(default_factory=lambda: Path("var"))
    start_workers: bool = True
    inbox_threads: int = 2
    migrate: bool = True

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
        )

    @property
    def line_configured(self) -> bool:
        return bool(self.line_channel_secret and self.line_channel_access_token)


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

    def process(self, event: InboxEvent) -> None:
        """Run one inbox event through the bot in one transaction, then send what it queued."""
        now = self.clock.now()
        if self.line and event.source == "line" and now - event.received_at > timedelta(seconds=2):
            self.line.show_loading(event.user_key)  # a backlog: let the user see we are on it
        with self.db.unit_of_work() as s:
            row = s.get(InboxEvent, event.id)
            handled = self.conversations.handle_event(s, row, now)
            row.status, row.processed_at, row.lease_until, row.error = "done", now, None, None
            s.commit()
        self.delivery.send(handled.outbound_ids)
        for work in handled.after_commit:
            work()

    def jobs(self) -> list[tuple[str, object, float]]:
        """What the scheduler runs: scheduled sends, retries of failed deliveries, and the booking reconciler."""
        return [("outbox", lambda: outbox.send_due(self.db, self.delivery, self.clock), 15.0),
                ("delivery", self.delivery.send_due, 10.0),
                ("reconcile", self.bookings.reconcile, 60.0)]

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
    notifier = CoordinatorNotifier(config, line_enabled=line is not None, email_enabled=mailer is not None)
    bookings = BookingService(db, config, _calendar(settings, db), clock, delivery, notify=notifier)
    services = Services(settings, config, db, clock, triager, line, delivery,
                        ConversationService(config, triager, policy_url, bookings,
                                            loading=line.show_loading if line else None), bookings)
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
    logids.use_key(app.config["SECRET_KEY"])
    logids.mask_feed_tokens_in_access_log()
    for blueprint in (webhook.bp, simulator.bp, pages.bp, console.bp, ical.bp):
        app.register_blueprint(blueprint)

    @app.get("/")
    def index():
        """Newcomers land on the simulator when there is no LINE channel, else on the console."""
        return redirect("/admin" if services.line else "/simulator")

    if settings.start_workers:
        services.inbox.start()
    return app


# --- the dxdesk command -------------------------------------------------------------------------------

def _serve(args) -> int:
    from werkzeug.serving import make_server

    settings = Settings.from_env()
    app = create_app(settings)
    services = app.extensions["dxdesk"]
    ticker = None if args.no_scheduler else Ticker(services.db, services.jobs())
    server = make_server(args.host, args.port, app, threaded=True)
    base = f"http://{args.host}:{server.server_port}"
    print(f"dxdesk を起動しました: {base}")
    print(f"  シミュレーター   {base}/simulator")
    print(f"  スタッフ画面     {base}/admin")
    print(f"  LINE Webhook     {base}/callback" + ("" if settings.line_configured else "（LINE未設定: 503を返します）"))
    print(f"  ヘルスチェック   {base}/healthz", flush=True)
    if not has_users(services.db):
        print("スタッフ画面のユーザーはまだいません。作成: dxdesk users add LOGIN --role admin", flush=True)
    if ticker:
        ticker.start()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if ticker:
            ticker.stop()
        services.inbox.stop()
    return 0


def _scheduler(args) -> int:
    services = build_services(Settings.from_env())
    return run_scheduler_command(services, services.jobs())


def _slots(args) -> int:
    from bot.jatime import TOKYO, format_date, format_time_range

    services = build_services(Settings.from_env())
    first = args.from_date or services.clock.now().astimezone(TOKYO).date()
    start = datetime.combine(first, datetime.min.time(), TOKYO)
    with services.db.unit_of_work() as s:
        slots = services.bookings.free(s, start=start, end=start + timedelta(days=args.days),
                                       now=None if args.from_date else services.clock.now(),
                                       method=args.method, coordinator=args.coordinator)
    if args.json:
        print(json.dumps([{"coordinator": x.coordinator, "start": x.start.isoformat(), "end": x.end.isoformat()}
                          for x in slots], ensure_ascii=False, indent=2))
        return 0
    if not slots:
        print("空いている枠はありません。")
    day = None
    for x in slots:
        if x.start.date() != day:
            day = x.start.date()
            print(f"\n{format_date(day)}")
        coordinator = services.config.coordinator(x.coordinator)
        print(f"  {format_time_range(x.start, x.end).split(' ', 1)[1]}  {coordinator.name}（{x.coordinator}）")
    return 0


def _popup_add(args) -> int:
    from bot.jatime import TOKYO

    services = build_services(Settings.from_env())
    try:
        start_at = datetime.combine(args.date, _clock_time(args.start), TOKYO)
        end_at = datetime.combine(args.date, _clock_time(args.end), TOKYO)
        with services.db.unit_of_work() as s:
            day = popup.add_day(s, region=args.region, venue=args.venue, address=args.address, start_at=start_at,
                                end_at=end_at, slot_minutes=args.slot_minutes, capacity=args.capacity,
                                coordinator_id=args.coordinator, note=args.note, now=services.clock.now(),
                                config=services.config)
            s.commit()
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(f"出張相談会を登録しました（ID {day.id}）: {args.date} {args.venue}")
    return 0


def _popup_list(args) -> int:
    services = build_services(Settings.from_env())
    with services.db.unit_of_work() as s:
        offers = popup.offers(s, services.config, now=services.clock.now(), region=None)
    if args.json:
        print(json.dumps([{"id": o.day_id, "venue": o.venue, "region": o.region, "start": o.start.isoformat(),
                           "end": o.end.isoformat(), "free": [x.start.isoformat() for x in o.slots]} for o in offers],
                         ensure_ascii=False, indent=2))
        return 0
    if not offers:
        print("受付中の出張相談会はありません。")
    for o in offers:
        print(f"{o.day_id:>4}  {o.start:%Y-%m-%d %H:%M}〜{o.end:%H:%M}  {o.venue}（{o.region}）  空き {len(o.slots)} 枠")
    return 0


def _clock_time(text: str):
    from datetime import time

    try:
        return time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"時刻は HH:MM で指定してください: {text}") from None


def _outbox(args) -> int:
    listed = outbox.items(_database(), all=args.all)
    if args.json:
        print(json.dumps(listed, ensure_ascii=False, indent=2))
        return 0
    if not listed:
        print("予定されている送信はありません。")
    for item in listed:
        print(f"{item['due_at'][:16].replace('T', ' ')}  {item['kind']:<22} {item['status']:<10} {item['ref']}")
    return 0


def _database() -> Database:
    """The configured database, migrated: every command works on a fresh one."""
    db = Database(Settings.from_env().database_url)
    db.upgrade()
    return db


def _db_upgrade(args) -> int:
    _database()
    print("データベースを最新の状態にしました。")
    return 0


def _consultations(args) -> int:
    from storage.queries import consultations_as_json

    items = consultations_as_json(_database(), since=args.since)
    if args.json:
        print(json.dumps(items, ensure_ascii=False, indent=2))
        return 0
    if not items:
        print("記録された相談はありません。")
    for c in items:
        print(f"{c['receipt_no']}  {c['received_at'][:16].replace('T', ' ')}  {c['category']:<10} "
              f"{c['method']:<7} {c['status']:<10} {c['company']}")
    return 0


def _triage(args) -> int:
    triager = Triager(load_config(os.environ.get("DXDESK_CONFIG") or None))
    messages = [args.text] if args.text is not None else (line.rstrip("\n") for line in sys.stdin)
    for message in messages:
        result = triager.classify(message)
        if args.json:
            print(json.dumps(result.as_json(), ensure_ascii=False), flush=True)
        else:
            print(f"{result.category}\t{result.confidence:.2f}\t{' '.join(result.keywords)}", flush=True)
    return 0


def _users_add(args) -> int:
    password = getpass.getpass("パスワード: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        print("パスワードは8文字以上にしてください。", file=sys.stderr)
        return 2
    try:
        add_user(_database(), args.login, password, args.role, datetime.now().astimezone())
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(f"スタッフ画面のユーザー {args.login}（{args.role}）を追加しました。")
    return 0


def _line_richmenu(args) -> int:
    settings = Settings.from_env()
    if not settings.line_channel_access_token:
        print("LINE_CHANNEL_ACCESS_TOKEN が設定されていません。", file=sys.stderr)
        return 2
    menu_id = install_rich_menu(LineMessenger(settings.line_channel_access_token, settings.line_api_base_url))
    print(f"リッチメニューを設定しました: {menu_id}")
    return 0


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"日付は YYYY-MM-DD で指定してください: {text}") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dxdesk", description="かごしまDX相談窓口（LINE）")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="Webhook・シミュレーター・スタッフ画面を起動する")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--no-scheduler", action="store_true", help="スケジューラーを動かさない")
    serve.set_defaults(run=_serve)

    db = sub.add_parser("db", help="データベース").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="マイグレーションを適用する").set_defaults(run=_db_upgrade)

    cons = sub.add_parser("consultations", help="記録された相談の一覧")
    cons.add_argument("--json", action="store_true")
    cons.add_argument("--since", type=_iso_date)
    cons.set_defaults(run=_consultations)

    triage = sub.add_parser("triage", help="相談文を分野に分類する")
    triage.add_argument("text", nargs="?")
    triage.add_argument("--json", action="store_true")
    triage.set_defaults(run=_triage)

    users = sub.add_parser("users", help="スタッフ画面のユーザー").add_subparsers(dest="users_command", required=True)
    add = users.add_parser("add", help="ユーザーを追加する")
    add.add_argument("login")
    add.add_argument("--role", required=True, choices=("admin", "coordinator", "viewer"))
    add.set_defaults(run=_users_add)

    sub.add_parser("scheduler", help="スケジューラーだけを動かす（同時に1つだけ）").set_defaults(run=_scheduler)

    slots = sub.add_parser("slots", help="空いている相談枠")
    slots.add_argument("--from", dest="from_date", type=_iso_date, help="この日から（受付期限・予約期間は適用しない）")
    slots.add_argument("--days", type=int, default=7)
    slots.add_argument("--method", choices=("visit", "online", "phone", "email"))
    slots.add_argument("--coordinator")
    slots.add_argument("--json", action="store_true")
    slots.set_defaults(run=_slots)

    box = sub.add_parser("outbox", help="予定されている送信（リマインダーなど）")
    box.add_argument("--json", action="store_true")
    box.add_argument("--all", action="store_true", help="送信済み・取り消し済みも表示する")
    box.set_defaults(run=_outbox)

    popups = sub.add_parser("popup", help="出張相談会").add_subparsers(dest="popup_command", required=True)
    add_day = popups.add_parser("add", help="出張相談会の日を登録する")
    add_day.add_argument("--date", type=_iso_date, required=True)
    add_day.add_argument("--region", required=True, help="kagoshima, nansatsu, hokusatsu, aira_isa, osumi, kumage, amami")
    add_day.add_argument("--venue", required=True)
    add_day.add_argument("--address")
    add_day.add_argument("--start", default="10:00")
    add_day.add_argument("--end", default="16:00")
    add_day.add_argument("--slot-minutes", type=int, default=60)
    add_day.add_argument("--capacity", type=int, default=1, help="同じ時間に受けられる相談の数")
    add_day.add_argument("--coordinator", help="担当コーディネーターのID（その人のカレンダーに登録）")
    add_day.add_argument("--note")
    add_day.set_defaults(run=_popup_add)
    list_days = popups.add_parser("list", help="受付中の出張相談会")
    list_days.add_argument("--json", action="store_true")
    list_days.set_defaults(run=_popup_list)

    line = sub.add_parser("line", help="LINEチャネルの設定").add_subparsers(dest="line_command", required=True)
    line.add_parser("richmenu", help="リッチメニューをチャネルに設定する").set_defaults(run=_line_richmenu)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
