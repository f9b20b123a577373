"""The board pack's content, composed from an organisation's daily samples (no Django): for a
period (a quarter by default) and the period before it, the status of each Cyber Essentials
control and each Cyber Governance Code principle in red, amber or green, four quarters of trend,
the decisions the board is asked to take (at most three, derived from the figures), and the
detail for the appendices (pure logic, no Django imports). The content is language-neutral JSON (texts are the templates'); its
digest is what the cyber-risk owner signs.

Status rules (``RULES``) are written here once, so the summary, the principles and the decisions
read the same thresholds:

- a control: the share of in-scope hosts passing on the period's last sampled day — green from
  95 %, amber from 80 %, red below; grey without hosts;
- a metric: see ``metric_status``; a principle: the worst status among its measured sources
  (a source that is not measured daily, such as a self-assessment answer, is grey and does not
  count); grey when none is measured.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mamori.reporting import metrics

SCHEMA = "mamori.boardpack/1"
STATUSES = ("green", "amber", "red", "grey")
WORST_FIRST = ("red", "amber", "green")
CONTROL_GREEN, CONTROL_AMBER = 0.95, 0.80
CERTIFICATE_AMBER_DAYS = 90
KEV_DEADLINE_DAYS = 14
REMEDIATION_GREEN_DAYS, REMEDIATION_AMBER_DAYS = 14, 30
MAX_DECISIONS = 3
TREND_QUARTERS = 4
TREND_METRICS = (
    *(f"control_passing.{control}" for control in metrics.CONTROLS),
    "vulnerabilities_overdue",
    "kev_open",
    "supplier_spof",
)


@dataclass(frozen=True)
class Period:
    first: dt.date
    last: dt.date

    def as_dict(self) -> dict[str, str]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat()}

    def before(self) -> Period:
        """The period of the same length just before (the quarter before, for a quarter)."""
        if self == quarter_of(self.first):
            return quarter_of(self.first - dt.timedelta(days=1))
        length = self.last - self.first
        last = self.first - dt.timedelta(days=1)
        return Period(last - length, last)


def quarter_of(day: dt.date) -> Period:
    first_month = 3 * ((day.month - 1) // 3) + 1
    first = dt.date(day.year, first_month, 1)
    following = dt.date(day.year + (first_month == 10), (first_month + 2) % 12 + 1, 1)
    return Period(first, following - dt.timedelta(days=1))


def last_finished_quarter(today: dt.date) -> Period:
    return quarter_of(quarter_of(today).first - dt.timedelta(days=1))


def quarters_ending(period: Period, count: int = TREND_QUARTERS) -> list[Period]:
    """``count`` quarters, the last one holding the period's last day, oldest first."""
    found = [quarter_of(period.last)]
    while len(found) < count:
        found.insert(0, quarter_of(found[0].first - dt.timedelta(days=1)))
    return found


Series = Mapping[str, Sequence[tuple[dt.date, Any]]]


def value_on_last_day(series: Series, key: str, period: Period) -> tuple[dt.date | None, Any]:
    """The metric's value on the period's last sampled day (and that day)."""
    found: tuple[dt.date | None, Any] = (None, None)
    for day, value in series.get(key, ()):
        if period.first <= day <= period.last:
            found = (day, value)
    return found


def metric_status(key: str, value: Any, facts: Mapping[str, Any]) -> str:
    """Red, amber, green or grey for a metric's value on a day (grey: nothing to judge)."""
    if key.startswith("control_passing."):
        if value is None:
            return "grey"
        return "green" if value >= CONTROL_GREEN else "amber" if value >= CONTROL_AMBER else "red"
    if key in ("certificate_level", "certificate_days_to_expiry"):
        days = facts.get("certificate_days_to_expiry")
        if facts.get("certificate_level") is None or days is None:
            return "red"
        return "amber" if days <= CERTIFICATE_AMBER_DAYS else "green"
    if key in ("hosts_in_scope", "hosts_checked_in"):
        in_scope = facts.get("hosts_in_scope") or 0
        if not in_scope:
            return "grey"
        share = (facts.get("hosts_checked_in") or 0) / in_scope
        return "green" if share >= CONTROL_GREEN else "amber" if share >= CONTROL_AMBER else "red"
    if key in ("kev_open", "kev_open_age_days"):
        if not facts.get("kev_open"):
            return "green"
        oldest = (facts.get("kev_open_age_days") or {}).get("max") or 0
        return "red" if oldest > KEV_DEADLINE_DAYS else "amber"
    if key == "vulnerabilities_overdue":
        return "grey" if value is None else "green" if value == 0 else "red"
    if key == "vulnerabilities_open":
        if not isinstance(value, Mapping):
            return "grey"
        return "amber" if value.get("critical") or value.get("high") else "green"
    if key == "remediation_days":
        median = (value or {}).get("median")
        if median is None:
            return "grey"
        if median <= REMEDIATION_GREEN_DAYS:
            return "green"
        return "amber" if median <= REMEDIATION_AMBER_DAYS else "red"
    if key in ("supplier_spof", "supplier_uncertified_on_critical_path"):
        return "grey" if value is None else "green" if value == 0 else "amber"
    if key == "supplier_coverage_by_tier":
        if not value:
            return "grey"
        first_tier = value.get("1", {}).get("share", 0)
        return "green" if first_tier >= CONTROL_GREEN else "amber" if first_tier >= 0.5 else "red"
    if key == "alerts_open":
        if not isinstance(value, Mapping):
            return "grey"
        if value.get("incident"):
            return "red"
        return "amber" if any(value.values()) else "green"
    if key in ("alerts_time_to_acknowledge", "alerts_time_to_mitigate", "alerts_raised"):
        return "grey"  # context for the board, not a status of its own
    if key == "board_review":
        return "green" if value else "amber"
    return "grey"


def worst(statuses: Sequence[str]) -> str:
    for status in WORST_FIRST:
        if status in statuses:
            return status
    return "grey"


def source_status(source: str, facts: Mapping[str, Any]) -> str:
    kind, _, key = source.partition(":")
    if kind == "control":
        return metric_status(f"control_passing.{key}", facts.get(f"control_passing.{key}"), facts)
    if kind == "metric":
        return metric_status(key, facts.get(key), facts)
    return "grey"  # a self-assessment answer: evidence, but not measured day by day


def facts_at(series: Series, period: Period, board_reviewed: bool) -> tuple[str | None, dict]:
    """Every metric's value on the period's last sampled day (and that day)."""
    facts: dict[str, Any] = {}
    last_day = None
    for key in metrics.METRIC_KEYS:
        day, value = value_on_last_day(series, key, period)
        facts[key] = value
        if day is not None and (last_day is None or day > last_day):
            last_day = day
    # The metric holds the latest review's date; the pack asks whether the period before
    # was reviewed (signed), which is what the board owes.
    facts["board_review"] = board_reviewed
    return (last_day.isoformat() if last_day else None), facts


def compose(
    organisation: Mapping[str, Any],
    period: Period,
    series: Series,
    mapping,
    *,
    previous_reviewed: bool = False,
) -> dict[str, Any]:
    """The pack's content. ``series``: metric → [(day, value)] covering the four quarters up to
    the period's end and the period before; ``mapping``: the governance mapping;
    ``previous_reviewed``: whether the board signed the pack of the period before."""
    before = period.before()
    last_day, facts = facts_at(series, period, previous_reviewed)
    before_day, facts_before = facts_at(series, before, previous_reviewed)
    controls = [
        {
            "key": control,
            "now": facts[f"control_passing.{control}"],
            "before": facts_before[f"control_passing.{control}"],
            "status": source_status(f"control:{control}", facts),
            "status_before": source_status(f"control:{control}", facts_before),
        }
        for control in metrics.CONTROLS
    ]
    principles = []
    for principle in mapping.principles:
        sources = [
            {"source": source, "status": source_status(source, facts)}
            for source in principle.sources
        ]
        principles.append(
            {
                "key": principle.key,
                "status": worst([row["status"] for row in sources]),
                "status_before": worst([source_status(s, facts_before) for s in principle.sources]),
                "sources": sources,
            }
        )
    evidenced = sorted(
        {f"metric:{key}" for key, value in facts.items() if value not in (None, {}, [])}
        | {f"control:{c}" for c in metrics.CONTROLS if facts[f"control_passing.{c}"] is not None}
    )
    content = {
        "schema": SCHEMA,
        "organisation": dict(organisation),
        "period": period.as_dict(),
        "previous": before.as_dict(),
        "sampled": {"last_day": last_day, "last_day_before": before_day},
        "overall": worst([row["status"] for row in controls + principles]),
        "controls": controls,
        "principles": principles,
        "figures": {"now": facts, "before": facts_before},
        "trends": _trends(series, period),
        "decisions": decisions(facts),
        "evidenced": evidenced,
        "mapping_version": mapping.version,
    }
    content["digest"] = digest(content)
    return content


def _trends(series: Series, period: Period) -> dict[str, Any]:
    quarters = quarters_ending(period)
    first, last = quarters[0].first, period.last
    daily = {
        key: [
            [day.isoformat(), metrics.headline(value)]
            for day, value in series.get(key, ())
            if first <= day <= last
        ]
        for key in TREND_METRICS
    }
    by_quarter = {
        key: [
            [quarter.last.isoformat(), metrics.headline(value_on_last_day(series, key, quarter)[1])]
            for quarter in quarters
        ]
        for key in TREND_METRICS
    }
    return {"quarters": [q.as_dict() for q in quarters], "daily": daily, "quarterly": by_quarter}


def decisions(facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What the board is asked to decide, most urgent first (at most three). Each names its
    kind and the facts the text is written from."""
    found: list[tuple[int, dict[str, Any]]] = []
    kev = facts.get("kev_open") or 0
    oldest = (facts.get("kev_open_age_days") or {}).get("max") or 0
    if kev and oldest > KEV_DEADLINE_DAYS:
        found.append((0, {"kind": "kev_overdue", "count": kev, "oldest_days": oldest}))
    elif kev:
        found.append((2, {"kind": "kev_open", "count": kev, "oldest_days": oldest}))
    open_by_type = facts.get("alerts_open") or {}
    if open_by_type.get("incident"):
        found.append((0, {"kind": "incident_open", "count": open_by_type["incident"]}))
    level, days = facts.get("certificate_level"), facts.get("certificate_days_to_expiry")
    if level is None:
        found.append((1, {"kind": "no_certificate"}))
    elif days is not None and days <= CERTIFICATE_AMBER_DAYS:
        found.append((1, {"kind": "certificate_expiring", "days": days, "level": level}))
    spof = facts.get("supplier_spof") or 0
    if spof:
        found.append((2, {"kind": "single_supplier", "count": spof}))
    overdue = facts.get("vulnerabilities_overdue") or 0
    if overdue:
        found.append((3, {"kind": "overdue_vulnerabilities", "count": overdue}))
    failing = [
        control
        for control in metrics.CONTROLS
        if metric_status(
            f"control_passing.{control}", facts.get(f"control_passing.{control}"), facts
        )
        == "red"
    ]
    if failing:
        found.append((3, {"kind": "controls_failing", "controls": failing}))
    coverage = facts.get("supplier_coverage_by_tier") or {}
    first_tier = coverage.get("1", {}).get("share")
    if first_tier is not None and first_tier < 0.5:
        found.append((4, {"kind": "supplier_survey", "share": first_tier}))
    found.sort(key=lambda item: item[0])
    return [decision for _rank, decision in found[:MAX_DECISIONS]]


def digest(content: Mapping[str, Any]) -> str:
    """The digest of the content without its own digest (what the owner signs)."""
    body = {key: value for key, value in content.items() if key != "digest"}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
