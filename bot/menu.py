"""Steps that work from any state: greeting, the menu, cancel, start over, resume, staff handover, and help."""
from __future__ import annotations

from datetime import datetime, timedelta

from bot import replies as r
from bot.conversation import (
    INTAKE_TTL, Context, Conversation, HandOver, Intent, Outcome, SetFollowing, State,
)
from bot.intake import (
    MAX_QUESTION, _triaged, consent_given, is_greeting, looks_like_question, privacy_notice, side_answer,
)
from bot.jatime import describe_staff_reply

# A case's way: 受付 → 日程調整中 → 対応中 → 完了 → フォローアップ (storage.models.CASE_STATUSES); staff may move it freely.
STATUS_LABELS = {"received": "受付", "scheduling": "日程調整中", "in_progress": "対応中", "closed": "完了",
                 "follow_up": "フォローアップ"}
# An acknowledgement while staff have the conversation is sent at most this often.
STAFF_ACK_INTERVAL = timedelta(minutes=10)

MENU_BUTTONS = (("相談を申し込む", "consult"), ("予約の確認・変更", "bookings"), ("セミナー", "seminars"),
                ("よくある質問・補助金", "faq"), ("出張相談会", "popup"), ("担当者と話す", "handover"))


def menu_quick(conv: Conversation, ctx: Context) -> list[dict]:
    quick = [r.postback(label, action) for label, action in MENU_BUTTONS]
    if resumable(conv, ctx.now):
        quick.insert(0, r.postback("続きから", "resume"))
    return quick


def resumable(conv: Conversation, now: datetime) -> bool:
    return bool(conv.suspended) and now - datetime.fromisoformat(conv.suspended["at"]) <= INTAKE_TTL


def in_intake(conv: Conversation) -> bool:
    from bot.flow import FLOW  # the table imports this module's steps
    return FLOW[conv.state].intake


def suspend(conv: Conversation, now: datetime) -> dict | None | bool:
    """Keep an unfinished intake aside (for 続きから); False leaves what was kept before as it is."""
    if not in_intake(conv) or not conv.data:
        return False
    return {"state": str(conv.state), "data": conv.data, "at": now.isoformat()}


def leave(conv: Conversation, ctx: Context, replies: list[dict], next_state: State = State.IDLE, **kw) -> Outcome:
    """Leave the current state for another, keeping an unfinished intake to resume later.

    Only looking something up (FAQ, seminars, dates) in the middle of an intake does not leave it: the answer comes,
    then the same question again, so that the next thing typed still answers it.
    """
    if next_state == State.IDLE and in_intake(conv) and conv.data:
        return Outcome(conv.state, replies=[*replies, r.text("ご相談の入力の続きです。")])
    return Outcome(next_state, replies=replies, data=kw.pop("data", {}), suspended=suspend(conv, ctx.now), **kw)


def follow(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    greeting = (f"友だち追加ありがとうございます。{ctx.config.program_name}です。\n"
                "鹿児島県内の中小企業・個人事業主の皆さまのデジタル化（DX）のご相談を、DXコーディネーターが無料でお受けしています。\n"
                "下のメニューから、ご相談の申し込み、セミナーや補助金のご案内をご覧いただけます。")
    effects = [SetFollowing(True)]
    if in_intake(conv) and conv.data:  # a second follow (blocked and unblocked) keeps what was being entered
        return Outcome(conv.state, effects=effects, replies=[r.text(
            f"{ctx.config.program_name}です。またお会いできてうれしいです。入力途中のご相談の続きからお伺いします。")])
    if consent_given(ctx, conv):
        return Outcome(State.IDLE, data={}, effects=effects, replies=[r.text(greeting, quick=menu_quick(conv, ctx))])
    notice = privacy_notice(ctx)
    notice[-1] = {**notice[-1], "quickReply": {"items": [{"type": "action", "action": a} for a in menu_quick(conv, ctx)]}}
    return Outcome(State.ASK_CONSENT, data={}, effects=effects, prompt=False, replies=[r.text(greeting), *notice])


def unfollow(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    return Outcome(State.IDLE, data={}, suspended=None, effects=[SetFollowing(False)], prompt=False)


def menu(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    kept = suspend(conv, ctx.now)
    after = Conversation(conv.user_id, State.IDLE, {}, conv.suspended if kept is False else kept)
    note = "入力途中のご相談は「続きから」で再開できます（24時間以内）。\n" if resumable(after, ctx.now) else ""
    return Outcome(State.IDLE, data={}, suspended=kept, prompt=False,
                   replies=[r.text(f"{note}ご用件を選んでください。", quick=menu_quick(after, ctx))])


def cancel(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    if in_intake(conv) or conv.state == State.WITH_STAFF:
        said = "担当者とのやりとりを終了しました。" if conv.state == State.WITH_STAFF else "入力中のご相談を取り消しました。"
        return Outcome(State.IDLE, data={}, suspended=None, replies=[r.text(
            f"{said}またいつでもどうぞ。", quick=menu_quick(Conversation(conv.user_id), ctx))])
    return Outcome(State.IDLE, data={}, replies=[r.text("いま進めている手続きはありません。", quick=menu_quick(conv, ctx))])


def restart(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    said = [r.text("最初からやり直します。")]
    if not consent_given(ctx, conv):
        return Outcome(State.ASK_CONSENT, data={}, suspended=None, replies=[*said, *privacy_notice(ctx)], prompt=False)
    return Outcome(State.ASK_QUESTION, data={"consented": True}, suspended=None, replies=said)


def resume(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    if in_intake(conv) and conv.data:
        return Outcome(conv.state, replies=[r.text("入力の続きです。")])
    if resumable(conv, ctx.now):
        kept = conv.suspended
        return Outcome(State(kept["state"]), data=kept["data"], suspended=None, replies=[r.text("前回の続きから再開します。")])
    if conv.suspended:
        return Outcome(State.IDLE, data={}, suspended=None, replies=[r.text(
            "前回の入力は24時間を過ぎたため、保存を終了しました。お手数ですが、もう一度「相談を申し込む」からお願いします。",
            quick=menu_quick(Conversation(conv.user_id), ctx))])
    return Outcome(conv.state, prompt=False, replies=[r.text("再開できる入力はありません。", quick=menu_quick(conv, ctx))])


def consult(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """Start an intake; a question asked just before ("この内容で相談する") is carried over."""
    if in_intake(conv) and conv.data.get("consented"):
        return Outcome(conv.state, prompt=False, replies=[r.text(
            "入力中のご相談があります。続けますか？", quick=[r.postback("続きから", "resume"), r.postback("最初から", "restart")])])
    if resumable(conv, ctx.now) and not intent.data.get("q"):
        return Outcome(State.IDLE, prompt=False, replies=[r.text(
            "前回入力途中のご相談があります。続きから再開しますか？",
            quick=[r.postback("続きから", "resume"), r.postback("最初から", "restart")])])
    question = conv.data.get("pending_question") if intent.data.get("q") else None
    data = {"pending_question": question} if question else {}
    if not consent_given(ctx, conv):
        return Outcome(State.ASK_CONSENT, data=data, suspended=None, prompt=False, replies=[
            r.text("ご相談の前に、個人情報の取り扱いについてご確認ください。"), *privacy_notice(ctx)])
    data["consented"] = True
    outcome = Outcome(State.ASK_QUESTION, data=data, suspended=None)
    return _triaged(outcome, data, question, ctx) if question else outcome


def handover(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    if conv.state == State.WITH_STAFF:
        return Outcome(State.WITH_STAFF, prompt=False, replies=[r.text("担当者におつなぎしています。このままメッセージをお送りください。")])
    when = describe_staff_reply(ctx.now, ctx.config.handover_hours, ctx.config.is_closed)
    return leave(conv, ctx, [r.text(
        f"担当者におつなぎします。{when}\nこのままメッセージをお送りください。"
        "チャットボットに戻るときは「メニュー」と送ってください。")],
        State.WITH_STAFF, data={"acked_at": ctx.now.isoformat()}, effects=[HandOver()], prompt=False)


def with_staff_message(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """Staff answer in the console; the bot only says, now and then, that the message arrived."""
    acked = conv.data.get("acked_at")
    if acked and ctx.now - datetime.fromisoformat(acked) < STAFF_ACK_INTERVAL:
        return Outcome(State.WITH_STAFF, prompt=False)
    when = describe_staff_reply(ctx.now, ctx.config.handover_hours, ctx.config.is_closed)
    return Outcome(State.WITH_STAFF, prompt=False, data={**conv.data, "acked_at": ctx.now.isoformat()},
                   replies=[r.text(f"メッセージは担当者に届いています。{when}")])


def idle_text(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """A question outside any flow: the matching help, and an offer to make it a consultation. A greeting alone gets
    a greeting back and the menu: there is nothing in it to make a consultation of."""
    if is_greeting(intent.text):
        lines = [f"メッセージありがとうございます。{ctx.config.program_name}です。DXコーディネーターが無料でご相談に乗ります。"
                 "困っていることをそのままお送りいただくか、下のメニューからお選びください。"]
        if resumable(conv, ctx.now):
            lines.append("入力途中のご相談は「続きから」で再開できます。")
        return Outcome(State.IDLE, prompt=False, replies=[r.text("\n".join(lines), quick=menu_quick(conv, ctx))])
    result = ctx.triager.classify(intent.text)
    category = ctx.config.category(result.category)
    lead = (f"「{category.name}」に関するご質問ですね。" if result.category != "other"
            else "メッセージありがとうございます。")
    if looks_like_question(intent.text) and result.category == "other":
        lead = side_answer(intent.text)
    lines = [lead, *(result.suggestions if result.category != "other" else ()),
             "DXコーディネーターが無料でご相談に乗ります。この内容で相談を申し込みますか？"]
    if resumable(conv, ctx.now):
        lines.append("入力途中のご相談は「続きから」で再開できます。")
    return Outcome(State.IDLE, prompt=False, data={"pending_question": intent.text[:MAX_QUESTION]}, replies=[r.text(
        "\n".join(lines), quick=[r.postback("この内容で相談する", "consult", q="1"), *menu_quick(conv, ctx)[:-1]])])


# Questions answered by typing: a sticker there has no button to fall back on.
TYPED_ANSWER_STATES = (State.ASK_QUESTION, State.ASK_COMPANY, State.ASK_CONTACT_NAME, State.ASK_PHONE, State.ASK_EMAIL)
# Buttons of a finished or outdated step, and why they no longer work.
STALE_BUTTONS = {
    **dict.fromkeys(("slot", "pick_slot", "more_slots", "prefer", "later", "confirm_slot", "other_slot"),
                    "この日時のボタンは、すでに予約が終わったか、古い一覧のものです。"),
    **dict.fromkeys(("yes", "no", "submit", "edit", "field", "industry", "employees", "municipality", "region",
                     "method", "category", "skip", "contact", "back"),
                    "このボタンは、すでに終わった入力のものです。"),
    **dict.fromkeys(("cancel_reason", "keep"), "このキャンセルの手続きは、すでに終わっています。"),
    "consent": "同意はすでに承っています。", "decline": "この確認は、すでに終わっています。",
    **dict.fromkeys(("erase_confirm", "erase_keep"),
                    "この削除の確認ボタンは無効か、すでに終わったものです（削除をご希望の場合は「データ削除」とお送りください）。"),
}


def media(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    if conv.state == State.WITH_STAFF:
        return with_staff_message(conv, intent, ctx)
    if conv.state == State.IDLE:
        return Outcome(State.IDLE, prompt=False, replies=[r.text(
            "ありがとうございます。ご用件は文字か下のボタンでお送りください。", quick=menu_quick(conv, ctx))])
    if conv.state in TYPED_ANSWER_STATES:
        return Outcome(conv.state, replies=[r.text("恐れ入りますが、画像やスタンプは受け取れません。文字でお答えください。")])
    if conv.state == State.CHOOSE_SLOT:
        return Outcome(conv.state, prompt=False, replies=[r.text(
            "恐れ入りますが、画像やスタンプは受け取れません。上の一覧から日時を選んでください。")])
    return Outcome(conv.state, replies=[r.text("恐れ入りますが、文字か下のボタンでお答えください。")])


def not_understood(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """A tap on an old button or an answer the current question does not take: say why, and ask again."""
    why = STALE_BUTTONS.get(intent.name, "このボタンは、いまはご利用いただけません。")
    if conv.state == State.IDLE:
        return Outcome(State.IDLE, prompt=False, replies=[r.text(
            f"{why}メニューからあらためてお選びください（ご予約は「予約の確認・変更」から）。", quick=menu_quick(conv, ctx))])
    return Outcome(conv.state, replies=[r.text(f"{why}いまの質問にお答えください。")])


def faq(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    cfg = ctx.config
    body = [
        "Q. 相談にお金はかかりますか？\nA. 無料です。何度でもご利用いただけます。",
        "Q. どんな会社が対象ですか？\nA. 鹿児島県内の中小企業・小規模事業者・個人事業主の方です。",
        "Q. 何を相談できますか？\nA. " + "、".join(c.name for c in cfg.categories if c.id != "other") + "など、デジタル化に関することなら何でも。",
        "Q. どうやって相談しますか？\nA. 対面（訪問・来所）、オンライン、電話、メールから選べます。",
        "Q. 登録したデータを削除できますか？\nA. はい。「データ削除」とお送りいただくか、下の「データ削除」ボタンから手続きできます。",
    ]
    if cfg.subsidy.name:
        body.append(f"【{cfg.subsidy.name}】\n{cfg.subsidy.summary}")
    buttons = [r.postback("相談を申し込む", "consult")]
    if cfg.subsidy.url:
        buttons.append(r.uri("補助金の詳細を見る", cfg.subsidy.url))
    buttons.append(r.postback("データ削除", "erase"))
    return leave(conv, ctx, [r.flex("よくある質問・補助金", r.card("よくある質問・補助金", body=body, buttons=buttons),
                                    quick=menu_quick(conv, ctx))], prompt=False)
