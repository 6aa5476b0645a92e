"""Seminar surveys end to end: sent through the outbox to attendees only, answered over signed webhook events against
the fake Messaging API, results as CSV and xlsx; a 「はい」 leads into the intake with the seminar as its origin."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from openpyxl import load_workbook

from scheduling import outbox
from storage import seminars
from storage.models import LineUser, OutboxItem, SurveyResponse
from storage.queries import consultations_as_json
from tests.fakes.line_api import FakeLineApi
from tests.helpers import SECRET, LineUserDriver, add_registration, texts

ATTENDEE, ABSENT, WAITING = "U" + "a" * 32, "U" + "b" * 32, "U" + "c" * 32


@pytest.fixture
def line():
    with FakeLineApi() as fake:
        yield fake


@pytest.fixture
def app(settings, clock, line):
    from app import create_app
    app = create_app(replace(settings, line_channel_secret=SECRET, line_channel_access_token="token",
                             line_api_base_url=line.base_url, public_base_url="https://dx.example.jp"), clock=clock)
    yield app
    app.extensions["dxdesk"].stop()
    app.extensions["dxdesk"].db.dispose()


@pytest.fixture
def services(app):
    return app.extensions["dxdesk"]


@pytest.fixture
def seminar(services):
    """A seminar that ended an hour before the clock's now... minus a little: it ends at now + 10 minutes."""
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        held = seminars.create(s, title="DX入門セミナー", start_at=now - timedelta(hours=2),
                               end_at=now + timedelta(minutes=10), onsite_seats=30, online_seats=60, now=now,
                               survey_id="seminar")
        s.commit()
        seminar_id = held.id
    add_registration(services.db, seminar_id, ATTENDEE, status="attended")
    add_registration(services.db, seminar_id, ABSENT, status="registered")  # registered, never came
    add_registration(services.db, seminar_id, WAITING, status="waiting")
    return seminar_id


def tick(services):
    services.plan_surveys()
    outbox.send_due(services.db, services.delivery, services.clock)


def driver(client, app, line, user=ATTENDEE):
    return LineUserDriver(client, app, line, user=user)


def test_the_survey_reaches_attendees_only_after_the_configured_time_and_once(services, line, seminar):
    tick(services)
    assert line.delivered(ATTENDEE) == []  # the seminar has not ended yet
    services.clock.advance(minutes=10 + 59)
    tick(services)
    assert line.delivered(ATTENDEE) == []  # 60 minutes after the end, not before
    services.clock.advance(minutes=1)
    tick(services)
    tick(services)  # and again, as the scheduler does every minute: nothing new
    [invitation] = line.delivered(ATTENDEE)
    assert "アンケート" in texts(invitation) and "DX入門セミナー" in texts(invitation)
    assert line.delivered(ABSENT) == [] and line.delivered(WAITING) == []
    with services.db.unit_of_work() as s:
        kinds = sorted(i.kind for i in s.query(OutboxItem).filter(OutboxItem.to == ATTENDEE))
    assert kinds == ["survey", "survey_reminder"]


def test_answered_in_line_one_question_at_a_time_interrupted_resumed_and_the_reminder_skipped(
        services, client, app, line, seminar):
    services.clock.advance(minutes=70)
    tick(services)
    u = driver(client, app, line)
    assert "【1/5】" in texts(u.tap(f"action=survey&seminar={seminar}"))
    assert "1〜5の数字" in texts(u.say("最高でした"))  # not one of the answers: asked again
    assert "【2/5】" in texts(u.tap(f"action=survey_answer&seminar={seminar}&q=satisfaction&v=4"))
    u.tap("action=menu&item=faq")  # interrupted
    resumed = texts(u.tap(f"action=survey&seminar={seminar}"))
    assert "続きから" in resumed and "【2/5】" in resumed
    u.tap(f"action=survey_answer&seminar={seminar}&q=useful&v=補助金の説明")
    u.tap(f"action=survey_pick&seminar={seminar}&q=interests&v=AI・IoT")
    u.tap(f"action=survey_next&seminar={seminar}&q=interests")
    u.say("=HYPERLINK(\"http://x\") とても参考になりました")
    assert "ありがとうございました" in texts(u.tap(f"action=survey_answer&seminar={seminar}&q=consult&v=no"))
    with services.db.unit_of_work() as s:
        [response] = s.query(SurveyResponse).all()
        assert response.completed_at is not None and response.answers["satisfaction"] == 4
        assert response.answers["interests"] == ["AI・IoT"]
    services.clock.advance(hours=25)
    before = len(line.delivered(ATTENDEE))
    tick(services)
    assert len(line.delivered(ATTENDEE)) == before  # finished: no reminder


def test_answering_again_updates_the_one_response_and_the_reminder_reaches_who_did_not_finish(
        services, client, app, line, seminar):
    services.clock.advance(minutes=70)
    tick(services)
    u = driver(client, app, line)
    u.tap(f"action=survey&seminar={seminar}")
    u.tap(f"action=survey_answer&seminar={seminar}&q=satisfaction&v=2")
    services.clock.advance(hours=25)
    tick(services)
    assert "まだのようです" in texts(line.delivered(ATTENDEE)[-1])  # one reminder to someone who did not finish
    u.tap(f"action=survey&seminar={seminar}")
    u.tap(f"action=survey_answer&seminar={seminar}&q=useful&v=特になし")
    with services.db.unit_of_work() as s:
        [response] = s.query(SurveyResponse).all()
        assert response.answers == {"satisfaction": 2, "useful": "特になし"}


def test_another_persons_survey_postback_is_refused_and_stores_nothing(services, client, app, line, seminar):
    services.clock.advance(minutes=70)
    tick(services)
    stranger = driver(client, app, line, user=ABSENT)
    assert "ご利用いただけません" in texts(stranger.tap(f"action=survey&seminar={seminar}"))
    stranger.tap(f"action=survey_answer&seminar={seminar}&q=satisfaction&v=5")
    assert "ご利用いただけません" in texts(stranger.tap(f"action=survey&seminar={seminar + 99}"))
    with services.db.unit_of_work() as s:
        assert s.query(SurveyResponse).count() == 0


def test_yes_to_the_consultation_question_leads_into_the_intake_with_the_seminar_as_origin(
        services, client, app, line, seminar):
    with services.db.unit_of_work() as s:  # on record from the registration: consent and profile
        user = s.get(LineUser, ATTENDEE)
        user.consent_version, user.consent_at = services.config.privacy_policy_version, services.clock.now()
        user.industry, user.employees, user.municipality, user.phone = "製造業", "6〜20人", "鹿屋市", "0994-31-1111"
        s.commit()
    services.clock.advance(minutes=70)
    tick(services)
    u = driver(client, app, line)
    u.tap(f"action=survey&seminar={seminar}")
    for q, v in (("satisfaction", 5), ("useful", "DXの進め方")):
        u.tap(f"action=survey_answer&seminar={seminar}&q={q}&v={v}")
    u.tap(f"action=survey_pick&seminar={seminar}&q=interests&v=業務効率化")
    u.tap(f"action=survey_next&seminar={seminar}&q=interests")
    u.tap(f"action=survey_skip&seminar={seminar}&q=comment")
    asked = texts(u.tap(f"action=survey_answer&seminar={seminar}&q=consult&v=yes"))
    assert "個別相談のお申し込み" in asked
    u.say("受発注を紙でやっているのでシステム化したい")
    answer = texts(u.tap("action=yes"))
    assert "前回お伺いした内容の確認" in answer and "鹿屋商店" in answer  # what is on record is not asked again
    u.tap("action=yes")
    u.tap("action=method&v=phone")
    u.tap("action=submit")
    [c] = consultations_as_json(services.db)
    assert c["origin"] == f"seminar:{seminar}" and c["company"] == "鹿屋商店"


def test_results_count_average_and_free_texts_as_json_csv_and_xlsx_with_a_chart_per_question(
        services, seminar, tmp_path, capsys, monkeypatch, database_url):
    from handlers.cli import main
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        for user, answers in ((ATTENDEE, {"satisfaction": 5, "useful": "補助金の説明", "interests": ["AI・IoT", "データ活用"],
                                          "comment": "=1+1 参考になった", "consult": "yes"}),
                              (ABSENT, {"satisfaction": 2, "useful": "補助金の説明", "consult": "no"}),
                              ("sim-demo", {"satisfaction": 1})):
            if s.get(LineUser, user) is None:
                s.add(LineUser(id=user, source="simulator", created_at=now, updated_at=now))
            s.add(SurveyResponse(seminar_id=seminar, survey_id="seminar", user_id=user, answers=answers,
                                 completed_at=now, created_at=now, updated_at=now))
        s.commit()
    monkeypatch.setenv("DXDESK_DATABASE_URL", database_url)
    assert main(["survey", "results", str(seminar), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    by_id = {q["id"]: q for q in result["questions"]}
    assert result["responses"] == 2  # the simulator's answer is left out
    assert by_id["satisfaction"]["average"] == 3.5 and by_id["satisfaction"]["counts"]["5"] == 1
    assert by_id["useful"]["counts"]["補助金の説明"] == 2 and by_id["interests"]["counts"]["データ活用"] == 1
    assert by_id["comment"]["texts"] == ["=1+1 参考になった"] and by_id["consult"]["counts"] == {"はい": 1, "いいえ": 1}
    csv_path, xlsx_path = tmp_path / "r.csv", tmp_path / "r.xlsx"
    assert main(["survey", "results", str(seminar), "--out", str(csv_path)]) == 0
    raw = csv_path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and "'=1+1 参考になった" in raw.decode("utf-8-sig")
    assert main(["survey", "results", str(seminar), "--out", str(xlsx_path)]) == 0
    ws = load_workbook(xlsx_path).active
    assert len(ws._charts) == 4  # every question but the free text
    assert main(["survey", "results", "999"]) == 2


def test_the_console_shows_the_results_and_downloads_them_as_csv_and_xlsx(services, client, seminar):
    from tests.integration.test_console import page, sign_in
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        s.add(SurveyResponse(seminar_id=seminar, survey_id="seminar", user_id=ATTENDEE, created_at=now, updated_at=now,
                             answers={"satisfaction": 4, "comment": "大隅 太郎です。参考になりました"}, completed_at=now))
        s.commit()
    viewer = client.application.test_client()
    sign_in(viewer, services, "viewer")  # aggregates: a viewer may read them, not the free texts in the files
    html = page(viewer, f"/admin/seminars/{seminar}")
    assert "回答 1件" in html and "平均 4.0" in html and "大隅 太郎です" not in html and "survey.csv" not in html
    for kind in ("csv", "xlsx"):
        refused = viewer.get(f"/admin/seminars/{seminar}/survey.{kind}")
        assert refused.status_code == 403 and "閲覧専用のアカウントではご覧いただけません" in refused.get_data(as_text=True)
    sign_in(client, services, "coordinator")
    assert "survey.csv" in page(client, f"/admin/seminars/{seminar}")
    csv_file = client.get(f"/admin/seminars/{seminar}/survey.csv")
    assert csv_file.status_code == 200 and csv_file.data.startswith(b"\xef\xbb\xbf")
    assert "参考になりました" in csv_file.data.decode("utf-8-sig")
    xlsx = client.get(f"/admin/seminars/{seminar}/survey.xlsx")
    assert xlsx.status_code == 200 and len(load_workbook(__import__("io").BytesIO(xlsx.data)).active._charts) == 4
    assert client.get(f"/admin/seminars/{seminar + 99}/survey.csv").status_code == 404

