"""Early warning in a real browser (issue 11, section 7): the bank's administrator registers a
domain on the asset page and verifies it against a real DNS server; a network report naming a
host under the domain (and the bank's supplier's address) is imported with the command line;
the alert is in the bank's inbox and is acknowledged there; the bank's webhook receiver gets
every event signed with the webhook's secret; and the supplier's exposure shows in the bank's
inbox as a supplier notice.

One DNS server and one webhook receiver serve the module (the live server is the session's);
the report is written for the test, in Shadowserver's ``scan_rdp`` layout.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import translation

from mamori.core.tasks import deliver_outbox
from mamori.earlywarning import endpoints, registry
from mamori.earlywarning.models import Alert, AlertState, AlertType, Asset, AssetState
from mamori.earlywarning.webhooks import SIGNATURE_HEADER, verify_signature
from mamori.supplychain.models import Entity
from mamori.supplychain.services import import_graph
from tests.browser.conftest import ui
from tests.conftest import PASSWORD
from tests.earlywarning.localdns import local_dns_server
from tests.earlywarning.receivers import receiver

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SUPPLIER_BLOCK = "198.51.100.0/25"
SUPPLIER_ADDRESS = "198.51.100.23"
HEADER = (
    '"timestamp","ip","port","hostname","tag","handshake","asn","geo","region","city",'
    '"rdp_protocol","cert_length","subject_common_name","issuer_common_name"'
)


@pytest.fixture(scope="module")
def dns():
    with local_dns_server() as server:
        yield server


@pytest.fixture(scope="module")
def hook():
    """A plain-http receiver on loopback (only tests may send there)."""
    with receiver() as record:
        yield record


@pytest.fixture
def scene(world, settings, dns, hook):
    """The bank, its webhook, and its supplier (the other bank) with a verified address block
    that the bank's core banking depends on in its supply-chain graph."""
    settings.EARLYWARNING_DOCUMENTATION_ASSETS = True
    settings.DNS_RESOLVER = dns.host
    settings.DNS_PORT = dns.port
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    hook.requests.clear()
    world.admin.set_password(PASSWORD)
    world.admin.save(update_fields=["password"])
    world.endpoint, world.secret = endpoints.create_endpoint(
        world.admin, world.access(world.admin), world.bank, url=f"{hook.origin}/mamori"
    )
    import_graph(world.bank, supply_graph(world))
    Entity.objects.filter(owner=world.bank, key=f"org-{world.other_bank.pk}").update(
        organisation=world.other_bank
    )
    block = registry.register(
        world.other_admin, world.access(world.other_admin), world.other_bank,
        kind="cidr", value=SUPPLIER_BLOCK,
    )  # fmt: skip
    registry.approve(world.owner, world.access(world.owner), block, reason="RIR checked")
    return world


def supply_graph(world) -> dict:
    """The bank's core banking runs on the supplier's hosting alone."""
    return {
        "schema": "mamori.supplygraph/1",
        "nodes": [
            {"id": "core", "entity": f"org-{world.bank.pk}", "name": "勘定系",
             "name_en": "Core banking", "critical": True, "certified": True,
             "disclosure": "full", "country": "JP"},
            {"id": "hosting", "entity": f"org-{world.other_bank.pk}", "name": "ホスティング",
             "critical": False, "certified": False, "disclosure": "full", "country": "JP"},
        ],
        "requirements": [{"node": "core", "need": "hosting", "providers": ["hosting"]}],
    }  # fmt: skip


def write_report(directory, domain: str):
    """Remote desktop open on a host under the bank's domain (at an address nobody claims, so
    only the domain names the bank) and on the supplier's address."""
    path = directory / "scan_rdp.csv"
    path.write_text(
        "\n".join(
            [
                HEADER,
                f'"2026-12-01 00:12:45","203.0.113.77",3389,"rdp.{domain}","rdp",,64500,'
                '"JP","TOKYO","CHIYODA","RDP",2048,"GW","GW"',
                f'"2026-12-01 00:13:10","{SUPPLIER_ADDRESS}",3389,"","rdp",,64501,'
                '"JP","OSAKA","OSAKA","RDP",2048,"OPS","OPS"',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return path


def run_worker() -> int:
    """The outbox beat's run, in a thread of its own as the worker's would be: Playwright keeps
    an event loop running in the test's thread, where the delivery's ``asyncio.run`` cannot
    start."""
    done: list[int] = []

    def work():
        try:
            done.append(deliver_outbox())
        finally:
            connections.close_all()

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=30)
    assert done, "the outbox run did not finish"
    return done[0]


def signed_events(hook, secret: str) -> list[dict]:
    """The events the receiver got, each checked against the webhook's secret."""
    events = []
    for request in hook.requests:
        header = request.headers.get(SIGNATURE_HEADER.lower())
        assert verify_signature(secret, header, request.body, now=time.time()), header
        assert not verify_signature("whsec_another", header, request.body, now=time.time())
        events.append(json.loads(request.body))
    return events


@pytest.mark.parametrize("language", ["ja", "en"])
def test_domain_verified_alert_acknowledged_webhook_signed_supplier_notice_seen(
    scene, browse, tmp_path, dns, hook, language
):
    domain = f"bank-{language}.example"
    tab = browse("bank", language)
    tab.login(scene.admin.username, PASSWORD)

    # Register the domain; its page shows the TXT record to publish.
    tab.open(f"/earlywarning/organisations/{scene.bank.pk}/assets/")
    tab.see_language()
    tab.page.select_option("#id_kind", "domain")
    tab.page.fill("#id_value", domain)
    tab.page.check("#id_include_subdomains")
    tab.click_and_wait("#register-asset button[type=submit]")
    tab.see("#txt-name", f"_mamori.{domain}")
    token = tab.page.inner_text("#txt-value").strip()
    asset = Asset.objects.get(organisation=scene.bank, value=domain)
    tab.check(token == asset.verification_token, "the page shows the claim's token")

    # Published: "Check now" asks the local DNS server and the claim is verified.
    dns.serve({f"_mamori.{domain}": [token]})
    tab.page.locator("#domain-check button[type=submit]").click()
    tab.see("#domain-check .badge.passed", ui("Verified", language))
    asset.refresh_from_db()
    assert asset.state == AssetState.VERIFIED
    assert (f"_mamori.{domain}.", "udp") in dns.resolver.queries

    # The report names a host under the domain, and the supplier's address.
    call_command("earlywarning", "import", str(write_report(tmp_path, domain)), "--feed",
                 "scan_rdp")  # fmt: skip
    own = Alert.objects.get(organisation=scene.bank, hostname=f"rdp.{domain}")
    assert own.asset_id == asset.pk
    notice = Alert.objects.get(organisation=scene.bank, type=AlertType.SUPPLIER_EXPOSURE)
    assert notice.source_alert == Alert.objects.get(ip=SUPPLIER_ADDRESS)

    # Both are in the bank's inbox, the supplier notice labelled as such.
    tab.open(f"/earlywarning/organisations/{scene.bank.pk}/")
    with translation.override(language):
        supplier_label = str(AlertType.SUPPLIER_EXPOSURE.label)
        new_label = str(AlertState.NEW.label)
        acknowledged_label = str(AlertState.ACKNOWLEDGED.label)
    tab.see(f'tr[data-alert="{notice.pk}"]', supplier_label)
    tab.see(f'tr[data-alert="{own.pk}"]', new_label)

    # Acknowledged on the alert's page.
    tab.click_and_wait(f'tr[data-alert="{own.pk}"] a')
    tab.click_and_wait('form[data-action="acknowledged"] button[type=submit]')
    tab.see("#alert-state", acknowledged_label)
    own.refresh_from_db()
    assert own.state == AlertState.ACKNOWLEDGED

    # The receiver gets every event, signed: both raised, then the acknowledgement.
    assert run_worker() >= 1
    events = signed_events(hook, scene.secret)
    seen = sorted((event["event"], event["alert"]["id"]) for event in events)
    assert seen == sorted(
        [
            ("alert.raised", own.pk),
            ("alert.raised", notice.pk),
            ("alert.state_changed", own.pk),
        ]
    ), seen
