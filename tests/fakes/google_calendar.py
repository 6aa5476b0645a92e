"""FakeGoogleCalendar: a real HTTP server on 127.0.0.1 with the OAuth token endpoint and the Calendar API calls dxdesk makes."""

from __future__ import annotations

import base64
import copy
import functools
import json
import re
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.http import QuietServer

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
# google-auth signs for Google's token endpoint whatever the key file's token_uri says; Google checks it.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MEET_URL = "https://meet.google.com/xxx-yyyy-zzz"
EVENT_ID = re.compile(r"[0-9a-v]{5,1024}")
EVENTS = re.compile(r"/calendar/v3/calendars/([^/]+)/events(?:/([^/]+))?")

# The reason Google gives with each status unless a script names another.
DEFAULT_REASONS = {400: "badRequest", 401: "authError", 403: "forbidden", 404: "notFound", 409: "duplicate",
                   410: "deleted", 429: "rateLimitExceeded", 500: "backendError", 503: "backendError"}
# Script entries for a connection that drops: before the request is carried out, or after (the answer is lost).
DROP = "drop"
DROP_AFTER = "drop-after"
_DROPPED = -1  # what _answer returns for the handler to close the connection without an answer


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    """Percent-decoded: `/calendar/v3/calendars/tanaka@example.jp/events`."""
    query: dict[str, str]
    headers: dict[str, str]
    """Header names are lower-cased."""
    body: Any
    """Parsed JSON, the form fields of a token request, None when empty."""


class FakeGoogleCalendar:
    """`with FakeGoogleCalendar() as fake:` serves at `fake.base_url` (token endpoint) and `fake.api_url` (Calendar v3).

    Like Google, it issues access tokens only for a JWT signed with a key it handed out
    (`write_service_account_key`), refuses API calls without one, answers 409 to a second insert of an
    event id and 410 to a second delete, and creates a Meet conference asynchronously: `pending` on
    insert (or on a patch asking for one), `success` (with `hangoutLink`) once `meet_pending_reads` more reads
    have passed. A deleted event keeps its id, as on Google: an insert with it gets 409, a get returns the event
    with status "cancelled", and a patch to status "confirmed" brings it back.
    With `calendars` given, only those calendars exist (others are not shared with the service account).
    """

    def __init__(self, calendars: list[str] | None = None) -> None:
        self._lock = threading.Lock()
        self._calendars = set(calendars) if calendars is not None else None
        self._requests: list[RecordedRequest] = []
        self._scripts: list[tuple[str, str, int, str | None]] = []
        self._events: dict[str, dict[str, dict]] = {}
        self._busy: dict[str, list[tuple[datetime, datetime]]] = {}
        self._meet_reads: dict[tuple[str, str], int] = {}
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._tokens: set[str] = set()
        self._claims: list[dict] = []
        self.meet_pending_reads = 0
        self._server = QuietServer(("127.0.0.1", 0), _handler_for(self))
        # A short poll keeps shutdown, and so each test's teardown, quick.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return self.base_url + "/calendar/v3/"

    def __enter__(self) -> FakeGoogleCalendar:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def write_service_account_key(self, path: str | Path,
                                  client_email: str = "dxdesk@dxdesk-test.iam.gserviceaccount.com") -> Path:
        """A service-account JSON key whose `token_uri` is this fake, for the real google-auth to load."""
        key = _signing_key()
        key_id = uuid.uuid4().hex
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        with self._lock:
            self._keys[key_id] = key.public_key()
        path = Path(path)
        path.write_text(json.dumps({
            "type": "service_account", "project_id": "dxdesk-test", "private_key_id": key_id,
            "private_key": pem, "client_email": client_email, "client_id": "100000000000000000000",
            "token_uri": self.base_url + "/token",
        }))
        return path

    def script(self, method: str, path_prefix: str, statuses: list[int | tuple[int, str]]) -> None:
        """The next requests matching method and path prefix get these statuses in order; then as usual.

        A 2xx entry means the usual answer. An entry may be `(status, reason)`, e.g. `(403, "quotaExceeded")`,
        or DROP / DROP_AFTER: the connection closes without an answer, before or after the request is carried out.
        """
        with self._lock:
            for entry in statuses:
                status, reason = entry if isinstance(entry, tuple) else (entry, None)
                self._scripts.append((method, path_prefix, status, reason))

    def add_busy(self, calendar_id: str, start: datetime, end: datetime) -> None:
        """Time taken by something made elsewhere (not through this API)."""
        with self._lock:
            self._busy.setdefault(calendar_id, []).append((start, end))

    def events(self, calendar_id: str) -> list[dict]:
        """The calendar's live events, as Google would return them, oldest first."""
        with self._lock:
            return [copy.deepcopy(e) for e in self._events.get(calendar_id, {}).values() if e["status"] != "cancelled"]

    def requests(self, method: str | None = None, path_prefix: str = "") -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._requests
                    if (method is None or r.method == method) and r.path.startswith(path_prefix)]

    def token_claims(self) -> list[dict]:
        """The claims of every JWT presented at the token endpoint (`iss`, `sub`, `scope`, `aud`, ...)."""
        with self._lock:
            return list(self._claims)

    # --- serving ----------------------------------------------------------------------------------------

    def _answer(self, method: str, raw_path: str, raw_query: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        path = unquote(raw_path)
        if path == "/token":
            body: Any = dict(parse_qsl(raw.decode()))
        else:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                return 400, _error(400, "parseError")
        request = RecordedRequest(method, path, dict(parse_qsl(raw_query)), headers, body)
        with self._lock:
            self._requests.append(request)
            scripted = self._next_script(method, path)
            if scripted and scripted[0] == DROP:
                return _DROPPED, None
            if scripted and scripted[0] == DROP_AFTER:
                self._serve_as_usual(request, raw_path, body, headers)
                return _DROPPED, None
            if scripted and not 200 <= scripted[0] < 300:
                status, reason = scripted
                if path == "/token":
                    return status, {"error": reason or "invalid_grant", "error_description": HTTPStatus(status).phrase}
                return status, _error(status, reason)
            return self._serve_as_usual(request, raw_path, body, headers)

    def _serve_as_usual(self, request: RecordedRequest, raw_path: str, body: Any,
                        headers: dict[str, str]) -> tuple[int, Any]:
        if request.path == "/token" and request.method == "POST":
            return self._token(body)
        if headers.get("authorization", "").removeprefix("Bearer ") not in self._tokens:
            return 401, _error(401)
        return self._route(request, raw_path)

    def _next_script(self, method: str, path: str) -> tuple[int, str | None] | None:
        for i, (m, prefix, status, reason) in enumerate(self._scripts):
            if m == method and path.startswith(prefix):
                del self._scripts[i]
                return status, reason
        return None

    def _route(self, request: RecordedRequest, raw_path: str) -> tuple[int, Any]:
        if request.path == "/calendar/v3/freeBusy" and request.method == "POST":
            return self._free_busy(request.body or {})
        match = EVENTS.fullmatch(raw_path)
        if not match:
            return 404, _error(404)
        calendar_id = unquote(match[1])
        if self._calendars is not None and calendar_id not in self._calendars:
            return 404, _error(404)
        events = self._events.setdefault(calendar_id, {})
        if match[2] is None:
            if request.method == "POST":
                return self._insert(events, request)
            return 405, _error(405)
        event_id = unquote(match[2])
        event = events.get(event_id)
        if event is None:
            return 404, _error(404)
        if request.method == "GET":
            return 200, self._read(calendar_id, event)
        if request.method == "PATCH":
            # Like Google, a patch with status "confirmed" brings a deleted (cancelled) event back to life.
            body = copy.deepcopy(request.body or {})
            conference = body.pop("conferenceData", None)
            event.update({k: v for k, v in body.items() if k != "id"})
            _ask_for_conference(event, request, conference)
            event["updated"] = _now()
            return 200, copy.deepcopy(event)
        if request.method == "DELETE":
            if event["status"] == "cancelled":
                return 410, _error(410)
            event["status"] = "cancelled"
            return 204, None
        return 405, _error(405)

    def _token(self, form: dict[str, str]) -> tuple[int, dict]:
        claims = self._verified_claims(form.get("assertion", "")) if form.get("grant_type") == JWT_BEARER else None
        if claims is None or CALENDAR_SCOPE not in claims.get("scope", "").split() \
                or claims.get("aud") != GOOGLE_TOKEN_AUDIENCE:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        self._claims.append(claims)
        token = "ya29.fake-" + uuid.uuid4().hex
        self._tokens.add(token)
        return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}

    def _verified_claims(self, assertion: str) -> dict | None:
        try:
            header, payload, signature = assertion.split(".")
            key = self._keys[json.loads(_unb64(header))["kid"]]
            key.verify(_unb64(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
            return json.loads(_unb64(payload))
        except (ValueError, KeyError, InvalidSignature):
            return None

    def _insert(self, events: dict[str, dict], request: RecordedRequest) -> tuple[int, dict]:
        body = copy.deepcopy(request.body or {})
        event_id = body.get("id") or uuid.uuid4().hex
        if not EVENT_ID.fullmatch(event_id):
            return 400, _error(400, "invalid", "Invalid resource id value.")
        if event_id in events:
            return 409, _error(409, "duplicate", "The requested identifier already exists.")
        if not (body.get("start", {}).get("dateTime") and body.get("end", {}).get("dateTime")):
            return 400, _error(400, "required", "Missing time.")
        conference = body.pop("conferenceData", None)
        now = _now()
        event = {"kind": "calendar#event", "id": event_id, "status": "confirmed", "created": now, "updated": now,
                 "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}", **body}
        _ask_for_conference(event, request, conference)
        events[event_id] = event
        return 200, copy.deepcopy(event)

    def _read(self, calendar_id: str, event: dict) -> dict:
        create = event.get("conferenceData", {}).get("createRequest")
        if create and create["status"]["statusCode"] == "pending":
            key = (calendar_id, event["id"])
            self._meet_reads[key] = self._meet_reads.get(key, 0) + 1
            if self._meet_reads[key] > self.meet_pending_reads:
                create["status"]["statusCode"] = "success"
                event["conferenceData"].update({
                    "conferenceId": MEET_URL.rsplit("/", 1)[1],
                    "conferenceSolution": {"key": {"type": "hangoutsMeet"}, "name": "Google Meet"},
                    "entryPoints": [{"entryPointType": "video", "uri": MEET_URL, "label": MEET_URL[8:]}],
                })
                event["hangoutLink"] = MEET_URL
        return copy.deepcopy(event)

    def _free_busy(self, body: dict) -> tuple[int, dict]:
        try:
            time_min, time_max = _parse(body["timeMin"]), _parse(body["timeMax"])
        except (KeyError, ValueError):
            return 400, _error(400, "required", "Missing timeMin or timeMax.")
        calendars = {}
        for item in body.get("items", []):
            calendar_id = item["id"]
            if self._calendars is not None and calendar_id not in self._calendars:
                calendars[calendar_id] = {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
                continue
            taken = list(self._busy.get(calendar_id, []))
            taken += [(_parse(e["start"]["dateTime"]), _parse(e["end"]["dateTime"]))
                      for e in self._events.get(calendar_id, {}).values() if e["status"] != "cancelled"]
            busy = sorted((s, e) for s, e in taken if s < time_max and e > time_min)
            calendars[calendar_id] = {"busy": [{"start": _format(s), "end": _format(e)} for s, e in busy]}
        return 200, {"kind": "calendar#freeBusy", "timeMin": body["timeMin"], "timeMax": body["timeMax"],
                     "calendars": calendars}


def _ask_for_conference(event: dict, request: RecordedRequest, conference: dict | None) -> None:
    """A Meet conference asked for on insert or patch, created asynchronously (`pending` until read, see _read)."""
    # Google ignores conference data unless the client says it understands version 1.
    if request.query.get("conferenceDataVersion") == "1" and conference and "createRequest" in conference:
        create = conference["createRequest"]
        event["conferenceData"] = {"createRequest": {**create, "status": {"statusCode": "pending"}}}


@functools.cache
def _signing_key() -> rsa.RSAPrivateKey:
    # Making an RSA key takes a noticeable moment; one per test run keeps each test's set-up quick.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _error(status: int, reason: str | None = None, message: str | None = None) -> dict:
    """Google's JSON error body."""
    reason = reason or DEFAULT_REASONS.get(status, "error")
    message = message or HTTPStatus(status).phrase
    domain = "usageLimits" if "Limit" in reason or "quota" in reason else "global"
    return {"error": {"code": status, "message": message,
                      "errors": [{"domain": domain, "reason": reason, "message": message}]}}


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _format(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _handler_for(fake: FakeGoogleCalendar) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            url = urlsplit(self.path)
            status, payload = fake._answer(self.command, url.path, url.query, headers, raw)
            if status == _DROPPED:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            data = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
            self.send_response(status)
            if payload is not None:
                self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
