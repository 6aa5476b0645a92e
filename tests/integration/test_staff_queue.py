"""担当者の対応待ち: the queue, its count in the console's navigation, the notice to the coordinators on duty, and the
conversation view (newest message first in sight, Flex messages readable), over signed LINE events and the fake LINE API."""
from __future__ import annotations

import textwrap
import threading
import time
from dataclasses import replace
from datetime import datetime

import pytest
from sqlalchemy import select

from app import create_app
from bot.config import load_config
from bot.conversation import State
from bot.intents import intent_of
from bot.jatime import TOKYO
from scheduling.notifications import _on_duty
from storage.models import ConversationRow, OutboundMessage
from tests.fakes.smtp import FakeSmtpServer
from tests.helpers import LineUserDriver, texts
from tests.integration.test_booking import (  # noqa: F401 - configured, gcal, line and user are fixtures used here
    COORDINATOR_LINE_ID, configured, gcal, intake, line, user,
)
from tests.integration.test_console import page, post, sign_in
from tests.integration.test_console_reschedule import (  # noqa: F401 - app and services are fixtures used here
    SUZUKI_LINE_ID, app, services,
)

LINK = "http://localhost/admin/conversations/" + LineUserDriver.USER
ASK_STAFF = "action=menu&item=staff"


def notices(line, coordinator: str) -> list[str]:
    """What a coordinator was pushed, one string per message."""
    return [texts([m]) for batch in line.delivered(coordinator) for m in batch]


def badge(text: str) -> int:
    """The number beside 会話 in the navigation, 0 when there is none."""
    nav = text[text.index('aria-label="メインメニュー"'):text.index("</nav>")]
    if 'class="badge"' not in nav:
        return 0
    after = nav[nav.index('class="badge"'):]
    return int(after[after.index(">") + 1:after.index("<span")])


def waiting_list(client) -> str:
    text = page(client, "/admin/conversations")
    return text[text.index("担当者の対応待ち"):text.index("最近の会話")]


# --- the notice ---------------------------------------------------------------------------------------

def test_asking_for_staff_tells_the_coordinator_on_duty_with_a_link_and_nothing_about_the_person(user, line):
    user.send(type="follow")
    user.say("株式会社さつま商事の西郷です")

    user.tap(ASK_STAFF)  # Tuesday 10:00: 田中 works, 鈴木 only on Thursdays and Fridays

    [notice] = notices(line, COORDINATOR_LINE_ID)
    assert "担当者の対応を待っている会話があります" in notice and LINK in notice
    assert "さつま" not in notice and "西郷" not in notice
    assert notices(line, SUZUKI_LINE_ID) == []


def test_one_notice_per_wait_however_many_messages_and_a_new_one_once_staff_have_answered(client, services, user, line):
    user.send(type="follow")
    user.tap(ASK_STAFF)
    for text in ("補助金のことで相談したいです", "至急お願いします", "電話でも大丈夫です"):
        user.say(text)
    assert len(notices(line, COORDINATOR_LINE_ID)) == 1

    sign_in(client, services)
    post(client, f"/admin/conversations/{user.user}/reply", text="担当の田中です。お電話します。")
    user.say("ありがとうございます。午後なら出られます")

    assert len(notices(line, COORDINATOR_LINE_ID)) == 2
    user.say("よろしくお願いします")
    assert len(notices(line, COORDINATOR_LINE_ID)) == 2


def test_the_notice_is_queued_and_delivered_through_the_outbound_table(services, user, line):
    user.send(type="follow")
    user.tap(ASK_STAFF)

    with services.db.unit_of_work() as s:
        [row] = s.scalars(select(OutboundMessage).where(OutboundMessage.to == COORDINATOR_LINE_ID)).all()
    assert (row.sender, row.status, row.channel) == ("notice", "sent", "line")


def test_when_nobody_is_on_duty_every_coordinator_who_can_be_reached_is_told(user, line, clock):
    clock.set(datetime(2026, 11, 29, 21, 0, tzinfo=TOKYO))  # a Sunday evening
    user.send(type="follow")

    user.tap(ASK_STAFF)

    assert len(notices(line, COORDINATOR_LINE_ID)) == 1 and len(notices(line, SUZUKI_LINE_ID)) == 1


def test_on_duty_follows_weekday_hours_holidays_and_dated_changes(tmp_path):
    config_file = tmp_path / "duty.toml"
    config_file.write_text(textwrap.dedent("""
        [[coordinators]]
        id = "tanaka"
        name = "田中 一郎"
        [coordinators.hours]
        mon = ["09:00-12:00"]
        holiday = ["10:00-12:00"]
        [coordinators.dates]
        2026-11-30 = []
    """))
    [c] = load_config(config_file).coordinators

    def on(day: int, hour: int, minute: int = 0) -> bool:
        return _on_duty(c, datetime(2026, 11, day, hour, minute, tzinfo=TOKYO), load_config(config_file))

    assert on(16, 9) and on(16, 11, 59) and not on(16, 12)  # a Monday
    assert on(23, 10) and not on(23, 9)  # Monday 勤労感謝の日: the holiday's hours, not Monday's
    assert not on(30, 10)  # a Monday given the day off
    assert not on(17, 10)  # a Tuesday


# --- email --------------------------------------------------------------------------------------------

EMAIL_ONLY = textwrap.dedent("""
    [[coordinators]]
    id = "{id}"
    name = "{name}"
    email = "{id}@example.jp"
    methods = ["phone"]
    [coordinators.hours]
    tue = ["09:00-17:00"]
""")


@pytest.fixture
def smtp():
    with FakeSmtpServer() as server:
        yield server


@pytest.fixture
def mail_app(configured, clock, tmp_path, smtp):
    config = tmp_path / "mail.toml"
    config.write_text(EMAIL_ONLY.format(id="sato", name="佐藤 次郎") + EMAIL_ONLY.format(id="ito", name="伊藤 三郎"))
    app = create_app(replace(configured, config_path=str(config), smtp_url=smtp.url,
                             mail_from="かごしまDX相談窓口 <dx-desk@example.jp>"), clock=clock)
    yield app
    app.extensions["dxdesk"].stop()
    app.extensions["dxdesk"].db.dispose()


def test_coordinators_without_line_get_one_email_all_blind_copies(mail_app, line, smtp):
    someone = LineUserDriver(mail_app.test_client(), mail_app, line)
    someone.send(type="follow")

    someone.tap(ASK_STAFF)
    someone.say("見積もりの件です")

    [mail] = smtp.mails
    assert sorted(mail.rcpt_tos) == ["ito@example.jp", "sato@example.jp"]
    parsed = mail.parsed()
    assert "ito@example.jp" not in str(parsed["To"]) and "sato@example.jp" not in str(parsed["To"])
    assert "担当者の対応を待っている会話があります" in parsed["Subject"]
    body = parsed.get_body().get_content()
    assert LINK in body and "見積もり" not in body


# --- the queue and its count --------------------------------------------------------------------------

def test_taps_and_the_menu_do_not_drop_a_waiting_question_and_the_count_shows_on_every_page(client, services, user):
    user.send(type="follow")
    user.tap(ASK_STAFF)
    user.say("補助金の締切を教えてください")
    user.tap("action=menu&item=faq")
    user.say("メニュー")
    sign_in(client, services)

    assert LineUserDriver.USER in waiting_list(client)
    for path in ("/admin", "/admin/bookings", "/admin/consultations", f"/admin/conversations/{user.user}"):
        assert badge(page(client, path)) == 1, path

    post(client, f"/admin/conversations/{user.user}/reply", text="12月25日です。")

    assert badge(page(client, "/admin/bookings")) == 0
    assert LineUserDriver.USER not in waiting_list(client)


def test_giving_the_conversation_back_empties_the_count(client, services, user):
    user.send(type="follow")
    user.tap(ASK_STAFF)
    sign_in(client, services)
    assert badge(page(client, "/admin")) == 1

    post(client, f"/admin/conversations/{user.user}/release")

    assert badge(page(client, "/admin")) == 0


def simulated(services, user_id: str, event: dict) -> None:
    """One event of a simulator user, through the same conversation service as LINE's (the simulator page is off
    while a LINE channel is configured)."""
    with services.db.unit_of_work() as s:
        handled = services.conversations.handle(s, user_id, "simulator", intent_of(event), services.clock.now())
        s.commit()
    services.delivery.send(handled.outbound_ids)


def test_the_simulator_s_questions_are_listed_but_not_counted_nor_notified(client, services, line):
    simulated(services, "sim-q", {"type": "postback", "postback": {"data": ASK_STAFF}})
    simulated(services, "sim-q", {"type": "message", "message": {"type": "text", "text": "テストです"}})
    sign_in(client, services)

    assert "/admin/conversations/sim-q" in waiting_list(client)
    assert badge(page(client, "/admin")) == 0
    assert notices(line, COORDINATOR_LINE_ID) == [] and notices(line, SUZUKI_LINE_ID) == []


# --- the conversation view ----------------------------------------------------------------------------

def test_the_conversation_opens_at_the_newest_message_with_the_reply_box_focused(client, services, user):
    user.send(type="follow")
    user.tap(ASK_STAFF)
    user.say("いちばん新しいメッセージ")
    sign_in(client, services)

    text = page(client, f"/admin/conversations/{user.user}")
    listed = page(client, "/admin/conversations")

    last = text[text.rindex('<li class="bubble-row'):]
    assert 'id="latest"' in last and text.count('id="latest"') == 1  # the last bubble is the anchor
    assert text.index("いちばん新しいメッセージ") < text.index('id="latest"')  # in time order, newest last
    reply_box = text[text.index('<textarea id="reply-text"'):]
    assert "autofocus" in reply_box[:reply_box.index(">")]
    # A fragment would make browsers skip the autofocus: staff who can reply land in the box, below the newest message.
    assert f'href="/admin/conversations/{user.user}"' in listed


def test_the_slot_carousel_shows_which_times_were_offered(client, services, user):
    intake(user)
    sign_in(client, services)

    text = page(client, f"/admin/conversations/{user.user}")

    assert "ご相談の日時を選んでください" in text
    assert "・11月26日(木)：" in text and "10:00〜11:00 / 11:00〜12:00" in text


def test_the_bot_waits_for_a_conversation_row_someone_else_holds(services, user):
    """Staff take a conversation over under the row's lock: the bot, reading the user and the row in one query, waits
    for that lock and answers from the state it leads to, not from the one before (PostgreSQL's row locks; on SQLite
    every writer waits for the one before it anyway)."""
    if not services.db.is_postgres:
        pytest.skip("row locks are PostgreSQL's: set DXDESK_TEST_DATABASE_URL (CI runs this on PostgreSQL)")
    user.say("こんにちは")  # the user and the conversation row exist: the bot reads them in one query
    held = threading.Event()

    def take_over():
        with services.db.unit_of_work() as s:
            row = s.get(ConversationRow, user.user, with_for_update=True)
            held.set()
            time.sleep(0.3)  # the bot's event arrives meanwhile
            row.state = State.WITH_STAFF
            s.commit()

    console = threading.Thread(target=take_over)
    console.start()
    assert held.wait(10)
    with services.db.unit_of_work() as s:
        handled = services.conversations.handle(s, user.user, "line", intent_of(
            {"type": "message", "message": {"type": "text", "text": "テストです"}}), services.clock.now())
        answer = texts([m for i in handled.outbound_ids for m in s.get(OutboundMessage, i).messages])
        s.commit()
    console.join()

    assert "担当者に届いています" in answer
