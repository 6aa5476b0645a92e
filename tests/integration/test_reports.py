"""`dxdesk report weekly|monthly` as operators run it, over a month of rows on the real test database.

Every expected figure is counted here with its own plain query, never through storage.reports.
"""
from __future__ import annotations

import csv
import io
import zipfile
from datetime import datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from bot.jatime import TOKYO
from storage.models import Booking, Consultation, LineUser, PopupDay
from tests.integration.test_cli import dxdesk

NOV, DEC, OCT, APRIL = (datetime(2026, 11, 1, tzinfo=TOKYO), datetime(2026, 12, 1, tzinfo=TOKYO),
                        datetime(2026, 10, 1, tzinfo=TOKYO), datetime(2026, 4, 1, tzinfo=TOKYO))
PERSONAL: list[str] = []  # every name, phone, email and question seeded: none may reach the monthly report


def tokyo(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TOKYO)


def consult(s, n: int, when: str, *, user: str, category="efficiency", region="kagoshima", municipality="鹿児島市",
            method="visit", channel="line", status="received", simulated=False) -> Consultation:
    if s.get(LineUser, user) is None:
        s.add(LineUser(id=user, source="simulator" if simulated else "line", created_at=tokyo(when),
                       updated_at=tokyo(when)))
        s.flush()
    values = dict(company=f"秘密商事{n}号", contact_name=f"鹿児島 花子{n}", phone=f"099-555-{n:04d}",
                  email=f"secret{n}@example.jp", question=f"内緒の相談その{n}です")
    PERSONAL.extend(values.values())
    c = Consultation(received_at=tokyo(when), channel=channel, simulated=simulated, user_id=user, industry="製造業",
                     municipality=municipality, region=region, category=category, method=method, status=status,
                     **values)
    s.add(c)
    s.flush()
    return c


def book(s, c: Consultation | None, start: str, *, status="confirmed", simulated=False, coordinator="tanaka"):
    at = tokyo(start)
    s.add(Booking(consultation_id=c and c.id, user_id=c and c.user_id, coordinator_id=coordinator, start=at,
                  end=at + timedelta(hours=1), method="visit", simulated=simulated, status=status,
                  created_at=at, updated_at=at))


@pytest.fixture
def seeded(services):
    with services.db.unit_of_work() as s:
        # November 2026: four efficiency (one by U1, who also consulted in October), two sales, one popup security.
        nov = [consult(s, 1, "2026-11-02 10:00", user="U1"),
               consult(s, 2, "2026-11-05 10:00", user="U2", method="online"),
               consult(s, 3, "2026-11-10 10:00", user="U3", method="phone", region="osumi", municipality="鹿屋市"),
               consult(s, 4, "2026-11-24 10:00", user="U4", status="closed"),
               consult(s, 5, "2026-11-25 10:00", user="U5", category="sales", status="follow_up", region="osumi",
                       municipality="鹿屋市"),
               consult(s, 6, "2026-11-30 23:59", user="U6", category="sales", method="email"),
               consult(s, 7, "2026-11-28 11:00", user="U7", category="security", channel="popup", region="amami",
                       municipality="奄美市")]
        # Simulator demos in November: in no figure.
        for n in range(8, 11):
            demo = consult(s, n, "2026-11-20 10:00", user=f"sim-{n}", simulated=True)
            book(s, demo, "2026-11-21 10:00", simulated=True, coordinator=f"tanaka-{n}")
        # October (the previous month), April (start of the fiscal year) and March (the previous fiscal year).
        consult(s, 11, "2026-10-15 10:00", user="U1")
        consult(s, 12, "2026-10-31 23:59", user="U8", category="sales")
        consult(s, 13, "2026-04-01 00:00", user="U9", category="data", region="hokusatsu", municipality="出水市")
        consult(s, 14, "2026-03-31 23:59", user="U10", category="data", region="hokusatsu", municipality="出水市")
        book(s, nov[0], "2026-11-23 10:00")  # 勤労感謝の日 (a Monday)
        book(s, nov[1], "2026-11-28 10:00")  # a Saturday
        book(s, nov[2], "2026-11-26 10:00")
        book(s, nov[3], "2026-11-27 10:00", status="cancelled")
        book(s, nov[6], "2026-11-28 11:00", coordinator="popup-1-0")
        s.add(PopupDay(region="amami", venue="奄美商工会議所", start_at=tokyo("2026-11-28 10:00"),
                       end_at=tokyo("2026-11-28 16:00"), created_at=tokyo("2026-11-01 10:00")))
        s.commit()
    return services


def real(s, start, end, *where) -> int:
    return s.scalar(select(func.count()).select_from(Consultation).where(
        Consultation.received_at >= start, Consultation.received_at < end, Consultation.simulated.is_(False), *where))


def shown(n: int):
    return "3未満" if 1 <= n <= 2 else n


def agrees(found: tuple, expected: tuple) -> bool:
    """A breakdown's row as shown against `shown` of its counts: the same, except that a count of 3 or more may be
    hidden second (「秘匿」, so that the total cannot tell a 「3未満」); the checks by hand say which."""
    return len(found) == len(expected) and all(
        f == e or (f == "秘匿" and isinstance(e, int) and e >= 3) for f, e in zip(found, expected))


def tables(path) -> dict[str, dict[str, tuple]]:
    """{table title: {row label: (its columns: 当月, 前月, 年度累計 or 当年度, 前年度)}} as the sheet shows them."""
    ws = load_workbook(path).active
    found, current = {}, None
    for row in ws.iter_rows(values_only=True):
        if row[0] in ("区分", "項目", "質問"):  # a table's header row, under its title
            current = found[title] = {}
            width = len([v for v in row if v is not None])
        elif current is not None and row[0] is not None:
            current[row[0]] = row[1:width]
        else:
            current = None
        title = row[0]
    return found


def monthly(tmp_path, database_url, month="2026-11"):
    out = tmp_path / "monthly.xlsx"
    result = dxdesk("report", "monthly", "--month", month, "--out", str(out), env={"DXDESK_DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    return out


def test_monthly_totals_match_the_database_for_the_month_the_previous_month_and_the_fiscal_year(
        seeded, database_url, tmp_path):
    found = tables(monthly(tmp_path, database_url))
    periods = ((NOV, DEC), (OCT, NOV), (APRIL, DEC))
    with seeded.db.unit_of_work() as s:
        def expected(*where):
            return tuple(shown(real(s, a, b, *where)) for a, b in periods)

        assert found["概要"]["相談件数"] == expected()
        assert agrees(found["分野別"]["業務効率化・ペーパーレス"], expected(Consultation.category == "efficiency"))
        assert agrees(found["分野別"]["EC・Web集客・販路開拓"], expected(Consultation.category == "sales"))
        assert agrees(found["分野別"]["データ活用・見える化"], expected(Consultation.category == "data"))
        assert found["分野別"]["合計"] == expected()
        assert agrees(found["地域別"]["大隅"], expected(Consultation.region == "osumi"))
        assert agrees(found["方法別"]["訪問"], expected(Consultation.method == "visit"))
        assert agrees(found["経路別"]["出張相談会"], expected(Consultation.channel == "popup"))
        assert agrees(found["状況別"]["受付"], expected(Consultation.status == "received"))
        assert agrees(found["状況別"]["フォローアップ"], expected(Consultation.status == "follow_up"))
        assert agrees(found["市町村別"]["鹿児島市"], expected(Consultation.municipality == "鹿児島市"))
        held = s.scalar(select(func.count()).select_from(Booking).where(
            Booking.start >= NOV, Booking.start < DEC, Booking.simulated.is_(False), Booking.status == "confirmed"))
    # Worked out by hand as well, so a wrong filter on both sides cannot agree by accident.
    assert found["概要"]["相談件数"] == (7, "3未満", 10)  # 3 simulated left out; March is the previous fiscal year
    assert found["分野別"]["業務効率化・ペーパーレス"] == (4, "3未満", "秘匿")
    # 年度累計 5 + 3 + 1 + 1 = 10: shown as they are, 10 − 5 − 3 would tell the two 1s, and with the 3 hidden
    # 10 − 5 leaves 5 = 1 + 1 + 3 (the 3 at least 3): the 5 is hidden second as well. In November 4 + 2 + 1 = 7 tells
    # neither (2 + 1 or 1 + 2); in October 1 + 1 = 2 hides its total too and there is nothing of 3 or more to hide.
    assert found["分野別"]["EC・Web集客・販路開拓"] == ("3未満", "3未満", "秘匿")
    assert found["分野別"]["セキュリティ・ITトラブル"] == ("3未満", 0, "3未満")
    assert found["分野別"]["合計"] == (7, "3未満", 10)
    assert found["経路別"]["LINE"] == ("秘匿", "3未満", "秘匿")  # 7 − 6 would tell the one at the 出張相談会
    assert found["概要"]["出張相談会での相談件数"] == found["経路別"]["出張相談会"] == ("3未満", 0, "3未満")
    assert found["分野別"]["データ活用・見える化"] == (0, 0, "3未満")
    assert found["概要"]["相談企業（リピート）"] == ("3未満", 0, 0)  # U1, back after October
    assert found["概要"]["相談企業（新規）"] == (6, "3未満", 9)
    assert found["概要"]["実施予定の予約"][0] == held == 4  # cancelled and simulated ones left out
    assert found["概要"]["うち土日"][0] == "3未満" and found["概要"]["うち祝日"][0] == "3未満"
    assert found["概要"]["土日・祝日の割合"][0] == "75%"  # 勤労感謝の日 and the two on Saturday the 28th, of 4
    assert found["概要"]["出張相談会の開催日数"][0] == "3未満"


def test_monthly_is_a_printable_a4_page_with_charts_and_no_personal_data(seeded, database_url, tmp_path):
    out = monthly(tmp_path, database_url)
    ws = load_workbook(out).active
    assert str(ws.page_setup.paperSize) == ws.PAPERSIZE_A4 and ws.page_setup.orientation == "portrait"
    assert ws.print_area and ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth == 1
    assert "かごしまDX相談窓口" in ws["A1"].value and "2026年11月" in ws["A2"].value
    assert "2026年11月" in ws.oddHeader.center.text
    cells = [str(v) for row in ws.iter_rows(values_only=True) for v in row if v is not None]
    with zipfile.ZipFile(out) as z:
        assert len([n for n in z.namelist() if n.startswith("xl/charts/chart")]) == 3
        raw = b"".join(z.read(n) for n in z.namelist())
    assert PERSONAL
    for secret in PERSONAL:
        assert not any(secret in c for c in cells), secret
        assert secret.encode() not in raw, secret


def test_an_empty_month_gives_a_valid_workbook_with_zeros(database_url, services, tmp_path):
    found = tables(monthly(tmp_path, database_url, "2027-02"))
    assert found["概要"]["相談件数"] == (0, 0, 0)
    assert found["分野別"]["合計"] == (0, 0, 0)


def test_monthly_says_under_its_tables_what_its_two_marks_mean_within_the_print_area(database_url, services, tmp_path):
    ws = load_workbook(monthly(tmp_path, database_url, "2027-02")).active
    column = [(cell.row, cell.value) for cell in ws["A"] if cell.value is not None]
    *_, (last_table_row, _), (first, line1), (second, line2) = column
    assert line1 == "3未満：1〜2件。"
    assert line2 == "秘匿：3未満の件数が他の数値から計算できないよう伏せた数値。"
    assert first > last_table_row and second == first + 1
    assert int(ws.print_area.rsplit("$", 1)[1]) >= second  # printed with the tables


def weekly(tmp_path, database_url, name="weekly.csv", week="2026-W48"):
    out = tmp_path / name
    result = dxdesk("report", "weekly", "--week", week, "--out", str(out), env={"DXDESK_DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    return out


def test_weekly_csv_has_a_bom_and_one_row_per_real_consultation_of_the_iso_week(seeded, database_url, tmp_path):
    with seeded.db.unit_of_work() as s:
        for n, when in ((20, "2026-11-22 23:59"), (21, "2026-11-23 00:00"), (22, "2026-11-29 23:59")):
            consult(s, n, when, user=f"W{n}")
        consult(s, 23, "2026-11-24 12:00", user="sim-23", simulated=True)
        s.commit()
        monday, next_monday = tokyo("2026-11-23 00:00"), tokyo("2026-11-30 00:00")
        expected = [c.receipt_no for c in s.scalars(select(Consultation).where(
            Consultation.received_at >= monday, Consultation.received_at < next_monday,
            Consultation.simulated.is_(False)).order_by(Consultation.received_at))]
    data = weekly(tmp_path, database_url).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    header, *rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert header[:3] == ["受付番号", "受付日時", "経路"] and header[-1] == "担当コーディネーター"
    assert [r[0] for r in rows] == expected and len(expected) == 5  # 23日0時 to 29日23:59; not 22日 nor 30日
    first = dict(zip(header, rows[0]))
    assert first["受付日時"] == "2026-11-23 00:00" and first["分野"] == "業務効率化・ペーパーレス"
    booked = next(dict(zip(header, r)) for r in rows if r[8] == "秘密商事4号")
    assert booked["予約日時"] == "" and booked["電話"] == "099-555-0004"  # its booking was cancelled


def test_weekly_xlsx_has_a_sheet_of_bookings_after_the_consultations(seeded, database_url, tmp_path):
    wb = load_workbook(weekly(tmp_path, database_url, "weekly.xlsx"))
    assert wb.sheetnames[:2] == ["相談", "予約"]  # and four more: tests/integration/test_weekly_log.py
    bookings = list(wb["予約"].iter_rows(min_row=2, values_only=True))
    assert [b[0] for b in bookings] == ["2026-11-23 10:00", "2026-11-26 10:00", "2026-11-28 10:00", "2026-11-28 11:00"]
    assert bookings[0][3] == "田中 一郎" and bookings[-1][3] == "出張相談会"


@pytest.mark.parametrize("name", ["weekly.csv", "weekly.xlsx"])
def test_a_question_that_looks_like_a_formula_stays_text_in_the_weekly_log(services, database_url, tmp_path, name):
    formula = '=HYPERLINK("http://evil.example/","詳細")'
    with services.db.unit_of_work() as s:
        consult(s, 30, "2026-11-24 10:00", user="W30").question = formula
        s.commit()
    out = weekly(tmp_path, database_url, name)
    if name.endswith(".csv"):
        [row] = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))[1:]
        cell = row[12]
    else:
        [row] = list(load_workbook(out)["相談"].iter_rows(min_row=2))
        assert row[12].data_type == "s"
        cell = row[12].value
    assert cell == "'" + formula


@pytest.mark.parametrize("args, message", [
    (("weekly", "--week", "2026-48", "--out", "w.csv"), "YYYY-Www"),
    (("weekly", "--week", "2026-W54", "--out", "w.csv"), "YYYY-Www"),
    (("weekly", "--week", "2026-W48", "--out", "w.pdf"), "拡張子"),
    (("monthly", "--month", "2026-13", "--out", "m.xlsx"), "YYYY-MM"),
    (("monthly", "--month", "11/2026", "--out", "m.xlsx"), "YYYY-MM"),
    (("monthly", "--month", "2026-11", "--out", "m.csv"), "拡張子"),
])
def test_bad_arguments_exit_2_with_a_japanese_message_and_write_nothing(database_url, services, tmp_path,
                                                                         args, message):
    result = dxdesk("report", *args, env={"DXDESK_DATABASE_URL": database_url}, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "してください" in result.stderr
    assert list(tmp_path.glob("[wm].*")) == []


def test_a_holiday_on_a_weekend_counts_once_in_the_share_of_weekend_and_holiday_bookings(services):
    from storage.reports import bookings_held, month_period
    with services.db.unit_of_work() as s:
        for n, start in enumerate(("2026-05-02 10:00", "2026-05-03 10:00", "2026-05-06 10:00", "2026-05-07 10:00")):
            book(s, consult(s, 60 + n, start, user=f"M{n}"), start)  # Sat, 憲法記念日 (Sun), 振替休日, Thu
        s.commit()
        held = bookings_held(s, month_period("2026-05"))
    assert held == {"total": 4, "weekend": 2, "holiday": 2, "off_days": 3}
