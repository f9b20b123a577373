"""Periodic work of the platform itself: handing over the outbox and the daily clean-up."""

from __future__ import annotations

import logging

from mamori.celery import app
from mamori.core import cleanup, outbox

log = logging.getLogger(__name__)


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
