"""The check-in QR code of a seminar registration as a PNG, at a public URL LINE's image messages can fetch."""
from __future__ import annotations

import io

import segno
from flask import Blueprint, Response, abort, current_app, request

from bot.seminar_checkin import checkin_url
from storage.models import LIVE_REGISTRATION
from storage.seminars import by_checkin_token

bp = Blueprint("checkin", __name__)


def qr_png(url: str) -> bytes:
    """The QR code of `url` as PNG bytes, large enough for LINE's image viewer and a phone held up at the door."""
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="png", scale=10, border=4)
    return out.getvalue()


@bp.get("/checkin/<token>.png")
def qr_image(token: str):
    """No login, as LINE fetches it: the token is the key, and what it opens needs a staff login anyway."""
    services = current_app.extensions["dxdesk"]
    with services.db.unit_of_work() as s:
        registration = by_checkin_token(s, token)
        if registration is None or registration.status not in LIVE_REGISTRATION:
            abort(404)
    # Without DXDESK_PUBLIC_URL (the simulator) the code points at the address this request came to.
    public = services.settings.public_base_url or request.host_url
    return Response(qr_png(checkin_url(public, token)), mimetype="image/png",
                    headers={"Cache-Control": "private, max-age=86400"})
