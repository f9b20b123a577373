"""Supply-chain business logic: critical services, campaigns, invitations and answers, and the
``mamori.supplygraph/1`` export and import. Views and tasks call these; they decide nothing.

Every change that others must be able to trace is recorded in the audit trail in the same
transaction; e-mails are queued in the outbox in the same transaction and go out after it
commits (``core.outbox``), once each (``core.mail.send_once``).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.mail import BadHeaderError, EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from mamori.audit.services import record
from mamori.certificates.models import Certificate
from mamori.core import outbox
from mamori.core.errors import MamoriError, NotAllowed, WrongState
from mamori.core.mail import already_sent, send_once
from mamori.core.text import first_control_character, validate_single_line
from mamori.organisations import names
from mamori.organisations.access import Access
from mamori.organisations.models import Category, Membership, Organisation, Role
from mamori.supplychain import graph, permissions
from mamori.supplychain.models import (
    Campaign,
    Disclosure,
    Entity,
    HearingNote,
    Invitation,
    InvitationStatus,
    Need,
    Node,
    NodeKind,
    Provision,
    Site,
    hash_invitation_token,
    invitation_link_token,
)

log = logging.getLogger(__name__)

INVITATION_TTL = dt.timedelta(days=60)
REMINDER_WINDOW = dt.timedelta(days=7)
OWN_ENTITY_KEY = "self"


class GraphImportError(MamoriError):
    """The document cannot be imported; ``errors`` names each offending id."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__(self.errors[0] if self.errors else _("The graph cannot be imported."))


# --- Critical services ------------------------------------------------------------------------


def own_entity(organisation: Organisation) -> Entity:
    """The entity that stands for the graph owner itself (its critical services' provider)."""
    entity, _created = Entity.objects.get_or_create(
        owner=organisation,
        key=OWN_ENTITY_KEY,
        defaults={
            "name_ja": organisation.name_ja,
            "name_en": organisation.name_en,
            "corporate_number": organisation.corporate_number,
            "country": organisation.country,
            "organisation": organisation,
        },
    )
    return entity


def create_service(actor, access: Access, organisation: Organisation, **fields) -> Node:
    if not permissions.can_manage_services(access, organisation):
        raise NotAllowed(_("Only the organisation's administrators manage its critical services."))
    with transaction.atomic():
        node = Node.objects.create(
            owner=organisation,
            entity=own_entity(organisation),
            kind=NodeKind.SERVICE,
            critical=True,
            disclosure=Disclosure.FULL,
            country=fields.pop("country", "") or organisation.country,
            **fields,
        )
        record(
            actor,
            "supplychain.service_created",
            node,
            organisation=organisation,
            details={"name_ja": node.name_ja, "name_en": node.name_en},
        )
    return node


# --- Campaigns and invitations ----------------------------------------------------------------


def create_campaign(
    actor, access: Access, organisation: Organisation, *, title, services, deadline, site_url=""
) -> Campaign:
    if not permissions.can_create_campaign(access, organisation):
        raise NotAllowed(
            _("Only an institution's administrators or the scheme owner start surveys.")
        )
    services = list(services)
    if not services:
        raise MamoriError(_("Choose at least one critical service."), field="services")
    if any(s.owner_id != organisation.pk or s.kind != NodeKind.SERVICE for s in services):
        raise MamoriError(_("Choose the organisation's own critical services."), field="services")
    if deadline < timezone.localdate():
        raise MamoriError(_("The deadline is in the past."), field="deadline")
    with transaction.atomic():
        campaign = Campaign.objects.create(
            owner=organisation,
            title=title,
            deadline=deadline,
            created_by=actor,
            site_url=site_url,
        )
        campaign.services.set(services)
        record(
            actor,
            "supplychain.campaign_created",
            campaign,
            organisation=organisation,
            details={"title": title, "services": [s.pk for s in services]},
        )
    return campaign


@dataclass
class SentInvitation:
    invitation: Invitation
    token: str


def invite(
    actor,
    access: Access,
    *,
    campaign: Campaign,
    for_node: Node,
    need: str,
    supplier_name: str,
    country: str,
    email: str,
    parent: Invitation | None = None,
    site_url: str,
) -> SentInvitation:
    """Invite one supplier of ``for_node``'s need ``need``. For the first tier ``for_node`` is
    one of the campaign's services and the actor manages the campaign (Tier 1, or Tier 0 for a
    service whose tiers count from the manufacturers it invites); deeper, ``parent`` is the
    actor's own invitation and ``for_node`` its node. The supplier's node joins the graph now,
    as opaque (disclosure none), and stays so until the supplier answers."""
    need = need.strip()
    if not need:
        raise MamoriError(_("Say what the supplier provides for (the need)."), field="need")
    _single_line(need, "need")
    _single_line(supplier_name, "supplier_name")
    if parent is None:
        if not permissions.can_manage_campaign(access, campaign):
            raise NotAllowed(_("Only the survey owner's administrators invite Tier-1 suppliers."))
        if not campaign.services.filter(pk=for_node.pk).exists():
            raise MamoriError(_("Choose one of the survey's critical services."), field="service")
        tier = for_node.first_tier
    else:
        if not permissions.can_invite_from(access, parent):
            raise NotAllowed(_("Only the respondent invites its own suppliers."))
        if for_node.pk != parent.node_id or parent.campaign_id != campaign.pk:
            raise MamoriError(_("Suppliers are invited for your own needs only."))
        tier = parent.tier + 1
    inviter = parent.organisation if parent is not None else campaign.owner
    today = timezone.localdate()
    with transaction.atomic():
        entity = Entity.objects.create(
            owner=campaign.owner, name_ja=supplier_name, name_en=supplier_name, country=country
        )
        node = Node.objects.create(
            owner=campaign.owner,
            campaign=campaign,
            entity=entity,
            kind=NodeKind.ICT,
            name_ja=supplier_name,
            name_en=supplier_name,
            country=country,
            disclosure=Disclosure.NONE,
        )
        need_row, _created = Need.objects.get_or_create(node=for_node, name=need)
        Provision.objects.create(need=need_row, provider=node)
        invitation = Invitation(
            campaign=campaign,
            parent=parent,
            tier=tier,
            node=node,
            email=email,
            supplier_name=supplier_name,
            expires_at=timezone.now() + INVITATION_TTL,
            due_on=max(campaign.deadline, today + dt.timedelta(days=14))
            if parent is not None
            else campaign.deadline,
            invited_by=actor,
            # No e-mail in the name of an organisation nobody has confirmed (asked of the
            # database: the caller's copy may predate a confirmation).
            mail_held=not Organisation.objects.filter(
                pk=inviter.pk, identity_verified=True
            ).exists(),
        )
        token = invitation.new_token()
        invitation.save()
        record(
            actor,
            "supplychain.invitation_sent",
            invitation,
            organisation=campaign.owner,
            details={
                "campaign": campaign.pk,
                "tier": tier,
                "need": need,
                "mail_held": invitation.mail_held,
            },
        )
        if not invitation.mail_held:
            link = site_url.rstrip("/") + reverse("supplychain:landing", args=[token])
            # Built here, inside the transaction, though the task sends it: a message that
            # cannot be built (a name with a line break in its subject) undoes the invitation
            # instead of failing after it.
            invitation_mail(email, inviter.name, link, invitation.due_on)
            _queue_invitation_mail(invitation, site_url, inviter.name)
    return SentInvitation(invitation, token)


def _queue_invitation_mail(invitation: Invitation, site_url: str, inviter: str) -> None:
    outbox.enqueue(
        SEND_INVITATION_MAIL,
        invitation.pk,
        invitation.link_nonce,
        site_url,
        inviter,
        translation.get_language() or settings.LANGUAGE_CODE,
    )


# The task that sends an invitation's e-mail (supplychain/tasks.py, which imports this module).
SEND_INVITATION_MAIL = "mamori.supplychain.tasks.send_invitation_mail"
# The key of a bound invitation's reminder starts so (its link is the answers page, no token).
BOUND_REMINDER_PREFIX = "bound-"


def send_invitation_mail(
    invitation_id: int,
    key: str,
    site_url: str,
    inviter: str,
    language: str,
    *,
    reminder: bool = False,
) -> bool:
    """Send an invitation's e-mail, or a reminder, once. ``key`` is the nonce of the link it
    carries (the current one, or a reminder's pending one), or for a bound invitation's reminder
    a key of its own (it links to the answers page). Once the mail server accepted a reminder
    with a pending link, that link replaces the old one. A message whose link was replaced in
    the meantime, or a reminder for an invitation no longer waiting for answers, is dropped.
    True when a message went out now."""
    invitation = (
        Invitation.objects.select_related("campaign__owner").filter(pk=invitation_id).first()
    )
    if invitation is None:
        return False
    if reminder and invitation.status != InvitationStatus.INVITED:
        Invitation.objects.filter(pk=invitation.pk, pending_link_nonce=key).update(
            pending_token_hash=None, pending_link_nonce=""
        )
        return False
    mail_key = f"supplychain-invitation:{invitation.pk}:{key}"
    if already_sent(mail_key):
        return False  # this task ran before, to the end
    base = site_url.rstrip("/")
    pending = key == invitation.pending_link_nonce and bool(key)
    if pending or (key and key == invitation.link_nonce):
        token = invitation_link_token(key)
        expected = invitation.pending_token_hash if pending else invitation.token_hash
        if hash_invitation_token(token) != expected:
            # SECRET_KEY changed since the link was made; its mail never went out, so a new
            # link in its place takes nothing from the recipient.
            return _reissue_and_send(invitation, key, pending, site_url, inviter, language)
        link = base + reverse("supplychain:landing", args=[token])
    elif reminder and key.startswith(BOUND_REMINDER_PREFIX) and invitation.organisation_id:
        link = base + reverse("supplychain:response", args=[invitation.pk])
    else:
        return False  # a newer link replaced this one before its mail went out
    context = {"inviter": inviter, "link": link, "due_on": invitation.due_on, "reminder": reminder}
    with translation.override(language):
        subject = render_to_string("supplychain/email/invitation_subject.txt", context).strip()
        body = render_to_string("supplychain/email/invitation_body.txt", context)

    def delivered() -> None:
        if pending:
            Invitation.objects.filter(pk=invitation.pk, pending_link_nonce=key).update(
                token_hash=F("pending_token_hash"),
                link_nonce=key,
                pending_token_hash=None,
                pending_link_nonce="",
            )
        if reminder:
            record(
                None,
                "supplychain.invitation_reminded",
                invitation,
                organisation=invitation.campaign.owner,
                details={"campaign": invitation.campaign_id, "tier": invitation.tier},
            )

    return send_once(
        mail_key,
        to=invitation.email,
        subject=subject,
        body=body,
        on_accepted=delivered,
    )


def _reissue_and_send(invitation, key, pending, site_url, inviter, language) -> bool:
    with transaction.atomic():
        locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if (locked.pending_link_nonce if pending else locked.link_nonce) != key:
            return False
        if pending:
            locked.new_pending_token()
            locked.save(update_fields=["pending_token_hash", "pending_link_nonce"])
            new_key = locked.pending_link_nonce
        else:
            locked.new_token()
            locked.save(update_fields=["token_hash", "link_nonce"])
            new_key = locked.link_nonce
    return send_invitation_mail(
        invitation.pk, new_key, site_url, inviter, language, reminder=pending
    )


def _single_line(value: str, field: str) -> None:
    try:
        validate_single_line(value)
    except ValidationError as exc:
        raise MamoriError(exc.messages[0], field=field) from None


def invitation_mail(
    email: str, inviter: str, link: str, due_on, *, reminder: bool = False
) -> EmailMessage:
    """The invitation (or reminder) to ``email``, the address the inviter entered, checked to
    be sendable: ``MamoriError`` if a header cannot be built from it."""
    context = {"inviter": inviter, "link": link, "due_on": due_on, "reminder": reminder}
    subject = render_to_string("supplychain/email/invitation_subject.txt", context).strip()
    body = render_to_string("supplychain/email/invitation_body.txt", context)
    message = EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [email])
    try:
        message.message()  # builds the headers: a line break in one is refused here
    except (BadHeaderError, ValueError):
        raise MamoriError(
            _(
                "The invitation e-mail cannot be built from these names or this address; "
                "nothing was saved."
            )
        ) from None
    return message


def resolve_token(token: str) -> Invitation | None:
    """The invitation a link stands for, or ``None`` for an unknown, tampered or expired link
    (callers show one page for all of them, so a link reveals nothing about the chain). A
    reminder's pending link works as soon as it exists."""
    if not token or len(token) > 200:
        return None
    digest = hash_invitation_token(token)
    invitation = (
        Invitation.objects.select_related("campaign__owner", "node__entity", "organisation")
        .filter(Q(token_hash=digest) | Q(pending_token_hash=digest))
        .first()
    )
    if invitation is None or invitation.is_expired or invitation.mail_held:
        # A held invitation was never sent: its link is not in anybody's hands yet.
        return None
    return invitation


def _require_link_usable(
    invitation: Invitation,
    link_key: str | None,
    *,
    take_pen: bool = False,
    answer_lock: str | None = None,
) -> None:
    """For an invitation not bound yet, used through its link (call with the row locked): the
    link has not expired, and if answers were saved already, they were saved from this browser
    (``Invitation.answer_lock``: the digest of the browser's ``link_key``; work done later for
    that browser, an offline file imported by a worker, carries the digest as ``answer_lock``).
    Saving answers (``take_pen``) makes this browser the one that holds them."""
    if invitation.is_expired:
        raise WrongState(_("This invitation link has expired."), code="expired")
    lock = answer_lock if answer_lock is not None else permissions.answer_lock_of(link_key)
    if invitation.answer_lock and invitation.answer_lock != lock:
        raise WrongState(
            _(
                "These answers were given in another browser. Only that browser can change "
                "them, decline the invitation or register the organisation."
            ),
            code="answered_elsewhere",
        )
    if take_pen and not invitation.answer_lock:
        if not lock:
            raise WrongState(_("Open the invitation link in this browser first."), code="no_link")
        invitation.answer_lock = lock
        invitation.save(update_fields=["answer_lock", "updated_at"])


def bind(
    actor,
    access: Access,
    invitation: Invitation,
    organisation: Organisation,
    *,
    link_key: str | None = None,
) -> Invitation:
    """Bind the invitation to the organisation that answers it: once only. A second
    organisation is refused; the bound organisation's members may come back. Through the link
    (``link_key``: the browser's key), only before it expires and, once answers were given,
    only from the browser that gave them."""
    if not permissions.can_answer_for(access, organisation):
        raise NotAllowed(_("You cannot answer for this organisation."))
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.organisation_id is not None:
            if invitation.organisation_id != organisation.pk:
                raise WrongState(_("This invitation has already been used."))
            return invitation
        _require_link_usable(invitation, link_key)
        if invitation.campaign.owner_id == organisation.pk:
            raise MamoriError(_("An organisation cannot answer its own survey."))
        invitation.organisation = organisation
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["organisation", "accepted_at", "updated_at"])
        entity = invitation.node.entity
        entity.organisation = organisation
        entity.corporate_number = entity.corporate_number or organisation.corporate_number
        entity.save(update_fields=["organisation", "corporate_number", "updated_at"])
        record(
            actor,
            "supplychain.invitation_accepted",
            invitation,
            organisation=organisation,
            details={"campaign": invitation.campaign_id, "tier": invitation.tier},
        )
    return invitation


@dataclass
class NeedRow:
    name: str
    providers: list[str]


@dataclass
class SiteRow:
    kind: str
    name: str
    country: str


class FileNotStored(MamoriError):
    """The server could not write the file (a full disk, for one): nothing was saved."""

    status = 503
    code = "file_not_stored"


def save_answers(
    actor,
    invitation: Invitation,
    *,
    answers: dict,
    sites: list[SiteRow],
    needs: list[NeedRow],
    link_key: str | None = None,
    answer_lock: str | None = None,
) -> Invitation:
    """Store the questionnaire. Access is the caller's check (``permissions.can_edit_response``).
    Before the invitation is bound, the link must not have expired and the first browser that
    saves answers (``link_key``) is the only one that can change them.

    Sites are replaced. Needs are matched by name: providers named again are kept, new names
    join as opaque nodes, others go, except suppliers already invited (those stay).

    An evidence file (``answers["certification_file"]``) passes the same checks as assessment
    evidence (allow-listed types confirmed by their content, the size limit). It is written
    last, once every row is; if anything fails it is removed again, and the file it replaces
    leaves the disk only once the new answers are committed."""
    if invitation.status == InvitationStatus.DECLINED:
        raise WrongState(_("This invitation was declined."))
    for field in ("name_ja", "name_en", "parent_name"):
        _single_line(answers.get(field) or "", field)
    upload = answers.get("certification_file")
    checked = _checked_evidence(upload) if upload else None
    node_fields = (
        "kind",
        "name_ja",
        "name_en",
        "country",
        "disclosure",
        "has_bcp",
        "recovery_hours",
        "inventory_days",
        "certification_declared",
        "certification_text",
    )
    written = None
    try:
        with transaction.atomic():
            invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
            if invitation.status == InvitationStatus.DECLINED:
                raise WrongState(_("This invitation was declined."))
            if invitation.organisation_id is None:
                _require_link_usable(invitation, link_key, take_pen=True, answer_lock=answer_lock)
            node = invitation.node
            for name in node_fields:
                if name in answers:
                    setattr(node, name, answers[name])
            if node.kind != NodeKind.PART:
                node.inventory_days = None
            node.save()
            entity = node.entity
            entity.name_ja = node.name_ja or entity.name_ja
            entity.name_en = node.name_en or entity.name_en
            entity.corporate_number = answers.get("corporate_number", entity.corporate_number)
            entity.lei = answers.get("lei", entity.lei)
            entity.country = answers.get("country_of_entity") or node.country or entity.country
            parent_name = (answers.get("parent_name") or "").strip()
            if parent_name:
                parent = Entity.objects.filter(owner=node.owner, name_ja=parent_name).first()
                if parent is None:
                    parent = Entity.objects.create(
                        owner=node.owner, name_ja=parent_name, name_en=parent_name
                    )
                entity.ultimate_parent = parent
            elif "parent_name" in answers:
                entity.ultimate_parent = None
            entity.save()
            node.sites.all().delete()
            Site.objects.bulk_create(
                [Site(node=node, kind=s.kind, name=s.name, country=s.country) for s in sites]
            )
            _reconcile_needs(node, invitation.campaign, needs)
            first = invitation.status != InvitationStatus.ANSWERED
            invitation.status = InvitationStatus.ANSWERED
            invitation.answered_at = timezone.now()
            invitation.save(update_fields=["status", "answered_at", "updated_at"])
            record(
                actor,
                "supplychain.invitation_answered",
                invitation,
                organisation=invitation.organisation,
                details={
                    "campaign": invitation.campaign_id,
                    "tier": invitation.tier,
                    "first": first,
                    "needs": len(needs),
                    "sites": len(sites),
                    **({"file_sha256": checked.sha256} if checked else {}),
                },
            )
            if checked is not None:
                replaced = node.certification_file.name
                written = _write_evidence_file(node, upload, checked)
                node.save(update_fields=["certification_file", "updated_at"])
                if replaced:
                    # robust: the answers are saved; a file that cannot be removed is logged.
                    transaction.on_commit(lambda: default_storage.delete(replaced), robust=True)
    except BaseException:
        if written:
            default_storage.delete(written)
        raise
    return invitation


def _checked_evidence(upload):
    from mamori.assessments.uploads import inspect_upload

    try:
        return inspect_upload(upload)
    except MamoriError as exc:
        raise MamoriError(exc.message, field="certification_file", code=exc.code) from None


def _write_evidence_file(node: Node, upload, checked) -> str:
    """Write the file and set its name on the node (not saved); returns the name written."""
    try:
        node.certification_file.save(checked.name, upload, save=False)
    except OSError:
        # The storage removed what it wrote (core/storage.py); the rows roll back with this.
        log.exception("storing a supplier's evidence file failed")
        raise FileNotStored(
            _("The file could not be stored, so nothing was saved. Please try again later."),
            field="certification_file",
        ) from None
    return node.certification_file.name


def _reconcile_needs(node: Node, campaign: Campaign, rows: list[NeedRow]) -> None:
    wanted: dict[str, list[str]] = {}
    for row in rows:
        name = row.name.strip()
        if name:
            names = wanted.setdefault(name, [])
            for provider in row.providers:
                provider = provider.strip()
                if provider and provider not in names:
                    names.append(provider)
    invited_ids = set(
        Invitation.objects.filter(node__provisions__need__node=node).values_list(
            "node_id", flat=True
        )
    )
    for need in node.needs.prefetch_related("provisions__provider"):
        names = wanted.pop(need.name, None)
        keep: set[str] = set(names or ())
        for provision in need.provisions.all():
            provider = provision.provider
            if provider.pk in invited_ids:
                keep.discard(provider.name_ja)
                keep.discard(provider.name_en)
                continue
            if names is not None and (provider.name_ja in keep or provider.name_en in keep):
                keep.discard(provider.name_ja)
                keep.discard(provider.name_en)
                continue
            provision.delete()
            if not provider.provisions.exists() and not hasattr(provider, "invitation"):
                entity = provider.entity
                provider.delete()
                if not entity.nodes.exists():
                    entity.delete()
        if names is None and not need.provisions.exists():
            need.delete()
            continue
        for name in (n for n in (names or []) if n in keep):
            _add_opaque_provider(node, campaign, need, name)
    for name, providers in wanted.items():
        need = Need.objects.create(node=node, name=name)
        for provider in providers:
            _add_opaque_provider(node, campaign, need, provider)


def _add_opaque_provider(node: Node, campaign: Campaign, need: Need, name: str) -> None:
    entity = Entity.objects.create(owner=node.owner, name_ja=name, name_en=name)
    provider = Node.objects.create(
        owner=node.owner,
        campaign=campaign,
        entity=entity,
        kind=NodeKind.ICT,
        name_ja=name,
        name_en=name,
        disclosure=Disclosure.NONE,
    )
    Provision.objects.create(need=need, provider=provider)


def decline(actor, invitation: Invitation, *, link_key: str | None = None) -> Invitation:
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.organisation_id is None:
            _require_link_usable(invitation, link_key)
        if invitation.status == InvitationStatus.ANSWERED:
            raise WrongState(_("An answered invitation cannot be declined."))
        invitation.status = InvitationStatus.DECLINED
        invitation.declined_at = timezone.now()
        invitation.save(update_fields=["status", "declined_at", "updated_at"])
        record(
            actor,
            "supplychain.invitation_declined",
            invitation,
            organisation=invitation.organisation,
            details={"campaign": invitation.campaign_id, "tier": invitation.tier},
        )
    return invitation


def claim_organisation(
    invitation: Invitation,
    *,
    name_ja: str,
    name_en: str,
    corporate_number: str,
    country: str,
    username: str,
    email: str,
    password: str,
    link_key: str | None = None,
    require_corporate_number: bool = True,
):
    """A supplier without an account creates its organisation and its own administrator
    account, and the invitation is bound to it. Returns the new user (the caller logs in).

    Whoever holds a link can get here, so the new organisation must not pass for another: a
    Japanese organisation gives its corporate number (check digit verified, one organisation per
    number), a name that is the same as a registered organisation's (after NFKC, case and
    spaces, legal form aside: ``organisations.names``) is refused, and a close one is recorded
    for whoever confirms it. The organisation stays *unverified* until the scheme owner or its
    inviter confirms it (``confirm_identity``); until then Mamori sends no e-mail in its name.
    (``require_corporate_number=False`` is for the demo, whose organisations are fictitious and
    must not carry a number that could be a real company's.)"""
    user_model = get_user_model()
    country = (country or "JP").upper()
    organisation = Organisation(
        name_ja=name_ja,
        name_en=name_en or name_ja,
        category=Category.IT_VENDOR,
        corporate_number=corporate_number,
        country=country,
        identity_verified=False,
    )
    user = user_model(username=username, email=email, display_name=username)
    errors: dict[str, list[str]] = {}
    try:
        organisation.full_clean()
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if require_corporate_number and country == "JP" and not corporate_number:
        errors.setdefault("corporate_number", []).append(
            _("An organisation registered in Japan gives its 13-digit corporate number.")
        )
    if corporate_number and Organisation.objects.filter(corporate_number=corporate_number).exists():
        errors.setdefault("corporate_number", []).append(
            _("An organisation with this corporate number already exists.")
        )
    resembling = _resembling(organisation)
    for resemblance in (r for r in resembling if r.same):
        errors.setdefault("name_ja", []).append(
            _(
                "%(name)s is already registered in Mamori. If it is your organisation, ask its "
                "administrator to invite you; otherwise register under your own legal name."
            )
            % {"name": resemblance.existing_name}
        )
    if user_model.objects.filter(username__iexact=username).exists():
        errors.setdefault("username", []).append(_("This user name is taken."))
    try:
        validate_password(password, user)
    except ValidationError as exc:
        errors.setdefault("password", []).extend(exc.messages)
    if errors:
        raise ValidationError(errors)
    organisation.resembles = [r.ref for r in resembling]
    try:
        with transaction.atomic():
            locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
            if locked.organisation_id is not None:
                raise WrongState(_("This invitation has already been used."))
            if locked.status == InvitationStatus.DECLINED:
                raise WrongState(_("This invitation was declined."))
            _require_link_usable(locked, link_key)
            organisation.save()
            user.set_password(password)
            user.save()
            Membership.objects.create(
                user=user, organisation=organisation, role=Role.APPLICANT_ADMIN
            )
            record(
                user,
                "organisation.created",
                organisation,
                organisation=organisation,
                details={
                    "via": "supplychain.claim",
                    "name_ja": organisation.name_ja,
                    "name_en": organisation.name_en,
                    "corporate_number": corporate_number,
                    "country": country,
                    "identity_verified": False,
                    "resembles": organisation.resembles,
                },
            )
            bind(user, Access.for_user(user), locked, organisation, link_key=link_key)
            record(
                user,
                "supplychain.invitation_claimed",
                locked,
                organisation=organisation,
                details={"campaign": locked.campaign_id, "tier": locked.tier},
            )
    except IntegrityError:
        raise ValidationError(
            {"username": [_("This user name or corporate number is already taken.")]}
        ) from None
    return user


def _resembling(organisation: Organisation) -> list[names.Resemblance]:
    """Registered organisations whose names are the same as or close to the new one's."""
    existing = (
        (pk, (name_ja, name_en))
        for pk, name_ja, name_en in Organisation.objects.values_list("pk", "name_ja", "name_en")
    )
    return names.resemblances((organisation.name_ja, organisation.name_en), existing)


def confirm_identity(actor, access: Access, organisation_id: int) -> Organisation:
    """The scheme owner, or an administrator of the organisation that invited it, confirms an
    organisation registered through a link. Its mark goes, and the invitations it sent to its
    own suppliers, held until now, are e-mailed (each with a fresh link: the held ones were
    never delivered)."""
    with transaction.atomic():
        organisation = Organisation.objects.select_for_update().filter(pk=organisation_id).first()
        if organisation is None:
            raise WrongState(_("This organisation no longer exists."))
        if organisation.identity_verified:
            raise WrongState(_("This organisation's identity is already confirmed."))
        if not permissions.can_confirm_identity(access, organisation):
            raise NotAllowed(
                _(
                    "Only the scheme owner or an administrator of the organisation that invited "
                    "it can confirm this organisation."
                )
            )
        now = timezone.now()
        organisation.identity_verified = True
        organisation.identity_confirmed_by = actor
        organisation.identity_confirmed_at = now
        organisation.save(
            update_fields=[
                "identity_verified",
                "identity_confirmed_by",
                "identity_confirmed_at",
                "updated_at",
            ]
        )
        record(
            actor,
            "organisation.identity_confirmed",
            organisation,
            organisation=organisation,
            details={
                "as": "scheme_owner" if access.is_scheme_owner else "inviter",
                "corporate_number": organisation.corporate_number,
                "resembles": organisation.resembles,
            },
        )
        held = Invitation.objects.select_for_update().filter(
            parent__organisation=organisation,
            mail_held=True,
            status=InvitationStatus.INVITED,
        )
        for invitation in held.select_related("campaign"):
            token = invitation.new_token()
            invitation.mail_held = False
            invitation.expires_at = max(invitation.expires_at, now + INVITATION_TTL)
            invitation.save(
                update_fields=["token_hash", "link_nonce", "mail_held", "expires_at", "updated_at"]
            )
            base = invitation.campaign.site_url or settings.SITE_URL
            link = base.rstrip("/") + reverse("supplychain:landing", args=[token])
            invitation_mail(invitation.email, organisation.name, link, invitation.due_on)
            record(
                actor,
                "supplychain.invitation_released",
                invitation,
                organisation=invitation.campaign.owner,
                details={"campaign": invitation.campaign_id, "tier": invitation.tier},
            )
            _queue_invitation_mail(invitation, base, organisation.name)
    return organisation


# --- Hearings ---------------------------------------------------------------------------------


def record_hearing(
    actor,
    access: Access,
    invitation: Invitation,
    *,
    held_on: dt.date,
    interviewer: str,
    participants: str = "",
    notes: str,
    follow_ups: str = "",
) -> HearingNote:
    """Record the notes of a hearing the survey owner held with the invitation's supplier. The
    trail keeps who recorded what and when, and a digest of the text (not the text: notes are
    the owner's confidential record)."""
    campaign = invitation.campaign
    if not permissions.can_record_hearing(access, campaign):
        raise NotAllowed(_("Only the survey owner's administrators record hearings."))
    interviewer, notes = interviewer.strip(), notes.strip()
    if held_on > timezone.localdate():
        raise MamoriError(_("A hearing is recorded once it has been held."), field="held_on")
    if not interviewer:
        raise MamoriError(_("Say who held the hearing."), field="interviewer")
    if not notes:
        raise MamoriError(_("Write down what was said."), field="notes")
    with transaction.atomic():
        note = HearingNote.objects.create(
            invitation=invitation,
            held_on=held_on,
            interviewer=interviewer,
            participants=participants.strip(),
            notes=notes,
            follow_ups=follow_ups.strip(),
            recorded_by=actor,
        )
        record(
            actor,
            "supplychain.hearing_recorded",
            note,
            organisation=campaign.owner,
            details={
                "campaign": campaign.pk,
                "invitation": invitation.pk,
                "held_on": held_on.isoformat(),
            },
            after={
                "interviewer": note.interviewer,
                "participants": note.participants,
                "notes": note.notes,
                "follow_ups": note.follow_ups,
            },
        )
    return note


# --- Tracking and reminders -------------------------------------------------------------------


def tracking(invitations) -> list[dict]:
    """Invited / answered / overdue / declined counts per tier, tiers in order."""
    today = timezone.localdate()
    rows: dict[int, dict] = {}
    for tier, status, due_on in invitations.values_list("tier", "status", "due_on"):
        row = rows.setdefault(
            tier, {"tier": tier, "invited": 0, "answered": 0, "overdue": 0, "declined": 0}
        )
        row["invited"] += 1
        if status == InvitationStatus.ANSWERED:
            row["answered"] += 1
        elif status == InvitationStatus.DECLINED:
            row["declined"] += 1
        elif due_on < today:
            row["overdue"] += 1
    return [rows[tier] for tier in sorted(rows)]


MIN_SECTOR_INSTITUTIONS = 3


def sector_tracking() -> dict:
    """Aggregates across every campaign, without names: for the scheme owner."""
    institutions = Campaign.objects.values("owner_id").distinct().count()
    return {
        "institutions": institutions,
        "shown": institutions >= MIN_SECTOR_INSTITUTIONS,
        "campaigns": Campaign.objects.count(),
        "tiers": tracking(Invitation.objects.all())
        if institutions >= MIN_SECTOR_INSTITUTIONS
        else [],
    }


def send_due_reminders(now=None) -> int:
    """Queue reminders for overdue invitations, once per invitation per reminder window; returns
    how many. An unbound invitation gets a fresh link (only the token's hash is kept, so the old
    link cannot be re-sent), pending until the reminder is delivered (``send_invitation_mail``);
    a bound one points its organisation to its answers page."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    window_start = now - REMINDER_WINDOW
    queued = 0
    candidates = (
        Invitation.objects.overdue(today)
        .filter(campaign__deadline__gte=today - dt.timedelta(days=90), mail_held=False)
        .exclude(last_reminded_at__gt=window_start)
        .select_related("campaign__owner", "parent__organisation", "organisation")
    )
    for invitation in candidates:
        with transaction.atomic():
            claimed = (
                Invitation.objects.filter(pk=invitation.pk, status=InvitationStatus.INVITED)
                .exclude(last_reminded_at__gt=window_start)
                .update(last_reminded_at=now)
            )
            if not claimed:
                continue  # another worker reminded it a moment ago
            if invitation.organisation_id is None:
                # A reminder still undelivered from an earlier window is replaced by this one.
                invitation.new_pending_token()
                invitation.expires_at = max(invitation.expires_at, now + INVITATION_TTL)
                invitation.save(
                    update_fields=["pending_token_hash", "pending_link_nonce", "expires_at"]
                )
                key = invitation.pending_link_nonce
            else:
                key = BOUND_REMINDER_PREFIX + secrets.token_hex(16)
            inviter = (
                invitation.parent.organisation.name
                if invitation.parent_id and invitation.parent.organisation_id
                else invitation.campaign.owner.name
            )
            outbox.enqueue(
                SEND_INVITATION_MAIL,
                invitation.pk,
                key,
                invitation.campaign.site_url or settings.SITE_URL,
                inviter,
                settings.LANGUAGE_CODE,
                reminder=True,
            )
        queued += 1
    return queued


# --- Export and import of mamori.supplygraph/1 --------------------------------------------------


def _certified_org_ids(nodes) -> set[int]:
    org_ids = {n.entity.organisation_id for n in nodes if n.entity.organisation_id}
    if not org_ids:
        return set()
    return set(
        Certificate.objects.filter(organisation_id__in=org_ids)
        .currently_valid()
        .values_list("organisation_id", flat=True)
    )


def export_graph(subject: Campaign | Organisation) -> dict:
    """The chain as a ``mamori.supplygraph/1`` document: for a campaign, its services and the
    suppliers found by it; for an organisation, its whole graph. Non-respondents appear with
    disclosure ``none``. The result is validated against the format before it is returned."""
    if isinstance(subject, Campaign):
        services = subject.services.values("pk")
        nodes = list(
            Node.objects.filter(Q(pk__in=services) | Q(campaign=subject))
            .select_related("entity__ultimate_parent")
            .order_by("pk")
        )
    else:
        nodes = list(
            Node.objects.filter(owner=subject)
            .select_related("entity__ultimate_parent")
            .order_by("pk")
        )
    included = {n.pk: n for n in nodes}
    certified_orgs = _certified_org_ids(nodes)
    out_nodes = []
    for node in nodes:
        entity = node.entity
        item = {
            "id": node.key,
            "entity": entity.exchange_id,
            "name": node.name_ja or node.name_en,
            "country": node.country,
            "critical": node.critical,
            "certified": (entity.organisation_id in certified_orgs) or node.declared_certified,
            "disclosure": node.disclosure,
            "kind": node.kind,
        }
        if node.name_en:
            item["name_en"] = node.name_en
        if entity.ultimate_parent_id:
            item["parent"] = entity.ultimate_parent.exchange_id
        out_nodes.append(item)
    requirements = []
    provisions = (
        Provision.objects.filter(need__node_id__in=included, provider_id__in=included)
        .select_related("need")
        .order_by("need__node_id", "need_id", "pk")
    )
    grouped: dict[int, tuple[Need, list[str]]] = {}
    for provision in provisions:
        need = provision.need
        grouped.setdefault(need.pk, (need, []))[1].append(included[provision.provider_id].key)
    for need, providers in grouped.values():
        requirements.append(
            {"node": included[need.node_id].key, "need": need.name, "providers": providers}
        )
    document = {"schema": graph.SCHEMA, "nodes": out_nodes, "requirements": requirements}
    graph.from_dict(document)  # raises GraphError if we ever produce something invalid
    return document


def import_graph(organisation: Organisation, document, *, actor=None) -> dict:
    """Create the document's entities, nodes and needs in the organisation's graph, all or
    nothing. Errors name the offending ids; existing ids are refused, not overwritten."""
    try:
        graph.from_dict(document)
    except graph.GraphError as exc:
        raise GraphImportError(exc.errors) from None
    nodes = document["nodes"]
    existing = set(
        Node.objects.filter(owner=organisation, key__in=[n["id"] for n in nodes]).values_list(
            "key", flat=True
        )
    )
    if existing:
        raise GraphImportError(
            [
                _("node id %(id)s already exists in this organisation's graph") % {"id": key}
                for key in sorted(existing)
            ]
        )
    for position, node in enumerate(nodes):
        for field, limit in (("id", 120), ("entity", 120), ("name", 200), ("name_en", 200)):
            if len(node.get(field) or "") > limit:
                raise GraphImportError(
                    [
                        _("nodes[%(pos)s] (%(id)s).%(field)s: longer than %(limit)s characters")
                        % {"pos": position, "id": node["id"], "field": field, "limit": limit}
                    ]
                )
        for field in ("id", "entity", "name", "name_en", "parent"):
            if first_control_character(node.get(field) or "") is not None:
                raise GraphImportError(
                    [
                        _(
                            "nodes[%(pos)s] (%(id)s).%(field)s: a line break or another control "
                            "character"
                        )
                        % {"pos": position, "id": node["id"], "field": field}
                    ]
                )
        if len(node["country"]) > 2:
            raise GraphImportError(
                [
                    _("nodes[%(pos)s] (%(id)s).country: not a two-letter country code")
                    % {"pos": position, "id": node["id"]}
                ]
            )
    for position, requirement in enumerate(document["requirements"]):
        if first_control_character(requirement["need"]) is not None:
            raise GraphImportError(
                [
                    _("requirements[%(pos)s].need: a line break or another control character")
                    % {"pos": position}
                ]
            )
    own_key = f"org-{organisation.pk}"
    created = {"nodes": 0, "entities": 0, "requirements": 0}
    with transaction.atomic():
        entities: dict[str, Entity] = {}

        def entity_for(key: str, name: str = "") -> Entity:
            if key in entities:
                return entities[key]
            if key == own_key:
                entity = own_entity(organisation)
            else:
                entity, made = Entity.objects.get_or_create(
                    owner=organisation, key=key, defaults={"name_ja": name, "name_en": name}
                )
                created["entities"] += int(made)
            entities[key] = entity
            return entity

        keyed: dict[str, Node] = {}
        for item in nodes:
            entity = entity_for(item["entity"], item["entity"])
            parent = item.get("parent")
            if parent and parent != item["entity"] and entity.ultimate_parent_id is None:
                entity.ultimate_parent = entity_for(parent, parent)
                entity.save(update_fields=["ultimate_parent", "updated_at"])
            kind = item.get("kind")
            if kind not in NodeKind.values:
                kind = NodeKind.SERVICE if item["critical"] else NodeKind.ICT
            keyed[item["id"]] = Node(
                owner=organisation,
                key=item["id"],
                entity=entity,
                kind=kind,
                name_ja=item["name"],
                name_en=item.get("name_en") or "",
                country=item["country"],
                critical=item["critical"],
                disclosure=item["disclosure"],
                certification_declared=item["certified"],
                certification_text=_("Certified according to the imported graph document.")
                if item["certified"]
                else "",
            )
        Node.objects.bulk_create(keyed.values())
        keyed = {n.key: n for n in Node.objects.filter(owner=organisation, key__in=list(keyed))}
        created["nodes"] = len(keyed)
        needs = Need.objects.bulk_create(
            [Need(node=keyed[r["node"]], name=r["need"]) for r in document["requirements"]]
        )
        if any(n.pk is None for n in needs):
            needs = [
                Need.objects.get(node=keyed[r["node"]], name=r["need"])
                for r in document["requirements"]
            ]
        Provision.objects.bulk_create(
            [
                Provision(need=need, provider=keyed[provider])
                for need, r in zip(needs, document["requirements"], strict=True)
                for provider in r["providers"]
            ]
        )
        created["requirements"] = len(needs)
        # Always on the trail; without an actor it was the command line (an operator).
        record(
            actor,
            "supplychain.graph_imported",
            organisation,
            organisation=organisation,
            details=created,
        )
    return created


def chain_of(campaign: Campaign) -> list[dict]:
    """Rows for the owner's chain table: each invitation with its need and inviter."""
    rows = []
    invitations = campaign.invitations.select_related(
        "node__entity", "organisation", "parent__node"
    ).prefetch_related("node__provisions__need__node")
    for invitation in invitations:
        needs = [p.need for p in invitation.node.provisions.all()]
        rows.append(
            {
                "invitation": invitation,
                "needs": needs,
                "inviter": invitation.parent.node if invitation.parent_id else None,
            }
        )
    return rows
