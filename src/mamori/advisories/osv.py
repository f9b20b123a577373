"""Parsers for the feeds Mamori imports: OSV records, CISA KEV, endoflife.date and distro-info.

Functions from decoded JSON (or CSV text) to the plain records in ``records.py``, with no file
access. Pure logic, no Django imports. Anything that does not follow the format raises (or, for the list formats,
yields) ``BadRecord`` naming the record and the reason, so that an importer can report it and
carry on with the rest.

An OSV record is refused whole only for what the whole record depends on (its id, dates,
aliases, top-level severity, summary, the ``affected`` list itself). An ``affected`` entry or a
range that cannot be used is left out and the rest of the record kept: ``read_osv`` returns
each part it left out as a ``SkippedPart`` naming the record, the part and the reason, for the
importer to report. A part is left out when it breaks the schema (no package, an unknown event,
no ``introduced`` event, both ``fixed`` and ``last_affected``, ...), names only commits (an
entry with GIT ranges and no package: nothing to match), or, in an ecosystem that has a version
order here (``versions.py``), holds a version that order cannot read.

Choices made here, documented once:

- OSV ``ecosystem`` "Debian:12" is split at the first ":" into family "Debian" and release "12";
  "PyPI" has release "". "Ubuntu:Pro:18.04:LTS" gives release "Pro:18.04:LTS".
- Range events need not be sorted (the schema only recommends it): ECOSYSTEM and SEMVER events
  are sorted here by the ecosystem's version order (SemVer's for SEMVER), ``introduced: "0"``
  first and ``limit: "*"`` last, equal versions in document order — the order OSV's evaluation
  algorithm walks them in. GIT ranges, and ranges of ecosystems without a version order here
  (never matched), keep the document's order.
- Ubuntu's USN records leave ``aliases`` empty and name their CVEs in ``upstream`` (as
  "UBUNTU-CVE-…", schema 1.7) or, before that, in ``related``. The CVE ids found there are added
  to ``aliases`` after the record's own, so that a USN can be looked up in KEV and shows its CVEs.
- Ratings are normalised to negligible/low/medium/high/critical ("moderate" → medium,
  "important" → high, Debian's "unimportant" → negligible); anything else ("untriaged",
  "not yet assigned") counts as unrated. The advisory's ``severity`` comes from the top-level
  rating (a ``severity[]`` entry of a distribution type such as ``{"type": "Ubuntu", "score":
  "medium"}``, or ``database_specific.severity``); each affected package gets its own from
  ``affected[].severity``, ``ecosystem_specific``/``database_specific`` and Ubuntu's per-CVE
  ``database_specific.cves_map`` (the highest rating of the CVEs it fixes).
- CVSS vectors (CVSS_V2/V3/V4) are checked with the ``cvss`` library; a malformed vector in a
  standard ``severity`` field makes the record bad. Vectors inside free-form ``database_specific``
  data are kept when valid and skipped when not.
- endoflife.date's booleans: ``eol: false`` → no end announced (``eol`` None); ``eol: true`` →
  ended at an unknown date: ``eol`` is the release date (the earliest it can have ended) and
  ``eol_date_unknown`` is set, so that a date comparison says "ended" and nobody reads the date
  as the real one. ``extendedSupport: true`` → ``extended_open`` (offered, no announced end).
- distro-info: Debian ``eol`` (regular security support) and ``eol-lts``; Ubuntu ``eol``
  (standard support) and ``eol-esm``. ``eol-elts``/``eol-legacy`` (paid programmes) are not used.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from mamori.advisories import records, versions

# Column sizes in the database; longer values are refused here rather than truncated there.
MAX_ID_LENGTH = 255
MAX_NAME_LENGTH = 255
SUMMARY_LENGTH = 500

RANGE_TYPES = ("ECOSYSTEM", "SEMVER", "GIT")
RATINGS = ("negligible", "low", "medium", "high", "critical")
_RATING_SYNONYMS = {
    "moderate": "medium",
    "important": "high",
    "unimportant": "negligible",
    "none": "negligible",
}
_CVSS_TYPES = {"CVSS_V2": CVSS2, "CVSS_V3": CVSS3, "CVSS_V4": CVSS4}
# ASCII printable without spaces: every real OSV id fits, and an id never breaks a report line.
_ID_PATTERN = re.compile(r"[!-~]+")
_CVE_PATTERN = re.compile(r"(?:UBUNTU-)?(CVE-\d{4}-\d{4,})")
_PRODUCT_PATTERN = re.compile(r"[a-z0-9][a-z0-9._+-]*")


class BadRecord(ValueError):
    """A record (or a whole file) that does not follow its format. ``record_id`` names it when
    it could be read; ``reason`` says what is wrong, in one line."""

    def __init__(self, record_id: str | None, reason: str):
        self.record_id = record_id
        self.reason = reason
        super().__init__(f"{record_id}: {reason}" if record_id else reason)


@dataclass(frozen=True, slots=True)
class SkippedPart:
    """A part of an imported OSV record that was left out: an ``affected`` entry or one of its
    ranges. ``part`` names it ("affected[1].ranges[0]"); ``reason`` says why, in one line that
    names the place and ends with what was left out."""

    record_id: str
    part: str
    reason: str

    def __str__(self) -> str:
        return f"{self.record_id}: {self.reason}"


def shorten(value: object, limit: int = 60) -> str:
    """``repr`` of a value from the input, cut short: hostile input must not flood a report."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- OSV --------------------------------------------------------------------------------------


def parse_osv(data: Any) -> records.Advisory:
    """One decoded OSV record → ``records.Advisory``, without the list of the parts left out
    (for callers that analyse records; the importer uses ``read_osv`` and reports them)."""
    return read_osv(data)[0]


def read_osv(data: Any) -> tuple[records.Advisory, tuple[SkippedPart, ...]]:
    """One decoded OSV record → ``records.Advisory`` and the parts of it left out (see the
    module docstring); raises ``BadRecord`` naming the id when the record cannot be used."""
    if not isinstance(data, dict):
        raise BadRecord(None, "an OSV record must be a JSON object")
    record_id = _record_id(data.get("id"))
    modified = parse_timestamp(data.get("modified"), "modified", record_id, required=True)
    published = parse_timestamp(data.get("published"), "published", record_id)
    withdrawn = parse_timestamp(data.get("withdrawn"), "withdrawn", record_id)
    aliases = _string_list(data.get("aliases"), "aliases", record_id)
    cvss_vectors, rating = _severity_list(data.get("severity"), "severity", record_id)
    database_specific = _optional_object(
        data.get("database_specific"), "database_specific", record_id
    )
    rating = _highest(rating, normalise_rating(database_specific.get("severity")))

    raw_affected = data.get("affected")
    if raw_affected is None:
        raw_affected = []
    elif not isinstance(raw_affected, list):
        raise BadRecord(record_id, "affected is not a list")
    summary = _summary(data, record_id)
    skipped: list[SkippedPart] = []
    affected = []
    for position, entry in enumerate(raw_affected):
        where = f"affected[{position}]"
        try:
            affected.append(_affected_package(record_id, entry, where, skipped))
        except BadRecord as bad:
            skipped.append(SkippedPart(record_id, where, f"{bad.reason}; entry left out"))

    advisory = records.Advisory(
        id=record_id,
        modified=modified,
        published=published,
        withdrawn=withdrawn,
        aliases=tuple(_unique([*aliases, *_named_cves(data, record_id)])),
        summary=summary,
        cvss_vectors=cvss_vectors,
        severity=rating,
        affected=tuple(affected),
    )
    return advisory, tuple(skipped)


def split_ecosystem(ecosystem: str) -> tuple[str, str]:
    """ "Debian:12" → ("Debian", "12"); "PyPI" → ("PyPI", "")."""
    family, _, release = ecosystem.partition(":")
    return family.strip(), release.strip()


def normalise_rating(value: object) -> str | None:
    """A distribution's or database's rating word → one of ``RATINGS``, or None (unrated)."""
    if not isinstance(value, str):
        return None
    word = value.strip().lower()
    word = _RATING_SYNONYMS.get(word, word)
    return word if word in RATINGS else None


def parse_timestamp(
    value: object, field: str, record_id: str | None, *, required: bool = False
) -> datetime | None:
    """An RFC 3339 date-time (``Z``, offsets and any number of fraction digits) → aware UTC
    datetime. A value without a zone is taken as UTC; a bare date as its midnight UTC."""
    if value is None:
        if required:
            raise BadRecord(record_id, f"missing {field}")
        return None
    if not isinstance(value, str):
        raise BadRecord(record_id, f"{field} is not a date-time string: {shorten(value)}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadRecord(record_id, f"bad {field} date {shorten(value)}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _record_id(value: object) -> str:
    if value is None or value == "":
        raise BadRecord(None, "record without id")
    if not isinstance(value, str):
        raise BadRecord(None, f"id is not a string: {shorten(value)}")
    if len(value) > MAX_ID_LENGTH or not _ID_PATTERN.fullmatch(value):
        raise BadRecord(
            None, f"id {shorten(value)} is not a printable word of at most 255 characters"
        )
    return value


def _affected_package(
    record_id: str, entry: object, where: str, skipped: list[SkippedPart]
) -> records.AffectedPackage:
    """One ``affected`` entry; raises ``BadRecord`` when the entry cannot be used (the caller
    leaves it out). Unusable ranges are left out one by one and added to ``skipped``."""
    if not isinstance(entry, dict):
        raise BadRecord(record_id, f"{where} is not an object")
    versions_listed = _string_list(entry.get("versions"), f"{where}.versions", record_id)
    package = entry.get("package")
    if package is None:
        raw_ranges = entry.get("ranges")
        if (
            not versions_listed
            and isinstance(raw_ranges, list)
            and raw_ranges
            and all(isinstance(item, dict) and item.get("type") == "GIT" for item in raw_ranges)
        ):
            # OSV allows an entry that only names commits of a repository: there is no
            # package to match it against.
            raise BadRecord(record_id, f"{where} names only commits (GIT ranges), no package")
        raise BadRecord(record_id, f"{where} has no package")
    if not isinstance(package, dict):
        raise BadRecord(record_id, f"{where}.package is not an object")
    ecosystem = package.get("ecosystem")
    name = package.get("name")
    if not isinstance(ecosystem, str) or not ecosystem.strip():
        raise BadRecord(record_id, f"{where}.package has no ecosystem")
    if not isinstance(name, str) or not name.strip():
        raise BadRecord(record_id, f"{where}.package has no name")
    _no_nul(ecosystem + name, f"{where}.package", record_id)
    if len(ecosystem) > MAX_NAME_LENGTH or len(name) > MAX_NAME_LENGTH:
        raise BadRecord(record_id, f"{where}.package ecosystem or name is over 255 characters")
    family, release = split_ecosystem(ecosystem)
    if not family:
        raise BadRecord(record_id, f"{where}.package ecosystem {shorten(ecosystem)} has no name")

    vectors, rating = _severity_list(entry.get("severity"), f"{where}.severity", record_id)
    ecosystem_specific = _optional_object(
        entry.get("ecosystem_specific"), f"{where}.ecosystem_specific", record_id
    )
    database_specific = _optional_object(
        entry.get("database_specific"), f"{where}.database_specific", record_id
    )
    for source in (ecosystem_specific, database_specific):
        # GHSA-style "severity", Debian's "urgency": free-form, read when they are words we know.
        rating = _highest(rating, normalise_rating(source.get("severity")))
        rating = _highest(rating, normalise_rating(source.get("urgency")))
    map_vectors, map_rating = _ubuntu_cves_map(database_specific.get("cves_map"))
    ranges = _ranges(entry.get("ranges"), f"{where}.ranges", record_id, family, skipped)
    return records.AffectedPackage(
        advisory_id=record_id,
        ecosystem=ecosystem.strip(),
        family=family,
        release=release,
        name=name.strip(),
        ranges=ranges,
        versions=tuple(versions_listed),
        severity=_highest(rating, map_rating),
        cvss_vectors=tuple(_unique([*vectors, *map_vectors])),
    )


def _ranges(
    value: object, where: str, record_id: str, family: str, skipped: list[SkippedPart]
) -> tuple[records.Range, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BadRecord(record_id, f"{where} is not a list")
    parsed = []
    for position, item in enumerate(value):
        here = f"{where}[{position}]"
        try:
            parsed.append(_range(item, here, record_id, family))
        except BadRecord as bad:
            skipped.append(SkippedPart(record_id, here, f"{bad.reason}; range left out"))
    return tuple(parsed)


def _range(item: object, here: str, record_id: str, family: str) -> records.Range:
    if not isinstance(item, dict):
        raise BadRecord(record_id, f"{here} is not an object")
    range_type = item.get("type")
    if range_type not in RANGE_TYPES:
        raise BadRecord(record_id, f"{here} has unknown type {shorten(range_type)}")
    events = item.get("events")
    if not isinstance(events, list) or not events:
        raise BadRecord(record_id, f"{here} has no events")
    parsed = _events(events, here, record_id)
    if range_type != "GIT" and versions.is_supported(family):
        scheme = versions.SEMVER if range_type == "SEMVER" else versions.scheme_for(family)
        parsed = _sorted_events(parsed, scheme, here, record_id)
    return records.Range(type=range_type, events=parsed)


def _events(events: list, where: str, record_id: str) -> tuple[tuple[str, str], ...]:
    parsed: list[tuple[str, str]] = []
    for position, event in enumerate(events):
        here = f"{where}.events[{position}]"
        if not isinstance(event, dict):
            raise BadRecord(record_id, f"{here} is not an object")
        kinds = [key for key in event if key in records.EVENT_KINDS]
        if not kinds:
            names = ", ".join(shorten(key, 30) for key in event) or "nothing"
            raise BadRecord(record_id, f"{here}: unknown event {names}")
        if len(kinds) > 1:
            raise BadRecord(record_id, f"{here} has more than one of {', '.join(kinds)}")
        kind = kinds[0]
        version = event[kind]
        if not isinstance(version, str) or not version.strip():
            raise BadRecord(record_id, f"{here}: {kind} version is not a non-empty string")
        _no_nul(version, here, record_id)
        parsed.append((kind, version.strip()))
    kinds_used = {kind for kind, _ in parsed}
    if records.INTRODUCED not in kinds_used:
        # The OSV schema: "There must be at least one introduced object".
        raise BadRecord(record_id, f"{where} has no introduced event")
    if records.FIXED in kinds_used and records.LAST_AFFECTED in kinds_used:
        # The OSV schema forbids it: "fixed" is exclusive and "last_affected" inclusive.
        raise BadRecord(record_id, f"{where} has both fixed and last_affected events")
    return tuple(parsed)


def _sorted_events(
    events: tuple[tuple[str, str], ...], scheme: str, where: str, record_id: str
) -> tuple[tuple[str, str], ...]:
    """The events in the order OSV's evaluation walks them: by version in ``scheme``,
    ``introduced: "0"`` before every version, ``limit: "*"`` after; ties keep their order."""

    def order(event: tuple[str, str]) -> tuple:
        kind, version = event
        if kind == records.INTRODUCED and version == "0":
            return (0,)
        if kind == records.LIMIT and "*" in version:
            return (2,)
        try:
            return (1, versions.scheme_key(scheme, version))
        except versions.InvalidVersion:
            raise BadRecord(
                record_id, f"{where}: {kind} {shorten(version)} is not a {scheme} version"
            ) from None

    return tuple(sorted(events, key=order))


def _severity_list(value: object, where: str, record_id: str) -> tuple[tuple[str, ...], str | None]:
    """OSV ``severity[]`` → (CVSS vectors, rating). Distribution types ("Ubuntu", ...) carry a
    rating word in ``score``; unknown types are skipped (the schema may grow)."""
    if value is None:
        return (), None
    if not isinstance(value, list):
        raise BadRecord(record_id, f"{where} is not a list")
    vectors: list[str] = []
    rating = None
    for position, entry in enumerate(value):
        here = f"{where}[{position}]"
        if not isinstance(entry, dict):
            raise BadRecord(record_id, f"{here} is not an object")
        kind, score = entry.get("type"), entry.get("score")
        if not isinstance(kind, str) or not isinstance(score, str):
            raise BadRecord(record_id, f"{here} needs a type and a score")
        if kind in _CVSS_TYPES:
            if not valid_cvss(kind, score):
                raise BadRecord(record_id, f"{here}: not a valid {kind} vector {shorten(score)}")
            vectors.append(score.strip())
        else:
            rating = _highest(rating, normalise_rating(score))
    return tuple(_unique(vectors)), rating


def valid_cvss(kind: str, vector: str) -> bool:
    try:
        _CVSS_TYPES[kind](vector.strip())
    except (CVSSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
        return False
    return True


def _ubuntu_cves_map(value: object) -> tuple[list[str], str | None]:
    """Ubuntu's ``database_specific.cves_map``: per CVE a ``severity[]`` with CVSS vectors and
    Ubuntu's priority. Free-form data: what does not fit is skipped, not fatal."""
    if not isinstance(value, dict) or not isinstance(value.get("cves"), list):
        return [], None
    vectors: list[str] = []
    rating = None
    for cve in value["cves"]:
        severities = cve.get("severity") if isinstance(cve, dict) else None
        if not isinstance(severities, list):
            continue
        for entry in severities:
            if not isinstance(entry, dict):
                continue
            kind, score = entry.get("type"), entry.get("score")
            if not isinstance(kind, str) or not isinstance(score, str):
                continue
            if kind in _CVSS_TYPES:
                if valid_cvss(kind, score):
                    vectors.append(score.strip())
            else:
                rating = _highest(rating, normalise_rating(score))
    return vectors, rating


def _named_cves(data: dict, record_id: str) -> list[str]:
    """CVE ids an Ubuntu record names outside ``aliases`` (see the module docstring)."""
    sources: list[object] = []
    upstream = data.get("upstream")
    if isinstance(upstream, list):
        sources.extend(upstream)
    elif (
        upstream is None and record_id.startswith("USN-") and isinstance(data.get("related"), list)
    ):
        sources.extend(data["related"])
    found = []
    for item in sources:
        match = _CVE_PATTERN.fullmatch(item) if isinstance(item, str) else None
        if match:
            found.append(match.group(1))
    return found


def _summary(data: dict, record_id: str) -> str:
    summary = data.get("summary")
    if summary is None or summary == "":
        details = data.get("details")
        summary = details.strip().split("\n", 1)[0] if isinstance(details, str) else ""
    elif not isinstance(summary, str):
        raise BadRecord(record_id, "summary is not a string")
    summary = summary.strip()
    _no_nul(summary, "summary", record_id)
    return summary if len(summary) <= SUMMARY_LENGTH else summary[: SUMMARY_LENGTH - 1] + "…"


def _string_list(value: object, where: str, record_id: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadRecord(record_id, f"{where} is not a list of strings")
    for item in value:
        _no_nul(item, where, record_id)
    return [item.strip() for item in value if item.strip()]


def _no_nul(text: str, where: str, record_id: str | None) -> None:
    # PostgreSQL stores no NUL character in text or JSON: refuse it here, with a reason.
    if "\x00" in text:
        raise BadRecord(record_id, f"{where} contains a NUL character")


def _optional_object(value: object, where: str, record_id: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRecord(record_id, f"{where} is not an object")
    return value


def _highest(first: str | None, second: str | None) -> str | None:
    if first is None:
        return second
    if second is None:
        return first
    return max(first, second, key=RATINGS.index)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --- CISA KEV ---------------------------------------------------------------------------------


def parse_kev(data: Any) -> Iterator[records.KevEntry | BadRecord]:
    """The CISA KEV catalogue (``{"vulnerabilities": [...]}``) → one item per entry. A file
    that is not a catalogue at all raises ``BadRecord``."""
    if not isinstance(data, dict) or not isinstance(data.get("vulnerabilities"), list):
        raise BadRecord(None, "not a CISA KEV catalogue: no vulnerabilities list")
    for position, entry in enumerate(data["vulnerabilities"]):
        try:
            yield _kev_entry(entry, position)
        except BadRecord as bad:
            yield bad


def _kev_entry(entry: object, position: int) -> records.KevEntry:
    label = f"vulnerabilities[{position}]"
    if not isinstance(entry, dict):
        raise BadRecord(label, "not an object")
    cve = entry.get("cveID")
    if not isinstance(cve, str) or not re.fullmatch(r"CVE-\d{4}-\d{4,}", cve.strip()):
        raise BadRecord(label, f"cveID {shorten(cve)} is not a CVE id")
    cve = cve.strip()
    added = _date(entry.get("dateAdded"), "dateAdded", cve, required=True)
    texts = {}
    for key in ("vendorProject", "product", "vulnerabilityName"):
        value = entry.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise BadRecord(cve, f"{key} is not a string")
        _no_nul(value, key, cve)
        texts[key] = value.strip()[:MAX_NAME_LENGTH]
    return records.KevEntry(
        cve=cve,
        vendor=texts["vendorProject"],
        product=texts["product"],
        name=texts["vulnerabilityName"],
        date_added=added,
        due_date=_date(entry.get("dueDate"), "dueDate", cve),
        known_ransomware=str(entry.get("knownRansomwareCampaignUse", "")).strip().lower()
        == "known",
    )


def _date(value: object, field: str, record_id: str, *, required: bool = False) -> date | None:
    if value is None or value == "":
        if required:
            raise BadRecord(record_id, f"missing {field}")
        return None
    if not isinstance(value, str):
        raise BadRecord(record_id, f"{field} is not a date: {shorten(value)}")
    text = value.strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).date()  # a date-time where a date was expected
    except ValueError:
        raise BadRecord(record_id, f"bad {field} date {shorten(value)}") from None


# --- endoflife.date ---------------------------------------------------------------------------


def valid_product(product: str) -> bool:
    return len(product) <= 100 and bool(_PRODUCT_PATTERN.fullmatch(product))


def parse_endoflife(product: str, data: Any) -> Iterator[records.EolCycle | BadRecord]:
    """endoflife.date API v0 (a list of release cycles) for ``product`` → one item per cycle."""
    if not valid_product(product):
        raise BadRecord(None, f"product name {shorten(product)} is not an endoflife.date slug")
    if not isinstance(data, list):
        raise BadRecord(product, "endoflife.date data is not a list of release cycles")
    for position, entry in enumerate(data):
        try:
            yield _eol_cycle(product, entry, position)
        except BadRecord as bad:
            yield bad


def _eol_cycle(product: str, entry: object, position: int) -> records.EolCycle:
    if not isinstance(entry, dict):
        raise BadRecord(f"{product}[{position}]", "not an object")
    cycle = entry.get("cycle")
    if isinstance(cycle, int | float) and not isinstance(cycle, bool):
        cycle = str(cycle)
    if not isinstance(cycle, str) or not cycle.strip() or len(cycle) > 100:
        raise BadRecord(f"{product}[{position}]", f"cycle {shorten(cycle)} is not a name")
    cycle = cycle.strip()
    _no_nul(cycle, "cycle", f"{product}[{position}]")
    label = f"{product} {cycle}"
    release_date = _date(entry.get("releaseDate"), "releaseDate", label)

    eol_value = entry.get("eol")
    eol_date_unknown = False
    if eol_value is True:
        eol, eol_date_unknown = release_date or date.min, True
    elif eol_value is False or eol_value is None:
        eol = None
    else:
        eol = _date(eol_value, "eol", label)

    extended_value = entry.get("extendedSupport")
    extended_open = extended_value is True
    if isinstance(extended_value, bool) or extended_value is None:
        extended = None
    else:
        extended = _date(extended_value, "extendedSupport", label)

    lts_value = entry.get("lts", False)
    if isinstance(lts_value, str):
        _date(lts_value, "lts", label)  # a date: the cycle is (or becomes) an LTS one
        lts = True
    elif isinstance(lts_value, bool) or lts_value is None:
        lts = bool(lts_value)
    else:
        raise BadRecord(label, f"lts is neither a boolean nor a date: {shorten(lts_value)}")
    codename = entry.get("codename")
    if isinstance(codename, str):
        _no_nul(codename, "codename", label)
    return records.EolCycle(
        product=product,
        cycle=cycle,
        release_date=release_date,
        eol=eol,
        extended=extended,
        lts=lts,
        source="endoflife.date",
        codename=codename.strip()[:100] if isinstance(codename, str) else "",
        eol_date_unknown=eol_date_unknown,
        extended_open=extended_open,
    )


# --- distro-info ------------------------------------------------------------------------------

DISTRO_INFO_COLUMNS = ("version", "codename", "series", "created", "release", "eol")
# The extended-support column Mamori uses per distribution (see the module docstring).
DISTRO_INFO_EXTENDED = {"debian": "eol-lts", "ubuntu": "eol-esm"}


def distro_info_product(header: Iterable[str]) -> str | None:
    """Which distro-info CSV a header row belongs to: "debian", "ubuntu" or None."""
    columns = [column.strip() for column in header]
    if tuple(columns[: len(DISTRO_INFO_COLUMNS)]) != DISTRO_INFO_COLUMNS:
        return None
    if "eol-lts" in columns:
        return "debian"
    if "eol-esm" in columns or "eol-server" in columns:
        return "ubuntu"
    return None


def parse_distro_info(product: str, csv_text: str) -> Iterator[records.EolCycle | BadRecord]:
    """Debian's distro-info-data CSV (debian.csv / ubuntu.csv) → one item per release."""
    reader = csv.reader(io.StringIO(csv_text))
    header = next(reader, None)
    if not header or distro_info_product(header) != product:
        raise BadRecord(None, f"not a distro-info CSV for {shorten(product)}")
    columns = [column.strip() for column in header]
    extended_column = DISTRO_INFO_EXTENDED[product]
    for line_number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            yield _distro_info_row(product, columns, row, line_number, extended_column)
        except BadRecord as bad:
            yield bad


def _distro_info_row(
    product: str, columns: list[str], row: list[str], line_number: int, extended_column: str
) -> records.EolCycle:
    label = f"{product}.csv line {line_number}"
    if len(row) > len(columns):
        raise BadRecord(label, f"{len(row)} fields for {len(columns)} columns")
    values = dict(zip(columns, (cell.strip() for cell in row), strict=False))
    for value in values.values():
        _no_nul(value, "a field", label)
    version = values.get("version", "")
    lts = version.endswith(" LTS")
    cycle = version.removesuffix(" LTS").strip() or values.get("series", "")
    if not cycle or len(cycle) > 100:
        raise BadRecord(label, "no version or series")
    label = f"{product} {cycle}"
    return records.EolCycle(
        product=product,
        cycle=cycle,
        release_date=_date(values.get("release"), "release", label),
        eol=_date(values.get("eol"), "eol", label),
        extended=_date(values.get(extended_column), extended_column, label),
        lts=lts,
        source="distro-info",
        codename=values.get("codename", "")[:100],
    )
