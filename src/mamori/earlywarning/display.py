"""How an alert is shown to people: what it is called, what to do about it, its evidence as rows
of text, the grading of its source, and the viewer's time zone. Pages and the API both read
here, so a remediation text or a category name is written once.

Times are stored in UTC; pages show them in the viewer's time zone, Japan's by default. A
viewer may choose another (it is kept in the session) and every time on the page carries its
UTC value in ``<time datetime=...>``.
"""

from __future__ import annotations

import functools
import json
import zoneinfo
from collections.abc import Mapping

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mamori.earlywarning import ownership
from mamori.earlywarning.feeds import network
from mamori.earlywarning.feeds.errors import FeedError
from mamori.earlywarning.models import Alert, AlertType, Credibility, Reliability

TIME_ZONE_SESSION_KEY = "mamori_time_zone"
# Offered first when choosing a time zone; any other IANA name is accepted too.
COMMON_TIME_ZONES = (
    "Asia/Tokyo",
    "UTC",
    "Asia/Singapore",
    "Asia/Hong_Kong",
    "Asia/Shanghai",
    "Asia/Seoul",
    "Australia/Sydney",
    "Europe/London",
    "Europe/Paris",
    "America/New_York",
    "America/Los_Angeles",
)
# A cell of evidence longer than this is cut on the page (the API gives the whole value).
EVIDENCE_CELL_CHARS = 2000

# Remediation for alerts that do not come from a network report type. Each is {"ja", "en"}.
SOFTWARE_REMEDIATION = {
    "ja": "この脆弱性を修正したバージョンにパッケージを更新してください。更新できない場合は、"
    "影響を受けるサービスを止めるか、インターネットや他のシステムからの接続を制限し、ベンダーの"
    "回避策を適用してください。CISA の既知の悪用された脆弱性（KEV）に載っているものは、"
    "カタログの期限までに更新してください。更新後にエージェントで証跡を送り直すと、"
    "アラートの状態を確認できます。",
    "en": "Update the package to a version that fixes this vulnerability. If you cannot update "
    "yet, stop the affected service or restrict connections to it from the internet and other "
    "systems, and apply the vendor's workaround. A vulnerability listed in CISA's Known "
    "Exploited Vulnerabilities catalogue must be fixed within the catalogue's deadline. After "
    "updating, send fresh evidence with the agent to confirm.",
}
SUPPLIER_REMEDIATION = {
    "ja": "委託先に連絡し、この問題への対応状況と完了予定を確認してください。重要な業務が"
    "この委託先だけに依存している場合は、代替手段や業務継続計画を確認してください。",
    "en": "Contact the supplier and ask how and by when they are dealing with this. If a critical "
    "service depends on this supplier alone, review your alternatives and continuity plan.",
}
GENERIC_REMEDIATION = {
    "ja": "証跡の内容を確認し、該当する機器やサービスを調査してください。対応が済んだら、"
    "このアラートを対応済みにしてください。",
    "en": "Review the evidence and investigate the device or service it names. When it has "
    "been dealt with, mark this alert as mitigated.",
}


def language() -> str:
    """``ja`` or ``en``: the texts below exist in these two."""
    return "en" if (translation.get_language() or "ja").startswith("en") else "ja"


def _report_kind(category: str) -> network.ReportKind | None:
    try:
        return network.report_kind(category)
    except FeedError:
        return None


def remediation_texts(alert: Alert) -> Mapping[str, str]:
    """What to do, in Japanese and English: a network alert's by its report type (its
    ``category``), a software vulnerability's and a supplier notice's by their type."""
    if alert.type == AlertType.SOFTWARE_VULNERABILITY:
        return SOFTWARE_REMEDIATION
    if alert.type == AlertType.SUPPLIER_EXPOSURE:
        return SUPPLIER_REMEDIATION
    kind = _report_kind(alert.category)
    return kind.remediation if kind is not None else GENERIC_REMEDIATION


def remediation(alert: Alert) -> str:
    return remediation_texts(alert)[language()]


def category_label(alert: Alert) -> str:
    """What the alert is about, in the page's language: a network report type's name, the
    vulnerability and package of a software alert, the service a supplier notice concerns."""
    if alert.type == AlertType.SOFTWARE_VULNERABILITY:
        what = alert.cve or alert.advisory or alert.category
        return f"{what} — {alert.package}" if alert.package else what
    if alert.type == AlertType.SUPPLIER_EXPOSURE:
        evidence = alert.evidence if isinstance(alert.evidence, Mapping) else {}
        name = evidence.get("service_name_en" if language() == "en" else "service_name")
        label = str(AlertType(alert.type).label)
        return f"{label}: {name}" if isinstance(name, str) and name else label
    kind = _report_kind(alert.category)
    return kind.label[language()] if kind is not None else alert.category


def grading(alert: Alert) -> dict[str, str]:
    """The Admiralty grading: ``B2`` with what the letter and the number mean."""
    reliability = (
        Reliability(alert.reliability).label
        if alert.reliability in Reliability.values
        else alert.reliability
    )
    credibility = (
        Credibility(alert.credibility).label
        if alert.credibility in Credibility.values
        else str(alert.credibility)
    )
    return {"code": alert.grading, "reliability": reliability, "credibility": credibility}


def _cell(value) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def evidence_rows(evidence) -> list[tuple[str, str]]:
    """The evidence as (column, value) text pairs in the order they came, for a table. Values
    stay text: the page escapes them like any other text and nothing in them is followed,
    evaluated or turned into a link."""
    if not isinstance(evidence, Mapping):
        return [("", _cell(evidence))] if evidence not in (None, "", [], {}) else []
    rows = []
    for key, value in evidence.items():
        text = "" if value is None else _cell(value)
        if len(text) > EVIDENCE_CELL_CHARS:
            text = text[:EVIDENCE_CELL_CHARS] + "…"
        rows.append((str(key), text))
    return rows


@functools.cache
def _known_time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def valid_time_zone(name: str) -> bool:
    """An IANA time zone name this machine knows (no paths, no abbreviations like "JST")."""
    return name in _known_time_zones()


def viewer_time_zone(request) -> zoneinfo.ZoneInfo:
    """The time zone the viewer chose, else the site's (Japan)."""
    chosen = ""
    session = getattr(request, "session", None)
    if session is not None:
        chosen = session.get(TIME_ZONE_SESSION_KEY, "")
    name = chosen if chosen and valid_time_zone(chosen) else settings.TIME_ZONE
    return zoneinfo.ZoneInfo(name)


def last_check_message(asset) -> str:
    """The result of a domain's last DNS check in words (the claim keeps only its code)."""
    code = asset.last_check_result
    if not code or code not in ownership.OwnershipReason.__members__.values():
        return code or ""
    reason = ownership.OwnershipReason(code)
    return ownership.OwnershipResult(
        domain=asset.value,
        record_name=ownership.txt_record_name(asset.value),
        found=reason == ownership.OwnershipReason.FOUND,
        reason=reason,
        nameserver=settings.DNS_RESOLVER or _("the configured resolver"),
        timeout=float(settings.DNS_TIMEOUT_SECONDS),
    ).message


# --- the sector's figures (earlywarning.sector), as the scheme owner's page shows them ----------

# The age bands of open KEV exposure (sector.KEV_AGES labels) in words.
KEV_AGE_LABELS = {
    "0-7": gettext_lazy("0–7 days"),
    "8-14": gettext_lazy("8–14 days"),
    "15-30": gettext_lazy("15–30 days"),
    "31+": gettext_lazy("31 days or more"),
}


def report_label(alert_type: str, category: str) -> str:
    """A category's name without an alert at hand: a network report type's in the page's
    language, else the category as stored (a software alert's CVE or advisory, for example)."""
    if alert_type in (AlertType.SOFTWARE_VULNERABILITY, AlertType.SUPPLIER_EXPOSURE):
        return category
    kind = _report_kind(category)
    return kind.label[language()] if kind is not None else category


def _type_label(value: str) -> str:
    try:
        return str(AlertType(value).label)
    except ValueError:
        return value


def sector_tables(figures: Mapping) -> dict:
    """One part of a day's figures (the sector's, or one group's) as table rows: alerts raised
    and open by type, raised by type and category, time to acknowledge and to mitigate, open
    KEV exposure by age."""
    raised = figures.get("raised") or {}
    still_open = figures.get("open") or {}
    types = [value for value, _label in AlertType.choices]
    types += sorted((set(raised) | set(still_open)) - set(types))
    by_type = [
        {
            "type": _type_label(value),
            "raised": raised.get(value, 0),
            "open": still_open.get(value, 0),
        }
        for value in types
    ]
    by_category = []
    for key, count in (figures.get("raised_by_category") or {}).items():
        alert_type, _slash, category = key.partition("/")
        by_category.append(
            {
                "type": _type_label(alert_type),
                "category": report_label(alert_type, category),
                "raised": count,
            }
        )
    durations = [
        {"what": label, **(figures.get(key) or {})}
        for key, label in (
            ("time_to_acknowledge", _("Time to acknowledge")),
            ("time_to_mitigate", _("Time to mitigate")),
        )
    ]
    ages = figures.get("open_kev_by_age_days") or {}
    kev = [{"age": KEV_AGE_LABELS.get(band, band), "open": count} for band, count in ages.items()]
    return {
        "by_type": by_type,
        "by_category": by_category,
        "durations": durations,
        "kev": kev,
        "kev_total": sum(ages.values()),
    }
