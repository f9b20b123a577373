"""The supply-chain model: critical services, supplier entities, what they supply (nodes), their
needs and the alternative providers of each need, and the cascading survey that fills it in.

The graph semantics are those of the ``mamori.supplygraph/1`` exchange format (DESIGN.md): a node
fails when any of its needs fails; a need fails when all of its providers fail. Every node
belongs to the graph of one *owner* organisation (the institution, or the scheme owner, whose
critical services the chain serves); nodes found by a survey also name their campaign.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from mamori.core.models import TimeStampedModel
from mamori.core.text import NAME_VALIDATORS

TOKEN_BYTES = 32  # 256 bits of randomness; the issue asks for at least 128


def hash_invitation_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def invitation_link_token(nonce: str) -> str:
    """The link token made from ``nonce`` with the instance's SECRET_KEY: a mail that carries a
    link can be sent again after a failure without the link itself being stored anywhere."""
    digest = salted_hmac("mamori.supplychain.invitation-link", nonce, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _node_key() -> str:
    return "n-" + secrets.token_hex(6)


def _entity_key() -> str:
    return "e-" + secrets.token_hex(6)


class Disclosure(models.TextChoices):
    FULL = "full", _("Full: all suppliers named")
    PARTIAL = "partial", _("Partial: some suppliers named")
    NONE = "none", _("None: suppliers not disclosed")


class NodeKind(models.TextChoices):
    SERVICE = "service", _("Critical service")
    ICT = "ict", _("ICT service")
    PART = "part", _("Physical part or product")


class Criticality(models.TextChoices):
    CRITICAL = "critical", _("Critical or important function")
    IMPORTANT = "important", _("Important, not critical")
    OTHER = "other", _("Other")


class Reliance(models.TextChoices):
    # The DORA register of information asks how far a function relies on an ICT service.
    NOT_SIGNIFICANT = "not_significant", _("Not significant")
    LOW = "low", _("Low reliance")
    MATERIAL = "material", _("Material reliance")
    FULL = "full", _("Full reliance")


class Substitutability(models.TextChoices):
    EASY = "easy", _("Easily substitutable")
    MEDIUM = "medium", _("Substitutable with some difficulty")
    HARD = "hard", _("Highly complex to substitute")
    NONE = "none", _("Not substitutable")


class TierOrigin(models.TextChoices):
    """Where tier numbers start. An institution counts from itself: its direct suppliers are
    Tier 1. A survey of products counts from the manufacturer (the Japanese medical-device
    survey does): the service's direct providers are the manufacturers, Tier 0, and *their*
    direct suppliers are Tier 1."""

    SERVICE = "service", _("The service: its direct providers are Tier 1")
    MANUFACTURER = (
        "manufacturer",
        _(
            "The manufacturers: the service's direct providers make the product (Tier 0); their "
            "direct suppliers are Tier 1"
        ),
    )


class SiteKind(models.TextChoices):
    PRODUCTION = "production", _("Production or service site")
    DATA = "data", _("Data location (storage or processing)")
    OFFICE = "office", _("Office or support site")


class Entity(TimeStampedModel):
    """A legal entity in one owner's graph: a supplier, or the owner itself. Once the supplier
    claims an organisation in Mamori, ``organisation`` links it (and certificates come from there)."""

    owner = models.ForeignKey(
        "organisations.Organisation",
        on_delete=models.CASCADE,
        related_name="supply_entities",
        verbose_name=_("graph owner"),
    )
    key = models.CharField(_("identifier"), max_length=120, default=_entity_key)
    name_ja = models.CharField(
        _("name (Japanese)"), max_length=200, blank=True, validators=NAME_VALIDATORS
    )
    name_en = models.CharField(
        _("name (English)"), max_length=200, blank=True, validators=NAME_VALIDATORS
    )
    corporate_number = models.CharField(_("corporate number"), max_length=13, blank=True)
    lei = models.CharField(_("LEI"), max_length=20, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True)
    ultimate_parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="subsidiaries",
        verbose_name=_("ultimate parent"),
    )
    organisation = models.ForeignKey(
        "organisations.Organisation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="supplier_entities",
        verbose_name=_("Mamori organisation"),
    )

    class Meta:
        verbose_name = _("supplier entity")
        verbose_name_plural = _("supplier entities")
        ordering = ["name_ja", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="supply_entity_key_unique")
        ]

    def __str__(self) -> str:
        return self.name or self.key

    @property
    def name(self) -> str:
        if (get_language() or "ja").startswith("en"):
            return self.name_en or self.name_ja
        return self.name_ja or self.name_en

    @property
    def exchange_id(self) -> str:
        """Claimed entities are one entity across every graph that names them."""
        return f"org-{self.organisation_id}" if self.organisation_id else self.key

    def has_valid_certificate(self) -> bool:
        if self.organisation_id is None:
            return False
        from mamori.certificates.models import Certificate

        return (
            Certificate.objects.filter(organisation_id=self.organisation_id)
            .currently_valid()
            .exists()
        )


class NodeQuerySet(models.QuerySet):
    def services(self) -> NodeQuerySet:
        return self.filter(kind=NodeKind.SERVICE)


class Node(TimeStampedModel):
    """Something one entity provides: a critical service of the owner, an ICT service or a part.
    The DORA fields (criticality, RTO/RPO, reliance, substitutability, exit plan) describe
    critical services; the BCP fields describe what a supplier delivers."""

    owner = models.ForeignKey(
        "organisations.Organisation",
        on_delete=models.CASCADE,
        related_name="supply_nodes",
        verbose_name=_("graph owner"),
    )
    campaign = models.ForeignKey(
        "supplychain.Campaign",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="nodes",
        verbose_name=_("survey"),
    )
    key = models.CharField(_("identifier"), max_length=120, default=_node_key)
    entity = models.ForeignKey(
        Entity, on_delete=models.CASCADE, related_name="nodes", verbose_name=_("entity")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=NodeKind.choices)
    name_ja = models.CharField(
        _("name (Japanese)"), max_length=200, blank=True, validators=NAME_VALIDATORS
    )
    name_en = models.CharField(
        _("name (English)"), max_length=200, blank=True, validators=NAME_VALIDATORS
    )
    country = models.CharField(_("country"), max_length=2, blank=True)
    critical = models.BooleanField(_("critical service"), default=False)
    disclosure = models.CharField(
        _("disclosure"), max_length=8, choices=Disclosure.choices, default=Disclosure.NONE
    )
    # Critical services (DORA register of information).
    criticality = models.CharField(
        _("criticality"), max_length=16, choices=Criticality.choices, blank=True
    )
    rto_hours = models.PositiveIntegerField(
        _("recovery time objective (hours)"), null=True, blank=True
    )
    rpo_hours = models.PositiveIntegerField(
        _("recovery point objective (hours)"), null=True, blank=True
    )
    reliance = models.CharField(_("reliance"), max_length=16, choices=Reliance.choices, blank=True)
    substitutability = models.CharField(
        _("substitutability"), max_length=16, choices=Substitutability.choices, blank=True
    )
    exit_plan = models.TextField(_("exit plan"), blank=True, max_length=4000)
    tier_origin = models.CharField(
        _("tiers count from"),
        max_length=16,
        choices=TierOrigin.choices,
        default=TierOrigin.SERVICE,
    )
    # What a supplier declares about what it delivers.
    has_bcp = models.BooleanField(_("has a business continuity plan"), null=True, blank=True)
    recovery_hours = models.PositiveIntegerField(_("recovery time (hours)"), null=True, blank=True)
    inventory_days = models.PositiveIntegerField(_("days of inventory"), null=True, blank=True)
    certification_declared = models.BooleanField(_("declares a certification"), default=False)
    certification_text = models.TextField(
        _("certification and evidence"), blank=True, max_length=4000
    )
    certification_file = models.FileField(
        _("evidence file"), upload_to="supplychain/evidence/", blank=True
    )

    objects = NodeQuerySet.as_manager()

    class Meta:
        verbose_name = _("supply node")
        verbose_name_plural = _("supply nodes")
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="supply_node_key_unique")
        ]

    def __str__(self) -> str:
        return self.name or self.key

    @property
    def name(self) -> str:
        if (get_language() or "ja").startswith("en"):
            return self.name_en or self.name_ja
        return self.name_ja or self.name_en

    @property
    def first_tier(self) -> int:
        """The tier of this critical service's direct providers."""
        return 0 if self.tier_origin == TierOrigin.MANUFACTURER else 1

    @property
    def name_for_inviter(self) -> str:
        """An invited supplier as its inviter named it; the supplier's own answers stay its own."""
        try:
            return self.invitation.supplier_name
        except ObjectDoesNotExist:
            return self.name

    @property
    def certified_by_mamori(self) -> bool:
        return self.entity.has_valid_certificate()

    @property
    def declared_certified(self) -> bool:
        """A declaration counts only with evidence (text or attachment)."""
        return self.certification_declared and bool(
            self.certification_text.strip() or self.certification_file
        )

    @property
    def certified(self) -> bool:
        return self.certified_by_mamori or self.declared_certified


class CriticalServiceManager(models.Manager):
    def get_queryset(self) -> NodeQuerySet:
        return NodeQuerySet(self.model, using=self._db).filter(kind=NodeKind.SERVICE)


class CriticalService(Node):
    """The owner's critical services: nodes of kind ``service``."""

    objects = CriticalServiceManager()

    class Meta:
        proxy = True
        verbose_name = _("critical service")
        verbose_name_plural = _("critical services")


class Site(models.Model):
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="sites")
    kind = models.CharField(_("kind"), max_length=16, choices=SiteKind.choices)
    name = models.CharField(_("name or city"), max_length=200, blank=True)
    country = models.CharField(_("country"), max_length=2)

    class Meta:
        verbose_name = _("site")
        verbose_name_plural = _("sites")
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.country})"


class Need(models.Model):
    """One requirement of a node; it is met while any of its providers works."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="needs")
    name = models.CharField(_("need"), max_length=200)
    providers = models.ManyToManyField(
        Node, through="Provision", related_name="provides", verbose_name=_("providers")
    )

    class Meta:
        verbose_name = _("need")
        verbose_name_plural = _("needs")
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["node", "name"], name="supply_need_unique")]

    def __str__(self) -> str:
        return self.name


class Provision(models.Model):
    need = models.ForeignKey(Need, on_delete=models.CASCADE, related_name="provisions")
    provider = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="provisions")

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["need", "provider"], name="supply_provision_unique")
        ]

    def __str__(self) -> str:
        return f"{self.need} ← {self.provider}"


# --- The cascading survey -------------------------------------------------------------------


class CampaignQuerySet(models.QuerySet):
    def visible_to(self, access) -> CampaignQuerySet:
        """Only the owning organisation's members see a campaign (and its whole chain)."""
        return self.filter(owner_id__in=access.organisation_ids)


class Campaign(TimeStampedModel):
    owner = models.ForeignKey(
        "organisations.Organisation",
        on_delete=models.PROTECT,
        related_name="supply_campaigns",
        verbose_name=_("owner"),
    )
    title = models.CharField(_("title"), max_length=200)
    services = models.ManyToManyField(
        Node, related_name="campaigns", verbose_name=_("critical services")
    )
    deadline = models.DateField(_("answer by"))
    # The address invitations were sent from, for links in reminders sent without a request.
    site_url = models.URLField(_("site address"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    objects = CampaignQuerySet.as_manager()

    class Meta:
        verbose_name = _("supplier survey")
        verbose_name_plural = _("supplier surveys")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.title


class InvitationStatus(models.TextChoices):
    INVITED = "invited", _("Invited")
    ANSWERED = "answered", _("Answered")
    DECLINED = "declined", _("Declined")


class InvitationQuerySet(models.QuerySet):
    def visible_to(self, access) -> InvitationQuerySet:
        """The campaign owner sees every invitation of its campaigns; a respondent sees the
        invitations it answers and those it sent itself (not the answers to them)."""
        return self.filter(
            models.Q(campaign__owner_id__in=access.organisation_ids)
            | models.Q(organisation_id__in=access.organisation_ids)
            | models.Q(parent__organisation_id__in=access.organisation_ids)
        )

    def overdue(self, today=None) -> InvitationQuerySet:
        today = today or timezone.localdate()
        return self.filter(status=InvitationStatus.INVITED, due_on__lt=today)


class Invitation(TimeStampedModel):
    """An invitation to one supplier. Its node (created with it, disclosure *none*) stands for
    the supplier in the graph until the supplier answers. The token itself is never stored: only
    its hash, and the random nonce it is made from with SECRET_KEY (``invitation_link_token``),
    so its e-mail can be sent again while the mail server is down. A reminder's new link is
    *pending* (it works, but the old one too) until the mail server accepted the reminder: a
    link the recipient never received never retires the one they have."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="invitations", verbose_name=_("survey")
    )
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="children",
        verbose_name=_("invited by (respondent)"),
    )
    tier = models.PositiveSmallIntegerField(_("tier"))
    node = models.OneToOneField(
        Node, on_delete=models.CASCADE, related_name="invitation", verbose_name=_("supplier node")
    )
    email = models.EmailField(_("e-mail"))
    # The name the inviter gave: what the inviter sees, even after the supplier answers.
    supplier_name = models.CharField(_("supplier name"), max_length=200, validators=NAME_VALIDATORS)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    link_nonce = models.CharField(max_length=64, blank=True, editable=False)
    pending_token_hash = models.CharField(
        max_length=64, unique=True, null=True, blank=True, editable=False
    )
    pending_link_nonce = models.CharField(max_length=64, blank=True, editable=False)
    expires_at = models.DateTimeField(_("link expires"))
    due_on = models.DateField(_("answer by"))
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=InvitationStatus.choices,
        default=InvitationStatus.INVITED,
    )
    # Bound on first use: from then on only this organisation's members may use the link.
    organisation = models.ForeignKey(
        "organisations.Organisation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="supply_invitations",
        verbose_name=_("answering organisation"),
    )
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    declined_at = models.DateTimeField(_("declined"), null=True, blank=True)
    last_reminded_at = models.DateTimeField(_("last reminder"), null=True, blank=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    # Sent by an organisation whose identity nobody has confirmed yet: Mamori sends no e-mail in
    # its name until the scheme owner or its own inviter confirms it; then it goes out.
    mail_held = models.BooleanField(_("e-mail held until the inviter is confirmed"), default=False)
    # Before an organisation is bound, the first browser that saves answers holds the pen:
    # the SHA-256 of a random key kept in that browser's session. Others who hold the link may
    # read the answers, not change them, decline them or claim them.
    answer_lock = models.CharField(max_length=64, blank=True, editable=False)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        verbose_name = _("supplier invitation")
        verbose_name_plural = _("supplier invitations")
        ordering = ["tier", "pk"]
        indexes = [models.Index(fields=["status", "due_on"])]

    def __str__(self) -> str:
        return f"{self.node} (tier {self.tier})"

    @property
    def inviter_name(self) -> str:
        if self.parent_id is None:
            return self.campaign.owner.name
        parent = self.parent
        return parent.organisation.name if parent.organisation_id else parent.node.entity.name

    @property
    def inviter_organisation(self):
        """The organisation in whose name the invitation was sent (for its identity mark)."""
        if self.parent_id is None:
            return self.campaign.owner
        return self.parent.organisation if self.parent.organisation_id else None

    @property
    def is_overdue(self) -> bool:
        return self.status == InvitationStatus.INVITED and self.due_on < timezone.localdate()

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    def new_token(self) -> str:
        """Set a fresh token (the old link stops working) and return it; the caller saves."""
        self.link_nonce = secrets.token_urlsafe(TOKEN_BYTES)
        token = invitation_link_token(self.link_nonce)
        self.token_hash = hash_invitation_token(token)
        return token

    def new_pending_token(self) -> str:
        """A fresh token beside the current one (both links work); ``promote`` retires the old
        one once the new one was delivered. The caller saves."""
        self.pending_link_nonce = secrets.token_urlsafe(TOKEN_BYTES)
        token = invitation_link_token(self.pending_link_nonce)
        self.pending_token_hash = hash_invitation_token(token)
        return token


class HearingNoteQuerySet(models.QuerySet):
    def visible_to(self, access) -> HearingNoteQuerySet:
        """Notes belong to the surveying organisation: only its members read them (the supplier
        heard does not)."""
        return self.filter(invitation__campaign__owner_id__in=access.organisation_ids)


class HearingNote(TimeStampedModel):
    """Notes of a hearing (an interview) the surveying organisation held with one supplier of its
    survey: the Japanese medical-device survey follows the questionnaire with hearings where the
    answers need them. The surveying organisation is the survey's owner; the supplier is the
    invitation's node (and organisation, once bound)."""

    invitation = models.ForeignKey(
        Invitation,
        on_delete=models.CASCADE,
        related_name="hearing_notes",
        verbose_name=_("supplier"),
    )
    held_on = models.DateField(_("held on"))
    interviewer = models.CharField(_("interviewer"), max_length=200)
    participants = models.CharField(_("supplier participants"), max_length=500, blank=True)
    notes = models.TextField(_("what was said"), max_length=10000)
    follow_ups = models.TextField(_("follow-ups"), max_length=4000, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("recorded by"),
    )

    objects = HearingNoteQuerySet.as_manager()

    class Meta:
        verbose_name = _("hearing note")
        verbose_name_plural = _("hearing notes")
        ordering = ["-held_on", "-pk"]

    def __str__(self) -> str:
        return f"{self.invitation.supplier_name} ({self.held_on})"


class ImportState(models.TextChoices):
    PENDING = "pending", _("Being processed")
    IMPORTED = "imported", _("Imported")
    FAILED = "failed", _("Not imported")


class OfflineImport(TimeStampedModel):
    """One uploaded offline questionnaire (``offline``). The request stores the file here and
    answers at once; a worker parses and imports it (``offline_import.process_upload``) and
    records the outcome: imported with a summary, or the errors by sheet and row. The file's
    bytes are dropped once it has been processed."""

    invitation = models.ForeignKey(
        Invitation,
        on_delete=models.CASCADE,
        related_name="offline_imports",
        verbose_name=_("supplier invitation"),
    )
    # None for a link holder without an account (and when the account is deleted).
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    file_name = models.CharField(_("file name"), max_length=200)
    content = models.BinaryField(_("file"), blank=True)
    # The errors are written in the uploader's language, and invitations the import sends
    # link to the address the upload came through.
    language = models.CharField(_("language"), max_length=8)
    site_url = models.CharField(_("site address"), max_length=200)
    # The digest of the uploading browser's key (``permissions.answer_lock_of``): before the
    # invitation is bound, only the browser holding the answers may replace them.
    answer_lock = models.CharField(max_length=64, blank=True, editable=False)
    state = models.CharField(
        _("state"), max_length=8, choices=ImportState.choices, default=ImportState.PENDING
    )
    errors = models.JSONField(_("errors"), default=list, blank=True)
    summary = models.JSONField(_("summary"), default=dict, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("offline questionnaire import")
        verbose_name_plural = _("offline questionnaire imports")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.state})"

    @property
    def is_pending(self) -> bool:
        return self.state == ImportState.PENDING
