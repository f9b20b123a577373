"""Analysis pages of the supply chain: a critical service's layered graph with its findings, and
concentration for an organisation and for the sector.

The figures come from the pure analysis (``analysis.analyse``) run on the exchange documents
that ``services.export_graph`` produces, and are laid out by the pure ``report`` module; this
module only reads the database, checks access and gives the page its words. Access: a service
page and an organisation page are for the owner organisation's members; the sector page is for
the scheme owner, and hides every figure computed from fewer than ``MIN_SECTOR_INSTITUTIONS``
institutions. Outsiders get 404.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mamori.organisations.access import Access
from mamori.organisations.models import Organisation
from mamori.supplychain import analysis, graph, permissions, report, services
from mamori.supplychain.models import (
    CriticalService,
    Disclosure,
    Entity,
    Invitation,
    InvitationStatus,
    Node,
)

MIN_SECTOR_INSTITUTIONS = services.MIN_SECTOR_INSTITUTIONS
WORDS = {
    "entity": gettext_lazy("Provider entity"),
    "parent": gettext_lazy("Ultimate parent"),
    "country": gettext_lazy("Country"),
    "all_tiers": gettext_lazy("All tiers"),
    "tier1": gettext_lazy("Tier 1 (direct providers)"),
    "low": gettext_lazy("unconcentrated"),
    "moderate": gettext_lazy("moderately concentrated"),
    "high": gettext_lazy("highly concentrated"),
    "others": gettext_lazy("Others"),
}


def sector_document() -> tuple[dict, list[Organisation]]:
    """Every organisation's graph that holds critical services, in one document (node ids
    prefixed with the owner, ``report.merged_document``)."""
    owners = list(
        Organisation.objects.filter(
            pk__in=Node.objects.filter(critical=True).values("owner_id")
        ).order_by("pk")
    )
    documents = ((f"o{owner.pk}/", services.export_graph(owner)) for owner in owners)
    return report.merged_document(documents), owners


def entity_labels(owner_ids) -> dict[str, str]:
    labels: dict[str, str] = {}
    entities = Entity.objects.filter(owner_id__in=owner_ids).select_related("organisation")
    for entity in entities:
        name = entity.organisation.name if entity.organisation_id else entity.name
        labels.setdefault(entity.exchange_id, name or entity.key)
    return labels


def concentration_context(document: dict, result: dict, labels: dict[str, str]) -> dict:
    def key_label(dimension: str, key: str) -> str:
        if dimension == "country":
            return key or _("unknown country")
        return labels.get(key) or key

    return {
        "scopes": report.concentration_view(
            document, result, key_label=key_label, word=lambda name: str(WORDS[name])
        ),
        "reach": report.reach_view(result, labels),
        "summary": result["summary"],
    }


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
    document = report.upstream_document(services.export_graph(service.owner), service.key)
    result = analysis.analyse(graph.from_dict(document))
    db_nodes = {
        n.key: n
        for n in Node.objects.filter(
            owner=service.owner, key__in=[n["id"] for n in document["nodes"]]
        ).select_related("entity__organisation")
    }
    entity_names = {}
    for key, node in db_nodes.items():
        entity = node.entity
        if entity is not None:
            entity_names[key] = entity.organisation.name if entity.organisation_id else entity.name
    view = report.service_view(
        document,
        service.key,
        result,
        node_names={key: node.name for key, node in db_nodes.items()},
        entity_names=entity_names,
        disclosure_labels=dict(Disclosure.choices),
        first_tier=service.first_tier,
    )
    upstream_pks = [n.pk for key, n in db_nodes.items() if key != service.key]
    answered = any(
        r["disclosure"] != Disclosure.NONE for r in view["rows"] if not r["critical"]
    ) or (
        Invitation.objects.filter(
            node_id__in=upstream_pks, status=InvitationStatus.ANSWERED
        ).exists()
    )
    return {**view, "document": document, "result": result, "answered": answered}


@login_required
def service_graph(request, pk: int):
    service = _get_service(request, pk)
    page = service_report(service)
    return render(
        request,
        "supplychain/service_graph.html",
        {
            "service": service,
            "report": page,
            "graph_data": {
                "root": service.key,
                "elements": page["elements"],
                "spof": page["result"]["spof"].get(service.key, []),
                "tier_labels": {
                    str(step): _("Tier 0 (manufacturers)")
                    if tier == 0
                    else _("Tier %(tier)s") % {"tier": tier}
                    for step, tier in page["tier_labels"].items()
                },
                "analysis": page["result"],
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
        context.update(concentration_context(document, result, entity_labels([organisation.pk])))
        context["services"] = CriticalService.objects.filter(owner=organisation)
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
        context.update(
            concentration_context(document, result, entity_labels([o.pk for o in owners]))
        )
    return render(request, "supplychain/concentration_sector.html", context)
