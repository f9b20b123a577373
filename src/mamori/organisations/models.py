from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from mamori.core.models import TimeStampedModel
from mamori.core.text import NAME_VALIDATORS


class Category(models.TextChoices):
    # The working group's kinds of financial institution: peers are compared within one kind
    # (reporting.peers), so a bank is not ranked against an insurer.
    BANK = "bank", _("Bank")
    SHINKIN_BANK = "shinkin_bank", _("Shinkin bank")
    CREDIT_COOPERATIVE = "credit_cooperative", _("Credit cooperative")
    INSURER = "insurer", _("Insurer")
    SECURITIES = "securities", _("Securities firm")
    EXCHANGE = "exchange", _("Exchange or market infrastructure")
    FINANCIAL_INSTITUTION = "financial_institution", _("Financial institution")
    IT_VENDOR = "it_vendor", _("IT vendor")
    INDUSTRY_ASSOCIATION = "industry_association", _("Industry association")
    GOVERNMENT = "government", _("Government body")
    CERTIFICATION_BODY = "certification_body", _("Certification body")
    OTHER = "other", _("Other")


FINANCIAL_CATEGORIES = frozenset(
    {
        Category.BANK,
        Category.SHINKIN_BANK,
        Category.CREDIT_COOPERATIVE,
        Category.INSURER,
        Category.SECURITIES,
        Category.EXCHANGE,
        Category.FINANCIAL_INSTITUTION,
    }
)


class Role(models.TextChoices):
    APPLICANT_ADMIN = "applicant_admin", _("Applicant administrator")
    APPLICANT_CONTRIBUTOR = "applicant_contributor", _("Applicant contributor")
    BOARD_SIGNATORY = "board_signatory", _("Board signatory")
    ASSESSOR = "assessor", _("Assessor")
    SCHEME_OWNER = "scheme_owner", _("Scheme owner")
    # A supervisor (e.g. the regulator's staff): reads the sector's aggregated figures, nothing
    # of any one organisation, and changes nothing.
    OBSERVER = "observer", _("Observer (supervisor, read-only)")


APPLICANT_ROLES = frozenset(
    {Role.APPLICANT_ADMIN, Role.APPLICANT_CONTRIBUTOR, Role.BOARD_SIGNATORY}
)
EDITOR_ROLES = frozenset({Role.APPLICANT_ADMIN, Role.APPLICANT_CONTRIBUTOR})
MFA_ROLES = frozenset({Role.ASSESSOR, Role.SCHEME_OWNER, Role.OBSERVER})


def validate_corporate_number(value: str) -> None:
    """Japan's 13-digit corporate number: the first digit checks the other twelve."""
    if len(value) != 13 or not value.isascii() or not value.isdigit():
        raise ValidationError(_("A corporate number has exactly 13 digits."), code="format")
    base = value[1:]
    total = sum(
        int(digit) * (1 if position % 2 else 2)
        for position, digit in enumerate(reversed(base), start=1)
    )
    if int(value[0]) != 9 - total % 9:
        raise ValidationError(_("This corporate number's check digit is wrong."), code="checksum")


class OrganisationQuerySet(models.QuerySet):
    def visible_to(self, access) -> OrganisationQuerySet:
        """Organisations a user may see: their own, those whose submissions their certification
        body reviews, and all of them for scheme owners."""
        if access.is_scheme_owner:
            return self.all()
        from mamori.assessments.models import Assessment

        reviewed = (
            Assessment.objects.visible_to(access)
            .filter(certification_body_id__in=access.assessor_body_ids)
            .values("organisation_id")
        )
        return self.filter(models.Q(pk__in=access.organisation_ids) | models.Q(pk__in=reviewed))


class Organisation(TimeStampedModel):
    name_ja = models.CharField(_("name (Japanese)"), max_length=200, validators=NAME_VALIDATORS)
    name_en = models.CharField(_("name (English)"), max_length=200, validators=NAME_VALIDATORS)
    category = models.CharField(_("category"), max_length=32, choices=Category.choices)
    corporate_number = models.CharField(
        _("corporate number"),
        max_length=13,
        blank=True,
        validators=[validate_corporate_number],
        help_text=_("The 13-digit number issued by the National Tax Agency."),
    )
    country = models.CharField(_("country"), max_length=2, default="JP")
    # Organisations the scheme owner creates are known; one registered by whoever held a
    # supplier-survey link is not, until the scheme owner or its inviter confirms it. Until then
    # it is shown as unverified and the platform sends no e-mail in its name.
    identity_verified = models.BooleanField(_("identity verified"), default=True)
    identity_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("identity confirmed by"),
    )
    identity_confirmed_at = models.DateTimeField(_("identity confirmed"), null=True, blank=True)
    # Registered organisations whose names are close to this one's when it registered (ids),
    # for the person who confirms it.
    resembles = models.JSONField(_("names close to"), default=list, blank=True)

    objects = OrganisationQuerySet.as_manager()

    class Meta:
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        ordering = ["name_ja"]
        constraints = [
            models.UniqueConstraint(
                fields=["corporate_number"],
                condition=~models.Q(corporate_number=""),
                name="organisation_corporate_number_unique",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.name_en if (get_language() or "ja").startswith("en") else self.name_ja

    @property
    def is_certification_body(self) -> bool:
        return self.category == Category.CERTIFICATION_BODY


class WorkingGroupQuerySet(models.QuerySet):
    def visible_to(self, access) -> WorkingGroupQuerySet:
        """A roster is shown to the scheme owner and to the people of the organisations on it
        (members and convenor); to anyone else it does not exist."""
        if access.is_scheme_owner:
            return self.all()
        own = access.organisation_ids
        return self.filter(models.Q(convenor_id__in=own) | models.Q(members__in=own)).distinct()


class WorkingGroup(TimeStampedModel):
    """A group of organisations that meets under a convenor, such as the FSA's public-private
    working group: the convenor calls it and runs its secretariat without being one of its
    members, so the roster's count and categories are those of ``members`` alone."""

    name_ja = models.CharField(_("name (Japanese)"), max_length=200, validators=NAME_VALIDATORS)
    name_en = models.CharField(_("name (English)"), max_length=200, validators=NAME_VALIDATORS)
    source = models.TextField(_("source of the roster"), blank=True, max_length=2000)
    convenor = models.ForeignKey(
        Organisation,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="convened_groups",
        verbose_name=_("convenor"),
    )
    members = models.ManyToManyField(
        Organisation, related_name="working_groups", blank=True, verbose_name=_("members")
    )

    objects = WorkingGroupQuerySet.as_manager()

    class Meta:
        verbose_name = _("working group")
        verbose_name_plural = _("working groups")
        ordering = ["name_ja", "pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.name_en if (get_language() or "ja").startswith("en") else self.name_ja


class Membership(TimeStampedModel):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=_("user"),
    )
    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=_("organisation"),
    )
    role = models.CharField(_("role"), max_length=32, choices=Role.choices)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organisation", "role"], name="membership_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} / {self.organisation} / {self.get_role_display()}"

    def clean(self) -> None:
        # Without an organisation (a form left it empty) the field's own error says so.
        if self.organisation_id is None:
            return
        if self.role == Role.ASSESSOR and not self.organisation.is_certification_body:
            raise ValidationError({"role": _("Assessors belong to a certification body.")})


class InvitationState(models.TextChoices):
    PENDING = "pending", _("Waiting for an answer")
    ACCEPTED = "accepted", _("Accepted")
    DECLINED = "declined", _("Declined")
    CANCELLED = "cancelled", _("Cancelled")


class MembershipInvitationQuerySet(models.QuerySet):
    def open(self, now=None) -> MembershipInvitationQuerySet:
        """Waiting for an answer and not expired."""
        return self.filter(state=InvitationState.PENDING, expires_at__gt=now or timezone.now())


class MembershipInvitation(TimeStampedModel):
    """An offer of a role in an organisation to someone who already has an account: nobody
    becomes a member of an organisation without accepting (membership consent).

    It is addressed to a user name as typed. ``user`` is the account it reaches: ``None`` when
    there is no such account, or when the account could never accept it (a conflict of
    interest). The inviter's page shows all of them alike, so it never tells whether a user
    name exists or what roles it holds elsewhere; those invitations simply expire."""

    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.CASCADE,
        related_name="membership_invitations",
        verbose_name=_("organisation"),
    )
    username = models.CharField(_("user name"), max_length=150)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="membership_invitations",
        verbose_name=_("invited user"),
    )
    role = models.CharField(_("role"), max_length=32, choices=Role.choices)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("invited by"),
    )
    expires_at = models.DateTimeField(_("expires"))
    state = models.CharField(
        _("state"),
        max_length=16,
        choices=InvitationState.choices,
        default=InvitationState.PENDING,
    )
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)

    objects = MembershipInvitationQuerySet.as_manager()

    class Meta:
        verbose_name = _("membership invitation")
        verbose_name_plural = _("membership invitations")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "state"])]

    def __str__(self) -> str:
        return f"{self.username} / {self.organisation} / {self.get_role_display()}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()
