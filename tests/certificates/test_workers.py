"""Real Celery workers with an embedded beat send the expiry reminders: once on the embedded
filesystem broker (what ``mamori serve`` runs without extra services) and once on Redis (the
scale-out set-up). Each test starts ``celery worker --beat`` as a subprocess against the test
database and reads the e-mail it writes to files."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.test import override_settings
from django.utils import timezone
from pypdf import PdfReader

from mamori.celery import app
from mamori.certificates.models import Certificate, Reminder
from mamori.core.models import OutboxMessage
from tests.certificates import (
    certificate_expiring,
    database_url_of_test_db,
    days_from_today,
    read_mail_dir,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

# Database 7 of the local Redis is reserved for these tests, so other suites sharing the server
# neither see our messages nor feed us theirs.
REDIS_URL = "redis://127.0.0.1:6379/7"
TIMEOUT = 30.0
BEAT_LINE = "Sending due task certificate-expiry-reminders"


class Worker:
    """``celery -A mamori.celery worker --beat --pool solo`` in its own var, mail and files
    directories, with the beat firing the reminder task every second."""

    def __init__(self, folder: Path, broker_url: str | None) -> None:
        self.folder = folder
        self.var_dir = folder / "var"
        self.mail_dir = folder / "mail"
        self.files_dir = folder / "files"
        self.log_path = folder / "worker.log"
        env = {
            **os.environ,
            "DATABASE_URL": database_url_of_test_db(),
            "MAMORI_VAR_DIR": str(self.var_dir),
            "MAMORI_FILES_DIR": str(self.files_dir),
            "MAMORI_EMAIL_DIR": str(self.mail_dir),
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "MAMORI_REMINDER_INTERVAL_SECONDS": "1",
            "MAMORI_OUTBOX_INTERVAL_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("CELERY_BROKER_URL", None)
        if broker_url is None:
            # What `mamori serve` does on the embedded default: not eager inside the worker.
            env["MAMORI_WORKER_PROCESS"] = "1"
        else:
            env["CELERY_BROKER_URL"] = broker_url
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "mamori.celery",
                "worker",
                "--beat",
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "--hostname",
                f"ops-{uuid.uuid4().hex[:8]}@%h",
            ],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=self.folder,
        )
        return self

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def beats(self) -> int:
        return self.output().count(BEAT_LINE)

    def wait_for(self, what: str, condition) -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if condition():
                return
            if self.process.poll() is not None:
                pytest.fail(f"the worker exited ({self.process.returncode}):\n{self.output()}")
            time.sleep(0.25)
        pytest.fail(f"timed out waiting for {what}; worker log:\n{self.output()}")

    def stop(self) -> int:
        """Warm shutdown, as a service manager does it; the exit status says if it was clean."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode


@pytest.fixture
def start_worker(tmp_path):
    started: list[Worker] = []

    def start(broker_url: str | None) -> Worker:
        worker = Worker(tmp_path, broker_url).start()
        started.append(worker)
        return worker

    yield start
    # Stop before pytest-django empties the tables the worker is still using.
    for worker in started:
        worker.stop()


@pytest.fixture
def redis_db():
    """Our Redis database, emptied before and after so no stale message reaches the worker."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@contextlib.contextmanager
def tasks_sent_to(broker_url: str):
    """Make the work this process queues (``core.outbox``) go to ``broker_url`` instead of
    running in-process, and put everything back afterwards for the other tests."""
    saved = {
        name: app.conf[name]
        for name in ("broker_url", "broker_transport_options", "task_always_eager")
    }
    drop_broker_pools()
    app.conf.update(broker_url=broker_url, broker_transport_options={}, task_always_eager=False)
    try:
        with override_settings(
            CELERY_TASK_ALWAYS_EAGER=False, CELERY_BROKER_URL=broker_url, EMBEDDED_TASKS=False
        ):
            yield
    finally:
        drop_broker_pools()
        app.conf.update(saved)


def drop_broker_pools() -> None:
    """Celery caches its connection and producer pools for the broker it first used (even
    eager calls take a producer from them), so switching brokers needs them dropped, as
    Celery itself does after a fork. Kombu keeps producer pools per connection in a registry
    of its own; a pool closed here must not be handed out from there again."""
    from kombu import pools

    if app._pool is not None:
        app._pool.force_close_all()
    app._after_fork()
    pools.reset()


def due_certificates(world):
    """Two certificates due for a reminder: the bank's expires in 30 days (alice reads
    Japanese, bob English) and the other bank's expired a week ago (oscar, Japanese)."""
    world.signatory.language = "en"
    world.signatory.save(update_fields=["language"])
    soon = certificate_expiring(world, world.bank, days_from_today(30))
    lapsed = certificate_expiring(world, world.other_bank, days_from_today(-7))
    return soon, lapsed


def assert_reminder_mail(world, worker: Worker, soon: Certificate, lapsed: Certificate) -> None:
    messages = {message["To"]: message for message in read_mail_dir(worker.mail_dir)}
    assert set(messages) == {world.admin.email, world.signatory.email, world.other_admin.email}
    subjects = {to: message["Subject"].strip() for to, message in messages.items()}
    assert subjects[world.admin.email] == f"認定証 {soon.number} の有効期限まであと30日です"
    assert subjects[world.signatory.email] == f"Certificate {soon.number} expires in 30 days"
    assert subjects[world.other_admin.email] == f"認定証 {lapsed.number} の有効期限が切れました"
    assert "テスト銀行の認定証" in messages[world.admin.email].get_content()
    assert "of Test Bank expires on" in messages[world.signatory.email].get_content()
    assert "他行の認定証" in messages[world.other_admin.email].get_content()


def run_reminders_through(world, worker: Worker) -> None:
    soon, lapsed = due_certificates(world)
    worker.wait_for(
        "three reminder e-mails",
        lambda: Reminder.objects.count() == 2 and len(read_mail_dir(worker.mail_dir)) == 3,
    )
    assert set(Reminder.objects.values_list("certificate__number", "kind")) == {
        (soon.number, "before_30"),
        (lapsed.number, "after_7"),
    }
    assert_reminder_mail(world, worker, soon, lapsed)

    # The beat keeps firing every second; three more runs must not send anything again.
    beats = worker.beats()
    worker.wait_for("three more beats", lambda: worker.beats() >= beats + 3)
    time.sleep(1.5)  # the last beat's task has been handled by the single solo worker
    assert Reminder.objects.count() == 2
    assert len(read_mail_dir(worker.mail_dir)) == 3


@pytest.mark.embedded
def test_embedded_worker_and_beat_send_reminders(world, start_worker, monkeypatch):
    """Also: a PDF that failed to render in the web process (in-process on the embedded
    default) waits in the outbox, and this worker's beat renders it."""

    def no_fonts(*_args, **_kwargs):
        raise OSError("fonts not installed yet")

    monkeypatch.setattr("mamori.certificates.tasks.render_pdf", no_fonts)
    # Of an organisation with no reminders due, so it counts as no renewal of theirs.
    failed = certificate_expiring(world, world.secretariat, days_from_today(300))
    monkeypatch.undo()
    message = OutboxMessage.objects.get(task="mamori.certificates.tasks.render_certificate_pdf")
    assert (message.state, message.last_error) == ("pending", "OSError: fonts not installed yet")
    OutboxMessage.objects.filter(pk=message.pk).update(due_at=timezone.now())  # backoff over

    worker = start_worker(None)
    run_reminders_through(world, worker)

    def rendered() -> bool:
        message.refresh_from_db()
        return message.state == "done"

    worker.wait_for("the PDF that failed in-process", rendered)
    failed.refresh_from_db()
    assert (worker.files_dir / failed.pdf.name).is_file()
    assert message.attempts == 2

    assert "filesystem://" in worker.output()
    # The broker kept its queue in files under the worker's own var directory.
    assert (worker.var_dir / "broker" / "queue").is_dir()
    assert any(worker.var_dir.glob("celerybeat-schedule*"))
    assert worker.stop() == 0, worker.output()


@pytest.mark.scale_out
def test_redis_worker_and_beat_send_reminders_and_run_queued_tasks(
    world, start_worker, redis_db, settings
):
    eager_before = app.conf.task_always_eager
    worker = start_worker(REDIS_URL)
    run_reminders_through(world, worker)
    assert "Connected to redis://:**@127.0.0.1:6379/7" in worker.output()

    # Issuing a certificate queues its PDF in the outbox; with eager execution off here the
    # task goes through Redis and the worker renders it into the worker's file store.
    with tasks_sent_to(REDIS_URL):
        assert app.conf.task_always_eager is False
        certificate = certificate_expiring(world, world.bank, days_from_today(300))

    def pdf_rendered() -> bool:
        certificate.refresh_from_db()
        return bool(certificate.pdf) and (worker.files_dir / certificate.pdf.name).is_file()

    worker.wait_for("the certificate PDF", pdf_rendered)
    assert not (Path(settings.PRIVATE_FILES_ROOT) / certificate.pdf.name).exists()
    text = "".join(
        page.extract_text() for page in PdfReader(worker.files_dir / certificate.pdf.name).pages
    )
    assert certificate.number in text
    assert worker.stop() == 0, worker.output()
    assert app.conf.task_always_eager is eager_before
