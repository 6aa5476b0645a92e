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
from storage.models import SEMINAR_MODES
from storage.reports import Figures, Period

CHANNEL_NAMES = {"line": "LINE", "popup": "出張相談会", "web": "Webフォーム"}
ORIGIN_NAMES = {"menu": "LINEのメニュー", "web": "Webフォーム", "seminar": "セミナーのアンケート", "popup": "出張相談会"}
MODE_NAMES = {"onsite": "会場", "online": "オンライン"}
UNANSWERED = "未回答"
SMALL = "3未満"
NONE = "－"
MONTH_COLUMNS = ("当月", "前月", "年度累計")
YEAR_COLUMNS = ("当年度", "前年度")
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
RIGHT = Alignment(horizontal="right")


def masked(n: int):
    """A count as the prefecture may see it: 1 and 2 hidden, 0 and 3 up as they are."""
    return SMALL if 1 <= n <= 2 else n


def _share(n: int, of: int):
    """n as a percentage of a target, hidden like the count itself when n is 1 or 2 (1/90 would tell it)."""
    if not of:
        return NONE
    return SMALL if 1 <= n <= 2 else f"{round(100 * n / of)}%"


def _average(rating):
    """A survey question's average, hidden when only one or two people answered it."""
    if rating is None or not rating.answered:
        return NONE
    return SMALL if rating.answered < 3 else rating.average


class _Sheet:
    """Tables laid out one under another on an A4 worksheet, each with the report's columns."""

    def __init__(self, ws, columns: tuple[str, ...], title: str, subtitle: str, header: str):
        self.ws, self.columns, self.row = ws, columns, 4
        ws["A1"], ws["A2"] = title, subtitle
        ws["A1"].font = Font(size=14, bold=True)
        ws.column_dimensions["A"].width = 36
        for n in range(len(columns)):
            ws.column_dimensions[chr(ord("B") + n)].width = 12
        ws.oddHeader.center.text = header
        ws.oddFooter.center.text = "&P / &N"

    def _head(self, title: str, cells: tuple[str, ...]) -> int:
        self.ws.cell(self.row, 1, title).font = Font(bold=True)
        for i, text in enumerate(cells):
            cell = self.ws.cell(self.row + 1, i + 1, text)
            cell.fill, cell.font = HEADER_FILL, Font(bold=True)
        self.row += 2
        return self.row - 1

    def _line(self, label: str, values: list, bold: bool = False) -> None:
        self.ws.cell(self.row, 1, label).font = Font(bold=bold)
        self.ws.cell(self.row, 1).alignment = Alignment(wrap_text=True, vertical="top")
        for i, value in enumerate(values):
            self.ws.cell(self.row, i + 2, value).alignment = RIGHT
        self.row += 1

    def summary(self, title: str, lines: list[tuple[str, list[int]]]) -> None:
        self._head(title, ("項目", *self.columns))
        for label, values in lines:
            self._line(label, [masked(v) for v in values])
        self.row += 1

    def table(self, title: str, counts: list[dict], labels: dict, order: list | None = None,
              chart: bool = False) -> None:
        """One row per key (the given order, then any other key by the last column's count), and a total."""
        seen = set().union(*counts)
        extra = sorted(seen - set(order or ()), key=lambda k: (-counts[-1].get(k, 0), k is None, k or ""))
        keys = [*(order or ()), *extra]
        header = self._head(title, ("区分", *self.columns))
        for key in keys:
            self._line(labels.get(key, key if key is not None else UNANSWERED), [masked(c.get(key, 0)) for c in counts])
        self._line("合計", [masked(sum(c.values())) for c in counts], bold=True)
        self.row += 1
        if chart and keys:
            self._chart(f"{title}（{self.columns[0]}）", header, len(keys))

    def _chart(self, title: str, header: int, rows: int) -> None:
        bar = BarChart()
        bar.type, bar.title, bar.legend = "bar", title, None
        bar.add_data(Reference(self.ws, min_col=2, min_row=header, max_row=header + rows), titles_from_data=True)
        bar.set_categories(Reference(self.ws, min_col=1, min_row=header + 1, max_row=header + rows))
        bar.height, bar.width = max(5, 0.7 * rows + 2), 16
        self.ws.add_chart(bar, f"A{self.row}")
        self.row += int(bar.height * 2) + 2

    def targets(self, lines: list[tuple[str, int, int]]) -> None:
        """Figures against the contract's targets: (label, done, target)."""
        self._head("目標に対する実績", ("項目", "実績", "目標", "達成率"))
        for label, done, target in lines:
            self._line(label, [masked(done), target, _share(done, target)])
        self.row += 1

    def ratings(self, config: Config, ratings: list[dict]) -> None:
        """The average of each 1–5 question of the configured surveys, with how many answered it."""
        questions = [(survey, q) for survey in config.surveys for q in survey.questions if q.kind == "rating"]
        self._head("セミナーアンケート（5段階評価の平均）", ("質問", *self.columns))
        for survey, q in questions:
            found = [r.get((survey.id, q.id)) for r in ratings]
            self._line(f"{q.text}（{survey.title}）", [_average(r) for r in found])
            self._line("　回答数", [masked(r.answered if r else 0) for r in found])
        self.row += 1

    def print_setup(self) -> None:
        ws = self.ws
        ws.print_area = f"A1:{chr(ord('A') + max(len(self.columns), 3))}{self.row}"
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.orientation = "portrait"
        ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True


def _figure_tables(sheet: _Sheet, config: Config, f: Figures) -> None:
    """The figures every report shows, in the same order: what the month or the year's columns say."""
    sheet.summary("概要", [
        ("相談件数", f["consultations"]),
        ("相談企業（新規）", [c["new"] for c in f["companies"]]),
        ("相談企業（リピート）", [c["returning"] for c in f["companies"]]),
        ("実施予定の予約", [b["total"] for b in f["bookings"]]),
        ("うち土日", [b["weekend"] for b in f["bookings"]]),
        ("うち祝日", [b["holiday"] for b in f["bookings"]]),
        ("出張相談会の開催日数", f["popup_days"]),
        ("出張相談会での相談件数", [c.get("popup", 0) for c in f["channel"]]),
    ])
    sheet.table("経路別", f["channel"], CHANNEL_NAMES, order=list(CHANNEL_NAMES))
    sheet.table("きっかけ別", f["origin"], ORIGIN_NAMES, order=list(ORIGIN_NAMES))
    sheet.table("分野別", f["category"], {c.id: c.name for c in config.categories},
                order=[c.id for c in config.categories], chart=True)
    sheet.table("地域別", f["region"], {r.id: r.name for r in REGIONS}, order=[r.id for r in REGIONS] + [None],
                chart=True)
    sheet.table("方法別", f["method"], METHOD_NAMES, order=list(METHOD_NAMES), chart=True)
    sheet.table("状況別", f["status"], STATUS_LABELS, order=list(STATUS_LABELS))
    sheet.table("業種別", f["industry"], {})
    sheet.table("市町村別", f["municipality"], {})
    sheet.summary("セミナー", [
        ("開催回数", f["seminars"]),
        *((f"申込（{MODE_NAMES[m]}）", [r[m] for r in f["registrations"]]) for m in SEMINAR_MODES),
        ("申込 計", [sum(r.values()) for r in f["registrations"]]),
        *((f"出席（{MODE_NAMES[m]}）", [a[m] for a in f["attendees"]]) for m in SEMINAR_MODES),
        ("出席 計", [sum(a.values()) for a in f["attendees"]]),
    ])
    sheet.ratings(config, f["ratings"])


def monthly_workbook(f: Figures, config: Config, out: Path) -> None:
    """The monthly report: the figures of the month, the month before and the fiscal year to date, on one A4 sheet."""
    month, _, fiscal = f.periods
    first = month.start.astimezone(TOKYO)
    wb = Workbook()
    wb.active.title = "月次報告"
    sheet = _Sheet(wb.active, MONTH_COLUMNS, f"{config.program_name} 月次報告",
                   f"{first.year}年{first.month}月（年度累計は{fiscal.start.year}年4月から）",
                   f"{config.program_name} {first.year}年{first.month}月")
    sheet.targets([("セミナー出席者（年度累計）", sum(f["attendees"][2].values()),
                    config.targets.seminar_attendees_per_year)])
    _figure_tables(sheet, config, f)
    sheet.print_setup()
    wb.save(out)


def year_workbook(f: Figures, config: Config, out: Path) -> None:
    """The year's figures for the 実績報告書, against the year before."""
    fy = f.periods[0].start.astimezone(TOKYO)
    wb = Workbook()
    wb.active.title = "年度実績"
    sheet = _Sheet(wb.active, YEAR_COLUMNS, f"{config.program_name} 年度実績",
                   f"{fy.year}年度（{fy.year}年4月〜{fy.year + 1}年3月）", f"{config.program_name} {fy.year}年度")
    sheet.targets([("セミナー出席者（年度）", sum(f["attendees"][0].values()), config.targets.seminar_attendees_per_year)])
    _figure_tables(sheet, config, f)
    sheet.print_setup()
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
    """A .csv (UTF-8 with BOM, so Excel reads the Japanese) of the week's consultations, or an .xlsx that also
    has the week's bookings."""
    if out.suffix.lower() == ".csv":
        with out.open("w", encoding="utf-8-sig", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(WEEK_COLUMNS)
            writer.writerows([as_text(v) for v in row] for row in _week_rows(s, config, week))
        return
    wb = Workbook()
    for ws, header, rows in ((wb.active, WEEK_COLUMNS, _week_rows(s, config, week)),
                             (wb.create_sheet(), BOOKING_COLUMNS, _booking_rows(s, config, week))):
        ws.title = "相談" if header is WEEK_COLUMNS else "予約"
        ws.append(header)
        for cell in ws[1]:
            cell.fill, cell.font = HEADER_FILL, Font(bold=True)
        for r in rows:
            ws.append([as_text(v) for v in r])
        ws.freeze_panes = "A2"
    wb.save(out)
