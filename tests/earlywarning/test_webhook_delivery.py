"""Webhooks end to end: an organisation's administrator registers a receiver (SSRF refused), an
alert raised by an imported report reaches a real HTTPS receiver on loopback (started by the
test, tests/earlywarning/receivers.py) signed and in the documented schema; failures are
retried with backoff and logged, a hanging receiver is bounded and never holds up the change,
repeated failures turn the webhook off with a notice; every task twice has the effect of once."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import jsonschema
import pytest
from django.utils import timezone, translation

from mamori.audit.models import AuditEvent
from mamori.core.errors import MamoriError, NotAllowed, WrongState
from mamori.core.models import OutboxMessage
from mamori.core.tasks import deliver_outbox
from mamori.earlywarning import alerts, delivery, endpoints, notify, payloads
from mamori.earlywarning.models import (
    Alert,
    AlertState,
    DeliveryState,
    WebhookDelivery,
    WebhookEndpoint,
)
from mamori.earlywarning.tasks import (
    deliver_webhooks,
    retry_webhook_deliveries,
    send_webhook_disabled_notice,
)
from mamori.earlywarning.webhooks import (
    SIGNATURE_HEADER,
    DestinationRefused,
    nominal_attempt_delay,
    verify_signature,
)
from tests.core.test_mail_delivery import MailServer

from .alerting import claim_both_banks, deliveries_due_now, import_report
from .receivers import Received, receiver, tls_certificate

pytestmark = pytest.mark.django_db

SCHEMA = json.loads(payloads.SCHEMA_FILE.read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return tls_certificate(tmp_path_factory.mktemp("webhook-tls"))


@pytest.fixture(autouse=True)
def _local_receivers(settings, certificate):
    """Receivers on loopback, trusted by their own certificate: what only tests may do."""
    settings.EARLYWARNING_DOCUMENTATION_ASSETS = True
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    settings.WEBHOOK_CA_FILE = str(certificate.cert)
    settings.WEBHOOK_TIMEOUT_SECONDS = 2
    with translation.override("en"):
        yield


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def banks(world):
    claim_both_banks(world)
    return world


def register(world, url: str, organisation=None):
    organisation = organisation or world.bank
    admin = world.admin if organisation == world.bank else world.other_admin
    return endpoints.create_endpoint(admin, world.access(admin), organisation, url=url)


def valid(body: bytes) -> dict:
    document = json.loads(body)
    VALIDATOR.validate(document)
    return document


def signed(secret: str, request: Received) -> bool:
    return verify_signature(
        secret, request.headers.get(SIGNATURE_HEADER.lower()), request.body, now=time.time()
    )


def test_the_schema_is_linked_from_the_docs_and_the_docs_name_it():
    assert (DOCS / "alert-event.schema.json").resolve() == payloads.SCHEMA_FILE
    guide = (DOCS / "earlywarning-webhooks.md").read_text(encoding="utf-8")
    assert payloads.SCHEMA in guide
    assert SIGNATURE_HEADER in guide
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_a_raised_alert_reaches_an_https_receiver_signed_and_in_the_schema(
    banks, certificate, commit
):
    with receiver(certificate=certificate) as hook:
        endpoint, secret = register(banks, f"{hook.origin}/mamori/events?source=ew")
        assert secret.startswith("whsec_")
        assert len(secret) > 40
        with commit():
            import_report("event4_sinkhole")
        # The import committed and its incident is stored; nothing was sent from inside it.
        (pending,) = WebhookDelivery.objects.all()
        assert (pending.state, pending.attempt, pending.endpoint) == ("pending", 0, endpoint)
        assert hook.requests == []
        (message,) = OutboxMessage.objects.filter(task=deliver_webhooks.name)
        assert message.args == [[pending.pk]]

        assert deliver_outbox() == 1  # the beat (on the embedded default, the worker's)
        (request,) = hook.requests
    incident = Alert.objects.get(organisation=banks.bank)
    assert request.path == "/mamori/events?source=ew"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-mamori-event"] == "alert.raised"
    assert request.headers["x-mamori-delivery"] == str(pending.pk)
    assert signed(secret, request)
    assert not signed("whsec_another", request)
    document = valid(request.body)
    assert document["schema"] == "mamori.alert-event/1"
    assert document["event"] == "alert.raised"
    assert document["organisation"]["id"] == banks.bank.pk
    alert = document["alert"]
    assert (alert["id"], alert["type"], alert["state"]) == (incident.pk, "incident", "new")
    assert alert["url"].endswith(f"/earlywarning/alerts/{incident.pk}/")
    assert (alert["ip"], alert["asset"]["value"]) == ("192.0.2.50", "192.0.2.0/25")
    assert alert["evidence"]["src_hostname"] == "pc-0142.bank-a.example"
    assert document["change"] is None
    pending.refresh_from_db()
    assert (pending.state, pending.attempt, pending.last_status_code) == ("delivered", 1, 200)
    assert pending.delivered_at is not None
    assert pending.body.encode() == request.body
    # The other bank registered no webhook: nothing of its incident went anywhere.
    assert not WebhookDelivery.objects.filter(alert__organisation=banks.other_bank).exists()


def test_state_changes_and_reopenings_are_events_too(banks, certificate, commit):
    with receiver(certificate=certificate) as hook:
        _endpoint, secret = register(banks, f"{hook.origin}/hook")
        with commit():
            import_report("event4_sinkhole")
        incident = Alert.objects.get(organisation=banks.bank)
        with commit():
            alerts.change_state(
                banks.admin, banks.access(banks.admin), incident, AlertState.ACKNOWLEDGED
            )
        with commit():
            alerts.change_state(
                banks.contributor,
                banks.access(banks.contributor),
                incident,
                AlertState.RISK_ACCEPTED,
                reason="Isolated; replaced next week",
                until=timezone.localdate() + timezone.timedelta(days=7),
            )
        # The acceptance runs out: the alert is new again.
        Alert.objects.filter(pk=incident.pk).update(
            risk_accepted_until=timezone.localdate() - timezone.timedelta(days=1)
        )
        with commit():
            assert alerts.expire_risk_acceptances() == 1
        assert deliver_outbox() == 4
        documents = [valid(request.body) for request in hook.requests]
        assert all(signed(secret, request) for request in hook.requests)
    assert [(d["event"], d["alert"]["state"], d["change"]) for d in documents] == [
        ("alert.raised", "new", None),
        ("alert.state_changed", "acknowledged", {"from": "new", "to": "acknowledged", "reason": None}),
        (
            "alert.state_changed",
            "risk_accepted",
            {"from": "acknowledged", "to": "risk_accepted", "reason": "Isolated; replaced next week"},
        ),
        ("alert.reopened", "new", None),
    ]  # fmt: skip
    assert len({d["id"] for d in documents}) == 4
    assert documents[-1]["alert"]["reopened"] == 1


class FailsFirst:
    """A receiver's answers: 500 to the first attempt of each delivery, 200 afterwards."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, request: Received) -> int:
        with self._lock:
            self.seen[request.headers["x-mamori-delivery"]] += 1
            return 500 if self.seen[request.headers["x-mamori-delivery"]] == 1 else 200


def test_a_receiver_that_answers_500_is_tried_again_after_the_backoff(banks, certificate, commit):
    with receiver(certificate=certificate, answer=FailsFirst()) as hook:
        endpoint, secret = register(banks, f"{hook.origin}/hook")
        with commit():
            import_report("event4_sinkhole")
        deliver_outbox()
        failed = WebhookDelivery.objects.get()
        assert (failed.state, failed.attempt, failed.last_status_code) == ("failed", 1, 500)
        # The log is in the site's language (Japanese) whatever language is active.
        assert "受信側は HTTP 500 を返しました。 boom: the receiver failed" in failed.last_error
        wait = (failed.next_attempt_at - failed.last_attempt_at).total_seconds()
        assert 0.75 * nominal_attempt_delay(1) <= wait <= nominal_attempt_delay(1)
        endpoint.refresh_from_db()
        assert endpoint.consecutive_failures == 1
        assert endpoint.failing_since is not None

        # Not due yet: the retry beat leaves it.
        assert retry_webhook_deliveries()["delivered"] == 0
        assert len(hook.requests) == 1
        deliveries_due_now()
        assert retry_webhook_deliveries() == {
            "delivered": 1, "failed": 0, "given_up": 0, "endpoints_disabled": 0,
        }  # fmt: skip
        first, second = hook.requests
    assert first.body == second.body  # the same event, signed afresh
    assert signed(secret, second)
    failed.refresh_from_db()
    assert (failed.state, failed.attempt, failed.last_status_code) == ("delivered", 2, 200)
    assert failed.last_error == ""
    endpoint.refresh_from_db()
    assert (endpoint.consecutive_failures, endpoint.failing_since) == (0, None)


def test_a_hanging_receiver_never_holds_up_the_change_and_is_bounded(
    banks, certificate, commit, settings
):
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    with receiver("hang", certificate=certificate) as hook:
        register(banks, f"{hook.origin}/hook")
        with commit():
            import_report("event4_sinkhole")
        incident = Alert.objects.get(organisation=banks.bank)
        started = time.monotonic()
        with commit():  # what a request that acknowledges the alert does, commit included
            alerts.change_state(
                banks.admin, banks.access(banks.admin), incident, AlertState.ACKNOWLEDGED
            )
        change_took = time.monotonic() - started
        assert change_took < 0.5, change_took
        assert WebhookDelivery.objects.filter(state="pending").count() == 2

        started = time.monotonic()
        assert deliver_outbox() == 2
        delivering_took = time.monotonic() - started
        assert len(hook.requests) == 2
    # Each cut off at its timeout (one task message each).
    assert delivering_took < 2 * (settings.WEBHOOK_TIMEOUT_SECONDS + 0.5), delivering_took
    for hung in WebhookDelivery.objects.all():
        assert hung.state == DeliveryState.FAILED
        assert hung.last_status_code is None
        assert hung.last_error.startswith("受信側が時間内に応答しませんでした。")
        assert hung.next_attempt_at > timezone.now()
    print(
        f"\nchange committed in {change_took:.3f} s; two hanging deliveries: {delivering_took:.2f} s"
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://127.0.0.1/hook", "127.0.0.1 is a loopback address"),
        ("https://10.0.0.1/hook", "10.0.0.1 is a private network address"),
        ("https://10.200.3.4:8443/x", "10.200.3.4 is a private network address"),
        ("https://169.254.169.254/latest/meta-data/", "a cloud metadata service address"),
        ("https://[::1]/hook", "::1 is a loopback address"),
        ("http://93.184.216.34/hook", "Webhook URLs must start with https://"),
        ("https://localhost/hook", "a local-only name"),
    ],
)
def test_internal_addresses_are_refused_when_registered(world, settings, url, problem):
    settings.WEBHOOK_ALLOW_LOOPBACK = False  # production: no exception for loopback
    with pytest.raises(DestinationRefused) as refused:
        register(world, url)
    assert problem in str(refused.value)
    assert refused.value.field == "url"
    assert not WebhookEndpoint.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="earlywarning.webhook").exists()


def test_the_url_is_checked_again_at_every_delivery(banks, certificate, commit, settings):
    with receiver(certificate=certificate) as hook:
        register(banks, f"{hook.origin}/hook")
        with commit():
            import_report("event4_sinkhole")
        settings.WEBHOOK_ALLOW_LOOPBACK = False  # as if the name now resolved to loopback
        deliver_outbox()
        assert hook.requests == []
    refused = WebhookDelivery.objects.get()
    assert refused.state == DeliveryState.FAILED
    assert "127.0.0.1 はループバックアドレス" in refused.last_error


def test_a_webhook_failing_for_a_day_is_turned_off_with_a_notice(
    banks, certificate, commit, settings
):
    mail = MailServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", mail.port, 5
    mail.start()
    try:
        with receiver("error", certificate=certificate) as hook:
            endpoint, _secret = register(banks, f"{hook.origin}/hook")
            with commit():
                import_report("event4_sinkhole")
            with commit():
                deliver_outbox()
            # Nine more failures within the day: a bad hour is not a dead receiver.
            for _attempt in range(9):
                deliveries_due_now()
                with commit():
                    retry_webhook_deliveries()
            endpoint.refresh_from_db()
            assert (endpoint.consecutive_failures, endpoint.enabled) == (10, True)
            # A day later, still failing: turned off.
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
                failing_since=timezone.now() - timezone.timedelta(hours=25)
            )
            deliveries_due_now()
            with commit():
                assert retry_webhook_deliveries()["endpoints_disabled"] == 1
            attempts = len(hook.requests)
            assert attempts == 11
            endpoint.refresh_from_db()
            assert not endpoint.enabled
            assert endpoint.disabled_at is not None
            # In the site's language (the reason is kept once, for every reader).
            assert "11 回続けて配信に失敗したため" in endpoint.disabled_reason
            assert "受信側は HTTP 500 を返しました。" in endpoint.disabled_reason
            (entry,) = AuditEvent.objects.filter(action="earlywarning.webhook.auto_disable")
            assert entry.details["consecutive_failures"] == 11
            # The administrators are told (the contributor is not), in their language.
            (notice,) = [m for m in mail.accepted if endpoint.url in m.get_content()]
            assert notice["To"] == banks.admin.email
            assert "Webhook が停止されました" in notice["Subject"]
            assert "11 回続けて配信に失敗したため" in notice.get_content()

            # Nothing more goes to it: not the waiting delivery, not new alerts.
            deliveries_due_now()
            retry_webhook_deliveries()
            with commit():
                import_report("scan_rdp")
            assert not WebhookDelivery.objects.filter(alert__category="scan_rdp").exists()
            assert len(hook.requests) == attempts
    finally:
        mail.stop()

    # The receiver is mended; an administrator turns the webhook back on.
    with receiver(certificate=certificate) as mended:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=f"{mended.origin}/hook")
        endpoint.refresh_from_db()
        with pytest.raises(NotAllowed):
            endpoints.enable_endpoint(banks.contributor, banks.access(banks.contributor), endpoint)
        endpoints.enable_endpoint(banks.admin, banks.access(banks.admin), endpoint)
        assert retry_webhook_deliveries()["delivered"] == 1
        assert len(mended.requests) == 1
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.consecutive_failures, endpoint.disabled_reason) == (
        True, 0, "",
    )  # fmt: skip
    assert AuditEvent.objects.filter(action="earlywarning.webhook.enable").count() == 1


def test_only_the_organisations_administrators_manage_its_webhooks(world):
    url = "https://127.0.0.1:8443/hook"
    for user in (world.contributor, world.signatory, world.other_admin, world.owner):
        with pytest.raises(NotAllowed):
            endpoints.create_endpoint(user, world.access(user), world.bank, url=url)
    endpoint, secret = register(world, url)
    for user in (world.contributor, world.other_admin):
        access = world.access(user)
        with pytest.raises(NotAllowed):
            endpoints.rotate_secret(user, access, endpoint)
        with pytest.raises(NotAllowed):
            endpoints.disable_endpoint(user, access, endpoint)
        assert not WebhookEndpoint.objects.visible_to(access).exists()
    assert list(WebhookEndpoint.objects.visible_to(world.access(world.admin))) == [endpoint]

    access = world.access(world.admin)
    _same, rotated = endpoints.rotate_secret(world.admin, access, endpoint)
    assert rotated != secret
    assert rotated.startswith("whsec_")
    endpoints.disable_endpoint(world.admin, access, endpoint, reason="Receiver moves")
    with pytest.raises(WrongState):
        endpoints.disable_endpoint(world.admin, access, endpoint)
    endpoints.enable_endpoint(world.admin, access, endpoint)
    with pytest.raises(WrongState):
        endpoints.enable_endpoint(world.admin, access, endpoint)
    with pytest.raises(
        MamoriError, match=r"already has a webhook for https://127\.0\.0\.1:8443/hook"
    ):
        register(world, "https://127.0.0.1:8443/hook")
    entries = AuditEvent.objects.filter(action__startswith="earlywarning.webhook").order_by("seq")
    assert [entry.action for entry in entries] == [
        "earlywarning.webhook.create",
        "earlywarning.webhook.rotate_secret",
        "earlywarning.webhook.disable",
        "earlywarning.webhook.enable",
    ]
    # The trail names the URL, never a secret.
    trail = json.dumps([entry.details for entry in entries])
    assert url in trail
    assert secret not in trail
    assert rotated not in trail


def test_a_rotated_secret_signs_the_next_attempts(banks, certificate, commit):
    with receiver(certificate=certificate, answer=FailsFirst()) as hook:
        endpoint, old = register(banks, f"{hook.origin}/hook")
        with commit():
            import_report("event4_sinkhole")
        deliver_outbox()
        _endpoint, new = endpoints.rotate_secret(banks.admin, banks.access(banks.admin), endpoint)
        deliveries_due_now()
        retry_webhook_deliveries()
        before, after = hook.requests
    assert signed(old, before)
    assert not signed(new, before)
    assert signed(new, after)
    assert not signed(old, after)


def test_the_delivery_tasks_twice_deliver_once(banks, certificate):
    """RUN_TWICE (tests/core/test_tasks_run_twice.py)."""
    with receiver(certificate=certificate) as hook:
        register(banks, f"{hook.origin}/hook")
        import_report("scan_rdp")
        ids = list(WebhookDelivery.objects.values_list("pk", flat=True))
        assert len(ids) == 2
        assert deliver_webhooks(ids)["delivered"] == 2
        assert deliver_webhooks(ids)["delivered"] == 0
        assert retry_webhook_deliveries()["delivered"] == 0
        assert retry_webhook_deliveries()["delivered"] == 0
        assert sorted(r.headers["x-mamori-delivery"] for r in hook.requests) == sorted(
            str(pk) for pk in ids
        )


def test_two_runs_at_once_claim_each_delivery_once(banks):
    register(banks, "https://127.0.0.1:8443/hook")
    import_report("scan_rdp")
    first = delivery.claim(limit=1)
    second = delivery.claim(limit=10)
    assert len(first) == 1
    assert len(second) == 1
    assert first[0].pk != second[0].pk
    assert delivery.claim() == []  # both held until their attempts end or their claims lapse
    assert {first[0].attempt, second[0].attempt} == {1}


def test_the_disabled_notice_twice_is_sent_once(banks, mailoutbox):
    """RUN_TWICE: the administrators' notice of a webhook turned off."""
    endpoint, _secret = register(banks, "https://127.0.0.1:8443/hook")
    now = timezone.now()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        enabled=False, disabled_at=now, consecutive_failures=12, failing_since=now
    )
    assert send_webhook_disabled_notice(endpoint.pk, now.isoformat()) == 1
    assert send_webhook_disabled_notice(endpoint.pk, now.isoformat()) == 0
    (notice,) = mailoutbox
    assert notice.to == [banks.admin.email]
    assert "12 回続けて配信に失敗したため" in notice.body  # alice reads Japanese


def test_a_kev_vulnerability_event_fills_every_field_of_the_schema(banks, certificate, commit):
    with receiver(certificate=certificate) as hook:
        register(banks, f"{hook.origin}/hook")
        with commit():
            upserted = alerts.upsert(
                [
                    alerts.Sighting(
                        organisation_id=banks.bank.pk,
                        type="software_vulnerability",
                        key=alerts.alert_key("software", "host-1", "CVE-2024-3094"),
                        category="kev",
                        seen_at=timezone.now(),
                        severity="critical",
                        control="security_update_management",
                        cve="CVE-2024-3094",
                        advisory="DSA-5649-1",
                        package="xz-utils",
                        installed_version="5.6.0-0.2",
                        kev=True,
                        kev_due=timezone.localdate() + timezone.timedelta(days=21),
                        epss=0.85,
                        epss_percentile=0.99,
                        evidence={"host": "core-db-01", "source": "agent"},
                    )
                ],
                feed=None,
            )
            notify.alerts_raised(upserted)
        deliver_outbox()
        (request,) = hook.requests
    vulnerability = valid(request.body)["alert"]["vulnerability"]
    assert vulnerability == {
        "cve": "CVE-2024-3094",
        "advisory": "DSA-5649-1",
        "package": "xz-utils",
        "installed_version": "5.6.0-0.2",
        "kev": True,
        "kev_due": (timezone.localdate() + timezone.timedelta(days=21)).isoformat(),
        "epss": 0.85,
        "epss_percentile": 0.99,
    }


def test_a_body_that_breaks_the_schema_is_caught_by_it():
    """The schema is not a formality: a wrong type or a missing key fails validation."""
    document = {
        "schema": "mamori.alert-event/1",
        "id": "not-a-uuid",
        "event": "alert.deleted",
        "occurred_at": "2026-11-20T00:00:00+09:00",
        "organisation": {"id": 1, "name_ja": "x", "name_en": "x", "corporate_number": None},
        "alert": {},
        "change": None,
    }
    problems = {error.json_path for error in VALIDATOR.iter_errors(document)}
    assert {"$.id", "$.event", "$.occurred_at", "$.alert"} <= problems


def test_work_left_when_the_budget_runs_out_stays_due_for_the_beat(banks, certificate):
    with receiver(certificate=certificate) as hook:
        register(banks, f"{hook.origin}/hook")
        import_report("scan_rdp")
        report = delivery.deliver_due(concurrency=1, budget=0)
        assert report.delivered == 1  # one chunk, then the budget was spent
        assert WebhookDelivery.objects.filter(state="pending").count() == 1
        assert retry_webhook_deliveries()["delivered"] == 1
        assert len(hook.requests) == 2
