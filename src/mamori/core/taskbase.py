"""The base class of every Mamori task (``mamori.celery`` names it): acknowledged late, given
back when the worker dies, a few quick retries on transient failures, and its outbox row told how
it went (see ``mamori.celery`` and ``mamori.core.outbox``)."""

from __future__ import annotations

import smtplib

from celery import Task
from django.db import OperationalError as DatabaseOperationalError

from mamori.core import outbox

# Failures that another attempt a little later may not meet. OSError covers refused and reset
# connections and timeouts (SMTP errors are OSErrors too); the database's OperationalError a
# lost connection or SQLite's "database is locked".
TRANSIENT_ERRORS = (OSError, smtplib.SMTPException, DatabaseOperationalError)


class MamoriTask(Task):
    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = TRANSIENT_ERRORS
    max_retries = 3
    retry_backoff = 2
    retry_backoff_max = 30
    retry_jitter = True

    # The outbox row of the message (if it came from the outbox) hears how it went.
    def on_success(self, retval, task_id, args, kwargs):
        outbox.task_succeeded(task_id)

    def on_retry(self, exc, task_id, args, kwargs, einfo):
        outbox.task_retrying(task_id, exc)

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        outbox.task_failed(task_id, exc)
