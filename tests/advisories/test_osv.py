"""The pure parsers: every real record of every feed, OSV semantics, and each kind of bad record."""

from __future__ import annotations

import copy
import json
from collections import Counter
from datetime import UTC, date, datetime

import pytest

from mamori.advisories import osv, records
from tests.advisories.conftest import real_record, variant
from tests.datafiles import (
    DEBIAN12,
    DEBIAN12_RECORDS,
    DISTRO_INFO,
    EOL_CYCLES,
    EOL_PRODUCTS,
    KEV_ENTRIES,
    KEV_FILE,
    KEV_RANSOMWARE,
    OSV,
    PYPI,
    PYPI_CVSS_V3,
    PYPI_RECORDS,
    PYPI_WITHDRAWN,
    UBUNTU,
    UBUNTU_RECORDS,
)

TAR = DEBIAN12 / "MAMORI-DEB12-CVE-2022-48303-tar.json"
DJANGO_2007 = PYPI / "django" / "PYSEC-2007-1.json"


def parse_file(path):
    return osv.parse_osv(real_record(path))


def bad_reason(document) -> osv.BadRecord:
    with pytest.raises(osv.BadRecord) as caught:
        osv.parse_osv(document)
    return caught.value


# --- real data --------------------------------------------------------------------------------


def test_every_real_osv_record_parses():
    families = Counter()
    withdrawn = 0
    for path in sorted(OSV.rglob("*.json")):
        advisory = parse_file(path)
        assert advisory.id == path.stem
        withdrawn += advisory.withdrawn is not None
        families.update({(package.family, package.release) for package in advisory.affected})
    assert withdrawn == PYPI_WITHDRAWN
    assert families[("PyPI", "")] == PYPI_RECORDS
    assert families[("Debian", "12")] == DEBIAN12_RECORDS
    assert sum(count for (family, _), count in families.items() if family == "Ubuntu") == 14
    assert sum(1 for _ in UBUNTU.glob("*.json")) == UBUNTU_RECORDS


def test_a_pypi_record_in_full():
    advisory = parse_file(DJANGO_2007)
    assert advisory.id == "PYSEC-2007-1"
    assert advisory.aliases == ("CVE-2007-5712",)
    assert advisory.modified == datetime(2021, 7, 15, 2, 22, 7, 728618, tzinfo=UTC)
    assert advisory.published == datetime(2007, 10, 30, 19, 46, tzinfo=UTC)
    assert advisory.withdrawn is None
    # No summary in the record: the first line of the details stands in.
    assert advisory.summary.startswith("The internationalization (i18n) framework in Django 0.91")
    assert advisory.severity is None
    assert advisory.cvss_vectors == ()
    (package,) = advisory.affected
    assert (package.ecosystem, package.family, package.release, package.name) == (
        "PyPI",
        "PyPI",
        "",
        "django",
    )
    assert package.advisory_id == "PYSEC-2007-1"
    assert package.ranges == (records.Range("ECOSYSTEM", (("introduced", "0"), ("fixed", "1.1"))),)
    assert package.versions == ("1.0.1", "1.0.2", "1.0.3", "1.0.4")


def test_debian_ecosystem_has_a_release():
    (package,) = parse_file(TAR).affected
    assert (package.family, package.release, package.name) == ("Debian", "12", "tar")
    assert package.ranges[0].events == (("introduced", "0"), ("fixed", "1.34+dfsg-1.2+deb12u1"))


@pytest.mark.parametrize(
    ("ecosystem", "family", "release"),
    [
        ("Debian:12", "Debian", "12"),
        ("PyPI", "PyPI", ""),
        ("Ubuntu:22.04:LTS", "Ubuntu", "22.04:LTS"),
        ("Ubuntu:Pro:18.04:LTS", "Ubuntu", "Pro:18.04:LTS"),
        ("Alpine:v3.18", "Alpine", "v3.18"),
        ("Rocky Linux:9", "Rocky Linux", "9"),
    ],
)
def test_ecosystem_split(ecosystem, family, release):
    assert osv.split_ecosystem(ecosystem) == (family, release)


def test_withdrawn_record():
    advisory = parse_file(PYPI / "redis" / "PYSEC-2023-73.json")
    assert advisory.withdrawn is not None
    assert advisory.withdrawn.tzinfo is not None


def test_top_level_cvss_vector():
    paths = [path for path in PYPI.rglob("*.json") if '"CVSS_V3"' in path.read_text()]
    assert len(paths) == PYPI_CVSS_V3 > 0
    for path in paths:
        advisory = parse_file(path)
        assert advisory.cvss_vectors, path
        assert all(vector.startswith("CVSS:3.") for vector in advisory.cvss_vectors), path


def test_ubuntu_cves_become_aliases_from_upstream_and_older_related():
    apache = parse_file(UBUNTU / "USN-6885-1.json")
    assert apache.aliases[0] == "CVE-2024-36387"
    assert len(apache.aliases) == 8
    assert all(alias.startswith("CVE-") for alias in apache.aliases)
    # Schema 1.6.3: no upstream; the CVEs are in related.
    openssl = parse_file(UBUNTU / "USN-7264-1.json")
    assert openssl.aliases == ("CVE-2024-9143", "CVE-2024-12797", "CVE-2024-13176")
    assert parse_file(UBUNTU / "USN-6859-1.json").aliases == ("CVE-2024-6387",)


def test_ubuntu_priority_and_vectors_from_cves_map():
    apache = parse_file(UBUNTU / "USN-6885-1.json")
    # CVE-2024-38475 and others are "high" for Ubuntu: the package takes the highest.
    assert {package.severity for package in apache.affected} == {"high"}
    assert all(package.cvss_vectors for package in apache.affected)
    assert len(set(apache.affected[0].cvss_vectors)) == len(apache.affected[0].cvss_vectors)
    curl = parse_file(UBUNTU / "USN-6718-1.json")
    assert [package.severity for package in curl.affected] == ["medium", "medium"]
    assert curl.affected[0].cvss_vectors == ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:L/A:L",)
    # No cves_map: unrated.
    assert {package.severity for package in parse_file(UBUNTU / "USN-6859-1.json").affected} == {
        None
    }


@pytest.mark.parametrize(
    ("severity", "database_specific", "expected"),
    [
        ([{"type": "Ubuntu", "score": "medium"}], None, "medium"),
        ([{"type": "Ubuntu", "score": "High"}], None, "high"),
        (None, {"severity": "MODERATE"}, "medium"),
        (None, {"severity": "Important"}, "high"),
        (None, {"severity": "CRITICAL"}, "critical"),
        (None, {"severity": "untriaged"}, None),
        ([{"type": "Ubuntu", "score": "low"}], {"severity": "HIGH"}, "high"),
    ],
)
def test_top_level_rating(severity, database_specific, expected):
    record = variant(DJANGO_2007, severity=severity, database_specific=database_specific)
    assert osv.parse_osv(record).severity == expected


def test_per_package_severity_and_ratings():
    record = real_record(DJANGO_2007)
    vector4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
    record["affected"][0]["severity"] = [{"type": "CVSS_V4", "score": vector4}]
    record["affected"][0]["ecosystem_specific"] = {"severity": "low"}
    record["affected"][0]["database_specific"] = {"urgency": "high"}
    (package,) = osv.parse_osv(record).affected
    assert package.cvss_vectors == (vector4,)
    assert package.severity == "high"


@pytest.mark.parametrize(
    ("kind", "vector"),
    [
        ("CVSS_V2", "AV:N/AC:L/Au:N/C:P/I:P/A:P"),
        ("CVSS_V3", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
        ("CVSS_V3", "CVSS:3.1/AV:L/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:H"),
        ("CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"),
    ],
)
def test_cvss_vectors_of_each_version(kind, vector):
    record = variant(DJANGO_2007, severity=[{"type": kind, "score": vector}])
    assert osv.parse_osv(record).cvss_vectors == (vector,)


def test_every_event_kind_and_range_type():
    record = real_record(DJANGO_2007)
    record["affected"][0]["ranges"] = [
        {"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"last_affected": "1.4"}]},
        {"type": "SEMVER", "events": [{"introduced": "2.0.0"}, {"limit": "2.5.0"}]},
        {
            "type": "GIT",
            "repo": "https://github.com/django/django",
            "events": [{"introduced": "0"}, {"fixed": "a" * 40}],
        },
    ]
    (package,) = osv.parse_osv(record).affected
    assert package.ranges == (
        records.Range("ECOSYSTEM", (("introduced", "1.0"), ("last_affected", "1.4"))),
        records.Range("SEMVER", (("introduced", "2.0.0"), ("limit", "2.5.0"))),
        records.Range("GIT", (("introduced", "0"), ("fixed", "a" * 40))),
    )


def test_an_affected_entry_that_only_names_commits_is_left_out_and_reported():
    record = real_record(DJANGO_2007)
    record["affected"].append(
        {
            "ranges": [
                {"type": "GIT", "repo": "https://example.org/x", "events": [{"introduced": "0"}]}
            ]
        }
    )
    advisory, skipped = osv.read_osv(record)
    assert len(advisory.affected) == 1
    assert skipped == (
        osv.SkippedPart(
            "PYSEC-2007-1",
            "affected[1]",
            "affected[1] names only commits (GIT ranges), no package; entry left out",
        ),
    )


# --- unsorted events ----------------------------------------------------------------------------


def _events(path, *events, position=0):
    """A real record whose first affected entry's first range has these events."""
    record = real_record(path)
    record["affected"][position]["ranges"][0]["events"] = [dict([event]) for event in events]
    return record


def test_unsorted_events_are_sorted_by_the_ecosystems_version_order():
    # OSV only recommends sorting; its evaluation walks the events sorted. "1.10" is above
    # "1.9.5" in PEP 440 (a string sort would put it first), "0" is below everything.
    record = _events(
        DJANGO_2007,
        ("fixed", "1.10.2"),
        ("introduced", "1.10"),
        ("fixed", "1.9.5"),
        ("introduced", "0"),
    )
    advisory, skipped = osv.read_osv(record)
    assert skipped == ()
    assert advisory.affected[0].ranges[0].events == (
        ("introduced", "0"),
        ("fixed", "1.9.5"),
        ("introduced", "1.10"),
        ("fixed", "1.10.2"),
    )


def test_fixed_before_introduced_in_real_debian_and_ubuntu_records():
    (tar,) = osv.parse_osv(
        _events(TAR, ("fixed", "1.34+dfsg-1.2+deb12u1"), ("introduced", "1.34~rc1-1"))
    ).affected
    assert tar.ranges[0].events == (
        ("introduced", "1.34~rc1-1"),  # "~" sorts below the release in dpkg
        ("fixed", "1.34+dfsg-1.2+deb12u1"),
    )
    # One Ubuntu release's range is written backwards: the record keeps all three packages.
    apache = real_record(UBUNTU / "USN-6885-1.json")
    apache["affected"][1]["ranges"][0]["events"].reverse()
    advisory, skipped = osv.read_osv(apache)
    assert skipped == ()
    assert len(advisory.affected) == 3
    assert advisory.affected[1].ranges[0].events[0] == ("introduced", "0")
    assert advisory == osv.parse_osv(real_record(UBUNTU / "USN-6885-1.json"))


def test_alpine_pre_releases_sort_below_their_release_in_events():
    record = real_record(TAR)
    record["affected"][0]["package"] = {"ecosystem": "Alpine:v3.20", "name": "busybox"}
    record["affected"][0]["ranges"][0]["events"] = [
        {"limit": "*"},
        {"fixed": "1.36.1-r29"},
        {"introduced": "1.36.1_rc1-r0"},
    ]
    (package,) = osv.parse_osv(record).affected
    assert package.ranges[0].events == (
        ("introduced", "1.36.1_rc1-r0"),
        ("fixed", "1.36.1-r29"),
        ("limit", "*"),
    )


def test_semver_ranges_sort_by_semver_and_git_ranges_keep_their_order():
    record = real_record(DJANGO_2007)
    git = [{"fixed": "b" * 40}, {"introduced": "a" * 40}]
    record["affected"][0]["ranges"] = [
        {"type": "SEMVER", "events": [{"fixed": "1.0.0"}, {"introduced": "1.0.0-rc.1"}]},
        {"type": "GIT", "repo": "https://github.com/django/django", "events": git},
    ]
    (package,) = osv.parse_osv(record).affected
    assert package.ranges == (
        records.Range("SEMVER", (("introduced", "1.0.0-rc.1"), ("fixed", "1.0.0"))),
        records.Range("GIT", (("fixed", "b" * 40), ("introduced", "a" * 40))),
    )


def test_an_ecosystem_without_a_version_order_keeps_the_documents_order():
    # Nothing here matches npm packages: their ranges are stored as written, unread.
    record = _events(DJANGO_2007, ("fixed", "4.17.21"), ("introduced", "0"))
    record["affected"][0]["package"] = {"ecosystem": "npm", "name": "lodash"}
    advisory, skipped = osv.read_osv(record)
    assert skipped == ()
    assert advisory.affected[0].ranges[0].events == (("fixed", "4.17.21"), ("introduced", "0"))


def test_real_ranges_with_versions_their_order_cannot_read_are_left_out_and_reported():
    # Two real PyPI records whose fixed versions are not PEP 440: the matcher could never
    # evaluate these ranges, so they are left out, named; the rest of each record stays.
    binderhub, skipped = osv.read_osv(real_record(PYPI / "binderhub" / "PYSEC-2021-371.json"))
    assert [item.type for item in binderhub.affected[0].ranges] == ["GIT"]
    assert skipped == (
        osv.SkippedPart(
            "PYSEC-2021-371",
            "affected[0].ranges[1]",
            "affected[0].ranges[1]: fixed '0.2.0-n653' is not a pep440 version; range left out",
        ),
    )
    steam, skipped = osv.read_osv(real_record(PYPI / "steam" / "PYSEC-2019-125.json"))
    (package,) = steam.affected
    assert (package.name, package.ranges) == ("steam", ())
    assert [str(item) for item in skipped] == [
        "PYSEC-2019-125: affected[0].ranges[0]: fixed '2019-09-12' is not a pep440 version; "
        "range left out"
    ]


def test_a_bad_range_leaves_the_other_ranges_and_packages_of_the_record():
    apache = real_record(UBUNTU / "USN-6885-1.json")
    apache["affected"][0]["ranges"].append({"type": "ECOSYSTEM", "events": [{"fixed": "2.5"}]})
    apache["affected"][2]["ranges"][0]["events"].append({"patched": "2.4.60"})
    advisory, skipped = osv.read_osv(apache)
    assert [str(item) for item in skipped] == [
        "USN-6885-1: affected[0].ranges[1] has no introduced event; range left out",
        "USN-6885-1: affected[2].ranges[0].events[2]: unknown event 'patched'; range left out",
    ]
    assert [item.part for item in skipped] == ["affected[0].ranges[1]", "affected[2].ranges[0]"]
    real = osv.parse_osv(real_record(UBUNTU / "USN-6885-1.json"))
    assert advisory.affected[:2] == real.affected[:2]
    assert advisory.affected[2].ranges == ()
    assert advisory.affected[2].versions == real.affected[2].versions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-20T09:27:07Z", datetime(2024, 1, 20, 9, 27, 7, tzinfo=UTC)),
        ("2021-07-15T02:22:07.728618Z", datetime(2021, 7, 15, 2, 22, 7, 728618, tzinfo=UTC)),
        ("2024-01-20T18:27:07+09:00", datetime(2024, 1, 20, 9, 27, 7, tzinfo=UTC)),
        ("2024-01-20T09:27:07", datetime(2024, 1, 20, 9, 27, 7, tzinfo=UTC)),
        ("2024-01-20", datetime(2024, 1, 20, tzinfo=UTC)),
    ],
)
def test_timestamps(text, expected):
    assert osv.parse_osv(variant(DJANGO_2007, modified=text)).modified == expected


# --- bad OSV records --------------------------------------------------------------------------


def _broken(change):
    record = copy.deepcopy(real_record(DJANGO_2007))
    change(record)
    return record


def _set(path, value):
    def change(record):
        target = record
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


BAD_CASES = {
    "missing id": (lambda r: r.pop("id"), None, "record without id"),
    "id not a string": (_set(["id"], 42), None, "id is not a string"),
    "id with spaces": (_set(["id"], "PYSEC 1"), None, "printable word"),
    "missing modified": (lambda r: r.pop("modified"), "PYSEC-2007-1", "missing modified"),
    "bad date": (_set(["modified"], "yesterday"), "PYSEC-2007-1", "bad modified date"),
    "bad published": (_set(["published"], "2021-13-45"), "PYSEC-2007-1", "bad published date"),
    "date not a string": (_set(["published"], 2021), "PYSEC-2007-1", "not a date-time"),
    "affected not a list": (
        _set(["affected"], {"package": {}}),
        "PYSEC-2007-1",
        "affected is not a list",
    ),
    "aliases not a list": (
        _set(["aliases"], "CVE-2007-5712"),
        "PYSEC-2007-1",
        "aliases is not a list",
    ),
    "bad CVSS vector": (
        _set(["severity"], [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:Q"}]),
        "PYSEC-2007-1",
        "not a valid CVSS_V3 vector",
    ),
    "summary not a string": (_set(["summary"], ["x"]), "PYSEC-2007-1", "summary is not a string"),
}

# What breaks one range or one affected entry leaves that part out, named with the reason; the
# rest of the record is kept: (change, the part left out, the reason).
RANGE = "affected[0].ranges[0]"
SKIPPED_CASES = {
    "unknown event": (
        _set(["affected", 0, "ranges", 0, "events", 1], {"patched": "1.1"}),
        RANGE,
        f"{RANGE}.events[1]: unknown event 'patched'; range left out",
    ),
    "two kinds in one event": (
        _set(["affected", 0, "ranges", 0, "events", 0], {"introduced": "0", "fixed": "1"}),
        RANGE,
        f"{RANGE}.events[0] has more than one of introduced, fixed; range left out",
    ),
    "no introduced event": (
        _set(["affected", 0, "ranges", 0, "events"], [{"fixed": "1.1"}, {"limit": "2.0"}]),
        RANGE,
        f"{RANGE} has no introduced event; range left out",
    ),
    "fixed and last_affected": (
        _set(
            ["affected", 0, "ranges", 0, "events"],
            [{"introduced": "0"}, {"fixed": "1.1"}, {"last_affected": "1.0"}],
        ),
        RANGE,
        f"{RANGE} has both fixed and last_affected events; range left out",
    ),
    "event version not a string": (
        _set(["affected", 0, "ranges", 0, "events", 1], {"fixed": 1.1}),
        RANGE,
        f"{RANGE}.events[1]: fixed version is not a non-empty string; range left out",
    ),
    "event not an object": (
        _set(["affected", 0, "ranges", 0, "events", 1], "1.1"),
        RANGE,
        f"{RANGE}.events[1] is not an object; range left out",
    ),
    "unreadable version": (
        _set(["affected", 0, "ranges", 0, "events", 1], {"fixed": "1.1 final"}),
        RANGE,
        f"{RANGE}: fixed '1.1 final' is not a pep440 version; range left out",
    ),
    "range without events": (
        lambda r: r["affected"][0]["ranges"][0].pop("events"),
        RANGE,
        f"{RANGE} has no events; range left out",
    ),
    "range with empty events": (
        _set(["affected", 0, "ranges", 0, "events"], []),
        RANGE,
        f"{RANGE} has no events; range left out",
    ),
    "unknown range type": (
        _set(["affected", 0, "ranges", 0, "type"], "DATE"),
        RANGE,
        f"{RANGE} has unknown type 'DATE'; range left out",
    ),
    "range not an object": (
        _set(["affected", 0, "ranges", 0], "0..1.1"),
        RANGE,
        f"{RANGE} is not an object; range left out",
    ),
    "affected entry not an object": (
        _set(["affected", 0], "django"),
        "affected[0]",
        "affected[0] is not an object; entry left out",
    ),
    "package without name": (
        lambda r: r["affected"][0]["package"].pop("name"),
        "affected[0]",
        "affected[0].package has no name; entry left out",
    ),
    "no package": (
        lambda r: r["affected"][0].pop("package"),
        "affected[0]",
        "affected[0] has no package; entry left out",
    ),
    "empty entry": (
        _set(["affected", 0], {}),
        "affected[0]",
        "affected[0] has no package; entry left out",
    ),
    "ranges not a list": (
        _set(["affected", 0, "ranges"], {"type": "ECOSYSTEM"}),
        "affected[0]",
        "affected[0].ranges is not a list; entry left out",
    ),
    "versions not a list": (
        _set(["affected", 0, "versions"], "1.0.1"),
        "affected[0]",
        "affected[0].versions is not a list of strings; entry left out",
    ),
    "NUL in a version": (
        _set(["affected", 0, "versions", 0], "1.0\x00"),
        "affected[0]",
        "affected[0].versions contains a NUL character; entry left out",
    ),
    "bad CVSS vector of a package": (
        _set(["affected", 0, "severity"], [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:Q"}]),
        "affected[0]",
        "affected[0].severity[0]: not a valid CVSS_V3 vector 'CVSS:3.1/AV:Q'; entry left out",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_records_name_the_id_and_the_reason(case):
    change, record_id, reason = BAD_CASES[case]
    bad = bad_reason(_broken(change))
    assert bad.record_id == record_id
    assert reason in bad.reason
    assert "\n" not in str(bad)
    assert str(bad) == (f"{record_id}: {bad.reason}" if record_id else bad.reason)


@pytest.mark.parametrize("case", list(SKIPPED_CASES))
def test_a_broken_range_or_entry_is_left_out_and_named(case):
    change, part, reason = SKIPPED_CASES[case]
    record = _broken(change)
    advisory, skipped = osv.read_osv(record)
    assert skipped == (osv.SkippedPart("PYSEC-2007-1", part, reason),)
    assert str(skipped[0]) == f"PYSEC-2007-1: {reason}"
    assert "\n" not in str(skipped[0])
    # The record itself is kept; only the named part is missing from it.
    assert advisory.id == "PYSEC-2007-1"
    complete = osv.parse_osv(real_record(DJANGO_2007))
    assert (advisory.aliases, advisory.modified) == (complete.aliases, complete.modified)
    if part == RANGE:
        (package,) = advisory.affected
        assert (package.name, package.ranges) == ("django", ())
        assert package.versions == complete.affected[0].versions
    else:
        assert advisory.affected == ()


@pytest.mark.parametrize("document", [[], "PYSEC-1", None, 3])
def test_a_record_must_be_an_object(document):
    assert bad_reason(document).reason == "an OSV record must be a JSON object"


def test_a_hostile_id_is_cut_short_in_the_reason():
    bad = bad_reason(variant(DJANGO_2007, id="X" * 10_000))
    assert bad.record_id is None
    assert len(str(bad)) < 200


# --- CISA KEV ---------------------------------------------------------------------------------


def test_the_real_kev_catalogue():
    items = list(osv.parse_kev(json.loads(KEV_FILE.read_text())))
    assert len(items) == KEV_ENTRIES
    assert all(isinstance(item, records.KevEntry) for item in items)
    assert sum(item.known_ransomware for item in items) == KEV_RANSOMWARE > 0
    git = next(item for item in items if item.cve == "CVE-2025-48384")
    assert git == records.KevEntry(
        cve="CVE-2025-48384",
        vendor="Git",
        product="Git",
        name="Git Link Following Vulnerability",
        date_added=date(2025, 8, 25),
        due_date=date(2025, 9, 15),
        known_ransomware=False,
    )


def test_bad_kev_entries_are_yielded_among_the_good_ones():
    catalogue = json.loads(KEV_FILE.read_text())
    catalogue["vulnerabilities"] = catalogue["vulnerabilities"][:3]
    catalogue["vulnerabilities"][0]["cveID"] = "not-a-cve"
    catalogue["vulnerabilities"][1]["dateAdded"] = "2025-02-30"
    items = list(osv.parse_kev(catalogue))
    assert [type(item) for item in items] == [osv.BadRecord, osv.BadRecord, records.KevEntry]
    assert items[0].record_id == "vulnerabilities[0]"
    assert "is not a CVE id" in items[0].reason
    assert items[1].record_id == catalogue["vulnerabilities"][1]["cveID"]
    assert "bad dateAdded date" in items[1].reason


@pytest.mark.parametrize("document", [{}, [], {"vulnerabilities": {}}])
def test_not_a_kev_catalogue(document):
    with pytest.raises(osv.BadRecord, match="not a CISA KEV catalogue"):
        list(osv.parse_kev(document))


# --- endoflife.date ---------------------------------------------------------------------------


def _cycles(product: str) -> dict[str, records.EolCycle]:
    data = json.loads((EOL_PRODUCTS / f"{product}.json").read_text())
    return {cycle.cycle: cycle for cycle in osv.parse_endoflife(product, data)}


def test_every_real_endoflife_product_parses():
    total = 0
    for path in sorted(EOL_PRODUCTS.glob("*.json")):
        items = list(osv.parse_endoflife(path.stem, json.loads(path.read_text())))
        assert all(isinstance(item, records.EolCycle) for item in items), path
        total += len(items)
    assert total == EOL_CYCLES


def test_endoflife_dates_and_booleans():
    debian = _cycles("debian")["12"]
    assert (debian.eol, debian.extended, debian.codename) == (
        date(2026, 7, 11),
        date(2028, 6, 30),
        "Bookworm",
    )
    assert debian.source == "endoflife.date"
    # eol: true, ended at a date the source does not give.
    node1 = _cycles("nodejs")["1"]
    assert node1.eol == node1.release_date == date(2015, 1, 20)
    assert node1.eol_date_unknown
    # eol: false, no end announced.
    httpd = _cycles("apache-http-server")["2.4"]
    assert httpd.eol is None
    assert not httpd.eol_date_unknown
    # extendedSupport: true, offered without an end date; lts given as a date.
    node22 = _cycles("nodejs")["22"]
    assert node22.extended is None
    assert node22.extended_open
    assert node22.lts
    assert _cycles("openssl")["3.0"].extended_open
    assert _cycles("ubuntu")["22.04"].extended == date(2032, 4, 9)


def test_bad_endoflife_cycles():
    items = list(
        osv.parse_endoflife(
            "python",
            [
                {"cycle": "3.12", "releaseDate": "2023-10-02", "eol": "soon"},
                {"releaseDate": "2023-10-02"},
                {"cycle": "3.11", "releaseDate": "2022-10-24", "eol": "2027-10-31"},
                {"cycle": "3.10", "lts": 3},
            ],
        )
    )
    assert [type(item) for item in items] == [
        osv.BadRecord,
        osv.BadRecord,
        records.EolCycle,
        osv.BadRecord,
    ]
    assert str(items[0]) == "python 3.12: bad eol date 'soon'"
    assert items[1].record_id == "python[1]"
    assert "lts is neither" in items[3].reason


def test_endoflife_needs_a_list_and_a_product_slug():
    with pytest.raises(osv.BadRecord, match="not a list"):
        list(osv.parse_endoflife("python", {"cycle": "3.12"}))
    with pytest.raises(osv.BadRecord, match="slug"):
        list(osv.parse_endoflife("../etc", []))


# --- distro-info ------------------------------------------------------------------------------


def _distro(product: str) -> dict[str, records.EolCycle]:
    text = (DISTRO_INFO / f"{product}.csv").read_text()
    return {cycle.cycle: cycle for cycle in osv.parse_distro_info(product, text)}


def test_distro_info_debian_uses_regular_and_lts_support():
    cycles = _distro("debian")
    assert len(cycles) == 22
    bookworm = cycles["12"]
    assert bookworm == records.EolCycle(
        product="debian",
        cycle="12",
        release_date=date(2023, 6, 10),
        eol=date(2026, 7, 11),
        extended=date(2028, 6, 30),
        lts=False,
        source="distro-info",
        codename="Bookworm",
    )
    assert cycles["sid"].release_date is None
    assert cycles["14"].eol is None  # not released yet: no end announced


def test_distro_info_ubuntu_uses_standard_and_esm_support():
    cycles = _distro("ubuntu")
    assert len(cycles) == 45
    jammy = cycles["22.04"]
    assert (jammy.eol, jammy.extended, jammy.lts, jammy.codename) == (
        date(2027, 6, 1),
        date(2032, 4, 21),
        True,
        "Jammy Jellyfish",
    )
    assert not cycles["25.10"].lts


def test_bad_distro_info_rows():
    text = (DISTRO_INFO / "debian.csv").read_text().splitlines()
    text.insert(2, "1.2x,Rex,rex,1996-06-17,1996-12-12,1998-06-45")
    text.insert(3, "9,Stretch,stretch,2015-04-26,2017-06-17,2020-07-18,2022-06-30,2027-06-30,x,y")
    items = list(osv.parse_distro_info("debian", "\n".join(text)))
    bad = [item for item in items if isinstance(item, osv.BadRecord)]
    assert [str(item) for item in bad] == [
        "debian 1.2x: bad eol date '1998-06-45'",
        "debian.csv line 4: 10 fields for 8 columns",
    ]
    assert len(items) == 24


def test_distro_info_header_decides_the_product():
    debian = (DISTRO_INFO / "debian.csv").read_text()
    with pytest.raises(osv.BadRecord, match="not a distro-info CSV"):
        list(osv.parse_distro_info("ubuntu", debian))
    assert osv.distro_info_product(debian.splitlines()[0].split(",")) == "debian"
    ubuntu_header = (DISTRO_INFO / "ubuntu.csv").read_text().splitlines()[0]
    assert osv.distro_info_product(ubuntu_header.split(",")) == "ubuntu"
    assert osv.distro_info_product(["package", "version"]) is None
