"""An organisation's webhooks: registering one, turning it off and on, rotating its secret,
removing it.

Only the organisation's administrators do these (``permissions.can_manage_webhooks``), and each
is an audit entry (never with the secret). A URL must pass ``webhooks.check_destination`` — an
``https://`` URL of a public internet host — when it is registered and when a webhook is turned
back on (and again at every delivery). The secret is made here and handed back once, to be
shown once: it is not shown again, only replaced.
"""

from __future__ import annotations

import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mamori.audit import services as audit
from mamori.core.errors import MamoriError, NotAllowed, WrongState
from mamori.earlywarning import delivery, permissions
from mamori.earlywarning.models import (
    RETRYABLE_DELIVERY_STATES,
    WebhookDelivery,
    WebhookEndpoint,
)

SECRET_PREFIX = "whsec_"  # noqa: S105 - a public prefix that says what the value is, not a secret
# Each alert is sent to every webhook of its organisation: a handful is plenty.
MAX_ENDPOINTS_PER_ORGANISATION = 10


def new_secret() -> str:
    """256 random bits, URL-safe, with a prefix that tells what it is."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _require_manager(access, organisation_id: int) -> None:
    if not permissions.can_manage_webhooks(access, organisation_id):
        raise NotAllowed(_("Only the organisation's administrators manage its webhooks."))


@transaction.atomic
def create_endpoint(
    actor,
    access,
    organisation,
    *,
    url: str,
    description: str = "",
    allow_documentation: bool = False,
) -> tuple[WebhookEndpoint, str]:
    """Register a webhook; returns it with its secret (shown once). ``allow_documentation``
    (the demo only) accepts a documentation address, which no delivery will ever reach."""
    organisation_id = getattr(organisation, "pk", organisation)
    _require_manager(access, organisation_id)
    destination = delivery.check(url, allow_documentation=allow_documentation)
    if (
        WebhookEndpoint.objects.filter(organisation_id=organisation_id).count()
        >= MAX_ENDPOINTS_PER_ORGANISATION
    ):
        raise MamoriError(
            _("An organisation has at most %(count)s webhooks; remove one first.")
            % {"count": MAX_ENDPOINTS_PER_ORGANISATION},
            field="url",
        )
    secret = new_secret()
    try:
        with transaction.atomic():
            endpoint = WebhookEndpoint.objects.create(
                organisation_id=organisation_id,
                url=destination.url,
                description=(description or "").strip()[:200],
                secret=secret,
                created_by=actor,
            )
    except IntegrityError:
        raise MamoriError(
            _("This organisation already has a webhook for %(url)s.") % {"url": destination.url},
            field="url",
        ) from None
    audit.record(
        actor,
        "earlywarning.webhook.create",
        endpoint,
        organisation=organisation_id,
        details={"url": endpoint.url},
    )
    return endpoint, secret


def _locked(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    return WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)


@transaction.atomic
def disable_endpoint(actor, access, endpoint: WebhookEndpoint, *, reason: str = ""):
    """Turn a webhook off: nothing more is sent to it (what waits is kept for its return)."""
    _require_manager(access, endpoint.organisation_id)
    endpoint = _locked(endpoint)
    if not endpoint.enabled:
        raise WrongState(_("This webhook is already turned off."))
    endpoint.enabled = False
    endpoint.disabled_at = timezone.now()
    endpoint.disabled_reason = (reason or "").strip()[:2000] or _("Turned off by %(name)s.") % {
        "name": actor
    }
    endpoint.save(update_fields=["enabled", "disabled_at", "disabled_reason", "updated_at"])
    audit.record(
        actor,
        "earlywarning.webhook.disable",
        endpoint,
        organisation=endpoint.organisation_id,
        details={"url": endpoint.url, "reason": (reason or "")[:200]},
    )
    return endpoint


@transaction.atomic
def enable_endpoint(actor, access, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Turn a webhook back on, its URL checked again; the events that waited meanwhile are due
    at once (the retry beat sends them), with their attempts counted afresh."""
    _require_manager(access, endpoint.organisation_id)
    endpoint = _locked(endpoint)
    if endpoint.enabled:
        raise WrongState(_("This webhook is already turned on."))
    delivery.check(endpoint.url)
    endpoint.enabled = True
    endpoint.consecutive_failures = 0
    endpoint.failing_since = None
    endpoint.disabled_at = None
    endpoint.disabled_reason = ""
    endpoint.save(
        update_fields=[
            "enabled", "consecutive_failures", "failing_since", "disabled_at",
            "disabled_reason", "updated_at",
        ]
    )  # fmt: skip
    waiting = WebhookDelivery.objects.filter(
        endpoint=endpoint, state__in=RETRYABLE_DELIVERY_STATES
    ).update(next_attempt_at=timezone.now(), attempt=0, claim="")
    audit.record(
        actor,
        "earlywarning.webhook.enable",
        endpoint,
        organisation=endpoint.organisation_id,
        details={"url": endpoint.url, "waiting": waiting},
    )
    return endpoint


@transaction.atomic
def rotate_secret(actor, access, endpoint: WebhookEndpoint) -> tuple[WebhookEndpoint, str]:
    """A new secret for the webhook (shown once); every attempt from now on is signed with it,
    the old one no longer."""
    _require_manager(access, endpoint.organisation_id)
    endpoint = _locked(endpoint)
    secret = new_secret()
    endpoint.secret = secret
    endpoint.secret_rotated_at = timezone.now()
    endpoint.save(update_fields=["secret", "secret_rotated_at", "updated_at"])
    audit.record(
        actor,
        "earlywarning.webhook.rotate_secret",
        endpoint,
        organisation=endpoint.organisation_id,
        details={"url": endpoint.url},
    )
    return endpoint, secret


@transaction.atomic
def delete_endpoint(actor, access, endpoint: WebhookEndpoint) -> int:
    """Remove a webhook with its delivery log and what still waited for it (a limit of ten
    makes room again); the audit trail keeps that it was there. Returns the deliveries removed."""
    _require_manager(access, endpoint.organisation_id)
    endpoint = _locked(endpoint)
    deliveries = endpoint.deliveries.count()
    audit.record(
        actor,
        "earlywarning.webhook.delete",
        endpoint,
        organisation=endpoint.organisation_id,
        details={"url": endpoint.url, "enabled": endpoint.enabled, "deliveries": deliveries},
    )
    endpoint.delete()
    return deliveries
