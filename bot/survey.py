"""The seminar survey in LINE: one question at a time with quick replies, resumable, answers checked against the choices.

Pure steps, like the intake. Answers are kept by the SaveSurveyAnswer effect as they come (so an interruption loses
nothing); the conversation only remembers which question is being asked (data["survey"]).
"""
from __future__ import annotations

import unicodedata

from bot import replies as r
from bot.config import Question, Survey
from bot.conversation import Context, Conversation, Intent, Outcome, SaveSurveyAnswer, State, SurveyProgress
from bot.menu import consult

MAX_TEXT = 1000
YES, NO = "yes", "no"
CONSULT_LABELS = {YES: "はい、相談したい", NO: "いいえ"}
NOT_YOURS = "このアンケートはご利用いただけません。お心当たりがない場合は、メニューからお問い合わせください。"


def invitation(seminar_id: int, seminar_title: str, survey: Survey) -> list[dict]:
    """The message that brings the survey: sent through the outbox after the seminar."""
    return [r.text(f"「{seminar_title}」にご参加いただき、ありがとうございました。\n"
                   f"今後の改善のため、アンケート（全{len(survey.questions)}問・1分ほど）へのご回答をお願いします。",
                   quick=[r.postback("アンケートに回答する", "survey", seminar=str(seminar_id))])]


def reminder(seminar_id: int, seminar_title: str, survey: Survey) -> list[dict]:
    return [r.text(f"「{seminar_title}」のアンケートへのご回答がまだのようです。お手すきの際にご協力をお願いします。"
                   "途中まで回答された方は、続きからお答えいただけます。",
                   quick=[r.postback("アンケートに回答する", "survey", seminar=str(seminar_id))])]


def start(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """The survey's button: begins, or resumes at the first question not yet answered."""
    progress, survey = _ours(intent.data.get("seminar"), ctx)
    if survey is None:
        return Outcome(conv.state, prompt=False, replies=[r.text(NOT_YOURS)])
    again = intent.data.get("again") == "1"
    if progress.completed and not again:
        return Outcome(conv.state, prompt=False, replies=[r.text(
            "このアンケートにはすでにご回答いただいています。ありがとうございました。",
            quick=[r.postback("回答し直す", "survey", seminar=str(progress.seminar_id), again="1")])])
    answered = {} if again else progress.answers
    first = next((q for q in survey.questions if q.id not in answered), survey.questions[0])
    intro = (f"「{progress.seminar_title}」のアンケートです（全{len(survey.questions)}問）。"
             if not answered else "アンケートの続きからお願いします。")
    data = {"survey": {"seminar": progress.seminar_id, "id": survey.id, "q": first.id, "picked": [],
                       "again": again}}
    return Outcome(State.ANSWER_SURVEY, data=data, replies=[r.text(intro)])


def ask(conv: Conversation, ctx: Context) -> list[dict]:
    """The current question with its answers as quick replies."""
    state = conv.data.get("survey") or {}
    survey = ctx.config.survey(state.get("id"))
    question = survey.question(state.get("q", "")) if survey else None
    if question is None:  # the survey was taken out of the configuration meanwhile
        return [r.text(NOT_YOURS)]
    number = survey.questions.index(question) + 1
    head = f"【{number}/{len(survey.questions)}】{question.text}"
    seminar = str(state["seminar"])
    tap = lambda label, value, shown=None: r.postback(label, "survey_answer", shown or label, seminar=seminar,  # noqa: E731
                                                       q=question.id, v=value)
    skip = [r.postback("回答しない", "survey_skip", seminar=seminar, q=question.id)] if question.optional else []
    if question.kind == "rating":
        labels = {1: f"1（{question.low}）" if question.low else "1", 5: f"5（{question.high}）" if question.high else "5"}
        return [r.text(head + "\n5段階でお選びください。",
                       quick=[tap(labels.get(n, str(n)), str(n)) for n in range(1, 6)] + skip)]
    if question.kind == "single":
        return [r.text(head, quick=[tap(c, c) for c in question.choices] + skip)]
    if question.kind == "multiple":
        picked = state.get("picked") or []
        chosen = f"\n選択中：{'、'.join(picked)}" if picked else ""
        toggles = [r.postback(("✓" if c in picked else "") + c, "survey_pick", seminar=seminar, q=question.id, v=c)
                   for c in question.choices]
        done = [r.postback("選び終えた（次へ）", "survey_next", seminar=seminar, q=question.id)]
        return [r.text(head + "\n当てはまるものをすべて選び、最後に「選び終えた（次へ）」を押してください。" + chosen,
                       quick=toggles + done + skip)]
    if question.kind == "consult":
        return [r.text(head, quick=[tap(CONSULT_LABELS[YES], YES), tap(CONSULT_LABELS[NO], NO)])]
    return [r.text(head + "\nメッセージで入力してお送りください。", quick=skip)]


def answer(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """A tapped or typed answer to the current question: kept if it is one of the allowed ones, else asked again."""
    state, question, stale = _current(conv, intent, ctx)
    if stale:
        return stale
    value = _value(question, intent.value)
    if value is None:
        return Outcome(State.ANSWER_SURVEY, replies=[r.text(_why_not(question))])
    return _save(conv, ctx, question, value)


def pick(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """A multiple-choice toggle: nothing is kept until 「次へ」."""
    state, question, stale = _current(conv, intent, ctx)
    if stale:
        return stale
    if question.kind != "multiple" or intent.value not in question.choices:
        return Outcome(State.ANSWER_SURVEY, replies=[r.text(_why_not(question))])
    picked = list(state.get("picked") or [])
    picked.remove(intent.value) if intent.value in picked else picked.append(intent.value)
    return Outcome(State.ANSWER_SURVEY, data={**conv.data, "survey": {**state, "picked": picked}})


def next_question(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    state, question, stale = _current(conv, intent, ctx)
    if stale:
        return stale
    picked = [c for c in question.choices if c in (state.get("picked") or [])]
    if not picked:
        return Outcome(State.ANSWER_SURVEY, replies=[r.text("ひとつ以上お選びください。")])
    return _save(conv, ctx, question, picked)


def skip(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    state, question, stale = _current(conv, intent, ctx)
    if stale:
        return stale
    if not question.optional:
        return Outcome(State.ANSWER_SURVEY, replies=[r.text("この質問にはご回答をお願いします。")])
    return _save(conv, ctx, question, None)


def no_survey(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """A survey answer tapped when no survey is being answered (an old message's button)."""
    return Outcome(conv.state, prompt=False, replies=[r.text(
        "このボタンの回答は受け付けを終えています。アンケートは、届いたメッセージの「アンケートに回答する」から"
        "いつでも続きをお答えいただけます。")])


def _ours(seminar: str | int | None, ctx: Context) -> tuple[SurveyProgress | None, Survey | None]:
    """The user's survey for that seminar, if they may answer it (the service loads only their own)."""
    progress = ctx.survey
    if progress is None or str(progress.seminar_id) != str(seminar):
        return None, None
    return progress, ctx.config.survey(progress.survey_id)


def _current(conv: Conversation, intent: Intent, ctx: Context) -> tuple[dict, Question | None, Outcome | None]:
    """The question being asked, or the outcome for a tap that is not an answer to it (old, or someone else's)."""
    state = conv.data.get("survey") or {}
    survey = ctx.config.survey(state.get("id"))
    question = survey.question(state.get("q", "")) if survey else None
    if question is None:
        return state, None, Outcome(State.IDLE, data={}, prompt=False, replies=[r.text(NOT_YOURS)])
    if intent.data and (intent.data.get("seminar") != str(state["seminar"]) or intent.data.get("q") != question.id):
        return state, question, Outcome(State.ANSWER_SURVEY, replies=[r.text(
            "前の質問のボタンが押されたようです。いまの質問にお答えください。")])
    return state, question, None


def _value(question: Question, given: str):
    """The answer as kept (a number for ratings), or None if it is not one the question allows."""
    given = unicodedata.normalize("NFKC", given or "").strip()
    if question.kind == "rating":
        digit = given[:1]
        return int(digit) if digit in "12345" and digit and (len(given) == 1 or not given[1:2].isdigit()) else None
    if question.kind == "single":
        return given if given in question.choices else None
    if question.kind == "consult":
        if given in (YES, "はい", CONSULT_LABELS[YES]) or given.startswith("はい"):
            return YES
        return NO if given in (NO, "いいえ", "希望しない") else None
    if question.kind == "text":
        return given if 0 < len(given) <= MAX_TEXT else None
    return None  # multiple: only through the toggles and 「次へ」


def _why_not(question: Question) -> str:
    if question.kind == "rating":
        return "1〜5の数字でお答えください（ボタンからも選べます）。"
    if question.kind == "text":
        return f"{MAX_TEXT}文字以内の文章でお書きください。"
    if question.kind == "multiple":
        return "下のボタンから選び、最後に「選び終えた（次へ）」を押してください。"
    return "下のボタンからお選びください。"


def _save(conv: Conversation, ctx: Context, question: Question, value) -> Outcome:
    state = conv.data["survey"]
    survey = ctx.config.survey(state["id"])
    answered = {**(ctx.survey.answers if ctx.survey and not state.get("again") else {}),
                **state.get("done", {}), question.id: value}
    following = survey.questions[survey.questions.index(question) + 1:]
    nxt = next((q for q in following if q.id not in answered or state.get("again")), None)
    effect = SaveSurveyAnswer(state["seminar"], survey.id, question.id, value, completed=nxt is None)
    if nxt is not None:
        done = {**state.get("done", {}), question.id: value}
        return Outcome(State.ANSWER_SURVEY, effects=[effect],
                       data={**conv.data, "survey": {**state, "q": nxt.id, "picked": [], "done": done}})
    thanks = r.text("アンケートへのご回答、ありがとうございました。いただいたご意見は今後のセミナーに活かしてまいります。")
    wants = [q for q in survey.questions if q.kind == "consult" and answered.get(q.id) == YES]
    if not wants:
        return Outcome(State.IDLE, data={}, effects=[effect], prompt=False, replies=[thanks])
    intake = consult(Conversation(conv.user_id, State.IDLE, {}, None, conv.updated_at), Intent("consult"), ctx)
    intake.data = {**(intake.data or {}), "origin": f"seminar:{state['seminar']}"}
    intake.effects = [effect, *intake.effects]
    intake.replies = [thanks, r.text("個別相談のお申し込みを続けてお伺いします。"), *intake.replies]
    return intake
