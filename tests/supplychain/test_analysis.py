"""The structural-risk analysis: hand-made graphs with known answers, and property tests that
compare the single points of failure with brute-force failure propagation."""

from __future__ import annotations

import io
import json
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mamori.supplychain import analysis, graph


def node(node_id: str, **fields) -> dict:
    base = {
        "id": node_id,
        "entity": node_id.split(":")[0],
        "name": node_id,
        "country": "JP",
        "critical": False,
        "certified": True,
        "disclosure": "full",
    }
    base.update(fields)
    return base


def need(node_id: str, name: str, *providers: str) -> dict:
    return {"node": node_id, "need": name, "providers": list(providers)}


def run(nodes: list[dict], requirements: list[dict]) -> dict:
    result = analysis.analyse(graph.build(nodes, requirements))
    json.dumps(result)  # serialisable
    return result


# --- hand-made graphs ------------------------------------------------------------------------


def test_and_needs_each_sole_source_are_all_single_points():
    result = run(
        [node("bank:svc", critical=True), node("a"), node("b"), node("c")],
        [need("bank:svc", "x", "a"), need("bank:svc", "y", "b"), need("a", "z", "c")],
    )
    assert result["spof"] == {"bank:svc": ["a", "b", "c"]}
    assert [(s["node"], s["need"], s["provider"], s["tier"]) for s in result["sole_source"]] == [
        ("bank:svc", "x", "a", 0),
        ("bank:svc", "y", "b", 0),
        ("a", "z", "c", 1),
    ]


def test_or_alternatives_are_no_single_point_unless_they_converge():
    result = run(
        [
            node("bank:svc", critical=True),
            node("dc1"),
            node("dc2", country="US"),
            node("grid"),
            node("dc3"),
        ],
        [
            need("bank:svc", "hosting", "dc1", "dc2"),
            need("bank:svc", "backup", "dc3", "dc2"),
            need("dc1", "power", "grid"),
            need("dc2", "power", "grid"),
        ],
    )
    assert result["spof"] == {"bank:svc": ["grid"]}
    assert result["hidden_convergence"] == [
        {
            "node": "bank:svc",
            "need": "hosting",
            "providers": ["dc1", "dc2"],
            "converges_on": ["grid"],
            "tier": 0,
        }
    ]
    assert result["single_country"] == []  # JP and US


def test_alternative_that_itself_runs_on_the_other_is_convergence():
    result = run(
        [node("bank:svc", critical=True), node("reseller"), node("cloud")],
        [need("bank:svc", "hosting", "reseller", "cloud"), need("reseller", "infra", "cloud")],
    )
    assert result["spof"] == {"bank:svc": ["cloud"]}
    assert result["hidden_convergence"][0]["converges_on"] == ["cloud"]


def test_cycles_use_the_least_fixpoint():
    # a and b back each other up and each has an outside alternative: removing one node never
    # stops the pair, although the greatest solution of the equations would say anything does.
    result = run(
        [node("bank:svc", critical=True), node("a"), node("b"), node("c"), node("d")],
        [
            need("bank:svc", "x", "a"),
            need("a", "y", "b", "c"),
            need("b", "y", "a", "d"),
        ],
    )
    assert result["spof"] == {"bank:svc": ["a"]}
    assert result["summary"]["nodes_in_cycles"] == 2


def test_sole_source_cycle_makes_both_members_single_points():
    result = run(
        [node("bank:svc", critical=True), node("a"), node("b"), node("e"), node("f")],
        [
            need("bank:svc", "x", "a"),
            need("a", "y", "b"),
            need("b", "z", "a"),
            need("b", "w", "f"),
            need("bank:svc", "v", "e", "a"),  # e is an alternative to a for this need only
        ],
    )
    assert result["spof"] == {"bank:svc": ["a", "b", "f"]}


def test_single_country_needs_ignore_unknown_countries_and_sole_sources():
    result = run(
        [
            node("bank:svc", critical=True),
            node("p1", country="TW"),
            node("p2", country="TW"),
            node("p3", country=""),
            node("p4", country=""),
            node("p5", country="TW"),
        ],
        [
            need("bank:svc", "chips", "p1", "p2"),
            need("bank:svc", "boards", "p3", "p4"),
            need("bank:svc", "firmware", "p5"),
        ],
    )
    assert result["single_country"] == [
        {
            "node": "bank:svc",
            "need": "chips",
            "providers": ["p1", "p2"],
            "country": "TW",
            "tier": 0,
        }
    ]
    assert result["sole_source"][0]["country"] == "TW"


def test_opacity_share_and_tier_where_disclosure_stops():
    result = run(
        [
            node("bank:svc", critical=True),
            node("t1"),
            node("t2", disclosure="partial"),
            node("t3", disclosure="none"),
            node("other:svc", critical=True, disclosure="none"),
            node("full:svc", critical=True),
        ],
        [need("bank:svc", "x", "t1"), need("t1", "y", "t2"), need("t2", "z", "t3")],
    )
    assert result["opacity"]["bank:svc"] == {
        "share": 0.5,
        "upstream": 4,
        "opaque": 2,
        "first_opaque_tier": 2,
    }
    # A service whose owner disclosed nothing is fully opaque at tier 0.
    assert result["opacity"]["other:svc"] == {
        "share": 1.0,
        "upstream": 1,
        "opaque": 1,
        "first_opaque_tier": 0,
    }
    assert result["opacity"]["full:svc"]["first_opaque_tier"] is None


def test_uncertified_on_critical_path_and_in_spof_sets():
    result = run(
        [
            node("bank:svc", critical=True, certified=False),
            node("a", certified=False),
            node("b", certified=False),
            node("c"),
            node("offpath", certified=False),
        ],
        [
            need("bank:svc", "x", "a"),
            need("bank:svc", "y", "b", "c"),
            need("offpath", "z", "a"),
        ],
    )
    # The critical node itself is not a provider; offpath is not upstream of any critical node.
    assert result["uncertified_on_critical_path"] == ["a", "b"]
    assert result["uncertified_spof"] == {"bank:svc": ["a"]}
    assert [s["tier"] for s in result["sole_source"]] == [0, None]


def test_concentration_hhi_and_largest_share():
    result = run(
        [
            node("inst:svc", critical=True),
            node("p1", entity="E1", parent="G"),
            node("p2", entity="E1", country="US"),
            node("p3", entity="E2", parent="G"),
            node("p4", entity="E3", country="US"),
            node("q1", entity="E4"),
        ],
        [
            need("inst:svc", "x", "p1", "p2", "p3"),
            need("inst:svc", "y", "p4"),
            need("p1", "z", "q1"),
        ],
    )
    org = result["concentration"]["organisations"]["inst"]
    # Tier 1: edges to E1, E1, E2, E3 -> shares 0.5, 0.25, 0.25.
    assert org["tier1"]["edges"] == 4
    assert org["tier1"]["entity"] == {"hhi": 3750.0, "largest": {"key": "E1", "share": 0.5}}
    # Parents: G (p1, p3), E1 (p2), E3 (p4).
    assert org["tier1"]["parent"] == {"hhi": 3750.0, "largest": {"key": "G", "share": 0.5}}
    assert org["tier1"]["country"] == {"hhi": 5000.0, "largest": {"key": "JP", "share": 0.5}}
    # All tiers add p1's edge to E4: 5 edges, E1 2/5.
    assert org["all_tiers"]["edges"] == 5
    assert org["all_tiers"]["entity"]["hhi"] == round(100**2 * (0.4**2 + 3 * 0.2**2), 2)
    assert result["concentration"]["sector"] == org


def test_reach_counts_other_institutions_a_provider_can_stop():
    result = run(
        [
            node("bank-a:svc", critical=True),
            node("bank-b:svc", critical=True),
            node("bank-c:svc", critical=True),
            node("cloud:1"),
            node("cloud:2"),
            node("alt:1"),
            node("bank-a:ops"),
        ],
        [
            need("bank-a:svc", "hosting", "cloud:1"),
            need("bank-a:svc", "ops", "bank-a:ops"),
            need("bank-b:svc", "hosting", "cloud:2"),
            need("bank-c:svc", "hosting", "cloud:1", "alt:1"),
        ],
    )
    assert result["reach"] == {
        "cloud": {"institutions": 2, "share": 0.6667, "critical_services": 2},
    }
    assert result["summary"]["institutions"] == 3


def test_no_critical_nodes():
    result = run([node("a"), node("b")], [need("a", "x", "b")])
    assert result["spof"] == {}
    assert result["opacity"] == {}
    assert result["reach"] == {}
    assert result["concentration"]["sector"]["all_tiers"]["edges"] == 0
    assert result["sole_source"][0]["tier"] is None
    assert "0" in analysis.render_text(result)


def test_text_report_in_japanese_and_english():
    result = run(
        [node("bank:svc", critical=True), node("dc1"), node("dc2"), node("grid")],
        [
            need("bank:svc", "hosting", "dc1", "dc2"),
            need("dc1", "power", "grid"),
            need("dc2", "power", "grid"),
        ],
    )
    ja = analysis.render_text(result)
    assert "単一障害点 (1 件): grid" in ja
    for heading in ("隠れた集中", "単一国依存", "集中リスク", "影響範囲"):
        assert heading in ja
    en = analysis.render_text(result, "en")
    assert "Single points of failure (1): grid" in en
    assert "bank:svc / hosting: alternatives dc1, dc2 → common upstream grid" in en


# --- property tests: the fixpoint against brute-force propagation ----------------------------


@st.composite
def random_graphs(draw):
    n = draw(st.integers(min_value=2, max_value=10))
    ids = [f"n{i}" for i in range(n)]
    nodes = [
        node(
            ids[i],
            critical=draw(st.booleans()),
            certified=draw(st.booleans()),
            disclosure=draw(st.sampled_from(graph.DISCLOSURES)),
            country=draw(st.sampled_from(["JP", "US", ""])),
        )
        for i in range(n)
    ]
    requirements = []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for k in range(draw(st.integers(min_value=0, max_value=3))):
            providers = draw(st.lists(st.sampled_from(others), min_size=1, max_size=3, unique=True))
            requirements.append(need(ids[i], f"need{k}", *(ids[p] for p in providers)))
    return nodes, requirements


def brute_force_failures(g: graph.SupplyGraph, removed: int) -> set[int]:
    """Remove one node and propagate to the fixpoint, starting from nothing else failed."""
    failed = {removed}
    changed = True
    while changed:
        changed = False
        for v in range(g.node_count):
            if v in failed:
                continue
            if any(all(p in failed for p in g.providers_of(r)) for r in g.requirements_of(v)):
                failed.add(v)
                changed = True
    return failed


@settings(max_examples=300, deadline=None)
@given(random_graphs())
def test_spof_equals_brute_force(sample):
    nodes, requirements = sample
    g = graph.build(nodes, requirements)
    failures = [brute_force_failures(g, x) for x in range(g.node_count)]
    result = analysis.analyse(g)
    for c in g.critical_nodes():
        expected = sorted(g.ids[x] for x in range(g.node_count) if x != c and c in failures[x])
        assert result["spof"][g.ids[c]] == expected
    # Every node's failure set, not only the critical ones.
    upstream = g.upstream_adjacency()
    components = analysis.strongly_connected_components(upstream)
    sets = analysis.single_failure_sets(g, components, g.dependents())
    for v in range(g.node_count):
        assert sets[v] == {x for x in range(g.node_count) if v in failures[x]}
    # Hidden convergence: the nodes whose failure alone stops every alternative.
    found = {(c["node"], c["need"]): c["converges_on"] for c in result["hidden_convergence"]}
    for r in range(g.requirement_count):
        providers = g.providers_of(r)
        if len(providers) < 2:
            continue
        expected = sorted(
            g.ids[x] for x in range(g.node_count) if all(p in failures[x] for p in providers)
        )
        assert found.get((g.ids[g.req_node[r]], g.req_need[r]), []) == expected


def reachable(g: graph.SupplyGraph, start: int) -> set[int]:
    upstream = g.upstream_adjacency()
    seen = {start}
    stack = [start]
    while stack:
        for p in upstream[stack.pop()]:
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return seen


@settings(max_examples=150, deadline=None)
@given(random_graphs())
def test_upstream_figures_equal_a_plain_search(sample):
    nodes, requirements = sample
    g = graph.build(nodes, requirements)
    result = analysis.analyse(g)
    on_path: set[int] = set()
    for c in g.critical_nodes():
        closure = reachable(g, c)
        opaque = sum(1 for v in closure if graph.DISCLOSURES[g.disclosure[v]] != "full")
        figures = result["opacity"][g.ids[c]]
        assert (figures["upstream"], figures["opaque"]) == (len(closure), opaque)
        for p in g.upstream_adjacency()[c]:
            on_path |= reachable(g, p)
    assert result["uncertified_on_critical_path"] == sorted(
        g.ids[v] for v in on_path if not g.certified[v]
    )


def test_random_graphs_do_contain_cycles():
    """The property tests are only worth it if the strategy produces cycles: check a few."""
    from hypothesis import Phase, find

    nodes, requirements = find(
        random_graphs(),
        lambda s: analysis.analyse(graph.build(*s))["summary"]["nodes_in_cycles"] >= 3,
        settings=settings(database=None, phases=[Phase.generate], max_examples=50),
    )
    assert analysis.analyse(graph.build(nodes, requirements))["summary"]["nodes_in_cycles"] >= 3


@settings(max_examples=100, deadline=None)
@given(random_graphs(), st.integers(min_value=1, max_value=3), st.integers(1, 2))
def test_closures_counted_in_small_batches_agree(sample, critical_batch, institution_batch):
    """Closures are counted in batches of critical nodes (whole institutions): any batch size
    gives the same figures, and an institution's ``all_tiers`` edges are those of every node a
    plain search finds upstream of its critical nodes."""
    g = graph.build(*sample)
    whole = analysis.analyse(g)
    with (
        mock.patch.object(analysis, "CRITICAL_BATCH", critical_batch),
        mock.patch.object(analysis, "INSTITUTION_BATCH", institution_batch),
        mock.patch.object(analysis, "NODE_CHUNK", 3),
    ):
        assert analysis.analyse(g) == whole
    institutions: dict[str, set[int]] = {}
    for c in g.critical_nodes():
        institutions.setdefault(g.entities[g.entity[c]], set()).update(reachable(g, c))
    for name, closure in institutions.items():
        edges = sum(len(g.providers_of(r)) for v in closure for r in g.requirements_of(v))
        assert whole["concentration"]["organisations"][name]["all_tiers"]["edges"] == edges
    everything = set().union(*institutions.values())
    edges = sum(len(g.providers_of(r)) for v in everything for r in g.requirements_of(v))
    assert whole["concentration"]["sector"]["all_tiers"]["edges"] == edges


@pytest.mark.parametrize("chunk", [1, 2, analysis.JSON_CHUNK])
def test_json_output_is_the_standard_encoding_without_whitespace(chunk):
    nodes = [node("bank:svc", critical=True, name="勘定系")]
    nodes += [node(f"p{i}", country="JP" if i % 2 else "US") for i in range(6)]
    requirements = [need("bank:svc", f"need{i}", f"p{i}") for i in range(3)]
    requirements += [need("p0", "power", "p3", "p4"), need("p1", "power", "p3", "p5")]
    result = run(nodes, requirements)
    out = io.BytesIO()
    with mock.patch.object(analysis, "JSON_CHUNK", chunk):
        analysis.write_json(result, out)
    standard = json.dumps(result, ensure_ascii=False, separators=(",", ":")) + "\n"
    assert out.getvalue() == standard.encode("utf-8")
    indented = io.BytesIO()
    analysis.write_json(result, indented, indent=True)
    assert indented.getvalue() == (json.dumps(result, ensure_ascii=False, indent=2) + "\n").encode()


@settings(max_examples=100, deadline=None)
@given(random_graphs())
def test_fast_and_checked_validation_build_the_same_graph(sample):
    nodes, requirements = sample
    fast = graph._build_valid(nodes, requirements)
    assert fast is not None
    assert fast == graph._build_checked(nodes, requirements)
