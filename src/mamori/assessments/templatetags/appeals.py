"""``{% appeal_panel assessment %}`` on an assessment's page: its appeals, their audit trail and
the way to appeal or to review an appeal; ``{% appeals_waiting %}`` in the review queue: the
appeals an assessor of the body can take up."""

from __future__ import annotations

from django import template
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from mamori.assessments import appeals, permissions
from mamori.assessments.models import Appeal, AppealStatus
from mamori.audit.models import AuditEvent
from mamori.organisations.access import Access

register = template.Library()

ACTIONS = {
    "appeal.lodged": _("Appeal lodged"),
    "appeal.upheld": _("Appeal decided: the fail stands"),
    "appeal.overturned": _("Appeal decided: overturned"),
    "assessment.passed_on_appeal": _("Assessment passed on appeal"),
}


def _trail(assessment, appeal_ids: list[int]) -> dict[int, list[dict]]:
    """The audit trail's entries for each appeal, in order (one query, none without appeals)."""
    if not appeal_ids:
        return {}
    events = AuditEvent.objects.filter(
        Q(object_type="assessments.appeal", object_id__in=[str(pk) for pk in appeal_ids])
        | Q(
            object_type="assessments.assessment",
            object_id=str(assessment.pk),
            action="assessment.passed_on_appeal",
        )
    ).order_by("seq")
    trail: dict[int, list[dict]] = {pk: [] for pk in appeal_ids}
    for event in events:
        if event.object_type == "assessments.appeal":
            appeal_id = int(event.object_id)
        else:
            appeal_id = event.details.get("appeal")
        if appeal_id in trail:
            trail[appeal_id].append(
                {
                    "seq": event.seq,
                    "at": event.created_at,
                    "actor": event.actor_name,
                    "action": ACTIONS.get(event.action, event.action),
                }
            )
    return trail


@register.inclusion_tag("assessments/_appeal_panel.html", takes_context=True)
def appeal_panel(context, assessment):
    request = context.get("request")
    if request is None:
        return {"show": False}
    access = Access.for_request(request)
    items = list(
        Appeal.objects.filter(assessment=assessment).select_related(
            "decision", "decision__assessor", "lodged_by", "reviewer"
        )
    )
    trail = _trail(assessment, [appeal.pk for appeal in items])
    decision = appeals.appealed_decision(assessment)
    can_lodge = decision is not None and appeals.can_lodge(access, assessment)
    pending = next((appeal for appeal in items if appeal.is_pending), None)
    refusal = appeals.decide_refusal(access, assessment) if pending else None
    return {
        "show": bool(items) or can_lodge,
        "assessment": assessment,
        "appeals": [{"appeal": appeal, "trail": trail[appeal.pk]} for appeal in items],
        "can_lodge": can_lodge,
        "due": appeals.appeal_due(assessment, decision) if can_lodge else None,
        "pending": pending,
        "reviewer_side": permissions.is_reviewer(access, assessment),
        "can_decide": pending is not None and refusal is None,
        "refusal": refusal.message if refusal is not None else "",
    }


@register.inclusion_tag("assessments/_appeals_waiting.html", takes_context=True)
def appeals_waiting(context):
    request = context.get("request")
    if request is None:
        return {"rows": []}
    access = Access.for_request(request)
    rows = (
        Appeal.objects.filter(
            status=AppealStatus.PENDING,
            assessment__certification_body_id__in=access.assessor_body_ids,
        )
        .select_related("assessment", "assessment__organisation", "decision__assessor")
        .order_by("lodged_at", "pk")
    )
    return {"rows": list(rows), "user_id": access.user_id}
