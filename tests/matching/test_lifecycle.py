"""OS and software support against the real lifecycle data (endoflife.date and distro-info)."""

from __future__ import annotations

from datetime import date

import pytest

from mamori.advisories import records
from mamori.advisories.lifecycle import os_support, software_support, version_cycle
from tests.matching.hostdata import (
    debian12_evidence,
    debian_host,
    evidence,
    load_eol,
    os_section,
    python_item,
    ubuntu_host,
)

SNAPSHOT_DAY = date(2026, 11, 25)


@pytest.fixture(scope="module")
def cycles():
    return load_eol()


def test_debian_12_on_the_snapshot_day_is_supported_by_lts(cycles):
    result = os_support(debian12_evidence(), cycles, as_of=SNAPSHOT_DAY)
    assert result == {
        "product": "debian",
        "cycle": "12",
        "supported": True,
        "support_ends": "2028-06-30",
        "basis": "lts",
        "source": "distro-info",
        "reason": "lts",
    }


def test_debian_12_lts_boundaries(cycles):
    host = debian12_evidence()
    regular = os_support(host, cycles, as_of=date(2026, 7, 11))
    assert (regular["supported"], regular["basis"], regular["support_ends"]) == (
        True,
        "regular",
        "2028-06-30",
    )
    assert os_support(host, cycles, as_of=date(2026, 7, 12))["basis"] == "lts"
    assert os_support(host, cycles, as_of=date(2028, 6, 30))["supported"] is True
    ended = os_support(host, cycles, as_of=date(2028, 7, 1))
    assert (ended["supported"], ended["reason"], ended["support_ends"]) == (
        False,
        "ended",
        "2028-06-30",
    )


def test_debian_10_is_not_supported(cycles):
    result = os_support(debian_host([], "10"), cycles, as_of=SNAPSHOT_DAY)
    assert (result["supported"], result["reason"], result["support_ends"]) == (
        False,
        "ended",
        "2024-06-30",
    )


def test_debian_testing_has_no_release_number(cycles):
    result = os_support(debian_host([], None), cycles, as_of=SNAPSHOT_DAY)
    assert (result["supported"], result["reason"]) == (None, "release_unknown")


def test_ubuntu_22_04_after_standard_support(cycles):
    after = date(2027, 7, 1)  # distro-info: standard support to 2027-06-01, ESM to 2032-04-21
    plain = os_support(ubuntu_host("22.04", []), cycles, as_of=after)
    assert plain == {
        "product": "ubuntu",
        "cycle": "22.04",
        "supported": False,
        "support_ends": "2027-06-01",
        "basis": None,
        "source": "distro-info",
        "reason": "esm_not_enrolled",
    }
    enrolled = os_support(ubuntu_host("22.04", [], esm=True), cycles, as_of=after)
    assert (enrolled["supported"], enrolled["basis"], enrolled["support_ends"]) == (
        True,
        "esm",
        "2032-04-21",
    )
    # Before the end of standard support both are supported; the enrolled one for longer.
    before = date(2027, 5, 1)  # endoflife.date would already say 2027-04-01: distro-info wins
    assert (
        os_support(ubuntu_host("22.04", []), cycles, as_of=before)["support_ends"] == "2027-06-01"
    )
    assert (
        os_support(ubuntu_host("22.04", [], esm=True), cycles, as_of=before)["support_ends"]
        == "2032-04-21"
    )
    # After ESM, nobody.
    assert (
        os_support(ubuntu_host("22.04", [], esm=True), cycles, as_of=date(2032, 5, 1))["supported"]
        is False
    )


def test_ubuntu_interim_release_has_no_esm(cycles):
    result = os_support(ubuntu_host("24.10", [], esm=True), cycles, as_of=SNAPSHOT_DAY)
    assert (result["supported"], result["reason"]) == (False, "ended")


def test_endoflife_date_is_the_fallback_when_distro_info_lacks_the_release(cycles):
    only_eol = [cycle for cycle in cycles if cycle.source == "endoflife.date"]
    result = os_support(debian12_evidence(), only_eol, as_of=SNAPSHOT_DAY)
    assert (result["source"], result["supported"], result["support_ends"]) == (
        "endoflife.date",
        True,
        "2028-06-30",
    )


@pytest.mark.parametrize(
    ("os_id", "version_id", "supported", "cycle"),
    [
        ("rhel", "9.4", True, "9"),
        ("rocky", "8.10", True, "8"),
        ("almalinux", "9.3", True, "9"),
        ("alpine", "3.18.4", False, "3.18"),  # ended 2025-05-09
        ("alpine", "3.22.1", True, "3.22"),
        ("centos", "7", False, "7"),
        ("amzn", "2023", True, "2023"),
        ("sles", "15.5", False, "15.5"),  # general support ended; LTSS is not counted
    ],
)
def test_other_distributions_use_endoflife_date(cycles, os_id, version_id, supported, cycle):
    result = os_support(evidence(os_section(os_id, version_id), []), cycles, as_of=SNAPSHOT_DAY)
    assert (result["supported"], result["cycle"], result["source"]) == (
        supported,
        cycle,
        "endoflife.date",
    )


@pytest.mark.parametrize(
    ("os_section_value", "reason"),
    [
        (os_section("freebsd", "14.1"), "os_not_recognised"),
        (None, "os_not_recognised"),
        (os_section("debian", "99"), "cycle_not_found"),
    ],
)
def test_unknown_support_is_none_not_a_guess(cycles, os_section_value, reason):
    result = os_support({"os": os_section_value}, cycles, as_of=SNAPSHOT_DAY)
    assert (result["supported"], result["reason"]) == (None, reason)


def test_a_release_without_an_announced_end_is_supported():
    cycle = records.EolCycle("debian", "14", date(2027, 6, 1), None, None, False, "distro-info")
    result = os_support(debian_host([], "14"), [cycle], as_of=SNAPSHOT_DAY)
    assert (result["supported"], result["reason"], result["support_ends"]) == (
        True,
        "no_end_announced",
        None,
    )


def test_an_end_without_a_date_is_reported_without_one():
    """endoflife.date's ``eol: true``: the importer puts the release date in ``eol``."""
    cycle = records.EolCycle(
        "centos", "6", date(2011, 7, 10), date(2011, 7, 10), None, False, "endoflife.date",
        eol_date_unknown=True,
    )  # fmt: skip
    result = os_support(evidence(os_section("centos", "6"), []), [cycle], as_of=SNAPSHOT_DAY)
    assert (result["supported"], result["reason"], result["support_ends"]) == (False, "ended", None)


def test_pip_installed_django_3_2_is_unsupported(cycles):
    host = evidence(
        os_section("debian", "12"),
        [
            python_item("Django", "3.2.25"),
            python_item("django", "5.2.4", location="/srv/app/venv/lib/python3.11/site-packages"),
            python_item(
                "Django", "5.0", installer=None, location="/usr/local/lib/python3.11/dist-packages"
            ),
            # Debian's python3-django: the vendor's, supported with the OS; not listed.
            python_item(
                "Django", "3.2.19", installer=None, location="/usr/lib/python3/dist-packages"
            ),
            python_item("requests", "2.31.0"),  # no endoflife.date product
        ],
    )
    found = software_support(host, cycles, as_of=SNAPSHOT_DAY)
    assert [(f["version"], f["cycle"], f["eol"], f["supported"]) for f in found] == [
        ("3.2.25", "3.2", "2024-04-01", False),
        ("5.0", "5.0", "2025-04-02", False),
        ("5.2.4", "5.2", "2028-04-30", True),
    ]
    assert {f["product"] for f in found} == {"django"}
    assert found[0]["installer"] == "pip"


def test_software_outside_the_lifecycle_data_is_of_unknown_support(cycles):
    host = evidence(os_section("debian", "12"), [python_item("django", "0.96")])
    (found,) = software_support(host, cycles, as_of=SNAPSHOT_DAY)
    assert (found["cycle"], found["supported"]) == (None, None)


@pytest.mark.parametrize(
    ("version", "cycle"),
    [
        ("3.2.25", "3.2"),
        ("5.0", "5.0"),
        ("5.0rc1", "5.0"),
        ("4.2.0.post1", "4.2"),
        ("1.11.29", "1.11"),
        ("7.0", None),
    ],
)
def test_version_to_cycle(cycles, version, cycle):
    django_cycles = [c.cycle for c in cycles if c.product == "django"]
    assert version_cycle(version, django_cycles) == cycle
