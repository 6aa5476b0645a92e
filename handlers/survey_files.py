"""A seminar survey's results as a file: .csv (UTF-8 with BOM) or .xlsx with a bar chart per question."""
from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font

from handlers.report_files import as_text
from storage.surveys import QuestionResult

KIND_NAMES = {"rating": "5段階評価", "single": "単一選択", "multiple": "複数選択", "text": "自由記述",
              "consult": "個別相談の希望"}
COLUMNS = ("質問", "種類", "回答数", "選択肢", "件数", "平均")


def rows(results: list[QuestionResult]) -> list[list]:
    """One row per choice of each question (the average on ratings), then one per free text."""
    out = []
    for q in results:
        if q.kind == "text":
            out += [[q.text, KIND_NAMES[q.kind], q.answered, "（自由記述）", text, None] for text in q.texts] or [
                [q.text, KIND_NAMES[q.kind], 0, "（自由記述）", "", None]]
            continue
        for n, (choice, count) in enumerate(q.counts.items()):
            out.append([q.text, KIND_NAMES[q.kind], q.answered, choice, count, q.average if n == 0 else None])
    return out


def write(results: list[QuestionResult], title: str, out: Path) -> None:
    if out.suffix.lower() == ".csv":
        with out.open("w", encoding="utf-8-sig", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            writer.writerows([as_text(v) for v in row] for row in rows(results))
        return
    wb = Workbook()
    ws = wb.active
    ws.title = "集計"
    ws.cell(1, 1, title).font = Font(bold=True, size=14)
    row = 3
    for q in results:
        ws.cell(row, 1, as_text(q.text)).font = Font(bold=True)
        ws.cell(row, 2, f"{KIND_NAMES[q.kind]}・回答数 {q.answered}" + (f"・平均 {q.average}" if q.average else ""))
        row += 1
        if q.kind == "text":
            for text in q.texts:
                ws.cell(row, 1, as_text(text))
                row += 1
            row += 1
            continue
        header = row
        ws.cell(row, 1, "選択肢"), ws.cell(row, 2, "件数")
        for choice, count in q.counts.items():
            row += 1
            ws.cell(row, 1, as_text(choice)), ws.cell(row, 2, count)
        bar = BarChart()
        bar.type, bar.title, bar.legend = "bar", q.text[:40], None
        bar.add_data(Reference(ws, min_col=2, min_row=header, max_row=row), titles_from_data=True)
        bar.set_categories(Reference(ws, min_col=1, min_row=header + 1, max_row=row))
        bar.height, bar.width = max(5, 0.7 * len(q.counts) + 2), 14
        ws.add_chart(bar, f"D{header}")
        row = max(row + 2, header + int(bar.height * 2) + 2)
    ws.column_dimensions["A"].width = 40
    ws.column_dimensions["B"].width = 24
    wb.save(out)
