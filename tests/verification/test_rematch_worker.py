"""The re-match through a real Celery worker on Redis (the scale-out set-up): the task and its
arguments survive serialisation, the worker finds it, and only the affected host is evaluated
again. Uses the worker harness of the certificate tests."""

from __future__ import annotations

import shutil

import pytest
from django.core.management import call_command

from mamori.verification.models import Evaluation, Host, Trigger
from tests.certificates.test_workers import Worker, tasks_sent_to
from tests.datafiles import DEBIAN12
from tests.verification.conftest import import_advisories, store
from tests.verification.factory import debian12_evidence, with_source_version

pytestmark = [
    pytest.mark.services,
    pytest.mark.scale_out,
    pytest.mark.django_db(transaction=True),
]

# Database 8 of the local Redis: the certificate worker tests use 7, and may run at the same
# time (pytest-xdist); a shared database would let one flush or consume the other's messages.
REDIS_URL = "redis://127.0.0.1:6379/8"
WEBP = "MAMORI-DEB12-CVE-2023-4863-libwebp"


@pytest.fixture
def redis_db():
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def test_rematch_runs_on_a_redis_worker(world, tmp_path, redis_db):
    """The import commits in this process; a worker process on Redis receives the changed
    advisory ids, builds its own index and patches the one affected host."""
    folder = tmp_path / "osv"
    folder.mkdir()
    for path in DEBIAN12.glob("*-openssl.json"):
        shutil.copy(path, folder / path.name)
    import_advisories(folder)  # matched hosts: the new advisory will patch, not re-evaluate
    with_webp = store(
        world.admin,
        world.bank,
        with_source_version(
            debian12_evidence(hostname="webp", machine_id="a" * 32), "libwebp", "1.2.4-0.2"
        ),
    ).host
    without = debian12_evidence(hostname="no-webp", machine_id="b" * 32)
    without["packages"]["items"] = [
        item for item in without["packages"]["items"] if item["source_name"] != "libwebp"
    ]
    other = store(world.admin, world.bank, without).host
    webp = tmp_path / "webp"
    webp.mkdir()
    shutil.copy(DEBIAN12 / f"{WEBP}.json", webp)

    worker = Worker(tmp_path, REDIS_URL).start()
    try:
        with tasks_sent_to(REDIS_URL):
            call_command("advisories", "import", str(webp), "--quiet")
        worker.wait_for(
            "the re-match",
            lambda: Evaluation.objects.filter(rematched_at__isnull=False).exists(),
        )
        patched = Evaluation.objects.get(rematched_at__isnull=False)
        assert patched == Host.objects.get(pk=with_webp.pk).latest_evaluation
        assert patched.vulnerability_rows.filter(advisory=WEBP).exists()
        assert "mamori.verification.tasks.rematch_advisories" in worker.output()
    finally:
        assert worker.stop() == 0, worker.output()
    assert not Evaluation.objects.filter(trigger=Trigger.REMATCH).exists()
    assert Host.objects.get(pk=other.pk).latest_evaluation.rematched_at is None
