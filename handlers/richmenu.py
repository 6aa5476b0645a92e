"""The LINE rich menu: its six buttons, the LINE JSON that lays them out, and installing it on the channel."""

from __future__ import annotations

from pathlib import Path

from handlers.line_api import LineMessenger

DEFAULT_IMAGE = Path(__file__).parent / "static" / "richmenu.png"
RICH_MENU_NAME = "dxdesk-main"
RICH_MENU_SIZE = (2500, 1686)
COLUMNS, ROWS = 3, 2

RICH_MENU_ITEMS: tuple[tuple[str, str], ...] = (
    ("consult", "相談を申し込む"),
    ("bookings", "予約の確認・変更"),
    ("seminars", "セミナー"),
    ("faq", "よくある質問・補助金"),
    ("popup", "出張相談会"),
    ("staff", "担当者と話す"),
)


def rich_menu_request() -> dict:
    """The menu in the Messaging API's JSON: buttons left to right, then top to bottom."""
    width, height = RICH_MENU_SIZE
    xs = [width * column // COLUMNS for column in range(COLUMNS + 1)]
    ys = [height * row // ROWS for row in range(ROWS + 1)]
    areas = []
    for index, (item_id, label) in enumerate(RICH_MENU_ITEMS):
        row, column = divmod(index, COLUMNS)
        areas.append(
            {
                "bounds": {
                    "x": xs[column],
                    "y": ys[row],
                    "width": xs[column + 1] - xs[column],
                    "height": ys[row + 1] - ys[row],
                },
                "action": {
                    "type": "postback",
                    "label": label,
                    "data": f"action=menu&item={item_id}",
                    "displayText": label,
                },
            }
        )
    return {
        "size": {"width": width, "height": height},
        "selected": True,
        "name": RICH_MENU_NAME,
        "chatBarText": "メニュー",
        "areas": areas,
    }


def install_rich_menu(messenger: LineMessenger, image_path: Path | str = DEFAULT_IMAGE) -> str:
    """Makes this menu (a PNG image) every user's default and returns its id; raises LineApiError.

    LINE cannot replace a menu's image, so each install creates a new menu, then deletes the older
    ones of the same name; a half-done install is cleaned up by the next one.
    """
    png = Path(image_path).read_bytes()
    older = [menu["richMenuId"] for menu in messenger.rich_menus() if menu["name"] == RICH_MENU_NAME]
    rich_menu_id = messenger.create_rich_menu(rich_menu_request())
    messenger.upload_rich_menu_image(rich_menu_id, png)
    messenger.set_default_rich_menu(rich_menu_id)
    for old_id in older:
        messenger.delete_rich_menu(old_id)
    return rich_menu_id
