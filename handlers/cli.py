"""The `dxdesk` command: one small function per subcommand over the services app.py builds.

The web stack (Flask, the LINE SDK, the Google client) is imported by the commands that use it, not here:
`dxdesk triage` reads a file of messages and must start in a fraction of a second.
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import sys
import unicodedata
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from bot.config import ConfigError, load_config
from bot.intake import METHOD_NAMES
from bot.jatime import TOKYO, format_date, format_time_range, to_tokyo
from bot.menu import STATUS_LABELS
from bot.triage import Triager
from handlers import logs

if TYPE_CHECKING:
    from storage.db import Database


class CommandError(Exception):
    """What the operator must do before the command can run; printed as it is, exit code 2."""


def _serve(args) -> int:
    from app import MAX_BODY, Settings, create_app
    from handlers.serving import make_server
    from scheduling.ticker import Ticker
    from storage.staff import has_users

    settings = Settings.from_env()
    app = create_app(settings)
    services = app.extensions["dxdesk"]
    ticker = None if args.no_scheduler else Ticker(services.db, services.jobs())
    server = make_server(app, args.host, args.port, max_body=MAX_BODY)
    base = f"http://{args.host}:{server.effective_port}"
    print(f"dxdesk を起動しました: {base}")
    if not settings.line_configured or settings.simulator:  # in LINE mode it is 404 unless DXDESK_SIMULATOR=on
        print(f"  シミュレーター   {base}/simulator" + ("（スタッフ画面にログインして使います）" if settings.line_configured else ""))
    print(f"  スタッフ画面     {base}/admin")
    print(f"  Web相談フォーム  {base}/consult")
    print(f"  LINE Webhook     {base}/callback" + ("" if settings.line_configured else "（LINE未設定: 503を返します）"))
    print(f"  ヘルスチェック   {base}/healthz", flush=True)
    if not has_users(services.db):
        print("スタッフ画面のユーザーはまだいません。作成: dxdesk users add LOGIN --role admin", flush=True)
    if ticker:
        ticker.start()
    signal.signal(signal.SIGTERM, _interrupt)  # waitress stops on KeyboardInterrupt, finishing the requests in hand
    try:
        server.run()
    finally:
        if ticker:
            ticker.stop()
        services.stop()
    return 0


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def _scheduler(args) -> int:
    from scheduling.ticker import run_scheduler_command
    services = _services()
    return run_scheduler_command(services, services.jobs())


def _slots(args) -> int:
    services = _services()
    known = [c.id for c in services.config.coordinators]
    if args.coordinator and args.coordinator not in known:
        raise CommandError(f"コーディネーター「{args.coordinator}」は設定にありません。"
                           f"指定できるID: {', '.join(known) or '（設定されたコーディネーターがいません）'}")
    first = args.from_date or to_tokyo(services.clock.now()).date()
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
        if to_tokyo(x.start).date() != day:
            day = to_tokyo(x.start).date()
            print(f"\n{format_date(day)}")
        coordinator = services.config.coordinator(x.coordinator)
        # The range without the day's heading (which may hold a holiday's name with spaces in it).
        hours = format_time_range(x.start, x.end).removeprefix(f"{format_date(day)} ")
        print(f"  {hours}  {coordinator.name}（{x.coordinator}）")
    return 0


def _popup_add(args) -> int:
    from scheduling import popup
    services = _services()
    try:
        start_at = datetime.combine(args.date, _clock_time(args.start), TOKYO)
        end_at = datetime.combine(args.date, _clock_time(args.end), TOKYO)
        with services.db.unit_of_work() as s:
            day = popup.add_day(s, region=args.region, venue=args.venue, address=args.address, start_at=start_at,
                                end_at=end_at, slot_minutes=args.slot_minutes, capacity=args.capacity,
                                coordinator_id=args.coordinator, note=args.note, now=services.clock.now(),
                                config=services.config)
            s.commit()
    except ValueError as exc:  # a refusal worded for the operator: printed by main(), exit code 2
        raise CommandError(str(exc)) from None
    print(f"出張相談会を登録しました（ID {day.id}）: {args.date} {args.venue}")
    return 0


def _popup_list(args) -> int:
    from scheduling import popup
    services = _services()
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


def _seminar_add(args) -> int:
    from storage import seminars
    services = _services()
    start_at, end_at = _tokyo_minute(args.start, "開始日時"), _tokyo_minute(args.end, "終了日時")
    deadline_at = _tokyo_minute(args.deadline, "申込締切") if args.deadline else None
    fields = {"title": args.title, "start_at": start_at, "end_at": end_at, "onsite_seats": args.onsite_seats,
              "online_seats": args.online_seats, "online_url": args.online_url or None, "deadline_at": deadline_at,
              "survey_id": args.survey or None}
    survey_ids = seminars.configured_survey_ids(services.config)
    try:
        seminars.validate(**fields, now=services.clock.now(), survey_ids=survey_ids)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    with services.db.unit_of_work() as s:
        venue = {"venue": args.venue, "venue_address": None, "map_url": None} if args.venue else {}
        seminar = seminars.create(s, **fields, **venue, subsidy_briefing=args.subsidy_briefing,
                                  now=services.clock.now())
        s.commit()
    if args.json:
        print(json.dumps({"id": seminar.id}))
    else:
        print(f"セミナーを登録しました（ID {seminar.id}）: {format_time_range(start_at, end_at)} {args.title}")
    return 0


def _tokyo_minute(text: str, label: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=TOKYO)
    except ValueError:
        raise CommandError(f"{label}は \"YYYY-MM-DD HH:MM\" の形で指定してください（例: \"2026-12-10 14:00\"）: {text}") from None


def _seminar_list(args) -> int:
    from storage import seminars
    with _database().unit_of_work() as s:
        rows = seminars.listing(s)
    items = [{"id": x.id, "title": x.title, "start": to_tokyo(x.start_at).isoformat(),
              "end": to_tokyo(x.end_at).isoformat(), "onsite_seats": x.onsite_seats, "online_seats": x.online_seats,
              "onsite_taken": seats.taken["onsite"], "online_taken": seats.taken["online"],
              "waiting": seats.waiting_total, "status": x.status} for x, seats in rows]
    if _json_or_none(args, items, "登録されたセミナーはありません。"):
        return 0
    # The year too: the list runs back over past seminars.
    _print_table(("ID", "日時", "会場", "オンライン", "キャンセル待ち", "タイトル"),
                 [(str(x.id), f"{to_tokyo(x.start_at).year}年{format_time_range(x.start_at, x.end_at)}",
                   f"{i['onsite_taken']}/{x.onsite_seats}", f"{i['online_taken']}/{x.online_seats}", str(i["waiting"]),
                   x.title) for (x, _), i in zip(rows, items)])
    return 0


def _json_or_none(args, items: list[dict], none: str) -> bool:
    """--json prints the items, and no items says `none`: True when that was all there was to print."""
    if args.json:
        print(json.dumps(items, ensure_ascii=False, indent=2))
    elif not items:
        print(none)
    return args.json or not items


def _seminar_or_refuse(s, seminar_id: int):
    from storage.models import Seminar
    seminar = s.get(Seminar, seminar_id)
    if seminar is None:
        raise CommandError(f"セミナー（ID {seminar_id}）は見つかりません。dxdesk seminar list で確かめてください。")
    return seminar


def _seminar_registrations(args) -> int:
    from storage import seminars
    from storage.models import SEMINAR_MODES
    with _database().unit_of_work() as s:
        _seminar_or_refuse(s, args.seminar_id)
        rows = seminars.registrations(s, args.seminar_id)
        # Positions per mode, real and simulated registrations each in their own line (scheduling.seminars).
        position = {r.id: n for mode in SEMINAR_MODES for kind in (False, True)
                    for n, r in enumerate(seminars.waiting_list(s, args.seminar_id, mode, simulated=kind), 1)}
    items = [{"id": r.id, "user": r.user_id, "mode": r.mode, "status": r.status,
              "waiting_position": position.get(r.id) if r.status == "waiting" else None,
              "company": r.company, "contact_name": r.contact_name, "simulated": r.simulated,
              "registered_at": to_tokyo(r.created_at).isoformat()} for r in rows]
    if _json_or_none(args, items, "このセミナーへのお申し込みはまだありません。"):
        return 0
    modes = {"onsite": "会場", "online": "オンライン"}
    statuses = {"registered": "申込済み", "waiting": "キャンセル待ち", "cancelled": "キャンセル", "attended": "出席"}
    _print_table(("ID", "参加方法", "状況", "会社名", "お名前", "LINEユーザーID"),
                 [(str(i["id"]), modes.get(i["mode"], i["mode"]),
                   statuses.get(i["status"], i["status"]) + (f"（{i['waiting_position']}番目）" if i["waiting_position"] else ""),
                   i["company"] or "", i["contact_name"] or "", i["user"]) for i in items])
    return 0


def _seminar_attend(args) -> int:
    from sqlalchemy import select
    from storage import seminars
    from storage.models import LIVE_REGISTRATION, SeminarRegistration
    services = _services()
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        _seminar_or_refuse(s, args.seminar_id)
        if args.all_registered:
            marked = seminars.attend_all(s, args.seminar_id, by="cli", now=now)
            s.commit()
            print(f"出席にしました: {marked}名")
            return 0
        mine = select(SeminarRegistration).where(SeminarRegistration.seminar_id == args.seminar_id)
        registration = s.scalar(mine.where(SeminarRegistration.id == args.registration)
                                if args.registration is not None else
                                mine.where(SeminarRegistration.user_id == args.user,
                                           SeminarRegistration.status.in_(LIVE_REGISTRATION)))
        if registration is None:
            raise CommandError("このセミナーに、指定されたお申し込みは見つかりません。"
                               "dxdesk seminar registrations ID で確かめてください。")
        result = seminars.mark_attended(s, registration, by="cli", now=now)
        s.commit()
    if result == "no_seat":
        raise CommandError(f"お申し込み（ID {registration.id}）は"
                           f"{'キャンセル待ち' if registration.status == 'waiting' else 'キャンセル済み'}のため、出席にできません。")
    print(f"お申し込み（ID {registration.id}）を出席にしました。" if result == "marked"
          else f"お申し込み（ID {registration.id}）はすでに出席になっています。")
    return 0


def _seminar_survey(args) -> int:
    from scheduling import outbox
    services = _services()
    with services.db.unit_of_work() as s:
        _surveyed_seminar(s, services.config, args.seminar_id)
    added = services.plan_surveys(args.seminar_id)
    outbox.send_due(services.db, services.delivery, services.clock)
    print(f"アンケートを送りました: {added}名（出席者のうち、まだ送っていない方）" if added
          else "新たに送る相手はいません（出席者全員に送信済みか、出席者がいません）。")
    return 0


def _survey_results(args) -> int:
    from handlers.survey_files import write
    from storage.surveys import results
    out = _report_out(args.out, (".csv", ".xlsx")) if args.out else None
    services = _services()
    with services.db.unit_of_work() as s:
        seminar, survey = _surveyed_seminar(s, services.config, args.seminar_id)
        responses, completed, questions = results(s, seminar.id, survey)
    if out:
        write(questions, f"{seminar.title} アンケート結果（回答 {responses}件）", out)
        print(f"アンケート結果を書き出しました: {out.resolve()}")
    elif args.json:
        print(json.dumps({"seminar": seminar.id, "survey": survey.id, "responses": responses, "completed": completed,
                          "questions": [vars(q) for q in questions]}, ensure_ascii=False, indent=2))
    else:
        print(f"{seminar.title}（{survey.title}）回答 {responses}件・最後まで回答 {completed}件")
        for q in questions:
            average = f" 平均 {q.average}" if q.average is not None else ""
            print(f"\n■ {q.text}（回答 {q.answered}件{average}）")
            for choice, count in q.counts.items():
                print(f"  {choice}: {count}")
            for text in q.texts:
                print(f"  ・{text}")
    return 0


def _surveyed_seminar(s, config, seminar_id: int):
    from storage.models import Seminar
    seminar = s.get(Seminar, seminar_id)
    if seminar is None:
        raise CommandError(f"セミナー（ID {seminar_id}）は見つかりません。dxdesk seminar list で確かめてください。")
    survey = config.survey(seminar.survey_id)
    if survey is None:
        raise CommandError(f"セミナー（ID {seminar_id}）にはアンケートが設定されていません"
                           f"（--survey で設定の [[surveys]] の id を指定します）。")
    return seminar, survey


def _report_weekly(args) -> int:
    from handlers.report_files import weekly_file
    from storage import audit
    from storage.reports import week_period

    week = _report_argument(week_period, args.week)
    out = _report_out(args.out, (".csv", ".xlsx"))
    services = _services()
    with services.db.unit_of_work() as s:
        weekly_file(s, services.config, week, out)
        audit.record(s, "cli", "export", f"weekly:{args.week}", services.clock.now())
        s.commit()
    print(f"週報を書き出しました: {out.resolve()}")
    return 0


def _report_monthly(args) -> int:
    from handlers.report_files import monthly_workbook
    from storage import reports

    month = _report_argument(reports.month_period, args.month)
    out = _report_out(args.out, (".xlsx",))
    services = _services()
    with services.db.unit_of_work() as s:
        figures = reports.monthly(s, month)
    monthly_workbook(figures, services.config, out)
    print(f"月次報告を書き出しました: {out.resolve()}")
    return 0


def _report_year(args) -> int:
    from handlers.report_files import year_workbook
    from storage import audit, reports
    from storage.activities import photo_path

    fy = _report_argument(reports.fiscal_year, args.fy)
    out = _report_out(args.out, (".xlsx",))
    services = _services()
    with services.db.unit_of_work() as s:
        year_workbook(reports.yearly(s, fy), reports.activity_list(s, fy), services.config, out,
                      lambda photo: photo_path(services.settings.var_dir, photo.stored_name))
        # The activity list names the companies visited: an export, as the weekly log is.
        audit.record(s, "cli", "export", f"year:{args.fy}", services.clock.now())
        s.commit()
    print(f"年度の実績報告の資料を書き出しました: {out.resolve()}")
    return 0


def _report_argument(parse, text: str):
    try:
        return parse(text)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def _report_out(text: str, suffixes: tuple[str, ...]):
    from pathlib import Path

    out = Path(text)
    if out.suffix.lower() not in suffixes:
        raise CommandError(f"出力ファイルの拡張子は {' か '.join(suffixes)} にしてください: {text}")
    if not out.parent.is_dir():
        raise CommandError(f"出力先のフォルダーがありません: {out.parent}")
    return out


def _clock_time(text: str):
    from datetime import time

    try:
        return time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"時刻は HH:MM で指定してください: {text}") from None


def _outbox(args) -> int:
    from scheduling import outbox
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
    """The configured database as it is: only `serve` and `db upgrade` create one or change its schema.

    The default SQLite path is relative to the folder the command runs in; run elsewhere, creating it would
    give an empty second database that silently lists nothing.
    """
    from app import Settings
    from storage.db import Database, missing_sqlite_file
    url = Settings.from_env().database_url
    missing = missing_sqlite_file(url)
    if missing:
        looked = ("DXDESK_DATABASE_URL が設定されていないため、いまのフォルダーの var/dxdesk.sqlite3 を探しました。"
                  if not os.environ.get("DXDESK_DATABASE_URL") else "DXDESK_DATABASE_URL で指定されたファイルがありません。")
        raise CommandError(
            f"データベースが見つかりません: {missing}\n{looked}\n"
            "dxdesk serve を動かしているフォルダーで実行するか、"
            "DXDESK_DATABASE_URL=sqlite:////絶対パス/dxdesk.sqlite3 のように指定してください。"
            "新しく作る場合は dxdesk db upgrade を実行してください。")
    db = Database(url)
    if not db.is_current():
        db.dispose()
        raise CommandError(f"データベースが最新の形式になっていません: {_shown(url)}\n"
                           "先に dxdesk db upgrade を実行してください。")
    return db


def _shown(url: str) -> str:
    """The database URL without its password, to name it in a message."""
    from sqlalchemy.engine import make_url
    return make_url(url).render_as_string(hide_password=True)


def _services():
    """The app's services over the existing, current database (see _database)."""
    from app import Settings, build_services
    _database().dispose()
    settings = Settings.from_env()
    settings.migrate = False
    return build_services(settings)


def _seminar_announce(args) -> int:
    from scheduling import announcements
    services = _services()
    try:
        preview = announcements.preview(services.db, services.config, args.id, args.segment)
        if preview.already:
            print(f"セミナー {args.id} の案内は、この対象（{args.segment}）にはすでに送っています。もう一度は送りません。")
            if not args.dry_run:
                announcements.announce(services.db, services.config, services.line, services.clock, args.id,
                                       args.segment, created_by="cli")  # sends only batches left pending
            return 0
        if args.dry_run:
            print(f"送信対象: {preview.recipients:,}人（送信はしていません）")
            return 0
        if not args.yes:
            if not sys.stdin.isatty():
                raise CommandError("確認のため、送信するときは --yes を付けて実行してください。"
                                   "（--dry-run で対象の人数だけを確かめられます）")
            answer = input(f"{preview.recipients:,}人にセミナーの案内を送信します。よろしいですか？ [y/N]: ")
            if answer.strip().lower() not in ("y", "yes", "はい"):
                print("送信を取りやめました。")
                return 0
        done = announcements.announce(services.db, services.config, services.line, services.clock, args.id,
                                      args.segment, created_by="cli")
    except announcements.AnnouncementRefused as exc:
        raise CommandError(str(exc)) from None
    finally:
        services.stop()
    if done.already:
        print(f"セミナー {args.id} の案内は、この対象（{args.segment}）にはすでに送っています。もう一度は送りません。")
    elif done.recipients == 0:
        print("送信対象の方がいません。送信はしていません。")
    else:
        print(f"{done.recipients:,}人にセミナーの案内を送りました（{done.sent}/{done.batches}回の一斉送信が完了）。")
        if done.sent < done.batches:
            print("残りはスケジューラーが同じ再送キーで自動的に送り直します。")
    return 0


def _db_upgrade(args) -> int:
    from app import Settings
    from storage.db import Database
    Database(Settings.from_env().database_url).upgrade()
    print("データベースを最新の状態にしました。")
    return 0


# Short names for a terminal's columns (the console's are longer: 対面（訪問・来所）).


def _consultations(args) -> int:
    from storage.queries import consultations_as_json

    db = _database()
    items = consultations_as_json(db, since=args.since)
    _audited(db, "export", f"consultations:{args.since or 'all'}")
    if args.json:
        print(json.dumps(items, ensure_ascii=False, indent=2))
        return 0
    if not items:
        print("記録された相談はありません。")
        return 0
    config = load_config(os.environ.get("DXDESK_CONFIG") or None)
    _print_table(("受付番号", "受付日時", "分野", "方法", "状態", "会社名"),
                 [(c["receipt_no"], c["received_at"][:16].replace("T", " "), config.category(c["category"]).name,
                   METHOD_NAMES.get(c["method"], c["method"]), STATUS_LABELS.get(c["status"], c["status"]), c["company"])
                  for c in items])
    return 0


def _audited(db: Database, action: str, record: str) -> None:
    """One entry of the audit log for what this command read or did (the CLI acts as "cli")."""
    from storage import audit
    with db.unit_of_work() as s:
        audit.record(s, "cli", action, record, datetime.now().astimezone())
        s.commit()


def _audit(args) -> int:
    from storage import audit
    db = _database()
    since = datetime.combine(args.since, datetime.min.time(), TOKYO) if args.since else None
    with db.unit_of_work() as s:
        rows = list(reversed(audit.entries(s, start=since)))
    if args.json:
        print(json.dumps([{"at": e.at.astimezone(TOKYO).isoformat(), "who": e.who, "action": e.action,
                           "record": e.record} for e in rows], ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("監査ログはまだありません。")
        return 0
    _print_table(("日時", "操作者", "操作", "対象"),
                 [(f"{e.at.astimezone(TOKYO):%Y-%m-%d %H:%M:%S}", e.who, AUDIT_LABELS.get(e.action, e.action), e.record)
                  for e in rows])
    return 0


AUDIT_LABELS = {"view": "閲覧", "export": "書き出し", "change": "変更", "erase": "削除（本人の依頼）",
                "purge": "削除（保存期間の経過）"}
PURGE_LABELS = {"consultations": "完了・フォローアップの相談（個人情報）", "profiles": "利用者の登録情報",
                "inbox_payloads": "受信イベントの内容", "message_bodies": "送信メッセージの本文",
                "scheduled_bodies": "予約送信の本文", "multicast_recipients": "一斉送信の宛先",
                "web_submissions": "Webフォームの送信元の記録", "activities": "活動記録（企業名・メモ）",
                "activity_photos": "活動記録の写真", "deletion_notices": "削除完了のお知らせの宛先"}


def _privacy_purge(args) -> int:
    from storage.activities import remove_files
    from storage.privacy import purge
    services = _services()
    privacy = services.config.privacy
    with services.db.unit_of_work() as s:
        done = purge(s, services.clock.now(), retention_months=privacy.retention_months,
                     copies_days=privacy.copies_days, who="cli", dry_run=args.dry_run)
        s.commit()
    remove_files(services.settings.var_dir, done.photos)
    print(f"{'削除の対象（--dry-run のため何も削除していません）' if args.dry_run else '削除しました'}"
          f"（保存期間: 相談 {privacy.retention_months}か月、写し {privacy.copies_days}日）:")
    for kind, label in PURGE_LABELS.items():
        print(f"  {label}: {done.counts.get(kind, 0)}件")
    return 0


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Columns aligned as a terminal shows them: an East Asian wide character takes two cells."""
    widths = [max(_cells(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]
    for row in (header, *rows):
        print("  ".join([*(value + " " * (width - _cells(value)) for value, width in zip(row, widths)), row[-1]]))


def _cells(value: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in value)


def _triage(args) -> int:
    triager = Triager(load_config(os.environ.get("DXDESK_CONFIG") or None))
    if args.text is not None:
        if not args.text.strip():
            raise CommandError("分類する相談文が空です。例: dxdesk triage \"紙の請求書をやめたい\"")
        _print_triage(triager.classify(args.text), args.json)
        return 0
    for number, line in enumerate(sys.stdin, start=1):
        if line.strip():
            _print_triage(triager.classify(line.rstrip("\n")), args.json)
            continue
        # Still one line out per line in, so callers can pair answers with their input.
        print("null" if args.json else "", flush=True)
        print(f"{number}行目は空のため分類しませんでした。", file=sys.stderr, flush=True)
    return 0


def _print_triage(result, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.as_json(), ensure_ascii=False), flush=True)
    else:
        print(f"{result.category}\t{result.confidence:.2f}\t{' '.join(result.keywords)}", flush=True)


def _users_add(args) -> int:
    from storage.staff import add_user
    coordinator = _known_coordinator(args.coordinator)
    db = _database()
    try:
        add_user(db, args.login, _read_password(), args.role, datetime.now().astimezone(), coordinator_id=coordinator)
    except ValueError as exc:  # a refusal worded for the operator: printed by main(), exit code 2
        raise CommandError(str(exc)) from None
    linked = f"、コーディネーター {coordinator} として" if coordinator else ""
    print(f"スタッフ画面のユーザー {args.login}（{args.role}）を{linked}追加しました。")
    return 0


def _users_link(args) -> int:
    from storage.staff import link_coordinator
    coordinator = _known_coordinator(args.coordinator)
    try:
        link_coordinator(_database(), args.login, coordinator)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    print(f"ユーザー {args.login} をコーディネーター {coordinator} に結び付けました（「自分の担当」に担当の相談が表示されます）。"
          if coordinator else f"ユーザー {args.login} とコーディネーターの結び付けを外しました。")
    return 0


def _known_coordinator(coordinator_id: str | None) -> str | None:
    """A [[coordinators]] id of the configuration, or None for none (""); anything else is refused."""
    if not coordinator_id:
        return None
    known = [c.id for c in load_config(os.environ.get("DXDESK_CONFIG") or None).coordinators]
    if coordinator_id not in known:
        raise CommandError(f"コーディネーター「{coordinator_id}」は設定にありません。"
                           f"設定にあるID: {'、'.join(known)}")
    return coordinator_id


def _users_passwd(args) -> int:
    from storage.staff import change_password
    db = _database()
    try:
        change_password(db, args.login, _read_password("新しいパスワード: "))
    except ValueError as exc:  # a refusal worded for the operator: printed by main(), exit code 2
        raise CommandError(str(exc)) from None
    print(f"ユーザー {args.login} のパスワードを変更しました。")
    return 0


def _read_password(prompt: str = "パスワード: ") -> str:
    """From the terminal without echo, or the first line of stdin when it is not a terminal (scripts)."""
    return getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")


def _users_list(args) -> int:
    from handlers.console.common import ROLE_LABELS
    from storage.staff import list_users
    users = list_users(_database())
    if args.json:
        print(json.dumps([{"login": u.login, "role": u.role, "coordinator": u.coordinator_id,
                           "created_at": u.created_at.astimezone(TOKYO).isoformat()}
                          for u in users], ensure_ascii=False, indent=2))
        return 0
    if not users:
        print("スタッフ画面のユーザーはまだいません。作成: dxdesk users add LOGIN --role admin")
        return 0
    _print_table(("ログインID", "役割", "登録日", "コーディネーター"),
                 [(u.login, f"{ROLE_LABELS.get(u.role, u.role)}（{u.role}）", f"{u.created_at.astimezone(TOKYO):%Y-%m-%d}",
                   u.coordinator_id or "—") for u in users])
    return 0


def _line_richmenu(args) -> int:
    from app import Settings
    from handlers.line_api import LineMessenger
    from handlers.richmenu import install_rich_menu
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
    add.add_argument("--coordinator", metavar="ID", help="このログインのコーディネーターID（「自分の担当」に使う）")
    add.set_defaults(run=_users_add)
    link = users.add_parser("link", help="ユーザーをコーディネーターに結び付ける（\"\" で外す）")
    link.add_argument("login")
    link.add_argument("--coordinator", required=True, metavar="ID", help="コーディネーターID（\"\" で結び付けを外す）")
    link.set_defaults(run=_users_link)
    listing = users.add_parser("list", help="ユーザーの一覧（パスワードは表示しません）")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_users_list)
    passwd = users.add_parser("passwd", help="ユーザーのパスワードを変更する")
    passwd.add_argument("login")
    passwd.set_defaults(run=_users_passwd)

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

    seminar = sub.add_parser("seminar", help="セミナー").add_subparsers(dest="seminar_command", required=True)
    add_seminar = seminar.add_parser("add", help="セミナーを登録する（日時は日本時間）")
    add_seminar.add_argument("--title", required=True)
    add_seminar.add_argument("--start", required=True, help="\"YYYY-MM-DD HH:MM\"")
    add_seminar.add_argument("--end", required=True, help="\"YYYY-MM-DD HH:MM\"")
    add_seminar.add_argument("--venue", help="会場（省略時: かごゆいテラス（鹿児島県庁18階））")
    add_seminar.add_argument("--online-url", help="オンライン参加のURL（オンラインの参加者にだけ送ります）")
    add_seminar.add_argument("--onsite-seats", type=int, required=True, help="会場の定員")
    add_seminar.add_argument("--online-seats", type=int, required=True, help="オンラインの定員")
    add_seminar.add_argument("--deadline", help="申込締切 \"YYYY-MM-DD HH:MM\"（省略時: 開始まで）")
    add_seminar.add_argument("--subsidy-briefing", action="store_true", help="DX補助金の説明会を含む")
    add_seminar.add_argument("--survey", help="アンケートのID")
    add_seminar.add_argument("--json", action="store_true")
    add_seminar.set_defaults(run=_seminar_add)
    list_seminars = seminar.add_parser("list", help="セミナーの一覧（席の数とキャンセル待ち）")
    list_seminars.add_argument("--json", action="store_true")
    list_seminars.set_defaults(run=_seminar_list)
    registered = seminar.add_parser("registrations", help="お申し込みの一覧（キャンセル待ちの順番つき）")
    registered.add_argument("seminar_id", type=int, metavar="ID")
    registered.add_argument("--json", action="store_true")
    registered.set_defaults(run=_seminar_registrations)
    attend = seminar.add_parser("attend", help="出席にする（会場で受付のQRコードを読み取っても同じです）")
    attend.add_argument("seminar_id", type=int, metavar="ID")
    who = attend.add_mutually_exclusive_group(required=True)
    who.add_argument("--registration", type=int, help="お申し込みのID")
    who.add_argument("--user", help="LINEのユーザーID")
    who.add_argument("--all-registered", action="store_true", help="キャンセル待ち以外のお申し込みをすべて")
    attend.set_defaults(run=_seminar_attend)
    send_survey = seminar.add_parser("survey", help="アンケートを出席者に今すぐ送る（通常は終了後に自動で送ります）")
    send_survey.add_argument("seminar_id", type=int, metavar="ID")
    send_survey.add_argument("--send-now", action="store_true", required=True)
    send_survey.set_defaults(run=_seminar_survey)

    survey = sub.add_parser("survey", help="アンケート").add_subparsers(dest="survey_command", required=True)
    survey_results = survey.add_parser("results", help="セミナーのアンケート結果（質問ごとの件数・平均・自由記述）")
    survey_results.add_argument("seminar_id", type=int, metavar="ID")
    survey_results.add_argument("--json", action="store_true")
    survey_results.add_argument("--out", help="出力ファイル（.csv または .xlsx）")
    survey_results.set_defaults(run=_survey_results)

    report = sub.add_parser("report", help="報告書").add_subparsers(dest="report_command", required=True)
    weekly = report.add_parser("weekly", help="週報（スタッフ用、個人情報を含む）")
    weekly.add_argument("--week", required=True, help="ISO週 YYYY-Www（例: 2026-W48）")
    weekly.add_argument("--out", required=True, help="出力ファイル（.csv または .xlsx）")
    weekly.set_defaults(run=_report_weekly)
    monthly = report.add_parser("monthly", help="県への月次報告（集計のみ）")
    monthly.add_argument("--month", required=True, help="YYYY-MM（例: 2026-11）")
    monthly.add_argument("--out", required=True, help="出力ファイル（.xlsx）")
    monthly.set_defaults(run=_report_monthly)
    year = report.add_parser("year", help="年度の実績（実績報告書の資料、活動の一覧と写真つき）")
    year.add_argument("--fy", required=True, help="年度 YYYY（例: 2025 は2025年4月〜2026年3月）")
    year.add_argument("--out", required=True, help="出力ファイル（.xlsx）")
    year.set_defaults(run=_report_year)

    announce = seminar.add_parser("announce", help="セミナーの案内をLINEで一斉送信する")
    announce.add_argument("id", type=int)
    announce.add_argument("--segment", required=True,
                          help="all / region:<地域ID> / industry:<業種> / category:<分野ID> / past-participants")
    announce.add_argument("--dry-run", action="store_true", help="対象の人数を表示するだけで送信しない")
    announce.add_argument("--yes", action="store_true", help="確認せずに送信する")
    announce.set_defaults(run=_seminar_announce)

    log = sub.add_parser("audit", help="個人情報の閲覧・書き出し・変更・削除の記録（監査ログ）")
    log.add_argument("--json", action="store_true")
    log.add_argument("--since", type=_iso_date, help="この日から（YYYY-MM-DD）")
    log.set_defaults(run=_audit)

    privacy = sub.add_parser("privacy", help="個人情報の保存期間").add_subparsers(dest="privacy_command", required=True)
    purge = privacy.add_parser("purge", help="保存期間を過ぎた個人情報を削除する（集計に使う項目は残ります）")
    purge.add_argument("--dry-run", action="store_true", help="件数を表示するだけで削除しない")
    purge.set_defaults(run=_privacy_purge)

    line = sub.add_parser("line", help="LINEチャネルの設定").add_subparsers(dest="line_command", required=True)
    line.add_parser("richmenu", help="リッチメニューをチャネルに設定する").set_defaults(run=_line_richmenu)
    return p


def main(argv: list[str] | None = None) -> int:
    logs.configure()
    args = parser().parse_args(argv)
    try:
        code = args.run(args)
        sys.stdout.flush()  # here, not at exit, so a closed pipe is caught below
        return code
    except (ConfigError, CommandError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `dxdesk slots | head`: the reader has what it wanted. Point stdout at devnull so the
        # interpreter's own flush at exit does not fail again (the recipe in Python's signal docs).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1

