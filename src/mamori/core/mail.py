"""E-mail that goes out once: ``send_once(key, ...)`` sends a message unless the mail server
already accepted the message of that key, and records it as sent only once the server accepted
it.

A task that sends mail may run again (a retry after a failure further down its list, a message
redelivered after a worker died, an outbox row published again): the receipt of each message,
keyed by what the message is for, keeps the recipients who already have it from getting it
twice. While one attempt is sending, the receipt is claimed for a while (twice the SMTP
timeout), so two attempts running at once do not both send. What happens after the server
accepted the message (a reminder marked sent, an audit entry, a link that replaces an old one)
goes in ``on_accepted``, committed together with the receipt.

The one case left: a process killed after the server accepted a message and before the receipt
was written sends that message again on the next attempt. The message id is the same both
times (derived from the key), so a mail system can tell the copies apart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from mamori.core.models import MailReceipt


class MailInFlight(TimeoutError):
    """Another attempt is sending this message right now; try again when its claim ran out."""


def message_id(key: str) -> str:
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip("<> ") or "localhost"
    return f"<{hashlib.sha256(key.encode('utf-8')).hexdigest()[:40]}@{domain}>"


def already_sent(key: str) -> bool:
    """Whether the mail server accepted the message of this key."""
    return MailReceipt.objects.filter(key=key, accepted_at__isnull=False).exists()


def _receipt(key: str, to: str, subject: str) -> MailReceipt:
    try:
        receipt, _created = MailReceipt.objects.get_or_create(
            key=key, defaults={"recipient": to, "subject": subject[:300]}
        )
    except IntegrityError:  # created by another attempt a moment ago
        receipt = MailReceipt.objects.get(key=key)
    return receipt


def send_once(
    key: str,
    *,
    to: str,
    subject: str,
    body: str,
    on_accepted: Callable[[], None] | None = None,
) -> bool:
    """Send the message unless the one of this ``key`` was accepted before. True when it was
    sent now, False when it had been sent already. Errors of the mail server are raised (the
    task retries); the receipt then says what went wrong."""
    receipt = _receipt(key, to, subject)
    if receipt.accepted_at is not None:
        return False
    now = timezone.now()
    claimed = (
        MailReceipt.objects.filter(pk=receipt.pk, accepted_at__isnull=True)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(
            claimed_until=now + dt.timedelta(seconds=2 * (settings.EMAIL_TIMEOUT or 30) + 10),
            attempts=F("attempts") + 1,
        )
    )
    if not claimed:
        if MailReceipt.objects.filter(pk=receipt.pk, accepted_at__isnull=False).exists():
            return False
        raise MailInFlight(f"message {key} is being sent by another attempt")
    message = EmailMessage(
        subject, body, settings.DEFAULT_FROM_EMAIL, [to], headers={"Message-ID": message_id(key)}
    )
    try:
        message.send()
    except Exception as exc:
        MailReceipt.objects.filter(pk=receipt.pk).update(
            claimed_until=None, last_error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        raise
    with transaction.atomic():
        MailReceipt.objects.filter(pk=receipt.pk).update(
            accepted_at=timezone.now(), claimed_until=None, last_error=""
        )
        if on_accepted is not None:
            on_accepted()
    return True
