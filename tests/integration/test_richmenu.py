"""The rich menu: its layout, its committed image, and installing it on a FakeLineApi through the SDK."""

from itertools import combinations

import pytest
import urllib3
from linebot.v3.messaging import RichMenuRequest
from PIL import Image

from handlers.line_api import LineApiError, LineMessenger
from handlers.richmenu import DEFAULT_IMAGE, RICH_MENU_NAME, install_rich_menu, rich_menu_request
from tests.fakes.line_api import FakeLineApi

WIDTH, HEIGHT = 2500, 1686


@pytest.fixture
def fake():
    with FakeLineApi() as fake:
        yield fake


@pytest.fixture
def messenger(fake):
    return LineMessenger("test-token", base_url=fake.base_url, timeout=5, backoff=0)


@pytest.mark.parametrize(
    ("position", "item", "label", "column", "row"),
    [
        (0, "consult", "相談を申し込む", 0, 0),
        (1, "bookings", "予約の確認・変更", 1, 0),
        (2, "seminars", "セミナー", 2, 0),
        (3, "faq", "よくある質問・補助金", 0, 1),
        (4, "popup", "出張相談会", 1, 1),
        (5, "staff", "担当者と話す", 2, 1),
    ],
)
def test_each_button_posts_back_its_item_and_shows_its_label(position, item, label, column, row):
    area = rich_menu_request()["areas"][position]

    assert area["action"] == {
        "type": "postback",
        "label": label,
        "data": f"action=menu&item={item}",
        "displayText": label,
    }
    assert (area["bounds"]["x"], area["bounds"]["y"]) == (WIDTH * column // 3, HEIGHT * row // 2)


def test_the_buttons_cover_the_whole_menu_without_overlapping():
    menu = rich_menu_request()
    boxes = [(a["bounds"]["x"], a["bounds"]["y"], a["bounds"]["width"], a["bounds"]["height"]) for a in menu["areas"]]

    assert menu["size"] == {"width": WIDTH, "height": HEIGHT}
    assert sum(w * h for _, _, w, h in boxes) == WIDTH * HEIGHT
    assert all(x + w <= WIDTH and y + h <= HEIGHT for x, y, w, h in boxes)
    for (x1, y1, w1, h1), (x2, y2, w2, h2) in combinations(boxes, 2):
        assert x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1


def test_the_menu_is_valid_for_the_sdk_and_survives_its_round_trip():
    menu = rich_menu_request()

    assert RichMenuRequest.from_dict(menu).to_dict() == menu


def test_the_committed_image_is_a_png_of_the_menu_size_under_one_megabyte():
    with Image.open(DEFAULT_IMAGE) as image:
        assert (image.format, image.size) == ("PNG", (WIDTH, HEIGHT))
    assert DEFAULT_IMAGE.stat().st_size < 1024 * 1024


def test_installing_creates_the_menu_uploads_the_png_and_makes_it_the_default(fake, messenger):
    rich_menu_id = install_rich_menu(messenger)

    assert [(r.method, r.path) for r in fake.requests()] == [
        ("GET", "/v2/bot/richmenu/list"),
        ("POST", "/v2/bot/richmenu"),
        ("POST", f"/v2/bot/richmenu/{rich_menu_id}/content"),
        ("POST", f"/v2/bot/user/all/richmenu/{rich_menu_id}"),
    ]
    assert fake.requests("/v2/bot/richmenu")[0].body == rich_menu_request()
    assert fake.rich_menu_images[rich_menu_id] == ("image/png", DEFAULT_IMAGE.read_bytes())
    assert fake.default_rich_menu_id == rich_menu_id


def test_installing_again_replaces_older_menus_of_the_same_name_and_keeps_others(fake, messenger):
    other = messenger.create_rich_menu({**rich_menu_request(), "name": "campaign"})
    first = install_rich_menu(messenger)

    second = install_rich_menu(messenger)

    assert fake.requests(f"/v2/bot/richmenu/{first}")[-1].method == "DELETE"
    assert set(fake.rich_menus) == {other, second}
    assert fake.default_rich_menu_id == second
    assert [m["name"] for m in messenger.rich_menus()].count(RICH_MENU_NAME) == 1


def test_a_refused_install_raises_and_leaves_the_current_menu_in_place(fake, messenger):
    current = install_rich_menu(messenger)
    fake.script("/v2/bot/richmenu", [400])

    with pytest.raises(LineApiError) as refused:
        install_rich_menu(messenger)

    assert refused.value.status == 400
    assert set(fake.rich_menus) == {current}
    assert fake.default_rich_menu_id == current


def test_with_lines_own_base_url_the_image_goes_to_lines_data_host(monkeypatch):
    urls = []

    def offline(pool, method, url, *args, **kwargs):
        urls.append(url)
        raise urllib3.exceptions.HTTPError("no network in tests")

    monkeypatch.setattr(urllib3.PoolManager, "urlopen", offline)
    messenger = LineMessenger("test-token", base_url="https://api.line.me")

    for call in (lambda: messenger.upload_rich_menu_image("rm1", b"png"), lambda: messenger.set_default_rich_menu("rm1")):
        with pytest.raises(LineApiError):
            call()

    assert urls == [
        "https://api-data.line.me/v2/bot/richmenu/rm1/content",
        "https://api.line.me/v2/bot/user/all/richmenu/rm1",
    ]
