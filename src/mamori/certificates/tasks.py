"""Background work for certificates: PDFs and expiry reminders."""

from __future__ import annotations

import logging

import segno
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from mamori.audit.services import record
from mamori.celery import app
from mamori.certificates.models import Certificate, Reminder, ReminderKind
from mamori.core.pdf import render_pdf
from mamori.core.site import absolute_url
from mamori.organisations.models import Membership, Role

log = logging.getLogger(__name__)


@app.task(name="mamori.certificates.tasks.render_certificate_pdf")
def render_certificate_pdf(certificate_id: int) -> None:
    """The certificate as a PDF: its public verification address printed and as a QR code, and
    "revoked" across it once it is (revoking renders it again)."""
    certificate = Certificate.objects.select_related("certification_body").get(pk=certificate_id)
    verify_url = absolute_url(reverse("certificates:verify", args=[certificate.number]))
    pdf = render_pdf(
        "certificates/certificate_pdf.html",
        {
            "certificate": certificate,
            "verify_url": verify_url,
            "qr_data_uri": verification_qr(verify_url).png_data_uri(scale=4, border=2),
        },
    )
    certificate.pdf.save(f"{certificate.number}.pdf", ContentFile(pdf), save=False)
    Certificate.objects.filter(pk=certificate.pk).update(pdf=certificate.pdf.name)


def verification_qr(url: str) -> segno.QRCode:
    # Level M survives a crease or a smudge on a printed page and keeps the code small.
    return segno.make(url, error="m", micro=False)


def _recipients(certificate: Certificate) -> list:
    memberships = (
        Membership.objects.filter(
            organisation_id=certificate.organisation_id,
            role__in=(Role.APPLICANT_ADMIN, Role.BOARD_SIGNATORY),
            user__is_active=True,
        )
        .exclude(user__email="")
        .select_related("user")
    )
    return sorted({membership.user for membership in memberships}, key=lambda user: user.pk)


@app.task(name="mamori.certificates.tasks.send_expiry_reminders")
def send_expiry_reminders() -> int:
    """Send the reminders that are due: 30 and 7 days before expiry and 7 days after."""
    today = timezone.localdate()
    window_start = today - timezone.timedelta(days=30)
    window_end = today + timezone.timedelta(days=30)
    candidates = Certificate.objects.filter(
        revoked_at__isnull=True, expires_on__gte=window_start, expires_on__lte=window_end
    ).select_related("organisation")
    sent = 0
    for certificate in candidates:
        kind = ReminderKind.due(certificate.expires_on, today)
        if kind is None or Reminder.objects.filter(certificate=certificate, kind=kind).exists():
            continue
        if Certificate.objects.filter(
            organisation_id=certificate.organisation_id,
            level=certificate.level,
            revoked_at__isnull=True,
            expires_on__gt=certificate.expires_on,
        ).exists():
            continue  # already renewed: nothing to remind about
        recipients = _recipients(certificate)
        try:
            with transaction.atomic():
                Reminder.objects.create(
                    certificate=certificate, kind=kind, recipients=len(recipients)
                )
                record(
                    None,
                    "certificate.reminder_sent",
                    certificate,
                    organisation=certificate.organisation,
                    details={"kind": kind, "recipients": len(recipients)},
                )
        except IntegrityError:
            continue  # another worker sent it a moment ago
        for user in recipients:
            with translation.override(user.language):
                context = {
                    "certificate": certificate,
                    "kind": kind,
                    "user": user,
                    "days_left": (certificate.expires_on - today).days,
                }
                subject = render_to_string(
                    "certificates/email/reminder_subject.txt", context
                ).strip()
                body = render_to_string("certificates/email/reminder_body.txt", context)
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
        sent += 1
        log.info("expiry reminder %s sent for certificate %s", kind, certificate.number)
    return sent
