"""Periodic work of the platform itself: handing over the outbox, the daily clean-up, and the
heartbeat.

The heartbeat is proof, kept in the database, that the beat sends and a worker runs tasks. The
beat sends ``heartbeat`` every ``MAMORI_HEARTBEAT_SECONDS``; once the message is with the
broker, the beat's process notes the time (``Heartbeat.BEAT``). The worker that runs the task
notes its own (``Heartbeat.WORKER``). Each process also notes itself as it starts, so a fresh
deployment is ready without waiting a period. ``core/readiness.py`` reads both rows.
"""

from __future__ import annotations

import logging

from celery.signals import after_task_publish, beat_init, worker_ready
from django.db import DatabaseError, close_old_connections

from mamori.celery import app
from mamori.core import cleanup, outbox
from mamori.core.models import Heartbeat

log = logging.getLogger(__name__)

HEARTBEAT_TASK = "mamori.core.tasks.heartbeat"


@app.task(name="mamori.core.tasks.deliver_outbox")
def deliver_outbox() -> int:
    """Hand over the outbox messages that are due (running it twice hands each over once: a
    row is claimed before it is published)."""
    return outbox.deliver_due()


@app.task(name="mamori.core.tasks.clean_up")
def clean_up() -> dict:
    report = cleanup.run()
    log.info("clean-up: %s", report.summary())
    return report.counts()


def _note(component: str) -> None:
    # Long-lived processes (the beat) keep a connection that a database restart leaves dead.
    close_old_connections()
    try:
        Heartbeat.record(component)
    except DatabaseError:
        log.warning("could not record the %s heartbeat", component, exc_info=True)


@app.task(name=HEARTBEAT_TASK, ignore_result=True)
def heartbeat() -> None:
    Heartbeat.record(Heartbeat.WORKER)


@after_task_publish.connect(sender=HEARTBEAT_TASK)
def _beat_sent_heartbeat(**_kwargs) -> None:
    _note(Heartbeat.BEAT)


@beat_init.connect
def _beat_started(**_kwargs) -> None:
    _note(Heartbeat.BEAT)


@worker_ready.connect
def _worker_started(**_kwargs) -> None:
    _note(Heartbeat.WORKER)
