"""The sector dashboard for the scheme owner and observers (supervisors): certification by
category, the headline metrics' quantiles by category, the controls failing most, KEV exposure
and its age, time to remediate, supplier hot spots; CSV and XLSX exports of the same figures.
Nobody else finds these pages (404). No organisation is named; nothing below k organisations is
shown apart from the sector's total."""

from __future__ import annotations

import csv
import datetime as dt
import io

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from mamori.core.text import spreadsheet_safe
from mamori.organisations.access import Access
from mamori.reporting import benchmark, peers, permissions
from mamori.reporting.display import XLSX_TYPE
from mamori.reporting.labels import METRIC_LABELS

QUANTILE_COLUMNS = tuple(str(q) for q in peers.QUANTILES)


def _reader(request) -> Access:
    access = Access.for_request(request)
    if not permissions.can_read_sector(access):
        raise Http404
    return access


def _day(request) -> dt.date | None:
    value = request.GET.get("day") or ""
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _label(key: str) -> str:
    if key in METRIC_LABELS:
        return str(METRIC_LABELS[key])
    metric, _dot, _field = key.partition(".")
    return str(METRIC_LABELS.get(metric, key))


def rows(figures: dict) -> list[dict]:
    """One row per metric and group: the label, the group, how many counted, the quantiles."""
    found = []
    for key, published in figures.get("metrics", {}).items():
        groups = [(peers.SECTOR, published["sector"]), *sorted(published["groups"].items())]
        for group, stats in groups:
            found.append(
                {
                    "metric": key,
                    "label": _label(key),
                    "group": benchmark.group_label(group),
                    "n": stats["n"] if stats else None,
                    "quantiles": [
                        (stats or {}).get("quantiles", {}).get(q) for q in QUANTILE_COLUMNS
                    ],
                }
            )
    return found


def _supplier_labels(figures: dict) -> dict:
    from mamori.supplychain.views_analysis import entity_labels

    supply = figures.get("supply") or {}
    if not supply.get("hot_spots"):
        return {}
    from mamori.reporting.models import GraphVersion

    owners = GraphVersion.objects.values_list("organisation_id", flat=True).distinct()
    return entity_labels(list(owners))


@login_required
def dashboard(request):
    _reader(request)
    asked = _day(request)
    figures = benchmark.dashboard(asked)
    labels = _supplier_labels(figures)
    hot_spots = [
        {**spot, "label": labels.get(spot["supplier"], spot["supplier"])}
        for spot in ((figures.get("supply") or {}).get("hot_spots") or [])
    ]
    failing = [
        {"control": control, "label": METRIC_LABELS[f"control_passing.{control}"], "median": median}
        for control, median in figures.get("failing_most", [])
    ]
    return render(
        request,
        "reporting/sector.html",
        {
            "figures": figures,
            "rows": rows(figures),
            "quantile_columns": QUANTILE_COLUMNS,
            "failing": failing,
            "hot_spots": hot_spots,
            "asked": asked,
        },
    )


def _table(figures: dict) -> list[list]:
    header = [_("Metric"), _("Group"), _("Organisations counted")] + [
        f"p{q}" for q in QUANTILE_COLUMNS
    ]
    table = [header]
    for row in rows(figures):
        table.append([row["label"], row["group"], row["n"], *row["quantiles"]])
    certification = figures.get("certification") or {}
    table.append([])
    table.append([_("Certification"), _("Group"), _("Organisations"), _("Certified")])
    if certification.get("sector"):
        table.append(
            [
                _("Certification"),
                benchmark.group_label(peers.SECTOR),
                certification["sector"]["organisations"],
                certification["sector"]["certified"],
            ]
        )
    for group in certification.get("groups", []):
        table.append(
            [_("Certification"), group["label"], group["organisations"], group["certified"]]
        )
    return table


@login_required
def export(request, kind: str):
    _reader(request)
    if kind not in ("csv", "xlsx"):
        raise Http404
    figures = benchmark.dashboard(_day(request))
    if figures.get("day") is None:
        raise Http404
    table = _table(figures)
    name = f"mamori-sector-{figures['day']}.{kind}"
    if kind == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for line in table:
            writer.writerow(
                [spreadsheet_safe(cell) if isinstance(cell, str) else cell for cell in line]
            )
        response = HttpResponse(
            "\ufeff" + buffer.getvalue(), content_type="text/csv; charset=utf-8"
        )
    else:
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        sheet.title = figures["day"]
        for line in table:
            sheet.append(
                [spreadsheet_safe(cell) if isinstance(cell, str) else cell for cell in line]
            )
        output = io.BytesIO()
        book.save(output)
        response = HttpResponse(output.getvalue(), content_type=XLSX_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
