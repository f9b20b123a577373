from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class Status(models.TextChoices):
    VALID = "valid", _("Valid")
    EXPIRED = "expired", _("Expired")
    REVOKED = "revoked", _("Revoked")


class CertificateQuerySet(models.QuerySet):
    def visible_to(self, access) -> CertificateQuerySet:
        if access.is_scheme_owner:
            return self.all()
        return self.filter(
            models.Q(organisation_id__in=access.organisation_ids)
            | models.Q(certification_body_id__in=access.assessor_body_ids)
        )

    def currently_valid(self, today: dt.date | None = None) -> CertificateQuerySet:
        today = today or timezone.localdate()
        return self.filter(revoked_at__isnull=True, issued_on__lte=today, expires_on__gte=today)

    def with_status(self, status: str, today: dt.date | None = None) -> CertificateQuerySet:
        today = today or timezone.localdate()
        if status == Status.REVOKED:
            return self.filter(revoked_at__isnull=False)
        if status == Status.EXPIRED:
            return self.filter(revoked_at__isnull=True, expires_on__lt=today)
        return self.currently_valid(today)


class Certificate(models.Model):
    number = models.CharField(_("certificate number"), max_length=32, unique=True)
    organisation = models.ForeignKey(
        "organisations.Organisation",
        on_delete=models.PROTECT,
        related_name="certificates",
        verbose_name=_("organisation"),
    )
    # A certificate comes from exactly one of: a passed self-assessment (level CE) or a passed
    # Plus audit of a CE certificate (level PLUS).
    assessment = models.OneToOneField(
        "assessments.Assessment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="certificate",
    )
    plus_audit = models.OneToOneField(
        "plus.PlusAudit",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="certificate",
        verbose_name=_("Plus audit"),
    )
    certification_body = models.ForeignKey(
        "organisations.Organisation",
        on_delete=models.PROTECT,
        related_name="issued_certificates",
        verbose_name=_("certification body"),
    )
    # Names as they were when the certificate was issued: a certificate is a document.
    organisation_name_ja = models.CharField(_("organisation (Japanese)"), max_length=200)
    organisation_name_en = models.CharField(_("organisation (English)"), max_length=200)
    level = models.CharField(_("level"), max_length=8)
    scope_text = models.TextField(_("scope"))
    catalogue_version = models.CharField(_("requirements"), max_length=40)
    issued_on = models.DateField(_("issued"))
    expires_on = models.DateField(_("expires"))
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("issued by"),
    )
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_reason = models.TextField(_("reason for revocation"), blank=True, max_length=2000)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    pdf = models.FileField(upload_to="certificates/", blank=True)

    objects = CertificateQuerySet.as_manager()

    class Meta:
        verbose_name = _("certificate")
        verbose_name_plural = _("certificates")
        ordering = ["-issued_on", "number"]
        indexes = [
            models.Index(fields=["expires_on"]),
            models.Index(fields=["organisation_name_en"]),
            models.Index(fields=["organisation_name_ja"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(assessment__isnull=False, plus_audit__isnull=True)
                | models.Q(assessment__isnull=True, plus_audit__isnull=False),
                name="certificate_one_source",
            )
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def organisation_name(self) -> str:
        language = get_language() or "ja"
        return self.organisation_name_en if language.startswith("en") else self.organisation_name_ja

    def status_on(self, today: dt.date) -> str:
        if self.revoked_at is not None:
            return Status.REVOKED
        if today > self.expires_on:
            return Status.EXPIRED
        return Status.VALID

    @property
    def status(self) -> str:
        return self.status_on(timezone.localdate())

    def get_status_display(self) -> str:
        return Status(self.status).label

    @property
    def level_label(self) -> str:
        from mamori.assessments.models import Level

        return Level(self.level).label


class ReminderKind(models.TextChoices):
    BEFORE_30 = "before_30", _("30 days before expiry")
    BEFORE_7 = "before_7", _("7 days before expiry")
    AFTER_7 = "after_7", _("7 days after expiry")

    @classmethod
    def due(cls, expires_on: dt.date, today: dt.date) -> ReminderKind | None:
        """Which reminder is due today for a certificate expiring on ``expires_on``, if any.

        Each window is wide, so a reminder missed while the service was down still goes out
        late; the Reminder table makes sure each kind goes out only once.
        """
        days_left = (expires_on - today).days
        if 7 < days_left <= 30:
            return cls.BEFORE_30
        if 0 <= days_left <= 7:
            return cls.BEFORE_7
        if -30 <= days_left <= -7:
            return cls.AFTER_7
        return None


class Reminder(models.Model):
    """A reminder e-mail, one of each kind per certificate: queued when it fell due, and sent
    once the mail server accepted it for every recipient (``sent_at``); never twice."""

    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="reminders")
    kind = models.CharField(max_length=16, choices=ReminderKind.choices)
    queued_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    recipients = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("expiry reminder")
        constraints = [
            models.UniqueConstraint(fields=["certificate", "kind"], name="reminder_unique")
        ]

    def __str__(self) -> str:
        return f"{self.certificate} {self.kind}"
