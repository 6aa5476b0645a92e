"""The seminar survey's steps, driven through the flow table with no database."""
from __future__ import annotations

import json
from dataclasses import replace

from bot.conversation import Conversation, Intent, SaveSurveyAnswer, State, SurveyProgress
from bot.flow import advance
from tests.unit.test_flow import ctx

MINE = SurveyProgress(seminar_id=7, seminar_title="DX入門セミナー", survey_id="seminar")


def said(outcome) -> str:
    return json.dumps(outcome.replies, ensure_ascii=False)


def tap(action: str, **data) -> Intent:
    return Intent(action, data={k: str(v) for k, v in data.items()})


def run(conv, intent, progress=MINE, **kw):
    out = advance(conv, intent, ctx(survey=progress, **kw))
    data = conv.data if out.data is None else out.data
    return out, Conversation(conv.user_id, out.next_state, data, conv.suspended)


def begin(progress=MINE):
    return run(Conversation("U1"), tap("survey", seminar=7), progress)


def test_the_survey_asks_one_question_at_a_time_and_keeps_each_answer_as_it_comes():
    out, conv = begin()
    assert conv.state == State.ANSWER_SURVEY and "【1/5】本日のセミナーの満足度" in said(out)
    assert "1（不満）" in said(out) and "5（満足）" in said(out)
    out, conv = run(conv, tap("survey_answer", seminar=7, q="satisfaction", v=4))
    assert out.effects == [SaveSurveyAnswer(7, "seminar", "satisfaction", 4, completed=False)]
    assert "【2/5】" in said(out) and "補助金の説明" in said(out)
    out, conv = run(conv, Intent("text", text="補助金の説明"))  # a typed choice counts as the tap
    assert out.effects[0].value == "補助金の説明" and "【3/5】" in said(out)


def test_an_answer_outside_the_choices_is_asked_again_and_nothing_is_kept():
    _, conv = begin()
    for typed in ("7", "とても良かった", "45"):
        out, again = run(conv, Intent("text", text=typed))
        assert out.effects == [] and again.state == State.ANSWER_SURVEY and "1〜5の数字" in said(out)
    out, _ = run(conv, Intent("text", text="５"))  # full-width digits are fine
    assert out.effects[0].value == 5


def test_multiple_choice_toggles_then_next_keeps_the_picked_ones_in_their_order():
    _, conv = begin(replace(MINE, answers={"satisfaction": 5, "useful": "特になし"}))  # resumes at question 3
    assert conv.data["survey"]["q"] == "interests"
    for choice in ("セキュリティ", "AI・IoT", "セキュリティ", "業務効率化"):
        out, conv = run(conv, tap("survey_pick", seminar=7, q="interests", v=choice))
        assert out.effects == []
    assert "選択中：AI・IoT、業務効率化" in said(out)
    out, conv = run(conv, tap("survey_next", seminar=7, q="interests"))
    assert out.effects[0].value == ["業務効率化", "AI・IoT"] and conv.data["survey"]["q"] == "comment"
    out, conv = run(conv, tap("survey_skip", seminar=7, q="comment"))  # optional: skipped, kept as None
    assert out.effects[0].value is None and "個別相談を希望しますか" in said(out)


def test_no_to_the_consultation_question_ends_the_survey_with_thanks():
    _, conv = begin(replace(MINE, answers={"satisfaction": 5, "useful": "特になし", "interests": ["AI・IoT"],
                                           "comment": "よかった"}))
    out, conv = run(conv, tap("survey_answer", seminar=7, q="consult", v="no"))
    assert out.effects[0].completed and conv.state == State.IDLE and "ありがとうございました" in said(out)


def test_yes_to_the_consultation_question_starts_the_intake_with_the_seminar_as_its_origin():
    _, conv = begin(replace(MINE, answers={"satisfaction": 5, "useful": "特になし", "interests": ["AI・IoT"],
                                           "comment": "よかった"}))
    out, conv = run(conv, tap("survey_answer", seminar=7, q="consult", v="yes"))
    assert out.effects[0] == SaveSurveyAnswer(7, "seminar", "consult", "yes", completed=True)
    assert conv.state == State.ASK_QUESTION and conv.data["origin"] == "seminar:7"
    assert "個別相談のお申し込み" in said(out)


def test_someone_elses_or_an_unknown_survey_is_refused_and_nothing_changes():
    out, conv = run(Conversation("U1"), tap("survey", seminar=8))  # the service loaded seminar 7's for this user
    assert conv.state == State.IDLE and out.effects == [] and "ご利用いただけません" in said(out)
    out, conv = run(Conversation("U1"), tap("survey", seminar=7), progress=None)
    assert conv.state == State.IDLE and "ご利用いただけません" in said(out)


def test_an_old_button_or_one_of_another_question_is_not_taken_as_the_answer():
    _, conv = begin()
    out, same = run(conv, tap("survey_answer", seminar=7, q="useful", v="特になし"))
    assert out.effects == [] and same.data["survey"]["q"] == "satisfaction" and "前の質問のボタン" in said(out)
    out, idle = run(Conversation("U1"), tap("survey_answer", seminar=7, q="satisfaction", v=3))
    assert out.effects == [] and idle.state == State.IDLE and "受け付けを終えています" in said(out)


def test_a_finished_survey_says_so_and_can_be_answered_again_from_the_start():
    done = replace(MINE, answers={"satisfaction": 2}, completed=True)
    out, conv = begin(done)
    assert conv.state == State.IDLE and "すでにご回答" in said(out)
    out, conv = run(Conversation("U1"), tap("survey", seminar=7, again=1), done)
    assert conv.data["survey"]["q"] == "satisfaction"
    out, conv = run(conv, tap("survey_answer", seminar=7, q="satisfaction", v=5))
    assert conv.data["survey"]["q"] == "useful"  # answering again walks every question, updating each
