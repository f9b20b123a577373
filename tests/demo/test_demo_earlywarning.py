"""The early-warning demo as `mamori demo` loads it: claims in several states, alerts from the
bundled reports in every state, a webhook whose deliveries are logged honestly (refused, never
sent), and a supplier notice reaching the bank whose survey depends on the supplier. The demo is
built once for the package (tests/demo/conftest.py)."""

from __future__ import annotations

import csv
import io
import ipaddress

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse
from django.utils import translation

from mamori.accounts.models import User
from mamori.core.errors import MamoriError
from mamori.demo import cast
from mamori.demo import earlywarning as demo_ew
from mamori.earlywarning import registry, webhooks
from mamori.earlywarning.models import (
    Alert,
    AlertState,
    AlertType,
    Asset,
    AssetOverlap,
    AssetState,
    DeliveryState,
    FeedRun,
    VerificationMethod,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from mamori.organisations.models import Organisation
from mamori.supplychain.models import Entity
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

DOCUMENTATION = [
    ipaddress.ip_network(net)
    for net in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
]


def _org(entry: cast.Fictitious) -> Organisation:
    return Organisation.objects.get(name_en=entry.name_en)


def _documentation(address: str) -> bool:
    network = ipaddress.ip_network(address, strict=False)
    return any(network.subnet_of(doc) for doc in DOCUMENTATION if doc.version == network.version)


def test_the_bundled_reports_hold_only_documentation_addresses_and_example_names():
    for name in demo_ew.REPORTS:
        with (demo_ew.REPORTS_DIR / f"{name}.csv").open(encoding="utf-8") as stream:
            for row in csv.DictReader(stream):
                for column in ("ip", "src_ip", "dst_ip"):
                    if row.get(column):
                        assert _documentation(row[column]), (name, row[column])
                for column in ("hostname", "src_hostname", "dst_hostname"):
                    if row.get(column):
                        assert row[column].endswith(".example"), (name, row[column])
    readme = (demo_ew.REPORTS_DIR / "README.md").read_text(encoding="utf-8")
    assert "Licence" in readme
    assert "invented" in readme


def test_claims_are_fictitious_organisations_documentation_ranges_in_several_states(demo):
    organisations = {_org(e).pk for e in (cast.KOHAKU_BANK, cast.MENOU_SYSTEMS, cast.RURI_SHINKIN)}
    claims = list(Asset.objects.select_related("organisation"))
    assert {asset.organisation_id for asset in claims} == organisations
    for asset in claims:
        assert cast.is_fictitious(asset.organisation.name_ja, asset.organisation.name_en)
        if asset.kind == "domain":
            assert asset.value.endswith(".example")
        else:
            assert _documentation(asset.value), asset.value
    states = {(a.organisation.name_en, a.value): a for a in claims}
    kohaku = cast.KOHAKU_BANK.name_en
    block = states[(kohaku, demo_ew.KOHAKU_BLOCK)]
    assert (block.state, block.method) == (AssetState.VERIFIED, VerificationMethod.APPROVAL)
    assert block.reason == demo_ew.APPROVED
    domain = states[(kohaku, demo_ew.KOHAKU_DOMAIN)]
    assert domain.state == AssetState.PENDING
    assert domain.verification_token
    refused = states[(cast.RURI_SHINKIN.name_en, demo_ew.RURI_REFUSED)]
    assert (refused.state, refused.reason) == (AssetState.REFUSED, demo_ew.REFUSED)
    (overlap,) = AssetOverlap.objects.filter(asset=refused)
    assert overlap.other.value == demo_ew.MENOU_BLOCK
    assert overlap.settled_at is not None


def test_the_pending_domain_page_shows_its_txt_record_to_publish(demo):
    domain = Asset.objects.get(value=demo_ew.KOHAKU_DOMAIN)
    client = client_for(User.objects.get(username="kohaku-admin"))
    with translation.override("en"):
        page = client.get(
            reverse("earlywarning:asset", args=[domain.pk]), HTTP_ACCEPT_LANGUAGE="en"
        )
    assert page.status_code == 200
    text = page.content.decode()
    assert f"_mamori.{demo_ew.KOHAKU_DOMAIN}" in text
    assert domain.verification_token in text


def test_production_settings_still_refuse_documentation_claims(demo, settings):
    settings.EARLYWARNING_DOCUMENTATION_ASSETS = False
    with translation.override("en"), pytest.raises(MamoriError, match="documentation"):
        registry.parse("cidr", "192.0.2.128/25")
    # Only the demo's explicit choice lets them through.
    assert registry.parse("cidr", "192.0.2.128/25", allow_documentation=True).value


def test_the_reports_were_imported_with_the_rows_nobody_holds_only_counted(demo):
    runs = {run.feed.name: run for run in FeedRun.objects.select_related("feed")}
    assert set(runs) == set(demo_ew.REPORTS)
    assert (runs["scan_rdp"].rows, runs["scan_rdp"].matched) == (4, 3)
    assert (runs["scan_http_vulnerable"].rows, runs["scan_http_vulnerable"].matched) == (3, 3)
    assert (runs["event4_sinkhole"].rows, runs["event4_sinkhole"].matched) == (2, 2)
    assert all(run.errors == 0 for run in runs.values())


def test_the_banks_alerts_are_in_every_state(demo):
    kohaku = _org(cast.KOHAKU_BANK)
    own = Alert.objects.filter(organisation=kohaku, source_alert__isnull=True)
    by_ip = {alert.ip: alert for alert in own}
    assert set(by_ip) == {ip for ip, *_rest in demo_ew.LIFECYCLE} | {demo_ew.STILL_NEW}
    assert {alert.state for alert in own} == set(AlertState.values)
    assert by_ip[demo_ew.STILL_NEW].type == AlertType.INCIDENT
    risk = by_ip["2001:db8:10::20"]
    assert risk.state == AlertState.RISK_ACCEPTED
    assert risk.risk_accepted_until is not None
    assert risk.reason
    assert by_ip["192.0.2.21"].state == AlertState.FALSE_POSITIVE
    assert by_ip["192.0.2.21"].reason
    assert by_ip["192.0.2.10"].acknowledged_at is not None
    # Ruri's device calling the sinkhole is Ruri's, not the bank's.
    assert Alert.objects.get(ip="203.0.113.12").organisation == _org(cast.RURI_SHINKIN)


def test_the_suppliers_exposure_reaches_the_bank_as_a_notice(demo):
    kohaku, menou = _org(cast.KOHAKU_BANK), _org(cast.MENOU_SYSTEMS)
    # The bank's survey bound its core-banking vendor to Menou's organisation.
    assert Entity.objects.filter(owner=kohaku, organisation=menou).exists()
    source = Alert.objects.get(organisation=menou, ip="198.51.100.10")
    assert (source.type, source.severity) == (AlertType.EXPOSURE, "high")
    (notice,) = Alert.objects.filter(organisation=kohaku, type=AlertType.SUPPLIER_EXPOSURE)
    assert notice.source_alert == source
    assert notice.state == AlertState.NEW
    assert notice.evidence["service_name_en"] == "Core banking"
    assert notice.evidence["supplier"] == menou.name_ja
    assert notice.ip is None  # the supplier's address stays the supplier's


def test_the_webhook_logs_every_event_as_refused_never_sent(demo):
    endpoint = WebhookEndpoint.objects.get(organisation=_org(cast.KOHAKU_BANK))
    assert endpoint.url == demo_ew.WEBHOOK_URL
    assert endpoint.enabled
    deliveries = list(WebhookDelivery.objects.filter(endpoint=endpoint))
    # The log is written in the site's language: the refusal every attempt meets, before any
    # connection (an IP-literal URL: nothing is even looked up).
    with (
        translation.override(settings.LANGUAGE_CODE),
        pytest.raises(webhooks.DestinationRefused) as refused,
    ):
        webhooks.check_destination(demo_ew.WEBHOOK_URL)
    refusal = str(refused.value)
    assert "192.0.2.80" in refusal
    # Six alerts and the notice raised, five state changes.
    assert len(deliveries) == 12
    events = [item.event for item in deliveries]
    assert events.count(WebhookEvent.RAISED) == 7
    assert events.count(WebhookEvent.STATE_CHANGED) == 5
    for item in deliveries:
        assert item.state == DeliveryState.FAILED
        assert item.attempt == 1
        assert item.last_status_code is None
        assert item.last_error == refusal
        assert item.next_attempt_at is not None
        assert item.delivered_at is None


def test_loading_again_changes_nothing(demo):
    counts = (
        Asset.objects.count(),
        Alert.objects.count(),
        WebhookDelivery.objects.count(),
        FeedRun.objects.count(),
    )
    out = io.StringIO()
    with override_settings(VAR_DIR=demo.var_dir), translation.override("en"):
        call_command("demo", stdout=out)
    assert (
        Asset.objects.count(),
        Alert.objects.count(),
        WebhookDelivery.objects.count(),
        FeedRun.objects.count(),
    ) == counts
    line = next(x for x in out.getvalue().splitlines() if x.startswith("Early-warning demo"))
    assert "6 registered assets (4 verified, 1 pending, 1 refused)" in line
    assert "1 supplier notices" in line
    assert "12 webhook deliveries" in line
    assert line in demo.output


def test_the_webhook_page_shows_the_delivery_log_with_the_refusal(demo):
    endpoint = WebhookEndpoint.objects.get(organisation=_org(cast.KOHAKU_BANK))
    client = client_for(User.objects.get(username="kohaku-admin"))
    page = client.get(reverse("earlywarning:webhook", args=[endpoint.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert demo_ew.WEBHOOK_URL in text
    shown = list(endpoint.deliveries.values_list("pk", flat=True))
    assert shown
    for pk in shown:
        assert f'data-delivery="{pk}"' in text
    assert endpoint.deliveries.first().last_error in text
