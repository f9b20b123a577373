"""Supplier fan-out: a supplier's critical exposure reaches the organisations whose supply-chain
graphs rely on it, as much as its TLP label and the supplier's disclosure allow; a single point
of failure makes the notice critical."""

from __future__ import annotations

import pytest
from django.utils import translation

from mamori.earlywarning import fanout, feeding, registry
from mamori.earlywarning.models import Alert, AlertType, Feed
from mamori.supplychain.models import Entity
from mamori.supplychain.services import import_graph
from tests.datafiles import DATA

pytestmark = pytest.mark.django_db

REPORTS = DATA / "earlywarning" / "shadowserver"


@pytest.fixture(autouse=True)
def _documentation_assets(settings):
    settings.EARLYWARNING_DOCUMENTATION_ASSETS = True
    with translation.override("en"):
        yield


def graph(bank, supplier, *, disclosure="full", second_provider=False) -> dict:
    """The bank's core banking runs on the supplier's hosting (alone, or with a second
    provider), and its website on a third party."""
    own, theirs = f"org-{bank.pk}", f"org-{supplier.pk}"
    nodes = [
        {
            "id": "core",
            "entity": own,
            "name": "勘定系",
            "name_en": "Core banking",
            "critical": True,
            "certified": True,
            "disclosure": "full",
            "country": "JP",
        },
        {
            "id": "web",
            "entity": own,
            "name": "ウェブ",
            "critical": True,
            "certified": True,
            "disclosure": "full",
            "country": "JP",
        },
        {
            "id": "hosting",
            "entity": theirs,
            "name": "ホスティング",
            "critical": False,
            "certified": False,
            "disclosure": disclosure,
            "country": "JP",
        },
        {
            "id": "cdn",
            "entity": "cdn-co",
            "name": "CDN",
            "critical": False,
            "certified": False,
            "disclosure": "full",
            "country": "JP",
        },
    ]
    core_providers = ["hosting", "cdn"] if second_provider else ["hosting"]
    requirements = [
        {"node": "core", "need": "hosting", "providers": core_providers},
        {"node": "web", "need": "cdn", "providers": ["cdn"]},
    ]
    return {"schema": "mamori.supplygraph/1", "nodes": nodes, "requirements": requirements}


def supplier_alert(world, *, tlp="amber", disclosure="full", second_provider=False):
    import_graph(world.bank, graph(world.bank, world.other_bank, disclosure=disclosure,
                                   second_provider=second_provider))  # fmt: skip
    Entity.objects.filter(owner=world.bank, key=f"org-{world.other_bank.pk}").update(
        organisation=world.other_bank
    )
    asset = registry.register(
        world.other_admin, world.access(world.other_admin), world.other_bank, kind="cidr",
        value="198.51.100.0/25",
    )  # fmt: skip
    registry.approve(world.owner, world.access(world.owner), asset, reason="RIR checked")
    Feed.objects.update_or_create(name="scan_rdp", defaults={"kind": "network", "tlp": tlp})
    feeding.import_location("scan_rdp", str(REPORTS / "scan_rdp.csv"))
    return Alert.objects.get(organisation=world.other_bank, ip="198.51.100.23")


def test_the_dependant_bank_hears_of_its_suppliers_exposure_as_a_critical_notice(world):
    source = supplier_alert(world)
    assert source.severity == "high"
    (notice,) = Alert.objects.filter(organisation=world.bank, type=AlertType.SUPPLIER_EXPOSURE)
    assert notice.source_alert == source
    assert notice.severity == "critical"  # the supplier's hosting alone stops core banking
    assert notice.evidence == {
        "service": "core",
        "service_name": "勘定系",
        "service_name_en": "Core banking",
        "single_point_of_failure": True,
        "severity": "high",
        "detail": "partial",
        "supplier": world.other_bank.name_ja,
        "type": "exposure",
    }
    assert notice.tlp == "amber"
    assert notice.ip is None  # the supplier's address is the supplier's business
    # The website does not rely on the supplier: no notice for it.
    assert Alert.objects.filter(organisation=world.bank).count() == 1


def test_a_second_provider_makes_it_high_not_critical(world):
    supplier_alert(world, second_provider=True)
    notice = Alert.objects.get(organisation=world.bank)
    assert (notice.severity, notice.evidence["single_point_of_failure"]) == ("high", False)


@pytest.mark.parametrize(
    ("tlp", "disclosure", "shown"),
    [
        ("green", "full", {"supplier", "type", "category"}),
        ("green", "partial", {"supplier", "type"}),
        ("amber+strict", "full", set()),
        ("green", "none", set()),
    ],
)
def test_what_a_notice_shows_follows_tlp_and_disclosure(world, tlp, disclosure, shown):
    supplier_alert(world, tlp=tlp, disclosure=disclosure)
    notice = Alert.objects.get(organisation=world.bank)
    assert {"supplier", "type", "category"} & set(notice.evidence) == shown
    assert notice.tlp == tlp


def test_tlp_red_reaches_no_one_else(world):
    supplier_alert(world, tlp="red")
    assert not Alert.objects.filter(organisation=world.bank).exists()


def test_detail_levels():
    assert fanout.detail_level("clear", "full") == "full"
    assert fanout.detail_level("amber", "full") == "partial"
    assert fanout.detail_level("green", "none") == "minimal"
    assert fanout.detail_level("red", "full") is None
