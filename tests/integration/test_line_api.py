"""LineMessenger against FakeLineApi, through the real line-bot-sdk and real HTTP."""

import logging
import uuid

import pytest

from handlers.line_api import LineMessenger
from storage.outbound import SendResult
from tests.fakes.line_api import LOST, RESET_AFTER, FakeLineApi, Fault

PUSH = "/v2/bot/message/push"
REPLY = "/v2/bot/message/reply"
LOADING = "/v2/bot/chat/loading/start"
PROFILE = "/v2/bot/profile/U1"
HELLO = [{"type": "text", "text": "ご相談ありがとうございます。"}]
MAX_RETRIES = 3


@pytest.fixture
def fake():
    with FakeLineApi() as fake:
        yield fake


@pytest.fixture
def messenger(fake):
    return LineMessenger("test-token", base_url=fake.base_url, timeout=5, max_retries=MAX_RETRIES, backoff=0)


def new_key():
    return str(uuid.uuid4())


def test_a_push_that_fails_twice_with_500_is_delivered_once_with_one_retry_key(fake, messenger):
    fake.script(PUSH, [500, 500, 200])
    key = new_key()

    assert messenger.push("U1", HELLO, key) == SendResult("sent")

    assert [r.headers["x-line-retry-key"] for r in fake.requests(PUSH)] == [key, key, key]
    assert fake.delivered(to="U1") == [HELLO]


def test_a_repeated_push_with_an_accepted_key_is_reported_sent_and_delivered_once(fake, messenger):
    key = new_key()
    messenger.push("U1", HELLO, key)

    assert messenger.push("U1", HELLO, key) == SendResult("sent")

    assert len(fake.requests(PUSH)) == 2
    assert fake.delivered(to="U1") == [HELLO]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (400, SendResult("failed", error="http_400")),
        (401, SendResult("failed", error="http_401")),
        (403, SendResult("failed", error="http_403")),
        (404, SendResult("failed", error="http_404")),
        (429, SendResult("retry", error="rate_limited", retry_after=60.0)),
        (
            (429, {"message": "You have reached your monthly limit."}),
            SendResult("retry", error="quota", retry_after=3600.0),
        ),
    ],
)
def test_a_push_refused_with_a_4xx_is_not_retried_by_the_client(fake, messenger, answer, expected):
    fake.script(PUSH, [answer])

    assert messenger.push("U1", HELLO, new_key()) == expected

    assert len(fake.requests(PUSH)) == 1
    assert fake.delivered() == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_push_that_keeps_failing_with_5xx_is_left_to_retry_later_with_the_same_key(fake, messenger, status):
    fake.script(PUSH, [status] * (MAX_RETRIES + 1))
    key = new_key()

    assert messenger.push("U1", HELLO, key) == SendResult("retry", error=f"http_{status}")
    assert messenger.push("U1", HELLO, key) == SendResult("sent")

    assert [r.headers["x-line-retry-key"] for r in fake.requests(PUSH)] == [key] * (MAX_RETRIES + 2)
    assert fake.delivered(to="U1") == [HELLO]


def test_a_push_that_times_out_is_retried_then_delivered_once_by_a_later_attempt(fake):
    impatient = LineMessenger("test-token", base_url=fake.base_url, timeout=0.2, max_retries=MAX_RETRIES, backoff=0)
    fake.script(PUSH, [200] * (MAX_RETRIES + 1), delay=1.0)
    key = new_key()

    assert impatient.push("U1", HELLO, key) == SendResult("retry", error="timeout")
    assert len(fake.requests(PUSH)) == MAX_RETRIES + 1

    assert impatient.push("U1", HELLO, key) == SendResult("sent")
    assert fake.delivered(to="U1") == [HELLO]


def test_a_reply_is_delivered_without_a_retry_key(fake, messenger):
    token = fake.issue_reply_token("U1")

    assert messenger.reply(token, HELLO) == SendResult("sent")

    [request] = fake.requests(REPLY)
    assert (request.body["replyToken"], request.body["messages"]) == (token, HELLO)
    assert "x-line-retry-key" not in request.headers
    assert fake.delivered(to="U1") == [HELLO]


@pytest.mark.parametrize("reason", ["used before", "expired"])
def test_a_reply_with_a_stale_token_fails_so_the_caller_can_push(fake, messenger, reason):
    token = fake.issue_reply_token("U1")
    if reason == "used before":
        messenger.reply(token, HELLO)
    else:
        fake.script(REPLY, [(400, {"message": "Invalid reply token"})])

    assert messenger.reply(token, HELLO) == SendResult("failed", error="reply_token")


def test_a_multicast_is_delivered_to_every_recipient_once(fake, messenger):
    assert messenger.multicast(["U1", "U2"], HELLO, new_key()) == SendResult("sent")

    assert fake.delivered(to="U1") == fake.delivered(to="U2") == [HELLO]


def test_a_multicast_to_more_than_500_users_fails_without_a_request(fake, messenger):
    recipients = [f"U{i}" for i in range(501)]

    assert messenger.multicast(recipients, HELLO, new_key()) == SendResult("failed", error="too_many_recipients")
    assert fake.requests() == []


@pytest.mark.parametrize(
    "messages",
    [[{"type": "sticker-ish"}], [{"type": "text"}], HELLO * 6],
    ids=["unknown type", "text without text", "six messages"],
)
def test_messages_that_do_not_fit_the_messaging_api_fail_without_a_request(fake, messenger, messages):
    assert messenger.push("U1", messages, new_key()) == SendResult("failed", error="invalid_message")
    assert fake.requests() == []


def test_quick_replies_flex_and_templates_reach_line_as_given(fake, messenger):
    messages = [
        {
            "type": "text",
            "text": "ご希望の方法をお選びください。",
            "quickReply": {
                "items": [
                    {
                        "type": "action",
                        "action": {"type": "postback", "label": "訪問", "data": "method=visit", "displayText": "訪問"},
                    }
                ]
            },
        },
        {
            "type": "flex",
            "altText": "ご予約内容",
            "contents": {
                "type": "bubble",
                "body": {"type": "box", "layout": "vertical", "contents": [{"type": "text", "text": "11月29日(土) 10:00"}]},
            },
        },
        {
            "type": "template",
            "altText": "ご予約を確定しますか？",
            "template": {
                "type": "confirm",
                "text": "ご予約を確定しますか？",
                "actions": [
                    {"type": "message", "label": "はい", "text": "はい"},
                    {"type": "message", "label": "いいえ", "text": "いいえ"},
                ],
            },
        },
    ]

    messenger.push("U1", messages, new_key())

    assert fake.delivered(to="U1") == [messages]


@pytest.mark.parametrize(("asked", "sent"), [(20, 20), (7, 10), (1, 5), (90, 60)])
def test_show_loading_posts_the_chat_and_a_duration_line_accepts(fake, messenger, asked, sent):
    messenger.show_loading("U1", asked)

    [request] = fake.requests(LOADING)
    assert request.body == {"chatId": "U1", "loadingSeconds": sent}


def test_profile_name_is_the_users_display_name(fake, messenger):
    fake.profiles["U1"] = "鹿児島 花子"

    assert messenger.profile_name("U1") == "鹿児島 花子"


def test_profile_name_is_none_for_a_user_line_will_not_describe(fake, messenger):
    fake.script(PROFILE, [404])

    assert messenger.profile_name("U1") is None


def test_loading_and_profile_never_raise_when_line_is_unreachable():
    with FakeLineApi() as stopped:
        pass
    messenger = LineMessenger("test-token", base_url=stopped.base_url, timeout=1, max_retries=0)

    messenger.show_loading("U1")
    assert messenger.profile_name("U1") is None


def test_logs_carry_no_message_text_nor_profile_names(fake, messenger, caplog):
    # The SDK logs response bodies at DEBUG unless its Configuration keeps its logger at WARNING.
    caplog.set_level(logging.DEBUG)
    fake.profiles["U1"] = "Hanako Kagoshima"
    fake.script(PUSH, [400])

    messenger.push("U1", [{"type": "text", "text": "電話は090-1234-5678です"}], new_key())
    messenger.profile_name("U1")

    assert "400" in caplog.text
    assert "090-1234-5678" not in caplog.text
    assert "Hanako" not in caplog.text


@pytest.mark.parametrize("fault", [LOST, RESET_AFTER, Fault.answer(500)],
                         ids=["answer-lost", "reset-after-taken", "500"])
def test_a_reply_that_may_have_been_shown_is_reported_unknown_and_not_repeated_by_the_client(fake, fault):
    impatient = LineMessenger("test-token", base_url=fake.base_url, timeout=0.2, max_retries=MAX_RETRIES, backoff=0)
    fake.wait_seconds = 1.0
    fake.faults = lambda request, recipient: fault
    token = fake.issue_reply_token("U1")

    assert impatient.reply(token, HELLO).status == "unknown"

    assert len(fake.requests(REPLY)) == 1


def test_a_reply_that_cannot_reach_line_is_left_to_retry(fake):
    fake.__exit__()  # nothing listens on its port any more
    unreachable = LineMessenger("test-token", base_url=fake.base_url, timeout=0.2, max_retries=0, backoff=0)

    assert unreachable.reply("token", HELLO).status == "retry"  # LINE has surely not seen it


def test_a_reply_token_expires_after_about_a_minute(clock):
    with FakeLineApi(clock) as fake:
        messenger = LineMessenger("test-token", base_url=fake.base_url, timeout=5, max_retries=0)
        token = fake.issue_reply_token("U1")
        clock.advance(seconds=61)

        assert messenger.reply(token, HELLO) == SendResult("failed", error="reply_token")
        assert fake.delivered() == []


@pytest.mark.parametrize("uri, delivered", [
    ("/privacy", False), ("privacy", False), ("javascript:alert(1)", False), ("ftp://dx-desk.example.jp/", False),
    ("https://dx-desk.example.jp/privacy", True), ("http://dx-desk.example.jp/", True), ("tel:0992862111", True),
    ("line://ti/p/@dxdesk", True),
])
def test_like_line_the_fake_refuses_a_message_whose_uri_action_is_not_http_https_line_or_tel(fake, messenger, uri, delivered):
    message = {"type": "template", "altText": "ご案内", "template": {"type": "buttons", "text": "ご案内", "actions": [
        {"type": "postback", "label": "同意する", "data": "action=consent"},
        {"type": "uri", "label": "読む", "uri": uri}]}}

    result = messenger.push("U1", [message], new_key())

    assert (result.status == "sent") is delivered
    assert fake.delivered(to="U1") == ([[message]] if delivered else [])


def test_sends_carry_the_sdks_authorisation_and_user_agent(fake, messenger):
    messenger.reply(fake.issue_reply_token("U1"), HELLO)
    messenger.push("U1", HELLO, new_key())

    for request in fake.requests(REPLY) + fake.requests(PUSH):
        assert request.headers["authorization"] == "Bearer test-token"
        assert request.headers["user-agent"].startswith("line-bot-sdk-python/")
        assert request.headers["content-type"] == "application/json"


def test_messages_reach_line_as_the_sdks_models_write_them_empty_fields_left_out(fake, messenger):
    messages = [{"type": "text", "text": "こんにちは", "quickReply": None, "emojis": None}]

    assert messenger.push("U1", messages, new_key()) == SendResult("sent")
    assert messenger.reply(fake.issue_reply_token("U1"), messages) == SendResult("sent")

    assert fake.delivered(to="U1") == [[{"type": "text", "text": "こんにちは"}]] * 2


def test_the_same_messages_are_checked_once_and_each_send_gets_its_own_body(fake, messenger):
    menu = [{"type": "text", "text": f"メニュー{n}"} for n in range(3)]
    first = messenger.push("U1", menu, new_key())
    menu[0]["text"] = "変わったメニュー"  # the caller's list changed after a send: the next send has the new text

    assert first == messenger.push("U2", menu, new_key()) == SendResult("sent")
    assert [r.body["messages"][0]["text"] for r in fake.requests(PUSH)] == ["メニュー0", "変わったメニュー"]
    assert [r.body["to"] for r in fake.requests(PUSH)] == ["U1", "U2"]


def test_a_multicast_to_nobody_fails_without_a_request(fake, messenger):
    assert messenger.multicast([], HELLO, new_key()) == SendResult("failed", error="invalid_message")
    assert fake.requests() == []
