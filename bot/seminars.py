"""Seminars in LINE: the carousel of what is on, registering (mode, consent, company and name), the confirmation,
the promotion notice and cancelling (pure steps: no database, no clock calls)."""
from __future__ import annotations

from bot import intake as i  # the intake's consent and answer checks are reused
from bot import menu as m
from bot import replies as r
from bot.conversation import (
    CancelRegistration, Context, Conversation, DeclinePromotion, Intent, Outcome, RecordConsent, RegisterSeminar,
    RegistrationSummary, SaveProfile, SeminarOffer, State,
)
from bot.jatime import format_datetime, format_time_range
from bot.seminar_checkin import checkin_messages

MODES = {"onsite": "会場", "online": "オンライン"}


def ics_url(public_url: str, token: str) -> str:
    """The registration's calendar file (handlers/ical.py), absolute on the public address."""
    return f"{public_url.rstrip('/')}/seminars/{token}.ics"


def where(seminar, mode: str) -> str:
    if mode == "online":
        return "オンライン（参加用URLは開催前にこのLINEでお送りします）"
    return seminar.venue or "会場"


def promoted_messages(seminar, registration, public_url: str) -> list[dict]:
    """The notice to someone moved from the waiting list to a seat, with a one-tap 辞退する."""
    bubble = r.card("キャンセル待ちから繰り上がりました", rows=[
        ("セミナー", seminar.title), ("日時", format_time_range(seminar.start_at, seminar.end_at)),
        ("参加方法", MODES.get(registration.mode, registration.mode)), ("場所", where(seminar, registration.mode))],
        body=["お席をご用意できましたので、お申し込みを確定しました。ご都合が合わなくなった場合は「辞退する」を押してください。"
              "次にお待ちの方にお席をお回しします。"],
        buttons=[r.uri("カレンダーに追加", ics_url(public_url, registration.checkin_token)),
                 r.postback("辞退する", "seminar_decline", display="辞退する", r=str(registration.id))])
    return [r.flex(f"キャンセル待ちから繰り上がりました：{seminar.title}", bubble),
            *checkin_messages(registration, public_url)]


# --- the carousel ------------------------------------------------------------------------------------------


S = State
CAROUSEL_MAX = 10
STATUSES = {"registered": "お申し込み済み", "waiting": "キャンセル待ち", "attended": "ご参加済み"}


def seats_line(offer: SeminarOffer, mode: str) -> str:
    if offer.left(mode) > 0:
        return f"{MODES[mode]} 残り{offer.left(mode)}席"
    return f"{MODES[mode]} 満席（キャンセル待ち{offer.waiting(mode)}人）"


def seminar_bubble(offer: SeminarOffer, now) -> dict:
    rows = [("日時", format_time_range(offer.start_at, offer.end_at))]
    if offer.capacity("onsite"):
        rows.append(("会場", offer.venue or "会場"))
    rows.append(("席", "\n".join(seats_line(offer, mode) for mode in MODES if offer.capacity(mode))))
    body = [offer.description[:200]] if offer.description else []
    if offer.subsidy_briefing:
        body.append("補助金説明あり")
    if offer.closes_at <= now:
        body.append("お申し込みの受付は終了しました。")
        buttons = []
    else:
        body.append(f"申込締切：{format_datetime(offer.closes_at)}")
        buttons = [r.postback("申し込む", "seminar", display=f"{offer.title[:30]}に申し込む", id=str(offer.id))]
    return r.card(offer.title, rows=rows, body=body, buttons=buttons)


def list_seminars(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """The rich menu's セミナー: what is on, with seats per mode and a 申し込む button each."""
    if not ctx.seminars:
        return m.leave(conv, ctx, [r.text(
            "現在お申し込みを受け付けているセミナーはありません。"
            "次回の日程は、決まり次第このアカウントでお知らせします。", quick=m.menu_quick(conv, ctx))], prompt=False)
    bubbles = [seminar_bubble(x, ctx.now) for x in ctx.seminars[:CAROUSEL_MAX]]
    return m.leave(conv, ctx, [r.flex("開催予定のセミナー", {"type": "carousel", "contents": bubbles},
                                      quick=m.menu_quick(conv, ctx))], prompt=False)


# --- registering ---------------------------------------------------------------------------------------------

def _offer(conv: Conversation, ctx: Context, wanted: str | None = None) -> SeminarOffer | None:
    wanted = str(wanted if wanted is not None else conv.data.get("seminar", ""))
    return next((x for x in ctx.seminars if str(x.id) == wanted), None)


def _registration(ctx: Context, wanted: str) -> RegistrationSummary | None:
    return next((x for x in ctx.registrations if str(x.id) == wanted), None)


def _plain(conv: Conversation, ctx: Context, said: str) -> Outcome:
    """A refusal that changes nothing: back to where the user was (an intake keeps its question)."""
    return m.leave(conv, ctx, [r.text(said, quick=[r.postback("セミナー一覧", "seminars"), r.postback("メニュー", "menu")])],
                   prompt=False)


NOT_OPEN = "このセミナーは見つからないか、お申し込みの受付を終了しました。メニューの「セミナー」から最新の一覧をご覧ください。"


def apply(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """申し込む (action=seminar&id=N) from the carousel or an announcement."""
    offer = _offer(conv, ctx, intent.data.get("id", ""))
    if offer is None:
        return _plain(conv, ctx, NOT_OPEN)
    if offer.closes_at <= ctx.now:
        return _plain(conv, ctx, f"「{offer.title}」のお申し込みは{format_datetime(offer.closes_at)}で締め切りました。")
    mine = next((x for x in ctx.registrations if x.seminar_id == offer.id), None)
    if mine is not None:
        return _plain(conv, ctx, f"「{offer.title}」にはすでにお申し込みいただいています（{STATUSES.get(mine.status, '')}）。"
                                 "内容はメニューの「予約の確認・変更」からご確認いただけます。")
    data = {"seminar": offer.id}
    if not i.consent_given(ctx, conv):
        return m.leave(conv, ctx, [], S.SEMINAR_CONSENT, data=data)
    return m.leave(conv, ctx, [], S.SEMINAR_MODE, data=data)


def ask_consent(conv: Conversation, ctx: Context) -> list[dict]:
    return [r.text("セミナーのお申し込みには、個人情報の取り扱いへの同意をお願いしています。"), *i.privacy_notice(ctx)]


def take_consent(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    return Outcome(S.SEMINAR_MODE, replies=[r.text("ありがとうございます。同意を承りました。")],
                   effects=[RecordConsent(ctx.config.privacy_policy_version)], data={**conv.data, "consented": True})


def consent_text(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    if i.is_yes(intent.text) or "同意" in intent.text and "しない" not in intent.text:
        return take_consent(conv, intent, ctx)
    return Outcome(conv.state, replies=[r.text("下の「同意して始める」か「同意しない」を押してください。")])


def _modes(offer: SeminarOffer) -> list[str]:
    return [mode for mode in MODES if offer.capacity(mode) > 0]


def ask_mode(conv: Conversation, ctx: Context) -> list[dict]:
    offer = _offer(conv, ctx)
    if offer is None:
        return [r.text(NOT_OPEN)]
    buttons = [r.postback(f"{MODES[mode]}（{seats_line(offer, mode).split(' ', 1)[1]}）", "seminar_mode",
                          display=MODES[mode], v=mode) for mode in _modes(offer)]
    return [r.text(f"「{offer.title}」（{format_time_range(offer.start_at, offer.end_at)}）\n参加方法をお選びください。",
                   quick=[*buttons, r.postback("やめる", "cancel")])]


def _mode_of(intent: Intent) -> str | None:
    value = intent.value
    return next((mode for mode, name in MODES.items() if value in (mode, name) or (mode == "onsite" and value == "対面")),
                None)


def take_mode(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    offer = _offer(conv, ctx)
    if offer is None:
        return Outcome(S.IDLE, data={}, prompt=False, replies=[r.text(NOT_OPEN)])
    mode = _mode_of(intent)
    if mode is None or mode not in _modes(offer):
        return Outcome(conv.state, replies=[r.text("参加方法は下のボタンからお選びください。")])
    data = {**conv.data, "mode": mode, "wait": False}
    if offer.left(mode) <= 0 or offer.waiting(mode) > 0:
        return Outcome(S.SEMINAR_FULL, data=data)
    return _details(conv, ctx, data)


def ask_full(conv: Conversation, ctx: Context) -> list[dict]:
    offer, mode = _offer(conv, ctx), conv.data.get("mode", "onsite")
    if offer is None:
        return [r.text(NOT_OPEN)]
    other = "online" if mode == "onsite" else "onsite"
    quick = []
    said = f"申し訳ありません。{MODES[mode]}のお席は満席です（キャンセル待ち{offer.waiting(mode)}人）。"
    if offer.capacity(other) and offer.left(other) > 0:
        said += f"\n{MODES[other]}でしたら、残り{offer.left(other)}席あります。"
        quick.append(r.postback(f"{MODES[other]}で申し込む", "seminar_mode", display=MODES[other], v=other))
    said += "\nキャンセル待ちに登録すると、お席が空いたときに順番に繰り上げてお知らせします。"
    quick += [r.postback("キャンセル待ちに登録", "seminar_wait", display="キャンセル待ちに登録"), r.postback("やめる", "cancel")]
    return [r.text(said, quick=quick)]


def take_wait(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    if _offer(conv, ctx) is None:
        return Outcome(S.IDLE, data={}, prompt=False, replies=[r.text(NOT_OPEN)])
    return _details(conv, ctx, {**conv.data, "wait": True})


def full_text(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    if "待" in intent.text:
        return take_wait(conv, intent, ctx)
    if _mode_of(intent):
        return take_mode(conv, intent, ctx)
    return Outcome(conv.state, replies=[r.text("下のボタンからお選びください。")])


def _details(conv: Conversation, ctx: Context, data: dict) -> Outcome:
    """Company and name from the record when known (confirmed with one tap), else asked."""
    if not data.get("editing"):
        data = {"company": ctx.profile.company, "contact_name": ctx.profile.contact_name, **{
            k: v for k, v in data.items() if v is not None}}
    if not data.get("company"):
        return Outcome(S.SEMINAR_COMPANY, data=data)
    if not data.get("contact_name"):
        return Outcome(S.SEMINAR_NAME, data=data)
    return Outcome(S.SEMINAR_CONFIRM, data=data)


def take_company(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    name = intent.text.strip()
    refused = i._not_an_answer(conv, name, i.company_problem)
    if refused:
        return refused
    return _details(conv, ctx, {**conv.data, "company": name})


def take_name(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    if intent.name == "name" and i._proposed_name(ctx):
        return _details(conv, ctx, {**conv.data, "contact_name": i._proposed_name(ctx)})
    name = intent.text.strip()
    refused = i._not_an_answer(conv, name, i.contact_name_problem)
    if refused:
        return refused
    return _details(conv, ctx, {**conv.data, "contact_name": name})


def ask_confirm(conv: Conversation, ctx: Context) -> list[dict]:
    offer, d = _offer(conv, ctx), conv.data
    if offer is None:
        return [r.text(NOT_OPEN)]
    mode = MODES[d["mode"]] + ("（キャンセル待ち）" if d.get("wait") else "")
    bubble = r.card("この内容で申し込みますか", rows=[
        ("セミナー", offer.title), ("日時", format_time_range(offer.start_at, offer.end_at)), ("参加方法", mode),
        ("会社名", d["company"]), ("お名前", d["contact_name"])], buttons=[
        r.postback("申し込む", "seminar_submit", display="申し込む"),
        r.postback("会社名・お名前を変更", "seminar_edit", display="会社名・お名前を変更"),
        r.postback("やめる", "cancel")])
    return [r.flex("セミナーお申し込みの確認", bubble)]


def submit(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    offer, d = _offer(conv, ctx), conv.data
    if offer is None or "mode" not in d:
        return Outcome(S.IDLE, data={}, prompt=False, replies=[r.text(NOT_OPEN)])
    effects = [RegisterSeminar(offer.id, d["mode"], bool(d.get("wait")), d["company"], d["contact_name"])]
    unknown = {k: d[k] for k in ("company", "contact_name") if not getattr(ctx.profile, k)}
    if unknown:  # kept for the next time (a consultation, another seminar)
        effects.append(SaveProfile(unknown))
    return Outcome(S.IDLE, data={}, prompt=False, effects=effects)


def edit(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    data = {k: v for k, v in conv.data.items() if k not in ("company", "contact_name")}
    return Outcome(S.SEMINAR_COMPANY, data={**data, "editing": True})


def confirm_text(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    if i.is_yes(intent.text) or intent.text.strip() == "申し込む":
        return submit(conv, intent, ctx)
    return Outcome(conv.state, replies=[r.text("「申し込む」を押すとお申し込みが確定します。")])


# --- what the service says after registering (not steps: built from the stored seminar and registration) -----

def registered_messages(seminar, registration, public_url: str, position: int | None = None) -> list[dict]:
    if registration.status == "waiting":
        return [r.text(f"「{seminar.title}」の{MODES[registration.mode]}のキャンセル待ちに登録しました（{position or 1}番目）。"
                       "お席が空きしだい、このLINEでお知らせします。キャンセル待ちの取り消しはメニューの「予約の確認・変更」からどうぞ。")]
    rows = [("セミナー", seminar.title), ("日時", format_time_range(seminar.start_at, seminar.end_at)),
            ("参加方法", MODES[registration.mode]), ("場所", where(seminar, registration.mode))]
    if registration.mode == "onsite" and seminar.venue_address:
        rows.append(("住所", seminar.venue_address))
    buttons = [r.uri("カレンダーに追加", ics_url(public_url, registration.checkin_token))]
    if registration.mode == "onsite" and seminar.map_url:
        buttons.append(r.uri("会場の地図", seminar.map_url))
    bubble = r.card("お申し込みを承りました", rows=rows, buttons=buttons,
                    body=["キャンセルはメニューの「予約の確認・変更」からできます。"])
    return [r.flex(f"セミナーのお申し込みを承りました：{seminar.title}", bubble),
            *checkin_messages(registration, public_url)]


REFUSED = {
    "unknown": NOT_OPEN,
    "cancelled": "このセミナーは開催が中止になりました。ご迷惑をおかけして申し訳ありません。",
    "past": "このセミナーはすでに開始（終了）しているため、お申し込みいただけません。",
    "closed": "このセミナーはお申し込みの受付を締め切りました。",
    "already": "このセミナーにはすでにお申し込みいただいています。内容はメニューの「予約の確認・変更」からご確認いただけます。",
    "no_mode": "この参加方法は、このセミナーではご用意がありません。",
}


def refused_messages(outcome: str) -> list[dict]:
    return [r.text(REFUSED.get(outcome, NOT_OPEN), quick=[r.postback("セミナー一覧", "seminars")])]


# --- cancelling and declining --------------------------------------------------------------------------------

def registration_bubble(x: RegistrationSummary) -> dict:
    status = STATUSES.get(x.status, x.status) + (f"（{x.position}番目）" if x.position else "")
    rows = [("日時", format_time_range(x.start_at, x.end_at)), ("参加方法", MODES.get(x.mode, x.mode)), ("状況", status)]
    buttons = [] if x.status == "attended" else [
        r.postback("キャンセルする", "seminar_cancel", display="セミナーをキャンセルする", r=str(x.id))]
    return r.card(f"セミナー：{x.title}", rows=rows, buttons=buttons)


def ask_cancel(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    x = _registration(ctx, intent.data.get("r", ""))
    if x is None or x.status == "attended":
        return _plain(conv, ctx, "そのお申し込みは見つかりませんでした。すでにキャンセル済みの可能性があります。")
    what = "キャンセル待ち" if x.status == "waiting" else "お申し込み"
    return m.leave(conv, ctx, [r.text(
        f"「{x.title}」（{format_time_range(x.start_at, x.end_at)}）の{what}をキャンセルしますか？",
        quick=[r.postback("キャンセルする", "seminar_cancel_yes", display="キャンセルする", r=str(x.id)),
               r.postback("キャンセルしない", "menu", display="キャンセルしない")])], prompt=False)


def do_cancel(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    x = _registration(ctx, intent.data.get("r", ""))
    if x is None or x.status == "attended":
        return _plain(conv, ctx, "そのお申し込みは見つかりませんでした。すでにキャンセル済みの可能性があります。")
    outcome = m.leave(conv, ctx, [r.text(f"「{x.title}」のお申し込みをキャンセルしました。またのご参加をお待ちしています。",
                                         quick=m.menu_quick(conv, ctx))], prompt=False)
    outcome.effects.append(CancelRegistration(x.id))
    return outcome


def decline(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """辞退する on a promotion notice: the service checks it is this user's promoted seat."""
    wanted = intent.data.get("r", "")
    if not wanted.isdigit():
        return _plain(conv, ctx, "この操作はご利用いただけません。")
    outcome = m.leave(conv, ctx, [r.text("承知しました。辞退を承りました。お席は次にお待ちの方にお回しします。")], prompt=False)
    outcome.effects.append(DeclinePromotion(int(wanted)))
    return outcome
