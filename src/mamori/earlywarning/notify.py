"""Getting alerts to people and machines: e-mail (at once, or in a daily digest) and webhooks.

Whatever raises, reopens or moves an alert calls in here *inside its transaction*; the work is
recorded with the change (``mamori.core.outbox``) and done by tasks after commit, so a mail
server or a receiver that is away delays it and never loses it, and never fails the change.

- :func:`alerts_raised` (new and reopened alerts, from ``alerts.upsert``'s result): an e-mail
  task per organisation for the alerts some member wants at once, and a webhook delivery per
  alert and enabled webhook of its organisation.
- :func:`state_changed` (``alerts.change_state``): a webhook delivery per enabled webhook.
- :func:`queue_digests` (beat, hourly): from ``MAMORI_EARLYWARNING_DIGEST_HOUR`` each day, the
  digest of the day before for each organisation that had alerts raised or reopened that day.

Who gets what: each member's :class:`Preferences` for the organisation, chosen by them or by
default — alert handlers (administrators, contributors) get incidents and KEV-listed alerts at
once and a daily digest of the others; other members get nothing until they ask. Every message
is plain text in the recipient's language with links into Mamori, sent with
``core.mail.send_once`` (once per recipient, recorded only after the server accepted it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from mamori.audit import services as audit
from mamori.core import outbox
from mamori.core.bulk import insert_rows
from mamori.core.errors import MamoriError, NotAllowed
from mamori.core.mail import send_once
from mamori.earlywarning import payloads, permissions
from mamori.earlywarning.models import (
    IMMEDIATE_CHOICES,
    IMMEDIATE_KEV,
    SEVERITY_ORDER,
    Alert,
    AlertDigest,
    AlertEvent,
    AlertState,
    AlertType,
    NotificationPreference,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from mamori.organisations.models import Membership, Organisation

# The tasks (earlywarning/tasks.py, which imports this module) by name.
SEND_ALERT_MAIL = "mamori.earlywarning.tasks.send_alert_mail"
SEND_DIGEST = "mamori.earlywarning.tasks.send_digest"
DELIVER_WEBHOOKS = "mamori.earlywarning.tasks.deliver_webhooks"
SEND_WEBHOOK_DISABLED_NOTICE = "mamori.earlywarning.tasks.send_webhook_disabled_notice"

# Alerts listed in one message; past these, a count and the link to the inbox.
LISTED_IN_MAIL = 25
LISTED_IN_DIGEST = 60
# Deliveries per task message (its argument list stays small).
DELIVERIES_PER_MESSAGE = 1000
# Days of digests the beat still sends when it was away (older ones are news no longer).
DIGEST_CATCH_UP_DAYS = 3


class RaisedAlerts(Protocol):
    """What :func:`alerts_raised` reads of ``alerts.Upserted`` (that module calls this one)."""

    new: list[Alert]
    reopened: list[Alert]


# --- preferences ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preferences:
    """What one member gets: ``immediate`` holds alert types and ``"kev"`` (any KEV-listed
    alert); ``chosen`` is False for the defaults."""

    immediate: frozenset[str]
    daily_digest: bool
    chosen: bool = False

    def wants_at_once(self, alert: Alert) -> bool:
        return alert.type in self.immediate or (alert.kev and IMMEDIATE_KEV in self.immediate)


HANDLER_DEFAULT = Preferences(frozenset({AlertType.INCIDENT.value, IMMEDIATE_KEV}), True)
MEMBER_DEFAULT = Preferences(frozenset(), False)
IMMEDIATE_VALUES = frozenset(value for value, _label in IMMEDIATE_CHOICES)


def default_preferences(roles: Iterable[str]) -> Preferences:
    if set(roles) & set(permissions.ALERT_HANDLER_ROLES):
        return HANDLER_DEFAULT
    return MEMBER_DEFAULT


def _stored(preference: NotificationPreference) -> Preferences:
    immediate = frozenset(str(value) for value in preference.immediate or ())
    return Preferences(immediate & IMMEDIATE_VALUES, preference.daily_digest, chosen=True)


def preferences_for(user, organisation_id: int) -> Preferences:
    """The member's preferences for the organisation (their own, or the default of their
    roles there)."""
    stored = NotificationPreference.objects.filter(
        user_id=user.pk, organisation_id=organisation_id
    ).first()
    if stored is not None:
        return _stored(stored)
    roles = Membership.objects.filter(user_id=user.pk, organisation_id=organisation_id)
    return default_preferences(roles.values_list("role", flat=True))


@transaction.atomic
def set_preferences(
    actor, access, organisation_id: int, *, immediate: Iterable[str], daily_digest: bool
) -> NotificationPreference:
    """Choose one's own alert e-mail for an organisation one belongs to."""
    if not permissions.can_set_notifications(access, organisation_id):
        raise NotAllowed(_("Only the organisation's members receive its alerts."))
    chosen = [str(value) for value in immediate]
    unknown = sorted(set(chosen) - IMMEDIATE_VALUES)
    if unknown:
        raise MamoriError(
            _("'%(value)s' is not a kind of alert that can be e-mailed at once.")
            % {"value": unknown[0][:40]},
            field="immediate",
        )
    preference, _created = NotificationPreference.objects.update_or_create(
        user_id=actor.pk,
        organisation_id=organisation_id,
        defaults={
            "immediate": sorted(set(chosen)),
            "daily_digest": bool(daily_digest),
        },
    )
    return preference


@dataclass(frozen=True)
class Recipient:
    user: object
    preferences: Preferences


def recipients(organisation_id: int) -> list[Recipient]:
    """The organisation's active members with an e-mail address, each with their preferences."""
    roles: dict[int, set[str]] = defaultdict(set)
    users = {}
    memberships = (
        Membership.objects.filter(organisation_id=organisation_id, user__is_active=True)
        .exclude(user__email="")
        .select_related("user")
    )
    for membership in memberships:
        roles[membership.user_id].add(membership.role)
        users[membership.user_id] = membership.user
    stored = {
        preference.user_id: _stored(preference)
        for preference in NotificationPreference.objects.filter(
            organisation_id=organisation_id, user_id__in=users
        )
    }
    return [
        Recipient(users[pk], stored.get(pk) or default_preferences(roles[pk]))
        for pk in sorted(users)
    ]


# --- recording the work -----------------------------------------------------------------------


def alerts_raised(upserted: RaisedAlerts, *, now: dt.datetime | None = None) -> None:
    """Record, in the caller's transaction, the e-mail and webhook deliveries that new and
    reopened alerts call for (``upserted`` is ``alerts.Upserted``)."""
    now = now or timezone.now()
    events = [(alert, WebhookEvent.RAISED, None) for alert in upserted.new]
    events += [(alert, WebhookEvent.REOPENED, None) for alert in upserted.reopened]
    if not events:
        return
    _queue_immediate_mail([alert for alert, _event, _change in events])
    _queue_deliveries(events, now)


def state_changed(alert: Alert, *, before: str, reason: str, now: dt.datetime) -> None:
    """Record the webhook deliveries of a state change (``alerts.change_state``)."""
    change = {"from": before, "to": alert.state, "reason": reason or None}
    _queue_deliveries([(alert, WebhookEvent.STATE_CHANGED, change)], now)


def _maybe_at_once(alerts: list[Alert]) -> dict[int, list[Alert]]:
    """By organisation, the alerts some member may want at once: the defaults' (incidents,
    KEV) and those of the types members chose."""
    organisation_ids = {alert.organisation_id for alert in alerts}
    chosen: dict[int, set[str]] = defaultdict(set)
    for organisation_id, immediate in NotificationPreference.objects.filter(
        organisation_id__in=organisation_ids
    ).values_list("organisation_id", "immediate"):
        chosen[organisation_id].update(str(value) for value in immediate or ())
    found: dict[int, list[Alert]] = defaultdict(list)
    for alert in alerts:
        wanted = HANDLER_DEFAULT.immediate | chosen.get(alert.organisation_id, set())
        if alert.type in wanted or (alert.kev and IMMEDIATE_KEV in wanted):
            found[alert.organisation_id].append(alert)
    return found


def _queue_immediate_mail(alerts: list[Alert]) -> None:
    for organisation_id, raised in sorted(_maybe_at_once(alerts).items()):
        # (alert, times reopened) names one raising of the alert: a reopened alert is news
        # again, and its message a new one.
        occurrences = sorted({(alert.pk, alert.reopened) for alert in raised})
        outbox.enqueue(SEND_ALERT_MAIL, organisation_id, [list(item) for item in occurrences])


def _queue_deliveries(events: list[tuple[Alert, str, dict | None]], now: dt.datetime) -> None:
    organisation_ids = {alert.organisation_id for alert, _event, _change in events}
    endpoints: dict[int, list[int]] = defaultdict(list)
    for pk, organisation_id in WebhookEndpoint.objects.filter(
        organisation_id__in=organisation_ids, enabled=True
    ).values_list("pk", "organisation_id"):
        endpoints[organisation_id].append(pk)
    if not endpoints:
        return
    concerned = [item for item in events if item[0].organisation_id in endpoints]
    organisations, assets = payloads.related(alert for alert, _event, _change in concerned)
    deliveries = []
    for alert, event, change in concerned:
        body = payloads.event_body(
            alert,
            event,
            organisation=organisations[alert.organisation_id],
            asset=assets.get(alert.asset_id),
            occurred_at=now,
            change=change,
        )
        deliveries += [
            WebhookDelivery(
                endpoint_id=endpoint_id,
                alert=alert,
                event=event,
                body=body,
                next_attempt_at=now,
            )
            for endpoint_id in endpoints[alert.organisation_id]
        ]
    # COPY on PostgreSQL: a KEV entry on thousands of hosts is as many deliveries, each with its
    # JSON body, and a multi-row INSERT of them takes most of the time the raise may take.
    insert_rows(WebhookDelivery, deliveries, with_ids=True)
    ids = [item.pk for item in deliveries]
    for start in range(0, len(ids), DELIVERIES_PER_MESSAGE):
        # Never run inside the request that made the change: receivers may be slow.
        outbox.enqueue_off_request(DELIVER_WEBHOOKS, ids[start : start + DELIVERIES_PER_MESSAGE])


# --- the messages -----------------------------------------------------------------------------


def _moment(value: dt.datetime | None) -> str:
    if value is None:
        return "—"
    local = timezone.localtime(value)
    return f"{formats.date_format(local, 'DATETIME_FORMAT')} {local.tzname()}"


def describe(alert: Alert) -> str:
    """What the alert is about, on one line: its category and what was seen."""
    parts = [alert.category]
    if alert.type == AlertType.SUPPLIER_EXPOSURE:
        evidence = alert.evidence or {}
        english = (translation.get_language() or "ja").startswith("en")
        service = evidence.get("service_name_en" if english else "service_name")
        if service:
            parts.append(str(service))
        if evidence.get("supplier"):
            parts.append(str(evidence["supplier"]))
    if alert.cve:
        parts.append(alert.cve)
    if alert.package:
        parts.append(f"{alert.package} {alert.installed_version}".strip())
    if alert.ip:
        address = f"[{alert.ip}]" if ":" in alert.ip else alert.ip
        parts.append(f"{address}:{alert.port}" if alert.port else alert.ip)
    if alert.hostname:
        parts.append(alert.hostname)
    return " · ".join(part for part in parts if part)


def _alert_lines(alert: Alert, *, reopened: bool) -> list[str]:
    heading = [str(alert.get_type_display())]
    if reopened:
        heading.append(_("reopened"))
    heading.append(_("severity: %(severity)s") % {"severity": alert.get_severity_display()})
    if alert.kev:
        heading.append(_("in CISA KEV"))
    heading.append(alert.get_tlp_display())
    if alert.state not in (AlertState.NEW,):
        heading.append(_("now: %(state)s") % {"state": alert.get_state_display()})
    return [
        "- " + " · ".join(heading),
        "  " + describe(alert),
        "  "
        + _("First seen %(first)s, last seen %(last)s")
        % {"first": _moment(alert.first_seen), "last": _moment(alert.last_seen)},
        *(
            ["  " + _("To be acknowledged by %(due)s") % {"due": _moment(alert.due_at)}]
            if alert.due_at and alert.state == AlertState.NEW
            else []
        ),
        "  " + payloads.alert_url(alert.pk),
    ]


def _listing(alerts: list[tuple[Alert, bool]], limit: int) -> list[str]:
    lines: list[str] = []
    for alert, reopened in alerts[:limit]:
        lines += [*_alert_lines(alert, reopened=reopened), ""]
    more = len(alerts) - limit
    if more > 0:
        lines += [
            ngettext(
                "… and %(count)s more alert: %(url)s",
                "… and %(count)s more alerts: %(url)s",
                more,
            )
            % {"count": more, "url": payloads.inbox_url()},
            "",
        ]
    return lines


def _signature() -> list[str]:
    return [
        _(
            "Your alert e-mail preferences in Mamori's early warning say which alerts are sent "
            "at once and whether the others come in a daily digest."
        ),
        "",
        "-- ",
        "Mamori",
    ]


def _ordered(alerts: Iterable[Alert]) -> list[Alert]:
    return sorted(alerts, key=lambda a: (SEVERITY_ORDER.get(a.severity, 99), a.type, a.pk))


def alert_mail(user, organisation: Organisation, alerts: list[tuple[Alert, bool]]):
    """Subject and body of the immediate message, in the language active now."""
    name = organisation.name
    if len(alerts) == 1:
        alert = alerts[0][0]
        subject = _("[Mamori] %(type)s: %(what)s (%(organisation)s)") % {
            "type": alert.get_type_display(),
            "what": describe(alert),
            "organisation": name,
        }
    else:
        subject = _("[Mamori] %(count)s alerts for %(organisation)s need attention now") % {
            "count": len(alerts),
            "organisation": name,
        }
    lines = [
        _("Dear %(name)s,") % {"name": user},
        "",
        ngettext(
            "Mamori raised an alert for %(organisation)s that needs attention now:",
            "Mamori raised %(count)s alerts for %(organisation)s that need attention now:",
            len(alerts),
        )
        % {"count": len(alerts), "organisation": name},
        "",
        *_listing(alerts, LISTED_IN_MAIL),
        *_signature(),
    ]
    return subject[:250], "\n".join(lines) + "\n"


def send_alert_mail(organisation_id: int, occurrences: list[list[int]]) -> int:
    """The immediate message of these raised alerts to each member who wants any of them at
    once; once per member, however often it runs. Returns the messages sent now."""
    organisation = Organisation.objects.filter(pk=organisation_id).first()
    if organisation is None:
        return 0
    reopened_count = {int(alert_id): int(times) for alert_id, times in occurrences}
    alerts = _ordered(Alert.objects.filter(organisation_id=organisation_id, pk__in=reopened_count))
    # The message is about what was raised; an alert handled or raised again since then is
    # another story (its own message, or none).
    alerts = [alert for alert in alerts if alert.reopened == reopened_count[alert.pk]]
    # The occurrences, not the alerts' present state, name the message (see send_once).
    digest = hashlib.sha256(repr(sorted(reopened_count.items())).encode()).hexdigest()[:24]
    sent = 0
    for recipient in recipients(organisation_id):
        wanted = [
            (alert, alert.reopened > 0)
            for alert in alerts
            if recipient.preferences.wants_at_once(alert)
        ]
        if not wanted:
            continue
        user = recipient.user
        with translation.override(user.language):
            subject, body = alert_mail(user, organisation, wanted)
        sent += send_once(
            f"earlywarning-alert:{organisation_id}:{digest}:user:{user.pk}",
            to=user.email,
            subject=subject,
            body=body,
        )
    return sent


# --- daily digests ----------------------------------------------------------------------------


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The day's first moment and the next day's, in the site's time zone."""
    start = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
    end = timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min))
    return start, end


def digest_days(now: dt.datetime) -> list[dt.date]:
    """The days whose digests are due at ``now``: yesterday's from the digest hour on, and the
    few before it the beat may have missed."""
    local = timezone.localtime(now)
    latest = (local - dt.timedelta(hours=settings.EARLYWARNING_DIGEST_HOUR)).date()
    latest -= dt.timedelta(days=1)
    return [latest - dt.timedelta(days=back) for back in range(DIGEST_CATCH_UP_DAYS)]


def queue_digests(now: dt.datetime | None = None) -> int:
    """Queue each due digest once: an ``AlertDigest`` row (unique per organisation and day)
    written with its outbox message. Returns how many were queued."""
    now = now or timezone.now()
    queued = 0
    for day in digest_days(now):
        start, end = day_bounds(day)
        organisation_ids = set(
            AlertEvent.objects.filter(state=AlertState.NEW, at__gte=start, at__lt=end)
            .values_list("alert__organisation_id", flat=True)
            .distinct()
        )
        organisation_ids -= set(
            AlertDigest.objects.filter(day=day).values_list("organisation_id", flat=True)
        )
        for organisation_id in sorted(organisation_ids):
            try:
                with transaction.atomic():
                    digest = AlertDigest.objects.create(organisation_id=organisation_id, day=day)
                    outbox.enqueue(SEND_DIGEST, digest.pk)
            except IntegrityError:
                continue  # another beat queued it a moment ago
            queued += 1
    return queued


def digest_mail(user, organisation: Organisation, day: dt.date, alerts):
    name = organisation.name
    shown_day = formats.date_format(day)
    subject = ngettext(
        "[Mamori] Daily digest for %(organisation)s, %(day)s: %(count)s alert",
        "[Mamori] Daily digest for %(organisation)s, %(day)s: %(count)s alerts",
        len(alerts),
    ) % {"organisation": name, "day": shown_day, "count": len(alerts)}
    lines = [
        _("Dear %(name)s,") % {"name": user},
        "",
        ngettext(
            "On %(day)s Mamori raised or reopened %(count)s alert for %(organisation)s:",
            "On %(day)s Mamori raised or reopened %(count)s alerts for %(organisation)s:",
            len(alerts),
        )
        % {"day": shown_day, "count": len(alerts), "organisation": name},
        "",
        *_listing(alerts, LISTED_IN_DIGEST),
        _("Every alert of the organisation: %(url)s") % {"url": payloads.inbox_url()},
        "",
        *_signature(),
    ]
    return subject[:250], "\n".join(lines) + "\n"


def send_digest(digest_id: int) -> int:
    """The digest to each member who wants one, listing the day's alerts they did not get at
    once; marked sent once every message was accepted. Returns the messages sent now."""
    digest = AlertDigest.objects.select_related("organisation").filter(pk=digest_id).first()
    if digest is None or digest.sent_at is not None:
        return 0
    start, end = day_bounds(digest.day)
    alert_ids = set(
        AlertEvent.objects.filter(
            state=AlertState.NEW,
            at__gte=start,
            at__lt=end,
            alert__organisation_id=digest.organisation_id,
        ).values_list("alert_id", flat=True)
    )
    alerts = _ordered(Alert.objects.filter(pk__in=alert_ids))
    sent = 0
    delivered_to = 0
    for recipient in recipients(digest.organisation_id):
        if not recipient.preferences.daily_digest:
            continue
        listed = [
            (alert, alert.created_at < start)
            for alert in alerts
            if not recipient.preferences.wants_at_once(alert)
        ]
        if not listed:
            continue
        user = recipient.user
        with translation.override(user.language):
            subject, body = digest_mail(user, digest.organisation, digest.day, listed)
        sent += send_once(
            f"earlywarning-digest:{digest.pk}:user:{user.pk}",
            to=user.email,
            subject=subject,
            body=body,
        )
        delivered_to += 1
    AlertDigest.objects.filter(pk=digest.pk, sent_at__isnull=True).update(
        sent_at=timezone.now(), recipients=delivered_to
    )
    return sent


# --- a webhook turned off ---------------------------------------------------------------------


def send_webhook_disabled_notice(endpoint_id: int, disabled_at: str) -> int:
    """Tell the organisation's administrators that a webhook was turned off after repeated
    failures (once per turning off). Returns the messages sent now."""
    endpoint = WebhookEndpoint.objects.select_related("organisation").filter(pk=endpoint_id).first()
    if endpoint is None:
        return 0
    administrators = (
        Membership.objects.filter(
            organisation_id=endpoint.organisation_id,
            role__in=permissions.WEBHOOK_MANAGER_ROLES,
            user__is_active=True,
        )
        .exclude(user__email="")
        .select_related("user")
    )
    sent = 0
    for user in sorted({m.user for m in administrators}, key=lambda user: user.pk):
        with translation.override(user.language):
            subject = _("[Mamori] A webhook of %(organisation)s was turned off") % {
                "organisation": endpoint.organisation.name
            }
            body = "\n".join(
                [
                    _("Dear %(name)s,") % {"name": user},
                    "",
                    _(
                        "Mamori turned off the webhook %(url)s of %(organisation)s: its "
                        "deliveries kept failing."
                    )
                    % {"url": endpoint.url, "organisation": endpoint.organisation.name},
                    "",
                    disabled_reason(endpoint, _last_error(endpoint)),
                    "",
                    _(
                        "Alert events are no longer sent to it. Once the receiver works again, "
                        "an administrator can turn the webhook back on in Mamori; the events "
                        "still waiting are then delivered."
                    ),
                    "",
                    "-- ",
                    "Mamori",
                ]
            )
        sent += send_once(
            f"earlywarning-webhook-off:{endpoint.pk}:{disabled_at}:user:{user.pk}",
            to=user.email,
            subject=subject,
            body=body + "\n",
        )
    return sent


def disabled_reason(endpoint: WebhookEndpoint, last_error: str) -> str:
    """Why a webhook was turned off automatically, in the language active now."""
    since = endpoint.failing_since or endpoint.disabled_at or timezone.now()
    return _(
        "Turned off automatically after %(count)s failed deliveries in a row since "
        "%(since)s. The last one: %(error)s"
    ) % {"count": endpoint.consecutive_failures, "since": _moment(since), "error": last_error}


def _last_error(endpoint: WebhookEndpoint) -> str:
    failed = (
        WebhookDelivery.objects.filter(endpoint=endpoint, last_attempt_at__isnull=False)
        .exclude(last_error="")
        .order_by("-last_attempt_at", "-pk")
        .values_list("last_error", flat=True)
        .first()
    )
    return failed or ""


def record_disabled(endpoint: WebhookEndpoint, details: dict) -> None:
    """The audit entry and the administrators' notice of an automatic turning off, in the
    transaction that turned it off."""
    audit.record(
        None,
        "earlywarning.webhook.auto_disable",
        endpoint,
        organisation=endpoint.organisation_id,
        details=details,
    )
    outbox.enqueue(SEND_WEBHOOK_DISABLED_NOTICE, endpoint.pk, endpoint.disabled_at.isoformat())
