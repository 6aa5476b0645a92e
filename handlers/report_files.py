"""The report files: handlers/report_sections' tables and storage.reports' rows laid out, nothing counted here.

The monthly workbook goes to the prefecture: aggregates only, and a count of 1 or 2 shows as 「3未満」 so no
company can be picked out of a small cell (and a count that would let one be worked out as 「秘匿」; a note under the
tables says so). The year workbook adds the list of activities with their photos, for the
実績報告書. The weekly log is the staff's own and lists each consultation.
"""
from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.drawing.image import Image as XLImage
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from PIL import Image as PILImage
from PIL import ImageOps
from sqlalchemy.orm import Session

from bot.config import Config
from bot.intake import METHOD_NAMES
from bot.jatime import TOKYO
from bot.menu import STATUS_LABELS
from handlers.report_sections import (ACTIVITY_NAMES, CHANNEL_NAMES, MONTH_COLUMNS, NOTES, YEAR_COLUMNS, Section,
                                      monthly_targets, sections, year_targets)
from storage import reports
from storage.activities import KIND_LABELS, STAGE_LABELS
from storage.models import Activity, ActivityPhoto
from storage.reports import Figures, Period
from storage.surveys import CONSULT_CHOICES

log = logging.getLogger(__name__)

HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
RIGHT = Alignment(horizontal="right")


def _sheet(ws, title: str, subtitle: str, header: str, parts: list[Section]) -> None:
    """The sections one under another on a printable A4 portrait page, a bar chart under those that have one, and
    under them all what 「3未満」 and 「秘匿」 mean."""
    ws["A1"], ws["A2"] = title, subtitle
    ws["A1"].font = Font(size=14, bold=True)
    ws.column_dimensions["A"].width = 36
    width = max(len(part.columns) for part in parts)
    for n in range(width):
        ws.column_dimensions[get_column_letter(n + 2)].width = 12
    row = 4
    for part in parts:
        ws.cell(row, 1, part.title).font = Font(bold=True)
        header_row = row + 1
        for i, text in enumerate((part.first, *part.columns)):
            cell = ws.cell(header_row, i + 1, text)
            cell.fill, cell.font = HEADER_FILL, Font(bold=True)
        for n, line in enumerate(part.rows, start=header_row + 1):
            ws.cell(n, 1, line.label).font = Font(bold=line.total)
            ws.cell(n, 1).alignment = Alignment(wrap_text=True, vertical="top")
            for i, value in enumerate(line.values):
                ws.cell(n, i + 2, value).alignment = RIGHT
        row = header_row + len(part.rows) + 2
        counted = [line for line in part.rows if not line.total]
        if part.chart and counted:
            row = _chart(ws, f"{part.title}（{part.columns[0]}）", header_row, len(counted), row)
    for line in NOTES:
        ws.cell(row, 1, line)
        row += 1
    ws.print_area = f"A1:{get_column_letter(width + 1)}{row}"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "portrait"
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.oddHeader.center.text = header
    ws.oddFooter.center.text = "&P / &N"


def _chart(ws, title: str, header_row: int, rows: int, at: int) -> int:
    """A horizontal bar chart of the first column under the table; the row after it."""
    bar = BarChart()
    bar.type, bar.title, bar.legend = "bar", title, None
    bar.add_data(Reference(ws, min_col=2, min_row=header_row, max_row=header_row + rows), titles_from_data=True)
    bar.set_categories(Reference(ws, min_col=1, min_row=header_row + 1, max_row=header_row + rows))
    bar.height, bar.width = max(5, 0.7 * rows + 2), 16
    ws.add_chart(bar, f"A{at}")
    return at + int(bar.height * 2) + 2


def monthly_workbook(f: Figures, config: Config, out: Path | BinaryIO) -> None:
    """The monthly report: the figures of the month, the month before and the fiscal year to date, on one A4 sheet."""
    month, _, fiscal = f.periods
    first = month.start.astimezone(TOKYO)
    wb = Workbook()
    wb.active.title = "月次報告"
    _sheet(wb.active, f"{config.program_name} 月次報告",
           f"{first.year}年{first.month}月（年度累計は{fiscal.start.year}年4月から）",
           f"{config.program_name} {first.year}年{first.month}月",
           [monthly_targets(config, f), *sections(config, f, MONTH_COLUMNS)])
    wb.save(out)


def year_workbook(f: Figures, activities: list[tuple[Activity, list[ActivityPhoto]]], config: Config, out: Path,
                  photo_path: Callable[[ActivityPhoto], Path]) -> None:
    """The year's figures for the 実績報告書, against the year before, and the year's activities with their photos."""
    fy = f.periods[0].start.astimezone(TOKYO)
    wb = Workbook()
    wb.active.title = "年度実績"
    _sheet(wb.active, f"{config.program_name} 年度実績", f"{fy.year}年度（{fy.year}年4月〜{fy.year + 1}年3月）",
           f"{config.program_name} {fy.year}年度", [year_targets(config, f), *sections(config, f, YEAR_COLUMNS)])
    _activity_sheet(wb.create_sheet("活動一覧"), activities, config, photo_path)
    wb.save(out)


ACTIVITY_COLUMNS = ("日付", "種類", "担当コーディネーター", "訪問先・研修先", "回", "内容", "参加者数", "写真")
THUMBNAIL = (200, 150)  # pixels, the most a photo takes in the sheet
PHOTO_COLUMN_WIDTH = 30  # characters: a 200-pixel thumbnail and a margin


def _activity_sheet(ws, activities: list[tuple[Activity, list[ActivityPhoto]]], config: Config,
                    photo_path: Callable[[ActivityPhoto], Path]) -> None:
    """One row per activity, its photos as thumbnails side by side from the 写真 column. The notes stay out: they
    are the coordinator's own words about the company."""
    ws.append(ACTIVITY_COLUMNS)
    for cell in ws[1]:
        cell.fill, cell.font = HEADER_FILL, Font(bold=True)
    for width, letter in zip((12, 26, 16, 28, 5, 40, 9), "ABCDEFG"):
        ws.column_dimensions[letter].width = width
    photo_col = len(ACTIVITY_COLUMNS)
    for n, (activity, photos) in enumerate(activities, start=2):
        coordinator = config.coordinator(activity.coordinator_id or "")
        ws.append([f"{activity.date.astimezone(TOKYO):%Y-%m-%d}", ACTIVITY_NAMES.get(activity.kind, activity.kind),
                   coordinator.name if coordinator else (activity.coordinator_id or ""), as_text(activity.company or ""),
                   activity.session_no, as_text(activity.topics or ""), activity.attendees])
        for cell in ws[n]:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        for i, photo in enumerate(photos):
            column = get_column_letter(photo_col + i)
            ws.column_dimensions[column].width = PHOTO_COLUMN_WIDTH
            image = _thumbnail(photo_path(photo))
            if image is None:
                ws[f"{column}{n}"] = "（写真のファイルが見つかりません）"
                continue
            ws.add_image(image, f"{column}{n}")
            ws.row_dimensions[n].height = max(ws.row_dimensions[n].height or 15, image.height * 0.75 + 6)
    ws.freeze_panes = "A2"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True


def _thumbnail(path: Path) -> XLImage | None:
    """A small JPEG of the photo, re-encoded (which also leaves out its EXIF data: where and when it was taken)."""
    try:
        with PILImage.open(path) as original:
            picture = ImageOps.exif_transpose(original).convert("RGB")
    except (FileNotFoundError, PILImage.UnidentifiedImageError, OSError):
        log.warning("activity photo %s could not be read", path.name)
        return None
    picture.thumbnail(THUMBNAIL)
    data = io.BytesIO()
    picture.save(data, "JPEG", quality=80)
    image = XLImage(data)
    image.width, image.height = picture.size
    return image


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
                                ("活動", WEEK_ACTIVITY_COLUMNS, _activity_rows(s, config, week))):
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
WEEK_ACTIVITY_COLUMNS = ("実施日時", "種類", "企業・支援機関", "受付番号", "担当コーディネーター", "研修の回", "内容・テーマ",
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
