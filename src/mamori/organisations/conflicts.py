"""Separation of duties: who may never hold which role, and who may never review whom.

The rules (issue 10, section 3):

- A scheme owner holds no role in an applicant organisation, and no applicant role anywhere:
  scheme owners see the sector in aggregate and never an applicant's answers.
- An assessor holds no role in an organisation whose assessments their certification body
  marks, and nobody holding a role in such an organisation becomes one of its assessors.
- An assessor is never assigned to, and never marks or decides, an assessment of an
  organisation they are a member of. (An organisation may choose a body one of whose assessors
  already belongs to it; that assessor is then simply left out of its review.)

An *applicant organisation* is one with an assessment or with a member in an applicant role.

These are checked when a role is offered (the invitation), when it is accepted, when a
membership is written (the member services and the staff admin's form), when a review
is assigned (automatically or by taking it over) and whenever it is marked or decided. The
checks ask the database, not the request's ``Access``: an API token's access is scoped to one
organisation and would not show the others a user belongs to.
"""

from __future__ import annotations

from django.db.models import Q
from django.utils.translation import gettext as _

from mamori.assessments.models import Assessment
from mamori.core.errors import NotAllowed
from mamori.organisations.models import APPLICANT_ROLES, Membership, Organisation, Role

CONFLICT_CODE = "conflict_of_interest"


def _applicant_organisations():
    return Q(memberships__role__in=APPLICANT_ROLES) | Q(assessments__isnull=False)


def membership_conflict(user_id: int | None, organisation: Organisation, role: str) -> str | None:
    """Why ``user_id`` may not hold ``role`` in ``organisation``, or ``None`` if they may.

    Always the same five queries, whatever the answer and whether the user exists (``None``
    asks about nobody): the member form's answer must not take longer for a user name that
    exists than for one that does not."""
    user_id = user_id or 0
    mine = Membership.objects.filter(user_id=user_id)
    held = list(mine.values_list("organisation_id", "role"))
    target_is_applicant = (
        Organisation.objects.filter(pk=organisation.pk).filter(_applicant_organisations()).exists()
    )
    target_bodies = set(
        Assessment.objects.filter(organisation_id=organisation.pk).values_list(
            "certification_body_id", flat=True
        )
    )
    holds_applicant_organisation = (
        Organisation.objects.filter(pk__in=mine.values("organisation_id"))
        .filter(_applicant_organisations())
        .exists()
    )
    bodies_marking_mine = set(
        Assessment.objects.filter(organisation_id__in=mine.values("organisation_id")).values_list(
            "certification_body_id", flat=True
        )
    )

    is_scheme_owner = any(held_role == Role.SCHEME_OWNER for _org, held_role in held)
    assessor_bodies = {org for org, held_role in held if held_role == Role.ASSESSOR}
    if (role == Role.SCHEME_OWNER and (target_is_applicant or holds_applicant_organisation)) or (
        is_scheme_owner and (target_is_applicant or role in APPLICANT_ROLES)
    ):
        return _(
            "A scheme owner cannot hold a role in an applicant organisation: scheme owners "
            "never see an applicant's answers."
        )
    if (role == Role.ASSESSOR and organisation.pk in bodies_marking_mine) or (
        assessor_bodies & target_bodies
    ):
        return _(
            "An assessor cannot hold a role in an organisation whose assessments their "
            "certification body marks (conflict of interest)."
        )
    return None


def is_member(user_id: int | None, organisation_id: int) -> bool:
    """Whether the user holds any role in the organisation (a question to the database)."""
    if user_id is None:
        return False
    return Membership.objects.filter(user_id=user_id, organisation_id=organisation_id).exists()


def impartiality_message() -> str:
    return _(
        "You are a member of this organisation, so you cannot review its assessments: another "
        "assessor of your certification body must."
    )


def require_impartial(user_id: int | None, organisation_id: int) -> None:
    """Refuse an assessor's review action on an organisation they belong to (403)."""
    if is_member(user_id, organisation_id):
        raise NotAllowed(impartiality_message(), code=CONFLICT_CODE)
