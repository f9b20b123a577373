"""The supply-chain graph exchange format ``mamori.supplygraph/1``: load, validate, dump.

Pure logic, no Django imports: the CLI, the web app's import/export and the benchmark share it.

The format (fixed in DESIGN.md)::

    {"schema": "mamori.supplygraph/1",
     "nodes": [{"id": "bank-a:core", "entity": "bank-a", "name": "Core banking",
                "country": "JP", "critical": true, "certified": true, "disclosure": "full"}],
     "requirements": [{"node": "bank-a:core", "need": "hosting",
                       "providers": ["dc-1", "cloud-x"]}]}

A node fails when any of its requirements fails; a requirement fails when all of its providers
fail. ``disclosure`` is ``full``, ``partial`` or ``none``.

Every node carries the seven fields above (``name`` and ``country`` may be empty strings: an
unknown country is ``""``). Optional node fields the analysis uses when present:

- ``parent``: the ultimate parent entity (defaults to ``entity``), for concentration by group;
- ``kind``: what the node is, e.g. ``"service"``, ``"ict"``, ``"part"`` (free text);
- ``name_en``: the English name when ``name`` is Japanese.

Other keys are ignored (and not written back by :func:`dump`). Cycles are legal: real chains
have them, and the analysis handles them.

Bad input raises :class:`GraphError`, whose ``errors`` list names each offending path and id
(``requirements[4].providers[1]: unknown node id 'dc-9'``); nothing is half-loaded.
"""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

SCHEMA = "mamori.supplygraph/1"
DISCLOSURES = ("full", "partial", "none")
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
MAX_REPORTED_ERRORS = 50

_NODE_FIELDS = {
    "id": str,
    "entity": str,
    "name": str,
    "country": str,
    "critical": bool,
    "certified": bool,
    "disclosure": str,
}
_OPTIONAL_NODE_FIELDS = ("parent", "kind", "name_en")


class GraphError(ValueError):
    """The input is not a valid ``mamori.supplygraph/1`` document.

    ``errors`` lists every problem found (up to :data:`MAX_REPORTED_ERRORS`), each a line
    naming the JSON path and the offending id; ``str()`` is the first one, with a count of the
    others.
    """

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        first = self.errors[0] if self.errors else "invalid supply-chain graph"
        more = len(self.errors) - 1
        super().__init__(first if more <= 0 else f"{first} (and {more} more errors)")


@dataclass
class SupplyGraph:
    """A validated graph with integer node ids and adjacency in compressed arrays.

    Node ``i`` is ``ids[i]``; its requirements are ``req_start[i]:req_start[i + 1]`` (indices
    into ``req_need`` and ``prov_start``), requirement ``r`` belongs to node ``req_node[r]`` and
    its providers are ``prov[prov_start[r]:prov_start[r + 1]]`` (node indices). Requirements keep
    their input order within a node. Entities, parents and countries are interned: ``entity[i]``
    indexes ``entities``, and so on. ``disclosure[i]`` indexes :data:`DISCLOSURES`.
    """

    ids: list[str]
    index: dict[str, int]
    names: list[str]
    entity: list[int]
    parent: list[int]
    country: list[int]
    critical: list[bool]
    certified: list[bool]
    disclosure: list[int]
    entities: list[str]
    parents: list[str]
    countries: list[str]
    req_start: list[int]
    req_node: list[int]
    req_need: list[str]
    prov_start: list[int]
    prov: list[int]
    optional: dict[str, dict[int, str]] = field(default_factory=dict)

    @property
    def node_count(self) -> int:
        return len(self.ids)

    @property
    def requirement_count(self) -> int:
        return len(self.req_node)

    @property
    def edge_count(self) -> int:
        return len(self.prov)

    def requirements_of(self, node: int) -> range:
        return range(self.req_start[node], self.req_start[node + 1])

    def providers_of(self, requirement: int) -> list[int]:
        return self.prov[self.prov_start[requirement] : self.prov_start[requirement + 1]]

    def critical_nodes(self) -> list[int]:
        return [i for i, flag in enumerate(self.critical) if flag]

    def dependents(self) -> list[list[int]]:
        """For each node, the distinct nodes that have it as a provider (reverse adjacency)."""
        result: list[list[int]] = [[] for _ in self.ids]
        prov, prov_start, req_node = self.prov, self.prov_start, self.req_node
        for r, node in enumerate(req_node):
            for p in prov[prov_start[r] : prov_start[r + 1]]:
                result[p].append(node)
        return [sorted(set(items)) if len(items) > 1 else items for items in result]

    def upstream_adjacency(self) -> list[list[int]]:
        """For each node, the distinct providers of all its requirements."""
        result: list[list[int]] = []
        prov, prov_start, req_start = self.prov, self.prov_start, self.req_start
        for v in range(len(self.ids)):
            a, b = prov_start[req_start[v]], prov_start[req_start[v + 1]]
            items = prov[a:b]
            result.append(sorted(set(items)) if len(items) > 1 else items)
        return result


def load_path(path: str | os.PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES) -> SupplyGraph:
    """Read and validate a graph file; :class:`GraphError` for anything wrong with it."""
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise GraphError([f"cannot read the file: {exc.strerror or exc}"]) from None
    if size > max_bytes:
        raise GraphError([_too_big(size, max_bytes)])
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise GraphError([f"cannot read the file: {exc.strerror or exc}"]) from None
    return loads(data, max_bytes=max_bytes)


def loads(data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> SupplyGraph:
    """Parse and validate JSON text or bytes (UTF-8; a leading byte-order mark is allowed)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise GraphError([_too_big(len(raw), max_bytes)])
    # orjson parses a large graph several times faster than the standard library and builds
    # smaller objects (issue 9, section 8); its errors are translated to our messages below.
    text = memoryview(raw)[3:] if raw[:3] == codecs.BOM_UTF8 else raw
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise GraphError([_json_error(bytes(text), exc)]) from None
    return from_dict(document)


def _json_error(raw: bytes, exc: orjson.JSONDecodeError) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"not UTF-8 text: {bad.reason} at byte {bad.start}"
    if "depth limit" in exc.msg or "recursion" in exc.msg.lower():
        return "not valid JSON: nested too deeply"
    return f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"


def _too_big(size: int, limit: int) -> str:
    return f"file is {size:,} bytes, over the limit of {limit:,} bytes"


def from_dict(document: Any) -> SupplyGraph:
    """Validate a decoded document and build the graph; every problem is collected.

    A valid document takes the fast path (:func:`_build_valid`: the checks done with as few
    Python operations per item as possible, no messages prepared); the first thing it finds
    wrong sends the whole document through :func:`_build_checked`, which collects every
    problem with its path. Both accept exactly the same documents."""
    if not isinstance(document, dict):
        raise GraphError([f"top level: expected an object, got {_type(document)}"])
    schema = document.get("schema")
    if schema != SCHEMA:
        if schema is None:
            raise GraphError([f"schema: missing; expected {SCHEMA!r}"])
        raise GraphError([f"schema: unsupported version {schema!r}; expected {SCHEMA!r}"])
    nodes = document.get("nodes")
    requirements = document.get("requirements")
    if "nodes" not in document:
        raise GraphError(["nodes: missing"])
    if "requirements" not in document:
        raise GraphError(["requirements: missing"])
    if not isinstance(nodes, list):
        raise GraphError([f"nodes: expected a list, got {_type(nodes)}"])
    if not isinstance(requirements, list):
        raise GraphError([f"requirements: expected a list, got {_type(requirements)}"])
    built = _build_valid(nodes, requirements)
    if built is not None:
        return built
    return _build_checked(nodes, requirements)


class _Invalid(Exception):
    """Raised inside the fast path: something is wrong, let the checked path say what."""


def _build_valid(nodes: list, requirements: list) -> SupplyGraph | None:
    """The graph if the document is valid, else None (nothing is reported here).

    Every check of :func:`_build_checked` is here in a cheaper form: a lookup in the id index
    stands for "is a string and a known id" (the index holds only strings, and anything
    unhashable raises), and the checks of a provider list are done on the resolved list."""
    try:
        return _build_valid_or_raise(nodes, requirements)
    except (_Invalid, KeyError, TypeError):
        return None


def _build_valid_or_raise(nodes: list, requirements: list) -> SupplyGraph:
    ids: list[str] = []
    index: dict[str, int] = {}
    names: list[str] = []
    entity: list[int] = []
    parent: list[int] = []
    country: list[int] = []
    critical: list[bool] = []
    certified: list[bool] = []
    disclosure: list[int] = []
    entities: dict[str, int] = {}
    parents: dict[str, int] = {}
    countries: dict[str, int] = {}
    optional: dict[str, dict[int, str]] = {name: {} for name in _OPTIONAL_NODE_FIELDS}
    disclosure_index = {name: i for i, name in enumerate(DISCLOSURES)}
    optional_items = [(key, optional[key]) for key in _OPTIONAL_NODE_FIELDS]

    for node in nodes:
        if type(node) is not dict:
            raise _Invalid
        node_id = node["id"]
        entity_name = node["entity"]
        name = node["name"]
        country_name = node["country"]
        is_critical = node["critical"]
        is_certified = node["certified"]
        if not (
            type(node_id) is str
            and type(entity_name) is str
            and type(name) is str
            and type(country_name) is str
            and type(is_critical) is bool
            and type(is_certified) is bool
        ):
            raise _Invalid
        level = node["disclosure"]
        if type(level) is not str:
            raise _Invalid
        level = disclosure_index[level]
        if not node_id or node_id.isspace() or not entity_name or entity_name.isspace():
            raise _Invalid
        if node_id in index:
            raise _Invalid
        i = len(ids)
        parent_name = entity_name
        for key, values in optional_items:
            value = node.get(key)
            if value is not None:
                if not isinstance(value, str):
                    raise _Invalid
                if value:
                    values[i] = value
                    if key == "parent":
                        parent_name = value
        index[node_id] = i
        ids.append(node_id)
        names.append(name)
        entity.append(entities.setdefault(entity_name, len(entities)))
        parent.append(parents.setdefault(parent_name, len(parents)))
        country.append(countries.setdefault(country_name, len(countries)))
        critical.append(is_critical)
        certified.append(is_certified)
        disclosure.append(level)

    lookup = index.__getitem__
    count = len(ids)
    # Requirements grouped by node (need → providers; a dict keeps the input order).
    by_node: list[dict[str, list[int]] | None] = [None] * count
    for requirement in requirements:
        if type(requirement) is not dict:
            raise _Invalid
        node_ref = requirement["node"]
        need = requirement["need"]
        providers = requirement["providers"]
        if type(node_ref) is not str or type(need) is not str or type(providers) is not list:
            raise _Invalid
        node = index[node_ref]
        if not need or need.isspace() or not providers:
            raise _Invalid
        resolved = list(map(lookup, providers))
        if len(resolved) > 1 and len(set(resolved)) != len(resolved):
            raise _Invalid  # a provider listed twice
        if node in resolved:
            raise _Invalid  # self-loop
        needs = by_node[node]
        if needs is None:
            by_node[node] = {need: resolved}
        elif need in needs:
            raise _Invalid  # the same need twice for one node
        else:
            needs[need] = resolved

    req_start = [0] * (count + 1)
    req_node: list[int] = []
    req_need: list[str] = []
    prov_start = [0]
    prov: list[int] = []
    for node in range(count):
        needs = by_node[node]
        if needs is not None:
            req_node.extend([node] * len(needs))
            req_need.extend(needs)
            for resolved in needs.values():
                prov.extend(resolved)
                prov_start.append(len(prov))
        req_start[node + 1] = len(req_node)
    return SupplyGraph(
        ids=ids,
        index=index,
        names=names,
        entity=entity,
        parent=parent,
        country=country,
        critical=critical,
        certified=certified,
        disclosure=disclosure,
        entities=list(entities),
        parents=list(parents),
        countries=list(countries),
        req_start=req_start,
        req_node=req_node,
        req_need=req_need,
        prov_start=prov_start,
        prov=prov,
        optional={key: values for key, values in optional.items() if values},
    )


def _build_checked(nodes: list, requirements: list) -> SupplyGraph:
    """Validate item by item, collecting every problem (up to :data:`MAX_REPORTED_ERRORS`)."""
    errors: list[str] = []

    def fail(message: str) -> None:
        errors.append(message)
        if len(errors) >= MAX_REPORTED_ERRORS:
            raise GraphError(errors)

    ids: list[str] = []
    index: dict[str, int] = {}
    names: list[str] = []
    entity: list[int] = []
    parent: list[int] = []
    country: list[int] = []
    critical: list[bool] = []
    certified: list[bool] = []
    disclosure: list[int] = []
    entities: dict[str, int] = {}
    parents: dict[str, int] = {}
    countries: dict[str, int] = {}
    optional: dict[str, dict[int, str]] = {name: {} for name in _OPTIONAL_NODE_FIELDS}
    disclosure_index = {name: i for i, name in enumerate(DISCLOSURES)}

    for position, node in enumerate(nodes):
        where = f"nodes[{position}]"
        if not isinstance(node, dict):
            fail(f"{where}: expected an object, got {_type(node)}")
            continue
        node_id = node.get("id")
        label = f"{where} ({node_id!r})" if isinstance(node_id, str) else where
        bad = False
        for key, kind in _NODE_FIELDS.items():
            if key not in node:
                fail(f"{label}.{key}: missing")
                bad = True
            elif type(node[key]) is not kind:
                fail(f"{label}.{key}: expected {_kind_name(kind)}, got {_type(node[key])}")
                bad = True
        for key in _OPTIONAL_NODE_FIELDS:
            if key in node and node[key] is not None and not isinstance(node[key], str):
                fail(f"{label}.{key}: expected a string, got {_type(node[key])}")
                bad = True
        if bad:
            continue
        if not node_id.strip():
            fail(f"{where}.id: empty")
            continue
        if not node["entity"].strip():
            fail(f"{label}.entity: empty")
            continue
        if node["disclosure"] not in disclosure_index:
            fail(
                f"{label}.disclosure: {node['disclosure']!r} is not one of "
                + ", ".join(DISCLOSURES)
            )
            continue
        if node_id in index:
            fail(f"{where}.id: duplicate node id {node_id!r} (first at nodes[{index[node_id]}])")
            continue
        i = len(ids)
        index[node_id] = i
        ids.append(node_id)
        names.append(node["name"])
        entity.append(entities.setdefault(node["entity"], len(entities)))
        parent_name = node.get("parent") or node["entity"]
        parent.append(parents.setdefault(parent_name, len(parents)))
        country.append(countries.setdefault(node["country"], len(countries)))
        critical.append(node["critical"])
        certified.append(node["certified"])
        disclosure.append(disclosure_index[node["disclosure"]])
        for key in _OPTIONAL_NODE_FIELDS:
            if node.get(key):
                optional[key][i] = node[key]
    if len(ids) != len(nodes):
        # Positions in the error messages refer to the input; stop before requirements refer to
        # nodes that were rejected.
        raise GraphError(errors)

    by_node: list[list[tuple[str, list[int]]]] = [[] for _ in ids]
    seen_pairs: dict[tuple[int, str], int] = {}
    for position, requirement in enumerate(requirements):
        where = f"requirements[{position}]"
        if not isinstance(requirement, dict):
            fail(f"{where}: expected an object, got {_type(requirement)}")
            continue
        node_id = requirement.get("node")
        need = requirement.get("need")
        providers = requirement.get("providers")
        bad = False
        for key, value, kind in (
            ("node", node_id, str),
            ("need", need, str),
            ("providers", providers, list),
        ):
            if key not in requirement:
                fail(f"{where}.{key}: missing")
                bad = True
            elif type(value) is not kind:
                fail(f"{where}.{key}: expected {_kind_name(kind)}, got {_type(value)}")
                bad = True
        if bad:
            continue
        if node_id not in index:
            fail(f"{where}.node: unknown node id {node_id!r}")
            continue
        if not need.strip():
            fail(f"{where}.need: empty (node {node_id!r})")
            continue
        if not providers:
            fail(f"{where}.providers: empty for node {node_id!r} need {need!r}")
            continue
        node = index[node_id]
        key = (node, need)
        if key in seen_pairs:
            fail(
                f"{where}: duplicate need {need!r} of node {node_id!r} "
                f"(first at requirements[{seen_pairs[key]}])"
            )
            continue
        seen_pairs[key] = position
        resolved: list[int] = []
        seen_providers: set[int] = set()
        for k, provider_id in enumerate(providers):
            at = f"{where}.providers[{k}]"
            if not isinstance(provider_id, str):
                fail(f"{at}: expected a string, got {_type(provider_id)}")
                bad = True
                continue
            provider = index.get(provider_id)
            if provider is None:
                fail(f"{at}: unknown node id {provider_id!r}")
                bad = True
            elif provider == node:
                fail(f"{at}: self-loop: node {node_id!r} provides its own need {need!r}")
                bad = True
            elif provider in seen_providers:
                fail(f"{at}: provider {provider_id!r} listed twice for node {node_id!r}")
                bad = True
            else:
                seen_providers.add(provider)
                resolved.append(provider)
        if not bad:
            by_node[node].append((need, resolved))
    if errors:
        raise GraphError(errors)

    req_start = [0]
    req_node: list[int] = []
    req_need: list[str] = []
    prov_start = [0]
    prov: list[int] = []
    for node, items in enumerate(by_node):
        for need, resolved in items:
            req_node.append(node)
            req_need.append(need)
            prov.extend(resolved)
            prov_start.append(len(prov))
        req_start.append(len(req_node))
    return SupplyGraph(
        ids=ids,
        index=index,
        names=names,
        entity=entity,
        parent=parent,
        country=country,
        critical=critical,
        certified=certified,
        disclosure=disclosure,
        entities=list(entities),
        parents=list(parents),
        countries=list(countries),
        req_start=req_start,
        req_node=req_node,
        req_need=req_need,
        prov_start=prov_start,
        prov=prov,
        optional={key: values for key, values in optional.items() if values},
    )


def to_dict(graph: SupplyGraph) -> dict[str, Any]:
    """The exchange document for a graph (``from_dict(to_dict(g))`` gives ``g`` back)."""
    return {
        "schema": SCHEMA,
        "nodes": list(_node_dicts(graph)),
        "requirements": [
            {
                "node": graph.ids[graph.req_node[r]],
                "need": graph.req_need[r],
                "providers": [graph.ids[p] for p in graph.providers_of(r)],
            }
            for r in range(graph.requirement_count)
        ],
    }


def _node_dicts(graph: SupplyGraph) -> Iterator[dict[str, Any]]:
    for i, node_id in enumerate(graph.ids):
        item: dict[str, Any] = {
            "id": node_id,
            "entity": graph.entities[graph.entity[i]],
            "name": graph.names[i],
            "country": graph.countries[graph.country[i]],
            "critical": graph.critical[i],
            "certified": graph.certified[i],
            "disclosure": DISCLOSURES[graph.disclosure[i]],
        }
        parent = graph.parents[graph.parent[i]]
        if parent != item["entity"]:
            item["parent"] = parent
        for key in ("kind", "name_en"):
            value = graph.optional.get(key, {}).get(i)
            if value:
                item[key] = value
        yield item


def dumps(graph: SupplyGraph, *, indent: int | None = None) -> str:
    return json.dumps(to_dict(graph), ensure_ascii=False, indent=indent)


def dump_path(graph: SupplyGraph, path: str | os.PathLike, *, indent: int | None = None) -> None:
    """Write the document atomically (a temporary file renamed into place)."""
    target = os.fspath(path)
    temporary = f"{target}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(dumps(graph, indent=indent))
    os.replace(temporary, target)


def build(nodes: Iterable[dict[str, Any]], requirements: Iterable[dict[str, Any]]) -> SupplyGraph:
    """Validate node and requirement dicts given as Python objects (a convenience for callers
    that assemble a graph from their own records)."""
    return from_dict({"schema": SCHEMA, "nodes": list(nodes), "requirements": list(requirements)})


def _kind_name(kind: type) -> str:
    return {str: "a string", bool: "true or false", list: "a list"}[kind]


def _type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)
