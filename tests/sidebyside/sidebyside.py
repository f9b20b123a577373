"""Shared by the side-by-side tests: the real inputs, the derived dpkg status (c), our matcher's
(binary, CVE) pairs and debsecan's, run offline on a feed from the same advisories."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from datetime import date
from functools import cache
from pathlib import Path

from mamori.advisories import debsecan, osv, records, versions
from mamori.advisories.matching import AdvisoryIndex, match_evidence
from mamori_agent.collect import collect
from tests.datafiles import DEBIAN12, DEBIAN12_OS_RELEASE

DEBSECAN = Path(debsecan.DEFAULT_PROGRAM)
SUITE = "bookworm"
AS_OF = date(2026, 11, 25)

_CVE = re.compile(r"CVE-\d{4}-\d{4,}$")
_SECURITY_SUFFIX = re.compile(r"[+~]deb12u\d+$")


@cache
def debian12_advisories() -> tuple[records.Advisory, ...]:
    return tuple(
        osv.parse_osv(json.loads(path.read_text())) for path in sorted(DEBIAN12.glob("*.json"))
    )


def fixes_by_source(advisories: Iterable[records.Advisory]) -> dict[str, list[str]]:
    """Source package → its distinct Debian 12 fixed versions, lowest first."""
    found: dict[str, set[str]] = {}
    for advisory in advisories:
        for affected in advisory.affected:
            if affected.ecosystem != "Debian:12":
                continue
            for item in affected.ranges:
                for kind, version in item.events:
                    if kind == records.FIXED:
                        found.setdefault(affected.name, set()).add(version)
    return {
        name: sorted(fixes, key=lambda version: versions.sort_key("Debian", version))
        for name, fixes in sorted(found.items())
    }


# --- (c): a status file derived from the real one, with source versions lowered -------------


def split_stanzas(text: str) -> list[list[str]]:
    return [stanza.splitlines() for stanza in text.strip("\n").split("\n\n")]


def join_stanzas(stanzas: list[list[str]]) -> str:
    return "\n\n".join("\n".join(lines) for lines in stanzas) + "\n"


def field(lines: list[str], name: str) -> str | None:
    prefix = name + ":"
    for line in lines:
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    return None


def set_field(lines: list[str], name: str, value: str) -> list[str]:
    prefix = name + ":"
    for position, line in enumerate(lines):
        if line.startswith(prefix):
            return [*lines[:position], f"{name}: {value}", *lines[position + 1 :]]
    # A new field goes after Package (dpkg does not care about the order).
    return [lines[0], f"{name}: {value}", *lines[1:]]


def stanza_source(lines: list[str]) -> tuple[str, str]:
    """(source name, source version) as dpkg means them."""
    package, version = field(lines, "Package") or "", field(lines, "Version") or ""
    source = field(lines, "Source")
    if not source:
        return package, version
    name, _, rest = source.partition(" ")
    return name, rest.strip(" ()") or version


def _below_first_fix(first_fix: str) -> str:
    """A version below a source's first bookworm fix: the version the update was made from
    when the fix only appended +deb12uN, else the fix with "~" (which sorts before the end)."""
    before = _SECURITY_SUFFIX.sub("", first_fix)
    if before != first_fix and versions.compare("Debian", before, first_fix) < 0:
        return before
    return first_fix + "~"


# The rule of each source the tests check by name (test_debsecan.test_lowered_snapshot_c), so
# that what they check does not hang on which other sources the data holds. These are the rules
# the rotation gave them on the full snapshot (57 sources); the kernel always gets the median.
PINNED_RULES = {
    "linux": 0, "curl": 0, "glibc": 0,
    "libarchive": 1, "libde265": 1, "openssl": 1, "util-linux": 1,
    "avahi": 2, "expat": 2, "git": 2,
}  # fmt: skip


def lowered_versions(installed: dict[str, str], fixes: dict[str, list[str]]) -> dict[str, str]:
    """For the installed sources that have bookworm fixes: the version (c) gives them, by a rule
    that rotates over the sorted sources so that every kind of boundary occurs (except for the
    sources in ``PINNED_RULES``):

    0. the median fix itself (records fixed exactly there are not vulnerable, later ones are);
    1. below the first fix (all its records are vulnerable);
    2. epoch dropped (``1:9.2p1-2`` → ``9.2p1-2``: below every fix with epoch 1) — or, for a
       source without an epoch, epoch 1 added (above every fix: nothing is vulnerable);
    3. unchanged (the real, fully patched version)."""
    lowered = {}
    candidates = sorted(name for name in installed if name in fixes)
    for position, name in enumerate(candidates):
        source_fixes, current = fixes[name], installed[name]
        rule = PINNED_RULES.get(name, position % 4)
        if rule == 0 and len(source_fixes) == 1:
            rule = 1
        if rule == 0:
            lowered[name] = source_fixes[len(source_fixes) // 2]
        elif rule == 1:
            lowered[name] = _below_first_fix(source_fixes[0])
        elif rule == 2:
            epoch, colon, rest = current.partition(":")
            lowered[name] = rest if colon and epoch.isdigit() else "1:" + current
    return lowered


def _binary_version(binary_version: str, source_version: str, new_source: str) -> str:
    """The binary's version after its source moved to ``new_source``: a binNMU keeps its
    ``+bN`` and a binary with its own epoch keeps it (bsdutils is 1:2.38.1-5 from util-linux
    2.38.1-5)."""
    if source_version and source_version in binary_version:
        replaced = binary_version.replace(source_version, new_source, 1)
        if replaced.count(":") <= 1:
            return replaced
    return new_source


def derive_lowered_status(text: str, fixes: dict[str, list[str]]) -> tuple[str, dict]:
    """(c): the status (b) with source versions lowered below real fixes, plus what was done.

    Also, so that both tools meet every case the status format has:
    - the first binary of each lowered source that is not already a binNMU becomes one
      (``Version: V+b1`` with ``Source: name (V)``);
    - libssl3 (Multi-Arch: same) gets a second, foreign-architecture stanza (i386);
    - one lowered binary is ``deinstall ok installed`` (selected for removal, still installed),
      one ``hold ok installed``, and one is only ``deinstall ok config-files`` (removed)."""
    stanzas = split_stanzas(text)
    installed: dict[str, str] = {}
    for lines in stanzas:
        name, version = stanza_source(lines)
        installed.setdefault(name, version)
    lowered = lowered_versions(installed, fixes)

    changed: list[list[str]] = []
    made_binnmu: set[str] = set()
    info: dict = {"lowered": lowered, "binnmu": [], "status": {}, "foreign": None}
    for lines in stanzas:
        source_name, source_version = stanza_source(lines)
        if source_name not in lowered:
            changed.append(lines)
            continue
        new_source = lowered[source_name]
        package, version = field(lines, "Package") or "", field(lines, "Version") or ""
        source_field = field(lines, "Source")
        if source_field and "(" in source_field:
            lines = set_field(lines, "Source", f"{source_name} ({new_source})")
            lines = set_field(
                lines, "Version", _binary_version(version, source_version, new_source)
            )
        elif source_name not in made_binnmu:
            made_binnmu.add(source_name)
            lines = set_field(lines, "Source", f"{source_name} ({new_source})")
            lines = set_field(lines, "Version", new_source + "+b1")
            info["binnmu"].append(package)
        else:
            lines = set_field(
                lines, "Version", _binary_version(version, source_version, new_source)
            )
        changed.append(lines)

    def pick(source: str) -> int:
        return next(i for i, lines in enumerate(changed) if stanza_source(lines)[0] == source)

    marks = {
        "curl": "deinstall ok installed",
        "libarchive": "hold ok installed",
        "libde265": "deinstall ok config-files",
    }
    for source, status in marks.items():
        if source in lowered:
            position = pick(source)
            changed[position] = set_field(changed[position], "Status", status)
            info["status"][field(changed[position], "Package")] = status
    if "openssl" in lowered:
        native = next(lines for lines in changed if field(lines, "Package") == "libssl3")
        foreign = set_field(native, "Architecture", "i386")
        changed.append(foreign)
        info["foreign"] = field(foreign, "Package")
    return join_stanzas(changed), info


# --- both tools ------------------------------------------------------------------------------


def agent_evidence(status_text: str, root: Path) -> dict:
    """The agent's own evidence for a host whose root holds only this status file and the
    Debian 12 os-release (``collect --root``: reads files, runs nothing)."""
    (root / "var/lib/dpkg").mkdir(parents=True, exist_ok=True)
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dpkg/status").write_text(status_text)
    shutil.copyfile(DEBIAN12_OS_RELEASE, root / "etc/os-release")
    return collect(str(root))


def cve_names(vulnerability: dict) -> set[str]:
    """The CVE ids of a vulnerability (advisory id and aliases), else the advisory id."""
    names = set()
    for identifier in (vulnerability["advisory"], *vulnerability["aliases"]):
        match = _CVE.search(identifier)
        if match:
            names.add(match.group())
    return names or {vulnerability["advisory"]}


def our_pairs(index: AdvisoryIndex, evidence: dict) -> set[tuple[str, str]]:
    """Our vulnerabilities expanded to (binary package, CVE)."""
    return {
        (binary, name)
        for vulnerability in match_evidence(index, evidence, as_of=AS_OF)
        for binary in vulnerability["binaries"]
        for name in cve_names(vulnerability)
    }


@cache
def network_namespace_works() -> bool:
    """Whether ``unshare -n`` can run debsecan without any network (root, or user namespaces)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    result = subprocess.run([unshare, "-n", "true"], capture_output=True, check=False)
    return result.returncode == 0


def run_debsecan(feed_directory: Path, status: Path, output_format: str) -> str:
    """debsecan's output on the feed and status, offline (in a network namespace without any
    interface when the system allows one, so that a request could not leave the machine)."""
    command = debsecan.offline_command(feed_directory, SUITE, status, output_format=output_format)
    if network_namespace_works():
        command = ["unshare", "-n", *command]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(feed_directory)},
        timeout=300,
    )
    if result.returncode != 0 or result.stderr:
        raise AssertionError(f"debsecan failed ({result.returncode}): {result.stderr[:500]}")
    return result.stdout


def debsecan_pairs(feed_directory: Path, status: Path) -> set[tuple[str, str]]:
    """(binary, vulnerability) from ``--format detail``, checked against ``--format packages``."""
    pairs = debsecan.parse_detail(run_debsecan(feed_directory, status, "detail"))
    packages = debsecan.parse_packages(run_debsecan(feed_directory, status, "packages"))
    assert packages == {binary for binary, _ in pairs}
    return pairs
