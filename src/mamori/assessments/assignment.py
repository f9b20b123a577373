"""Who reviews a new submission: each certification body's assignment rule, visible on the
review queue and changeable by the body's assessors or the scheme owner (audited).

``least_loaded`` (the default) gives it to the assessor with the fewest open reviews,
``round_robin`` to each assessor in turn, ``queue`` to nobody: it waits under "unassigned" in
the queue until an assessor takes it.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Q
from django.utils.translation import gettext as _

from mamori.assessments.models import REVIEW_STATES, AssignmentRule, ReviewAssignment
from mamori.audit.services import record
from mamori.core.errors import MamoriError, NotAllowed
from mamori.organisations.access import Access
from mamori.organisations.models import Category, Membership, Organisation, Role


def rule_of(certification_body_id: int) -> str:
    found = (
        ReviewAssignment.objects.filter(certification_body_id=certification_body_id)
        .values_list("rule", flat=True)
        .first()
    )
    return found or AssignmentRule.LEAST_LOADED


def _assessors(certification_body_id: int, organisation_id: int | None = None):
    """The body's active assessors; with ``organisation_id``, those impartial towards it (no
    role in that organisation: see ``organisations.conflicts``)."""
    assessors = Membership.objects.filter(
        organisation_id=certification_body_id, role=Role.ASSESSOR, user__is_active=True
    )
    if organisation_id is not None:
        assessors = assessors.exclude(
            user_id__in=Membership.objects.filter(organisation_id=organisation_id).values("user_id")
        )
    return assessors.order_by("created_at", "pk")


def _least_loaded(certification_body_id: int, organisation_id: int | None):
    """The assessor with the fewest open reviews (ties: the longest-standing member)."""
    membership = (
        _assessors(certification_body_id, organisation_id)
        .annotate(
            open_reviews=Count("user__reviews", filter=Q(user__reviews__state__in=REVIEW_STATES))
        )
        .order_by("open_reviews", "created_at", "pk")
        .select_related("user")
        .first()
    )
    return membership.user if membership else None


def pick_assessor(certification_body_id: int, organisation_id: int | None = None):
    """The assessor a new submission of ``organisation_id`` goes to under the body's rule, or
    None (the queue, or a body without an active assessor who is impartial towards the
    organisation). Call inside the submission's transaction."""
    setting = (
        ReviewAssignment.objects.select_for_update()  # one turn per submission in round robin
        .filter(certification_body_id=certification_body_id)
        .first()
    )
    rule = setting.rule if setting else AssignmentRule.LEAST_LOADED
    if rule == AssignmentRule.QUEUE:
        return None
    if rule == AssignmentRule.LEAST_LOADED:
        return _least_loaded(certification_body_id, organisation_id)
    users = [
        membership.user
        for membership in _assessors(certification_body_id, organisation_id).select_related("user")
    ]
    if not users:
        return None
    previous = [index for index, user in enumerate(users) if user.pk == setting.last_assigned_id]
    chosen = users[(previous[0] + 1) % len(users)] if previous else users[0]
    setting.last_assigned = chosen
    setting.save(update_fields=["last_assigned", "updated_at"])
    return chosen


def can_change(access: Access, certification_body_id: int) -> bool:
    """The body's own assessors (who have passed the second factor to get here) and the scheme
    owner set how the body's submissions are assigned."""
    return access.is_scheme_owner or access.has_role(certification_body_id, Role.ASSESSOR)


def bodies_for(access: Access):
    """The certification bodies whose rule this user sees and may change."""
    bodies = Organisation.objects.filter(category=Category.CERTIFICATION_BODY)
    if not access.is_scheme_owner:
        bodies = bodies.filter(pk__in=access.assessor_body_ids)
    return bodies.order_by("name_ja", "pk")


def set_rule(user, access: Access, certification_body_id: int, rule: str) -> ReviewAssignment:
    if rule not in AssignmentRule.values:
        raise MamoriError(_("Choose how submissions are assigned."), field="rule")
    if not can_change(access, certification_body_id):
        raise NotAllowed(
            _("Only the body's assessors or the scheme owner can change how it assigns reviews.")
        )
    with transaction.atomic():
        body = Organisation.objects.get(
            pk=certification_body_id, category=Category.CERTIFICATION_BODY
        )
        setting, _created = ReviewAssignment.objects.select_for_update().get_or_create(
            certification_body=body
        )
        before = setting.rule
        if before == rule:
            return setting
        setting.rule = rule
        setting.updated_by = user
        setting.save(update_fields=["rule", "updated_by", "updated_at"])
        record(
            user,
            "assessment.assignment_rule_changed",
            body,
            organisation=body,
            details={"from": before, "to": rule},
        )
    return setting
