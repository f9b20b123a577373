"""Early warning: what an organisation owns on the internet, the feeds that report on it, and
the alerts that tell it (and the organisations that depend on it) what was seen.

- ``Asset``: a network asset an organisation claims (an address, a prefix, a range, an AS
  number, a domain). It counts, and can raise alerts, only once verified: a domain by a DNS TXT
  record with the organisation's token, an address block or ASN by the scheme owner's approval
  with a recorded reason. Address assets keep their interval as fixed-width hex text, so
  "which claims overlap this one" is an indexed range query on both databases.
- ``AssetOverlap``: two organisations' claims that cover the same addresses or names. Reports
  on what they share go to the scheme owner, never to either organisation, until it is settled.
- ``Feed`` / ``FeedRun``: a source of reports and each import of it (rows, matches, errors by
  line). ``Observation``: a report row that concerned a verified asset, kept raw as evidence.
- ``Alert``: one thing seen about one organisation, de-duplicated by a key (the same
  observation on another day moves ``last_seen``), with a lifecycle, a deadline, the source's
  grading and a TLP label.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from mamori.core.choices import CONTROL_LABELS
from mamori.core.models import TimeStampedModel
from mamori.organisations.models import Role

# Hex digits of the widest address (IPv6, 128 bits): intervals are stored zero-padded to this
# width, so text order is number order.
ADDRESS_HEX_WIDTH = 32


def address_hex(number: int) -> str:
    return f"{number:0{ADDRESS_HEX_WIDTH}x}"


class AssetKind(models.TextChoices):
    IP = "ip", _("IP address")
    CIDR = "cidr", _("Prefix (CIDR)")
    RANGE = "range", _("Address range")
    ASN = "asn", _("AS number")
    DOMAIN = "domain", _("Domain")


ADDRESS_KINDS = frozenset({AssetKind.IP, AssetKind.CIDR, AssetKind.RANGE})


class AssetState(models.TextChoices):
    PENDING = "pending", _("Awaiting verification")
    VERIFIED = "verified", _("Verified")
    REFUSED = "refused", _("Refused")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class VerificationMethod(models.TextChoices):
    DNS_TXT = "dns_txt", _("DNS TXT record")
    APPROVAL = "approval", _("Scheme owner's approval")


class AssetQuerySet(models.QuerySet):
    def visible_to(self, access) -> AssetQuerySet:
        """An organisation's members see its assets; scheme owners see every claim (they approve
        them and settle overlaps). Nobody else sees any."""
        if access.is_scheme_owner:
            return self
        return self.filter(organisation_id__in=access.organisation_ids)

    def verified(self) -> AssetQuerySet:
        return self.filter(state=AssetState.VERIFIED)

    def overlapping(self, version: int, first: int, last: int) -> AssetQuerySet:
        return self.filter(
            ip_version=version, first_hex__lte=address_hex(last), last_hex__gte=address_hex(first)
        )


class Asset(TimeStampedModel):
    organisation = models.ForeignKey(
        "organisations.Organisation",
        on_delete=models.CASCADE,
        related_name="network_assets",
        verbose_name=_("organisation"),
    )
    kind = models.CharField(_("kind"), max_length=8, choices=AssetKind.choices)
    # The canonical text (mamori.earlywarning.assets): compressed IPv6, a prefix's network
    # address, "FIRST-LAST", the AS number's digits, the domain's A-label in lower case.
    value = models.CharField(_("value"), max_length=300)
    include_subdomains = models.BooleanField(_("subdomains included"), default=False)
    label = models.CharField(_("description"), max_length=200, blank=True)
    ip_version = models.PositiveSmallIntegerField(_("IP version"), null=True, blank=True)
    first_hex = models.CharField(max_length=ADDRESS_HEX_WIDTH, blank=True)
    last_hex = models.CharField(max_length=ADDRESS_HEX_WIDTH, blank=True)
    asn = models.PositiveBigIntegerField(_("AS number"), null=True, blank=True)
    state = models.CharField(
        _("state"), max_length=10, choices=AssetState.choices, default=AssetState.PENDING
    )
    method = models.CharField(
        _("verified by"), max_length=10, choices=VerificationMethod.choices, blank=True
    )
    verified_at = models.DateTimeField(_("verified at"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    reason = models.TextField(_("reason"), blank=True)
    # For a range hosted by a third party: the hoster's permission to have it watched.
    hoster_permission = models.FileField(
        _("hoster's permission"), upload_to="earlywarning/permissions/", blank=True
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("registered by"),
    )
    # A domain's TXT value (registry.new_verification_token), shown to its organisation.
    verification_token = models.CharField(_("verification token"), max_length=80, blank=True)
    last_checked_at = models.DateTimeField(_("last DNS check"), null=True, blank=True)
    last_check_result = models.CharField(
        _("result of the last DNS check"), max_length=300, blank=True
    )

    objects = AssetQuerySet.as_manager()

    class Meta:
        verbose_name = _("network asset")
        verbose_name_plural = _("network assets")
        ordering = ["organisation_id", "kind", "value"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "kind", "value"], name="earlywarning_asset_once"
            )
        ]
        indexes = [
            models.Index(fields=["ip_version", "first_hex", "last_hex"], name="ew_asset_interval"),
            models.Index(fields=["state", "kind"], name="ew_asset_state"),
        ]

    def __str__(self) -> str:
        shown = f"*.{self.value}" if self.include_subdomains else self.value
        return f"AS{shown}" if self.kind == AssetKind.ASN else shown

    @property
    def counts(self) -> bool:
        """Only a verified asset raises alerts."""
        return self.state == AssetState.VERIFIED


class AssetOverlap(models.Model):
    """Two organisations claim addresses or names in common. Found when a claim is made; what is
    seen there is reported to the scheme owner until they settle it."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="+")
    other = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="+")
    found_at = models.DateTimeField(_("found"), auto_now_add=True)
    observations = models.PositiveIntegerField(_("observations held back"), default=0)
    last_observed_at = models.DateTimeField(_("last observation"), null=True, blank=True)
    settled_at = models.DateTimeField(_("settled"), null=True, blank=True)
    settled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    settlement = models.TextField(_("how it was settled"), blank=True)

    class Meta:
        verbose_name = _("overlapping claim")
        verbose_name_plural = _("overlapping claims")
        constraints = [
            models.UniqueConstraint(fields=["asset", "other"], name="earlywarning_overlap_once")
        ]

    def __str__(self) -> str:
        return f"{self.asset} / {self.other}"


class FeedKind(models.TextChoices):
    NETWORK = "network", _("Network observation report")
    KEV = "kev", _("CISA KEV catalogue")
    OSV = "osv", _("OSV advisories")
    EPSS = "epss", _("EPSS scores")


class Reliability(models.TextChoices):
    """Admiralty (NATO) grading of the source."""

    A = "A", _("A: completely reliable")
    B = "B", _("B: usually reliable")
    C = "C", _("C: fairly reliable")
    D = "D", _("D: not usually reliable")
    E = "E", _("E: unreliable")
    F = "F", _("F: reliability cannot be judged")


class Credibility(models.IntegerChoices):
    """Admiralty grading of the information."""

    CONFIRMED = 1, _("1: confirmed by other sources")
    PROBABLY_TRUE = 2, _("2: probably true")
    POSSIBLY_TRUE = 3, _("3: possibly true")
    DOUBTFUL = 4, _("4: doubtful")
    IMPROBABLE = 5, _("5: improbable")
    UNKNOWN = 6, _("6: truth cannot be judged")


class Tlp(models.TextChoices):
    """Traffic Light Protocol 2.0 labels."""

    CLEAR = "clear", "TLP:CLEAR"
    GREEN = "green", "TLP:GREEN"
    AMBER = "amber", "TLP:AMBER"
    AMBER_STRICT = "amber+strict", "TLP:AMBER+STRICT"
    RED = "red", "TLP:RED"


class Feed(TimeStampedModel):
    """A source of reports. Network reports are one feed per report type (``scan_rdp``,
    ``event4_sinkhole`` ...); ``kev``, ``osv`` and ``epss`` are one each."""

    name = models.SlugField(_("name"), max_length=80, unique=True)
    kind = models.CharField(_("kind"), max_length=8, choices=FeedKind.choices)
    # A file, a folder or an http(s) address read on schedule; empty: imported by hand only.
    location = models.CharField(_("location"), max_length=500, blank=True)
    interval_minutes = models.PositiveIntegerField(_("read every (minutes)"), default=60)
    enabled = models.BooleanField(_("enabled"), default=True)
    reliability = models.CharField(
        _("source reliability"), max_length=1, choices=Reliability.choices, default=Reliability.B
    )
    credibility = models.PositiveSmallIntegerField(
        _("information credibility"),
        choices=Credibility.choices,
        default=Credibility.PROBABLY_TRUE,
    )
    tlp = models.CharField(_("TLP"), max_length=12, choices=Tlp.choices, default=Tlp.AMBER)
    last_run_at = models.DateTimeField(_("last run"), null=True, blank=True)

    class Meta:
        verbose_name = _("feed")
        verbose_name_plural = _("feeds")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def grading(self) -> str:
        return f"{self.reliability}{self.credibility}"


class RunState(models.TextChoices):
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class FeedRun(models.Model):
    # How many "file:line: message" errors a run keeps for the operator (the count is whole).
    ERROR_LINES_KEPT = 100

    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="runs")
    source = models.CharField(_("source"), max_length=500)
    # sha256 of what was read: the same file read again is recognised (and changes nothing).
    digest = models.CharField(_("digest"), max_length=64, blank=True)
    state = models.CharField(
        _("state"), max_length=8, choices=RunState.choices, default=RunState.RUNNING
    )
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    rows = models.PositiveIntegerField(_("rows read"), default=0)
    matched = models.PositiveIntegerField(_("rows about registered assets"), default=0)
    alerts_new = models.PositiveIntegerField(_("new alerts"), default=0)
    alerts_updated = models.PositiveIntegerField(_("alerts seen again"), default=0)
    errors = models.PositiveIntegerField(_("rows skipped"), default=0)
    # The first errors, "file:line: message", for the operator.
    error_lines = models.JSONField(_("errors"), default=list, blank=True)
    failure = models.TextField(_("why the run failed"), blank=True)

    class Meta:
        verbose_name = _("feed run")
        verbose_name_plural = _("feed runs")
        ordering = ["-started_at", "-pk"]
        indexes = [models.Index(fields=["feed", "-started_at"], name="ew_run_feed")]

    def __str__(self) -> str:
        return f"{self.feed} {self.started_at:%Y-%m-%d %H:%M}"


class AlertType(models.TextChoices):
    INCIDENT = "incident", _("Incident (signs of compromise)")
    NETWORK_ABUSE = "network_abuse", _("Network abuse")
    EXPOSURE = "exposure", _("Exposure")
    SOFTWARE_VULNERABILITY = "software_vulnerability", _("Software vulnerability")
    SUPPLIER_EXPOSURE = "supplier_exposure", _("Supplier exposure")


class AlertState(models.TextChoices):
    NEW = "new", _("New")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    MITIGATED = "mitigated", _("Mitigated")
    CLOSED = "closed", _("Closed")
    RISK_ACCEPTED = "risk_accepted", _("Risk accepted")
    FALSE_POSITIVE = "false_positive", _("False positive")


OPEN_STATES = frozenset({AlertState.NEW, AlertState.ACKNOWLEDGED})


class Severity(models.TextChoices):
    CRITICAL = "critical", _("Critical")
    HIGH = "high", _("High")
    MEDIUM = "medium", _("Medium")
    LOW = "low", _("Low")
    INFO = "info", _("Information")


SEVERITY_ORDER = {severity: rank for rank, severity in enumerate(Severity.values)}


class AlertQuerySet(models.QuerySet):
    def visible_to(self, access) -> AlertQuerySet:
        """An organisation's own alerts, for its members only. Scheme owners read sector
        figures (earlywarning.sector), never another organisation's alerts."""
        return self.filter(organisation_id__in=access.organisation_ids)

    def open(self) -> AlertQuerySet:
        return self.filter(state__in=OPEN_STATES)


class Alert(models.Model):
    # No index of its own: the unique (organisation, key) and the inbox index begin with it, and
    # every index more is written for each of the thousands of alerts one KEV entry raises.
    organisation = models.ForeignKey(
        "organisations.Organisation",
        on_delete=models.CASCADE,
        related_name="alerts",
        verbose_name=_("organisation"),
        db_index=False,
    )
    type = models.CharField(_("type"), max_length=24, choices=AlertType.choices)
    state = models.CharField(
        _("state"), max_length=16, choices=AlertState.choices, default=AlertState.NEW
    )
    # What makes two sightings the same alert (sha256 over the type and what was seen).
    key = models.CharField(max_length=64)
    category = models.CharField(_("category"), max_length=80)
    severity = models.CharField(
        _("severity"), max_length=8, choices=Severity.choices, default=Severity.MEDIUM
    )
    control = models.CharField(
        _("control"), max_length=32, choices=list(CONTROL_LABELS.items()), blank=True
    )
    feed = models.ForeignKey(
        Feed, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts"
    )
    asset = models.ForeignKey(
        Asset, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts"
    )
    # No constraint in the database for the three references one KEV entry writes thousands of
    # (this one, an event's and a delivery's alert): checking each at commit locks every row it
    # names and took a third of the raise (bench/earlywarning_kev.py). Django still nulls or
    # deletes them with what they name (on_delete), and nothing else writes these tables.
    host = models.ForeignKey(
        "verification.Host",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="alerts",
        db_constraint=False,
    )
    ip = models.GenericIPAddressField(_("address"), null=True, blank=True)
    port = models.PositiveIntegerField(_("port"), null=True, blank=True)
    hostname = models.CharField(_("host name"), max_length=255, blank=True)
    # Software vulnerabilities: the advisory and the package.
    cve = models.CharField(_("CVE"), max_length=40, blank=True)
    advisory = models.CharField(_("advisory"), max_length=100, blank=True)
    package = models.CharField(_("package"), max_length=200, blank=True)
    installed_version = models.CharField(_("installed version"), max_length=200, blank=True)
    kev = models.BooleanField(_("in CISA KEV"), default=False)
    kev_due = models.DateField(_("KEV due date"), null=True, blank=True)
    epss = models.FloatField(_("EPSS"), null=True, blank=True)
    epss_percentile = models.FloatField(_("EPSS percentile"), null=True, blank=True)
    reliability = models.CharField(_("source reliability"), max_length=1, default=Reliability.B)
    credibility = models.PositiveSmallIntegerField(
        _("information credibility"), default=Credibility.PROBABLY_TRUE
    )
    tlp = models.CharField(_("TLP"), max_length=12, choices=Tlp.choices, default=Tlp.AMBER)
    # Supplier exposure: the supplier's alert this notice comes from, and what is shown of it.
    source_alert = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="notices"
    )
    evidence = models.JSONField(_("evidence"), default=dict, blank=True)
    first_seen = models.DateTimeField(_("first seen"))
    last_seen = models.DateTimeField(_("last seen"))
    times_seen = models.PositiveIntegerField(_("times seen"), default=1)
    due_at = models.DateTimeField(_("to be acknowledged by"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    state_changed_at = models.DateTimeField(_("state changed"), null=True, blank=True)
    acknowledged_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)
    mitigated_at = models.DateTimeField(_("mitigated"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    reopened = models.PositiveIntegerField(_("times reopened"), default=0)
    risk_accepted_until = models.DateField(_("risk accepted until"), null=True, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = AlertQuerySet.as_manager()

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-last_seen", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "key"], name="earlywarning_alert_once")
        ]
        indexes = [
            models.Index(fields=["organisation", "state", "-last_seen"], name="ew_alert_inbox"),
            models.Index(fields=["state", "due_at"], name="ew_alert_due"),
            # Upserts look alerts up by key across organisations (``alerts._by_key``); a plain
            # index, not the LIKE twin a ``db_index`` CharField gets on PostgreSQL.
            models.Index(fields=["key"], name="ew_alert_key"),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} {self.category} ({self.get_state_display()})"

    @property
    def grading(self) -> str:
        return f"{self.reliability}{self.credibility}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


class Observation(models.Model):
    """A report row about a verified asset, kept as it came (every column) as the evidence of
    the alert it raised or updated."""

    run = models.ForeignKey(FeedRun, on_delete=models.CASCADE, related_name="observations")
    alert = models.ForeignKey(
        Alert, on_delete=models.SET_NULL, null=True, blank=True, related_name="observations"
    )
    line = models.PositiveIntegerField(_("line"))
    seen_at = models.DateTimeField(_("seen"))
    ip = models.GenericIPAddressField(_("address"), null=True, blank=True)
    port = models.PositiveIntegerField(_("port"), null=True, blank=True)
    raw = models.JSONField(_("row"), default=dict)

    class Meta:
        verbose_name = _("observation")
        verbose_name_plural = _("observations")
        ordering = ["-seen_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.run.feed} line {self.line}"


class DeadlinePolicy(models.Model):
    """Hours an organisation has to acknowledge an alert of a type, set by the scheme owner.
    A KEV-listed vulnerability follows the catalogue's ``kev_patch_days`` instead."""

    type = models.CharField(_("type"), max_length=24, choices=AlertType.choices, unique=True)
    acknowledge_hours = models.PositiveIntegerField(_("hours to acknowledge"))
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("alert deadline")
        verbose_name_plural = _("alert deadlines")

    def __str__(self) -> str:
        return f"{self.type}: {self.acknowledge_hours} h"


# --- history and sector figures -------------------------------------------------------------


class AlertEvent(models.Model):
    """One step of an alert's life (raised, a state change, reopened), never changed: the
    sector's figures for a past day are recomputed from these, whatever happened since."""

    alert = models.ForeignKey(  # no database constraint: see Alert.host
        Alert, on_delete=models.CASCADE, related_name="events", db_constraint=False
    )
    at = models.DateTimeField(_("when"))
    state = models.CharField(_("state"), max_length=16, choices=AlertState.choices)

    class Meta:
        verbose_name = _("alert event")
        verbose_name_plural = _("alert events")
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["at"], name="ew_event_at")]

    def __str__(self) -> str:
        return f"{self.alert_id} {self.state} {self.at:%Y-%m-%d %H:%M}"


class SectorSample(models.Model):
    """The sector's early-warning figures for one day (earlywarning.sector), with a digest of
    their canonical JSON: recomputing the day gives the same figures and the same digest."""

    day = models.DateField(_("day"), unique=True)
    figures = models.JSONField(_("figures"))
    digest = models.CharField(_("digest"), max_length=64)
    computed_at = models.DateTimeField(_("computed"), auto_now=True)

    class Meta:
        verbose_name = _("sector sample")
        verbose_name_plural = _("sector samples")
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self.day}"


# --- notifications: e-mail preferences, digests, webhooks (issue 11 §4) ----------------------

# What a member can ask to be e-mailed about at once: an alert type, or any KEV-listed alert.
IMMEDIATE_KEV = "kev"
IMMEDIATE_CHOICES = [*AlertType.choices, (IMMEDIATE_KEV, _("Vulnerability in CISA KEV"))]


class NotificationPreference(models.Model):
    """What one member of one organisation wants by e-mail, when they chose (without a row, the
    defaults of ``earlywarning.notify``: alert handlers get incidents and KEV at once and a
    daily digest; other members nothing). E-mail is in the user's own language."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="alert_preferences",
        verbose_name=_("user"),
    )
    organisation = models.ForeignKey(
        "organisations.Organisation",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("organisation"),
    )
    # Alert types (and "kev") mailed as soon as they are raised or reopened.
    immediate = models.JSONField(_("e-mailed at once"), default=list, blank=True)
    daily_digest = models.BooleanField(_("daily digest of the other alerts"), default=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("alert e-mail preference")
        verbose_name_plural = _("alert e-mail preferences")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organisation"], name="earlywarning_preference_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.organisation_id}"


class AlertDigest(models.Model):
    """The daily digest of one organisation's alerts of one day: queued once (the row is
    unique), marked sent once the mail server accepted every recipient's message."""

    organisation = models.ForeignKey(
        "organisations.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    day = models.DateField(_("day"))
    queued_at = models.DateTimeField(_("queued"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    recipients = models.PositiveIntegerField(_("recipients"), default=0)

    class Meta:
        verbose_name = _("alert digest")
        verbose_name_plural = _("alert digests")
        ordering = ["-day", "organisation_id"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "day"], name="earlywarning_digest_once")
        ]

    def __str__(self) -> str:
        return f"{self.organisation_id} {self.day}"


class WebhookEndpointQuerySet(models.QuerySet):
    def visible_to(self, access) -> WebhookEndpointQuerySet:
        """An organisation's webhooks, for its administrators only (they manage them)."""
        return self.filter(organisation_id__in=access.organisations_with({Role.APPLICANT_ADMIN}))


class WebhookEndpoint(TimeStampedModel):
    """A receiver of an organisation's alert events (``mamori.alert-event/1``, signed with
    ``secret``; docs/earlywarning-webhooks.md). Turned off by hand, or automatically after
    repeated failures (``webhooks.should_disable``), with the reason kept."""

    organisation = models.ForeignKey(
        "organisations.Organisation",
        on_delete=models.CASCADE,
        related_name="webhook_endpoints",
        verbose_name=_("organisation"),
    )
    # The URL as checked and normalised (webhooks.check_destination).
    url = models.CharField(_("URL"), max_length=2048)
    description = models.CharField(_("description"), max_length=200, blank=True)
    # The signing key: shown once when made or rotated, never again (the signature needs it
    # whole, so it is kept, not hashed).
    secret = models.CharField(max_length=100)
    enabled = models.BooleanField(_("enabled"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    consecutive_failures = models.PositiveIntegerField(_("failures in a row"), default=0)
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True)
    disabled_at = models.DateTimeField(_("turned off"), null=True, blank=True)
    disabled_reason = models.TextField(_("why it was turned off"), blank=True)
    secret_rotated_at = models.DateTimeField(_("secret last changed"), null=True, blank=True)

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        verbose_name = _("webhook")
        verbose_name_plural = _("webhooks")
        ordering = ["organisation_id", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "url"], name="earlywarning_webhook_url_once"
            )
        ]

    def __str__(self) -> str:
        return self.url


class WebhookEvent(models.TextChoices):
    RAISED = "alert.raised", _("Alert raised")
    REOPENED = "alert.reopened", _("Alert reopened")
    STATE_CHANGED = "alert.state_changed", _("Alert state changed")


class DeliveryState(models.TextChoices):
    PENDING = "pending", _("Waiting for its first attempt")
    FAILED = "failed", _("Failed; to be tried again")
    DELIVERED = "delivered", _("Delivered")
    GIVEN_UP = "given_up", _("Given up")


RETRYABLE_DELIVERY_STATES = frozenset({DeliveryState.PENDING, DeliveryState.FAILED})


class WebhookDelivery(models.Model):
    """One event for one webhook, and the delivery log: every attempt updates it (the
    answer's status or the error, when the next attempt is due)."""

    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("webhook"),
    )
    alert = models.ForeignKey(  # no database constraint: see Alert.host
        Alert,
        on_delete=models.CASCADE,
        related_name="webhook_deliveries",
        verbose_name=_("alert"),
        db_constraint=False,
    )
    event = models.CharField(_("event"), max_length=24, choices=WebhookEvent.choices)
    # The exact JSON text sent (signed as bytes, the same on every attempt).
    body = models.TextField(_("body"))
    attempt = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    # Who holds the delivery while an attempt runs (a random token), so two runs of the
    # delivery task never send it twice; the claim lapses with next_attempt_at.
    claim = models.CharField(max_length=32, blank=True)
    state = models.CharField(
        _("state"), max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    last_status_code = models.PositiveSmallIntegerField(_("last status"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="ew_delivery_due"),
            models.Index(fields=["endpoint", "-created_at"], name="ew_delivery_log"),
        ]

    def __str__(self) -> str:
        return f"{self.event} #{self.alert_id} → {self.endpoint_id} ({self.state})"


# --- Software feeds: KEV, OSV and EPSS (issue 11 §2) ---------------------------------------------


class AdvisoryFeedImport(models.Model):
    """The advisory import a KEV or OSV feed run made. The alerts that import raises are
    raised after the fleet's re-match (``software.raise_alerts``), possibly on a worker; this
    link lets them name the feed and count themselves on its run."""

    feed_run = models.OneToOneField(FeedRun, on_delete=models.CASCADE, related_name="+")
    import_run = models.OneToOneField(
        "advisories.ImportRun", on_delete=models.CASCADE, related_name="+"
    )

    class Meta:
        verbose_name = _("advisory import of a feed run")
        verbose_name_plural = _("advisory imports of feed runs")

    def __str__(self) -> str:
        return f"{self.feed_run} / {self.import_run}"


class EpssScore(models.Model):
    """FIRST's EPSS score of one CVE: the probability that it is exploited in the next 30
    days, and its percentile among all scored CVEs, from the newest file imported."""

    cve = models.CharField(_("CVE"), max_length=40, unique=True)
    epss = models.FloatField(_("EPSS"))
    percentile = models.FloatField(_("EPSS percentile"))
    score_date = models.DateField(_("score date"))
    model_version = models.CharField(_("model version"), max_length=64)

    class Meta:
        verbose_name = _("EPSS score")
        verbose_name_plural = _("EPSS scores")
        ordering = ["cve"]

    def __str__(self) -> str:
        return f"{self.cve} {self.epss:.5f}"
