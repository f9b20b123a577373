"""Background work for certificates: PDFs and expiry reminders."""

from __future__ import annotations

import logging

import segno
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from mamori.audit.services import record
from mamori.celery import app
from mamori.certificates.models import Certificate, Reminder, ReminderKind
from mamori.core import outbox
from mamori.core.mail import send_once
from mamori.core.pdf import render_pdf
from mamori.core.site import absolute_url
from mamori.organisations.models import Membership, Role

log = logging.getLogger(__name__)


@app.task(name="mamori.certificates.tasks.render_certificate_pdf")
def render_certificate_pdf(certificate_id: int) -> None:
    """The certificate as a PDF: its public verification address printed and as a QR code, and
    "revoked" across it once it is (revoking renders it again).

    Once only: the PDF is rendered outside any lock, then stored under the certificate's row
    lock only if the certificate still has none and was not revoked or reinstated meanwhile
    (a second run, or a render overtaken by a revocation, leaves the stored PDF alone)."""
    certificate = (
        Certificate.objects.select_related("certification_body").filter(pk=certificate_id).first()
    )
    if certificate is None or certificate.pdf:
        return  # gone, or rendered already
    verify_url = absolute_url(reverse("certificates:verify", args=[certificate.number]))
    pdf = render_pdf(
        "certificates/certificate_pdf.html",
        {
            "certificate": certificate,
            "verify_url": verify_url,
            "qr_data_uri": verification_qr(verify_url).png_data_uri(scale=4, border=2),
        },
    )
    with transaction.atomic():
        current = (
            Certificate.objects.select_for_update()
            .filter(pk=certificate_id)
            .values("pdf", "revoked_at")
            .first()
        )
        if current is None or current["pdf"] or current["revoked_at"] != certificate.revoked_at:
            return
        certificate.pdf.save(f"{certificate.number}.pdf", ContentFile(pdf), save=False)
        # Should the row not commit, no record names the file and the clean-up removes it.
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
    """Queue the reminders that are due: 30 and 7 days before expiry and 7 days after. Each is
    a ``Reminder`` row, written with its outbox message in one transaction (once per
    certificate and kind: the row is unique); ``send_expiry_reminder`` sends it. Returns how
    many were queued."""
    today = timezone.localdate()
    window_start = today - timezone.timedelta(days=30)
    window_end = today + timezone.timedelta(days=30)
    candidates = Certificate.objects.filter(
        revoked_at__isnull=True, expires_on__gte=window_start, expires_on__lte=window_end
    ).select_related("organisation")
    queued = 0
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
        try:
            with transaction.atomic():
                reminder = Reminder.objects.create(certificate=certificate, kind=kind)
                outbox.enqueue(send_expiry_reminder, reminder.pk)
        except IntegrityError:
            continue  # another worker queued it a moment ago
        queued += 1
        log.info("expiry reminder %s queued for certificate %s", kind, certificate.number)
    return queued


@app.task(name="mamori.certificates.tasks.send_expiry_reminder")
def send_expiry_reminder(reminder_id: int) -> int:
    """Send one reminder to each recipient who does not have it yet; once the mail server
    accepted every message, the reminder is marked sent and audited (once). A mail server that
    is down raises: the task is retried with backoff, and only those still without the message
    get it. Returns how many messages went out now."""
    reminder = (
        Reminder.objects.select_related("certificate__organisation").filter(pk=reminder_id).first()
    )
    if reminder is None or reminder.sent_at is not None:
        return 0
    certificate = reminder.certificate
    recipients = _recipients(certificate)
    today = timezone.localdate()
    sent = 0
    for user in recipients:
        with translation.override(user.language):
            context = {
                "certificate": certificate,
                "kind": reminder.kind,
                "user": user,
                "days_left": (certificate.expires_on - today).days,
            }
            subject = render_to_string("certificates/email/reminder_subject.txt", context).strip()
            body = render_to_string("certificates/email/reminder_body.txt", context)
        sent += send_once(
            f"certificate-reminder:{reminder.pk}:user:{user.pk}",
            to=user.email,
            subject=subject,
            body=body,
        )
    with transaction.atomic():
        marked = Reminder.objects.filter(pk=reminder.pk, sent_at__isnull=True).update(
            sent_at=timezone.now(), recipients=len(recipients)
        )
        if marked:
            record(
                None,
                "certificate.reminder_sent",
                certificate,
                organisation=certificate.organisation,
                details={"kind": reminder.kind, "recipients": len(recipients)},
            )
            log.info(
                "expiry reminder %s sent for certificate %s", reminder.kind, certificate.number
            )
    return sent
