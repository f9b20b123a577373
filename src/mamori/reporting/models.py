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

from django.db import models
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
