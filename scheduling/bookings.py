"""Bookings: offer slots, reserve one under a lock, confirm it in the calendar, change, cancel, and reconcile."""
from __future__ import annotations

import hashlib
import logging
import threading
import time as _time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Callable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import booking as texts
from bot.config import Config
from bot.conversation import BookingSummary, OfferedSlot
from bot.jatime import TOKYO, to_tokyo
from storage.outbound import queue_messages
from scheduling import metrics, outbox, popup
from scheduling.mailer import email_message, recipients_of
from scheduling.availability import Slot, free_slots, is_bookable, offer, week_start
from scheduling.calendar import CalendarError, CalendarGateway
from storage import cases
from storage.db import Database
from storage.logids import user_ref
from storage.models import ACTIVE_BOOKING, Booking, Consultation, LineUser, PopupDay

log = logging.getLogger(__name__)

BUSY_TTL = 60.0  # seconds a free/busy answer from the calendar is reused
RECONCILE_AFTER = timedelta(minutes=3)


def event_id_for(booking: Booking) -> str:
    """The calendar event's id, derived from the booking so a retried insert finds the same event (base32hex)."""
    return f"kgdesk{booking.id:08d}{int(booking.created_at.timestamp()):x}"


def is_simulated(user_id: str | None) -> bool:
    """A simulator user (sim-...): their bookings are kept apart from real ones, in the calendar and in the index."""
    return bool(user_id) and user_id.startswith("sim-")


def _seen_by(simulated: bool) -> tuple:
    """The bookings that stand in a user's way: real users see only real ones, simulated users all of them."""
    return () if simulated else (Booking.simulated.is_(False),)


def _lock_key(coordinator: str) -> int:
    return int.from_bytes(hashlib.sha256(coordinator.encode()).digest()[:4], "big", signed=True)


@dataclass
class Reserved:
    booking: Booking
    replaced: Booking | None  # cancelled for this one (a change of date to another coordinator)
    notices: list[int]  # messages queued for coordinators, to send after the commit
    changed: bool = False  # a change of date rather than a new booking
    previous: tuple[datetime, datetime] | None = None  # the time it had before a change of date


Notify = Callable[[Session, str, Booking, datetime], list[int]]


class BookingService:
    def __init__(self, db: Database, config: Config, calendar: CalendarGateway, clock, delivery,
                 notify: Notify | None = None):
        self.db, self.config, self.calendar, self.clock, self.delivery = db, config, calendar, clock, delivery
        self.notify = notify  # queues the coordinator's notice of a new, changed or cancelled booking
        self._cache: dict[tuple[date, date], tuple[float, dict]] = {}
        self._cache_lock = threading.Lock()

    # --- what is free ------------------------------------------------------------------------------------

    def calendar_busy(self, start: datetime, end: datetime) -> dict[str, list[tuple[datetime, datetime]]]:
        """Busy times from the coordinators' calendars, by coordinator id, cached briefly per day window."""
        key = (to_tokyo(start).date(), to_tokyo(end).date())
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit and hit[0] > _time.monotonic():
                return hit[1]
        ids = {c.calendar_id: c.id for c in self.config.coordinators if c.calendar_id}
        window_start = datetime.combine(key[0], datetime.min.time(), TOKYO)
        window_end = datetime.combine(key[1] + timedelta(days=1), datetime.min.time(), TOKYO)
        try:
            by_calendar = self.calendar.busy(list(ids), window_start, window_end) if ids else {}
        except CalendarError as exc:
            log.warning("calendar free/busy unavailable (retryable=%s); offering from our own bookings", exc.retryable)
            return hit[1] if hit else {}
        busy = {ids[cal]: intervals for cal, intervals in by_calendar.items() if cal in ids}
        with self._cache_lock:
            self._cache[key] = (_time.monotonic() + BUSY_TTL, busy)
        return busy

    def busy(self, s: Session, start: datetime, end: datetime, *,
             simulated: bool = False) -> dict[str, list[tuple[datetime, datetime]]]:
        """The calendar's busy times merged with the program's own active bookings.

        Real users never see simulated bookings; simulated users see both, so a demo shows real availability.
        """
        merged = {k: list(v) for k, v in self.calendar_busy(start, end).items()}
        rows = s.execute(select(Booking.coordinator_id, Booking.start, Booking.end).where(
            Booking.status.in_(ACTIVE_BOOKING), Booking.start < end, Booking.end > start, *_seen_by(simulated)))
        for coordinator, b_start, b_end in rows:
            merged.setdefault(coordinator, []).append((b_start, b_end))
        days = s.execute(select(PopupDay.coordinator_id, PopupDay.start_at, PopupDay.end_at).where(
            PopupDay.status == "open", PopupDay.coordinator_id.is_not(None), PopupDay.start_at < end, PopupDay.end_at > start))
        for coordinator, d_start, d_end in days:  # a coordinator at a pop-up day is not free for other consultations
            merged.setdefault(coordinator, []).append((d_start, d_end))
        return merged

    def free(self, s: Session, *, start: datetime, end: datetime, now: datetime | None,
             method: str | None = None, region: str | None = None, coordinator: str | None = None,
             simulated: bool = False) -> list[Slot]:
        return free_slots(self.config, start, end, self.busy(s, start, end, simulated=simulated), now=now,
                          method=method, region=region, coordinator=coordinator)

    def offer(self, s: Session, *, user_id: str | None, method: str, region: str | None, after: date | None,
              days: int, now: datetime, preferred: str | None = None) -> list[OfferedSlot]:
        """Slots for the bot to show: one per start time, round-robin by the week's load, or `preferred`'s only."""
        first = max(after or to_tokyo(now).date(), to_tokyo(now).date())
        start = datetime.combine(first, datetime.min.time(), TOKYO)
        end = start + timedelta(days=days)
        simulated = is_simulated(user_id)
        slots = self.free(s, start=start, end=end, now=now, method=method, region=region, coordinator=preferred,
                          simulated=simulated)
        load_start = datetime.combine(week_start(first), datetime.min.time(), TOKYO)
        load = {}
        for coordinator, b_start in s.execute(select(Booking.coordinator_id, Booking.start).where(
                Booking.status.in_(ACTIVE_BOOKING), Booking.start >= load_start, Booking.start < end + timedelta(days=7),
                *_seen_by(simulated))):
            key = (coordinator, week_start(to_tokyo(b_start).date()))
            load[key] = load.get(key, 0) + 1
        return [OfferedSlot(x.coordinator, x.start, x.end) for x in offer(slots, load)]

    def previous(self, s: Session, *, user_id: str | None, method: str, region: str | None) -> tuple[str, str] | None:
        """The coordinator of the user's latest confirmed booking, if they take this method and region."""
        if not user_id:
            return None
        last = s.scalar(select(Booking.coordinator_id).where(
            Booking.user_id == user_id, Booking.status == "confirmed", Booking.popup_day_id.is_(None))
            .order_by(Booking.start.desc()).limit(1))
        c = self.config.coordinator(last) if last else None
        if c is None or method not in c.methods or (c.regions and region not in c.regions):
            return None
        return c.id, c.name

    # --- reserving, in the caller's transaction ----------------------------------------------------------

    def reserve(self, s: Session, *, user_id: str | None, coordinator: str, start: datetime, method: str,
                region: str | None, consultation_id: int | None, now: datetime, channel: str = "line",
                replaces: int | None = None, by: str = "user", reason: str = "日時の変更",
                notice: str = "cancelled") -> Reserved | None:
        """A pending booking for the slot if it is still free and genuine; None (and nothing changed) if not.

        A change of date with the same coordinator moves the booking (its event is moved after the commit); with
        another coordinator the old booking is cancelled (for `reason`, by `by`, its coordinator told `notice`) and
        a new one made, in this same transaction. Staff (by="staff") may look ahead: neither the minimum notice nor
        the horizon applies to them, only that the time is still to come.
        """
        c = self.config.coordinator(coordinator)
        if c is None:
            log.warning("booking refused: unknown coordinator in a postback (user %s)", user_ref(user_id))
            return None
        if self.db.is_postgres:  # SQLite transactions already hold the write lock (BEGIN IMMEDIATE)
            s.execute(select(func.pg_advisory_xact_lock(_lock_key(coordinator))))
        slot = Slot(to_tokyo(start), to_tokyo(start) + timedelta(minutes=c.slot_minutes), coordinator)
        savepoint = s.begin_nested()
        try:
            replaced = None
            if replaces is not None:
                replaced = s.get(Booking, replaces, with_for_update=True)
                if replaced is None or replaced.user_id != user_id or replaced.status not in ACTIVE_BOOKING:
                    log.warning("booking change refused: booking %s is not the user's active booking", replaces)
                    savepoint.rollback()
                    return None
            simulated = is_simulated(user_id)
            busy = self.busy(s, slot.start - timedelta(days=1), slot.end + timedelta(days=1), simulated=simulated)
            if replaced is not None and replaced.coordinator_id == coordinator:
                # The booking's own time does not stand in its way (in our table nor as its calendar event).
                own = (replaced.start, replaced.end)
                busy[coordinator] = [i for i in busy.get(coordinator, []) if tuple(i) != own]
            rules_now = None if by == "staff" else now
            if slot.start <= now or not is_bookable(self.config, slot, busy, now=rules_now, method=method, region=region):
                log.warning("slot %s for %s refused: taken, stale or forged", slot.start.isoformat(), coordinator)
                savepoint.rollback()
                return None
            if replaced is not None and replaced.coordinator_id == coordinator:
                outbox.cancel(s, f"booking:{replaced.id}", now)
                previous = (to_tokyo(replaced.start), to_tokyo(replaced.end))
                replaced.start, replaced.end, replaced.status, replaced.updated_at = slot.start, slot.end, "pending", now
                replaced.calendar_error = replaced.calendar_error_at = None  # a new time: the calendar is asked afresh
                s.flush()  # the unique index on (coordinator, start) for active bookings decides a race
                savepoint.commit()
                log.info("booking %s moving (coordinator %s)", replaced.id, coordinator)
                return Reserved(replaced, None, [], changed=True, previous=previous)
            notices = []
            if replaced is not None:
                notices = self._start_cancel(s, replaced, reason, by, now, notice=notice)
            booking = Booking(consultation_id=consultation_id or (replaced.consultation_id if replaced else None),
                              user_id=user_id, coordinator_id=coordinator, start=slot.start, end=slot.end, method=method,
                              channel=channel, simulated=simulated, status="pending", created_at=now, updated_at=now)
            s.add(booking)
            s.flush()  # the unique index on (coordinator, start) for active bookings decides a race
            booking.calendar_event_id = event_id_for(booking)
            if booking.consultation_id is not None:
                cases.assign_when_booked(s, booking.consultation_id, coordinator)
            s.flush()
            savepoint.commit()
        except IntegrityError:
            savepoint.rollback()
            log.info("slot %s for %s taken by a concurrent booking", slot.start.isoformat(), coordinator)
            return None
        log.info("booking %s pending (coordinator %s)", booking.id, coordinator)
        return Reserved(booking, replaced, notices, changed=replaced is not None,
                        previous=(to_tokyo(replaced.start), to_tokyo(replaced.end)) if replaced is not None else None)

    def reserve_popup(self, s: Session, *, day_id: int, start: datetime, user_id: str | None,
                      consultation_id: int | None, now: datetime) -> Reserved | None:
        booking = popup.reserve(s, self.config, day_id=day_id, start=start, user_id=user_id,
                                consultation_id=consultation_id, now=now, is_postgres=self.db.is_postgres,
                                simulated=is_simulated(user_id))
        if booking is None:
            return None
        booking.calendar_event_id = event_id_for(booking)
        s.flush()
        log.info("booking %s pending (pop-up day %s)", booking.id, day_id)
        return Reserved(booking, None, [])

    def cancel(self, s: Session, booking_id: int, *, user_id: str | None, reason: str, by: str,
               now: datetime) -> list[int] | None:
        """Cancel in the caller's transaction; returns the coordinator notices to send after the commit, None if refused."""
        booking = s.get(Booking, booking_id, with_for_update=True)
        if booking is None or booking.status not in ACTIVE_BOOKING or (user_id is not None and booking.user_id != user_id):
            log.warning("cancel refused: booking %s is not an active booking of the asking user", booking_id)
            return None
        return self._start_cancel(s, booking, reason, by, now)

    def _start_cancel(self, s: Session, booking: Booking, reason: str, by: str, now: datetime, *,
                      notice: str = "cancelled") -> list[int]:
        """Free the slot at once; the calendar event is deleted after the commit (or by the reconciler)."""
        booking.status, booking.cancel_reason, booking.cancelled_by, booking.updated_at = "cancelling", reason, by, now
        booking.calendar_error = booking.calendar_error_at = None  # the calendar is asked afresh, to delete the event
        outbox.cancel(s, f"booking:{booking.id}", now)
        return self.notify(s, notice, booking, now) if self.notify else []

    # --- after the commit: the calendar ------------------------------------------------------------------

    def finish(self, reserved: Reserved, *, reassigned: bool = False) -> Booking | None:
        """After the commit of a change made by staff: the old event removed, the new one written and confirmed.

        A booking that went to another coordinator is new to them ("new"), or theirs by assignment ("assigned").
        """
        if reserved.replaced is not None:
            self.finish_cancel(reserved.replaced.id)
        notice = "assigned" if reassigned else "new" if reserved.replaced is not None else "changed"
        return self.confirm(reserved.booking.id, changed=reserved.changed, previous=reserved.previous,
                            notice=notice, reassigned=reassigned)

    def confirm(self, booking_id: int, *, changed: bool = False, reply_token: str | None = None,
                reply_until: datetime | None = None, previous: tuple[datetime, datetime] | None = None,
                notice: str | None = None, reassigned: bool = False) -> Booking | None:
        """Put a pending booking in the calendar (idempotently) and confirm it; None if the calendar failed for now.

        Confirming, the user's confirmation, the coordinator's notice (`notice`, by default new or changed) and the
        reminders are one transaction: each happens once. A refusal for good (the calendar no longer shared with the
        service account, say) leaves the booking pending with its calendar_error, out of the reconciler's way, and
        the user is told that staff will contact them. Staff retry such a booking by calling this again.
        """
        with self.db.unit_of_work() as s:
            booking = s.get(Booking, booking_id)
            if booking is None or booking.status != "pending":
                return booking
            description = self._description(s, booking)
            calendar_id = self._calendar_of(s, booking)
            refused_before = booking.calendar_error
            # Only a change of date makes a pending booking newer than itself: the reconciler tells it as a change too.
            changed = changed or booking.updated_at > booking.created_at
        meet_url = None
        if calendar_id:  # a pop-up day without a coordinator has no calendar to write to
            try:
                event = self.calendar.insert_event(
                    calendar_id, booking.calendar_event_id, booking.start, booking.end,
                    summary=f"DX相談（{texts.METHODS.get(booking.method, booking.method)}）", description=description,
                    meet=booking.method == "online")
                if (event.start, event.end) != (booking.start, booking.end):  # the booking moved: move its event
                    changed, previous = True, previous or (to_tokyo(event.start), to_tokyo(event.end))
                    event = self.calendar.move_event(calendar_id, booking.calendar_event_id, booking.start, booking.end)
                meet_url = event.meet_url
            except CalendarError as exc:
                if exc.refusal:
                    return self._refused(booking_id, exc.refusal, told=refused_before is not None,
                                         reply_token=reply_token, reply_until=reply_until)
                log.warning("booking %s stays pending: calendar write failed (retryable=%s)", booking_id, exc.retryable)
                if refused_before:  # no longer refused, only unreachable: the reconciler takes it from here
                    self._refused(booking_id, None, told=True)
                return None
        now = self.clock.now()
        with self.db.unit_of_work() as s:
            booking = s.get(Booking, booking_id, with_for_update=True)
            if booking.status == "cancelled" and calendar_id:
                # Cancelled, and its event deleted, while the insert was on its way: the insert made it again.
                booking.status = "cancelling"
                s.commit()
                self.finish_cancel(booking_id)  # or the reconciler, if the calendar fails now
                return booking
            if booking.status != "pending":  # cancelling meanwhile: finish_cancel (or the reconciler) removes the event
                return booking
            booking.status, booking.meet_url, booking.updated_at = "confirmed", meet_url, now
            booking.calendar_error = booking.calendar_error_at = None
            self._schedule_reminders(s, booking, now)
            user = s.get(LineUser, booking.user_id) if booking.user_id else None
            ids = queue_messages(s, user.source, user.id, texts.confirmation(self.summary(booking, s=s), changed=changed,
                                                                                   previous=previous, reassigned=reassigned),
                                 now, reply_token=reply_token, reply_until=reply_until) if user else []
            if user is None and booking.meet_url:  # first made, or moved (staff's change email said it would come)
                ids += self._meet_email(s, booking, now)
            # The user's confirmation goes first: a slow mail server must not keep them waiting.
            kind = notice or ("changed" if changed else "new")
            ids += self.notify(s, kind, booking, now) if self.notify else []
            s.commit()
        metrics.bookings.labels("confirmed").inc()
        self.delivery.send(ids)
        log.info("booking %s confirmed", booking_id)
        return booking

    def _meet_email(self, s: Session, booking: Booking, now: datetime) -> list[int]:
        """The Meet link by email for someone without LINE (a web consultation with an address on record)."""
        c = s.get(Consultation, booking.consultation_id) if booking.consultation_id else None
        if c is None or not recipients_of(c.email) or self.delivery.mailer is None:
            return []
        subject, body = texts.meet_email(self.summary(booking, s=s), self.config.program_name, c.contact_name)
        return queue_messages(s, "email", f"consultation:{c.id}", [email_message(recipients_of(c.email), subject, body)],
                              now)

    def _refused(self, booking_id: int, refusal: str | None, *, told: bool, reply_token: str | None = None,
                 reply_until: datetime | None = None) -> Booking | None:
        """Record the calendar's refusal for good (or, with None, that it is over); a first refusal is told the user.

        The booking stays pending and keeps its slot: staff retry it (once the calendar is shared again) or cancel it.
        """
        now = self.clock.now()
        with self.db.unit_of_work() as s:
            booking = s.get(Booking, booking_id, with_for_update=True)
            if booking.status != "pending":  # cancelled meanwhile: nothing to keep for staff
                return booking
            booking.calendar_error, booking.calendar_error_at = refusal, now if refusal else None
            user = s.get(LineUser, booking.user_id) if booking.user_id and refusal and not told else None
            ids = queue_messages(s, user.source, user.id, texts.held_notice(self.summary(booking, s=s)), now,
                                 reply_token=reply_token, reply_until=reply_until) if user else []
            s.commit()
        if refusal:
            log.warning("booking %s left to staff: the calendar refused it (%s)", booking_id, refusal)
        self.delivery.send(ids)
        return booking if refusal else None

    def finish_cancel(self, booking_id: int) -> bool:
        """Delete a cancelling booking's event (one already gone is fine) and mark it cancelled; False if not done.

        The cancellation itself stands whatever the calendar says. A refusal for good (the calendar no longer shared
        with the service account, say) is kept on the booking as its calendar_error, out of the reconciler's way:
        staff remove the event by hand or retry by calling this again.
        """
        with self.db.unit_of_work() as s:
            booking = s.get(Booking, booking_id)
            if booking is None or booking.status != "cancelling":
                return False
            calendar_id, event_id = self._calendar_of(s, booking), booking.calendar_event_id
            refused_before = booking.calendar_error
        try:
            if calendar_id:
                self.calendar.delete_event(calendar_id, event_id)
        except CalendarError as exc:
            if exc.refusal:
                log.warning("booking %s left to staff: the calendar refused to delete its event (%s)", booking_id,
                            exc.refusal)
            else:
                log.warning("booking %s: calendar delete failed (retryable=%s); the reconciler tries again", booking_id,
                            exc.retryable)
            if exc.refusal or refused_before:  # a refusal kept, or (only unreachable now) handed back to the reconciler
                with self.db.unit_of_work() as s:
                    booking = s.get(Booking, booking_id, with_for_update=True)
                    if booking.status == "cancelling":
                        booking.calendar_error = exc.refusal
                        booking.calendar_error_at = self.clock.now() if exc.refusal else None
                        s.commit()
            return False
        with self.db.unit_of_work() as s:
            booking = s.get(Booking, booking_id)
            if booking.status == "cancelling":
                booking.status, booking.updated_at = "cancelled", self.clock.now()
                booking.calendar_error = booking.calendar_error_at = None
                s.commit()
                metrics.bookings.labels("cancelled").inc()
        return True

    def reconcile(self) -> int:
        """Finish what a crash or a calendar outage left half-done: pending bookings and cancellations.

        A booking the calendar refused for good (its insert, or its delete) is left to staff: retrying it cannot help
        until a person acts.
        """
        now = self.clock.now()
        with self.db.unit_of_work() as s:
            pending = s.scalars(select(Booking.id).where(Booking.status == "pending", ~Booking.calendar_refused,
                                                         Booking.updated_at <= now - RECONCILE_AFTER)).all()
            cancelling = s.scalars(select(Booking.id).where(Booking.status == "cancelling",
                                                            ~Booking.calendar_refused)).all()
        done = 0
        for booking_id in pending:
            booking = self.confirm(booking_id)
            done += booking is not None and booking.status == "confirmed"
        for booking_id in cancelling:
            done += self.finish_cancel(booking_id)
        if pending or cancelling:
            log.info("reconciler: %d pending, %d cancelling, %d resolved", len(pending), len(cancelling), done)
        return done

    # --- pieces ------------------------------------------------------------------------------------------

    def _calendar_of(self, s: Session, booking: Booking) -> str | None:
        """Whose calendar holds the booking: its coordinator's, or a pop-up day's coordinator's (None if nobody's).

        A simulated booking is in nobody's: a demo must not fill a real coordinator's calendar.
        """
        if booking.simulated:
            return None
        coordinator_id = booking.coordinator_id
        if booking.popup_day_id:
            coordinator_id = s.get(PopupDay, booking.popup_day_id).coordinator_id
            if coordinator_id is None:
                return None
        c = self.config.coordinator(coordinator_id)
        return (c.calendar_id if c else None) or "primary"

    def _description(self, s: Session, booking: Booking) -> str:
        """What the coordinator needs in the event, and nothing more: company, category, question, contact."""
        c = s.get(Consultation, booking.consultation_id) if booking.consultation_id else None
        day = s.get(PopupDay, booking.popup_day_id) if booking.popup_day_id else None
        venue = f"出張相談会: {day.venue}\n" if day else ""
        if c is None:
            return f"{venue}かごしまDX相談窓口のご相談"
        contact = " / ".join(x for x in (c.contact_name, c.phone, c.email) if x)
        return (f"{venue}会社名: {c.company}\n分野: {self.config.category(c.category).name}\n"
                f"連絡先: {contact}\n受付番号: {c.receipt_no}\n\nご相談内容:\n{c.question}")

    def _schedule_reminders(self, s: Session, booking: Booking, now: datetime) -> None:
        if not booking.user_id:
            return
        user = s.get(LineUser, booking.user_id)
        summary = self.summary(booking, s=s)
        start = to_tokyo(booking.start)
        rules = self.config.reminders
        day_before = datetime.combine(start.date() - timedelta(days=1),
                                      datetime.strptime(rules.day_before_at, "%H:%M").time(), TOKYO)
        plans = (("reminder_day_before", day_before, texts.reminder(summary, "day_before")),
                 ("reminder_hour_before", start - timedelta(hours=rules.hours_before), texts.reminder(summary, "hour_before")))
        for kind, due, messages in plans:
            if due <= now:
                continue  # booked too late for this one
            outbox.schedule(s, key=f"{kind}:booking:{booking.id}:{start:%Y%m%d%H%M}", kind=kind, ref=f"booking:{booking.id}",
                            channel=user.source if user else "line", to=booking.user_id, messages=messages,
                            due_at=due, expires_at=booking.start, now=now, revive=True)  # confirmed once per time

    def summary(self, booking: Booking, region: str | None = None, s: Session | None = None) -> BookingSummary:
        return self.summary_of(self.config, booking, region, s)

    @staticmethod
    def summary_of(config: Config, booking: Booking, region: str | None = None, s: Session | None = None) -> BookingSummary:
        """The booking as the bot shows it; with a session, a pop-up booking is named by its venue."""
        c = config.coordinator(booking.coordinator_id)
        name = c.name if c else "担当コーディネーター"
        venue = address = receipt = topic = None
        if s is not None and booking.popup_day_id:
            day = s.get(PopupDay, booking.popup_day_id)
            name, venue, address = f"出張相談会（{day.venue}）", day.venue, day.address
        if s is not None and booking.consultation_id:
            consultation = s.get(Consultation, booking.consultation_id)
            receipt, topic = consultation.receipt_no, config.category(consultation.category).name
        return BookingSummary(booking.id, to_tokyo(booking.start), to_tokyo(booking.end), booking.method, name,
                              booking.status, booking.meet_url, region=region, consultation_id=booking.consultation_id,
                              venue=venue, address=address, receipt_no=receipt, topic=topic,
                              held=booking.calendar_refused)
