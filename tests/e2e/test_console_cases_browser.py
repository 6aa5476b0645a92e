"""A coordinator's case work in headless Chromium at a laptop's width: find a case, move it on, write a note."""
from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import expect

from storage.models import Consultation
from storage.staff import add_user, link_coordinator

pytestmark = pytest.mark.browser

PASSWORD = "kagoshima-dx-2026"





def test_a_coordinator_finds_a_case_by_phone_moves_it_on_and_writes_a_note(laptop, live_app, tmp_path):
    shots = Path(os.environ.get("DXDESK_SCREENSHOTS") or tmp_path)  # set it to look at the pages afterwards
    app, base = live_app
    services = app.extensions["dxdesk"]
    now = datetime.now(UTC)
    with services.db.unit_of_work() as s:
        for company, phone in (("指宿ガラス工房", "0993-22-1234"), ("枕崎かつお節店", "0993-72-9999")):
            s.add(Consultation(received_at=now, channel="line", company=company, contact_name="山田 花子", phone=phone,
                               category="sales", method="online", municipality="指宿市", region="nansatsu",
                               question="ネットショップを始めたいが、何から手を付ければよいか分からない。"))
        s.commit()
    add_user(services.db, "yamashita", PASSWORD, "coordinator", now)
    link_coordinator(services.db, "yamashita", "yamashita")

    laptop.goto(f"{base}/admin/consultations")
    laptop.get_by_label("ログインID").fill("yamashita")
    laptop.get_by_label("パスワード", exact=True).fill(PASSWORD)
    laptop.get_by_role("button", name="ログイン").click()
    laptop.get_by_label("検索").fill("0993221234")
    laptop.get_by_role("button", name="検索・絞り込み").click()
    expect(laptop.locator(".count")).to_have_text("1件")
    laptop.screenshot(path=str(shots / "console-cases-list.png"), full_page=True)
    laptop.get_by_role("link", name=re.compile(r"^DX\d{4}-\d{5}$")).click()

    expect(laptop.get_by_role("heading", level=1)).to_contain_text("相談 DX")
    laptop.get_by_label("対応中").check()
    laptop.get_by_role("button", name="変更する", exact=True).click()
    expect(laptop.get_by_role("status")).to_contain_text("状態を「対応中」に変更しました")
    laptop.get_by_label("対応記録を書く").fill("お電話で伺いました。\n来週オンラインで、ネットショップの候補を一緒に比べます。")
    laptop.get_by_role("button", name="対応記録を保存").click()

    expect(laptop.get_by_role("status")).to_contain_text("対応記録を保存しました")
    history = laptop.locator("#history .history")
    expect(history).to_contain_text("状態: 受付 → 対応中")
    expect(history).to_contain_text("来週オンラインで、ネットショップの候補を一緒に比べます。")
    expect(history.locator(".who").first).to_have_text("yamashita")
    laptop.screenshot(path=str(shots / "console-case.png"), full_page=True)

    laptop.get_by_role("link", name="相談一覧").first.click()
    laptop.get_by_role("link", name="自分の担当").click()
    expect(laptop.get_by_role("heading", level=1)).to_have_text("自分の担当の相談")
    expect(laptop.locator(".count")).to_have_text("0件")  # in progress, but assigned to no one and booked with no one
