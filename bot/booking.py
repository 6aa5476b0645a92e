"""Booking a consultation slot, and changing or cancelling it: the carousel, the picker, the cut-off."""
from __future__ import annotations

import logging
import re
import unicodedata
from datetime import date, datetime, time, timedelta
from urllib.parse import quote

from bot import replies as r
from bot.conversation import (
    BookingSummary, BookSlot, CancelBooking, Context, Conversation, CoordinatorAnswer, Intent, OfferedSlot, Outcome,
    PopupOffer, State,
)
from bot import intake
from bot.intake import METHODS, consent_given, is_no, privacy_notice
from bot.municipalities import match_municipality
from bot.jatime import TOKYO, format_clock, format_date, format_datetime, format_time_range, holiday_name, to_tokyo
from bot.menu import in_intake, leave, menu_quick
from bot.seminars import registration_bubble

log = logging.getLogger(__name__)

PAGE_DAYS = 7
TIMES_PER_DAY = 8
SLOT_FORMAT = "%Y%m%d%H%M"
CANCEL_REASONS = ("日程の都合がつかなくなった", "問題が解決した", "別の方法で相談したい", "その他")


def slot_key(start: datetime) -> str:
    return to_tokyo(start).strftime(SLOT_FORMAT)


def parse_slot_key(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, SLOT_FORMAT).replace(tzinfo=TOKYO)
    except (TypeError, ValueError):
        return None


def _page_start(conv: Conversation) -> date | None:
    value = conv.data.get("slot_from")
    return date.fromisoformat(value) if value else None


def _region(conv: Conversation) -> str | None:
    """Where the user is matters for visits only: online, phone and email consultations go to any coordinator."""
    return conv.data.get("region") if conv.data.get("method") == "visit" else None


def _offers(conv: Conversation, ctx: Context, after: date | None = None, days: int = PAGE_DAYS) -> list[OfferedSlot]:
    return ctx.slots.offer(method=conv.data.get("method", "online"), region=_region(conv),
                           after=after or _page_start(conv), days=days, preferred=conv.data.get("prefer"))


def _notice_hours(conv: Conversation, ctx: Context) -> int:
    rules = ctx.config.booking
    return rules.min_notice_hours_visit if conv.data.get("method") == "visit" else rules.min_notice_hours


def earliest(conv: Conversation, ctx: Context) -> datetime:
    """The first moment that can still be booked with the method chosen (the minimum notice)."""
    return to_tokyo(ctx.now) + timedelta(hours=_notice_hours(conv, ctx))


def last_day(ctx: Context) -> date:
    """The last day bookings are taken for (the horizon)."""
    return to_tokyo(ctx.now).date() + timedelta(days=ctx.config.booking.horizon_days)


def _outside_window(conv: Conversation, ctx: Context, start: datetime) -> str | None:
    """Why `start` cannot be booked whatever the calendars say, or None."""
    if start < to_tokyo(ctx.now):
        return "その日時はすでに過ぎています。"
    if start < earliest(conv, ctx):
        return (f"{METHODS.get(conv.data.get('method', ''), 'ご相談')}のご予約は、"
                f"{_notice_hours(conv, ctx)}時間前までにお願いしています。")
    if to_tokyo(start).date() > last_day(ctx):
        return f"ご予約は{format_date(last_day(ctx))}までの日程で承っています。"
    return None


def closures_note(ctx: Context, first: date, days: int) -> list[str]:
    """The program's closed periods (年末年始休業 ...) that fall within the days shown."""
    last = first + timedelta(days=days - 1)
    return [f"{format_date(c.start)}〜{format_date(c.end)}は{c.name or '休業期間'}のため、ご予約を承っていません。"
            for c in ctx.config.closures if c.start <= last and c.end >= first]


# --- choosing a slot -----------------------------------------------------------------------------------

def ask_slot(conv: Conversation, ctx: Context) -> list[dict]:
    offers = _offers(conv, ctx)
    nearby = [p for p in ctx.slots.popups(region=conv.data.get("region")) if p.nearby] \
        if conv.data.get("method") == "visit" and not conv.data.get("slot_from") else []
    first = _page_start(conv) or to_tokyo(ctx.now).date()
    next_from = (max(o.start for o in offers).date() if offers else first + timedelta(days=PAGE_DAYS - 1)) + timedelta(days=1)
    more = next_from <= last_day(ctx)
    quick = [r.postback("他の日を見る", "more_slots", display="他の日を見る", start=next_from.isoformat())] if more else []
    quick += [_picker(conv, ctx), r.postback("あとで予約する", "later", display="あとで予約する")]
    if conv.data.get("prefer"):
        quick.insert(-1, r.postback("全員の空きを見る", "prefer", display="担当者を問わず探す", v=""))
    elif met := ctx.slots.previous(method=conv.data.get("method", "online"), region=_region(conv)):
        quick.insert(-1, r.postback("前回の担当者で探す", "prefer", display=f"前回の担当（{met[1]}）で探す", v=met[0]))
    notes = closures_note(ctx, first, max((next_from - first).days, 1))
    if not more:
        notes.append(f"ご予約は{format_date(last_day(ctx))}までの日程で承っています。"
                     "それより先をご希望の場合は、いったん「あとで予約する」を選び、後日あらためてお申し込みいただくか、"
                     "「担当者と話す」からご相談ください。")
    if not offers and not nearby:
        ahead = "「他の日を見る」か、日時を指定して探してください。" if more else ""
        return [r.text("\n".join([f"{format_date(first)}から{PAGE_DAYS}日間は、ご希望の方法で空いている時間がありませんでした。{ahead}",
                                  *notes]), quick=quick + ([r.postback("担当者と話す", "handover")] if not more else []))]
    by_day: dict[date, list[OfferedSlot]] = {}
    for o in offers:
        by_day.setdefault(to_tokyo(o.start).date(), []).append(o)
    bubbles = [popup_bubble(p) for p in nearby[:2]]
    bubbles += [_day_bubble(day, slots) for day, slots in list(by_day.items())[:9 - len(bubbles)]]
    bubbles.append(r.card("ほかの日時", body=["ご都合の合う時間がなければ、ほかの日を表示するか、日時を指定してください。"],
                          buttons=quick[:2]))
    method = METHODS.get(conv.data.get("method", ""), "")
    return [r.text("\n".join([f"ご相談の日時を選んでください（{method}）。土日・祝日も担当者がいる日は選べます。", *notes])),
            r.flex("ご相談の日時を選んでください", {"type": "carousel", "contents": bubbles}, quick=quick)]


def _picker(conv: Conversation, ctx: Context) -> dict:
    """The date-time picker, limited to what can be booked: from the minimum notice to the horizon."""
    first = earliest(conv, ctx)
    first = (first + timedelta(minutes=59)).replace(minute=0, second=0, microsecond=0)  # the next full hour
    initial = max(first, datetime.combine(first.date() + timedelta(days=1), time(10), TOKYO)
                  if first.hour >= 17 else first.replace(hour=max(first.hour, 10)))
    return r.datetime_picker("日時を指定", "pick_slot", mode="datetime", initial=f"{initial:%Y-%m-%dT%H:%M}",
                             min=f"{first:%Y-%m-%dT%H:%M}", max=f"{last_day(ctx)}T23:59")


# Day headers coloured as Japanese calendars do: Saturdays blue, Sundays and public holidays red.
DAY_COLOURS = {"weekday": "#06c755", "saturday": "#1a66cc", "holiday": "#d93636"}


def day_colour(day: date) -> str:
    if day.weekday() == 6 or holiday_name(day):
        return DAY_COLOURS["holiday"]
    return DAY_COLOURS["saturday"] if day.weekday() == 5 else DAY_COLOURS["weekday"]


def _day_bubble(day: date, slots: list[OfferedSlot]) -> dict:
    buttons = [{"type": "button", "style": "secondary", "height": "sm", "margin": "sm",
                "action": r.postback(f"{format_clock(to_tokyo(s.start).time())}〜{format_clock(to_tokyo(s.end).time())}",
                                     "slot", display=f"{format_time_range(s.start, s.end)}で予約",
                                     c=s.coordinator, t=slot_key(s.start))}
               for s in slots[:TIMES_PER_DAY]]
    return {"type": "bubble", "size": "kilo",
            "header": {"type": "box", "layout": "vertical", "backgroundColor": day_colour(day), "contents": [
                {"type": "text", "text": format_date(day), "weight": "bold", "color": "#ffffff", "wrap": True}]},
            "body": {"type": "box", "layout": "vertical", "contents": buttons}}


def popup_bubble(p: PopupOffer) -> dict:
    """A pop-up day: where, when, and its free times as buttons."""
    details = [{"type": "text", "text": p.address, "size": "sm", "color": "#666666", "wrap": True}] if p.address else []
    if p.nearby:
        details.insert(0, {"type": "text", "text": "お近くの会場です", "size": "sm", "color": "#06c755", "weight": "bold"})
    if p.note:
        details.append({"type": "text", "text": p.note, "size": "sm", "wrap": True})
    buttons = [{"type": "button", "style": "secondary", "height": "sm", "margin": "sm",
                "action": r.postback(f"{format_clock(to_tokyo(s.start).time())}〜{format_clock(to_tokyo(s.end).time())}",
                                     "popup_slot", display=f"出張相談会 {format_time_range(s.start, s.end)}で予約",
                                     d=str(p.day_id), t=slot_key(s.start))}
               for s in p.slots[:TIMES_PER_DAY]]
    return {"type": "bubble", "size": "kilo",
            "header": {"type": "box", "layout": "vertical", "backgroundColor": "#e8833a", "contents": [
                {"type": "text", "text": "出張相談会", "size": "xs", "color": "#ffffff"},
                {"type": "text", "text": f"{format_date(p.start.date())} {p.venue}", "weight": "bold",
                 "color": "#ffffff", "wrap": True}]},
            "body": {"type": "box", "layout": "vertical", "contents": details + buttons}}


def list_popups(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """The 出張相談会 menu: the days ahead, those in the user's region first."""
    region = conv.data.get("region") or _profile_region(ctx)
    offers = ctx.slots.popups(region=region) if ctx.slots else []
    if not offers:
        return leave(conv, ctx, [r.text(
            "出張相談会は、県内各地の商工会議所・商工会で開いています。いまお申し込みいただける日程はありません。"
            "決まり次第このアカウントでお知らせします。それまでは「相談を申し込む」からご相談ください。",
            quick=menu_quick(conv, ctx))], prompt=False)
    return leave(conv, ctx, [r.text("出張相談会の日程です。ご都合の良い時間を選んでください（予約制・無料）。"),
                             r.flex("出張相談会の日程", {"type": "carousel", "contents": [popup_bubble(p) for p in offers[:10]]},
                                    quick=menu_quick(conv, ctx))], prompt=False)


def _profile_region(ctx: Context) -> str | None:
    found = match_municipality(ctx.profile.municipality) if ctx.profile.municipality else None
    return found.region if found else None


def _popup_offer(ctx: Context, day: str, t: str) -> tuple[PopupOffer, OfferedSlot] | None:
    """The pop-up day and free time a postback names, if both are still offered."""
    start = parse_slot_key(t)
    offer = next((p for p in (ctx.slots.popups(region=None) if ctx.slots else ()) if str(p.day_id) == day), None)
    slot = next((x for x in offer.slots if x.start == start), None) if offer and start else None
    return (offer, slot) if slot else None


def popup_slot(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """A tap on a pop-up time: confirmed, then booked, when the consultation is on record; else the intake comes first."""
    day, t = str(intent.data.get("d", "")), str(intent.data.get("t", ""))
    found = _popup_offer(ctx, day, t)
    if found is None:
        return Outcome(conv.state, prompt=conv.state != State.IDLE, replies=[r.text(
            "その出張相談会の時間は、終了したか満席になりました。メニューの「出張相談会」から最新の日程をご覧ください。",
            quick=[r.postback("出張相談会", "popup")] if conv.state == State.IDLE else None)])
    offer, slot = found
    if conv.state == State.CHOOSE_SLOT and conv.data.get("consultation_id"):
        return _ask_to_confirm(conv, ctx, slot, popup=offer)
    data = {"popup": offer.day_id, "popup_t": t, "method": "visit"}
    said = [r.text(f"出張相談会（{format_datetime(slot.start)}・{offer.venue}）のお申し込みを承ります。"
                   "先にご相談内容などをお伺いします。")]
    if in_intake(conv) and conv.data.get("consented"):  # chosen in the middle of an intake: that intake goes on
        data = {**conv.data, **data}
        return Outcome(intake.next_state(data, ctx), data=data, replies=said)
    if not consent_given(ctx, conv):
        return Outcome(State.ASK_CONSENT, data=data, suspended=None, prompt=False, replies=[*said, *privacy_notice(ctx)])
    return Outcome(State.ASK_QUESTION, data={**data, "consented": True}, suspended=None, replies=said)


def books_chosen_popup(step):
    """The intake's submit, and then the pop-up seat chosen before the intake, booked in the same transaction."""
    def run(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
        outcome = step(conv, intent, ctx)
        start = parse_slot_key(conv.data.get("popup_t", ""))
        if outcome.next_state != State.CHOOSE_SLOT or not conv.data.get("popup") or start is None:
            return outcome
        day = conv.data["popup"]
        booked = _book(Conversation(conv.user_id, State.CHOOSE_SLOT, outcome.data), ctx,
                       OfferedSlot(f"popup:{day}", start, start), popup_day=day)
        outcome.next_state, outcome.data, outcome.prompt = booked.next_state, booked.data, False
        outcome.effects += booked.effects
        return outcome

    run.__name__ = step.__name__
    return run


submit = books_chosen_popup(intake.submit)
summary_text = books_chosen_popup(intake.summary_text)


def _book(conv: Conversation, ctx: Context, slot: OfferedSlot, popup_day: int | None = None) -> Outcome:
    day = to_tokyo(slot.start).date()

    def taken() -> list[dict]:
        again = Conversation(conv.user_id, State.CHOOSE_SLOT, {**conv.data, "slot_from": day.isoformat()})
        if popup_day or not _offers(again, ctx):  # nothing near the refused time, or a pop-up seat: from the first page
            again.data.pop("slot_from")
        return [r.text("申し訳ありません。その時間はちょうど埋まってしまいました。あらためて空いている時間をお選びください。"),
                *ask_slot(again, ctx)]

    return Outcome(State.IDLE, data={}, prompt=False, effects=[BookSlot(
        slot.coordinator, slot.start, conv.data.get("method", "online"), _region(conv),
        conv.data.get("consultation_id"), conv.data.get("replaces"), taken, popup_day)])


def _ask_to_confirm(conv: Conversation, ctx: Context, slot: OfferedSlot, popup: PopupOffer | None = None) -> Outcome:
    """「この日時で予約しますか」: the time, method and coordinator (or venue), before anything is booked."""
    method = conv.data.get("method", "online")
    if popup:
        rows = [("日時", format_time_range(slot.start, slot.end)), ("方法", "出張相談会（会場でのご相談）"),
                ("会場", popup.venue), *([("住所", popup.address)] if popup.address else [])]
        chosen = {"d": popup.day_id, "t": slot_key(slot.start)}
    else:
        coordinator = ctx.config.coordinator(slot.coordinator)
        rows = [("日時", format_time_range(slot.start, slot.end)), ("方法", METHODS.get(method, method)),
                ("担当", coordinator.name if coordinator else "")]
        chosen = {"c": slot.coordinator, "t": slot_key(slot.start)}
    bubble = r.card("この日時で予約しますか？", rows=rows, buttons=[
        r.postback("予約する", "confirm_slot", display="この日時で予約する"),
        r.postback("別の日時を選ぶ", "other_slot", display="別の日時を選ぶ")])
    return Outcome(State.CHOOSE_SLOT, prompt=False, data={**conv.data, "chosen": chosen},
                   replies=[r.flex(f"この日時で予約しますか：{format_time_range(slot.start, slot.end)}", bubble)])


def confirm_slot(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """予約する on the confirmation card: books the time chosen just before (kept in the conversation, not the postback)."""
    chosen = conv.data.get("chosen") or {}
    start = parse_slot_key(chosen.get("t", ""))
    data = {k: v for k, v in conv.data.items() if k != "chosen"}
    if start is None:
        return Outcome(State.CHOOSE_SLOT, data=data, replies=[r.text("日時がまだ選ばれていません。一覧からお選びください。")])
    again = Conversation(conv.user_id, conv.state, data)
    if "d" in chosen:
        return _book(again, ctx, OfferedSlot(f"popup:{chosen['d']}", start, start), popup_day=int(chosen["d"]))
    return _book(again, ctx, OfferedSlot(chosen.get("c", ""), start, start))


def other_slot(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    return Outcome(State.CHOOSE_SLOT, data={k: v for k, v in conv.data.items() if k != "chosen"})


def _refused(conv: Conversation, why: str) -> Outcome:
    """A time that cannot be booked: say plainly why, and show the choices again."""
    log.warning("slot tap refused: stale, impossible or forged")
    return Outcome(State.CHOOSE_SLOT, data={k: v for k, v in conv.data.items() if k != "chosen"},
                   replies=[r.text(f"{why}あらためて空いている時間からお選びください。")])


def take_slot(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    start = parse_slot_key(str(intent.data.get("t", "")))
    coordinator = ctx.config.coordinator(str(intent.data.get("c", "")))
    if start is None or coordinator is None:
        return _refused(conv, "日時を読み取れませんでした。")
    why = _outside_window(conv, ctx, start)
    if why:
        return _refused(conv, why)
    slot = next((o for o in _offers(conv, ctx, after=start.date(), days=1) if o.start == start), None)
    if slot is None:
        return _refused(conv, "申し訳ありません。その時間はご予約いただけません（埋まったか、受付時間外です）。")
    # The service checks the tapped coordinator's slot again under a lock when it books.
    return _ask_to_confirm(conv, ctx, OfferedSlot(coordinator.id, slot.start, slot.end))


def picked_slot(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    try:
        wanted = datetime.fromisoformat(str(intent.params.get("datetime", ""))).replace(tzinfo=TOKYO)
    except ValueError:
        return _refused(conv, "日時を読み取れませんでした。")
    why = _outside_window(conv, ctx, wanted)
    if why:
        return _refused(conv, why)
    day_offers = _offers(conv, ctx, after=wanted.date(), days=1)
    match = next((o for o in day_offers if o.start == wanted), None)
    if match:
        return _ask_to_confirm(conv, ctx, match)
    said = ("ご指定の日時は空いていませんでした。その日の空いている時間です。" if day_offers
            else "ご指定の日は空いている時間がありませんでした。近い日の空き時間です。")
    return Outcome(State.CHOOSE_SLOT, data={**conv.data, "slot_from": wanted.date().isoformat()}, replies=[r.text(said)])


def more_slots(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    today = to_tokyo(ctx.now).date()
    try:
        start = max(date.fromisoformat(str(intent.data.get("start", ""))), today)
    except ValueError:
        start = today
    if start > last_day(ctx):
        return Outcome(State.CHOOSE_SLOT, prompt=False, replies=[r.text(
            f"ご予約は{format_date(last_day(ctx))}までの日程で承っています。それより先をご希望の場合は、"
            "いったん「あとで予約する」を選び、後日あらためてお申し込みいただくか、「担当者と話す」からご相談ください。",
            quick=[r.postback("最初の日から見る", "more_slots", display="最初の日から見る", start=today.isoformat()),
                   r.postback("あとで予約する", "later", display="あとで予約する"), r.postback("担当者と話す", "handover")])])
    return Outcome(State.CHOOSE_SLOT, data={**conv.data, "slot_from": start.isoformat()})


def prefer(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """Look for times with the coordinator met before (v = their id), or with anyone again (v empty)."""
    data = {k: v for k, v in conv.data.items() if k not in ("prefer", "slot_from")}
    if intent.data.get("v"):
        data["prefer"] = intent.data["v"]
    return Outcome(State.CHOOSE_SLOT, data=data)


def later(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    return Outcome(State.IDLE, data={}, prompt=False, replies=[r.text(
        "承知しました。日時はあとからメニューの「予約の確認・変更」で選べます。"
        "担当のDXコーディネーターからご連絡することもあります。", quick=[r.say("メニュー")])])


def slot_text(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """Typed words while choosing: 'あとで', or a date such as '12月3日' / '12/3' to look from."""
    text = unicodedata.normalize("NFKC", intent.text)
    if "あとで" in text or "後で" in text or is_no(text):
        return later(conv, intent, ctx)
    found = re.search(r"(\d{1,2})\s*[月/]\s*(\d{1,2})", text)
    if found:
        today = to_tokyo(ctx.now).date()
        try:
            day = date(today.year, int(found.group(1)), int(found.group(2)))
        except ValueError:
            day = None
        if day:
            day = day if day >= today else day.replace(year=today.year + 1)
            return Outcome(State.CHOOSE_SLOT, data={**conv.data, "slot_from": day.isoformat()})
    return Outcome(State.CHOOSE_SLOT, replies=[r.text("上の一覧から時間を選ぶか、「12月3日」のように日付を送ってください。")])


# --- the user's bookings: list, change, cancel ------------------------------------------------------------

def change_deadline(booking: BookingSummary, ctx: Context) -> datetime:
    """Until when the user may change or cancel in LINE: visits until the set time the day before, others some hours before."""
    if booking.method == "visit":
        day_before = to_tokyo(booking.start).date() - timedelta(days=1)
        return datetime.combine(day_before, time.fromisoformat(ctx.config.booking.change_cutoff_visit), TOKYO)
    return booking.start - timedelta(hours=ctx.config.booking.change_cutoff_hours)


def _past_deadline(booking: BookingSummary, ctx: Context) -> Outcome:
    phone = f"お電話（{ctx.config.contact_phone}）か、" if ctx.config.contact_phone else ""
    return Outcome(State.IDLE, prompt=False, replies=[r.text(
        f"{format_time_range(booking.start, booking.end)}のご予約は、LINEでの変更・キャンセルの受付期限"
        f"（{format_date(to_tokyo(change_deadline(booking, ctx)).date())} {format_clock(to_tokyo(change_deadline(booking, ctx)).time())}）を過ぎています。"
        f"お手数ですが、{phone}「担当者と話す」から担当の{booking.coordinator_name}にご連絡ください。",
        quick=[r.postback("担当者と話す", "handover")])])


def _own_booking(intent: Intent, ctx: Context) -> BookingSummary | None:
    wanted = intent.data.get("b", "")
    found = next((b for b in ctx.bookings if str(b.id) == wanted), None)
    if found is None:
        log.warning("postback names booking %r, which is not among the user's upcoming bookings", wanted[:20])
    return found


def _not_found() -> Outcome:
    return Outcome(State.IDLE, prompt=False, replies=[r.text(
        "そのご予約は見つかりませんでした。メニューの「予約の確認・変更」からもう一度お選びください。")])


def list_bookings(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    bubbles = [_booking_bubble(b) for b in ctx.bookings[:9]]
    bubbles += [registration_bubble(x) for x in ctx.registrations[: 10 - len(bubbles)]]  # seminars, with 取消
    unbooked = [c for c in ctx.consultations if c.bookable]
    for c in unbooked[: 10 - len(bubbles)]:
        bubbles.append(r.card(f"受付番号 {c.receipt_no}", rows=[("分野", c.category), ("受付日", format_date(c.received_at.date()))],
                              body=["まだ日時が決まっていません。"],
                              buttons=[r.postback("日時を予約する", "book", display="日時を予約する", c=str(c.id))]))
    if not bubbles:
        return leave(conv, ctx, [r.text("現在、ご予約・セミナーのお申し込みはありません。", quick=menu_quick(conv, ctx))], prompt=False)
    return leave(conv, ctx, [r.flex("ご予約の確認・変更", {"type": "carousel", "contents": bubbles},
                                    quick=menu_quick(conv, ctx))], prompt=False)


def _booking_bubble(b: BookingSummary) -> dict:
    rows = [("日時", format_time_range(b.start, b.end)), ("方法", METHODS.get(b.method, b.method)), ("担当", b.coordinator_name)]
    if b.meet_url:
        rows.append(("Meet", b.meet_url))
    body = ([HELD_BODY] if b.held else ["カレンダーに登録中です。確定しだいお知らせします。"]) if b.status == "pending" else []
    return r.card("ご予約", rows=rows, body=body, buttons=[
        r.postback("日時を変更する", "reschedule", display="日時を変更する", b=str(b.id)),
        r.postback("キャンセルする", "cancel_booking", display="キャンセルする", b=str(b.id))])


def book_later(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    consultation = next((c for c in ctx.consultations if str(c.id) == intent.data.get("c") and c.bookable), None)
    if consultation is None:
        return _not_found()
    return Outcome(State.CHOOSE_SLOT, data={"consultation_id": consultation.id, "method": consultation.method,
                                           "region": consultation.region})


def _changeable(intent: Intent, ctx: Context) -> tuple[BookingSummary | None, Outcome | None]:
    """The user's own booking named in the postback, or the answer refusing it (not theirs, or past the cut-off)."""
    booking = _own_booking(intent, ctx)
    if booking is None:
        return None, _not_found()
    if ctx.now >= change_deadline(booking, ctx):
        return None, _past_deadline(booking, ctx)
    return booking, None


def reschedule(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    booking, refused = _changeable(intent, ctx)
    if refused:
        return refused
    return Outcome(State.CHOOSE_SLOT, replies=[r.text(f"{format_time_range(booking.start, booking.end)}のご予約を変更します。")],
                   data={"method": booking.method, "region": booking.region, "replaces": booking.id,
                         "consultation_id": booking.consultation_id})


def cancel_booking(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    booking, refused = _changeable(intent, ctx)
    if refused:
        return refused
    return Outcome(State.ASK_CANCEL_REASON, data={"cancel": booking.id, "when": format_time_range(booking.start, booking.end)})


def ask_cancel_reason(conv: Conversation, ctx: Context) -> list[dict]:
    return [r.text(f"{conv.data.get('when', '')}のご予約をキャンセルします。よろしければ理由を選ぶか、入力してください。",
                   quick=[*(r.postback(reason, "cancel_reason", v=reason) for reason in CANCEL_REASONS),
                          r.postback("キャンセルしない", "keep", display="キャンセルしない")])]


def take_cancel_reason(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    reason = intent.value[:500]
    if not reason:
        return Outcome(State.ASK_CANCEL_REASON, replies=[r.text("理由を選ぶか、入力してください。")])
    return Outcome(State.IDLE, data={}, prompt=False, effects=[CancelBooking(int(conv.data["cancel"]), reason)],
                   replies=[r.text(f"{conv.data.get('when', '')}のご予約をキャンセルしました。またいつでもご相談ください。",
                                   quick=[r.say("メニュー")])])


def keep_booking(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    return Outcome(State.IDLE, data={}, prompt=False, replies=[r.text("ご予約はそのままです。当日お待ちしています。")])


def coordinator_answer(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """確認 / 担当を代わってほしい on a coordinator's booking card; whatever the conversation was doing goes on."""
    booking_id = intent.data.get("b", "")
    if not booking_id.isdigit():
        return Outcome(conv.state, prompt=False, replies=[r.text("操作を読み取れませんでした。")])
    return Outcome(conv.state, prompt=False, effects=[CoordinatorAnswer(int(booking_id), intent.name == "coord_swap")])


def map_url(address: str) -> str:
    return "https://www.google.com/maps/search/?api=1&query=" + quote(address)


def confirmation(b: BookingSummary, changed: bool = False, previous: tuple[datetime, datetime] | None = None,
                 reassigned: bool = False) -> list[dict]:
    """What the user is told once the booking is in the coordinator's calendar (or the pop-up seat is held).

    `reassigned`: staff gave the consultation to another coordinator, and the booking went with it at the same time.
    """
    title = "ご予約の担当者が変わりました" if reassigned else "ご予約を変更しました" if changed else "ご予約が確定しました"
    rows = [("受付番号", b.receipt_no)] if b.receipt_no else []
    if b.topic:
        rows.append(("ご相談", b.topic))
    if changed and previous and not reassigned:
        rows.append(("変更前", format_time_range(*previous)))
    rows.append(("変更後" if changed and previous else "日時", format_time_range(b.start, b.end)))
    buttons = []
    if b.venue:  # a seat at a pop-up day: a fixed venue, no coordinator to arrange a place with
        rows += [("方法", "出張相談会（会場でのご相談）"), ("会場", b.venue), *([("住所", b.address)] if b.address else [])]
        body = "当日は会場へ直接お越しください。受付で「LINEで予約した」とお伝えください。"
        if b.address:
            buttons.append(r.uri("会場の地図を見る", map_url(b.address)))
    else:
        rows += [("方法", METHODS.get(b.method, b.method)), ("担当", b.coordinator_name)]
        body = {"visit": "担当者から訪問先・来所場所について確認のご連絡をします。",
                "online": "当日は下のGoogle Meetのリンクからご参加ください。" if b.meet_url else "オンライン会議のURLは担当者からお送りします。",
                "phone": "当日、担当者からお電話します。",
                "email": "当日、担当者からメールでご連絡します。"}.get(b.method, "")
    if b.meet_url:
        rows.append(("Meet", b.meet_url))
        buttons.append(r.uri("Google Meetを開く", b.meet_url))
    buttons.append(r.postback("予約の確認・変更", "bookings"))
    lead = [f"担当者が{b.coordinator_name}に変わりました。日時と方法はそのままです。"] if reassigned else []
    return [r.flex(f"{title}：{format_time_range(b.start, b.end)}", r.card(title, rows=rows, body=[
        *lead, body, "ご相談の前に、このLINEでリマインダーをお送りします。変更・キャンセルはメニューの「予約の確認・変更」から。"],
        buttons=buttons))]


def change_email(b: BookingSummary, previous: tuple[datetime, datetime], program_name: str,
                 contact_name: str | None) -> tuple[str, str]:
    """Subject and body of the email telling someone without LINE (a web or email consultation) of a new date."""
    rows = [("受付番号", b.receipt_no), ("変更前", format_time_range(*previous)), ("変更後", format_time_range(b.start, b.end)),
            ("方法", METHODS.get(b.method, b.method)), ("担当", b.coordinator_name)]
    # The Meet link goes in an email of its own once the calendar has the new time (meet_email): it may not yet.
    online = ["Google Meetのリンクは、新しい日時の予約が確定しだい、別のメールでお送りします。", ""] if b.method == "online" else []
    lines = [f"{contact_name or 'ご担当者'} 様", "", "ご相談のご予約の日時を、次のとおり変更しました。", "",
             *(f"{k}：{v}" for k, v in rows if v), "", *online,
             "ご都合が悪い場合は、お手数ですがこのメールへの返信かお電話でお知らせください。", "", "--", program_name]
    return f"【{program_name}】ご予約の日時を変更しました {format_time_range(b.start, b.end)}", "\n".join(lines) + "\n"


def meet_email(b: BookingSummary, program_name: str, contact_name: str | None) -> tuple[str, str]:
    """Subject and body of the email giving someone without LINE (a web consultation) the Google Meet link of their
    online booking, once the calendar made it (after the receipt, which could not have it)."""
    rows = [("受付番号", b.receipt_no), ("日時", format_time_range(b.start, b.end)), ("方法", METHODS.get(b.method, b.method)),
            ("担当", b.coordinator_name), ("Google Meet", b.meet_url)]
    lines = [f"{contact_name or 'ご担当者'} 様", "", "オンラインでのご相談のご予約が確定しました。",
             "当日は、次のGoogle Meetのリンクからご参加ください。", "", *(f"{k}：{v}" for k, v in rows if v), "",
             "ご都合が悪い場合は、お手数ですがこのメールへの返信かお電話でお知らせください。", "", "--", program_name]
    return f"【{program_name}】オンライン相談のご案内（Google Meet） {format_time_range(b.start, b.end)}", "\n".join(lines) + "\n"


def pending_notice() -> list[dict]:
    """The calendar did not answer: the booking is held, and the user hears the truth."""
    return [r.text("ご予約を受け付けました。ただいま担当者のカレンダーへの登録に時間がかかっています。"
                   "この時間はお取りしていますので、確定しだいこのLINEでお知らせします。")]


HELD_BODY = "まだ確定していません。このお時間はお取りしていますので、事務局の担当者から改めてご連絡いたします。"


def held_notice(b: BookingSummary) -> list[dict]:
    """The calendar refused the booking for good: the user hears that it is held but not confirmed, and who acts next."""
    return [r.text(f"{format_time_range(b.start, b.end)}（担当：{b.coordinator_name}）のご予約は、担当者の予定表に"
                   "登録できなかったため、まだ確定しておりません。このお時間はお取りしていますので、"
                   "事務局の担当者から改めてご連絡いたします。ご不便をおかけし、申し訳ございません。")]


def reminder(b: BookingSummary, kind: str) -> list[dict]:
    when = "明日" if kind == "day_before" else "まもなく"
    lines = [f"【リマインダー】{when}、DXコーディネーターとのご相談です。",
             f"日時：{format_time_range(b.start, b.end)}", f"方法：{METHODS.get(b.method, b.method)}", f"担当：{b.coordinator_name}"]
    if b.meet_url:
        lines.append(f"Google Meet：{b.meet_url}")
    lines.append("ご都合が悪くなった場合は、メニューの「予約の確認・変更」からご連絡ください。")
    return [r.text("\n".join(lines), quick=[r.postback("予約の確認・変更", "bookings")])]


COORDINATOR_TITLES = {"new": "新しいご予約", "changed": "ご予約の変更", "cancelled": "ご予約のキャンセル",
                      "assigned": "担当になりました", "unassigned": "担当が変わりました"}
# Notices of something the coordinator no longer has: nothing to confirm, and no need of the question.
LETTING_GO = ("cancelled", "unassigned")


def coordinator_notice(kind: str, b: BookingSummary | None, company: str, category: str, question: str, contact: str,
                       receipt_no: str = "", note: str = "") -> list[dict]:
    """The coordinator's card: what they need for the meeting, with 確認 / 担当を代わってほしい.

    Without a booking (a case assigned before any date is set) it names the case by its receipt number.
    """
    title = COORDINATOR_TITLES[kind]
    rows = [("日時", format_time_range(b.start, b.end)), ("方法", METHODS.get(b.method, b.method))] if b else []
    rows += [("受付番号", receipt_no)] if receipt_no and not b else []
    rows += [("会社", company), ("分野", category), ("連絡先", contact)]
    if b and b.meet_url:
        rows.append(("Meet", b.meet_url))
    buttons = [] if kind in LETTING_GO or b is None else [
        r.postback("確認", "coord_ack", display="確認しました", b=str(b.id)),
        r.postback("担当を代わってほしい", "coord_swap", display="担当を代わってほしい", b=str(b.id))]
    alt = format_time_range(b.start, b.end) if b else f"受付番号 {receipt_no}"
    body = ([note] if note else []) + ([question[:300]] if question and kind not in LETTING_GO else [])
    return [r.flex(f"{title}：{alt}", r.card(title, rows=rows, body=body, buttons=buttons))]
