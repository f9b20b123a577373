"""The board pack rendered for people: a PDF (WeasyPrint) and a workbook (openpyxl), in Japanese or
English, from the language-neutral content ``pack.compose`` builds.

Every word here is written through Django's gettext while the pack's language is active, so the
same content gives the same pack in either language; the only markup not escaped by the template
is the SVG of ``reporting.charts``, which escapes its own text. The figures are the content's:
nothing is recomputed here except each metric's status (with ``pack.metric_status``, the rule the
content itself was composed with), so the pack shows what its digest covers.

Both outputs are deterministic for the same content and language. The workbook's own dates (the
document properties and each part's time in the zip) are the period's last day, so two renders of
one content are byte-identical.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

from django.utils import formats, translation
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from mamori.core.choices import CONTROL_LABELS
from mamori.reporting import charts, mapping, metrics, pack

LANGUAGES = ("ja", "en")
TEMPLATE = "reporting/pack_pdf.html"
# pack.metric_status colours the first tier's survey coverage amber from this share (a literal
# there); written here for the rules appendix. Keep the two equal.
SUPPLIER_TIER1_AMBER = 0.5
DASH = "—"
# Context for the board rather than a status of their own: pack.metric_status always gives them
# grey, which would read "no evidence" beside figures that are there.
NOT_RATED = frozenset({"alerts_raised", "alerts_time_to_acknowledge", "alerts_time_to_mitigate"})

# The value kinds of figure rows: how a value is written in the PDF and formatted in the workbook.
COUNT, SHARE, DAYS, HOURS, TEXT, FLAG = "count", "share", "days", "hours", "text", "flag"
XLSX_FORMATS = {COUNT: "#,##0", SHARE: "0.0%", DAYS: "#,##0.##", HOURS: "#,##0.##"}


def _check(content: Mapping[str, Any], language: str) -> None:
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    if content.get("schema") != pack.SCHEMA:
        raise ValueError(f"not a board pack of schema {pack.SCHEMA}: {content.get('schema')!r}")


# --- Words -------------------------------------------------------------------------------------


def metric_label(key: str) -> str:
    """A metric's name in the active language."""
    if key.startswith("control_passing."):
        control = key.partition(".")[2]
        return _("%(control)s: hosts passing") % {"control": CONTROL_LABELS.get(control, control)}
    labels = {
        "certificate_level": _("Certificate level"),
        "certificate_days_to_expiry": _("Days until the certificate expires"),
        "hosts_in_scope": _("Hosts in scope"),
        "hosts_checked_in": _("Hosts that checked in recently"),
        "vulnerabilities_open": _("Open vulnerabilities by severity"),
        "vulnerabilities_overdue": _("Vulnerabilities past their fix deadline"),
        "kev_open": _("Open known exploited vulnerabilities (KEV)"),
        "kev_open_age_days": _("Days open of known exploited vulnerabilities"),
        "remediation_days": _("Time to remediate vulnerabilities"),
        "supplier_coverage_by_tier": _("Supply-chain survey answers by tier"),
        "supplier_spof": _("Single points of failure in the supply chain"),
        "supplier_uncertified_on_critical_path": _(
            "Uncertified suppliers a critical service depends on"
        ),
        "alerts_open": _("Open early-warning alerts"),
        "alerts_raised": _("Early-warning alerts raised on the day"),
        "alerts_time_to_acknowledge": _("Time to acknowledge alerts"),
        "alerts_time_to_mitigate": _("Time to mitigate alerts"),
        "board_review": _("The board signed the previous pack"),
    }
    return labels.get(key, key)


def source_label(source: str) -> str:
    """A governance-mapping source (``control:``, ``metric:``, ``question:``) in words."""
    kind, _sep, key = source.partition(":")
    if kind == "control":
        return _("%(control)s (agent checks)") % {"control": CONTROL_LABELS.get(key, key)}
    if kind == "metric":
        return metric_label(key)
    if kind == "question":
        return _("Self-assessment answer %(question)s") % {"question": key}
    return source


def level_label(level: str | None) -> str:
    if level == "CE":
        return _("Cyber-Essentials-style")
    if level == "PLUS":
        return _("Cyber-Essentials-style Plus (technical verification)")
    return _("No valid certificate") if level is None else str(level)


def status_word(status: str | None, language: str) -> str:
    """The word the RAG tiles write (charts.RAG_WORDS), so a table and a tile agree; a dash for
    a figure that is not rated."""
    if status is None:
        return DASH
    return charts.RAG_WORDS[language].get(status, status)


def _number(value: float | int) -> str:
    """One decimal at most, none when whole, thousands separated (as the charts write)."""
    rounded = round(float(value), 1) + 0.0
    if rounded.is_integer():
        return f"{int(rounded):,}"
    return f"{rounded:,.1f}"


def percent(share: float | None) -> str:
    return DASH if share is None else f"{_number(share * 100)}%"


def _days(value: float | int) -> str:
    if float(value).is_integer():
        count = int(value)
        return ngettext("%(count)s day", "%(count)s days", count) % {"count": f"{count:,}"}
    return _("%(value)s days") % {"value": _number(value)}


def show(value: Any, kind: str) -> str:
    """A figure as the PDF writes it."""
    if value is None:
        return DASH
    if kind == SHARE:
        return percent(value)
    if kind == DAYS:
        return _days(value)
    if kind == HOURS:
        return _("%(value)s hours") % {"value": _number(value)}
    if kind == FLAG:
        return _("Yes") if value else _("No")
    if kind == COUNT:
        return _number(value)
    return str(value)


def day_text(iso: str | None) -> str:
    if not iso:
        return DASH
    return formats.date_format(dt.date.fromisoformat(iso), "DATE_FORMAT")


def period_text(period: Mapping[str, str]) -> str:
    return _("%(first)s – %(last)s") % {
        "first": day_text(period.get("from")),
        "last": day_text(period.get("to")),
    }


def organisation_name(organisation: Mapping[str, Any], language: str) -> tuple[str, str]:
    """The organisation's name in the language, and in the other one ("" when the same)."""
    names = organisation.get("name")
    if isinstance(names, Mapping):
        ja, en = names.get("ja") or "", names.get("en") or ""
    else:
        ja = organisation.get("name_ja") or ""
        en = organisation.get("name_en") or ""
        ja = ja or (names if isinstance(names, str) else "")
    first, other = (en, ja) if language == "en" else (ja, en)
    first = first or other or str(organisation.get("slug") or organisation.get("id") or "")
    return str(first), str(other) if other and other != first else ""


# --- Decisions ---------------------------------------------------------------------------------


def _control_names(controls: Sequence[str]) -> str:
    return _(", ").join(str(CONTROL_LABELS.get(control, control)) for control in controls)


def decision_text(decision: Mapping[str, Any], language: str) -> dict[str, str]:
    """What the board is asked to decide (``title``) and why it matters (``why``), written from
    the decision's kind and facts in the language."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    with translation.override(language):
        return _decision_text(decision)


def _decision_text(decision: Mapping[str, Any]) -> dict[str, str]:
    kind = decision.get("kind", "")
    count = int(decision.get("count") or 0)
    deadline = pack.KEV_DEADLINE_DAYS
    if kind == "kev_overdue":
        days = int(decision.get("oldest_days") or 0)
        facts = {"count": count, "days": days, "deadline": deadline}
        title = ngettext(
            "Require the %(count)s known exploited vulnerability, open for up to %(days)s days, "
            "to be fixed now",
            "Require the %(count)s known exploited vulnerabilities, open for up to %(days)s days, "
            "to be fixed now",
            count,
        )
        why = _(
            "Attackers are already using these vulnerabilities. The scheme expects a known "
            "exploited vulnerability to be fixed within %(deadline)s days; the oldest one here "
            "has been open for %(days)s days."
        )
    elif kind == "kev_open":
        days = int(decision.get("oldest_days") or 0)
        facts = {
            "count": count,
            "days": days,
            "deadline": deadline,
            "left": max(deadline - days, 0),
        }
        title = ngettext(
            "Confirm that the %(count)s known exploited vulnerability is fixed within "
            "%(deadline)s days",
            "Confirm that the %(count)s known exploited vulnerabilities are fixed within "
            "%(deadline)s days",
            count,
        )
        why = _(
            "Attackers are already using these vulnerabilities elsewhere. The oldest one here has "
            "been open for %(days)s days: %(left)s days are left before the deadline."
        )
    elif kind == "incident_open":
        facts = {"count": count}
        title = ngettext(
            "Ask for a report on the open incident and how it is being contained",
            "Ask for a report on the %(count)s open incidents and how they are being contained",
            count,
        )
        why = _(
            "An incident alert is open on the organisation's registered assets. The board should "
            "know its impact, who is handling it and when it is expected to be closed."
        )
    elif kind == "no_certificate":
        facts = {}
        title = _("Decide to obtain a certificate under the Cyber-Essentials-style scheme")
        why = _(
            "The organisation holds no valid certificate: customers, partners and supervisors "
            "have no independent assurance that the five basic controls are in place."
        )
    elif kind == "certificate_expiring":
        days = int(decision.get("days") or 0)
        facts = {"days": days, "level": level_label(decision.get("level"))}
        title = ngettext(
            "Approve the renewal of the certificate, which expires in %(days)s day",
            "Approve the renewal of the certificate, which expires in %(days)s days",
            days,
        )
        why = _(
            "The %(level)s certificate lapses unless the self-assessment is answered and assessed "
            "again before it expires, and renewal takes several weeks."
        )
    elif kind == "single_supplier":
        facts = {"count": count}
        title = ngettext(
            "Ask for an alternative provider for the supplier that is a single point of failure",
            "Ask for alternative providers for the %(count)s suppliers that are single points "
            "of failure",
            count,
        )
        why = _(
            "If one of these suppliers fails, a critical service stops: nothing else provides "
            "what it supplies."
        )
    elif kind == "overdue_vulnerabilities":
        facts = {"count": count}
        title = ngettext(
            "Require a plan to fix the %(count)s vulnerability past its fix deadline",
            "Require a plan to fix the %(count)s vulnerabilities past their fix deadline",
            count,
        )
        why = _(
            "A fix has been published for each of them for longer than the scheme allows. Until "
            "they are fixed, an attacker can use them."
        )
    elif kind == "controls_failing":
        controls = list(decision.get("controls") or [])
        facts = {
            "count": len(controls),
            "controls": _control_names(controls),
            "threshold": percent(pack.CONTROL_AMBER),
        }
        title = ngettext(
            "Require the control below %(threshold)s of hosts to be restored: %(controls)s",
            "Require the %(count)s controls below %(threshold)s of hosts to be restored: "
            "%(controls)s",
            len(controls),
        )
        why = _(
            "On the period's last day, fewer than %(threshold)s of the hosts in scope meet these "
            "controls. The certificate assumes that every host in scope meets them."
        )
    elif kind == "supplier_survey":
        facts = {"share": percent(decision.get("share"))}
        title = _("Extend the supply-chain survey: %(share)s of Tier-1 suppliers have answered")
        why = _(
            "A supplier that has not answered hides its own suppliers, so the single points of "
            "failure and uncertified suppliers behind it cannot be seen."
        )
    else:
        return {"title": str(kind), "why": ""}
    return {"title": title % facts, "why": why % facts}


# --- Figures -----------------------------------------------------------------------------------


def _row(label: str, now: Any, before: Any, kind: str) -> dict[str, Any]:
    return {"label": label, "now": now, "before": before, "kind": kind}


def _part(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, Mapping) else None


def _metric_rows(key: str, now: Any, before: Any) -> list[dict[str, Any]]:
    """A metric as rows of readable figures: one row for a number, one a part for an object."""
    if key == "certificate_level":
        return [_row("", level_label(now), level_label(before), TEXT)]
    if key == "certificate_days_to_expiry":
        return [_row("", now, before, DAYS)]
    if key.startswith("control_passing."):
        return [_row("", now, before, SHARE)]
    if key == "vulnerabilities_open":
        severities = {
            "critical": _("Critical"),
            "high": _("High"),
            "medium": _("Medium"),
            "low": _("Low"),
            "unknown": _("Unknown"),
        }
        return [
            _row(label, _part(now, severity), _part(before, severity), COUNT)
            for severity, label in severities.items()
        ]
    if key == "kev_open_age_days":
        return [
            _row(_("Oldest"), _part(now, "max"), _part(before, "max"), DAYS),
            _row(_("Median"), _part(now, "median"), _part(before, "median"), DAYS),
        ]
    if key == "remediation_days":
        window = {"days": metrics.REMEDIATION_WINDOW_DAYS}
        return [
            _row(
                _("Remediated in the %(days)s days up to the day") % window,
                _part(now, "count"),
                _part(before, "count"),
                COUNT,
            ),
            _row(_("Median"), _part(now, "median"), _part(before, "median"), DAYS),
            _row(_("90th percentile"), _part(now, "p90"), _part(before, "p90"), DAYS),
        ]
    if key == "supplier_coverage_by_tier":
        tiers = sorted({*(now or {}), *(before or {})}, key=lambda tier: (len(tier), tier))
        rows = []
        for tier in tiers:
            this, last = (now or {}).get(tier), (before or {}).get(tier)
            words = {"tier": tier}
            rows += [
                _row(
                    _("Tier %(tier)s: suppliers") % words,
                    _part(this, "suppliers"),
                    _part(last, "suppliers"),
                    COUNT,
                ),
                _row(
                    _("Tier %(tier)s: answered") % words,
                    _part(this, "answered"),
                    _part(last, "answered"),
                    COUNT,
                ),
                _row(
                    _("Tier %(tier)s: share answered") % words,
                    _part(this, "share"),
                    _part(last, "share"),
                    SHARE,
                ),
            ]
        return rows or [_row("", None, None, COUNT)]
    if key == "alerts_open":
        types = {
            "incident": _("Incident"),
            "network_abuse": _("Network abuse"),
            "exposure": _("Exposure"),
            "software_vulnerability": _("Software vulnerability"),
            "supplier_exposure": _("Supplier exposure"),
        }
        return [
            _row(label, _part(now, kind), _part(before, kind), COUNT)
            for kind, label in types.items()
        ]
    if key in ("alerts_time_to_acknowledge", "alerts_time_to_mitigate"):
        window = {"days": metrics.ALERT_WINDOW_DAYS}
        return [
            _row(
                _("Alerts in the %(days)s days up to the day") % window,
                _part(now, "count"),
                _part(before, "count"),
                COUNT,
            ),
            _row(_("Median"), _part(now, "median_hours"), _part(before, "median_hours"), HOURS),
            _row(_("90th percentile"), _part(now, "p90_hours"), _part(before, "p90_hours"), HOURS),
        ]
    if key == "board_review":
        return [_row("", now, before, FLAG)]
    return [_row("", now, before, COUNT if not isinstance(now, Mapping) else TEXT)]


# The appendix's sections and the metrics in each, in the order a board reads them.
def _sections() -> list[tuple[str, tuple[str, ...]]]:
    return [
        (_("Certificate"), ("certificate_level", "certificate_days_to_expiry")),
        (
            _("Hosts and the five controls"),
            (
                "hosts_in_scope",
                "hosts_checked_in",
                *(f"control_passing.{c}" for c in metrics.CONTROLS),
            ),
        ),
        (
            _("Vulnerabilities"),
            (
                "vulnerabilities_open",
                "vulnerabilities_overdue",
                "kev_open",
                "kev_open_age_days",
                "remediation_days",
            ),
        ),
        (
            _("Supply chain"),
            ("supplier_coverage_by_tier", "supplier_spof", "supplier_uncertified_on_critical_path"),
        ),
        (
            _("Early warning"),
            (
                "alerts_open",
                "alerts_raised",
                "alerts_time_to_acknowledge",
                "alerts_time_to_mitigate",
            ),
        ),
        (_("Governance"), ("board_review",)),
    ]


def figures(content: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every metric of the content, grouped in sections: each metric with its label, its status
    now and before (None for a figure that is context, not rated), and its rows (label, now,
    before, kind). Words in the active language."""
    now = content["figures"]["now"]
    before = content["figures"]["before"]
    listed = {key for _title, keys in _sections() for key in keys}
    sections = _sections()
    others = tuple(key for key in now if key not in listed)
    if others:  # a metric added to METRICS after this module: shown rather than lost
        sections.append((_("Other figures"), others))
    result = []
    for title, keys in sections:
        rows = []
        for key in keys:
            if key not in now and key not in before:
                continue
            rated = key not in NOT_RATED
            rows.append(
                {
                    "key": key,
                    "label": metric_label(key),
                    "status": pack.metric_status(key, now.get(key), now) if rated else None,
                    "status_before": (
                        pack.metric_status(key, before.get(key), before) if rated else None
                    ),
                    "rows": _metric_rows(key, now.get(key), before.get(key)),
                }
            )
        result.append({"title": title, "metrics": rows})
    return result


def _shown_figures(content: Mapping[str, Any], language: str) -> list[dict[str, Any]]:
    """``figures`` with each value written out and each status in words, for the PDF."""
    sections = figures(content)
    for section in sections:
        for metric in section["metrics"]:
            for field in ("status", "status_before"):
                status = metric[field]
                metric[f"{field}_word"] = status_word(status, language) if status else ""
            for part in metric["rows"]:
                part["shown_now"] = show(part["now"], part["kind"])
                part["shown_before"] = show(part["before"], part["kind"])
    return sections


# --- Trends ------------------------------------------------------------------------------------


def _is_share(key: str) -> bool:
    return key.startswith("control_passing.")


def _points(values: Sequence[Sequence[Any]], key: str) -> list[tuple[dt.date, float | None]]:
    """A daily series as chart points (shares in per cent); a day without a sample between two
    that have one becomes a gap, so the line does not bridge days nothing was measured."""
    scale = 100 if _is_share(key) else 1
    points: list[tuple[dt.date, float | None]] = []
    for iso, value in values:
        day = dt.date.fromisoformat(iso)
        if points and (day - points[-1][0]).days > 1:
            points.append((points[-1][0] + dt.timedelta(days=1), None))
        points.append((day, None if value is None else value * scale))
    return points


def _trend_chart(key: str, values, language: str, *, width: int, height: int) -> SafeString:
    if _is_share(key):
        options = {"unit": "%", "y_min": 0, "y_max": 100, "target": pack.CONTROL_GREEN * 100}
        options["better"] = "higher"
    else:
        options = {"y_min": 0, "target": 0, "better": "lower"}
    svg = charts.trend(
        _points(values, key),
        title=metric_label(key),
        width=width,
        height=height,
        language=language,
        **options,
    )
    return mark_safe(svg)  # noqa: S308 — charts escapes every text it writes


def _sparkline(key: str, values, language: str) -> SafeString:
    svg = charts.sparkline(
        _points(values, key),
        width=96,
        height=22,
        title=metric_label(key),
        unit="%" if _is_share(key) else "",
        language=language,
    )
    return mark_safe(svg)  # noqa: S308 — charts escapes every text it writes


def _rag(status: str, label: str, language: str) -> SafeString:
    return mark_safe(charts.rag(status, label=label, language=language))  # noqa: S308


# --- Rules -------------------------------------------------------------------------------------


def rules() -> list[dict[str, str]]:
    """How each status is decided, from pack.py's thresholds, in the active language."""
    green, amber = percent(pack.CONTROL_GREEN), percent(pack.CONTROL_AMBER)
    shares = {"green": green, "amber": amber}
    kev = {"days": pack.KEV_DEADLINE_DAYS}
    certificate = {"days": pack.CERTIFICATE_AMBER_DAYS}
    remediation = {
        "green": pack.REMEDIATION_GREEN_DAYS,
        "amber": pack.REMEDIATION_AMBER_DAYS,
        "window": metrics.REMEDIATION_WINDOW_DAYS,
    }
    tier = {"green": green, "amber": percent(SUPPLIER_TIER1_AMBER)}
    none = _("None")
    return [
        {
            "subject": _("Each control: the share of hosts in scope passing it"),
            "green": _("%(green)s or more") % shares,
            "amber": _("%(amber)s or more") % shares,
            "red": _("Below %(amber)s") % shares,
            "grey": _("No hosts in scope"),
        },
        {
            "subject": _("Certificate"),
            "green": _("Valid for more than %(days)s days") % certificate,
            "amber": _("Expires within %(days)s days") % certificate,
            "red": _("No valid certificate"),
            "grey": DASH,
        },
        {
            "subject": _("Hosts that checked in recently, as a share of hosts in scope"),
            "green": _("%(green)s or more") % shares,
            "amber": _("%(amber)s or more") % shares,
            "red": _("Below %(amber)s") % shares,
            "grey": _("No hosts in scope"),
        },
        {
            "subject": metric_label("kev_open"),
            "green": none,
            "amber": _("Open for %(days)s days or fewer") % kev,
            "red": _("One open for more than %(days)s days") % kev,
            "grey": DASH,
        },
        {
            "subject": metric_label("vulnerabilities_overdue"),
            "green": none,
            "amber": DASH,
            "red": _("One or more"),
            "grey": DASH,
        },
        {
            "subject": metric_label("vulnerabilities_open"),
            "green": _("No critical or high"),
            "amber": _("Critical or high open"),
            "red": DASH,
            "grey": DASH,
        },
        {
            "subject": _("Median time to remediate vulnerabilities"),
            "green": _("%(green)s days or fewer") % remediation,
            "amber": _("%(amber)s days or fewer") % remediation,
            "red": _("More than %(amber)s days") % remediation,
            "grey": _("Nothing remediated in the last %(window)s days") % remediation,
        },
        {
            "subject": _("Single points of failure; uncertified suppliers on a critical path"),
            "green": none,
            "amber": _("One or more"),
            "red": DASH,
            "grey": _("No supply-chain graph"),
        },
        {
            "subject": _("Tier-1 suppliers that answered the survey"),
            "green": _("%(green)s or more") % tier,
            "amber": _("%(amber)s or more") % tier,
            "red": _("Below %(amber)s") % tier,
            "grey": _("No supply-chain graph"),
        },
        {
            "subject": metric_label("alerts_open"),
            "green": none,
            "amber": _("Open alerts, no incident"),
            "red": _("An incident open"),
            "grey": DASH,
        },
        {
            "subject": metric_label("board_review"),
            "green": _("Yes"),
            "amber": _("No"),
            "red": DASH,
            "grey": DASH,
        },
    ]


# --- Context -----------------------------------------------------------------------------------


def _coverage(content: Mapping[str, Any], language: str, governance) -> dict[str, Any]:
    table = mapping.coverage(governance, content.get("evidenced") or (), language)
    for principle in table["principles"]:
        for row in principle["sources"]:
            row["label"] = source_label(row["source"])
    for domain in table["domains"]:
        for item in domain["items"]:
            item["level_label"] = level_name(item["level"])
            for row in item["sources"]:
                row["label"] = source_label(row["source"])
    return table


def level_name(level: str) -> str:
    """basic / desirable: the FSA guideline's two levels of an item."""
    return {"basic": _("Basic"), "desirable": _("Desirable")}.get(level, level)


def _principle_labels(governance, language: str) -> dict[str, str]:
    return {principle.key: principle.label(language) for principle in governance.principles}


def context(
    content: Mapping[str, Any], language: str, governance: mapping.GovernanceMapping | None = None
) -> dict[str, Any]:
    """What the PDF template is given (call with the language active)."""
    governance = governance or mapping.load()
    name, other_name = organisation_name(content.get("organisation") or {}, language)
    daily = content["trends"]["daily"]
    controls = [
        {
            "key": row["key"],
            "label": str(CONTROL_LABELS.get(row["key"], row["key"])),
            "status": row["status"],
            "now": percent(row["now"]),
            "before": percent(row["before"]),
            "tile_now": _rag(row["status"], percent(row["now"]), language),
            "tile_before": _rag(row["status_before"], percent(row["before"]), language),
            "sparkline": _sparkline(
                f"control_passing.{row['key']}",
                daily.get(f"control_passing.{row['key']}", []),
                language,
            ),
        }
        for row in content["controls"]
    ]
    labels = _principle_labels(governance, language)
    principles = []
    for row in content["principles"]:
        drivers = [
            source_label(source["source"])
            for source in row["sources"]
            if source["status"] == row["status"] and row["status"] in ("red", "amber")
        ]
        principles.append(
            {
                "key": row["key"],
                "label": labels.get(row["key"], row["key"]),
                "status": row["status"],
                "tile_now": _rag(row["status"], "", language),
                "tile_before": _rag(row["status_before"], "", language),
                "drivers": drivers,
            }
        )
    summary_trends = [
        {
            "label": metric_label(key),
            "chart": _trend_chart(key, daily.get(key, []), language, width=210, height=90),
        }
        for key in ("vulnerabilities_overdue", "kev_open", "supplier_spof")
    ]
    quarters = content["trends"]["quarters"]
    quarterly = content["trends"]["quarterly"]
    trends = [
        {
            "label": metric_label(key),
            "chart": _trend_chart(key, values, language, width=320, height=120),
            "quarters": [
                show(value, SHARE if _is_share(key) else COUNT)
                for _day, value in quarterly.get(key, [])
            ],
        }
        for key, values in daily.items()
    ]
    decisions = [
        {**decision_text(decision, language), "kind": decision.get("kind", "")}
        for decision in content["decisions"][: pack.MAX_DECISIONS]
    ]
    sampled = content.get("sampled") or {}
    return {
        "language": language,
        "organisation_name": name,
        "organisation_other_name": other_name,
        "period": period_text(content["period"]),
        "previous": period_text(content["previous"]),
        "has_samples": bool(sampled.get("last_day")),
        "sampled_day": day_text(sampled.get("last_day")),
        "sampled_day_before": day_text(sampled.get("last_day_before")),
        "overall_tile": _rag(content["overall"], _("Overall status"), language),
        "overall": content["overall"],
        "controls": controls,
        "principles": principles,
        "summary_trends": summary_trends,
        "decisions": decisions,
        "figures": _shown_figures(content, language),
        "trends": trends,
        "quarter_heads": [day_text(quarter["to"]) for quarter in quarters],
        "coverage": _coverage(content, language, governance),
        "mapping_note": governance.note.get(language),
        "mapping_documents": [
            {"title": d.title.get(language), "publisher": d.publisher.get(language)}
            for d in governance.documents
        ],
        "mapping_version": content.get("mapping_version", ""),
        "coverage_version": governance.version,
        "version_differs": governance.version != content.get("mapping_version"),
        "rules": rules(),
        "control_green": percent(pack.CONTROL_GREEN),
        "control_amber": percent(pack.CONTROL_AMBER),
        "max_decisions": pack.MAX_DECISIONS,
        "digest": content.get("digest", ""),
        "status_words": {status: status_word(status, language) for status in pack.STATUSES},
    }


# --- Outputs -----------------------------------------------------------------------------------


def pdf(
    content: Mapping[str, Any],
    language: str,
    *,
    governance: mapping.GovernanceMapping | None = None,
) -> bytes:
    """The board pack as an A4 PDF: the one-page summary, then appendices A (figures), B (trends),
    C (governance coverage) and D (how the statuses are decided); the digest on every page."""
    from mamori.core.pdf import render_pdf  # WeasyPrint is imported only when a PDF is made

    _check(content, language)
    with translation.override(language):
        data = context(content, language, governance)
    weasyprint_log = logging.getLogger("weasyprint")
    weasyprint_log.addFilter(_same_chart_twice)
    try:
        return render_pdf(TEMPLATE, data, language)
    finally:
        weasyprint_log.removeFilter(_same_chart_twice)


def _same_chart_twice(record: logging.LogRecord) -> bool:
    """Drops WeasyPrint's warning about a chart's ids seen twice: charts.py derives them from
    the chart's content, so two equal tiles (two controls green at 100 %) share them, as
    designed; any other warning is kept."""
    message = record.getMessage()
    return not (message.startswith("Anchor defined twice") and "mamori-chart-" in message)


def xlsx(
    content: Mapping[str, Any],
    language: str,
    *,
    governance: mapping.GovernanceMapping | None = None,
) -> bytes:
    """The board pack's figures as a workbook: sheets summary, figures, trends (daily, a column a
    metric), decisions and coverage. Byte-identical for the same content and language."""
    _check(content, language)
    with translation.override(language):
        return _workbook(content, language, governance or mapping.load())


def _workbook(content: Mapping[str, Any], language: str, governance) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.writer.excel import ExcelWriter

    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    book = Workbook()
    book.remove(book.active)

    def sheet(title: str, head: Sequence[str], widths: Sequence[int], header_row: int = 1):
        ws = book.create_sheet(title)
        for column, (text, width) in enumerate(zip(head, widths, strict=True), start=1):
            cell = put(ws, header_row, column, text)
            cell.font = bold
            ws.column_dimensions[cell.column_letter].width = width
        ws.freeze_panes = ws.cell(row=header_row + 1, column=2 if header_row == 1 else 1)
        return ws

    def put(ws, row: int, column: int, value: Any, kind: str = TEXT):
        if kind == FLAG and value is not None:
            value = _("Yes") if value else _("No")
        if isinstance(value, str):
            value = str(value)  # a lazy or safe string: openpyxl takes plain str only
        cell = ws.cell(row=row, column=column, value=value)
        if isinstance(value, str):
            # openpyxl stores a text starting with "=" as a formula: an organisation's name
            # must stay the text it is, never run in the reader's spreadsheet.
            cell.data_type = "s"
        elif kind in XLSX_FORMATS and isinstance(value, int | float):
            cell.number_format = XLSX_FORMATS[kind]
        return cell

    name, _other = organisation_name(content.get("organisation") or {}, language)
    words = {status: status_word(status, language) for status in pack.STATUSES}

    # Summary: the pack's identity, then a status a control and a principle, now and before.
    head = [
        _("Kind"),
        _("Key"),
        _("Name"),
        _("Status (this period)"),
        _("Status (previous period)"),
        _("Hosts passing (this period)"),
        _("Hosts passing (previous period)"),
    ]
    facts = [
        (_("Cyber hygiene report to the board"), ""),
        (_("Organisation"), name),
        (_("Period"), period_text(content["period"])),
        (_("Previous period"), period_text(content["previous"])),
        (_("Figures as of"), day_text((content.get("sampled") or {}).get("last_day"))),
        (_("Overall status"), words.get(content["overall"], content["overall"])),
        (_("Digest (SHA-256)"), content.get("digest", "")),
        (_("Governance mapping version"), content.get("mapping_version", "")),
    ]
    header_row = len(facts) + 2
    ws = sheet(_("Summary for the board"), head, [14, 30, 36, 18, 18, 18, 18], header_row)
    for row, (label, value) in enumerate(facts, start=1):
        put(ws, row, 1, label).font = bold
        put(ws, row, 2, value)
    row = header_row
    for control in content["controls"]:
        row += 1
        put(ws, row, 1, _("Control"))
        put(ws, row, 2, control["key"])
        put(ws, row, 3, str(CONTROL_LABELS.get(control["key"], control["key"])))
        put(ws, row, 4, words.get(control["status"]))
        put(ws, row, 5, words.get(control["status_before"]))
        put(ws, row, 6, control["now"], SHARE)
        put(ws, row, 7, control["before"], SHARE)
    labels = _principle_labels(governance, language)
    for principle in content["principles"]:
        row += 1
        put(ws, row, 1, _("Governance Code principle"))
        put(ws, row, 2, principle["key"])
        put(ws, row, 3, labels.get(principle["key"], principle["key"]))
        put(ws, row, 4, words.get(principle["status"]))
        put(ws, row, 5, words.get(principle["status_before"]))

    # Figures: every metric, an object's parts on rows of their own.
    ws = sheet(
        _("Figures"),
        [
            _("Key"),
            _("Figure"),
            _("Item"),
            _("This period"),
            _("Previous period"),
            _("Status (this period)"),
            _("Status (previous period)"),
        ],
        [34, 44, 34, 16, 16, 18, 18],
    )
    row = 1
    for section in figures(content):
        for metric in section["metrics"]:
            for part in metric["rows"]:
                row += 1
                put(ws, row, 1, metric["key"])
                put(ws, row, 2, metric["label"])
                put(ws, row, 3, part["label"])
                put(ws, row, 4, part["now"], part["kind"])
                put(ws, row, 5, part["before"], part["kind"])
                put(ws, row, 6, words.get(metric["status"]))
                put(ws, row, 7, words.get(metric["status_before"]))

    # Trends: the daily series, a row a date and a column a metric.
    daily = content["trends"]["daily"]
    keys = list(daily)
    ws = sheet(_("Trends"), [_("Date"), *map(metric_label, keys)], [12, *[18] * len(keys)])
    for column in range(2, len(keys) + 2):
        ws.cell(row=1, column=column).alignment = wrap
    by_day: dict[str, dict[str, Any]] = {}
    for key in keys:
        for day, value in daily[key]:
            by_day.setdefault(day, {})[key] = value
    for row, day in enumerate(sorted(by_day), start=2):
        cell = ws.cell(row=row, column=1, value=dt.date.fromisoformat(day))
        cell.number_format = "yyyy-mm-dd"
        for column, key in enumerate(keys, start=2):
            put(ws, row, column, by_day[day].get(key), SHARE if _is_share(key) else COUNT)

    # Decisions: what the board is asked to decide, with the facts each is written from.
    ws = sheet(
        _("Decisions for the board"),
        ["#", _("Kind"), _("What the board is asked to decide"), _("Why it matters"), _("Facts")],
        [5, 24, 60, 80, 40],
    )
    for row, decision in enumerate(content["decisions"], start=2):
        text = _decision_text(decision)
        put(ws, row, 1, row - 1)
        put(ws, row, 2, decision.get("kind", ""))
        put(ws, row, 3, text["title"]).alignment = wrap
        put(ws, row, 4, text["why"]).alignment = wrap
        facts_json = {key: value for key, value in decision.items() if key != "kind"}
        put(ws, row, 5, json.dumps(facts_json, sort_keys=True, ensure_ascii=False))

    # Coverage: the governance mapping's table, principle by principle and item by item.
    table = _coverage(content, language, governance)
    ws = sheet(
        _("Coverage"),
        [
            _("Framework"),
            _("Principle or domain"),
            _("Item"),
            _("Description"),
            _("Level"),
            _("Evidenced"),
            _("Evidence sources"),
        ],
        [26, 30, 10, 60, 14, 12, 80],
    )
    yes, no = _("Yes"), _("No")
    evidenced, not_evidenced = _("evidenced"), _("not evidenced")

    def sources_text(rows) -> str:
        return "\n".join(
            _("%(source)s: %(evidenced)s")
            % {"source": r["label"], "evidenced": evidenced if r["evidenced"] else not_evidenced}
            for r in rows
        )

    row = 1
    for principle in table["principles"]:
        row += 1
        put(ws, row, 1, _("Cyber Governance Code of Practice"))
        put(ws, row, 2, f"{principle['key']}. {principle['label']}")
        put(ws, row, 3, principle["key"])
        put(ws, row, 4, principle["rationale"]).alignment = wrap
        put(ws, row, 6, yes if principle["evidenced"] else no)
        put(ws, row, 7, sources_text(principle["sources"]) or DASH).alignment = wrap
    for domain in table["domains"]:
        for item in domain["items"]:
            row += 1
            put(ws, row, 1, _("FSA cyber security guidelines"))
            put(ws, row, 2, domain["label"])
            put(ws, row, 3, item["id"])
            put(ws, row, 4, item["label"]).alignment = wrap
            put(ws, row, 5, item["level_label"])
            put(ws, row, 6, yes if item["evidenced"] else no)
            put(ws, row, 7, sources_text(item["sources"]) or DASH).alignment = wrap

    # The document's dates are the period's end, not the time of rendering.
    stamp = dt.datetime.combine(dt.date.fromisoformat(content["period"]["to"]), dt.time())
    book.properties.creator = "Mamori"
    book.properties.lastModifiedBy = "Mamori"
    book.properties.title = f"{_('Cyber hygiene report to the board')} — {name}"
    book.properties.created = stamp
    book.properties.modified = stamp
    book.properties.language = language
    raw = io.BytesIO()
    # ExcelWriter rather than Workbook.save, which sets "modified" to now.
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(book, archive).write_data()
    return _restamp(raw.getvalue(), stamp)


def _restamp(data: bytes, stamp: dt.datetime) -> bytes:
    """The zip again with every part dated ``stamp`` (zipfile dates a part with the time it was
    written), in the same order and compression."""
    out = io.BytesIO()
    date_time = (max(stamp.year, 1980), stamp.month, stamp.day, 0, 0, 0)
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            part = zipfile.ZipInfo(info.filename, date_time=date_time)
            part.compress_type = zipfile.ZIP_DEFLATED
            part.external_attr = 0o600 << 16
            target.writestr(part, source.read(info))
    return out.getvalue()
