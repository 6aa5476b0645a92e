"""LineMessenger: every call dxdesk makes to the LINE Messaging API, with LINE's retry rules."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

import urllib3
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    Configuration,
    Message,
    MessagingApi,
    MessagingApiBlob,
    PushMessageRequest,
    RichMenuRequest,
    ShowLoadingAnimationRequest,
)

from storage.outbound import SendResult

LINE_API_BASE_URL = "https://api.line.me"
MULTICAST_LIMIT = 500
RATE_LIMITED_RETRY_AFTER = 60.0
# A 429 also means the month's message quota is used up; only a new month or a plan change helps.
QUOTA_RETRY_AFTER = 3600.0

log = logging.getLogger(__name__)


class LineApiError(RuntimeError):
    """A rich menu call LINE refused or that could not reach LINE (status 0)."""

    def __init__(self, operation: str, status: int) -> None:
        super().__init__(f"LINE API {operation} failed (status {status})")
        self.status = status


class LineMessenger:
    """Built once per app: one connection pool, shared by every thread that sends."""

    def __init__(
        self,
        access_token: str,
        base_url: str = LINE_API_BASE_URL,
        timeout: float = 10,
        max_retries: int = 3,
        backoff: float = 0.5,
        connect_timeout: float = 3.05,
    ) -> None:
        base_url = base_url.rstrip("/")
        # With no host the SDK sends blob calls (the rich menu image) to api-data.line.me, as LINE
        # requires; any other base URL (a local fake) receives every call.
        host = None if base_url == LINE_API_BASE_URL else base_url
        configuration = Configuration(access_token=access_token, host=host)
        # urllib3 repeats the request as it was, headers included, so a retry carries the same retry key.
        configuration.retries = urllib3.Retry(
            total=max_retries,
            status_forcelist=[500, 502, 503, 504],
            allowed_methods=None,
            backoff_factor=backoff,
            raise_on_status=False,
            # urllib3 would otherwise sleep out a 429's Retry-After inside the call, holding a sender thread;
            # the retry is scheduled instead (see _result_of).
            respect_retry_after_header=False,
        )
        client = ApiClient(configuration)
        self._api = MessagingApi(client)
        self._blob = MessagingApiBlob(client)
        # A reply has no retry key: repeated blindly after a lost answer it would meet "Invalid reply token" and
        # hide whether the first one was shown. So replies are sent once per call and Delivery decides what next.
        reply_configuration = Configuration(access_token=access_token, host=host)
        reply_configuration.retries = urllib3.Retry(0, raise_on_status=False)
        self._reply_api = MessagingApi(ApiClient(reply_configuration))
        # Bounded waits for a connection and for each read of LINE's answer: a hung call ends, and its
        # outcome is then judged like any other.
        self._timeout = (connect_timeout, timeout)

    def reply(self, reply_token: str, messages: list[dict]) -> SendResult:
        """"unknown": LINE may have shown it (no answer, or a 5xx). Error "reply_token": the token is used or expired."""
        body = _body(messages)
        if body is None:
            return _invalid("reply")
        return self._send("reply", self._reply_api, "/v2/bot/message/reply", {"replyToken": reply_token, **body})

    def push(self, to: str, messages: list[dict], retry_key: str) -> SendResult:
        """`retry_key` is a UUID kept with the message: pass the same one on every later attempt."""
        body = _body(messages)
        if body is None or not isinstance(to, str):
            return _invalid("push")
        return self._send("push", self._api, "/v2/bot/message/push", {"to": to, **body}, retry_key)

    def multicast(self, to: list[str], messages: list[dict], retry_key: str) -> SendResult:
        if len(to) > MULTICAST_LIMIT:
            return SendResult("failed", error="too_many_recipients")
        body = _body(messages)
        if body is None or not to or not all(isinstance(user, str) for user in to):
            return _invalid("multicast")
        return self._send("multicast", self._api, "/v2/bot/message/multicast", {"to": to, **body}, retry_key)

    def message_quota(self) -> tuple[int | None, int]:
        """(the month's limit, or None when LINE sets none; messages used so far), counted per recipient by LINE.

        Raises LineApiError when LINE cannot be asked: sending to many without knowing the quota is refused.
        """
        quota = self._call("quota", lambda: self._api.get_message_quota(_request_timeout=self._timeout))
        used = self._call("quota consumption",
                          lambda: self._api.get_message_quota_consumption(_request_timeout=self._timeout))
        limit = quota.value if quota.type == "limited" else None
        return limit, used.total_usage

    def show_loading(self, user_id: str, seconds: int = 20) -> None:
        """Best effort: the animation is a courtesy, so a failure is logged and forgotten."""
        # LINE accepts 5 to 60 seconds in steps of 5.
        seconds = min(60, max(5, -(-seconds // 5) * 5))
        try:
            request = ShowLoadingAnimationRequest(chatId=user_id, loadingSeconds=seconds)
            self._api.show_loading_animation(request, _request_timeout=self._timeout)
        except (ApiException, urllib3.exceptions.HTTPError, ValueError) as exc:
            log.warning("LINE loading animation failed: status=%s", _status(exc))

    def profile_name(self, user_id: str) -> str | None:
        """The display name, or None when LINE will not say (not a friend, blocked, unreachable)."""
        try:
            return self._api.get_profile(user_id, _request_timeout=self._timeout).display_name
        except (ApiException, urllib3.exceptions.HTTPError, ValueError) as exc:
            log.warning("LINE profile lookup failed: status=%s", _status(exc))
            return None

    def rich_menus(self) -> list[dict]:
        response = self._call("richmenu list", lambda: self._api.get_rich_menu_list(_request_timeout=self._timeout))
        return [menu.to_dict() for menu in response.richmenus]

    def create_rich_menu(self, menu: dict) -> str:
        request = RichMenuRequest.from_dict(menu)
        response = self._call(
            "richmenu create", lambda: self._api.create_rich_menu(request, _request_timeout=self._timeout)
        )
        return response.rich_menu_id

    def upload_rich_menu_image(self, rich_menu_id: str, png: bytes) -> None:
        self._call(
            "richmenu image",
            lambda: self._blob.set_rich_menu_image(
                rich_menu_id, png, _headers={"Content-Type": "image/png"}, _request_timeout=self._timeout
            ),
        )

    def set_default_rich_menu(self, rich_menu_id: str) -> None:
        self._call(
            "richmenu default", lambda: self._api.set_default_rich_menu(rich_menu_id, _request_timeout=self._timeout)
        )

    def delete_rich_menu(self, rich_menu_id: str) -> None:
        self._call(
            "richmenu delete", lambda: self._api.delete_rich_menu(rich_menu_id, _request_timeout=self._timeout)
        )

    def _send(self, operation: str, api: MessagingApi, path: str, body: dict,
              retry_key: str | None = None) -> SendResult:
        # The body goes as the SDK would send it (see _body), through the SDK's own client: its authorisation,
        # User-Agent, urllib3 retries and ApiException for LINE's refusals. The SDK's reply_message(ReplyMessageRequest)
        # would turn the checked messages into models and back to dicts on every call, a millisecond and more.
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if retry_key is not None:
            headers["X-Line-Retry-Key"] = retry_key
        try:
            api.api_client.call_api(path, "POST", header_params=headers, body=body, response_types_map={},
                                    auth_settings=["Bearer"], _return_http_data_only=True,
                                    _request_timeout=self._timeout, _host=api.line_base_path)
        except ApiException as exc:
            result = _result_of(operation, exc, keyed=retry_key is not None)
            log.log(
                logging.INFO if result.status == "sent" else logging.WARNING,
                "LINE %s answered %s (%s): retry_key=%s request_id=%s",
                operation, exc.status, result.error or "accepted before", retry_key, _request_id(exc),
            )
            return result
        except urllib3.exceptions.HTTPError as exc:
            # After the last retry urllib3 raises MaxRetryError; its reason says what went wrong.
            reason = getattr(exc, "reason", exc)
            error = "timeout" if isinstance(reason, urllib3.exceptions.TimeoutError) else "network"
            # Without a connection LINE has surely not seen the request; after one it may have.
            unreached = isinstance(reason, (NewConnectionError, ConnectTimeoutError))
            status = "retry" if retry_key is not None or unreached else "unknown"
            log.warning("LINE %s: no answer (%s, %s): retry_key=%s", operation, error, status, retry_key)
            return SendResult(status, error=error)
        return SendResult("sent")

    def _call(self, operation: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            raise LineApiError(operation, _status(exc)) from exc


def _body(messages: list[dict]) -> dict | None:
    """{"messages": [...]} as line-bot-sdk would send these messages, or None when its models refuse them (an unknown
    type, a missing field, more than five). The same messages (a menu, a question's choices) are checked once."""
    try:
        key = json.dumps(messages, ensure_ascii=False)
    except (TypeError, ValueError):
        return None
    return _checked(key)


@functools.lru_cache(maxsize=512)
def _checked(messages_json: str) -> dict | None:
    try:
        request = PushMessageRequest(to="-", messages=[Message.from_dict(m) for m in json.loads(messages_json)])
    except (ValueError, TypeError, AttributeError):
        return None
    return {"messages": request.to_dict()["messages"]}


def _invalid(operation: str) -> SendResult:
    log.warning("LINE %s not sent: the messages do not match the Messaging API format", operation)
    return SendResult("failed", error="invalid_message")


def _result_of(operation: str, exc: ApiException, keyed: bool) -> SendResult:
    status = exc.status
    body = exc.body if isinstance(exc.body, str) else ""
    if status == 409 and keyed:
        return SendResult("sent")
    if status == 429:
        if "monthly limit" in body.lower():
            return SendResult("retry", error="quota", retry_after=QUOTA_RETRY_AFTER)
        return SendResult("retry", error="rate_limited", retry_after=_retry_after(exc) or RATE_LIMITED_RETRY_AFTER)
    if status == 400 and operation == "reply" and "reply token" in body.lower():
        return SendResult("failed", error="reply_token")
    if status == 0:
        return SendResult("retry", error="network")
    if status >= 500:
        # LINE may have carried out a request it answered with 5xx; only a retry key makes a repeat safe.
        return SendResult("retry" if keyed else "unknown", error=f"http_{status}")
    return SendResult("failed", error=f"http_{status}")


def _retry_after(exc: ApiException) -> float | None:
    value = exc.headers.get("retry-after") if exc.headers else None
    return float(value) if value and value.strip().isdecimal() and value.isascii() else None


def _status(exc: Exception) -> int:
    return exc.status if isinstance(exc, ApiException) else 0


def _request_id(exc: ApiException) -> str | None:
    return exc.headers.get("x-line-request-id") if exc.headers else None
