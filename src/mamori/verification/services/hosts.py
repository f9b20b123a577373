"""Reading and changing hosts for the pages and the API: each collection's newest evaluation,
and whether a host is in the certificate's scope."""

from __future__ import annotations

from django.db import transaction
from django.db.models import OuterRef, Subquery

from mamori.audit.services import record
from mamori.verification.models import Evaluation, Evidence, Host


def with_newest_evaluations(collections) -> list[Evidence]:
    """Give each evidence its newest evaluation (without the full result) as
    ``newest_evaluation``: two queries however many collections and re-evaluations."""
    collections = list(collections)
    if not collections:
        return collections
    newest = (
        Evaluation.objects.filter(evidence=OuterRef("pk"))
        .order_by("-evaluated_at", "-pk")
        .values("pk")[:1]
    )
    ids = dict(
        Evidence.objects.filter(pk__in=[evidence.pk for evidence in collections])
        .annotate(newest=Subquery(newest))
        .values_list("pk", "newest")
    )
    evaluations = Evaluation.objects.defer("result", "findings_en").in_bulk(
        [pk for pk in ids.values() if pk is not None]
    )
    for evidence in collections:
        evidence.newest_evaluation = evaluations.get(ids.get(evidence.pk))
    return collections


def set_in_scope(user, host_id: int, in_scope: bool) -> Host:
    """Put a host in or out of the certificate's scope (audited when it changes)."""
    with transaction.atomic():
        host = (
            Host.objects.select_for_update(of=("self",))
            .select_related("organisation")
            .get(pk=host_id)
        )
        if host.in_scope == in_scope:
            return host
        host.in_scope = in_scope
        host.save(update_fields=["in_scope", "updated_at"])
        record(
            user,
            "host.scope_changed",
            host,
            organisation=host.organisation,
            details={"in_scope": in_scope},
        )
    return host
