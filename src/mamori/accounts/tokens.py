"""Issuing, rotating and revoking API tokens, each with its audit entry, and who may do what.

A token belongs to the user who issued it and is scoped to one organisation. Its owner rotates
and revokes it; an applicant administrator of its organisation sees every token of the
organisation (``organisation_tokens``) and may revoke any of them, for instance a departed
colleague's agent token, but a new key is only ever issued to the token's own user.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from mamori.accounts.models import ApiToken
from mamori.audit.services import record
from mamori.organisations.access import Access
from mamori.organisations.models import Role


@dataclass(frozen=True)
class Rotation:
    old: ApiToken
    new: ApiToken
    key: str


def issue_token(
    actor, organisation, *, name: str, kind: str, lifetime_days: int | None
) -> tuple[ApiToken, str]:
    """A new token for ``actor``; the caller has checked ``organisation`` is one of theirs."""
    with transaction.atomic():
        token, key = ApiToken.issue(
            user=actor,
            organisation=organisation,
            name=name,
            kind=kind,
            lifetime_days=lifetime_days,
        )
        record(
            actor,
            "token.issued",
            token,
            organisation=organisation,
            details={
                "kind": token.kind,
                "name": token.name,
                "expires_at": token.expires_at.isoformat(),
            },
        )
    return token, key


def rotatable_by(actor, access: Access):
    """The actor's own tokens, not revoked and not already rotated, for organisations the actor
    still belongs to (a new key for an organisation one has left would see nothing)."""
    return ApiToken.objects.filter(
        user=actor,
        revoked_at__isnull=True,
        replaced_by__isnull=True,
        organisation_id__in=access.organisation_ids,
    )


def rotate_token(actor, access: Access, token_pk: int) -> Rotation:
    """Issue the token's successor (same name, kind, organisation and lifetime, within today's
    maximum) and shorten the old key's life to the overlap. Raises ``ApiToken.DoesNotExist``
    for a token the actor may not rotate. An expired token may be rotated too: its successor
    is a fresh key, and the old one stays expired."""
    now = timezone.now()
    with transaction.atomic():
        # Locked: two rotations at once must not give one token two successors.
        old = rotatable_by(actor, access).select_for_update().get(pk=token_pk)
        new, key = ApiToken.issue(
            user=old.user,
            organisation=old.organisation,
            name=old.name,
            kind=old.kind,
            lifetime_days=min(old.lifetime_days, settings.TOKEN_MAX_LIFETIME_DAYS),
        )
        overlap_ends = now + timedelta(hours=settings.TOKEN_ROTATION_OVERLAP_HOURS)
        old.expires_at = min(old.expires_at, overlap_ends)
        old.replaced_by = new
        old.save(update_fields=["expires_at", "replaced_by", "updated_at"])
        record(
            actor,
            "token.rotated",
            old,
            organisation=old.organisation,
            details={
                "kind": old.kind,
                "name": old.name,
                "replacement": new.pk,
                "old_key_valid_until": old.expires_at.isoformat(),
            },
        )
        record(
            actor,
            "token.issued",
            new,
            organisation=new.organisation,
            details={
                "kind": new.kind,
                "name": new.name,
                "expires_at": new.expires_at.isoformat(),
                "rotated_from": old.pk,
            },
        )
    return Rotation(old=old, new=new, key=key)


def administered_organisation_ids(access: Access) -> frozenset[int]:
    return access.organisations_with({Role.APPLICANT_ADMIN})


def revocable_by(actor, access: Access):
    """The actor's own tokens and every token of the organisations the actor administers."""
    return ApiToken.objects.filter(
        Q(user=actor) | Q(organisation_id__in=administered_organisation_ids(access)),
        revoked_at__isnull=True,
    )


def revoke_token(actor, access: Access, token_pk: int) -> ApiToken:
    """Raises ``ApiToken.DoesNotExist`` for a token the actor may not revoke (or revoked)."""
    with transaction.atomic():
        token = revocable_by(actor, access).select_for_update().get(pk=token_pk)
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at", "updated_at"])
        record(
            actor,
            "token.revoked",
            token,
            organisation=token.organisation,
            details={"kind": token.kind, "name": token.name, "owner": token.user.get_username()},
        )
    return token


def organisation_tokens(access: Access, organisation_pk: int):
    """Every token of an organisation the actor administers, expiring ones first; raises
    ``PermissionError`` for anyone else (the view answers 404)."""
    if organisation_pk not in administered_organisation_ids(access):
        raise PermissionError(organisation_pk)
    return (
        ApiToken.objects.filter(organisation_id=organisation_pk)
        .select_related("user", "organisation", "replaced_by")
        .order_by(F("revoked_at").asc(nulls_first=True), "expires_at")
    )
