"""Case work in the staff console: search and filters, 自分の担当, status history, 対応記録, referrals, corrected
fields, on the real database through Flask's test client."""
from __future__ import annotations

import html
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot.jatime import TOKYO
from storage.models import AuditEntry, Booking, CaseEvent, CaseNote, Consultation, LineUser, Referral
from storage.staff import link_coordinator
from tests.integration.test_console import add_consultation, csrf, page, post, section, sign_in


def listed(client, query: str) -> list[str]:
    """The companies the consultation list shows for `query`, in order."""
    text = html.unescape(page(client, f"/admin/consultations{query}"))
    rows = text.split("<tbody>")[1].split("</tbody>")[0] if "<tbody>" in text else ""
    return [cell.split("</td>")[0] for cell in rows.split('<td data-label="会社名">')[1:]]


def history(client, consultation_id: int) -> str:
    text = html.unescape(page(client, f"/admin/consultations/{consultation_id}"))
    return section(text, '<section class="card" id="history">', "</ol>") if "<ol class=\"history\">" in text else ""


def events(services, consultation_id: int) -> list[tuple]:
    with services.db.unit_of_work() as s:
        return [(e.who, e.kind, e.field, e.old, e.new) for e in s.scalars(
            select(CaseEvent).where(CaseEvent.consultation_id == consultation_id).order_by(CaseEvent.id))]


def audit_rows(services) -> list[tuple[str, str, str]]:
    with services.db.unit_of_work() as s:
        return [(e.who, e.action, e.record) for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def row(services, model, **where):
    with services.db.unit_of_work() as s:
        return s.scalars(select(model).filter_by(**where)).one()


# --- search and filters ---------------------------------------------------------------------------------------

@pytest.fixture
def three_cases(services, clock):
    """Three cases, oldest first, each different in every filter."""
    ids = []
    for values in (
        {"company": "ABC商事", "contact_name": "桜 太郎", "phone": "099-286-2111", "email": "taro@abc.example.jp",
         "question": "在庫表をエクセルからクラウドに移したい", "category": "efficiency", "region": "kagoshima",
         "method": "visit", "channel": "line", "origin": "menu", "status": "received"},
        {"company": "霧島温泉旅館", "contact_name": "霧島 花子", "phone": "0995-12-3456", "email": "hanako@kirishima.jp",
         "question": "予約サイトの集客を増やしたい", "category": "sales", "region": "aira_isa", "method": "online",
         "channel": "web", "origin": "web", "status": "in_progress", "coordinator_id": "tanaka"},
        {"company": "奄美黒糖本舗", "contact_name": "大島 次郎", "phone": "090-1111-2222", "email": "jiro@amami.jp",
         "question": "ネットショップで100%還元キャンペーンをしたい", "category": "sales", "region": "amami",
         "method": "phone", "channel": "popup", "origin": "popup:3", "status": "follow_up"},
    ):
        ids.append(add_consultation(services, **values))
        clock.advance(days=10)
    return ids


def test_search_finds_a_case_by_receipt_number_company_contact_phone_and_text(client, services, three_cases):
    first, second, third = three_cases
    with services.db.unit_of_work() as s:
        s.add(CaseNote(consultation_id=third, at=services.clock.now(), author="tanaka", text="黒糖の卸先を紹介した"))
        s.commit()
    sign_in(client, services)

    for typed, found in [
        (f"DX2026-{second:05d}", ["霧島温泉旅館"]), (str(second), ["霧島温泉旅館"]), (f"ｄｘ2026-{first:05d}", ["ABC商事"]),
        ("abc", ["ABC商事"]), ("ＡＢＣ", ["ABC商事"]), ("温泉", ["霧島温泉旅館"]),            # company, any case or width
        ("花子", ["霧島温泉旅館"]), ("JIRO@AMAMI", ["奄美黒糖本舗"]),                         # contact name, email
        ("0992862111", ["ABC商事"]), ("286-2111", ["ABC商事"]), ("09011112222", ["奄美黒糖本舗"]),  # phone, hyphens or not
        ("クラウド", ["ABC商事"]), ("卸先", ["奄美黒糖本舗"]),                                  # question, notes
        ("100%", ["奄美黒糖本舗"]), ("%", ["奄美黒糖本舗"]), ("_", []),                         # LIKE's wildcards are text
        ("桜島", []), (f"DX2026-{third + 50:05d}", []),
    ]:
        assert listed(client, f"?q={typed.replace('%', '%25')}") == found, typed


@pytest.mark.parametrize(("query", "shown"), [
    ("", ["奄美黒糖本舗", "霧島温泉旅館", "ABC商事"]),
    ("?status=follow_up", ["奄美黒糖本舗"]),
    ("?category=sales", ["奄美黒糖本舗", "霧島温泉旅館"]),
    ("?region=aira_isa", ["霧島温泉旅館"]),
    ("?method=visit", ["ABC商事"]),
    ("?coordinator=tanaka", ["霧島温泉旅館"]),
    ("?channel=popup", ["奄美黒糖本舗"]),
    ("?origin=popup", ["奄美黒糖本舗"]),
    ("?origin=menu", ["ABC商事"]),
    ("?from=2026-12-04", ["奄美黒糖本舗", "霧島温泉旅館"]),
    ("?to=2026-12-04", ["霧島温泉旅館", "ABC商事"]),
    ("?from=2026-12-04&to=2026-12-04", ["霧島温泉旅館"]),
    ("?category=sales&q=旅館", ["霧島温泉旅館"]),
    ("?status=lost&region=mars&coordinator=nobody&origin=x", ["奄美黒糖本舗", "霧島温泉旅館", "ABC商事"]),  # stale link
])
def test_the_filters_narrow_the_list(client, services, three_cases, query, shown):
    sign_in(client, services)
    assert listed(client, query) == shown


def test_the_list_says_how_many_match_and_pages_through_them(client, services, clock, monkeypatch):
    monkeypatch.setattr("handlers.console.cases.PAGE_SIZE", 2)
    for n in range(5):
        add_consultation(services, company=f"鹿屋{n}商店")
        clock.advance(minutes=1)
    sign_in(client, services)

    first = page(client, "/admin/consultations?q=鹿屋")

    assert '<span class="count" role="status">5件</span>' in first
    assert listed(client, "?q=鹿屋") == ["鹿屋4商店", "鹿屋3商店"]
    assert listed(client, "?q=鹿屋&page=3") == ["鹿屋0商店"]
    assert "page=2" in first and "q=%E9%B9%BF%E5%B1%8B" in first  # the pager keeps the search


@pytest.mark.parametrize(("query", "said"), [
    ("?from=2026-12-10&to=2026-12-01", "開始日が終了日より後"),
    ("?from=2026-13-45", "年-月-日で入力"),
    ("?to=yesterday", "年-月-日で入力"),
])
def test_a_wrong_date_range_is_explained_in_japanese(client, services, three_cases, query, said):
    sign_in(client, services)

    response = client.get(f"/admin/consultations{query}")

    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert said in text and "<tbody>" not in text
    assert 'name="from"' in text  # the form is there to put it right


def test_my_cases_are_those_assigned_to_me_or_booked_with_me_while_unassigned(client, services, three_cases, clock):
    first, second, third = three_cases
    now = clock.now()
    with services.db.unit_of_work() as s:
        for consultation_id, coordinator, status in ((first, "tanaka", "confirmed"), (third, "tanaka", "cancelled")):
            s.add(Booking(consultation_id=consultation_id, coordinator_id=coordinator, start=now + timedelta(days=1),
                          end=now + timedelta(days=1, hours=1), method="online", status=status, created_at=now,
                          updated_at=now))
        s.add(Consultation(received_at=now, channel="line", company="別の担当の会社", category="efficiency",
                           method="online", question="?", coordinator_id="yamashita"))
        s.commit()
    sign_in(client, services, login="tanaka-login")
    link_coordinator(services.db, "tanaka-login", "tanaka")

    assert listed(client, "?mine=1") == ["霧島温泉旅館", "ABC商事"]
    assert listed(client, "?mine=1&status=received") == ["ABC商事"]
    text = page(client, "/admin/consultations?mine=1")
    assert "自分の担当の相談" in text and '<td data-label="担当">田中 一郎</td>' in text


def test_my_cases_for_a_login_that_is_no_coordinator_explains_how_to_be_linked(client, services, three_cases):
    sign_in(client, services, login="office")

    text = page(client, "/admin/consultations?mine=1")

    assert "コーディネーターと結び付けられていない" in text and "dxdesk users link" in text
    assert "<tbody>" not in text


# --- the case's history ---------------------------------------------------------------------------------------

def test_each_status_change_is_kept_with_who_and_when(client, services, clock):
    consultation_id = add_consultation(services)
    sign_in(client, services, login="tanaka")

    for status in ("scheduling", "in_progress", "in_progress", "closed", "follow_up"):
        response = post(client, f"/admin/consultations/{consultation_id}/status", status=status)
        assert response.status_code == 302
        clock.advance(minutes=30)

    assert [(e[3], e[4]) for e in events(services, consultation_id)] == [
        ("received", "scheduling"), ("scheduling", "in_progress"), ("in_progress", "closed"), ("closed", "follow_up")]
    shown = history(client, consultation_id)
    assert "状態: 受付 → 日程調整中" in shown and "状態: 完了 → フォローアップ" in shown
    assert shown.index("受付 → 日程調整中") < shown.index("完了 → フォローアップ")
    assert "11月24日(火) 10:00" in shown and "11月24日(火) 12:00" in shown and "tanaka" in shown
    changes = [r for r in audit_rows(services) if r[1] == "change"]
    assert changes == [("tanaka", "change", f"consultation:{consultation_id}")] * 4  # the unchanged one is no change


def test_a_note_is_kept_in_the_history_and_a_refused_one_keeps_its_draft(client, services):
    consultation_id = add_consultation(services)
    sign_in(client, services, login="tanaka")
    path = f"/admin/consultations/{consultation_id}/notes"

    empty = post(client, path, text="  \r\n ")
    draft = "電話で状況を伺った。<b>来週</b>訪問。\r\n" + "あ" * 4000
    too_long = post(client, path, text=draft)
    saved = post(client, path, text="電話で状況を伺った。\r\n来週、訪問して在庫表を見せていただく。")

    assert empty.status_code == 400 and "対応記録を入力してください" in empty.get_data(as_text=True)
    long_text = too_long.get_data(as_text=True)
    assert too_long.status_code == 400 and "4000文字以内" in long_text
    assert html.escape(draft.replace("\r\n", "\n"), quote=False) in long_text  # the draft is back in the form
    assert saved.status_code == 302
    note = row(services, CaseNote, consultation_id=consultation_id)
    assert (note.author, note.text) == ("tanaka", "電話で状況を伺った。\n来週、訪問して在庫表を見せていただく。")
    shown = history(client, consultation_id)
    assert "対応記録" in shown and "来週、訪問して在庫表を見せていただく。" in shown


def test_a_referral_to_a_partner_and_its_outcome_are_kept(client, services):
    consultation_id = add_consultation(services, category="subsidy")
    sign_in(client, services, login="tanaka")
    text = page(client, f"/admin/consultations/{consultation_id}")
    assert "鹿児島商工会議所（この分野）" in text and "鹿児島県警察" in text  # every partner of the configuration

    refused = post(client, f"/admin/consultations/{consultation_id}/referrals", partner="nowhere", note="メモ")
    post(client, f"/admin/consultations/{consultation_id}/referrals", partner="kagoshima-cci", note="補助金の申請支援")
    referral = row(services, Referral, consultation_id=consultation_id)
    outcome = post(client, f"/admin/consultations/{consultation_id}/referrals/{referral.id}", outcome="accepted",
                   note="12月に面談予定")
    wrong = post(client, f"/admin/consultations/{consultation_id}/referrals/{referral.id}", outcome="won", note="")

    assert refused.status_code == 400 and "紹介先を選んでください" in refused.get_data(as_text=True)
    assert outcome.status_code == 302 and wrong.status_code == 400
    referral = row(services, Referral, consultation_id=consultation_id)
    assert (referral.partner_id, referral.referred_by, referral.outcome, referral.outcome_note) == (
        "kagoshima-cci", "tanaka", "accepted", "12月に面談予定")
    shown = history(client, consultation_id)
    assert "鹿児島商工会議所に紹介" in shown and "鹿児島商工会議所の結果: 紹介済み → 支援開始" in shown
    assert "12月に面談予定" in section(html.unescape(page(client, f"/admin/consultations/{consultation_id}")),
                                    'id="referrals"', "</section>")


def test_a_referral_of_another_case_is_not_found(client, services):
    mine, other = add_consultation(services), add_consultation(services)
    sign_in(client, services)
    post(client, f"/admin/consultations/{other}/referrals", partner="yorozu")
    referral = row(services, Referral, consultation_id=other)

    response = post(client, f"/admin/consultations/{mine}/referrals/{referral.id}", outcome="done")

    assert response.status_code == 404
    assert row(services, Referral, id=referral.id).outcome == "pending"


def test_a_corrected_field_is_checked_as_the_intake_checks_it_and_kept_with_old_and_new(client, services):
    consultation_id = add_consultation(services, phone="099-286-2112", municipality="鹿児島市", region="kagoshima")
    sign_in(client, services, login="tanaka")
    path = f"/admin/consultations/{consultation_id}/fields"

    wrong = post(client, path, field="phone", value="099-286-211")
    unknown = post(client, path, field="question", value="書き換え")
    phone = post(client, path, field="phone", value="０９９２８６２１１１")
    town = post(client, path, field="municipality", value="霧島")

    wrong_text = html.unescape(wrong.get_data(as_text=True))
    assert wrong.status_code == 400 and "10桁" in wrong_text and 'value="099-286-211"' in wrong_text
    assert unknown.status_code == 400 and "訂正する項目を選んでください" in unknown.get_data(as_text=True)
    assert phone.status_code == town.status_code == 302
    c = row(services, Consultation, id=consultation_id)
    assert (c.phone, c.municipality, c.region, c.question) == ("099-286-2111", "霧島市", "aira_isa", "紙の請求書を減らしたい")
    assert events(services, consultation_id) == [("tanaka", "field", "phone", "099-286-2112", "099-286-2111"),
                                                 ("tanaka", "field", "municipality", "鹿児島市", "霧島市")]
    shown = history(client, consultation_id)
    assert "電話番号を訂正" in shown and "099-286-2112 → 099-286-2111" in shown and "市町村を訂正" in shown


def test_a_correction_of_what_the_line_profile_holds_too_corrects_the_profile_the_next_intake_proposes(client,
                                                                                                      services):
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        s.add(LineUser(id="U-corrected", source="line", following=True, phone="099-286-2112", company="桜島製作所",
                       email="new@example.jp", created_at=now, updated_at=now))
        s.commit()
    consultation_id = add_consultation(services, user_id="U-corrected", phone="099-286-2112", email="old@example.jp")
    sign_in(client, services, login="tanaka")
    path = f"/admin/consultations/{consultation_id}/fields"

    assert post(client, path, field="phone", value="099-286-2111").status_code == 302
    assert post(client, path, field="email", value="fixed@example.jp").status_code == 302

    user = row(services, LineUser, id="U-corrected")
    assert user.phone == "099-286-2111"  # the profile held the wrong number: it is put right there too
    assert user.email == "new@example.jp"  # the profile had changed since (a later intake): it is left as it is
    assert user.company == "桜島製作所"


# --- who may see what -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/admin/consultations", "/admin/consultations?mine=1", "/admin/consultations/{id}"])
def test_a_viewer_is_refused_the_pages_with_personal_data(client, services, path):
    consultation_id = add_consultation(services, contact_name="見せない 花子")
    sign_in(client, services, "viewer")

    response = client.get(path.format(id=consultation_id))

    assert response.status_code == 403
    text = response.get_data(as_text=True)
    assert "閲覧のみのアカウント" in text and "見せない 花子" not in text and "桜島製作所" not in text
    assert not [r for r in audit_rows(services) if r[1] == "view"]
    assert ">相談</a>" not in page(client, "/admin")  # nor offered in the menu


@pytest.mark.parametrize(("path", "form"), [
    ("status", {"status": "closed"}), ("notes", {"text": "記録"}), ("referrals", {"partner": "yorozu"}),
    ("fields", {"field": "phone", "value": "099-286-2111"}), ("referrals/{referral}", {"outcome": "done"}),
])
def test_a_viewer_cannot_change_a_case(client, services, path, form):
    consultation_id = add_consultation(services)
    with services.db.unit_of_work() as s:
        s.add(Referral(consultation_id=consultation_id, partner_id="yorozu", referred_at=services.clock.now(),
                       referred_by="tanaka", updated_at=services.clock.now()))
        s.commit()
        referral_id = s.scalar(select(Referral.id))
    sign_in(client, services, "viewer")

    response = post(client, f"/admin/consultations/{consultation_id}/{path.format(referral=referral_id)}", **form)

    assert response.status_code == 403
    assert events(services, consultation_id) == [] and not [r for r in audit_rows(services) if r[1] == "change"]
    with services.db.unit_of_work() as s:
        assert s.scalar(select(CaseNote.id)) is None and s.scalar(select(Referral.outcome)) == "pending"


@pytest.mark.parametrize(("path", "form"), [
    ("/admin/consultations/999", None), ("/admin/consultations/999/status", {"status": "closed"}),
    ("/admin/consultations/999/notes", {"text": "記録"}), ("/admin/consultations/999/referrals", {"partner": "yorozu"}),
    ("/admin/consultations/999/referrals/1", {"outcome": "done"}),
    ("/admin/consultations/999/fields", {"field": "phone", "value": "099-286-2111"}),
])
def test_an_unknown_case_is_a_polite_404(client, services, path, form):
    sign_in(client, services)

    response = client.get(path) if form is None else post(client, path, **form)

    assert response.status_code == 404
    assert "見つかりませんでした" in response.get_data(as_text=True)
    assert not [r for r in audit_rows(services) if r[1] in ("view", "change")]


def test_every_view_and_change_of_a_case_is_in_the_audit_log(client, services):
    consultation_id = add_consultation(services)
    sign_in(client, services, login="tanaka")
    record = f"consultation:{consultation_id}"

    page(client, f"/admin/consultations/{consultation_id}")
    post(client, f"/admin/consultations/{consultation_id}/status", status="in_progress")
    post(client, f"/admin/consultations/{consultation_id}/notes", text="訪問した")
    post(client, f"/admin/consultations/{consultation_id}/referrals", partner="yorozu")
    post(client, f"/admin/consultations/{consultation_id}/referrals/{row(services, Referral).id}", outcome="done")
    post(client, f"/admin/consultations/{consultation_id}/fields", field="contact_name", value="鹿児島 花子")

    assert audit_rows(services) == [("tanaka", "view", record)] + [("tanaka", "change", record)] * 5


# --- the coordinator of a booked case ---------------------------------------------------------------------------

def test_a_booking_makes_the_case_its_coordinator_s_unless_someone_is_in_charge(services, clock):
    free, taken = add_consultation(services), add_consultation(services, coordinator_id="yamashita")
    with services.db.unit_of_work() as s:
        for consultation_id, hour in ((free, 10), (taken, 13)):
            assert services.bookings.reserve(
                s, user_id=None, coordinator="tanaka", start=datetime(2026, 11, 25, hour, tzinfo=TOKYO),
                method="online", region=None, consultation_id=consultation_id, now=clock.now()) is not None
        s.commit()

    assert row(services, Consultation, id=free).coordinator_id == "tanaka"
    assert row(services, Consultation, id=taken).coordinator_id == "yamashita"
