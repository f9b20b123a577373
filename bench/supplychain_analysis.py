"""Supply-chain analysis benchmark: a synthetic sector graph of 100,000 nodes and exactly
1,000,000 provider edges with 5,000 critical services.

Steps:

1. generate the graph (seeded) and write it as ``mamori.supplygraph/1`` JSON to
   ``var/bench-supplychain/graph.json``;
2. in a fresh child process (so that its peak RSS is the analysis's own): load and validate the
   file, run :func:`mamori.supplychain.analysis.analyse`, serialise the result to JSON; wall
   times per step and the child's peak RSS (targets: analysis < 30 s, peak RSS < 4 GB);
3. a straightforward networkx implementation of the single points of failure — for a critical
   service, for every node upstream of it: remove that node and propagate failure to the
   fixpoint, see whether the service fails — on a sample of critical services (the full 5,000
   would take days), checked against our result on the sample and extrapolated to all 5,000
   linearly; the ratio is the extrapolated networkx time over our whole analysis;
4. the graph-library measurement behind the choice in docs/supplychain-analysis.md: the
   strongly connected components in reverse topological order (the only graph algorithm the
   analysis needs besides breadth-first searches), graph construction included, with plain
   Python (ours), networkx, rustworkx and python-igraph (each skipped when not installed).

The shape (see ``generate``): 100 institutions with 50 critical services each (tier 0), then
supplier tiers of 10,000 / 20,000 / 25,000 / 25,000 / 15,000 nodes; each node of tiers 0–4 has
3–6 needs, 22 % of them sole-source, the others 2–6 alternative providers, chosen in the next
tier with a Zipf-like popularity (a few providers carry most of the fan-in, as clouds and big
vendors do, which is what makes alternatives converge); 1 % of the needs of tiers 2–4 also list
one of the node's own customers as an alternative (mutual supply: cycles); 10 % of nodes disclose nothing (no needs listed) and 10 % only
half of their needs; suppliers belong to entities (Zipf sizes), 30 % of entities to one of 200
groups (ultimate parents), and entities have a country (Japan-heavy mix). The provider count is
then trimmed or topped up at random to exactly 1,000,000.

Run: ``.venv/bin/python bench/supplychain_analysis.py`` (``--help`` for options). Results also
go to ``bench/results/supplychain_analysis.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from collections import defaultdict, deque
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from mamori.supplychain import analysis, graph  # noqa: E402

SEED = 20261126
RESULTS_FILE = ROOT / "bench" / "results" / "supplychain_analysis.json"
WORK_DIR = ROOT / "var" / "bench-supplychain"
TARGET_SECONDS = 30.0
TARGET_RSS_BYTES = 4 * 1024**3

INSTITUTIONS = 100
SERVICES_PER_INSTITUTION = 50
TIER_SIZES = [INSTITUTIONS * SERVICES_PER_INSTITUTION, 10_000, 20_000, 25_000, 25_000, 15_000]
EDGES = 1_000_000
SOLE_SOURCE = 0.22
BACK_EDGE = 0.01
COUNTRIES = {
    "JP": 55,
    "US": 15,
    "CN": 8,
    "TW": 5,
    "KR": 4,
    "DE": 3,
    "SG": 3,
    "IE": 2,
    "NL": 2,
    "VN": 1,
    "TH": 1,
    "MY": 1,
}
NEEDS = [
    ["core-system", "hosting", "network", "payments-switch", "identity", "operations"],
    ["hosting", "software", "network", "support", "power", "facilities"],
    ["compute", "storage", "power", "cooling", "connectivity", "staff"],
    ["chips", "boards", "power", "logistics", "materials", "firmware"],
    ["wafers", "chemicals", "power", "logistics", "tooling", "gases"],
]


def _weights(size: int, rng: random.Random) -> list[float]:
    """Zipf-like popularity over a shuffled tier: rank r gets 1 / (r + 10) ** 0.9."""
    order = list(range(size))
    rng.shuffle(order)
    weights = [0.0] * size
    for rank, j in enumerate(order):
        weights[j] = 1.0 / (rank + 10) ** 0.9
    return weights


def generate(seed: int = SEED) -> dict:
    rng = random.Random(seed)
    country_names = list(COUNTRIES)
    country_weights = list(COUNTRIES.values())
    tiers: list[list[int]] = []
    nodes: list[dict] = []
    tier_of: list[int] = []
    for t, size in enumerate(TIER_SIZES):
        start = len(nodes)
        tiers.append(list(range(start, start + size)))
        if t == 0:
            for j in range(size):
                bank = j // SERVICES_PER_INSTITUTION
                nodes.append(
                    {
                        "id": f"bank-{bank:03d}:svc-{j % SERVICES_PER_INSTITUTION:02d}",
                        "entity": f"bank-{bank:03d}",
                        "name": f"重要サービス {j}",
                        "country": "JP",
                        "critical": True,
                        "certified": rng.random() < 0.9,
                        "disclosure": "full",
                        "kind": "service",
                    }
                )
                tier_of.append(0)
            continue
        entity_count = max(1, size // 8)
        entity_weights = _weights(entity_count, rng)
        entity_country = rng.choices(country_names, country_weights, k=entity_count)
        entity_parent = [
            f"group-{rng.randrange(200):03d}" if rng.random() < 0.3 else None
            for _ in range(entity_count)
        ]
        owners = rng.choices(range(entity_count), entity_weights, k=size)
        certified_share = {1: 0.7, 2: 0.5}.get(t, 0.3)
        for j in range(size):
            e = owners[j]
            roll = rng.random()
            node = {
                "id": f"t{t}-{j:05d}",
                "entity": f"t{t}-e{e:04d}",
                "name": f"supplier {t}-{j}",
                "country": entity_country[e]
                if rng.random() < 0.8
                else rng.choices(country_names, country_weights)[0],
                "critical": False,
                "certified": rng.random() < certified_share,
                "disclosure": "none" if roll < 0.1 else "partial" if roll < 0.2 else "full",
                "kind": "ict" if t <= 2 else "part",
            }
            if entity_parent[e]:
                node["parent"] = entity_parent[e]
            nodes.append(node)
            tier_of.append(t)

    popularity = [_weights(size, rng) for size in TIER_SIZES]
    cumulative = []
    for weights in popularity:
        running, acc = [], 0.0
        for w in weights:
            acc += w
            running.append(acc)
        cumulative.append(running)

    def pick(t: int, k: int, exclude: set[int]) -> list[int]:
        chosen: list[int] = []
        members = tiers[t]
        while len(chosen) < k:
            j = members[rng.choices(range(len(members)), cum_weights=cumulative[t])[0]]
            if j not in exclude and j not in chosen:
                chosen.append(j)
        return chosen

    requirements: list[list] = []  # [node, need, providers]
    customers: dict[int, list[int]] = defaultdict(list)
    for t in range(len(TIER_SIZES) - 1):
        for v in tiers[t]:
            disclosure = nodes[v]["disclosure"]
            if disclosure == "none":
                continue
            needs = rng.sample(NEEDS[t], rng.randint(3, 6))
            if disclosure == "partial":
                needs = needs[: max(1, len(needs) // 2)]
            for need in needs:
                k = (
                    1
                    if rng.random() < SOLE_SOURCE
                    else rng.choices([2, 3, 4, 5, 6], [30, 30, 20, 12, 8])[0]
                )
                providers = pick(t + 1, k, {v})
                if t >= 2 and customers[v] and rng.random() < BACK_EDGE:
                    # Mutual supply: one of v's own customers is also an alternative provider.
                    back = rng.choice(customers[v])
                    if back not in providers:
                        providers.append(back)
                for p in providers:
                    customers[p].append(v)
                requirements.append([v, need, providers])

    total = sum(len(r[2]) for r in requirements)
    multi = [r for r in requirements if len(r[2]) >= 2]
    while total > EDGES:
        r = rng.choice(multi)
        if len(r[2]) > 2:
            r[2].pop()
            total -= 1
    while total < EDGES:
        r = rng.choice(multi)
        t = tier_of[r[0]]
        r[2].extend(pick(t + 1, 1, {r[0], *r[2]}))
        total += 1
    return {
        "schema": graph.SCHEMA,
        "nodes": nodes,
        "requirements": [
            {"node": nodes[v]["id"], "need": need, "providers": [nodes[p]["id"] for p in providers]}
            for v, need, providers in requirements
        ],
    }


# --- the child: our analysis, timed, with its own peak RSS -----------------------------------


def child(path: Path, output: Path) -> None:
    started = time.perf_counter()
    g = graph.load_path(path)
    loaded = time.perf_counter()
    result = analysis.analyse(g)
    analysed = time.perf_counter()
    text = json.dumps(result, ensure_ascii=False)
    dumped = time.perf_counter()
    output.write_text(text, encoding="utf-8")
    print(
        json.dumps(
            {
                "load_seconds": round(loaded - started, 3),
                "analyse_seconds": round(analysed - loaded, 3),
                "serialise_seconds": round(dumped - analysed, 3),
                "total_seconds": round(dumped - started, 3),
                "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "result_bytes": len(text.encode("utf-8")),
            }
        )
    )


# --- the straightforward networkx baseline ----------------------------------------------------


def networkx_spof(document: dict, services: list[str], budget_seconds: float) -> dict:
    """For each service of the sample: for each node upstream of it, remove that node and
    propagate failure (a requirement fails when all its providers failed, a node when any of its
    requirements failed) until nothing more fails; the service's SPOFs are the nodes whose
    removal made it fail. Stops after the budget; returns what it finished."""
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(node["id"] for node in document["nodes"])
    size: dict[int, int] = {}
    for rid, requirement in enumerate(document["requirements"]):
        size[rid] = len(requirement["providers"])
        for p in requirement["providers"]:
            if g.has_edge(requirement["node"], p):
                g[requirement["node"]][p]["needs"].append(rid)
            else:
                g.add_edge(requirement["node"], p, needs=[rid])
    found: dict[str, list[str]] = {}
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    for service in services:
        if time.perf_counter() - started > budget_seconds and found:
            break
        t0 = time.perf_counter()
        upstream = nx.descendants(g, service)
        sub = g.subgraph(upstream | {service})
        spofs = []
        for x in upstream:
            remaining: dict[int, int] = {}
            failed = {x}
            queue = deque([x])
            while queue and service not in failed:
                u = queue.popleft()
                for d in sub.predecessors(u):
                    if d in failed:
                        continue
                    for rid in sub[d][u]["needs"]:
                        left = remaining.get(rid, size[rid]) - 1
                        remaining[rid] = left
                        if left == 0:
                            failed.add(d)
                            queue.append(d)
                            break
            if service in failed:
                spofs.append(x)
        found[service] = sorted(spofs)
        seconds[service] = time.perf_counter() - t0
    return {"spof": found, "seconds": seconds}


# --- graph libraries: strongly connected components in topological order --------------------


def library_timings(document: dict) -> dict:
    g = graph.from_dict(document)
    upstream = g.upstream_adjacency()
    n = g.node_count
    edges = [(v, p) for v in range(n) for p in upstream[v]]
    timings: dict[str, dict] = {}

    t0 = time.perf_counter()
    components = analysis.strongly_connected_components(upstream)
    timings["python"] = {
        "seconds": round(time.perf_counter() - t0, 3),
        "components": len(components),
        "note": "iterative Tarjan on the adjacency lists the analysis already has",
    }
    try:
        import networkx as nx

        t0 = time.perf_counter()
        dg = nx.DiGraph()
        dg.add_nodes_from(range(n))
        dg.add_edges_from(edges)
        built = time.perf_counter()
        cg = nx.condensation(dg)
        order = list(reversed(list(nx.topological_sort(cg))))
        done = time.perf_counter()
        timings["networkx"] = {
            "build_seconds": round(built - t0, 3),
            "scc_seconds": round(done - built, 3),
            "seconds": round(done - t0, 3),
            "components": len(order),
            "version": nx.__version__,
        }
    except ImportError:
        timings["networkx"] = {"skipped": "not installed"}
    try:
        import rustworkx as rx

        t0 = time.perf_counter()
        rg = rx.PyDiGraph(multigraph=False)
        rg.add_nodes_from(range(n))
        rg.add_edges_from_no_data(edges)
        built = time.perf_counter()
        cg = rx.condensation(rg)
        order = list(reversed(rx.topological_sort(cg)))
        done = time.perf_counter()
        timings["rustworkx"] = {
            "build_seconds": round(built - t0, 3),
            "scc_seconds": round(done - built, 3),
            "seconds": round(done - t0, 3),
            "components": len(order),
            "version": rx.__version__,
        }
    except ImportError:
        timings["rustworkx"] = {"skipped": "not installed"}
    try:
        import igraph as ig

        t0 = time.perf_counter()
        ing = ig.Graph(n=n, edges=edges, directed=True)
        built = time.perf_counter()
        membership = ing.connected_components(mode="strong").membership
        ing.contract_vertices(membership, combine_attrs=None)
        ing.simplify(multiple=True, loops=True)
        order = list(reversed(ing.topological_sorting(mode="out")))
        done = time.perf_counter()
        timings["igraph"] = {
            "build_seconds": round(built - t0, 3),
            "scc_seconds": round(done - built, 3),
            "seconds": round(done - t0, 3),
            "components": len(order),
            "version": ig.__version__,
        }
    except ImportError:
        timings["igraph"] = {"skipped": "not installed"}
    return timings


def bitset_failure_sets(g, components, dependents) -> list[int]:
    """The same fixpoint as ``analysis.single_failure_sets`` with ``K`` sets as Python-int
    bitsets over the component order (providers first, so low bits), for the measurement."""
    position = [0] * g.node_count
    at = 0
    for component in components:
        for v in component:
            position[v] = at
            at += 1
    req_start, prov_start, prov = g.req_start, g.prov_start, g.prov
    sets = [0] * g.node_count

    def evaluate(v: int) -> int:
        acc = 1 << position[v]
        for r in range(req_start[v], req_start[v + 1]):
            a, b = prov_start[r], prov_start[r + 1]
            common = sets[prov[a]]
            for p in prov[a + 1 : b]:
                if not common:
                    break
                common &= sets[p]
            acc |= common
        return acc

    for component in components:
        if len(component) == 1:
            sets[component[0]] = evaluate(component[0])
            continue
        inside = set(component)
        for v in component:
            sets[v] = 1 << position[v]
        queue = deque(component)
        queued = set(component)
        while queue:
            v = queue.popleft()
            queued.discard(v)
            grown = evaluate(v)
            if grown != sets[v]:
                sets[v] = grown
                for d in dependents[v]:
                    if d in inside and d not in queued:
                        queued.add(d)
                        queue.append(d)
    return sets, position


def representation_timings(document: dict) -> dict:
    """K sets as frozensets (ours) against Python-int bitsets, same fixpoint, same order: time
    and the memory the sets of all nodes hold (``sys.getsizeof`` summed)."""
    g = graph.from_dict(document)
    upstream = g.upstream_adjacency()
    dependents = g.dependents()
    components = analysis.strongly_connected_components(upstream)
    t0 = time.perf_counter()
    frozen = analysis.single_failure_sets(g, components, dependents)
    t1 = time.perf_counter()
    bits, position = bitset_failure_sets(g, components, dependents)
    t2 = time.perf_counter()
    same = all(sum(1 << position[x] for x in frozen[v]) == bits[v] for v in range(g.node_count))
    frozen_bytes = sum(sys.getsizeof(k) for k in frozen)
    bitset_bytes = sum(sys.getsizeof(k) for k in bits)
    return {
        "frozenset_bytes": frozen_bytes,
        "int_bitset_bytes": bitset_bytes,
        "frozenset_seconds": round(t1 - t0, 3),
        "int_bitset_seconds": round(t2 - t1, 3),
        "same_result": same,
        "mean_set_size": round(sum(len(k) for k in frozen) / g.node_count, 2),
        "max_set_size": max(len(k) for k in frozen),
    }


def concentration_timings(document: dict) -> dict:
    """Counting the provider edges of one institution's upstream closure by entity, parent and
    country: numpy (ours: a bool mask from the closure's bitset, ``bincount``) against a
    plain-Python loop over the closure's nodes and their requirements."""
    import numpy as np

    g = graph.from_dict(document)
    upstream = g.upstream_adjacency()
    components = analysis.strongly_connected_components(upstream)
    owner = g.entity[g.critical_nodes()[0]]
    services = [c for c in g.critical_nodes() if g.entity[c] == owner]
    closures, position = analysis.upstream_bitsets(g, components, upstream, services)
    bits = 0
    for c in services:
        bits |= closures[c]
    n = g.node_count
    position_to_node = np.empty(n, dtype=np.int64)
    position_to_node[np.asarray(position)] = np.arange(n)
    prov = np.asarray(g.prov, dtype=np.int64)
    edge_node = np.repeat(np.asarray(g.req_node), np.diff(np.asarray(g.prov_start)))
    keyed = [np.asarray(k, dtype=np.int64)[prov] for k in (g.entity, g.parent, g.country)]

    t0 = time.perf_counter()
    mask = analysis._mask(bits, position_to_node, n)
    edges = mask[edge_node]
    vectorised = [np.bincount(k[edges]) for k in keyed]
    t1 = time.perf_counter()
    members = [v for v in range(n) if (bits >> position[v]) & 1]
    t2 = time.perf_counter()
    counts = [defaultdict(int), defaultdict(int), defaultdict(int)]
    for v in members:
        for r in g.requirements_of(v):
            for p in g.providers_of(r):
                counts[0][g.entity[p]] += 1
                counts[1][g.parent[p]] += 1
                counts[2][g.country[p]] += 1
    t3 = time.perf_counter()
    same = all(
        {k: int(x) for k, x in enumerate(vectorised[i]) if x} == dict(counts[i]) for i in range(3)
    )
    return {
        "institution_closure_nodes": len(members),
        "numpy_seconds": round(t1 - t0, 4),
        "python_seconds": round(t3 - t2, 4),
        "python_decode_seconds": round(t2 - t1, 4),
        "same_result": same,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--sample", type=int, default=8, help="critical services for networkx")
    parser.add_argument(
        "--networkx-budget", type=float, default=240.0, help="seconds for the networkx sample"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.child_output)
        return 0

    WORK_DIR.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    document = generate(args.seed)
    generated = time.perf_counter() - t0
    path = WORK_DIR / "graph.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    edges = sum(len(r["providers"]) for r in document["requirements"])
    print(
        f"graph: {len(document['nodes']):,} nodes, {len(document['requirements']):,} needs, "
        f"{edges:,} provider edges, generated in {generated:.1f} s "
        f"({path.stat().st_size / 1e6:.0f} MB JSON)"
    )

    output = WORK_DIR / "analysis.json"
    completed = subprocess.run(
        [sys.executable, __file__, "--child", str(path), "--child-output", str(output)],
        capture_output=True,
        text=True,
        check=True,
    )
    ours = json.loads(completed.stdout.strip().splitlines()[-1])
    result = json.loads(output.read_text(encoding="utf-8"))
    print(
        f"ours: load {ours['load_seconds']:.2f} s, analyse {ours['analyse_seconds']:.2f} s, "
        f"serialise {ours['serialise_seconds']:.2f} s, total {ours['total_seconds']:.2f} s, "
        f"peak RSS {ours['peak_rss_bytes'] / 1024**2:,.0f} MiB"
    )
    summary = result["summary"]
    findings = {
        "spof_total": sum(len(v) for v in result["spof"].values()),
        "services_with_spof": sum(1 for v in result["spof"].values() if v),
        "sole_source_on_critical_path": sum(
            1 for item in result["sole_source"] if item["tier"] is not None
        ),
        "hidden_convergence": len(result["hidden_convergence"]),
        "single_country": len(result["single_country"]),
        "uncertified_on_critical_path": len(result["uncertified_on_critical_path"]),
        "sector_hhi_entity": result["concentration"]["sector"]["all_tiers"]["entity"]["hhi"],
        "sector_hhi_country": result["concentration"]["sector"]["all_tiers"]["country"]["hhi"],
        "entities_with_reach": len(result["reach"]),
        "mean_opacity_share": round(
            sum(o["share"] for o in result["opacity"].values()) / len(result["opacity"]), 4
        ),
        "mean_upstream": round(
            sum(o["upstream"] for o in result["opacity"].values()) / len(result["opacity"]), 1
        ),
    }
    print(f"summary: {summary}")
    print(f"findings: {findings}")

    rng = random.Random(args.seed + 1)
    critical = sorted(result["spof"])
    sample = rng.sample(critical, min(args.sample, len(critical)))
    baseline = networkx_spof(document, sample, args.networkx_budget)
    done = list(baseline["spof"])
    mismatches = [s for s in done if baseline["spof"][s] != result["spof"][s]]
    per_service = sum(baseline["seconds"].values()) / len(done)
    extrapolated = per_service * len(critical)
    ratio = extrapolated / ours["analyse_seconds"]
    print(
        f"networkx baseline: {len(done)} services in {sum(baseline['seconds'].values()):.1f} s "
        f"({per_service:.1f} s each), extrapolated to {len(critical):,}: {extrapolated:,.0f} s "
        f"= {ratio:,.0f}x our analysis; mismatches: {len(mismatches)}"
    )
    libraries = library_timings(document)
    for name, figures in libraries.items():
        print(f"SCC in topological order, {name}: {figures}")
    representation = representation_timings(document)
    print(f"K sets, frozenset against int bitset: {representation}")
    concentration = concentration_timings(document)
    print(f"one institution's concentration, numpy against plain Python: {concentration}")
    load_after = os.getloadavg()

    record = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "seed": args.seed,
        "graph": {
            "nodes": len(document["nodes"]),
            "requirements": len(document["requirements"]),
            "provider_edges": edges,
            "critical": summary["critical"],
            "institutions": summary["institutions"],
            "nodes_in_cycles": summary["nodes_in_cycles"],
            "generate_seconds": round(generated, 2),
            "json_bytes": path.stat().st_size,
        },
        "ours": ours,
        "targets": {
            "analyse_seconds": TARGET_SECONDS,
            "peak_rss_bytes": TARGET_RSS_BYTES,
            "met": ours["total_seconds"] < TARGET_SECONDS
            and ours["peak_rss_bytes"] < TARGET_RSS_BYTES,
        },
        "findings": findings,
        "networkx_baseline": {
            "sample": done,
            "seconds": {k: round(v, 2) for k, v in baseline["seconds"].items()},
            "upstream_sizes": {s: result["opacity"][s]["upstream"] - 1 for s in done},
            "per_service_seconds": round(per_service, 2),
            "extrapolated_seconds": round(extrapolated, 1),
            "ratio_to_ours": round(ratio, 1),
            "mismatches": mismatches,
        },
        "scc_libraries": libraries,
        "set_representation": representation,
        "concentration_counting": concentration,
    }
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"written {RESULTS_FILE.relative_to(ROOT)}")
    return 0 if record["targets"]["met"] and not mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
