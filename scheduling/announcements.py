"""Seminar announcements: who a segment reaches, the month's quota checked first, and each segment announced once."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import municipalities
from bot.config import Config
from bot.seminar_messages import announcement
from scheduling import multicast
from storage.db import Database
from storage.models import LIVE_REGISTRATION, Consultation, LineUser, Seminar, SeminarRegistration

SEGMENTS = "all / region:<地域ID> / industry:<業種> / category:<分野ID> / past-participants"


class AnnouncementRefused(Exception):
    """Why an announcement cannot go (in Japanese, for staff); nothing was sent."""


@dataclass(frozen=True)
class Announcement:
    seminar_id: int
    segment: str
    recipients: int  # whom the segment reaches now (following, not yet registered)
    already: bool  # this segment was announced before: nothing more is sent
    batches: int = 0  # multicast requests planned by this call
    sent: int = 0  # of those, how many LINE accepted

    @property
    def key(self) -> str:
        return announcement_key(self.seminar_id, self.segment)


def announcement_key(seminar_id: int, segment: str) -> str:
    return f"announce:{seminar_id}:{segment}"


def preview(db: Database, config: Config, seminar_id: int, segment: str) -> Announcement:
    """Whom an announcement would reach, and whether it went already; changes nothing."""
    with db.unit_of_work() as s:
        _seminar(s, seminar_id)
        users = recipients(s, config, seminar_id, segment)
        already = multicast.planned(s, announcement_key(seminar_id, segment)) > 0
    return Announcement(seminar_id, segment, len(users), already)


def announce(db: Database, config: Config, line, clock, seminar_id: int, segment: str,
             created_by: str | None = None) -> Announcement:
    """Plan the announcement's batches in one transaction, then send them; a second call sends nothing new.

    Batches left pending by an earlier call that was cut short (a crash, LINE down) are sent now.
    """
    if line is None:
        raise AnnouncementRefused("LINEチャネルが設定されていないため、案内を送れません。")
    key = announcement_key(seminar_id, segment)
    now = clock.now()
    with db.unit_of_work() as s:
        seminar = _seminar(s, seminar_id)
        if seminar.status != "open" or seminar.start_at <= now:
            raise AnnouncementRefused("このセミナーは中止されたか、すでに始まっているため、案内を送れません。")
        users = recipients(s, config, seminar_id, segment)
        if multicast.planned(s, key):
            s.rollback()
            resumed = multicast.send_due(db, line, clock, key=key)
            return Announcement(seminar_id, segment, len(users), True, sent=resumed)
        if not users:
            return Announcement(seminar_id, segment, 0, False)
        quota = _quota(line)
        if not quota.allows(len(users)):
            raise AnnouncementRefused(
                f"今月のメッセージ送信数の上限を超えるため、送信しません。"
                f"送信予定: {len(users):,}通（{len(users):,}人）、今月の上限: {quota.limit:,}通、"
                f"送信済み: {quota.used:,}通、残り: {quota.left:,}通。"
                f"対象を絞るか、来月またはプランの変更後にお送りください。")
        planned = multicast.plan(s, key=key, kind="announcement", ref=f"seminar:{seminar_id}", recipients=users,
                                 messages=announcement(seminar), now=now, created_by=created_by)
        s.commit()
    sent = multicast.send_due(db, line, clock, key=key)
    return Announcement(seminar_id, segment, len(users), False, batches=planned, sent=sent)


def recipients(s: Session, config: Config, seminar_id: int, segment: str) -> list[str]:
    """LINE users of the segment who still follow the account and have no live registration for the seminar."""
    registered = select(SeminarRegistration.user_id).where(SeminarRegistration.seminar_id == seminar_id,
                                                           SeminarRegistration.status.in_(LIVE_REGISTRATION))
    query = (select(LineUser.id)
             .where(LineUser.source == "line", LineUser.following.is_(True), LineUser.id.not_in(registered))
             .where(*_segment(config, seminar_id, segment))
             .order_by(LineUser.id))
    return list(s.scalars(query))


def _segment(config: Config, seminar_id: int, segment: str) -> list:
    kind, _, value = segment.partition(":")
    if segment == "all":
        return []
    if segment == "past-participants":
        attended = select(SeminarRegistration.user_id).where(SeminarRegistration.status == "attended",
                                                             SeminarRegistration.seminar_id != seminar_id)
        return [LineUser.id.in_(attended)]
    if kind == "region" and value:
        try:
            towns = [m.name for m in municipalities.region(value).municipalities]
        except KeyError:
            ids = "、".join(r.id for r in municipalities.REGIONS)
            raise AnnouncementRefused(f"地域 {value} はありません。次のどれかを指定してください: {ids}") from None
        return [LineUser.municipality.in_(towns)]
    if kind == "industry" and value:
        return [LineUser.industry == value]
    if kind == "category" and value:
        if value not in {c.id for c in config.categories}:
            ids = "、".join(c.id for c in config.categories)
            raise AnnouncementRefused(f"分野 {value} はありません。次のどれかを指定してください: {ids}")
        return [LineUser.id.in_(select(Consultation.user_id).where(Consultation.category == value))]
    raise AnnouncementRefused(f"送信対象 {segment} は指定できません。次の形で指定してください: {SEGMENTS}")


def _seminar(s: Session, seminar_id: int) -> Seminar:
    seminar = s.get(Seminar, seminar_id)
    if seminar is None:
        raise AnnouncementRefused(f"セミナー {seminar_id} は見つかりません。dxdesk seminar list で番号をご確認ください。")
    return seminar


def _quota(line) -> multicast.Quota:
    try:
        limit, used = line.message_quota()
    except Exception as exc:  # LineApiError: without the quota, sending to many is not risked
        raise AnnouncementRefused("LINEの今月の送信可能数を確認できなかったため、送信しません。"
                                  "しばらくしてからもう一度お試しください。") from exc
    return multicast.Quota(limit, used)
