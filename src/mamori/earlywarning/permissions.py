"""Who may do what in early warning. Views, the API and services ask here.

Seeing is the querysets' job (``Asset.objects.visible_to``, ``Alert.objects.visible_to``):
an organisation's members see its assets and alerts; everyone else gets 404. Scheme owners
approve address blocks and AS numbers, settle overlapping claims and read the sector's
figures, never another organisation's alerts or raw rows.
"""

from __future__ import annotations

from mamori.earlywarning.models import Alert, Asset
from mamori.organisations.access import Access
from mamori.organisations.models import Role

# Who answers for the organisation's alerts: its administrators and contributors (the people
# who run its systems). Board signatories read them.
ALERT_HANDLER_ROLES = (Role.APPLICANT_ADMIN, Role.APPLICANT_CONTRIBUTOR)


def can_register(access: Access, organisation_id: int) -> bool:
    """An organisation's administrators and contributors register its assets."""
    return organisation_id in access.editor_organisation_ids


def can_withdraw(access: Access, asset: Asset) -> bool:
    return asset.organisation_id in access.editor_organisation_ids


def can_check_domain(access: Access, asset: Asset) -> bool:
    return asset.organisation_id in access.editor_organisation_ids or access.is_scheme_owner


def can_decide(access: Access) -> bool:
    """Approving or refusing an address block or AS number, settling an overlap."""
    return access.is_scheme_owner


def can_handle(access: Access, alert: Alert) -> bool:
    """Acknowledge, mitigate, close, accept the risk of, or dismiss an alert."""
    return access.has_role(alert.organisation_id, *ALERT_HANDLER_ROLES)


# Who manages the organisation's webhooks (their URLs and secrets reach its systems).
WEBHOOK_MANAGER_ROLES = (Role.APPLICANT_ADMIN,)


def can_manage_webhooks(access: Access, organisation_id: int) -> bool:
    """Create, turn off or on, and rotate the secret of an organisation's webhooks."""
    return access.has_role(organisation_id, *WEBHOOK_MANAGER_ROLES)


def can_set_notifications(access: Access, organisation_id: int) -> bool:
    """Choose one's own alert e-mail: any member of the organisation (members see its alerts)."""
    return organisation_id in access.organisation_ids


# --- pages and API (issue 11 §1, §3, §4) ---------------------------------------------------


def can_view_organisation(access: Access, organisation_id: int) -> bool:
    """An organisation's inbox and registry pages: its members (administrators, contributors and
    board signatories). Everyone else is answered 404."""
    return organisation_id in access.applicant_organisation_ids


def can_view_asset(access: Access, asset: Asset) -> bool:
    """One claim: its organisation's members, and the scheme owner, who decides on claims."""
    return can_view_organisation(access, asset.organisation_id) or access.is_scheme_owner


def can_download_permission(access: Access, asset: Asset) -> bool:
    """The hoster's permission attached to an approval: the scheme owner who decides and the
    organisation's administrators and contributors who asked for it."""
    return access.is_scheme_owner or asset.organisation_id in access.editor_organisation_ids


def can_set_deadlines(access: Access) -> bool:
    return access.is_scheme_owner


def can_read_sector(access: Access) -> bool:
    """The sector's figures (no organisation named in them): the scheme owner."""
    return access.is_scheme_owner
