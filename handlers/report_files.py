"""The report files: storage.reports' figures laid out, nothing counted here.

The monthly workbook goes to the prefecture: aggregates only, and a count of 1 or 2 shows as 「3未満」 so no
company can be picked out of a small cell. The weekly log is the staff's own and lists each consultation.
"""
from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill
from sqlalchemy.orm import Session

from bot.config import Config
from bot.intake import METHOD_NAMES
from bot.jatime import TOKYO
from bot.menu import STATUS_LABELS
from bot.municipalities import REGIONS
from storage import reports
from storage.activities import KIND_LABELS, STAGE_LABELS
from storage.reports import Period
from storage.surveys import CONSULT_CHOICES

CHANNEL_NAMES = {"line": "LINE", "popup": "出張相談会", "web": "Webフォーム"}
UNANSWERED = "未回答"
SMALL = "3未満"
COLUMNS = ("当月", "前月", "年度累計")
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")


def masked(n: int):
    """A count as the prefecture may see it: 1 and 2 hidden, 0 and 3 up as they are."""
    return SMALL if 1 <= n <= 2 else n


def monthly_workbook(s: Session, config: Config, month: Period, out: Path) -> None:
    periods = (month, reports.previous_month(month), reports.fiscal_year_to_date(month))
    first = month.start.astimezone(TOKYO)
    wb = Workbook()
    ws = wb.active
    ws.title = "月次報告"
    ws["A1"] = f"{config.program_name} 月次報告"
    ws["A1"].font = Font(size=14, bold=True)
    ws["A2"] = f"{first.year}年{first.month}月（年度累計は{periods[2].start.year}年4月から）"
    ws.column_dimensions["A"].width = 28
    for col in "BCD":
        ws.column_dimensions[col].width = 12
    row = 4

    def table(title: str, figure, labels: dict, order: list | None = None, chart: bool = False):
        nonlocal row
        counts = [figure(s, p) for p in periods]
        keys = order if order is not None else sorted(
            set().union(*counts), key=lambda k: (-counts[2].get(k, 0), k is None, k or ""))
        ws.cell(row, 1, title).font = Font(bold=True)
        header = row + 1
        for i, text in enumerate(("区分", *COLUMNS)):
            cell = ws.cell(header, i + 1, text)
            cell.fill, cell.font = HEADER_FILL, Font(bold=True)
        for n, key in enumerate(keys, start=header + 1):
            ws.cell(n, 1, labels.get(key, key if key is not None else UNANSWERED))
            for i, c in enumerate(counts):
                ws.cell(n, i + 2, masked(c.get(key, 0))).alignment = Alignment(horizontal="right")
        total = header + len(keys) + 1
        ws.cell(total, 1, "合計").font = Font(bold=True)
        for i, c in enumerate(counts):
            ws.cell(total, i + 2, masked(sum(c.values()))).alignment = Alignment(horizontal="right")
        row = total + 2
        if chart and keys:
            bar = BarChart()
            bar.type, bar.title, bar.legend = "bar", f"{title}（当月）", None
            bar.add_data(Reference(ws, min_col=2, min_row=header, max_row=total - 1), titles_from_data=True)
            bar.set_categories(Reference(ws, min_col=1, min_row=header + 1, max_row=total - 1))
            bar.height, bar.width = max(5, 0.7 * len(keys) + 2), 16
            ws.add_chart(bar, f"A{row}")
            row += int(bar.height * 2) + 2

    def summary(title: str, lines: list[tuple[str, list[int]]]):
        nonlocal row
        ws.cell(row, 1, title).font = Font(bold=True)
        for i, text in enumerate(("項目", *COLUMNS)):
            cell = ws.cell(row + 1, i + 1, text)
            cell.fill, cell.font = HEADER_FILL, Font(bold=True)
        for n, (label, values) in enumerate(lines, start=row + 2):
            ws.cell(n, 1, label)
            for i, value in enumerate(values):
                ws.cell(n, i + 2, masked(value)).alignment = Alignment(horizontal="right")
        row += len(lines) + 3

    companies = [reports.companies(s, p) for p in periods]
    held = [reports.bookings_held(s, p) for p in periods]
    summary("概要", [
        ("相談件数", [reports.consultations(s, p) for p in periods]),
        ("相談企業（新規）", [c["new"] for c in companies]),
        ("相談企業（リピート）", [c["returning"] for c in companies]),
        ("実施予定の予約", [h["total"] for h in held]),
        ("うち土日", [h["weekend"] for h in held]),
        ("うち祝日", [h["holiday"] for h in held]),
        ("出張相談会の開催日数", [reports.popup_days(s, p) for p in periods]),
        ("出張相談会での相談件数", [reports.popup_consultations(s, p) for p in periods]),
    ])
    table("経路別", reports.by_channel, CHANNEL_NAMES)
    table("分野別", reports.by_category, {c.id: c.name for c in config.categories},
          order=[c.id for c in config.categories], chart=True)
    table("地域別", reports.by_region, {r.id: r.name for r in REGIONS}, order=[r.id for r in REGIONS] + [None],
          chart=True)
    table("方法別", reports.by_method, METHOD_NAMES, order=list(METHOD_NAMES), chart=True)
    table("状況別", reports.by_status, STATUS_LABELS, order=list(STATUS_LABELS))
    table("業種別", reports.by_industry, {})
    table("市町村別", reports.by_municipality, {})

    ws.print_area = f"A1:H{row}"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "portrait"
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.oddHeader.center.text = f"{config.program_name} {first.year}年{first.month}月"
    ws.oddFooter.center.text = "&P / &N"
    wb.save(out)


WEEK_COLUMNS = ("受付番号", "受付日時", "経路", "分野", "業種", "市町村", "方法", "状況", "会社名", "担当者名", "電話",
                "メール", "相談内容", "予約日時", "担当コーディネーター")
BOOKING_COLUMNS = ("予約日時", "終了", "方法", "担当コーディネーター", "状況", "受付番号", "会社名", "担当者名", "電話")


def _when(dt) -> str:
    return f"{dt.astimezone(TOKYO):%Y-%m-%d %H:%M}"


def _coordinator(config: Config, coordinator_id: str) -> str:
    if coordinator_id.startswith("popup-"):
        return "出張相談会"
    known = {c.id: c.name for c in config.coordinators}
    return known.get(coordinator_id, coordinator_id)


def _week_rows(s: Session, config: Config, week: Period) -> list[list[str]]:
    return [[c.receipt_no, _when(c.received_at), CHANNEL_NAMES.get(c.channel, c.channel), config.category(c.category).name,
             c.industry or "", c.municipality or "", METHOD_NAMES.get(c.method, c.method),
             STATUS_LABELS.get(c.status, c.status), c.company, c.contact_name or "", c.phone or "", c.email or "",
             c.question, _when(b.start) if b else "", _coordinator(config, b.coordinator_id) if b else ""]
            for c, b in reports.week_consultations(s, week)]


def _booking_rows(s: Session, config: Config, week: Period) -> list[list[str]]:
    return [[_when(b.start), _when(b.end), METHOD_NAMES.get(b.method, b.method), _coordinator(config, b.coordinator_id),
             "確定" if b.status == "confirmed" else "確定待ち", c.receipt_no if c else "", c.company if c else "",
             (c.contact_name or "") if c else "", (c.phone or "") if c else ""]
            for b, c in reports.week_bookings(s, week)]


# A text a spreadsheet would run as a formula (=, +, -, @ first): kept as text, as OWASP's CSV-injection advice says.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def as_text(value):
    return f"'{value}" if isinstance(value, str) and value.startswith(_FORMULA_START) else value


def weekly_file(s: Session, config: Config, week: Period, out: Path) -> None:
    """A .csv (UTF-8 with BOM, so Excel reads the Japanese) of the week's consultations, or an .xlsx with a sheet each
    for the week's consultations, bookings, seminar registrations, survey answers, referrals and activities."""
    if out.suffix.lower() == ".csv":
        with out.open("w", encoding="utf-8-sig", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(WEEK_COLUMNS)
            writer.writerows([as_text(v) for v in row] for row in _week_rows(s, config, week))
        return
    wb = Workbook()
    wb.remove(wb.active)
    for title, header, rows in (("相談", WEEK_COLUMNS, _week_rows(s, config, week)),
                                ("予約", BOOKING_COLUMNS, _booking_rows(s, config, week)),
                                (REGISTRATION_SHEET, REGISTRATION_COLUMNS, _registration_rows(s, week)),
                                ("アンケート回答", *_survey_answer_table(s, config, week)),
                                ("紹介", REFERRAL_COLUMNS, _referral_rows(s, config, week)),
                                ("活動", ACTIVITY_COLUMNS, _activity_rows(s, config, week))):
        ws = wb.create_sheet(title)
        ws.append(header)
        for cell in ws[1]:
            cell.fill, cell.font = HEADER_FILL, Font(bold=True)
        for r in rows:
            ws.append([as_text(v) for v in r])
        ws.freeze_panes = "A2"
    wb.save(out)


# Registrations made this week, whenever their seminar is: the log says what came in, as it does for consultations.
REGISTRATION_SHEET = "セミナー申込（今週の受付分）"
REGISTRATION_COLUMNS = ("申込日時", "セミナー", "開催日時", "参加方法", "状況", "会社名", "氏名", "出席日時")
MODE_NAMES = {"onsite": "会場", "online": "オンライン"}
REGISTRATION_STATUS_NAMES = {"registered": "申込済み", "waiting": "キャンセル待ち", "cancelled": "キャンセル",
                             "attended": "出席"}
SURVEY_COLUMNS = ("回答完了日時", "セミナー", "開催日時", "会社名", "氏名")
REFERRAL_COLUMNS = ("紹介日時", "受付番号", "会社名", "担当者名", "紹介先", "結果", "結果のメモ", "紹介した担当者")
REFERRAL_OUTCOME_NAMES = {"pending": "紹介済み", "accepted": "支援開始", "declined": "見送り", "done": "支援完了"}
ACTIVITY_COLUMNS = ("実施日時", "種類", "企業・支援機関", "受付番号", "担当コーディネーター", "研修の回", "内容・テーマ",
                    "参加人数", "モデルケースの段階", "メモ")


def _registration_rows(s: Session, week: Period) -> list[list]:
    return [[_when(r.created_at), seminar.title, _when(seminar.start_at), MODE_NAMES.get(r.mode, r.mode),
             REGISTRATION_STATUS_NAMES.get(r.status, r.status), r.company or "", r.contact_name or "",
             _when(r.attended_at) if r.attended_at else ""]
            for r, seminar in reports.week_registrations(s, week)]


def _survey_answer_table(s: Session, config: Config, week: Period) -> tuple[tuple[str, ...], list[list]]:
    """The header (the questions of the surveys answered, as [[surveys]] words them) and one row per answer."""
    answers = reports.week_survey_answers(s, week)
    answered = {x.survey_id for x, _, _ in answers}
    surveys = [survey for survey in config.surveys if survey.id in answered]
    several = len(surveys) > 1
    questions = [(survey.id, q) for survey in surveys for q in survey.questions]
    header = (*SURVEY_COLUMNS, *(f"【{config.survey(sid).title}】{q.text}" if several else q.text
                                 for sid, q in questions))
    rows = [[_when(x.completed_at), seminar.title, _when(seminar.start_at), (r.company or "") if r else "",
             (r.contact_name or "") if r else "",
             *(_answer(q, (x.answers or {}).get(q.id)) if x.survey_id == sid else "" for sid, q in questions)]
            for x, seminar, r in answers]
    return header, rows


def _answer(question, value):
    if value is None:
        return ""
    if question.kind == "consult":
        return CONSULT_CHOICES.get(value, value)
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return value


def _referral_rows(s: Session, config: Config, week: Period) -> list[list]:
    partners = {p.id: p.name for p in config.partners}
    return [[_when(r.referred_at), c.receipt_no, c.company, c.contact_name or "", partners.get(r.partner_id, r.partner_id),
             REFERRAL_OUTCOME_NAMES.get(r.outcome, r.outcome), r.outcome_note or "", r.referred_by]
            for r, c in reports.week_referrals(s, week)]


def _activity_rows(s: Session, config: Config, week: Period) -> list[list]:
    return [[_when(a.date), KIND_LABELS.get(a.kind, a.kind), a.company or "", c.receipt_no if c else "",
             _coordinator(config, a.coordinator_id) if a.coordinator_id else "", a.session_no or "", a.topics or "",
             "" if a.attendees is None else a.attendees, STAGE_LABELS.get(a.model_stage, "") if a.model_stage else "",
             a.notes or ""]
            for a, c in reports.week_activities(s, week)]
