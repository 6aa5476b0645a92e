"""A registrant's check-in QR code in LINE: where it is and the messages that show it (pure: no database, no Flask)."""
from __future__ import annotations

from typing import Protocol

from bot import replies as r

SHOW_AT_RECEPTION = ("受付用のQRコードをお送りします。\n"
                     "当日は会場の受付でこの画像をお見せください。スタッフが読み取って受付いたします。")


class Registration(Protocol):
    mode: str
    status: str
    checkin_token: str


def checkin_url(public_url: str, token: str) -> str:
    """What the QR code encodes: the console page staff open at the venue (login first, then back to it)."""
    return f"{public_url.rstrip('/')}/admin/checkin/{token}"


def qr_image_url(public_url: str, token: str) -> str:
    """The PNG of the QR code; LINE fetches it from the public address (https in production)."""
    return f"{public_url.rstrip('/')}/checkin/{token}.png"


def checkin_messages(registration: Registration, public_url: str) -> list[dict]:
    """A text and an image message with the QR code, for a seated on-site registration; else nothing.

    Online participants are not scanned at a door (staff mark them in the console), and someone on the waiting list
    gets their code when promoted: call this again then.
    """
    if registration.mode != "onsite" or registration.status != "registered":
        return []
    image = qr_image_url(public_url, registration.checkin_token)
    return [r.text(SHOW_AT_RECEPTION), {"type": "image", "originalContentUrl": image, "previewImageUrl": image}]
