"""Plain records shared by the advisory importer and the matching engine (no Django here).

The importer turns OSV JSON into these; the matcher consumes them. Keep them small and immutable:
the matcher holds hundreds of thousands of ``AffectedPackage`` in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

# OSV range event kinds, in the order OSV defines them.
INTRODUCED = "introduced"
FIXED = "fixed"
LAST_AFFECTED = "last_affected"
LIMIT = "limit"
EVENT_KINDS = (INTRODUCED, FIXED, LAST_AFFECTED, LIMIT)


@dataclass(frozen=True, slots=True)
class Range:
    """One OSV ``ranges[]`` entry. ``type`` is ECOSYSTEM, SEMVER or GIT (GIT ranges never match
    packages: they name commits, and are kept only so that nothing is lost)."""

    type: str
    # (kind, version), sorted by the ecosystem's version order (osv.py); GIT ranges and those of
    # ecosystems without a version order here keep the document's order.
    events: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class AffectedPackage:
    """One OSV ``affected[]`` entry, keyed for lookup by (family, release, name)."""

    advisory_id: str
    ecosystem: str  # as written in OSV, e.g. "Debian:12", "Ubuntu:Pro:22.04:LTS", "PyPI"
    family: str  # the part before the first ":" ("Debian", "Ubuntu", "Alpine", "PyPI", ...)
    release: str  # the rest ("12", "Pro:22.04:LTS", "v3.18") or "" when the ecosystem has none
    name: str  # package name as the ecosystem spells it (a SOURCE package for Debian/Ubuntu)
    ranges: tuple[Range, ...] = ()
    versions: tuple[str, ...] = ()  # explicit affected versions
    severity: str | None = None  # distribution rating when the record carries one ("high", ...)
    cvss_vectors: tuple[str, ...] = ()  # per-package CVSS vectors (OSV affected[].severity)


@dataclass(frozen=True, slots=True)
class Advisory:
    """One OSV record, normalised."""

    id: str
    modified: datetime
    published: datetime | None
    withdrawn: datetime | None
    aliases: tuple[str, ...]
    summary: str
    cvss_vectors: tuple[str, ...]  # top-level OSV severity[] vectors (CVSS_V2/V3/V4)
    severity: str | None  # database_specific / distribution rating, lower-case, when present
    affected: tuple[AffectedPackage, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class KevEntry:
    cve: str
    vendor: str
    product: str
    name: str
    date_added: date
    due_date: date | None
    known_ransomware: bool


@dataclass(frozen=True, slots=True)
class EolCycle:
    """One product release cycle. ``eol`` is the end of vendor security support as the source
    states it; ``extended`` the end of extended (LTS/ESM) support when the source has one."""

    product: str  # endoflife.date product slug ("debian", "ubuntu", "openssl", ...)
    cycle: str  # "12", "22.04", "3.0"
    release_date: date | None
    eol: date | None  # None: no date announced (still supported)
    extended: date | None
    lts: bool
    source: str  # "endoflife.date" or "distro-info"
    codename: str = ""
    # endoflife.date's ``eol: true``: support has ended but the source gives no date. ``eol`` then
    # holds the release date (the earliest it can have ended), so a date comparison says "ended".
    eol_date_unknown: bool = False
    # endoflife.date's ``extendedSupport: true``: extended support is offered with no announced
    # end (often a paid programme). ``extended`` stays None.
    extended_open: bool = False
