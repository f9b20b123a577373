"""Webhooks through a real Celery worker with its embedded beat (what ``mamori serve`` runs on the
embedded default): the changes commit at once, with nothing sent from inside them; the worker
delivers to a receiver that answers and cuts off one that hangs at the timeout."""

from __future__ import annotations

import time

import pytest
from django.utils import translation

from mamori.earlywarning import alerts, endpoints
from mamori.earlywarning.models import Alert, AlertState, DeliveryState, WebhookDelivery
from tests.certificates.test_workers import Worker

from .alerting import claim_both_banks, import_report
from .receivers import receiver, tls_certificate

pytestmark = [pytest.mark.services, pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

TIMEOUT_SECONDS = 2


@pytest.fixture
def worker_for_webhooks(tmp_path):
    started: list[Worker] = []

    def start(ca_file) -> Worker:
        worker = Worker(tmp_path, None)
        # A development instance: only there may webhooks go to loopback receivers.
        worker.env.update(
            MAMORI_DEBUG="1",
            MAMORI_WEBHOOK_ALLOW_LOOPBACK="1",
            MAMORI_WEBHOOK_CA_FILE=str(ca_file),
            MAMORI_WEBHOOK_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
        )
        started.append(worker.start())
        return worker

    yield start
    for worker in started:  # before pytest-django empties the tables the worker still uses
        worker.stop()


def test_the_embedded_worker_delivers_and_a_hanging_receiver_holds_nothing_up(
    world, settings, tmp_path, worker_for_webhooks
):
    settings.EARLYWARNING_DOCUMENTATION_ASSETS = True
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    certificate = tls_certificate(tmp_path)
    claim_both_banks(world)
    access = world.access(world.admin)
    with (
        translation.override("en"),
        receiver(certificate=certificate) as answering,
        receiver("hang", certificate=certificate) as hanging,
    ):
        endpoints.create_endpoint(world.admin, access, world.bank, url=f"{answering.origin}/a")
        endpoints.create_endpoint(world.admin, access, world.bank, url=f"{hanging.origin}/h")
        import_report("event4_sinkhole")
        incident = Alert.objects.get(organisation=world.bank)
        started = time.monotonic()
        alerts.change_state(world.admin, access, incident, AlertState.ACKNOWLEDGED)
        committed_in = time.monotonic() - started
        assert committed_in < 0.5, committed_in
        assert WebhookDelivery.objects.filter(state=DeliveryState.PENDING).count() == 4
        assert answering.requests == []
        assert hanging.requests == []

        worker = worker_for_webhooks(certificate.cert)

        def settled() -> bool:
            states = set(WebhookDelivery.objects.values_list("endpoint__url", "state"))
            return states == {
                (f"{answering.origin}/a", DeliveryState.DELIVERED),
                (f"{hanging.origin}/h", DeliveryState.FAILED),
            }

        worker.wait_for("both deliveries to each receiver settled", settled)
        events = sorted(r.headers["x-mamori-event"] for r in answering.requests)
    assert events == ["alert.raised", "alert.state_changed"]
    assert len(hanging.requests) == 2
    for hung in WebhookDelivery.objects.filter(endpoint__url=f"{hanging.origin}/h"):
        assert hung.last_status_code is None
        assert hung.attempt == 1
        assert hung.next_attempt_at is not None
    assert worker.stop() == 0, worker.output()
