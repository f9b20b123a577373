"""Peer percentiles and sector figures for one headline metric and one day, without letting
anyone work out one organisation's value (pure logic, no Django imports; numpy only).

What is published
-----------------
* To an organisation: its **position** within its category — a percentile range such as "between
  the 50th and 75th percentile" or "at the median" — and the size of the group.
* To the sector dashboard (scheme owner, supervisor observers): for the whole sector and for each
  category group, the number of organisations counted and a few **quantiles** (p10, p25, p50,
  p75, p90 as the group's size allows). Never a mean, a sum, a minimum or a maximum.

Threat model: whoever reads these figures, including a member of the group who knows its own
value, controls it from day to day, and compares groups and days. The protections, and why each
exists:

1. **k ≥ 5 counted organisations** (``K``) for any group shown, the sector included: fewer
   members make a quantile nearly one organisation's value.
2. **The published groups partition the sector.** A category below ``K`` is pooled into one
   ``POOLED`` group with the other small ones; when the pool itself is still below ``K`` the
   smallest category that could be shown is merged into it too (secondary suppression), and so
   on. Were a small category only hidden, "sector minus the shown categories" would be that
   small category; here that difference is always empty.
3. **Cohorts frozen per calendar quarter** (``form_cohort``). Who is counted in each group is
   fixed from the values on the quarter's first day. An organisation that joins, or gets its first
   value, mid-quarter is not counted until a later quarter (it still sees its own position
   against the group, which reveals nothing, see 6); a member that leaves or loses its value keeps
   counting with its last known value, which looks exactly like a value that did not change; a
   member with neither today's nor a last known value withholds its groups that day rather than
   letting them be recomputed without it. So from one day to the next within a quarter, no
   figure ever moves because of one organisation's arrival or departure.
4. **Quarter boundaries change groups in batches of at least K.** A group (and the sector) may
   change membership at a new quarter only when at least ``K`` organisations join or leave it
   together; otherwise its previous membership is kept and the newcomers wait. The difference
   between the last day of one quarter and the first of the next is then a set of at least
   ``K`` organisations, never one.
5. **A coarse grid, applied to the inputs and to the outputs** (``snap``). Every value is
   rounded to the metric's grid (``step``; by default two significant figures in steps of five,
   e.g. 0.85, 85, 850) *before* the quantiles are computed, and the quantiles are rounded again.
   Rounding only the outputs would not do: a member that moves its own value a little each day
   and watches a rounded median flip could pin a neighbour's exact value. With rounded inputs,
   no sequence of days, own values or background knowledge yields more about one organisation
   than its grid cell.
6. **Positions come from the published cut points only.** An organisation's position is where
   its own rounded value falls among its group's published quantiles, so it tells the
   organisation nothing the dashboard figures did not already say (and a rank among the members'
   values would, by probing, reveal the extremes the quantiles leave out). The bands are as
   coarse as the group is small: halves below 9 counted members, quartiles below 21, then
   deciles at the ends too; quintiles or deciles in a group of 5 would be one organisation each.
   Ties are fair: equal rounded values get the same position, and a value equal to a published
   quantile is reported *at* that percentile (a range when several quantiles are equal) rather
   than pushed to either side. Higher percentiles are better whatever the metric's direction.
7. **Each quantile needs two members beyond it on each side** (``MIN_TAIL``): a quantile is
   published only when at least two members lie strictly below and two strictly above its
   position, so no published figure is the best or the worst organisation's (the easiest ones to
   attribute: "the one bank that has not patched").
8. **Suppression depends on membership only, never on values** (which categories have enough
   organisations with a value, group sizes, missing values): what is hidden hints at no value.

Left to the reader: which organisation holds a published cell (that needs background knowledge,
and the grid bounds what it can buy); that K - 1 colluding members of a group of K can learn the
last one's grid cell, as under any k-threshold; and that a departed member's last value keeps
counting until its group changes by a batch (3 and 4). Choose ``step`` per metric with that in
mind: it is the knob between usefulness and what one cell reveals.

Use, for one metric: once a quarter, ``form_cohort`` from the quarter's first day (passing the
previous quarter's cohort, stored with ``Cohort.to_dict``); every day, ``publish`` for the
dashboard and ``position`` for each organisation's own view, with ``last_known`` holding each
member's latest value before that day.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

K = 5
MIN_TAIL = 2
QUANTILES = (10, 25, 50, 75, 90)
SECTOR = "__sector__"
POOLED = "__pooled__"
SCHEMA = "mamori.peers/1"
DIRECTIONS = ("higher", "lower")

OrgId = int | str
Values = Mapping[Any, float | None]


# --------------------------------------------------------------------------------------------
# Grid and quarters


def snap(value: float, step: float | None = None) -> float:
    """``value`` rounded (half up) to the grid: multiples of ``step``, or by default two
    significant figures in steps of five (0.85, 8.5, 85, 850), the same relative coarseness at
    every scale. The default grid is fixed, not taken from the data, so the rounding itself
    depends on no other organisation's value."""
    if step is None:
        if value == 0:
            return 0.0
        step = 0.5 * 10.0 ** math.floor(math.log10(abs(value)))
    elif step <= 0:
        raise ValueError("step must be positive")
    # round(): the grid point without binary noise, so equal cells compare equal.
    return float(round(math.floor(value / step + 0.5) * step, 12))


def quarter_of(day: dt.date) -> str:
    """The calendar quarter of ``day``, e.g. ``"2025-Q2"`` (sorts in time order)."""
    return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"


def quarter_start(day: dt.date) -> dt.date:
    """The first day of ``day``'s quarter: the day whose values form the quarter's cohort."""
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _number(value: object) -> float | None:
    """A usable value, or None: missing, booleans and non-finite numbers count as no value."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


# --------------------------------------------------------------------------------------------
# Cohorts


@dataclass(frozen=True)
class Cohort:
    """Who is counted, in which group, for one metric and one quarter.

    ``groups`` maps a group label (a category, or ``POOLED``) to its members, each with at least
    ``k`` of them; the groups are disjoint and the sector is their union. ``covers`` names the
    categories each group compares (a category's organisations that are not members yet are
    placed against that group)."""

    quarter: str
    k: int
    groups: Mapping[str, frozenset[OrgId]]
    covers: Mapping[str, tuple[str, ...]]

    @property
    def sector(self) -> frozenset[OrgId]:
        return frozenset().union(*self.groups.values())

    def group_of(self, org_id: OrgId) -> str | None:
        """The group counting ``org_id``, None when it is not counted this quarter."""
        return next((label for label, m in self.groups.items() if org_id in m), None)

    def group_for_category(self, category: str | None) -> str | None:
        """The group a category's organisations are compared with (None: not shown)."""
        if category in self.groups:
            return category
        return next((label for label, cats in self.covers.items() if category in cats), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, to store and hand to the next quarter's ``form_cohort``."""
        return {
            "quarter": self.quarter,
            "k": self.k,
            "groups": {
                label: sorted(members, key=str) for label, members in sorted(self.groups.items())
            },
            "covers": {label: list(cats) for label, cats in sorted(self.covers.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cohort:
        return cls(
            quarter=data["quarter"],
            k=int(data["k"]),
            groups={label: frozenset(members) for label, members in data["groups"].items()},
            covers={label: tuple(cats) for label, cats in data["covers"].items()},
        )


def form_cohort(
    values: Values,
    category_of: Mapping[Any, str],
    day: dt.date,
    previous: Cohort | None = None,
    *,
    k: int = K,
) -> Cohort:
    """The cohort of ``day``'s quarter from the values of ``day`` (its first day, or the first
    with samples): organisations with a value and a category, grouped by category (protection 2),
    changed from ``previous`` only in batches of at least ``k`` (protection 4)."""
    for category in category_of.values():
        if category in (SECTOR, POOLED):
            raise ValueError(f"{category!r} is reserved for a group label")
    quarter = quarter_of(day)
    if previous is not None and previous.quarter >= quarter:
        raise ValueError(f"the cohort of {quarter} must follow {previous.quarter}")
    eligible = {
        org: category_of[org]
        for org, value in values.items()
        if _number(value) is not None and org in category_of
    }
    groups, covers = _partition(eligible, k)
    if previous is not None:
        groups, covers = _transition(previous, groups, covers, k)
    return Cohort(quarter=quarter, k=k, groups=groups, covers=covers)


def _partition(
    category_of: Mapping[OrgId, str], k: int
) -> tuple[dict[str, frozenset[OrgId]], dict[str, tuple[str, ...]]]:
    """Categories of at least ``k`` stand alone; the others share ``POOLED``, which takes in the
    smallest stand-alone categories until it reaches ``k`` itself, so every organisation counted
    is in a group that is shown and nothing is left over for "sector minus the rest"."""
    by_category: dict[str, set[OrgId]] = {}
    for org, category in category_of.items():
        by_category.setdefault(category, set()).add(org)
    alone = {c: members for c, members in by_category.items() if len(members) >= k}
    pooled_categories = sorted(c for c in by_category if c not in alone)
    pooled: set[OrgId] = set().union(*(by_category[c] for c in pooled_categories))
    while 0 < len(pooled) < k and alone:
        smallest = min(alone, key=lambda c: (len(alone[c]), c))
        pooled |= alone.pop(smallest)
        pooled_categories.append(smallest)
    groups = {c: frozenset(members) for c, members in alone.items()}
    covers = {c: (c,) for c in alone}
    if len(pooled) >= k:  # else nothing stands alone either: the whole sector is below k
        groups[POOLED] = frozenset(pooled)
        covers[POOLED] = tuple(sorted(pooled_categories))
    return groups, covers


def _transition(
    previous: Cohort,
    ideal: Mapping[str, frozenset[OrgId]],
    ideal_covers: Mapping[str, tuple[str, ...]],
    k: int,
) -> tuple[dict[str, frozenset[OrgId]], dict[str, tuple[str, ...]]]:
    """The new groups, each either unchanged or changed by at least ``k`` organisations.

    A group whose ideal membership differs from the previous one by 1 to k - 1 organisations
    keeps its previous membership. A group that would then count an organisation a kept group
    still counts (one that moved category) is kept as well, until no organisation is counted
    twice. Last, the sector: should the groups' changes cancel out (organisations moving between
    groups) to a sector change of 1 to k - 1, the whole previous cohort is kept."""
    empty: frozenset[OrgId] = frozenset()
    old = previous.groups
    labels = set(old) | set(ideal)
    kept = {g for g in labels if 0 < len(old.get(g, empty) ^ ideal.get(g, empty)) < k}
    while True:
        chosen = {g: old.get(g, empty) if g in kept else ideal.get(g, empty) for g in labels}
        held = frozenset().union(*(chosen[g] for g in kept))
        clashing = {g for g in labels - kept if chosen[g] & held}
        if not clashing:
            break
        kept |= clashing
    sector_change = previous.sector ^ frozenset().union(*chosen.values())
    if 0 < len(sector_change) < k:
        return dict(old), dict(previous.covers)
    groups = {g: members for g, members in chosen.items() if members}
    covers = {g: previous.covers[g] if g in kept else ideal_covers[g] for g in groups}
    return groups, covers


# --------------------------------------------------------------------------------------------
# Statistics and positions


@dataclass(frozen=True)
class GroupStats:
    """A group's published figures: its counted size and the quantiles (percentile → value on
    the grid) that the tail rule allows; never a mean, sum, minimum or maximum."""

    group: str
    categories: tuple[str, ...]
    n: int
    quantiles: Mapping[int, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "categories": list(self.categories),
            "n": self.n,
            "quantiles": {str(p): v for p, v in sorted(self.quantiles.items())},
        }


@dataclass(frozen=True)
class Position:
    """Where an organisation stands in its group, as a percentile range where 100 is best:
    ``low == high`` means "at that percentile" (its value equals a published quantile), else
    "between ``low`` and ``high``". ``n`` is the number of organisations the group counts;
    ``counted`` is False for an organisation placed against a group that does not count it yet
    (it joined, or got a value, during the quarter)."""

    group: str
    n: int
    low: int
    high: int
    counted: bool
    better: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "n": self.n,
            "low": self.low,
            "high": self.high,
            "counted": self.counted,
            "better": self.better,
        }


def group_statistics(
    values: Values,
    cohort: Cohort,
    day: dt.date,
    *,
    last_known: Values | None = None,
    step: float | None = None,
) -> dict[str, GroupStats | None]:
    """``SECTOR`` and each group of the cohort → its figures for ``day``, or None when withheld
    (a member has neither a value that day nor a last known one: the group is not recomputed
    without it). Only the cohort's members count; organisations outside it are ignored."""
    _check_day(cohort, day)
    snapped: dict[OrgId, float | None] = {}
    for org in cohort.sector:
        value = _number(values.get(org))
        if value is None and last_known is not None:
            value = _number(last_known.get(org))
        snapped[org] = None if value is None else snap(value, step)
    all_categories = tuple(sorted({c for cats in cohort.covers.values() for c in cats}))
    labelled = [(SECTOR, cohort.sector, all_categories)] + [
        (label, cohort.groups[label], tuple(cohort.covers.get(label, ())))
        for label in sorted(cohort.groups)
    ]
    result: dict[str, GroupStats | None] = {}
    for label, members, categories in labelled:
        member_values = [snapped[org] for org in members]
        if len(member_values) < cohort.k or any(v is None for v in member_values):
            result[label] = None
            continue
        result[label] = GroupStats(
            group=label,
            categories=categories,
            n=len(member_values),
            quantiles=_quantiles([v for v in member_values if v is not None], step),
        )
    return result


def _quantiles(values: Iterable[float], step: float | None) -> dict[int, float]:
    """Linear-interpolation quantiles (numpy's default) of the rounded values, rounded again,
    each only with ``MIN_TAIL`` members strictly on either side of its position."""
    ordered = np.sort(np.fromiter(values, dtype=float))
    n = len(ordered)
    result: dict[int, float] = {}
    for p in QUANTILES:
        # Position (n - 1) * p / 100 in integer arithmetic, so the tail rule has no float edge.
        below = (n - 1) * p // 100
        above = n - 1 - -(-(n - 1) * p // 100)
        if min(below, above) >= MIN_TAIL:
            result[p] = snap(float(np.quantile(ordered, p / 100)), step)
    return result


def position(
    values: Values,
    category_of: Mapping[Any, str],
    org_id: OrgId,
    better: str,
    day: dt.date,
    cohort: Cohort,
    *,
    last_known: Values | None = None,
    step: float | None = None,
    scope: Literal["category", "sector"] = "category",
) -> Position | None:
    """``org_id``'s position on ``day`` within its category's group (or the sector), or None
    when it has no value that day, its category is not shown, or the group is withheld.

    The position depends only on the organisation's own rounded value and the group's published
    quantiles (protection 6)."""
    _check_better(better)
    own = _number(values.get(org_id))
    if own is None:
        return None
    if scope == "sector":
        label: str | None = SECTOR
    else:
        label = cohort.group_of(org_id) or cohort.group_for_category(category_of.get(org_id))
    if label is None:
        return None
    stats = group_statistics(values, cohort, day, last_known=last_known, step=step).get(label)
    if stats is None or not stats.quantiles:
        return None
    low, high = _place(snap(own, step), stats.quantiles)
    if better == "lower":
        low, high = 100 - high, 100 - low
    members = cohort.sector if label == SECTOR else cohort.groups[label]
    return Position(label, stats.n, low, high, org_id in members, better)


def _place(value: float, quantiles: Mapping[int, float]) -> tuple[int, int]:
    """The percentile range of ``value`` among the cut points, in the metric's own order: the
    percentiles of the quantiles it equals, else the gap between its neighbours."""
    tied = [p for p, cut in quantiles.items() if cut == value]
    if tied:
        return min(tied), max(tied)
    low = max((p for p, cut in quantiles.items() if cut < value), default=0)
    high = min((p for p, cut in quantiles.items() if cut > value), default=100)
    return low, high


def publish(
    values: Values,
    category_of: Mapping[Any, str],
    better: str,
    day: dt.date,
    cohort: Cohort,
    *,
    last_known: Values | None = None,
    step: float | None = None,
) -> dict[str, Any]:
    """The sector dashboard's figures for one metric and one day, JSON-ready::

        {"schema": "mamori.peers/1", "day": "2025-05-12", "quarter": "2025-Q2", "k": 5,
         "better": "higher", "step": 0.05,
         "sector": {"group": "__sector__", "categories": [...], "n": 42,
                    "quantiles": {"10": 0.6, "25": 0.75, "50": 0.85, "75": 0.95, "90": 1.0}},
         "groups": {"bank": {...}, "__pooled__": {...} | null},
         "categories": {"bank": "bank", "labour_bank": "__pooled__", "exchange": null}}

    ``sector`` and each group are null when withheld that day; ``categories`` says which group
    shows each category (null: not shown). No organisation is named."""
    _check_better(better)
    stats = group_statistics(values, cohort, day, last_known=last_known, step=step)
    sector = stats.pop(SECTOR)
    return {
        "schema": SCHEMA,
        "day": day.isoformat(),
        "quarter": cohort.quarter,
        "k": cohort.k,
        "better": better,
        "step": step,
        "sector": None if sector is None else sector.to_dict(),
        "groups": {label: None if s is None else s.to_dict() for label, s in stats.items()},
        "categories": {c: cohort.group_for_category(c) for c in sorted(set(category_of.values()))},
    }


def _check_better(better: str) -> None:
    if better not in DIRECTIONS:
        raise ValueError(f"better must be one of {DIRECTIONS}, not {better!r}")


def _check_day(cohort: Cohort, day: dt.date) -> None:
    """A cohort serves its own quarter only: an old one silently reused would hold back every
    change for good, and a cohort formed later than the day would count later arrivals."""
    if quarter_of(day) != cohort.quarter:
        raise ValueError(f"{day} is not in the cohort's quarter {cohort.quarter}")
