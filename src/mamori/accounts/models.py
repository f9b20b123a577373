from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mamori.core.models import TimeStampedModel

TOKEN_PREFIX = "mamori_"  # noqa: S105 - a public prefix, not a secret


class User(AbstractUser):
    display_name = models.CharField(_("display name"), max_length=150, blank=True)
    language = models.CharField(
        _("language for e-mail"), max_length=8, choices=settings.LANGUAGES, default="ja"
    )

    class Meta(AbstractUser.Meta):
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class TokenKind(models.TextChoices):
    USER = "user", _("API access")
    AGENT = "agent", _("Agent (evidence upload only)")


class TokenState(models.TextChoices):
    """Where a token stands, for the token pages and the API's refusals."""

    ACTIVE = "active", _("Active")
    EXPIRING = "expiring", _("Expires soon")
    REPLACED = "replaced", _("Replaced by a new key")
    EXPIRED = "expired", _("Expired")
    REVOKED = "revoked", _("Revoked")


def default_lifetime_days(kind: str) -> int:
    return settings.TOKEN_LIFETIME_DAYS[kind]


class ApiTokenQuerySet(models.QuerySet):
    def usable(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())

    def expiring(self) -> ApiTokenQuerySet:
        """Usable tokens that end within the warning period and have no successor yet (a
        rotated token ends soon by design: its replacement is what needs configuring)."""
        cutoff = timezone.now() + timedelta(days=settings.TOKEN_EXPIRY_WARNING_DAYS)
        return self.usable().filter(expires_at__lte=cutoff, replaced_by__isnull=True)


class ApiToken(TimeStampedModel):
    """An API token scoped to one organisation. Only its SHA-256 is stored: the key is shown once.

    Every token expires (``lifetime_days`` after it was issued). Rotating it issues a new key with
    the same name, kind, organisation and lifetime and keeps the old key working for a short
    overlap (``MAMORI_TOKEN_ROTATION_OVERLAP_HOURS``), so an agent can be reconfigured without a
    gap; the old token then points at its successor (``replaced_by``)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_tokens",
        verbose_name=_("user"),
    )
    organisation = models.ForeignKey(
        "organisations.Organisation",
        on_delete=models.CASCADE,
        related_name="api_tokens",
        verbose_name=_("organisation"),
    )
    kind = models.CharField(
        _("kind"), max_length=8, choices=TokenKind.choices, default=TokenKind.USER
    )
    name = models.CharField(_("name"), max_length=100)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_hint = models.CharField(_("key begins"), max_length=16, editable=False)
    lifetime_days = models.PositiveIntegerField(_("lifetime in days"))
    expires_at = models.DateTimeField(_("expires"))
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    replaced_by = models.OneToOneField(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="replaces",
        verbose_name=_("replaced by"),
    )

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_hint}…)"

    @classmethod
    def issue(
        cls,
        *,
        user,
        organisation,
        name: str,
        kind: str = TokenKind.USER,
        lifetime_days: int | None = None,
    ) -> tuple[ApiToken, str]:
        """A new token and its key (the only time the key exists outside the caller)."""
        if lifetime_days is None:
            lifetime_days = default_lifetime_days(kind)
        key = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user,
            organisation=organisation,
            name=name,
            kind=kind,
            lifetime_days=lifetime_days,
            expires_at=timezone.now() + timedelta(days=lifetime_days),
            key_hash=hash_token(key),
            key_hint=key[: len(TOKEN_PREFIX) + 6],
        )
        return token, key

    def state_at(self, now) -> TokenState:
        if self.revoked_at is not None:
            return TokenState.REVOKED
        if self.expires_at <= now:
            return TokenState.EXPIRED
        if self.replaced_by_id is not None:
            return TokenState.REPLACED
        if self.expires_at <= now + timedelta(days=settings.TOKEN_EXPIRY_WARNING_DAYS):
            return TokenState.EXPIRING
        return TokenState.ACTIVE
