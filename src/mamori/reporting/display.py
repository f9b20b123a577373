"""What the reporting pages show, in the viewer's language: the pack's summary with its status
tiles, trends and decisions; an organisation's position among its peers; file names."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mamori.core.choices import CONTROL_LABELS
from mamori.reporting import charts, metrics
from mamori.reporting.labels import METRIC_LABELS, PRINCIPLE_LABELS

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def today() -> dt.date:
    return timezone.localdate()


def _language(language: str | None) -> str:
    return "en" if (language or "ja").startswith("en") else "ja"


def percent(value: Any) -> str:
    return "—" if value is None else f"{round(float(value) * 100)}%"


def pack_summary(content: dict, language: str | None) -> dict:
    """The summary page of a pack: a tile per control and per principle (now and before),
    the decisions' texts and a trend line per headline metric."""
    from mamori.reporting.render import decision_text

    language = _language(language)
    controls = [
        {
            **row,
            "label": CONTROL_LABELS[row["key"]],
            "now_text": percent(row["now"]),
            "before_text": percent(row["before"]),
            "tile": charts.rag(
                row["status"], label=str(CONTROL_LABELS[row["key"]]), language=language
            ),
            "tile_before": charts.rag(
                row["status_before"], label=str(CONTROL_LABELS[row["key"]]), language=language
            ),
        }
        for row in content["controls"]
    ]
    principles = [
        {
            **row,
            "label": PRINCIPLE_LABELS.get(row["key"], row["key"]),
            "tile": charts.rag(
                row["status"],
                label=str(PRINCIPLE_LABELS.get(row["key"], row["key"])),
                language=language,
            ),
            "tile_before": charts.rag(
                row["status_before"],
                label=str(PRINCIPLE_LABELS.get(row["key"], row["key"])),
                language=language,
            ),
        }
        for row in content["principles"]
    ]
    trends = []
    for key, points in content["trends"]["daily"].items():
        series = [(dt.date.fromisoformat(day), value) for day, value in points]
        metric = metrics.BY_KEY[key]
        share = metric.unit == "share"
        trends.append(
            {
                "key": key,
                "label": METRIC_LABELS[key],
                "chart": charts.trend(
                    [
                        (day, value * 100 if share and value is not None else value)
                        for day, value in series
                    ],
                    title=str(METRIC_LABELS[key]),
                    unit="%" if share else "",
                    y_min=0 if share else None,
                    y_max=100 if share else None,
                    better=metric.better or "higher",
                    language=language,
                ),
            }
        )
    return {
        "overall": content["overall"],
        "overall_tile": charts.rag(content["overall"], label=str(_("Overall")), language=language),
        "controls": controls,
        "principles": principles,
        "decisions": [decision_text(decision, language) for decision in content["decisions"]],
        "trends": trends,
        "sampled": content["sampled"],
    }


def file_name(board_pack, kind: str, language: str) -> str:
    return (
        f"board-pack-{board_pack.period_from:%Y%m%d}-{board_pack.period_to:%Y%m%d}"
        f"-v{board_pack.version}-{language}.{kind}"
    )


def with_tiles(packs, language: str | None) -> list:
    """The packs of a list, each with the tile of its overall status."""
    rows = list(packs)
    for row in rows:
        row.overall_tile = charts.rag(
            row.content.get("overall", "grey"),
            label=str(_("Overall")),
            language=_language(language),
        )
    return rows
