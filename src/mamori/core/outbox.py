"""The transactional outbox: background work recorded in the same transaction as the change that
needs it, so a broker that is away delays the work but never loses it, and never fails the
change.

``enqueue(task, *args, **kwargs)`` writes an ``OutboxMessage`` row in the caller's transaction.
Once that transaction commits, the row is handed over at once:

- with a broker (``CELERY_BROKER_URL``), it is published with a short connect timeout
  (``MAMORI_BROKER_CONNECT_TIMEOUT``); a broker that is down or slow costs the request that
  timeout at most (then, for a few seconds, nothing: the process remembers that the broker is
  away), and the row waits for the beat;
- on the embedded default (no broker; tasks run in web and CLI processes), the task runs in
  this process; a failure is logged and leaves the row pending for the embedded worker's beat.

The beat runs ``deliver_due`` every ``MAMORI_OUTBOX_INTERVAL_SECONDS``: it publishes every row
that is due. A row is due when its first hand-over failed (again after a backoff of
``MAMORI_OUTBOX_RETRY_SECONDS`` doubling up to an hour), or when it was published but its task
has not reported back within ``MAMORI_OUTBOX_REDELIVER_SECONDS`` (the broker lost it, e.g. a
Redis restarted without persistence). A task run from the outbox marks its row done when it
returns (``MamoriTask.on_success`` in ``mamori.celery``), or records the error and the next
attempt when it fails for good; after ``MAMORI_OUTBOX_MAX_ATTEMPTS`` attempts the row is given
up (state ``failed``, with its last error, for an operator to look at). Done rows are removed by
the clean-up after ``MAMORI_OUTBOX_RETENTION_DAYS``.

A task may therefore run more than once (a republished row, a redelivered message): every task
is written to have the effect of running once however often it runs.

Nothing else publishes tasks: a test (tests/core/test_outbox.py) holds every ``.delay(`` and
``apply_async(`` in src/ to this module.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import traceback

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from mamori.core.models import OutboxMessage, OutboxState

log = logging.getLogger(__name__)

# Task ids of messages published from the outbox: the worker finds its row by them.
TASK_ID_PREFIX = "outbox-"
# After a failed publish, requests leave the broker alone for this long (the beat tries again):
# a broker that is down costs one request the connect timeout, not every request.
BROKER_PAUSE_SECONDS = 10.0
_broker_down_until = 0.0


def enqueue(task, *args, **kwargs) -> OutboxMessage:
    """Record ``task(*args, **kwargs)`` in the current transaction and hand it over once the
    transaction commits (nothing happens if it rolls back). Arguments must be JSON values."""
    name = task if isinstance(task, str) else task.name
    message = OutboxMessage.objects.create(
        task=name,
        args=list(args),
        kwargs=kwargs,
        # The hand-over after commit goes first; the beat steps in if it does not happen.
        due_at=timezone.now() + retry_delay(1),
    )
    transaction.on_commit(lambda: _hand_over_after_commit(message.pk), robust=True)
    return message


def enqueue_off_request(task, *args, **kwargs) -> OutboxMessage:
    """:func:`enqueue` for work that waits on other machines (webhook deliveries), which must
    never hold up the request that made the change. With a broker it is the same: published once
    the transaction commits. On the embedded default, where :func:`enqueue` would run the task
    in this process (in the web request), the row is left, due at once, to the embedded
    worker's beat (:func:`deliver_due`, every ``MAMORI_OUTBOX_INTERVAL_SECONDS``)."""
    if not _eager():
        return enqueue(task, *args, **kwargs)
    name = task if isinstance(task, str) else task.name
    return OutboxMessage.objects.create(
        task=name, args=list(args), kwargs=kwargs, due_at=timezone.now()
    )


def retry_delay(attempts: int) -> dt.timedelta:
    base = settings.OUTBOX_RETRY_SECONDS
    return dt.timedelta(seconds=min(3600, base * 2 ** max(0, attempts - 1)))


def task_id_for(message_pk: int) -> str:
    return f"{TASK_ID_PREFIX}{message_pk}"


def message_pk_of(task_id: str | None) -> int | None:
    if not task_id or not task_id.startswith(TASK_ID_PREFIX):
        return None
    try:
        return int(task_id.removeprefix(TASK_ID_PREFIX))
    except ValueError:
        return None


def _eager() -> bool:
    from mamori.celery import app

    return bool(app.conf.task_always_eager)


def _hand_over_after_commit(message_pk: int) -> None:
    if not _eager() and time.monotonic() < _broker_down_until:
        return  # the broker failed a moment ago; the beat will publish it
    message = _claim(message_pk, first=True)
    if message is not None:
        _hand_over(message)


def _claim(message_pk: int, *, first: bool = False) -> OutboxMessage | None:
    """Take the row for one attempt: the after-commit hand-over and the beat (or two beats)
    may reach for the same row; the conditional update lets exactly one of them have it."""
    now = timezone.now()
    rows = OutboxMessage.objects.filter(pk=message_pk, state=OutboxState.PENDING)
    rows = rows.filter(attempts=0) if first else rows.filter(due_at__lte=now)
    claimed = rows.update(
        attempts=F("attempts") + 1,
        # Until the task reports back: past this, the beat publishes it again.
        due_at=now + dt.timedelta(seconds=settings.OUTBOX_REDELIVER_SECONDS),
    )
    if not claimed:
        return None
    return OutboxMessage.objects.get(pk=message_pk)


def _hand_over(message: OutboxMessage) -> bool:
    """Publish the message (or, on the embedded default, run it here). True when handed over."""
    global _broker_down_until
    if _eager():
        return _run_here(message)
    try:
        _publish(message)
    except Exception as exc:
        _broker_down_until = time.monotonic() + BROKER_PAUSE_SECONDS
        log.warning(
            "outbox message %s (%s) not published, the beat will try again: %s",
            message.pk,
            message.task,
            exc,
        )
        # A broker outage never uses up the attempts: the work waits for the broker.
        _failed(message.pk, message.attempts, _describe(exc), may_give_up=False)
        return False
    OutboxMessage.objects.filter(pk=message.pk).update(published_at=timezone.now())
    return True


def _publish(message: OutboxMessage) -> None:
    from mamori.celery import app

    timeout = settings.BROKER_CONNECT_TIMEOUT
    options = {
        **app.conf.broker_transport_options,
        # Bounded: a broker that does not answer must not hold a request for long.
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "max_retries": 0,
    }
    with app.connection_for_write(connect_timeout=timeout, transport_options=options) as conn:
        conn.ensure_connection(max_retries=0, timeout=timeout)
        app.send_task(
            message.task,
            args=message.args,
            kwargs=message.kwargs,
            task_id=task_id_for(message.pk),
            connection=conn,
            retry=False,
        )


def _run_here(message: OutboxMessage) -> bool:
    """The embedded default: run the task in this process, once (a direct call, so a task's
    own retries do not run back to back here: the row's backoff spaces them out)."""
    task = _task(message.task)
    try:
        task(*message.args, **message.kwargs)
    except Exception as exc:
        log.exception(
            "outbox message %s (%s) failed in-process; the worker's beat will try again",
            message.pk,
            message.task,
        )
        _failed(message.pk, message.attempts, _describe(exc))
        return False
    done(message.pk)
    return True


def _task(name: str):
    from mamori.celery import app

    if name not in app.tasks:
        app.loader.import_default_modules()
    return app.tasks[name]


def _describe(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text[-2000:]


def _failed(message_pk: int, attempts: int, error: str, *, may_give_up: bool = True) -> None:
    """Record a failed attempt: try again after the backoff, or give up after the last one."""
    now = timezone.now()
    rows = OutboxMessage.objects.filter(pk=message_pk, state=OutboxState.PENDING)
    if may_give_up and attempts >= settings.OUTBOX_MAX_ATTEMPTS:
        if rows.update(state=OutboxState.FAILED, last_error=error):
            log.error(
                "outbox message %s given up after %s attempts: %s", message_pk, attempts, error
            )
        return
    rows.update(last_error=error, due_at=now + retry_delay(attempts))


# --- Reports from the tasks (mamori.celery.MamoriTask) ------------------------------------------


def done(message_pk: int) -> None:
    OutboxMessage.objects.filter(pk=message_pk).exclude(state=OutboxState.DONE).update(
        state=OutboxState.DONE, done_at=timezone.now(), last_error=""
    )


def task_failed(task_id: str | None, exc: BaseException) -> None:
    message_pk = message_pk_of(task_id)
    if message_pk is None:
        return
    attempts = (
        OutboxMessage.objects.filter(pk=message_pk).values_list("attempts", flat=True).first()
    )
    if attempts is not None:
        _failed(message_pk, attempts, _describe(exc))


def task_retrying(task_id: str | None, exc: BaseException) -> None:
    message_pk = message_pk_of(task_id)
    if message_pk is not None:
        OutboxMessage.objects.filter(pk=message_pk).update(last_error=_describe(exc))


def task_succeeded(task_id: str | None) -> None:
    message_pk = message_pk_of(task_id)
    if message_pk is not None:
        done(message_pk)


# --- The beat's delivery --------------------------------------------------------------------


def deliver_due(limit: int = 500) -> int:
    """Hand over every pending row that is due, oldest first; returns how many were handed
    over. Stops at the first failed publish: the broker is away, the rest can wait."""
    now = timezone.now()
    due = list(
        OutboxMessage.objects.filter(state=OutboxState.PENDING, due_at__lte=now)
        .order_by("due_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    delivered = 0
    for message_pk in due:
        message = _claim(message_pk)
        if message is None:
            continue  # taken by another delivery a moment ago
        if _hand_over(message):
            delivered += 1
        elif not _eager():
            break
    if delivered:
        log.info("outbox: %s of %s due messages handed over", delivered, len(due))
    return delivered
