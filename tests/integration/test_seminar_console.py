"""Seminars in the staff console and the check-in QR code, through Flask's test client on the real database."""
from __future__ import annotations

import io
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import segno

from bot.seminar_checkin import checkin_messages, checkin_url
from storage import seminars
from storage.models import Seminar, SeminarRegistration
from tests.helpers import add_registration
from tests.integration.test_console import PASSWORD, csrf, page, post, sign_in

FORM = {"title": "DXはじめの一歩", "description": "", "start": "2026-12-10T14:00", "end": "2026-12-10T16:00",
        "venue": "かごゆいテラス（鹿児島県庁18階）", "online_url": "https://meet.example.jp/dx", "onsite_seats": "30",
        "online_seats": "60", "deadline": "", "survey_id": ""}


def add_seminar(services, **fields) -> int:
    values = {"title": "DXはじめの一歩", "start_at": datetime(2026, 12, 10, 5, 0, tzinfo=UTC),
              "end_at": datetime(2026, 12, 10, 7, 0, tzinfo=UTC), "onsite_seats": 30, "online_seats": 60} | fields
    with services.db.unit_of_work() as s:
        seminar = seminars.create(s, **values, now=services.clock.now())
        s.commit()
        return seminar.id


def stored(services, seminar_id: int) -> Seminar:
    with services.db.unit_of_work() as s:
        return s.get(Seminar, seminar_id)


def registration(services, registration_id: int) -> SeminarRegistration:
    with services.db.unit_of_work() as s:
        return s.get(SeminarRegistration, registration_id)


def count_seminars(services) -> int:
    with services.db.unit_of_work() as s:
        return len(seminars.listing(s))


# --- list, create, edit -----------------------------------------------------------------------------------

def test_staff_create_a_seminar_and_it_is_listed_with_its_seats(client, services):
    sign_in(client, services)

    response = post(client, "/admin/seminars", **FORM, subsidy_briefing="on")

    assert response.status_code == 302
    with services.db.unit_of_work() as s:
        [(seminar, _)] = seminars.listing(s)
    assert (seminar.title, seminar.onsite_seats, seminar.online_seats, seminar.subsidy_briefing) == \
        ("DXはじめの一歩", 30, 60, True)
    assert seminar.start_at == datetime(2026, 12, 10, 5, 0, tzinfo=UTC)
    assert seminar.venue_address == seminars.DEFAULT_ADDRESS
    text = page(client, "/admin/seminars")
    assert "12月10日(木) 14:00〜16:00" in text and "0／30席・残り30" in text and "0／60席・残り60" in text


@pytest.mark.parametrize("change, said", [
    ({"end": "2026-12-10T13:00"}, "終了日時は開始日時より後にしてください"),
    ({"onsite_seats": "0", "online_seats": "0"}, "両方0です"),
    ({"onsite_seats": "-3"}, "定員は0以上"),
    ({"onsite_seats": "たくさん"}, "定員は数字で"),
    ({"start": "2026-11-20T14:00", "end": "2026-11-20T16:00"}, "開始日時が過ぎています"),
    ({"deadline": "2026-12-11T10:00"}, "申込締切は開始日時より前に"),
    ({"online_url": "javascript:alert(1)"}, "http:// か https://"),
    ({"start": ""}, "開始日時を選んでください"),
])
def test_a_seminar_that_cannot_work_is_refused_and_the_form_keeps_what_was_typed(client, services, change, said):
    sign_in(client, services)

    response = post(client, "/admin/seminars", **(FORM | change))

    text = response.get_data(as_text=True)
    assert response.status_code == 400 and said in text
    assert 'value="DXはじめの一歩"' in text
    assert count_seminars(services) == 0


def test_the_list_shows_seats_taken_and_left_per_mode_and_the_waiting_list(client, services):
    seminar_id = add_seminar(services, onsite_seats=2, online_seats=5)
    add_registration(services.db, seminar_id, "U1")
    add_registration(services.db, seminar_id, "U2", status="attended")
    add_registration(services.db, seminar_id, "U3", mode="online")
    add_registration(services.db, seminar_id, "U4", status="waiting")
    add_registration(services.db, seminar_id, "U5", mode="online", status="cancelled")
    sign_in(client, services, "viewer")

    text = page(client, "/admin/seminars")

    assert "2／2席・残り0" in text and "1／5席・残り4" in text and '<td class="waiting">1名</td>' in text


def test_an_edit_is_saved(client, services):
    seminar_id = add_seminar(services)
    sign_in(client, services)
    assert 'value="2026-12-10T14:00"' in page(client, f"/admin/seminars/{seminar_id}/edit")

    response = post(client, f"/admin/seminars/{seminar_id}", **(FORM | {"title": "AI活用セミナー", "online_seats": "80"}))

    assert response.status_code == 302
    assert (stored(services, seminar_id).title, stored(services, seminar_id).online_seats) == ("AI活用セミナー", 80)


def test_a_seminar_already_held_can_be_corrected_but_not_moved_into_the_past(client, services):
    seminar_id = add_seminar(services, start_at=datetime(2026, 11, 20, 5, 0, tzinfo=UTC),
                             end_at=datetime(2026, 11, 20, 7, 0, tzinfo=UTC))
    sign_in(client, services)
    held = FORM | {"start": "2026-11-20T14:00", "end": "2026-11-20T16:00"}

    assert post(client, f"/admin/seminars/{seminar_id}", **(held | {"title": "DX入門（報告用）"})).status_code == 302
    moved = post(client, f"/admin/seminars/{seminar_id}", **(held | {"start": "2026-11-19T14:00"}))

    assert moved.status_code == 400 and "開始日時が過ぎています" in moved.get_data(as_text=True)
    assert stored(services, seminar_id).title == "DX入門（報告用）"


def test_a_capacity_below_the_seats_taken_is_refused_kindly(client, services):
    seminar_id = add_seminar(services, onsite_seats=3)
    for user in ("U1", "U2"):
        add_registration(services.db, seminar_id, user)
    sign_in(client, services)

    response = post(client, f"/admin/seminars/{seminar_id}", **(FORM | {"onsite_seats": "1"}))

    assert response.status_code == 400
    assert "会場の定員は、すでにお申し込みいただいている2名より少なくできません" in response.get_data(as_text=True)
    assert stored(services, seminar_id).onsite_seats == 3
    assert post(client, f"/admin/seminars/{seminar_id}", **(FORM | {"onsite_seats": "2"})).status_code == 302
    assert stored(services, seminar_id).onsite_seats == 2


def test_a_viewer_reads_but_cannot_create_edit_or_mark(client, services):
    seminar_id = add_seminar(services)
    registration_id, _ = add_registration(services.db, seminar_id, "U1")
    sign_in(client, services, "viewer")

    assert "出席にする" not in page(client, f"/admin/seminars/{seminar_id}")
    for path, form in (("/admin/seminars", FORM), (f"/admin/seminars/{seminar_id}", FORM | {"title": "別の題"}),
                       (f"/admin/seminars/{seminar_id}/registrations/{registration_id}/attend", {})):
        response = post(client, path, **form)
        assert response.status_code == 403 and "閲覧専用" in response.get_data(as_text=True)
    assert count_seminars(services) == 1 and stored(services, seminar_id).title == "DXはじめの一歩"
    assert registration(services, registration_id).status == "registered"


def test_a_viewer_sees_the_registrations_counted_but_not_named_nor_the_check_in_page(client, services):
    seminar_id = add_seminar(services)
    _, token = add_registration(services.db, seminar_id, "U1", company="見せない商店", name="見せない 花子")
    sign_in(client, services, "viewer")

    text = page(client, f"/admin/seminars/{seminar_id}")

    assert "お申し込み <span class=\"count\">1件</span>" in text and "申込 1／30席" in text
    assert "見せない" not in text and "閲覧専用のアカウントでは表示されません" in text
    refused = client.get(f"/admin/checkin/{token}")
    assert refused.status_code == 403 and "見せない" not in refused.get_data(as_text=True)
    assert "閲覧専用のアカウントではご覧いただけません" in refused.get_data(as_text=True)


def test_an_unknown_seminar_is_a_polite_404(client, services):
    sign_in(client, services)
    response = client.get("/admin/seminars/999")
    assert response.status_code == 404 and "お探しのセミナーは見つかりませんでした" in response.get_data(as_text=True)


# --- registrations and attendance ---------------------------------------------------------------------

def test_the_registrations_show_company_name_mode_status_and_waiting_position(client, services, clock):
    seminar_id = add_seminar(services, onsite_seats=1)
    add_registration(services.db, seminar_id, "U1", company="桜島製作所", name="西郷 花子")
    add_registration(services.db, seminar_id, "U2", company="<b>指宿</b>商店", status="waiting",
                     at=datetime(2026, 11, 24, 2, 0, tzinfo=UTC))
    add_registration(services.db, seminar_id, "U3", company="霧島食品", status="waiting",
                     at=datetime(2026, 11, 24, 1, 30, tzinfo=UTC))
    sign_in(client, services)

    text = page(client, f"/admin/seminars/{seminar_id}")

    assert "桜島製作所" in text and "西郷 花子" in text and "&lt;b&gt;指宿&lt;/b&gt;商店" in text
    rows = text.split('<tr id="registration-')[1:]
    by_company = {next(c for c in ("桜島製作所", "指宿", "霧島食品") if c in row): row for row in rows}
    assert "1番目" in by_company["霧島食品"] and "2番目" in by_company["指宿"]
    assert "出席にする" in by_company["桜島製作所"] and "出席にする" not in by_company["霧島食品"]


def test_marking_attendance_from_the_list_records_who_and_once(client, services):
    seminar_id = add_seminar(services)
    registration_id, _ = add_registration(services.db, seminar_id, "U1")
    sign_in(client, services, login="yamada")

    post(client, f"/admin/seminars/{seminar_id}/registrations/{registration_id}/attend")
    again = post(client, f"/admin/seminars/{seminar_id}/registrations/{registration_id}/attend")

    row = registration(services, registration_id)
    assert (row.status, row.attended_by) == ("attended", "yamada")
    assert "すでに出席" in page(client, again.location)


# --- the check-in QR code -----------------------------------------------------------------------------

def test_the_qr_png_is_segno_s_code_of_the_check_in_url(client, services):
    seminar_id = add_seminar(services)
    _, token = add_registration(services.db, seminar_id, "U1")

    response = client.get(f"/checkin/{token}.png")

    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.data.startswith(b"\x89PNG\r\n\x1a\n")
    expected = io.BytesIO()
    segno.make(f"http://localhost/admin/checkin/{token}", error="m").save(expected, kind="png", scale=10, border=4)
    assert response.data == expected.getvalue()


@pytest.mark.parametrize("status", ["cancelled", None])
def test_the_qr_png_of_a_cancelled_or_unknown_registration_is_not_found(client, services, status):
    seminar_id = add_seminar(services)
    _, token = add_registration(services.db, seminar_id, "U1", status=status or "registered")
    assert client.get(f"/checkin/{token if status else 'no-such-token'}.png").status_code == 404


def test_the_line_messages_point_at_the_png_on_the_public_address(services):
    seminar_id = add_seminar(services)
    registration_id, token = add_registration(services.db, seminar_id, "U1")
    text, image = checkin_messages(registration(services, registration_id), "https://dx.example.jp/")
    assert "受付" in text["text"]
    assert image == {"type": "image", "originalContentUrl": f"https://dx.example.jp/checkin/{token}.png",
                     "previewImageUrl": f"https://dx.example.jp/checkin/{token}.png"}
    assert checkin_url("https://dx.example.jp/", token) == f"https://dx.example.jp/admin/checkin/{token}"


def test_scanning_signed_out_asks_to_sign_in_then_comes_back_to_the_person(client, services):
    seminar_id = add_seminar(services)
    _, token = add_registration(services.db, seminar_id, "U1", company="桜島製作所", name="西郷 花子")
    from storage.staff import add_user
    add_user(services.db, "yamada", PASSWORD, "coordinator", services.clock.now())

    login_url = client.get(f"/admin/checkin/{token}").location
    assert parse_qs(urlsplit(login_url).query) == {"next": [f"/admin/checkin/{token}"]}
    client.get(login_url)
    back = client.post(login_url, data={"login": "yamada", "password": PASSWORD, "csrf_token": csrf(client)})

    assert back.location == f"/admin/checkin/{token}"
    text = page(client, back.location)
    assert "桜島製作所" in text and "西郷 花子" in text and "会場" in text and "受付する" in text


def test_opening_the_check_in_page_marks_nothing_until_the_button_is_pressed(client, services):
    seminar_id = add_seminar(services)
    registration_id, token = add_registration(services.db, seminar_id, "U1")
    sign_in(client, services, login="yamada")

    page(client, f"/admin/checkin/{token}")
    assert registration(services, registration_id).status == "registered"

    first = post(client, f"/admin/checkin/{token}")
    second = post(client, f"/admin/checkin/{token}")

    assert "受付しました" in first.get_data(as_text=True)
    assert "すでに受付済み" in second.get_data(as_text=True) and "受付しました" not in second.get_data(as_text=True)
    row = registration(services, registration_id)
    assert (row.status, row.attended_by, row.attended_at) == ("attended", "yamada", services.clock.now())
    assert "すでに受付済み" in page(client, f"/admin/checkin/{token}")


@pytest.mark.parametrize("status, said", [("cancelled", "キャンセルされています"), ("waiting", "キャンセル待ちのまま")])
def test_a_cancelled_or_waiting_code_is_a_kind_page_and_marks_nothing(client, services, status, said):
    seminar_id = add_seminar(services)
    registration_id, token = add_registration(services.db, seminar_id, "U1", status=status)
    sign_in(client, services)

    response = post(client, f"/admin/checkin/{token}")

    assert response.status_code == 409 and said in response.get_data(as_text=True)
    assert registration(services, registration_id).status == status


def test_an_unknown_code_is_a_kind_page(client, services):
    sign_in(client, services)
    response = client.get("/admin/checkin/no-such-token")
    assert response.status_code == 404 and "このQRコードのお申し込みは見つかりませんでした" in response.get_data(as_text=True)
