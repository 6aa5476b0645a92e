"""Retention: `dxdesk privacy purge [--dry-run]`, the daily scheduler job, and `dxdesk audit` over what they did."""
from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image
from sqlalchemy import select

from scheduling.clock import MovableClock
from scheduling.retention import purge_due
from storage import activities, cases, reports
from storage.models import (
    Activity, ActivityPhoto, CaseEvent, Consultation, InboxEvent, LineUser, Multicast, OutboundMessage, WebSubmission,
)
from storage.privacy import ERASED, months_before, purge, purge_date
from tests.helpers import database_text
from tests.integration.test_cli import dxdesk

NOW = datetime.now(UTC)  # the commands run on the system clock
OLD_SECRET, KEPT_SECRET = "廃棄予定商事", "保存中商事"


def consultation(s, n: int, received: datetime, status: str, company: str) -> Consultation:
    c = Consultation(received_at=received, channel="line", user_id=f"U{n}", company=company, contact_name=f"名前{n}",
                     phone=f"099-000-{n:04d}", email=f"p{n}@example.jp", question=f"{company}の相談です",
                     category="efficiency", region="kagoshima", municipality="鹿児島市", industry="製造業",
                     method="online", status=status)
    s.add(LineUser(id=f"U{n}", source="line", company=company, created_at=received, updated_at=received))
    s.flush()
    s.add(c)
    return c


@pytest.fixture
def seeded(services):
    with services.db.unit_of_work() as s:
        consultation(s, 1, months_before(NOW, 25), "closed", OLD_SECRET)          # past retention: purged
        consultation(s, 2, months_before(NOW, 23), "closed", f"{KEPT_SECRET}A")   # not yet
        consultation(s, 3, months_before(NOW, 30), "in_progress", f"{KEPT_SECRET}B")  # still open: kept
        s.add(InboxEvent(event_key="old", user_key="U2", payload={"message": {"text": "古い写しの本文"}},
                         received_at=NOW - timedelta(days=31), status="done"))
        s.add(InboxEvent(event_key="new", user_key="U2", payload={"message": {"text": "新しい写しの本文"}},
                         received_at=NOW - timedelta(days=2), status="done"))
        s.add(OutboundMessage(to="U2", messages=[{"type": "text", "text": "古い送信の本文"}], retry_key="r1",
                              status="sent", next_attempt_at=NOW, created_at=NOW - timedelta(days=40)))
        s.add(Multicast(key="k", kind="announcement", ref="seminar:1", recipients=["U2", "U3"], messages=[],
                        retry_key="m1", status="sent", next_attempt_at=NOW, created_at=NOW - timedelta(days=40)))
        s.commit()
    return services


def test_dry_run_prints_counts_only_and_changes_nothing(seeded, database_url):
    before = database_text(seeded.db)
    result = dxdesk("privacy", "purge", "--dry-run", env={"DXDESK_DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    assert "完了・フォローアップの相談（個人情報）: 1件" in result.stdout and "受信イベントの内容: 1件" in result.stdout
    assert "--dry-run" in result.stdout and OLD_SECRET not in result.stdout + result.stderr
    assert database_text(seeded.db) == before


def test_purge_clears_closed_cases_past_retention_and_old_copies_but_keeps_the_figures(seeded, database_url):
    month = reports.month_period(f"{months_before(NOW, 25):%Y-%m}")
    with seeded.db.unit_of_work() as s:
        counted = reports.by_category(s, month)

    result = dxdesk("privacy", "purge", env={"DXDESK_DATABASE_URL": database_url})

    assert result.returncode == 0, result.stderr
    dump = database_text(seeded.db)
    assert OLD_SECRET not in dump and "名前1" not in dump and "099-000-0001" not in dump
    assert f"{KEPT_SECRET}A" in dump and f"{KEPT_SECRET}B" in dump and "新しい写しの本文" in dump
    assert "古い写しの本文" not in dump and "古い送信の本文" not in dump
    with seeded.db.unit_of_work() as s:
        assert reports.by_category(s, month) == counted
        purged = s.scalar(select(Consultation).where(Consultation.user_id == "U1"))
        assert (purged.company, purged.question, purged.category, purged.region) == (ERASED, ERASED, "efficiency",
                                                                                   "kagoshima")
        assert s.scalar(select(Multicast.recipients)) == []
        assert s.get(LineUser, "U1").company is None and s.get(LineUser, "U2").company == f"{KEPT_SECRET}A"
    again = dxdesk("privacy", "purge", env={"DXDESK_DATABASE_URL": database_url})
    assert "完了・フォローアップの相談（個人情報）: 0件" in again.stdout  # what is cleared is not counted again

    log = json.loads(dxdesk("audit", "--json", env={"DXDESK_DATABASE_URL": database_url}).stdout)
    assert {"who": "cli", "action": "purge", "record": f"consultation:{purged.id}"}.items() <= log[0].items()
    assert all(set(e) >= {"at", "who", "action", "record"} for e in log)


def test_purge_clears_what_staff_wrote_on_cases_done_with_past_retention_follow_ups_too(services):
    with services.db.unit_of_work() as s:
        followed_up = consultation(s, 1, months_before(NOW, 25), "closed", OLD_SECRET)
        kept = consultation(s, 2, months_before(NOW, 23), "closed", f"{KEPT_SECRET}A")
        s.flush()
        for n, c, secret in ((1, followed_up, "廃棄メモ"), (2, kept, "保存メモ")):
            cases.add_note(s, c, f"{secret}: 名前{n}さんに電話した", "tanaka", NOW)
            cases.correct_field(s, c, {"phone": f"099-777-000{n}"}, "tanaka", NOW)
            cases.refer(s, c, "yorozu", f"{secret}の紹介", "tanaka", NOW)
            cases.set_status(s, c, "follow_up", "tanaka", NOW)  # フォローアップ is done with, as 完了 is
        s.commit()

    with services.db.unit_of_work() as s:
        done = purge(s, NOW, retention_months=24, copies_days=30, who="cli")
        s.commit()

    assert done.counts["consultations"] == 1
    dump = database_text(services.db)
    assert [v for v in (OLD_SECRET, "廃棄メモ", "099-777-0001", "099-000-0001", "名前1") if v in dump] == []
    assert "保存メモ" in dump and "099-777-0002" in dump and "099-000-0002" in dump
    with services.db.unit_of_work() as s:
        kinds = [(e.kind, e.old, e.new) for e in s.scalars(
            select(CaseEvent).where(CaseEvent.consultation_id == followed_up.id).order_by(CaseEvent.id))]
    assert kinds == [("field", None, None), ("status", "closed", "follow_up")]  # the history's codes stay


def test_the_daily_scheduler_job_purges_on_the_services_clock(services):
    with services.db.unit_of_work() as s:
        consultation(s, 1, datetime(2024, 1, 10, tzinfo=UTC), "closed", OLD_SECRET)
        s.commit()
    [job] = [job for name, job, seconds in services.jobs() if name == "privacy" and seconds == 86400]
    job()  # the test clock is 2026-11-24: 34 months on
    assert OLD_SECRET not in database_text(services.db)
    assert purge_due(services.db, services.config.privacy, MovableClock(NOW), services.settings.var_dir)["consultations"] == 0


def test_a_shorter_retention_in_the_configuration_purges_sooner(services, tmp_path, database_url):
    with services.db.unit_of_work() as s:
        consultation(s, 2, months_before(NOW, 7), "closed", f"{KEPT_SECRET}A")
        s.commit()
    config = tmp_path / "c.toml"
    config.write_text("[privacy]\nretention_months = 6\n", encoding="utf-8")
    result = dxdesk("privacy", "purge", env={"DXDESK_DATABASE_URL": database_url, "DXDESK_CONFIG": str(config)})
    assert "6か月" in result.stdout and "完了・フォローアップの相談（個人情報）: 1件" in result.stdout


def test_a_bad_retention_setting_is_refused_in_japanese(tmp_path, database_url, services):
    config = tmp_path / "c.toml"
    config.write_text("[privacy]\nretention_months = 0\n", encoding="utf-8")
    result = dxdesk("privacy", "purge", env={"DXDESK_DATABASE_URL": database_url, "DXDESK_CONFIG": str(config)})
    assert result.returncode == 2 and "retention_months" in result.stderr


def test_purge_date_is_the_retention_counted_from_receipt():
    c = Consultation(received_at=datetime(2026, 3, 31, 3, 0, tzinfo=UTC))
    assert purge_date(c, 24).date().isoformat() == "2028-03-31"
    assert purge_date(c, 11).date().isoformat() == "2027-02-28"


def test_audit_lists_exports_and_since_filters(services, database_url, tmp_path):
    out = tmp_path / "w.csv"
    assert dxdesk("report", "weekly", "--week", "2026-W48", "--out", str(out),
                  env={"DXDESK_DATABASE_URL": database_url}).returncode == 0
    dxdesk("consultations", "--json", env={"DXDESK_DATABASE_URL": database_url})
    log = json.loads(dxdesk("audit", "--json", env={"DXDESK_DATABASE_URL": database_url}).stdout)
    assert [(e["who"], e["action"], e["record"]) for e in log] == [
        ("cli", "export", "weekly:2026-W48"), ("cli", "export", "consultations:all")]
    assert datetime.fromisoformat(log[0]["at"]).utcoffset() == timedelta(hours=9)
    later = (NOW + timedelta(days=2)).astimezone().date().isoformat()
    assert json.loads(dxdesk("audit", "--json", "--since", later, env={"DXDESK_DATABASE_URL": database_url}).stdout) == []
    table = dxdesk("audit", env={"DXDESK_DATABASE_URL": database_url}).stdout
    assert "書き出し" in table and "weekly:2026-W48" in table


def add_activity(s, services, when: datetime, company: str, *, kind: str = "training", consultation_id=None,
                 photo: bool = False) -> Activity:
    training = kind == "training"
    activity = activities.create(s, {"kind": kind, "date": when, "coordinator_id": "tanaka", "company": company,
                                     "consultation_id": consultation_id, "session_no": 1 if training else None,
                                     "topics": f"{company}向けの研修", "attendees": 5 if training else None,
                                     "notes": f"{company}の社長と話した"}, by="tanaka", now=when)
    if photo:
        buffer = io.BytesIO()
        Image.new("RGB", (64, 48), (200, 80, 40)).save(buffer, "JPEG")
        activities.add_photos(s, services.settings.var_dir, activity,
                              [activities.check_photo("visit.jpg", buffer.getvalue())], by="tanaka", now=when)
    return activity


def test_purge_clears_activity_records_past_retention_and_their_photos_but_keeps_the_counts(services, database_url):
    with services.db.unit_of_work() as s:
        old_case = consultation(s, 1, months_before(NOW, 25), "closed", OLD_SECRET)
        open_case = consultation(s, 3, months_before(NOW, 30), "in_progress", f"{KEPT_SECRET}B")
        s.flush()
        linked = add_activity(s, services, months_before(NOW, 20), OLD_SECRET, consultation_id=old_case.id, photo=True)
        add_activity(s, services, months_before(NOW, 26), "廃棄予定工業", kind="visit")  # of no case, past retention
        add_activity(s, services, months_before(NOW, 26), "廃棄予定工業")  # the same company, once again
        add_activity(s, services, months_before(NOW, 27), f"{KEPT_SECRET}B", consultation_id=open_case.id)
        add_activity(s, services, months_before(NOW, 3), f"{KEPT_SECRET}C", photo=True)
        s.commit()
    year = (months_before(NOW, 28), NOW)
    with services.db.unit_of_work() as s:
        before = activities.counts_by_kind(s, *year), activities.progress(s, *year)
    photos = sorted(p.name for p in (services.settings.var_dir / "photos").glob("*.jpg"))
    assert len(photos) == 2

    result = dxdesk("privacy", "purge", env={"DXDESK_DATABASE_URL": database_url,
                                             "DXDESK_VAR_DIR": str(services.settings.var_dir)})

    assert result.returncode == 0, result.stderr
    assert "活動記録（企業名・メモ）: 3件" in result.stdout and "活動記録の写真: 1件" in result.stdout
    dump = database_text(services.db)
    assert OLD_SECRET not in dump and "廃棄予定工業" not in dump
    assert f"{KEPT_SECRET}B" in dump and f"{KEPT_SECRET}C" in dump
    with services.db.unit_of_work() as s:
        assert (activities.counts_by_kind(s, *year), activities.progress(s, *year)) == before
        cleared = s.get(Activity, linked.id)
        assert cleared.company.startswith(ERASED) and (cleared.notes, cleared.topics) == (None, None)
        assert (cleared.kind, cleared.attendees, cleared.session_no) == ("training", 5, 1)
        kept = s.scalars(select(ActivityPhoto)).all()
        assert len(kept) == 1 and kept[0].activity_id != linked.id
    folder = services.settings.var_dir / "photos"
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        kept[0].stored_name, f"thumbs/{kept[0].stored_name}"]  # the recent activity's photo and its thumbnail
    again = dxdesk("privacy", "purge", env={"DXDESK_DATABASE_URL": database_url})
    assert "活動記録（企業名・メモ）: 0件" in again.stdout and "活動記録の写真: 0件" in again.stdout


def test_purge_clears_the_web_form_s_hashed_sender_address_after_the_copies_window(services, database_url):
    with services.db.unit_of_work() as s:
        for n, age in ((1, 31), (2, 2)):
            c = consultation(s, n, NOW - timedelta(days=age), "received", f"{KEPT_SECRET}{n}")
            s.flush()
            s.add(WebSubmission(key=f"form-{n}", address=f"{n}" * 64, consultation_id=c.id, consent_version="2026-11",
                                created_at=NOW - timedelta(days=age)))
        s.commit()

    dry = dxdesk("privacy", "purge", "--dry-run", env={"DXDESK_DATABASE_URL": database_url})
    result = dxdesk("privacy", "purge", env={"DXDESK_DATABASE_URL": database_url})

    assert "Webフォームの送信元の記録: 1件" in dry.stdout and "Webフォームの送信元の記録: 1件" in result.stdout
    with services.db.unit_of_work() as s:
        rows = s.scalars(select(WebSubmission).order_by(WebSubmission.id)).all()
        assert [(r.key, r.address, r.consent_version) for r in rows] == [
            ("form-1", ERASED, "2026-11"), ("form-2", "2" * 64, "2026-11")]  # the consent given stays on record
    again = dxdesk("privacy", "purge", env={"DXDESK_DATABASE_URL": database_url})
    assert "Webフォームの送信元の記録: 0件" in again.stdout
