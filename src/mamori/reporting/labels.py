"""The names of the metrics and of the Cyber Governance Code's principles on the pages, in the
viewer's language."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from mamori.core.choices import CONTROL_LABELS

METRIC_LABELS = {
    "certificate_level": _("Certificate level"),
    "certificate_days_to_expiry": _("Days until the certificate expires"),
    "hosts_in_scope": _("Hosts in scope"),
    "hosts_checked_in": _("Hosts checked in within the window"),
    **{f"control_passing.{key}": label for key, label in CONTROL_LABELS.items()},
    "vulnerabilities_open": _("Open vulnerabilities"),
    "vulnerabilities_overdue": _("Vulnerabilities past the deadline"),
    "kev_open": _("Known exploited vulnerabilities open"),
    "kev_open_age_days": _("Age of open known exploited vulnerabilities (days)"),
    "remediation_days": _("Time to remediate (days)"),
    "supplier_coverage_by_tier": _("Supplier survey coverage by tier"),
    "supplier_spof": _("Single points of failure among suppliers"),
    "supplier_uncertified_on_critical_path": _("Uncertified suppliers on critical paths"),
    "alerts_open": _("Open early-warning alerts"),
    "alerts_raised": _("Alerts raised on the day"),
    "alerts_time_to_acknowledge": _("Time to acknowledge alerts (hours)"),
    "alerts_time_to_mitigate": _("Time to mitigate alerts (hours)"),
    "board_review": _("Latest board review"),
}
PRINCIPLE_LABELS = {
    "A": _("A. Risk management"),
    "B": _("B. Strategy"),
    "C": _("C. People"),
    "D": _("D. Incident planning, response and recovery"),
    "E": _("E. Assurance and oversight"),
}
