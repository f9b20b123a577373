"""Append to and verify the audit trail.

``record`` must run inside the transaction that makes the change, so the entry exists exactly
when the change does.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db import transaction
from django.utils import timezone

from mamori.audit import chain
from mamori.audit.models import AuditEvent, AuditHead


def record(
    actor,
    action: str,
    obj,
    *,
    organisation=None,
    details: dict | None = None,
    before=None,
    after=None,
) -> AuditEvent:
    """Append one entry. ``before``/``after`` are stored as digests only: the trail proves what
    changed without copying confidential answers into it."""
    payload = dict(details or {})
    if before is not None:
        payload["before_digest"] = chain.digest(before)
    if after is not None:
        payload["after_digest"] = chain.digest(after)
    with transaction.atomic():
        head, _created = AuditHead.objects.select_for_update().get_or_create(
            pk=1, defaults={"seq": 0, "hash": chain.GENESIS}
        )
        user = actor if getattr(actor, "is_authenticated", False) else None
        event = AuditEvent(
            seq=head.seq + 1,
            created_at=timezone.now(),
            actor_id=user.pk if user else None,
            actor_name=user.get_username() if user else (str(actor) if actor else "system"),
            action=action,
            object_type=obj._meta.label_lower,
            object_id=str(obj.pk),
            organisation_id=organisation.pk if organisation is not None else None,
            details=payload,
            prev_hash=head.hash,
        )
        event.hash = chain.entry_hash(event.chain_fields(), event.prev_hash)
        event.save(force_insert=True)
        head.seq, head.hash = event.seq, event.hash
        head.save(update_fields=["seq", "hash"])
    return event


def _entries() -> Iterator[chain.Entry]:
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=2000):
        yield chain.Entry(event.seq, event.chain_fields(), event.prev_hash, event.hash)


def verify_trail() -> chain.Break | None:
    head = AuditHead.objects.filter(pk=1).first()
    if head is None and AuditEvent.objects.exists():
        # Entries without a head: someone removed the row that records how long the log is.
        return chain.Break(
            1, "the log's head record is missing, so removed entries cannot be ruled out"
        )
    return chain.verify(_entries(), head.seq if head else None)
