"""Each coordinator's iCalendar feed of their bookings, at a secret URL a calendar app can subscribe to."""
from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app
from sqlalchemy import select

from bot.config import Config
from storage import seminars as seminar_store
from storage.models import HOLDS_SEAT, Booking, Consultation, Seminar, receipt_no

bp = Blueprint("ical", __name__)

PAST_DAYS = 30
METHOD_LABELS = {"visit": "対面", "online": "オンライン", "phone": "電話", "email": "メール"}
STATUSES = {"pending": "TENTATIVE", "confirmed": "CONFIRMED", "cancelled": "CANCELLED"}
# RFC 5545 TEXT allows no control characters but HTAB; newlines are escaped before this applies.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def feed_token(secret_key: str, coordinator_id: str) -> str:
    """The feed's secret: stable for as long as the app's secret key, different per coordinator."""
    return hmac.new(secret_key.encode(), coordinator_id.encode(), hashlib.sha256).hexdigest()[:32]


def feed_url(secret_key: str, coordinator_id: str) -> str:
    """The feed's path, to be shown to the coordinator (who pastes it, with the host, into a calendar app)."""
    return f"/calendar/{quote(coordinator_id, safe='')}/{feed_token(secret_key, coordinator_id)}.ics"


@bp.get("/calendar/<coordinator_id>/<token>.ics")
def feed(coordinator_id: str, token: str):
    """The coordinator's bookings from 30 days ago on; no login, as calendar apps cannot log in: the token is the key."""
    services = current_app.extensions["dxdesk"]
    expected = feed_token(current_app.secret_key, coordinator_id)
    coordinator = services.config.coordinator(coordinator_id)
    # One answer for a wrong token and an unknown coordinator, so the URL tells nothing about who exists.
    if not hmac.compare_digest(token.encode(), expected.encode()) or coordinator is None:
        abort(404)
    since = services.clock.now() - timedelta(days=PAST_DAYS)
    with services.db.unit_of_work() as s:
        rows = s.execute(
            select(Booking, Consultation)
            .outerjoin(Consultation, Booking.consultation_id == Consultation.id)
            .where(Booking.coordinator_id == coordinator_id, Booking.start >= since, Booking.status.in_(list(STATUSES)),
                   Booking.simulated.is_(False))  # a demo in the simulator is not in the coordinator's diary
            .order_by(Booking.start, Booking.id)
        ).all()
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//dxdesk//dxdesk//JA", "CALSCALE:GREGORIAN",
             "METHOD:PUBLISH", f"X-WR-CALNAME:{_text(f'{services.config.program_name}（{coordinator.name}）')}",
             # Hints for how often to fetch again; apps that honour them see new bookings sooner.
             "REFRESH-INTERVAL;VALUE=DURATION:PT15M", "X-PUBLISHED-TTL:PT15M"]
    for booking, consultation in rows:
        lines += _event(booking, consultation, services.config)
    lines.append("END:VCALENDAR")
    body = "".join(_fold(line) + "\r\n" for line in lines)
    return Response(body.encode(), headers={
        "Content-Type": "text/calendar; charset=utf-8",
        "Cache-Control": "private, no-store",  # it holds the consultations' personal data
        "X-Content-Type-Options": "nosniff",  # never rendered as HTML, whatever a company name contains
    })


@bp.get("/seminars/<token>.ics")
def seminar_event(token: str):
    """One registrant's seminar as a calendar file, for their mode (the 「カレンダーに追加」 button in LINE).

    The check-in token is the key, as for the QR code; a cancelled or waiting registration has no event to add.
    """
    services = current_app.extensions["dxdesk"]
    with services.db.unit_of_work() as s:
        registration = seminar_store.by_checkin_token(s, token)
        seminar = s.get(Seminar, registration.seminar_id) if registration is not None else None
    if seminar is None or registration.status not in HOLDS_SEAT:
        abort(404)
    if registration.mode == "online":
        where, note = "オンライン", f"参加用URL: {seminar.online_url}" if seminar.online_url else \
            "参加用URLは開催前にLINEでお送りします。"
    else:
        where, note = " ".join(x for x in (seminar.venue, seminar.venue_address) if x), seminar.map_url or ""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//dxdesk//dxdesk//JA", "CALSCALE:GREGORIAN", "METHOD:PUBLISH",
             "BEGIN:VEVENT", f"UID:seminar{seminar.id}-{registration.id}@dxdesk", f"DTSTAMP:{_utc(seminar.updated_at)}",
             f"DTSTART:{_utc(seminar.start_at)}", f"DTEND:{_utc(seminar.end_at)}", f"SUMMARY:{_text(seminar.title)}",
             f"LOCATION:{_text(where)}", f"DESCRIPTION:{_text(note)}", "STATUS:CONFIRMED", "END:VEVENT",
             "END:VCALENDAR"]
    body = "".join(_fold(line) + "\r\n" for line in lines)
    return Response(body.encode(), headers={
        "Content-Type": "text/calendar; charset=utf-8", "Cache-Control": "private, no-store",
        "Content-Disposition": f"attachment; filename=seminar-{seminar.id}.ics", "X-Content-Type-Options": "nosniff"})


def _event(booking: Booking, consultation: Consultation | None, config: Config) -> list[str]:
    uid = booking.calendar_event_id or f"booking{booking.id}"
    lines = ["BEGIN:VEVENT", f"UID:{uid}@dxdesk", f"DTSTAMP:{_utc(booking.updated_at)}",
             f"LAST-MODIFIED:{_utc(booking.updated_at)}", f"DTSTART:{_utc(booking.start)}",
             f"DTEND:{_utc(booking.end)}",
             f"SUMMARY:{_text(f'DX相談（{METHOD_LABELS.get(booking.method, booking.method)}）')}",
             f"STATUS:{STATUSES[booking.status]}"]
    if consultation is not None:
        lines.append(f"DESCRIPTION:{_text(_description(booking, consultation, config))}")
    lines.append("END:VEVENT")
    return lines


def _description(booking: Booking, c: Consultation, config: Config) -> str:
    """What the coordinator needs to prepare and to reach the person."""
    fields = [("受付番号", receipt_no(c.id, c.received_at)), ("会社名", c.company),
              ("分野", config.category(c.category).name), ("ご相談内容", c.question), ("ご担当者", c.contact_name),
              ("電話", c.phone), ("メール", c.email), ("Google Meet", booking.meet_url)]
    return "\n".join(f"{label}: {value}" for label, value in fields if value)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _text(value: str) -> str:
    """An RFC 5545 TEXT value: backslash, semicolon, comma and newlines escaped."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return CONTROL.sub("", value)


def _fold(line: str) -> str:
    """Lines of at most 75 octets, continued after CRLF and a space, never splitting a UTF-8 character."""
    parts, current, size = [], "", 0
    for char in line:
        width = len(char.encode())
        if size + width > 75:
            parts.append(current)
            current, size = " ", 1
        current += char
        size += width
    parts.append(current)
    return "\r\n".join(parts)
