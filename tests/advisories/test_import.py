"""``mamori advisories import`` against the database: real feeds, idempotence, replacement,
withdrawal, zips and lists, bad records, all-or-nothing batches and the change signal."""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import UTC, datetime

import pytest
from django.db import connection

from mamori.advisories.models import (
    Advisory,
    AffectedPackage,
    EolCycle,
    ImportRun,
    IndexGeneration,
    KevEntry,
)
from mamori.advisories.signals import advisories_changed
from tests.advisories.conftest import real_record, run_import, variant, write_json
from tests.datafiles import (
    DEBIAN12,
    DEBIAN12_RECORDS,
    DISTRO_INFO,
    DISTRO_INFO_ROWS,
    EOL_CYCLES,
    EOL_PRODUCT_FILES,
    EOL_PRODUCTS,
    KEV_ENTRIES,
    KEV_FILE,
    OSV,
    PYPI,
    PYPI_RECORDS,
    PYPI_WITHDRAWN,
    UBUNTU,
    UBUNTU_RECORDS,
)

pytestmark = pytest.mark.django_db

APACHE = UBUNTU / "USN-6885-1.json"
CURL = UBUNTU / "USN-6718-1.json"
TAR = DEBIAN12 / "MAMORI-DEB12-CVE-2022-48303-tar.json"
GIT = DEBIAN12 / "MAMORI-DEB12-CVE-2025-48384-git.json"
ALL_OSV = PYPI_RECORDS + DEBIAN12_RECORDS + UBUNTU_RECORDS
# endoflife.date cycles of every product file and distro-info rows of both CSVs.
EOL_ROWS = EOL_CYCLES + sum(DISTRO_INFO_ROWS.values())


def last_run() -> ImportRun:
    return ImportRun.objects.order_by("-pk").first()


def affected_rows(osv_id: str) -> set[tuple]:
    return set(
        AffectedPackage.objects.filter(advisory__osv_id=osv_id).values_list(
            "ecosystem", "family", "release", "name"
        )
    )


@pytest.fixture
def announcements():
    """Every ``advisories_changed`` sent during the test, as (keys, kwargs)."""
    received = []

    def receiver(sender, keys, **kwargs):
        received.append(keys)

    advisories_changed.connect(receiver, dispatch_uid="tests.advisories.announcements")
    yield received
    advisories_changed.disconnect(dispatch_uid="tests.advisories.announcements")


# --- the real feeds ---------------------------------------------------------------------------


# The two real records with a range no version order here can read (their fixed versions are
# not PEP 440): each range is left out and reported, the rest of the record imported. In the
# order the directory is read.
REAL_SKIPPED = [
    (
        "PYSEC-2021-371",
        "affected[0].ranges[1]",
        "affected[0].ranges[1]: fixed '0.2.0-n653' is not a pep440 version; range left out",
        PYPI / "binderhub" / "PYSEC-2021-371.json",
    ),
    (
        "PYSEC-2019-125",
        "affected[0].ranges[0]",
        "affected[0].ranges[0]: fixed '2019-09-12' is not a pep440 version; range left out",
        PYPI / "steam" / "PYSEC-2019-125.json",
    ),
]


def test_every_real_feed_imports_and_a_second_import_changes_nothing():
    paths = [OSV, KEV_FILE, EOL_PRODUCTS, DISTRO_INFO]
    first = run_import(*paths)
    assert first.code == 0, first.message + first.stderr
    assert first.bad_lines == [
        f"{record_id}: {reason} ({path})" for record_id, _, reason, path in REAL_SKIPPED
    ]
    run = last_run()
    assert run.state == ImportRun.State.SUCCEEDED
    assert run.skipped == 2
    assert run.skipped_records == [
        {"where": str(path), "id": record_id, "part": part, "reason": reason}
        for record_id, part, reason, path in REAL_SKIPPED
    ]
    assert "; 2 skipped (records or parts of records)" in first.stdout
    assert run.counts["osv"] == {
        "added": ALL_OSV - PYPI_WITHDRAWN,
        "changed": 0,
        "unchanged": 0,
        "withdrawn": PYPI_WITHDRAWN,
        "bad": 0,
    }
    assert run.counts["kev"]["added"] == KEV_ENTRIES
    assert run.counts["eol"]["added"] == EOL_ROWS
    assert (run.added, run.withdrawn, run.bad) == (
        ALL_OSV - PYPI_WITHDRAWN + KEV_ENTRIES + EOL_ROWS,
        PYPI_WITHDRAWN,
        0,
    )
    assert f"import {run.pk} finished" in first.stdout
    assert len(first.stdout.strip().splitlines()) == 1

    assert Advisory.objects.count() == ALL_OSV
    assert Advisory.objects.filter(withdrawn__isnull=False).count() == PYPI_WITHDRAWN
    families = {
        family: AffectedPackage.objects.filter(family=family).count()
        for family in ("PyPI", "Debian", "Ubuntu")
    }
    assert families == {"PyPI": PYPI_RECORDS, "Debian": DEBIAN12_RECORDS, "Ubuntu": 14}
    assert KevEntry.objects.count() == KEV_ENTRIES
    assert EolCycle.objects.filter(source="endoflife.date").count() == EOL_CYCLES
    assert EolCycle.objects.filter(source="distro-info").count() == sum(DISTRO_INFO_ROWS.values())
    assert EolCycle.objects.values("product").distinct().count() == EOL_PRODUCT_FILES
    generation = IndexGeneration.current()

    second = run_import(*paths)
    assert second.code == 0
    assert second.bad_lines == first.bad_lines  # reported again: the feed still has them
    again = last_run()
    assert again.counts["osv"]["unchanged"] == ALL_OSV
    assert again.counts["kev"]["unchanged"] == KEV_ENTRIES
    assert again.counts["eol"]["unchanged"] == EOL_ROWS
    assert again.added == again.changed == again.withdrawn == again.bad == 0
    assert IndexGeneration.current() == generation  # nothing changed: every index stays
    assert Advisory.objects.count() == ALL_OSV


def test_stored_columns_of_an_ubuntu_record():
    assert run_import(APACHE).code == 0
    advisory = Advisory.objects.get(osv_id="USN-6885-1")
    assert advisory.modified == datetime(2026, 4, 27, 14, 11, 34, tzinfo=UTC)
    assert advisory.aliases[:2] == ["CVE-2024-36387", "CVE-2024-38473"]
    assert advisory.summary == "apache2 vulnerabilities"
    assert len(advisory.digest) == 64
    assert affected_rows("USN-6885-1") == {
        ("Ubuntu:20.04:LTS", "Ubuntu", "20.04:LTS", "apache2"),
        ("Ubuntu:22.04:LTS", "Ubuntu", "22.04:LTS", "apache2"),
        ("Ubuntu:24.04:LTS", "Ubuntu", "24.04:LTS", "apache2"),
    }
    row = AffectedPackage.objects.get(advisory=advisory, release="22.04:LTS")
    assert row.severity == "high"
    assert row.ranges == [
        {"type": "ECOSYSTEM", "events": [["introduced", "0"], ["fixed", "2.4.52-1ubuntu4.10"]]}
    ]
    assert "2.4.52-1ubuntu4" in row.versions


# --- idempotence, replacement, withdrawal -----------------------------------------------------


def test_a_newer_modified_replaces_the_record_and_its_affected_rows(tmp_path, announcements):
    assert run_import(APACHE).code == 0
    record = real_record(APACHE)
    record["modified"] = "2026-05-01T00:00:00Z"
    record["summary"] = "apache2 vulnerabilities (revised)"
    record["affected"] = record["affected"][1:]  # 20.04 no longer listed
    record["affected"][0]["package"]["name"] = "apache2-bin"
    newer = write_json(tmp_path / "USN-6885-1.json", record)

    result = run_import(newer)
    assert result.code == 0
    assert last_run().counts["osv"]["changed"] == 1
    advisory = Advisory.objects.get(osv_id="USN-6885-1")
    assert advisory.summary == "apache2 vulnerabilities (revised)"
    assert advisory.modified == datetime(2026, 5, 1, tzinfo=UTC)
    assert affected_rows("USN-6885-1") == {
        ("Ubuntu:22.04:LTS", "Ubuntu", "22.04:LTS", "apache2-bin"),
        ("Ubuntu:24.04:LTS", "Ubuntu", "24.04:LTS", "apache2"),
    }
    assert AffectedPackage.objects.count() == 2  # the old rows are gone, not orphaned
    assert Advisory.objects.count() == 1


def test_an_older_modified_never_replaces_a_newer_record(tmp_path):
    assert run_import(APACHE).code == 0
    digest = Advisory.objects.get().digest
    older = write_json(
        tmp_path / "old.json",
        variant(APACHE, modified="2024-07-08T17:56:11Z", summary="stale text"),
    )
    result = run_import(older)
    assert result.code == 0
    run = last_run()
    assert run.counts["osv"]["unchanged"] == 1
    advisory = Advisory.objects.get()
    assert (advisory.digest, advisory.summary) == (digest, "apache2 vulnerabilities")
    # Left alone, and said so by id.
    reason = (
        "modified 2024-07-08T17:56:11+00:00 is older than the stored record's "
        "2026-04-27T14:11:34+00:00; record not written"
    )
    assert result.bad_lines == [f"USN-6885-1: {reason} ({older})"]
    assert run.skipped_records == [
        {"where": str(older), "id": "USN-6885-1", "part": "", "reason": reason}
    ]
    # The stored copy itself again is simply unchanged: nothing to report.
    assert run_import(APACHE).bad_lines == []


def test_same_modified_but_other_content_replaces(tmp_path):
    # A feed corrected without bumping "modified": the content digest still notices.
    assert run_import(TAR).code == 0
    record = real_record(TAR)
    record["affected"][0]["ranges"][0]["events"][1]["fixed"] = "1.34+dfsg-1.2+deb12u2"
    assert run_import(write_json(tmp_path / "tar.json", record)).code == 0
    assert last_run().counts["osv"]["changed"] == 1
    (row,) = AffectedPackage.objects.all()
    assert row.ranges[0]["events"][1] == ["fixed", "1.34+dfsg-1.2+deb12u2"]


def test_a_withdrawn_record_is_kept_and_marked(tmp_path):
    assert run_import(CURL).code == 0
    withdrawn = variant(CURL, modified="2026-05-01T00:00:00Z", withdrawn="2026-05-01T00:00:00Z")
    assert run_import(write_json(tmp_path / "curl.json", withdrawn)).code == 0
    assert last_run().counts["osv"] == {
        "added": 0,
        "changed": 0,
        "unchanged": 0,
        "withdrawn": 1,
        "bad": 0,
    }
    advisory = Advisory.objects.get(osv_id="USN-6718-1")
    assert advisory.withdrawn == datetime(2026, 5, 1, tzinfo=UTC)
    assert len(affected_rows("USN-6718-1")) == 2
    # The same withdrawn record again: unchanged.
    assert run_import(write_json(tmp_path / "curl.json", withdrawn)).code == 0
    assert last_run().counts["osv"]["unchanged"] == 1


def test_the_same_id_twice_in_one_list_keeps_the_newer(tmp_path):
    older = real_record(TAR)
    newer = variant(TAR, modified="2025-01-01T00:00:00Z", summary="revised")
    listing = write_json(tmp_path / "list.json", [older, newer, older])
    result = run_import(listing, "--batch-size", 50)
    assert result.code == 0
    assert last_run().counts["osv"] == {
        "added": 1,
        "changed": 1,
        "unchanged": 1,
        "withdrawn": 0,
        "bad": 0,
    }
    (line,) = result.bad_lines
    assert line.startswith("MAMORI-DEB12-CVE-2022-48303-tar: modified ")
    assert line.endswith(f"; record not written ({listing})")
    assert last_run().skipped == 1
    assert Advisory.objects.get().summary == "revised"
    assert AffectedPackage.objects.count() == 1


def test_changed_lifecycle_and_kev_data_are_updated(tmp_path):
    python = json.loads((EOL_PRODUCTS / "python.json").read_text())
    write_json(tmp_path / "python.json", python)
    assert run_import(tmp_path / "python.json").code == 0
    python[0]["eol"] = "2031-01-01"
    write_json(tmp_path / "python.json", python)
    assert run_import(tmp_path / "python.json").code == 0
    assert last_run().counts["eol"]["changed"] == 1
    cycle = EolCycle.objects.get(product="python", cycle=python[0]["cycle"])
    assert cycle.eol.isoformat() == "2031-01-01"

    catalogue = json.loads(KEV_FILE.read_text())
    catalogue["vulnerabilities"] = catalogue["vulnerabilities"][:5]
    write_json(tmp_path / "kev.json", catalogue)
    assert run_import(tmp_path / "kev.json").code == 0
    catalogue["vulnerabilities"][0]["knownRansomwareCampaignUse"] = "Known"
    write_json(tmp_path / "kev.json", catalogue)
    assert run_import(tmp_path / "kev.json").code == 0
    assert last_run().counts["kev"] == {
        "added": 0,
        "changed": 1,
        "unchanged": 4,
        "withdrawn": 0,
        "bad": 0,
    }
    assert KevEntry.objects.get(cve=catalogue["vulnerabilities"][0]["cveID"]).known_ransomware


def test_product_option_names_the_endoflife_product(tmp_path):
    shutil.copy(EOL_PRODUCTS / "python.json", tmp_path / "download.json")
    assert run_import(tmp_path / "download.json", "--product", "python").code == 0
    assert EolCycle.objects.filter(product="python").count() == 17
    assert not EolCycle.objects.filter(product="download").exists()


# --- zip and list layouts ---------------------------------------------------------------------


def make_zip(path, sources_and_names):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for source, name in sources_and_names:
            if isinstance(source, bytes | str):
                archive.writestr(name, source)
            else:
                archive.write(source, name)
    return path


def test_osv_all_zip_layout(tmp_path):
    members = sorted((PYPI / "django").glob("*.json")) + sorted(UBUNTU.glob("*.json"))
    archive = make_zip(tmp_path / "all.zip", [(path, path.name) for path in members])
    result = run_import(archive)
    assert result.code == 0, result.stderr
    assert Advisory.objects.count() == len(members) == 116 + UBUNTU_RECORDS
    assert run_import(archive).code == 0
    assert last_run().counts["osv"]["unchanged"] == len(members)


def test_a_zip_with_bad_members_imports_the_good_ones(tmp_path):
    good = sorted(UBUNTU.glob("*.json"))
    archive = make_zip(
        tmp_path / "all.zip",
        [(path, path.name) for path in good]
        + [
            ('{"id": "TRUNCATED-1", "modified": "2024-01-01T00:00:00Z", "affe', "TRUNCATED-1.json"),
            (json.dumps(variant(TAR, modified="last week")), "MAMORI-BAD-DATE.json"),
        ],
    )
    result = run_import(archive)
    assert result.code == 1
    assert result.bad_lines == [
        f"MAMORI-DEB12-CVE-2022-48303-tar: bad modified date 'last week' ({archive}:MAMORI-BAD-DATE.json)",
        f"{archive}:TRUNCATED-1.json: invalid JSON: Unterminated string starting at (line 1 column 59)",
    ]
    assert Advisory.objects.count() == UBUNTU_RECORDS
    assert "2 bad records" in result.message


def test_a_json_list_of_records(tmp_path):
    listing = [real_record(path) for path in sorted(UBUNTU.glob("*.json"))]
    path = write_json(tmp_path / "usn.json", listing)
    assert run_import(path).code == 0
    assert set(Advisory.objects.values_list("osv_id", flat=True)) == {
        record["id"] for record in listing
    }


# --- bad records ------------------------------------------------------------------------------


def test_each_malformed_record_is_reported_and_the_good_ones_land(tmp_path):
    feed = tmp_path / "feed"
    shutil.copytree(UBUNTU, feed / "ubuntu")
    write_json(feed / "bad" / "missing-id.json", variant(TAR, id=None))
    write_json(feed / "bad" / "bad-date.json", variant(GIT, modified="2025-02-30T00:00:00Z"))
    write_json(feed / "bad" / "affected-dict.json", variant(CURL, affected={"package": "curl"}))
    latin1 = json.dumps(variant(TAR, id="LATIN-1", summary="caf\u00e9"), ensure_ascii=False)
    (feed / "bad" / "latin1.json").write_bytes(latin1.encode("latin-1"))
    truncated = TAR.read_text()[:300]
    (feed / "bad" / "truncated.json").write_text(truncated)
    with pytest.raises(json.JSONDecodeError) as cut:
        json.loads(truncated)
    write_json(feed / "bad" / "odd.json", {"title": "neither OSV nor KEV"})
    # Broken ranges only cost the range: these two records land, less that range.
    unknown_event = real_record(PYPI / "django" / "PYSEC-2007-1.json")
    unknown_event["affected"][0]["ranges"][0]["events"].append({"patched": "1.2"})
    write_json(feed / "broken-range" / "unknown-event.json", unknown_event)
    no_events = variant(TAR, id="MAMORI-NO-EVENTS")
    del no_events["affected"][0]["ranges"][0]["events"]
    write_json(feed / "broken-range" / "no-events.json", no_events)

    result = run_import(feed, "--batch-size", 2)
    assert result.code == 1
    lines = sorted(result.bad_lines)
    bad = feed / "bad"
    broken = feed / "broken-range"
    assert lines == sorted(
        [
            f"{bad / 'missing-id.json'}: record without id",
            f"MAMORI-DEB12-CVE-2025-48384-git: bad modified date '2025-02-30T00:00:00Z' ({bad / 'bad-date.json'})",
            f"USN-6718-1: affected is not a list ({bad / 'affected-dict.json'})",
            f"{bad / 'truncated.json'}: invalid JSON: {cut.value.msg} "
            f"(line {cut.value.lineno} column {cut.value.colno})",
            f"{bad / 'latin1.json'}: not UTF-8 (byte {latin1.index('caf') + 3})",
            f"{bad / 'odd.json'}: unrecognised format",
            f"PYSEC-2007-1: affected[0].ranges[0].events[2]: unknown event 'patched'; range left "
            f"out ({broken / 'unknown-event.json'})",
            f"MAMORI-NO-EVENTS: affected[0].ranges[0] has no events; range left out "
            f"({broken / 'no-events.json'})",
        ]
    )
    # Everything good landed (the real USN-6718-1 among them, untouched by its broken variant);
    # the bad ones left nothing behind.
    assert Advisory.objects.count() == UBUNTU_RECORDS + 2
    assert AffectedPackage.objects.count() == 14 + 2
    assert len(affected_rows("USN-6718-1")) == 2
    assert not Advisory.objects.filter(
        osv_id__in=["LATIN-1", "MAMORI-DEB12-CVE-2025-48384-git"]
    ).exists()
    django = AffectedPackage.objects.get(advisory__osv_id="PYSEC-2007-1")
    assert (django.ranges, django.versions) == ([], ["1.0.1", "1.0.2", "1.0.3", "1.0.4"])
    assert AffectedPackage.objects.get(advisory__osv_id="MAMORI-NO-EVENTS").ranges == []
    run = last_run()
    assert run.state == ImportRun.State.BAD_RECORDS
    assert run.bad == 6
    assert {entry["id"] for entry in run.bad_records} >= {"USN-6718-1", ""}
    assert run.skipped == 2
    assert {(entry["id"], entry["part"]) for entry in run.skipped_records} == {
        ("PYSEC-2007-1", "affected[0].ranges[0]"),
        ("MAMORI-NO-EVENTS", "affected[0].ranges[0]"),
    }
    assert result.message == "6 bad records were skipped; the others were imported"


def test_a_record_with_unsorted_events_imports_sorted_with_all_its_packages(tmp_path):
    # Written backwards for one of the three Ubuntu releases: valid OSV (sorting is only
    # recommended), so the whole record lands and matches as the sorted one does.
    apache = real_record(APACHE)
    apache["affected"][1]["ranges"][0]["events"].reverse()
    assert apache["affected"][1]["ranges"][0]["events"][0] == {"fixed": "2.4.52-1ubuntu4.10"}
    result = run_import(write_json(tmp_path / "USN-6885-1.json", apache))
    assert (result.code, result.bad_lines) == (0, [])
    assert len(affected_rows("USN-6885-1")) == 3
    row = AffectedPackage.objects.get(advisory__osv_id="USN-6885-1", release="22.04:LTS")
    assert row.ranges == [
        {"type": "ECOSYSTEM", "events": [["introduced", "0"], ["fixed", "2.4.52-1ubuntu4.10"]]}
    ]
    # The same record written sorted is the same record.
    assert run_import(APACHE).code == 0
    assert last_run().counts["osv"]["unchanged"] == 1


def test_a_broken_range_costs_only_that_range(tmp_path):
    apache = real_record(APACHE)
    apache["affected"][0]["ranges"][0]["events"] = [{"fixed": "2.4.41-4ubuntu3.19"}]
    result = run_import(write_json(tmp_path / "USN-6885-1.json", apache))
    assert result.code == 0
    assert result.bad_lines == [
        "USN-6885-1: affected[0].ranges[0] has no introduced event; range left out "
        f"({tmp_path / 'USN-6885-1.json'})"
    ]
    assert "1 skipped (records or parts of records)" in result.stdout
    rows = {
        row.release: row.ranges
        for row in AffectedPackage.objects.filter(advisory__osv_id="USN-6885-1")
    }
    assert rows["20.04:LTS"] == []
    assert rows["24.04:LTS"] == [
        {"type": "ECOSYSTEM", "events": [["introduced", "0"], ["fixed", "2.4.58-1ubuntu8.2"]]}
    ]
    run = last_run()
    assert (run.state, run.bad, run.skipped) == (ImportRun.State.SUCCEEDED, 0, 1)


def _refuse_package_in_database(name: str) -> None:
    """A real trigger that makes the database refuse one affected row, as a constraint would."""
    table = AffectedPackage._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                f"CREATE TRIGGER refuse_package BEFORE INSERT ON {table} "
                f"WHEN NEW.name = '{name}' BEGIN SELECT RAISE(ABORT, 'package refused'); END"
            )
        else:
            cursor.execute(
                "CREATE FUNCTION refuse_package() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.name = '{name}' THEN RAISE EXCEPTION 'package refused' "
                "USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER refuse_package BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_package()"
            )


def test_an_advisory_and_its_affected_rows_land_together_or_not_at_all(tmp_path):
    # USN-6885-1's advisory row is written before its affected rows, and the database refuses
    # one of those: the batch rolls back, is written again record by record, and only that
    # advisory is missing, without a stray advisory or affected row.
    _refuse_package_in_database("apache2")
    result = run_import(UBUNTU, "--batch-size", 100)
    assert result.code == 1
    (line,) = result.bad_lines
    assert line.startswith("USN-6885-1: refused by the database: ")
    assert "package refused" in line
    assert Advisory.objects.count() == UBUNTU_RECORDS - 1
    assert not Advisory.objects.filter(osv_id="USN-6885-1").exists()
    assert not AffectedPackage.objects.filter(name="apache2").exists()
    assert AffectedPackage.objects.count() == 14 - 3


# --- the change signal ------------------------------------------------------------------------


def test_the_signal_is_sent_once_with_the_changed_keys_only_after_commit(
    tmp_path, announcements, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        assert run_import(APACHE, CURL).code == 0
        # Inside the test's transaction nothing has committed yet: nothing was announced.
        assert announcements == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert announcements == [{("Ubuntu", "apache2"), ("Ubuntu", "curl")}]

    # A replaced record announces its old and its new packages; unchanged ones nothing.
    record = real_record(CURL)
    record["modified"] = "2026-05-01T00:00:00Z"
    record["affected"][0]["package"]["name"] = "curl-minimal"
    with django_capture_on_commit_callbacks(execute=True):
        assert run_import(write_json(tmp_path / "curl.json", record), APACHE).code == 0
    assert announcements[1] == {("Ubuntu", "curl"), ("Ubuntu", "curl-minimal")}

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert run_import(APACHE).code == 0
    assert callbacks == []
    assert len(announcements) == 2


def test_new_kev_entries_announce_the_packages_of_advisories_naming_them(
    tmp_path, announcements, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert run_import(GIT, TAR).code == 0
    catalogue = json.loads(KEV_FILE.read_text())
    catalogue["vulnerabilities"] = [
        entry for entry in catalogue["vulnerabilities"] if entry["cveID"] == "CVE-2025-48384"
    ]
    with django_capture_on_commit_callbacks(execute=True):
        assert run_import(write_json(tmp_path / "kev.json", catalogue)).code == 0
    assert announcements[-1] == {("Debian", "git")}


@pytest.mark.django_db(transaction=True)
def test_after_a_real_commit_the_receiver_sees_the_data(announcements):
    seen = []

    def receiver(sender, keys, **kwargs):
        seen.append(Advisory.objects.filter(osv_id="USN-6718-1").exists())

    advisories_changed.connect(receiver, dispatch_uid="tests.advisories.commit")
    try:
        assert run_import(CURL).code == 0
    finally:
        advisories_changed.disconnect(dispatch_uid="tests.advisories.commit")
    assert seen == [True]
    assert announcements == [{("Ubuntu", "curl")}]
