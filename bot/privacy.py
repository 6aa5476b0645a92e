"""「データ削除」: what erasing means, the confirmation, and what the person is told (steps, no database)."""
from __future__ import annotations

from datetime import datetime, timedelta

from bot import replies as r
from bot.conversation import Context, Conversation, Intent, Outcome, RequestErasure, State
from bot.intake import is_no, norm
from bot.jatime import format_datetime
from bot.menu import leave, menu_quick

# A confirmation given later than this after the question is not taken: the person is asked again.
CONFIRM_TTL = timedelta(hours=24)

ERASED_ITEMS = ("会社名・屋号、ご担当者名、電話番号、メールアドレス", "ご相談の内容（ご質問の文章）",
                "このLINEでのやりとりの記録", "セミナーのお申し込み情報、アンケートの自由記述")
CONFIRM_WORDS = ("削除する", "削除します", "削除して", "はい", "お願いします", "おねがいします")


def ask(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """Say what will be erased and what stays, and ask to confirm with a button bound to this very question."""
    asked_at = ctx.now.isoformat()
    body = ("登録されているあなたのデータを削除します。削除されるもの：\n"
            + "\n".join(f"・{item}" for item in ERASED_ITEMS)
            + "\n\n相談件数の集計のため、分野・地域・相談方法・日付だけは、どなたのものか分からない形で残ります。"
              "削除したデータは元に戻せません。\n"
              "これからのご予約やセミナーのお申し込みがある場合は、担当者が取り消したうえで削除し、"
              "済みましたらこのLINEでお知らせします。\n\n削除してよろしいですか？")
    return leave(conv, ctx, [r.text(body, quick=[r.postback("削除する", "erase_confirm", at=asked_at),
                                                 r.postback("やめる", "erase_keep")])],
                 State.CONFIRM_ERASE, data={"erase_asked_at": asked_at}, prompt=False)


def confirm(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """The person's own confirmation of the question just asked: anything else is refused and changes nothing."""
    if intent.data.get("user", conv.user_id) != conv.user_id:
        return Outcome(State.IDLE, data={}, prompt=False, replies=[r.text(
            "ほかの方のデータを削除することはできません。ご自身のデータの削除は「データ削除」とお送りください。")])
    if intent.name == "erase_confirm" and intent.data.get("at") != conv.data.get("erase_asked_at"):
        return Outcome(State.IDLE, data={}, prompt=False, replies=[r.text(
            "この削除の確認ボタンは無効です。削除をご希望の場合は、あらためて「データ削除」とお送りください。")])
    asked = conv.data.get("erase_asked_at")
    if not asked or ctx.now - datetime.fromisoformat(asked) > CONFIRM_TTL:
        return Outcome(State.IDLE, data={}, prompt=False, replies=[r.text(
            "削除の確認から時間がたったため、手続きを終了しました。削除をご希望の場合は、あらためて「データ削除」とお送りください。")])
    if ctx.ahead:
        listed = "\n".join(f"・{_described(c)}" for c in ctx.ahead)
        return Outcome(State.IDLE, data={}, prompt=False, effects=[RequestErasure(immediate=False)], replies=[r.text(
            f"データ削除のご依頼を承りました。次の予定があるため、担当者が取り消しを確認したうえで削除します。\n{listed}\n"
            "削除が済みましたら、このLINEでお知らせします。")])
    return Outcome(State.IDLE, data={}, suspended=None, prompt=False, effects=[RequestErasure(immediate=True)],
                   replies=done_notice())


def done_notice() -> list[dict]:
    """What the person is told once their data is erased (by the bot at once, or by staff later)."""
    return [r.text("ご依頼のとおり、あなたのデータを削除しました。これまでのご利用ありがとうございました。\n"
                   "またご相談がありましたら、いつでもメッセージをお送りください（あらためて最初からお伺いします）。")]


def keep(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    return Outcome(State.IDLE, data={}, prompt=False, replies=[r.text(
        "データの削除は取りやめました。データはこれまでどおり大切にお預かりします。", quick=menu_quick(conv, ctx))])


def typed(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """Typed answers: 「削除する」 confirms, 「いいえ」 keeps, anything else asks again."""
    text = norm(intent.text)
    if any(text.startswith(norm(w)) for w in CONFIRM_WORDS):
        return confirm(conv, intent, ctx)
    if is_no(intent.text):
        return keep(conv, intent, ctx)
    return Outcome(State.CONFIRM_ERASE, prompt=False, replies=[r.text(
        "データを削除する場合は「削除する」、やめる場合は「やめる」を押してください。", quick=[
            r.postback("削除する", "erase_confirm", at=conv.data.get("erase_asked_at", "")),
            r.postback("やめる", "erase_keep")])])


def _described(c) -> str:
    if c.kind == "seminar":
        return f"セミナー「{c.title}」（{format_datetime(c.start)}）のお申し込み"
    return f"{format_datetime(c.start)}のご相談のご予約"
