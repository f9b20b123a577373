"""Saving an uploaded offline questionnaire (see ``offline``): the same effect as the answer page
followed by the invite page, all or nothing.

``process_upload`` is what the worker runs for one stored upload (``OfflineImport``, stored by
``offline_uploads.receive_upload``): parse, import, and record the outcome on the upload in the
same transaction as the answers. It is idempotent: an upload already processed is left as it
is, so a task delivered twice imports once.

The answers, sites and needs go through ``services.save_answers``; providers with an e-mail
address are invited through ``services.invite`` exactly as the invite page does (one invitation
each, the e-mail sent after the commit); providers without one join as opaque nodes, as in the
web form, and get the country and identifier from the file. Everything runs in one transaction:
if any step fails nothing is written and no e-mail is sent.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from mamori.audit.services import record
from mamori.core.errors import MamoriError, WrongState
from mamori.organisations.access import Access
from mamori.supplychain import offline, permissions, services
from mamori.supplychain.models import (
    ImportState,
    Invitation,
    InvitationStatus,
    OfflineImport,
    Provision,
)
from mamori.supplychain.offline import OfflineFileError, Parsed


def process_upload(import_id: int) -> str:
    """Parse and import one stored upload; returns its state afterwards. The file is parsed
    before the transaction (no lock held while parsing); the answers, the invitations and the
    outcome are then written together, or nothing is."""
    upload = OfflineImport.objects.filter(pk=import_id).select_related("uploaded_by").first()
    if upload is None:
        return "missing"
    if not upload.is_pending:
        return upload.state
    with translation.override(upload.language or None):
        try:
            parsed = offline.parse_upload(upload.file_name, bytes(upload.content))
        except OfflineFileError as exc:
            return _failed(upload.pk, exc.errors)
        actor = upload.uploaded_by
        access = Access.for_user(actor)
        try:
            with transaction.atomic():
                locked = OfflineImport.objects.select_for_update().get(pk=upload.pk)
                if not locked.is_pending:  # another delivery of the task finished it
                    return locked.state
                invitation = locked.invitation
                if invitation.organisation_id is not None and not permissions.can_answer_for_id(
                    access, invitation.organisation_id
                ):
                    raise OfflineFileError(
                        [_("You may no longer answer for this supplier; nothing was saved.")]
                    )
                summary = import_answers(
                    actor,
                    access,
                    invitation,
                    parsed,
                    site_url=locked.site_url,
                    answer_lock=locked.answer_lock,
                )
                _finish(locked, ImportState.IMPORTED, summary=summary)
        except OfflineFileError as exc:
            return _failed(upload.pk, exc.errors)
        except MamoriError as exc:
            return _failed(upload.pk, [str(exc.message)])
    return ImportState.IMPORTED


def _failed(import_id: int, errors: list[str]) -> str:
    with transaction.atomic():
        locked = OfflineImport.objects.select_for_update().get(pk=import_id)
        if locked.is_pending:
            _finish(locked, ImportState.FAILED, errors=[str(error) for error in errors])
        return locked.state


def _finish(upload: OfflineImport, state: str, *, summary=None, errors=None) -> None:
    upload.state = state
    upload.summary = summary or {}
    upload.errors = errors or []
    upload.content = b""  # the file is not kept once its answers are saved or refused
    upload.finished_at = timezone.now()
    upload.save(
        update_fields=["state", "summary", "errors", "content", "finished_at", "updated_at"]
    )


def import_answers(
    actor,
    access: Access,
    invitation: Invitation,
    parsed: Parsed,
    *,
    site_url: str,
    link_key: str | None = None,
    answer_lock: str | None = None,
) -> dict:
    """Save the file's answers for ``invitation``. Access is the caller's check
    (``permissions.can_edit_response``). Raises ``OfflineFileError`` naming the cells that the
    database refuses (nothing written), or ``WrongState`` for a declined invitation."""
    invitation = Invitation.objects.select_related("campaign", "node__entity").get(pk=invitation.pk)
    if invitation.status == InvitationStatus.DECLINED:
        raise WrongState(_("This invitation was declined."))
    node = invitation.node
    errors: list[str] = []
    answers = parsed.answers
    if (
        answers["certification_declared"]
        and not answers["certification_text"]
        and not node.certification_file
    ):
        errors.append(
            _at(
                parsed.refs["certification_text"],
                _("a declared certification needs evidence: describe it here"),
            )
        )
    children = {
        child.email.casefold(): child
        for child in Invitation.objects.filter(parent=invitation).prefetch_related(
            "node__provisions__need"
        )
    }
    may_invite = permissions.can_invite_from(access, invitation)
    to_invite = []
    for group in parsed.needs:
        for provider in group.providers:
            if not provider.email:
                continue
            existing = children.get(provider.email.casefold())
            if existing is not None:
                invited_for = {p.need.name for p in existing.node.provisions.all()}
                if group.name not in invited_for:
                    errors.append(
                        _at(
                            provider.email_ref,
                            _(
                                "this supplier was already invited for the need '%(need)s'; an "
                                "invitation cannot be moved to another need"
                            )
                            % {"need": ", ".join(sorted(invited_for))},
                        )
                    )
                continue  # already invited: stays as it is
            if not may_invite:
                errors.append(
                    _at(
                        provider.email_ref,
                        _(
                            "inviting suppliers needs a registered organisation: register "
                            "first, or leave the e-mail empty"
                        ),
                    )
                )
                continue
            to_invite.append((group, provider))
    if errors:
        raise OfflineFileError(errors)

    sites = [services.SiteRow(s.kind, s.name, s.country) for s in parsed.sites]
    needs = [
        services.NeedRow(group.name, [p.name for p in group.providers if not p.email])
        for group in parsed.needs
    ]
    try:
        with transaction.atomic():
            services.save_answers(
                actor,
                invitation,
                answers=answers,
                sites=sites,
                needs=needs,
                link_key=link_key,
                answer_lock=answer_lock,
            )
            for group in parsed.needs:
                for provider in group.providers:
                    if not provider.email:
                        _describe_opaque(node, group.name, provider)
            for group, provider in to_invite:
                sent = services.invite(
                    actor,
                    access,
                    campaign=invitation.campaign,
                    for_node=node,
                    need=group.name,
                    supplier_name=provider.name,
                    country=provider.country,
                    email=provider.email,
                    parent=invitation,
                    site_url=site_url,
                )
                if provider.corporate_number or provider.lei:
                    entity = sent.invitation.node.entity
                    entity.corporate_number = provider.corporate_number
                    entity.lei = provider.lei
                    entity.save(update_fields=["corporate_number", "lei", "updated_at"])
            summary = {
                "format": parsed.format,
                "sites": len(sites),
                "needs": len(needs),
                "invited": len(to_invite),
            }
            record(
                actor,
                "supplychain.answers_imported",
                invitation,
                organisation=invitation.organisation,
                details={"campaign": invitation.campaign_id, "tier": invitation.tier, **summary},
            )
    except OfflineFileError:
        raise
    except MamoriError as exc:
        raise OfflineFileError([exc.message]) from None
    return summary


def _at(ref: str, message: str) -> str:
    return f"{ref}: {message}"


def _describe_opaque(node, need_name: str, provider) -> None:
    """Country and identifier of a provider named in the file (an opaque node, not invited)."""
    provision = (
        Provision.objects.filter(need__node=node, need__name=need_name)
        .filter(Q(provider__name_ja=provider.name) | Q(provider__name_en=provider.name))
        .filter(provider__invitation__isnull=True)
        .select_related("provider__entity")
        .first()
    )
    if provision is None:  # the name belongs to an invited supplier: that one stays as it is
        return
    target = provision.provider
    target.country = provider.country
    target.save(update_fields=["country", "updated_at"])
    entity = target.entity
    entity.country = provider.country
    entity.corporate_number = provider.corporate_number
    entity.lei = provider.lei
    entity.save(update_fields=["country", "corporate_number", "lei", "updated_at"])
