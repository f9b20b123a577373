"""The re-match through a real Celery worker on Redis (the scale-out set-up): the task and its
arguments survive serialisation, the worker finds it, and only the affected host is evaluated
again. Uses the worker harness of the certificate tests."""

from __future__ import annotations

import pytest

from mamori.advisories.signals import advisories_changed
from mamori.verification.models import Evaluation, Trigger
from tests.certificates.test_workers import Worker, tasks_sent_to
from tests.verification.conftest import store
from tests.verification.factory import debian12_evidence, with_source_version

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

# Database 8 of the local Redis: the certificate worker tests use 7, and may run at the same
# time (pytest-xdist); a shared database would let one flush or consume the other's messages.
REDIS_URL = "redis://127.0.0.1:6379/8"


@pytest.fixture
def redis_db():
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def test_rematch_runs_on_a_redis_worker(world, tmp_path, redis_db):
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
    store(world.admin, world.bank, without)

    worker = Worker(tmp_path, REDIS_URL).start()
    try:
        with tasks_sent_to(REDIS_URL):
            advisories_changed.send(sender=None, keys={("Debian", "libwebp")})
        worker.wait_for(
            "the re-match",
            lambda: Evaluation.objects.filter(trigger=Trigger.REMATCH).exists(),
        )
        rematched = Evaluation.objects.get(trigger=Trigger.REMATCH)
        assert rematched.evidence.host == with_webp
        with_webp.refresh_from_db()
        assert with_webp.latest_evaluation == rematched
        assert "mamori.verification.tasks.rematch_hosts" in worker.output()
    finally:
        assert worker.stop() == 0, worker.output()
    assert Evaluation.objects.filter(trigger=Trigger.REMATCH).count() == 1
