"""Analysis pages of the supply chain: a critical service's layered graph with its findings, and
concentration for an organisation and for the sector.

The figures come from the pure analysis (``analysis.analyse``) run on the exchange documents
that ``services.export_graph`` produces; this module only restricts, labels and lays them out.
Access: a service page and an organisation page are for the owner organisation's members; the
sector page is for the scheme owner, and hides every figure computed from fewer than
``MIN_SECTOR_INSTITUTIONS`` institutions. Outsiders get 404.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mamori.organisations.access import Access
from mamori.organisations.models import Organisation
from mamori.supplychain import analysis, graph, permissions, services
from mamori.supplychain.models import (
    CriticalService,
    Disclosure,
    Entity,
    Invitation,
    InvitationStatus,
    Node,
)

MIN_SECTOR_INSTITUTIONS = services.MIN_SECTOR_INSTITUTIONS
# Usual reading of the Herfindahl-Hirschman index (0–10,000): below 1,500 unconcentrated,
# 1,500–2,500 moderately concentrated, above 2,500 highly concentrated.
HHI_MODERATE = 1500
HHI_HIGH = 2500
TOP_BARS = 8
BAR_WIDTH = 360  # px in the SVG's 640-wide view box
DIMENSIONS = (
    ("entity", gettext_lazy("Provider entity")),
    ("parent", gettext_lazy("Ultimate parent")),
    ("country", gettext_lazy("Country")),
)
SCOPES = (
    ("all_tiers", gettext_lazy("All tiers")),
    ("tier1", gettext_lazy("Tier 1 (direct providers)")),
)


# --- Building the documents --------------------------------------------------------------------


def upstream_document(document: dict, root: str) -> dict:
    """The part of an exchange document that ``root`` depends on (``root`` included). Only
    ``root`` stays critical, so tiers count provider steps from it."""
    requirements_of: dict[str, list[dict]] = defaultdict(list)
    for requirement in document["requirements"]:
        requirements_of[requirement["node"]].append(requirement)
    seen = {root}
    queue = deque([root])
    while queue:
        node = queue.popleft()
        for requirement in requirements_of[node]:
            for provider in requirement["providers"]:
                if provider not in seen:
                    seen.add(provider)
                    queue.append(provider)
    return {
        "schema": document["schema"],
        "nodes": [
            {**node, "critical": node["id"] == root}
            for node in document["nodes"]
            if node["id"] in seen
        ],
        "requirements": [r for r in document["requirements"] if r["node"] in seen],
    }


def tiers_from(document: dict, root: str) -> dict[str, int]:
    """Fewest provider steps from ``root`` to every node it depends on."""
    requirements_of: dict[str, list[dict]] = defaultdict(list)
    for requirement in document["requirements"]:
        requirements_of[requirement["node"]].append(requirement)
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


def sector_document() -> tuple[dict, list[Organisation]]:
    """Every organisation's graph that holds critical services, in one document. Node ids are
    prefixed with the owner so that two graphs' ids never collide; entity ids are kept, so a
    claimed supplier (``org-N``) is one entity across every graph that names it."""
    owners = list(
        Organisation.objects.filter(
            pk__in=Node.objects.filter(critical=True).values("owner_id")
        ).order_by("pk")
    )
    nodes: list[dict] = []
    requirements: list[dict] = []
    for owner in owners:
        document = services.export_graph(owner)
        prefix = f"o{owner.pk}/"
        nodes.extend({**node, "id": prefix + node["id"]} for node in document["nodes"])
        requirements.extend(
            {
                "node": prefix + r["node"],
                "need": r["need"],
                "providers": [prefix + p for p in r["providers"]],
            }
            for r in document["requirements"]
        )
    return {"schema": graph.SCHEMA, "nodes": nodes, "requirements": requirements}, owners


# --- Concentration -----------------------------------------------------------------------------


def edge_tally(document: dict, scope: str) -> dict[str, Counter]:
    """Provider edges per entity, ultimate parent and country, counted as the analysis counts
    them (docs/supplychain-analysis.md): ``all_tiers`` every edge of every requirement in the
    upstream closure of the critical nodes, ``tier1`` the critical nodes' own requirements."""
    info = {n["id"]: n for n in document["nodes"]}
    critical = [n["id"] for n in document["nodes"] if n["critical"]]
    requirements_of: dict[str, list[dict]] = defaultdict(list)
    for requirement in document["requirements"]:
        requirements_of[requirement["node"]].append(requirement)
    if scope == "tier1":
        in_scope = set(critical)
    else:
        in_scope = set(critical)
        queue = deque(critical)
        while queue:
            node = queue.popleft()
            for requirement in requirements_of[node]:
                for provider in requirement["providers"]:
                    if provider not in in_scope:
                        in_scope.add(provider)
                        queue.append(provider)
    tally = {name: Counter() for name, _label in DIMENSIONS}
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


HHI_LEVEL_LABELS = {
    "low": gettext_lazy("unconcentrated"),
    "moderate": gettext_lazy("moderately concentrated"),
    "high": gettext_lazy("highly concentrated"),
}


def _bar(label: str, share: float, value: str, css: str = "") -> dict:
    return {
        "label": label if len(label) <= 30 else label[:29] + "…",
        "title": label,
        "share": share,
        "width": max(1, round(share * BAR_WIDTH)) if share > 0 else 0,
        "value": value,
        "css": css,
    }


def _with_rows(bars: list[dict]) -> dict:
    for position, bar in enumerate(bars):
        bar["y"] = position * 26
        bar["text_y"] = position * 26 + 15
        bar["value_x"] = 230 + bar["width"] + 6
    return {"bars": bars, "height": max(26, 26 * len(bars))}


def concentration_view(document: dict, result: dict, labels: dict[str, str]) -> list[dict]:
    """For each scope: the analysis' HHI and largest share per dimension, and bars of the
    largest shares (from the same edge count) for the charts."""
    figures = result["concentration"]["sector"]
    out = []
    for scope, scope_label in SCOPES:
        counted = figures[scope]
        tally = edge_tally(document, scope)
        dimensions = []
        hhi_bars = []
        for name, dimension_label in DIMENSIONS:
            h = counted[name]
            level = hhi_level(h["hhi"])
            largest = h["largest"]
            total = sum(tally[name].values())
            shares = []
            for key, count in tally[name].most_common(TOP_BARS):
                share = count / total
                shares.append(_bar(label_of(labels, name, key), share, f"{share:.0%}", name))
            rest = total - sum(count for _key, count in tally[name].most_common(TOP_BARS))
            if rest:
                shares.append(_bar(_("Others"), rest / total, f"{rest / total:.0%}", "others"))
            dimensions.append(
                {
                    "name": name,
                    "label": dimension_label,
                    "hhi": round(h["hhi"]),
                    "level": level,
                    "level_label": HHI_LEVEL_LABELS[level],
                    "largest": None
                    if largest is None
                    else {
                        "key": largest["key"],
                        "label": label_of(labels, name, largest["key"]),
                        "share": largest["share"],
                    },
                    "chart": _with_rows(shares),
                }
            )
            hhi_bars.append(
                _bar(
                    str(dimension_label),
                    min(h["hhi"], 10000) / 10000,
                    f"{round(h['hhi']):,}",
                    level,
                )
            )
        out.append(
            {
                "scope": scope,
                "label": scope_label,
                "edges": counted["edges"],
                "dimensions": dimensions,
                "hhi_chart": _with_rows(hhi_bars),
            }
        )
    return out


def label_of(labels: dict[str, str], dimension: str, key: str) -> str:
    if dimension == "country":
        return key or _("unknown country")
    return labels.get(key) or key


def entity_labels(owner_ids) -> dict[str, str]:
    labels: dict[str, str] = {}
    entities = Entity.objects.filter(owner_id__in=owner_ids).select_related("organisation")
    for entity in entities:
        name = entity.organisation.name if entity.organisation_id else entity.name
        labels.setdefault(entity.exchange_id, name or entity.key)
    return labels


def reach_view(result: dict, labels: dict[str, str], limit: int = 20) -> list[dict]:
    rows = []
    for key, item in list(result["reach"].items())[:limit]:
        rows.append({"key": key, "label": labels.get(key) or key, **item})
    return rows


# --- Pages -------------------------------------------------------------------------------------


def _access(request) -> Access:
    return Access.for_request(request)


def _get_service(request, pk: int) -> CriticalService:
    """The owner's members see its critical services; anyone else gets 404."""
    access = _access(request)
    return get_object_or_404(
        CriticalService.objects.filter(owner_id__in=access.organisation_ids).select_related(
            "owner", "entity"
        ),
        pk=pk,
    )


def service_report(service: Node) -> dict:
    """Everything the service page shows, from the owner's graph restricted to the service."""
    document = upstream_document(services.export_graph(service.owner), service.key)
    result = analysis.analyse(graph.from_dict(document))
    root = service.key
    tier = tiers_from(document, root)
    db_nodes = {
        n.key: n
        for n in Node.objects.filter(
            owner=service.owner, key__in=[n["id"] for n in document["nodes"]]
        ).select_related("entity__organisation")
    }
    spof = set(result["spof"].get(root, []))
    disclosure_labels = dict(Disclosure.choices)

    def name_of(key: str) -> str:
        node = db_nodes.get(key)
        return (node.name if node else "") or key

    rows = []
    for item in document["nodes"]:
        node = db_nodes.get(item["id"])
        entity = node.entity if node else None
        if entity is not None and entity.organisation_id:
            entity_name = entity.organisation.name
        else:
            entity_name = (entity.name if entity else "") or item["entity"]
        rows.append(
            {
                "id": item["id"],
                "name": name_of(item["id"]),
                "entity": entity_name,
                "tier": tier.get(item["id"]),
                "country": item["country"],
                "certified": item["certified"],
                "disclosure": item["disclosure"],
                "disclosure_label": disclosure_labels.get(item["disclosure"], item["disclosure"]),
                "spof": item["id"] in spof,
                "critical": item["id"] == root,
                "opaque": item["disclosure"] != Disclosure.FULL,
            }
        )
    rows.sort(key=lambda r: (r["tier"], not r["spof"], r["name"], r["id"]))

    elements = []
    for row in rows:
        classes = [
            c
            for c, on in (
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
    for position, requirement in enumerate(document["requirements"]):
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

    def named(keys) -> list[str]:
        return [name_of(k) for k in keys]

    on_path = [r for r in result["sole_source"] if r["tier"] is not None]
    findings = {
        "spof": named(result["spof"].get(root, [])),
        "uncertified_spof": named(result["uncertified_spof"].get(root, [])),
        "sole_source": [
            {**r, "node_name": name_of(r["node"]), "provider_name": name_of(r["provider"])}
            for r in on_path
        ],
        "hidden_convergence": [
            {
                **r,
                "node_name": name_of(r["node"]),
                "provider_names": named(r["providers"]),
                "converges_names": named(r["converges_on"]),
            }
            for r in result["hidden_convergence"]
            if r["tier"] is not None
        ],
        "single_country": [
            {**r, "node_name": name_of(r["node"]), "provider_names": named(r["providers"])}
            for r in result["single_country"]
            if r["tier"] is not None
        ],
        "opacity": result["opacity"].get(root),
        "uncertified_on_critical_path": named(result["uncertified_on_critical_path"]),
    }
    upstream_pks = [n.pk for key, n in db_nodes.items() if key != root]
    answered = any(r["disclosure"] != Disclosure.NONE for r in rows if not r["critical"]) or (
        Invitation.objects.filter(
            node_id__in=upstream_pks, status=InvitationStatus.ANSWERED
        ).exists()
    )
    return {
        "document": document,
        "result": result,
        "rows": rows,
        "elements": elements,
        "findings": findings,
        "suppliers": len(rows) - 1,
        "answered": answered,
        "tiers": max((r["tier"] for r in rows), default=0),
    }


@login_required
def service_graph(request, pk: int):
    service = _get_service(request, pk)
    report = service_report(service)
    return render(
        request,
        "supplychain/service_graph.html",
        {
            "service": service,
            "report": report,
            "graph_data": {
                "root": service.key,
                "elements": report["elements"],
                "spof": report["result"]["spof"].get(service.key, []),
                "tier_labels": {
                    str(tier): _("Tier %(tier)s") % {"tier": tier}
                    for tier in range(1, report["tiers"] + 1)
                },
                "analysis": report["result"],
            },
        },
    )


def _member_organisations_with_services(access: Access) -> list[Organisation]:
    return list(
        Organisation.objects.filter(
            pk__in=CriticalService.objects.filter(owner_id__in=access.organisation_ids).values(
                "owner_id"
            )
        ).order_by("pk")
    )


@login_required
def concentration_index(request):
    """The organisations whose concentration the user may see; one goes straight to its page."""
    organisations = _member_organisations_with_services(_access(request))
    if len(organisations) == 1:
        return redirect("supplychain:concentration", pk=organisations[0].pk)
    return render(request, "supplychain/concentration_index.html", {"organisations": organisations})


@login_required
def organisation_concentration(request, pk: int):
    access = _access(request)
    if pk not in access.organisation_ids:
        raise Http404
    organisation = get_object_or_404(Organisation, pk=pk)
    document = services.export_graph(organisation)
    has_services = any(n["critical"] for n in document["nodes"])
    context = {"organisation": organisation, "has_services": has_services}
    if has_services:
        result = analysis.analyse(graph.from_dict(document))
        labels = entity_labels([organisation.pk])
        context.update(
            {
                "scopes": concentration_view(document, result, labels),
                "reach": reach_view(result, labels),
                "summary": result["summary"],
                "services": CriticalService.objects.filter(owner=organisation),
            }
        )
    return render(request, "supplychain/concentration.html", context)


@login_required
def sector_concentration(request):
    if not permissions.can_view_sector(_access(request)):
        raise Http404
    document, owners = sector_document()
    result = analysis.analyse(graph.from_dict(document))
    institutions = result["summary"]["institutions"]
    shown = institutions >= MIN_SECTOR_INSTITUTIONS
    context = {
        "institutions": institutions,
        "shown": shown,
        "minimum": MIN_SECTOR_INSTITUTIONS,
    }
    if shown:
        labels = entity_labels([o.pk for o in owners])
        context.update(
            {
                "scopes": concentration_view(document, result, labels),
                "reach": reach_view(result, labels),
                "summary": result["summary"],
            }
        )
    return render(request, "supplychain/concentration_sector.html", context)
