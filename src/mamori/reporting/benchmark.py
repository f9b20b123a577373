"""Peers and the sector from the sealed daily samples: each organisation's position within its
category for the headline metrics, and the sector dashboard for the scheme owner and observers.
The protections (k ≥ 5, groups that partition the sector, cohorts frozen per quarter, a coarse
grid, quantiles only) are ``reporting.peers``'; this module feeds it the stored samples and keeps
each quarter's cohort so every day of the quarter counts the same organisations.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import JSONField, OuterRef, Subquery
from django.utils.translation import gettext as _

from mamori.organisations.models import Category, Organisation
from mamori.reporting import metrics, peers
from mamori.reporting.labels import METRIC_LABELS
from mamori.reporting.models import DaySeal, GraphVersion, MetricSample, PeerCohort

# The headline metrics compared with peers, with the grid their values are rounded to before
# anything is computed (peers.snap): five points of a share, one item of a count.
PEER_METRICS: dict[str, float] = {
    **{f"control_passing.{control}": 0.05 for control in metrics.CONTROLS},
    "vulnerabilities_overdue": 1.0,
    "kev_open": 1.0,
    "supplier_spof": 1.0,
}
# Numbers read out of a metric's object value for the dashboard (same grid rules).
DERIVED: dict[str, tuple[str, str, float]] = {
    "kev_open_age_days.max": ("kev_open_age_days", "max", 1.0),
    "remediation_days.median": ("remediation_days", "median", 1.0),
    "alerts_time_to_acknowledge.median_hours": ("alerts_time_to_acknowledge", "median_hours", 1.0),
}
LOWER_IS_BETTER = {
    "kev_open_age_days.max",
    "remediation_days.median",
    "alerts_time_to_acknowledge.median_hours",
}


def latest_sealed_day() -> dt.date | None:
    return DaySeal.objects.order_by("-day").values_list("day", flat=True).first()


def categories() -> dict[int, str]:
    return dict(Organisation.objects.values_list("pk", "category"))


def _number(value: Any, field: str | None) -> float | None:
    if field is not None:
        value = value.get(field) if isinstance(value, dict) else None
    return metrics.headline(value)


def values_on(day: dt.date, metric: str, field: str | None = None) -> dict[int, float | None]:
    return {
        organisation_id: _number(value, field)
        for organisation_id, value in MetricSample.objects.filter(
            day=day, metric=metric
        ).values_list("organisation_id", "value")
    }


def last_known(day: dt.date, metric: str, organisation_ids, field: str | None = None) -> dict:
    """Each organisation's latest value before ``day`` (for members without one on the day):
    one row per organisation, the newest with a value, found through the samples' unique index
    (reading every earlier sample would grow with the history: 2.7 s at two years)."""
    if not organisation_ids:
        return {}
    newest = MetricSample.objects.filter(
        organisation_id=OuterRef("pk"), metric=metric, day__lt=day
    ).exclude(value__isnull=True)
    if field is not None:
        newest = newest.exclude(**{f"value__{field}": None}).exclude(
            **{f"value__{field}__isnull": True}
        )
    rows = (
        Organisation.objects.filter(pk__in=list(organisation_ids))
        .annotate(
            latest=Subquery(newest.order_by("-day").values("value")[:1], output_field=JSONField())
        )
        .values_list("pk", "latest")
    )
    found: dict[int, float] = {}
    for organisation_id, value in rows:
        number = _number(value, field)
        if number is not None:
            found[organisation_id] = number
    return found


def cohort(key: str, day: dt.date, category_of: dict[int, str]) -> peers.Cohort:
    """The cohort of ``day``'s quarter for a metric: formed once, from the quarter's first
    sealed day, on the cohort of the quarter before; stored so it never moves."""
    quarter = peers.quarter_of(day)
    stored = PeerCohort.objects.filter(metric=key, quarter=quarter).first()
    if stored is not None:
        return peers.Cohort.from_dict(stored.data)
    first = (
        DaySeal.objects.filter(day__gte=peers.quarter_start(day), day__lte=day)
        .order_by("day")
        .values_list("day", flat=True)
        .first()
    ) or day
    previous_row = (
        PeerCohort.objects.filter(metric=key, quarter__lt=quarter).order_by("-quarter").first()
    )
    previous = peers.Cohort.from_dict(previous_row.data) if previous_row else None
    metric, field = _source(key)
    formed = peers.form_cohort(values_on(first, metric, field), category_of, first, previous)
    try:
        with transaction.atomic():
            PeerCohort.objects.create(metric=key, quarter=quarter, data=formed.to_dict())
    except IntegrityError:  # formed at the same moment elsewhere: that one stands
        return peers.Cohort.from_dict(PeerCohort.objects.get(metric=key, quarter=quarter).data)
    return formed


def _source(key: str) -> tuple[str, str | None]:
    if key in DERIVED:
        metric, field, _step = DERIVED[key]
        return metric, field
    return key, None


def _step(key: str) -> float:
    return DERIVED[key][2] if key in DERIVED else PEER_METRICS[key]


def _better(key: str) -> str:
    if key in LOWER_IS_BETTER:
        return "lower"
    return metrics.BY_KEY[key].better or "higher"


def _inputs(key: str, day: dt.date, category_of: dict[int, str]):
    metric, field = _source(key)
    values = values_on(day, metric, field)
    group = cohort(key, day, category_of)
    missing = [org for org in group.sector if values.get(org) is None]
    return values, group, last_known(day, metric, missing, field)


def positions_for(organisation: Organisation, day: dt.date | None = None) -> list[dict]:
    """The organisation's position for each headline metric on the latest sealed day (empty
    when no group of at least k organisations counts it)."""
    day = day or latest_sealed_day()
    if day is None:
        return []
    category_of = categories()
    rows = []
    for key in PEER_METRICS:
        values, group, known = _inputs(key, day, category_of)
        found = peers.position(
            values, category_of, organisation.pk, _better(key), day, group,
            last_known=known, step=_step(key),
        )  # fmt: skip
        if found is None:
            continue
        rows.append(
            {
                "key": key,
                "label": METRIC_LABELS[key],
                "group": group_label(found.group),
                "size": found.n,
                "position": position_text(found.low, found.high),
                "low": found.low,
                "high": found.high,
            }
        )
    return rows


def group_label(group: str) -> str:
    if group == peers.SECTOR:
        return _("The whole sector")
    if group == peers.POOLED:
        return _("Smaller categories together")
    return str(Category(group).label) if group in Category.values else group


def position_text(low: int, high: int) -> str:
    if low == high:
        if low == 50:
            return _("At the median")
        return _("At the %(percentile)sth percentile") % {"percentile": low}
    return _("Between the %(low)sth and %(high)sth percentile") % {"low": low, "high": high}


def dashboard(day: dt.date | None = None) -> dict[str, Any]:
    """The sector dashboard of a sealed day (the latest by default): certification coverage by
    category, each headline metric's published quantiles, and supplier hot spots."""
    day = day or latest_sealed_day()
    if day is None:
        return {"day": None}
    category_of = categories()
    sampled = set(
        MetricSample.objects.filter(day=day, metric="certificate_level").values_list(
            "organisation_id", "value"
        )
    )
    figures: dict[str, Any] = {"day": day.isoformat(), "k": peers.K}
    figures["certification"] = _certification(sampled, category_of)
    figures["metrics"] = {}
    for key in [*PEER_METRICS, *DERIVED]:
        values, group, known = _inputs(key, day, category_of)
        figures["metrics"][key] = peers.publish(
            values, category_of, _better(key), day, group, last_known=known, step=_step(key)
        )
    figures["failing_most"] = sorted(
        (
            (key.split(".", 1)[1], published["sector"]["quantiles"].get("50"))
            for key, published in figures["metrics"].items()
            if key.startswith("control_passing.") and published["sector"]
        ),
        key=lambda item: (item[1] is None, item[1] if item[1] is not None else 0),
    )
    seal = DaySeal.objects.filter(day=day).values_list("sector", flat=True).first()
    figures["supply"] = seal.get("supply") if seal else None
    return figures


def _certification(sampled: set[tuple[int, Any]], category_of: dict[int, str]) -> dict:
    """Certified organisations by category. Certification is public (the register lists every
    certificate), so counts are shown, yet still only for groups of at least k."""
    totals: Counter = Counter()
    certified: Counter = Counter()
    for organisation_id, level in sampled:
        category = category_of.get(organisation_id, "")
        totals[category] += 1
        certified[category] += level is not None
    # The small categories are counted together; while that pool is below k but not empty,
    # the smallest category shown joins it (else "sector minus the shown" would be the pool).
    shown = {category for category in totals if totals[category] >= peers.K}
    pooled = set(totals) - shown
    while 0 < sum(totals[c] for c in pooled) < peers.K and shown:
        smallest = min(shown, key=lambda c: (totals[c], c))
        shown.discard(smallest)
        pooled.add(smallest)
    groups = [
        {
            "category": category,
            "label": group_label(category),
            "organisations": totals[category],
            "certified": certified[category],
        }
        for category in sorted(shown)
    ]
    other_total = sum(totals[c] for c in pooled)
    other_certified = sum(certified[c] for c in pooled)
    sector_total = sum(totals.values())
    return {
        "sector": (
            {"organisations": sector_total, "certified": sum(certified.values())}
            if sector_total >= peers.K
            else None
        ),
        "groups": groups,
        "others": (
            {"organisations": other_total, "certified": other_certified}
            if other_total >= peers.K
            else None
        ),
    }


def supply_hot_spots(day: dt.date, *, limit: int = 10) -> dict | None:
    """The suppliers whose failure alone would stop critical services of the most institutions,
    from the supply graphs in force on the day; shown only with at least k institutions."""
    from mamori.supplychain import analysis, graph, report

    documents = []
    seen: set[int] = set()
    for organisation_id, document in (
        GraphVersion.objects.filter(day__lte=day)
        .order_by("organisation_id", "-day")
        .values_list("organisation_id", "document")
    ):
        if organisation_id in seen:
            continue
        seen.add(organisation_id)
        if any(node.get("critical") for node in document.get("nodes", ())):
            documents.append((f"o{organisation_id}/", document))
    if not documents:
        return None
    result = analysis.analyse(graph.from_dict(report.merged_document(documents)))
    institutions = result["summary"]["institutions"]
    if institutions < peers.K:
        return {"institutions": institutions, "hot_spots": None}
    hot = [
        {"supplier": key, **item}
        for key, item in list(result["reach"].items())[:limit]
        if item["institutions"] >= 2
    ]
    return {"institutions": institutions, "hot_spots": hot}
