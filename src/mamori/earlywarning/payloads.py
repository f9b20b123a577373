"""The body of a webhook delivery: one alert event as ``mamori.alert-event/1`` JSON.

The schema is ``schemas/alert-event.schema.json`` (linked from docs/), explained in
docs/earlywarning-webhooks.md. New keys may be added to version 1; existing keys keep their
meaning and type. Times are RFC 3339 in UTC with a ``Z``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from pathlib import Path

import orjson

from mamori.core.site import absolute_url
from mamori.earlywarning.models import Alert, Asset
from mamori.organisations.models import Organisation

SCHEMA = "mamori.alert-event/1"
SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "alert-event.schema.json"


def alert_path(alert_id: int) -> str:
    """The alert's page in Mamori (the early-warning pages' route)."""
    return f"/earlywarning/alerts/{alert_id}/"


def alert_url(alert_id: int) -> str:
    return absolute_url(alert_path(alert_id))


def inbox_url() -> str:
    return absolute_url("/earlywarning/alerts/")


def utc(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _organisation(organisation: Organisation) -> dict:
    return {
        "id": organisation.pk,
        "name_ja": organisation.name_ja,
        "name_en": organisation.name_en,
        "corporate_number": organisation.corporate_number or None,
    }


def _asset(asset: Asset | None) -> dict | None:
    if asset is None:
        return None
    return {
        "id": asset.pk,
        "kind": asset.kind,
        "value": asset.value,
        "include_subdomains": asset.include_subdomains,
    }


def alert_document(alert: Alert, *, asset: Asset | None) -> dict:
    return {
        "id": alert.pk,
        "url": alert_url(alert.pk),
        "type": alert.type,
        "category": alert.category,
        "state": alert.state,
        "severity": alert.severity,
        "control": alert.control or None,
        "asset": _asset(asset),
        "host_id": alert.host_id,
        "ip": alert.ip or None,
        "port": alert.port,
        "hostname": alert.hostname or None,
        "vulnerability": {
            "cve": alert.cve or None,
            "advisory": alert.advisory or None,
            "package": alert.package or None,
            "installed_version": alert.installed_version or None,
            "kev": alert.kev,
            "kev_due": alert.kev_due.isoformat() if alert.kev_due else None,
            "epss": alert.epss,
            "epss_percentile": alert.epss_percentile,
        },
        "grading": {"reliability": alert.reliability, "credibility": alert.credibility},
        "tlp": alert.tlp,
        "first_seen": utc(alert.first_seen),
        "last_seen": utc(alert.last_seen),
        "times_seen": alert.times_seen,
        "due_at": utc(alert.due_at),
        "reopened": alert.reopened,
        "evidence": alert.evidence if isinstance(alert.evidence, dict) else {},
    }


def event_body(
    alert: Alert,
    event: str,
    *,
    organisation: Organisation,
    asset: Asset | None,
    occurred_at: dt.datetime,
    change: dict | None = None,
) -> str:
    """The JSON text of one event. ``change`` (state changes only): ``{from, to, reason}``."""
    document = {
        "schema": SCHEMA,
        "id": str(uuid.uuid4()),
        "event": event,
        "occurred_at": utc(occurred_at),
        "organisation": _organisation(organisation),
        "alert": alert_document(alert, asset=asset),
        "change": change,
    }
    # orjson: compact UTF-8 like json.dumps(ensure_ascii=False, separators=(",", ":")), several
    # times faster, and a KEV entry builds thousands of these inside the raise's transaction.
    return orjson.dumps(document).decode("utf-8")


def related(alerts: Iterable[Alert]) -> tuple[dict[int, Organisation], dict[int, Asset]]:
    """The organisations and assets of these alerts, each read once."""
    alerts = list(alerts)
    organisations = Organisation.objects.in_bulk({alert.organisation_id for alert in alerts})
    asset_ids = {alert.asset_id for alert in alerts if alert.asset_id}
    assets = Asset.objects.in_bulk(asset_ids) if asset_ids else {}
    return organisations, assets
