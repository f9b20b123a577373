"""Samples with a cause, for the pack, page and dashboard tests: a year of days for an
organisation in which a control slips, a KEV finding stays open and the certificate nears its
expiry — written as the nightly run stores them (rows, then the day's seal)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from mamori.reporting import metrics
from mamori.reporting.models import DaySeal, MetricSample

FIRST = dt.date(2025, 10, 1)
LAST = dt.date(2026, 9, 30)  # the last finished quarter on 2026-12-07 is Q3 2026


def days(first: dt.date = FIRST, last: dt.date = LAST) -> Iterable[dt.date]:
    day = first
    while day <= last:
        yield day
        day += dt.timedelta(days=1)


def values_for(day: dt.date, *, strength: float = 1.0) -> dict[str, object]:
    """A bank's figures on ``day``: malware protection slips from August 2026 (a new build
    without the scanner), a KEV finding opens on 1 September and stays open, the certificate
    expires on 30 November 2026. ``strength`` scales how good the organisation is (peers)."""
    slipped = day >= dt.date(2026, 8, 1)
    kev_open = 1 if day >= dt.date(2026, 9, 1) else 0
    values = dict.fromkeys(metrics.METRIC_KEYS)
    values.update(
        {
            "certificate_level": "CE",
            "certificate_days_to_expiry": (dt.date(2026, 11, 30) - day).days,
            "hosts_in_scope": 20,
            "hosts_checked_in": 19,
            **{f"control_passing.{c}": round(0.95 * strength, 4) for c in metrics.CONTROLS},
            "control_passing.malware_protection": round((0.7 if slipped else 0.95) * strength, 4),
            "vulnerabilities_open": {"critical": kev_open, "high": 2, "medium": 5, "low": 1,
                                     "unknown": 0},
            "vulnerabilities_overdue": kev_open,
            "kev_open": kev_open,
            "kev_open_age_days": {
                "max": (day - dt.date(2026, 9, 1)).days if kev_open else None,
                "median": float((day - dt.date(2026, 9, 1)).days) if kev_open else None,
            },
            "remediation_days": {"count": 3, "median": 9.0, "p90": 20.0},
            "supplier_coverage_by_tier": {"1": {"suppliers": 4, "answered": 4, "share": 1.0}},
            "supplier_spof": 1,
            "supplier_uncertified_on_critical_path": 2,
            "alerts_open": dict.fromkeys(metrics.ALERT_TYPES, 0),
            "alerts_raised": 0,
            "alerts_time_to_acknowledge": {"count": 0, "median_hours": None, "p90_hours": None},
            "alerts_time_to_mitigate": {"count": 0, "median_hours": None, "p90_hours": None},
        }
    )  # fmt: skip
    return values


def store(
    organisations, first: dt.date = FIRST, last: dt.date = LAST, strengths=None, every: int = 1
) -> None:
    """The samples of ``organisations`` for every ``every``-th day back from ``last`` to
    ``first``, sealed (a week apart keeps a page test's year of figures small)."""
    strengths = strengths or {}
    rows = []
    for day in days(first, last):
        if (last - day).days % every:
            continue
        digests = {}
        for organisation in organisations:
            values = values_for(day, strength=strengths.get(organisation.pk, 1.0))
            digests[organisation.pk] = metrics.organisation_digest(values)
            rows += [
                MetricSample(organisation=organisation, day=day, metric=key, value=value)
                for key, value in values.items()
            ]
        DaySeal.objects.create(
            day=day,
            digest=metrics.day_digest(day, digests),
            organisation_digests={str(pk): digest for pk, digest in digests.items()},
            organisations=len(digests),
            sampled_at=dt.datetime.combine(day, dt.time(23), tzinfo=dt.UTC),
        )
    MetricSample.objects.bulk_create(rows, batch_size=5000)


def totp_code(user) -> str:
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"
