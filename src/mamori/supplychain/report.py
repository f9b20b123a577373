"""What the supply-chain analysis pages show, computed from exchange documents
(``mamori.supplygraph/1``) and :func:`mamori.supplychain.analysis.analyse` results.

Pure logic, no Django imports: the views fetch the documents and the names from the database, call
these functions and translate the words; everything that is counted, restricted, ordered or laid
out is here, where it can be tested without a request.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Mapping

from mamori.supplychain.graph import SCHEMA

# Usual reading of the Herfindahl-Hirschman index (0–10,000): below 1,500 unconcentrated,
# 1,500–2,500 moderately concentrated, above 2,500 highly concentrated.
HHI_MODERATE = 1500
HHI_HIGH = 2500
TOP_BARS = 8
DIMENSIONS = ("entity", "parent", "country")
SCOPES = ("all_tiers", "tier1")


# --- Documents ---------------------------------------------------------------------------------


def requirements_by_node(document: dict) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for requirement in document["requirements"]:
        grouped[requirement["node"]].append(requirement)
    return grouped


def tiers_from(document: dict, root: str) -> dict[str, int]:
    """Fewest provider steps from ``root`` to every node it depends on (``root`` is 0)."""
    requirements_of = requirements_by_node(document)
    tier = {root: 0}
    queue = deque([root])
    while queue:
        node = queue.popleft()
        for requirement in requirements_of[node]:
            for provider in requirement["providers"]:
                if provider not in tier:
                    tier[provider] = tier[node] + 1
                    queue.append(provider)
    return tier


def upstream_document(document: dict, root: str) -> dict:
    """The part of an exchange document that ``root`` depends on (``root`` included). Only
    ``root`` stays critical, so tiers count provider steps from it."""
    seen = tiers_from(document, root)
    return {
        "schema": document["schema"],
        "nodes": [
            {**node, "critical": node["id"] == root}
            for node in document["nodes"]
            if node["id"] in seen
        ],
        "requirements": [r for r in document["requirements"] if r["node"] in seen],
    }


def merged_document(documents: Iterable[tuple[str, dict]]) -> dict:
    """One document from several organisations' graphs, ``(prefix, document)`` each. Node ids
    are prefixed so that two graphs' ids never collide; entity ids are kept, so an entity named
    in several graphs (a claimed supplier, ``org-N``) is one entity across all of them."""
    nodes: list[dict] = []
    requirements: list[dict] = []
    for prefix, document in documents:
        nodes.extend({**node, "id": prefix + node["id"]} for node in document["nodes"])
        requirements.extend(
            {
                "node": prefix + r["node"],
                "need": r["need"],
                "providers": [prefix + p for p in r["providers"]],
            }
            for r in document["requirements"]
        )
    return {"schema": SCHEMA, "nodes": nodes, "requirements": requirements}


# --- A critical service ------------------------------------------------------------------------


def service_view(
    document: dict,
    root: str,
    result: dict,
    *,
    node_names: Mapping[str, str],
    entity_names: Mapping[str, str],
    disclosure_labels: Mapping[str, str],
    first_tier: int = 1,
) -> dict:
    """The service page from the service's upstream document and its analysis: one row per
    node (tier, certification, disclosure, whether it is a single point of failure), the
    Cytoscape elements of the layered graph, and the findings on the service's critical path
    with names instead of ids. ``node_names`` and ``entity_names`` map ids to the names to show
    (an id without a name is shown as itself).

    ``tier`` (in rows and findings) is the layer: provider steps from the service (0).
    ``tier_shown`` is the tier as the survey counts it: the service's direct providers are
    ``first_tier`` — 1 for an institution, 0 when tiers count from the manufacturers (the
    medical-device survey); the service itself has none."""
    tier = tiers_from(document, root)

    def shown(steps: int | None) -> int | None:
        return None if not steps else steps - 1 + first_tier

    spof = set(result["spof"].get(root, []))

    def name_of(key: str) -> str:
        return node_names.get(key) or key

    rows = []
    for item in document["nodes"]:
        rows.append(
            {
                "id": item["id"],
                "name": name_of(item["id"]),
                "entity": entity_names.get(item["id"]) or item["entity"],
                "tier": tier.get(item["id"]),
                "tier_shown": shown(tier.get(item["id"])),
                "country": item["country"],
                "certified": item["certified"],
                "disclosure": item["disclosure"],
                "disclosure_label": disclosure_labels.get(item["disclosure"], item["disclosure"]),
                "spof": item["id"] in spof,
                "critical": item["id"] == root,
                "opaque": item["disclosure"] != "full",
            }
        )
    rows.sort(key=lambda r: (not r["critical"], r["tier"], not r["spof"], r["name"], r["id"]))

    def named(keys) -> list[str]:
        return [name_of(k) for k in keys]

    opacity = result["opacity"].get(root)

    findings = {
        "spof": named(result["spof"].get(root, [])),
        "uncertified_spof": named(result["uncertified_spof"].get(root, [])),
        "sole_source": [
            {
                **r,
                "tier_shown": shown(r["tier"]),
                "node_name": name_of(r["node"]),
                "provider_name": name_of(r["provider"]),
            }
            for r in result["sole_source"]
            if r["tier"] is not None
        ],
        "hidden_convergence": [
            {
                **r,
                "tier_shown": shown(r["tier"]),
                "node_name": name_of(r["node"]),
                "provider_names": named(r["providers"]),
                "converges_names": named(r["converges_on"]),
            }
            for r in result["hidden_convergence"]
            if r["tier"] is not None
        ],
        "single_country": [
            {
                **r,
                "tier_shown": shown(r["tier"]),
                "node_name": name_of(r["node"]),
                "provider_names": named(r["providers"]),
            }
            for r in result["single_country"]
            if r["tier"] is not None
        ],
        "opacity": opacity
        and {
            **opacity,
            "first_opaque_tier_shown": shown(opacity["first_opaque_tier"]),
        },
        "uncertified_on_critical_path": named(result["uncertified_on_critical_path"]),
    }
    return {
        "rows": rows,
        "elements": graph_elements(rows, document["requirements"]),
        "findings": findings,
        "suppliers": len(rows) - 1,
        "tiers": max((r["tier"] for r in rows), default=0),
        "tier_labels": {
            step: shown(step) for step in range(1, max((r["tier"] for r in rows), default=0) + 1)
        },
    }


def graph_elements(rows: list[dict], requirements: list[dict]) -> list[dict]:
    """Cytoscape elements: a node per row (classes for the highlights) and an edge per provider
    of each requirement, ``sole`` when it is the only one."""
    elements = []
    for row in rows:
        classes = [
            css
            for css, on in (
                ("critical", row["critical"]),
                ("spof", row["spof"]),
                ("opaque", row["opaque"]),
                ("uncertified", not row["certified"] and not row["critical"]),
            )
            if on
        ]
        elements.append(
            {
                "group": "nodes",
                "data": {"id": row["id"], "label": row["name"], "tier": row["tier"]},
                "classes": " ".join(classes),
            }
        )
    for position, requirement in enumerate(requirements):
        alternatives = len(requirement["providers"])
        for provider in requirement["providers"]:
            elements.append(
                {
                    "group": "edges",
                    "data": {
                        "id": f"e{position}-{provider}",
                        "source": requirement["node"],
                        "target": provider,
                        "label": requirement["need"],
                        "alternatives": alternatives,
                    },
                    "classes": "sole" if alternatives == 1 else "alternative",
                }
            )
    return elements


# --- Concentration -----------------------------------------------------------------------------


def edge_tally(document: dict, scope: str) -> dict[str, Counter]:
    """Provider edges per entity, ultimate parent and country, counted as the analysis counts
    them (docs/supplychain-analysis.md): ``all_tiers`` every edge of every requirement in the
    upstream closure of the critical nodes, ``tier1`` the critical nodes' own requirements."""
    info = {n["id"]: n for n in document["nodes"]}
    critical = [n["id"] for n in document["nodes"] if n["critical"]]
    requirements_of = requirements_by_node(document)
    in_scope = set(critical)
    if scope != "tier1":
        queue = deque(critical)
        while queue:
            node = queue.popleft()
            for requirement in requirements_of[node]:
                for provider in requirement["providers"]:
                    if provider not in in_scope:
                        in_scope.add(provider)
                        queue.append(provider)
    tally = {name: Counter() for name in DIMENSIONS}
    for node in in_scope:
        for requirement in requirements_of[node]:
            for provider in requirement["providers"]:
                item = info[provider]
                tally["entity"][item["entity"]] += 1
                tally["parent"][item.get("parent") or item["entity"]] += 1
                tally["country"][item["country"]] += 1
    return tally


def hhi_level(hhi: float) -> str:
    if hhi > HHI_HIGH:
        return "high"
    if hhi >= HHI_MODERATE:
        return "moderate"
    return "low"


def bar(label: str, share: float, value: str, css: str = "") -> dict:
    """One bar of a chart: the full label (the page shortens it to its box), the share
    (0–1) and its width in percent of the bar's track (at least 0.5 % when not empty, so a
    small share stays visible), the value written beside it and a CSS class for the colour."""
    return {
        "label": label,
        "share": share,
        "percent": 0 if share <= 0 else max(0.5, round(share * 100, 1)),
        "value": value,
        "css": css,
    }


def concentration_view(
    document: dict,
    result: dict,
    *,
    key_label: Callable[[str, str], str],
    word: Callable[[str], str],
) -> list[dict]:
    """For each scope: the analysis' HHI and largest share per dimension, and bars of the
    largest shares (from the same edge count) for the charts. ``key_label(dimension, key)``
    names a key (an entity, a parent, a country) for the page; ``word(name)`` gives the page's
    word for a scope, a dimension, an HHI level and ``"others"`` (the bar of the rest)."""
    figures = result["concentration"]["sector"]
    out = []
    for scope in SCOPES:
        counted = figures[scope]
        tally = edge_tally(document, scope)
        dimensions = []
        hhi_bars = []
        for name in DIMENSIONS:
            h = counted[name]
            level = hhi_level(h["hhi"])
            largest = h["largest"]
            total = sum(tally[name].values())
            top = tally[name].most_common(TOP_BARS)
            shares = [
                bar(key_label(name, key), count / total, f"{count / total:.0%}", name)
                for key, count in top
            ]
            rest = total - sum(count for _key, count in top)
            if rest:
                shares.append(bar(word("others"), rest / total, f"{rest / total:.0%}", "others"))
            dimensions.append(
                {
                    "name": name,
                    "label": word(name),
                    "hhi": round(h["hhi"]),
                    "level": level,
                    "level_label": word(level),
                    "largest": None
                    if largest is None
                    else {
                        "key": largest["key"],
                        "label": key_label(name, largest["key"]),
                        "share": largest["share"],
                    },
                    "bars": shares,
                }
            )
            hhi = min(h["hhi"], 10000)
            hhi_bars.append(bar(word(name), hhi / 10000, f"{round(h['hhi']):,}", level))
        out.append(
            {
                "scope": scope,
                "label": word(scope),
                "edges": counted["edges"],
                "dimensions": dimensions,
                "hhi_bars": hhi_bars,
            }
        )
    return out


def reach_view(result: dict, labels: Mapping[str, str], limit: int = 20) -> list[dict]:
    """The entities that can stop the most institutions, largest first, with their names."""
    return [
        {"key": key, "label": labels.get(key) or key, **item}
        for key, item in list(result["reach"].items())[:limit]
    ]
