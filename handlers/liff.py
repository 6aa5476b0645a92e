"""LIFF: who the person in LINE is, learnt from their LIFF access token through LINE's own API, never from the browser."""
from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.parse
import urllib.request

log = logging.getLogger(__name__)

LIFF_ID = re.compile(r"(\d{6,20})-[A-Za-z0-9]{4,32}")  # "<LINE Login channel id>-<random>", as the LINE console shows it
SDK_URL = "https://static.line-scdn.net/liff/edge/2/sdk.js"
MAX_TOKEN = 2048  # LINE's access tokens are a few hundred characters


def channel_of(liff_id: str) -> str | None:
    """The LINE Login channel a LIFF app belongs to: its id's first part. None for something that is not a LIFF id."""
    found = LIFF_ID.fullmatch(liff_id or "")
    return found.group(1) if found else None


class LiffVerifier:
    """Checks a LIFF access token with LINE (issued to our channel, not expired), then asks whose it is."""

    def __init__(self, liff_id: str, base_url: str, timeout: float = 5.0):
        self.liff_id, self.channel_id = liff_id, channel_of(liff_id)
        self.base_url, self.timeout = base_url.rstrip("/"), timeout

    def user_id(self, access_token: str) -> str | None:
        """The LINE user id the token stands for, or None when LINE does not vouch for it for our LIFF app."""
        if not access_token or len(access_token) > MAX_TOKEN or not access_token.isascii():
            return None
        query = urllib.parse.urlencode({"access_token": access_token})
        verified = self._get(f"/oauth2/v2.1/verify?{query}")
        if not verified or str(verified.get("client_id")) != self.channel_id or not _positive(verified.get("expires_in")):
            log.info("LIFF access token refused: not verified for this channel, or expired")
            return None
        profile = self._get("/v2/profile", {"Authorization": f"Bearer {access_token}"})
        user_id = profile.get("userId") if profile else None
        return user_id if isinstance(user_id, str) and re.fullmatch(r"U[0-9a-f]{32}", user_id) else None

    def _get(self, path: str, headers: dict[str, str] | None = None) -> dict | None:
        request = urllib.request.Request(self.base_url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = json.loads(response.read(64 * 1024))
        except urllib.error.HTTPError as exc:
            log.info("LINE answered %s to a LIFF check", exc.code)
            return None
        except (OSError, ValueError):
            log.warning("LINE could not be asked about a LIFF token (network or a malformed answer)")
            return None
        return body if isinstance(body, dict) else None


def _positive(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
