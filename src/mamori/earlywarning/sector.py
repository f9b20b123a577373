"""The sector's early-warning figures for one day, for the scheme owner and (later) sector reports:
alerts raised and open by type and category, time to acknowledge and to mitigate (median, p90,
over the 30 days up to the day), open KEV exposure by age. No organisation is ever named, and a
group (organisations of one category) with fewer than ``MIN_GROUP`` institutions is shown only
inside the sector's totals.

The figures are replayed from the alerts' immutable history (``AlertEvent``) up to the end of
the day (in the instance's time zone), so a past day recomputed later gives the same figures;
each day is stored as a ``SectorSample`` with the digest of its canonical JSON.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass

from django.utils import timezone

from mamori.earlywarning.models import Alert, AlertEvent, AlertState, SectorSample

MIN_GROUP = 5
WINDOW_DAYS = 30
OPEN = frozenset({AlertState.NEW, AlertState.ACKNOWLEDGED})
ACKNOWLEDGING = frozenset({AlertState.ACKNOWLEDGED, AlertState.MITIGATED, AlertState.CLOSED})
MITIGATING = frozenset({AlertState.MITIGATED, AlertState.CLOSED})
KEV_AGES = ((0, 7, "0-7"), (8, 14, "8-14"), (15, 30, "15-30"), (31, None, "31+"))
# Finished days the nightly sampling still fills in when the beat was away that long.
CATCH_UP_DAYS = 7


def today() -> dt.date:
    """Today in the instance's time zone, the one the days are cut in (``bounds``)."""
    return timezone.localtime(timezone.now(), timezone.get_default_timezone()).date()


def bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    zone = timezone.get_default_timezone()
    start = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    return start, start + dt.timedelta(days=1)


@dataclass
class Life:
    """One alert's history up to the end of the day."""

    raised: dt.datetime | None = None
    state: str = ""
    acknowledged: dt.datetime | None = None
    mitigated: dt.datetime | None = None


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(share * len(ordered)) - 1)], 2)


def _durations(values: list[float]) -> dict:
    return {
        "count": len(values),
        "median_hours": percentile(values, 0.5),
        "p90_hours": percentile(values, 0.9),
    }


def replay(events, end: dt.datetime) -> dict[int, Life]:
    lives: dict[int, Life] = defaultdict(Life)
    for alert_id, at, state in events:
        if at >= end:
            continue
        life = lives[alert_id]
        if life.raised is None:
            life.raised = at
        if state == AlertState.NEW and life.state and life.state != AlertState.NEW:
            life.acknowledged = life.mitigated = None  # reopened: measured again
        if state in ACKNOWLEDGING and life.acknowledged is None:
            life.acknowledged = at
        if state in MITIGATING and life.mitigated is None:
            life.mitigated = at
        life.state = state
    return lives


def _figures(lives: dict[int, Life], meta: dict[int, tuple], start, end) -> dict:
    window = end - dt.timedelta(days=WINDOW_DAYS)
    raised = Counter()
    raised_by_category = Counter()
    open_by_type = Counter()
    to_acknowledge, to_mitigate = [], []
    kev_ages = Counter({label: 0 for _low, _high, label in KEV_AGES})
    for alert_id, life in lives.items():
        alert_type, category, kev = meta[alert_id][1:4]
        if life.raised is not None and start <= life.raised < end:
            raised[alert_type] += 1
            raised_by_category[f"{alert_type}/{category}"] += 1
        if life.state in OPEN:
            open_by_type[alert_type] += 1
            if kev:
                age = (end - life.raised).days
                for low, high, label in KEV_AGES:
                    if age >= low and (high is None or age <= high):
                        kev_ages[label] += 1
                        break
        if life.acknowledged is not None and window <= life.acknowledged < end:
            to_acknowledge.append((life.acknowledged - life.raised).total_seconds() / 3600)
        if life.mitigated is not None and window <= life.mitigated < end:
            to_mitigate.append((life.mitigated - life.raised).total_seconds() / 3600)
    return {
        "raised": dict(sorted(raised.items())),
        "raised_by_category": dict(sorted(raised_by_category.items())),
        "open": dict(sorted(open_by_type.items())),
        "time_to_acknowledge": _durations(to_acknowledge),
        "time_to_mitigate": _durations(to_mitigate),
        "open_kev_by_age_days": dict(kev_ages),
    }


def compute(day: dt.date) -> dict:
    """The figures of ``day`` (JSON-ready, no organisation named)."""
    from mamori.organisations.models import Organisation

    start, end = bounds(day)
    events = list(
        AlertEvent.objects.filter(at__lt=end)
        .order_by("at", "pk")
        .values_list("alert_id", "at", "state")
    )
    ids = {alert_id for alert_id, _at, _state in events}
    meta = {
        pk: (organisation_id, alert_type, category, kev)
        for pk, organisation_id, alert_type, category, kev in Alert.objects.filter(
            pk__in=ids
        ).values_list("pk", "organisation_id", "type", "category", "kev")
    }
    lives = replay(events, end)
    category_of = dict(Organisation.objects.values_list("pk", "category"))
    institutions = Counter(category_of.values())
    result: dict = {
        "day": day.isoformat(),
        "institutions": sum(institutions.values()),
        "min_group": MIN_GROUP,
        "window_days": WINDOW_DAYS,
    }
    if result["institutions"] < MIN_GROUP:
        result["sector"] = None  # too few institutions to show anything without naming them
        result["groups"] = {}
        return result
    result["sector"] = _figures(lives, meta, start, end)
    groups = {}
    for category, count in sorted(institutions.items()):
        if count < MIN_GROUP:
            continue
        members = {
            alert_id: life
            for alert_id, life in lives.items()
            if category_of.get(meta[alert_id][0]) == category
        }
        groups[category] = {"institutions": count, **_figures(members, meta, start, end)}
    result["groups"] = groups
    return result


def canonical(figures: dict) -> bytes:
    return json.dumps(figures, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def sample(day: dt.date) -> SectorSample:
    """Compute ``day`` and store it (replacing an earlier computation of the same day)."""
    figures = compute(day)
    digest = hashlib.sha256(canonical(figures)).hexdigest()
    stored, _created = SectorSample.objects.update_or_create(
        day=day, defaults={"figures": figures, "digest": digest}
    )
    return stored


def sample_finished_days(catch_up: int = CATCH_UP_DAYS) -> list[SectorSample]:
    """Store each of the last ``catch_up`` finished days (yesterday first among them) that has
    no sample computed after the day ended: none yet, or one computed on the scheme owner's
    page while the day was still under way. A day sampled after its end is final (the
    figures are replayed from history), so a second run stores nothing."""
    yesterday = today() - dt.timedelta(days=1)
    days = [yesterday - dt.timedelta(days=back) for back in range(catch_up)]
    computed = dict(SectorSample.objects.filter(day__in=days).values_list("day", "computed_at"))
    return [
        sample(day)
        for day in sorted(days)
        if computed.get(day) is None or computed[day] < bounds(day)[1]
    ]
