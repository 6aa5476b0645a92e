"""The consultation intake: each state's question, and the steps that take its answer."""
from __future__ import annotations

import re
import unicodedata
from typing import Any, Callable

from bot import replies as r
from bot.conversation import (
    Context, Conversation, Intent, Outcome, RecordConsent, RecordConsultation, SaveProfile, State,
)
from bot.municipalities import REGIONS, candidates, match_municipality, region
from bot.triage import OTHER
from bot.validation import parse_contact, parse_email, parse_phone

INDUSTRIES = ("製造業", "建設業", "卸売業・小売業", "飲食・宿泊業", "農林水産業", "医療・福祉",
              "運輸業", "情報通信業", "サービス業", "その他")
EMPLOYEES = (("1〜5人", 1, 5), ("6〜20人", 6, 20), ("21〜50人", 21, 50), ("51〜100人", 51, 100),
             ("101〜300人", 101, 300), ("301人以上", 301, 10**9))
METHODS = {"visit": "対面（訪問・来所）", "online": "オンライン", "phone": "電話", "email": "メール"}
METHOD_NAMES = {"visit": "訪問", "online": "オンライン", "phone": "電話", "email": "メール"}  # short, for tables
METHOD_WORDS = {"visit": ("対面", "訪問", "来所", "来て", "会って"), "online": ("オンライン", "zoom", "meet", "web", "ウェブ"),
                "phone": ("電話", "でんわ", "tel"), "email": ("メール", "mail")}
# Free text at a button step, mapped to the choice it names (the first choice whose words appear wins).
INDUSTRY_WORDS: dict[str, tuple[str, ...]] = {
    "製造業": ("製造", "工場", "焼酎", "酒造", "蔵元", "醸造", "加工", "メーカー", "ものづくり", "製作所", "製茶", "印刷"),
    "建設業": ("建設", "工務店", "建築", "土木", "リフォーム", "工事", "塗装", "設備", "大工", "左官", "電気工事"),
    "飲食・宿泊業": ("飲食", "食堂", "レストラン", "カフェ", "喫茶", "居酒屋", "ラーメン", "料理", "旅館", "ホテル", "民宿",
                 "宿泊", "ゲストハウス", "焼肉", "弁当"),
    "農林水産業": ("農業", "農家", "農園", "漁業", "漁協", "漁師", "水産", "養殖", "畜産", "林業", "牧場", "茶園", "果樹"),
    "医療・福祉": ("医療", "病院", "クリニック", "医院", "歯科", "薬局", "介護", "福祉", "保育", "デイサービス", "訪問看護"),
    "運輸業": ("運送", "運輸", "物流", "配送", "倉庫", "タクシー", "バス", "トラック", "海運"),
    "情報通信業": ("it", "ソフトウェア", "システム開発", "web制作", "ホームページ制作", "通信", "アプリ開発", "プログラミング"),
    "卸売業・小売業": ("卸", "小売", "商店", "販売", "ショップ", "スーパー", "お店", "店舗", "雑貨", "土産", "酒屋", "八百屋"),
    "サービス業": ("サービス", "美容", "理容", "サロン", "エステ", "清掃", "クリーニング", "不動産", "士業", "事務所",
               "教室", "塾", "整骨", "整体", "観光", "イベント"),
}
# Small numbers people write in words rather than digits.
NUMBER_WORDS = {"ひとり": 1, "一人": 1, "独り": 1, "家族": 3, "夫婦": 2, "ふたり": 2, "二人": 2, "三人": 3, "四人": 4, "五人": 5}
YES = ("はい", "ok", "おk", "お願いします", "おねがいします", "それで", "大丈夫", "yes", "うん", "よい", "いいです", "合って")
NO = ("いいえ", "違う", "ちがう", "別", "no", "変更")

# The fields asked in order; a field already in the conversation's data is not asked again.
ORDER: tuple[tuple[str, State], ...] = (
    ("company", State.ASK_COMPANY), ("industry", State.ASK_INDUSTRY), ("employees", State.ASK_EMPLOYEES),
    ("municipality", State.ASK_MUNICIPALITY), ("contact_name", State.ASK_CONTACT_NAME),
    ("phone", State.ASK_PHONE), ("email", State.ASK_EMAIL), ("method", State.ASK_METHOD),
)
PROFILE_FIELDS = ("company", "industry", "employees", "municipality", "contact_name", "phone", "email")
FIELD_LABELS = {"question": "ご相談内容", "category": "分野", "company": "会社名・屋号", "industry": "業種",
                "employees": "従業員数", "municipality": "市町村", "contact_name": "ご担当者名",
                "phone": "電話番号", "email": "メール", "method": "ご希望の相談方法"}
EDIT_TARGETS = {"question": State.ASK_QUESTION, "category": State.CHOOSE_CATEGORY, **{f: s for f, s in ORDER}}
MAX_QUESTION = 2000
MAX_COMPANY, MAX_CONTACT_NAME = 100, 50
CATEGORY_CHOICES = 3  # categories offered when the triage is not sure, besides その他


def norm(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


def is_yes(text: str) -> bool:
    t = norm(text)
    return any(t.startswith(w) for w in YES)


def is_no(text: str) -> bool:
    t = norm(text)
    return any(w in t for w in NO)


def next_state(data: dict[str, Any], ctx: Context) -> State:
    """The first field still missing, or the summary when all are there."""
    if "question" not in data:
        return State.ASK_QUESTION
    if ctx.profile.complete and "company" not in data and not data.get("profile_declined"):
        return State.CONFIRM_PROFILE
    for field, state in ORDER:
        if field not in data:
            return state
    return State.CONFIRM_SUMMARY


def _with(conv: Conversation, **changes) -> dict[str, Any]:
    return {**conv.data, **changes}


def _answer(conv: Conversation, ctx: Context, **changes) -> Outcome:
    data = _with(conv, **changes)
    return Outcome(next_state(data, ctx), data=data)


def _again(conv: Conversation, *reason: str) -> Outcome:
    """Stay, say why, and ask the same question again."""
    return Outcome(conv.state, replies=[r.text(t) for t in reason])


def _choices(action: str, values) -> list[dict]:
    return [r.postback(v, action, v=v) for v in values]


# --- answers that are not what was asked -------------------------------------------------------------------

_QUESTION_END = re.compile(r"(?:[?？]|ですか|ますか|でしょうか|ませんか|ないの|んですか|のですか)[\s。!！…ね]*$")
# Short answers to what people ask in the middle of the intake instead of answering it.
SIDE_ANSWERS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("無料", "料金", "費用", "お金", "いくら", "有料", "タダ", "お代"), "ご相談は無料です。何度でもご利用いただけます。"),
    (("個人情報", "秘密", "漏れ", "情報の扱い"), "お預かりした情報は、ご相談への対応と個人が特定されない集計にだけ使います。"),
    (("土日", "祝日", "何時", "いつ", "営業", "日程", "時間"),
     "ご相談の日時は、このあと空いている時間からお選びいただけます（土日・祝日も担当者がいる日は選べます）。"),
    (("どこ", "場所", "会場", "来て", "訪問"), "ご相談は対面（訪問・来所）、オンライン、電話、メールから選べます。"),
)


def looks_like_question(text: str) -> bool:
    return bool(_QUESTION_END.search(unicodedata.normalize("NFKC", text).strip()))


def side_answer(text: str) -> str:
    t = norm(text)
    return next((said for words, said in SIDE_ANSWERS if any(w in t for w in words)),
                "ご質問は、担当のDXコーディネーターがご相談の中でお答えします。")


# Greetings that open a first message. Alone they are no consultation, so they are never kept as its question.
GREETINGS = tuple(sorted((norm(g) for g in (
    "こんにちは", "こんにちわ", "こんばんは", "こんばんわ", "おはようございます", "おはよう", "はじめまして", "初めまして",
    "よろしくお願いします", "よろしくお願いいたします", "よろしくおねがいします", "宜しくお願いします",
    "お世話になっております", "お世話になります", "お疲れ様です", "どうも", "hello", "hi")), key=len, reverse=True))


def is_greeting(text: str) -> bool:
    """Only greetings, with punctuation or emoji at most: 「こんにちは！」, 「はじめまして。よろしくお願いします」."""
    rest = re.sub(r"[\W_]", "", norm(text))
    if not rest:
        return False
    for greeting in GREETINGS:
        rest = rest.replace(greeting, "")
    return rest == ""


def has_letters(text: str) -> bool:
    """At least one letter of any script: emoji, punctuation and digits alone are not an answer."""
    return any(unicodedata.category(c).startswith("L") for c in text)


def is_mash(text: str) -> bool:
    """Keyboard mash or one key held down: 'ああああ', 'sdfghjk', 'www'."""
    t = norm(text)
    letters = [c for c in t if unicodedata.category(c).startswith("L")]
    if len(letters) >= 3 and len(set(letters)) <= 2:
        return True
    if t.isascii() and t.isalpha() and len(t) >= 5:
        vowels = sum(c in "aeiouy" for c in t)
        return vowels / len(t) < 0.2 or any(row in t for row in ("asdf", "qwer", "zxcv", "hjkl", "uiop"))
    return False


def text_problem(text: str, what: str, *, digits_ok: bool = True) -> str | None:
    """Why `text` cannot be taken as `what` (no letters, a phone number in a name, keyboard mash), or None."""
    if not has_letters(text) or (not digits_ok and sum(c.isdigit() for c in text) >= 3) or is_mash(text):
        return f"{what}を文字で教えてください。"
    return None


def company_problem(name: str) -> str | None:
    """Why `name` (stripped) cannot be the company's name, or None: the LINE intake and the web form check the same."""
    return text_problem(name, "会社名（屋号）") or (
        f"会社名は{MAX_COMPANY}文字以内でお願いします。" if len(name) > MAX_COMPANY else None)


def contact_name_problem(name: str) -> str | None:
    """Why `name` (stripped) cannot be the contact's name, or None."""
    return text_problem(name, "ご担当者のお名前", digits_ok=False) or (
        f"お名前を{MAX_CONTACT_NAME}文字以内で教えてください。" if len(name) > MAX_CONTACT_NAME else None)


def _not_an_answer(conv: Conversation, text: str, problem: Callable[[str], str | None]) -> Outcome | None:
    """None when `text` can be taken as the field; else the answer that keeps the field and asks it again."""
    if looks_like_question(text):
        return _again(conv, f"{side_answer(text)}\n（ご相談の入力の途中です。続きをお願いします）")
    refused = problem(text)
    return _again(conv, refused) if refused else None


# --- 戻る: the way back to the step before ----------------------------------------------------------------

# What an answer at each step put in the conversation's data, taken out again when the user goes back to it.
ANSWER_KEYS: dict[State, tuple[str, ...]] = {
    State.ASK_QUESTION: ("question", "category", "confidence", "keywords", "category_confirmed"),
    State.CONFIRM_CATEGORY: ("category_confirmed",), State.CHOOSE_CATEGORY: ("category_confirmed",),
    State.ASK_MUNICIPALITY: ("municipality", "region", "region_shown"),
    State.ASK_PHONE: ("phone", "phone_required"), State.ASK_EMAIL: ("email",),
    State.CONFIRM_PROFILE: (*PROFILE_FIELDS, "region", "profile_declined"),
    **{state: (field,) for field, state in ORDER if state not in (State.ASK_MUNICIPALITY, State.ASK_PHONE, State.ASK_EMAIL)},
}


def with_trail(data: dict[str, Any], state: State) -> dict[str, Any]:
    """`data` remembering that `state` was answered, for 戻る."""
    return {**data, "trail": [*data.get("trail", []), str(state)]}


def nav_actions(conv: Conversation) -> list[dict]:
    back = [r.postback("戻る", "back", display="戻る")] if conv.data.get("trail") else []
    return [*back, r.postback("やめる", "cancel", display="やめる")]


def go_back(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    trail = list(conv.data.get("trail", []))
    if not trail:
        return Outcome(conv.state, replies=[r.text("これより前には戻れません。")])
    previous = State(trail.pop())
    data = {k: v for k, v in conv.data.items() if k not in ANSWER_KEYS.get(previous, ())}
    return Outcome(previous, data={**data, "trail": trail}, replies=[r.text("ひとつ前の質問に戻ります。")])


# --- consent -------------------------------------------------------------------------------------------

def consent_paragraphs(config) -> list[str]:
    """What people consent to, in LINE and on the web form alike (the version is config.privacy_policy_version)."""
    return [f"{config.program_name}では、ご相談への対応（担当コーディネーターからのご連絡、日程調整、支援機関へのご紹介）と、"
            "県への実績報告（個人が特定されない集計のみ）のために、会社名・ご担当者名・連絡先・ご相談内容をお預かりします。",
            "お預かりした情報は、ご本人の同意なく上記以外の目的に使ったり、第三者に提供したりすることはありません。"]


def privacy_notice(ctx: Context) -> list[dict]:
    version = ctx.config.privacy_policy_version
    bubble = r.card(
        "個人情報の取り扱いについて",
        body=[*consent_paragraphs(ctx.config), "同意いただける場合は「同意して始める」を押してください。"],
        buttons=[r.postback("同意して始める", "consent", v=version), r.uri("プライバシーポリシーを読む", ctx.policy_url),
                 r.postback("同意しない", "decline")],
    )
    return [r.flex("個人情報の取り扱いについて（同意のお願い）", bubble)]


def privacy_notice_prompt(conv: Conversation, ctx: Context) -> list[dict]:
    return privacy_notice(ctx)


def consent_given(ctx: Context, conv: Conversation) -> bool:
    return ctx.profile.consent_version == ctx.config.privacy_policy_version or conv.data.get("consented") is True


def take_consent(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    version = ctx.config.privacy_policy_version
    data = {**conv.data, "consented": True}  # keeps what was chosen before consent (a pop-up day)
    question = data.get("pending_question")
    outcome = Outcome(State.ASK_QUESTION, replies=[r.text("ありがとうございます。同意を承りました。")],
                      effects=[RecordConsent(version)], data=data)
    if question:
        return _triaged(outcome, data, question, ctx)
    return outcome


def consent_text(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    """Typed 'はい'/'同意' counts as consent; anything else is kept as the question and the notice shown again."""
    if is_yes(intent.text) or "同意" in intent.text and "しない" not in intent.text:
        return take_consent(conv, intent, ctx)
    if is_greeting(intent.text):
        return Outcome(State.ASK_CONSENT, replies=[r.text(
            "メッセージありがとうございます。ご相談は、個人情報の取り扱いに同意いただいた後に承ります。"
            "下の「同意して始める」を押してください。")])
    data = _with(conv, pending_question=intent.text[:MAX_QUESTION]) if len(intent.text.strip()) >= 4 else conv.data
    return Outcome(State.ASK_CONSENT, data=data, replies=[r.text(
        "ご相談内容は、個人情報の取り扱いに同意いただいた後に承ります（書いていただいた内容は覚えています）。"
        "下の「同意して始める」を押してください。")])


def decline(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    phone = f"（{ctx.config.contact_phone}）" if ctx.config.contact_phone else ""
    return Outcome(State.IDLE, data={}, replies=[r.text(
        "承知しました。同意いただけない場合、LINEでのご相談は承ることができません。"
        f"お電話{phone}でもご相談いただけます。気が変わられたら、いつでも「相談を申し込む」からどうぞ。",
        quick=[r.postback("相談を申し込む", "consult"), r.say("メニュー")])])


# --- question and category -----------------------------------------------------------------------------

def ask_question(conv: Conversation, ctx: Context) -> list[dict]:
    return [r.text("ご相談内容を自由にお書きください。\n例：「紙の請求書をやめたいが、何から始めればいいか分からない」")]


def _triaged(outcome: Outcome, data: dict[str, Any], question: str, ctx: Context) -> Outcome:
    result = ctx.triager.classify(question)
    # `category` becomes the user's choice; `suggested_category`, confidence and keywords stay the model's.
    choices = [c for c in result.ranking if c != OTHER][:CATEGORY_CHOICES]
    data.update(question=question[:MAX_QUESTION], category=result.category, suggested_category=result.category,
                confidence=result.confidence, keywords=list(result.keywords), category_sure=result.sure,
                category_choices=choices)
    data.pop("pending_question", None)
    outcome.data = data
    outcome.next_state = State.CONFIRM_CATEGORY if "category_confirmed" not in data else next_state(data, ctx)
    return outcome


def question_problem(text: str) -> str | None:
    """Why `text` cannot be taken as the consultation's question, or None."""
    if not has_letters(text) or is_mash(text):
        return "ご相談内容を文字で教えてください。困っていることを一言でもかまいません。"
    if is_greeting(text):
        return "ご丁寧にありがとうございます。どんなことでお困りですか？ご相談内容を一言でもかまいませんのでお書きください。"
    return None


def take_question(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    refused = question_problem(intent.text)
    if refused:
        return _again(conv, refused)
    outcome = Outcome(State.CONFIRM_CATEGORY)
    if len(intent.text) > MAX_QUESTION:
        outcome.replies.append(r.text(f"長文をありがとうございます。最初の{MAX_QUESTION}文字までを承りました。続きは担当者にお話しください。"))
    return _triaged(outcome, dict(conv.data), intent.text, ctx)


def ask_category_confirm(conv: Conversation, ctx: Context) -> list[dict]:
    data = conv.data
    if data.get("category_sure", True) or not data.get("category_choices"):
        name = ctx.config.category(data.get("category", OTHER)).name
        return [r.text(f"「{name}」のご相談として承ります。よろしいですか？",
                       quick=[r.postback("はい", "yes", display="はい"), r.postback("別の分野を選ぶ", "no", display="別の分野を選ぶ")])]
    # The model is not sure: a yes/no on its one guess would often be a no, so the likeliest few are offered.
    choices = [ctx.config.category(c) for c in data["category_choices"]] + [ctx.config.category(OTHER)]
    return [r.text("ご相談の分野はどれが近いですか？",
                   quick=[r.postback(c.name, "category", display=c.name, v=c.id) for c in choices])]


def confirm_category(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    if intent.name == "category":
        return choose_category(conv, intent, ctx)
    if intent.name == "yes" or intent.name == "text" and is_yes(intent.text):
        return _answer(conv, ctx, category_confirmed=True)
    if intent.name == "no" or intent.name == "text" and is_no(intent.text):
        return Outcome(State.CHOOSE_CATEGORY)
    if intent.name == "text" and _category_named(intent.text, ctx):
        return choose_category(conv, intent, ctx)
    if not conv.data.get("category_sure", True):
        return _again(conv, "下のボタンから近い分野を選んでください。")
    return _again(conv, "「はい」か「別の分野を選ぶ」でお答えください。")


def ask_category(conv: Conversation, ctx: Context) -> list[dict]:
    return [r.text("近い分野を選んでください。",
                   quick=[r.postback(c.name, "category", display=c.name, v=c.id) for c in ctx.config.categories])]


def choose_category(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    chosen = _category_named(intent.data.get("v") or intent.text, ctx)
    if chosen:
        return _answer(conv, ctx, category=chosen, category_confirmed=True)
    return _again(conv, "下のボタンから分野を選んでください。")


def _category_named(text: str, ctx: Context) -> str | None:
    wanted = norm(text)
    for c in ctx.config.categories:
        if wanted in (c.id, norm(c.name)) or len(wanted) > 1 and wanted in norm(c.name):
            return c.id
    return None


# --- returning users -------------------------------------------------------------------------------------

def ask_profile_confirm(conv: Conversation, ctx: Context) -> list[dict]:
    p = ctx.profile
    rows = [(FIELD_LABELS[f], getattr(p, f) or "") for f in PROFILE_FIELDS]
    bubble = r.card("前回お伺いした内容", rows=rows, body=["この内容のままでよろしいですか？"],
                    buttons=[r.postback("この内容で進む", "yes", display="この内容で進む"),
                             r.postback("変更する", "no", display="変更する")])
    return [r.flex("前回お伺いした内容の確認", bubble)]


def confirm_profile(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    if intent.name == "yes" or intent.name == "text" and is_yes(intent.text):
        p = ctx.profile
        fields = {f: getattr(p, f) for f in PROFILE_FIELDS}
        fields["region"] = _region_of(p.municipality)
        return _answer(conv, ctx, **fields)
    if intent.name == "no" or intent.name == "text" and is_no(intent.text):
        return Outcome(State.ASK_COMPANY, data=_with(conv, profile_declined=True))
    return _again(conv, "「この内容で進む」か「変更する」でお答えください。")


# --- company details -------------------------------------------------------------------------------------

def ask_company(conv: Conversation, ctx: Context) -> list[dict]:
    return [r.text("会社名（屋号）を教えてください。")]


def take_company(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    name = intent.text.strip()
    refused = _not_an_answer(conv, name, company_problem)
    if refused:
        return refused
    return _answer(conv, ctx, company=name)


def ask_industry(conv: Conversation, ctx: Context) -> list[dict]:
    return [r.text("業種を選んでください。", quick=_choices("industry", INDUSTRIES))]


def take_industry(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    value = norm(intent.value)
    match = next((i for i in INDUSTRIES if value and (value == norm(i) or value in norm(i))), None) \
        or next((i for i, words in INDUSTRY_WORDS.items() if any(w in value for w in words)), None)
    if match is None:
        return _again(conv, "いちばん近い業種を下のボタンから選んでください（当てはまらなければ「その他」）。")
    return _answer(conv, ctx, industry=match)


def ask_employees(conv: Conversation, ctx: Context) -> list[dict]:
    return [r.text("従業員数（パート・アルバイトを含む）を選んでください。", quick=_choices("employees", [e[0] for e in EMPLOYEES]))]


def take_employees(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    value = norm(intent.value)
    for label, low, high in EMPLOYEES:
        if value == norm(label):
            return _answer(conv, ctx, employees=label)
    digits = re.search(r"(\d{1,6})(?:人|名)?", value)
    n = int(digits.group(1)) if digits else next((n for w, n in NUMBER_WORDS.items() if w in value), None)
    if n is not None:
        label = next((lab for lab, low, high in EMPLOYEES if low <= n <= high), EMPLOYEES[0][0])
        return _answer(conv, ctx, employees=label)
    return _again(conv, "人数を下のボタンから選ぶか、「12人」のように数字で教えてください。")


def ask_municipality(conv: Conversation, ctx: Context) -> list[dict]:
    shown = conv.data.get("region_shown")
    if shown:
        reg = region(shown)
        return [r.text(f"{reg.name}地域の市町村を選んでください。",
                       quick=_choices("municipality", [m.name for m in reg.municipalities]))]
    return [r.text("事業所のある市町村を教えてください（例：鹿児島市、霧島）。地域から選ぶこともできます。",
                   quick=[r.postback(f"{g.name}地域", "region", v=g.id) for g in REGIONS])]


def _region_of(name: str | None) -> str | None:
    m = match_municipality(name) if name else None
    return m.region if m else None


def take_municipality(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    found = match_municipality(intent.value)
    if found:
        data = _with(conv, municipality=found.name, region=found.region)
        data.pop("region_shown", None)
        return Outcome(next_state(data, ctx), data=data)
    options = candidates(intent.value)
    if options:
        return Outcome(State.ASK_MUNICIPALITY, prompt=False, replies=[r.text(
            "次のどれでしょうか？", quick=_choices("municipality", [m.name for m in options]))])
    return _again(conv, "鹿児島県内の市町村名が見つかりませんでした。市町村名を入れるか、地域から選んでください。")


def pick_region(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    wanted = intent.data.get("v", "")
    if not any(g.id == wanted for g in REGIONS):
        return _again(conv, "地域を下のボタンから選んでください。")
    return Outcome(State.ASK_MUNICIPALITY, data=_with(conv, region_shown=wanted))


def _proposed_name(ctx: Context) -> str | None:
    name = (ctx.profile.display_name or "").strip()
    return name if has_letters(name) and len(name) <= 50 else None


def ask_contact_name(conv: Conversation, ctx: Context) -> list[dict]:
    proposed = _proposed_name(ctx)
    if proposed:
        return [r.text(f"ご担当者のお名前を教えてください。LINEのお名前「{proposed}」でよろしければ、下のボタンを押してください。",
                       quick=[r.postback(f"{proposed}で登録", "name", display=proposed)])]
    return [r.text("ご担当者のお名前を教えてください。")]


def take_contact_name(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    if intent.name == "name" and _proposed_name(ctx):
        return _answer(conv, ctx, contact_name=_proposed_name(ctx))
    name = intent.text.strip()
    refused = _not_an_answer(conv, name, contact_name_problem)
    if refused:
        return refused
    return _answer(conv, ctx, contact_name=name)


SKIP_WORDS = ("スキップ", "skip", "なし", "無し", "ない", "ありません")


def _skipped(intent: Intent) -> bool:
    return intent.name == "skip" or norm(intent.text) in SKIP_WORDS


def ask_phone(conv: Conversation, ctx: Context) -> list[dict]:
    if conv.data.get("method") == "phone":
        return [r.text("お電話でのご相談には電話番号が必要です。日中につながる電話番号を教えてください。")]
    if conv.data.get("phone_required"):
        return [r.text("ご連絡用に、日中につながる電話番号を教えてください。",
                       quick=[r.postback("メールで連絡を受ける", "contact", display="メールで連絡を受ける", v="email")])]
    return [r.text("日中につながる電話番号を教えてください。電話以外がよろしければ「スキップ」を押してください。",
                   quick=[r.postback("スキップ", "skip", display="スキップ")])]


def take_phone(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    if intent.name == "contact" and intent.data.get("v") == "email" and conv.data.get("method") != "phone":
        data = {k: v for k, v in _with(conv, phone=None).items() if k != "phone_required"}
        data.pop("email", None)
        return Outcome(State.ASK_EMAIL, data=data)
    if _skipped(intent):
        if conv.data.get("method") == "phone":
            return _again(conv, "お電話でのご相談のため、電話番号が必要です。")
        if conv.data.get("phone_required"):
            return _again(conv, "ご連絡のため、電話番号かメールアドレスのどちらかが必要です。"
                                "メールがよろしければ「メールで連絡を受ける」を押してください。")
        return _answer(conv, ctx, phone=None)
    phone, email, reason = parse_contact(intent.text)
    if phone is None and email is not None and conv.data.get("method") != "phone":
        return _answer(conv, ctx, phone=None, email=email)  # an address typed here is just as good a contact
    if phone is None:
        return _again(conv, reason or "電話番号の形が正しくないようです。")
    if email is not None:
        return _answer(conv, ctx, phone=phone, email=email)
    return _answer(conv, ctx, phone=phone)


def ask_email(conv: Conversation, ctx: Context) -> list[dict]:
    if conv.data.get("method") == "email":
        return [r.text("メールでのご相談のため、メールアドレスを教えてください。")]
    if not conv.data.get("phone"):
        # Without a phone number the address is the only way to reach the person: no skip, but the way back to the phone.
        return [r.text("ご連絡のため、電話番号かメールアドレスのどちらかが必要です。メールアドレスを教えてください。",
                       quick=[r.postback("電話番号を入力する", "contact", display="電話番号を入力する", v="phone")])]
    return [r.text("メールアドレスを教えてください。なければ「スキップ」を押してください。",
                   quick=[r.postback("スキップ", "skip", display="スキップ")])]


def take_email(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    if intent.name == "contact" and intent.data.get("v") == "phone":
        data = _with(conv, phone_required=True)
        data.pop("phone", None)
        return Outcome(State.ASK_PHONE, data=data)
    if _skipped(intent):
        if conv.data.get("method") == "email":
            return _again(conv, "メールでのご相談のため、メールアドレスが必要です。")
        if not conv.data.get("phone"):
            return _again(conv, "恐れ入りますが、スキップはできません。"
                                "お電話がよろしければ「電話番号を入力する」を押してください。")
        return _answer(conv, ctx, email=None)
    phone, email, reason = parse_contact(intent.text)
    if email is None and phone is not None and not conv.data.get("phone") and conv.data.get("method") != "email":
        return _answer(conv, ctx, phone=phone, email=None)  # a phone number typed here is taken as the phone
    if email is None:
        email, reason = parse_email(intent.text)
    if email is None:
        return _again(conv, reason or "メールアドレスの形が正しくないようです。")
    extra = {"phone": phone} if phone and not conv.data.get("phone") else {}
    return _answer(conv, ctx, email=email, **extra)


def ask_method(conv: Conversation, ctx: Context) -> list[dict]:
    labels = {"visit": "対面", "online": "オンライン", "phone": "電話", "email": "メール"}
    return [r.text("ご希望の相談方法を選んでください。",
                   quick=[r.postback(labels[k], "method", display=labels[k], v=k) for k in labels])]


def take_method(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    wanted = intent.data.get("v")
    if wanted not in METHODS:
        t = norm(intent.text)
        wanted = next((k for k, words in METHOD_WORDS.items() if any(w in t for w in words)), None)
    if wanted is None:
        return _again(conv, "相談方法を下のボタンから選んでください。")
    data = _with(conv, method=wanted)
    # A phone consultation needs a phone number, an email one an address: ask for the one missing.
    if wanted == "phone" and not data.get("phone"):
        data.pop("phone", None)
    if wanted == "email" and not data.get("email"):
        data.pop("email", None)
    return Outcome(next_state(data, ctx), data=data)


# --- summary, edit, submit ------------------------------------------------------------------------------

def summary_rows(data: dict[str, Any], ctx: Context) -> list[tuple[str, str]]:
    shown = {**data, "category": ctx.config.category(data.get("category", "other")).name,
             "method": METHODS.get(data.get("method", ""), "")}
    return [(FIELD_LABELS[f], str(shown.get(f) or "")) for f in FIELD_LABELS]


def ask_summary(conv: Conversation, ctx: Context) -> list[dict]:
    bubble = r.card("ご相談内容の確認", rows=summary_rows(conv.data, ctx),
                    buttons=[r.postback("この内容で申し込む", "submit", display="この内容で申し込む"),
                             r.postback("修正する", "edit", display="修正する")])
    return [r.flex("ご相談内容の確認", bubble)]


def summary_text(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    if is_yes(intent.text) or "申し込" in intent.text:
        return submit(conv, intent, ctx)
    if "修正" in intent.text or is_no(intent.text):
        return Outcome(State.CHOOSE_EDIT)
    return _again(conv, "「この内容で申し込む」か「修正する」を押してください。")


def ask_edit(conv: Conversation, ctx: Context) -> list[dict]:
    return [r.text("どこを修正しますか？",
                   quick=[r.postback(label, "field", display=label, v=f) for f, label in FIELD_LABELS.items()])]


def choose_edit(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    wanted = intent.data.get("v") or next((f for f, label in FIELD_LABELS.items() if norm(label) in norm(intent.text)), "")
    if wanted not in EDIT_TARGETS:
        return _again(conv, "修正する項目を下のボタンから選んでください。")
    data = dict(conv.data)
    if wanted == "question":
        data.pop("category_confirmed", None)
    if wanted != "category":
        data.pop(wanted, None)
    return Outcome(EDIT_TARGETS[wanted], data=data)


def submit(conv: Conversation, intent: Intent, ctx: Context) -> Outcome:
    data = conv.data
    if next_state(data, ctx) != State.CONFIRM_SUMMARY:
        return Outcome(next_state(data, ctx), replies=[r.text("まだお伺いしていない項目があります。")])
    fields = {f: data.get(f) for f in ("question", "category", "suggested_category", "confidence", "keywords", "method",
                                       "region", *PROFILE_FIELDS)}
    profile = {f: data.get(f) for f in PROFILE_FIELDS}
    channel = "popup" if data.get("popup") else "line"
    effects = [RecordConsultation({**fields, "channel": channel, "origin": origin_of(data)},
                                  receipt=popup_receipt if data.get("popup") else receipt),
               SaveProfile(profile)]
    return Outcome(State.CHOOSE_SLOT, data={"method": data["method"], "region": data.get("region")}, suspended=None,
                   effects=effects)


def origin_of(data: dict) -> str:
    """How the consultation came: a survey's 「はい」 sets `origin` (seminar:<id>), a pop-up seat names its day."""
    if data.get("origin"):
        return data["origin"]
    return f"popup:{data['popup']}" if data.get("popup") else "menu"


def popup_receipt(receipt_no: str) -> list[dict]:
    """A pop-up seat was chosen before the intake: it is booked right after, so no date is asked for."""
    return [r.text(f"ご相談を受け付けました。\n受付番号：{receipt_no}\n\nお選びいただいた出張相談会のお席をお取りします。")]


def receipt(receipt_no: str) -> list[dict]:
    """What the user is told once the consultation is on record, before choosing a date."""
    return [r.text(f"ご相談を受け付けました。\n受付番号：{receipt_no}\n\n続けて、担当のDXコーディネーターとのご相談日時をお選びください。")]


# --- a field put right by staff --------------------------------------------------------------------------------

def profile_value(field: str, text: str) -> tuple[dict[str, str] | None, str | None]:
    """A profile field as staff correct it in the console, checked as the intake checks the user's answer: the
    values to keep (a municipality brings its region along) and None, or None and what is wrong, in Japanese."""
    value = text.strip()
    if not value:
        return None, f"{FIELD_LABELS[field]}の新しい値を入力してください。"
    if field in ("company", "contact_name"):
        problem = (company_problem if field == "company" else contact_name_problem)(value)
        return (None, problem) if problem else ({field: value}, None)
    if field == "industry":
        return ({field: value}, None) if value in INDUSTRIES else (None, "業種は一覧から選んでください。")
    if field == "employees":
        labels = [label for label, _, _ in EMPLOYEES]
        return ({field: value}, None) if value in labels else (None, "従業員数は一覧から選んでください。")
    if field == "municipality":
        found = match_municipality(value)
        if found:
            return {"municipality": found.name, "region": found.region}, None
        options = candidates(value)
        if options:
            return None, f"市町村を1つに絞れませんでした。次のどれかを入力してください: {'、'.join(m.name for m in options)}"
        return None, "鹿児島県内の市町村名が見つかりませんでした。市町村名を確かめてください（例: 霧島市）。"
    parse = {"phone": parse_phone, "email": parse_email}.get(field)
    if parse is None:
        raise ValueError(f"not a profile field: {field!r}")
    parsed, reason = parse(value)
    return ({field: parsed}, None) if parsed else (None, reason)
