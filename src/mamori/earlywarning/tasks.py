"""Background work of early warning. Every task has the effect of running once however often it
runs (the outbox and the broker deliver at least once).

- ``read_due_feeds`` (beat, every ``EARLYWARNING_FEED_CHECK_SECONDS``): one ``read_feed`` per
  enabled feed with a location whose interval has elapsed, through the outbox.
- ``read_feed(feed_id)``: claims the feed (moves its ``last_run_at`` on, if it is still due —
  so a message delivered twice, or two workers, read it once) and imports its location with
  ``feeding.import_location``: network reports, KEV, OSV, EPSS, files or URLs. A location that
  cannot be read is recorded as a failed run and tried again at the next interval.
- ``raise_software_alerts(advisory_ids, import_run_id)``: queued when the re-match of an
  advisory import is done (``verification.signals.fleet_rematched``); ``software.raise_alerts``.
- ``raise_host_software_alerts(host_ids)``: queued when an upload's evaluation finds KEV-listed
  or overdue packages on a host (``verification.signals.host_evaluated``).
- ``sweep_software_deadlines`` (beat, hourly): the findings that went over the scheme's
  deadline since they were found (``software.sweep_deadlines``).
- ``sample_sector`` (beat, hourly): stores the sector's figures of yesterday (and of the
  finished days before it the beat missed), each once it is over (``sector.sample_finished_days``).
- Alert e-mail (at once and daily digests) through ``send_once``, webhook deliveries through
  their claims.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mamori.celery import app
from mamori.core import outbox
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


def is_due(feed, now: dt.datetime) -> bool:
    """Enabled, read from somewhere, and not read within its interval."""
    if not feed.enabled or not feed.location:
        return False
    if feed.last_run_at is None:
        return True
    return feed.last_run_at <= now - dt.timedelta(minutes=feed.interval_minutes)


def _claim(feed_id: int, now: dt.datetime):
    """The feed, if it is due and this call is the one that moved its ``last_run_at`` on (a
    conditional update on the value read: of two callers exactly one succeeds)."""
    from mamori.earlywarning.models import Feed

    feed = Feed.objects.filter(pk=feed_id).first()
    if feed is None or not is_due(feed, now):
        return None
    claimed = Feed.objects.filter(pk=feed_id, last_run_at=feed.last_run_at)
    if feed.last_run_at is None:
        claimed = Feed.objects.filter(pk=feed_id, last_run_at__isnull=True)
    if not claimed.update(last_run_at=now):
        return None
    return feed


@app.task(name="mamori.earlywarning.tasks.read_feed")
def read_feed(feed_id: int) -> dict:
    """Read one feed's location if it is due; returns what was done."""
    from mamori.earlywarning import feeding
    from mamori.earlywarning.feeds.errors import FeedError
    from mamori.earlywarning.models import FeedRun, RunState

    now = timezone.now()
    feed = _claim(feed_id, now)
    if feed is None:
        return {"feed": feed_id, "read": False}
    try:
        runs = feeding.import_location(feed.name, feed.location)
    except FeedError as error:
        message = error.render(_)
        run = feed.runs.first()
        if run is None or run.started_at < now or run.state != RunState.FAILED:
            # Refused before this read recorded a failed run of its own (the URL did not
            # answer, the file is missing, a later file of a folder was refused whole): the
            # failure is recorded all the same, so ``mamori earlywarning feeds`` shows it.
            run = FeedRun.objects.create(
                feed=feed,
                source=feed.location[:500],
                state=RunState.FAILED,
                finished_at=timezone.now(),
                failure=message[:2000],
            )
        log.warning("feed %s not read: %s", feed.name, message)
        return {"feed": feed_id, "read": False, "runs": [run.pk], "failure": message}
    return {"feed": feed_id, "read": True, "runs": [run.pk for run in runs]}


@app.task(name="mamori.earlywarning.tasks.read_due_feeds")
def read_due_feeds() -> int:
    """Queue a read of every feed whose interval has elapsed; returns how many."""
    from mamori.earlywarning.models import Feed

    now = timezone.now()
    due = [
        feed.pk
        for feed in Feed.objects.filter(enabled=True).exclude(location="").order_by("pk")
        if is_due(feed, now)
    ]
    with transaction.atomic():
        for feed_id in due:
            outbox.enqueue(read_feed, feed_id)
    return len(due)


@app.task(name="mamori.earlywarning.tasks.raise_software_alerts")
def raise_software_alerts(advisory_ids: list[str], import_run_id: int | None) -> dict:
    """Raise the software alerts of one import's re-matched advisories."""
    from mamori.earlywarning import software

    raised = software.raise_alerts(advisory_ids, import_run_id=import_run_id)
    return {"findings": raised.findings, "new": raised.new, "updated": raised.updated}


def on_fleet_rematched(sender=None, advisory_ids=(), run=None, **_kwargs) -> None:
    """Receiver of ``verification.signals.fleet_rematched``: the alerts are raised by a task of
    their own (through the outbox), so a failure there never undoes or repeats the re-match."""
    if not advisory_ids:
        return
    outbox.enqueue(raise_software_alerts, sorted(advisory_ids), run)


@app.task(name="mamori.earlywarning.tasks.raise_host_software_alerts")
def raise_host_software_alerts(host_ids: list[int]) -> dict:
    """Raise the software alerts of these hosts' latest evaluations."""
    from mamori.earlywarning import software

    raised = software.raise_for_hosts(host_ids)
    return {"findings": raised.findings, "new": raised.new, "updated": raised.updated}


def on_host_evaluated(sender=None, host_id=None, **_kwargs) -> None:
    """Receiver of ``verification.signals.host_evaluated`` (in the upload's transaction)."""
    if host_id is not None:
        outbox.enqueue(raise_host_software_alerts, [host_id])


@app.task(name="mamori.earlywarning.tasks.sweep_software_deadlines")
def sweep_software_deadlines() -> dict:
    """Beat: the findings that have gone over the scheme's deadline since they were found."""
    from mamori.earlywarning import software

    raised = software.sweep_deadlines()
    if raised.new:
        log.info("early warning: %s findings went over the deadline", raised.new)
    return {"findings": raised.findings, "new": raised.new}


@app.task(name="mamori.earlywarning.tasks.sample_sector")
def sample_sector() -> list[str]:
    """Beat: the sector's figures of the finished days not stored since they ended."""
    from mamori.earlywarning import sector

    return [stored.day.isoformat() for stored in sector.sample_finished_days()]
