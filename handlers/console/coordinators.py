"""The coordinators: methods, regions, hours, and (for admins) their calendar feeds."""

from dataclasses import dataclass

from flask import Blueprint, current_app, render_template, request, session

from bot.config import WEEKDAY_KEYS, Coordinator
from bot.intake import METHODS
from bot.jatime import WEEKDAYS, format_clock, format_date, to_tokyo
from handlers.console.common import REGION_NAMES, _services
from handlers.ical import feed_url


bp = Blueprint("coordinators", __name__)

HOURS_LABELS = dict(zip(WEEKDAY_KEYS + ("holiday",), (*WEEKDAYS, "祝日")))


@dataclass(frozen=True)
class CoordinatorView:
    coordinator: Coordinator
    methods: list[str]
    regions: list[str]  # Japanese names; empty means the whole prefecture
    hours: list[tuple[str, str]]  # (曜日 or 祝日, 9:00〜12:00・13:00〜17:00 or 休み)
    dates: list[tuple[str, str]]  # dates from today on whose hours differ from the week's
    feed: str  # the calendar feed's absolute URL, for admins only


@bp.get("/coordinators")
def coordinators():
    """Each coordinator's methods, regions and hours; for admins, the secret URL of their calendar feed."""
    services = _services()
    is_admin = session["staff"]["role"] == "admin"
    base = (services.settings.public_base_url or request.host_url).rstrip("/")
    today = to_tokyo(services.clock.now()).date()
    views = [CoordinatorView(
        c, [METHODS.get(m, m) for m in c.methods], [REGION_NAMES.get(x, x) for x in c.regions],
        [(HOURS_LABELS[key], _ranges(c.hours.get(key, ()))) for key in HOURS_LABELS],
        [(format_date(d), _ranges(ranges)) for d, ranges in sorted(c.dates.items()) if d >= today],
        base + feed_url(current_app.secret_key, c.id) if is_admin else "") for c in services.config.coordinators]
    return render_template("console/coordinators.html", views=views, is_admin=is_admin)


def _ranges(ranges) -> str:
    return "・".join(f"{format_clock(s)}〜{format_clock(e)}" for s, e in sorted(ranges)) or "休み"

