"""The debsecan feed writer on every OSV shape: what it can say exactly, what it can only cover,
and what debsecan then reports — checked by running debsecan itself on the feed."""

from __future__ import annotations

import zlib
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from mamori.advisories import debsecan, records
from mamori.advisories.matching import AdvisoryIndex

from . import sidebyside
from .sidebyside import SUITE, our_pairs

WHEN = datetime(2026, 1, 10, tzinfo=UTC)
INTRO, FIX, LAST, CAP = records.INTRODUCED, records.FIXED, records.LAST_AFFECTED, records.LIMIT


def advisory(
    number: int,
    events: tuple[tuple[str, str], ...] | None,
    *,
    listed: tuple[str, ...] = (),
    ecosystem: str = "Debian:12",
    withdrawn: bool = False,
    aliases: tuple[str, ...] | None = None,
    advisory_id: str | None = None,
    severity: str | None = None,
    vectors: tuple[str, ...] = (),
    range_type: str = "ECOSYSTEM",
) -> records.Advisory:
    identifier = advisory_id or f"DSA-{9000 + number}-1"
    family, _, release = ecosystem.partition(":")
    affected = records.AffectedPackage(
        advisory_id=identifier,
        ecosystem=ecosystem,
        family=family,
        release=release,
        name=f"p{number}",
        ranges=(records.Range(range_type, events),) if events else (),
        versions=listed,
        severity=severity,
    )
    return records.Advisory(
        id=identifier,
        modified=WHEN,
        published=WHEN,
        withdrawn=WHEN if withdrawn else None,
        aliases=(f"CVE-2026-{10000 + number}",) if aliases is None else aliases,
        summary=f"case {number},\nwith a comma and a newline",
        cvss_vectors=vectors,
        severity=None,
        affected=(affected,),
    )


# (advisory, installed source version, matched by us, reported by debsecan, reasons if inexact)
CASES = [
    (advisory(1, ((INTRO, "0"), (FIX, "2.0-1"))), "1.0-1", True, True, ()),
    (advisory(2, ((INTRO, "0"), (FIX, "2.0-1"))), "2.0-1", False, False, ()),
    (advisory(3, ((INTRO, "0"),)), "9.0-1", True, True, ()),
    (advisory(4, ((INTRO, "0"), (FIX, "1.4-1"), (FIX, "1.2-1"))), "1.3-1", False, False, ()),
    (advisory(5, ((INTRO, "0"), (FIX, "1:1.0-1"))), "2.0-1", True, True, ()),
    (advisory(6, ((INTRO, "0"), (FIX, "1.0~rc1-1"))), "1.0~beta1-1", True, True, ()),
    (
        advisory(7, ((INTRO, "1.3-1"), (FIX, "1.5-1"))),
        "1.0-1",
        False,
        True,
        ("introduced above 0",),
    ),
    (advisory(8, ((INTRO, "1.3-1"), (FIX, "1.5-1"))), "1.4-1", True, True, ("introduced above 0",)),
    (advisory(9, ((INTRO, "0"), (LAST, "1.2-1"))), "1.3-1", False, True, ("last_affected",)),
    (advisory(10, ((INTRO, "0"), (LAST, "1.2-1"))), "1.1-1", True, True, ("last_affected",)),
    (
        advisory(11, ((INTRO, "0"), (CAP, "1.1-1"))),
        "2.0-1",
        False,
        True,
        ("limit", "a range that stays open after a fix"),
    ),
    (advisory(12, ((INTRO, "0"), (CAP, "*"))), "2.0-1", True, True, ()),
    (
        advisory(13, None, listed=("1.0-1",)),
        "1.0-2",
        False,
        True,
        ("explicit versions outside the ranges",),
    ),
    (
        advisory(14, ((INTRO, "0"), (FIX, "1.5-1")), listed=("3.0-1",)),
        "2.0-1",
        False,
        True,
        ("explicit versions outside the ranges",),
    ),
    (advisory(15, ((INTRO, "0"), (FIX, "1.5-1")), listed=("1.0-1",)), "1.2-1", True, True, ()),
    (advisory(16, ((INTRO, "0"), (FIX, "not a version!"))), "1.0-1", False, False, ()),
    (advisory(17, ((INTRO, "0"), (FIX, "2.0-1")), withdrawn=True), "1.0-1", False, False, ()),
    (
        advisory(18, ((INTRO, "0"), (FIX, "2.0-1")), ecosystem="Debian:11"),
        "1.0-1",
        False,
        False,
        (),
    ),
    (advisory(19, ((INTRO, "0"), (FIX, "2.0-1")), ecosystem="Debian"), "1.0-1", True, True, ()),
    (
        advisory(20, ((INTRO, "0"), (FIX, "1.2-1"), (INTRO, "1.4-1"), (FIX, "1.6-1"))),
        "1.3-1",
        False,
        True,
        ("introduced above 0",),
    ),
    (
        advisory(21, ((INTRO, "0"), (FIX, "1.2.0")), range_type="SEMVER"),
        "1.3-1",
        False,
        True,
        ("a SEMVER range on a dpkg package",),
    ),
]


def two_ranges(number: int) -> records.Advisory:
    """[0, 1.2-1) and [0, 1.4-1): the union is "below 1.4-1", which the feed says exactly."""
    base = advisory(number, ((INTRO, "0"), (FIX, "1.2-1")))
    affected = base.affected[0]
    ranges = (*affected.ranges, records.Range("ECOSYSTEM", ((INTRO, "0"), (FIX, "1.4-1"))))
    return replace(base, affected=(replace(affected, ranges=ranges),))


CASES.append((two_ranges(22), "1.3-1", True, True, ()))


def status_for(installed: dict[str, str]) -> str:
    """One binary ``b<n>`` per source ``p<n>``; odd cases as binNMUs (Source: p (version))."""
    stanzas = []
    for position, (source, version) in enumerate(sorted(installed.items())):
        binary = "b" + source[1:]
        if position % 2:
            fields = [f"Version: {version}+b1", f"Source: {source} ({version})"]
        else:
            fields = [f"Version: {version}", f"Source: {source}"]
        stanzas.append(
            "\n".join(
                [
                    f"Package: {binary}",
                    "Status: install ok installed",
                    "Architecture: amd64",
                    *fields,
                    "Description: test",
                ]
            )
        )
    return "\n\n".join(stanzas) + "\n"


@pytest.fixture
def shapes_run(tmp_path):
    advisories = [case[0] for case in CASES]
    feed = debsecan.build_feed(advisories, SUITE, "Debian", "12")
    feed.write(tmp_path)
    installed = {case[0].affected[0].name: case[1] for case in CASES}
    text = status_for(installed)
    (tmp_path / "status").write_text(text)
    evidence = sidebyside.agent_evidence(text, tmp_path / "root")
    return feed, our_pairs(AdvisoryIndex(advisories), evidence), tmp_path


def expected(position: int) -> set[tuple[str, str]]:
    case = CASES[position][0]
    return {("b" + case.affected[0].name[1:], case.aliases[0])}


@pytest.mark.usefixtures("debsecan_tool")
def test_every_shape_through_debsecan(shapes_run):
    _, ours, directory = shapes_run
    theirs = sidebyside.debsecan_pairs(directory, directory / "status")
    want_ours = set().union(*(expected(i) for i, case in enumerate(CASES) if case[2]))
    want_theirs = set().union(*(expected(i) for i, case in enumerate(CASES) if case[3]))
    assert ours == want_ours
    assert theirs == want_theirs
    # debsecan says more only where the feed is marked inexact, and never says less.
    assert ours <= theirs
    inexact_cves = {cve for case in CASES if case[4] for cve in case[0].aliases}
    assert {cve for _, cve in theirs - ours} <= inexact_cves


def test_inexact_entries_are_counted_with_their_reasons(shapes_run):
    feed, _, _ = shapes_run
    assert feed.inexact == {case[0].id: case[4] for case in CASES if case[4]}
    # Withdrawn, Debian 11 and the unreadable range give no line; everything else does.
    assert feed.advisories == len(CASES) - 3
    assert feed.skipped == {}


def test_exact_shapes_and_their_fixed_versions(shapes_run):
    feed, _, _ = shapes_run
    fixed = {line.package: line.fixed for line in feed.lines}
    assert fixed["p1"] == "2.0-1"
    assert fixed["p3"] == ""  # no fix: every version
    assert fixed["p4"] == "1.2-1"  # the lowest fix closes a range
    assert fixed["p22"] == "1.4-1"  # the union of two ranges
    assert fixed["p7"] == "1.5-1"  # covered: introduced dropped
    assert fixed["p9"] == fixed["p11"] == fixed["p13"] == fixed["p14"] == ""
    assert fixed["p20"] == "1.6-1"
    assert not {"p16", "p17", "p18"} & fixed.keys()


@pytest.mark.usefixtures("debsecan_tool")
def test_names_urgency_and_remote_as_debsecan_shows_them(tmp_path):
    several = advisory(
        1,
        ((INTRO, "0"), (FIX, "2.0-1")),
        aliases=("CVE-2026-0001", "DEBIAN-CVE-2026-0002", "GHSA-xxxx-yyyy-zzzz"),
        severity="high",
        vectors=("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",),
    )
    unnamed = advisory(2, ((INTRO, "0"),), aliases=(), advisory_id="DLA-4000-1")
    local = advisory(
        3, ((INTRO, "0"), (FIX, "2.0-1")), vectors=("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:N/A:N",)
    )
    bad_name = advisory(4, ((INTRO, "0"),), aliases=(), advisory_id="X,Y")
    feed = debsecan.build_feed([several, unnamed, local, bad_name], SUITE, "Debian", "12")
    assert feed.skipped == {"X,Y": "no name debsecan's format can carry"}
    feed.write(tmp_path)
    (tmp_path / "status").write_text(status_for({"p1": "1.0-1", "p2": "1.0-1", "p3": "1.0-1"}))
    detail = sidebyside.run_debsecan(tmp_path, tmp_path / "status", "detail")
    assert "CVE-2026-0001 (fixed, remotely exploitable, high urgency)" in detail
    assert "CVE-2026-0002 (fixed, remotely exploitable, high urgency)" in detail
    assert "DLA-4000-1\n" in detail  # no CVE: the advisory's own id; unfixed, no notes
    assert "CVE-2026-10003 (fixed, low urgency)" in detail  # AV:L, CVSS 3.3
    assert "  case 1, with a comma and a newline\n" in detail
    assert "  fixed in unstable: p1 2.0-1 (source package)" in detail
    assert "fix is available for the selected suite (bookworm)" in detail
    assert debsecan.parse_detail(detail) == {
        ("b1", "CVE-2026-0001"),
        ("b1", "CVE-2026-0002"),
        ("b2", "DLA-4000-1"),
        ("b3", "CVE-2026-10003"),
    }
    simple = sidebyside.run_debsecan(tmp_path, tmp_path / "status", "simple")
    assert debsecan.parse_simple(simple) == debsecan.parse_detail(detail)


def test_write_feed_is_the_compressed_text():
    case = advisory(1, ((INTRO, "0"), (FIX, "2.0-1")))
    data = debsecan.write_feed([case], SUITE, "Debian", "12")
    assert zlib.decompress(data).decode() == (
        "VERSION 1\nCVE-2026-10001,,case 1, with a comma and a newline\n\np1,0,S ?F,2.0-1,\n\n"
    )


def test_an_empty_feed_is_still_a_feed():
    assert zlib.decompress(debsecan.write_feed([], SUITE, "Debian", "12")) == b"VERSION 1\n\n\n"


def test_ubuntu_records_go_by_their_own_release_only():
    lts = advisory(1, ((INTRO, "0"), (FIX, "2.0-1")), ecosystem="Ubuntu:22.04:LTS")
    unreleased = advisory(2, ((INTRO, "0"), (FIX, "2.0-1")), ecosystem="Ubuntu")
    feed = debsecan.build_feed([lts, unreleased], "jammy", "Ubuntu", "22.04:LTS")
    assert [line.package for line in feed.lines] == ["p1"]
    both = debsecan.build_feed([lts, unreleased], "jammy", "Ubuntu", ("22.04:LTS", ""))
    assert [line.package for line in both.lines] == ["p1", "p2"]


@pytest.mark.parametrize(
    ("suite", "family", "message"),
    [
        ("../bookworm", "Debian", "not a single path component"),
        ("", "Debian", "not a single path component"),
        ("bookworm", "PyPI", "not a dpkg family"),
        ("bookworm", "Alpine", "not a dpkg family"),
    ],
)
def test_bad_arguments(suite, family, message):
    with pytest.raises(debsecan.FeedError, match=message):
        debsecan.build_feed([], suite, family, "12")


def test_report_format_is_refused():
    with pytest.raises(debsecan.FeedError, match="history"):
        debsecan.offline_command("/tmp", SUITE, "/tmp/status", output_format="report")


def test_parse_detail_refuses_what_it_does_not_know():
    with pytest.raises(ValueError, match="unexpected debsecan detail line"):
        debsecan.parse_detail("two words here\n")
    assert debsecan.parse_detail("") == set()
