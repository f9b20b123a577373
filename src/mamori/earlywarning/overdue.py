"""Open alerts past their deadline to acknowledge, for the host page and the certificate page's
continuous-assurance panel.

Only the organisation's members and the assessors who may see the page are told: members see
which alerts (with links to them), assessors only how many and of which types (alerts are the
organisation's own; an assessor's link would lead nowhere). The scheme owner, who also sees the
certificate page, and every public page (verification, register, public API) are told nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count
from django.utils import timezone

from mamori.earlywarning import display
from mamori.earlywarning.models import Alert, AlertType
from mamori.organisations.access import Access

# A member's panel lists this many; the count covers them all.
LISTED = 10


@dataclass(frozen=True)
class Overdue:
    count: int
    by_type: list[tuple[str, int]]
    # The alerts themselves, for members only (empty for assessors).
    alerts: list[Alert] = field(default_factory=list)
    members_view: bool = False
    organisation_id: int | None = None


def _viewer(access: Access, organisation_id: int) -> str | None:
    if organisation_id in access.applicant_organisation_ids:
        return "member"
    if access.is_assessor and not access.is_scheme_owner:
        return "assessor"
    return None


def overdue_alerts(
    access: Access, organisation_id: int, *, host_id: int | None = None, now=None
) -> Overdue | None:
    """The organisation's (or one of its hosts') open alerts past their deadline, as the viewer
    may be told of them; None when the viewer is told nothing. The caller has checked that the
    viewer may see the page it is shown on."""
    viewer = _viewer(access, organisation_id)
    if viewer is None:
        return None
    late = Alert.objects.open().filter(
        organisation_id=organisation_id, due_at__lt=now or timezone.now()
    )
    if host_id is not None:
        late = late.filter(host_id=host_id)
    counts = dict(
        late.order_by().values("type").annotate(number=Count("pk")).values_list("type", "number")
    )
    members_view = viewer == "member"
    listed = (
        list(late.select_related("asset").order_by("due_at", "pk")[:LISTED])
        if members_view and counts
        else []
    )
    for alert in listed:
        alert.category_label = display.category_label(alert)
    return Overdue(
        count=sum(counts.values()),
        by_type=_labelled(counts),
        alerts=listed,
        members_view=members_view,
        organisation_id=organisation_id,
    )


def _labelled(counts: dict[str, int]) -> list[tuple[str, int]]:
    labels = dict(AlertType.choices)
    return [
        (labels.get(value, value), counts[value]) for value in AlertType.values if value in counts
    ]
