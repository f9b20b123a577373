"""The model and the mamori.supplygraph/1 export and import: round trip, validation, all or
nothing, certification from Mamori certificates or from declarations with evidence."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from django.utils import timezone

from mamori.certificates.models import Certificate
from mamori.organisations.models import Category, Organisation
from mamori.supplychain import graph, services
from mamori.supplychain.models import Entity, Need, Node, Provision
from tests.supplychain.test_survey_cascade import build_chain

DOCUMENT = {
    "schema": "mamori.supplygraph/1",
    "nodes": [
        {
            "id": "bank:core",
            "entity": "bank",
            "name": "勘定系",
            "name_en": "Core banking",
            "country": "JP",
            "critical": True,
            "certified": True,
            "disclosure": "full",
            "kind": "service",
        },
        {
            "id": "vendor:ops",
            "entity": "vendor",
            "name": "運用",
            "country": "JP",
            "critical": False,
            "certified": False,
            "disclosure": "partial",
            "kind": "ict",
            "parent": "holding",
        },
        {
            "id": "cloud-x",
            "entity": "cloud",
            "name": "Cloud X",
            "country": "US",
            "critical": False,
            "certified": True,
            "disclosure": "none",
            "kind": "ict",
            "parent": "holding",
        },
        {
            "id": "chip",
            "entity": "fab",
            "name": "Chip",
            "country": "TW",
            "critical": False,
            "certified": False,
            "disclosure": "full",
            "kind": "part",
        },
    ],
    "requirements": [
        {"node": "bank:core", "need": "operations", "providers": ["vendor:ops"]},
        {"node": "vendor:ops", "need": "hosting", "providers": ["cloud-x", "chip"]},
        # A cycle: legal, real chains have them.
        {"node": "cloud-x", "need": "support", "providers": ["vendor:ops"]},
    ],
}


def _normalised(document: dict) -> dict:
    return {
        "schema": document["schema"],
        "nodes": sorted(document["nodes"], key=lambda n: n["id"]),
        "requirements": sorted(document["requirements"], key=lambda r: (r["node"], r["need"])),
    }


def _counts() -> tuple[int, ...]:
    return (
        Entity.objects.count(),
        Node.objects.count(),
        Need.objects.count(),
        Provision.objects.count(),
    )


@pytest.fixture
def org(db):
    return Organisation.objects.create(
        name_ja="銀行X", name_en="Bank X", category=Category.FINANCIAL_INSTITUTION
    )


@pytest.fixture
def org2(db):
    return Organisation.objects.create(
        name_ja="銀行Y", name_en="Bank Y", category=Category.FINANCIAL_INSTITUTION
    )


def test_import_then_export_round_trips(org, org2):
    created = services.import_graph(org, copy.deepcopy(DOCUMENT))
    assert created == {"nodes": 4, "entities": 5, "requirements": 3}
    exported = services.export_graph(org)
    assert _normalised(exported) == _normalised(DOCUMENT)
    # And once more through another organisation: the same document again.
    services.import_graph(org2, exported)
    assert _normalised(services.export_graph(org2)) == _normalised(DOCUMENT)
    holding = Entity.objects.get(owner=org, key="holding")
    assert set(holding.subsidiaries.values_list("key", flat=True)) == {"vendor", "cloud"}


def test_export_is_valid_for_the_pure_module(org):
    services.import_graph(org, copy.deepcopy(DOCUMENT))
    loaded = graph.from_dict(services.export_graph(org))
    assert loaded.node_count == 4
    assert loaded.edge_count == 4


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d["requirements"][1]["providers"].append("dc-9"), "dc-9"),
        (lambda d: d["nodes"].append(copy.deepcopy(d["nodes"][0])), "bank:core"),
        (lambda d: d["requirements"][0]["providers"].append("bank:core"), "bank:core"),
        (lambda d: d.update(schema="mamori.supplygraph/2"), "mamori.supplygraph/2"),
        (
            lambda d: d["requirements"].append(
                {"node": "ghost", "need": "x", "providers": ["chip"]}
            ),
            "ghost",
        ),
        (lambda d: d["nodes"][3].update(country="Taiwan"), "chip"),
        (lambda d: d["nodes"][2].update(entity="x" * 121), "cloud-x"),
    ],
    ids=[
        "unknown-provider",
        "duplicate-id",
        "self-loop",
        "schema",
        "unknown-node",
        "country",
        "long-entity",
    ],
)
def test_bad_documents_name_the_offending_id_and_write_nothing(org, mutate, fragment):
    document = copy.deepcopy(DOCUMENT)
    mutate(document)
    before = _counts()
    with pytest.raises(services.GraphImportError) as info:
        services.import_graph(org, document)
    assert any(fragment in error for error in info.value.errors), info.value.errors
    assert _counts() == before


def test_existing_ids_are_refused_not_overwritten(org):
    services.import_graph(org, copy.deepcopy(DOCUMENT))
    before = _counts()
    document = copy.deepcopy(DOCUMENT)
    document["nodes"][3]["name"] = "changed"
    with pytest.raises(services.GraphImportError) as info:
        services.import_graph(org, document)
    assert "bank:core" in str(info.value.errors)
    assert _counts() == before
    assert Node.objects.get(owner=org, key="chip").name_ja == "Chip"


def test_a_failure_inside_the_transaction_rolls_everything_back(org, monkeypatch):
    calls = {"n": 0}
    original = Provision.objects.bulk_create

    def failing(*args, **kwargs):
        calls["n"] += 1
        raise RuntimeError("disk full")

    monkeypatch.setattr(Provision.objects, "bulk_create", failing)
    before = _counts()
    with pytest.raises(RuntimeError):
        services.import_graph(org, copy.deepcopy(DOCUMENT))
    assert calls["n"] == 1
    assert _counts() == before
    monkeypatch.setattr(Provision.objects, "bulk_create", original)


@pytest.mark.django_db
def test_certification_comes_from_a_valid_mamori_certificate_or_declared_evidence(
    world, django_capture_on_commit_callbacks
):
    chain = build_chain(world, django_capture_on_commit_callbacks)
    node_a = chain.a.node

    def certified(node) -> bool:
        exported = services.export_graph(chain.campaign)
        return next(n for n in exported["nodes"] if n["id"] == node.key)["certified"]

    assert certified(node_a) is False
    # Declared without evidence does not count; with evidence it does.
    Node.objects.filter(pk=node_a.pk).update(certification_declared=True)
    assert certified(node_a) is False
    Node.objects.filter(pk=node_a.pk).update(certification_text="ISMS IS 123456, valid to 2027")
    assert certified(node_a) is True
    Node.objects.filter(pk=node_a.pk).update(certification_declared=False, certification_text="")

    # A valid Mamori certificate of the organisation that claimed the entity counts.
    passed = world.passed()
    certificate = Certificate.objects.get(assessment=passed)
    chain.a.node.entity.organisation = certificate.organisation
    chain.a.node.entity.save()
    assert certified(node_a) is True
    Certificate.objects.filter(pk=certificate.pk).update(
        expires_on=timezone.localdate() - dt.timedelta(days=1)
    )
    assert certified(node_a) is False


@pytest.mark.django_db
def test_campaign_export_shows_non_respondents_as_opaque_and_keeps_other_campaigns_out(
    world, django_capture_on_commit_callbacks
):
    chain = build_chain(world, django_capture_on_commit_callbacks)
    document = services.export_graph(chain.campaign)
    by_id = {n["id"]: n for n in document["nodes"]}
    grid = Node.objects.get(name_ja="Grid")
    assert by_id[grid.key]["disclosure"] == "none"
    assert by_id[chain.service.key]["entity"] == f"org-{world.bank.pk}"
    # A second campaign over the same service does not leak into the first one's export.
    from mamori.organisations.access import Access

    access = Access.for_user(world.admin)
    other = services.create_campaign(
        world.admin,
        access,
        world.bank,
        title="other",
        services=[chain.service],
        deadline=timezone.localdate() + dt.timedelta(days=5),
    )
    with django_capture_on_commit_callbacks(execute=True):
        sent = services.invite(
            world.admin,
            access,
            campaign=other,
            for_node=chain.service,
            need="hosting",
            supplier_name="Elsewhere",
            country="JP",
            email="x@example.jp",
            site_url="http://testserver/",
        )
    first = services.export_graph(chain.campaign)
    assert sent.invitation.node.key not in {n["id"] for n in first["nodes"]}
    second = services.export_graph(other)
    assert {r["need"]: r["providers"] for r in second["requirements"]} == {
        "hosting": [sent.invitation.node.key]
    }
    # The organisation's export holds both.
    whole = services.export_graph(world.bank)
    assert {sent.invitation.node.key, chain.a.node.key} <= {n["id"] for n in whole["nodes"]}
