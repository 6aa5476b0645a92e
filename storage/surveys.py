"""Survey answers: whether someone has finished, and the results per question (counts, averages, free texts)."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import Survey
from storage.models import SurveyResponse

CONSULT_CHOICES = {"yes": "はい", "no": "いいえ"}


def finished(s: Session, seminar_id: int, user_id: str) -> bool:
    """Whether the person has answered the seminar's survey to the end."""
    return s.scalar(select(SurveyResponse.completed_at).where(SurveyResponse.seminar_id == seminar_id,
                                                              SurveyResponse.user_id == user_id)) is not None


@dataclass
class QuestionResult:
    id: str
    kind: str
    text: str
    answered: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # choice (or rating "1".."5") -> how many chose it
    average: float | None = None  # ratings only
    texts: list[str] = field(default_factory=list)  # free texts, oldest first


def results(s: Session, seminar_id: int, survey: Survey) -> tuple[int, int, list[QuestionResult]]:
    """(responses, completed, per-question results) of a seminar's survey; simulator users' answers left out."""
    responses = list(s.scalars(select(SurveyResponse)
                               .where(SurveyResponse.seminar_id == seminar_id, ~SurveyResponse.user_id.like("sim-%"))
                               .order_by(SurveyResponse.id)))
    out = []
    for q in survey.questions:
        choices = ([str(n) for n in range(1, 6)] if q.kind == "rating"
                   else list(CONSULT_CHOICES.values()) if q.kind == "consult" else list(q.choices))
        result = QuestionResult(q.id, q.kind, q.text, counts=dict.fromkeys(choices, 0))
        ratings = []
        for response in responses:
            value = (response.answers or {}).get(q.id)
            if value is None:
                continue
            result.answered += 1
            if q.kind == "text":
                result.texts.append(str(value))
                continue
            for v in value if isinstance(value, list) else [value]:
                key = CONSULT_CHOICES.get(v, v) if q.kind == "consult" else str(v)
                result.counts[key] = result.counts.get(key, 0) + 1
            if q.kind == "rating":
                ratings.append(int(value))
        result.average = round(sum(ratings) / len(ratings), 2) if ratings else None
        if q.kind == "text":
            result.counts = {}
        out.append(result)
    return len(responses), sum(1 for x in responses if x.completed_at), out
