"""The supply-chain analysis pages as drawn by the browser (issue 9, section 5): on the service
graph no two node labels overlap, even with many suppliers in one tier and long Japanese names
(which have no spaces to wrap at), and the full name is there on hover; on the concentration
page a long provider name stays inside its bar's box.

The graph is read from Cytoscape itself (model bounding boxes with labels); the bars from the
laid-out page (``getBoundingClientRect``)."""

from __future__ import annotations

import itertools

import pytest

from mamori.supplychain import graph, services
from mamori.supplychain.models import CriticalService
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# No spaces: before the fix these ran far past their node, over the neighbours' labels.
LONG_NAME = "株式会社とても長い名前のクラウド基盤サービス提供事業者東日本データセンター運用部門"
LONG_ENTITY = "超大手総合情報通信サービス持株会社グループ統括本部クラウド事業本部東日本地域統括会社"
TIER1 = 14  # more than fit in one row of the graph


def node(key: str, name: str, entity: str, **fields) -> dict:
    return {
        "id": key,
        "entity": entity,
        "name": name,
        "country": "JP",
        "critical": False,
        "certified": True,
        "disclosure": "full",
        **fields,
    }


@pytest.fixture
def long_named_chain(world):
    """A critical service with 14 Tier-1 suppliers, all with long names, two of them with a
    sole Tier-2 provider of a long-named entity that also serves most needs."""
    world.admin.set_password(PASSWORD)
    world.admin.save(update_fields=["password"])
    suppliers = [f"s{i:02d}" for i in range(TIER1)]
    nodes = [node("core", "勘定系システム", f"org-{world.bank.pk}", critical=True, kind="service")]
    nodes += [node(key, f"{LONG_NAME}{i}", f"vendor-{i % 5}") for i, key in enumerate(suppliers)]
    nodes += [node("dc", f"{LONG_NAME}DC", LONG_ENTITY), node("grid", "東京電力網", "grid-co")]
    requirements = [
        {"node": "core", "need": f"need-{i}", "providers": [key]} for i, key in enumerate(suppliers)
    ]
    requirements += [
        {"node": key, "need": "hosting", "providers": ["dc"]} for key in suppliers[:10]
    ]
    requirements.append({"node": "dc", "need": "power", "providers": ["grid"]})
    services.import_graph(
        world.bank, {"schema": graph.SCHEMA, "nodes": nodes, "requirements": requirements}
    )
    return CriticalService.objects.get(owner=world.bank, key="core")


def overlaps(a: dict, b: dict) -> bool:
    return a["x1"] < b["x2"] and b["x1"] < a["x2"] and a["y1"] < b["y2"] and b["y1"] < a["y2"]


READ_BOXES = """container => {
  const cy = container.scGraph;
  return cy.nodes().map(n => ({
    id: n.id(),
    label: n.data("label"),
    box: n.boundingBox({includeNodes: true, includeLabels: true, includeEdges: false,
                        includeOverlays: false}),
  }));
}"""


@pytest.mark.parametrize("language", ["ja", "en"])
def test_graph_labels_do_not_overlap(browse, world, long_named_chain, language):
    bank = browse("alice", language)
    bank.login("alice", PASSWORD)
    bank.open(f"/supply/services/{long_named_chain.pk}/")
    bank.see_class("#service-graph", "sc-ready")
    bank.page.wait_for_function("document.getElementById('service-graph').scGraph !== undefined")
    boxes = bank.page.eval_on_selector("#service-graph", READ_BOXES)
    # The service, 14 suppliers, the data centre, the grid and a label per tier (1, 2, 3).
    assert len(boxes) == 1 + TIER1 + 2 + 3, [b["id"] for b in boxes]
    for a, b in itertools.combinations(boxes, 2):
        bank.check(not overlaps(a["box"], b["box"]), f"labels overlap: {a} and {b}")
    # Long names are cut (their box is no wider than the label width) …
    widest = max(b["box"]["w"] for b in boxes)
    bank.check(widest <= 160, f"a label is {widest} wide")
    # … and shown whole while the pointer is on the node.
    # (The function returns nothing: handing Cytoscape's element back to Python would make
    # Playwright serialise the whole graph, which takes seconds.)
    bank.page.eval_on_selector(
        "#service-graph", "c => { c.scGraph.getElementById('dc').emit('mouseover'); }"
    )
    title = bank.page.get_attribute("#service-graph", "title")
    bank.check(title == f"{LONG_NAME}DC", f"title on hover: {title!r}")


def test_long_names_stay_inside_their_bars(browse, world, long_named_chain):
    bank = browse("alice", "ja")
    bank.login("alice", PASSWORD)
    bank.open(f"/supply/organisations/{world.bank.pk}/concentration/")
    bar = bank.page.locator("#scope-all_tiers .sc-bar", has_text="超大手").first
    bank.check(bar.count() == 1, "no bar for the long-named entity")
    geometry = bar.evaluate(
        """li => {
          const box = r => { const b = r.getBoundingClientRect();
                             return {left: b.left, right: b.right, top: b.top, bottom: b.bottom}; };
          const label = li.querySelector(".sc-bar-label");
          return {row: box(li), label: box(label), track: box(li.querySelector(".sc-bar-track")),
                  value: box(li.querySelector(".sc-bar-value")), chart: box(li.closest(".sc-chart")),
                  cut: label.scrollWidth > label.clientWidth, title: li.title, text: label.textContent};
        }"""
    )
    label, track, row = geometry["label"], geometry["track"], geometry["row"]
    bank.check(label["right"] <= track["left"], f"the label runs into the bar: {geometry}")
    bank.check(
        row["left"] <= label["left"] and label["right"] <= row["right"], f"label: {geometry}"
    )
    bank.check(track["right"] <= geometry["value"]["left"], f"bar and value: {geometry}")
    chart = geometry["chart"]
    bank.check(
        chart["left"] <= row["left"] and row["right"] <= chart["right"],
        f"the row leaves its chart's box: {geometry}",
    )
    bank.check(geometry["cut"], "the long name should be cut with an ellipsis")
    bank.check(geometry["text"] == LONG_ENTITY, geometry["text"])
    bank.check(geometry["title"].startswith(LONG_ENTITY), geometry["title"])
