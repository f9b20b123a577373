"""Issuing, revoking and reminding about certificates."""

from __future__ import annotations

import datetime as dt
import secrets

from dateutil.relativedelta import relativedelta
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mamori.audit.services import record
from mamori.certificates.models import Certificate
from mamori.certificates.tasks import render_certificate_pdf
from mamori.core import outbox
from mamori.core.errors import MamoriError, NotAllowed, WrongState
from mamori.organisations.access import Access

# Crockford's base32 without look-alike characters: numbers are read aloud and typed by hand.
NUMBER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LEVEL_PREFIX = {"CE": "CE", "PLUS": "CEP"}


def new_number(level: str, issued_on: dt.date) -> str:
    suffix = "".join(secrets.choice(NUMBER_ALPHABET) for _ in range(8))
    return f"{LEVEL_PREFIX.get(level, 'CE')}-{issued_on.year}-{suffix}"


def scope_text(assessment) -> str:
    """What the certificate prints as its scope: the applicant's description of a sub-set, or
    'the whole organisation'."""
    from mamori.assessments.models import Answer

    scope = assessment.catalogue.scope
    values = dict(
        Answer.objects.filter(
            assessment=assessment,
            question__qid__in=[scope.get("kind_question"), scope.get("description_question")],
        ).values_list("question__qid", "value")
    )
    if values.get(scope.get("kind_question")) == "subset" and values.get(
        scope.get("description_question")
    ):
        return str(values[scope["description_question"]])
    return "組織全体 / Whole organisation"


def issue(
    user,
    *,
    level: str,
    organisation,
    certification_body,
    scope_text: str,
    catalogue_version: str,
    issued_on: dt.date,
    months: int,
    assessment=None,
    plus_audit=None,
    details: dict | None = None,
) -> Certificate:
    """The one way a certificate comes to be, whatever its level (inside the caller's
    transaction): a fresh number, the organisation's names as they are today, validity from the
    issue day, an audit entry, and the PDF rendered once the transaction commits."""
    fields = {
        "organisation": organisation,
        "assessment": assessment,
        "plus_audit": plus_audit,
        "certification_body": certification_body,
        "organisation_name_ja": organisation.name_ja,
        "organisation_name_en": organisation.name_en,
        "level": level,
        "scope_text": scope_text,
        "catalogue_version": catalogue_version,
        "issued_on": issued_on,
        "expires_on": issued_on + relativedelta(months=months),
        "issued_by": user,
    }
    source = {"assessment": assessment} if assessment is not None else {"plus_audit": plus_audit}
    for _attempt in range(5):
        try:
            with transaction.atomic():
                certificate = Certificate.objects.create(
                    number=new_number(level, issued_on), **fields
                )
            break
        except IntegrityError:
            # A second certificate for the same assessment or audit is refused by its unique
            # constraint; only a number that happened to be taken is worth another draw.
            if Certificate.objects.filter(**source).exists():
                raise
    else:  # pragma: no cover - 32^8 numbers a year
        raise MamoriError(_("Could not allocate a certificate number; try again."))
    record(
        user,
        "certificate.issued",
        certificate,
        organisation=organisation,
        details={
            "number": certificate.number,
            "level": certificate.level,
            "expires_on": certificate.expires_on.isoformat(),
            **(details or {}),
        },
    )
    outbox.enqueue(render_certificate_pdf, certificate.pk)
    return certificate


def issue_certificate(user, assessment, decision) -> Certificate:
    """The certificate of a passed self-assessment, issued on the decision day."""
    return issue(
        user,
        level=assessment.level,
        organisation=assessment.organisation,
        certification_body=assessment.certification_body,
        scope_text=scope_text(assessment),
        catalogue_version=assessment.catalogue.version,
        issued_on=timezone.localdate(decision.decided_at),
        months=assessment.catalogue.settings["certificate_months"],
        assessment=assessment,
        details={"assessment": assessment.pk},
    )


def can_revoke(access: Access, certificate: Certificate) -> bool:
    return certificate.certification_body_id in access.assessor_body_ids or access.is_scheme_owner


def revoke(user, access: Access, certificate_id: int, reason: str) -> Certificate:
    reason = (reason or "").strip()
    if not reason:
        raise MamoriError(
            _("Give the reason for revoking; it is recorded in the audit trail."), field="reason"
        )
    if len(reason) > 2000:
        raise MamoriError(_("Keep the reason under 2,000 characters."), field="reason")
    with transaction.atomic():
        certificate = Certificate.objects.select_for_update().get(pk=certificate_id)
        if not can_revoke(access, certificate):
            raise NotAllowed(
                _("Only the issuing certification body or the scheme owner can revoke.")
            )
        if certificate.revoked_at is not None:
            raise WrongState(_("This certificate is already revoked."), code="already_revoked")
        certificate.revoked_at = timezone.now()
        certificate.revoked_reason = reason
        certificate.revoked_by = user
        # The PDF as issued is withdrawn at once; one that says "revoked" replaces it.
        issued_pdf = certificate.pdf.name
        certificate.pdf = ""
        certificate.save(update_fields=["revoked_at", "revoked_reason", "revoked_by", "pdf"])
        record(
            user,
            "certificate.revoked",
            certificate,
            organisation=certificate.organisation,
            details={"number": certificate.number},
            after={"reason": reason},
        )
        if issued_pdf:
            # Once no row names it, and before the new one takes its name (should this not
            # happen, the clean-up removes it later).
            transaction.on_commit(lambda: default_storage.delete(issued_pdf), robust=True)
        outbox.enqueue(render_certificate_pdf, certificate.pk)
    return certificate
