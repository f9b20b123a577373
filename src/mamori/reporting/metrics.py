"""The figures a board needs, for one organisation and one day, from its history as of the end
of that day (``DayInputs``, gathered by ``reporting.history``). Pure logic, no Django imports: the same inputs
always give the same values, which is what lets a past day be recomputed and its digest match.

A metric is a key in ``METRICS`` and a value (a number, a short text, an object, or None when
there is nothing to measure): adding one is adding a key and a line in ``compute``, not a column.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mamori.core.controls import FIVE_CONTROLS

CONTROLS = FIVE_CONTROLS
SEVERITIES = ("critical", "high", "medium", "low", "unknown")
ALERT_TYPES = (
    "incident",
    "network_abuse",
    "exposure",
    "software_vulnerability",
    "supplier_exposure",
)
OPEN_ALERT_STATES = frozenset({"new", "acknowledged"})
# Vulnerabilities remediated within this many days before the day count in its time to remediate.
REMEDIATION_WINDOW_DAYS = 90
# Alerts acknowledged or mitigated within this many days before the day count in the times.
ALERT_WINDOW_DAYS = 30
LEVELS = ("CE", "PLUS")


@dataclass(frozen=True)
class Metric:
    key: str
    # "higher" or "lower" is better; "" for a value that is not better or worse (a count of hosts).
    better: str = ""
    # Headline metrics are numbers compared with peers (reporting.peers) and drawn as trends.
    headline: bool = False
    unit: str = ""


METRICS: tuple[Metric, ...] = (
    Metric("certificate_level"),
    Metric("certificate_days_to_expiry", better="higher", unit="days"),
    Metric("hosts_in_scope", unit="hosts"),
    Metric("hosts_checked_in", unit="hosts"),
    *(
        Metric(f"control_passing.{c}", better="higher", headline=True, unit="share")
        for c in CONTROLS
    ),
    Metric("vulnerabilities_open", better="lower"),
    Metric("vulnerabilities_overdue", better="lower", headline=True),
    Metric("kev_open", better="lower", headline=True),
    Metric("kev_open_age_days", better="lower", unit="days"),
    Metric("remediation_days", better="lower", unit="days"),
    Metric("supplier_coverage_by_tier", better="higher"),
    Metric("supplier_spof", better="lower", headline=True),
    Metric("supplier_uncertified_on_critical_path", better="lower"),
    Metric("alerts_open", better="lower"),
    Metric("alerts_raised", better="lower"),
    Metric("alerts_time_to_acknowledge", better="lower", unit="hours"),
    Metric("alerts_time_to_mitigate", better="lower", unit="hours"),
    # The board meeting of the latest signed pack (an ISO date), None before the first.
    Metric("board_review"),
)
METRIC_KEYS = tuple(metric.key for metric in METRICS)
BY_KEY = {metric.key: metric for metric in METRICS}


@dataclass(frozen=True)
class Certificate:
    level: str
    issued_on: dt.date
    expires_on: dt.date
    revoked_at: dt.datetime | None = None


@dataclass(frozen=True)
class HostDay:
    """A host as it stood at the end of the day."""

    in_scope: bool
    last_checkin: dt.datetime | None
    # The verdicts of its evaluation as of the day (None: never evaluated by then).
    verdicts: Mapping[str, str] | None


@dataclass(frozen=True)
class Episode:
    severity: str
    opened_on: dt.date
    closed_on: dt.date | None = None
    kev_on: dt.date | None = None
    overdue_on: dt.date | None = None


@dataclass(frozen=True)
class AlertLife:
    """One alert's life up to the end of the day (earlywarning.sector.replay)."""

    type: str
    raised: dt.datetime
    state: str
    acknowledged: dt.datetime | None = None
    mitigated: dt.datetime | None = None


@dataclass(frozen=True)
class SupplyFigures:
    """What the supply-chain analysis of the graph in force said (None when there is none)."""

    coverage_by_tier: Mapping[str, Mapping[str, float | int]]
    spof: int
    uncertified_on_critical_path: int


@dataclass
class DayInputs:
    day: dt.date
    end: dt.datetime  # the end of the day in the instance's time zone
    checkin_days: int
    certificates: list[Certificate] = field(default_factory=list)
    hosts: list[HostDay] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    alerts: list[AlertLife] = field(default_factory=list)
    supply: SupplyFigures | None = None
    board_review: str | None = None


def percentile(values: Iterable[float], share: float) -> float | None:
    """Nearest-rank percentile (None for no values), rounded to two decimals."""
    ordered = sorted(values)
    if not ordered:
        return None
    return round(float(ordered[max(0, math.ceil(share * len(ordered)) - 1)]), 2)


def compute(inputs: DayInputs) -> dict[str, object]:
    """Every metric of ``METRICS`` for the day, in that order."""
    values: dict[str, object] = {}
    values.update(_certificate(inputs))
    values.update(_hosts(inputs))
    values.update(_vulnerabilities(inputs))
    values.update(_supply(inputs.supply))
    values.update(_alerts(inputs))
    values["board_review"] = inputs.board_review
    assert tuple(values) == METRIC_KEYS, "compute must give every metric, in order"
    return values


def _certificate(inputs: DayInputs) -> dict[str, object]:
    day, end = inputs.day, inputs.end
    valid = [
        c
        for c in inputs.certificates
        if c.issued_on <= day <= c.expires_on and (c.revoked_at is None or c.revoked_at >= end)
    ]
    if not valid:
        return {"certificate_level": None, "certificate_days_to_expiry": None}
    # Plus covers CE; of certificates of the same level the one that lasts longest counts.
    best = max(
        valid, key=lambda c: (LEVELS.index(c.level) if c.level in LEVELS else -1, c.expires_on)
    )
    return {
        "certificate_level": best.level,
        "certificate_days_to_expiry": (best.expires_on - day).days,
    }


def _hosts(inputs: DayInputs) -> dict[str, object]:
    cutoff = inputs.end - dt.timedelta(days=inputs.checkin_days)
    in_scope = [host for host in inputs.hosts if host.in_scope]
    # A host that has not checked in within the window does not count as passing: old evidence
    # says nothing about now (the same rule as continuous assurance on the certificate page).
    recent = [h for h in in_scope if h.last_checkin is not None and h.last_checkin >= cutoff]
    values: dict[str, object] = {"hosts_in_scope": len(in_scope), "hosts_checked_in": len(recent)}
    for control in CONTROLS:
        passing = sum(1 for h in recent if h.verdicts and h.verdicts.get(control) == "pass")
        values[f"control_passing.{control}"] = (
            round(passing / len(in_scope), 4) if in_scope else None
        )
    return values


def _vulnerabilities(inputs: DayInputs) -> dict[str, object]:
    day = inputs.day
    open_now = [
        e
        for e in inputs.episodes
        if e.opened_on <= day and (e.closed_on is None or e.closed_on > day)
    ]
    by_severity = Counter(e.severity if e.severity in SEVERITIES else "unknown" for e in open_now)
    kev = [e for e in open_now if e.kev_on is not None and e.kev_on <= day]
    kev_ages = [(day - max(e.kev_on, e.opened_on)).days for e in kev]
    window_start = day - dt.timedelta(days=REMEDIATION_WINDOW_DAYS)
    remediated = [
        (e.closed_on - e.opened_on).days
        for e in inputs.episodes
        if e.closed_on is not None and window_start < e.closed_on <= day
    ]
    return {
        "vulnerabilities_open": {severity: by_severity.get(severity, 0) for severity in SEVERITIES},
        "vulnerabilities_overdue": sum(
            1 for e in open_now if e.overdue_on is not None and e.overdue_on <= day
        ),
        "kev_open": len(kev),
        "kev_open_age_days": {
            "max": max(kev_ages) if kev_ages else None,
            "median": percentile(kev_ages, 0.5),
        },
        "remediation_days": {
            "count": len(remediated),
            "median": percentile(remediated, 0.5),
            "p90": percentile(remediated, 0.9),
        },
    }


def _supply(supply: SupplyFigures | None) -> dict[str, object]:
    if supply is None:
        return {
            "supplier_coverage_by_tier": None,
            "supplier_spof": None,
            "supplier_uncertified_on_critical_path": None,
        }
    return {
        "supplier_coverage_by_tier": {
            tier: dict(row) for tier, row in supply.coverage_by_tier.items()
        },
        "supplier_spof": supply.spof,
        "supplier_uncertified_on_critical_path": supply.uncertified_on_critical_path,
    }


def _hours(start: dt.datetime, end: dt.datetime) -> float:
    return (end - start).total_seconds() / 3600


def _alerts(inputs: DayInputs) -> dict[str, object]:
    end = inputs.end
    start = end - dt.timedelta(days=1)
    window = end - dt.timedelta(days=ALERT_WINDOW_DAYS)
    open_by_type = Counter(a.type for a in inputs.alerts if a.state in OPEN_ALERT_STATES)
    acknowledged = [
        _hours(a.raised, a.acknowledged)
        for a in inputs.alerts
        if a.acknowledged is not None and window <= a.acknowledged < end
    ]
    mitigated = [
        _hours(a.raised, a.mitigated)
        for a in inputs.alerts
        if a.mitigated is not None and window <= a.mitigated < end
    ]
    return {
        "alerts_open": {kind: open_by_type.get(kind, 0) for kind in ALERT_TYPES},
        "alerts_raised": sum(1 for a in inputs.alerts if start <= a.raised < end),
        "alerts_time_to_acknowledge": _durations(acknowledged),
        "alerts_time_to_mitigate": _durations(mitigated),
    }


def _durations(hours: list[float]) -> dict[str, object]:
    return {
        "count": len(hours),
        "median_hours": percentile(hours, 0.5),
        "p90_hours": percentile(hours, 0.9),
    }


# --- digests -----------------------------------------------------------------------------------


def canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def organisation_digest(values: Mapping[str, object]) -> str:
    return hashlib.sha256(canonical(dict(values))).hexdigest()


def day_digest(day: dt.date, organisation_digests: Mapping[int | str, str]) -> str:
    """The day's digest: over the day and each organisation's digest, so one organisation's
    samples can be checked against the sealed day without the others'."""
    ordered = {str(key): organisation_digests[key] for key in sorted(organisation_digests, key=int)}
    return hashlib.sha256(canonical({"day": day.isoformat(), "organisations": ordered})).hexdigest()


def headline(value: object) -> float | None:
    """A metric's value as one number for trends and peers (None when it has none)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return None
