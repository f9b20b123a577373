"""Nothing lost in the background, with real components: a Redis server this module starts and
stops, real Celery worker subprocesses (tests/certificates/test_workers.py's harness), decisions
made through the real page.

- A decision made while the broker is down is answered normally; once the broker is back, a
  worker and the outbox's beat produce its PDF, once.
- A worker killed with ``kill -9`` in the middle of a task: the broker hands the task to a new
  worker after the (test-short) visibility timeout, and it completes once. The task is held in
  flight by a row lock the test takes, so the task's code is the production code.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.db import transaction
from django.urls import reverse

from mamori.assessments.models import Decision, Outcome
from mamori.certificates.models import Certificate
from mamori.certificates.tasks import render_certificate_pdf
from mamori.core import outbox
from mamori.core.models import OutboxMessage, OutboxState
from tests.certificates import certificate_expiring, days_from_today
from tests.certificates.test_workers import Worker, tasks_sent_to
from tests.conftest import client_for

pytestmark = [
    pytest.mark.services,
    pytest.mark.scale_out,
    pytest.mark.django_db(transaction=True),
]

TIMEOUT = 60.0
VISIBILITY_TIMEOUT = 3  # seconds; production's default is 300


class RedisServer:
    """``redis-server`` on a free loopback port, without persistence, that the test stops and
    starts again (on the same port) to play a broker outage."""

    def __init__(self, folder: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.folder = folder
        self.url = f"redis://127.0.0.1:{self.port}/10"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is missing; `make services` needs it too"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        pytest.fail("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _broker_pause_reset():
    outbox._broker_down_until = 0.0
    yield
    outbox._broker_down_until = 0.0


class TestWorker(Worker):
    """The certificate tests' worker, with the outbox's beat every second and a short
    visibility timeout; ``beat=False`` for a worker that only runs what it is sent."""

    __test__ = False

    def __init__(
        self, folder: Path, broker_url: str | None, files_dir: Path, *, beat: bool
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        super().__init__(folder, broker_url)
        self.files_dir = files_dir
        self.beat = beat
        self.env.update(
            {
                "MAMORI_FILES_DIR": str(files_dir),
                "MAMORI_TASK_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
                "MAMORI_OUTBOX_INTERVAL_SECONDS": "1",
                "MAMORI_OUTBOX_RETRY_SECONDS": "1",
            }
        )

    def start(self) -> TestWorker:
        self.log = self.log_path.open("wb")
        command = [sys.executable, "-m", "celery", "-A", "mamori.celery", "worker"]
        command += ["--beat"] if self.beat else []
        command += ["--pool", "solo", "--loglevel", "INFO"]
        command += ["--hostname", f"bg-{uuid.uuid4().hex[:8]}@%h"]
        self.process = subprocess.Popen(
            command, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.folder
        )
        return self

    def kill(self) -> None:
        """``kill -9``: no warm shutdown, nothing handed back to the broker."""
        self.process.kill()
        self.process.wait()
        self.log.close()

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.output()))


def wait_until(what: str, condition, *workers: TestWorker, timeout: float = TIMEOUT) -> float:
    """Poll ``condition``; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        for worker in workers:
            if worker.process.poll() is not None:
                pytest.fail(f"the worker exited:\n{worker.output()}")
        time.sleep(0.1)
    logs = "\n".join(worker.output()[-3000:] for worker in workers)
    pytest.fail(f"timed out waiting for {what}\n{logs}")


def test_a_decision_made_while_the_broker_is_down_gets_its_pdf_once_it_is_back(
    world, redis_server, tmp_path, settings
):
    settings.OUTBOX_RETRY_SECONDS = 1
    # Both ready for a decision, on the embedded default (their mail goes out in-process).
    to_pass = world.mark_all(world.submitted())
    to_fail = world.mark_all(world.submitted(failing={"A6.4"}, organisation=world.other_bank,
                                             admin=world.other_admin))  # fmt: skip
    assessor = client_for(world.assessor)

    redis_server.stop()
    with tasks_sent_to(redis_server.url):
        started = time.monotonic()
        passed = assessor.post(
            reverse("assessments:decide", args=[to_pass.pk]), {"outcome": "pass", "summary": "ok"}
        )
        failed = assessor.post(
            reverse("assessments:decide", args=[to_fail.pk]),
            {"outcome": "fail", "summary": "fix A6.4"},
        )
        answered_in = time.monotonic() - started
    # Answered as usual, the decisions and the certificate committed.
    assert passed.status_code == 302, passed.content.decode()[:300]
    assert passed.url == reverse("assessments:detail", args=[to_pass.pk])
    assert failed.status_code == 302
    certificate = Certificate.objects.get(assessment=to_pass)
    failure = Decision.objects.get(assessment=to_fail, outcome=Outcome.FAIL)
    assert not certificate.pdf
    assert not failure.report_pdf
    waiting = OutboxMessage.objects.filter(state=OutboxState.PENDING)
    assert {"mamori.certificates.tasks.render_certificate_pdf",
            "mamori.assessments.tasks.render_advice_pdf"} <= set(waiting.values_list("task", flat=True))  # fmt: skip

    redis_server.start()
    back_at = time.monotonic()
    files = tmp_path / "files"
    worker = TestWorker(tmp_path / "worker", redis_server.url, files, beat=True).start()
    try:

        def pdfs_present() -> bool:
            certificate.refresh_from_db()
            failure.refresh_from_db()
            return bool(certificate.pdf and failure.report_pdf and failure.report_pdf_en)

        wait_until("both PDFs", pdfs_present, worker)
        took = time.monotonic() - back_at
        # The beat keeps running: a few more rounds must not render anything again.
        rounds = worker.count(r"Sending due task outbox-delivery")
        wait_until(
            "three more outbox rounds",
            lambda: worker.count(r"Sending due task outbox-delivery") >= rounds + 3,
            worker,
        )
    finally:
        assert worker.stop() == 0, worker.output()
    assert (files / certificate.pdf.name).is_file()
    assert sorted(p.name for p in (files / "certificates").iterdir()) == [
        f"{certificate.number}.pdf"
    ]
    assert (files / failure.report_pdf.name).is_file()
    assert (files / failure.report_pdf_en.name).is_file()
    assert sorted(p.name for p in (files / "reports").iterdir()) == sorted(
        Path(name).name for name in (failure.report_pdf.name, failure.report_pdf_en.name)
    )
    log = worker.output()
    # Each handed to the worker once (the worker logs receipts; successes are not logged).
    assert len(re.findall(r"render_certificate_pdf\[outbox-\d+\] received", log)) == 1
    assert len(re.findall(r"render_advice_pdf\[outbox-\d+\] received", log)) == 1
    assert not OutboxMessage.objects.exclude(state=OutboxState.DONE).exists()
    print(
        f"\ndecisions answered with the broker down in {answered_in:.2f} s; "
        f"PDFs present {took:.1f} s after the broker was back (worker start included)"
    )


def test_a_task_in_flight_on_a_killed_worker_is_redelivered_and_completes_once(
    world, redis_server, tmp_path
):
    if redis_server.process is None:
        redis_server.start()
    redis_server.client().flushdb()
    files = tmp_path / "files"
    first = TestWorker(tmp_path / "first", redis_server.url, files, beat=False).start()
    try:
        wait_until("the first worker", lambda: " ready." in first.output(), first)
        with tasks_sent_to(redis_server.url):
            certificate = certificate_expiring(world, world.bank, days_from_today(300))
        message = OutboxMessage.objects.get(task=render_certificate_pdf.name)
        task_id = outbox.task_id_for(message.pk)
        # The test holds the certificate's row (on SQLite: the database's write lock), so the
        # worker's task waits at its final step, in flight, until the test lets go.
        lock = transaction.atomic()
        lock.__enter__()
        held = True

        def release() -> None:
            nonlocal held
            if held:
                lock.__exit__(None, None, None)
                held = False

        try:
            Certificate.objects.select_for_update().get(pk=certificate.pk)
            wait_until(
                "the task in flight",
                lambda: (
                    f"[{task_id}] received" in first.output()
                    and redis_server.client().hlen("unacked") == 1
                ),
                first,
            )
            first.kill()
            killed_at = time.monotonic()
            second = TestWorker(tmp_path / "second", redis_server.url, files, beat=False).start()
            redelivered_after = wait_until(
                "the redelivery", lambda: f"[{task_id}] received" in second.output(), second
            )
        finally:
            release()
        wait_until(
            "the PDF",
            lambda: Certificate.objects.filter(pk=certificate.pk).exclude(pdf="").exists(),
            second,
        )
        completed_after = time.monotonic() - killed_at
        wait_until(
            "the outbox row marked done",
            lambda: OutboxMessage.objects.filter(pk=message.pk, state=OutboxState.DONE).exists(),
            second,
        )
        assert second.stop() == 0, second.output()
    finally:
        if first.process.poll() is None:
            first.stop()
    # Redelivered by the broker (not republished by the outbox: one attempt), after the
    # visibility timeout and not before, and run to the end once.
    assert redelivered_after >= VISIBILITY_TIMEOUT - 0.5
    assert second.output().count(f"[{task_id}] received") == 1
    message.refresh_from_db()
    assert (message.state, message.attempts) == (OutboxState.DONE, 1)
    certificate.refresh_from_db()
    assert sorted(p.name for p in (files / "certificates").iterdir()) == [
        f"{certificate.number}.pdf"
    ]
    assert redis_server.client().hlen("unacked") == 0
    print(
        f"\nkill -9 to redelivery: {redelivered_after:.1f} s (visibility timeout "
        f"{VISIBILITY_TIMEOUT} s, new worker's start included); to the PDF: {completed_after:.1f} s"
    )
