"""Who may see and do what: the memberships behind one request, computed once.

Every tenant read goes through ``<Model>.objects.visible_to(access)``; object actions go through
each app's ``permissions`` module. A request authenticated with an API token sees only the token's
organisation, whatever else its user belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass

from mamori.organisations.models import APPLICANT_ROLES, EDITOR_ROLES, MFA_ROLES, Membership, Role


@dataclass(frozen=True)
class Access:
    user_id: int | None
    memberships: frozenset[tuple[int, str]]

    @classmethod
    def anonymous(cls) -> Access:
        return cls(None, frozenset())

    @classmethod
    def for_user(cls, user, organisation_id: int | None = None) -> Access:
        if user is None or not user.is_authenticated or not user.is_active:
            return cls.anonymous()
        rows = Membership.objects.filter(user_id=user.pk)
        if organisation_id is not None:
            rows = rows.filter(organisation_id=organisation_id)
        return cls(user.pk, frozenset(rows.values_list("organisation_id", "role")))

    @classmethod
    def for_request(cls, request) -> Access:
        cached = getattr(request, "_mamori_access", None)
        if cached is None:
            token = getattr(request, "auth", None)
            organisation_id = getattr(token, "organisation_id", None)
            cached = cls.for_user(getattr(request, "user", None), organisation_id)
            request._mamori_access = cached
        return cached

    def organisations_with(self, roles) -> frozenset[int]:
        return frozenset(org for org, role in self.memberships if role in roles)

    def has_role(self, organisation_id: int, *roles: str) -> bool:
        return any((organisation_id, role) in self.memberships for role in roles)

    @property
    def organisation_ids(self) -> frozenset[int]:
        return frozenset(org for org, _ in self.memberships)

    @property
    def applicant_organisation_ids(self) -> frozenset[int]:
        return self.organisations_with(APPLICANT_ROLES)

    @property
    def editor_organisation_ids(self) -> frozenset[int]:
        return self.organisations_with(EDITOR_ROLES)

    @property
    def assessor_body_ids(self) -> frozenset[int]:
        return self.organisations_with({Role.ASSESSOR})

    @property
    def is_assessor(self) -> bool:
        return bool(self.assessor_body_ids)

    @property
    def is_scheme_owner(self) -> bool:
        return bool(self.organisations_with({Role.SCHEME_OWNER}))

    @property
    def needs_mfa(self) -> bool:
        return bool(self.organisations_with(MFA_ROLES))


def second_factor_required(user, access: Access) -> bool:
    """Staff, assessors and scheme owners pass a TOTP check before anything else."""
    return user.is_staff or user.is_superuser or access.needs_mfa
