"""The transactional outbox (core/outbox.py): work recorded with the change that needs it, handed
over after commit, never lost and never failing the change when the broker is away; retried
with backoff; given up after the last attempt; and the only place that publishes tasks."""

from __future__ import annotations

import datetime as dt
import re
import socket
import time
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from mamori.certificates.models import Certificate
from mamori.certificates.tasks import render_certificate_pdf
from mamori.core import outbox
from mamori.core.models import OutboxMessage, OutboxState
from mamori.core.tasks import deliver_outbox
from tests.certificates import certificate_expiring, days_from_today
from tests.certificates.test_workers import tasks_sent_to

SRC = Path(__file__).resolve().parents[2] / "src"


def test_no_code_but_the_outbox_publishes_tasks():
    """``.delay()``, ``apply_async()`` and ``send_task()`` anywhere else would queue work that
    is lost when the broker is away, or that fails the request that queued it."""
    publishing = re.compile(r"\.delay\(|\.apply_async\(|\bsend_task\(|\.apply\(")
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "mamori" / "core" / "outbox.py" or "migrations" in path.parts:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if publishing.search(line):
                offenders.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert offenders == []


def closed_port() -> int:
    with socket.socket() as probe:  # a port on which nothing listens
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def broker_pause_reset():
    outbox._broker_down_until = 0.0
    yield
    outbox._broker_down_until = 0.0


@pytest.mark.django_db
def test_work_of_a_rolled_back_change_is_never_done(world, django_capture_on_commit_callbacks):
    def change_that_fails():
        with transaction.atomic():
            certificate_expiring(world, world.bank, days_from_today(300))
            assert OutboxMessage.objects.count() == 1
            raise RuntimeError("the change fails after queuing its PDF")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        change_that_fails()
    assert callbacks == []
    assert not OutboxMessage.objects.exists()
    assert not Certificate.objects.exists()


@pytest.mark.django_db
def test_embedded_default_runs_the_task_after_commit_and_marks_it_done(
    world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        certificate = certificate_expiring(world, world.bank, days_from_today(300))
        (message,) = OutboxMessage.objects.all()
        assert message.state == OutboxState.PENDING  # nothing ran before the commit
        certificate.refresh_from_db()
        assert not certificate.pdf
    certificate.refresh_from_db()
    assert certificate.pdf
    message.refresh_from_db()
    assert (message.task, message.args) == (render_certificate_pdf.name, [certificate.pk])
    assert (message.state, message.attempts, message.last_error) == (OutboxState.DONE, 1, "")
    assert message.done_at is not None


@pytest.mark.django_db
def test_a_failure_in_process_leaves_the_row_for_the_beat_with_backoff(
    world, django_capture_on_commit_callbacks, settings, monkeypatch
):
    settings.OUTBOX_RETRY_SECONDS = 30
    fonts_missing = OSError("no fonts today")

    def broken(*_args, **_kwargs):
        raise fonts_missing

    monkeypatch.setattr("mamori.certificates.tasks.render_pdf", broken)
    with django_capture_on_commit_callbacks(execute=True):
        certificate = certificate_expiring(world, world.bank, days_from_today(300))
    message = OutboxMessage.objects.get()
    assert message.state == OutboxState.PENDING
    assert message.attempts == 1
    assert message.last_error == "OSError: no fonts today"
    wait = (message.due_at - timezone.now()).total_seconds()
    assert 25 < wait <= 30

    # Not due yet: the beat leaves it alone.
    assert deliver_outbox() == 0
    # Time passes; the fault is gone: the beat's run renders it.
    monkeypatch.undo()
    OutboxMessage.objects.update(due_at=timezone.now())
    assert deliver_outbox() == 1
    message.refresh_from_db()
    assert (message.state, message.attempts) == (OutboxState.DONE, 2)
    certificate.refresh_from_db()
    assert certificate.pdf


@pytest.mark.django_db
def test_backoff_doubles_up_to_an_hour_and_the_last_attempt_gives_up(settings, monkeypatch, caplog):
    settings.OUTBOX_RETRY_SECONDS = 30
    settings.OUTBOX_MAX_ATTEMPTS = 3
    assert [outbox.retry_delay(n).total_seconds() for n in (1, 2, 3, 8, 9, 50)] == [
        30,
        60,
        120,
        3600,
        3600,
        3600,
    ]

    def bad_data(*_args):
        raise ValueError("bad data")

    monkeypatch.setattr("mamori.certificates.tasks.render_certificate_pdf.run", bad_data)
    message = OutboxMessage.objects.create(
        task=render_certificate_pdf.name, args=[1], due_at=timezone.now()
    )
    for attempt in (1, 2, 3):
        assert deliver_outbox() == 0
        message.refresh_from_db()
        assert message.attempts == attempt
        OutboxMessage.objects.filter(pk=message.pk).update(due_at=timezone.now())
    assert message.state == OutboxState.FAILED
    assert message.last_error == "ValueError: bad data"
    assert "given up after 3 attempts" in caplog.text
    assert deliver_outbox() == 0  # never again


@pytest.mark.django_db(transaction=True)
def test_a_broker_that_is_down_costs_the_request_little_and_loses_nothing(
    world, broker_pause_reset, settings
):
    """Committed with the broker's port closed: the change stands, the row waits with the
    error, and for a few seconds the next changes do not even try the broker."""
    settings.BROKER_CONNECT_TIMEOUT = 2
    with tasks_sent_to(f"redis://127.0.0.1:{closed_port()}/0"):
        started = time.monotonic()
        first = certificate_expiring(world, world.bank, days_from_today(300))
        first_took = time.monotonic() - started
        started = time.monotonic()
        second = certificate_expiring(world, world.other_bank, days_from_today(300))
        second_took = time.monotonic() - started
    assert Certificate.objects.filter(pk__in=[first.pk, second.pk]).count() == 2
    rows = list(OutboxMessage.objects.order_by("pk"))
    assert [row.args for row in rows] == [[first.pk], [second.pk]]
    assert all(row.state == OutboxState.PENDING for row in rows)
    assert "Connection refused" in rows[0].last_error
    assert rows[0].attempts == 1
    assert rows[0].published_at is None
    # The second did not try: the beat publishes it (attempts still 0).
    assert (rows[1].attempts, rows[1].last_error) == (0, "")
    assert first_took < 2.0, first_took
    assert second_took < first_took + 0.5
    print(f"\ncommit with the broker down: {first_took:.3f} s, then {second_took:.3f} s")


@pytest.mark.django_db(transaction=True)
def test_a_broker_that_accepts_and_never_answers_holds_the_request_for_the_timeout(
    world, broker_pause_reset, settings
):
    settings.BROKER_CONNECT_TIMEOUT = 1
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        with tasks_sent_to(f"redis://127.0.0.1:{silent.getsockname()[1]}/0"):
            started = time.monotonic()
            certificate_expiring(world, world.bank, days_from_today(300))
            took = time.monotonic() - started
    message = OutboxMessage.objects.get()
    assert message.state == OutboxState.PENDING
    assert "Timeout" in message.last_error
    assert 0.9 < took < 2.5, took


@pytest.mark.django_db
def test_two_deliveries_at_once_hand_each_message_over_once(monkeypatch):
    """The beat and a late after-commit hand-over, or two beats, race for a row: the claim
    lets one of them have it."""
    ran = []
    monkeypatch.setattr(
        "mamori.certificates.tasks.render_certificate_pdf.run", lambda pk: ran.append(pk)
    )
    message = OutboxMessage.objects.create(
        task=render_certificate_pdf.name, args=[7], due_at=timezone.now() - dt.timedelta(1)
    )
    claimed = outbox._claim(message.pk)
    assert claimed is not None
    assert outbox._claim(message.pk) is None  # the second finds it taken
    assert outbox._claim(message.pk, first=True) is None
    assert deliver_outbox() == 0
    assert ran == []


@pytest.mark.django_db
def test_work_kept_off_the_request_waits_for_the_beat_on_the_embedded_default(
    django_capture_on_commit_callbacks, monkeypatch
):
    """``enqueue_off_request`` (webhook deliveries): where ``enqueue`` would run the task in
    the committing request, the row is left due at once for the beat instead."""
    ran = []
    monkeypatch.setattr(
        "mamori.certificates.tasks.render_certificate_pdf.run", lambda pk: ran.append(pk)
    )
    with django_capture_on_commit_callbacks(execute=True):
        message = outbox.enqueue_off_request(render_certificate_pdf, 7)
    assert ran == []
    message.refresh_from_db()
    assert (message.state, message.attempts) == (OutboxState.PENDING, 0)
    assert message.due_at <= timezone.now()
    assert deliver_outbox() == 1
    assert ran == [7]
    message.refresh_from_db()
    assert (message.state, message.attempts) == (OutboxState.DONE, 1)


@pytest.mark.django_db(transaction=True)
def test_work_kept_off_the_request_is_published_after_commit_with_a_broker(
    broker_pause_reset, settings
):
    """With a broker it is published once the transaction commits, as ``enqueue`` does (here
    the broker is down: the row waits with the error, the commit is not held up)."""
    settings.BROKER_CONNECT_TIMEOUT = 1
    with tasks_sent_to(f"redis://127.0.0.1:{closed_port()}/0"), transaction.atomic():
        message = outbox.enqueue_off_request(render_certificate_pdf, 7)
        assert OutboxMessage.objects.get(pk=message.pk).attempts == 0
    message.refresh_from_db()
    assert message.attempts == 1
    assert "Connection refused" in message.last_error
