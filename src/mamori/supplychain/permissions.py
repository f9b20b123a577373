"""Who may do what in the supplier survey. Views and services ask here, never decide themselves.

Visibility is the querysets' job (``Campaign.objects.visible_to``, ``Invitation.objects
.visible_to``): outsiders get 404. The rules:

- the campaign owner's members see the whole chain under its services; its administrators
  manage the campaign and invite Tier-1 suppliers;
- a respondent (the organisation an invitation is bound to) sees its own answers and who invited
  it, edits them, and invites its own suppliers; it does not see its suppliers' answers;
- before an invitation is bound, whoever opened the link in this browser session may answer it
  (the link is the credential) until the link expires, checked on every request; the first
  browser that saves answers holds the pen: others who hold the link read the answers but
  cannot change, decline or claim them;
- the scheme owner sees sector aggregates only;
- hearing notes with a supplier are the campaign owner's: its members read them, its
  administrators record them; the supplier never sees them;
- an organisation registered through a link is unverified until the scheme owner, or an
  administrator of the (verified) organisation that invited it, confirms it.
"""

from __future__ import annotations

import hashlib
import secrets

from django.db.models import Q

from mamori.organisations.access import Access
from mamori.organisations.models import EDITOR_ROLES, FINANCIAL_CATEGORIES, Organisation, Role
from mamori.supplychain.models import Invitation

SESSION_KEY = "supplychain_invitations"
# A random key per browser session; an invitation answered from it stores the key's digest.
ANSWER_KEY = "supplychain_answer_key"


def can_manage_services(access: Access, organisation) -> bool:
    return access.has_role(organisation.pk, Role.APPLICANT_ADMIN, Role.SCHEME_OWNER)


def can_create_campaign(access: Access, organisation) -> bool:
    """An institution's administrators, or the scheme owner for its own organisation."""
    if access.has_role(organisation.pk, Role.SCHEME_OWNER):
        return True
    return (
        access.has_role(organisation.pk, Role.APPLICANT_ADMIN)
        and organisation.category in FINANCIAL_CATEGORIES
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
    """The link was opened in this session, the invitation is not bound yet and the link has
    not expired: asked on every request, so a page opened before the expiry stops working."""
    return (
        invitation.organisation_id is None
        and not invitation.is_expired
        and invitation.pk in session.get(SESSION_KEY, [])
    )


def answer_key(session) -> str:
    """This browser's key for holding the pen on unbound invitations (made on first use)."""
    key = session.get(ANSWER_KEY)
    if not key:
        key = secrets.token_urlsafe(32)
        session[ANSWER_KEY] = key
    return key


def answer_lock_of(key: str | None) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest() if key else ""


def holds_pen(session, invitation) -> bool:
    """Nobody has answered this unbound invitation yet, or this browser did."""
    if not invitation.answer_lock:
        return True
    return secrets.compare_digest(invitation.answer_lock, answer_lock_of(session.get(ANSWER_KEY)))


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
        return holds_link(session, invitation) and holds_pen(session, invitation)
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
    return (
        not user.is_authenticated
        and holds_link(session, invitation)
        and holds_pen(session, invitation)
        and invitation.status != "declined"
    )


def can_confirm_identity(access: Access, organisation) -> bool:
    """Who may confirm an unverified organisation: the scheme owner, or an administrator of a
    verified organisation that invited it (as a survey owner, or as the respondent that passed
    the survey on to it)."""
    if organisation.identity_verified:
        return False
    if access.is_scheme_owner:
        return True
    administered = access.organisations_with({Role.APPLICANT_ADMIN})
    if not administered:
        return False
    verified = Organisation.objects.filter(pk__in=administered, identity_verified=True).values("pk")
    return (
        Invitation.objects.filter(organisation=organisation)
        .filter(
            Q(parent__isnull=True, campaign__owner_id__in=verified)
            | Q(parent__organisation_id__in=verified)
        )
        .exists()
    )


def can_view_sector(access: Access) -> bool:
    return access.is_scheme_owner
