"""Board and sector reporting (issue 12).

A day's figures are ``MetricSample`` rows, one per organisation and metric, with the value as
JSON: a new metric is a new key in ``metrics.METRICS``, not a new column. The rows of a day are
written once and never changed; ``DaySeal`` holds the day's digest (and each organisation's),
and the audit trail an entry with it, so the samples of a past day can be proven untouched and
recomputed to the same digest.

Two sources have no history of their own and get one here, kept by the nightly sampling:
``VulnerabilityEpisode`` (a re-match patches and deletes vulnerability rows in place; an
episode is one vulnerability on one host from the day it was first sampled open to the day it
was sampled gone) and ``GraphVersion`` (an organisation's supply graph is edited in place; a
version is stored when its content changes).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class MetricSample(models.Model):
    organisation = models.ForeignKey(
        "organisations.Organisation", on_delete=models.CASCADE, related_name="metric_samples"
    )
    day = models.DateField(_("day"))
    metric = models.CharField(_("metric"), max_length=64)
    value = models.JSONField(_("value"), null=True)

    class Meta:
        verbose_name = _("metric sample")
        verbose_name_plural = _("metric samples")
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "day", "metric"], name="reporting_sample_unique"
            )
        ]
        # The pack reads one organisation's series; the dashboard one day across the sector.
        indexes = [models.Index(fields=["day", "metric"], name="reporting_sample_day")]

    def __str__(self) -> str:
        return f"{self.organisation_id} {self.day} {self.metric}"


class DaySeal(models.Model):
    """The digest of one day's samples of every organisation (and of each organisation's),
    chained into the audit trail when the day was sampled."""

    day = models.DateField(_("day"), unique=True)
    digest = models.CharField(_("digest"), max_length=64)
    organisation_digests = models.JSONField(_("digest per organisation"), default=dict)
    organisations = models.PositiveIntegerField(_("organisations sampled"), default=0)
    sampled_at = models.DateTimeField(_("sampled"))
    audit_seq = models.PositiveBigIntegerField(_("audit entry"), null=True, blank=True)
    # Figures of the whole sector computed with the day (supplier hot spots from the supply
    # graphs in force): read by the dashboard, outside the digest of the samples.
    sector = models.JSONField(_("sector figures"), default=dict)
    # "sampled": computed from history by the nightly run or the command, and recomputable;
    # "demo": written by ``mamori demo`` from its storyline (a demo has no two years of uploads
    # to recompute from), and said so wherever the day is shown or checked.
    origin = models.CharField(_("origin"), max_length=8, default="sampled")

    class Meta:
        verbose_name = _("sampled day")
        verbose_name_plural = _("sampled days")
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self.day} {self.digest[:12]}"


class VulnerabilityEpisode(models.Model):
    """One vulnerability (package and advisory) open on one host, from the day the sampling first
    saw it to the day it saw it gone (``closed_on``). Dates are sampled days, set once."""

    organisation = models.ForeignKey(
        "organisations.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    host = models.ForeignKey("verification.Host", on_delete=models.CASCADE, related_name="+")
    package = models.TextField(_("package"))
    advisory = models.CharField(_("advisory"), max_length=255)
    severity = models.CharField(_("severity"), max_length=16, blank=True)
    opened_on = models.DateField(_("opened"))
    closed_on = models.DateField(_("remediated"), null=True, blank=True)
    # The first sampled day the finding was known exploited (CISA KEV), and the day it went
    # over the scheme's deadline for a released fix (the 14-day rule), when it does.
    kev_on = models.DateField(_("known exploited since"), null=True, blank=True)
    overdue_on = models.DateField(_("overdue from"), null=True, blank=True)

    class Meta:
        verbose_name = _("vulnerability episode")
        verbose_name_plural = _("vulnerability episodes")
        constraints = [
            models.UniqueConstraint(
                fields=["host", "package", "advisory"],
                condition=models.Q(closed_on__isnull=True),
                name="reporting_episode_open_unique",
            )
        ]
        indexes = [
            models.Index(fields=["organisation", "opened_on"], name="reporting_episode_org"),
        ]

    def __str__(self) -> str:
        return f"{self.host_id} {self.package} {self.advisory} {self.opened_on}"


class LedgerDay(models.Model):
    """The last day the nightly sampling brought the episodes and graph versions up to: a day
    already recorded is not recorded again (recomputing it reads what was recorded)."""

    SINGLETON = 1

    day = models.DateField(_("day"))

    class Meta:
        verbose_name = _("recorded day")

    def __str__(self) -> str:
        return f"{self.day}"


class GraphVersion(models.Model):
    """An organisation's supply graph (``mamori.supplygraph/1``) as the sampling of ``day``
    found it, stored when it differs from the version before."""

    organisation = models.ForeignKey(
        "organisations.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    day = models.DateField(_("day"))
    digest = models.CharField(_("digest"), max_length=64)
    document = models.JSONField(_("graph"))

    class Meta:
        verbose_name = _("supply graph version")
        verbose_name_plural = _("supply graph versions")
        constraints = [
            models.UniqueConstraint(fields=["organisation", "day"], name="reporting_graph_day")
        ]
        ordering = ["organisation", "day"]

    def __str__(self) -> str:
        return f"{self.organisation_id} {self.day} {self.digest[:12]}"


class CyberRiskOwner(models.Model):
    """The director an organisation names as owner of its cyber risk: the one who reviews and
    signs its board packs."""

    organisation = models.OneToOneField(
        "organisations.Organisation", on_delete=models.CASCADE, related_name="cyber_risk_owner"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("owner"),
    )
    named_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    named_at = models.DateTimeField(_("named"), default=timezone.now)

    class Meta:
        verbose_name = _("cyber-risk owner")
        verbose_name_plural = _("cyber-risk owners")

    def __str__(self) -> str:
        return f"{self.organisation_id} {self.user_id}"


class BoardPackQuerySet(models.QuerySet):
    def visible_to(self, access) -> BoardPackQuerySet:
        """Packs are the board's: its members and the organisation's administrators see them."""
        from mamori.organisations.models import Role

        return self.filter(
            organisation_id__in=access.organisations_with(
                {Role.APPLICANT_ADMIN, Role.BOARD_SIGNATORY}
            )
        )


class BoardPack(models.Model):
    """One board pack: its content (``pack.compose``) and digest never change once made; a pack
    made again for the same period with different figures is a new version. Signed by the
    organisation's cyber-risk owner, with the meeting it was reviewed at."""

    organisation = models.ForeignKey(
        "organisations.Organisation", on_delete=models.CASCADE, related_name="board_packs"
    )
    period_from = models.DateField(_("period start"))
    period_to = models.DateField(_("period end"))
    version = models.PositiveIntegerField(_("version"), default=1)
    quarterly = models.BooleanField(_("quarterly pack"), default=False)
    content = models.JSONField(_("content"))
    digest = models.CharField(_("digest"), max_length=64)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    pdf_ja = models.FileField(upload_to="board-packs/", blank=True)
    pdf_en = models.FileField(upload_to="board-packs/", blank=True)
    xlsx_ja = models.FileField(upload_to="board-packs/", blank=True)
    xlsx_en = models.FileField(upload_to="board-packs/", blank=True)
    rendered_at = models.DateTimeField(_("rendered"), null=True, blank=True)
    signed_at = models.DateTimeField(_("signed"), null=True, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    signer_name = models.CharField(_("signed by"), max_length=150, blank=True)
    meeting_date = models.DateField(_("board meeting"), null=True, blank=True)
    minutes_reference = models.CharField(_("minutes reference"), max_length=100, blank=True)
    comment = models.TextField(_("comment"), blank=True, max_length=2000)
    signature_seq = models.PositiveBigIntegerField(_("audit entry"), null=True, blank=True)
    reminded_at = models.DateTimeField(_("owner reminded"), null=True, blank=True)

    objects = BoardPackQuerySet.as_manager()

    class Meta:
        verbose_name = _("board pack")
        verbose_name_plural = _("board packs")
        ordering = ["-period_to", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "period_from", "period_to", "version"],
                name="reporting_pack_version",
            )
        ]

    def __str__(self) -> str:
        return f"{self.organisation_id} {self.period_from}–{self.period_to} v{self.version}"

    @property
    def signed(self) -> bool:
        return self.signed_at is not None

    def file_for(self, kind: str, language: str):
        return getattr(self, f"{kind}_{'en' if language == 'en' else 'ja'}")


class PeerCohort(models.Model):
    """Who is compared with whom for one metric in one quarter (``peers.Cohort``), fixed when
    first needed so that no day of the quarter counts a different set of organisations."""

    metric = models.CharField(_("metric"), max_length=64)
    quarter = models.CharField(_("quarter"), max_length=8)
    data = models.JSONField(_("cohort"))

    class Meta:
        verbose_name = _("peer cohort")
        verbose_name_plural = _("peer cohorts")
        constraints = [
            models.UniqueConstraint(fields=["metric", "quarter"], name="reporting_cohort_unique")
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.quarter}"
