"""A debsecan feed written from the advisories Mamori imports (pure, no Django).

debsecan (Debian's security analyser, ``/usr/bin/debsecan``) downloads one file per suite,
``<source>/<suite>`` (default source https://security-tracker.debian.org/tracker/debsecan/release/1/),
and compares it with the dpkg status file. ``write_feed`` writes that file from the same
``records.Advisory`` objects the matcher uses, so both tools can be run on the same input and
their answers compared (tests/sidebyside, bench/debsecan_compare.py, docs/side-by-side.md).
debsecan then runs fully offline::

    debsecan --suite bookworm --source file:///DIR/ --status FILE --format detail \\
        --config /dev/null --whitelist /nonexistent

The format (``fetch_data`` and ``Vulnerability`` in debsecan 0.4), zlib-compressed UTF-8 text in
three blank-line-terminated sections after the line ``VERSION 1``:

1. vulnerability names, one per line: ``NAME,FLAGS,DESCRIPTION`` (FLAGS unused; the line number,
   from 0, is the vulnerability's number);
2. one line per (package, vulnerability): ``PACKAGE,NUMBER,FLAGS,FIXED,OTHER``. FLAGS are four
   characters: ``B``/``S`` (binary or source package), the urgency (`` ``, ``L``, ``M``, ``H``),
   remote exploitability (``?`` unknown, ``R`` yes, `` `` no) and ``F`` when a fix is available
   in the suite. FIXED (the tracker calls it "unstable_version") is the version that fixes it in
   the suite; empty means every version is vulnerable. OTHER lists versions (space separated)
   that are *not* vulnerable, by exact equality;
3. ``SOURCE,BINARY BINARY ...``: the binaries a source currently builds. debsecan only uses it to
   call an installed binary that is not listed "obsolete". OSV records do not carry it, so
   this section stays empty (nothing is ever reported as obsolete).

debsecan's rule for a source line (``Vulnerability.is_vulnerable``): the installed *source*
version (a binNMU's ``Source: name (version)``, else the binary's ``Version``) is vulnerable when
FIXED is empty or the version is below it (apt's ordering), and it is not in OTHER.

**What the format can say and what it cannot.** One "below X" (or "every version") per line, and
nothing else: no ``introduced``, no ``last_affected``, no ``limit``, no explicit list of
affected versions. Several lines for one (package, vulnerability) are allowed and debsecan
reports the pair when any of them says vulnerable — the same union the matcher takes over
ranges and records. So an OSV ``affected[]`` entry is written **exactly** when its ranges are
``[introduced "0", fixed X...]`` or ``[introduced "0"]`` (any number of them: their union is
"below the highest fix" or "every version") and its explicit ``versions``, if any, all lie in
that set. Every other entry is written as the smallest "below X"/"every version" set that
contains it — a scanner's feed may say too much, never too little: ``introduced`` above 0
and ``limit`` are dropped, a ``last_affected`` or an open range makes it "every version", and
so does a listed version above the fixes. Such entries are counted per advisory in
``Feed.inexact`` with the reason. Ranges the matcher cannot read (a version that is not a dpkg
version) are skipped here too, as the matcher skips them; GIT ranges never match. ``withdrawn``
records are left out.

Vulnerability names: the CVE ids an advisory names (its id and aliases; ``DEBIAN-CVE-…`` and
``UBUNTU-CVE-…`` read as the CVE), else the advisory's own id — so that debsecan's (binary,
name) pairs compare with the matcher's vulnerabilities expanded to their ``binaries`` and
CVE aliases. Urgency: the record's own rating word (Debian's is the tracker's urgency, which is
what debsecan shows), else the CVSS rating; negligible and unrated are blank. Remote: ``R`` when
the CVSS vector says ``AV:N``, blank for another attack vector, ``?`` without a vector.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mamori.advisories import records, versions
from mamori.advisories import severity as severity_rules

FORMAT_LINE = "VERSION 1"
DEFAULT_PROGRAM = "/usr/bin/debsecan"
# The matcher also looks up records without a release for these families (matching.host_platform).
FAMILIES_WITH_UNRELEASED = frozenset({"Debian"})
DPKG_FAMILIES = frozenset(family for family, scheme in versions.SCHEMES.items() if scheme == "dpkg")

_CVE = re.compile(r"CVE-\d{4}-\d{4,}$")
# What debsecan's line format can carry in a name (split on ","; one record per line).
_FIELD_SAFE = re.compile(r"[^,\s]+")
_SUITE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_URGENCY_FLAGS = {"low": "L", "medium": "M", "high": "H", "critical": "H"}
_ATTACK_VECTOR = re.compile(r"(?:^|/)AV:([NALP])(?:/|$)")

# Reasons an entry is written inexactly (keys of Feed.inexact values).
INTRODUCED_ABOVE_ZERO = "introduced above 0"
LAST_AFFECTED = "last_affected"
LIMIT = "limit"
OPEN_RANGE = "a range that stays open after a fix"
LISTED_VERSIONS = "explicit versions outside the ranges"
SEMVER_RANGE = "a SEMVER range on a dpkg package"


class FeedError(ValueError):
    """Arguments debsecan's feed cannot be written for."""


@dataclass(frozen=True, slots=True)
class FeedLine:
    package: str
    vulnerability: str
    fixed: str  # "" = every version is vulnerable
    urgency: str  # one of " ", "L", "M", "H"
    remote: str  # one of "?", "R", " "

    @property
    def flags(self) -> str:
        return "S" + self.urgency + self.remote + ("F" if self.fixed else " ")


@dataclass
class Feed:
    """A debsecan suite file, before it is compressed."""

    suite: str
    descriptions: dict[str, str] = field(default_factory=dict)  # name → description, in order
    lines: list[FeedLine] = field(default_factory=list)
    inexact: dict[str, tuple[str, ...]] = field(default_factory=dict)  # advisory id → reasons
    skipped: dict[str, str] = field(default_factory=dict)  # advisory id → why it has no line
    advisories: int = 0  # advisories with at least one line

    def text(self) -> str:
        numbers = {name: number for number, name in enumerate(self.descriptions)}
        out = [FORMAT_LINE]
        out.extend(f"{name},,{text}" for name, text in self.descriptions.items())
        out.append("")
        out.extend(
            f"{line.package},{numbers[line.vulnerability]},{line.flags},{line.fixed},"
            for line in self.lines
        )
        out.append("")
        out.append("")  # section 3 (source → binaries) is empty: see the module docstring
        return "\n".join(out)

    def encode(self) -> bytes:
        return zlib.compress(self.text().encode("utf-8"), 6)

    def write(self, directory: str | Path) -> Path:
        """Write the compressed feed as ``DIRECTORY/<suite>`` (what ``--source file://DIRECTORY/``
        makes debsecan read) and return the path."""
        path = Path(directory) / self.suite
        path.write_bytes(self.encode())
        return path


def vulnerability_names(advisory: records.Advisory) -> tuple[str, ...]:
    """The CVE ids an advisory names (id first, then aliases), else its own id."""
    names: dict[str, None] = {}
    for identifier in (advisory.id, *advisory.aliases):
        match = _CVE.search(identifier)
        if match:
            names[match.group()] = None
    return tuple(names) or (advisory.id,)


def build_feed(
    advisories: Iterable[records.Advisory],
    suite: str,
    family: str,
    release: str | tuple[str, ...],
) -> Feed:
    """The feed for ``suite`` from the advisories' ``affected[]`` entries of ``family`` and
    ``release`` (a release string such as "12", or a tuple of the exact releases to take). For
    Debian, a release string also takes records without a release ("Debian"), as the matcher
    looks them up for every Debian release."""
    if not _SUITE.fullmatch(suite or ""):
        raise FeedError(f"suite {suite!r} is not a single path component")
    if family not in DPKG_FAMILIES:
        raise FeedError(f"debsecan reads dpkg status files; {family!r} is not a dpkg family")
    if isinstance(release, tuple):
        releases = frozenset(release)
    else:
        releases = frozenset({release, ""} if family in FAMILIES_WITH_UNRELEASED else {release})
    feed = Feed(suite)
    written: set[FeedLine] = set()
    for advisory in advisories:
        if advisory.withdrawn is not None:
            continue
        entries = [
            item for item in advisory.affected if item.family == family and item.release in releases
        ]
        if not entries:
            continue
        names = [name for name in vulnerability_names(advisory) if _FIELD_SAFE.fullmatch(name)]
        if not names:
            feed.skipped[advisory.id] = "no name debsecan's format can carry"
            continue
        reasons: list[str] = []
        lines: list[FeedLine] = []
        for item in entries:
            if not _FIELD_SAFE.fullmatch(item.name):
                feed.skipped[advisory.id] = f"package name {item.name!r} does not fit the format"
                continue
            cover = _cover(item)
            if cover is None:
                continue  # nothing the matcher could match either
            fixed, why = cover
            reasons.extend(reason for reason in why if reason not in reasons)
            urgency, remote = _flags(advisory, item)
            lines.extend(FeedLine(item.name, name, fixed, urgency, remote) for name in names)
        if reasons:
            feed.inexact[advisory.id] = tuple(reasons)
        new_lines = [line for line in lines if line not in written]
        if lines:
            feed.advisories += 1
        for line in new_lines:
            written.add(line)
            feed.lines.append(line)
            if line.vulnerability not in feed.descriptions:
                feed.descriptions[line.vulnerability] = _description(advisory)
    return feed


def write_feed(
    advisories: Iterable[records.Advisory],
    suite: str,
    family: str,
    release: str | tuple[str, ...],
) -> bytes:
    """The compressed debsecan suite file (see ``build_feed``)."""
    return build_feed(advisories, suite, family, release).encode()


def _cover(item: records.AffectedPackage) -> tuple[str, tuple[str, ...]] | None:
    """(fixed, reasons) for one affected entry: the "below fixed" set (fixed "" = every version)
    that equals the entry's affected versions when ``reasons`` is empty and contains them
    otherwise. None when the entry can match nothing (no readable range, no listed version)."""
    scheme = versions.SCHEMES[item.family]
    reasons: list[str] = []
    fixes: list[tuple[object, str]] = []
    unbounded = False
    readable_ranges = 0
    for item_range in item.ranges:
        if item_range.type == "GIT":
            continue
        if item_range.type == "SEMVER":
            if _readable(versions.SEMVER, item_range.events):
                readable_ranges += 1
                reasons.append(SEMVER_RANGE)
                unbounded = True
            continue
        if not _readable(scheme, item_range.events):
            continue  # the matcher drops a range it cannot read
        readable_ranges += 1
        range_fix, range_reasons, range_open = _range_cover(scheme, item_range.events)
        reasons.extend(range_reasons)
        if range_open:
            unbounded = True
        elif range_fix is not None:
            fixes.append(range_fix)
    if not readable_ranges and not item.versions:
        return None
    if not readable_ranges:
        # Only explicit versions: "below X" cannot say "exactly these".
        return "", (LISTED_VERSIONS,)
    fixed_key, fixed = (None, "") if unbounded else max(fixes, key=lambda pair: pair[0])
    if fixed_key is not None:
        for listed in item.versions:
            key = _key(scheme, listed)
            if key is None or not key < fixed_key:
                reasons.append(LISTED_VERSIONS)
                fixed = ""
                break
    return fixed, tuple(dict.fromkeys(reasons))


def _range_cover(
    scheme: str, events: tuple[tuple[str, str], ...]
) -> tuple[tuple[object, str] | None, list[str], bool]:
    """(highest fix as (key, version) or None, reasons, open) for one readable range.

    Exact shapes: introduced "0" events and fixed events only — the affected set is "below the
    lowest fix" (OSV evaluates events in version order: the first fix closes the range and no
    later introduced reopens it), or every version without a fix. Anything else: the cover is
    "below the highest fix", or every version when the range is open at its top (it ends in
    introduced or last_affected)."""
    reasons: list[str] = []
    keyed: list[tuple[tuple[int, object], str, str]] = []
    for kind, version in events:
        if kind == records.LIMIT:
            if "*" not in version:  # limit "*" caps nothing
                reasons.append(LIMIT)
            continue
        if kind == records.INTRODUCED and version == "0":
            keyed.append(((0, None), kind, version))
            continue
        if kind == records.INTRODUCED:
            reasons.append(INTRODUCED_ABOVE_ZERO)
        elif kind == records.LAST_AFFECTED:
            reasons.append(LAST_AFFECTED)
        keyed.append(((1, _key(scheme, version)), kind, version))
    keyed.sort(key=lambda event: event[0])
    fixed_events = [(key[1], version) for key, kind, version in keyed if kind == records.FIXED]
    if not reasons:
        if not fixed_events:
            return None, reasons, True
        return fixed_events[0], reasons, False  # the lowest fix closes the range
    if keyed and keyed[-1][1] == records.FIXED:
        return fixed_events[-1], reasons, False
    if not any(reason == LAST_AFFECTED for reason in reasons):
        reasons.append(OPEN_RANGE)
    return None, reasons, True


def _readable(scheme: str, events: tuple[tuple[str, str], ...]) -> bool:
    """Whether the matcher can read every version of a range (it drops the range otherwise;
    an unbounded limit "*" and introduced "0" need no parsing)."""
    for kind, version in events:
        if (kind == records.LIMIT and "*" in version) or (
            kind == records.INTRODUCED and version == "0"
        ):
            continue
        if _key(scheme, version) is None:
            return False
    return True


def _key(scheme: str, version: str) -> object | None:
    try:
        return versions.scheme_key(scheme, version)
    except versions.InvalidVersion:
        return None


def _flags(advisory: records.Advisory, item: records.AffectedPackage) -> tuple[str, str]:
    vectors = item.cvss_vectors or advisory.cvss_vectors
    rating = severity_rules.normalise_rating(item.severity) or severity_rules.normalise_rating(
        advisory.severity
    )
    if rating is None:
        from_cvss = severity_rules.from_vectors(vectors)
        rating = from_cvss.rating if from_cvss else None
    remote = "?"
    for vector in vectors:
        match = _ATTACK_VECTOR.search(vector)
        if match:
            remote = "R" if match.group(1) == "N" else " "
            if remote == "R":
                break
    return _URGENCY_FLAGS.get(rating or "", " "), remote


def _description(advisory: records.Advisory) -> str:
    return " ".join((advisory.summary or advisory.id).split())


# --- running debsecan on a feed and reading what it prints ------------------------------------


def offline_command(
    feed_directory: str | Path,
    suite: str,
    status: str | Path,
    *,
    output_format: str = "detail",
    program: str = DEFAULT_PROGRAM,
) -> list[str]:
    """The argv that makes debsecan read only the given feed and status file: ``--source`` a
    file:// URL (debsecan appends the suite), ``--config /dev/null`` (not /etc/default/debsecan),
    a whitelist path that does not exist (not /var/lib/debsecan/whitelist). Formats without
    history: ``detail``, ``packages``, ``simple``, ``bugs``, ``summary``."""
    if output_format == "report":
        raise FeedError("the report format reads and writes debsecan's history file")
    directory = Path(feed_directory).resolve()
    return [
        program,
        "--suite",
        suite,
        "--source",
        directory.as_uri() + "/",
        "--status",
        str(status),
        "--format",
        output_format,
        "--config",
        "/dev/null",
        "--whitelist",
        str(directory / "no-whitelist"),
    ]


_DETAIL_INSTALLED = re.compile(r"^  installed: (\S+) (\S+)$")
_DETAIL_HEADLINE = re.compile(r"^(\S+)(?: \(.*\))?$")


def parse_detail(text: str) -> set[tuple[str, str]]:
    """(binary package, vulnerability name) pairs of ``--format detail`` output: a headline
    ``NAME (notes)``, the description, ``  installed: BINARY VERSION``, ..., a blank line."""
    pairs: set[tuple[str, str]] = set()
    name: str | None = None
    expect_headline = True
    for line in text.splitlines():
        if not line:
            expect_headline, name = True, None
            continue
        if expect_headline:
            match = _DETAIL_HEADLINE.match(line)
            if match is None:
                raise ValueError(f"unexpected debsecan detail line: {line[:80]!r}")
            name, expect_headline = match.group(1), False
            continue
        installed = _DETAIL_INSTALLED.match(line)
        if installed and name is not None:
            pairs.add((installed.group(1), name))
    return pairs


def parse_simple(text: str) -> set[tuple[str, str]]:
    """(binary package, vulnerability name) pairs of ``--format simple`` (``NAME BINARY``)."""
    pairs = set()
    for line in text.splitlines():
        if line.strip():
            name, binary = line.split()
            pairs.add((binary, name))
    return pairs


def parse_packages(text: str) -> set[str]:
    """The binaries ``--format packages`` lists, one per line."""
    return {line.strip() for line in text.splitlines() if line.strip()}
