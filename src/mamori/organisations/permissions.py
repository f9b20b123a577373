"""Who may see and manage an organisation's people. Views and services ask here.

Visibility of the organisation itself is the queryset's job (``Organisation.objects.visible_to``);
these checks answer the next questions: who may see its member list, and who may change it.
"""

from __future__ import annotations

from mamori.organisations.access import Access
from mamori.organisations.models import APPLICANT_ROLES, Membership, Organisation, Role


def can_view_members(access: Access, organisation: Organisation) -> bool:
    """Its own members read the list; scheme owners manage every organisation. An assessor who
    sees an applicant because of a submission does not see who works there."""
    return organisation.pk in access.organisation_ids or access.is_scheme_owner


def grantable_roles(access: Access, organisation: Organisation) -> list[str]:
    """The roles this user may grant and take away in this organisation, in display order.

    Applicant administrators manage the applicant roles of their own organisation. Only scheme
    owners grant the roles that carry scheme-wide power (assessor, scheme owner).
    """
    if access.is_scheme_owner:
        return list(Role.values)
    if access.has_role(organisation.pk, Role.APPLICANT_ADMIN):
        return [role for role in Role.values if role in APPLICANT_ROLES]
    return []


def offered_roles(access: Access, organisation: Organisation) -> list[str]:
    """The roles a form offers: those the user may grant that also make sense here. Assessors
    exist only in certification bodies (``Membership.clean`` refuses them elsewhere)."""
    return [
        role
        for role in grantable_roles(access, organisation)
        if role != Role.ASSESSOR or organisation.is_certification_body
    ]


def can_manage_members(access: Access, organisation: Organisation) -> bool:
    return bool(grantable_roles(access, organisation))


def can_grant(access: Access, organisation: Organisation, role: str) -> bool:
    return role in grantable_roles(access, organisation)


def can_remove(access: Access, membership: Membership) -> bool:
    """Taking a role away needs the same right as granting it."""
    return can_grant(access, membership.organisation, membership.role)


def can_create_organisation(access: Access) -> bool:
    return access.is_scheme_owner
