"""What a user may do to one Plus audit. Views and the API ask here, never decide themselves.

Visibility (404 for outsiders) is the queryset's job: ``PlusAudit.objects.visible_to(access)``.
"""

from __future__ import annotations

from mamori.organisations.access import Access
from mamori.organisations.models import Role


def is_applicant(access: Access, audit) -> bool:
    return audit.organisation_id in access.applicant_organisation_ids


def is_editor(access: Access, audit) -> bool:
    """The organisation's administrators and contributors list devices and addresses."""
    return audit.organisation_id in access.editor_organisation_ids


def is_reviewer(access: Access, audit) -> bool:
    """An assessor of the certification body the audit belongs to."""
    return audit.certification_body_id in access.assessor_body_ids


def is_assigned(access: Access, audit) -> bool:
    return is_reviewer(access, audit) and audit.assessor_id == access.user_id


def may_edit_frame(access: Access, audit) -> bool:
    """Who may list devices and public addresses (the state is checked separately)."""
    return is_editor(access, audit) or is_assigned(access, audit)


def can_edit_frame(access: Access, audit) -> bool:
    return may_edit_frame(access, audit) and audit.is_active and not audit.is_lapsed


def can_test(access: Access, audit) -> bool:
    """Confirm kinds, draw, record and decide: the assigned assessor while the audit runs."""
    return is_assigned(access, audit) and audit.is_active and not audit.is_lapsed


def can_take(access: Access, audit) -> bool:
    return (
        is_reviewer(access, audit)
        and audit.assessor_id != access.user_id
        and audit.is_active
        and not audit.is_lapsed
    )


def can_request(access: Access, certificate) -> bool:
    """The certified organisation's applicant administrator, or an assessor of the body."""
    return (
        access.has_role(certificate.organisation_id, Role.APPLICANT_ADMIN)
        or certificate.certification_body_id in access.assessor_body_ids
    )
