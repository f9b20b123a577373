"""Signals other apps connect to.

``advisories_changed`` is sent once per import run, after the data it describes has been
committed, whenever advisories were added, changed or withdrawn, or KEV entries that such
advisories name were added or changed. ``keys`` is the set of (ecosystem family, package name)
pairs whose matches may differ now, e.g. ``{("Debian", "openssl"), ("PyPI", "django")}``;
``changes`` (an ``IndexChanges``) names the advisories themselves, so that a receiver compares
only those with the hosts' packages, and says how the run moved the index generation, so that a
process whose index is exactly one run behind can update it in place.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.dispatch import Signal

advisories_changed = Signal()


@dataclass(frozen=True)
class IndexChanges:
    """What one import run changed in the matching data."""

    advisory_ids: frozenset[str]
    kev_changed: bool
    eol_changed: bool
    # The generation (value, token) when the run started and after it, and how many times the
    # run itself moved it: value after - value before == bumps means no other writer moved it
    # meanwhile, so the run's changes are the whole difference.
    generation_before: tuple | None
    generation_after: tuple
    bumps: int

    @property
    def alone(self) -> bool:
        return (
            self.generation_before is not None
            and self.generation_after[0] - self.generation_before[0] == self.bumps
        )
