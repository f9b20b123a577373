"""The Celery application.

With ``CELERY_BROKER_URL`` set (e.g. ``redis://127.0.0.1:6379/0``) workers and beat run as
separate services. Without it, web requests and the CLI run tasks in-process and ``mamori serve``
runs one worker with an embedded beat on a broker kept in files under ``var/broker``.

Work is queued only through the outbox (``mamori.core.outbox``). Delivery is at least once, by
design:

- a worker acknowledges a message after the task ran (``acks_late``), and one that dies
  mid-task (``kill -9``, out of memory) leaves it unacknowledged (``reject_on_worker_lost``):
  Redis hands it to another worker after ``MAMORI_TASK_VISIBILITY_TIMEOUT`` seconds (90 s by
  default, swept every tenth of it: back within about 100 s, not the broker's hour). That
  timeout must exceed the longest task's run time, or a task still running is handed out a
  second time;
- a worker takes one message at a time (prefetch 1), so a killed worker strands one task;
- a transient failure (the mail server, the network, a locked database:
  ``core.taskbase.TRANSIENT_ERRORS``) is retried three times with backoff of a few seconds
  (kept well below the visibility timeout, or the broker would hand the waiting retry out
  again); after that the outbox records the error and tries again with a backoff of its own
  (``MamoriTask.on_failure``).

Every task therefore has the effect of running once however often it runs (tests run each
twice).
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mamori.settings")

# Every task's base class (late acknowledgement, retries, reports to the outbox), named rather
# than imported: it needs Django's models, which this module must not load.
app = Celery("mamori", task_cls="mamori.core.taskbase:MamoriTask")


@app.on_configure.connect
def _configure(sender: Celery, **_kwargs) -> None:
    from django.conf import settings

    broker_url = settings.CELERY_BROKER_URL
    visibility = settings.CELERY_VISIBILITY_TIMEOUT
    transport_options: dict = {
        "visibility_timeout": visibility,
        # Look for abandoned messages often enough that one is back soon after its timeout
        # (kombu's default sweep is every 100 s).
        "unacked_restore_interval": max(1, min(30, visibility // 10)),
        "unacked_restore_throttle": 1,
        "socket_connect_timeout": settings.BROKER_CONNECT_TIMEOUT,
        # A broker gone without closing the connection must not hang a worker for good.
        "socket_timeout": 30,
    }
    if settings.EMBEDDED_TASKS:
        folder = settings.CELERY_BROKER_DIR
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        broker_url = "filesystem://"
        transport_options = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            # Without this kombu keeps broadcast state in ./control, wherever it was started.
            "control_folder": str(folder / "control"),
            "store_processed": False,
        }
    sender.conf.update(
        broker_url=broker_url,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        task_always_eager=settings.CELERY_TASK_ALWAYS_EAGER,
        task_eager_propagates=True,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # A worker that loses the broker stops its late-acknowledged tasks: the broker hands
        # them out again, and the same task must not also finish here.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_timeout=settings.BROKER_CONNECT_TIMEOUT,
        timezone=settings.TIME_ZONE,
        beat_schedule={
            "outbox-delivery": {
                "task": "mamori.core.tasks.deliver_outbox",
                "schedule": float(settings.OUTBOX_INTERVAL_SECONDS),
            },
            "clean-up": {"task": "mamori.core.tasks.clean_up", "schedule": 24 * 3600.0},
            "certificate-expiry-reminders": {
                "task": "mamori.certificates.tasks.send_expiry_reminders",
                "schedule": float(settings.REMINDER_INTERVAL_SECONDS),
            },
            "supplier-survey-reminders": {
                "task": "mamori.supplychain.tasks.send_invitation_reminders",
                "schedule": float(settings.REMINDER_INTERVAL_SECONDS),
            },
            # Early warning: webhook deliveries that are due again, and the daily digests
            # (queued from MAMORI_EARLYWARNING_DIGEST_HOUR, each once).
            "earlywarning-webhook-retries": {
                "task": "mamori.earlywarning.tasks.retry_webhook_deliveries",
                "schedule": float(settings.OUTBOX_INTERVAL_SECONDS),
            },
            "earlywarning-daily-digests": {
                "task": "mamori.earlywarning.tasks.send_daily_digests",
                "schedule": float(settings.REMINDER_INTERVAL_SECONDS),
            },
            # The sector's figures of yesterday, stored once the day is over (hourly, so a
            # beat that was away at midnight catches up; a day already stored costs a query).
            "earlywarning-sector-figures": {
                "task": "mamori.earlywarning.tasks.sample_sector",
                "schedule": float(settings.REMINDER_INTERVAL_SECONDS),
            },
            # Findings that have gone over the scheme's deadline since they were found: each
            # raised once, on the day it crosses (hourly, like the figures above).
            "earlywarning-software-deadlines": {
                "task": "mamori.earlywarning.tasks.sweep_software_deadlines",
                "schedule": float(settings.REMINDER_INTERVAL_SECONDS),
            },
            # Each organisation's metric samples of yesterday, sealed once the day is over
            # (hourly, so a beat that was away at midnight catches up).
            "reporting-daily-samples": {
                "task": "mamori.reporting.tasks.sample_days",
                "schedule": float(settings.REMINDER_INTERVAL_SECONDS),
            },
            # The last quarter's board packs once it is sampled, and the owner's reminder of
            # a pack still unsigned 30 days after its quarter.
            "reporting-quarterly-packs": {
                "task": "mamori.reporting.tasks.quarterly_packs",
                "schedule": float(settings.REMINDER_INTERVAL_SECONDS),
            },
            # Each feed is read on its own interval: this only finds the ones that are due.
            "earlywarning-feeds": {
                "task": "mamori.earlywarning.tasks.read_due_feeds",
                "schedule": float(settings.EARLYWARNING_FEED_CHECK_SECONDS),
            },
            # Beat and worker liveness for the readiness check (core/tasks.py). A heartbeat
            # that waited in the queue until it is stale proves nothing: it expires.
            "heartbeat": {
                "task": "mamori.core.tasks.heartbeat",
                "schedule": float(settings.HEARTBEAT_SECONDS),
                "options": {"expires": float(settings.HEARTBEAT_STALE_SECONDS)},
            },
        },
        beat_schedule_filename=str(settings.VAR_DIR / "celerybeat-schedule"),
    )


app.autodiscover_tasks()
