"""The program configuration: built-in Kagoshima defaults, replaced section by section from a TOML file."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default_config.toml")

WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
METHODS = ("visit", "online", "phone", "email")


class ConfigError(ValueError):
    """The configuration file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Category:
    id: str
    name: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Coordinator:
    id: str
    name: str
    methods: tuple[str, ...] = METHODS
    regions: tuple[str, ...] = ()
    hours: dict[str, tuple[tuple[time, time], ...]] = field(default_factory=dict)
    slot_minutes: int = 60
    line_user_id: str | None = None
    email: str | None = None
    calendar_id: str | None = None
    # Dates that differ from the weekly hours: other hours, or () for a day off.
    dates: dict[date, tuple[tuple[time, time], ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Partner:
    id: str
    name: str
    categories: tuple[str, ...]
    url: str = ""


@dataclass(frozen=True)
class Closure:
    start: date
    end: date
    name: str = ""


@dataclass(frozen=True)
class Booking:
    horizon_days: int = 30
    min_notice_hours: int = 2
    min_notice_hours_visit: int = 24
    buffer_minutes: int = 0
    # Changes and cancellations by the user: visits until this time the day before, others until some hours before.
    change_cutoff_visit: str = "17:00"
    change_cutoff_hours: int = 2


@dataclass(frozen=True)
class Reminders:
    day_before_at: str = "18:00"  # the day before the meeting, at this time
    hours_before: float = 1


# --- seminars (H-multicast): when seminar reminders go out ---
@dataclass(frozen=True)
class SeminarReminders:
    days_before: int = 3  # the first reminder this many days before the day, at days_before_at
    days_before_at: str = "10:00"
    on_the_day_at: str = "08:00"  # the second on the morning of the day


@dataclass(frozen=True)
class Privacy:
    # A closed consultation's personal data is kept this long after it was received (README argues the figure).
    retention_months: int = 24
    # Inbox payloads, message bodies and multicast recipients are copies: kept only this long.
    copies_days: int = 30

    def __post_init__(self):
        if not (isinstance(self.retention_months, int) and 1 <= self.retention_months <= 120):
            raise ValueError("[privacy] retention_months は1〜120の整数で指定してください")
        if not (isinstance(self.copies_days, int) and 1 <= self.copies_days <= 3650):
            raise ValueError("[privacy] copies_days は1〜3650の整数で指定してください")


@dataclass(frozen=True)
class Targets:
    """The contract's targets the reports measure against."""

    seminar_attendees_per_year: int = 90  # seminar attendees over the fiscal year (April–March)
    visits_per_month: int = 3  # company visits by the coordinators

    def __post_init__(self):
        for name in ("seminar_attendees_per_year", "visits_per_month"):
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100_000):
                raise ValueError(f"[targets] {name} は0以上の整数で指定してください")


@dataclass(frozen=True)
class Subsidy:
    name: str
    summary: str
    url: str


QUESTION_KINDS = ("rating", "single", "multiple", "text", "consult")


@dataclass(frozen=True)
class Question:
    """One survey question. rating: 1–5 with `low`/`high` labels; single/multiple: `choices`; text: typed;
    consult: 「個別相談を希望しますか」 — はい starts the consultation intake."""

    id: str
    kind: str
    text: str
    choices: tuple[str, ...] = ()
    low: str = ""
    high: str = ""
    optional: bool = False


@dataclass(frozen=True)
class Survey:
    id: str
    title: str
    questions: tuple[Question, ...]
    send_after_minutes: int = 60  # after the seminar ends
    reminder_after_hours: int = 24  # one reminder to those who have not finished, this long after the survey

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.id == question_id), None)


@dataclass(frozen=True)
class Config:
    program_name: str
    timezone: str
    privacy_policy_version: str
    contact_phone: str
    categories: tuple[Category, ...]
    coordinators: tuple[Coordinator, ...]
    partners: tuple[Partner, ...]
    closures: tuple[Closure, ...]
    booking: Booking
    reminders: Reminders
    subsidy: Subsidy
    handover_hours: dict[str, tuple[tuple[time, time], ...]]
    seminars: SeminarReminders = SeminarReminders()
    surveys: tuple[Survey, ...] = ()

    def survey(self, survey_id: str | None) -> Survey | None:
        return next((x for x in self.surveys if x.id == survey_id), None)
    privacy: Privacy = Privacy()
    targets: Targets = Targets()

    def category(self, category_id: str) -> Category:
        for c in self.categories:
            if c.id == category_id:
                return c
        return self.categories[-1]

    def coordinator(self, coordinator_id: str) -> Coordinator | None:
        return next((c for c in self.coordinators if c.id == coordinator_id), None)

    def is_closed(self, day: date) -> bool:
        return any(c.start <= day <= c.end for c in self.closures)


def load_config(path: str | Path | None = None) -> Config:
    """Read the defaults, then let the file at `path` replace every top-level section it names."""
    raw = _read_toml(DEFAULT_CONFIG_PATH)
    if path:
        raw.update(_read_toml(Path(path)))
    try:
        return _build(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"設定ファイルの内容が正しくありません: {exc}") from exc


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError as exc:
        raise ConfigError(f"設定ファイルが見つかりません: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"設定ファイル {path} を読めません: {exc}") from exc


def parse_hours(spec: dict) -> dict[str, tuple[tuple[time, time], ...]]:
    """{"mon": ["09:00-12:00"], "holiday": [...]} -> {"mon": ((09:00, 12:00),), ...}."""
    hours = {}
    for key, ranges in spec.items():
        if key not in WEEKDAY_KEYS + ("holiday",):
            raise ValueError(f"曜日のキー {key!r} は mon..sun または holiday です")
        hours[key] = parse_ranges(ranges)
    return hours


def parse_ranges(ranges: list[str]) -> tuple[tuple[time, time], ...]:
    """["09:00-12:00", ...] -> ((09:00, 12:00), ...)."""
    parsed = []
    for r in ranges:
        start, _, end = r.partition("-")
        t0, t1 = time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
        if t1 <= t0:
            raise ValueError(f"時間帯 {r!r} の終わりが始まりより前です")
        parsed.append((t0, t1))
    return tuple(parsed)


def _build(raw: dict) -> Config:
    program = raw.get("program", {})
    categories = tuple(
        Category(c["id"], c["name"], tuple(c.get("keywords", ()))) for c in raw.get("categories", ())
    )
    if not any(c.id == "other" for c in categories):
        categories += (Category("other", "その他"),)
    coordinators = tuple(
        Coordinator(
            id=c["id"],
            name=c["name"],
            methods=tuple(c.get("methods", METHODS)),
            regions=tuple(c.get("regions", ())),
            hours=parse_hours(c.get("hours", {})),
            slot_minutes=int(c.get("slot_minutes", 60)),
            line_user_id=c.get("line_user_id"),
            email=c.get("email"),
            calendar_id=c.get("calendar_id"),
            dates={_as_date(d): parse_ranges(r) for d, r in c.get("dates", {}).items()},
        )
        for c in raw.get("coordinators", ())
    )
    subsidy = raw.get("subsidy", {})
    return Config(
        program_name=program.get("name", "かごしまDX相談窓口"),
        timezone=program.get("timezone", "Asia/Tokyo"),
        privacy_policy_version=str(program.get("privacy_policy_version", "1")),
        contact_phone=program.get("contact_phone", ""),
        categories=categories,
        coordinators=coordinators,
        partners=tuple(
            Partner(p["id"], p["name"], tuple(p.get("categories", ())), p.get("url", ""))
            for p in raw.get("partners", ())
        ),
        closures=tuple(
            Closure(_as_date(c["from"]), _as_date(c.get("to", c["from"])), c.get("name", ""))
            for c in raw.get("closures", ())
        ),
        booking=Booking(**raw.get("booking", {})),
        reminders=Reminders(**raw.get("reminders", {})),
        subsidy=Subsidy(subsidy.get("name", ""), subsidy.get("summary", ""), subsidy.get("url", "")),
        handover_hours=parse_hours(raw.get("handover", {})),
        surveys=tuple(_survey(x) for x in raw.get("surveys", ())),
        seminars=_seminar_reminders(raw.get("seminars", {})),
        privacy=Privacy(**raw.get("privacy", {})),
        targets=Targets(**raw.get("targets", {})),
    )


def _survey(raw: dict) -> Survey:
    """A [[surveys]] entry, refused in Japanese when a question cannot be asked in LINE."""
    survey_id = str(raw.get("id", ""))
    questions = []
    for n, q in enumerate(raw.get("questions", ()), 1):
        where = f"アンケート「{survey_id}」の{n}問目"
        kind, choices = q.get("kind"), tuple(str(c) for c in q.get("choices", ()))
        if kind not in QUESTION_KINDS:
            raise ConfigError(f"{where}: kind は {', '.join(QUESTION_KINDS)} のいずれかにしてください（いま: {kind}）。")
        if kind in ("single", "multiple") and not 2 <= len(choices) <= 12:
            raise ConfigError(f"{where}: 選択肢（choices）は2〜12個にしてください。")
        if any(len(c) > 20 for c in choices):
            raise ConfigError(f"{where}: 選択肢は20文字以内にしてください（LINEのボタンに収まりません）。")
        if not q.get("id") or not q.get("text"):
            raise ConfigError(f"{where}: id と text を指定してください。")
        questions.append(Question(str(q["id"]), kind, str(q["text"]), choices, str(q.get("low", "")),
                                  str(q.get("high", "")), bool(q.get("optional", False))))
    if not survey_id or not questions:
        raise ConfigError("[[surveys]] には id と1つ以上の質問（[[surveys.questions]]）が必要です。")
    if len({q.id for q in questions}) != len(questions):
        raise ConfigError(f"アンケート「{survey_id}」: 質問の id が重複しています。")
    return Survey(survey_id, str(raw.get("title", "アンケート")), tuple(questions),
                  int(raw.get("send_after_minutes", 60)), int(raw.get("reminder_after_hours", 24)))


def _seminar_reminders(raw: dict) -> SeminarReminders:
    reminders = SeminarReminders(**raw)
    for name in ("days_before_at", "on_the_day_at"):
        time.fromisoformat(getattr(reminders, name))  # a bad time is refused at start, not at send time
    if reminders.days_before < 1:
        raise ValueError("[seminars] days_before は1以上にしてください")
    return reminders


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
