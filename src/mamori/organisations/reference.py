"""An organisation named on the command line: by its id or its corporate number."""

from __future__ import annotations

from django.core.management.base import CommandError
from django.utils.translation import gettext as _

from mamori.organisations.models import Organisation


def find(reference: str) -> Organisation | None:
    """The organisation whose corporate number (13 digits) or id ``reference`` is."""
    reference = (reference or "").strip()
    found = Organisation.objects.filter(corporate_number=reference).first()
    if found is None and reference.isdigit() and len(reference) < 19:
        found = Organisation.objects.filter(pk=int(reference)).first()
    return found


def for_command(reference: str) -> Organisation:
    """``find``, for a management command: an unknown reference stops it with exit status 2
    and one line saying so."""
    found = find(reference)
    if found is None:
        raise CommandError(
            _("No organisation with the id or corporate number %(reference)s.")
            % {"reference": (reference or "").strip()[:40]},
            returncode=2,
        )
    return found
