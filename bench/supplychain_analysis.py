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
   Python (ours), networkx, rustworkx and python-igraph (each skipped when not installed);
5. a **dense** graph of the same size where a few providers serve most needs (``generate_dense``:
   about 300,000 sole-source and 260,000 hidden-convergence findings), analysed in a child as in
   step 2, then through the command line end to end — ``mamori supplychain analyse --format
   json`` as a subprocess, its wall time, CPU time and peak RSS from ``os.wait4`` (targets:
   < 10 s on a quiet machine, < 1 GB). ``--dense-only`` runs this step alone, ``--src DIR``
   runs it (and step 2) from another source tree, e.g. ``git archive main src | tar -x -C DIR``,
   for a before/after comparison.

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
go to ``bench/results/supplychain_analysis.json`` (``supplychain_dense.json`` with
``--dense-only``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict, deque
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# ``--src DIR`` measures another source tree (e.g. ``git archive`` of an older commit).
_SRC = sys.argv[sys.argv.index("--src") + 1] if "--src" in sys.argv[:-1] else ROOT / "src"
sys.path.insert(0, str(_SRC))

from mamori.supplychain import analysis, graph  # noqa: E402

SEED = 20261126
RESULTS_FILE = ROOT / "bench" / "results" / "supplychain_analysis.json"
DENSE_RESULTS_FILE = ROOT / "bench" / "results" / "supplychain_dense.json"
WORK_DIR = ROOT / "var" / "bench-supplychain"
TARGET_SECONDS = 30.0
TARGET_RSS_BYTES = 4 * 1024**3
# The dense graph through the command line, end to end (issue 9, section 8).
CLI_TARGET_SECONDS = 10.0
CLI_TARGET_RSS_BYTES = 1024**3

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


# --- the dense graph: a few providers serve most needs ----------------------------------------

DENSE_HUBS = 12  # per supplier tier: the clouds, carriers, grids and big vendors of that tier
DENSE_HUB_SHARE = 0.75  # of provider picks that go to a hub of the next tier
DENSE_SOLE_SOURCE = 0.47
DENSE_NEEDS = [
    [
        "core-system",
        "hosting",
        "network",
        "payments-switch",
        "identity",
        "operations",
        "backup",
        "printing",
        "call-centre",
        "messaging",
    ],
    [
        "hosting",
        "software",
        "network",
        "support",
        "power",
        "facilities",
        "security",
        "backup",
        "dns",
        "certificates",
    ],
    [
        "compute",
        "storage",
        "power",
        "cooling",
        "connectivity",
        "staff",
        "dns",
        "monitoring",
        "spares",
        "transit",
    ],
    [
        "chips",
        "boards",
        "power",
        "logistics",
        "materials",
        "firmware",
        "testing",
        "packaging",
        "cables",
        "enclosures",
    ],
    [
        "wafers",
        "chemicals",
        "power",
        "logistics",
        "tooling",
        "gases",
        "water",
        "transport",
        "metals",
        "substrates",
    ],
    ["power", "water"],
]
DENSE_ROOTS = 3  # hubs of the last tier that need nothing listed (grids, water works)


def generate_dense(seed: int = SEED) -> dict:
    """The same 100,000 nodes in six tiers, with 1,000,000 provider edges concentrated on a few
    providers: each supplier tier has ``DENSE_HUBS`` hubs that receive ``DENSE_HUB_SHARE`` of
    the picks (Zipf among themselves), half of all needs are sole-sourced, nodes have 5–9
    needs, and the non-hub nodes of the last tier need power and water from its own hubs. Most
    alternatives then share the hubs they sole-source from (hidden convergence), and the
    analysis reports hundreds of thousands of findings: the output is what the CLI must write
    quickly (issue 9, section 8)."""
    rng = random.Random(seed)
    country_names = list(COUNTRIES)
    country_weights = list(COUNTRIES.values())
    nodes: list[dict] = []
    tiers: list[list[int]] = []
    hubs: list[list[int]] = []
    for t, size in enumerate(TIER_SIZES):
        start = len(nodes)
        members = list(range(start, start + size))
        tiers.append(members)
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
            hubs.append([])
            continue
        chosen = set(rng.sample(members, DENSE_HUBS))
        hubs.append(sorted(chosen))
        entity_count = max(1, size // 8)
        entity_weights = _weights(entity_count, rng)
        entity_country = rng.choices(country_names, country_weights, k=entity_count)
        owners = rng.choices(range(entity_count), entity_weights, k=size)
        for j, v in enumerate(members):
            hub = v in chosen
            e = owners[j]
            roll = rng.random()
            node = {
                "id": f"t{t}-{j:05d}",
                # Hubs belong to four big groups per tier, so their entities are few too.
                "entity": f"t{t}-hub{j % 4}" if hub else f"t{t}-e{e:04d}",
                "name": f"{'hub' if hub else 'supplier'} {t}-{j}",
                "country": rng.choice(["JP", "US"]) if hub else entity_country[e],
                "critical": False,
                "certified": rng.random() < (0.9 if hub else 0.4),
                "disclosure": "full"
                if hub
                else "none"
                if roll < 0.05
                else "partial"
                if roll < 0.15
                else "full",
                "kind": "ict" if t <= 2 else "part",
            }
            if hub and j % 2:
                node["parent"] = f"group-hub-{t % 3}"
            nodes.append(node)

    last = len(TIER_SIZES) - 1
    hub_cumulative = []
    tier_cumulative = []
    for t in range(len(TIER_SIZES)):
        acc, running = 0.0, []
        for rank in range(len(hubs[t])):
            acc += 1.0 / (rank + 1) ** 1.2
            running.append(acc)
        hub_cumulative.append(running)
        acc, running = 0.0, []
        for w in _weights(len(tiers[t]), rng):
            acc += w
            running.append(acc)
        tier_cumulative.append(running)

    def pick_one(t: int) -> int:
        # The last tier's nodes depend on its hubs only (no cycles among thousands of parts).
        if t == last or rng.random() < DENSE_HUB_SHARE:
            return hubs[t][rng.choices(range(len(hubs[t])), cum_weights=hub_cumulative[t])[0]]
        members = tiers[t]
        return members[rng.choices(range(len(members)), cum_weights=tier_cumulative[t])[0]]

    def pick(t: int, k: int, exclude: set[int]) -> list[int]:
        chosen: list[int] = []
        while len(chosen) < k:
            p = pick_one(t)
            if p not in exclude and p not in chosen:
                chosen.append(p)
        return chosen

    requirements: list[list] = []
    roots = hubs[last][:DENSE_ROOTS]
    utilities = set(hubs[last][DENSE_ROOTS:])
    for t in range(len(TIER_SIZES)):
        for v in tiers[t]:
            disclosure = nodes[v]["disclosure"]
            if disclosure == "none" or v in roots:
                continue
            if v in utilities:
                # The utilities of the last tier draw on the roots alone.
                for need in DENSE_NEEDS[last]:
                    requirements.append([v, need, [rng.choice(roots)]])
                continue
            if t == last:
                needs, source = DENSE_NEEDS[t], last
            else:
                needs = rng.sample(DENSE_NEEDS[t], rng.randint(6, 10))
                source = t + 1
            if disclosure == "partial":
                needs = needs[: max(1, len(needs) // 2)]
            for need in needs:
                k = (
                    1
                    if rng.random() < DENSE_SOLE_SOURCE
                    else rng.choices([2, 3, 4], [70, 20, 10])[0]
                )
                if t == last:
                    k = min(k, 2)
                requirements.append([v, need, pick(source, k, {v})])

    tier_of = [t for t, members in enumerate(tiers) for _ in members]
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
        r[2].extend(pick(last if t == last else t + 1, 1, {r[0], *r[2]}))
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
    """Load, analyse and write as ``mamori supplychain analyse --format json`` does (cyclic
    garbage collector paused, compact JSON written in slices), each step timed; an older tree
    (``--src``, without ``write_json``) as its command line did (indented ``json.dumps``)."""
    current = hasattr(analysis, "write_json")
    if current:
        gc.disable()
    started = time.perf_counter()
    g = graph.load_path(path, max_bytes=256 * 1024 * 1024)
    loaded = time.perf_counter()
    result = analysis.analyse(g)
    analysed = time.perf_counter()
    del g
    with open(output, "wb") as out:
        if current:
            analysis.write_json(result, out)
        else:
            out.write(json.dumps(result, ensure_ascii=False, indent=2).encode())
    dumped = time.perf_counter()
    print(
        json.dumps(
            {
                "load_seconds": round(loaded - started, 3),
                "analyse_seconds": round(analysed - loaded, 3),
                "serialise_seconds": round(dumped - analysed, 3),
                "total_seconds": round(dumped - started, 3),
                "result_bytes": output.stat().st_size,
            }
        )
    )


# Linux keeps the RSS high-water mark of the process that forks across the child's exec, so a
# child started from this (large) process would report at least this process's RSS as its own
# peak. A small launcher process starts the measured one and reports what wait4 says about it.
LAUNCHER = """
import json, os, subprocess, sys, time
report, arguments = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
process = subprocess.Popen(arguments)
_, status, usage = os.wait4(process.pid, 0)
seconds = time.perf_counter() - started
with open(report, "w") as out:
    json.dump({"exit": os.waitstatus_to_exitcode(status), "seconds": seconds,
               "cpu_seconds": usage.ru_utime + usage.ru_stime,
               "peak_rss_bytes": usage.ru_maxrss * 1024}, out)
"""


def measured(arguments: list[str], *, stdout, env: dict | None = None) -> dict:
    """Run ``arguments`` through the launcher: its exit status, wall time, CPU time and peak RSS
    (``os.wait4``), as its own, with ``stdout`` as its standard output."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "rusage.json"
        with tempfile.TemporaryFile() as err:
            subprocess.run(
                [sys.executable, "-c", LAUNCHER, str(report), *arguments],
                stdout=stdout,
                stderr=err,
                env=env,
                check=False,
            )
            err.seek(0)
            stderr = err.read().decode(errors="replace").strip()
        if not report.exists():
            raise SystemExit(f"the launcher failed: {stderr[-2000:]}")
        figures = json.loads(report.read_text())
    figures["stderr"] = stderr
    return figures


def run_child(path: Path, output: Path, src: Path | None = None) -> dict:
    """:func:`child` in a fresh process, so that its peak RSS is the analysis's own."""
    arguments = [sys.executable, __file__, "--child", str(path), "--child-output", str(output)]
    if src is not None:
        arguments += ["--src", str(src)]
    with tempfile.TemporaryFile() as out:
        figures = measured(arguments, stdout=out)
        out.seek(0)
        text = out.read().decode()
    if figures["exit"] != 0:
        raise SystemExit(f"the analysis child failed: {figures['stderr'][-2000:]}")
    timings = json.loads(text.strip().splitlines()[-1])
    timings["peak_rss_bytes"] = figures["peak_rss_bytes"]
    return timings


# --- the command line, end to end ----------------------------------------------------------


def run_cli(path: Path, output: Path, src: Path | None = None) -> dict:
    """``mamori supplychain analyse PATH --format json > output`` in a child process, as a user
    runs it: wall time, its own CPU time and peak RSS (``os.wait4``, see :func:`measured`). ``src`` runs the
    command from another source tree (e.g. an export of an older commit) for a comparison.

    The environment is a throwaway one (no database exists): ``DATABASE_URL`` names an SQLite
    file that any connection would create, and the run fails if it appears."""
    with tempfile.TemporaryDirectory() as scratch:
        database = Path(scratch) / "db" / "never.sqlite3"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": scratch,
            "LANG": "C.UTF-8",
            "SECRET_KEY": "bench-only-key-0123456789abcdefghijklmnopqrstuvwxyz",
            "ALLOWED_HOSTS": "localhost",
            "MAMORI_VAR_DIR": str(Path(scratch) / "var"),
            "DATABASE_URL": f"sqlite:///{database}",
        }
        if src is not None:
            env["PYTHONPATH"] = str(src)
        arguments = [sys.executable, "-m", "mamori.cli", "supplychain", "analyse", str(path)]
        arguments += ["--format", "json", "--max-size", "256"]
        with open(output, "wb") as out:
            figures = measured(arguments, stdout=out, env=env)
        if figures["exit"] != 0:
            raise SystemExit(f"the command failed ({figures['exit']}): {figures['stderr']}")
        if database.exists():
            raise SystemExit("the command opened a database")
    return {
        "seconds": round(figures["seconds"], 2),
        "cpu_seconds": round(figures["cpu_seconds"], 2),
        "peak_rss_bytes": figures["peak_rss_bytes"],
        "output_bytes": output.stat().st_size,
    }


def dense_findings(output: Path) -> dict:
    import orjson

    result = orjson.loads(output.read_bytes())
    return {
        "sole_source": len(result["sole_source"]),
        "hidden_convergence": len(result["hidden_convergence"]),
        "single_country": len(result["single_country"]),
        "spof_total": sum(len(v) for v in result["spof"].values()),
        "converges_on_mean": round(
            sum(len(item["converges_on"]) for item in result["hidden_convergence"])
            / max(1, len(result["hidden_convergence"])),
            1,
        ),
    }


def dense_step(args) -> dict:
    """Generate the dense graph, time its analysis in a child (split by step) and the command
    line end to end; print and return the figures."""
    t0 = time.perf_counter()
    document = generate_dense(args.seed)
    generated = time.perf_counter() - t0
    path = WORK_DIR / "dense.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    nodes, requirements = len(document["nodes"]), len(document["requirements"])
    edges = sum(len(r["providers"]) for r in document["requirements"])
    del document
    print(
        f"dense graph: {nodes:,} nodes, {requirements:,} needs, {edges:,} provider edges, "
        f"generated in {generated:.1f} s ({path.stat().st_size / 1e6:.0f} MB JSON)"
    )
    split = run_child(path, WORK_DIR / "dense-analysis-child.json", args.src)
    print(
        f"dense, in one process: load {split['load_seconds']:.2f} s, analyse "
        f"{split['analyse_seconds']:.2f} s, write {split['serialise_seconds']:.2f} s, peak RSS "
        f"{split['peak_rss_bytes'] / 1024**2:,.0f} MiB"
    )
    output = WORK_DIR / "dense-analysis.json"
    runs = []
    for _ in range(args.cli_runs):
        load = os.getloadavg()
        run = run_cli(path, output, args.src)
        run["load_average_before"] = [round(x, 2) for x in load]
        runs.append(run)
        print(
            f"dense, `mamori supplychain analyse --format json`: {run['seconds']:.2f} s wall, "
            f"{run['cpu_seconds']:.2f} s CPU, peak RSS {run['peak_rss_bytes'] / 1024**2:,.0f} "
            f"MiB, {run['output_bytes'] / 1e6:.0f} MB out (load average before "
            f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f})"
        )
    findings = dense_findings(output)
    print(f"dense findings: {findings}")
    best = min(runs, key=lambda run: run["seconds"])
    return {
        "graph": {
            "nodes": nodes,
            "requirements": requirements,
            "provider_edges": edges,
            "generate_seconds": round(generated, 2),
            "json_bytes": path.stat().st_size,
        },
        "in_process": split,
        "cli_runs": runs,
        "findings": findings,
        "source": str(args.src) if args.src else "this tree",
        "targets": {
            "seconds": CLI_TARGET_SECONDS,
            "peak_rss_bytes": CLI_TARGET_RSS_BYTES,
            "met": best["seconds"] < CLI_TARGET_SECONDS
            and max(run["peak_rss_bytes"] for run in runs) < CLI_TARGET_RSS_BYTES,
        },
    }


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
    country: numpy (ours: a bool mask over nodes, ``bincount``) against a plain-Python loop over
    the closure's nodes and their requirements. The closure comes from ``reached_by`` (bits of
    the institution's critical nodes), as in the analysis."""
    import numpy as np

    g = graph.from_dict(document)
    upstream = g.upstream_adjacency()
    dependents = g.dependents()
    components = analysis.strongly_connected_components(upstream)
    owner = g.entity[g.critical_nodes()[0]]
    services = [c for c in g.critical_nodes() if g.entity[c] == owner]
    reached = analysis.reached_by(components, dependents, {c: i for i, c in enumerate(services)})
    n = g.node_count
    prov = np.asarray(g.prov, dtype=np.int64)
    edge_node = np.repeat(np.asarray(g.req_node), np.diff(np.asarray(g.prov_start)))
    keyed = [np.asarray(k, dtype=np.int64)[prov] for k in (g.entity, g.parent, g.country)]

    t0 = time.perf_counter()
    mask = np.fromiter((bits != 0 for bits in reached), dtype=bool, count=n)
    edges = mask[edge_node]
    vectorised = [np.bincount(k[edges]) for k in keyed]
    t1 = time.perf_counter()
    members = [v for v in range(n) if reached[v]]
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
    parser.add_argument(
        "--dense-only",
        action="store_true",
        help="only the dense graph: its analysis and the command line end to end",
    )
    parser.add_argument(
        "--cli-runs", type=int, default=3, help="runs of the command line on the dense graph"
    )
    parser.add_argument(
        "--src",
        type=Path,
        help="run the analysis and the command line from this source tree instead (a 'src' "
        "folder, e.g. from `git archive main src`), to compare",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.child_output)
        return 0

    WORK_DIR.mkdir(parents=True, exist_ok=True)
    if args.dense_only:
        load_before = os.getloadavg()
        dense = dense_step(args)
        record = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "seed": args.seed,
            "dense": dense,
        }
        DENSE_RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
        DENSE_RESULTS_FILE.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        print(f"written {DENSE_RESULTS_FILE.relative_to(ROOT)}")
        return 0 if dense["targets"]["met"] else 1

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
    ours = run_child(path, output, args.src)
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
    del document
    dense = dense_step(args)
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
            "nodes": summary["nodes"],
            "requirements": summary["requirements"],
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
        "dense": dense,
    }
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"written {RESULTS_FILE.relative_to(ROOT)}")
    met = record["targets"]["met"] and dense["targets"]["met"]
    return 0 if met and not mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
