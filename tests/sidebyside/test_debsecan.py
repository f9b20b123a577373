"""debsecan and our matcher on the same dpkg status and the same advisories must report the same
(binary package, CVE) pairs (issue 3, section 4; docs/side-by-side.md).

debsecan runs offline on a feed that ``mamori.advisories.debsecan`` writes from the OSV records
parsed with ``osv.parse_osv``; our side is the agent's ``collect --root`` on a root holding the
status file, matched with ``AdvisoryIndex``/``match_evidence``. Inputs: (a) this machine's
``/var/lib/dpkg/status``, (b) the Debian 12 snapshot host, (c) the snapshot with source versions
lowered below real fixes (binNMUs, epochs, a foreign-architecture copy, held and
selected-for-removal packages), and (a) lowered the same way.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from debian.debian_support import version_compare

from mamori.advisories import debsecan
from mamori.advisories.matching import AdvisoryIndex
from tests.datafiles import DEBIAN12_CVES, DEBIAN12_RECORDS, DEBIAN12_STATUS

from . import sidebyside
from .sidebyside import (
    SUITE,
    debian12_advisories,
    debsecan_pairs,
    derive_lowered_status,
    field,
    fixes_by_source,
    our_pairs,
    split_stanzas,
    stanza_source,
)

pytestmark = pytest.mark.usefixtures("debsecan_tool")
THIS_MACHINE = Path("/var/lib/dpkg/status")


@pytest.fixture(scope="module")
def real_feed(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("feed")
    feed = debsecan.build_feed(debian12_advisories(), SUITE, "Debian", "12")
    # Every real record is [introduced 0, fixed X]: the feed says exactly what OSV says.
    assert feed.inexact == {}
    assert feed.skipped == {}
    assert feed.advisories == len(debian12_advisories()) == DEBIAN12_RECORDS
    feed.write(directory)
    return directory


@pytest.fixture(scope="module")
def real_index() -> AdvisoryIndex:
    return AdvisoryIndex(debian12_advisories())


def compare(status_text: str, feed: Path, index: AdvisoryIndex, work: Path):
    """(ours, debsecan's, the agent's evidence) for one status file."""
    status = work / "status"
    status.write_text(status_text)
    evidence = sidebyside.agent_evidence(status_text, work / "root")
    assert evidence["packages"]["status"] == "ok", evidence["packages"]["errors"]
    return our_pairs(index, evidence), debsecan_pairs(feed, status), evidence


def lowered(text: str) -> tuple[str, dict]:
    return derive_lowered_status(text, fixes_by_source(debian12_advisories()))


def assert_same(ours, theirs):
    assert ours - theirs == set()
    assert theirs - ours == set()


def test_snapshot_host_b(real_feed, real_index, tmp_path):
    ours, theirs, _ = compare(DEBIAN12_STATUS.read_text(), real_feed, real_index, tmp_path)
    # The snapshot is fully patched against its own changelogs' fixes.
    assert ours == theirs == set()


def test_this_machine_a(real_feed, real_index, tmp_path):
    assert THIS_MACHINE.exists(), "this Debian machine has no dpkg status"
    text = THIS_MACHINE.read_text()  # read once: both tools see the same copy
    ours, theirs, _ = compare(text, real_feed, real_index, tmp_path)
    assert_same(ours, theirs)


def test_lowered_snapshot_c(real_feed, real_index, tmp_path):
    text, info = lowered(DEBIAN12_STATUS.read_text())
    ours, theirs, _ = compare(text, real_feed, real_index, tmp_path)

    # Hits from every installed source lowered below one of its fixes, and from no other source
    # (python-debian decides which, not our version code).
    fixes = fixes_by_source(debian12_advisories())
    source_of = {
        (field(lines, "Package"), field(lines, "Architecture")): stanza_source(lines)[0]
        for lines in split_stanzas(text)
        if (field(lines, "Status") or "").endswith(" installed")
    }
    below = {
        name
        for name, version in info["lowered"].items()
        if any(version_compare(version, fix) < 0 for fix in fixes[name])
        and name in source_of.values()
    }
    hit_binaries = {binary for binary, _ in theirs}
    assert {source_of[key] for key in source_of if key[0] in hit_binaries} == below
    assert "linux-libc-dev" in hit_binaries  # the kernel at its median fix
    assert "git" in hit_binaries  # epoch 1 dropped: below every 1:2.39.5 fix
    assert "bsdutils" in hit_binaries  # Version 1:2.38.1-5, Source: util-linux (2.38.1-5)
    assert "libc-bin" in info["binnmu"]  # made a binNMU
    assert "libc-bin" in hit_binaries
    assert not {"libexpat1", "libavahi-client3"} & hit_binaries  # epoch 1 added: above all
    assert info["foreign"] == "libssl3"
    assert "libssl3" in hit_binaries
    assert info["status"] == {
        "curl": "deinstall ok installed",
        "libarchive13": "hold ok installed",
        "libde265-0": "deinstall ok config-files",
    }
    assert "libarchive13" in hit_binaries  # held packages are installed for both
    assert "libde265-0" not in hit_binaries  # removed, only its configuration files are left
    assert_same(ours, theirs)
    # Selected for removal but still installed: both tools report it (five CVEs of curl).
    assert len({pair for pair in ours if pair[0] == "curl"}) == 5


def test_lowered_this_machine(real_feed, real_index, tmp_path):
    assert THIS_MACHINE.exists(), "this Debian machine has no dpkg status"
    text, _ = lowered(THIS_MACHINE.read_text())
    ours, theirs, _ = compare(text, real_feed, real_index, tmp_path)
    assert ours  # every Debian 12 host has some of the 57 sources (glibc, openssl, systemd, ...)
    assert_same(ours, theirs)


def test_feed_is_what_debsecan_reads(real_feed):
    """The generated file is the format debsecan's fetch_data parses: zlib, VERSION 1, three
    sections; one name line per CVE and one source line per (package, CVE)."""
    import zlib

    text = zlib.decompress((real_feed / SUITE).read_bytes()).decode()
    names, packages, binaries = text.split("\n\n", 2)
    assert names.splitlines()[0] == "VERSION 1"
    assert len(names.splitlines()) == 1 + DEBIAN12_CVES
    lines = packages.splitlines()
    assert len(lines) == DEBIAN12_RECORDS
    assert "openssl," in packages
    first = lines[0].split(",")
    assert first == ["postgresql-15", "0", "S ?F", "15.14-0+deb12u1", ""]
    assert binaries.strip() == ""


def test_missing_feed_is_an_error_not_a_download(tmp_path):
    """debsecan is pointed at a file:// URL and never falls back to the security tracker."""
    shutil.copyfile(DEBIAN12_STATUS, tmp_path / "status")
    with pytest.raises(AssertionError, match=r"debsecan failed \(1\).*file://"):
        sidebyside.run_debsecan(tmp_path, tmp_path / "status", "detail")
