"""Delivering webhook events (the deliveries ``notify`` recorded) from the delivery tasks.

:func:`deliver_due` takes what is due in chunks of ``concurrency`` deliveries: it *claims* a
chunk (a random token written with a lease, so two runs of a task never send one delivery
twice), checks each webhook's URL again (``webhooks.check_destination``: the addresses it
resolves to now, pinned for the connection), sends the chunk at once with
``webhooks.deliver_async`` — each attempt bounded by ``MAMORI_WEBHOOK_TIMEOUT_SECONDS`` whatever
the receiver does — and writes each outcome on its delivery row (the delivery log). A failed
attempt is tried again after ``webhooks.next_attempt_delay``; after :data:`MAX_ATTEMPTS` the
delivery is given up. A webhook failing ``webhooks.should_disable`` is turned off, with an audit
entry and a notice to the organisation's administrators.

A run stops taking new chunks after a time budget well inside the broker's visibility timeout,
so a task is never handed to a second worker while it runs; what is left stays due for the
retry beat. Deliveries of a webhook that is turned off wait, and go out if it is turned on
again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import secrets
import ssl
import time
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from mamori.earlywarning import notify, webhooks
from mamori.earlywarning.models import (
    RETRYABLE_DELIVERY_STATES,
    DeliveryState,
    WebhookDelivery,
    WebhookEndpoint,
)

# About two and a half days of retries (30 s, 2 min, 8 min, 32 min, 2 h 8 min, then every 6 h).
MAX_ATTEMPTS = 15
CONCURRENCY = 50
# A claim outlives the attempt by this much before another run may take the delivery.
CLAIM_MARGIN_SECONDS = 30
EVENT_HEADER = "X-Mamori-Event"
DELIVERY_HEADER = "X-Mamori-Delivery"


@dataclass
class Report:
    delivered: int = 0
    failed: int = 0
    given_up: int = 0
    endpoints_disabled: int = 0

    def as_dict(self) -> dict:
        return {
            "delivered": self.delivered,
            "failed": self.failed,
            "given_up": self.given_up,
            "endpoints_disabled": self.endpoints_disabled,
        }


def time_budget() -> float:
    """Seconds a run keeps taking new chunks: a chunk started at the end still finishes (one
    timeout later) well before the broker would hand the task to another worker."""
    return max(1.0, 0.6 * settings.CELERY_VISIBILITY_TIMEOUT - settings.WEBHOOK_TIMEOUT_SECONDS)


@functools.cache
def _ssl_context(ca_file: str) -> ssl.SSLContext:
    if not ca_file:
        return webhooks.default_ssl_context()
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def ssl_context() -> ssl.SSLContext:
    """The system's trusted authorities, or ``MAMORI_WEBHOOK_CA_FILE``'s."""
    return _ssl_context(settings.WEBHOOK_CA_FILE)


def check(url: str, *, allow_documentation: bool = False) -> webhooks.Destination:
    return webhooks.check_destination(
        url,
        allow_loopback_for_tests=settings.WEBHOOK_ALLOW_LOOPBACK,
        allow_documentation=allow_documentation,
    )


def claim(delivery_ids: list[int] | None = None, *, limit: int = CONCURRENCY) -> list:
    """Take up to ``limit`` due deliveries of enabled webhooks (of ``delivery_ids`` when
    given) for one attempt each, oldest due first."""
    now = timezone.now()
    due = WebhookDelivery.objects.filter(
        state__in=RETRYABLE_DELIVERY_STATES, next_attempt_at__lte=now, endpoint__enabled=True
    )
    if delivery_ids is not None:
        due = due.filter(pk__in=delivery_ids)
    candidates = list(due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])
    if not candidates:
        return []
    token = secrets.token_hex(16)
    lease = now + dt.timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS + CLAIM_MARGIN_SECONDS)
    # Conditional on still being due: of two runs reaching for the same rows, one gets each.
    WebhookDelivery.objects.filter(
        pk__in=candidates, state__in=RETRYABLE_DELIVERY_STATES, next_attempt_at__lte=now
    ).update(claim=token, next_attempt_at=lease, attempt=F("attempt") + 1)
    return list(
        WebhookDelivery.objects.filter(claim=token).select_related("endpoint").order_by("pk")
    )


def deliver_due(
    delivery_ids: list[int] | None = None,
    *,
    concurrency: int | None = None,
    budget: float | None = None,
) -> Report:
    """Attempt every due delivery (of ``delivery_ids`` when given), ``concurrency`` at a time
    (:data:`CONCURRENCY`), until none is due or the time budget is spent."""
    started = time.monotonic()
    concurrency = concurrency or CONCURRENCY
    budget = time_budget() if budget is None else budget
    report = Report()
    # The delivery log and a turned-off webhook's reason are written once, for every reader,
    # in the site's language (whatever language the process happens to have active).
    with translation.override(settings.LANGUAGE_CODE):
        while chunk := claim(delivery_ids, limit=concurrency):
            _attempt(chunk, report)
            if time.monotonic() - started >= budget:
                break
    return report


def _attempt(chunk: list[WebhookDelivery], report: Report) -> None:
    jobs: list[tuple[WebhookDelivery, webhooks.Destination]] = []
    outcomes: list[tuple[WebhookDelivery, webhooks.DeliveryOutcome | None, str]] = []
    by_endpoint: dict[int, list[WebhookDelivery]] = defaultdict(list)
    for delivery in chunk:
        by_endpoint[delivery.endpoint_id].append(delivery)
    for deliveries in by_endpoint.values():
        try:
            # Checked again at every attempt: the name may resolve elsewhere by now.
            destination = check(deliveries[0].endpoint.url)
        except webhooks.DestinationRefused as refused:
            outcomes += [(delivery, None, str(refused)) for delivery in deliveries]
            continue
        jobs += [(delivery, destination) for delivery in deliveries]
    if jobs:
        results = asyncio.run(_send_all(jobs))
        outcomes += [
            (delivery, outcome, "") for (delivery, _d), outcome in zip(jobs, results, strict=True)
        ]
    _record(outcomes, report)


async def _send_all(jobs) -> list[webhooks.DeliveryOutcome]:
    context = ssl_context()
    timeout = float(settings.WEBHOOK_TIMEOUT_SECONDS)

    async def send(delivery: WebhookDelivery, destination: webhooks.Destination):
        return await webhooks.deliver_async(
            destination,
            delivery.body.encode("utf-8"),
            secret=delivery.endpoint.secret,
            timestamp=int(time.time()),
            timeout=timeout,
            headers={EVENT_HEADER: delivery.event, DELIVERY_HEADER: str(delivery.pk)},
            ssl_context=context,
        )

    return await asyncio.gather(*(send(delivery, dest) for delivery, dest in jobs))


def describe_failure(outcome: webhooks.DeliveryOutcome | None, refused: str) -> str:
    if outcome is None:
        return refused
    if outcome.error is not None:
        text = str(outcome.error.message)
    else:
        text = _("The receiver answered HTTP %(status)s.") % {"status": outcome.status_code}
        if outcome.response_excerpt:
            text += " " + outcome.response_excerpt[:500]
    if outcome.detail:
        text += f" ({outcome.detail})"
    return text[:2000]


def _record(outcomes, report: Report) -> None:
    now = timezone.now()
    results: dict[int, list[tuple[bool, str]]] = defaultdict(list)
    for delivery, outcome, refused in outcomes:
        delivery.claim = ""
        delivery.last_attempt_at = now
        delivery.last_status_code = outcome.status_code if outcome is not None else None
        if outcome is not None and outcome.ok:
            delivery.state = DeliveryState.DELIVERED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
            delivery.last_error = ""
            report.delivered += 1
        else:
            delivery.last_error = describe_failure(outcome, refused)
            if delivery.attempt >= MAX_ATTEMPTS:
                delivery.state = DeliveryState.GIVEN_UP
                delivery.next_attempt_at = None
                report.given_up += 1
            else:
                delivery.state = DeliveryState.FAILED
                delay = webhooks.next_attempt_delay(delivery.attempt)
                delivery.next_attempt_at = now + dt.timedelta(seconds=delay)
                report.failed += 1
        ok = delivery.state == DeliveryState.DELIVERED
        results[delivery.endpoint_id].append((ok, "" if ok else delivery.last_error))
    with transaction.atomic():
        _write_log(outcomes, now)
        for endpoint_id, attempts in results.items():
            if any(ok for ok, _error in attempts):
                # The receiver works: failures of the same moment are the events' own.
                WebhookEndpoint.objects.filter(pk=endpoint_id).update(
                    consecutive_failures=0, failing_since=None
                )
                continue
            WebhookEndpoint.objects.filter(pk=endpoint_id).update(
                consecutive_failures=F("consecutive_failures") + len(attempts),
                failing_since=Coalesce("failing_since", Value(now)),
            )
            if _disable_if_failing(endpoint_id, now, attempts[-1][1]):
                report.endpoints_disabled += 1


def _write_log(outcomes, now: dt.datetime) -> None:
    """The attempts into the delivery log: the delivered in one statement per status code (a
    bulk update would build a CASE per row and field, several milliseconds a delivery), the
    others (fewer, each with its own error and retry time) one by one."""
    delivered: dict[int, list[int]] = defaultdict(list)
    for delivery, _outcome, _refused in outcomes:
        if delivery.state == DeliveryState.DELIVERED:
            delivered[delivery.last_status_code].append(delivery.pk)
            continue
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            claim="",
            last_attempt_at=now,
            last_status_code=delivery.last_status_code,
            state=delivery.state,
            next_attempt_at=delivery.next_attempt_at,
            last_error=delivery.last_error,
        )
    for status_code, pks in delivered.items():
        WebhookDelivery.objects.filter(pk__in=pks).update(
            claim="",
            last_attempt_at=now,
            last_status_code=status_code,
            state=DeliveryState.DELIVERED,
            delivered_at=now,
            next_attempt_at=None,
            last_error="",
        )


def _disable_if_failing(endpoint_id: int, now: dt.datetime, last_error: str) -> bool:
    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).first()
    if endpoint is None:
        return False  # removed by its organisation while this attempt was under way
    if not endpoint.enabled or endpoint.failing_since is None:
        return False
    if not webhooks.should_disable(endpoint.consecutive_failures, now - endpoint.failing_since):
        return False
    endpoint.enabled = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = notify.disabled_reason(endpoint, last_error)
    endpoint.save(update_fields=["enabled", "disabled_at", "disabled_reason", "updated_at"])
    notify.record_disabled(
        endpoint,
        {
            "url": endpoint.url,
            "consecutive_failures": endpoint.consecutive_failures,
            "failing_since": endpoint.failing_since.isoformat(),
            "last_error": last_error[:300],
        },
    )
    return True
