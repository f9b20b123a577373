"""Hosts, the evidence their agents upload, and the evaluations of that evidence.

A host is known by its organisation and its machine id (``/etc/machine-id``), or by its hostname
when it has none. Each upload is one ``Evidence`` row, stored once per host and content digest;
each evaluation of it (on upload, and again when new advisories arrive) is an ``Evaluation`` with
one ``CheckResult`` row per finding and one ``Vulnerability`` row per missing fix.

Re-matching works on sets, not on hosts: ``MatchTarget`` is one distinct thing vulnerability
matching looks up (a source package at one version, with the host's binaries of it), shared by
every host that has it; ``HostTarget`` says which hosts have which targets in their latest
evidence. A new advisory is compared with the few targets of its packages, and only the hosts
holding an affected target have their vulnerability rows and verdicts patched (docs/rematch.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mamori.core.controls import FIVE_CONTROLS
from mamori.core.models import TimeStampedModel

# The five controls, in the order the scheme lists them: one verdict column each.
CONTROLS = FIVE_CONTROLS


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
    kev_overdue_vulnerabilities = models.PositiveIntegerField(
        _("known exploited, past the deadline"), default=0
    )
    # What the vulnerability checks read besides the list (evaluation.VulnerabilityBasis), so
    # that a re-match decides them again from the rows without the evidence.
    packages_complete = models.BooleanField(_("package list complete"), default=False)
    vulnerability_coverage = models.CharField(_("advisory coverage"), max_length=16, default="ok")
    vulnerabilities_matched = models.BooleanField(_("vulnerabilities matched"), default=False)
    rematched_at = models.DateTimeField(_("re-matched"), null=True, blank=True)
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

    @property
    def basis(self):
        from mamori.verification.evaluation import VulnerabilityBasis

        return VulnerabilityBasis(
            packages_complete=self.packages_complete,
            coverage=self.vulnerability_coverage,
            matched=self.vulnerabilities_matched,
        )

    def vulnerability_records(self) -> list[dict]:
        """The vulnerabilities as matching reported them, in report order."""
        return [row.as_record() for row in self.vulnerability_rows.order_by(*Vulnerability.ORDER)]

    def localised_result(self, language: str | None) -> dict:
        """The evaluation document in ``language`` (Japanese unless English is asked), with
        its vulnerabilities read from the rows: a re-match patches rows and verdicts, and the
        vulnerability checks are decided again here from the same rows, as they were then."""
        from mamori.verification.evaluation import with_vulnerabilities

        english = (language or "ja").startswith("en") and bool(self.findings_en)
        return with_vulnerabilities(
            self.result,
            self.vulnerability_records() if self.vulnerabilities_matched else None,
            self.basis,
            language="en" if english else "ja",
            findings=self.findings_en if english else None,
        )


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


class Vulnerability(models.Model):
    """One missing fix found in one evaluation: what ``AdvisoryIndex.match_targets`` reports.
    The facts the checks read are columns; the rest of the record is kept as it came."""

    ORDER = ("package", "advisory", "installed_version")
    COLUMNS = (
        "package",
        "installed_version",
        "advisory",
        "fixed_version",
        "severity",
        "cvss",
        "kev",
        "fix_published",
        "days_since_fix",
        "overdue",
    )
    # The order of the record's keys as matching writes them.
    RECORD_KEYS = (
        "package",
        "installed_version",
        "advisory",
        "aliases",
        "summary",
        "ecosystem",
        "binaries",
        "fixed_version",
        "severity",
        "cvss",
        "cvss_vector",
        "kev",
        "kev_due_date",
        "fix_published",
        "days_since_fix",
        "overdue",
    )

    evaluation = models.ForeignKey(
        Evaluation,
        on_delete=models.CASCADE,
        related_name="vulnerability_rows",
        verbose_name=_("evaluation"),
    )
    package = models.TextField(_("package"))
    installed_version = models.TextField(_("installed version"))
    advisory = models.CharField(_("advisory"), max_length=255)
    # None is a fact here ("no fix released", "not rated"), distinct from an empty string.
    fixed_version = models.TextField(_("fixed version"), null=True, blank=True)  # noqa: DJ001
    severity = models.CharField(_("severity"), max_length=16, null=True, blank=True)  # noqa: DJ001
    cvss = models.FloatField(_("CVSS"), null=True, blank=True)
    kev = models.BooleanField(_("known exploited"), default=False)
    fix_published = models.DateField(_("fix published"), null=True, blank=True)
    days_since_fix = models.IntegerField(_("days since fix"), null=True, blank=True)
    overdue = models.BooleanField(_("overdue"), default=False)
    extra = models.JSONField(_("more"), default=dict)

    class Meta:
        verbose_name = _("vulnerability")
        verbose_name_plural = _("vulnerabilities")
        indexes = [
            models.Index(fields=["evaluation", "advisory"]),
            models.Index(fields=["advisory"]),
        ]

    def __str__(self) -> str:
        return f"{self.package} {self.advisory}"

    @classmethod
    def from_record(cls, evaluation_id: int, record: dict) -> Vulnerability:
        values = {name: record.get(name) for name in cls.COLUMNS}
        published = values["fix_published"]
        values["fix_published"] = dt.date.fromisoformat(published) if published else None
        values["kev"] = bool(values["kev"])
        values["overdue"] = bool(values["overdue"])
        values["advisory"] = str(values["advisory"])[:255]
        extra = {key: record[key] for key in record if key not in cls.COLUMNS}
        return cls(evaluation_id=evaluation_id, extra=extra, **values)

    def as_record(self) -> dict:
        values = {name: getattr(self, name) for name in self.COLUMNS}
        if values["fix_published"] is not None:
            values["fix_published"] = values["fix_published"].isoformat()
        values.update(self.extra or {})
        ordered = {key: values[key] for key in self.RECORD_KEYS if key in values}
        ordered.update((key, value) for key, value in values.items() if key not in ordered)
        return ordered


class MatchTarget(models.Model):
    """One distinct thing vulnerability matching looks up (``matching.Target``): a source
    package at one version on one OS release, with the binaries a host has of it. Hosts that
    run the same thing share the row, so a new advisory is compared once per target."""

    digest = models.CharField(max_length=64, unique=True)
    family = models.CharField(max_length=32)
    name = models.TextField()
    version = models.TextField()
    releases = models.JSONField(default=list)
    binaries = models.JSONField(default=list)
    manager = models.CharField(max_length=16, blank=True)
    also_names = models.JSONField(default=list)

    class Meta:
        verbose_name = _("match target")
        verbose_name_plural = _("match targets")

    def __str__(self) -> str:
        return f"{self.family}/{self.name} {self.version}"


class MatchTargetName(models.Model):
    """The (family, name) keys a target is looked up by: advisories name their keys."""

    target = models.ForeignKey(MatchTarget, on_delete=models.CASCADE, related_name="names")
    family = models.CharField(max_length=32)
    name = models.CharField(max_length=255)

    class Meta:
        verbose_name = _("match target name")
        verbose_name_plural = _("match target names")
        indexes = [models.Index(fields=["family", "name"])]

    def __str__(self) -> str:
        return f"{self.family}/{self.name}"


class HostTarget(models.Model):
    """A host's latest evidence looks up this target."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="targets")
    target = models.ForeignKey(MatchTarget, on_delete=models.PROTECT, related_name="hosts")

    class Meta:
        verbose_name = _("host target")
        verbose_name_plural = _("host targets")
        constraints = [
            models.UniqueConstraint(fields=["host", "target"], name="host_target_unique")
        ]
        indexes = [models.Index(fields=["target", "host"])]

    def __str__(self) -> str:
        return f"{self.host_id} {self.target_id}"


class VerdictChange(models.Model):
    """A control's verdict changed on a host's latest evaluation because advisories changed:
    the history a patched evaluation keeps."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="verdict_changes")
    evaluation = models.ForeignKey(
        Evaluation, on_delete=models.CASCADE, related_name="verdict_changes"
    )
    changed_at = models.DateTimeField(_("changed"), default=timezone.now)
    control = models.CharField(_("control"), max_length=32)
    before = models.CharField(_("before"), max_length=8, choices=Verdict.choices)
    after = models.CharField(_("after"), max_length=8, choices=Verdict.choices)
    advisories = models.JSONField(_("advisories"), default=list)

    class Meta:
        verbose_name = _("verdict change")
        verbose_name_plural = _("verdict changes")
        ordering = ["-changed_at", "-pk"]
        indexes = [models.Index(fields=["host", "changed_at"])]

    def __str__(self) -> str:
        return f"{self.host_id} {self.control} {self.before}→{self.after}"


class UploadState(models.TextChoices):
    PENDING = "pending", _("Being evaluated")
    DONE = "done", _("Evaluated")
    FAILED = "failed", _("Not accepted")


class EvidenceUploadQuerySet(models.QuerySet):
    def visible_to(self, access, token=None) -> EvidenceUploadQuerySet:
        """An agent token reads the uploads it sent; people (and their own tokens) read their
        organisations' uploads. Nobody else learns that an upload exists."""
        from mamori.accounts.models import TokenKind

        if token is not None and token.kind == TokenKind.AGENT:
            return self.filter(uploaded_by=token)
        return self.filter(organisation_id__in=access.organisation_ids)


class EvidenceUpload(models.Model):
    """One evidence upload as the request accepted it: the durable receipt the agent's ``202``
    points to. The request stores the canonical JSON (gzip) here; a worker validates it against
    the schema, evaluates it and stores host, evidence and evaluation (``ingest.evaluate_upload``),
    then marks this row done (or failed, with the reason) in the same transaction and drops the
    body. The same content for the same host is one upload (a duplicate is acknowledged with
    this row), unless the earlier one failed."""

    organisation = models.ForeignKey(
        "organisations.Organisation",
        on_delete=models.CASCADE,
        related_name="evidence_uploads",
        verbose_name=_("organisation"),
    )
    identity = models.CharField(max_length=64, editable=False)  # the host's (identity_key)
    hostname = models.CharField(_("hostname"), max_length=255)
    digest = models.CharField(_("digest"), max_length=64)
    size = models.PositiveIntegerField(_("size"))
    body = models.BinaryField(_("evidence (gzip)"), blank=True)
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    uploaded_by = models.ForeignKey(
        "accounts.ApiToken",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("uploaded with token"),
    )
    user = models.ForeignKey(
        "accounts.User",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    language = models.CharField(_("language"), max_length=8, default="ja")
    state = models.CharField(
        _("state"), max_length=8, choices=UploadState.choices, default=UploadState.PENDING
    )
    code = models.CharField(_("reason code"), max_length=32, blank=True)
    detail = models.TextField(_("reason"), blank=True)
    evidence = models.ForeignKey(
        Evidence,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="uploads",
        verbose_name=_("evidence"),
    )
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    objects = EvidenceUploadQuerySet.as_manager()

    class Meta:
        verbose_name = _("evidence upload")
        verbose_name_plural = _("evidence uploads")
        ordering = ["-received_at", "-pk"]
        constraints = [
            # One live upload per content and host: the same evidence sent again (or twice at
            # once) is the same upload. A failed one does not block sending it again.
            models.UniqueConstraint(
                fields=["organisation", "identity", "digest"],
                condition=~models.Q(state="failed"),
                name="evidence_upload_live_unique",
            )
        ]
        indexes = [models.Index(fields=["state", "received_at"])]

    def __str__(self) -> str:
        return f"{self.hostname} {self.digest[:12]} ({self.state})"
