"""An organisation named on the command line: by its id or its corporate number."""

from __future__ import annotations

from mamori.organisations.models import Organisation


def find(reference: str) -> Organisation | None:
    """The organisation whose corporate number (13 digits) or id ``reference`` is."""
    reference = (reference or "").strip()
    found = Organisation.objects.filter(corporate_number=reference).first()
    if found is None and reference.isdigit() and len(reference) < 19:
        found = Organisation.objects.filter(pk=int(reference)).first()
    return found
