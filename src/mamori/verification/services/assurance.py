"""Continuous assurance: of an organisation's in-scope hosts, how many checked in recently and
how many of those pass each control. Shown beside the certificate (page and API)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from mamori.core.choices import CONTROL_LABELS
from mamori.verification.models import CONTROLS, Host

DEFAULT_CHECKIN_DAYS = 7


def checkin_days() -> int:
    return int(getattr(settings, "MAMORI_ASSURANCE_CHECKIN_DAYS", DEFAULT_CHECKIN_DAYS))


@dataclass(frozen=True)
class Assurance:
    window_days: int
    in_scope: int
    checked_in: int
    passing: dict[str, int]

    @property
    def rows(self) -> list[dict]:
        return [
            {"control": control, "label": CONTROL_LABELS[control], "passing": self.passing[control]}
            for control in CONTROLS
        ]

    def as_dict(self) -> dict:
        return {
            "window_days": self.window_days,
            "in_scope_hosts": self.in_scope,
            "checked_in": self.checked_in,
            "passing": dict(self.passing),
        }


def continuous_assurance(
    organisation_id: int, *, now: dt.datetime | None = None, days: int | None = None
) -> Assurance:
    """Of the organisation's in-scope hosts: how many checked in (uploaded new evidence) within
    the last ``days``, and how many of those pass each control on their latest evaluation. A
    host that has not checked in within the window does not count as passing: old evidence
    says nothing about now. One query."""
    days = checkin_days() if days is None else days
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    recent = Q(last_seen__gte=cutoff)
    figures = Host.objects.filter(organisation_id=organisation_id, in_scope=True).aggregate(
        in_scope=Count("pk"),
        checked_in=Count("pk", filter=recent),
        **{
            control: Count("pk", filter=recent & Q(**{f"latest_evaluation__{control}": "pass"}))
            for control in CONTROLS
        },
    )
    return Assurance(
        window_days=days,
        in_scope=figures["in_scope"],
        checked_in=figures["checked_in"],
        passing={control: figures[control] for control in CONTROLS},
    )
