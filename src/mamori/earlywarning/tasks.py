"""Background work of early warning: alert e-mail (at once and daily digests) and webhook
deliveries. Each has the effect of running once however often it runs (the outbox and the
broker deliver at least once): e-mail through ``send_once``, deliveries through their claims."""

from __future__ import annotations

import logging

from mamori.celery import app
from mamori.earlywarning import delivery, notify

log = logging.getLogger(__name__)


@app.task(name=notify.SEND_ALERT_MAIL)
def send_alert_mail(organisation_id: int, occurrences: list[list[int]]) -> int:
    """The immediate e-mail of raised alerts (``notify.alerts_raised`` queues it)."""
    return notify.send_alert_mail(organisation_id, occurrences)


@app.task(name="mamori.earlywarning.tasks.send_daily_digests")
def send_daily_digests() -> int:
    """Beat, hourly: queue the digests that are due, each once."""
    queued = notify.queue_digests()
    if queued:
        log.info("early warning: %s daily digests queued", queued)
    return queued


@app.task(name=notify.SEND_DIGEST)
def send_digest(digest_id: int) -> int:
    return notify.send_digest(digest_id)


@app.task(name=notify.DELIVER_WEBHOOKS)
def deliver_webhooks(delivery_ids: list[int]) -> dict:
    """The first attempt of these deliveries, as soon as they are recorded; retries are the
    beat's (``retry_webhook_deliveries``)."""
    return delivery.deliver_due(list(delivery_ids)).as_dict()


@app.task(name="mamori.earlywarning.tasks.retry_webhook_deliveries")
def retry_webhook_deliveries() -> dict:
    """Beat: every delivery that is due (retries, and first attempts left over)."""
    report = delivery.deliver_due()
    if report.failed or report.given_up or report.endpoints_disabled:
        log.info("webhook deliveries: %s", report.as_dict())
    return report.as_dict()


@app.task(name=notify.SEND_WEBHOOK_DISABLED_NOTICE)
def send_webhook_disabled_notice(endpoint_id: int, disabled_at: str) -> int:
    return notify.send_webhook_disabled_notice(endpoint_id, disabled_at)
