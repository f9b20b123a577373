"""Template helpers of the early-warning pages: times in the viewer's time zone with their UTC
value, and badges that say a severity or state in words as well as in colour."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import formats, timezone
from django.utils.html import format_html

register = template.Library()

SEVERITY_CSS = {"critical": "failed", "high": "failed", "medium": "warn"}
STATE_CSS = {
    "new": "warn",
    "acknowledged": "submitted",
    "mitigated": "passed",
    "closed": "passed",
    "verified": "passed",
    "pending": "warn",
    "refused": "failed",
}


@register.simple_tag
def moment(value) -> str:
    """``<time>`` showing the moment in the active time zone (the viewer's), with its zone's
    abbreviation; the ``datetime`` attribute keeps the UTC value stored."""
    if not isinstance(value, dt.datetime):
        return "—"
    local = timezone.localtime(value)
    stored = value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return format_html(
        '<time datetime="{}">{} {}</time>',
        stored,
        formats.date_format(local, "DATETIME_FORMAT"),
        local.tzname(),
    )


@register.filter
def severity_css(severity: str) -> str:
    return SEVERITY_CSS.get(severity, "")


@register.filter
def state_css(state: str) -> str:
    return STATE_CSS.get(state, "")
