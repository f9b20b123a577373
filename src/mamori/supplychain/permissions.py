"""Who may do what in the supplier survey. Views and services ask here, never decide themselves.

Visibility is the querysets' job (``Campaign.objects.visible_to``, ``Invitation.objects
.visible_to``): outsiders get 404. The rules:

- the campaign owner's members see the whole chain under its services; its administrators
  manage the campaign and invite Tier-1 suppliers;
- a respondent (the organisation an invitation is bound to) sees its own answers and who invited
  it, edits them, and invites its own suppliers; it does not see its suppliers' answers;
- before an invitation is bound, whoever opened the link in this browser session may answer it
  (the link is the credential), and then claim an organisation;
- the scheme owner sees sector aggregates only;
- hearing notes with a supplier are the campaign owner's: its members read them, its
  administrators record them; the supplier never sees them.
"""

from __future__ import annotations

from mamori.organisations.access import Access
from mamori.organisations.models import EDITOR_ROLES, Category, Role

SESSION_KEY = "supplychain_invitations"


def can_manage_services(access: Access, organisation) -> bool:
    return access.has_role(organisation.pk, Role.APPLICANT_ADMIN, Role.SCHEME_OWNER)


def can_create_campaign(access: Access, organisation) -> bool:
    """An institution's administrators, or the scheme owner for its own organisation."""
    if access.has_role(organisation.pk, Role.SCHEME_OWNER):
        return True
    return (
        access.has_role(organisation.pk, Role.APPLICANT_ADMIN)
        and organisation.category == Category.FINANCIAL_INSTITUTION
    )


def campaign_organisations(access: Access, organisations) -> list:
    return [o for o in organisations if can_create_campaign(access, o)]


def can_manage_campaign(access: Access, campaign) -> bool:
    return access.has_role(campaign.owner_id, Role.APPLICANT_ADMIN, Role.SCHEME_OWNER)


def is_campaign_member(access: Access, campaign) -> bool:
    return campaign.owner_id in access.organisation_ids


def can_record_hearing(access: Access, campaign) -> bool:
    """Hearing notes are the survey owner's record: its administrators write them, as they
    invite; every member of the owner reads them; the supplier heard does not."""
    return can_manage_campaign(access, campaign)


def can_read_hearings(access: Access, campaign) -> bool:
    return is_campaign_member(access, campaign)


def can_answer_for(access: Access, organisation) -> bool:
    """Answering binds the organisation: its administrators and contributors may."""
    return any(access.has_role(organisation.pk, role) for role in EDITOR_ROLES)


def is_respondent(access: Access, invitation) -> bool:
    return (
        invitation.organisation_id is not None
        and invitation.organisation_id in access.organisation_ids
    )


def holds_link(session, invitation) -> bool:
    """The link was opened in this session and the invitation is not bound yet."""
    return invitation.organisation_id is None and invitation.pk in session.get(SESSION_KEY, [])


def remember_link(session, invitation) -> None:
    held = [pk for pk in session.get(SESSION_KEY, []) if pk != invitation.pk]
    session[SESSION_KEY] = [*held, invitation.pk][-20:]


def can_view_response(access: Access, session, invitation) -> bool:
    return (
        is_respondent(access, invitation)
        or is_campaign_member(access, invitation.campaign)
        or holds_link(session, invitation)
    )


def can_edit_response(access: Access, session, invitation) -> bool:
    if invitation.status == "declined":
        return False
    if invitation.organisation_id is None:
        return holds_link(session, invitation)
    return can_answer_for_id(access, invitation.organisation_id)


def can_answer_for_id(access: Access, organisation_id: int) -> bool:
    return any(access.has_role(organisation_id, role) for role in EDITOR_ROLES)


def can_invite_from(access: Access, invitation) -> bool:
    """Inviting one's own suppliers needs a bound organisation (an account)."""
    return (
        invitation.organisation_id is not None
        and invitation.status != "declined"
        and can_answer_for_id(access, invitation.organisation_id)
    )


def can_claim(user, session, invitation) -> bool:
    return not user.is_authenticated and holds_link(session, invitation)


def can_view_sector(access: Access) -> bool:
    return access.is_scheme_owner
