"""Structural-risk analysis of a supply-chain graph, in Python and numpy (pure logic, no Django
imports).

Semantics (DESIGN.md): a node fails when **any** of its requirements fails; a requirement fails
when **all** of its providers fail. Cycles are legal.

Single points of failure — the exact fixpoint
---------------------------------------------
For a node ``x``, the failure set ``F(x)`` is the least set containing ``x`` and closed under the
rule "a node fails if some requirement has all its providers in the set" (failure propagation to
its least fixpoint: nothing fails without a cause). ``x`` is a single point of failure of ``v``
when ``v ∈ F(x)``. Write ``K(v) = {x : v ∈ F(x)}``: the nodes whose failure alone stops ``v``.

``K`` is the **least** solution of::

    K(v) = {v} ∪ ⋃_{r ∈ req(v)} ⋂_{p ∈ prov(r)} K(p)

Why: union and intersection act element by element, so for each fixed ``x`` the membership
``x ∈ K(v)`` satisfies exactly the propagation rule of ``F(x)`` (``v`` is ``x``, or some
requirement of ``v`` has every provider with ``x`` in its set). The least fixpoint of the set
system is therefore, coordinate by coordinate, the least fixpoint of every propagation at once.
Least matters with cycles: for ``a`` needing only ``b`` and ``b`` needing only ``a`` the greatest
solution would claim that anything stops both; the least one says only ``a`` and ``b`` do.

Computation: the strongly connected components of the dependency graph (edge ``v → p`` for each
provider ``p`` of a requirement of ``v``) in reverse topological order, providers first (Tarjan
emits them so). A component of one node is evaluated once, its providers being final. A cyclic
component starts every member at ``{v}`` (below the least fixpoint) and re-evaluates members
from a worklist whenever a member they depend on grows; the operator is monotone, values only
grow, the lattice is finite, so chaotic iteration from below stops at the least fixpoint.
``K`` sets are Python frozensets: they are small (what stops a node alone is few nodes), and
intersections start from the smallest set and stop when empty. The benchmark
(bench/supplychain_analysis.py, docs/supplychain-analysis.md) records the measurements behind
these choices.

Other results
-------------
``tier`` of a node: its distance (in provider steps) from the nearest critical node; ``None``
when no critical node depends on it. Requirement-level lists (``sole_source``,
``hidden_convergence``, ``single_country``) cover **all** requirements of the graph and give the
tier of the requiring node, so a reader can keep those on a critical path (tier is not None).

Everything is documented in docs/supplychain-analysis.md; the output keys are in
:func:`analyse`.
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any, BinaryIO

import numpy as np
import orjson

from mamori.supplychain.graph import DISCLOSURES, SupplyGraph

RESULT_SCHEMA = "mamori.supplyanalysis/1"
FULL = DISCLOSURES.index("full")


# --- graph structure ---------------------------------------------------------------------------


def strongly_connected_components(adjacency: list[list[int]]) -> list[list[int]]:
    """Tarjan's algorithm without recursion. Components come out in reverse topological order
    of the condensation: every component after all components it has edges into."""
    n = len(adjacency)
    index = [-1] * n
    low = [0] * n
    on_stack = [False] * n
    stack: list[int] = []
    result: list[list[int]] = []
    counter = 0
    for root in range(n):
        if index[root] != -1:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        work = [(root, iter(adjacency[root]))]
        while work:
            v, children = work[-1]
            descended = False
            for w in children:
                if index[w] == -1:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = True
                    work.append((w, iter(adjacency[w])))
                    descended = True
                    break
                if on_stack[w] and index[w] < low[v]:
                    low[v] = index[w]
            if descended:
                continue
            work.pop()
            if work:
                u = work[-1][0]
                if low[v] < low[u]:
                    low[u] = low[v]
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack[w] = False
                    component.append(w)
                    if w == v:
                        break
                result.append(component)
    return result


def _common(sets: list, prov: list[int], a: int, b: int) -> frozenset[int]:
    """The intersection of the sets of providers ``prov[a:b]`` (two or more): ``&`` iterates
    over the smaller set, in C; with more providers, the smallest is taken first."""
    if b - a == 2:
        return sets[prov[a]] & sets[prov[a + 1]]
    members = sorted([sets[p] for p in prov[a:b]], key=len)
    return members[0].intersection(*members[1:])


def single_failure_sets(
    graph: SupplyGraph,
    components: list[list[int]],
    dependents: list[list[int]],
) -> list[frozenset[int]]:
    """``K(v)`` for every node (see the module docstring), components in the order of
    :func:`strongly_connected_components`."""
    req_start, prov_start, prov = graph.req_start, graph.prov_start, graph.prov
    sets: list[frozenset[int] | None] = [None] * graph.node_count

    def evaluate(v: int) -> frozenset[int]:
        acc = {v}
        for r in range(req_start[v], req_start[v + 1]):
            a, b = prov_start[r], prov_start[r + 1]
            if b - a == 1:
                acc |= sets[prov[a]]
            else:
                common = _common(sets, prov, a, b)
                if common:
                    acc |= common
        return frozenset(acc)

    for component in components:
        if len(component) == 1:
            v = component[0]
            sets[v] = evaluate(v)
            continue
        inside = set(component)
        for v in component:
            sets[v] = frozenset((v,))
        queue = deque(component)
        queued = set(component)
        while queue:
            v = queue.popleft()
            queued.discard(v)
            grown = evaluate(v)
            if len(grown) != len(sets[v]):
                sets[v] = grown
                for d in dependents[v]:
                    if d in inside and d not in queued:
                        queued.add(d)
                        queue.append(d)
    return sets  # type: ignore[return-value]


def tiers(graph: SupplyGraph, upstream: list[list[int]]) -> list[int | None]:
    """Distance of each node from the nearest critical node along provider edges."""
    distance: list[int | None] = [None] * graph.node_count
    frontier = graph.critical_nodes()
    for v in frontier:
        distance[v] = 0
    depth = 0
    while frontier:
        depth += 1
        following = []
        for v in frontier:
            for p in upstream[v]:
                if distance[p] is None:
                    distance[p] = depth
                    following.append(p)
        frontier = following
    return distance


def distance_to_opaque(graph: SupplyGraph, dependents: list[list[int]]) -> list[int | None]:
    """For each node, the fewest provider steps to a node whose disclosure is not full (0 for
    such a node itself): one breadth-first search backwards from all of them."""
    distance: list[int | None] = [None] * graph.node_count
    frontier = [v for v, d in enumerate(graph.disclosure) if d != FULL]
    for v in frontier:
        distance[v] = 0
    depth = 0
    while frontier:
        depth += 1
        following = []
        for v in frontier:
            for d in dependents[v]:
                if distance[d] is None:
                    distance[d] = depth
                    following.append(d)
        frontier = following
    return distance


CRITICAL_BATCH = 4096  # bits per mask: critical nodes whose closures are computed together
INSTITUTION_BATCH = 256  # institutions per batch (their node masks are held together)
NODE_CHUNK = 8192  # rows of masks unpacked at a time


def reached_by(
    components: list[list[int]], dependents: list[list[int]], sources: dict[int, int]
) -> list[int]:
    """For every node, a Python-int bitset of the source nodes whose upstream closure holds it
    (the node itself and everything it depends on, transitively): bit ``sources[c]`` for the
    source ``c``. Components come in the order of :func:`strongly_connected_components`
    (providers first) and are walked backwards, so every dependent is final before its
    providers; the members of a cycle all reach each other and share one mask."""
    mask = [0] * len(dependents)
    for component in reversed(components):
        bits = 0
        for v in component:
            bit = sources.get(v)
            if bit is not None:
                bits |= 1 << bit
            for d in dependents[v]:
                bits |= mask[d]
        for v in component:
            mask[v] = bits
    return mask


def _unpacked_chunks(mask: list[int], width: int):
    """The masks as rows of a 0/1 ``uint8`` matrix (node × bit), ``NODE_CHUNK`` rows at a time:
    ``(first node, rows)``."""
    size = (width + 7) // 8
    packed = np.frombuffer(b"".join(m.to_bytes(size, "little") for m in mask), dtype=np.uint8)
    packed = packed.reshape(len(mask), size)
    for start in range(0, len(mask), NODE_CHUNK):
        rows = packed[start : start + NODE_CHUNK]
        yield start, np.unpackbits(rows, axis=1, count=width, bitorder="little")


class Closures:
    """What the analysis needs from the upstream closures of the critical nodes: for each
    critical node the size of its closure and how many of those nodes are opaque
    (:attr:`upstream`, :attr:`opaque`); for each institution, a bool array over nodes of the
    union of its critical nodes' closures (:meth:`institution_masks`); and the sector's union.

    Closures overlap heavily and are large (tens of thousands of nodes), so they are never
    listed: :func:`reached_by` gives each node the set of critical nodes that reach it, in
    batches of at most :data:`CRITICAL_BATCH` critical nodes (whole institutions), and counting
    is done on those bits with numpy. Memory stays at about one bit per node and critical node of
    one batch (twice, packed and as Python ints, plus one unpacked chunk), however large the
    closures are. :meth:`institution_masks` fills the counts: the opacity reads them after."""

    def __init__(
        self,
        graph: SupplyGraph,
        components: list[list[int]],
        dependents: list[list[int]],
        institutions: dict[str, list[int]],
    ):
        self.graph = graph
        self.components = components
        self.dependents = dependents
        self.institutions = institutions
        self.upstream: dict[int, int] = {}
        self.opaque: dict[int, int] = {}
        self.sector = np.zeros(graph.node_count, dtype=bool)
        self._nonfull = np.asarray(graph.disclosure, dtype=np.int64) != FULL

    def _batches(self) -> list[list[str]]:
        batches: list[list[str]] = [[]]
        width = 0
        for name in sorted(self.institutions):
            size = len(self.institutions[name])
            batch = batches[-1]
            if batch and (width + size > CRITICAL_BATCH or len(batch) >= INSTITUTION_BATCH):
                batches.append([])
                batch, width = batches[-1], 0
            batch.append(name)
            width += size
        return [batch for batch in batches if batch]

    def institution_masks(self):
        """``(institution, node mask)`` for every institution in sorted order; fills
        :attr:`upstream`, :attr:`opaque` and :attr:`sector` on the way."""
        n = self.graph.node_count
        for batch in self._batches():
            sources: dict[int, int] = {}
            starts: list[int] = []
            for name in batch:
                starts.append(len(sources))
                for c in self.institutions[name]:
                    sources[c] = len(sources)
            width = len(sources)
            mask = reached_by(self.components, self.dependents, sources)
            totals = np.zeros(width, dtype=np.int64)
            opaque = np.zeros(width, dtype=np.int64)
            members = np.zeros((n, len(batch)), dtype=bool)
            for first, rows in _unpacked_chunks(mask, width):
                last = first + len(rows)
                totals += rows.sum(axis=0, dtype=np.int64)
                opaque += rows[self._nonfull[first:last]].sum(axis=0, dtype=np.int64)
                members[first:last] = np.maximum.reduceat(rows, starts, axis=1) > 0
            del mask
            for c, bit in sources.items():
                self.upstream[c] = int(totals[bit])
                self.opaque[c] = int(opaque[bit])
            self.sector |= members.any(axis=1)
            for j, name in enumerate(batch):
                yield name, members[:, j]


# --- the analysis ------------------------------------------------------------------------------


def analyse(graph: SupplyGraph) -> dict[str, Any]:
    """Analyse a validated graph; a JSON-serialisable dict with these keys:

    - ``schema``: ``"mamori.supplyanalysis/1"``; ``summary``: counts (nodes, requirements,
      provider edges, critical nodes, institutions, nodes in cycles, the largest strongly
      connected component);
    - ``spof``: critical node id → sorted ids of the other nodes whose failure alone stops it;
    - ``uncertified_spof``: critical node id → the uncertified ones among them;
    - ``sole_source``: ``[{node, need, provider, country, tier}]`` for every requirement with
      exactly one provider;
    - ``hidden_convergence``: ``[{node, need, providers, converges_on, tier}]`` for every
      requirement with two or more providers whose failure sets share nodes: each node of
      ``converges_on`` stops every alternative at once;
    - ``single_country``: ``[{node, need, providers, country, tier}]`` for every requirement with
      two or more providers all in one (known) country;
    - ``opacity``: critical node id → ``{share, upstream, opaque, first_opaque_tier}``: of the
      node and all nodes it depends on transitively (``upstream``), the share whose disclosure
      is not full, and the fewest provider steps from the node to such a node (None: none);
    - ``uncertified_on_critical_path``: sorted ids of uncertified nodes that some critical node
      depends on (through one provider edge or more);
    - ``concentration``: ``{"sector": ..., "organisations": {institution: ...}}``, each
      ``{"all_tiers": counts, "tier1": counts}`` where counts are ``{"edges": n, "entity":
      {hhi, largest}, "parent": ..., "country": ...}``;
    - ``reach``: provider entity → ``{institutions, share, critical_services}``.

    See docs/supplychain-analysis.md for the exact definitions.
    """
    n = graph.node_count
    upstream = graph.upstream_adjacency()
    dependents = graph.dependents()
    components = strongly_connected_components(upstream)
    failure_sets = single_failure_sets(graph, components, dependents)
    tier = tiers(graph, upstream)
    critical = graph.critical_nodes()
    ids = graph.ids

    spof: dict[str, list[str]] = {}
    uncertified_spof: dict[str, list[str]] = {}
    index = graph.index
    for c in critical:
        others = sorted(ids[x] for x in failure_sets[c] if x != c)
        spof[ids[c]] = others
        uncertified_spof[ids[c]] = [x for x in others if not graph.certified[index[x]]]

    sole_source, convergence, single_country = _requirement_findings(graph, failure_sets, tier)

    # Uncertified nodes some critical node depends on through at least one provider edge.
    reached = bytearray(n)
    frontier = [p for c in critical for p in upstream[c]]
    for p in frontier:
        reached[p] = 1
    while frontier:
        following = []
        for v in frontier:
            for p in upstream[v]:
                if not reached[p]:
                    reached[p] = 1
                    following.append(p)
        frontier = following
    uncertified = sorted(ids[v] for v in range(n) if reached[v] and not graph.certified[v])

    by_institution: dict[str, list[int]] = defaultdict(list)
    for c in critical:
        by_institution[graph.entities[graph.entity[c]]].append(c)
    institutions = sorted(by_institution)
    closures = Closures(graph, components, dependents, by_institution)
    concentration = _concentration(graph, by_institution, closures)  # counts the closures too
    opacity = _opacity(graph, critical, closures, dependents)
    reach = _reach(graph, critical, failure_sets, institutions)

    return {
        "schema": RESULT_SCHEMA,
        "summary": {
            "nodes": n,
            "requirements": graph.requirement_count,
            "provider_edges": graph.edge_count,
            "critical": len(critical),
            "institutions": len(institutions),
            "nodes_in_cycles": sum(len(c) for c in components if len(c) > 1),
            "largest_cycle": max((len(c) for c in components if len(c) > 1), default=0),
        },
        "spof": spof,
        "uncertified_spof": uncertified_spof,
        "sole_source": sole_source,
        "hidden_convergence": convergence,
        "single_country": single_country,
        "opacity": opacity,
        "uncertified_on_critical_path": uncertified,
        "concentration": concentration,
        "reach": reach,
    }


def _requirement_findings(
    graph: SupplyGraph, failure_sets: list[frozenset[int]], tier: list[int | None]
) -> tuple[list[dict], list[dict], list[dict]]:
    ids, countries, country = graph.ids, graph.countries, graph.country
    prov, prov_start, req_node, req_need = (
        graph.prov,
        graph.prov_start,
        graph.req_node,
        graph.req_need,
    )
    id_of = ids.__getitem__
    sole_source: list[dict] = []
    convergence: list[dict] = []
    single_country: list[dict] = []
    for r, v in enumerate(req_node):
        a, b = prov_start[r], prov_start[r + 1]
        if b - a == 1:
            p = prov[a]
            sole_source.append(
                {
                    "node": ids[v],
                    "need": req_need[r],
                    "provider": ids[p],
                    "country": countries[country[p]],
                    "tier": tier[v],
                }
            )
            continue
        common = _common(failure_sets, prov, a, b)
        providers = prov[a:b]
        provider_ids = None
        if common:
            provider_ids = list(map(id_of, providers))
            convergence.append(
                {
                    "node": ids[v],
                    "need": req_need[r],
                    "providers": provider_ids,
                    "converges_on": sorted(map(id_of, common)),
                    "tier": tier[v],
                }
            )
        first = country[providers[0]]
        if not countries[first]:
            continue
        for p in providers:
            if country[p] != first:
                break
        else:
            single_country.append(
                {
                    "node": ids[v],
                    "need": req_need[r],
                    "providers": provider_ids or list(map(id_of, providers)),
                    "country": countries[first],
                    "tier": tier[v],
                }
            )
    return sole_source, convergence, single_country


def _opacity(graph, critical, closures: Closures, dependents) -> dict[str, dict]:
    to_opaque = distance_to_opaque(graph, dependents)
    result = {}
    for c in critical:
        total = closures.upstream[c]
        opaque = closures.opaque[c]
        result[graph.ids[c]] = {
            "share": round(opaque / total, 4),
            "upstream": total,
            "opaque": opaque,
            "first_opaque_tier": to_opaque[c],
        }
    return result


def _concentration(graph, by_institution: dict[str, list[int]], closures: Closures) -> dict:
    """Concentration by provider entity, ultimate parent and country.

    Unit counted: a provider edge (one provider listed for one requirement). ``all_tiers``
    counts the edges of every requirement of every node in the upstream closure of the
    organisation's critical nodes (for the sector: of all critical nodes); ``tier1`` only those
    of the critical nodes' own requirements. Each edge counts 1 for the provider's entity, its
    ultimate parent and its country (an unknown country is the key ``""``).
    """
    prov = np.asarray(graph.prov, dtype=np.int64)
    prov_start = np.asarray(graph.prov_start, dtype=np.int64)
    edge_node = np.repeat(np.asarray(graph.req_node, dtype=np.int64), np.diff(prov_start))
    # A node's provider edges are one run: its requirements are consecutive.
    first_edge = prov_start[np.asarray(graph.req_start, dtype=np.int64)]
    keys = {
        "entity": (np.asarray(graph.entity, dtype=np.int64)[prov], graph.entities),
        "parent": (np.asarray(graph.parent, dtype=np.int64)[prov], graph.parents),
        "country": (np.asarray(graph.country, dtype=np.int64)[prov], graph.countries),
    }

    def counted(edges: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = {"edges": len(edges)}
        for name, (key_of_edge, labels) in keys.items():
            tally = np.bincount(key_of_edge[edges], minlength=len(labels))
            out[name] = _hhi(tally, labels, len(edges))
        return out

    def edges_of(nodes: list[int]) -> np.ndarray:
        runs = [np.arange(first_edge[v], first_edge[v + 1]) for v in sorted(nodes)]
        return np.concatenate(runs) if runs else np.zeros(0, dtype=np.int64)

    organisations = {}
    for institution, members in closures.institution_masks():
        organisations[institution] = {
            "all_tiers": counted(np.flatnonzero(members[edge_node])),
            "tier1": counted(edges_of(by_institution[institution])),
        }
    critical = [c for nodes in by_institution.values() for c in nodes]
    sector = {
        "all_tiers": counted(np.flatnonzero(closures.sector[edge_node])),
        "tier1": counted(edges_of(critical)),
    }
    return {"sector": sector, "organisations": organisations}


def _hhi(tally: np.ndarray, labels: list[str], total: int) -> dict[str, Any]:
    if total == 0:
        return {"hhi": 0.0, "largest": None}
    shares = tally / total
    top = int(np.argmax(tally))
    return {
        "hhi": round(float(np.sum((shares * 100.0) ** 2)), 2),
        "largest": {"key": labels[top], "share": round(float(shares[top]), 4)},
    }


def _reach(graph, critical, failure_sets, institutions) -> dict[str, dict]:
    """For each entity: the institutions (other than itself) with a critical node that the
    failure of one of the entity's nodes stops alone, as a share of all institutions."""
    reached: dict[int, set[int]] = defaultdict(set)
    services: dict[int, int] = defaultdict(int)
    entity = graph.entity
    for c in critical:
        owner = entity[c]
        hit = {entity[x] for x in failure_sets[c] if x != c} - {owner}
        for e in hit:
            reached[e].add(owner)
            services[e] += 1
    total = len(institutions)
    result = {}
    for e in sorted(reached, key=lambda e: (-len(reached[e]), graph.entities[e])):
        result[graph.entities[e]] = {
            "institutions": len(reached[e]),
            "share": round(len(reached[e]) / total, 4) if total else 0.0,
            "critical_services": services[e],
        }
    return result


# --- JSON output -------------------------------------------------------------------------------

JSON_CHUNK = 10_000


def write_json(result: dict[str, Any], out: BinaryIO, *, indent: bool = False) -> None:
    """Write :func:`analyse`'s result as UTF-8 JSON to a binary stream.

    Compact by default, written key by key and long lists in slices of :data:`JSON_CHUNK`
    items, so the text of a dense graph's result (hundreds of thousands of findings, 100 MB
    and more) is never held in memory at once; orjson encodes about twenty times faster than
    the standard library's indenting encoder. ``indent`` indents by two spaces, for reading.
    The document is the same either way; only whitespace differs."""
    if indent:
        out.write(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        out.write(b"\n")
        return
    out.write(b"{")
    for position, (key, value) in enumerate(result.items()):
        out.write(b"," if position else b"")
        out.write(orjson.dumps(key))
        out.write(b":")
        if isinstance(value, list) and len(value) > JSON_CHUNK:
            out.write(b"[")
            for start in range(0, len(value), JSON_CHUNK):
                out.write(b"," if start else b"")
                out.write(orjson.dumps(value[start : start + JSON_CHUNK])[1:-1])
            out.write(b"]")
        else:
            out.write(orjson.dumps(value))
    out.write(b"}\n")


# --- text report -------------------------------------------------------------------------------

_TEXT = {
    "ja": {
        "title": "サプライチェーン構造リスク分析",
        "summary": "ノード {nodes} 件、依存 {requirements} 件、供給関係 {provider_edges} 件、"
        "重要サービス {critical} 件、組織 {institutions} 件、循環内ノード {nodes_in_cycles} 件",
        "service": "重要サービス: {name}",
        "spof": "  単一障害点 ({count} 件): {items}",
        "spof_none": "  単一障害点: なし",
        "uncertified_spof": "  うち未認定: {items}",
        "opacity": "  不透明（未開示）: 上流 {upstream} 件中 {opaque} 件 ({share:.1%})、"
        "開示が途切れる階層: {tier}",
        "opacity_tier_none": "なし",
        "sole_source": "単一供給源（重要サービスの上流、{count} 件）",
        "convergence": "隠れた集中（代替調達先が同じ上流に依存、{count} 件）",
        "converges_on": "  {node} / {need}: 代替 {providers} → 共通の上流 {targets}",
        "single_country": "単一国依存（代替調達先がすべて同一国、{count} 件）",
        "single_country_item": "  {node} / {need}: {providers}（{country}）",
        "sole_item": "  {node} / {need}: {provider}",
        "uncertified": "重要経路上の未認定ノード: {count} 件",
        "concentration": "集中リスク（HHI 0–10,000、最大シェア）",
        "concentration_line": "  {scope} {key}: HHI {hhi:.0f}、最大 {largest} ({share:.1%})",
        "sector": "業界全体",
        "by": {"entity": "取引先別", "parent": "最終親会社別", "country": "国別"},
        "reach": "影響範囲（単独で重要サービスを停止し得る取引先）",
        "reach_item": "  {entity}: 組織 {institutions} 件 ({share:.1%})、重要サービス {services} 件",
        "more": "  ほか {count} 件",
    },
    "en": {
        "title": "Supply-chain structural-risk analysis",
        "summary": "{nodes} nodes, {requirements} needs, {provider_edges} provider edges, "
        "{critical} critical services, {institutions} institutions, {nodes_in_cycles} nodes in cycles",
        "service": "Critical service: {name}",
        "spof": "  Single points of failure ({count}): {items}",
        "spof_none": "  Single points of failure: none",
        "uncertified_spof": "  of which uncertified: {items}",
        "opacity": "  Opaque (undisclosed): {opaque} of {upstream} upstream nodes ({share:.1%}), "
        "disclosure stops at tier {tier}",
        "opacity_tier_none": "never",
        "sole_source": "Sole-source needs (upstream of critical services, {count})",
        "convergence": "Hidden convergence (alternatives depending on one upstream node, {count})",
        "converges_on": "  {node} / {need}: alternatives {providers} → common upstream {targets}",
        "single_country": "Single-country needs (all alternatives in one country, {count})",
        "single_country_item": "  {node} / {need}: {providers} ({country})",
        "sole_item": "  {node} / {need}: {provider}",
        "uncertified": "Uncertified nodes on critical paths: {count}",
        "concentration": "Concentration risk (HHI 0–10,000, largest share)",
        "concentration_line": "  {scope} {key}: HHI {hhi:.0f}, largest {largest} ({share:.1%})",
        "sector": "Sector",
        "by": {"entity": "by provider", "parent": "by ultimate parent", "country": "by country"},
        "reach": "Reach (providers that can stop critical services alone)",
        "reach_item": "  {entity}: {institutions} institutions ({share:.1%}), "
        "{services} critical services",
        "more": "  and {count} more",
    },
}


def render_text(result: dict[str, Any], language: str = "ja", *, limit: int = 20) -> str:
    """A plain-text report of :func:`analyse`'s result, Japanese by default (``"en"`` for
    English). Lists longer than ``limit`` are cut with a count of the rest."""
    t = _TEXT.get(language, _TEXT["ja"])
    lines = [t["title"], t["summary"].format(**result["summary"]), ""]

    def listed(items: list[str]) -> str:
        shown = ", ".join(items[:limit])
        return shown if len(items) <= limit else f"{shown}, … (+{len(items) - limit})"

    for service, others in result["spof"].items():
        lines.append(t["service"].format(name=service))
        if others:
            lines.append(t["spof"].format(count=len(others), items=listed(others)))
        else:
            lines.append(t["spof_none"])
        if result["uncertified_spof"].get(service):
            lines.append(
                t["uncertified_spof"].format(items=listed(result["uncertified_spof"][service]))
            )
        op = result["opacity"][service]
        tier = op["first_opaque_tier"]
        lines.append(
            t["opacity"].format(
                upstream=op["upstream"],
                opaque=op["opaque"],
                share=op["share"],
                tier=t["opacity_tier_none"] if tier is None else tier,
            )
        )
    lines.append("")

    def section(title: str, items: list[dict], line) -> None:
        on_path = [item for item in items if item.get("tier") is not None]
        lines.append(t[title].format(count=len(on_path)))
        for item in on_path[:limit]:
            lines.append(line(item))
        if len(on_path) > limit:
            lines.append(t["more"].format(count=len(on_path) - limit))
        lines.append("")

    section(
        "sole_source",
        result["sole_source"],
        lambda i: t["sole_item"].format(node=i["node"], need=i["need"], provider=i["provider"]),
    )
    section(
        "convergence",
        result["hidden_convergence"],
        lambda i: t["converges_on"].format(
            node=i["node"],
            need=i["need"],
            providers=", ".join(i["providers"]),
            targets=listed(i["converges_on"]),
        ),
    )
    section(
        "single_country",
        result["single_country"],
        lambda i: t["single_country_item"].format(
            node=i["node"],
            need=i["need"],
            providers=", ".join(i["providers"]),
            country=i["country"],
        ),
    )
    lines.append(t["uncertified"].format(count=len(result["uncertified_on_critical_path"])))
    if result["uncertified_on_critical_path"]:
        lines.append("  " + listed(result["uncertified_on_critical_path"]))
    lines.append("")

    lines.append(t["concentration"])
    scopes = [(t["sector"], result["concentration"]["sector"])]
    scopes += list(result["concentration"]["organisations"].items())[:limit]
    for scope, figures in scopes:
        for key, label in t["by"].items():
            found = figures["all_tiers"][key]
            if found["largest"] is None:
                continue
            lines.append(
                t["concentration_line"].format(
                    scope=scope,
                    key=label,
                    hhi=found["hhi"],
                    largest=found["largest"]["key"] or "?",
                    share=found["largest"]["share"],
                )
            )
    lines.append("")
    lines.append(t["reach"])
    reach = list(result["reach"].items())
    for entity, figures in reach[:limit]:
        lines.append(
            t["reach_item"].format(
                entity=entity,
                institutions=figures["institutions"],
                share=figures["share"],
                services=figures["critical_services"],
            )
        )
    if len(reach) > limit:
        lines.append(t["more"].format(count=len(reach) - limit))
    return "\n".join(lines).rstrip() + "\n"
