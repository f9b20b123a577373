"""The scheme owner's deadlines: hours an organisation has to acknowledge an alert, per type.

New alerts take the deadline in force when they are raised (``alerts.upsert``); changing it
does not move the deadlines of alerts already raised. A KEV-listed vulnerability keeps the
catalogue's ``kev_patch_days`` (its sighting carries its own due date)."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from mamori.audit import services as audit
from mamori.core.errors import MamoriError, NotAllowed
from mamori.earlywarning import alerts, permissions
from mamori.earlywarning.models import AlertType, DeadlinePolicy
from mamori.organisations.access import Access

MAX_HOURS = 24 * 366


def current() -> dict[str, int]:
    """Hours to acknowledge per type: the scheme owner's, else the defaults."""
    return alerts.acknowledge_hours()


@transaction.atomic
def set_acknowledge_hours(actor, access: Access, hours: dict[str, int]) -> dict[str, int]:
    """Store the hours of each type given; one audit entry lists what changed."""
    if not permissions.can_set_deadlines(access):
        raise NotAllowed(_("Only the scheme owner sets the alert deadlines."))
    for alert_type, value in hours.items():
        if alert_type not in AlertType.values:
            raise MamoriError(
                _("'%(type)s' is not a type of alert.") % {"type": str(alert_type)[:40]},
                field=str(alert_type)[:40],
            )
        if not isinstance(value, int) or not 1 <= value <= MAX_HOURS:
            raise MamoriError(
                _("Give a whole number of hours from 1 to %(most)s.") % {"most": MAX_HOURS},
                field=alert_type,
            )
    before = current()
    changed = {name: value for name, value in hours.items() if before.get(name) != value}
    for alert_type, value in changed.items():
        DeadlinePolicy.objects.update_or_create(
            type=alert_type, defaults={"acknowledge_hours": value, "updated_by": actor}
        )
    if changed:
        policy = DeadlinePolicy.objects.filter(type__in=changed).order_by("type").first()
        audit.record(
            actor,
            "earlywarning.deadlines.set",
            policy,
            details={
                "changed": {name: [before.get(name), value] for name, value in changed.items()}
            },
        )
    return current()
