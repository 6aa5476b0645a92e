"""The weekly log (`dxdesk report weekly` and the console's download) over a week built through the real services: LINE
intakes and a booking over signed webhooks, seminar registrations, a survey answered in LINE, referrals, activities
recorded in the console. Expected rows are counted here, never through storage.reports."""
from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from app import create_app
from scheduling import outbox
from storage import seminars
from storage.models import AuditEntry, Consultation, Referral
from tests.fakes.line_api import FakeLineApi
from tests.helpers import SECRET, LineUserDriver, add_registration, line_intake, texts
from tests.integration.test_activities import VISIT, record
from tests.integration.test_cli import dxdesk
from tests.integration.test_console import page, sign_in

WEEK = "2026-W48"  # Monday 23 November to Sunday 29 November 2026; the test clock stands on Tuesday the 24th, 10:00
SHEETS = ["相談", "予約", "セミナー申込（今週の受付分）", "アンケート回答", "紹介", "活動"]
ATTENDEE = "U" + "a" * 32


@pytest.fixture
def line():
    with FakeLineApi() as fake:
        yield fake


@pytest.fixture
def app(settings, clock, line):
    app = create_app(replace(settings, line_channel_secret=SECRET, line_channel_access_token="token",
                             line_api_base_url=line.base_url, public_base_url="https://dx.example.jp"), clock=clock)
    yield app
    app.extensions["dxdesk"].stop()
    app.extensions["dxdesk"].db.dispose()


@pytest.fixture
def services(app):
    return app.extensions["dxdesk"]


def intake(app, line, user: str, company: str) -> LineUserDriver:
    u = LineUserDriver(app.test_client(), app, line, user=user)
    assert "受付番号" in line_intake(u, company=company, name="桜島 花子", phone="099-000-1111",
                                      email="hanako@example.jp", question="紙の請求書をやめて業務を効率化したい")
    return u


@pytest.fixture
def week(app, services, line, client):
    """Two consultations and one booking, three registrations (two this week), one survey answered, two referrals
    (one this week), three activities (two this week)."""
    intake(app, line, "U" + "1" * 32, "霧島製茶")
    booked = intake(app, line, "U" + "2" * 32, "指宿観光")
    said = texts(booked.book("action=slot&c=tanaka&t=202611261000"))
    assert "ご予約" in said, said
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        held = seminars.create(s, title="DX入門セミナー", start_at=now - timedelta(hours=2),
                               end_at=now + timedelta(minutes=10), onsite_seats=30, online_seats=60, now=now,
                               survey_id="seminar")
        s.commit()
        seminar_id = held.id
    add_registration(services.db, seminar_id, ATTENDEE, status="attended", company="鹿屋商店", name="大隅 太郎", at=now)
    add_registration(services.db, seminar_id, "U" + "b" * 32, company="出水物産", at=now)
    add_registration(services.db, seminar_id, "U" + "c" * 32, company="先週の申込", at=now - timedelta(days=3))
    answer_survey(app, services, line, seminar_id)
    with services.db.unit_of_work() as s:
        first = s.scalars(select(Consultation).order_by(Consultation.id)).first()
        for at, partner in ((now, "yorozu"), (now - timedelta(days=7), "kisc")):
            s.add(Referral(consultation_id=first.id, partner_id=partner, referred_at=at, referred_by="tanaka-login",
                           outcome="accepted", outcome_note="販路開拓の専門家派遣へ", updated_at=at))
        s.commit()
    sign_in(client, services, "admin", login="weekly-admin")
    record(client, date="2026-11-25T14:00", company="霧島製茶")
    record(client, kind="training", date="2026-11-29T23:59", session_no="2", topics="=SUM(A1) 表計算", attendees="8")
    record(client, date="2026-11-30T00:00", company="翌週の訪問先")
    return seminar_id


def answer_survey(app, services, line, seminar_id: int) -> None:
    services.clock.advance(minutes=70)
    services.plan_surveys()
    outbox.send_due(services.db, services.delivery, services.clock)
    u = LineUserDriver(app.test_client(), app, line, user=ATTENDEE)
    u.tap(f"action=survey&seminar={seminar_id}")
    u.tap(f"action=survey_answer&seminar={seminar_id}&q=satisfaction&v=4")
    u.tap(f"action=survey_answer&seminar={seminar_id}&q=useful&v=補助金の説明")
    u.tap(f"action=survey_pick&seminar={seminar_id}&q=interests&v=AI・IoT")
    u.tap(f"action=survey_next&seminar={seminar_id}&q=interests")
    u.say("とても参考になりました")
    assert "ありがとうございました" in texts(u.tap(f"action=survey_answer&seminar={seminar_id}&q=consult&v=no"))


def cli_weekly(database_url: str, out, week: str = WEEK):
    result = dxdesk("report", "weekly", "--week", week, "--out", str(out), env={"DXDESK_DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    return out


def sheets(path) -> dict[str, list[tuple]]:
    wb = load_workbook(path)
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in wb.worksheets}


def audit(services) -> list[tuple[str, str, str]]:
    with services.db.unit_of_work() as s:
        return [(e.who, e.action, e.record) for e in s.scalars(select(AuditEntry).where(AuditEntry.action == "export"))]


def test_the_weekly_csv_opens_with_the_bom_and_has_one_row_per_consultation_of_the_week(week, services, database_url,
                                                                                       tmp_path):
    with services.db.unit_of_work() as s:
        expected = [c.receipt_no for c in s.scalars(select(Consultation).order_by(Consultation.id))]
    data = cli_weekly(database_url, tmp_path / "week.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    header, *rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert header[0] == "受付番号" and [r[0] for r in rows] == expected and len(rows) == 2
    assert {r[8] for r in rows} == {"霧島製茶", "指宿観光"}
    assert ("cli", "export", f"weekly:{WEEK}") in audit(services)


def test_the_weekly_xlsx_has_the_six_sheets_with_the_weeks_rows(week, services, database_url, tmp_path):
    found = sheets(cli_weekly(database_url, tmp_path / "week.xlsx"))
    assert list(found) == SHEETS
    assert {title: len(rows) - 1 for title, rows in found.items()} == {
        "相談": 2, "予約": 1, "セミナー申込（今週の受付分）": 2, "アンケート回答": 1, "紹介": 1, "活動": 2}
    registrations = found["セミナー申込（今週の受付分）"]
    assert [r[5] for r in registrations[1:]] == ["鹿屋商店", "出水物産"]
    survey = dict(zip(found["アンケート回答"][0], found["アンケート回答"][1]))
    assert survey["会社名"] == "鹿屋商店" and survey["氏名"] == "大隅 太郎"
    assert survey["本日のセミナーの満足度を教えてください。"] == 4
    assert "AI・IoT" in survey.values() and "とても参考になりました" in survey.values() and "いいえ" in survey.values()
    referral = dict(zip(*found["紹介"][:2]))
    assert (referral["紹介先"], referral["結果"], referral["会社名"]) == ("鹿児島県よろず支援拠点", "支援開始", "霧島製茶")
    activities = [dict(zip(found["活動"][0], r)) for r in found["活動"][1:]]
    assert [(a["実施日時"], a["種類"]) for a in activities] == [("2026-11-25 14:00", "企業への支援訪問"),
                                                              ("2026-11-29 23:59", "企業内研修")]
    assert activities[1]["内容・テーマ"] == "'=SUM(A1) 表計算" and activities[1]["研修の回"] == 2
    assert activities[0]["担当コーディネーター"] == "田中 一郎"


def test_an_empty_week_gives_files_with_headers_only(services, database_url, tmp_path):
    found = sheets(cli_weekly(database_url, tmp_path / "empty.xlsx", "2027-W05"))
    assert list(found) == SHEETS and all(len(rows) == 1 for rows in found.values())
    assert found["アンケート回答"][0] == ("回答完了日時", "セミナー", "開催日時", "会社名", "氏名")
    data = cli_weekly(database_url, tmp_path / "empty.csv", "2027-W05").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and len(list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))) == 1


@pytest.mark.parametrize("week_text", ["2026-48", "2026-W54", "2026W48", ""])
def test_a_wrong_week_exits_2_with_a_japanese_message(services, database_url, tmp_path, week_text):
    result = dxdesk("report", "weekly", "--week", week_text, "--out", str(tmp_path / "w.csv"),
                    env={"DXDESK_DATABASE_URL": database_url})
    assert result.returncode == 2 and "YYYY-Www の形で指定してください" in result.stderr
    assert not (tmp_path / "w.csv").exists()


def test_the_console_download_is_the_same_file_and_is_recorded_with_the_staff_login(week, client, services, tmp_path):
    assert "週報" in page(client, "/admin/weekly")
    response = client.get(f"/admin/weekly/download?week={WEEK}&format=xlsx")
    assert response.status_code == 200
    assert f"weekly-{WEEK}.xlsx" in response.headers["Content-Disposition"]
    (tmp_path / "console.xlsx").write_bytes(response.data)
    found = sheets(tmp_path / "console.xlsx")
    assert list(found) == SHEETS and len(found["活動"]) == 3
    csv_file = client.get(f"/admin/weekly/download?week={WEEK}&format=csv")
    assert csv_file.data.startswith(b"\xef\xbb\xbf") and csv_file.mimetype == "text/csv"
    assert audit(services) == [("weekly-admin", "export", f"weekly:{WEEK}")] * 2


@pytest.mark.parametrize("query, message", [("week=2026-W60&format=xlsx", "YYYY-Www"),
                                            ("week=2026-W48&format=pdf", "CSV か Excel")])
def test_a_bad_console_download_is_a_japanese_400_and_records_nothing(client, services, query, message):
    sign_in(client, services, "coordinator")
    response = client.get(f"/admin/weekly/download?{query}")
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert audit(services) == []


def test_a_viewer_may_not_download_the_weekly_log(client, services):
    sign_in(client, services, "viewer")
    for path in ("/admin/weekly", f"/admin/weekly/download?week={WEEK}&format=xlsx"):
        response = client.get(path)
        assert response.status_code == 403 and "閲覧専用のアカウントでは書き出せません" in response.get_data(as_text=True)
    assert audit(services) == []


def test_the_weeks_edges_are_tokyo_midnights(services, database_url, tmp_path, client):
    sign_in(client, services)
    for when in ("2026-11-22T23:59", "2026-11-23T00:00", "2026-11-29T23:59", "2026-11-30T00:00"):
        record(client, **(VISIT | {"date": when, "company": when}))
    rows = sheets(cli_weekly(database_url, tmp_path / "edges.xlsx"))["活動"][1:]
    assert [r[2] for r in rows] == ["2026-11-23T00:00", "2026-11-29T23:59"]
