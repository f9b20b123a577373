"""Append to and verify the audit trail.

``record`` must run inside the transaction that makes the change, so the entry exists exactly
when the change does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from mamori.audit import chain
from mamori.audit.models import AuditEvent, AuditHead
from mamori.core.bulk import insert_rows

# A batch this large (thousands of alerts raised at once) is written with COPY: an INSERT of its
# JSON details costs a good part of the time of the raise.
COPY_FROM = 100


@dataclass(frozen=True)
class Change:
    """One entry to append: what was done to which object, for which organisation."""

    action: str
    obj: Any
    organisation: Any = None
    details: dict | None = None
    before: Any = None
    after: Any = None


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
    (event,) = record_many(actor, [Change(action, obj, organisation, details, before, after)])
    return event


def record_many(actor, changes: Sequence[Change]) -> list[AuditEvent]:
    """Append one entry per change, in order, chained as if recorded one by one (a batch of
    answers is as many entries as the answers), with one look at the head and one insert."""
    if not changes:
        return []
    user = actor if getattr(actor, "is_authenticated", False) else None
    actor_name = user.get_username() if user else (str(actor) if actor else "system")
    # No savepoint of its own: an entry that cannot be written must take the change with it.
    with transaction.atomic(savepoint=False):
        head = AuditHead.objects.select_for_update().filter(pk=1).first()
        if head is None:  # the first entry of a new database
            head, _created = AuditHead.objects.select_for_update().get_or_create(
                pk=1, defaults={"seq": 0, "hash": chain.GENESIS}
            )
        now = timezone.now()
        events = []
        seq, previous = head.seq, head.hash
        for change in changes:
            payload = dict(change.details or {})
            if change.before is not None:
                payload["before_digest"] = chain.digest(change.before)
            if change.after is not None:
                payload["after_digest"] = chain.digest(change.after)
            seq += 1
            event = AuditEvent(
                seq=seq,
                created_at=now,
                actor_id=user.pk if user else None,
                actor_name=actor_name,
                action=change.action,
                object_type=change.obj._meta.label_lower,
                object_id=str(change.obj.pk),
                # The organisation, or its id (batches raised from rows carry ids only).
                organisation_id=getattr(change.organisation, "pk", change.organisation),
                details=payload,
                prev_hash=previous,
            )
            event.hash = previous = chain.entry_hash(event.chain_fields(), event.prev_hash)
            events.append(event)
        if len(events) >= COPY_FROM:
            insert_rows(AuditEvent, events)  # COPY on PostgreSQL
        else:
            AuditEvent.objects.bulk_create(events)
        head.seq, head.hash = seq, previous
        head.save(update_fields=["seq", "hash"])
    return events


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
