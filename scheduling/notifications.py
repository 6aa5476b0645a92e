"""Telling coordinators about their bookings: a LINE card to their own LINE account, and an email."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from bot import booking as texts
from bot.config import Config
from bot.conversation import BookingSummary
from bot.jatime import format_time_range
from scheduling.bookings import BookingService
from scheduling.mailer import email_message, recipients_of
from storage.models import Booking, Consultation
from storage.outbound import queue_messages

TITLES = {"new": "新しいご予約", "changed": "ご予約の変更", "cancelled": "ご予約のキャンセル"}
LEADS = {"new": "新しいご相談のご予約が入りました。", "changed": "ご相談のご予約の日時が変更されました。",
         "cancelled": "ご相談のご予約がキャンセルされました。この時間は空きに戻っています。"}


def channel_of(user_id: str) -> str:
    """Simulated users (sim-...) live in the simulator; everyone else on LINE."""
    return "simulator" if user_id.startswith("sim-") else "line"


@dataclass(frozen=True)
class Notice:
    """What a coordinator is told, whichever way it reaches them."""

    kind: str
    booking: BookingSummary
    company: str = ""
    category: str = ""
    question: str = ""
    contact: str = ""
    receipt_no: str = ""
    reason: str = ""


class CoordinatorNotifier:
    def __init__(self, config: Config, line_enabled: bool, *, email_enabled: bool = False):
        self.config, self.line_enabled, self.email_enabled = config, line_enabled, email_enabled

    def __call__(self, s: Session, kind: str, booking: Booking, now: datetime) -> list[int]:
        c = self.config.coordinator(booking.coordinator_id)
        if c is None or booking.simulated:  # a demo in the simulator is nothing for a coordinator to act on
            return []
        line_to = c.line_user_id if c.line_user_id and (self.line_enabled or channel_of(c.line_user_id) != "line") else None
        recipients = recipients_of(c.email) if self.email_enabled else []
        if not line_to and not recipients:
            return []
        notice = self._notice(s, kind, booking)
        ids = []
        if line_to:
            ids += queue_messages(s, channel_of(line_to), line_to, texts.coordinator_notice(
                kind, notice.booking, notice.company, notice.category, notice.question, notice.contact), now, sender="notice")
        if recipients:
            # `to` is shown in the staff console, so it names the coordinator; the addresses stay in the message.
            ids += queue_messages(s, "email", c.id, [email_message(recipients, *self._email(notice, c.name))], now,
                                  sender="notice")
        return ids

    def _email(self, notice: Notice, coordinator_name: str) -> tuple[str, str]:
        """Subject and plain-text body: the LINE card's facts, with the question in full."""
        b = notice.booking
        when = format_time_range(b.start, b.end)
        rows = [("日時", when), ("方法", texts.METHODS.get(b.method, b.method)), ("会社", notice.company),
                ("分野", notice.category), ("連絡先", notice.contact), ("受付番号", notice.receipt_no)]
        if notice.kind == "cancelled":
            rows.append(("キャンセル理由", notice.reason))
        elif b.meet_url:
            rows.append(("Google Meet", b.meet_url))
        lines = [f"{coordinator_name} 様", "", LEADS[notice.kind], "", *(f"{k}：{v}" for k, v in rows if v)]
        if notice.question and notice.kind != "cancelled":
            lines += ["", "ご相談内容：", notice.question]
        lines += ["", "--", f"このメールは{self.config.program_name}の予約受付から自動で送信しています。"]
        return f"【{self.config.program_name}】{TITLES[notice.kind]} {when}", "\n".join(lines) + "\n"

    def _notice(self, s: Session, kind: str, booking: Booking) -> Notice:
        summary = BookingService.summary_of(self.config, booking)
        reason = (booking.cancel_reason or "") if kind == "cancelled" else ""
        c = s.get(Consultation, booking.consultation_id) if booking.consultation_id else None
        if c is None:
            return Notice(kind, summary, reason=reason)
        contact = " / ".join(x for x in (c.contact_name, c.phone, c.email) if x)
        return Notice(kind, summary, c.company or "", self.config.category(c.category).name, c.question or "", contact,
                      c.receipt_no or "", reason)
