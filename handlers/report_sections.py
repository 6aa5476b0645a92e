"""The report's tables as the prefecture sees them: storage.reports' figures labelled, in order, and masked.

The same sections are laid out as a workbook (handlers/report_files.py) and on the console's home page, so the two
always show the same figures. Nothing is counted here: a total is the sum of the counts it sits under.

Masking has two steps. A count of 1 or 2 shows as 「3未満」 (primary). Then, where a total is shown, a hidden count
could be worked out by subtraction (13 in all, 5 and 7 shown: the hidden one is 1), so `suppressed` also hides the
smallest counts of 3 or more of that column as 「秘匿」 (secondary) until no hidden count can be told. NOTES explain
both marks under the tables.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from bot.config import Config
from bot.intake import METHOD_NAMES
from bot.menu import STATUS_LABELS
from bot.municipalities import REGIONS
from storage.activities import KIND_LABELS
from storage.models import ACTIVITY_KINDS, SEMINAR_MODES
from storage.reports import Figures, Rating, months_in

CHANNEL_NAMES = {"line": "LINE", "popup": "出張相談会", "web": "Webフォーム"}
ORIGIN_NAMES = {"menu": "LINEのメニュー", "web": "Webフォーム", "seminar": "セミナーのアンケート", "popup": "出張相談会"}
MODE_NAMES = {"onsite": "会場", "online": "オンライン"}
ACTIVITY_NAMES = KIND_LABELS  # one set of names: the console's, the weekly log's and the reports'
UNANSWERED = "未回答"
SMALL = "3未満"
SECRET = "秘匿"  # a count of 3 or more hidden so that a 「3未満」 cannot be worked out from the others
# Under the tables of the workbook (a line each) and of the console's home: what the two marks mean.
NOTES = ("3未満：1〜2件。", "秘匿：3未満の件数が他の数値から計算できないよう伏せた数値。")
NONE = "－"
MONTH_COLUMNS = ("当月", "前月", "年度累計")
YEAR_COLUMNS = ("当年度", "前年度")
TARGET_COLUMNS = ("実績", "目標", "達成率")


def masked(n: int):
    """A count as the prefecture may see it: 1 and 2 hidden, 0 and 3 up as they are."""
    return SMALL if 1 <= n <= 2 else n


def share(n: int, of: int):
    """n as a percentage of a target, hidden like the count itself when n is 1 or 2 (1/90 would tell it)."""
    if not of:
        return NONE
    return SMALL if 1 <= n <= 2 else f"{round(100 * n / of)}%"


def average(rating: Rating | None):
    """A survey question's average, hidden when only one or two people answered it."""
    if rating is None or not rating.answered:
        return NONE
    return SMALL if rating.answered < 3 else rating.average


def revealed(counts: list[int], hidden: set[int]) -> bool:
    """Whether one of the hidden counts of 1 or 2 (at the indexes `hidden` of a column whose total is known) can be
    told from the rest. Each hidden cell is known only to lie in [1, 2] (「3未満」) or [3, ∞) (「秘匿」); what the
    hidden cells add up to is known (the total less the counts shown). A 「3未満」 is told when that sum and the
    others' bounds leave it a single value: 1 and 1 make 2, 2 and 2 make 4, a 1 hidden with a 3 makes 4 (= 1 + 3).

    When the total is itself 1 or 2 it shows as 「3未満」 too: then the hidden cells add up to 1 or 2."""
    total = sum(counts)
    low = high = sum(counts[i] for i in hidden)
    if 1 <= total <= 2:
        low, high = 1, 2
    bounds = {i: (1, 2) if counts[i] <= 2 else (3, float("inf")) for i in hidden}
    for i in hidden:
        if counts[i] > 2:
            continue
        others_low = sum(b[0] for j, b in bounds.items() if j != i)
        others_high = sum(b[1] for j, b in bounds.items() if j != i)
        if max(1, low - others_high) == min(2, high - others_low):
            return True
    return False


def suppressed(counts: list[int], groups: tuple[list[int], ...] = ()) -> list:
    """A column of counts under a total, as shown: 1 and 2 as 「3未満」, then while `revealed` says one of them
    could be worked out, the smallest count of 3 or more still shown as 「秘匿」 (the first of equal ones). When no
    such count is left (every count is 0 to 2) nothing more can be hidden, and the column stays as it is.

    `groups` are parts of the column (by index) whose sums another table shows (a region's municipalities): each is
    then treated as a column of its own. Hiding more never lets a count be told that could not be before, so one pass
    over the column and then each group is enough."""
    shown = [masked(n) for n in counts]
    hidden = {i for i, n in enumerate(counts) if 1 <= n <= 2}
    for part in (list(range(len(counts))), *groups):
        candidates = sorted((counts[i], i) for i in part if counts[i] >= 3 and i not in hidden)
        while candidates and revealed([counts[i] for i in part], {n for n, i in enumerate(part) if i in hidden}):
            _, i = candidates.pop(0)
            hidden.add(i)
            shown[i] = SECRET
    return shown


def off_day_share(bookings: dict) -> str:
    """土日・祝日の割合, hidden as 「秘匿」 when, with the total and うち土日 / うち祝日, it would tell a hidden one.

    With the total shown, the share tells off_days (the bookings on a weekend or a holiday). off_days is weekend +
    holiday less those on a holiday that falls on a weekend, which the calendar alone often tells to be none. So
    take weekend + holiday as known, and apply a breakdown's rule (`revealed`) to the two: 5 shown and 1 hidden
    (60% of 10) tells the 1; 2 and 2 hidden (40%) tell both; 2 and 1 hidden (30%) tell neither. The share is what is
    hidden then: without it nothing adds the two up."""
    shown = share(bookings["off_days"], bookings["total"])
    parts = [bookings["weekend"], bookings["holiday"]]
    if shown not in (SMALL, NONE) and revealed(parts, {i for i, n in enumerate(parts) if 1 <= n <= 2}):
        return SECRET
    return shown


@dataclass
class Row:
    label: str
    values: list  # as shown: a count, 「3未満」, 「秘匿」, an average, a percentage
    total: bool = False


@dataclass
class Section:
    title: str
    first: str  # the first column's heading
    columns: tuple[str, ...]
    rows: list[Row] = field(default_factory=list)
    chart: bool = False  # a bar chart of the first column's counts (totals left out)


def bar_widths(section: Section) -> list[int]:
    """For a chart: each row's first count as a percentage of the largest, for the console's bars. A hidden count
    (「3未満」 or 「秘匿」) draws no bar, so that the bar cannot tell what the cell hides; a total draws none either."""
    counts = [row.values[0] if isinstance(row.values[0], int) and not row.total else 0 for row in section.rows]
    top = max(counts, default=0)
    return [round(100 * n / top) if top else 0 for n in counts]


def _parts(counts: list[dict], keys: list | tuple, groups: tuple[tuple, ...] = ()) -> list[list]:
    """Each key's count in each column (a dict per column), as `suppressed` shows the column: parts of a total that
    is shown with them (and of `groups`, sets of keys whose sums another table shows)."""
    at = {key: n for n, key in enumerate(keys)}
    indexes = tuple([at[key] for key in group if key in at] for group in groups)
    columns = [suppressed([c.get(key, 0) for key in keys], indexes) for c in counts]
    return [[column[n] for column in columns] for n in range(len(keys))]


def _summary(title: str, columns: tuple[str, ...], lines: list[tuple[str, list]]) -> Section:
    """Counts (masked here) and values already shown (a share) one line each."""
    return Section(title, "項目", columns, [Row(label, [masked(v) if isinstance(v, int) else v for v in values])
                                          for label, values in lines])


def _breakdown(title: str, columns: tuple[str, ...], counts: list[dict], labels: dict, order: list | None = None,
               chart: bool = False, groups: tuple[tuple, ...] = ()) -> Section:
    """One row per key (the given order, then any other key by the last column's count), and a total; each column
    hidden as `suppressed` says, so that the total (or a group's sum shown in another table) cannot tell a hidden
    count."""
    extra = sorted(set().union(*counts) - set(order or ()), key=lambda k: (-counts[-1].get(k, 0), k is None, k or ""))
    keys = [*(order or ()), *extra]
    rows = [Row(labels.get(key, key if key is not None else UNANSWERED), values)
            for key, values in zip(keys, _parts(counts, keys, groups))]
    rows.append(Row("合計", [masked(sum(c.values())) for c in counts], total=True))
    return Section(title, "区分", columns, rows, chart)


def _ratings(config: Config, columns: tuple[str, ...], ratings: list[dict]) -> Section:
    """The average of each 1–5 question of the configured surveys, with how many answered it."""
    section = Section("セミナーアンケート（5段階評価の平均）", "質問", columns)
    for survey in config.surveys:
        for q in (q for q in survey.questions if q.kind == "rating"):
            found = [r.get((survey.id, q.id)) for r in ratings]
            section.rows += [Row(f"{q.text}（{survey.title}）", [average(r) for r in found]),
                             Row("　回答数", [masked(r.answered if r else 0) for r in found])]
    return section


def targets(lines: list[tuple[str, int, int]]) -> Section:
    """Figures against the contract's targets: (label, done, target)."""
    return Section("目標に対する実績", "項目", TARGET_COLUMNS,
                   [Row(label, [masked(done), target, share(done, target)]) for label, done, target in lines])


def monthly_targets(config: Config, f: Figures) -> Section:
    """Seminar attendees against the year's target; visits against the monthly one, for the month and so far."""
    month, _, fiscal = f.periods
    per_month = config.targets.visits_per_month
    return targets([
        ("セミナー出席者（年度累計）", sum(f["attendees"][2].values()), config.targets.seminar_attendees_per_year),
        ("企業訪問（当月）", f["activities"][0].get("visit", 0), per_month * months_in(month)),
        ("企業訪問（年度累計）", f["activities"][2].get("visit", 0), per_month * months_in(fiscal)),
    ])


def year_targets(config: Config, f: Figures) -> Section:
    return targets([
        ("セミナー出席者（年度）", sum(f["attendees"][0].values()), config.targets.seminar_attendees_per_year),
        ("企業訪問（年度）", f["activities"][0].get("visit", 0), config.targets.visits_per_month * months_in(f.periods[0])),
    ])


def sections(config: Config, f: Figures, columns: tuple[str, ...]) -> list[Section]:
    """The figures every report shows, in the same order, one column per period of `f`. 概要's 出張相談会での相談件数
    is 経路別's 出張相談会 row, shown as that row is, so that a count hidden there is hidden here too (概要's 相談件数
    is every breakdown's 合計, which is never hidden second). セミナー's 会場 and オンライン are the parts of its 計,
    hidden as a breakdown's rows are."""
    channel = _breakdown("経路別", columns, f["channel"], CHANNEL_NAMES, order=list(CHANNEL_NAMES))
    [popup] = [row.values for row in channel.rows if row.label == CHANNEL_NAMES["popup"]]
    registered, attended = _parts(f["registrations"], SEMINAR_MODES), _parts(f["attendees"], SEMINAR_MODES)
    return [
        _summary("概要", columns, [
            ("相談件数", f["consultations"]),
            ("相談企業（新規）", [c["new"] for c in f["companies"]]),
            ("相談企業（リピート）", [c["returning"] for c in f["companies"]]),
            ("実施予定の予約", [b["total"] for b in f["bookings"]]),
            ("うち土日", [b["weekend"] for b in f["bookings"]]),
            ("うち祝日", [b["holiday"] for b in f["bookings"]]),
            ("土日・祝日の割合", [off_day_share(b) for b in f["bookings"]]),
            ("出張相談会の開催日数", f["popup_days"]),
            ("出張相談会での相談件数", popup),
        ]),
        channel,
        _breakdown("きっかけ別", columns, f["origin"], ORIGIN_NAMES, order=list(ORIGIN_NAMES)),
        _breakdown("分野別", columns, f["category"], {c.id: c.name for c in config.categories},
                   order=[c.id for c in config.categories], chart=True),
        _breakdown("地域別", columns, f["region"], {r.id: r.name for r in REGIONS},
                   order=[r.id for r in REGIONS] + [None], chart=True),
        _breakdown("方法別", columns, f["method"], METHOD_NAMES, order=list(METHOD_NAMES), chart=True),
        _breakdown("状況別", columns, f["status"], STATUS_LABELS, order=list(STATUS_LABELS)),
        _breakdown("業種別", columns, f["industry"], {}),
        # 地域別 shows each region's sum of its municipalities (the region is the municipality's, at intake).
        _breakdown("市町村別", columns, f["municipality"], {},
                   groups=tuple(tuple(m.name for m in r.municipalities) for r in REGIONS)),
        _summary("セミナー", columns, [
            ("開催回数", f["seminars"]),
            *((f"申込（{MODE_NAMES[m]}）", values) for m, values in zip(SEMINAR_MODES, registered)),
            ("申込 計", [sum(r.values()) for r in f["registrations"]]),
            *((f"出席（{MODE_NAMES[m]}）", values) for m, values in zip(SEMINAR_MODES, attended)),
            ("出席 計", [sum(a.values()) for a in f["attendees"]]),
        ]),
        _ratings(config, columns, f["ratings"]),
        _summary("支援活動", columns, [
            *((ACTIVITY_NAMES[kind], [a.get(kind, 0) for a in f["activities"]]) for kind in ACTIVITY_KINDS),
            ("社内研修の参加者数", f["training_attendees"]),
        ]),
        _breakdown("連携機関への紹介", columns, f["referrals"], {p.id: p.name for p in config.partners},
                   order=[p.id for p in config.partners]),
    ]

