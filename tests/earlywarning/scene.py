"""Building blocks for the early-warning page, API and access tests: feeds, verified claims and
alerts raised through the real services (``registry``, ``alerts.upsert``)."""

from __future__ import annotations

import datetime as dt
import itertools

from django.utils import timezone

from mamori.earlywarning import alerts, registry
from mamori.earlywarning.models import Alert, Asset, Feed, FeedKind

# Report values an attacker controls: they must come back as text, never as markup or formulas.
HOSTILE_EVIDENCE = {
    "timestamp": "2026-03-02 01:02:03",
    "ip": "198.51.100.7",
    "port": "3389",
    "tag": "<script>alert('tag')</script>",
    "hostname": '=HYPERLINK("https://evil.example/","open me")',
    "note": '"><img src=x onerror=alert(2)>',
}
_keys = itertools.count(1)


def network_feed(name: str = "scan_rdp", **fields) -> Feed:
    defaults = {"kind": FeedKind.NETWORK, "reliability": "A", "credibility": 2, "tlp": "amber"}
    feed, _created = Feed.objects.get_or_create(name=name, defaults={**defaults, **fields})
    return feed


def verified_asset(user, access, organisation, kind: str, value: str, **options) -> Asset:
    """A claim registered by ``user`` and approved (an address block or AS number) by the
    operator's command line, with a reason."""
    asset = registry.register(user, access, organisation, kind=kind, value=value, **options)
    if kind != "domain":
        asset = registry.approve(None, None, asset, reason="RIR record names the organisation")
    return asset


def raise_alert(
    organisation,
    *,
    feed: Feed | None = None,
    asset: Asset | None = None,
    type: str = "exposure",
    category: str = "scan_rdp",
    severity: str = "high",
    control: str = "firewalls",
    evidence: dict | None = None,
    seen_at: dt.datetime | None = None,
    due_at: dt.datetime | None = None,
    **fields,
) -> Alert:
    """One alert, raised as a feed raises it (de-duplicated by a key of its own)."""
    seen = seen_at or timezone.now() - dt.timedelta(hours=2)
    sighting = alerts.Sighting(
        organisation_id=organisation.pk,
        type=type,
        key=alerts.alert_key("test", next(_keys)),
        category=category,
        seen_at=seen,
        severity=severity,
        control=control,
        asset_id=asset.pk if asset else None,
        evidence=evidence if evidence is not None else {"ip": "198.51.100.7", "port": "3389"},
        due_at=due_at,
        **fields,
    )
    result = alerts.upsert([sighting], feed=feed)
    (alert,) = result.new
    return Alert.objects.get(pk=alert.pk)
