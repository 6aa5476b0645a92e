"""Activity records (the contract's work besides consultations) and their photos: checked by content with Pillow,
kept upright without their EXIF (no GPS position) under a random name in `<var_dir>/photos`, with a thumbnail cached
beside them."""
from __future__ import annotations

import os
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from storage.models import ACTIVITY_KINDS, MODEL_CASE_STAGES, Activity, ActivityPhoto, Consultation

KIND_LABELS = {"visit": "企業への支援訪問", "training": "企業内研修", "partner_visit": "支援機関への訪問",
               "partner_talk": "支援機関のセミナーでの講演", "subsidy_followup": "補助金交付先へのフォローアップ訪問",
               "model_case": "DXモデルケースづくり"}
STAGE_LABELS = {"surveyed": "調査", "analysed": "課題分析", "planned": "計画策定"}
PARTNER_KINDS = ("partner_visit", "partner_talk")
# What each kind records besides its date, coordinator, company (or partner), consultation and notes.
KIND_FIELDS = {"visit": (), "training": ("session_no", "topics", "attendees"), "partner_visit": (),
               "partner_talk": ("topics", "attendees"), "subsidy_followup": (), "model_case": ("model_stage",)}
MAX_TEXT = 2000

MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 50_000_000  # a 48-megapixel phone photo passes; a decompression bomb does not get decoded
FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp"),
           "GIF": ("image/gif", "gif")}
THUMB_SIZE = 320
REENCODING = {"JPEG": {"quality": 92}, "WEBP": {"quality": 92}}  # a photo saved again without its metadata


# --- activities --------------------------------------------------------------------------------------------

def check(values: dict, *, coordinator_ids: set[str], partner_ids: set[str]) -> dict:
    """The activity's fields as they will be stored, or ValueError with a Japanese reason.

    Fields the kind does not record are cleared, so a training's session number cannot linger on a visit."""
    kind = values.get("kind")
    if kind not in ACTIVITY_KINDS:
        raise ValueError("活動の種類を選んでください。")
    if not isinstance(values.get("date"), datetime):
        raise ValueError("実施日時を入れてください。")
    if values.get("coordinator_id") and values["coordinator_id"] not in coordinator_ids:
        raise ValueError("コーディネーターは一覧から選んでください。")
    if values.get("partner_id") and values["partner_id"] not in partner_ids:
        raise ValueError("支援機関は一覧から選ぶか、名称を入れてください。")
    if kind in PARTNER_KINDS and not (values.get("partner_id") or values.get("company")):
        raise ValueError("訪問先・講演先の支援機関を選ぶか、名称を入れてください。")
    if kind not in PARTNER_KINDS and not values.get("company"):
        raise ValueError("企業名を入れてください（受付番号を入れると、その相談の企業名が入ります）。")
    if len(values.get("company") or "") > 200:
        raise ValueError("企業名は200文字以内で入れてください。")
    for name, label in (("topics", "内容・テーマ"), ("notes", "メモ")):
        if len(values.get(name) or "") > MAX_TEXT:
            raise ValueError(f"{label}は{MAX_TEXT}文字以内で入れてください。")
    if kind == "training" and not 1 <= (values.get("session_no") or 0) <= 99:
        raise ValueError("研修の回（第何回か）を1〜99の数字で入れてください。")
    if values.get("attendees") is not None and not 0 <= values["attendees"] <= 100_000:
        raise ValueError("参加人数は0以上の数字で入れてください。")
    if kind == "model_case" and values.get("model_stage") not in MODEL_CASE_STAGES:
        raise ValueError("モデルケースの段階（調査・課題分析・計画策定）を選んでください。")
    kept = KIND_FIELDS[kind]
    return {"kind": kind, "date": values["date"], "coordinator_id": values.get("coordinator_id") or None,
            "company": values.get("company") or None, "consultation_id": values.get("consultation_id"),
            "partner_id": (values.get("partner_id") or None) if kind in PARTNER_KINDS else None,
            "session_no": values.get("session_no") if "session_no" in kept else None,
            "topics": (values.get("topics") or None) if "topics" in kept else None,
            "attendees": values.get("attendees") if "attendees" in kept else None,
            "model_stage": values.get("model_stage") if "model_stage" in kept else None,
            "notes": values.get("notes") or None}


def create(s: Session, fields: dict, *, by: str, now: datetime) -> Activity:
    """A new activity from check()'s fields."""
    activity = Activity(**fields, created_by=by, created_at=now, updated_at=now)
    s.add(activity)
    s.flush()
    return activity


def update(activity: Activity, fields: dict, *, now: datetime) -> None:
    for name, value in fields.items():
        setattr(activity, name, value)
    activity.updated_at = now


def listing(s: Session, *, start: datetime | None = None, end: datetime | None = None, kind: str = "",
            coordinator_id: str = "", limit: int | None = None, offset: int = 0) -> list[Activity]:
    """Activities in [start, end), newest first, of one kind and one coordinator when given."""
    query = select(Activity).order_by(Activity.date.desc(), Activity.id.desc())
    if start is not None:
        query = query.where(Activity.date >= start)
    if end is not None:
        query = query.where(Activity.date < end)
    if kind:
        query = query.where(Activity.kind == kind)
    if coordinator_id:
        query = query.where(Activity.coordinator_id == coordinator_id)
    if limit is not None:
        query = query.offset(offset).limit(limit)
    return list(s.scalars(query))


def counts_by_kind(s: Session, start: datetime, end: datetime) -> dict[str, int]:
    """How many activities of each kind took place in [start, end) (every kind present, 0 when none)."""
    rows = s.execute(select(Activity.kind, func.count(Activity.id))
                     .where(Activity.date >= start, Activity.date < end).group_by(Activity.kind))
    return dict.fromkeys(ACTIVITY_KINDS, 0) | {kind: n for kind, n in rows}


@dataclass(frozen=True)
class Progress:
    """The contract's yearly targets as far as they are reached: companies are counted by their name, once each."""

    training_companies: int
    training_sessions: int
    model_surveyed: int  # companies with any model-case work (surveying is its first stage)
    model_planned: int  # companies whose model case reached a plan


def progress(s: Session, start: datetime, end: datetime) -> Progress:
    """Trainings and model-case work in [start, end) (the fiscal year so far, as the console shows it)."""
    def companies(*where) -> int:
        return s.scalar(select(func.count(func.distinct(Activity.company)))
                        .where(Activity.date >= start, Activity.date < end, *where)) or 0

    sessions = s.scalar(select(func.count(Activity.id)).where(Activity.date >= start, Activity.date < end,
                                                              Activity.kind == "training"))
    return Progress(companies(Activity.kind == "training"), sessions,
                    companies(Activity.kind == "model_case"),
                    companies(Activity.kind == "model_case", Activity.model_stage == "planned"))


TARGETS = {"training_companies": 2, "training_sessions": 6, "model_surveyed": 10, "model_planned": 3}  # the contract's


def by_receipt_no(s: Session, text: str) -> Consultation | None:
    """The real consultation a receipt number (DX2026-00012, typed half- or full-width) names, or None."""
    match = re.fullmatch(r"DX(\d{4})-(\d{1,9})", unicodedata.normalize("NFKC", text).strip().upper())
    if not match or int(match[2]) > 2**31 - 1:
        return None
    c = s.get(Consultation, int(match[2]))
    return c if c is not None and not c.simulated and c.receipt_no == f"DX{match[1]}-{int(match[2]):05d}" else None


def company_consultations(s: Session, activity: Activity) -> list[Consultation]:
    """The real consultations of the activity's company (its exact name), and the one linked, newest first."""
    same = [Consultation.id == activity.consultation_id] if activity.consultation_id else []
    if activity.company:
        same.append(Consultation.company == activity.company)
    if not same:
        return []
    return list(s.scalars(select(Consultation).where(or_(*same), Consultation.simulated.is_(False))
                          .order_by(Consultation.received_at.desc(), Consultation.id.desc())))


# --- photos --------------------------------------------------------------------------------------------------

class PhotoRefused(ValueError):
    """An upload that is not kept, with the reason in Japanese."""


@dataclass(frozen=True)
class CheckedPhoto:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int


def check_photo(filename: str, data: bytes) -> CheckedPhoto:
    """An upload that is an image of an allowed format, judged by its content (Pillow), not by its name or type."""
    shown = filename if len(filename) <= 40 else filename[:39] + "…"  # the reason travels in the session cookie
    label = f"「{shown}」" if filename.isprintable() else "ファイル"
    if not filename or any(ch in filename for ch in "/\\\x00") or filename.startswith(".") or not filename.isprintable():
        raise PhotoRefused(f"{label}は、ファイル名にフォルダーの指定や使えない文字が含まれるため受け付けられません。"
                           "ファイル名を変えてから、もう一度お選びください。")
    if len(data) > MAX_PHOTO_BYTES:
        raise PhotoRefused(f"{label}は10MBを超えているため受け付けられません。小さくしてから、もう一度お選びください。")
    not_image = PhotoRefused(f"{label}は画像（JPEG・PNG・WebP・GIF）として読み取れないため受け付けられません。")
    try:
        with Image.open(BytesIO(data)) as probe:
            kind = probe.format
            if probe.width * probe.height > MAX_PIXELS:
                raise PhotoRefused(f"{label}は画素数が多すぎるため受け付けられません（5000万画素まで）。")
            probe.verify()
        if kind not in FORMATS:
            raise not_image
        with Image.open(BytesIO(data)) as image:  # verify() leaves the image unusable: open it again to read it
            image.load()
            kept, (width, height) = _without_metadata(image, kind, data)
    except PhotoRefused:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        raise not_image from None
    content_type, extension = FORMATS[kind]
    return CheckedPhoto(kept, content_type, extension, width, height)


def _without_metadata(image: Image.Image, kind: str, data: bytes) -> tuple[bytes, tuple[int, int]]:
    """What is kept of a photo, and its size: turned upright (its EXIF orientation applied) and saved again without
    its EXIF (the GPS position, time and camera), XMP or comment; its colour profile stays. A GIF holds no EXIF and
    is kept as sent, its animation with it."""
    if kind == "GIF":
        return data, image.size
    animated = getattr(image, "n_frames", 1) > 1  # an animated PNG or WebP: every frame, as it is
    upright = image if animated else ImageOps.exif_transpose(image)
    buffer = BytesIO()
    upright.save(buffer, kind, exif=b"", comment=b"", icc_profile=image.info.get("icc_profile"),
                 **({"save_all": True} if animated else {}), **REENCODING.get(kind, {}))
    return buffer.getvalue(), upright.size


def photo_path(var_dir: Path, stored_name: str) -> Path:
    """Where a stored photo's file is (outside the static folder: only the console serves it)."""
    return Path(var_dir) / "photos" / stored_name


def thumbnail_path(var_dir: Path, stored_name: str) -> Path:
    return Path(var_dir) / "photos" / "thumbs" / f"{Path(stored_name).stem}.jpg"


def add_photos(s: Session, var_dir: Path, activity: Activity, photos: list[CheckedPhoto], *, by: str,
               now: datetime) -> list[ActivityPhoto]:
    """Write the checked photos and their thumbnails, and add their rows; the caller commits.

    Should anything fail, the files written are removed again (remove_files) and the caller's rollback drops the rows.
    """
    rows, written = [], []
    try:
        for photo in photos:
            name = f"{secrets.token_hex(16)}.{photo.extension}"
            _write(photo_path(var_dir, name), photo.data)
            written.append(name)
            make_thumbnail(var_dir, name)
            rows.append(ActivityPhoto(activity_id=activity.id, stored_name=name, content_type=photo.content_type,
                                      size=len(photo.data), width=photo.width, height=photo.height, uploaded_by=by,
                                      created_at=now))
        s.add_all(rows)
        s.flush()
    except BaseException:
        remove_files(var_dir, written)
        raise
    return rows


def remove_files(var_dir: Path, stored_names: list[str]) -> None:
    """Remove photos' files and thumbnails (after their rows are gone, or when their rows never were)."""
    for name in stored_names:
        photo_path(var_dir, name).unlink(missing_ok=True)
        thumbnail_path(var_dir, name).unlink(missing_ok=True)


def make_thumbnail(var_dir: Path, stored_name: str) -> Path:
    """The photo's thumbnail (JPEG, at most 320 px a side, turned upright), made now if it is not cached."""
    out = thumbnail_path(var_dir, stored_name)
    if out.exists():
        return out
    with Image.open(photo_path(var_dir, stored_name)) as image:
        image.seek(0)  # an animated GIF: its first frame
        small = ImageOps.exif_transpose(image)
        small.thumbnail((THUMB_SIZE, THUMB_SIZE))
        if small.mode in ("RGBA", "LA", "P", "PA"):
            small = small.convert("RGBA")
            flat = Image.new("RGB", small.size, "white")
            flat.paste(small, mask=small.getchannel("A"))
            small = flat
        buffer = BytesIO()
        small.convert("RGB").save(buffer, "JPEG", quality=85)
    _write(out, buffer.getvalue())
    return out


def _write(path: Path, data: bytes) -> None:
    """Write a file whole or not at all (a temporary name, then a rename), readable by this service only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def photos_of(s: Session, activity_id: int) -> list[ActivityPhoto]:
    return list(s.scalars(select(ActivityPhoto).where(ActivityPhoto.activity_id == activity_id)
                          .order_by(ActivityPhoto.id)))
