"""Supplier fan-out: an alert on an organisation that supplies others becomes a
``supplier_exposure`` notice for each organisation whose supply-chain graph depends on it.

Each dependant's own graph (``supplychain.services.export_graph``: every tier its surveys
mapped) says which of its critical services rely on the supplier, directly or further up; the
existing structural analysis says where the supplier is a single point of failure, which makes
the notice critical. A notice shows only what both the alert's TLP label and the supplier's
disclosure allow:

- TLP:CLEAR or TLP:GREEN, and the supplier discloses fully: the supplier's name, the alert's
  type, category and severity;
- TLP:AMBER, or partial disclosure: the supplier's name, the type and severity;
- TLP:AMBER+STRICT, or no disclosure: only "a supplier of your critical service X has an open
  exposure of this severity";
- TLP:RED: no notice (it is for its named recipients only).

Notices follow their alert: a sighting of the supplier's alert again moves the notice's
``last_seen`` too (same key).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from mamori.earlywarning import alerts
from mamori.earlywarning.models import Alert, AlertType, Severity, Tlp

# What a supplier's alert must be to concern its customers.
FANNED_OUT_TYPES = frozenset(
    {AlertType.INCIDENT, AlertType.EXPOSURE, AlertType.SOFTWARE_VULNERABILITY}
)
FANNED_OUT_SEVERITIES = frozenset({Severity.CRITICAL, Severity.HIGH})

FULL, PARTIAL, MINIMAL = "full", "partial", "minimal"
_BY_TLP = {
    Tlp.CLEAR: FULL,
    Tlp.GREEN: FULL,
    Tlp.AMBER: PARTIAL,
    Tlp.AMBER_STRICT: MINIMAL,
}
_BY_DISCLOSURE = {"full": FULL, "partial": PARTIAL, "none": MINIMAL}
_RANK = {FULL: 0, PARTIAL: 1, MINIMAL: 2}


def detail_level(tlp: str, disclosure: str) -> str | None:
    """How much a notice may say (None: no notice at all)."""
    by_tlp = _BY_TLP.get(tlp)
    if by_tlp is None:
        return None
    by_disclosure = _BY_DISCLOSURE.get(disclosure, MINIMAL)
    return max(by_tlp, by_disclosure, key=_RANK.__getitem__)


def upstream_of(document: dict) -> dict[str, set[str]]:
    """Every node's transitive providers in a ``mamori.supplygraph/1`` document."""
    providers: dict[str, set[str]] = defaultdict(set)
    for requirement in document["requirements"]:
        providers[requirement["node"]].update(requirement["providers"])
    closure: dict[str, set[str]] = {}

    def reach(node: str) -> set[str]:
        if node in closure:
            return closure[node]
        closure[node] = seen = set()  # a cycle stops here
        stack = list(providers.get(node, ()))
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            stack.extend(providers.get(current, ()))
        return seen

    for node in document["nodes"]:
        reach(node["id"])
    return closure


def exposed_services(document: dict, analysis: dict, supplier_entity: str) -> list[dict]:
    """The critical services of a graph that rely on any node of ``supplier_entity``:
    ``{service, name, spof, disclosure}`` (``spof``: one of the supplier's nodes alone stops
    the service; ``disclosure``: the least the supplier's nodes there disclose)."""
    nodes = {node["id"]: node for node in document["nodes"]}
    supplier_nodes = {key for key, node in nodes.items() if node["entity"] == supplier_entity}
    if not supplier_nodes:
        return []
    upstream = upstream_of(document)
    found = []
    for key, node in nodes.items():
        if not node.get("critical") or node["entity"] == supplier_entity:
            continue
        relied_on = upstream.get(key, set()) & supplier_nodes
        if not relied_on:
            continue
        disclosures = {nodes[x].get("disclosure", "none") for x in relied_on}
        found.append(
            {
                "service": key,
                "name": node.get("name_en") or node["name"],
                "name_ja": node["name"],
                "spof": bool(set(analysis["spof"].get(key, ())) & supplier_nodes),
                "disclosure": min(disclosures, key=lambda d: _RANK[_BY_DISCLOSURE.get(d, MINIMAL)])
                if disclosures
                else "none",
            }
        )
    return found


def dependants_of(organisation_ids: Iterable[int]) -> dict[int, set[int]]:
    """For each supplier organisation, the organisations whose graphs name it."""
    from mamori.supplychain.models import Entity

    found: dict[int, set[int]] = defaultdict(set)
    for supplier, owner in Entity.objects.filter(
        organisation_id__in=set(organisation_ids)
    ).values_list("organisation_id", "owner_id"):
        if supplier != owner:
            found[supplier].add(owner)
    return found


def notices_for(raised: Iterable[Alert], *, now=None) -> alerts.Upserted:
    """Raise or refresh the supplier notices of these (new, reopened or seen again) alerts."""
    from mamori.organisations.models import Organisation
    from mamori.supplychain import analysis as structure
    from mamori.supplychain import graph
    from mamori.supplychain.services import export_graph

    eligible = [
        alert
        for alert in raised
        if alert.type in FANNED_OUT_TYPES
        and alert.severity in FANNED_OUT_SEVERITIES
        and alert.tlp != Tlp.RED
    ]
    if not eligible:
        return alerts.Upserted()
    dependants = dependants_of(alert.organisation_id for alert in eligible)
    graphs: dict[int, tuple[dict, dict]] = {}
    names = dict(Organisation.objects.filter(pk__in=dependants.keys()).values_list("pk", "name_ja"))
    sightings = []
    for alert in eligible:
        for owner in sorted(dependants.get(alert.organisation_id, ())):
            if owner not in graphs:
                document = export_graph(Organisation.objects.get(pk=owner))
                graphs[owner] = (document, structure.analyse(graph.from_dict(document)))
            document, analysis = graphs[owner]
            for service in exposed_services(document, analysis, f"org-{alert.organisation_id}"):
                level = detail_level(alert.tlp, service["disclosure"])
                if level is None:
                    continue
                evidence = {
                    "service": service["service"],
                    "service_name": service["name_ja"],
                    "service_name_en": service["name"],
                    "single_point_of_failure": service["spof"],
                    "severity": alert.severity,
                    "detail": level,
                }
                if level in (FULL, PARTIAL):
                    evidence["supplier"] = names.get(alert.organisation_id) or str(
                        alert.organisation_id
                    )
                    evidence["type"] = alert.type
                if level == FULL:
                    evidence["category"] = alert.category
                sightings.append(
                    alerts.Sighting(
                        organisation_id=owner,
                        type=AlertType.SUPPLIER_EXPOSURE,
                        key=alerts.alert_key("supplier", alert.pk, service["service"]),
                        category="supplier_exposure",
                        seen_at=alert.last_seen,
                        severity=Severity.CRITICAL if service["spof"] else Severity.HIGH,
                        control=alert.control,
                        evidence=evidence,
                        source_alert_id=alert.pk,
                    )
                )
    result = alerts.upsert(sightings, feed=None, now=now)
    # A notice is never less restricted than what it tells of.
    by_source = {alert.pk: alert for alert in eligible}
    for notice in result.new:
        notice.tlp = by_source[notice.source_alert_id].tlp
        notice.reliability = by_source[notice.source_alert_id].reliability
        notice.credibility = by_source[notice.source_alert_id].credibility
    Alert.objects.bulk_update(result.new, ["tlp", "reliability", "credibility"])
    return result
