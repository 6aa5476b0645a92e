"""Sending seminar surveys: after a seminar ends, an invitation to each attendee, and one reminder, via the outbox."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import survey as texts
from bot.config import Config
from scheduling import outbox
from storage.models import LineUser, Seminar, SeminarRegistration

LOOK_BACK = timedelta(days=14)  # seminars that ended longer ago than this are not planned again each tick


def plan(s: Session, config: Config, now: datetime, seminar_id: int | None = None) -> int:
    """Schedule the survey of every seminar whose time has come (or of `seminar_id` now); returns how many new.

    The outbox's business keys make this safe to run on every tick and after a restart: an attendee is invited once.
    """
    query = select(Seminar).where(Seminar.survey_id.is_not(None), Seminar.status == "open")
    if seminar_id is not None:
        query = query.where(Seminar.id == seminar_id)
    else:
        query = query.where(Seminar.end_at <= now, Seminar.end_at > now - LOOK_BACK)
    added = 0
    for seminar in s.scalars(query):
        survey = config.survey(seminar.survey_id)
        if survey is None:
            continue
        due = now if seminar_id is not None else seminar.end_at + timedelta(minutes=survey.send_after_minutes)
        if due > now:
            continue
        attendees = s.execute(select(SeminarRegistration.user_id, LineUser.source, LineUser.following)
                              .join(LineUser, LineUser.id == SeminarRegistration.user_id)
                              .where(SeminarRegistration.seminar_id == seminar.id,
                                     SeminarRegistration.status == "attended"))
        for user_id, source, following in attendees:
            if not following:
                continue
            ref = f"seminar:{seminar.id}"
            added += outbox.schedule(s, key=f"survey:{seminar.id}:{user_id}", kind="survey", ref=ref, channel=source,
                                     to=user_id, messages=texts.invitation(seminar.id, seminar.title, survey),
                                     due_at=now, expires_at=None, now=now)
            outbox.schedule(s, key=f"survey-reminder:{seminar.id}:{user_id}", kind="survey_reminder", ref=ref,
                            channel=source, to=user_id, messages=texts.reminder(seminar.id, seminar.title, survey),
                            due_at=now + timedelta(hours=survey.reminder_after_hours), expires_at=None, now=now)
    return added
