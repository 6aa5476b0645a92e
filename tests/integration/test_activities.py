"""Activity records and their photos in the staff console, through Flask's test client on the real database and disk."""
from __future__ import annotations

import html
import io
import random
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from app import Settings
from bot.jatime import TOKYO
from handlers.console import activities as console_activities
from storage import activities as storage_activities
from storage.models import Activity, ActivityPhoto, AuditEntry
from tests.integration.test_console import add_consultation, csrf, page, post, sign_in

VISIT = {"kind": "visit", "date": "2026-11-20T10:00", "coordinator": "tanaka", "company": "桜島製作所",
         "notes": "受発注の紙を減らす相談の続き"}


def image(fmt: str = "JPEG", size=(640, 480), color=(200, 80, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, fmt)
    return buffer.getvalue()


def phone_photo(fmt: str = "JPEG") -> bytes:
    """A photo as a phone takes it: held upright, stored on its side with EXIF orientation 6, where and when it was
    taken and with what camera; red on its (stored) left half, blue on its right."""
    picture = Image.new("RGB", (640, 480), (0, 0, 255))
    picture.paste((255, 0, 0), (0, 0, 320, 480))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turn 90° clockwise to show
    exif[0x010F], exif[0x0110], exif[0x0132] = "KagoCam", "DX-1", "2026:11:20 10:00:00"  # make, model, time
    exif.get_ifd(0x8825).update({1: "N", 2: (31.0, 35.0, 48.0), 3: "E", 4: (130.0, 33.0, 27.0)})  # GPS: 鹿児島
    buffer = io.BytesIO()
    picture.save(buffer, fmt, exif=exif)
    return buffer.getvalue()


def record(client, **form) -> int:
    response = post(client, "/admin/activities", **(VISIT | form))
    assert response.status_code == 302, html.unescape(response.get_data(as_text=True))
    return int(response.headers["Location"].rsplit("/", 1)[-1])


def upload(client, activity_id: int, *files: tuple[bytes, str]):
    return client.post(f"/admin/activities/{activity_id}/photos", content_type="multipart/form-data",
                       data={"csrf_token": csrf(client), "photos": [(io.BytesIO(data), name) for data, name in files]})


def stored(services, activity_id: int) -> Activity:
    with services.db.unit_of_work() as s:
        return s.get(Activity, activity_id)


def photo_rows(services) -> list[ActivityPhoto]:
    with services.db.unit_of_work() as s:
        return list(s.scalars(select(ActivityPhoto).order_by(ActivityPhoto.id)))


def audit_records(services, action: str) -> list[tuple[str, str]]:
    with services.db.unit_of_work() as s:
        return [(e.who, e.record) for e in s.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                                      .order_by(AuditEntry.id))]


def files_on_disk(settings) -> list[str]:
    folder = settings.var_dir / "photos"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


# --- records ---------------------------------------------------------------------------------------------------

def test_a_training_session_is_recorded_with_its_fields_and_the_record_and_its_views_are_audited(client, services):
    sign_in(client, services, "coordinator", login="tanaka-login")
    activity_id = record(client, kind="training", company="霧島食品", session_no="２", topics="生成AIの使い方",
                         attendees="12", model_stage="planned")
    a = stored(services, activity_id)
    assert (a.kind, a.company, a.session_no, a.topics, a.attendees, a.coordinator_id, a.created_by) == (
        "training", "霧島食品", 2, "生成AIの使い方", 12, "tanaka", "tanaka-login")
    assert a.date == datetime(2026, 11, 20, 10, 0, tzinfo=TOKYO)
    assert a.model_stage is None  # not a field of a training
    shown = page(client, f"/admin/activities/{activity_id}")
    assert "第2回" in shown and "生成AIの使い方" in shown and "12人" in shown and "田中 一郎" in shown
    assert audit_records(services, "change") == [("tanaka-login", f"activity:{activity_id}")]
    assert audit_records(services, "view") == [("tanaka-login", f"activity:{activity_id}")]


def test_an_edit_keeps_the_kind_clears_what_it_does_not_record_and_is_audited(client, services):
    sign_in(client, services, "admin")
    activity_id = record(client, kind="model_case", model_stage="surveyed")
    assert "調査" in page(client, f"/admin/activities/{activity_id}/edit")
    response = post(client, f"/admin/activities/{activity_id}", **(VISIT | {"kind": "training", "model_stage": "planned",
                                                                            "session_no": "3"}))
    assert response.status_code == 302
    a = stored(services, activity_id)
    assert (a.kind, a.model_stage, a.session_no) == ("model_case", "planned", None)
    assert [r for _, r in audit_records(services, "change")] == [f"activity:{activity_id}"] * 2


def test_a_partner_visit_names_a_configured_partner_or_a_free_one(client, services):
    sign_in(client, services)
    known = record(client, kind="partner_visit", partner="yorozu", company="")
    free = record(client, kind="partner_talk", partner="", partner_name="霧島市商工会", topics="DXの始め方",
                  attendees="40")
    assert (stored(services, known).partner_id, stored(services, known).company) == ("yorozu", "鹿児島県よろず支援拠点")
    assert (stored(services, free).partner_id, stored(services, free).company, stored(services, free).attendees) == (
        None, "霧島市商工会", 40)


@pytest.mark.parametrize("form, message", [
    ({"company": ""}, "企業名を入れてください"),
    ({"date": ""}, "実施日時を選んでください"),
    ({"coordinator": "nobody"}, "コーディネーターは一覧から選んでください"),
    ({"receipt_no": "DX2026-99999"}, "受付番号「DX2026-99999」の相談は見つかりませんでした"),
    ({"kind": "training", "session_no": ""}, "研修の回"),
    ({"kind": "training", "session_no": "二"}, "研修の回は数字で入れてください"),
    ({"kind": "model_case"}, "モデルケースの段階"),
    ({"kind": "partner_visit", "partner": "", "partner_name": ""}, "支援機関を選ぶか"),
    ({"kind": "partner_visit", "partner": "unknown"}, "支援機関は一覧から選ぶか"),
    ({"notes": "あ" * 2001}, "メモは2000文字以内"),
])
def test_bad_input_is_refused_in_japanese_keeps_what_was_typed_and_stores_nothing(client, services, form, message):
    sign_in(client, services)
    response = post(client, "/admin/activities", **(VISIT | {"notes": "入力したメモ"} | form))
    assert response.status_code == 400
    assert message in text_of(response)
    assert "入力したメモ" in text_of(response) or "notes" in form
    with services.db.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Activity)) == 0


def test_a_receipt_number_links_the_consultation_and_the_page_lists_the_companys_consultations(client, services):
    sign_in(client, services)
    linked = add_consultation(services, company="指宿観光")
    same = add_consultation(services, company="指宿観光", question="予約台帳をやめたい")
    other = add_consultation(services, company="指宿観光ホテル")
    simulated = add_consultation(services, company="指宿観光", simulated=True)
    receipt = f"ＤＸ2026-{linked:05d}"  # typed full-width
    activity_id = record(client, company="", receipt_no=receipt)
    a = stored(services, activity_id)
    assert (a.consultation_id, a.company) == (linked, "指宿観光")  # the company comes from the consultation
    shown = page(client, f"/admin/activities/{activity_id}")
    listed = shown.split("この企業の相談")[1]
    assert f"DX2026-{linked:05d}" in listed and f"DX2026-{same:05d}" in listed
    assert f"DX2026-{other:05d}" not in listed and f"DX2026-{simulated:05d}" not in listed
    assert post(client, f"/admin/activities/{activity_id}/consultation", consultation_id=str(same)).status_code == 302
    assert stored(services, activity_id).consultation_id == same
    post(client, f"/admin/activities/{activity_id}/consultation", consultation_id=str(other))
    assert stored(services, activity_id).consultation_id == same  # not one of the company's: refused
    post(client, f"/admin/activities/{activity_id}/consultation", consultation_id="")
    assert stored(services, activity_id).consultation_id is None


def test_the_list_shows_the_months_visits_against_the_target_and_filters_by_kind_and_coordinator(client, services):
    sign_in(client, services)
    for day in ("2026-11-02", "2026-11-16"):
        record(client, date=f"{day}T10:00", company=f"訪問先{day}")
    record(client, date="2026-10-30T10:00", company="十月の訪問先")
    record(client, kind="training", session_no="1", company="研修先", coordinator="")
    november = page(client, "/admin/activities?month=2026-11")
    assert "企業への支援訪問: <strong>2件</strong>（目標 月3件）" in november and "目標まであと1件" in november
    assert "訪問先2026-11-02" in november and "十月の訪問先" not in november
    assert "研修先" in november
    visits = page(client, "/admin/activities?month=2026-11&kind=visit")
    assert "研修先" not in visits and "訪問先2026-11-16" in visits
    assert "研修先" not in page(client, "/admin/activities?month=2026-11&coordinator=tanaka")
    record(client, date="2026-11-30T23:59", company="月末の訪問先")
    assert "目標達成" in page(client, "/admin/activities?month=2026-11")
    assert "十月の訪問先" in page(client, "/admin/activities?month=2026-10")
    assert "2026年11月" in page(client, "/admin/activities")  # this month (the test clock's) by default


def test_the_list_shows_the_fiscal_years_trainings_and_model_cases_against_the_contracts_targets(client, services):
    sign_in(client, services)
    for n, (company, day) in enumerate((("霧島食品", "2026-05-10"), ("霧島食品", "2026-06-10"), ("出水物産", "2026-11-05"),
                                       ("去年度の研修先", "2026-03-31"))):
        record(client, kind="training", company=company, session_no=str(n + 1), date=f"{day}T10:00")
    for company, stage in (("A社", "surveyed"), ("A社", "analysed"), ("A社", "planned"), ("B社", "surveyed")):
        record(client, kind="model_case", company=company, model_stage=stage, date="2026-09-01T10:00")
    shown = page(client, "/admin/activities?month=2026-11")
    assert "年度の進み具合（2026年4月〜2026年11月）" in shown
    assert "企業内研修: 2社・3回（目安 2社・各3回）" in shown
    assert "調査 2社（目安 10社）、計画策定まで 1社（目安 3社）" in shown
    assert "企業内研修: 1社・2回" in page(client, "/admin/activities?month=2026-10")  # up to the month shown


def test_a_bad_month_is_a_japanese_400(client, services):
    sign_in(client, services)
    response = client.get("/admin/activities?month=2026-13")
    assert response.status_code == 400 and "YYYY-MM" in text_of(response)


# --- photos ----------------------------------------------------------------------------------------------------

def test_jpeg_and_png_photos_are_stored_under_random_names_and_shown_as_thumbnails(client, services, settings):
    sign_in(client, services, login="uploader")
    activity_id = record(client)
    jpeg, png = image("JPEG", (1600, 1200)), image("PNG", (400, 300))
    response = upload(client, activity_id, (jpeg, "朝の訪問.jpg"), (png, "ホワイトボード.png"))
    assert response.status_code == 302 and "写真を2枚追加しました" in text_of(client.get(response.headers["Location"]))
    rows = photo_rows(services)
    assert [(r.content_type, r.width, r.height, r.uploaded_by) for r in rows] == [
        ("image/jpeg", 1600, 1200, "uploader"), ("image/png", 400, 300, "uploader")]
    assert [r.size for r in rows] == [(settings.var_dir / "photos" / r.stored_name).stat().st_size for r in rows]
    assert all("訪問" not in r.stored_name and len(r.stored_name) >= 36 for r in rows)
    kept = settings.var_dir / "photos" / rows[1].stored_name
    assert Image.open(kept).tobytes() == Image.open(io.BytesIO(png)).tobytes()  # saved again, pixel for pixel
    shown = page(client, f"/admin/activities/{activity_id}")
    for r in rows:
        assert f'src="/admin/activities/photos/{r.id}/thumbnail"' in shown
    thumb = client.get(f"/admin/activities/photos/{rows[0].id}/thumbnail")
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.data)).size == (320, 240)
    full = client.get(f"/admin/activities/photos/{rows[1].id}")
    assert full.status_code == 200 and full.data == kept.read_bytes() and full.mimetype == "image/png"
    assert full.headers["X-Content-Type-Options"] == "nosniff" and "no-store" in full.headers["Cache-Control"]
    assert ("uploader", f"activity:{activity_id}") in audit_records(services, "view")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_phone_photo_is_kept_upright_without_its_gps_position_time_or_camera(client, services, settings, fmt):
    sign_in(client, services)
    activity_id = record(client)
    sent = phone_photo(fmt)
    assert Image.open(io.BytesIO(sent)).getexif().get_ifd(0x8825)  # what the phone wrote

    assert upload(client, activity_id, (sent, f"visit.{fmt.lower()}")).status_code == 302

    [row] = photo_rows(services)
    data = (settings.var_dir / "photos" / row.stored_name).read_bytes()
    assert b"KagoCam" not in data and b"2026:11:20" not in data and b"Exif" not in data
    kept = Image.open(io.BytesIO(data))
    assert dict(kept.getexif()) == {} and kept.getexif().get_ifd(0x8825) == {}
    assert kept.size == (480, 640) and (row.width, row.height, row.size) == (480, 640, len(data))
    top, bottom = kept.convert("RGB").getpixel((240, 100)), kept.convert("RGB").getpixel((240, 540))
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]  # turned as the phone showed it: red on top
    served = client.get(f"/admin/activities/photos/{row.id}")
    assert served.data == data
    thumb = Image.open(io.BytesIO(client.get(f"/admin/activities/photos/{row.id}/thumbnail").data))
    assert thumb.size == (240, 320) and dict(thumb.getexif()) == {}


@pytest.mark.parametrize("data, name, reason", [
    (b"not an image at all, just text\n" * 10, "memo.jpg", "画像（JPEG・PNG・WebP・GIF）として読み取れない"),
    (b"\xff\xd8\xff\xe0" + b"\0" * (11 * 1024 * 1024), "big.jpg", "10MBを超えている"),
    (image(), "../x.jpg", "フォルダーの指定"),
    (image(), "..\\x.jpg", "フォルダーの指定"),
    (image("BMP"), "scan.bmp", "画像（JPEG・PNG・WebP・GIF）として読み取れない"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "logo.png", "読み取れない"),
    (image("JPEG")[:400], "cut.jpg", "読み取れない"),
])
def test_an_upload_that_is_not_a_small_image_with_a_plain_name_is_refused_and_nothing_is_stored(
        client, services, settings, data, name, reason):
    sign_in(client, services)
    activity_id = record(client)
    response = upload(client, activity_id, (image("PNG"), "good.png"), (data, name))
    assert response.status_code == 302
    told = text_of(client.get(response.headers["Location"]))
    assert reason in told and "写真は1枚も保存していません" in told
    assert photo_rows(services) == [] and files_on_disk(settings) == []


def test_a_failure_midway_through_an_upload_leaves_no_file_and_no_row(app, client, services, settings, monkeypatch):
    sign_in(client, services)
    activity_id = record(client)
    made = []

    def thumbnail_then_fail(var_dir, stored_name):
        if made:
            raise OSError("disk full")
        made.append(stored_name)
        return real(var_dir, stored_name)

    real = storage_activities.make_thumbnail
    monkeypatch.setattr(storage_activities, "make_thumbnail", thumbnail_then_fail)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = upload(client, activity_id, (image(), "a.jpg"), (image("PNG"), "b.png"))
    assert response.status_code == 500 and made  # the first photo and its thumbnail were written
    assert photo_rows(services) == [] and files_on_disk(settings) == []


def test_a_long_file_name_is_shortened_in_the_refusal(client, services):
    sign_in(client, services)
    activity_id = record(client)
    told = text_of(client.get(upload(client, activity_id, (b"text", "あ" * 300 + ".jpg")).headers["Location"]))
    assert "「" + "あ" * 39 + "…」は画像" in told


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's own warning, at 89 megapixels
def test_a_decompression_bomb_is_refused_before_it_is_decoded(client, services, settings):
    sign_in(client, services)
    activity_id = record(client)
    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buffer, "PNG")  # 100 megapixels in a few kilobytes
    told = text_of(client.get(upload(client, activity_id, (buffer.getvalue(), "bomb.png")).headers["Location"]))
    assert "画素数が多すぎる" in told
    assert photo_rows(services) == [] and files_on_disk(settings) == []


def test_a_body_over_the_upload_limit_gets_a_japanese_413_page_and_other_posts_keep_the_small_limit(
        client, services, settings, monkeypatch):
    sign_in(client, services)
    activity_id = record(client)
    noise = Image.frombytes("RGB", (900, 800), random.Random(1).randbytes(900 * 800 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG", compress_level=0)
    big = buffer.getvalue()
    assert len(big) > 2 * 1024 * 1024  # over the app's 1 MiB limit, under the upload's
    assert upload(client, activity_id, (big, "noise.png")).status_code == 302
    assert len(photo_rows(services)) == 1
    refused = post(client, "/admin/activities", **(VISIT | {"notes": "あ" * (1024 * 1024)}))
    assert refused.status_code == 413  # every other POST keeps the app's 1 MiB
    monkeypatch.setattr(console_activities, "MAX_UPLOAD_BODY", 1024 * 1024)
    response = upload(client, activity_id, (big, "noise.png"))
    assert response.status_code == 413
    assert "1枚10MBまで" in text_of(response) and "何も保存していません" in text_of(response)
    assert len(photo_rows(services)) == 1


def test_a_photo_is_deleted_with_its_file_and_thumbnail(client, services, settings):
    sign_in(client, services)
    activity_id = record(client)
    upload(client, activity_id, (image(), "a.jpg"), (image("PNG"), "b.png"))
    first, second = photo_rows(services)
    assert len(files_on_disk(settings)) == 4  # two photos, two thumbnails
    assert post(client, f"/admin/activities/photos/{first.id}/delete").status_code == 302
    assert [r.id for r in photo_rows(services)] == [second.id]
    assert files_on_disk(settings) == sorted([second.stored_name, f"thumbs/{second.stored_name.split('.')[0]}.jpg"])
    assert client.get(f"/admin/activities/photos/{first.id}").status_code == 404


def test_an_activity_is_deleted_with_its_photos(client, services, settings):
    sign_in(client, services)
    kept, deleted = record(client, company="残す記録"), record(client, company="消す記録")
    upload(client, kept, (image(), "a.jpg"))
    upload(client, deleted, (image(), "b.jpg"), (image("PNG"), "c.png"))
    response = post(client, f"/admin/activities/{deleted}/delete")
    assert response.status_code == 302 and "month=2026-11" in response.headers["Location"]
    assert stored(services, deleted) is None and stored(services, kept) is not None
    [left] = photo_rows(services)
    assert left.activity_id == kept and len(files_on_disk(settings)) == 2
    assert client.get(f"/admin/activities/{deleted}").status_code == 404
    assert audit_records(services, "change")[-1][1] == f"activity:{deleted}"


@pytest.mark.parametrize("fmt, mode, content_type", [("JPEG", "RGB", "image/jpeg"), ("PNG", "RGBA", "image/png"),
                                                      ("WEBP", "RGB", "image/webp"), ("GIF", "P", "image/gif")])
def test_each_allowed_format_is_kept_with_its_type_and_gets_a_jpeg_thumbnail(client, services, fmt, mode,
                                                                            content_type):
    sign_in(client, services)
    activity_id = record(client)
    buffer = io.BytesIO()
    Image.new(mode, (200, 100)).save(buffer, fmt)
    assert upload(client, activity_id, (buffer.getvalue(), f"photo.{fmt.lower()}")).status_code == 302
    [row] = photo_rows(services)
    assert row.content_type == content_type
    thumb = client.get(f"/admin/activities/photos/{row.id}/thumbnail")
    assert thumb.mimetype == "image/jpeg" and Image.open(io.BytesIO(thumb.data)).size == (200, 100)


def test_a_missing_thumbnail_is_made_again_on_demand(client, services, settings):
    sign_in(client, services)
    activity_id = record(client)
    upload(client, activity_id, (image("PNG", (1000, 500)), "wide.png"))
    [row] = photo_rows(services)
    for thumb in (settings.var_dir / "photos" / "thumbs").iterdir():
        thumb.unlink()
    response = client.get(f"/admin/activities/photos/{row.id}/thumbnail")
    assert response.status_code == 200 and Image.open(io.BytesIO(response.data)).size == (320, 160)


def test_the_photos_folder_is_under_dxdesk_var_dir():
    assert Settings.from_env({"DXDESK_VAR_DIR": "/var/lib/dxdesk"}).var_dir == Path("/var/lib/dxdesk")
    assert Settings.from_env({}).var_dir == Path("var")
    assert storage_activities.photo_path(Path("/var/lib/dxdesk"), "ab12.jpg") == Path("/var/lib/dxdesk/photos/ab12.jpg")


# --- who may see what ------------------------------------------------------------------------------------------

def test_photos_are_served_to_signed_in_staff_only(app, client, services):
    sign_in(client, services)
    activity_id = record(client)
    upload(client, activity_id, (image(), "a.jpg"))
    [row] = photo_rows(services)
    stranger = app.test_client()
    for path in (f"/admin/activities/photos/{row.id}", f"/admin/activities/photos/{row.id}/thumbnail"):
        response = stranger.get(path)
        assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
        assert not response.mimetype.startswith("image/")


def test_a_viewer_is_refused_every_activity_page_and_photo_with_a_kind_message(app, client, services):
    sign_in(client, services, "admin")
    activity_id = record(client)
    upload(client, activity_id, (image(), "a.jpg"))
    [row] = photo_rows(services)
    viewer = app.test_client()
    sign_in(viewer, services, "viewer")
    for path in ("/admin/activities", f"/admin/activities/{activity_id}", f"/admin/activities/{activity_id}/edit",
                 "/admin/activities/new?kind=visit", f"/admin/activities/photos/{row.id}",
                 f"/admin/activities/photos/{row.id}/thumbnail"):
        response = viewer.get(path)
        assert response.status_code == 403, path
        assert "閲覧専用のアカウントではご覧いただけません" in text_of(response)
    assert "活動記録" not in page(viewer, "/admin")
    assert post(viewer, "/admin/activities", **VISIT).status_code == 403
    assert upload(viewer, activity_id, (image(), "b.jpg")).status_code == 403
    assert post(viewer, f"/admin/activities/photos/{row.id}/delete").status_code == 403
    assert post(viewer, f"/admin/activities/{activity_id}/delete").status_code == 403
    assert len(photo_rows(services)) == 1
    assert [who for who, _ in audit_records(services, "view")] == []


def test_unknown_ids_are_404(client, services):
    sign_in(client, services)
    for path in ("/admin/activities/999", "/admin/activities/999/edit", "/admin/activities/photos/999",
                 "/admin/activities/photos/999/thumbnail", "/admin/activities/new?kind=party"):
        assert client.get(path).status_code == 404, path
    assert upload(client, 999, (image(), "a.jpg")).status_code == 404
    assert post(client, "/admin/activities/photos/999/delete").status_code == 404
    assert post(client, "/admin/activities/999", **VISIT).status_code == 404
    assert post(client, "/admin/activities/999/consultation", consultation_id="").status_code == 404
    assert post(client, "/admin/activities/999/delete").status_code == 404
