"""What the notification tests share: verified claims of the two banks, reports imported with
their after-commit work run (as a request or a feed task would), and the moment the backoff has
run out."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from mamori.core.models import OutboxMessage, OutboxState
from mamori.earlywarning import feeding, registry
from mamori.earlywarning.models import WebhookDelivery
from tests.datafiles import DATA

REPORTS = DATA / "earlywarning" / "shadowserver"


def claim(world, organisation, kind, value):
    admin = world.admin if organisation == world.bank else world.other_admin
    asset = registry.register(admin, world.access(admin), organisation, kind=kind, value=value)
    return registry.approve(world.owner, world.access(world.owner), asset, reason="RIR checked")


def claim_both_banks(world) -> None:
    claim(world, world.bank, "cidr", "192.0.2.0/25")
    claim(world, world.other_bank, "cidr", "198.51.100.0/25")


def import_report(name: str, file_name: str | None = None) -> None:
    feeding.import_location(name, str(REPORTS / (file_name or f"{name}.csv")))


def outbox_due_now() -> None:
    """The outbox's backoff has run out: every pending row is due."""
    OutboxMessage.objects.filter(state=OutboxState.PENDING).update(due_at=timezone.now())


def deliveries_due_now() -> None:
    """The webhooks' backoff has run out: every delivery waiting for a retry is due."""
    WebhookDelivery.objects.filter(next_attempt_at__isnull=False).update(
        next_attempt_at=timezone.now()
    )


def tomorrow_at(hour: int) -> dt.datetime:
    local = timezone.localtime() + dt.timedelta(days=1)
    return local.replace(hour=hour, minute=0, second=0, microsecond=0)
