"""Issue 10's walk in headless Chromium: a coordinator finds a case, assigns it, writes a note, records a support
visit with a photo, and downloads the weekly log and the monthly report, which open with openpyxl."""
from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from PIL import Image
from playwright.sync_api import expect

from bot.jatime import to_tokyo
from storage.models import Activity, ActivityPhoto, CaseEvent, CaseNote, Consultation
from storage.staff import add_user, link_coordinator

pytestmark = pytest.mark.browser

PASSWORD = "kagoshima-dx-2026"




def test_a_coordinators_day_from_finding_a_case_to_downloading_both_reports(laptop, live_app, tmp_path):
    shots = Path(os.environ.get("DXDESK_SCREENSHOTS") or tmp_path)
    app, base = live_app
    services = app.extensions["dxdesk"]
    now = datetime.now(UTC)
    with services.db.unit_of_work() as s:
        case = Consultation(received_at=now - timedelta(hours=2), channel="line", company="霧島茶園", contact_name="前田 翔",
                            phone="0995-45-1111", category="data", method="visit", municipality="霧島市",
                            region="aira_isa", question="茶畑ごとの収穫量を見える化したい。")
        s.add(case)
        s.commit()
        case_id = case.id
    add_user(services.db, "nishimura-day", PASSWORD, "coordinator", now)
    link_coordinator(services.db, "nishimura-day", "nishimura")

    laptop.goto(f"{base}/admin/consultations")
    laptop.get_by_label("ログインID").fill("nishimura-day")
    laptop.get_by_label("パスワード", exact=True).fill(PASSWORD)
    laptop.get_by_role("button", name="ログイン").click()
    laptop.get_by_label("検索").fill("霧島茶園")
    laptop.get_by_role("button", name="検索・絞り込み").click()
    expect(laptop.locator(".count")).to_have_text("1件")
    laptop.get_by_role("link", name=f"DX{to_tokyo(now).year}-{case_id:05d}").click()

    laptop.get_by_label("担当にする人").select_option("nishimura")
    laptop.get_by_role("button", name="担当を変更する").click()
    expect(laptop.locator("#assign .assigned")).to_have_text("西村 健太")
    laptop.get_by_label("対応記録を書く").fill("電話で訪問日を調整。収穫記録の紙を見せてもらう。")
    laptop.get_by_role("button", name="対応記録を保存").click()
    expect(laptop.get_by_role("status")).to_contain_text("対応記録を保存しました")
    laptop.screenshot(path=str(shots / "day-case.png"), full_page=True)

    laptop.goto(f"{base}/admin/activities/new?kind=visit")
    laptop.get_by_label("実施日時（日本時間）").fill(f"{to_tokyo(now):%Y-%m-%d}T10:00")
    laptop.get_by_label("コーディネーター").select_option("nishimura")
    laptop.get_by_label("企業名", exact=True).fill("霧島茶園")
    laptop.get_by_role("textbox", name="相談の受付番号（任意）", exact=False).fill(f"DX{to_tokyo(now).year}-{case_id:05d}")
    laptop.get_by_label("メモ（任意）").fill("茶畑を見学し、記録の様式を確認した。")
    laptop.get_by_role("button", name="記録する").click()
    expect(laptop.get_by_role("status")).to_contain_text("を記録しました")
    photo = tmp_path / "visit.jpg"
    Image.new("RGB", (800, 600), (90, 140, 60)).save(photo, "JPEG")
    laptop.get_by_label("写真を追加", exact=False).set_input_files(str(photo))
    laptop.get_by_role("button", name="追加する").click()
    expect(laptop.get_by_role("status")).to_contain_text("写真を1枚追加しました")
    thumbnail = laptop.locator("img[alt^='写真 1']")
    expect(thumbnail).to_be_visible()
    assert thumbnail.evaluate("img => img.naturalWidth") > 0  # served to the signed-in coordinator
    laptop.screenshot(path=str(shots / "day-activity.png"), full_page=True)

    laptop.goto(f"{base}/admin/weekly")
    laptop.get_by_label("週").fill(f"{to_tokyo(now):%G-W%V}")
    laptop.get_by_label("形式").select_option("xlsx")
    with laptop.expect_download() as weekly:
        laptop.get_by_role("button", name="書き出す").click()
    sheets = load_workbook(io.BytesIO(Path(weekly.value.path()).read_bytes()))
    consultations = list(sheets.worksheets[0].iter_rows(values_only=True))
    assert any("霧島茶園" in [str(v) for v in row] for row in consultations[1:])  # the staff's log names the case

    laptop.goto(f"{base}/admin")
    with laptop.expect_download() as monthly:
        laptop.get_by_role("link", name="月次報告（Excel）をダウンロード").click()
    report = load_workbook(io.BytesIO(Path(monthly.value.path()).read_bytes()))
    cells = " ".join(str(v) for ws in report.worksheets for row in ws.iter_rows(values_only=True) for v in row if v)
    assert "霧島茶園" not in cells and "前田 翔" not in cells and "0995-45-1111" not in cells  # aggregates only
    laptop.screenshot(path=str(shots / "day-dashboard.png"), full_page=True)

    with services.db.unit_of_work() as s:
        assert s.get(Consultation, case_id).coordinator_id == "nishimura"
        assert [e.kind for e in s.query(CaseEvent).filter_by(consultation_id=case_id)] == ["assign"]
        assert s.query(CaseNote).filter_by(consultation_id=case_id).count() == 1
        [visit] = s.query(Activity).filter_by(consultation_id=case_id).all()
        assert visit.kind == "visit" and s.query(ActivityPhoto).filter_by(activity_id=visit.id).count() == 1
