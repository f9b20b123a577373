"""Alerts: raising them from sightings (de-duplicated), and their lifecycle.

A *sighting* is one thing a feed saw about one organisation: an open service on its address, a
known-exploited package on its host. Sightings with the same key are one alert: the first
creates it (with a deadline to acknowledge), later ones move ``last_seen`` and count; a sighting
no newer than the alert's ``last_seen`` changes nothing, so importing the same report twice is
harmless. A mitigated or closed alert seen again (after it was mitigated or closed) reopens.

Lifecycle: new → acknowledged → mitigated → closed, and from any open state risk accepted (a
reason and an expiry) or false positive (a reason). Every change is an audit-trail entry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mamori.audit import services as audit
from mamori.core.bulk import insert_rows
from mamori.core.errors import MamoriError, NotAllowed, WrongState
from mamori.earlywarning import notify, permissions
from mamori.earlywarning.models import (
    Alert,
    AlertEvent,
    AlertState,
    AlertType,
    DeadlinePolicy,
    Feed,
)
from mamori.organisations.access import Access

# Hours to acknowledge, unless the scheme owner set others (DeadlinePolicy).
DEFAULT_ACKNOWLEDGE_HOURS = {
    AlertType.INCIDENT: 4,
    AlertType.NETWORK_ABUSE: 12,
    AlertType.EXPOSURE: 24,
    AlertType.SOFTWARE_VULNERABILITY: 24,
    AlertType.SUPPLIER_EXPOSURE: 24,
}
LOOKUP_CHUNK = 1000
REOPENING_STATES = frozenset({AlertState.MITIGATED, AlertState.CLOSED})


def alert_key(*parts: object) -> str:
    """The de-duplication key of what was seen (the caller names the parts that identify it)."""
    text = "\x1f".join("" if part is None else str(part) for part in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def acknowledge_hours() -> dict[str, int]:
    hours = dict(DEFAULT_ACKNOWLEDGE_HOURS)
    hours.update(DeadlinePolicy.objects.values_list("type", "acknowledge_hours"))
    return hours


@dataclass
class Sighting:
    organisation_id: int
    type: str
    key: str
    category: str
    seen_at: dt.datetime
    severity: str = "medium"
    control: str = ""
    asset_id: int | None = None
    host_id: int | None = None
    ip: str | None = None
    port: int | None = None
    hostname: str = ""
    cve: str = ""
    advisory: str = ""
    package: str = ""
    installed_version: str = ""
    kev: bool = False
    kev_due: dt.date | None = None
    epss: float | None = None
    epss_percentile: float | None = None
    evidence: dict = field(default_factory=dict)
    # When set, the deadline to acknowledge (a KEV entry's own due date, say).
    due_at: dt.datetime | None = None
    source_alert_id: int | None = None


@dataclass
class Upserted:
    new: list[Alert] = field(default_factory=list)
    updated: list[Alert] = field(default_factory=list)
    reopened: list[Alert] = field(default_factory=list)
    # The alert each sighting went to (None: older than what the alert already knew).
    alert_of: dict[tuple[int, str], Alert] = field(default_factory=dict)


def _merge(sightings: Iterable[Sighting]) -> dict[tuple[int, str], list[Sighting]]:
    grouped: dict[tuple[int, str], list[Sighting]] = {}
    for sighting in sightings:
        grouped.setdefault((sighting.organisation_id, sighting.key), []).append(sighting)
    for group in grouped.values():
        group.sort(key=lambda item: item.seen_at)
    return grouped


def _by_key(pairs: Iterable[tuple[int, str]], alerts) -> Iterator[tuple[tuple[int, str], Alert]]:
    """The alerts of ``alerts`` (a queryset) for these (organisation, key) pairs: looked up by
    key in chunks, one query per thousand whatever the number of organisations."""
    wanted = set(pairs)
    distinct = sorted({key for _organisation, key in wanted})
    for start in range(0, len(distinct), LOOKUP_CHUNK):
        for alert in alerts.filter(key__in=distinct[start : start + LOOKUP_CHUNK]):
            pair = (alert.organisation_id, alert.key)
            if pair in wanted:
                yield pair, alert


def known(pairs: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which of these (organisation, key) pairs already have an alert, in any state."""
    return {pair for pair, _alert in _by_key(pairs, Alert.objects.only("organisation_id", "key"))}


def _existing(keys: Sequence[tuple[int, str]]) -> dict[tuple[int, str], Alert]:
    """The alerts of these (organisation, key) pairs, locked."""
    return dict(_by_key(keys, Alert.objects.select_for_update()))


def upsert(sightings: Iterable[Sighting], *, feed: Feed | None, now=None) -> Upserted:
    """Raise or update the alerts of these sightings, in the caller's transaction. The caller
    then passes the result to ``notify.alerts_raised`` in the same transaction (once it has
    finished the alerts: supplier notices get their TLP after this), for e-mail and webhooks."""
    now = now or timezone.now()
    grouped = _merge(sightings)
    if not grouped:
        return Upserted()
    hours = acknowledge_hours()
    result = Upserted()
    existing = _existing(list(grouped))
    to_create: list[Alert] = []
    to_update: list[Alert] = []
    for group_key, group in grouped.items():
        latest = group[-1]
        alert = existing.get(group_key)
        if alert is None:
            alert = _new_alert(latest, group, feed, hours, now)
            to_create.append(alert)
            result.new.append(alert)
            result.alert_of[group_key] = alert
            continue
        newer = [item for item in group if item.seen_at > alert.last_seen]
        if not newer:
            continue  # already known: the same report read again
        reopen_after = alert.closed_at or alert.mitigated_at
        alert.last_seen = newer[-1].seen_at
        alert.times_seen += len({item.seen_at for item in newer})
        alert.evidence = newer[-1].evidence
        _refresh_enrichment(alert, newer[-1])
        sharper = newer[-1].due_at
        if (
            sharper is not None
            and alert.is_open
            and (alert.due_at is None or sharper < alert.due_at)
        ):
            alert.due_at = sharper  # a stricter deadline now (a finding listed in KEV since)
        if alert.state in REOPENING_STATES and (
            reopen_after is None or newer[-1].seen_at > reopen_after
        ):
            alert.state = AlertState.NEW
            alert.state_changed_at = now
            alert.reopened += 1
            alert.acknowledged_at = alert.mitigated_at = alert.closed_at = None
            alert.due_at = _due(latest, hours, now)
            result.reopened.append(alert)
        to_update.append(alert)
        result.updated.append(alert)
        result.alert_of[group_key] = alert
    # COPY on PostgreSQL: one KEV entry can raise thousands of alerts at once, and a multi-row
    # INSERT of them spends seconds quoting their evidence in Python. With their ids: the audit
    # entries, the events and the callers name them.
    insert_rows(Alert, to_create, with_ids=True)
    insert_rows(
        AlertEvent,
        [AlertEvent(alert=alert, at=now, state=AlertState.NEW) for alert in to_create]
        + [AlertEvent(alert=alert, at=now, state=AlertState.NEW) for alert in result.reopened],
    )
    if to_update:
        Alert.objects.bulk_update(
            to_update,
            [
                "last_seen", "times_seen", "evidence", "state", "state_changed_at", "reopened",
                "acknowledged_at", "mitigated_at", "closed_at", "due_at", "epss",
                "epss_percentile", "kev", "kev_due", "severity",
            ],
            batch_size=500,
        )  # fmt: skip
    audit.record_many(
        None,
        [
            audit.Change(
                "earlywarning.alert.raise", alert, alert.organisation_id,
                details={"type": alert.type, "category": alert.category, "key": alert.key},
            )
            for alert in result.new
        ]
        + [
            audit.Change(
                "earlywarning.alert.reopen", alert, alert.organisation_id,
                details={"type": alert.type, "category": alert.category, "key": alert.key},
            )
            for alert in result.reopened
        ],
    )  # fmt: skip
    return result


def _due(sighting: Sighting, hours: dict[str, int], now) -> dt.datetime:
    if sighting.due_at is not None:
        return sighting.due_at
    return now + dt.timedelta(hours=hours.get(sighting.type, 24))


def _new_alert(latest: Sighting, group: list[Sighting], feed, hours, now) -> Alert:
    alert = Alert(
        organisation_id=latest.organisation_id,
        type=latest.type,
        key=latest.key,
        category=latest.category[:80],
        severity=latest.severity,
        control=latest.control,
        feed=feed,
        asset_id=latest.asset_id,
        host_id=latest.host_id,
        ip=latest.ip,
        port=latest.port,
        hostname=latest.hostname[:255],
        cve=latest.cve,
        advisory=latest.advisory[:100],
        package=latest.package[:200],
        installed_version=latest.installed_version[:200],
        evidence=latest.evidence,
        first_seen=group[0].seen_at,
        last_seen=latest.seen_at,
        times_seen=len({item.seen_at for item in group}),
        due_at=_due(latest, hours, now),
        source_alert_id=latest.source_alert_id,
    )
    _refresh_enrichment(alert, latest)
    if feed is not None:
        alert.reliability = feed.reliability
        alert.credibility = feed.credibility
        alert.tlp = feed.tlp
    return alert


def _refresh_enrichment(alert: Alert, sighting: Sighting) -> None:
    alert.kev = alert.kev or sighting.kev
    alert.kev_due = sighting.kev_due or alert.kev_due
    if sighting.epss is not None:
        alert.epss = sighting.epss
        alert.epss_percentile = sighting.epss_percentile
    alert.severity = sighting.severity or alert.severity


# --- lifecycle ----------------------------------------------------------------------------------

# Which states each action may start from.
ALLOWED_FROM = {
    AlertState.ACKNOWLEDGED: {AlertState.NEW},
    AlertState.MITIGATED: {AlertState.NEW, AlertState.ACKNOWLEDGED},
    AlertState.CLOSED: {AlertState.NEW, AlertState.ACKNOWLEDGED, AlertState.MITIGATED},
    AlertState.RISK_ACCEPTED: {AlertState.NEW, AlertState.ACKNOWLEDGED, AlertState.MITIGATED},
    AlertState.FALSE_POSITIVE: {AlertState.NEW, AlertState.ACKNOWLEDGED, AlertState.MITIGATED},
    AlertState.NEW: {
        AlertState.MITIGATED,
        AlertState.CLOSED,
        AlertState.RISK_ACCEPTED,
        AlertState.FALSE_POSITIVE,
    },
}
NEEDS_REASON = frozenset({AlertState.RISK_ACCEPTED, AlertState.FALSE_POSITIVE, AlertState.NEW})
LONGEST_RISK_ACCEPTANCE = dt.timedelta(days=366)


@transaction.atomic
def change_state(
    actor,
    access: Access,
    alert: Alert,
    state: str,
    *,
    reason: str = "",
    until: dt.date | None = None,
) -> Alert:
    """Move an alert along its lifecycle (``state`` NEW reopens a dismissed or closed one)."""
    if not permissions.can_handle(access, alert):
        raise NotAllowed(
            _("Only the organisation's administrators and contributors handle its alerts.")
        )
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    try:
        target = AlertState(state)
    except ValueError:
        raise MamoriError(
            _("'%(state)s' is not a state of an alert.") % {"state": str(state)[:40]}, field="state"
        ) from None
    if alert.state not in ALLOWED_FROM[target]:
        raise WrongState(
            _("An alert that is %(current)s cannot become %(target)s.")
            % {"current": alert.get_state_display(), "target": target.label}
        )
    reason = (reason or "").strip()
    if target in NEEDS_REASON and not reason:
        raise MamoriError(_("Give a reason."), field="reason")
    now = timezone.now()
    if target == AlertState.RISK_ACCEPTED:
        today = timezone.localdate()
        if until is None or until <= today or until > today + LONGEST_RISK_ACCEPTANCE:
            raise MamoriError(
                _("A risk is accepted until a date after today and at most a year ahead."),
                field="until",
            )
        alert.risk_accepted_until = until
    before = alert.state
    alert.state = target
    alert.state_changed_at = now
    alert.changed_by = actor
    if reason:
        alert.reason = reason[:2000]
    if target == AlertState.ACKNOWLEDGED:
        alert.acknowledged_at = now
    elif target == AlertState.MITIGATED:
        alert.mitigated_at = now
        alert.acknowledged_at = alert.acknowledged_at or now
    elif target == AlertState.CLOSED:
        alert.closed_at = now
        alert.acknowledged_at = alert.acknowledged_at or now
    elif target == AlertState.NEW:
        alert.reopened += 1
        alert.acknowledged_at = alert.mitigated_at = alert.closed_at = None
        alert.risk_accepted_until = None
    alert.save()
    AlertEvent.objects.create(alert=alert, at=now, state=target)
    notify.state_changed(alert, before=before, reason=reason, now=now)
    audit.record(
        actor,
        "earlywarning.alert.state",
        alert,
        organisation=alert.organisation_id,
        details={"from": before, "to": target.value, "reason": reason[:200]},
    )
    return alert


def expire_risk_acceptances(now=None) -> int:
    """Risk accepted until a day now past: the alert is new again (beat, daily)."""
    today = timezone.localdate(now)
    expired = list(
        Alert.objects.filter(state=AlertState.RISK_ACCEPTED, risk_accepted_until__lt=today)
    )
    hours = acknowledge_hours()
    moment = now or timezone.now()
    with transaction.atomic():
        for alert in expired:
            alert.state = AlertState.NEW
            alert.state_changed_at = moment
            alert.reopened += 1
            alert.due_at = moment + dt.timedelta(hours=hours.get(alert.type, 24))
            alert.save(update_fields=["state", "state_changed_at", "reopened", "due_at"])
            AlertEvent.objects.create(alert=alert, at=moment, state=AlertState.NEW)
        notify.alerts_raised(Upserted(reopened=expired), now=moment)
        audit.record_many(
            None,
            [
                audit.Change(
                    "earlywarning.alert.risk_expired", alert, alert.organisation_id,
                    details={"until": alert.risk_accepted_until.isoformat()},
                )
                for alert in expired
            ],
        )  # fmt: skip
    return len(expired)
