"""The console's home shows the monthly report's figures with bars, and downloads the monthly report for a chosen
month (recorded as an export); viewers may do both, as they are aggregates only."""
from __future__ import annotations

import io
from html.parser import HTMLParser

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from storage.models import AuditEntry, Consultation
from tests.integration.test_console import sign_in
from tests.integration.test_reports import APRIL, DEC, NOV, OCT, PERSONAL, agrees, real, seeded, shown, tables

__all__ = ["seeded"]  # the fixture, used by name below


class Tables(HTMLParser):
    """{caption: {row label: (cells...)}} of the page's tables, and the bar widths of each table's rows."""

    def __init__(self):
        super().__init__()
        self.found: dict[str, dict[str, tuple]] = {}
        self.bars: dict[str, list[str]] = {}
        self._caption = self._cell = None
        self._row: list[str] | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        if tag in ("caption", "th", "td"):
            self._text = ""
            self._cell = tag
        elif tag == "tr":
            self._row = []
        elif tag == "rect" and self._caption:
            self.bars.setdefault(self._caption, []).append(dict(attrs)["width"])

    def handle_data(self, data):
        self._text += data

    def handle_endtag(self, tag):
        if tag == "caption":
            self._caption = self._text.strip()
            self.found[self._caption] = {}
        elif tag in ("th", "td") and self._row is not None:
            self._row.append(self._text.strip())
        elif tag == "tr" and self._row and self._caption:
            label, *cells = self._row
            if label not in ("区分", "項目", "質問"):
                self.found[self._caption][label] = tuple(int(c) if c.isdecimal() else c for c in cells if c != "")
            self._row = None
        elif tag == "table":
            self._caption = None


def figures(client, path="/admin?month=2026-11") -> Tables:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    parsed = Tables()
    parsed.feed(response.get_data(as_text=True))
    return parsed


@pytest.mark.parametrize("role", ["viewer", "coordinator"])
def test_the_home_shows_the_months_figures_as_the_report_counts_them(seeded, client, role):
    sign_in(client, seeded, role)
    page = figures(client)
    periods = ((NOV, DEC), (OCT, NOV), (APRIL, DEC))
    with seeded.db.unit_of_work() as s:
        def expected(*where):
            return tuple(shown(real(s, a, b, *where)) for a, b in periods)

        assert page.found["概要"]["相談件数"] == expected() == (7, "3未満", 10)
        assert agrees(page.found["分野別"]["業務効率化・ペーパーレス"], expected(Consultation.category == "efficiency"))
        assert agrees(page.found["地域別"]["大隅"], expected(Consultation.region == "osumi"))
    assert page.found["分野別"]["業務効率化・ペーパーレス"] == (4, "3未満", "秘匿")  # as in the workbook
    assert page.found["目標に対する実績"]["企業訪問（当月）"] == (0, 3, "0%")
    # Bars for the month's counts: efficiency (4) is the longest, a hidden count draws none.
    bars = dict(zip(page.found["分野別"], page.bars["分野別"]))
    assert bars["業務効率化・ペーパーレス"] == "100" and bars["EC・Web集客・販路開拓"] == "0"
    html = client.get("/admin?month=2026-11").get_data(as_text=True)
    assert "月次報告（Excel）をダウンロード" in html
    note = "3未満：1〜2件。秘匿：3未満の件数が他の数値から計算できないよう伏せた数値。"
    assert html.count(note) == 1 and html.index(note) > html.rindex("</table>")  # under the tables
    for secret in PERSONAL:
        assert secret not in html, secret


def test_the_home_shows_this_month_unless_another_is_chosen(seeded, client):
    sign_in(client, seeded, "viewer")
    assert figures(client, "/admin").found["概要"]["相談件数"][0] == 7  # the clock is in November 2026
    assert figures(client, "/admin?month=2026-10").found["概要"]["相談件数"][:2] == ("3未満", 0)


@pytest.mark.parametrize("month", ["2026-13", "11/2026", "2026-1"])
def test_a_month_in_the_wrong_form_gets_a_japanese_answer(seeded, client, month):
    sign_in(client, seeded, "viewer")
    for path in (f"/admin?month={month}", f"/admin/reports/monthly.xlsx?month={month}"):
        response = client.get(path)
        assert response.status_code == 400
        assert "YYYY-MM の形で指定してください" in response.get_data(as_text=True)


def test_the_monthly_report_downloads_as_the_cli_writes_it_and_is_recorded_as_an_export(seeded, client, tmp_path):
    sign_in(client, seeded, "viewer", login="kenchou")
    response = client.get("/admin/reports/monthly.xlsx?month=2026-11")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"] and "2026-11" in response.headers["Content-Disposition"]
    out = tmp_path / "downloaded.xlsx"
    out.write_bytes(response.data)
    found = tables(out)
    assert found["概要"]["相談件数"] == (7, "3未満", 10)
    assert load_workbook(io.BytesIO(response.data)).active.title == "月次報告"
    with seeded.db.unit_of_work() as s:
        assert s.scalars(select(AuditEntry.record).where(AuditEntry.who == "kenchou",
                                                         AuditEntry.action == "export")).all() == ["monthly:2026-11"]
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "view")) == 0


def test_signed_out_neither_the_figures_nor_the_download_are_shown(seeded, client):
    for path in ("/admin?month=2026-11", "/admin/reports/monthly.xlsx?month=2026-11"):
        response = client.get(path)
        assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
