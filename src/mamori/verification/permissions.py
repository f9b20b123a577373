"""Who may do what with hosts and their evidence. Views and the API ask here.

Seeing a host is the queryset's job (``Host.objects.visible_to(access)``): the members of the
host's organisation, and the assessors of a certification body the organisation submitted an
assessment to. Everyone else gets 404. Scheme owners see the aggregate figures on certificates,
not individual hosts: posture detail is the organisation's and its assessor's business.
"""

from __future__ import annotations

from mamori.organisations.access import Access
from mamori.verification.models import Host


def can_upload(access: Access, organisation_id: int) -> bool:
    """Evidence goes to the token's organisation, and only while its user is a member there
    (any role: whoever may create the organisation's agent tokens may upload with their own)."""
    return organisation_id in access.organisation_ids


def can_change_scope(access: Access, host: Host) -> bool:
    """The applicant's administrators and contributors decide which hosts are in scope."""
    return host.organisation_id in access.editor_organisation_ids


def can_deploy_agent(access: Access) -> bool:
    """Whoever sets up hosts for an organisation (its administrators and contributors) may
    download the agent."""
    return bool(access.editor_organisation_ids)


def is_member(access: Access, host: Host) -> bool:
    return host.organisation_id in access.organisation_ids
