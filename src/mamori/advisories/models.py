"""Imported advisories, KEV entries and lifecycle data, and the record of each import.

The tables mirror ``records.py`` so that the matching index can be rebuilt from plain column
values without re-parsing any JSON feed (see ``services.load_index``).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F
from django.utils.translation import gettext_lazy as _

from mamori.core.models import TimeStampedModel


class Advisory(TimeStampedModel):
    """One OSV record. Re-imported records replace it when their ``modified`` is not older and
    their content changed; a withdrawn record is kept with ``withdrawn`` set."""

    osv_id = models.CharField(_("OSV id"), max_length=255, unique=True)
    modified = models.DateTimeField(_("modified"))
    published = models.DateTimeField(_("published"), null=True, blank=True)
    withdrawn = models.DateTimeField(_("withdrawn"), null=True, blank=True)
    aliases = models.JSONField(_("aliases"), default=list, blank=True)
    summary = models.TextField(_("summary"), blank=True)
    severity = models.CharField(_("severity"), max_length=20, blank=True)
    cvss_vectors = models.JSONField(_("CVSS vectors"), default=list, blank=True)
    # SHA-256 of the normalised record: an unchanged record is recognised without comparing
    # every affected row.
    digest = models.CharField(_("content digest"), max_length=64)
    import_run = models.ForeignKey(
        "advisories.ImportRun",
        verbose_name=_("last changed by import"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("advisory")
        verbose_name_plural = _("advisories")
        ordering = ["osv_id"]

    def __str__(self) -> str:
        return self.osv_id


class AffectedPackage(models.Model):
    """One OSV ``affected[]`` entry, looked up by (family, name) when matching a host."""

    advisory = models.ForeignKey(
        Advisory,
        verbose_name=_("advisory"),
        on_delete=models.CASCADE,
        related_name="affected",
    )
    ecosystem = models.CharField(_("ecosystem"), max_length=255)
    family = models.CharField(_("ecosystem family"), max_length=255)
    release = models.CharField(_("release"), max_length=255, blank=True)
    name = models.CharField(_("package"), max_length=255)
    # [{"type": "ECOSYSTEM", "events": [["introduced", "0"], ["fixed", "1.2"]]}, ...]
    ranges = models.JSONField(_("ranges"), default=list, blank=True)
    versions = models.JSONField(_("affected versions"), default=list, blank=True)
    severity = models.CharField(_("severity"), max_length=20, blank=True)
    cvss_vectors = models.JSONField(_("CVSS vectors"), default=list, blank=True)

    class Meta:
        verbose_name = _("affected package")
        verbose_name_plural = _("affected packages")
        indexes = [models.Index(fields=["family", "name"], name="advisories_family_name")]

    def __str__(self) -> str:
        return f"{self.ecosystem} {self.name}"


class KevEntry(TimeStampedModel):
    """One entry of CISA's Known Exploited Vulnerabilities catalogue."""

    cve = models.CharField(_("CVE"), max_length=64, unique=True)
    vendor = models.CharField(_("vendor"), max_length=255, blank=True)
    product = models.CharField(_("product"), max_length=255, blank=True)
    name = models.CharField(_("name"), max_length=255, blank=True)
    date_added = models.DateField(_("date added"))
    due_date = models.DateField(_("due date"), null=True, blank=True)
    known_ransomware = models.BooleanField(_("known ransomware use"), default=False)

    class Meta:
        verbose_name = _("known exploited vulnerability")
        verbose_name_plural = _("known exploited vulnerabilities")
        ordering = ["-date_added", "cve"]

    def __str__(self) -> str:
        return self.cve


class EolCycle(TimeStampedModel):
    """One release cycle of a product and the end of its vendor support, per source."""

    product = models.CharField(_("product"), max_length=100)
    cycle = models.CharField(_("cycle"), max_length=100)
    source = models.CharField(_("source"), max_length=32)
    codename = models.CharField(_("codename"), max_length=100, blank=True)
    release_date = models.DateField(_("release date"), null=True, blank=True)
    eol = models.DateField(_("end of support"), null=True, blank=True)
    eol_date_unknown = models.BooleanField(_("ended, date unknown"), default=False)
    extended = models.DateField(_("end of extended support"), null=True, blank=True)
    extended_open = models.BooleanField(_("extended support without an end date"), default=False)
    lts = models.BooleanField(_("long-term support"), default=False)

    class Meta:
        verbose_name = _("release cycle")
        verbose_name_plural = _("release cycles")
        ordering = ["product", "source", "cycle"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "cycle", "source"], name="advisories_eolcycle_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.product} {self.cycle} ({self.source})"


class ImportRun(TimeStampedModel):
    """One ``mamori advisories import``: what was read, what it changed, what was refused."""

    class State(models.TextChoices):
        RUNNING = "running", _("running")
        SUCCEEDED = "succeeded", _("succeeded")
        BAD_RECORDS = "bad_records", _("succeeded with bad records")
        FAILED = "failed", _("failed")

    # Bad (and skipped) records listed in full up to this many; the count keeps going.
    MAX_LISTED_BAD = 1000

    requested_by = models.CharField(_("requested by"), max_length=150, blank=True)
    paths = models.JSONField(_("paths"), default=list)
    state = models.CharField(_("state"), max_length=20, choices=State, default=State.RUNNING)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    added = models.PositiveIntegerField(_("added"), default=0)
    changed = models.PositiveIntegerField(_("changed"), default=0)
    unchanged = models.PositiveIntegerField(_("unchanged"), default=0)
    withdrawn = models.PositiveIntegerField(_("withdrawn"), default=0)
    bad = models.PositiveIntegerField(_("bad"), default=0)
    # Counts per kind of record: {"osv": {"added": 1, ...}, "kev": {...}, "eol": {...}}
    counts = models.JSONField(_("counts by kind"), default=dict, blank=True)
    bad_records = models.JSONField(_("bad records"), default=list, blank=True)
    # Records not written for being older than the stored ones, and parts of records (an
    # affected entry, a range) left out: {"where", "id", "part", "reason"}, "part" empty for a
    # whole record. They do not make a run fail: the rest of each record was imported.
    skipped = models.PositiveIntegerField(_("skipped"), default=0)
    skipped_records = models.JSONField(_("skipped records and parts"), default=list, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("advisory import")
        verbose_name_plural = _("advisory imports")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.state}"


class IndexGeneration(models.Model):
    """A single row that changes whenever an import changed advisories, KEV or lifecycle data.

    Each process keeps its matching index in memory and rebuilds it only when this row moved.
    ``token`` changes with every bump, so a counter rolled back and bumped again (tests, a
    restored backup) is never mistaken for the generation a process already holds."""

    SINGLETON = 1

    value = models.BigIntegerField(_("generation"), default=0)
    token = models.UUIDField(_("token"), default=uuid.uuid4)

    class Meta:
        verbose_name = _("index generation")
        verbose_name_plural = _("index generation")

    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def current(cls) -> tuple[int, uuid.UUID | None]:
        row = cls.objects.filter(pk=cls.SINGLETON).values_list("value", "token").first()
        return row if row is not None else (0, None)

    @classmethod
    def bump(cls) -> None:
        """Move the generation; call inside the transaction that changed the data."""
        updated = cls.objects.filter(pk=cls.SINGLETON).update(
            value=F("value") + 1, token=uuid.uuid4()
        )
        if not updated:
            cls.objects.create(pk=cls.SINGLETON, value=1)
