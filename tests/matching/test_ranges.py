"""OSV ``affected`` semantics, table-driven, with advisories built directly as records."""

from __future__ import annotations

from datetime import date

import pytest

from mamori.advisories import records
from mamori.advisories.matching import AdvisoryIndex, host_targets, match_evidence, package_keys
from tests.matching.hostdata import (
    debian12_items,
    debian_host,
    dpkg_item,
    evidence,
    make_advisory,
    os_section,
    python_item,
    ubuntu_host,
)

AS_OF = date(2026, 11, 25)

INTRO, FIX, LAST, LIMIT = "introduced", "fixed", "last_affected", "limit"

# (case, events, installed source version, affected?, fixed_version reported)
RANGE_CASES = [
    ("below the fix", ((INTRO, "0"), (FIX, "1.2-1")), "1.1-1", True, "1.2-1"),
    ("fixed is exclusive", ((INTRO, "0"), (FIX, "1.2-1")), "1.2-1", False, None),
    ("above the fix", ((INTRO, "0"), (FIX, "1.2-1")), "1.3-1", False, None),
    ("before introduced", ((INTRO, "1.0-1"), (FIX, "1.2-1")), "0.9-1", False, None),
    ("introduced is inclusive", ((INTRO, "1.0-1"), (FIX, "1.2-1")), "1.0-1", True, "1.2-1"),
    ("last_affected is inclusive", ((INTRO, "0"), (LAST, "1.2-1")), "1.2-1", True, None),
    ("above last_affected", ((INTRO, "0"), (LAST, "1.2-1")), "1.2-2", False, None),
    ("below a limit", ((INTRO, "0"), (LIMIT, "1.5-1")), "1.4-1", True, None),
    ("limit is exclusive", ((INTRO, "0"), (LIMIT, "1.5-1")), "1.5-1", False, None),
    ("a limit caps a later fix", ((INTRO, "0"), (FIX, "2.0-1"), (LIMIT, "1.5-1")), "1.7-1", False, None),
    ("under the limit, before the fix", ((INTRO, "0"), (FIX, "2.0-1"), (LIMIT, "1.5-1")), "1.4-1", True, "2.0-1"),
    ("limit * is no cap", ((INTRO, "0"), (LIMIT, "*")), "99-1", True, None),
    ("one of several limits", ((INTRO, "0"), (LIMIT, "1.0-1"), (LIMIT, "3.0-1")), "2.0-1", True, None),
    ("no fix at all", ((INTRO, "0"),), "5.0-1", True, None),
    ("first pair", ((INTRO, "1.0"), (FIX, "1.0.2"), (INTRO, "3.0"), (FIX, "3.2.5")), "1.0.1", True, "1.0.2"),
    ("between pairs", ((INTRO, "1.0"), (FIX, "1.0.2"), (INTRO, "3.0"), (FIX, "3.2.5")), "2.0", False, None),
    ("second pair", ((INTRO, "1.0"), (FIX, "1.0.2"), (INTRO, "3.0"), (FIX, "3.2.5")), "3.1", True, "3.2.5"),
    ("after both pairs", ((INTRO, "1.0"), (FIX, "1.0.2"), (INTRO, "3.0"), (FIX, "3.2.5")), "3.2.5", False, None),
    ("before both pairs", ((INTRO, "1.0"), (FIX, "1.0.2"), (INTRO, "3.0"), (FIX, "3.2.5")), "0.5", False, None),
    ("pairs out of order", ((INTRO, "2.0"), (FIX, "2.5"), (INTRO, "1.0"), (FIX, "1.5")), "1.2", True, "1.5"),
    ("pairs out of order, gap", ((INTRO, "2.0"), (FIX, "2.5"), (INTRO, "1.0"), (FIX, "1.5")), "1.7", False, None),
    ("epoch beats the number", ((INTRO, "0"), (FIX, "1:1.0-1")), "2.0-1", True, "1:1.0-1"),
    ("explicit epoch 0", ((INTRO, "0"), (FIX, "1.0-1")), "0:0.9-1", True, "1.0-1"),
    ("tilde sorts first", ((INTRO, "0"), (FIX, "1.0-1")), "1.0~rc1-1", True, "1.0-1"),
    ("tilde fix, final installed", ((INTRO, "0"), (FIX, "1.0~rc1-1")), "1.0-1", False, None),
    ("security upload", ((INTRO, "0"), (FIX, "1.34+dfsg-1.2+deb12u1")), "1.34+dfsg-1.2", True, "1.34+dfsg-1.2+deb12u1"),
]  # fmt: skip


def match_one(advisory, items, *, host=debian_host, **kwargs):
    index = AdvisoryIndex([advisory])
    return match_evidence(index, host(items), as_of=AS_OF, **kwargs)


@pytest.mark.parametrize(
    ("case", "events", "installed", "affected", "fixed"),
    RANGE_CASES,
    ids=[c[0] for c in RANGE_CASES],
)
def test_range_events(case, events, installed, affected, fixed):
    found = match_one(make_advisory(events=events), [dpkg_item("foo", installed)])
    assert bool(found) is affected
    if affected:
        (vulnerability,) = found
        assert vulnerability["installed_version"] == installed
        assert vulnerability["fixed_version"] == fixed
        assert vulnerability["advisory"] == "TEST-2026-1"


def test_each_range_counts_on_its_own():
    ranges = (
        records.Range("ECOSYSTEM", ((INTRO, "0"), (FIX, "1.0-1"))),
        records.Range("ECOSYSTEM", ((INTRO, "2.0-1"), (FIX, "2.3-1"))),
    )
    advisory = make_advisory(ranges=ranges)
    assert match_one(advisory, [dpkg_item("foo", "2.1-1")])[0]["fixed_version"] == "2.3-1"
    assert match_one(advisory, [dpkg_item("foo", "0.5-1")])[0]["fixed_version"] == "1.0-1"
    assert match_one(advisory, [dpkg_item("foo", "1.5-1")]) == []


def test_explicit_versions_list():
    advisory = make_advisory(events=None, versions=("1.0-1", "1.0-2"))
    assert [v["fixed_version"] for v in match_one(advisory, [dpkg_item("foo", "1.0-2")])] == [None]
    assert match_one(advisory, [dpkg_item("foo", "1.0-3")]) == []
    # Equality is the ecosystem's: dpkg's 0:1.0-2 is 1.0-2.
    assert len(match_one(advisory, [dpkg_item("foo", "0:1.0-2")])) == 1


def test_versions_list_and_range_report_the_fix_above_the_installed_version():
    advisory = make_advisory(events=((INTRO, "0"), (FIX, "1.0-5")), versions=("1.0-1", "1.0-2"))
    (vulnerability,) = match_one(advisory, [dpkg_item("foo", "1.0-2")])
    assert vulnerability["fixed_version"] == "1.0-5"


def test_withdrawn_advisories_never_match():
    advisory = make_advisory(withdrawn="2026-02-01T00:00:00", versions=("1.1-1",))
    assert match_one(advisory, [dpkg_item("foo", "1.1-1")]) == []
    index = AdvisoryIndex([advisory])
    assert len(index) == 1  # kept (it is an advisory we know), never filed for lookup


def test_git_ranges_never_match_but_versions_lists_still_do():
    git = records.Range("GIT", ((INTRO, "a" * 40), (FIX, "b" * 40)))
    assert match_one(make_advisory(ranges=(git,)), [dpkg_item("foo", "1.0-1")]) == []
    with_list = make_advisory(ranges=(git,), versions=("1.0-1",))
    assert len(match_one(with_list, [dpkg_item("foo", "1.0-1")])) == 1


def test_debian_12_records_do_not_match_a_debian_11_host_and_back():
    for12 = make_advisory(ecosystem="Debian:12")
    for11 = make_advisory("TEST-11", ecosystem="Debian:11")
    item = [dpkg_item("foo", "1.0-1")]
    index = AdvisoryIndex([for12, for11])
    found12 = match_evidence(index, debian_host(item, "12"), as_of=AS_OF)
    found11 = match_evidence(index, debian_host(item, "11"), as_of=AS_OF)
    assert [v["advisory"] for v in found12] == ["TEST-2026-1"]
    assert [v["advisory"] for v in found11] == ["TEST-11"]
    assert found11[0]["ecosystem"] == "Debian:11"


def test_a_record_without_a_release_matches_every_debian_release():
    advisory = make_advisory(ecosystem="Debian")
    for release in ("11", "12", "13"):
        assert (
            len(
                match_one(
                    advisory,
                    [dpkg_item("foo", "1.0-1")],
                    host=lambda items, r=release: debian_host(items, r),
                )
            )
            == 1
        )


def test_debian_testing_without_a_release_number_is_not_looked_up():
    index = AdvisoryIndex([make_advisory(ecosystem="Debian"), make_advisory("T-12")])
    host = debian_host([dpkg_item("foo", "1.0-1")], version_id=None)
    assert host_targets(host) == []
    assert match_evidence(index, host, as_of=AS_OF) == []


def test_ubuntu_pro_records_match_only_hosts_enrolled_in_esm():
    pro = make_advisory(
        "USN-TEST-1",
        ecosystem="Ubuntu:Pro:22.04:LTS",
        events=((INTRO, "0"), (FIX, "1.0-1ubuntu0.1+esm1")),
    )
    standard = make_advisory(
        "USN-TEST-2", ecosystem="Ubuntu:22.04:LTS", events=((INTRO, "0"), (FIX, "1.0-1ubuntu0.2"))
    )
    index = AdvisoryIndex([pro, standard])
    items = [dpkg_item("foo", "1.0-1ubuntu0.1")]
    plain = match_evidence(index, ubuntu_host("22.04", items, esm=False), as_of=AS_OF)
    enrolled = match_evidence(index, ubuntu_host("22.04", items, esm=True), as_of=AS_OF)
    assert [v["advisory"] for v in plain] == ["USN-TEST-2"]
    assert [v["advisory"] for v in enrolled] == ["USN-TEST-1", "USN-TEST-2"]
    assert enrolled[0]["ecosystem"] == "Ubuntu:Pro:22.04:LTS"
    # Another release is another ecosystem.
    assert match_evidence(index, ubuntu_host("24.04", items, esm=True), as_of=AS_OF) == []


def test_ubuntu_interim_release_ecosystem_has_no_lts_suffix():
    advisory = make_advisory(ecosystem="Ubuntu:24.10")
    assert (
        len(
            match_one(
                advisory,
                [dpkg_item("foo", "1.0-1")],
                host=lambda items: ubuntu_host("24.10", items),
            )
        )
        == 1
    )


def test_matching_uses_the_source_package_and_its_version():
    """The host's real cpp binary: version 4:12.2.0-3, source gcc-defaults 1.203. A fix for the
    source at 1.204 applies although the binary's version is far above it."""
    cpp = next(item for item in debian12_items() if item["name"] == "cpp")
    assert (cpp["version"], cpp["source_name"], cpp["source_version"]) == (
        "4:12.2.0-3",
        "gcc-defaults",
        "1.203",
    )
    advisory = make_advisory(name="gcc-defaults", events=((INTRO, "0"), (FIX, "1.204")))
    (vulnerability,) = match_one(advisory, [dict(cpp)])
    assert vulnerability["package"] == "gcc-defaults"
    assert vulnerability["installed_version"] == "1.203"
    assert (
        match_one(make_advisory(name="cpp", events=((INTRO, "0"), (FIX, "5:1"))), [dict(cpp)]) == []
    )


def test_binnmu_source_version_comes_from_the_source_field():
    """A binNMU (+bN) binary's source is at the version in ``Source: name (version)``."""
    binnmus = [
        item
        for item in debian12_items()
        if item["version"] != item["source_version"] and "+b" in item["version"]
    ]
    assert binnmus, "the snapshot host has binNMU packages"
    item = binnmus[0]
    # A fix recorded for a version between the source version and the binNMU binary version.
    advisory = make_advisory(
        name=item["source_name"], events=((INTRO, "0"), (FIX, item["source_version"] + "+b0"))
    )
    (vulnerability,) = match_one(advisory, [dict(item)])
    assert vulnerability["installed_version"] == item["source_version"]
    assert vulnerability["binaries"] == [item["name"]]


def test_one_vulnerability_per_package_and_advisory_with_its_binaries():
    items = [
        dpkg_item("libfoo1", "1.0-1", "foo"),
        dpkg_item("foo-utils", "1.0-1", "foo"),
        dpkg_item("libfoo1", "1.0-1", "foo"),  # the same binary for another architecture
    ]
    second_entry = make_advisory(events=((INTRO, "0"), (FIX, "1.1-1"))).affected[0]
    advisory = make_advisory(extra_affected=(second_entry,))
    (vulnerability,) = match_one(advisory, items)
    assert vulnerability["binaries"] == ["foo-utils", "libfoo1"]
    assert vulnerability["fixed_version"] == "1.1-1"  # the lowest fix above 1.0-1


def test_several_installed_versions_of_a_source_report_the_lowest():
    items = [
        dpkg_item("linux-image-6.1.0-25-amd64", "6.1.106-3", "linux"),
        dpkg_item("linux-image-6.1.0-28-amd64", "6.1.119-1", "linux"),
    ]
    advisory = make_advisory(name="linux", events=((INTRO, "0"), (FIX, "6.1.112-1")))
    (vulnerability,) = match_one(advisory, items)
    assert vulnerability["installed_version"] == "6.1.106-3"
    assert vulnerability["binaries"] == ["linux-image-6.1.0-25-amd64"]
    both = make_advisory("TEST-2", name="linux", events=((INTRO, "0"), (FIX, "6.1.120-1")))
    (vulnerability,) = match_one(both, items)
    assert vulnerability["installed_version"] == "6.1.106-3"
    assert vulnerability["binaries"] == ["linux-image-6.1.0-25-amd64", "linux-image-6.1.0-28-amd64"]


def test_unknown_ecosystems_are_not_looked_up():
    npm = make_advisory(ecosystem="npm", name="foo", events=((INTRO, "0"), (FIX, "1.0.0")))
    index = AdvisoryIndex([npm])
    assert len(index) == 1
    assert match_evidence(index, debian_host([dpkg_item("foo", "0.1")]), as_of=AS_OF) == []


def test_a_range_with_an_unreadable_version_is_skipped_but_versions_still_match():
    bad = make_advisory(
        ecosystem="PyPI", name="foo", events=((INTRO, "0"), (FIX, "2019-09-12x")), versions=("1.0",)
    )
    host = lambda items: debian_host(items)  # noqa: E731
    assert match_one(bad, [python_item("foo", "0.5")], host=host) == []
    assert len(match_one(bad, [python_item("foo", "1.0")], host=host)) == 1


def test_an_unreadable_installed_version_matches_only_explicit_versions():
    advisory = make_advisory(
        ecosystem="PyPI", name="foo", events=((INTRO, "0"), (FIX, "9.0")), versions=("1.0-custom",)
    )
    host = lambda items: debian_host(items)  # noqa: E731
    assert len(match_one(advisory, [python_item("foo", "1.0-custom")], host=host)) == 1
    assert match_one(advisory, [python_item("foo", "2.0-custom")], host=host) == []


def test_semver_ranges_use_semver_order():
    advisory = make_advisory(
        ecosystem="PyPI",
        name="foo",
        range_type="SEMVER",
        events=((INTRO, "1.0.0-rc.1"), (FIX, "1.0.0")),
    )
    host = lambda items: debian_host(items)  # noqa: E731
    assert (
        match_one(advisory, [python_item("foo", "1.0.0-rc.2")], host=host)[0]["fixed_version"]
        == "1.0.0"
    )
    assert match_one(advisory, [python_item("foo", "1.0.0")], host=host) == []


def test_pypi_names_are_compared_normalised():
    advisory = make_advisory(ecosystem="PyPI", name="Foo_Bar", events=((INTRO, "0"), (FIX, "2.0")))
    found = match_one(
        advisory, [python_item("foo.bar", "1.0")], host=lambda items: debian_host(items)
    )
    assert [v["package"] for v in found] == ["foo-bar"]


def test_replacing_and_removing_advisories():
    index = AdvisoryIndex([make_advisory()])
    host = debian_host([dpkg_item("foo", "1.1-1")])
    assert len(match_evidence(index, host, as_of=AS_OF)) == 1
    index.add(make_advisory(events=((INTRO, "0"), (FIX, "1.0-1"))))  # same id, the fix moved down
    assert len(index) == 1
    assert match_evidence(index, host, as_of=AS_OF) == []
    index.add(make_advisory(events=((INTRO, "0"), (FIX, "1.5-1"))))
    assert match_evidence(index, host, as_of=AS_OF)[0]["fixed_version"] == "1.5-1"
    index.remove("TEST-2026-1")
    index.remove("TEST-2026-1")  # removing twice is harmless
    assert len(index) == 0
    assert match_evidence(index, host, as_of=AS_OF) == []


def test_results_are_sorted_by_package_then_advisory():
    advisories = [
        make_advisory("B-2", name="zlib"),
        make_advisory("A-1", name="zlib"),
        make_advisory("C-1", name="bash"),
    ]
    items = [dpkg_item("zlib1g", "1.0-1", "zlib"), dpkg_item("bash", "1.0-1")]
    found = match_evidence(AdvisoryIndex(advisories), debian_host(items), as_of=AS_OF)
    assert [(v["package"], v["advisory"]) for v in found] == [
        ("bash", "C-1"),
        ("zlib", "A-1"),
        ("zlib", "B-2"),
    ]


def test_rpm_family_hosts():
    rocky = evidence(
        os_section("rocky", "9.4", "Rocky Linux 9.4 (Blue Onyx)"),
        [{"manager": "rpm", "name": "openssl-libs", "version": "1:3.0.7-27.el9", "architecture": "x86_64",
          "source_name": "openssl", "source_version": "1:3.0.7-27.el9"}],
    )  # fmt: skip
    index = AdvisoryIndex(
        [
            make_advisory(
                "RLSA-2024:1",
                ecosystem="Rocky Linux:9",
                name="openssl",
                events=((INTRO, "0"), (FIX, "1:3.0.7-28.el9_4")),
            ),
            make_advisory(
                "RLSA-2023:1",
                ecosystem="Rocky Linux:8",
                name="openssl",
                events=((INTRO, "0"), (FIX, "1:9.9-1")),
            ),
        ]
    )
    assert [v["advisory"] for v in match_evidence(index, rocky, as_of=AS_OF)] == ["RLSA-2024:1"]

    rhel = evidence(
        os_section("rhel", "9.4", "Red Hat Enterprise Linux 9.4 (Plow)"),
        [{"manager": "rpm", "name": "openssl-libs", "version": "1:3.0.7-27.el9", "architecture": "x86_64",
          "source_name": "openssl", "source_version": "1:3.0.7-27.el9"}],
    )  # fmt: skip
    index = AdvisoryIndex(
        [
            make_advisory(
                "RHSA-2024:1",
                ecosystem="Red Hat:enterprise_linux:9::baseos",
                name="openssl-libs",
                events=((INTRO, "0"), (FIX, "1:3.0.7-28.el9_4")),
            ),
            make_advisory(
                "RHSA-2024:2",
                ecosystem="Red Hat:rhel_eus:9.2::baseos",
                name="openssl-libs",
                events=((INTRO, "0"), (FIX, "1:3.0.7-30.el9_2")),
            ),
        ]
    )
    (vulnerability,) = match_evidence(index, rhel, as_of=AS_OF)
    assert (vulnerability["advisory"], vulnerability["package"]) == ("RHSA-2024:1", "openssl")
    assert ("Red Hat", "openssl-libs") in package_keys(rhel)


def test_alpine_hosts_match_their_branch():
    alpine = evidence(
        os_section("alpine", "3.18.4", "Alpine Linux v3.18"),
        [{"manager": "apk", "name": "libcrypto3", "version": "3.1.4-r0", "architecture": "x86_64",
          "source_name": "openssl", "source_version": "3.1.4-r0"}],
    )  # fmt: skip
    index = AdvisoryIndex(
        [
            make_advisory(
                "ALPINE-1",
                ecosystem="Alpine:v3.18",
                name="openssl",
                events=((INTRO, "0"), (FIX, "3.1.4-r1")),
            ),
            make_advisory(
                "ALPINE-2",
                ecosystem="Alpine:v3.19",
                name="openssl",
                events=((INTRO, "0"), (FIX, "3.1.4-r5")),
            ),
        ]
    )
    assert [v["advisory"] for v in match_evidence(index, alpine, as_of=AS_OF)] == ["ALPINE-1"]


def test_package_keys_name_what_a_host_looks_up():
    host = debian_host([dpkg_item("libfoo1", "1.0-1", "foo"), python_item("Django", "3.2.0")])
    assert package_keys(host) == {("Debian", "foo"), ("PyPI", "django")}


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"os": None, "packages": None},
        {"os": "debian", "packages": {"items": "many"}},
        {"os": {"id": 12}, "packages": {"items": [None, 3, {"manager": "dpkg"}, {"name": 5}]}},
        {"os": {"id": "ubuntu", "version_id": "jammy"}, "packages": {"items": []}},
    ],
)
def test_malformed_evidence_gives_no_targets_rather_than_an_error(bad):
    assert match_evidence(AdvisoryIndex([make_advisory()]), bad, as_of=AS_OF) == []
