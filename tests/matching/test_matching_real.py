"""Matching with the real data: the Debian 12 snapshot host against the Debian 12 fix records,
Ubuntu's USNs, the PyPA advisory database and CISA's KEV catalogue."""

from __future__ import annotations

from datetime import date

import pytest
from debian.debian_support import version_compare
from packaging.version import InvalidVersion, Version

from mamori.advisories.matching import AdvisoryIndex, host_targets, match_evidence, package_keys
from tests.datafiles import DEBIAN12_RECORDS, PYPI_RECORDS, UBUNTU_RECORDS
from tests.matching.hostdata import (
    debian12_evidence,
    debian12_items,
    debian_host,
    dpkg_item,
    evidence,
    load_kev,
    load_osv,
    os_section,
    python_item,
    raw_osv,
    ubuntu_host,
)

AS_OF = date(2026, 11, 25)  # the day the host snapshot was taken


@pytest.fixture(scope="module")
def index():
    return AdvisoryIndex(
        load_osv("debian12") + load_osv("ubuntu") + load_osv("pypi"), kev=load_kev()
    )


def test_every_record_was_read(index):
    assert (len(load_osv("debian12")), len(load_osv("ubuntu")), len(load_osv("pypi"))) == (
        DEBIAN12_RECORDS,
        UBUNTU_RECORDS,
        PYPI_RECORDS,
    )
    assert len(index) == DEBIAN12_RECORDS + UBUNTU_RECORDS + PYPI_RECORDS


def test_the_debian_12_host_has_no_vulnerabilities(index):
    """Every fix in osv/debian12 comes from this host's own changelogs, so every one of them is
    installed: zero hits. Checked independently below — each record's source package is on the
    host, and python-debian puts every installed source version at or above the fix."""
    assert match_evidence(index, debian12_evidence(), as_of=AS_OF) == []

    installed: dict[str, set[str]] = {}
    for item in debian12_items():
        installed.setdefault(item["source_name"], set()).add(item["source_version"])
    records = raw_osv("debian12")
    looked_up = package_keys(debian12_evidence())
    for record in records:
        (affected,) = record["affected"]
        name = affected["package"]["name"]
        fixed = affected["ranges"][0]["events"][1]["fixed"]
        assert ("Debian", name) in looked_up, name
        assert all(version_compare(version, fixed) >= 0 for version in installed[name]), name


LOWERED = {
    "glibc": "2.36-9+deb12u2",  # before Looney Tunables (CVE-2023-4911, in KEV)
    "libwebp": "1.2.4-0.2",  # before CVE-2023-4863 (in KEV)
    "tar": "1.34+dfsg-1.2",
    "openssh": "1:9.2p1-2+deb12u5",
}


def expected_for_lowered() -> dict[tuple[str, str], str]:
    """(source, record id) → fixed version, for every record whose fix lies above the lowered
    version — worked out from the raw JSON with python-debian, not with the matcher."""
    expected = {}
    for record in raw_osv("debian12"):
        (affected,) = record["affected"]
        name = affected["package"]["name"]
        fixed = affected["ranges"][0]["events"][1]["fixed"]
        if name in LOWERED and version_compare(LOWERED[name], fixed) < 0:
            expected[(name, record["id"])] = fixed
    return expected


def test_lowered_source_versions_give_exactly_the_missing_fixes(index):
    found = match_evidence(index, debian12_evidence(LOWERED), as_of=AS_OF)
    expected = expected_for_lowered()
    assert {(v["package"], v["advisory"]): v["fixed_version"] for v in found} == expected
    assert len(found) == len(expected)
    per_package = {name: sum(1 for key in expected if key[0] == name) for name in LOWERED}
    assert all(count >= 1 for count in per_package.values()), per_package

    binaries = {}
    for item in debian12_items():
        binaries.setdefault(item["source_name"], set()).add(item["name"])
    for vulnerability in found:
        assert vulnerability["installed_version"] == LOWERED[vulnerability["package"]]
        assert vulnerability["binaries"] == sorted(binaries[vulnerability["package"]])
        assert vulnerability["ecosystem"] == "Debian:12"
        assert vulnerability["fix_published"] is not None
        # Debian records carry no severity (urgency is not one) and these have no CVSS.
        assert (vulnerability["severity"], vulnerability["cvss"]) == (None, None)
        assert vulnerability["overdue"] is (vulnerability["days_since_fix"] > 14)

    by_id = {v["advisory"]: v for v in found}
    looney = by_id["MAMORI-DEB12-CVE-2023-4911-glibc"]
    assert (looney["kev"], looney["kev_due_date"]) == (True, "2023-12-12")
    assert looney["aliases"] == ["CVE-2023-4911"]
    assert by_id["MAMORI-DEB12-CVE-2023-4863-libwebp"]["kev"] is True
    assert by_id["MAMORI-DEB12-CVE-2022-48303-tar"]["kev"] is False
    assert by_id["MAMORI-DEB12-CVE-2022-48303-tar"]["fixed_version"] == "1.34+dfsg-1.2+deb12u1"


def test_ubuntu_22_04_host_against_the_real_usns(index):
    items = [
        dpkg_item("openssh-server", "1:8.9p1-3ubuntu0.6", "openssh"),
        dpkg_item("libc6", "2.35-0ubuntu3.6", "glibc"),
        dpkg_item("curl", "7.81.0-1ubuntu1.15"),
        dpkg_item("libcurl4", "7.81.0-1ubuntu1.15", "curl"),
        dpkg_item("apache2", "2.4.52-1ubuntu4.9"),
        dpkg_item("sudo", "1.9.9-1ubuntu2.4"),
        dpkg_item("libssl3", "3.0.2-0ubuntu1.15", "openssl"),  # USN-7264-1 is for 24.10 only
    ]
    for esm in (False, True):
        found = match_evidence(index, ubuntu_host("22.04", items, esm=esm), as_of=AS_OF)
        assert {(v["package"], v["advisory"], v["fixed_version"]) for v in found} == {
            ("openssh", "USN-6859-1", "1:8.9p1-3ubuntu0.10"),
            ("glibc", "USN-6737-1", "2.35-0ubuntu3.7"),
            ("curl", "USN-6718-1", "7.81.0-1ubuntu1.16"),
            ("apache2", "USN-6885-1", "2.4.52-1ubuntu4.10"),
            ("sudo", "USN-7604-1", "1.9.9-1ubuntu2.5"),
        }
    by_id = {v["advisory"]: v for v in found}
    assert by_id["USN-6718-1"]["binaries"] == ["curl", "libcurl4"]
    assert by_id["USN-6718-1"]["ecosystem"] == "Ubuntu:22.04:LTS"
    # The importer adds the CVEs a USN names in "upstream"; CVE-2024-38475 is in KEV.
    apache = by_id["USN-6885-1"]
    assert "CVE-2024-38475" in apache["aliases"]
    assert (apache["kev"], apache["kev_due_date"]) == (True, "2025-05-22")
    # Severity from the CVSS vectors in Ubuntu's cves_map (the highest v3 score).
    assert apache["cvss"] is not None
    assert apache["severity"] in ("high", "critical")
    # Fully updated: nothing.
    patched = [dict(item, source_version=v) for item, v in zip(items, [
        "1:8.9p1-3ubuntu0.10", "2.35-0ubuntu3.7", "7.81.0-1ubuntu1.16", "7.81.0-1ubuntu1.16",
        "2.4.52-1ubuntu4.10", "1.9.9-1ubuntu2.5", "3.0.2-0ubuntu1.15"], strict=True)]  # fmt: skip
    assert match_evidence(index, ubuntu_host("22.04", patched), as_of=AS_OF) == []


def test_ubuntu_pro_usn_needs_an_18_04_host_enrolled_in_esm(index):
    items = [dpkg_item("libssl1.0.0", "1.0.2n-1ubuntu5.13", "openssl1.0")]
    assert match_evidence(index, ubuntu_host("18.04", items, esm=False), as_of=AS_OF) == []
    (vulnerability,) = match_evidence(index, ubuntu_host("18.04", items, esm=True), as_of=AS_OF)
    assert vulnerability["advisory"] == "USN-6709-1"
    assert vulnerability["fixed_version"] == "1.0.2n-1ubuntu5.13+esm1"
    assert vulnerability["ecosystem"] == "Ubuntu:Pro:18.04:LTS"
    # The same package on 22.04 is another ecosystem.
    assert match_evidence(index, ubuntu_host("22.04", items, esm=True), as_of=AS_OF) == []


def test_ubuntu_24_04_and_the_interim_only_usn(index):
    items = [
        dpkg_item("sudo", "1.9.15p5-3ubuntu5"),
        dpkg_item("libssl3t64", "3.0.13-0ubuntu3", "openssl"),
    ]
    found = match_evidence(index, ubuntu_host("24.04", items), as_of=AS_OF)
    assert [(v["advisory"], v["fixed_version"]) for v in found] == [
        ("USN-7604-1", "1.9.15p5-3ubuntu5.24.04.1")
    ]
    interim = match_evidence(
        index,
        ubuntu_host("24.10", [dpkg_item("libssl3t64", "3.3.1-2ubuntu2", "openssl")]),
        as_of=AS_OF,
    )
    assert [v["advisory"] for v in interim] == ["USN-7264-1"]


def independent_django_expectation(installed: str) -> set[str]:
    """The PYSEC django records affecting ``installed``, by OSV's rules written out plainly
    with packaging (ECOSYSTEM ranges and explicit versions; withdrawn records excluded)."""
    version = Version(installed)
    hits = set()
    for record in raw_osv("pypi/django"):
        if record.get("withdrawn"):
            continue
        for affected in record["affected"]:
            if installed in affected.get("versions", []):
                hits.add(record["id"])
            for item in affected.get("ranges", []):
                if item["type"] != "ECOSYSTEM":
                    continue
                vulnerable = False
                events = sorted(
                    item["events"],
                    key=lambda e: (
                        (0, Version("0"))
                        if e.get("introduced") == "0"
                        else (1, Version(next(iter(e.values()))))
                    ),
                )
                for event in events:
                    kind, value = next(iter(event.items()))
                    if kind == "introduced" and (value == "0" or version >= Version(value)):
                        vulnerable = True
                    elif (kind == "fixed" and version >= Version(value)) or (
                        kind == "last_affected" and version > Version(value)
                    ):
                        vulnerable = False
                if vulnerable:
                    hits.add(record["id"])
    return hits


def test_pip_installed_django_3_2_0_matches_the_pysec_records(index):
    host = evidence(
        os_section("debian", "12", "Debian GNU/Linux 12 (bookworm)"),
        [*debian12_items(), python_item("Django", "3.2.0", installer="pip")],
    )
    found = [v for v in match_evidence(index, host, as_of=AS_OF) if v["package"] == "django"]
    expected = independent_django_expectation("3.2.0")
    assert {v["advisory"] for v in found} == expected
    assert len(expected) >= 20
    for vulnerability in found:
        assert vulnerability["ecosystem"] == "PyPI"
        assert vulnerability["installed_version"] == "3.2.0"
        assert Version(vulnerability["fixed_version"]) > Version("3.2.0")
    # Later 3.2 releases are affected by fewer of them; the fixes are real version numbers.
    later = evidence(os_section("debian", "12"), [python_item("django", "3.2.25")])
    assert len(match_evidence(index, later, as_of=AS_OF)) < len(found)


def test_vendor_installed_python_is_not_matched_against_pypi(index):
    """Debian's python3-django is Debian's (patched, covered by Debian advisories): it appears
    as a python item without an installer in /usr/lib/python3/dist-packages."""
    debian_django = python_item(
        "Django", "3.2.0", installer=None, location="/usr/lib/python3/dist-packages"
    )
    fedora_django = python_item(
        "Django", "3.2.0", installer="rpm", location="/usr/lib/python3.12/site-packages"
    )
    for item in (debian_django, fedora_django):
        host = evidence(os_section("debian", "12"), [item])
        assert host_targets(host) == []
        assert match_evidence(index, host, as_of=AS_OF) == []
    unknown = python_item(
        "Django", "3.2.0", installer=None, location="/usr/local/lib/python3.11/dist-packages"
    )
    assert match_evidence(index, evidence(os_section("debian", "12"), [unknown]), as_of=AS_OF)


def test_pypi_matching_works_on_any_os(index):
    for os_id, version_id in (
        ("alpine", "3.18.4"),
        ("rhel", "9.4"),
        ("freebsd", "14.1"),
        (None, None),
    ):
        host = evidence(os_section(os_id, version_id), [python_item("django", "3.2.0")])
        assert len(match_evidence(index, host, as_of=AS_OF)) >= 20, os_id


def test_withdrawn_pysec_records_are_loaded_but_never_match(index):
    withdrawn = [a for a in load_osv("pypi") if a.withdrawn is not None]
    assert withdrawn
    for advisory in withdrawn:
        assert advisory.id in index
        for affected in advisory.affected:
            for listed in affected.versions[:3]:
                try:
                    Version(listed)
                except InvalidVersion:
                    continue
                host = evidence(os_section("debian", "12"), [python_item(affected.name, listed)])
                assert advisory.id not in {
                    v["advisory"] for v in match_evidence(index, host, as_of=AS_OF)
                }


def test_kev_flag_for_a_pypi_record(index):
    host = evidence(os_section("debian", "12"), [python_item("salt", "3000.1")])
    found = {v["advisory"]: v for v in match_evidence(index, host, as_of=AS_OF)}
    assert found["PYSEC-2020-102"]["kev"] is True
    assert found["PYSEC-2020-102"]["kev_due_date"] == "2022-05-03"
    assert any(v["kev"] is False for v in found.values())


def test_a_fresh_index_and_a_warm_one_agree(index):
    lowered = debian12_evidence(LOWERED)
    first = match_evidence(index, lowered, as_of=AS_OF)
    again = match_evidence(index, lowered, as_of=AS_OF)
    fresh = match_evidence(
        AdvisoryIndex(load_osv("debian12"), kev=load_kev()), lowered, as_of=AS_OF
    )
    assert first == again == fresh
    assert debian_host([])
    assert match_evidence(index, debian_host([]), as_of=AS_OF) == []
