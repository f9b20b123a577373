"""Heavy uploads are parsed and evaluated by a real Celery worker on Redis, not in the request:
an agent's evidence and an offline questionnaire (the hostile million-row workbook included) are
acknowledged at once, the worker does the work, and a task delivered twice (as late
acknowledgement redelivers it after a crash) stores once. One worker (``--pool solo``, no beat)
serves the module."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.test import Client

from mamori.accounts.models import TokenKind
from mamori.audit.models import AuditEvent
from mamori.celery import app
from mamori.supplychain.models import ImportState, Invitation, OfflineImport
from mamori.supplychain.tasks import import_offline_answers
from mamori.verification.models import Evaluation, Evidence, EvidenceUpload
from mamori.verification.tasks import evaluate_evidence_upload
from tests.certificates import database_url_of_test_db
from tests.certificates.test_workers import tasks_sent_to
from tests.conftest import api_token, client_for
from tests.supplychain import test_offline, test_offline_hostile
from tests.supplychain.test_offline import download_book, fill, save
from tests.verification.conftest import post_evidence
from tests.verification.factory import debian12_evidence

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

# Database 9 of the local Redis is this module's: the certificate and re-match worker tests use
# 7 and 8 and may run at the same time. Its tests may run in two pytest-xdist processes at once,
# each with its own test database and worker: each process routes its tasks to a queue of its own.
REDIS_URL = "redis://127.0.0.1:6379/9"
QUEUE = f"mamori-upload-tests-{uuid.uuid4().hex[:12]}"
ROUTED = (
    "mamori.verification.tasks.evaluate_evidence_upload",
    "mamori.supplychain.tasks.import_offline_answers",
)
TIMEOUT = 60.0

# The fixtures of the offline tests: the survey chain, and the hostile workbook.
chain = test_offline.chain
base = test_offline_hostile.base
million_rows = test_offline_hostile.million_rows


class Worker:
    def __init__(self, folder: Path) -> None:
        self.log_path = folder / "worker.log"
        self.log = self.log_path.open("wb")
        env = {
            **os.environ,
            "DATABASE_URL": database_url_of_test_db(),
            "CELERY_BROKER_URL": REDIS_URL,
            "MAMORI_VAR_DIR": str(folder / "var"),
            "MAMORI_FILES_DIR": str(folder / "files"),
            "MAMORI_EMAIL_DIR": str(folder / "mail"),
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "PYTHONUNBUFFERED": "1",
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "mamori.celery",
                "worker",
                "--pool",
                "solo",
                "--queues",
                QUEUE,
                "--loglevel",
                "INFO",
                "--hostname",
                f"uploads-{uuid.uuid4().hex[:8]}@%h",
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, what: str, condition: Callable[[], bool]) -> float:
        started = time.monotonic()
        while time.monotonic() - started < TIMEOUT:
            if condition():
                return time.monotonic() - started
            if self.process.poll() is not None:
                pytest.fail(f"the worker exited ({self.process.returncode}):\n{self.output()}")
            time.sleep(0.1)
        pytest.fail(f"timed out waiting for {what}; worker log:\n{self.output()[-5000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def worker(django_db_blocker, tmp_path_factory) -> Iterator[Worker]:
    with django_db_blocker.unblock():
        started = Worker(tmp_path_factory.mktemp("upload-worker"))
    started.wait_for("the worker", lambda: "ready." in started.output())
    yield started
    started.stop()
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(QUEUE)  # anything left in our queue (the queue is ours alone)
    client.close()


@pytest.fixture
def on_redis():
    """``.delay()`` publishes to Redis, into this process's queue, instead of running eagerly."""
    saved = app.conf.task_routes
    app.conf.task_routes = {name: {"queue": QUEUE} for name in ROUTED}
    app.amqp.flush_routes()
    try:
        with tasks_sent_to(REDIS_URL):
            yield
    finally:
        app.conf.task_routes = saved
        app.amqp.flush_routes()


def test_agent_evidence_is_evaluated_by_the_worker(world, worker, on_redis):
    key = api_token(world.admin, world.bank, TokenKind.AGENT)
    started = time.perf_counter()
    response = post_evidence(key, debian12_evidence(hostname="worker-01"), compress=True)
    answered = time.perf_counter() - started
    assert response.status_code == 202, response.content[:500]
    assert response.json()["status"] == "pending"  # the worker has it now, not the request
    status_url = response["Location"]

    def status() -> dict:
        return Client().get(status_url, HTTP_AUTHORIZATION=f"Token {key}").json()

    evaluated = worker.wait_for("the evaluation", lambda: status()["status"] != "pending")
    done = status()
    assert done["status"] == "done", done
    assert set(done["controls"]) == {
        "firewalls",
        "secure_configuration",
        "security_update_management",
        "user_access_control",
        "malware_protection",
    }
    print(
        f"\nagent upload: 202 after {answered:.2f} s, evaluated by the worker {evaluated:.1f} s later"
    )

    # Delivered again (late acknowledgement after a crash): nothing is stored twice. The solo
    # worker takes its tasks in order, so once a later upload is evaluated, so is the repeat.
    evaluate_evidence_upload.delay(done["upload"])
    later = post_evidence(key, debian12_evidence(hostname="worker-02"), compress=True)
    worker.wait_for(
        "the later upload",
        lambda: EvidenceUpload.objects.get(pk=later.json()["upload"]).state != "pending",
    )
    assert Evidence.objects.count() == Evaluation.objects.count() == 2
    assert set(EvidenceUpload.objects.values_list("state", flat=True)) == {"done"}
    assert AuditEvent.objects.filter(action="evidence.uploaded").count() == 2


def test_offline_questionnaires_are_imported_by_the_worker(chain, worker, on_redis, million_rows):
    client = client_for(chain.user_a)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    hostile = io.BytesIO(million_rows)
    hostile.name = "answers.xlsx"
    started = time.perf_counter()
    response = client.post(f"/supply/responses/{chain.invitation.pk}/offline/", {"file": hostile})
    answered = time.perf_counter() - started
    assert response.status_code == 302
    refused = OfflineImport.objects.get()
    worker.wait_for(
        "the refusal",
        lambda: OfflineImport.objects.get(pk=refused.pk).state != ImportState.PENDING,
    )
    refused.refresh_from_db()
    assert refused.state == ImportState.FAILED
    assert refused.errors[0].startswith("The sheet 'needs' declares 1,048,576 rows")
    print(f"\nmillion-row workbook: 302 after {answered:.2f} s, refused by the worker")

    good = io.BytesIO(save(fill(download_book(client, chain.invitation))))
    good.name = "answers.xlsx"
    location = client.post(f"/supply/responses/{chain.invitation.pk}/offline/", {"file": good})[
        "Location"
    ]
    upload = OfflineImport.objects.latest("pk")
    worker.wait_for(
        "the import", lambda: OfflineImport.objects.get(pk=upload.pk).state != ImportState.PENDING
    )
    page = client.get(location).content.decode()
    assert "Your answers were imported (3 sites, 2 needs, 1 suppliers invited)." in page
    # Delivered again: imported once (a later upload, taken after it, tells it is done).
    import_offline_answers.delay(upload.pk)
    hostile = io.BytesIO(million_rows)
    hostile.name = "answers.xlsx"
    client.post(f"/supply/responses/{chain.invitation.pk}/offline/", {"file": hostile})
    last = OfflineImport.objects.latest("pk")
    worker.wait_for(
        "the later upload",
        lambda: OfflineImport.objects.get(pk=last.pk).state != ImportState.PENDING,
    )
    assert AuditEvent.objects.filter(action="supplychain.answers_imported").count() == 1
    assert Invitation.objects.filter(parent=chain.invitation).count() == 1
