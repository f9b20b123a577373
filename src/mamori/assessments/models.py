from __future__ import annotations

import uuid
from functools import cached_property

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mamori.core.models import TimeStampedModel


class State(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SUBMITTED = "submitted", _("Submitted")
    IN_REVIEW = "in_review", _("In review")
    CLARIFICATION = "clarification", _("Clarification requested")
    RESUBMITTED = "resubmitted", _("Resubmitted")
    PASSED = "passed", _("Passed")
    FAILED = "failed", _("Failed")


class Level(models.TextChoices):
    # The scheme is modelled on Cyber Essentials, not the UK scheme itself: the names say so in
    # both languages (サイバー・エッセンシャルズ型).
    CE = "CE", _("Cyber-Essentials-style")
    PLUS = "PLUS", _("Cyber-Essentials-style Plus (technical verification)")


class ScopeKind(models.TextChoices):
    WHOLE = "whole", _("Whole organisation")
    SUBSET = "subset", _("Sub-set of the organisation")


class Verdict(models.TextChoices):
    COMPLIANT = "compliant", _("Compliant")
    NON_COMPLIANT = "non_compliant", _("Non-compliant")
    NEEDS_INFORMATION = "needs_information", _("Needs information")


class Outcome(models.TextChoices):
    PASS = "pass", _("Pass")
    FAIL = "fail", _("Fail")


# States an assessor works in, and states waiting in an assessor's queue.
REVIEW_STATES = (State.SUBMITTED, State.IN_REVIEW, State.CLARIFICATION, State.RESUBMITTED)
QUEUE_STATES = (State.SUBMITTED, State.RESUBMITTED, State.IN_REVIEW)


class AssessmentQuerySet(models.QuerySet):
    def visible_to(self, access) -> AssessmentQuerySet:
        """Applicants see their organisation's assessments; assessors see what was submitted to
        their certification body (never drafts). Scheme owners see aggregates, not answers."""
        return self.filter(
            models.Q(organisation_id__in=access.applicant_organisation_ids)
            | (
                models.Q(certification_body_id__in=access.assessor_body_ids)
                & ~models.Q(state=State.DRAFT)
            )
        )


class Assessment(TimeStampedModel):
    organisation = models.ForeignKey(
        "organisations.Organisation",
        on_delete=models.PROTECT,
        related_name="assessments",
        verbose_name=_("organisation"),
    )
    catalogue = models.ForeignKey(
        "catalogue.Catalogue",
        on_delete=models.PROTECT,
        related_name="assessments",
        verbose_name=_("catalogue"),
    )
    certification_body = models.ForeignKey(
        "organisations.Organisation",
        on_delete=models.PROTECT,
        related_name="reviews",
        verbose_name=_("certification body"),
    )
    assessor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reviews",
        verbose_name=_("assessor"),
    )
    level = models.CharField(_("level"), max_length=8, choices=Level.choices, default=Level.CE)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.DRAFT)
    round = models.PositiveSmallIntegerField(_("round"), default=1)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("started by"),
    )
    complete_by = models.DateField(_("complete by"))
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    feedback_due = models.DateField(_("respond by"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    # The board-level declaration: who signed, as what, when, and a digest of the answers they
    # signed, so any later change shows the declaration no longer covers the answers.
    declared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("declared by"),
    )
    declared_name = models.CharField(_("signatory name"), max_length=150, blank=True)
    declared_title = models.CharField(_("signatory title"), max_length=150, blank=True)
    declared_at = models.DateTimeField(_("declared"), null=True, blank=True)
    declared_digest = models.CharField(max_length=64, blank=True)
    answers_digest = models.CharField(max_length=64, blank=True)

    objects = AssessmentQuerySet.as_manager()

    class Meta:
        verbose_name = _("assessment")
        verbose_name_plural = _("assessments")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["certification_body", "state"]),
            models.Index(fields=["assessor", "state", "submitted_at"]),
            models.Index(fields=["organisation", "state"]),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.organisation}"

    @property
    def reference(self) -> str:
        return f"A-{self.pk:06d}" if self.pk else "A-new"

    @property
    def declaration_valid(self) -> bool:
        return bool(self.declared_at) and self.declared_digest == self.answers_digest

    @property
    def is_overdue(self) -> bool:
        return self.state == State.DRAFT and timezone.localdate() > self.complete_by

    @property
    def feedback_window_open(self) -> bool:
        return self.feedback_due is not None and timezone.localdate() <= self.feedback_due

    @property
    def can_resubmit(self) -> bool:
        return self.state == State.FAILED and self.round == 1 and self.feedback_window_open

    @cached_property
    def pending_appeal(self) -> Appeal | None:
        """The appeal waiting for a second assessor, if any (the answers are frozen meanwhile)."""
        return self.appeals.filter(status=AppealStatus.PENDING).first()


class Answer(models.Model):
    assessment = models.ForeignKey(Assessment, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey("catalogue.Question", on_delete=models.PROTECT, related_name="+")
    value = models.JSONField(_("answer"), null=True)
    version = models.PositiveIntegerField(default=1)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("answer")
        constraints = [
            models.UniqueConstraint(fields=["assessment", "question"], name="answer_unique")
        ]

    def __str__(self) -> str:
        return f"{self.assessment_id}:{self.question_id}"


class Mark(models.Model):
    """An assessor's verdict on one answer in one review round (updated within the round; the
    audit trail keeps every change)."""

    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="marks")
    round = models.PositiveSmallIntegerField(default=1)
    assessor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    verdict = models.CharField(_("verdict"), max_length=20, choices=Verdict.choices)
    comment = models.TextField(_("comment"), blank=True, max_length=4000)
    answer_version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("mark")
        constraints = [models.UniqueConstraint(fields=["answer", "round"], name="mark_unique")]

    def __str__(self) -> str:
        return f"{self.answer} r{self.round} {self.verdict}"


class Decision(models.Model):
    assessment = models.ForeignKey(Assessment, on_delete=models.CASCADE, related_name="decisions")
    round = models.PositiveSmallIntegerField(default=1)
    outcome = models.CharField(_("outcome"), max_length=8, choices=Outcome.choices)
    summary = models.TextField(_("summary for the applicant"), blank=True, max_length=4000)
    assessor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(default=timezone.now)
    # The advice report after a fail, rendered in the background in each language.
    report_pdf = models.FileField(upload_to="reports/", blank=True)
    report_pdf_en = models.FileField(upload_to="reports/", blank=True)

    class Meta:
        verbose_name = _("decision")
        ordering = ["round"]
        constraints = [
            models.UniqueConstraint(fields=["assessment", "round"], name="decision_unique")
        ]

    def __str__(self) -> str:
        return f"{self.assessment_id} r{self.round} {self.outcome}"


def _attachment_path(instance: Attachment, _filename: str) -> str:
    # The stored name is random: a client-chosen file name never touches the file system.
    return f"evidence/{instance.assessment_id}/{uuid.uuid4().hex}"


class Attachment(models.Model):
    """An evidence file. Stored outside the web root; only handed out as a download to users
    who may see the assessment."""

    assessment = models.ForeignKey(Assessment, on_delete=models.CASCADE, related_name="attachments")
    question = models.ForeignKey(
        "catalogue.Question",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("question"),
    )
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
        verbose_name = _("evidence file")
        ordering = ["uploaded_at"]

    def __str__(self) -> str:
        return self.original_name


class AssignmentRule(models.TextChoices):
    LEAST_LOADED = "least_loaded", _("To the assessor with the fewest open reviews")
    ROUND_ROBIN = "round_robin", _("To each assessor in turn")
    QUEUE = "queue", _("To nobody: assessors take submissions from the queue")


class ReviewAssignment(TimeStampedModel):
    """How a certification body's new submissions find their assessor. A body without a row
    assigns to the least loaded assessor (``AssignmentRule.LEAST_LOADED``)."""

    certification_body = models.OneToOneField(
        "organisations.Organisation",
        on_delete=models.CASCADE,
        related_name="review_assignment",
        verbose_name=_("certification body"),
    )
    rule = models.CharField(
        _("assignment rule"),
        max_length=16,
        choices=AssignmentRule.choices,
        default=AssignmentRule.LEAST_LOADED,
    )
    # Round robin's place in the turn: the assessor who got the latest submission.
    last_assigned = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("review assignment")

    def __str__(self) -> str:
        return f"{self.certification_body_id}: {self.rule}"


class AppealOutcome(models.TextChoices):
    UPHOLD = "uphold", _("Uphold: the fail stands")
    OVERTURN = "overturn", _("Overturn: the assessment passes")


class AppealStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for a second assessor")
    UPHELD = "upheld", _("Upheld: the fail stands")
    OVERTURNED = "overturned", _("Overturned: passed")


class Appeal(models.Model):
    """The applicant's appeal against one fail decision, reviewed by a second assessor of the same
    certification body (never the one who decided). The answers stay frozen while it is pending."""

    assessment = models.ForeignKey(Assessment, on_delete=models.CASCADE, related_name="appeals")
    decision = models.OneToOneField(
        Decision,
        on_delete=models.PROTECT,
        related_name="appeal",
        verbose_name=_("decision appealed"),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=AppealStatus.choices, default=AppealStatus.PENDING
    )
    grounds = models.TextField(_("grounds"), max_length=4000)
    lodged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    lodged_at = models.DateTimeField(_("lodged"), default=timezone.now)
    # Lodging freezes the answers, so a resubmission window still open then is suspended; an
    # upheld appeal gives the applicant a fresh one instead of the days the appeal used up.
    resubmission_suspended = models.BooleanField(default=False)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("second assessor"),
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    reason = models.TextField(_("reason"), blank=True, max_length=4000)

    class Meta:
        verbose_name = _("appeal")
        verbose_name_plural = _("appeals")
        ordering = ["lodged_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(status="pending", decided_at__isnull=True, reviewer__isnull=True)
                    | (
                        models.Q(status__in=("upheld", "overturned"))
                        & models.Q(decided_at__isnull=False, reviewer__isnull=False)
                    )
                ),
                name="appeal_decided_when_not_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.assessment_id} appeal r{self.decision.round} {self.status}"

    @property
    def is_pending(self) -> bool:
        return self.status == AppealStatus.PENDING

    @property
    def status_css(self) -> str:
        return {"pending": "warn", "upheld": "failed", "overturned": "passed"}[self.status]


class ClarificationReply(models.Model):
    """What the applicant wrote to the assessor when sending a clarification back."""

    assessment = models.ForeignKey(
        Assessment, on_delete=models.CASCADE, related_name="clarification_replies"
    )
    round = models.PositiveSmallIntegerField(default=1)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("author"),
    )
    message = models.TextField(_("message to the assessor"), max_length=4000)
    sent_at = models.DateTimeField(_("sent"), default=timezone.now)

    class Meta:
        verbose_name = _("reply to a clarification request")
        verbose_name_plural = _("replies to clarification requests")
        ordering = ["sent_at", "pk"]

    def __str__(self) -> str:
        return f"{self.assessment_id} r{self.round} {self.sent_at:%Y-%m-%d}"
