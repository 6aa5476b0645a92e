"""The category step of the intake: a yes/no on a sure guess, the likeliest few when the model is not sure."""
from __future__ import annotations

from datetime import UTC, datetime

from bot.config import load_config
from bot.conversation import Context, Conversation, Intent, Profile, RecordConsultation, State
from bot.flow import advance
from bot.intents import intent_of
from bot.triage import Triager

CONFIG = load_config()
TRIAGER = Triager(CONFIG)
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
UNSURE = "在庫管理をなんとかしたい"  # stock, but of the numbers or of the daily work? The model is torn.
SURE = "事務所のパソコンがランサムウェアにやられたかもしれん"


class NoSlots:
    """A SlotFinder with nothing free: these tests end where the consultation is recorded."""

    def offer(self, **_):
        return []

    def popups(self, **_):
        return []

    def previous(self, **_):
        return None


class Driver:
    def __init__(self):
        self.conv = Conversation("U1", State.ASK_QUESTION, {"consented": True})
        self.effects = []

    def send(self, intent: Intent):
        outcome = advance(self.conv, intent, Context(CONFIG, TRIAGER, NOW, profile=Profile(consent_version="2026-11"),
                                                   slots=NoSlots()))
        self.effects += outcome.effects
        self.conv = Conversation("U1", outcome.next_state, self.conv.data if outcome.data is None else outcome.data)
        return outcome

    def say(self, text: str):
        return self.send(intent_of({"type": "message", "source": {"type": "user"},
                                    "message": {"type": "text", "text": text}}))

    def tap(self, action: str, **data):
        return self.send(Intent(action, data=data))


def quick_replies(outcome) -> list[dict]:
    """The step's own choices, without the 戻る/やめる every intake step has."""
    return [item["action"] for m in outcome.replies for item in m.get("quickReply", {}).get("items", [])
            if item["action"]["label"] not in ("戻る", "やめる")]


def finish_intake(d: Driver) -> RecordConsultation:
    d.say("有限会社テスト商店")
    d.tap("industry", v="製造業")
    d.say("12人")
    d.say("霧島")
    d.say("山田 太郎")
    d.say("090-1234-5678")
    d.say("taro@example.jp")
    d.tap("method", v="online")
    d.tap("submit")
    return next(e for e in d.effects if isinstance(e, RecordConsultation))


def test_a_sure_guess_is_confirmed_with_a_yes_or_no():
    assert TRIAGER.classify(SURE).sure
    d = Driver()

    out = d.say(SURE)

    assert d.conv.state == State.CONFIRM_CATEGORY
    assert "「セキュリティ・ITトラブル」のご相談として承ります" in out.replies[-1]["text"]
    assert [a["label"] for a in quick_replies(out)] == ["はい", "別の分野を選ぶ"]


def test_an_unsure_guess_offers_the_three_likeliest_categories_and_other():
    result = TRIAGER.classify(UNSURE)
    assert not result.sure
    d = Driver()

    out = d.say(UNSURE)

    assert d.conv.state == State.CONFIRM_CATEGORY
    actions = quick_replies(out)
    top_three = [c for c in result.ranking if c != "other"][:3]
    assert [a["label"] for a in actions] == [CONFIG.category(c).name for c in top_three] + ["その他"]
    assert all(a["type"] == "postback" and a["data"].startswith("action=category&v=") for a in actions)
    assert "近い" in out.replies[-1]["text"]


def test_picking_one_of_the_offered_categories_records_it_beside_the_models_guess():
    guess = TRIAGER.classify(UNSURE)
    picked = [c for c in guess.ranking if c != "other"][1]  # not the model's first choice
    d = Driver()
    d.say(UNSURE)

    d.tap("category", v=picked)

    assert d.conv.state == State.ASK_COMPANY
    recorded = finish_intake(d)
    assert recorded.fields["category"] == picked
    assert recorded.fields["suggested_category"] == guess.category
    assert recorded.fields["confidence"] == guess.confidence  # the model's, not the user's
    assert recorded.fields["keywords"] == list(guess.keywords)


def test_picking_other_among_the_offered_categories_records_other():
    d = Driver()
    d.say(UNSURE)

    d.tap("category", v="other")

    assert finish_intake(d).fields["category"] == "other"


def test_a_category_typed_instead_of_tapped_is_taken_too():
    d = Driver()
    d.say(UNSURE)

    d.say("補助金")

    assert d.conv.data["category"] == "subsidy" and d.conv.state == State.ASK_COMPANY


def test_an_unclear_answer_to_the_offer_asks_again_kindly_and_keeps_the_question():
    d = Driver()
    d.say(UNSURE)

    out = d.say("うーん")

    assert d.conv.state == State.CONFIRM_CATEGORY
    assert "ボタンから近い分野を選んでください" in out.replies[0]["text"]
    assert d.conv.data["question"] == UNSURE


def test_confirming_a_sure_guess_records_the_guess_as_both():
    d = Driver()
    d.say(SURE)
    d.tap("yes")

    recorded = finish_intake(d)

    assert recorded.fields["category"] == recorded.fields["suggested_category"] == "security"


def test_choosing_another_category_after_a_sure_guess_keeps_the_guess_as_the_suggestion():
    d = Driver()
    d.say(SURE)
    d.tap("no")
    d.tap("category", v="training")

    recorded = finish_intake(d)

    assert (recorded.fields["category"], recorded.fields["suggested_category"]) == ("training", "security")
