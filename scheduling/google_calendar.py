"""GoogleCalendarGateway: the CalendarGateway on Google Calendar, through googleapiclient and a service account."""
from __future__ import annotations

import logging
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import google_auth_httplib2
import httplib2
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest

from scheduling.calendar import CalendarError, CalendarEvent

log = logging.getLogger(__name__)
# googleapiclient logs request URLs (retries at WARNING, every call at DEBUG), and those name calendars by
# their owners' email addresses: personal data stays out of the logs, whoever configures logging.
logging.getLogger("googleapiclient").setLevel(logging.ERROR)

SCOPES = ["https://www.googleapis.com/auth/calendar"]
TIMEZONE = "Asia/Tokyo"
RATE_LIMITS = {"rateLimitExceeded", "userRateLimitExceeded"}
# Usage limits that Google also answers with 403: they pass (or not) with time, not with a person's fix.
USAGE_LIMITS = RATE_LIMITS | {"quotaExceeded", "dailyLimitExceeded"}
# Google creates a Meet conference a moment after the event; this is how long insert waits for it.
MEET_POLL_DELAYS = (0.5, 1.0, 2.0)


class GoogleCalendarGateway:
    """Events in the coordinators' Google calendars, made idempotent by ids we choose (booking event ids)."""

    def __init__(self, key_file: str, impersonate: str | None = None, api_url: str | None = None,
                 num_retries: int = 3, timeout: float = 20.0):
        credentials = service_account.Credentials.from_service_account_file(key_file, scopes=SCOPES)
        if impersonate:
            credentials = credentials.with_subject(impersonate)
        self._num_retries = num_retries

        # httplib2.Http is not thread-safe, and web requests, inbox workers and the scheduler share this
        # gateway. A fresh Http per request (the client's documented requestBuilder pattern) costs a TCP
        # handshake per call, nothing at a few calls per booking, and, unlike a service per thread, keeps
        # no state per thread and lets one request builder set a timeout (httplib2's default is none).
        # The credentials are shared, so one access token serves every thread.
        def request_builder(_http, *args, **kwargs) -> HttpRequest:
            authorized = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=timeout))
            return HttpRequest(authorized, *args, **kwargs)

        self._service = build("calendar", "v3", credentials=credentials, requestBuilder=request_builder,
                              static_discovery=True, cache_discovery=False,
                              client_options={"api_endpoint": api_url} if api_url else None)

    def busy(self, calendar_ids: list[str], start: datetime, end: datetime) -> dict[str, list[tuple[datetime, datetime]]]:
        body = {"timeMin": start.isoformat(), "timeMax": end.isoformat(), "items": [{"id": c} for c in calendar_ids]}
        answer = self._execute(self._service.freebusy().query(body=body), "freebusy", f"{len(calendar_ids)} calendars")
        found = answer.get("calendars", {})
        result = {}
        for calendar_id in calendar_ids:
            entry = found.get(calendar_id, {"errors": [{"reason": "missing"}]})
            reasons = sorted(str(e.get("reason")) for e in entry.get("errors", []))
            if reasons:
                # Reading a calendar as free when it could not be read would offer taken slots. notFound means
                # it is not shared with the service account: a setup problem that waiting will not fix.
                log.warning("calendar freebusy: a calendar could not be read: %s", reasons)
                raise CalendarError(f"freebusy could not read a calendar: {reasons}", retryable=reasons != ["notFound"])
            result[calendar_id] = [(_parse(b["start"]), _parse(b["end"])) for b in entry.get("busy", [])]
        return result

    def insert_event(self, calendar_id: str, event_id: str, start: datetime, end: datetime, *,
                     summary: str, description: str, meet: bool) -> CalendarEvent:
        body = {"id": event_id, "summary": summary, "description": description,
                "start": _when(start), "end": _when(end)}
        if meet:
            # The event id doubles as the request id, so a retried insert asks for the same conference.
            body["conferenceData"] = {"createRequest": {"requestId": event_id,
                                                        "conferenceSolutionKey": {"type": "hangoutsMeet"}}}
        events = self._service.events()
        event = self._execute(events.insert(calendarId=calendar_id, body=body, conferenceDataVersion=1),
                              "insert", event_id, tolerate=(409,))
        if event is None:
            # Our ids are derived from the booking (scheduling.bookings.event_id_for), so the event is ours: a retry's,
            # or one deleted since (by hand in the calendar, say). Google keeps a deleted event's id for good, answering
            # 409 to an insert and the event, status "cancelled", to a get: such an event is patched back to life.
            log.info("calendar insert %s: exists already, reading it", event_id)
            event = self._get(calendar_id, event_id)
            if event is None:  # taken, yet not to be read (yet): the reconciler asks again
                raise CalendarError(f"event id {event_id} is taken but cannot be read", retryable=False)
            if event.get("status") == "cancelled":
                event = self._restore(calendar_id, event, {k: v for k, v in body.items() if k != "id"})
        for delay in MEET_POLL_DELAYS:
            if _meet_status(event) != "pending":
                break
            time.sleep(delay)
            event = self._get(calendar_id, event_id) or event
        if meet and _meet_status(event) != "success":
            log.warning("calendar insert %s: Meet conference is %s", event_id, _meet_status(event))
        log.info("calendar insert %s: done", event_id)
        return _event(event)

    def _restore(self, calendar_id: str, event: dict, body: dict) -> dict:
        """A deleted event of ours, confirmed again with the booking's details (a new Meet only if it had none)."""
        if event.get("conferenceData"):
            body.pop("conferenceData", None)
        request = self._service.events().patch(calendarId=calendar_id, eventId=event["id"], conferenceDataVersion=1,
                                               body={**body, "status": "confirmed"})
        restored = self._execute(request, "restore", event["id"])
        log.info("calendar insert %s: the deleted event is restored", event["id"])
        return restored

    def get_event(self, calendar_id: str, event_id: str) -> CalendarEvent | None:
        event = self._get(calendar_id, event_id)
        return None if event is None or event.get("status") == "cancelled" else _event(event)

    def move_event(self, calendar_id: str, event_id: str, start: datetime, end: datetime) -> CalendarEvent:
        request = self._service.events().patch(calendarId=calendar_id, eventId=event_id,
                                               body={"start": _when(start), "end": _when(end)})
        event = self._execute(request, "move", event_id)
        log.info("calendar move %s: done", event_id)
        return _event(event)

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        request = self._service.events().delete(calendarId=calendar_id, eventId=event_id)
        self._execute(request, "delete", event_id, tolerate=(404, 410))
        log.info("calendar delete %s: done", event_id)

    def _get(self, calendar_id: str, event_id: str) -> dict | None:
        request = self._service.events().get(calendarId=calendar_id, eventId=event_id)
        return self._execute(request, "get", event_id, tolerate=(404, 410))

    def _execute(self, request: HttpRequest, operation: str, ref: str, *, tolerate: tuple[int, ...] = ()) -> dict | None:
        """The answer, retried by the client as it sees fit; None for a status in `tolerate`.

        Logs carry the operation, our ids and status codes only: summaries and descriptions hold the
        consultation's personal data.
        """
        try:
            return request.execute(num_retries=self._num_retries)
        except HttpError as exc:
            status = exc.status_code
            if status in tolerate:
                log.info("calendar %s %s: HTTP %s", operation, ref, status)
                return None
            reason = _reason(exc)
            retryable = status >= 500 or status in (408, 429) or reason in RATE_LIMITS
            refused = status in (400, 404) or (status == 403 and reason not in USAGE_LIMITS)
            log.warning("calendar %s %s failed: HTTP %s %s", operation, ref, status, reason)
            raise CalendarError(f"calendar {operation} failed: HTTP {status} {reason}", retryable=retryable,
                                refusal=f"{status} {reason}".strip()[:40] if refused else None) from exc
        except RefreshError as exc:
            # No access token: a key or delegation problem (not retryable), or Google's token service hiccuped.
            retryable = bool(getattr(exc, "retryable", False))
            log.warning("calendar %s %s failed: no access token (retryable=%s)", operation, ref, retryable)
            raise CalendarError(f"calendar {operation} failed: no access token", retryable=retryable) from exc
        except (TransportError, OSError, httplib2.HttpLib2Error) as exc:
            log.warning("calendar %s %s failed: %s", operation, ref, type(exc).__name__)
            raise CalendarError(f"calendar {operation} failed: {type(exc).__name__}", retryable=True) from exc


def _reason(exc: HttpError) -> str:
    details = exc.error_details if isinstance(exc.error_details, list) else []
    return next((str(d["reason"]) for d in details if isinstance(d, dict) and "reason" in d), "")


def _when(moment: datetime) -> dict:
    return {"dateTime": moment.astimezone(ZoneInfo(TIMEZONE)).isoformat(), "timeZone": TIMEZONE}


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _meet_status(event: dict) -> str | None:
    return event.get("conferenceData", {}).get("createRequest", {}).get("status", {}).get("statusCode")


def _event(event: dict) -> CalendarEvent:
    return CalendarEvent(id=event["id"], start=_parse(event["start"]["dateTime"]),
                         end=_parse(event["end"]["dateTime"]), meet_url=event.get("hangoutLink"))
