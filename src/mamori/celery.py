"""The Celery application.

With ``CELERY_BROKER_URL`` set (e.g. ``redis://127.0.0.1:6379/0``) workers and beat run as
separate services. Without it, web requests and the CLI run tasks in-process and ``mamori serve``
runs one worker with an embedded beat on a broker kept in files under ``var/broker``.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mamori.settings")

app = Celery("mamori")


@app.on_configure.connect
def _configure(sender: Celery, **_kwargs) -> None:
    from django.conf import settings

    broker_url = settings.CELERY_BROKER_URL
    transport_options: dict = {}
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
        worker_prefetch_multiplier=1,
        timezone=settings.TIME_ZONE,
        beat_schedule={
            "certificate-expiry-reminders": {
                "task": "mamori.certificates.tasks.send_expiry_reminders",
                "schedule": float(settings.REMINDER_INTERVAL_SECONDS),
            },
            "supplier-survey-reminders": {
                "task": "mamori.supplychain.tasks.send_invitation_reminders",
                "schedule": float(settings.REMINDER_INTERVAL_SECONDS),
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
