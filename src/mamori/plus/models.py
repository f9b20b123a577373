"""A Cyber Essentials Plus audit: the technical verification of an organisation that holds a
valid Cyber Essentials certificate.

``PlusAudit`` follows one basic certificate (same organisation, scope and certification body).
Its sampling frame is the organisation's in-scope agent hosts plus the ``Device`` rows listed by
hand; each ``SampleRound`` records a random sample (``SampledDevice``) and the seven test cases
(``TestCase``), the evidence-based ones per sampled device (``DeviceCheck``). A second round
follows a failed first one. A pass issues a certificate of level PLUS.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mamori.core.models import TimeStampedModel
from mamori.plus import testcases


class AuditState(models.TextChoices):
    OPEN = "open", _("In progress")
    RETEST = "retest", _("Failed: fix and test a second sample")
    PASSED = "passed", _("Passed")
    FAILED = "failed", _("Failed")


ACTIVE_STATES = (AuditState.OPEN, AuditState.RETEST)


class DeviceKind(models.TextChoices):
    END_USER = "end_user", _("End-user device")
    SERVER = "server", _("Server")


class Result(models.TextChoices):
    PENDING = testcases.PENDING, _("Not tested yet")
    PASS = testcases.PASS, _("Pass")
    FAIL = testcases.FAIL, _("Fail")
    UNKNOWN = testcases.UNKNOWN, _("Cannot be decided")


class Source(models.TextChoices):
    EVIDENCE = "evidence", _("Agent evidence")
    ASSESSOR = "assessor", _("Assessor")


class Code(models.TextChoices):
    TC1 = "TC1", _("TC1 External vulnerability scan")
    TC2 = "TC2", _("TC2 Authenticated vulnerability check")
    TC3 = "TC3", _("TC3 Malware protection")
    TC4 = "TC4", _("TC4 Malware by email")
    TC5 = "TC5", _("TC5 Malware by web browser")
    TC6 = "TC6", _("TC6 Multi-factor authentication on cloud services")
    TC7 = "TC7", _("TC7 Account separation")


class Outcome(models.TextChoices):
    PASS = "pass", _("Pass")
    FAIL = "fail", _("Fail")


class PlusAuditQuerySet(models.QuerySet):
    def visible_to(self, access) -> PlusAuditQuerySet:
        """The organisation's members (applicant roles) and the assessors of the certification
        body. Scheme owners see certificates, not audits; everyone else nothing (404)."""
        return self.filter(
            models.Q(organisation_id__in=access.applicant_organisation_ids)
            | models.Q(certification_body_id__in=access.assessor_body_ids)
        )


class PlusAudit(TimeStampedModel):
    organisation = models.ForeignKey(
        "organisations.Organisation",
        on_delete=models.PROTECT,
        related_name="plus_audits",
        verbose_name=_("organisation"),
    )
    # One audit per basic certificate: after a final fail, a new basic certificate is needed.
    base_certificate = models.OneToOneField(
        "certificates.Certificate",
        on_delete=models.PROTECT,
        related_name="plus_followup",
        verbose_name=_("Cyber Essentials certificate"),
    )
    certification_body = models.ForeignKey(
        "organisations.Organisation",
        on_delete=models.PROTECT,
        related_name="plus_reviews",
        verbose_name=_("certification body"),
    )
    catalogue = models.ForeignKey(
        "catalogue.Catalogue",
        on_delete=models.PROTECT,
        related_name="plus_audits",
        verbose_name=_("catalogue"),
    )
    assessor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="plus_reviews",
        verbose_name=_("assessor"),
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("requested by"),
    )
    state = models.CharField(
        _("state"), max_length=8, choices=AuditState.choices, default=AuditState.OPEN
    )
    round = models.PositiveSmallIntegerField(_("round"), default=0)
    scope_text = models.TextField(_("scope"))
    public_addresses = models.TextField(
        _("public IP addresses"),
        blank=True,
        max_length=4000,
        help_text=_("The addresses and ranges the external scan (TC1) covers, one per line."),
    )
    deadline = models.DateField(_("decide by"))
    retest_due = models.DateField(_("second sample by"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)

    objects = PlusAuditQuerySet.as_manager()

    class Meta:
        verbose_name = _("Plus audit")
        verbose_name_plural = _("Plus audits")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["certification_body", "state"]),
            models.Index(fields=["organisation", "state"]),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.organisation}"

    @property
    def reference(self) -> str:
        return f"P-{self.pk:06d}" if self.pk else "P-new"

    @property
    def state_css(self) -> str:
        return {"open": "in_review", "retest": "warn", "passed": "passed", "failed": "failed"}[
            self.state
        ]

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def is_lapsed(self) -> bool:
        """Still undecided after the deadline: no Plus decision is possible any more."""
        return self.is_active and timezone.localdate() > self.deadline

    @property
    def current_round(self) -> SampleRound | None:
        if not self.round:
            return None
        return self.rounds.filter(number=self.round).first()


class Device(models.Model):
    """A device of the sampling frame in one audit: an agent host (its kind confirmed by the
    assessor) or a device without the agent, listed by hand."""

    audit = models.ForeignKey(PlusAudit, on_delete=models.CASCADE, related_name="devices")
    host = models.ForeignKey(
        "verification.Host",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("host"),
    )
    manual = models.BooleanField(_("listed by hand"), default=False)
    name = models.CharField(_("name"), max_length=255)
    os_build = models.CharField(_("OS build"), max_length=120, blank=True)
    kind = models.CharField(_("kind"), max_length=8, choices=DeviceKind.choices, blank=True)
    kind_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("kind confirmed by"),
    )
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("device")
        verbose_name_plural = _("devices")
        ordering = ["manual", "name", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["audit", "host"],
                condition=models.Q(host__isnull=False),
                name="plus_device_host_unique",
            ),
            models.UniqueConstraint(
                Lower("name"),
                "audit",
                condition=models.Q(manual=True),
                name="plus_device_name_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def frame_key(self) -> str:
        return f"device:{self.pk}"


class SampleRound(models.Model):
    audit = models.ForeignKey(PlusAudit, on_delete=models.CASCADE, related_name="rounds")
    number = models.PositiveSmallIntegerField(_("round"))
    # The draw: its seed and the digest of the frame it was drawn from (sampling.py); a new draw
    # replaces both when an unused sample went stale.
    seed = models.CharField(max_length=64)
    frame_digest = models.CharField(max_length=64)
    frame_size = models.PositiveIntegerField(_("devices in the frame"))
    draws = models.PositiveSmallIntegerField(_("draws"), default=1)
    drawn_at = models.DateTimeField(_("drawn"))
    drawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    test_by = models.DateField(_("start testing by"))
    testing_started_at = models.DateTimeField(_("testing started"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=8, choices=Outcome.choices, blank=True)
    summary = models.TextField(_("summary for the applicant"), blank=True, max_length=4000)
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("sample round")
        ordering = ["audit", "number"]
        constraints = [
            models.UniqueConstraint(fields=["audit", "number"], name="plus_round_unique")
        ]

    def __str__(self) -> str:
        return f"{self.audit_id} r{self.number}"


class SampledDevice(models.Model):
    round = models.ForeignKey(SampleRound, on_delete=models.CASCADE, related_name="sampled")
    device = models.ForeignKey(Device, on_delete=models.PROTECT, related_name="samplings")
    # As they were when drawn.
    os_build = models.CharField(_("OS build"), max_length=120, blank=True)
    kind = models.CharField(_("kind"), max_length=8, choices=DeviceKind.choices)

    class Meta:
        verbose_name = _("sampled device")
        ordering = ["round", "kind", "os_build", "device__name"]
        constraints = [
            models.UniqueConstraint(fields=["round", "device"], name="plus_sampled_unique")
        ]

    def __str__(self) -> str:
        return f"{self.round} {self.device}"


class TestCase(models.Model):
    __test__ = False  # not a pytest test class

    round = models.ForeignKey(SampleRound, on_delete=models.CASCADE, related_name="test_cases")
    code = models.CharField(_("test case"), max_length=4, choices=Code.choices)
    result = models.CharField(
        _("result"), max_length=8, choices=Result.choices, default=Result.PENDING
    )
    notes = models.TextField(_("notes"), blank=True, max_length=4000)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(_("recorded"), null=True, blank=True)

    class Meta:
        verbose_name = _("test case")
        ordering = ["round", "code"]
        constraints = [
            models.UniqueConstraint(fields=["round", "code"], name="plus_test_case_unique")
        ]

    def __str__(self) -> str:
        return f"{self.round} {self.code} {self.result}"

    @property
    def from_evidence(self) -> bool:
        return self.code in testcases.EVIDENCE_CASES


class DeviceCheck(models.Model):
    """TC2, TC3 or TC7 on one sampled device: filled from the host's latest evaluation, or
    recorded by the assessor (devices without the agent, and overrides with a reason)."""

    sampled = models.ForeignKey(SampledDevice, on_delete=models.CASCADE, related_name="checks")
    code = models.CharField(_("test case"), max_length=4, choices=Code.choices)
    status = models.CharField(_("result"), max_length=8, choices=Result.choices)
    source = models.CharField(_("source"), max_length=8, choices=Source.choices)
    # What the evidence said at the last fill, kept next to an assessor's override.
    evidence_status = models.CharField(max_length=8, choices=Result.choices, blank=True)
    evaluation = models.ForeignKey(
        "verification.Evaluation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    facts = models.JSONField(default=dict, blank=True)
    notes = models.TextField(_("notes"), blank=True, max_length=4000)
    override_reason = models.TextField(_("reason for the override"), blank=True, max_length=4000)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("device check")
        ordering = ["sampled", "code"]
        constraints = [
            models.UniqueConstraint(fields=["sampled", "code"], name="plus_device_check_unique")
        ]

    def __str__(self) -> str:
        return f"{self.sampled} {self.code} {self.status}"

    @property
    def overridden(self) -> bool:
        return bool(self.override_reason)


def _attachment_path(instance: TestAttachment, _filename: str) -> str:
    # A random stored name: a client-chosen file name never touches the file system.
    return f"plus/{instance.test_case.round.audit_id}/{uuid.uuid4().hex}"


class TestAttachment(models.Model):
    """A file supporting a test case (scan report, screenshot). Stored outside the web root and
    only handed out as a download to those who may see the audit."""

    __test__ = False

    test_case = models.ForeignKey(TestCase, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=_attachment_path)
    original_name = models.CharField(_("file name"), max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField(_("size"))
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("test case file")
        ordering = ["uploaded_at", "pk"]

    def __str__(self) -> str:
        return self.original_name
