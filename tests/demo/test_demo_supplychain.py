"""The supply-chain demo: two scenarios (banks' ICT, medical devices) built through the survey
services by `mamori demo`, whose exported graphs the real analysis finds hidden convergences,
single-country needs and single points of failure in; loaded once."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation

from mamori.accounts.models import User
from mamori.audit.models import AuditEvent
from mamori.demo import supplychain
from mamori.organisations.models import Organisation
from mamori.supplychain import analysis, graph, services
from mamori.supplychain.models import (
    Campaign,
    Entity,
    Invitation,
    InvitationStatus,
    Need,
    Node,
    NodeKind,
    Provision,
    Site,
)
from tests.conftest import client_for


def _counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (
            Campaign,
            Invitation,
            Node,
            Need,
            Provision,
            Entity,
            Site,
            Organisation,
            User,
            AuditEvent,
        )
    }


def _walk(suppliers):
    for supplier in suppliers:
        yield supplier
        yield from _walk(supplier.children)


def _names(document: dict) -> dict[str, str]:
    return {node["id"]: node.get("name_en") or node["name"] for node in document["nodes"]}


# --- The scenario specification (no database) -------------------------------------------------


def test_every_link_names_a_supplier_invited_in_the_same_survey():
    for survey in supplychain.SURVEYS:
        suppliers = [s for service in survey.services for s in _walk(service.suppliers)]
        refs = [s.ref for s in suppliers]
        assert len(refs) == len(set(refs)), survey.owner
        answered = {s.ref for s in suppliers if s.state == "answered"}
        for supplier in suppliers:
            assert supplier.state in {"answered", "invited", "overdue", "declined"}
            assert supplier.country
            assert len(supplier.country) == 2
            if supplier.state != "answered":
                # Only an answering (bound) supplier invites its own suppliers or links needs.
                assert not supplier.children, supplier.ref
                assert not supplier.links, supplier.ref
            for _need, ref in supplier.links:
                assert ref in refs
                assert ref != supplier.ref
        assert answered


# --- The demo as loaded by `mamori demo` ------------------------------------------------------


@pytest.mark.django_db
def test_the_demo_loads_both_scenarios_with_findings_once(settings, tmp_path):
    # One test: the scheme demo under it takes half a minute.
    settings.VAR_DIR = tmp_path
    out = io.StringIO()
    with translation.override("en"):
        call_command("demo", stdout=out)
    line = next(x for x in out.getvalue().splitlines() if x.startswith("Supply-chain demo"))
    assert line.startswith("Supply-chain demo loaded: 3 surveys")
    assert "banks' ICT:" in line
    assert "medical devices:" in line

    # Both scenarios exist: two banks and the secretariat's medical-device survey.
    banks = supplychain.campaigns_of("banks")
    medical = supplychain.campaigns_of("medical")
    assert {c.owner.name_en for c in banks} == {"Seven Bank, Ltd.", "Rakuten Bank, Ltd."}
    assert [c.owner.name_en for c in medical] == [supplychain.SECRETARIAT]

    for scenario, campaigns in (("banks", banks), ("medical", medical)):
        # Every exported graph, per survey and per owner, is valid exchange format.
        for campaign in campaigns:
            for subject in (campaign, campaign.owner):
                document = services.export_graph(subject)
                assert len(graph.from_dict(document).ids) == len(document["nodes"]) > 0
        document = supplychain.scenario_graph(scenario)
        result = analysis.analyse(graph.from_dict(document))
        assert result["hidden_convergence"], scenario
        assert result["single_country"], scenario
        assert any(result["spof"].values()), scenario
        # Tier 1 to Tier 3 at least, and disclosure of every kind.
        tiers = set(
            Invitation.objects.filter(campaign__in=campaigns).values_list("tier", flat=True)
        )
        assert {1, 2, 3} <= tiers, scenario
        assert {n["disclosure"] for n in document["nodes"]} == {"full", "partial", "none"}
        certified = {n["certified"] for n in document["nodes"] if n["kind"] != "service"}
        assert certified == {True, False}, scenario

    # The findings the scenarios are written for, by name.
    banks_doc = supplychain.scenario_graph("banks")
    names = _names(banks_doc)
    result = analysis.analyse(graph.from_dict(banks_doc))
    converging = {
        (c["need"], names[upstream])
        for c in result["hidden_convergence"]
        for upstream in c["converges_on"]
    }
    assert ("ATM 端末・保守", "Hei Mechatronics K.K. (demo)") in converging
    assert ("クラウド基盤", "TEPCO Power Grid, Inc.") in converging
    assert ("ホスティング", "Otemachi IX Services K.K. (demo)") in converging
    single = {(c["need"], c["country"]) for c in result["single_country"]}
    assert {("全銀ネット接続回線", "JP"), ("CDN・DDoS 対策", "US")} <= single
    core = Node.objects.get(
        owner__name_en="Seven Bank, Ltd.", kind=NodeKind.SERVICE, name_en="Core banking"
    ).key
    assert "NTT DATA Corporation" in {names[x] for x in result["spof"][core]}
    # NTT DATA holds the demo's valid Mamori certificate: certified, not declared.
    ntt = next(n for n in banks_doc["nodes"] if n.get("name_en") == "NTT DATA Corporation")
    assert ntt["certified"] is True
    assert Node.objects.get(key=ntt["id"]).certified_by_mamori
    assert not Node.objects.get(key=ntt["id"]).certification_declared

    medical_doc = supplychain.scenario_graph("medical")
    names = _names(medical_doc)
    result = analysis.analyse(graph.from_dict(medical_doc))
    converging = {
        (c["need"], names[upstream])
        for c in result["hidden_convergence"]
        for upstream in c["converges_on"]
    }
    assert ("ECMO の製造", "Wuppertal Membranes GmbH (demo)") in converging
    assert ("人工呼吸器の製造", "Flowsens AG (demo)") in converging
    assert ("中空糸膜（ポリスルホン）", "Gulf Coast Polymers LLC (demo)") in converging
    single = {(c["need"], c["country"]) for c in result["single_country"]}
    assert ("制御用マイコン", "TW") in single
    countries = {n["country"] for n in medical_doc["nodes"]}
    assert {"JP", "DE", "CH", "US", "TW", "MY"} <= countries
    parts = Node.objects.filter(campaign__in=medical, kind=NodeKind.PART)
    assert parts.filter(inventory_days__gt=0).count() >= 10

    # Tracking by tier shows every state, overdue included.
    seven_bank = next(c for c in banks if c.owner.name_en == "Seven Bank, Ltd.")
    for campaign in (seven_bank, medical[0]):
        rows = services.tracking(campaign.invitations.all())
        assert [row["tier"] for row in rows][:3] == [1, 2, 3]
        totals = {key: sum(row[key] for row in rows) for key in ("answered", "overdue", "declined")}
        assert all(totals.values()), totals
        still_invited = campaign.invitations.filter(status=InvitationStatus.INVITED).count()
        assert still_invited > totals["overdue"]
    # The sector view has three institutions' surveys: figures are shown.
    assert services.sector_tracking()["shown"]

    # The pages show it: the bank its chain, NTT DATA its own answer to the bank.
    bank_admin = client_for(User.objects.get(username="sevenbank-admin"))
    page = bank_admin.get(reverse("supplychain:campaign", args=[seven_bank.pk]))
    assert page.status_code == 200
    assert "丙メカトロ株式会社（デモ）" in page.content.decode()
    ntt_answer = Invitation.objects.get(
        campaign=seven_bank, organisation__name_en="NTT DATA Corporation"
    )
    vendor = client_for(User.objects.get(username="nttdata-admin"))
    assert vendor.get(reverse("supplychain:index")).status_code == 200
    assert vendor.get(reverse("supplychain:response", args=[ntt_answer.pk])).status_code == 200

    # Running the demo again creates nothing and says so.
    before = _counts()
    with translation.override("en"):
        call_command("demo", stdout=(again := io.StringIO()))
    assert _counts() == before
    assert "Supply-chain demo already loaded: 3 surveys" in again.getvalue()
