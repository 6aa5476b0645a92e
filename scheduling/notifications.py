"""Telling coordinators about their bookings and cases (a LINE card to their own LINE account, and an email), and the
coordinators on duty that a conversation waits for staff."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from bot import booking as texts
from bot.config import Config, Coordinator
from bot.conversation import BookingSummary
from bot.jatime import format_time_range, to_tokyo
from bot.replies import text
from scheduling.availability import opening_hours
from scheduling.bookings import BookingService, is_simulated
from scheduling.mailer import email_message, recipients_of
from storage.models import Booking, Consultation
from storage.outbound import queue_messages

TITLES = texts.COORDINATOR_TITLES
LEADS = {"new": "新しいご相談のご予約が入りました。", "changed": "ご相談のご予約の日時が変更されました。",
         "cancelled": "ご相談のご予約がキャンセルされました。この時間は空きに戻っています。",
         "assigned": "次のご相談の担当になりました。", "unassigned": "次のご相談の担当が、別のコーディネーターに変わりました。"}
WAITING_SUBJECT = "担当者の対応を待っている会話があります"
WAITING_TEXT = "【{program}】担当者の対応を待っている会話があります。スタッフ画面で確認してください。\n{link}"


def channel_of(user_id: str) -> str:
    """Simulated users (sim-...) live in the simulator; everyone else on LINE."""
    return "simulator" if user_id.startswith("sim-") else "line"


@dataclass(frozen=True)
class Notice:
    """What a coordinator is told, whichever way it reaches them."""

    kind: str
    booking: BookingSummary | None  # None: a case assigned before any date is set
    company: str = ""
    category: str = ""
    question: str = ""
    contact: str = ""
    receipt_no: str = ""
    reason: str = ""
    note: str = ""  # a line said after the lead (where the booking stays when a case changes hands)


class CoordinatorNotifier:
    def __init__(self, config: Config, line_enabled: bool, *, email_enabled: bool = False, public_url: str = ""):
        self.config, self.line_enabled, self.email_enabled = config, line_enabled, email_enabled
        self.public_url = public_url.rstrip("/")  # links to the staff console

    def __call__(self, s: Session, kind: str, booking: Booking, now: datetime) -> list[int]:
        c = self.config.coordinator(booking.coordinator_id)
        if c is None or booking.simulated:  # a demo in the simulator is nothing for a coordinator to act on
            return []
        consultation = s.get(Consultation, booking.consultation_id) if booking.consultation_id else None
        return self._queue(s, c, lambda: self._notice(kind, BookingService.summary_of(self.config, booking),
                                                      consultation, booking.cancel_reason), now)

    def case(self, s: Session, kind: str, coordinator_id: str, consultation: Consultation, now: datetime, *,
             note: str = "") -> list[int]:
        """A case assigned to ("assigned") or taken from ("unassigned") a coordinator, with no booking moving."""
        c = self.config.coordinator(coordinator_id)
        if c is None or consultation.simulated:
            return []
        return self._queue(s, c, lambda: self._notice(kind, None, consultation, note=note), now)

    def waiting(self, s: Session, user_id: str, now: datetime) -> list[int]:
        """Tell the coordinators on duty (or, when nobody is, every one who can be reached) that a conversation
        waits for staff: a link to it, and nothing about the person. LINE where they have it, else one email, BCC."""
        if is_simulated(user_id):
            return []
        reachable = [c for c in self.config.coordinators if self._line_to(c) or self._emails(c)]
        on_duty = [c for c in reachable if _on_duty(c, now, self.config)] or reachable
        link = f"{self.public_url}/admin/conversations/{user_id}"
        said = WAITING_TEXT.format(program=self.config.program_name, link=link)
        ids, emails = [], []
        for c in on_duty:
            if line_to := self._line_to(c):
                ids += queue_messages(s, channel_of(line_to), line_to, [text(said)], now, sender="notice")
            else:
                emails += self._emails(c)
        if emails:
            body = said + "\n\n--\nこのメールは" + self.config.program_name + "の受付から自動で送信しています。\n"
            ids += queue_messages(s, "email", "coordinators", [email_message(
                emails, f"【{self.config.program_name}】{WAITING_SUBJECT}", body)], now, sender="notice")
        return ids

    def _line_to(self, c: Coordinator) -> str | None:
        return c.line_user_id if c.line_user_id and (self.line_enabled or channel_of(c.line_user_id) != "line") else None

    def _emails(self, c: Coordinator) -> list[str]:
        return recipients_of(c.email) if self.email_enabled else []

    def _queue(self, s: Session, c: Coordinator, notice_of, now: datetime) -> list[int]:
        line_to, recipients = self._line_to(c), self._emails(c)
        if not line_to and not recipients:
            return []
        notice = notice_of()
        ids = []
        if line_to:
            ids += queue_messages(s, channel_of(line_to), line_to, texts.coordinator_notice(
                notice.kind, notice.booking, notice.company, notice.category, notice.question, notice.contact,
                notice.receipt_no, notice.note), now, sender="notice")
        if recipients:
            # `to` is shown in the staff console, so it names the coordinator; the addresses stay in the message.
            ids += queue_messages(s, "email", c.id, [email_message(recipients, *self._email(notice, c.name))], now,
                                  sender="notice")
        return ids

    def _email(self, notice: Notice, coordinator_name: str) -> tuple[str, str]:
        """Subject and plain-text body: the LINE card's facts, with the question in full."""
        b = notice.booking
        when = format_time_range(b.start, b.end) if b else ""
        rows = [("日時", when), ("方法", texts.METHODS.get(b.method, b.method) if b else ""), ("会社", notice.company),
                ("分野", notice.category), ("連絡先", notice.contact), ("受付番号", notice.receipt_no)]
        if notice.kind == "cancelled":
            rows.append(("キャンセル理由", notice.reason))
        elif b and b.meet_url:
            rows.append(("Google Meet", b.meet_url))
        lead = [LEADS[notice.kind], *([notice.note] if notice.note else [])]
        lines = [f"{coordinator_name} 様", "", *lead, "", *(f"{k}：{v}" for k, v in rows if v)]
        if notice.question and notice.kind not in texts.LETTING_GO:
            lines += ["", "ご相談内容：", notice.question]
        lines += ["", "--", f"このメールは{self.config.program_name}の予約受付から自動で送信しています。"]
        return (f"【{self.config.program_name}】{TITLES[notice.kind]} {when or '受付番号 ' + notice.receipt_no}",
                "\n".join(lines) + "\n")

    def _notice(self, kind: str, summary: BookingSummary | None, c: Consultation | None, reason: str | None = None,
                note: str = "") -> Notice:
        reason = (reason or "") if kind == "cancelled" else ""
        if c is None:
            return Notice(kind, summary, reason=reason, note=note)
        contact = " / ".join(x for x in (c.contact_name, c.phone, c.email) if x)
        return Notice(kind, summary, c.company or "", self.config.category(c.category).name, c.question or "", contact,
                      c.receipt_no or "", reason, note)


def _on_duty(c: Coordinator, now: datetime, config: Config) -> bool:
    """Whether `now` falls in the coordinator's hours that day (their dates, holidays and closures as for bookings)."""
    moment = to_tokyo(now)
    return any(opens <= moment < closes for opens, closes in opening_hours(c, moment.date(), config))
