"""The staff console at /admin, through Flask's test client on the real database and the simulator."""
from __future__ import annotations

import dataclasses
import html
import logging
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import event, select

from app import create_app
from bot.conversation import State
from handlers.console.conversations import BACK_TO_BOT, TAKEN_OVER
from storage.outbound import queue_messages
from storage.models import (
    AuditEntry, Booking, Consultation, ConversationRow, LineUser, OutboundMessage, OutboxItem,
)
from storage.logids import user_ref
from storage.staff import add_user
from tests.fakes.line_api import FakeLineApi
from tests.helpers import adopt, say, tap

PASSWORD = "kagoshima-dx-2026"
MARKUP = "<script>alert(1)</script>"


# --- helpers ------------------------------------------------------------------------------------------

def sign_in(client, services, role: str = "coordinator", login: str | None = None):
    login = login or f"{role}-staff"
    add_user(services.db, login, PASSWORD, role, services.clock.now())
    client.get("/admin/login")
    return client.post("/admin/login", data={"login": login, "password": PASSWORD, "csrf_token": csrf(client)})


def csrf(client) -> str:
    with client.session_transaction() as session:
        return session.get("csrf", "")


def post(client, path: str, **form):
    return client.post(path, data={"csrf_token": csrf(client), **form})


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def add_consultation(services, **fields) -> int:
    values = {"received_at": services.clock.now(), "channel": "line", "simulated": False, "company": "桜島製作所",
              "category": "efficiency", "method": "online", "status": "received", "municipality": "鹿児島市",
              "question": "紙の請求書を減らしたい"} | fields
    with services.db.unit_of_work() as s:
        c = Consultation(**values)
        s.add(c)
        s.commit()
        return c.id


def consultation_status(services, consultation_id: int) -> str:
    with services.db.unit_of_work() as s:
        return s.get(Consultation, consultation_id).status


def conversation_state(services, user: str) -> str:
    with services.db.unit_of_work() as s:
        return s.get(ConversationRow, user).state


def failed_message(services, channel: str = "simulator", to: str = "sim-a") -> int:
    with services.db.unit_of_work() as s:
        [message_id] = queue_messages(s, channel, to, [{"type": "text", "text": "ご予約を承りました。"}],
                                      services.clock.now())
        row = s.get(OutboundMessage, message_id)
        row.status, row.attempts, row.last_error = "failed", 8, "http_500"
        s.commit()
    return message_id


def outbound(services, message_id: int) -> OutboundMessage:
    with services.db.unit_of_work() as s:
        return s.get(OutboundMessage, message_id)


def simulator_out_texts(client, user: str) -> list[str]:
    adopt(client, user)  # signing in starts a new session, which has not been given the user yet
    messages = client.get(f"/simulator/api/messages?user={user}&after=0").json["messages"]
    return [m["message"].get("text") for m in messages if m["direction"] == "out"]


def section(text: str, start: str, end: str) -> str:
    """The part of `text` from `start` up to the first `end` after it."""
    begin = text.index(start)
    return text[begin:text.index(end, begin)]


# --- sign-in, CSRF and roles ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/admin", "/admin/consultations?status=received", "/admin/consultations/1",
                                  "/admin/conversations", "/admin/conversations/sim-a", "/admin/messages"])
def test_every_console_page_sends_a_signed_out_visitor_to_the_login_form(client, path):
    response = client.get(path)

    assert response.status_code == 302
    target = urlsplit(response.location)
    assert (target.path, parse_qs(target.query)) == ("/admin/login", {"next": [path]})


@pytest.mark.parametrize(("login", "password"), [("coordinator-staff", "wrong-password"),
                                                 ("nobody", PASSWORD), ("coordinator-staff", "")])
def test_a_wrong_login_or_password_is_refused_with_a_message(client, services, login, password):
    add_user(services.db, "coordinator-staff", PASSWORD, "coordinator", services.clock.now())
    client.get("/admin/login")

    response = client.post("/admin/login", data={"login": login, "password": password, "csrf_token": csrf(client)})

    assert response.status_code == 401
    assert "ログインIDまたはパスワードが違います" in response.get_data(as_text=True)
    assert client.get("/admin").status_code == 302


def test_signing_in_leads_back_to_the_page_first_asked_for(client, services):
    add_user(services.db, "tanaka", PASSWORD, "coordinator", services.clock.now())
    login_url = client.get("/admin/consultations?status=received").location
    client.get(login_url)

    response = client.post(login_url, data={"login": "tanaka", "password": PASSWORD, "csrf_token": csrf(client)})

    assert response.location == "/admin/consultations?status=received"
    assert "相談一覧" in page(client, response.location)


@pytest.mark.parametrize("next_url", ["https://example.com/", "//example.com/admin", "/simulator"])
def test_signing_in_never_leads_outside_the_console(client, services, next_url):
    add_user(services.db, "tanaka", PASSWORD, "coordinator", services.clock.now())
    client.get("/admin/login")

    response = client.post("/admin/login", data={"login": "tanaka", "password": PASSWORD, "next": next_url,
                                                 "csrf_token": csrf(client)})

    assert response.location == "/admin"


def test_signing_out_closes_the_console(client, services):
    sign_in(client, services)

    response = post(client, "/admin/logout")

    assert response.location == "/admin/login"
    assert client.get("/admin").status_code == 302


@pytest.mark.parametrize("path", ["/admin/conversations", "/admin/conversations/sim-a", "/admin/messages"])
def test_a_viewer_is_refused_the_conversations_and_failed_messages_with_a_kind_message(client, services, path):
    say(client, "sim-a", "見せない商事の鈴木です")
    failed_message(services)
    sign_in(client, services, "viewer")

    response = client.get(path)

    assert response.status_code == 403
    text = response.get_data(as_text=True)
    assert "閲覧専用のアカウントではご覧いただけません" in text and "集計はホームと月次報告" in text
    assert "見せない商事" not in text and "sim-a" not in text
    with services.db.unit_of_work() as s:
        assert s.scalars(select(AuditEntry).where(AuditEntry.action == "view")).all() == []


def test_a_viewer_s_home_shows_the_counts_without_links_to_pages_it_would_be_refused(client, services):
    say(client, "sim-a", "こんにちは")
    add_consultation(services)
    failed_message(services, channel="line", to="U-real")
    sign_in(client, services, "viewer")

    text = page(client, "/admin")

    assert tile(text, "新しい相談（受付済み）") == 1 and tile(text, "送信失敗") == 1
    refused = ("/admin/consultations", "/admin/conversations", "/admin/bookings", "/admin/messages",
               "/admin/activities", "/admin/weekly")
    assert [path for path in refused if f'href="{path}' in text] == []
    for path in ("/admin/popup", "/admin/seminars", "/admin/coordinators", "/admin/deletions"):
        assert f'href="{path}"' in text  # what a viewer may read stays in the menu
    sign_in(client, services, "coordinator")
    assert all(f'href="{path}' in page(client, "/admin") for path in refused)


@pytest.mark.parametrize(("path", "form"), [
    ("/admin/consultations/{id}/status", {"status": "closed"}),
    ("/admin/conversations/sim-a/reply", {"text": "担当の田中です。"}),
    ("/admin/conversations/sim-a/takeover", {}),
    ("/admin/conversations/sim-a/release", {}),
    ("/admin/messages/{message}/resend", {}),
])
def test_a_viewer_cannot_change_anything(client, services, path, form):
    say(client, "sim-a", "こんにちは")
    consultation_id, message_id = add_consultation(services), failed_message(services)
    sign_in(client, services, "viewer")
    before = simulator_out_texts(client, "sim-a")

    response = post(client, path.format(id=consultation_id, message=message_id), **form)

    assert response.status_code == 403
    assert "閲覧専用" in response.get_data(as_text=True)
    assert consultation_status(services, consultation_id) == "received"
    assert conversation_state(services, "sim-a") == State.IDLE
    assert outbound(services, message_id).status == "failed"
    assert simulator_out_texts(client, "sim-a") == before


@pytest.mark.parametrize("token", [None, "", "not-the-token"])
def test_a_post_without_the_session_csrf_token_is_refused(client, services, token):
    consultation_id = add_consultation(services)
    sign_in(client, services)
    form = {"status": "closed"} | ({} if token is None else {"csrf_token": token})

    response = client.post(f"/admin/consultations/{consultation_id}/status", data=form)

    assert response.status_code == 400
    assert consultation_status(services, consultation_id) == "received"


def test_the_login_form_itself_needs_the_csrf_token(client, services):
    add_user(services.db, "tanaka", PASSWORD, "coordinator", services.clock.now())

    response = client.post("/admin/login", data={"login": "tanaka", "password": PASSWORD})

    assert response.status_code == 400
    assert client.get("/admin").status_code == 302


# --- dashboard and consultations ----------------------------------------------------------------------

def test_the_dashboard_counts_what_waits_for_staff(client, services):
    for status in ("received", "received", "in_progress"):
        add_consultation(services, status=status)
    add_consultation(services, simulated=True)
    with_staff(services, "U" + "a" * 32, source="line")
    failed_message(services, channel="line", to="U" + "a" * 32)
    sign_in(client, services)

    text = page(client, "/admin")

    assert tile(text, "新しい相談（受付済み）") == 2
    assert tile(text, "担当者の対応待ち（担当者対応中）") == 1
    assert tile(text, "送信失敗") == 1
    assert "シミュレーターからの受付済みの相談が" in text


def tile(text: str, label: str) -> int:
    """The number on the dashboard tile labelled `label`."""
    after = text[text.index(f'class="tile-label">{label}</span>'):]
    return int(after[after.index('class="tile-count">') + len('class="tile-count">'):after.index("<small>")])


def with_staff(services, user_id: str, source: str) -> None:
    now = services.clock.now()
    with services.db.unit_of_work() as s:
        s.add(LineUser(id=user_id, source=source, created_at=now, updated_at=now))
        s.flush()
        s.add(ConversationRow(user_id=user_id, state=State.WITH_STAFF, data={}, updated_at=now))
        s.commit()


def test_every_dashboard_count_leaves_out_what_the_simulator_made(client, services, clock):
    now = clock.now()
    for source, user_id in (("line", "U" + "b" * 32), ("simulator", "sim-b")):
        with_staff(services, user_id, source)
        add_consultation(services, simulated=source == "simulator", user_id=user_id)
        failed_message(services, channel=source, to=user_id)
        with services.db.unit_of_work() as s:
            start = now + timedelta(days=2 if source == "line" else 3)
            for status, swap in (("confirmed", now), ("pending", None)):
                s.add(Booking(user_id=user_id, coordinator_id="tanaka", start=start, end=start + timedelta(hours=1),
                              method="online", status=status, swap_requested_at=swap, created_at=now, updated_at=now))
                start += timedelta(hours=2)
            s.add(OutboxItem(key=f"reminder:{user_id}", kind="reminder_day_before", ref="booking:1", channel=source,
                             to=user_id, messages=[], due_at=now, status="failed", created_at=now))
            s.commit()
    clock.advance(minutes=16)  # the pending bookings are now stuck
    sign_in(client, services)

    text = page(client, "/admin")

    counts = {label: tile(text, label) for label in ("新しい相談（受付済み）", "担当者の対応待ち（担当者対応中）", "今後の予約",
                                                     "担当変更の依頼", "カレンダーに登録できていない予約", "送信失敗")}
    assert counts == {"新しい相談（受付済み）": 1, "担当者の対応待ち（担当者対応中）": 1, "今後の予約": 2, "担当変更の依頼": 1,
                      "カレンダーに登録できていない予約": 1, "送信失敗": 2}


def test_a_consultation_shows_the_category_the_user_chose_and_the_model_s_guess_apart(client, services):
    user = "sim-chooser"
    tap(client, user, "action=consult")
    tap(client, user, "action=consent&v=2026-11")
    say(client, user, "何から始めればいいか分からない")
    tap(client, user, "action=no")
    tap(client, user, "action=category&v=efficiency")
    for answer in ("鹿屋商店", "卸売業・小売業", "3人", "鹿屋市", "大隅 太郎", "0994-31-1111", "スキップ"):
        say(client, user, answer)
    tap(client, user, "action=method&v=phone")
    tap(client, user, "action=submit")
    with services.db.unit_of_work() as s:
        c = s.scalars(select(Consultation)).one()
    guess = services.triager.classify("何から始めればいいか分からない")
    assert c.category == "efficiency" and c.suggested_category == guess.category != "efficiency"
    sign_in(client, services)

    text = html.unescape(page(client, f"/admin/consultations/{c.id}"))

    assert "<dt>分野</dt><dd>業務効率化・ペーパーレス</dd>" in text
    shown = section(text, "<dt>自動判定（参考）</dt>", "</dd>")
    assert f"「{services.config.category(guess.category).name}」と推定" in shown
    assert f"確からしさ {guess.confidence:.0%}" in shown and all(f"「{k}」" in shown for k in guess.keywords)
    assert "業務効率化" not in shown


@pytest.mark.parametrize(("query", "shown"), [
    ("", ["新しい", "対応中の", "完了した"]),
    ("?status=received", ["新しい"]),
    ("?status=in_progress", ["対応中の"]),
    ("?category=security", ["完了した"]),
    ("?status=closed&category=efficiency", []),
    ("?simulated=1", ["シミュレーターの", "新しい", "対応中の", "完了した"]),
    ("?status=received&simulated=1", ["シミュレーターの", "新しい"]),
])
def test_the_consultation_list_filters_newest_first_and_hides_simulated_ones_unless_asked(client, services,
                                                                                          clock, query, shown):
    for company, status, category, simulated in [("完了した", "closed", "security", False),
                                                 ("対応中の", "in_progress", "efficiency", False),
                                                 ("新しい", "received", "efficiency", False),
                                                 ("シミュレーターの", "received", "tools", True)]:
        add_consultation(services, company=f"{company}会社", status=status, category=category, simulated=simulated)
        clock.advance(minutes=5)
    sign_in(client, services)

    text = page(client, f"/admin/consultations{query}")

    rows = text.split("<tbody>")[1] if "<tbody>" in text else ""
    listed = [name for name in ("シミュレーターの", "新しい", "対応中の", "完了した") if f"{name}会社" in rows]
    assert listed == shown
    assert sorted(listed, key=rows.index) == shown


def test_the_consultation_list_shows_the_columns_staff_need(client, services):
    consultation_id = add_consultation(services, category="subsidy", method="visit", municipality="霧島市")
    sign_in(client, services)

    text = page(client, "/admin/consultations")

    for shown in (f"DX2026-{consultation_id:05d}", "11月24日(火) 10:00", "桜島製作所", "補助金・支援制度",
                  "対面（訪問・来所）", "霧島市", "受付"):
        assert shown in text


@pytest.mark.parametrize("path", ["/admin/consultations", "/admin/consultations/{id}"])
def test_markup_in_a_company_name_is_shown_as_text(client, services, path):
    consultation_id = add_consultation(services, company=MARKUP, question=f"{MARKUP}\n2行目")
    sign_in(client, services)

    text = page(client, path.format(id=consultation_id))

    assert MARKUP not in text
    assert html.escape(MARKUP) in text


def test_the_consultation_detail_shows_every_field_and_keeps_the_question_s_lines(client, services):
    consultation_id = add_consultation(services, industry="製造業", employees="6〜20人", region="aira_isa",
                                       municipality="霧島市", contact_name="鹿児島 花子", phone="099-000-0000",
                                       email="hanako@example.jp", keywords=["請求書", "紙"],
                                       question="請求書を電子化したい。\n受発注もまとめたい。")
    sign_in(client, services)

    text = page(client, f"/admin/consultations/{consultation_id}")

    assert '<p class="question">請求書を電子化したい。\n受発注もまとめたい。</p>' in text
    for shown in ("製造業", "6〜20人", "霧島市", "鹿児島 花子", "099-000-0000", "hanako@example.jp", "手がかりの語 「請求書」、「紙」",
                  "オンライン", "業務効率化・ペーパーレス"):
        assert shown in text


@pytest.mark.parametrize(("steps", "final"), [
    (["in_progress"], "in_progress"),
    (["in_progress", "closed"], "closed"),
    (["closed", "received"], "received"),
    (["in_progress", "lost"], "in_progress"),
])
def test_a_status_change_is_kept(client, services, steps, final):
    consultation_id = add_consultation(services)
    sign_in(client, services)

    for status in steps:
        response = post(client, f"/admin/consultations/{consultation_id}/status", status=status)
        assert response.location == f"/admin/consultations/{consultation_id}"

    assert consultation_status(services, consultation_id) == final
    assert '<span class="status status-{0}">'.format(final) in page(client, f"/admin/consultations/{consultation_id}")


def test_an_unknown_consultation_is_a_polite_404(client, services):
    sign_in(client, services)

    response = client.get("/admin/consultations/999")

    assert response.status_code == 404
    assert "見つかりませんでした" in response.get_data(as_text=True)


# --- conversations ------------------------------------------------------------------------------------

def test_a_conversation_handed_to_staff_in_the_simulator_waits_at_the_top_of_the_list(client, services, clock):
    say(client, "sim-b", "こんにちは")
    clock.advance(minutes=1)
    tap(client, "sim-a", "action=menu&item=staff", "担当者と話す")
    sign_in(client, services)

    text = page(client, "/admin/conversations")

    waiting = section(text, "担当者の対応待ち", "最近の会話")
    recent = text[text.index("最近の会話"):]
    assert "/admin/conversations/sim-a" in waiting and "担当者対応中" in waiting
    assert "/admin/conversations/sim-b" not in waiting
    assert "/admin/conversations/sim-b" in recent
    assert "11月24日(火) 10:01から" in waiting


def test_the_transcript_shows_both_sides_marked_and_failed_messages_flagged(client, services):
    say(client, "sim-a", "請求書を電子化したい")
    tap(client, "sim-a", "action=menu&item=staff", "担当者と話す")
    failed_message(services)
    sign_in(client, services)

    text = page(client, "/admin/conversations/sim-a")

    transcript = section(text, '<ol class="transcript">', "</ol>")
    assert transcript.index("請求書を電子化したい") < transcript.index("担当者と話す") < transcript.index("担当者におつなぎします")
    assert "利用者" in transcript and "ボット" in transcript
    assert transcript.count("送信失敗") == 1
    assert "ご予約を承りました。" in section(transcript, "is-failed", "</li>")


def test_a_staff_reply_reaches_the_simulator_and_is_marked_as_staff(client, services):
    tap(client, "sim-a", "action=menu&item=staff")
    sign_in(client, services)

    response = post(client, "/admin/conversations/sim-a/reply", text="担当の田中です。\r\n明日お電話します。")

    assert response.location == "/admin/conversations/sim-a"
    assert simulator_out_texts(client, "sim-a")[-1] == "担当の田中です。\n明日お電話します。"
    with services.db.unit_of_work() as s:
        last = s.scalars(select(OutboundMessage).order_by(OutboundMessage.id.desc())).first()
    assert (last.sender, last.status, last.to) == ("staff", "sent", "sim-a")
    assert "担当者" in section(page(client, "/admin/conversations/sim-a"), "from-staff", "</li>")


def test_a_nul_typed_into_a_staff_reply_is_dropped_on_any_database(client, services):
    tap(client, "sim-a", "action=menu&item=staff")
    sign_in(client, services)

    response = post(client, "/admin/conversations/sim-a/reply", text="明日\x00お電話します。")

    assert response.status_code == 302
    assert simulator_out_texts(client, "sim-a")[-1] == "明日お電話します。"


@pytest.mark.parametrize(("text", "message"), [
    ("", "送信する内容を入力してください"),
    ("  \r\n  ", "送信する内容を入力してください"),
    ("あ" * 2001, "一度に送れるのは2000文字まで"),
])
def test_a_reply_that_cannot_be_sent_is_refused_kindly(client, services, text, message):
    tap(client, "sim-a", "action=menu&item=staff")
    sign_in(client, services)
    before = simulator_out_texts(client, "sim-a")

    response = post(client, "/admin/conversations/sim-a/reply", text=text)

    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert simulator_out_texts(client, "sim-a") == before


def test_a_reply_of_exactly_2000_characters_is_sent(client, services):
    tap(client, "sim-a", "action=menu&item=staff")
    sign_in(client, services)

    post(client, "/admin/conversations/sim-a/reply", text="あ" * 2000)

    assert simulator_out_texts(client, "sim-a")[-1] == "あ" * 2000


def test_taking_over_tells_the_user_and_stops_the_bot_answering(client, services, clock):
    assert say(client, "sim-a", "こんにちは")
    sign_in(client, services)

    post(client, "/admin/conversations/sim-a/takeover")
    clock.advance(seconds=1)  # the simulator orders by time; a standing clock would mix up what came after

    assert conversation_state(services, "sim-a") == State.WITH_STAFF
    assert simulator_out_texts(client, "sim-a")[-1] == TAKEN_OVER
    assert say(client, "sim-a", "請求書の件で相談したいです") == []
    clock.advance(minutes=5)
    assert say(client, "sim-a", "もしもし") == []


def test_giving_the_conversation_back_to_the_bot_makes_it_answer_again(client, services, clock):
    tap(client, "sim-a", "action=menu&item=staff")
    clock.advance(seconds=1)  # the simulator orders by time; a standing clock would mix up what came after
    assert say(client, "sim-a", "よろしくお願いします") == []
    sign_in(client, services)

    post(client, "/admin/conversations/sim-a/release")
    clock.advance(seconds=1)

    assert conversation_state(services, "sim-a") == State.IDLE
    assert simulator_out_texts(client, "sim-a")[-1] == BACK_TO_BOT
    assert say(client, "sim-a", "請求書を電子化したい")


def test_an_intake_interrupted_by_a_take_over_can_be_resumed_afterwards(client, services):
    tap(client, "sim-a", "action=consult")
    tap(client, "sim-a", f"action=consent&v={services.config.privacy_policy_version}")
    say(client, "sim-a", "請求書を電子化したい")
    sign_in(client, services)

    post(client, "/admin/conversations/sim-a/takeover")
    post(client, "/admin/conversations/sim-a/release")

    assert "前回の続きから再開します。" in [m.get("text") for m in tap(client, "sim-a", "action=resume")]


@pytest.mark.parametrize(("action", "state", "told"), [("takeover", State.WITH_STAFF, TAKEN_OVER),
                                                       ("release", State.IDLE, BACK_TO_BOT)])
def test_switching_to_where_the_conversation_already_is_tells_the_user_nothing(client, services, action, state,
                                                                               told):
    if state == State.WITH_STAFF:
        tap(client, "sim-a", "action=menu&item=staff")
    else:
        say(client, "sim-a", "こんにちは")
    sign_in(client, services)

    post(client, f"/admin/conversations/sim-a/{action}")

    assert conversation_state(services, "sim-a") == state
    assert told not in simulator_out_texts(client, "sim-a")


def test_the_user_s_details_on_record_are_shown_beside_the_transcript(client, services):
    tap(client, "sim-a", "action=menu&item=staff")
    with services.db.unit_of_work() as s:
        user = s.get(LineUser, "sim-a")
        user.company, user.contact_name, user.phone = MARKUP, "鹿児島 花子", "099-000-0000"
        s.commit()
    sign_in(client, services)

    text = page(client, "/admin/conversations/sim-a")

    side = text[text.index("登録情報"):]
    assert "鹿児島 花子" in side and "099-000-0000" in side
    assert MARKUP not in text and html.escape(MARKUP) in text


# --- failed messages ----------------------------------------------------------------------------------

def test_a_failed_message_is_listed_and_resending_delivers_it(client, services):
    message_id = failed_message(services)
    sign_in(client, services)
    listed = page(client, "/admin/messages")
    assert f"/admin/messages/{message_id}/resend" in listed and "http_500" in listed and "8回" in listed

    response = post(client, f"/admin/messages/{message_id}/resend")

    message = outbound(services, message_id)
    assert (message.status, message.attempts) == ("sent", 1)
    assert "再送しました。" in page(client, response.location)
    assert f"/admin/messages/{message_id}/resend" not in page(client, "/admin/messages")
    assert simulator_out_texts(client, "sim-a") == ["ご予約を承りました。"]


@pytest.fixture
def line_api():
    with FakeLineApi() as fake:
        yield fake


@pytest.fixture
def line_client(settings, clock, line_api):
    """A console whose app talks to a fake LINE, for what LINE answers a resend."""
    app = create_app(dataclasses.replace(settings, line_channel_secret="secret", line_channel_access_token="token",
                                         line_api_base_url=line_api.base_url), clock=clock)
    yield app.test_client(), app.extensions["dxdesk"]
    app.extensions["dxdesk"].db.dispose()


@pytest.mark.parametrize(("answers", "status", "said"), [
    ([], "sent", "再送しました。"),
    ([429], "pending", "届くまで自動で再試行します"),
    ([400], "failed", "今回も届けられませんでした"),
])
def test_a_resend_says_what_line_answered(line_client, line_api, answers, status, said):
    client, services = line_client
    message_id = failed_message(services, channel="line", to="U" + "0" * 32)
    line_api.script("/v2/bot/message/push", answers)
    sign_in(client, services)

    response = post(client, f"/admin/messages/{message_id}/resend")

    assert outbound(services, message_id).status == status
    assert said in page(client, response.location)


def test_a_message_already_resent_is_not_sent_twice(client, services):
    message_id = failed_message(services)
    sign_in(client, services)

    post(client, f"/admin/messages/{message_id}/resend")
    response = post(client, f"/admin/messages/{message_id}/resend")

    assert "すでに再送されています" in page(client, response.location)
    assert simulator_out_texts(client, "sim-a") == ["ご予約を承りました。"]


# --- logs ---------------------------------------------------------------------------------------------

def test_the_console_logs_ids_and_actions_but_no_personal_data(client, services, caplog):
    tap(client, "sim-a", "action=menu&item=staff")
    consultation_id = add_consultation(services, company="桜島製作所", contact_name="鹿児島 花子")
    caplog.set_level(logging.DEBUG)

    sign_in(client, services, login="hanako@example.jp")
    post(client, "/admin/conversations/sim-a/reply", text="鹿児島 花子様、090-1234-5678 にお電話します")
    post(client, f"/admin/consultations/{consultation_id}/status", status="in_progress")
    client.post("/admin/login", data={"login": "hanako@example.jp", "password": "wrong", "csrf_token": csrf(client)})

    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("handlers.console"))
    assert f"replied to {user_ref('sim-a')}" in logged and f"consultation {consultation_id}" in logged
    assert "sim-a" not in logged  # users are named by a keyed hash of their id
    for secret in ("鹿児島 花子", "090-1234-5678", "桜島製作所", "hanako@example.jp"):
        assert secret not in logged


def test_a_long_consultation_list_pages_forward_and_back_keeping_the_filter(client, services):
    from handlers.console.common import PAGE_SIZE
    for n in range(PAGE_SIZE + 3):
        add_consultation(services, company=f"会社{n:03d}", category="security")
    add_consultation(services, company="別分野の会社", category="sales")
    sign_in(client, services)
    first = page(client, "/admin/consultations?category=security")
    assert "次のページ" in first and "前のページ" not in first
    second = page(client, "/admin/consultations?category=security&page=2")
    assert second.count("会社0") == 3 and "別分野の会社" not in second
    assert "前のページ" in second and "次のページ" not in second
    assert "category=security" in second.split("前のページ")[0].rsplit("href=", 1)[1]


def test_a_question_to_staff_stays_in_the_queue_whatever_the_user_taps_until_staff_answer(client, services):
    tap(client, "sim-a", "action=menu&item=staff", "担当者と話す")
    say(client, "sim-a", "補助金の締切はいつですか？至急")
    tap(client, "sim-a", "action=menu&item=faq")
    tap(client, "sim-a", "action=menu&item=bookings")
    assert conversation_state(services, "sim-a") == State.IDLE  # the bot answered the menu taps
    sign_in(client, services)
    waiting = section(page(client, "/admin/conversations"), "担当者の対応待ち", "最近の会話")
    assert "/admin/conversations/sim-a" in waiting and "返信待ち" in waiting
    assert "まだ返信していません" in page(client, "/admin/conversations/sim-a")

    post(client, "/admin/conversations/sim-a/reply", text="締切は12月25日です。")

    assert "/admin/conversations/sim-a" not in section(page(client, "/admin/conversations"), "担当者の対応待ち", "最近の会話")
    assert "締切は12月25日です。" in simulator_out_texts(client, "sim-a")


def test_a_waiting_question_can_be_marked_done_without_a_reply_and_the_user_is_told_nothing(client, services):
    tap(client, "sim-a", "action=menu&item=staff", "担当者と話す")
    say(client, "sim-a", "やっぱり大丈夫です")
    tap(client, "sim-a", "action=menu&item=faq")
    sign_in(client, services)
    before = simulator_out_texts(client, "sim-a")

    post(client, "/admin/conversations/sim-a/release")

    assert "/admin/conversations/sim-a" not in section(page(client, "/admin/conversations"), "担当者の対応待ち", "最近の会話")
    assert simulator_out_texts(client, "sim-a") == before
    assert conversation_state(services, "sim-a") == State.IDLE


def test_a_viewer_s_pages_do_not_count_the_conversations_waiting_for_a_menu_item_it_does_not_have(client, services):
    sign_in(client, services, "viewer")
    statements = []
    listen = lambda conn, cursor, statement, *rest: statements.append(statement)  # noqa: E731
    event.listen(services.db.engine, "before_cursor_execute", listen)
    try:
        assert client.get("/admin/seminars").status_code == 200
    finally:
        event.remove(services.db.engine, "before_cursor_execute", listen)
    assert statements and not any("FROM conversations" in statement for statement in statements)
