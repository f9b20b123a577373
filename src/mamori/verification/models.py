"""Hosts, the evidence their agents upload, and the evaluations of that evidence.

A host is known by its organisation and its machine id (``/etc/machine-id``), or by its hostname
when it has none. Each upload is one ``Evidence`` row, stored once per host and content digest;
each evaluation of it (on upload, and again when new advisories arrive) is an ``Evaluation`` with
one ``CheckResult`` row per finding. ``HostPackageKey`` indexes the package names of each host's
latest evidence so that new advisories re-match only the hosts they can affect.
"""

from __future__ import annotations

import hashlib

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mamori.core.models import TimeStampedModel

# The five controls, in the order the scheme lists them. The keys are the evaluation JSON's.
CONTROLS = (
    "firewalls",
    "secure_configuration",
    "security_update_management",
    "user_access_control",
    "malware_protection",
)
CONTROL_LABELS = {
    "firewalls": _("Firewalls"),
    "secure_configuration": _("Secure configuration"),
    "security_update_management": _("Security update management"),
    "user_access_control": _("User access control"),
    "malware_protection": _("Malware protection"),
}


class Verdict(models.TextChoices):
    PASS = "pass", _("Pass")
    FAIL = "fail", _("Fail")
    UNKNOWN = "unknown", _("Unknown")


class CheckStatus(models.TextChoices):
    PASS = "pass", _("Pass")
    FAIL = "fail", _("Fail")
    UNKNOWN = "unknown", _("Unknown")
    INFO = "info", _("Information")


class Trigger(models.TextChoices):
    UPLOAD = "upload", _("Upload")
    REMATCH = "rematch", _("New advisories")


def identity_key(machine_id: str, hostname: str) -> str:
    """What makes a host the same host: its machine id, else its hostname (case-insensitive).
    Hashed so that an arbitrarily long hostname still fits an indexed column."""
    source = f"machine:{machine_id}" if machine_id else f"hostname:{hostname.lower()}"
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


class HostQuerySet(models.QuerySet):
    def visible_to(self, access) -> HostQuerySet:
        """Hosts a user may see: their own organisations', and those of organisations that
        submitted an assessment to their certification body (the assessors who review or
        certified it). Scheme owners see aggregates on certificates, never hosts."""
        from mamori.assessments.models import Assessment, State

        reviewed = (
            Assessment.objects.filter(certification_body_id__in=access.assessor_body_ids)
            .exclude(state=State.DRAFT)
            .values("organisation_id")
        )
        return self.filter(
            models.Q(organisation_id__in=access.organisation_ids)
            | models.Q(organisation_id__in=reviewed)
        )


class Host(TimeStampedModel):
    organisation = models.ForeignKey(
        "organisations.Organisation",
        on_delete=models.CASCADE,
        related_name="hosts",
        verbose_name=_("organisation"),
    )
    identity = models.CharField(max_length=64, editable=False)
    hostname = models.CharField(_("hostname"), max_length=255)
    machine_id = models.CharField(_("machine id"), max_length=64, blank=True)
    os_pretty_name = models.CharField(_("operating system"), max_length=200, blank=True)
    os_id = models.CharField(_("OS id"), max_length=64, blank=True)
    os_version = models.CharField(_("OS version"), max_length=64, blank=True)
    architecture = models.CharField(_("architecture"), max_length=32, blank=True)
    first_seen = models.DateTimeField(_("first seen"), default=timezone.now)
    last_seen = models.DateTimeField(_("last seen"), default=timezone.now)
    in_scope = models.BooleanField(
        _("in scope"),
        default=True,
        help_text=_("Counted for continuous assurance and Plus sampling."),
    )
    latest_evidence = models.ForeignKey(
        "Evidence",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("latest evidence"),
    )
    # The newest evaluation of the latest evidence: read by every list and panel, so kept here
    # instead of being looked up per host.
    latest_evaluation = models.ForeignKey(
        "Evaluation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("latest evaluation"),
    )

    objects = HostQuerySet.as_manager()

    class Meta:
        verbose_name = _("host")
        verbose_name_plural = _("hosts")
        ordering = ["hostname", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "identity"], name="host_identity_unique"
            )
        ]
        indexes = [models.Index(fields=["organisation", "in_scope", "last_seen"])]

    def __str__(self) -> str:
        return self.hostname

    def save(self, *args, **kwargs):
        # Set once, from the evidence's full values (the stored hostname may be clipped): a
        # host stays the same host when its name changes and its machine id does not.
        if not self.identity:
            self.identity = identity_key(self.machine_id, self.hostname)
        super().save(*args, **kwargs)


class Evidence(models.Model):
    """One collection as the agent uploaded it (``mamori.evidence/1``)."""

    host = models.ForeignKey(
        Host, on_delete=models.CASCADE, related_name="evidence", verbose_name=_("host")
    )
    collected_at = models.DateTimeField(_("collected"))
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    uploaded_by = models.ForeignKey(
        "accounts.ApiToken",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("uploaded with token"),
    )
    # SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8): the same collection sent
    # twice has the same digest, whatever the whitespace or key order of the upload.
    digest = models.CharField(_("digest"), max_length=64)
    payload = models.JSONField(_("evidence"))
    size = models.PositiveIntegerField(_("size"))

    class Meta:
        verbose_name = _("evidence")
        verbose_name_plural = _("evidence")
        ordering = ["-collected_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["host", "digest"], name="evidence_digest_unique")
        ]
        indexes = [models.Index(fields=["host", "collected_at"])]

    def __str__(self) -> str:
        return f"{self.host_id}@{self.collected_at:%Y-%m-%d %H:%M}"


class Evaluation(models.Model):
    """One evaluation of one evidence against the five controls (``mamori.evaluation/1``)."""

    evidence = models.ForeignKey(
        Evidence, on_delete=models.CASCADE, related_name="evaluations", verbose_name=_("evidence")
    )
    evaluated_at = models.DateTimeField(_("evaluated"), default=timezone.now)
    as_of = models.DateField(_("as of"))
    catalogue_version = models.CharField(_("requirements"), max_length=40, blank=True)
    trigger = models.CharField(_("trigger"), max_length=8, choices=Trigger.choices)
    firewalls = models.CharField(_("firewalls"), max_length=8, choices=Verdict.choices)
    secure_configuration = models.CharField(
        _("secure configuration"), max_length=8, choices=Verdict.choices
    )
    security_update_management = models.CharField(
        _("security update management"), max_length=8, choices=Verdict.choices
    )
    user_access_control = models.CharField(
        _("user access control"), max_length=8, choices=Verdict.choices
    )
    malware_protection = models.CharField(
        _("malware protection"), max_length=8, choices=Verdict.choices
    )
    failed_checks = models.PositiveIntegerField(_("failed checks"), default=0)
    vulnerabilities = models.PositiveIntegerField(_("vulnerabilities"), default=0)
    overdue_vulnerabilities = models.PositiveIntegerField(_("overdue"), default=0)
    kev_vulnerabilities = models.PositiveIntegerField(_("known exploited"), default=0)
    # The evaluation document in Japanese, the scheme's default language; the findings' texts
    # in English alongside (same checks, same statuses), so each reader gets their language as
    # it was written at evaluation time.
    result = models.JSONField(_("result"))
    findings_en = models.JSONField(_("findings in English"), default=list)

    class Meta:
        verbose_name = _("evaluation")
        verbose_name_plural = _("evaluations")
        ordering = ["-evaluated_at", "-pk"]
        indexes = [models.Index(fields=["evidence", "evaluated_at"])]

    def __str__(self) -> str:
        return f"{self.evidence_id} {self.evaluated_at:%Y-%m-%d %H:%M} {self.trigger}"

    @property
    def controls(self) -> dict[str, str]:
        return {control: getattr(self, control) for control in CONTROLS}

    @property
    def passed(self) -> bool:
        return all(verdict == Verdict.PASS for verdict in self.controls.values())

    def localised_result(self, language: str | None) -> dict:
        """The result with its findings in ``language`` (Japanese unless English is asked)."""
        if (language or "ja").startswith("en") and self.findings_en:
            return {**self.result, "findings": self.findings_en, "language": "en"}
        return self.result


class CheckResult(models.Model):
    """One finding of an evaluation, as rows: which hosts fail a check is a query, not a scan."""

    evaluation = models.ForeignKey(
        Evaluation, on_delete=models.CASCADE, related_name="checks", verbose_name=_("evaluation")
    )
    check_id = models.CharField(_("check"), max_length=32)
    control = models.CharField(_("control"), max_length=32)
    status = models.CharField(_("status"), max_length=8, choices=CheckStatus.choices)
    severity = models.CharField(_("severity"), max_length=16, blank=True)
    detail = models.TextField(_("detail"), blank=True)

    class Meta:
        verbose_name = _("check result")
        verbose_name_plural = _("check results")
        ordering = ["evaluation", "check_id"]
        indexes = [models.Index(fields=["check_id", "status"])]

    def __str__(self) -> str:
        return f"{self.check_id} {self.status}"


class HostPackageKey(models.Model):
    """The (family, name) keys that vulnerability matching looks up for a host's latest
    evidence. New advisories name their keys; this index finds the hosts to re-match."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="package_keys")
    family = models.CharField(max_length=32)
    name = models.CharField(max_length=255)

    class Meta:
        verbose_name = _("host package key")
        verbose_name_plural = _("host package keys")
        constraints = [
            models.UniqueConstraint(
                fields=["host", "family", "name"], name="host_package_key_unique"
            )
        ]
        indexes = [models.Index(fields=["family", "name"])]

    def __str__(self) -> str:
        return f"{self.host_id} {self.family}/{self.name}"
