"""FakeLineApi: a real HTTP server on 127.0.0.1 that answers the LINE Messaging API calls dxdesk makes."""

from __future__ import annotations

import json
import random
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.http import QuietServer

DEFAULT_DISPLAY_NAME = "LINEユーザー"
MAX_IMAGE_BYTES = 1024 * 1024
# LINE: a reply token can be used once, within about a minute of the event.
REPLY_TOKEN_LIFETIME = timedelta(seconds=60)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    """Header names are lower-cased."""
    body: Any
    """Parsed JSON, raw bytes for other content types, None when empty."""
    query: dict[str, str] = field(default_factory=dict)
    """The query string's parameters (the last of each name)."""


@dataclass(frozen=True)
class Delivery:
    """Messages LINE showed a user, and by what: a reply (with its token) or a push or multicast (with its retry key)."""

    to: str | None
    messages: list[dict]
    via: str
    """"reply", "push" or "multicast"."""
    key: str | None
    """The reply token of a reply, the X-Line-Retry-Key of a push or multicast (None when sent without one)."""


@dataclass(frozen=True)
class _Scripted:
    status: int
    body: dict | None
    delay: float


@dataclass(frozen=True)
class Fault:
    """What goes wrong with one request, step by step: wait, carry it out (`take`: the user sees it), wait, reset.

    A wait lasts until `FakeLineApi.release()` or `FakeLineApi.wait_seconds`. Without `take` and `reset` the request
    is answered with `status` and not carried out.
    """

    wait_before: bool = False
    take: bool = False
    wait_after: bool = False
    reset: bool = False
    status: int = 0
    body: dict | None = None
    headers: dict[str, str] | None = None

    @classmethod
    def answer(cls, status: int, retry_after: int | None = None) -> Fault:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return cls(status=status, headers=headers)


HOLD = Fault(wait_before=True, take=True)  # LINE is slow, then carries it out and answers
LOST = Fault(take=True, wait_after=True)  # carried out, the answer comes too late (the client has timed out)
STALL = Fault(wait_before=True, reset=True)  # hangs, then the connection drops: never carried out
RESET_BEFORE = Fault(reset=True)  # the connection drops before LINE takes the request
RESET_AFTER = Fault(take=True, reset=True)  # LINE takes it, then the connection drops before the answer
_NORMAL = Fault(take=True)


def random_faults(seed: int, rate: float, paths: set[str]) -> Callable[[RecordedRequest, str | None], Fault | None]:
    """For `FakeLineApi.faults`: a fault on `rate` of the requests on `paths`, drawn from every kind.

    Each recipient draws from a generator of their own, so the faults do not depend on how users' requests interleave.
    """
    kinds = [Fault.answer(500), Fault.answer(503), Fault.answer(429), Fault.answer(429, retry_after=3),
             STALL, LOST, RESET_BEFORE, RESET_AFTER]
    generators: dict[str | None, random.Random] = {}

    def decide(request: RecordedRequest, recipient: str | None) -> Fault | None:
        if request.path not in paths:
            return None
        rng = generators.setdefault(recipient, random.Random(f"{seed}:{recipient}"))
        return rng.choice(kinds) if rng.random() < rate else None

    return decide


_ROUTES = [
    ("POST", r"/v2/bot/message/reply", "_reply"),
    ("POST", r"/v2/bot/message/push", "_push"),
    ("POST", r"/v2/bot/message/multicast", "_multicast"),
    ("GET", r"/v2/bot/message/quota", "_quota"),
    ("GET", r"/v2/bot/message/quota/consumption", "_quota_consumption"),
    ("POST", r"/v2/bot/chat/loading/start", "_start_loading"),
    ("GET", r"/v2/bot/profile/(?P<user_id>[^/]+)", "_profile"),
    ("POST", r"/v2/bot/richmenu", "_create_rich_menu"),
    ("GET", r"/v2/bot/richmenu/list", "_list_rich_menus"),
    ("DELETE", r"/v2/bot/richmenu/(?P<menu_id>[^/]+)", "_delete_rich_menu"),
    ("POST", r"/v2/bot/richmenu/(?P<menu_id>[^/]+)/content", "_upload_rich_menu_image"),
    ("POST", r"/v2/bot/user/all/richmenu/(?P<menu_id>[^/]+)", "_set_default_rich_menu"),
    ("GET", r"/v2/bot/user/all/richmenu", "_default_rich_menu"),
    ("GET", r"/oauth2/v2.1/verify", "_verify_access_token"),
    ("GET", r"/v2/profile", "_login_profile"),
]
# LINE Login's token check takes the token in the query, not as a bearer token.
_NO_BEARER = {"/oauth2/v2.1/verify"}


class FakeLineApi:
    """`with FakeLineApi() as fake:` serves at `fake.base_url` until the block ends.

    Like LINE, it refuses requests without a bearer token, accepts a reply token once and within its lifetime
    (on `clock`, the system clock if none), answers 409 to a repeat of an accepted `X-Line-Retry-Key` without
    delivering again, and refuses messages whose URI actions are not http, https, line or tel (a relative
    `/privacy` included). `faults` may choose a `Fault` for each request and its recipient.
    """

    def __init__(self, clock=None) -> None:
        self._now = clock.now if clock else lambda: datetime.now(UTC)
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.faults: Callable[[RecordedRequest, str | None], Fault | None] | None = None
        self.wait_seconds = 60.0
        self._requests: list[RecordedRequest] = []
        self._scripts: dict[str, list[_Scripted]] = {}
        self._accepted_keys: set[str] = set()
        self._used_reply_tokens: set[str] = set()
        self._reply_token_owners: dict[str, tuple[str, datetime]] = {}
        self._deliveries: list[Delivery] = []
        self._waiting: dict[str, int] = {}
        self.profiles: dict[str, str] = {}
        # The month's message quota (None: no limit, as LINE's type "none") and what push and multicast used of it.
        self.quota: int | None = None
        self.quota_used = 0
        self.rich_menus: dict[str, dict] = {}
        self.rich_menu_images: dict[str, tuple[str, bytes]] = {}
        self.default_rich_menu_id: str | None = None
        self._liff_tokens: dict[str, tuple[str, str, datetime]] = {}  # token -> (user id, channel id, expiry)
        self._server = QuietServer(("127.0.0.1", 0), _handler_for(self))
        # A short poll keeps shutdown, and so each test's teardown, quick.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeLineApi:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def script(self, path: str, statuses: list[int | tuple[int, dict]], *, delay: float = 0.0) -> None:
        """The next responses on `path` get these statuses in order, each after `delay` seconds; then as usual.

        A 2xx entry means the usual answer (so a repeated retry key still gets 409). An entry may be
        `(status, body)` to choose LINE's error body, e.g. `(400, {"message": "Invalid reply token"})`.
        """
        entries = []
        for entry in statuses:
            status, body = entry if isinstance(entry, tuple) else (entry, None)
            entries.append(_Scripted(status, body, delay))
        with self._lock:
            self._scripts.setdefault(path, []).extend(entries)

    def issue_reply_token(self, to: str) -> str:
        """A fresh reply token, as in a webhook event from `to` now, so `delivered(to=...)` sees replies too."""
        token = uuid.uuid4().hex
        with self._lock:
            self._reply_token_owners[token] = (to, self._now())
        return token

    def issue_liff_token(self, user_id: str, channel_id: str, expires_in: int = 3600) -> str:
        """A LIFF access token of `user_id`, issued by the LINE Login channel `channel_id`, as liff.getAccessToken() gives."""
        token = f"liff-{uuid.uuid4().hex}"
        with self._lock:
            self._liff_tokens[token] = (user_id, channel_id, self._now() + timedelta(seconds=expires_in))
        return token

    def release(self) -> None:
        """End every wait of a `Fault`, now and from now on."""
        self._released.set()

    def waiting(self, path: str) -> int:
        """How many requests on `path` are in a `Fault`'s wait before being carried out."""
        with self._lock:
            return self._waiting.get(path, 0)

    def requests(self, path: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def delivered(self, to: str | None = None) -> list[list[dict]]:
        """The message lists LINE would have shown, oldest first (reply, push and multicast)."""
        return [d.messages for d in self.deliveries(to)]

    def deliveries(self, to: str | None = None) -> list[Delivery]:
        """What LINE would have shown, oldest first, each with how it came (reply token or retry key)."""
        with self._lock:
            return [d for d in self._deliveries if to is None or d.to == to]

    def issued_reply_tokens(self) -> dict[str, str]:
        """Every reply token handed out by `issue_reply_token`, with the user it was issued for."""
        with self._lock:
            return {token: owner for token, (owner, _) in self._reply_token_owners.items()}

    def _arrive(self, method: str, path: str, headers: dict[str, str],
                raw: bytes, query: dict[str, str] | None = None) -> tuple[RecordedRequest, Fault, float]:
        """Record the request and choose what happens to it (the script first, then `faults`)."""
        body: Any = raw or None
        if raw and "json" in headers.get("content-type", ""):
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        request = RecordedRequest(method, path, headers, body, dict(query or {}))
        with self._lock:
            self._requests.append(request)
            queue = self._scripts.get(path)
            scripted = queue.pop(0) if queue else None
        if path not in _NO_BEARER and not headers.get("authorization", "").startswith("Bearer "):
            return request, Fault(status=401, body={"message": "Authentication failed"}), 0.0
        if scripted is not None:
            if 200 <= scripted.status < 300:
                return request, _NORMAL, scripted.delay
            return request, Fault(status=scripted.status, body=scripted.body), scripted.delay
        return request, (self.faults and self.faults(request, self._recipient(request))) or _NORMAL, 0.0

    def _recipient(self, request: RecordedRequest) -> str | None:
        body = request.body if isinstance(request.body, dict) else {}
        if request.path == "/v2/bot/message/reply":
            with self._lock:
                return self._reply_token_owners.get(body.get("replyToken"), (None, None))[0]
        return body.get("to") if isinstance(body.get("to"), str) else None

    def _wait(self, path: str) -> None:
        with self._lock:
            self._waiting[path] = self._waiting.get(path, 0) + 1
        self._released.wait(self.wait_seconds)
        with self._lock:
            self._waiting[path] -= 1

    def _take(self, request: RecordedRequest) -> tuple[int, dict]:
        with self._lock:
            return self._route(request)

    def _route(self, request: RecordedRequest) -> tuple[int, dict]:
        for method, pattern, name in _ROUTES:
            match = re.fullmatch(pattern, request.path)
            if match and method == request.method:
                return getattr(self, name)(request, **match.groupdict())
        return 404, {"message": "Not found"}

    def _reply(self, request: RecordedRequest) -> tuple[int, dict]:
        token = (request.body or {}).get("replyToken")
        owner, issued = self._reply_token_owners.get(token, (None, None))
        expired = issued is not None and self._now() - issued > REPLY_TOKEN_LIFETIME
        if not token or token in self._used_reply_tokens or expired:
            return 400, {"message": "Invalid reply token"}
        invalid = _invalid_messages(request.body)
        if invalid:
            return invalid
        self._used_reply_tokens.add(token)
        self._deliveries.append(Delivery(owner, request.body["messages"], "reply", token))
        return 200, _sent(request.body["messages"])

    def _push(self, request: RecordedRequest) -> tuple[int, dict]:
        to = (request.body or {}).get("to")
        invalid = _invalid_messages(request.body) or (None if isinstance(to, str) and to else _bad_property("to"))
        return invalid or self._accept_once(request, [to])

    def _multicast(self, request: RecordedRequest) -> tuple[int, dict]:
        to = (request.body or {}).get("to")
        valid_to = isinstance(to, list) and 1 <= len(to) <= 500
        invalid = _invalid_messages(request.body) or (None if valid_to else _bad_property("to"))
        return invalid or self._accept_once(request, to)

    def _accept_once(self, request: RecordedRequest, recipients: list[str]) -> tuple[int, dict]:
        key = request.headers.get("x-line-retry-key")
        if key is not None:
            if not _is_uuid(key):
                return 400, {"message": "The value for the 'X-Line-Retry-Key' header is invalid"}
            if key in self._accepted_keys:
                return 409, {"message": "The retry key is already accepted"}
            self._accepted_keys.add(key)
        # LINE counts a push or a multicast once per recipient against the month's quota.
        if self.quota is not None and self.quota_used + len(recipients) > self.quota:
            return 429, {"message": "You have reached your monthly limit."}
        self.quota_used += len(recipients)
        via = request.path.rsplit("/", 1)[-1]
        for recipient in recipients:
            self._deliveries.append(Delivery(recipient, request.body["messages"], via, key))
        return 200, _sent(request.body["messages"])

    def _quota(self, request: RecordedRequest) -> tuple[int, dict]:
        return 200, {"type": "none"} if self.quota is None else {"type": "limited", "value": self.quota}

    def _quota_consumption(self, request: RecordedRequest) -> tuple[int, dict]:
        return 200, {"totalUsage": self.quota_used}

    def _start_loading(self, request: RecordedRequest) -> tuple[int, dict]:
        body = request.body or {}
        seconds = body.get("loadingSeconds", 20)
        if not isinstance(body.get("chatId"), str) or seconds not in range(5, 61, 5):
            return 400, {"message": "The request body has 1 error(s)"}
        return 202, {}

    def _profile(self, request: RecordedRequest, user_id: str) -> tuple[int, dict]:
        name = self.profiles.get(user_id, DEFAULT_DISPLAY_NAME)
        return 200, {"userId": user_id, "displayName": name, "language": "ja"}

    def _liff_token(self, token: str | None) -> tuple[str, str, int] | None:
        """(user id, channel id, seconds left) of a token still valid, as LINE Login sees it."""
        user_id, channel_id, expires = self._liff_tokens.get(token or "", (None, None, None))
        left = int((expires - self._now()).total_seconds()) if expires else 0
        return (user_id, channel_id, left) if left > 0 else None

    def _verify_access_token(self, request: RecordedRequest) -> tuple[int, dict]:
        found = self._liff_token(request.query.get("access_token"))
        if found is None:
            return 400, {"error": "invalid_request", "error_description": "access token expired"}
        return 200, {"scope": "profile openid", "client_id": found[1], "expires_in": found[2]}

    def _login_profile(self, request: RecordedRequest) -> tuple[int, dict]:
        found = self._liff_token(request.headers.get("authorization", "").removeprefix("Bearer "))
        if found is None:
            return 401, {"message": "invalid token"}
        return 200, {"userId": found[0], "displayName": self.profiles.get(found[0], DEFAULT_DISPLAY_NAME)}

    def _create_rich_menu(self, request: RecordedRequest) -> tuple[int, dict]:
        menu = request.body if isinstance(request.body, dict) else {}
        size = menu.get("size", {})
        areas = menu.get("areas", [])
        fits = all(
            a["bounds"]["x"] + a["bounds"]["width"] <= size.get("width", 0)
            and a["bounds"]["y"] + a["bounds"]["height"] <= size.get("height", 0)
            for a in areas
        )
        if not (800 <= size.get("width", 0) <= 2500 and size.get("height", 0) >= 250 and 1 <= len(areas) <= 20
                and fits and len(menu.get("chatBarText", "")) <= 14 and menu.get("name")):
            return 400, {"message": "A message (richmenu) in the request body is invalid"}
        menu_id = f"richmenu-{uuid.uuid4().hex}"
        self.rich_menus[menu_id] = {"richMenuId": menu_id, **menu}
        return 200, {"richMenuId": menu_id}

    def _list_rich_menus(self, request: RecordedRequest) -> tuple[int, dict]:
        return 200, {"richmenus": list(self.rich_menus.values())}

    def _delete_rich_menu(self, request: RecordedRequest, menu_id: str) -> tuple[int, dict]:
        if self.rich_menus.pop(menu_id, None) is None:
            return 404, {"message": "Not found"}
        self.rich_menu_images.pop(menu_id, None)
        if self.default_rich_menu_id == menu_id:
            self.default_rich_menu_id = None
        return 200, {}

    def _upload_rich_menu_image(self, request: RecordedRequest, menu_id: str) -> tuple[int, dict]:
        content_type = request.headers.get("content-type", "")
        if menu_id not in self.rich_menus:
            return 404, {"message": "Not found"}
        if menu_id in self.rich_menu_images:
            return 400, {"message": "An image has already been uploaded to the richmenu"}
        if content_type not in ("image/png", "image/jpeg") or not isinstance(request.body, bytes):
            return 415, {"message": "Unsupported Media Type"}
        if len(request.body) > MAX_IMAGE_BYTES:
            return 413, {"message": "Request Entity Too Large"}
        self.rich_menu_images[menu_id] = (content_type, request.body)
        return 200, {}

    def _set_default_rich_menu(self, request: RecordedRequest, menu_id: str) -> tuple[int, dict]:
        if menu_id not in self.rich_menus:
            return 404, {"message": "Not found"}
        if menu_id not in self.rich_menu_images:
            return 400, {"message": "must upload richmenu image before applying it to user"}
        self.default_rich_menu_id = menu_id
        return 200, {}

    def _default_rich_menu(self, request: RecordedRequest) -> tuple[int, dict]:
        if self.default_rich_menu_id is None:
            return 404, {"message": "no default richmenu"}
        return 200, {"richMenuId": self.default_rich_menu_id}


def _invalid_messages(body: Any) -> tuple[int, dict] | None:
    messages = body.get("messages") if isinstance(body, dict) else None
    if not (isinstance(messages, list) and 1 <= len(messages) <= 5 and all("type" in m for m in messages)):
        return _bad_property("messages")
    bad_uri = _first_bad_uri(messages, "messages")
    return _bad_property(bad_uri, "invalid uri scheme") if bad_uri else None


def _first_bad_uri(node: Any, where: str) -> str | None:
    """Where a URI action (or an imagemap's linkUri, an altUri) is not http, https, line or tel: LINE refuses those."""
    if isinstance(node, list):
        return next((bad for n, item in enumerate(node) if (bad := _first_bad_uri(item, f"{where}[{n}]"))), None)
    if not isinstance(node, dict):
        return None
    uris = [("uri", node.get("uri"))] if node.get("type") == "uri" else []
    uris += [("linkUri", node.get("linkUri"))] if "linkUri" in node else []
    if isinstance(node.get("altUri"), dict):
        uris += [(f"altUri.{k}", v) for k, v in node["altUri"].items()]
    for name, uri in uris:
        if not isinstance(uri, str) or urlsplit(uri).scheme not in ("http", "https", "line", "tel"):
            return f"{where}.{name}"
    return next((bad for key, value in node.items() if (bad := _first_bad_uri(value, f"{where}.{key}"))), None)


def _bad_property(name: str, message: str = "invalid") -> tuple[int, dict]:
    return 400, {"message": "The request body has 1 error(s)", "details": [{"message": message, "property": name}]}


def _sent(messages: list[dict]) -> dict:
    return {"sentMessages": [{"id": str(uuid.uuid4().int)[:18], "quoteToken": uuid.uuid4().hex} for _ in messages]}


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def _handler_for(fake: FakeLineApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK wait

        def _serve(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            url = urlsplit(self.path)
            request, fault, delay = fake._arrive(self.command, url.path, headers, raw, dict(parse_qsl(url.query)))
            if fault.wait_before:
                fake._wait(request.path)
            if fault.take:
                status, payload = fake._take(request)
            if fault.wait_after:
                fake._released.wait(fake.wait_seconds)
            if fault.reset:
                # No answer at all: linger 0 makes closing the socket send a TCP reset.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                return
            if not fault.take:
                status, payload = fault.status, fault.body or {"message": HTTPStatus(fault.status).phrase}
            time.sleep(delay)
            data = json.dumps(payload, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Line-Request-Id", str(uuid.uuid4()))
            for name, value in (fault.headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
