"""The monthly report's seminar, survey, target and origin figures, and the year report, over rows made by the real
services: registrations under the seminar's lock, attendance marked as at the reception, survey answers tapped in LINE
(signed webhook events against the fake Messaging API).

Every expected figure is counted here with its own plain query, never through storage.reports.
"""
from __future__ import annotations

import zipfile
from dataclasses import replace
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from scheduling import seminars as registrations
from storage import seminars
from storage.models import Consultation, LineUser, Seminar, SeminarRegistration, SurveyResponse
from tests.fakes.line_api import FakeLineApi
from tests.helpers import SECRET, LineUserDriver
from tests.integration.test_cli import dxdesk
from tests.integration.test_reports import (APRIL, DEC, NOV, OCT, PERSONAL, consult, monthly, real, seeded, shown,
                                            tables, tokyo)

__all__ = ["seeded"]  # the fixture, used by name below

PUBLIC = "https://dx.example.jp"


@pytest.fixture
def line():
    with FakeLineApi() as fake:
        yield fake


@pytest.fixture
def app(settings, clock, line):
    from app import create_app
    app = create_app(replace(settings, line_channel_secret=SECRET, line_channel_access_token="token",
                             line_api_base_url=line.base_url, public_base_url=PUBLIC), clock=clock)
    yield app
    app.extensions["dxdesk"].stop()
    app.extensions["dxdesk"].db.dispose()


@pytest.fixture
def services(app):
    return app.extensions["dxdesk"]


def person(n: int) -> str:
    return f"U{n:032x}"


def held_seminar(services, title: str, start: str, people: list[tuple[int, str, str]]) -> int:
    """A seminar registered for before it starts, then held: (person, mode, what became of them) for each."""
    services.clock.set(tokyo(start) - timedelta(days=5))
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        seminar = seminars.create(s, title=title, start_at=tokyo(start), end_at=tokyo(start) + timedelta(hours=2),
                                  onsite_seats=30, online_seats=60, now=now, survey_id="seminar")
        for n, mode, _ in people:
            user = person(n) if n >= 0 else f"sim-{-n}"
            if s.get(LineUser, user) is None:
                s.add(LineUser(id=user, source="line" if n >= 0 else "simulator", following=True, created_at=now,
                               updated_at=now))
                s.flush()
            company, name = f"セミナー参加商店{n}", f"参加 太郎{n}"
            PERSONAL.extend((company, name))
            registered = registrations.register(s, seminar.id, user, mode, now, company=company, contact_name=name)
            assert registered.outcome == "registered", registered.outcome
        s.commit()
        seminar_id = seminar.id
    services.clock.set(tokyo(start) + timedelta(minutes=10))
    with services.db.unit_of_work() as s:
        for n, _, fate in people:
            user = person(n) if n >= 0 else f"sim-{-n}"
            registration = registrations.live_registration(s, seminar_id, user)
            if fate == "attended":
                assert seminars.mark_attended(s, registration, by="staff", now=services.clock.now()) == "marked"
            elif fate == "cancelled":
                registrations.cancel(s, registration, by="user", now=services.clock.now(), public_url=PUBLIC)
        s.commit()
    return seminar_id


def answer_survey(app, client, line, seminar_id: int, n: int, satisfaction: int) -> None:
    """Tap through the survey in LINE as the attendee would."""
    user = LineUserDriver(client, app, line, user=person(n))
    user.tap(f"action=survey&seminar={seminar_id}")
    base = f"seminar={seminar_id}"
    user.tap(f"action=survey_answer&{base}&q=satisfaction&v={satisfaction}")
    user.tap(f"action=survey_answer&{base}&q=useful&v=DXの進め方")
    user.tap(f"action=survey_pick&{base}&q=interests&v=AI・IoT")
    user.tap(f"action=survey_next&{base}&q=interests")
    secret = f"感想の秘密{n}"
    PERSONAL.append(secret)
    user.say(secret)
    user.tap(f"action=survey_answer&{base}&q=consult&v=no")


@pytest.fixture
def month(seeded, app, client, line):
    """November: the seeded consultations, a seminar of 7 real registrations (5 attended, 1 cancelled) and a
    simulator demo, 3 survey answers (and one by an attendee of October's seminar, which had 2 attendees)."""
    services = seeded
    october = held_seminar(services, "10月のDXセミナー", "2026-10-20 14:00",
                           [(1, "onsite", "attended"), (2, "online", "attended")])
    november = held_seminar(services, "11月のDXセミナー", "2026-11-18 14:00",
                            [(3, "onsite", "attended"), (4, "onsite", "attended"), (5, "onsite", "attended"),
                             (6, "online", "attended"), (7, "online", "attended"), (8, "onsite", "registered"),
                             (9, "onsite", "cancelled"), (-1, "onsite", "attended")])
    for n, satisfaction in ((3, 5), (4, 4), (6, 3)):
        answer_survey(app, client, line, november, n, satisfaction)
    answer_survey(app, client, line, october, 1, 2)
    with services.db.unit_of_work() as s:
        s.add(SurveyResponse(seminar_id=november, survey_id="seminar", user_id="sim-1", answers={"satisfaction": 1},
                             completed_at=services.clock.now(), created_at=services.clock.now(),
                             updated_at=services.clock.now()))
        consult(s, 40, "2026-11-19 10:00", user=person(3)).origin = f"seminar:{november}"
        consult(s, 41, "2026-11-20 10:00", user="U41").origin = "web"
        s.commit()
    return services


def test_seminar_survey_and_target_figures_match_the_database(month, database_url, tmp_path):
    found = tables(monthly(tmp_path, database_url))
    periods = ((NOV, DEC), (OCT, NOV), (APRIL, DEC))
    with month.db.unit_of_work() as s:
        def registered(a, b, *where):
            return s.scalar(select(func.count()).select_from(SeminarRegistration).join(Seminar).where(
                Seminar.start_at >= a, Seminar.start_at < b, ~SeminarRegistration.user_id.like("sim-%"), *where))

        def expected(*where):
            return tuple(shown(registered(a, b, *where)) for a, b in periods)

        attended = SeminarRegistration.status == "attended"
        assert found["セミナー"]["出席 計"] == expected(attended)
        assert found["セミナー"]["出席（会場）"] == expected(attended, SeminarRegistration.mode == "onsite")
        assert found["セミナー"]["申込 計"] == expected(SeminarRegistration.status.in_(("registered", "attended")))
        ratings = [s.scalars(select(SurveyResponse.answers).join(Seminar).where(
            Seminar.start_at >= a, Seminar.start_at < b, ~SurveyResponse.user_id.like("sim-%"))).all()
            for a, b in periods]
        origin = tuple(shown(real(s, a, b, Consultation.origin.like("seminar:%"))) for a, b in periods)
    assert found["きっかけ別"]["セミナーのアンケート"] == origin
    averages = [round(sum(r["satisfaction"] for r in rs) / len(rs), 2) if len(rs) >= 3 else "3未満" for rs in ratings]
    survey = found["セミナーアンケート（5段階評価の平均）"]
    assert survey["本日のセミナーの満足度を教えてください。（セミナーアンケート）"] == tuple(averages)
    # By hand: the simulator's attendee and answer, the cancelled and the merely registered are not attendees.
    assert found["セミナー"]["出席 計"] == (5, "3未満", 7)
    assert found["セミナー"]["申込 計"] == (6, "3未満", 8)
    assert found["セミナー"]["開催回数"] == ("3未満", "3未満", "3未満")
    assert tuple(averages) == (4.0, "3未満", 3.5)
    assert survey["　回答数"] == (3, "3未満", 4)
    assert found["きっかけ別"]["Webフォーム"] == ("3未満", 0, "3未満")
    assert found["目標に対する実績"]["セミナー出席者（年度累計）"] == (7, 90, "8%")


def test_the_monthly_report_holds_no_seeded_personal_data_in_any_cell_or_in_the_raw_file(
        month, database_url, tmp_path):
    out = monthly(tmp_path, database_url)
    cells = [str(v) for ws in load_workbook(out) for row in ws.iter_rows(values_only=True) for v in row
             if v is not None]
    with zipfile.ZipFile(out) as z:
        raw = "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    assert any("感想の秘密" in p for p in PERSONAL) and any("セミナー参加商店" in p for p in PERSONAL)
    for secret in PERSONAL:
        assert not any(secret in c for c in cells), secret
        assert secret not in raw, secret


def year(tmp_path, database_url, fy="2026"):
    out = tmp_path / "year.xlsx"
    result = dxdesk("report", "year", "--fy", fy, "--out", str(out), env={"DXDESK_DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    return out


def test_the_year_report_has_the_fiscal_year_against_the_one_before(month, database_url, tmp_path):
    out = year(tmp_path, database_url)
    found = tables(out)
    with month.db.unit_of_work() as s:
        fy = real(s, APRIL, tokyo("2027-04-01 00:00"))
        before = real(s, tokyo("2025-04-01 00:00"), APRIL)
    assert found["概要"]["相談件数"] == (shown(fy), shown(before)) == (12, "3未満")
    assert found["セミナー"]["出席 計"] == (7, 0)
    assert found["目標に対する実績"]["セミナー出席者（年度）"] == (7, 90, "8%")
    ws = load_workbook(out).active
    assert "2026年度" in ws["A2"].value and ws.page_setup.fitToWidth == 1


def test_an_empty_fiscal_year_gives_a_valid_workbook_with_zeros(database_url, services, tmp_path):
    found = tables(year(tmp_path, database_url, "2030"))
    assert found["概要"]["相談件数"] == (0, 0)
    assert found["セミナー"]["出席 計"] == (0, 0)
    assert found["目標に対する実績"]["セミナー出席者（年度）"] == (0, 90, "0%")


@pytest.mark.parametrize("fy", ["FY2025", "25", "2025-04", "2025年度"])
def test_a_fiscal_year_in_the_wrong_form_exits_2_with_a_japanese_message(database_url, services, tmp_path, fy):
    result = dxdesk("report", "year", "--fy", fy, "--out", "y.xlsx", env={"DXDESK_DATABASE_URL": database_url},
                    cwd=tmp_path)
    assert result.returncode == 2
    assert "年度は西暦4桁で指定してください" in result.stderr
    assert list(tmp_path.glob("y.*")) == []
