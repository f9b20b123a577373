"""The exchange format ``mamori.supplygraph/1``: loading, validation errors, round trip."""

from __future__ import annotations

import copy
import json

import pytest

from mamori.supplychain import graph
from mamori.supplychain.graph import GraphError


def node(node_id: str, **fields) -> dict:
    base = {
        "id": node_id,
        "entity": fields.pop("entity", node_id.split(":")[0]),
        "name": node_id,
        "country": "JP",
        "critical": False,
        "certified": True,
        "disclosure": "full",
    }
    base.update(fields)
    return base


def document() -> dict:
    return {
        "schema": "mamori.supplygraph/1",
        "nodes": [
            node("bank-a:core", critical=True),
            node("dc-1", parent="holding-x", kind="service", name_en="Data centre 1"),
            node("cloud-x", country="US", disclosure="partial"),
            node("grid", certified=False, disclosure="none"),
        ],
        "requirements": [
            {"node": "bank-a:core", "need": "hosting", "providers": ["dc-1", "cloud-x"]},
            {"node": "dc-1", "need": "power", "providers": ["grid"]},
            {"node": "cloud-x", "need": "power", "providers": ["grid"]},
            # A cycle: legal.
            {"node": "grid", "need": "control", "providers": ["cloud-x"]},
        ],
    }


def test_loads_and_builds_compact_arrays():
    g = graph.from_dict(document())
    assert g.ids == ["bank-a:core", "dc-1", "cloud-x", "grid"]
    assert (g.node_count, g.requirement_count, g.edge_count) == (4, 4, 5)
    assert g.critical_nodes() == [0]
    core = g.index["bank-a:core"]
    (hosting,) = g.requirements_of(core)
    assert g.req_need[hosting] == "hosting"
    assert g.providers_of(hosting) == [g.index["dc-1"], g.index["cloud-x"]]
    assert g.parents[g.parent[g.index["dc-1"]]] == "holding-x"
    assert g.parents[g.parent[g.index["grid"]]] == "grid"  # parent defaults to the entity
    assert g.dependents()[g.index["grid"]] == [g.index["dc-1"], g.index["cloud-x"]]
    assert g.upstream_adjacency()[g.index["grid"]] == [g.index["cloud-x"]]
    assert graph.DISCLOSURES[g.disclosure[g.index["grid"]]] == "none"


def test_round_trip_keeps_optional_fields(tmp_path):
    original = document()
    g = graph.from_dict(original)
    assert graph.to_dict(g) == original
    path = tmp_path / "graph.json"
    graph.dump_path(g, path, indent=2)
    assert graph.to_dict(graph.load_path(path)) == original
    assert graph.to_dict(graph.loads(graph.dumps(g))) == original


def test_unknown_keys_are_ignored():
    data = document()
    data["generator"] = "elsewhere"
    data["nodes"][0]["rto_hours"] = 4
    assert graph.from_dict(data).node_count == 4


def test_requirements_may_come_in_any_order():
    data = document()
    data["requirements"].reverse()
    g = graph.from_dict(data)
    assert [g.req_node[r] for r in range(g.requirement_count)] == sorted(g.req_node)


def _broken(change) -> dict:
    data = copy.deepcopy(document())
    change(data)
    return data


def _set(path: list, value):
    def change(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _delete(path: list):
    def change(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


BAD = {
    "schema missing": (_delete(["schema"]), "schema: missing"),
    "schema version": (
        _set(["schema"], "mamori.supplygraph/2"),
        "schema: unsupported version 'mamori.supplygraph/2'",
    ),
    "nodes missing": (_delete(["nodes"]), "nodes: missing"),
    "requirements missing": (_delete(["requirements"]), "requirements: missing"),
    "nodes not a list": (_set(["nodes"], {}), "nodes: expected a list, got an object"),
    "node not an object": (_set(["nodes", 1], "dc-1"), "nodes[1]: expected an object"),
    "node field missing": (
        _delete(["nodes", 1, "entity"]),
        "nodes[1] ('dc-1').entity: missing",
    ),
    "critical not boolean": (
        _set(["nodes", 0, "critical"], "yes"),
        "nodes[0] ('bank-a:core').critical: expected true or false, got a string",
    ),
    "certified a number": (
        _set(["nodes", 0, "certified"], 1),
        "nodes[0] ('bank-a:core').certified: expected true or false, got a number",
    ),
    "id a number": (_set(["nodes", 2, "id"], 7), "nodes[2].id: expected a string, got a number"),
    "empty id": (_set(["nodes", 2, "id"], " "), "nodes[2].id: empty"),
    "parent not a string": (
        _set(["nodes", 1, "parent"], ["x"]),
        "nodes[1] ('dc-1').parent: expected a string, got a list",
    ),
    "bad disclosure": (
        _set(["nodes", 3, "disclosure"], "secret"),
        "nodes[3] ('grid').disclosure: 'secret' is not one of full, partial, none",
    ),
    "duplicate id": (
        _set(["nodes", 3, "id"], "dc-1"),
        "nodes[3].id: duplicate node id 'dc-1' (first at nodes[1])",
    ),
    "requirement not an object": (
        _set(["requirements", 1], ["dc-1"]),
        "requirements[1]: expected an object, got a list",
    ),
    "unknown requiring node": (
        _set(["requirements", 1, "node"], "dc-9"),
        "requirements[1].node: unknown node id 'dc-9'",
    ),
    "unknown provider": (
        _set(["requirements", 0, "providers"], ["dc-1", "dc-9"]),
        "requirements[0].providers[1]: unknown node id 'dc-9'",
    ),
    "provider not a string": (
        _set(["requirements", 0, "providers"], ["dc-1", 3]),
        "requirements[0].providers[1]: expected a string, got a number",
    ),
    "self-loop": (
        _set(["requirements", 1, "providers"], ["grid", "dc-1"]),
        "requirements[1].providers[1]: self-loop: node 'dc-1' provides its own need 'power'",
    ),
    "empty providers": (
        _set(["requirements", 1, "providers"], []),
        "requirements[1].providers: empty for node 'dc-1' need 'power'",
    ),
    "providers not a list": (
        _set(["requirements", 1, "providers"], "grid"),
        "requirements[1].providers: expected a list, got a string",
    ),
    "need missing": (_delete(["requirements", 1, "need"]), "requirements[1].need: missing"),
    "empty need": (_set(["requirements", 1, "need"], ""), "requirements[1].need: empty"),
    "duplicate need": (
        _set(["requirements", 2, "node"], "dc-1"),
        "requirements[2]: duplicate need 'power' of node 'dc-1' (first at requirements[1])",
    ),
    "duplicate provider": (
        _set(["requirements", 0, "providers"], ["dc-1", "dc-1"]),
        "requirements[0].providers[1]: provider 'dc-1' listed twice for node 'bank-a:core'",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_names_the_offending_path_and_id(case):
    change, expected = BAD[case]
    broken = _broken(change)
    with pytest.raises(GraphError) as raised:
        graph.from_dict(broken)
    assert expected in raised.value.errors[0]
    assert str(raised.value).startswith(raised.value.errors[0])
    # The fast path refuses it too, so the checked path is the one that reports.
    nodes, requirements = broken.get("nodes"), broken.get("requirements")
    if (
        broken.get("schema") == graph.SCHEMA
        and isinstance(nodes, list)
        and isinstance(requirements, list)
    ):
        assert graph._build_valid(nodes, requirements) is None


def test_fast_and_checked_paths_build_the_same_graph():
    data = document()
    data["nodes"].append(node("empty-parent", parent="", kind=None))
    data["requirements"].reverse()
    fast = graph._build_valid(data["nodes"], data["requirements"])
    assert fast is not None
    assert fast == graph._build_checked(data["nodes"], data["requirements"])
    assert fast.parents[fast.parent[fast.index["empty-parent"]]] == "empty-parent"


def test_top_level_must_be_an_object():
    with pytest.raises(GraphError, match="top level: expected an object, got a list"):
        graph.loads("[]")


def test_every_problem_is_collected():
    data = document()
    data["requirements"].append({"node": "dc-1", "need": "x", "providers": ["nowhere"]})
    data["requirements"].append({"node": "ghost", "need": "x", "providers": ["dc-1"]})
    with pytest.raises(GraphError) as raised:
        graph.from_dict(data)
    assert raised.value.errors == [
        "requirements[4].providers[0]: unknown node id 'nowhere'",
        "requirements[5].node: unknown node id 'ghost'",
    ]
    assert str(raised.value).endswith("(and 1 more errors)")


def test_invalid_json_and_encoding():
    with pytest.raises(GraphError, match=r"not valid JSON: .* line 1 column"):
        graph.loads('{"schema": ')
    with pytest.raises(GraphError, match="not UTF-8 text: invalid start byte at byte 12"):
        graph.loads(b'{"schema": "\xff"}')
    with pytest.raises(GraphError, match="not valid JSON: nested too deeply"):
        graph.loads("[" * 5000)


def test_a_byte_order_mark_is_allowed():
    """Editors on Windows often save UTF-8 with a BOM; the standard library's parser took it."""
    text = json.dumps(document(), ensure_ascii=False).encode("utf-8")
    assert graph.loads(b"\xef\xbb\xbf" + text).node_count == 4


def test_size_limit(tmp_path):
    text = json.dumps(document())
    with pytest.raises(GraphError, match="over the limit of 100 bytes"):
        graph.loads(text, max_bytes=100)
    path = tmp_path / "big.json"
    path.write_text(text)
    with pytest.raises(GraphError, match=f"file is {len(text):,} bytes, over the limit"):
        graph.load_path(path, max_bytes=len(text) - 1)
    assert graph.load_path(path, max_bytes=len(text)).node_count == 4
    assert graph.DEFAULT_MAX_BYTES == 64 * 1024 * 1024


def test_missing_file(tmp_path):
    with pytest.raises(GraphError, match="cannot read the file: No such file"):
        graph.load_path(tmp_path / "absent.json")


def test_cycles_are_legal():
    data = document()
    data["requirements"].append({"node": "dc-1", "need": "backup", "providers": ["bank-a:core"]})
    assert graph.from_dict(data).requirement_count == 5
