"""The 14-day rule, severity (CVSS and distribution ratings) and the KEV flag."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from mamori.advisories import records, severity
from mamori.advisories.matching import AdvisoryIndex, match_evidence
from tests.datafiles import KEV_ENTRIES
from tests.matching.hostdata import debian_host, dpkg_item, load_kev, make_advisory, ubuntu_host

CVSS_6_9 = "CVSS:3.1/AV:N/AC:L/PR:H/UI:R/S:C/C:N/I:L/A:H"
CVSS_7_0 = "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:L/A:H"
CVSS_9_8 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
CVSS4_6_9 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N"
CVSS2_7_5 = "AV:N/AC:L/Au:N/C:P/I:P/A:P"

PUBLISHED = "2026-01-01T23:30:00"  # late in the day: the date counts, not the hour


def vulnerability(advisory, *, as_of, host=None, **kwargs):
    host = host or debian_host([dpkg_item("foo", "1.0-1")])
    (found,) = match_evidence(AdvisoryIndex([advisory]), host, as_of=as_of, **kwargs)
    return found


@pytest.mark.parametrize(
    ("as_of", "days", "overdue"),
    [
        (date(2026, 1, 1), 0, False),
        (date(2026, 1, 15), 14, False),  # day 14: still within the window
        (date(2026, 1, 16), 15, True),  # day 15: overdue
        (date(2026, 3, 1), 59, True),
    ],
)
def test_the_fourteen_day_boundary_for_an_unrated_fix(as_of, days, overdue):
    found = vulnerability(make_advisory(published=PUBLISHED), as_of=as_of)
    assert (found["severity"], found["cvss"]) == (None, None)
    assert found["fix_published"] == "2026-01-01"
    assert (found["days_since_fix"], found["overdue"]) == (days, overdue)


@pytest.mark.parametrize(
    ("vector", "score", "rating", "overdue"),
    [
        (CVSS_6_9, 6.9, "medium", False),
        (CVSS_7_0, 7.0, "high", True),
        (CVSS_9_8, 9.8, "critical", True),
    ],
)
def test_the_cvss_boundary(vector, score, rating, overdue):
    found = vulnerability(make_advisory(cvss=(vector,)), as_of=date(2026, 1, 16))
    assert (found["cvss"], found["severity"], found["overdue"]) == (score, rating, overdue)
    assert found["cvss_vector"] == vector


def test_the_threshold_and_the_number_of_days_come_from_the_catalogue():
    advisory = make_advisory(cvss=(CVSS_6_9,))
    assert vulnerability(advisory, as_of=date(2026, 1, 16), cvss_threshold=6.5)["overdue"] is True
    # An AI-era profile with 7 days.
    assert vulnerability(make_advisory(), as_of=date(2026, 1, 8), patch_days=7)["overdue"] is False
    assert vulnerability(make_advisory(), as_of=date(2026, 1, 9), patch_days=7)["overdue"] is True


@pytest.mark.parametrize(
    ("rating", "overdue"),
    [("negligible", False), ("low", False), ("medium", False), ("high", True), ("critical", True)],
)
def test_distribution_ratings_count_when_there_is_no_cvss(rating, overdue):
    advisory = make_advisory(ecosystem="Ubuntu:22.04:LTS", package_rating=rating)
    host = ubuntu_host("22.04", [dpkg_item("foo", "1.0-1")])
    found = vulnerability(advisory, as_of=date(2026, 2, 1), host=host)
    assert (found["severity"], found["cvss"], found["overdue"]) == (rating, None, overdue)


def test_debian_urgency_is_not_a_severity():
    """Whatever rating word a Debian record carries is its urgency; without CVSS it is unrated
    and so overdue after the window."""
    found = vulnerability(make_advisory(package_rating="low", rating="low"), as_of=date(2026, 2, 1))
    assert (found["severity"], found["cvss"], found["overdue"]) == (None, None, True)
    with_cvss = vulnerability(
        make_advisory(package_rating="high", cvss=(CVSS_6_9,)), as_of=date(2026, 2, 1)
    )
    assert (with_cvss["severity"], with_cvss["overdue"]) == ("medium", False)


def test_cvss_is_preferred_to_the_distribution_rating():
    advisory = make_advisory(
        ecosystem="Ubuntu:22.04:LTS", package_rating="high", package_cvss=(CVSS_6_9,)
    )
    found = vulnerability(
        advisory, as_of=date(2026, 2, 1), host=ubuntu_host("22.04", [dpkg_item("foo", "1.0-1")])
    )
    assert (found["severity"], found["cvss"], found["overdue"]) == ("medium", 6.9, False)


def test_cvss_versions_in_order_of_preference():
    # v3 beats v4 and v2 even when they score higher or lower.
    assert severity.from_vectors((CVSS2_7_5, CVSS4_6_9, CVSS_6_9)) == ("medium", 6.9, CVSS_6_9)
    # v4 when there is no v3.
    assert severity.from_vectors((CVSS2_7_5, CVSS4_6_9)) == ("medium", 6.9, CVSS4_6_9)
    # v2 last.
    assert severity.from_vectors((CVSS2_7_5,)) == ("high", 7.5, CVSS2_7_5)
    # The highest score of the preferred version.
    assert severity.from_vectors((CVSS_6_9, CVSS_9_8, CVSS_7_0)).score == 9.8
    # Garbage is ignored, not fatal.
    assert severity.from_vectors(("CVSS:3.1/AV:X", "nonsense")) is None


def test_package_vectors_win_over_the_records_vectors():
    advisory = make_advisory(cvss=(CVSS_9_8,), package_cvss=(CVSS_6_9,))
    assert vulnerability(advisory, as_of=date(2026, 2, 1))["cvss"] == 6.9
    assert vulnerability(make_advisory(cvss=(CVSS_9_8,)), as_of=date(2026, 2, 1))["cvss"] == 9.8


def test_no_fix_means_not_overdue_and_no_fix_date():
    advisory = make_advisory(events=(("introduced", "0"),), cvss=(CVSS_9_8,))
    found = vulnerability(advisory, as_of=date(2026, 6, 1))
    assert found["fixed_version"] is None
    assert (found["fix_published"], found["days_since_fix"], found["overdue"]) == (
        None,
        None,
        False,
    )
    last_affected = make_advisory(events=(("introduced", "0"), ("last_affected", "1.0-1")))
    assert vulnerability(last_affected, as_of=date(2026, 6, 1))["overdue"] is False


def test_a_record_without_published_uses_modified():
    found = vulnerability(make_advisory(published=None), as_of=date(2026, 1, 20))
    assert found["fix_published"] == "2026-01-02"
    assert found["days_since_fix"] == 18


def test_a_fix_published_after_as_of_counts_zero_days():
    found = vulnerability(make_advisory(), as_of=date(2025, 12, 1))
    assert (found["days_since_fix"], found["overdue"]) == (0, False)


def test_as_of_may_be_a_datetime():
    found = vulnerability(make_advisory(), as_of=datetime(2026, 1, 16, 1, 0))
    assert found["days_since_fix"] == 15


def test_kev_flag_from_the_real_catalogue():
    kev = load_kev()
    assert len(kev) == KEV_ENTRIES
    looney = next(entry for entry in kev if entry.cve == "CVE-2023-4911")
    index = AdvisoryIndex(
        [
            make_advisory(aliases=("CVE-2023-4911",)),
            make_advisory("TEST-2", aliases=("CVE-1999-0001",)),
        ],
        kev=kev,
    )
    found = {
        v["advisory"]: v
        for v in match_evidence(
            index, debian_host([dpkg_item("foo", "1.0-1")]), as_of=date(2026, 2, 1)
        )
    }
    assert (found["TEST-2026-1"]["kev"], found["TEST-2026-1"]["kev_due_date"]) == (
        True,
        looney.due_date.isoformat(),
    )
    assert (found["TEST-2"]["kev"], found["TEST-2"]["kev_due_date"]) == (False, None)


def test_kev_matches_the_id_itself_and_distribution_cve_ids():
    index = AdvisoryIndex(
        [
            make_advisory("CVE-2023-4911"),
            make_advisory("DEBIAN-CVE-2023-4863"),
            make_advisory("USN-1", aliases=("UBUNTU-CVE-2024-1086",)),
        ],
        kev=load_kev(),
    )
    found = match_evidence(index, debian_host([dpkg_item("foo", "1.0-1")]), as_of=date(2026, 2, 1))
    assert [v["kev"] for v in found] == [True, True, True]


def test_kev_entries_can_be_added_later():
    index = AdvisoryIndex([make_advisory(aliases=("CVE-2099-0001",))])
    host = debian_host([dpkg_item("foo", "1.0-1")])
    assert match_evidence(index, host, as_of=date(2026, 2, 1))[0]["kev"] is False
    index.add_kev(
        records.KevEntry("CVE-2099-0001", "v", "p", "n", date(2026, 1, 5), date(2026, 1, 26), False)
    )
    found = match_evidence(index, host, as_of=date(2026, 2, 1))[0]
    assert (found["kev"], found["kev_due_date"]) == (True, "2026-01-26")


def test_the_design_keys_are_all_present():
    found = vulnerability(make_advisory(aliases=("CVE-2026-0001",)), as_of=date(2026, 2, 1))
    design = {
        "package", "installed_version", "advisory", "aliases", "fixed_version", "severity",
        "cvss", "kev", "fix_published", "days_since_fix", "overdue",
    }  # fmt: skip
    assert design <= set(found)
    assert {"binaries", "ecosystem", "kev_due_date", "summary"} <= set(found)
    assert found["aliases"] == ["CVE-2026-0001"]
