"""Draws handlers/static/richmenu.png, the rich menu image, from the buttons defined in handlers/richmenu.py.

Run `python scripts/make_richmenu_image.py` with the project installed (`pip install -e '.[test]'`);
it needs Debian's fonts-noto-cjk. The PNG it writes is committed; run it again after changing a label.
"""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

from handlers.richmenu import DEFAULT_IMAGE, RICH_MENU_ITEMS, rich_menu_request

FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"  # its first face is the Japanese one
SCALE = 2  # drawn at twice the size, then reduced, which smooths Pillow's jagged edges
BACKGROUND = "#eef3f6"
CARD = "#ffffff"
INK = "#2b3a42"
WHITE = "#ffffff"
ACCENTS = {
    "consult": "#f07f22",
    "bookings": "#1f9d8b",
    "seminars": "#3a78d4",
    "faq": "#e0a100",
    "popup": "#e0567a",
    "staff": "#7a5cc7",
}


def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT, size * SCALE)


def draw_consult(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, ink: str, cut: str) -> None:
    """A speech bubble with three dots: "tell us about it"."""
    d.rounded_rectangle((cx - r * 0.58, cy - r * 0.45, cx + r * 0.58, cy + r * 0.28), r * 0.22, fill=ink)
    d.polygon([(cx - r * 0.3, cy + r * 0.2), (cx - r * 0.38, cy + r * 0.55), (cx - r * 0.05, cy + r * 0.2)], fill=ink)
    for dx in (-0.28, 0, 0.28):
        x = cx + r * dx
        d.ellipse((x - r * 0.08, cy - r * 0.16, x + r * 0.08, cy), fill=cut)


def draw_bookings(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, ink: str, cut: str) -> None:
    """A calendar page with a tick."""
    left, top, right, bottom = cx - r * 0.52, cy - r * 0.4, cx + r * 0.52, cy + r * 0.52
    d.rounded_rectangle((left, top, right, bottom), r * 0.1, fill=ink)
    d.rectangle((left, top + r * 0.2, right, top + r * 0.26), fill=cut)
    for dx in (-0.26, 0.26):
        x = cx + r * dx
        d.rounded_rectangle((x - r * 0.06, top - r * 0.14, x + r * 0.06, top + r * 0.1), r * 0.05, fill=ink)
        d.ellipse((x - r * 0.035, top + r * 0.02, x + r * 0.035, top + r * 0.09), fill=cut)
    tick = [(cx - r * 0.24, cy + r * 0.14), (cx - r * 0.06, cy + r * 0.32), (cx + r * 0.28, cy - r * 0.02)]
    d.line(tick, fill=cut, width=int(r * 0.11), joint="curve")


def draw_seminars(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, ink: str, cut: str) -> None:
    """A presentation board on its stand, showing a rising bar chart."""
    left, top, right, bottom = cx - r * 0.6, cy - r * 0.48, cx + r * 0.6, cy + r * 0.3
    width = int(r * 0.08)
    d.line([(cx, bottom), (cx - r * 0.32, cy + r * 0.62)], fill=ink, width=width)
    d.line([(cx, bottom), (cx + r * 0.32, cy + r * 0.62)], fill=ink, width=width)
    d.rounded_rectangle((left, top, right, bottom), r * 0.06, fill=ink)
    for i, height in enumerate((0.22, 0.38, 0.54)):
        x = cx - r * 0.36 + i * r * 0.27
        d.rectangle((x, bottom - r * 0.12 - r * height, x + r * 0.17, bottom - r * 0.12), fill=cut)


def draw_faq(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, ink: str, cut: str) -> None:
    """A question bubble with a yen coin: questions and subsidies."""
    d.ellipse((cx - r * 0.56, cy - r * 0.56, cx + r * 0.36, cy + r * 0.36), fill=ink)
    d.polygon([(cx - r * 0.42, cy + r * 0.1), (cx - r * 0.58, cy + r * 0.5), (cx - r * 0.14, cy + r * 0.3)], fill=ink)
    d.text((cx - r * 0.1, cy - r * 0.12), "?", font=ImageFont.truetype(FONT, int(r * 0.7)), fill=cut, anchor="mm")
    coin = (cx + r * 0.12, cy + r * 0.12, cx + r * 0.62, cy + r * 0.62)
    d.ellipse(coin, fill=cut)
    d.ellipse((coin[0] + r * 0.05, coin[1] + r * 0.05, coin[2] - r * 0.05, coin[3] - r * 0.05), fill=ink)
    d.text((cx + r * 0.37, cy + r * 0.37), "¥", font=ImageFont.truetype(FONT, int(r * 0.32)), fill=cut, anchor="mm")


def draw_popup(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, ink: str, cut: str) -> None:
    """A map pin: we come to your town."""
    head = r * 0.4
    top = cy - r * 0.56
    d.ellipse((cx - head, top, cx + head, top + 2 * head), fill=ink)
    tip = (cx, cy + r * 0.6)
    d.polygon([(cx - head * 0.86, top + head * 1.5), (cx + head * 0.86, top + head * 1.5), tip], fill=ink)
    d.ellipse((cx - head * 0.42, top + head * 0.58, cx + head * 0.42, top + head * 1.42), fill=cut)


def draw_staff(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, ink: str, cut: str) -> None:
    """A person wearing a headset: a member of staff on the line."""
    hx, hy, head, band = cx, cy - r * 0.2, r * 0.25, r * 0.37
    d.pieslice((cx - r * 0.52, cy + r * 0.14, cx + r * 0.52, cy + r * 1.1), 180, 360, fill=ink)
    d.ellipse((hx - head, hy - head, hx + head, hy + head), fill=ink)
    d.arc((hx - band, hy - band, hx + band, hy + band), 180, 360, fill=ink, width=int(r * 0.07))
    for side in (-1, 1):
        x = hx + side * band
        d.rounded_rectangle((x - r * 0.08, hy - r * 0.12, x + r * 0.08, hy + r * 0.14), r * 0.06, fill=ink)
    d.arc((hx - band, hy - band, hx + band, hy + band), 25, 70, fill=ink, width=int(r * 0.05))
    d.ellipse((hx + r * 0.06, hy + r * 0.28, hx + r * 0.18, hy + r * 0.4), fill=ink)


ICONS = {
    "consult": draw_consult,
    "bookings": draw_bookings,
    "seminars": draw_seminars,
    "faq": draw_faq,
    "popup": draw_popup,
    "staff": draw_staff,
}


def fitted_font(d: ImageDraw.ImageDraw, label: str, max_width: float) -> ImageFont.FreeTypeFont:
    size = 92
    while d.textlength(label, font=font(size)) > max_width:
        size -= 2
    return font(size)


def draw_menu() -> Image.Image:
    menu = rich_menu_request()
    width, height = menu["size"]["width"], menu["size"]["height"]
    image = Image.new("RGB", (width * SCALE, height * SCALE), BACKGROUND)
    d = ImageDraw.Draw(image)
    gap = 14 * SCALE
    for (item_id, label), area in zip(RICH_MENU_ITEMS, menu["areas"]):
        b = {key: value * SCALE for key, value in area["bounds"].items()}
        left, top, right, bottom = b["x"] + gap, b["y"] + gap, b["x"] + b["width"] - gap, b["y"] + b["height"] - gap
        accent = ACCENTS[item_id]
        # The first button is the one most people need, so it alone is in full colour.
        card, ink, cut, text = (accent, accent, WHITE, WHITE) if item_id == "consult" else (CARD, WHITE, accent, INK)
        d.rounded_rectangle((left, top, right, bottom), 44 * SCALE, fill=card)
        cx, cy, r = (left + right) / 2, top + (bottom - top) * 0.4, 190 * SCALE
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=cut)
        ICONS[item_id](d, cx, cy, r, ink, cut)
        label_font = fitted_font(d, label, (right - left) - 80 * SCALE)
        d.text((cx, top + (bottom - top) * 0.8), label, font=label_font, fill=text, anchor="mm")
    return image.resize((width, height), Image.LANCZOS)


def main() -> None:
    DEFAULT_IMAGE.parent.mkdir(parents=True, exist_ok=True)
    draw_menu().save(DEFAULT_IMAGE, optimize=True)
    print(f"{DEFAULT_IMAGE}: {DEFAULT_IMAGE.stat().st_size} bytes")


if __name__ == "__main__":
    main()
