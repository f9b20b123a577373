"""Organisations and their people: every change goes through here.

Each function checks permission, writes and appends to the audit trail in one transaction, so a
refused or failed request leaves nothing half-written. Changes to a member list lock the
organisation row first, which serialises them: two administrators removing each other at the
same moment cannot both pass the "last administrator" check.
"""

from __future__ import annotations

import datetime as dt
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import IntegrityError, transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from mamori.audit.services import record
from mamori.core.errors import MamoriError, NotAllowed, WrongState
from mamori.core.text import validate_single_line
from mamori.organisations import conflicts, permissions
from mamori.organisations.access import Access
from mamori.organisations.models import (
    APPLICANT_ROLES,
    InvitationState,
    Membership,
    MembershipInvitation,
    Organisation,
    Role,
)

# How long an invitation to join an organisation waits for its answer.
MEMBERSHIP_INVITATION_TTL = dt.timedelta(days=14)

# Letters and digits that cannot be mistaken for one another when read aloud or retyped.
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # noqa: S105 - an alphabet, not a secret
PASSWORD_GROUPS = 4
PASSWORD_GROUP_LENGTH = 5


def generate_initial_password() -> str:
    """Twenty random characters (about 99 bits) in groups of five, e.g. ``k7mqz-...``: strong
    enough for any password rule, and easy to pass on to the new user."""
    return "-".join(
        "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_GROUP_LENGTH))
        for _ in range(PASSWORD_GROUPS)
    )


def _initial_password_for(user) -> str:
    """A generated password that passes the site's password rules for this user. One that
    resembles the chosen user name is astronomically unlikely; it is simply drawn again. Rules
    that no generated password can meet are a configuration error, and say so."""
    for _attempt in range(10):
        password = generate_initial_password()
        try:
            validate_password(password, user)
        except ValidationError:
            continue
        return password
    raise ImproperlyConfigured("AUTH_PASSWORD_VALIDATORS refuse every generated password.")


def _lock(organisation_id: int) -> Organisation:
    try:
        return Organisation.objects.select_for_update().get(pk=organisation_id)
    except Organisation.DoesNotExist:
        raise WrongState(_("This organisation no longer exists.")) from None


def _require_grant(access: Access, organisation: Organisation, role: str) -> None:
    if not permissions.can_manage_members(access, organisation):
        raise NotAllowed(_("You cannot manage this organisation's members."))
    if not permissions.can_grant(access, organisation, role):
        raise NotAllowed(
            _("You cannot grant the role %(role)s here.") % {"role": Role(role).label}
            if role in Role.values
            else _("Unknown role."),
            field="role",
        )


def _add(actor, organisation: Organisation, user, role: str, **details) -> Membership:
    if Membership.objects.filter(user=user, organisation=organisation, role=role).exists():
        raise MamoriError(
            _("%(user)s already has this role here.") % {"user": user.get_username()},
            field="username",
        )
    membership = Membership(user=user, organisation=organisation, role=role)
    try:
        membership.full_clean()
    except ValidationError as exc:
        # The model's own rules, e.g. assessors belong to a certification body.
        errors = exc.message_dict
        field = "role" if "role" in errors else None
        raise MamoriError(errors.get("role", exc.messages)[0], field=field) from None
    reason = conflicts.membership_conflict(user.pk, organisation, role)
    if reason:
        raise NotAllowed(reason, field="role", code=conflicts.CONFLICT_CODE)
    membership.save()
    record(
        actor,
        "membership.added",
        membership,
        organisation=organisation,
        details={"user": user.get_username(), "user_id": user.pk, "role": role, **details},
    )
    return membership


# --- Invitations: nobody joins an organisation without accepting --------------------------------


def _date(moment) -> str:
    return formats.date_format(timezone.localtime(moment))


def invite_member(
    actor, access: Access, organisation_id: int, username: str, role: str
) -> MembershipInvitation:
    """Offer a role to the holder of an account, by exact user name. They become a member only
    when they accept it, signed in, before it expires (``accept_invitation``).

    The answer is the same, and takes the same queries, whether the user name exists or not
    and whether its holder could take the role: an invitation that can reach nobody (no such
    account, or a conflict of interest) is recorded like the others and expires unanswered.
    Only a scheme owner, who manages every organisation's members anyway, is told of a conflict
    of interest at once."""
    User = get_user_model()  # noqa: N806 - the model class, named as Django names it
    with transaction.atomic():
        organisation = _lock(organisation_id)
        _require_grant(access, organisation, role)
        if role == Role.ASSESSOR and not organisation.is_certification_body:
            # The model's rule (Membership.clean), which holds for anyone: asked now, not only
            # when the invitation is accepted.
            raise MamoriError(_("Assessors belong to a certification body."), field="role")
        now = timezone.now()
        user = User.objects.filter(username=username, is_active=True).first()
        if Membership.objects.filter(
            user__username=username, organisation=organisation, role=role
        ).exists():
            # The member list shows who holds which role: this tells the inviter nothing new.
            raise MamoriError(
                _("%(user)s already has this role here.") % {"user": username}, field="username"
            )
        waiting = (
            MembershipInvitation.objects.open(now)
            .filter(organisation=organisation, username=username, role=role)
            .first()
        )
        if waiting is not None:
            # Listed on the member page, whether the name exists or not: nothing new either.
            raise MamoriError(
                _("%(user)s is already invited to this role; the invitation expires on %(date)s.")
                % {"user": username, "date": _date(waiting.expires_at)},
                field="username",
            )
        reason = conflicts.membership_conflict(user.pk if user else None, organisation, role)
        if reason and access.is_scheme_owner:
            raise NotAllowed(reason, field="role", code=conflicts.CONFLICT_CODE)
        reaches = user if user is not None and reason is None else None
        invitation = MembershipInvitation.objects.create(
            organisation=organisation,
            username=username,
            user=reaches,
            role=role,
            invited_by=actor,
            expires_at=now + MEMBERSHIP_INVITATION_TTL,
        )
        record(
            actor,
            "membership.invited",
            invitation,
            organisation=organisation,
            details={
                "username": username,
                "role": role,
                "expires_at": invitation.expires_at.isoformat(),
                # For the trail's readers (staff); the inviter's page never shows these.
                "user_id": user.pk if user is not None else None,
                "withheld": None if reaches is not None else ("conflict" if user else "unknown"),
            },
        )
    return invitation


def _lock_invitation(user, invitation_id: int) -> tuple[MembershipInvitation, Organisation]:
    """The user's own invitation, still waiting, locked after its organisation (the order every
    member change locks in)."""
    organisation_id = (
        MembershipInvitation.objects.filter(pk=invitation_id, user_id=user.pk)
        .values_list("organisation_id", flat=True)
        .first()
    )
    if organisation_id is None:
        raise WrongState(_("This invitation is not addressed to you or no longer exists."))
    organisation = _lock(organisation_id)
    invitation = (
        MembershipInvitation.objects.select_for_update()
        .select_related("invited_by")
        .get(pk=invitation_id)
    )
    if invitation.state != InvitationState.PENDING:
        raise WrongState(
            _("This invitation has already been answered or withdrawn (%(state)s).")
            % {"state": invitation.get_state_display()}
        )
    return invitation, organisation


def accept_invitation(user, invitation_id: int) -> Membership:
    """The invited user takes the role. Everything is checked again now: the invitation has not
    expired, the inviter may still grant the role, and no conflict of interest has arisen."""
    with transaction.atomic():
        invitation, organisation = _lock_invitation(user, invitation_id)
        if invitation.is_expired:
            raise WrongState(
                _("This invitation expired on %(date)s. Ask for a new one.")
                % {"date": _date(invitation.expires_at)}
            )
        inviter = invitation.invited_by
        if not inviter.is_active or not permissions.can_grant(
            Access.for_user(inviter), organisation, invitation.role
        ):
            raise WrongState(
                _(
                    "The person who invited you can no longer grant this role. Ask the "
                    "organisation's administrator to invite you again."
                )
            )
        membership = _add(
            user,
            organisation,
            user,
            invitation.role,
            invitation=invitation.pk,
            invited_by=inviter.get_username(),
        )
        invitation.state = InvitationState.ACCEPTED
        invitation.answered_at = timezone.now()
        invitation.save(update_fields=["state", "answered_at", "updated_at"])
        record(
            user,
            "membership.invitation_accepted",
            invitation,
            organisation=organisation,
            details={"role": invitation.role, "membership": membership.pk},
        )
    return membership


def decline_invitation(user, invitation_id: int) -> MembershipInvitation:
    with transaction.atomic():
        invitation, organisation = _lock_invitation(user, invitation_id)
        invitation.state = InvitationState.DECLINED
        invitation.answered_at = timezone.now()
        invitation.save(update_fields=["state", "answered_at", "updated_at"])
        record(
            user,
            "membership.invitation_declined",
            invitation,
            organisation=organisation,
            details={"role": invitation.role},
        )
    return invitation


def cancel_invitation(actor, access: Access, organisation_id: int, invitation_id: int) -> None:
    """Withdraw an invitation not answered yet: it takes the right to grant its role."""
    with transaction.atomic():
        organisation = _lock(organisation_id)
        invitation = (
            MembershipInvitation.objects.select_for_update()
            .filter(pk=invitation_id, organisation=organisation)
            .first()
        )
        if invitation is None:
            raise WrongState(_("This invitation no longer exists."))
        _require_grant(access, organisation, invitation.role)
        if invitation.state != InvitationState.PENDING:
            raise WrongState(
                _("This invitation has already been answered or withdrawn (%(state)s).")
                % {"state": invitation.get_state_display()}
            )
        invitation.state = InvitationState.CANCELLED
        invitation.answered_at = timezone.now()
        invitation.save(update_fields=["state", "answered_at", "updated_at"])
        record(
            actor,
            "membership.invitation_cancelled",
            invitation,
            organisation=organisation,
            details={"username": invitation.username, "role": invitation.role},
        )


def create_user_and_add(
    actor,
    access: Access,
    organisation_id: int,
    *,
    username: str,
    display_name: str,
    email: str,
    language: str,
    role: str,
) -> tuple[Membership, str]:
    """Create a user with a random initial password and give them a role. The password is
    returned to be shown once; only its hash is stored and it never reaches the audit trail."""
    User = get_user_model()  # noqa: N806 - the model class, named as Django names it
    try:
        with transaction.atomic():
            organisation = _lock(organisation_id)
            _require_grant(access, organisation, role)
            if User.objects.filter(username__iexact=username).exists():
                raise MamoriError(_("This user name is already taken."), field="username")
            try:
                validate_single_line(display_name)
            except ValidationError as exc:
                raise MamoriError(exc.messages[0], field="display_name") from None
            user = User(
                username=username, display_name=display_name, email=email, language=language
            )
            try:
                user.full_clean(exclude=["password"])
            except ValidationError as exc:
                field, messages = next(iter(exc.message_dict.items()))
                raise MamoriError(messages[0], field=field) from None
            password = _initial_password_for(user)
            user.set_password(password)
            user.save()
            record(
                actor,
                "user.created",
                user,
                organisation=organisation,
                details={"username": user.username, "language": user.language},
            )
            membership = _add(actor, organisation, user, role)
    except IntegrityError:
        # The same user name was taken between the check and the insert.
        raise MamoriError(_("This user name is already taken."), field="username") from None
    return membership, password


def remove_member(actor, access: Access, organisation_id: int, membership_id: int) -> None:
    """Take one role away from one user. Refused when it would leave the organisation's other
    applicant members without an administrator, or a scheme owner without their own role."""
    with transaction.atomic():
        organisation = _lock(organisation_id)
        membership = (
            Membership.objects.select_related("user")
            .filter(pk=membership_id, organisation=organisation)
            .first()
        )
        if membership is None:
            raise WrongState(_("This membership was already removed."))
        membership.organisation = organisation
        if not permissions.can_manage_members(access, organisation):
            raise NotAllowed(_("You cannot manage this organisation's members."))
        if not permissions.can_remove(access, membership):
            raise NotAllowed(
                _("You cannot take away the role %(role)s.")
                % {"role": membership.get_role_display()}
            )
        others = Membership.objects.filter(organisation=organisation).exclude(pk=membership.pk)
        if (
            membership.role == Role.APPLICANT_ADMIN
            and not others.filter(role=Role.APPLICANT_ADMIN).exists()
            and others.filter(role__in=APPLICANT_ROLES).exists()
        ):
            raise WrongState(
                _(
                    "%(user)s is the organisation's last applicant administrator. Make another "
                    "member an administrator first."
                )
                % {"user": membership.user}
            )
        if (
            membership.role == Role.SCHEME_OWNER
            and membership.user_id == actor.pk
            and not Membership.objects.filter(user_id=actor.pk, role=Role.SCHEME_OWNER)
            .exclude(pk=membership.pk)
            .exists()
        ):
            raise WrongState(
                _(
                    "You cannot remove your own last scheme-owner role. Ask another scheme "
                    "owner to do it."
                )
            )
        record(
            actor,
            "membership.removed",
            membership,
            organisation=organisation,
            details={
                "user": membership.user.get_username(),
                "user_id": membership.user_id,
                "role": membership.role,
            },
        )
        membership.delete()


def create_organisation(
    actor,
    access: Access,
    *,
    name_ja: str,
    name_en: str,
    category: str,
    corporate_number: str = "",
    country: str = "JP",
) -> Organisation:
    """A new organisation, with no members yet: the scheme owner adds them next."""
    if not permissions.can_create_organisation(access):
        raise NotAllowed(_("Only a scheme owner can add organisations."))
    organisation = Organisation(
        name_ja=name_ja,
        name_en=name_en,
        category=category,
        corporate_number=corporate_number,
        country=country,
    )
    if corporate_number and Organisation.objects.filter(corporate_number=corporate_number).exists():
        raise MamoriError(
            _("An organisation with this corporate number already exists."),
            field="corporate_number",
        )
    try:
        organisation.full_clean()
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise MamoriError(messages[0], field=None if field == "__all__" else field) from None
    try:
        with transaction.atomic():
            organisation.save()
            record(
                actor,
                "organisation.created",
                organisation,
                organisation=organisation,
                details={
                    "name_ja": name_ja,
                    "name_en": name_en,
                    "category": category,
                    "corporate_number": corporate_number,
                    "country": country,
                },
            )
    except IntegrityError:
        # Another organisation took the corporate number between the check and the insert.
        raise MamoriError(
            _("An organisation with this corporate number already exists."),
            field="corporate_number",
        ) from None
    return organisation
