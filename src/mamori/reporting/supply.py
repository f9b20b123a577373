"""An organisation's supply-chain figures for its board, from its supply graph
(``mamori.supplygraph/1``) through the supply-chain analysis. Pure logic, no Django imports.

- coverage by tier: of the suppliers at each tier (provider steps from the nearest critical
  service), how many answered with their own suppliers (disclosure full or partial);
- single points of failure: the distinct suppliers whose failure alone stops a critical service;
- uncertified suppliers some critical service depends on.
"""

from __future__ import annotations

from functools import lru_cache

import orjson

from mamori.reporting.metrics import SupplyFigures
from mamori.supplychain import analysis, graph

NOT_DISCLOSED = graph.DISCLOSURES.index("none")


def figures(document: dict) -> SupplyFigures | None:
    """The figures of one graph document (None for a graph without a critical service)."""
    return _figures_of(orjson.dumps(document, option=orjson.OPT_SORT_KEYS))


# The same graph is in force for many days of a series: analysed once per content.
@lru_cache(maxsize=256)
def _figures_of(serialised: bytes) -> SupplyFigures | None:
    supply = graph.from_dict(orjson.loads(serialised))
    critical = supply.critical_nodes()
    if not critical:
        return None
    result = analysis.analyse(supply)
    tier_of = analysis.tiers(supply, supply.upstream_adjacency())
    suppliers: dict[int, int] = {}
    answered: dict[int, int] = {}
    for node, tier in enumerate(tier_of):
        if not tier:  # not reached from a critical service, or the service itself
            continue
        suppliers[tier] = suppliers.get(tier, 0) + 1
        if supply.disclosure[node] != NOT_DISCLOSED:
            answered[tier] = answered.get(tier, 0) + 1
    coverage = {
        str(tier): {
            "suppliers": suppliers[tier],
            "answered": answered.get(tier, 0),
            "share": round(answered.get(tier, 0) / suppliers[tier], 4),
        }
        for tier in sorted(suppliers)
    }
    single_points = {node for others in result["spof"].values() for node in others}
    return SupplyFigures(
        coverage_by_tier=coverage,
        spof=len(single_points),
        uncertified_on_critical_path=len(result["uncertified_on_critical_path"]),
    )
