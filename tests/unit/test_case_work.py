"""Case work without a database: the statuses' labels, what a search names as a receipt, and corrected fields
checked as the intake checks them."""
import pytest

from bot.intake import profile_value
from bot.menu import STATUS_LABELS
from storage.cases import receipt_id
from storage.models import CASE_STATUSES


def test_the_statuses_are_labelled_in_the_order_a_case_goes():
    assert tuple(STATUS_LABELS) == CASE_STATUSES
    assert list(STATUS_LABELS.values()) == ["受付", "日程調整中", "対応中", "完了", "フォローアップ"]


@pytest.mark.parametrize(("typed", "wanted"), [
    ("DX2026-00012", 12), ("dx2026-00012", 12), ("ＤＸ２０２６－０００１２", 12), (" DX2026 - 12 ", 12),
    ("12", 12), ("00012", 12), ("１２", 12),
    ("2862111", None), ("099-286-2111", None), ("桜島", None), ("DX-12", None), ("", None),
])
def test_a_receipt_number_or_a_short_number_names_a_case(typed, wanted):
    assert receipt_id(typed) == wanted


@pytest.mark.parametrize(("field", "typed", "kept"), [
    ("company", " 有限会社 桜島製作所 ", {"company": "有限会社 桜島製作所"}),
    ("contact_name", "鹿児島 花子", {"contact_name": "鹿児島 花子"}),
    ("industry", "製造業", {"industry": "製造業"}),
    ("employees", "6〜20人", {"employees": "6〜20人"}),
    ("municipality", "霧島", {"municipality": "霧島市", "region": "aira_isa"}),
    ("phone", "０９９２８６２１１１", {"phone": "099-286-2111"}),
    ("email", "Taro@Example.JP", {"email": "Taro@example.jp"}),
])
def test_a_corrected_field_is_kept_in_the_form_the_intake_keeps_it(field, typed, kept):
    assert profile_value(field, typed) == (kept, None)


@pytest.mark.parametrize(("field", "typed", "reason"), [
    ("company", "", "新しい値を入力"),
    ("company", "!!!", "を文字で"),
    ("company", "桜島製作所" * 21, "100文字以内"),
    ("contact_name", "090-1234-5678", "を文字で"),
    ("contact_name", "鹿児島花子" * 11, "50文字以内"),
    ("industry", "宇宙業", "一覧から選んで"),
    ("employees", "12人", "一覧から選んで"),
    ("municipality", "東京都", "見つかりませんでした"),
    ("phone", "099-286-211", "10桁"),
    ("email", "taro@gmail.con", "gmail.com"),
])
def test_a_wrong_correction_is_refused_with_the_reason_in_japanese(field, typed, reason):
    kept, said = profile_value(field, typed)
    assert kept is None and reason in said
