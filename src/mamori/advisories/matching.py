"""Match a host's installed packages against OSV advisories. Pure logic, no Django imports.

``AdvisoryIndex`` holds advisories keyed by (ecosystem family, package name); ``match_evidence``
looks up the packages of one ``mamori.evidence/1`` document and returns its vulnerabilities in
the shape DESIGN.md fixes. What is looked up (``host_targets``):

- **The OS vendor's packages, in the OS release's own ecosystem only.** The release comes from
  ``os.id``/``os.version_id``: Debian → ``Debian:<major>`` (plus records without a release);
  Ubuntu → ``Ubuntu:<YY.MM>:LTS`` (``Ubuntu:<YY.MM>`` for interim releases) and, only when
  ``updates.apt_sources.esm`` is true (the host is enrolled in Ubuntu Pro/ESM and can install
  those fixes), ``Ubuntu:Pro:<YY.MM>:LTS`` — the FIPS and Realtime Pro channels are not matched;
  Alpine 3.18.x → ``Alpine:v3.18``; RHEL 9.x → ``Red Hat:enterprise_linux:9::<repository>``
  (any repository; EUS/AUS/E4S streams are not matched, a host cannot be seen to use them);
  Rocky/Alma 9.x → ``Rocky Linux:9`` / ``AlmaLinux:9`` (plus records without a release);
  SUSE/openSUSE → the release named by ``PRETTY_NAME``, as OSV defines it. Anything else
  (CentOS, Amazon Linux, an unknown ``os.id``) is not looked up. **Debian testing/unstable** has
  no ``VERSION_ID``: no Debian release ecosystem describes it (OSV has none for sid), so its
  packages are not looked up; the lifecycle check reports such a host as of unknown support.
- Debian/Ubuntu (and Alpine, SUSE, Rocky, Alma) advisories name SOURCE packages: a host's
  binaries are grouped by ``source_name``/``source_version`` (the agent already reads a binNMU's
  ``Source: name (version)``), and the binaries are listed with the vulnerability. Red Hat's
  records name binary or source RPMs, so both are looked up and reported under the source.
- **PyPI** for ``python`` items on any OS — except distributions the OS vendor shipped
  (``installer`` "debian"/"rpm"/..., or no installer and the vendor's own site directory such
  as ``/usr/lib/python3/dist-packages``): the vendor patches those without changing the upstream
  version, and its own advisories (the source package, above) cover them. Matching them against
  PyPI would report every backported fix as missing.

OSV ``affected`` semantics, in full: a version is affected when it is listed in ``versions`` or
lies in a range — events sorted by version, ``introduced`` opens (``"0"`` = from the
beginning), ``fixed`` closes (exclusive), ``last_affected`` closes (inclusive), and ``limit``
events cap the range (the version must be below one of them; ``"*"`` is no cap). ECOSYSTEM
ranges use the family's ordering (``versions.py``), SEMVER ranges SemVer's, GIT ranges never
match (they name commits). ``withdrawn`` records never match. A range with a version its scheme
cannot read is skipped (it cannot be evaluated); an installed version that cannot be read only
matches explicit ``versions`` entries.

Each vulnerability is one (package, advisory) pair: ``fixed_version`` is the first ``fixed``
event above the installed version (None when there is none: not fixed yet, or only
``last_affected`` known), ``fix_published`` the advisory's ``published`` date — OSV has no date
per fix, and an advisory is published when its fix is (records without ``published`` use
``modified``) — and ``days_since_fix`` counts from it to ``as_of`` (0 when it lies after).
**The 14-day rule:** ``overdue`` when a fix exists, ``days_since_fix > patch_days``, and the
severity is high or critical, or the CVSS base score is at least ``cvss_threshold``, or the
advisory is unrated. Severity: see ``severity.py``. ``kev`` is true when the advisory's id or
one of its aliases (``UBUNTU-CVE-…``/``DEBIAN-CVE-…`` read as the CVE) is in CISA's KEV
catalogue; ``kev_due_date`` is CISA's due date. When a source package is installed at several
versions (old kernels), the lowest affected one is reported and the binaries of all affected
versions are listed.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from mamori.advisories import records, versions
from mamori.advisories import severity as severity_rules

PYPI = "PyPI"
VENDOR_PYTHON_INSTALLERS = frozenset(
    {"debian", "dpkg", "apt", "rpm", "dnf", "yum", "apk", "zypper"}
)
# The site directories an OS vendor's python packages are installed into (pip as root writes to
# /usr/local instead on Debian, Ubuntu and RHEL 8+).
_VENDOR_PYTHON_DIRECTORY = re.compile(r"/usr/lib(?:64)?/python3(?:\.\d+)?/(?:dist|site)-packages/?")
_PEP503_SEPARATORS = re.compile(r"[-_.]+")
_CVE_IN_ID = re.compile(r"CVE-\d{4}-\d{4,}$")
_UNBOUNDED_LIMIT = "*"
_ZERO = "0"


# --- what to look up ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Platform:
    """The OS vendor's ecosystem for a host: which family and releases its packages belong to."""

    family: str
    releases: tuple[str, ...]  # release strings as OSV spells them, the host's own first
    manager: str  # the package manager whose items are the vendor's packages
    lookup_binaries: bool = False  # Red Hat names binary RPMs too


@dataclass(frozen=True, slots=True)
class Target:
    """One thing to look up: a source package at one version (or a python distribution)."""

    family: str
    releases: tuple[str, ...]
    name: str
    version: str
    binaries: tuple[str, ...] = ()
    manager: str = ""
    also_names: tuple[str, ...] = ()  # further names to look up (Red Hat binary RPMs)

    @property
    def release(self) -> str:
        return self.releases[0] if self.releases else ""

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.also_names)


def normalise_pypi_name(name: str) -> str:
    """PEP 503 normalised project name ("Django" and "django_" → "django", "django-")."""
    return _PEP503_SEPARATORS.sub("-", name).lower()


def is_vendor_python(item: Mapping[str, Any]) -> bool:
    """True for a ``python`` item the OS vendor installed (see the module docstring)."""
    installer = item.get("installer")
    if isinstance(installer, str) and installer.strip():
        return installer.strip().lower() in VENDOR_PYTHON_INSTALLERS
    location = item.get("location")
    return isinstance(location, str) and bool(_VENDOR_PYTHON_DIRECTORY.fullmatch(location))


def host_platform(evidence: Mapping[str, Any]) -> Platform | None:
    """The vendor ecosystem of the host's OS, or None when it is not one we look up."""
    os_section = _mapping(evidence.get("os"))
    os_id = _text(os_section.get("id")).lower()
    version_id = _text(os_section.get("version_id"))
    pretty_name = _text(os_section.get("pretty_name"))
    if os_id == "debian":
        major = version_id.split(".")[0]
        return Platform("Debian", (major, ""), "dpkg") if major.isdigit() else None
    if os_id == "ubuntu":
        if not re.fullmatch(r"\d{2}\.\d{2}", version_id):
            return None
        if _is_ubuntu_lts(version_id, pretty_name):
            releases: tuple[str, ...] = (f"{version_id}:LTS",)
            if _esm_enrolled(evidence):
                releases += (f"Pro:{version_id}:LTS",)
        else:
            releases = (version_id,)
        return Platform("Ubuntu", releases, "dpkg")
    if os_id == "alpine":
        match = re.match(r"(\d+)\.(\d+)", version_id)
        return Platform("Alpine", (f"v{match[1]}.{match[2]}",), "apk") if match else None
    major = version_id.split(".")[0]
    if os_id == "rhel":
        if not major.isdigit():
            return None
        return Platform("Red Hat", (f"enterprise_linux:{major}",), "rpm", lookup_binaries=True)
    if os_id in ("rocky", "almalinux"):
        family = "Rocky Linux" if os_id == "rocky" else "AlmaLinux"
        return Platform(family, (major, ""), "rpm") if major.isdigit() else None
    if os_id in ("sles", "sles_sap", "sled") and pretty_name.startswith("SUSE "):
        return Platform("SUSE", (pretty_name.removeprefix("SUSE ").strip(),), "rpm")
    if os_id.startswith("opensuse") and pretty_name.startswith("openSUSE "):
        return Platform("openSUSE", (pretty_name.removeprefix("openSUSE ").strip(),), "rpm")
    return None


def _is_ubuntu_lts(version_id: str, pretty_name: str) -> bool:
    if "LTS" in pretty_name.split():
        return True
    year, month = version_id.split(".")
    return month == "04" and int(year) % 2 == 0  # every LTS is an April release of an even year


def _esm_enrolled(evidence: Mapping[str, Any]) -> bool:
    sources = _mapping(_mapping(evidence.get("updates")).get("apt_sources"))
    return sources.get("esm") is True


def host_targets(evidence: Mapping[str, Any]) -> list[Target]:
    """What to look up for a host: its vendor packages grouped by source package and version,
    and its python distributions (PyPI) that the vendor did not ship."""
    platform = host_platform(evidence)
    items = _mapping(evidence.get("packages")).get("items")
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, Mapping):
            continue
        manager = item.get("manager")
        name, version = _text(item.get("name")), _text(item.get("version"))
        if not name or not version:
            continue
        if manager == "python":
            if not is_vendor_python(item):
                grouped.setdefault(("python", normalise_pypi_name(name), version), [])
            continue
        if platform is None or manager != platform.manager:
            continue
        source = _text(item.get("source_name")) or name
        source_version = _text(item.get("source_version")) or version
        grouped.setdefault((manager, source, source_version), []).append(name)

    targets = []
    for (manager, name, version), binaries in grouped.items():
        if manager == "python":
            targets.append(Target(PYPI, ("",), name, version, (), manager))
            continue
        assert platform is not None
        unique_binaries = tuple(sorted(set(binaries)))
        also = tuple(b for b in unique_binaries if b != name) if platform.lookup_binaries else ()
        targets.append(
            Target(
                platform.family, platform.releases, name, version, unique_binaries, manager, also
            )
        )
    targets.sort(key=lambda target: (target.family, target.name, target.version))
    return targets


def package_keys(evidence: Mapping[str, Any]) -> set[tuple[str, str]]:
    """Every (family, name) looked up for a host — what the server's re-match index stores."""
    return {(target.family, name) for target in host_targets(evidence) for name in target.names}


# --- the index -------------------------------------------------------------------------------


class _Range(NamedTuple):
    scheme: str
    # (key, kind, version as written), sorted by version; key None for introduced "0".
    events: tuple[tuple[Any, str, str], ...]
    limits: tuple[Any, ...] | None  # None: no cap


class _Entry:
    """One ``affected[]`` entry of one advisory, as filed under (family, name, release)."""

    __slots__ = ("advisory", "affected", "fixed_key", "ranges", "severity")

    def __init__(self, advisory: records.Advisory, affected: records.AffectedPackage):
        self.advisory = advisory
        self.affected = affected
        self.ranges: tuple[_Range, ...] | None = None  # compiled on first use
        self.fixed_key: Any = None  # set for the common shape [introduced 0, fixed X]
        self.severity: severity_rules.Severity | None = None


class _Bucket:
    """The entries for one (family, name, release), with lookup structures built on first use:
    entries of the common shape [introduced 0, fixed X] sorted by X (bisect finds all fixes
    above the installed version), explicit versions in dicts, and the rest to walk."""

    __slots__ = (
        "by_version",
        "by_version_key",
        "entries",
        "fixed_entries",
        "fixed_keys",
        "others",
        "ready",
    )

    def __init__(self) -> None:
        self.entries: list[_Entry] = []
        self.ready = False

    def add(self, entry: _Entry) -> None:
        self.entries.append(entry)
        self.ready = False

    def discard(self, advisory_id: str) -> None:
        self.entries = [entry for entry in self.entries if entry.advisory.id != advisory_id]
        self.ready = False

    def prepare(self, scheme: str) -> None:
        # Built in locals and published at the end: two threads preparing the same bucket at
        # once do the work twice but never see a half-built structure.
        simple: list[tuple[Any, _Entry]] = []
        others: list[_Entry] = []
        by_version: dict[str, list[_Entry]] = {}
        by_version_key: dict[Any, list[_Entry]] = {}
        for entry in self.entries:
            if entry.ranges is None:
                entry.ranges, entry.fixed_key = _compile_ranges(scheme, entry.affected.ranges)
            for listed in entry.affected.versions:
                by_version.setdefault(listed, []).append(entry)
                key = _key_or_none(scheme, listed)
                if key is not None:
                    by_version_key.setdefault(key, []).append(entry)
            if entry.fixed_key is not None:
                simple.append((entry.fixed_key, entry))
            elif entry.ranges:
                others.append(entry)
        simple.sort(key=lambda pair: pair[0])
        self.others, self.by_version, self.by_version_key = others, by_version, by_version_key
        self.fixed_keys = [key for key, _ in simple]
        self.fixed_entries = [entry for _, entry in simple]
        self.ready = True

    def affected_entries(self, scheme: str, version: str, key: Any) -> list[_Entry]:
        if not self.ready:
            self.prepare(scheme)
        found: dict[int, _Entry] = {}
        for entry in self.by_version.get(version, ()):
            found[id(entry)] = entry
        if key is not None:
            for entry in self.by_version_key.get(key, ()):
                found[id(entry)] = entry
            start = bisect.bisect_right(self.fixed_keys, key)
            for entry in self.fixed_entries[start:]:
                found[id(entry)] = entry
        for entry in self.others:
            if id(entry) not in found and _in_ranges(entry.ranges or (), scheme, version, key):
                found[id(entry)] = entry
        return list(found.values())


def _key_or_none(scheme: str, version: str) -> Any:
    try:
        return versions.scheme_key(scheme, version)
    except versions.InvalidVersion:
        return None


def _compile_ranges(
    family_scheme: str, ranges: tuple[records.Range, ...]
) -> tuple[tuple[_Range, ...], Any]:
    """Parse a package's ranges once: GIT ranges and ranges with unreadable versions are
    dropped. Also returns X when the ranges are exactly [introduced "0", fixed X]."""
    compiled = []
    for item in ranges:
        if item.type == "GIT":
            continue
        scheme = versions.SEMVER if item.type == "SEMVER" else family_scheme
        parsed = _compile_events(scheme, item.events)
        if parsed is not None:
            compiled.append(parsed)
    simple_fix = None
    if len(compiled) == 1 and len(ranges) == 1 and compiled[0].scheme == family_scheme:
        (only,) = compiled
        if (
            only.limits is None
            and len(only.events) == 2
            and only.events[0][:2] == (None, records.INTRODUCED)
            and only.events[1][1] == records.FIXED
        ):
            simple_fix = only.events[1][0]
    return tuple(compiled), simple_fix


def _compile_events(scheme: str, events: tuple[tuple[str, str], ...]) -> _Range | None:
    ordered: list[tuple[tuple, tuple[Any, str, str]]] = []
    limits: list[Any] = []
    unbounded = False
    for position, (kind, version) in enumerate(events):
        if kind == records.LIMIT:
            if _UNBOUNDED_LIMIT in version:
                unbounded = True
                continue
            key = _key_or_none(scheme, version)
            if key is None:
                return None
            limits.append(key)
            continue
        if kind == records.INTRODUCED and version == _ZERO:
            ordered.append(((0, position), (None, kind, version)))
            continue
        key = _key_or_none(scheme, version)
        if key is None:
            return None
        ordered.append(((1, key, position), (key, kind, version)))
    ordered.sort(key=lambda pair: pair[0])
    return _Range(
        scheme,
        tuple(event for _, event in ordered),
        None if unbounded or not limits else tuple(limits),
    )


def _in_ranges(ranges: tuple[_Range, ...], family_scheme: str, version: str, key: Any) -> bool:
    for item in ranges:
        item_key = key if item.scheme == family_scheme else _key_or_none(item.scheme, version)
        if item_key is not None and _in_range(item, item_key):
            return True
    return False


def _in_range(item: _Range, key: Any) -> bool:
    """OSV's evaluation algorithm for one range (schema "Evaluation": BeforeLimits, then the
    events in order)."""
    if item.limits is not None and not any(key < limit for limit in item.limits):
        return False
    vulnerable = False
    for event_key, kind, _ in item.events:
        if kind == records.INTRODUCED:
            if event_key is None or key >= event_key:
                vulnerable = True
        elif kind == records.FIXED:
            if key >= event_key:
                vulnerable = False
        elif kind == records.LAST_AFFECTED and key > event_key:
            vulnerable = False
    return vulnerable


def _first_fix_above(
    entry: _Entry, family_scheme: str, version: str, key: Any
) -> tuple[tuple[bool, Any], str] | None:
    """The lowest ``fixed`` event above the installed version, as ((foreign, key), version).
    Fixes in the family's own ordering come first; a SEMVER range's fix is only used when the
    family's ranges have none (keys of different orderings cannot be compared)."""
    best: tuple[tuple[bool, Any], str] | None = None
    for item in entry.ranges or ():
        foreign = item.scheme != family_scheme
        item_key = _key_or_none(item.scheme, version) if foreign else key
        if item_key is None:
            continue
        for event_key, kind, written in item.events:
            if kind == records.FIXED and event_key > item_key:
                candidate = ((foreign, event_key), written)
                if best is None or _fix_before(candidate[0], best[0]):
                    best = candidate
                break  # events are sorted: the first fix above is this range's lowest
    return best


def _fix_before(first: tuple[bool, Any], second: tuple[bool, Any]) -> bool:
    if first[0] != second[0]:
        return not first[0]
    return first[1] < second[1]


class AdvisoryIndex:
    """Advisories by (family, package name) → release → entries, plus the KEV catalogue.

    Building is cheap (records are filed, nothing is parsed); each (family, name, release) is
    compiled on its first lookup and stays compiled until an advisory for it changes. Matching
    from several threads at once is safe; changing an index while another thread matches with
    it is not (build a new index and swap it in, as ``services.load_index`` does)."""

    def __init__(
        self,
        advisories: Iterable[records.Advisory] = (),
        kev: Iterable[records.KevEntry] = (),
    ):
        self._advisories: dict[str, records.Advisory] = {}
        self._packages: dict[tuple[str, str], dict[str, _Bucket]] = {}
        self._kev: dict[str, records.KevEntry] = {}
        for advisory in advisories:
            self.add(advisory)
        for entry in kev:
            self.add_kev(entry)

    def __len__(self) -> int:
        return len(self._advisories)

    def __contains__(self, advisory_id: object) -> bool:
        return advisory_id in self._advisories

    def get(self, advisory_id: str) -> records.Advisory | None:
        return self._advisories.get(advisory_id)

    def add(self, advisory: records.Advisory) -> None:
        """File an advisory; one with the same id is replaced. Withdrawn advisories are kept
        (they count in ``len``) but never filed for lookup."""
        if advisory.id in self._advisories:
            self.remove(advisory.id)
        self._advisories[advisory.id] = advisory
        if advisory.withdrawn is not None:
            return
        for affected in advisory.affected:
            if affected.family not in versions.SCHEMES:
                continue  # an ecosystem without a version ordering here is never looked up
            package = self._packages.setdefault(_package_key(affected), {})
            bucket = package.get(_release_key(affected))
            if bucket is None:
                bucket = package[_release_key(affected)] = _Bucket()
            bucket.add(_Entry(advisory, affected))

    def remove(self, advisory_id: str) -> None:
        advisory = self._advisories.pop(advisory_id, None)
        if advisory is None or advisory.withdrawn is not None:
            return
        for affected in advisory.affected:
            package = self._packages.get(_package_key(affected))
            if package is None:
                continue
            release = _release_key(affected)
            bucket = package.get(release)
            if bucket is None:
                continue
            bucket.discard(advisory_id)
            if not bucket.entries:
                del package[release]
            if not package:
                del self._packages[_package_key(affected)]

    def add_kev(self, entry: records.KevEntry) -> None:
        self._kev[entry.cve] = entry

    def replace_kev(self, entries: Iterable[records.KevEntry]) -> None:
        """Swap in a whole new KEV catalogue (entries may have been removed from it)."""
        self._kev = {entry.cve: entry for entry in entries}

    def keys_for(self, advisory: records.Advisory) -> set[tuple[str, str]]:
        """The (family, name) pairs an advisory is filed under (for re-matching hosts)."""
        return {
            _package_key(affected)
            for affected in advisory.affected
            if affected.family in versions.SCHEMES
        }

    def kev_entry(self, advisory: records.Advisory) -> records.KevEntry | None:
        entries = []
        for identifier in (advisory.id, *advisory.aliases):
            match = _CVE_IN_ID.search(identifier)
            if match and match.group() in self._kev:
                entries.append(self._kev[match.group()])
        if not entries:
            return None
        return min(entries, key=lambda item: (item.due_date or date.max, item.cve))

    def match_targets(
        self,
        targets: Iterable[Target],
        *,
        as_of: date,
        patch_days: int = 14,
        cvss_threshold: float = 7.0,
    ) -> list[dict]:
        findings: dict[tuple[str, str], _Finding] = {}
        for target in targets:
            scheme = versions.SCHEMES.get(target.family)
            if scheme is None:
                continue
            key = _key_or_none(scheme, target.version)
            for name in target.names:
                package = self._packages.get((target.family, name))
                if package is None:
                    continue
                for release in target.releases:
                    bucket = package.get(release)
                    if bucket is None:
                        continue
                    for entry in bucket.affected_entries(scheme, target.version, key):
                        _record(findings, target, entry, scheme, key)
        results = [
            self._report(finding, as_of, patch_days, cvss_threshold)
            for finding in findings.values()
        ]
        results.sort(
            key=lambda item: (item["package"], item["advisory"], item["installed_version"])
        )
        return results

    def _report(
        self, finding: _Finding, as_of: date, patch_days: int, cvss_threshold: float
    ) -> dict:
        advisory = finding.advisory
        rating, score = finding.severity.rating, finding.severity.score
        published = advisory.published or advisory.modified
        fix_published = days_since_fix = None
        overdue = False
        if finding.fixed_version is not None and published is not None:
            fix_date = published.date()
            fix_published = fix_date.isoformat()
            days_since_fix = max(0, (as_of - fix_date).days)
            overdue = is_overdue(days_since_fix, patch_days, rating, score, cvss_threshold)
        kev = self.kev_entry(advisory)
        return {
            "package": finding.package,
            "installed_version": finding.installed_version,
            "advisory": advisory.id,
            "aliases": list(advisory.aliases),
            "summary": advisory.summary,
            "ecosystem": finding.ecosystem,
            "binaries": sorted(finding.binaries),
            "fixed_version": finding.fixed_version,
            "severity": rating,
            "cvss": score,
            "cvss_vector": finding.severity.vector,
            "kev": kev is not None,
            "kev_due_date": kev.due_date.isoformat() if kev and kev.due_date else None,
            "fix_published": fix_published,
            "days_since_fix": days_since_fix,
            "overdue": overdue,
        }


def is_overdue(
    days_since_fix: int,
    patch_days: int | float,
    rating: str | None,
    score: float | None,
    cvss_threshold: float,
) -> bool:
    """The 14-day rule on a released fix: older than ``patch_days`` and serious (high or
    critical, a CVSS score at the threshold or above, or unrated: unknown is not harmless)."""
    unrated = rating is None and score is None
    serious = rating in ("high", "critical") or (score is not None and score >= cvss_threshold)
    return days_since_fix > patch_days and (serious or unrated)


def _package_key(affected: records.AffectedPackage) -> tuple[str, str]:
    name = normalise_pypi_name(affected.name) if affected.family == PYPI else affected.name
    return affected.family, name


def _release_key(affected: records.AffectedPackage) -> str:
    if affected.family == "Red Hat":
        # "enterprise_linux:9::appstream" → "enterprise_linux:9": any repository of the stream.
        return affected.release.split("::", 1)[0]
    return affected.release


class _Finding:
    __slots__ = (
        "advisory",
        "binaries",
        "ecosystem",
        "fixed_key",
        "fixed_version",
        "installed_key",
        "installed_version",
        "package",
        "severity",
    )

    def __init__(self, target: Target, entry: _Entry, key: Any, fix: tuple[Any, str] | None):
        self.package = target.name
        self.advisory = entry.advisory
        self.installed_version = target.version
        self.installed_key = key
        self.binaries = set(target.binaries)
        self.ecosystem = entry.affected.ecosystem
        self.fixed_key, self.fixed_version = fix if fix else (None, None)
        self.severity = _entry_severity(entry)


def _entry_severity(entry: _Entry) -> severity_rules.Severity:
    if entry.severity is None:
        entry.severity = severity_rules.assess(entry.advisory, entry.affected)
    return entry.severity


def _record(
    findings: dict[tuple[str, str], _Finding], target: Target, entry: _Entry, scheme: str, key: Any
) -> None:
    fix = _first_fix_above(entry, scheme, target.version, key)
    finding_key = (target.name, entry.advisory.id)
    finding = findings.get(finding_key)
    if finding is None:
        findings[finding_key] = _Finding(target, entry, key, fix)
        return
    finding.severity = severity_rules.worst(finding.severity, _entry_severity(entry))
    if finding.installed_version != target.version:
        # Another installed version of the same source (an old kernel): report the lowest.
        finding.binaries.update(target.binaries)
        if key is not None and (finding.installed_key is None or key < finding.installed_key):
            finding.installed_version, finding.installed_key = target.version, key
            finding.fixed_key, finding.fixed_version = fix if fix else (None, None)
            finding.ecosystem = entry.affected.ecosystem
        return
    # The same version matched through a second entry (another release or affected[] item):
    # keep the lowest fix above the installed version.
    if fix is not None and (finding.fixed_key is None or _fix_before(fix[0], finding.fixed_key)):
        finding.fixed_key, finding.fixed_version = fix
        finding.ecosystem = entry.affected.ecosystem


def match_evidence(
    index: AdvisoryIndex,
    evidence: Mapping[str, Any],
    *,
    as_of: date,
    patch_days: int = 14,
    cvss_threshold: float = 7.0,
) -> list[dict]:
    """The vulnerabilities of the host an evidence document describes (module docstring)."""
    if isinstance(as_of, datetime):
        as_of = as_of.date()
    return index.match_targets(
        host_targets(evidence), as_of=as_of, patch_days=patch_days, cvss_threshold=cvss_threshold
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
