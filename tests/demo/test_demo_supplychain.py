"""The supply-chain demo: two scenarios (banks' ICT, medical devices) on fictitious organisations,
built through the survey services by `mamori demo`. What the demo is written to show — hidden
convergences, single-country needs, single points of failure, opacity, concentration — is
asserted here as what the real analysis computes from the answers, never as stored text. The
demo is built once for the package (tests/demo/conftest.py)."""

from __future__ import annotations

import io

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse
from django.utils import translation

from mamori.accounts.models import User
from mamori.audit.models import AuditEvent
from mamori.demo import cast, supplychain
from mamori.organisations.models import Organisation
from mamori.supplychain import analysis, graph, services
from mamori.supplychain.models import (
    Campaign,
    CriticalService,
    Entity,
    HearingNote,
    Invitation,
    InvitationStatus,
    Need,
    Node,
    NodeKind,
    Provision,
    Site,
    TierOrigin,
)
from tests.conftest import client_for

CHDF_MAKING = "CHDF 用血液浄化器（ヘモフィルター）の製造"


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
            HearingNote,
            Organisation,
            User,
            AuditEvent,
        )
    }


def _walk(suppliers):
    for supplier in suppliers:
        yield supplier
        yield from _walk(supplier.children)


def _service(key: str) -> supplychain.Service:
    return next(s for survey in supplychain.SURVEYS for s in survey.services if s.key == key)


def _analysed(scenario: str) -> tuple[dict, dict[str, str]]:
    """The analysis of the scenario's exported graph, and node id → English (else Japanese)
    name."""
    document = supplychain.scenario_graph(scenario)
    names = {node["id"]: node.get("name_en") or node["name"] for node in document["nodes"]}
    return analysis.analyse(graph.from_dict(document)), names


def _converging(result: dict, names: dict) -> set[tuple[str, str]]:
    return {
        (c["need"], names[upstream])
        for c in result["hidden_convergence"]
        for upstream in c["converges_on"]
    }


def _spof(result: dict, names: dict, service: str) -> set[str]:
    """Names of the single points of failure of the critical service named ``service``."""
    (key,) = [k for k in result["spof"] if names[k] == service]
    return {names[x] for x in result["spof"][key]}


# --- The scenarios as written (no database) ---------------------------------------------------


def test_every_supplier_is_fictitious_and_every_link_names_one_invited_in_the_same_survey():
    for survey in supplychain.SURVEYS:
        suppliers = [s for service in survey.services for s in _walk(service.suppliers)]
        refs = [s.ref for s in suppliers]
        assert len(refs) == len(set(refs)), survey.owner
        for supplier in suppliers:
            assert cast.is_fictitious(supplier.name_ja, supplier.name_en), supplier.ref
            assert supplier.state in {"answered", "invited", "overdue", "declined"}
            assert len(supplier.country) == 2
            if supplier.state != "answered":
                # Only an answering (bound) supplier invites its own suppliers or links needs.
                assert not supplier.children, supplier.ref
                assert not supplier.links, supplier.ref
            for _need, ref in supplier.links:
                assert ref in refs
                assert ref != supplier.ref
        assert {hearing.ref for hearing in survey.hearings} <= set(refs)
    owners = {survey.owner for survey in supplychain.SURVEYS}
    assert owners == {cast.KOHAKU_BANK.name_en, cast.RURI_SHINKIN.name_en, supplychain.SECRETARIAT}


def test_the_medical_case_counts_from_the_manufacturers_with_chdf_and_ventilator_consumables():
    medical = supplychain.MEDICAL.services
    assert {service.tier_origin for service in medical} == {TierOrigin.MANUFACTURER}
    chdf = {s.name_en for s in _service("chdf").suppliers if s.need == CHDF_MAKING}
    assert 2 <= len(chdf) <= 3
    consumables = _service("vent-consumables")
    assert "breathing circuits and filters" in consumables.name_en
    needs = {s.need for s in _walk(consumables.suppliers)}
    assert {
        "呼吸回路・フィルターの製造",
        "呼吸回路チューブ",
        "フィルター用メルトブローン不織布",
    } <= needs
    for service in medical:
        makers = {s.name_en for s in service.suppliers}
        assert len(makers) >= 2, service.key


# --- The demo as loaded by `mamori demo` ------------------------------------------------------


@pytest.mark.django_db
def test_both_scenarios_are_loaded_with_tiers_states_and_disclosures(demo):
    line = next(x for x in demo.output.splitlines() if x.startswith("Supply-chain demo"))
    assert line.startswith("Supply-chain demo loaded: 3 surveys")
    assert "banks' ICT:" in line
    assert "medical devices:" in line

    banks = supplychain.campaigns_of("banks")
    medical = supplychain.campaigns_of("medical")
    assert {c.owner.name_en for c in banks} == {
        cast.KOHAKU_BANK.name_en,
        cast.RURI_SHINKIN.name_en,
    }
    assert [c.owner.name_en for c in medical] == [supplychain.SECRETARIAT]
    # Invitation links use the instance's address: the port served, not a fixed 8000.
    assert {c.site_url for c in (*banks, *medical)} == {settings.SITE_URL}

    for scenario, campaigns in (("banks", banks), ("medical", medical)):
        # Every exported graph, per survey and per owner, is valid exchange format.
        for campaign in campaigns:
            for subject in (campaign, campaign.owner):
                document = services.export_graph(subject)
                assert len(graph.from_dict(document).ids) == len(document["nodes"]) > 0
        document = supplychain.scenario_graph(scenario)
        assert {n["disclosure"] for n in document["nodes"]} == {"full", "partial", "none"}
        certified = {n["certified"] for n in document["nodes"] if n["kind"] != "service"}
        assert certified == {True, False}, scenario

    # Banks count from themselves: Tier 1 to Tier 3.
    assert set(Invitation.objects.filter(campaign__in=banks).values_list("tier", flat=True)) == {
        1,
        2,
        3,
    }
    # The medical case counts from the manufacturers: they are Tier 0, their direct suppliers
    # Tier 1, and the chain is traced to Tier 3.
    invitations = Invitation.objects.filter(campaign__in=medical)
    makers = invitations.filter(parent__isnull=True)
    assert set(makers.values_list("tier", flat=True)) == {0}
    assert set(invitations.filter(parent__in=makers).values_list("tier", flat=True)) == {1}
    assert set(invitations.values_list("tier", flat=True)) == {0, 1, 2, 3}
    chdf = makers.filter(node__provisions__need__name=CHDF_MAKING)
    assert chdf.count() == 3
    assert set(chdf.values_list("status", flat=True)) == {InvitationStatus.ANSWERED}
    parts = Node.objects.filter(campaign__in=medical, kind=NodeKind.PART)
    assert parts.filter(inventory_days__gt=0).count() >= 15
    countries = {n["country"] for n in supplychain.scenario_graph("medical")["nodes"]}
    assert {"JP", "CH", "DE", "TW", "KR", "SG", "MY", "US", "NL", "TH"} <= countries

    # Tracking by tier shows every state, overdue included.
    kohaku = next(c for c in banks if c.owner.name_en == cast.KOHAKU_BANK.name_en)
    for campaign, first in ((kohaku, 1), (medical[0], 0)):
        rows = services.tracking(campaign.invitations.all())
        assert [row["tier"] for row in rows][:3] == [first, first + 1, first + 2]
        totals = {key: sum(row[key] for row in rows) for key in ("answered", "overdue", "declined")}
        assert all(totals.values()), totals
        still_invited = campaign.invitations.filter(status=InvitationStatus.INVITED).count()
        assert still_invited > totals["overdue"]
    # The sector view has three institutions' surveys: figures are shown.
    assert services.sector_tracking()["shown"]

    # Suppliers that registered themselves: those that passed the survey on were confirmed by
    # their inviter first; the others stay unverified; no invitation is left held.
    registered = Organisation.objects.filter(supply_invitations__campaign__in=(*banks, *medical))
    registered = registered.filter(memberships__user__username__startswith="supply-").distinct()
    inviting = registered.filter(supply_invitations__children__isnull=False).distinct()
    assert inviting.exists()
    assert set(inviting.values_list("identity_verified", flat=True)) == {True}
    assert registered.filter(identity_verified=False).exists()
    assert not Invitation.objects.filter(mail_held=True).exists()


@pytest.mark.django_db
def test_the_analysis_finds_what_the_banks_scenario_is_written_to_show(demo):
    result, names = _analysed("banks")
    assert _converging(result, names) >= {
        # Two ATM vendors on one banknote-module maker (and its sensor supplier).
        ("ATM 端末・保守", "Hinoki Mechatronics Co., Ltd. (fictitious)"),
        ("ATM 端末・保守", "ペナン・オプトセンサー社（架空）"),
        # Two clouds on one power grid; two hosting providers on one internet exchange.
        ("クラウド基盤", "Toto Power Grid Co., Ltd. (fictitious)"),
        ("ホスティング", "Minato IX Services K.K. (fictitious)"),
    }
    single = {(c["need"], c["country"]) for c in result["single_country"]}
    assert single >= {
        ("決済ネットワーク接続回線", "JP"),
        ("CDN・DDoS 対策", "US"),
        ("クラウド基盤", "JP"),
        ("ATM 端末・保守", "JP"),
    }
    # Single points of failure, per critical service (both banks have "Core banking").
    spof = {name: set() for name in ("Core banking", "ATM network", "Internet banking")}
    for key, stops in result["spof"].items():
        if names[key] in spof:
            spof[names[key]] |= {names[x] for x in stops}
    assert cast.MENOU_SYSTEMS.name_en in spof["Core banking"]
    assert cast.SUISHO_IS.name_en in spof["Core banking"]
    assert "Hinoki Mechatronics Co., Ltd. (fictitious)" in spof["ATM network"]
    assert supplychain.AMAGUMO in spof["Internet banking"]
    assert _spof(result, names, "Interbank payments connection") == {
        "銀行間決済ネットワーク（架空）"
    }
    # Opacity: the ATM network's chain stops being disclosed at Tier 1.
    (atm,) = [k for k in result["opacity"] if names[k] == "ATM network"]
    assert result["opacity"][atm]["first_opaque_tier"] == 1
    assert result["opacity"][atm]["opaque"] > 0

    # Menou Systems holds a valid Mamori certificate: certified, not declared. Suisho's
    # certificate has expired: it counts no more.
    document = supplychain.scenario_graph("banks")
    by_name = {n.get("name_en"): n for n in document["nodes"]}
    menou = by_name[cast.MENOU_SYSTEMS.name_en]
    assert menou["certified"] is True
    assert Node.objects.get(key=menou["id"]).certified_by_mamori
    assert not Node.objects.get(key=menou["id"]).certification_declared
    assert by_name[cast.SUISHO_IS.name_en]["certified"] is False


@pytest.mark.django_db
def test_the_analysis_finds_what_the_medical_scenario_is_written_to_show(demo):
    result, names = _analysed("medical")
    assert _converging(result, names) >= {
        # Two ventilator makers on one flow-sensor maker; three makers of circuits and filters
        # on one filter-media maker; two ECMO makers on one membrane maker; three CHDF makers,
        # through two fibre makers, on one polysulfone resin.
        ("人工呼吸器の製造", "Flowsens AG (fictitious)"),
        ("呼吸回路・フィルターの製造", "Ulsan Filtration Media Co., Ltd. (fictitious)"),
        ("ECMO の製造", "Wuppertal Membranes GmbH (fictitious)"),
        (CHDF_MAKING, "Gulf Coast Polymers LLC (fictitious)"),
        ("中空糸膜（ポリスルホン）", "Gulf Coast Polymers LLC (fictitious)"),
    }
    single = {(c["need"], c["country"]) for c in result["single_country"]}
    assert single >= {
        ("制御用マイコン", "TW"),
        ("呼吸回路チューブ", "MY"),
        ("中空糸膜（ポリスルホン）", "JP"),
        (CHDF_MAKING, "JP"),
    }
    assert _spof(result, names, "Supply of ECMO systems") == {
        "Wuppertal Membranes GmbH (fictitious)",
        "Yamabuki Chemical Industries Co., Ltd. (fictitious)",
    }
    assert "Gulf Coast Polymers LLC (fictitious)" in _spof(
        result, names, "Supply of CHDF haemofilters and circuits"
    )
    assert "Flowsens AG (fictitious)" in _spof(result, names, "Supply of ventilators")
    # A declined dialysis maker: no single point of failure can be shown, the chain is opaque.
    assert _spof(result, names, "Supply of dialysis equipment and dialysers") == set()
    (dialysis,) = [
        k for k in result["opacity"] if names[k] == "Supply of dialysis equipment and dialysers"
    ]
    assert result["opacity"][dialysis]["opaque"] > 0
    # Concentration: at the manufacturers' level nearly every edge is in Japan, and the largest
    # provider is a maker that supplies two devices.
    tier1 = result["concentration"]["sector"]["tier1"]
    assert tier1["country"]["largest"]["key"] == "JP"
    assert tier1["country"]["largest"]["share"] > 0.9
    entity_names = {
        n["entity"]: n.get("name_en") or n["name"]
        for n in supplychain.scenario_graph("medical")["nodes"]
    }
    assert entity_names[tier1["entity"]["largest"]["key"]] in {
        supplychain.KINOTO,
        supplychain.TSUCHINOE,
        supplychain.KANOTO,
    }


@pytest.mark.django_db
def test_the_pages_show_the_chains_computed_findings_and_the_hearing_notes(demo):
    banks = supplychain.campaigns_of("banks")
    (medical,) = supplychain.campaigns_of("medical")
    kohaku = next(c for c in banks if c.owner.name_en == cast.KOHAKU_BANK.name_en)
    bank_admin = client_for(User.objects.get(username="kohaku-admin"))
    page = bank_admin.get(reverse("supplychain:campaign", args=[kohaku.pk]))
    assert page.status_code == 200
    assert "ひのきメカトロ株式会社（架空）" in page.content.decode()
    # Menou Systems sees its own answer to the bank.
    menou_answer = Invitation.objects.get(
        campaign=kohaku, organisation__name_en=cast.MENOU_SYSTEMS.name_en
    )
    vendor = client_for(User.objects.get(username="menou-admin"))
    assert vendor.get(reverse("supplychain:index")).status_code == 200
    assert vendor.get(reverse("supplychain:response", args=[menou_answer.pk])).status_code == 200

    owner = client_for(User.objects.get(username="owner"))
    owner.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    html = owner.get(reverse("supplychain:campaign", args=[medical.pk])).content.decode()
    assert 'id="tier-origin"' in html
    assert '<tr data-tier="0"><td>0 (manufacturers)</td>' in html
    # The ECMO page lists the single points of failure the analysis computes.
    ecmo = CriticalService.objects.get(owner=medical.owner, name_en="Supply of ECMO systems")
    page = owner.get(reverse("supplychain:service", args=[ecmo.pk])).content.decode()
    spof_list = page.split('id="finding-spof"')[1].split("</ul>")[0]
    assert "Wuppertal Membranes GmbH (fictitious)" in spof_list

    # The demo's hearings: the secretariat's notes on a ventilator maker, the bank's on an ATM
    # vendor; only the survey owner's members read them, the supplier heard does not.
    assert HearingNote.objects.filter(invitation__campaign=medical).count() == 2
    assert HearingNote.objects.filter(invitation__campaign=kohaku).count() == 1
    note = HearingNote.objects.get(
        invitation__campaign=medical, invitation__tier=0, notes__contains="流量センサー"
    )
    response_url = reverse("supplychain:response", args=[note.invitation_id])
    html = owner.get(response_url).content.decode()
    assert 'id="hearing-notes"' in html
    assert "流量センサーの調達について確認した" in html
    assert 'id="hearing-form"' in html
    maker = client_for(User.objects.get(username="supply-m-kinoe"))
    html = maker.get(response_url).content.decode()
    assert "流量センサーの調達について確認した" not in html
    assert 'id="hearings"' not in html
    audited = AuditEvent.objects.filter(action="supplychain.hearing_recorded")
    assert audited.count() == HearingNote.objects.count() == 3


@pytest.mark.django_db
def test_running_the_demo_again_creates_no_survey_answer_or_note(demo):
    before = _counts()
    with override_settings(VAR_DIR=demo.var_dir), translation.override("en"):
        call_command("demo", stdout=(again := io.StringIO()))
    assert _counts() == before
    assert "Supply-chain demo already loaded: 3 surveys" in again.getvalue()
