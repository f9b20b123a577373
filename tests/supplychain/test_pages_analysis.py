"""The analysis pages: a critical service's layered graph with its findings, and concentration for
an organisation and for the sector. Real graphs built through the survey services or imported in
the exchange format; access both ways (outsiders get 404)."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from mamori.organisations.access import Access
from mamori.organisations.models import Category, Organisation, Role
from mamori.supplychain import analysis, graph, report, services, views_analysis
from mamori.supplychain.models import CriticalService, Need, Node, Provision
from tests.conftest import client_for, make_user
from tests.supplychain.test_survey_cascade import build_chain

JSON_BLOCK = re.compile(
    r'<script id="service-graph-data" type="application/json">(.*?)</script>', re.S
)


@pytest.fixture(autouse=True)
def in_english(settings):
    """These tests read the messages in English (the default UI language is Japanese; the
    Japanese catalogue is checked by tests/core/test_translations.py)."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


def page_data(response) -> dict:
    match = JSON_BLOCK.search(response.content.decode())
    assert match, "no JSON data block"
    return json.loads(match.group(1))


def table_rows(response) -> dict[str, str]:
    """node id → the row's HTML, from the no-JavaScript table."""
    html = response.content.decode()
    return dict(re.findall(r'<tr data-node="([^"]+)"[^>]*>(.*?)</tr>', html, re.S))


def converging_graph(organisation: Organisation, prefix: str = "") -> dict:
    """A bank service with two hosting alternatives that both run on one grid (hidden
    convergence), a network need served only from Japan (single country), a sole-source
    software vendor that is uncertified and opaque."""
    own = f"org-{organisation.pk}"
    p = prefix
    return {
        "schema": graph.SCHEMA,
        "nodes": [
            {
                "id": f"{p}core",
                "entity": own,
                "name": "勘定系",
                "name_en": "Core banking",
                "country": "JP",
                "critical": True,
                "certified": True,
                "disclosure": "full",
                "kind": "service",
            },
            *[
                {
                    "id": f"{p}{key}",
                    "entity": entity,
                    "parent": parent,
                    "name": name,
                    "country": country,
                    "critical": False,
                    "certified": certified,
                    "disclosure": disclosure,
                    "kind": "ict",
                }
                for key, entity, parent, name, country, certified, disclosure in (
                    ("cloud-x", "cloudco", "megacorp", "クラウドX", "JP", True, "full"),
                    ("dc-1", "dcco", "megacorp", "データセンター1", "JP", True, "full"),
                    ("grid", "gridco", "gridco", "東京電力網", "JP", True, "full"),
                    ("net-a", "netco-a", "netco-a", "回線A", "JP", True, "full"),
                    ("net-b", "netco-b", "netco-b", "回線B", "JP", True, "full"),
                    ("soft", "softco", "softco", "勘定系ソフト", "US", False, "none"),
                )
            ],
        ],
        "requirements": [
            {"node": f"{p}core", "need": "hosting", "providers": [f"{p}cloud-x", f"{p}dc-1"]},
            {"node": f"{p}core", "need": "network", "providers": [f"{p}net-a", f"{p}net-b"]},
            {"node": f"{p}core", "need": "software", "providers": [f"{p}soft"]},
            {"node": f"{p}cloud-x", "need": "power", "providers": [f"{p}grid"]},
            {"node": f"{p}dc-1", "need": "power", "providers": [f"{p}grid"]},
        ],
    }


def imported_service(organisation: Organisation) -> CriticalService:
    services.import_graph(organisation, converging_graph(organisation))
    return CriticalService.objects.get(owner=organisation, key="core")


# --- The service page --------------------------------------------------------------------------


@pytest.mark.django_db
def test_service_page_shows_the_three_tier_chain_with_its_spof(
    world, django_capture_on_commit_callbacks
):
    chain = build_chain(world, django_capture_on_commit_callbacks)
    a, b = chain.a.node, chain.b.node
    for user in (world.admin, world.contributor, world.signatory):
        response = client_for(user).get(f"/supply/services/{chain.service.pk}/")
        assert response.status_code == 200
        rows = table_rows(response)
        # The service, A, B and A's two opaque power providers (Grid, Generator).
        assert set(rows) == {
            chain.service.key,
            a.key,
            b.key,
            *Node.objects.filter(name_ja__in=["Grid", "Generator"]).values_list("key", flat=True),
        }
        assert "Core ops" in rows[a.key]
        assert 'class="badge failed"' in rows[a.key]
        assert "<td>1</td>" in rows[a.key]
        assert "<td>2</td>" in rows[b.key]
        assert 'class="badge failed"' in rows[b.key]
        grid = Node.objects.get(name_ja="Grid")
        assert 'class="badge failed"' not in rows[grid.key]
        assert "<td>2</td>" in rows[grid.key]
        html = response.content.decode()
        spof_list = re.search(r'<ul id="finding-spof">(.*?)</ul>', html, re.S).group(1)
        assert "Core ops" in spof_list
        assert "DC" in spof_list
        assert 'id="no-answers"' not in html
    data = page_data(response)
    assert data["spof"] == sorted([a.key, b.key])
    flagged = {
        e["data"]["id"]
        for e in data["elements"]
        if e["group"] == "nodes" and "spof" in e["classes"].split()
    }
    assert flagged == {a.key, b.key}


@pytest.mark.django_db
def test_service_page_json_matches_the_analysis(world):
    service = imported_service(world.bank)
    response = client_for(world.admin).get(f"/supply/services/{service.pk}/")
    assert response.status_code == 200
    data = page_data(response)
    expected = analysis.analyse(
        graph.from_dict(report.upstream_document(services.export_graph(world.bank), "core"))
    )
    assert data["analysis"] == json.loads(json.dumps(expected))
    assert data["spof"] == ["grid", "soft"] == expected["spof"]["core"]
    assert data["root"] == "core"
    assert set(data["tier_labels"]) == {"1", "2"}
    edges = [e for e in data["elements"] if e["group"] == "edges"]
    assert len(edges) == 7
    assert {e["data"]["target"] for e in edges if e["classes"] == "sole"} == {"soft", "grid"}
    classes = {
        e["data"]["id"]: set(e["classes"].split())
        for e in data["elements"]
        if e["group"] == "nodes"
    }
    assert classes["soft"] == {"spof", "opaque", "uncertified"}
    assert classes["core"] == {"critical"}
    assert classes["net-a"] == set()


@pytest.mark.django_db
def test_service_page_queries_do_not_grow_with_the_chain(world):
    """No query per node: a chain twice as long costs the same number of queries."""
    small = imported_service(world.bank)
    services.import_graph(world.other_bank, converging_graph(world.other_bank))
    extra = converging_graph(world.other_bank, prefix="more-")
    services.import_graph(world.other_bank, extra)
    big = CriticalService.objects.get(owner=world.other_bank, key="core")
    # Hang the second chain under the first service as one more need.
    need = Need.objects.create(node=big, name="backup")
    Provision.objects.create(
        need=need, provider=Node.objects.get(owner=world.other_bank, key="more-core")
    )
    counts = []
    for service, user in ((small, world.admin), (big, world.other_admin)):
        client = client_for(user)
        client.get(f"/supply/services/{service.pk}/")  # warm the session
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/supply/services/{service.pk}/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


@pytest.mark.django_db
def test_service_page_findings(world):
    service = imported_service(world.bank)
    html = client_for(world.admin).get(f"/supply/services/{service.pk}/").content.decode()
    convergence = re.search(r'<ul id="finding-convergence">(.*?)</ul>', html, re.S).group(1)
    assert "hosting" in convergence
    assert "東京電力網" in convergence
    single = re.search(r'<ul id="finding-single-country">(.*?)</ul>', html, re.S).group(1)
    assert "network" in single
    assert "JP" in single
    sole = re.search(r'<ul id="finding-sole-source">(.*?)</ul>', html, re.S).group(1)
    assert "勘定系ソフト" in sole
    assert "(US)" in sole
    opacity = re.search(r'<p id="finding-opacity">(.*?)</p>', html, re.S).group(1)
    assert "1 of 7" in opacity
    assert "14%" in opacity
    assert "tier 1" in opacity
    assert "勘定系ソフト" in re.search(r'<p id="finding-uncertified">(.*?)</p>', html).group(1)
    # The legend names every highlight.
    legend = re.search(r'<ul class="sc-legend" id="legend">(.*?)</ul>', html, re.S).group(1)
    for css in ("spof", "opaque", "uncertified", "critical"):
        assert f'sc-swatch {css}"' in legend


@pytest.mark.django_db
def test_service_page_in_english(world):
    service = imported_service(world.bank)
    client = client_for(world.admin)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = client.get(f"/supply/services/{service.pk}/").content.decode()
    assert '<html lang="en">' in html
    assert "Core banking" in html
    assert "Single point of failure" in html


@pytest.mark.django_db
def test_service_page_is_404_for_others(world, django_capture_on_commit_callbacks):
    chain = build_chain(world, django_capture_on_commit_callbacks)
    url = f"/supply/services/{chain.service.pk}/"
    for user in (world.other_admin, world.outsider, world.owner, world.assessor, chain.user_a):
        assert client_for(user).get(url).status_code == 404, user
    anonymous = Client().get(url)
    assert anonymous.status_code == 302
    assert "login" in anonymous["Location"]
    # A supplier node is not a critical service: no page for it, even for the owner.
    assert client_for(world.admin).get(f"/supply/services/{chain.a.node.pk}/").status_code == 404


@pytest.mark.django_db
def test_empty_states(world):
    access = Access.for_user(world.admin)
    service = services.create_service(
        world.admin, access, world.bank, name_ja="ATM網", name_en="ATM network"
    )
    client = client_for(world.admin)
    html = client.get(f"/supply/services/{service.pk}/").content.decode()
    assert 'id="no-answers"' in html
    assert "No suppliers are recorded" in html
    assert 'id="graph-table"' not in html
    assert "service-graph-data" not in html
    # Invited but not answered: still empty of answers, the opaque invitee is listed.
    campaign = services.create_campaign(
        world.admin,
        access,
        world.bank,
        title="ATM",
        services=[service],
        deadline=timezone.localdate() + dt.timedelta(days=30),
        site_url="http://testserver/",
    )
    sent = services.invite(
        world.admin,
        access,
        campaign=campaign,
        for_node=service,
        need="network",
        supplier_name="Vendor Z",
        country="JP",
        email="z@example.jp",
        site_url="http://testserver/",
    )
    response = client.get(f"/supply/services/{service.pk}/")
    html = response.content.decode()
    assert 'id="no-answers"' in html
    assert "No supplier has answered yet" in html
    assert "Vendor Z" in table_rows(response)[sent.invitation.node.key]


@pytest.mark.django_db
def test_scripts_come_from_our_static_files(world, client):
    service = imported_service(world.bank)
    response = client_for(world.admin).get(f"/supply/services/{service.pk}/")
    html = response.content.decode()
    sources = re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", html)
    assert "/static/supplychain/vendor/cytoscape.min.js" in sources
    assert "/static/supplychain/service_graph.js" in sources
    assert not [s for s in sources if re.match(r"(https?:)?//", s)]
    # No inline script: every <script> has a src, or is the JSON data block.
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert "style=" not in html.split("<main", 1)[1]
    # The CSP still allows scripts from ourselves only.
    csp = response.headers.get("Content-Security-Policy", "")
    assert "script-src 'self'" in csp
    # The files exist in our static files and are served.
    vendored = finders.find("supplychain/vendor/cytoscape.min.js")
    assert vendored
    assert finders.find("supplychain/service_graph.js")
    with open(vendored, encoding="utf-8") as handle:
        head = handle.read(400)
    assert "The Cytoscape Consortium" in head  # licence header kept
    served = client.get("/static/supplychain/vendor/cytoscape.min.js")
    assert served.status_code == 200
    package = json.loads((settings.BASE_DIR / "package.json").read_text())
    assert package["devDependencies"]["cytoscape"] == "3.34.4"
    body = b"".join(served.streaming_content) if served.streaming else served.content
    assert b'"3.34.4"' in body


# --- Concentration -----------------------------------------------------------------------------


def hhi_rows(html: str, scope: str) -> dict[str, str]:
    table = re.search(rf'<table class="sc-hhi" id="hhi-{scope}">(.*?)</table>', html, re.S)
    assert table, scope
    return dict(re.findall(r'<tr data-dimension="(\w+)">(.*?)</tr>', table.group(1), re.S))


@pytest.mark.django_db
def test_organisation_concentration(world):
    imported_service(world.bank)
    url = f"/supply/organisations/{world.bank.pk}/concentration/"
    expected = analysis.analyse(graph.from_dict(services.export_graph(world.bank)))
    sector = expected["concentration"]["sector"]
    for user in (world.admin, world.contributor):
        response = client_for(user).get(url)
        assert response.status_code == 200
        html = response.content.decode()
        for scope in ("all_tiers", "tier1"):
            rows = hhi_rows(html, scope)
            for dimension in ("entity", "parent", "country"):
                assert f"<td>{round(sector[scope][dimension]['hhi'])}</td>" in rows[dimension]
        # Country: every edge of the chain is Japanese except the US software (1 of 7).
        largest = sector["all_tiers"]["country"]["largest"]
        assert largest["key"] == "JP"
        assert largest["share"] == pytest.approx(6 / 7, abs=1e-4)
        assert "86%" in hhi_rows(html, "all_tiers")["country"]
        # Parent: megacorp owns both hosting alternatives.
        assert "megacorp" in hhi_rows(html, "tier1")["parent"]
        assert html.count('<ul class="sc-bars"') == 8  # one HHI chart and three per scope
        reach = re.search(r'<table id="reach">(.*?)</table>', html, re.S).group(1)
        assert 'data-entity="gridco"' in reach
        assert 'data-entity="softco"' in reach
    # The bars come from the same count as the analysis' HHI.
    document = services.export_graph(world.bank)
    for scope in ("all_tiers", "tier1"):
        tally = report.edge_tally(document, scope)
        for dimension, counter in tally.items():
            total = sum(counter.values())
            hhi = sum((100 * c / total) ** 2 for c in counter.values())
            assert hhi == pytest.approx(sector[scope][dimension]["hhi"], abs=0.01)
    for user in (world.other_admin, world.outsider, world.owner):
        assert client_for(user).get(url).status_code == 404
    # The chooser sends a one-organisation user straight to its page.
    response = client_for(world.admin).get("/supply/concentration/")
    assert response.status_code == 302
    assert response["Location"] == url
    assert client_for(world.outsider).get("/supply/concentration/").status_code == 200


@pytest.mark.django_db
def test_organisation_without_services(world):
    response = client_for(world.admin).get(f"/supply/organisations/{world.bank.pk}/concentration/")
    assert response.status_code == 200
    assert "no critical services yet" in response.content.decode()


@pytest.mark.django_db
def test_sector_page_hides_figures_from_fewer_than_three_institutions(world):
    url = "/supply/sector/concentration/"
    owner = client_for(world.owner)
    services.import_graph(world.bank, converging_graph(world.bank))
    services.import_graph(world.other_bank, converging_graph(world.other_bank))
    html = owner.get(url).content.decode()
    assert 'id="hidden-figures"' in html
    assert "sc-hhi" not in html
    assert 'id="reach"' not in html
    assert "megacorp" not in html
    # A third institution: the figures appear, computed over the three graphs.
    third = Organisation.objects.create(
        name_ja="第三銀行", name_en="Third Bank", category=Category.FINANCIAL_INSTITUTION
    )
    make_user("thea", third, Role.APPLICANT_ADMIN)
    services.import_graph(third, converging_graph(third))
    response = owner.get(url)
    html = response.content.decode()
    assert 'id="hidden-figures"' not in html
    document, owners = views_analysis.sector_document()
    assert {o.pk for o in owners} == {world.bank.pk, world.other_bank.pk, third.pk}
    expected = analysis.analyse(graph.from_dict(document))
    assert expected["summary"]["institutions"] == 3
    sector = expected["concentration"]["sector"]
    rows = hhi_rows(html, "all_tiers")
    for dimension in ("entity", "parent", "country"):
        assert f"<td>{round(sector['all_tiers'][dimension]['hhi'])}</td>" in rows[dimension]
    # gridco stops all three institutions' core banking: reach 100 %.
    reach = dict(
        re.findall(r'<tr data-entity="([^"]+)">(.*?)</tr>', html.split('id="reach"')[1], re.S)
    )
    assert expected["reach"]["gridco"]["institutions"] == 3
    assert "<td>3</td><td>100%</td>" in reach["gridco"]
    # Only the scheme owner sees the sector.
    for user in (world.admin, world.other_admin, world.outsider, world.assessor):
        assert client_for(user).get(url).status_code == 404


@pytest.mark.django_db
def test_links_to_the_analysis_pages(world, django_capture_on_commit_callbacks):
    chain = build_chain(world, django_capture_on_commit_callbacks)
    admin = client_for(world.admin)
    services_html = admin.get("/supply/services/").content.decode()
    assert f'href="/supply/services/{chain.service.pk}/"' in services_html
    campaign_html = admin.get(f"/supply/campaigns/{chain.campaign.pk}/").content.decode()
    assert f'href="/supply/services/{chain.service.pk}/"' in campaign_html
    assert f'href="/supply/organisations/{world.bank.pk}/concentration/"' in campaign_html
    assert 'href="/supply/concentration/"' in admin.get("/supply/").content.decode()
    owner_index = client_for(world.owner).get("/supply/").content.decode()
    assert 'href="/supply/sector/concentration/"' in owner_index
