"""Software feeds (issue 11 §2): CISA KEV and OSV advisories read as early-warning feeds raise
``software_vulnerability`` alerts on exactly the hosts the set-based re-match finds with an
affected package; EPSS scores are stored and enrich the alerts; feeds are read on schedule by
one task each, from a real local HTTP server; every step is idempotent.

The scene, built once for the module from the real data in tests/data: the Debian 12 advisory
of CVE-2023-4863 (libwebp) and "yesterday's" KEV catalogue — the vendored catalogue without that
CVE's entry, which the real catalogue then adds — and five real Debian 12 hosts uploaded through
the verification service:

- Test Bank: ``old-webp`` (a libwebp from before the fix), ``old-ssl`` (an openssl one point
  release behind), ``no-webp`` (no libwebp at all);
- Other Bank: ``other-old-webp`` (the old libwebp), ``new-webp`` (everything fixed).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gzip
import json
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import TestCase
from django.utils import timezone, translation

from mamori.advisories.models import ImportRun, KevEntry
from mamori.audit.models import AuditEvent
from mamori.catalogue.services import sync_catalogue
from mamori.core.models import OutboxMessage
from mamori.earlywarning import endpoints, feeding, software, tasks
from mamori.earlywarning.models import (
    AdvisoryFeedImport,
    Alert,
    AlertEvent,
    EpssScore,
    Feed,
    FeedKind,
    FeedRun,
    RunState,
    WebhookDelivery,
)
from mamori.verification.models import Host
from tests.conftest import World, built_once, newest_bundled
from tests.datafiles import DEBIAN12, EPSS_FILE, EPSS_GZ, EPSS_MALFORMED, EPSS_ROWS, KEV_ENTRIES
from tests.datafiles import KEV_FILE as KEV
from tests.verification.conftest import import_advisories, store
from tests.verification.factory import debian12_evidence, with_source_version

pytestmark = pytest.mark.django_db

WEBP_CVE = "CVE-2023-4863"
WEBP = "MAMORI-DEB12-CVE-2023-4863-libwebp"
OPENSSL_ADVISORY = DEBIAN12 / "MAMORI-DEB12-CVE-2026-31790-openssl.json"
# Fixed in the same openssl release as the advisory above (3.0.19-1~deb12u2).
OPENSSL_SIBLING = DEBIAN12 / "MAMORI-DEB12-CVE-2026-28387-openssl.json"


def _without(evidence: dict, source: str) -> dict:
    evidence["packages"]["items"] = [
        item for item in evidence["packages"]["items"] if item["source_name"] != source
    ]
    return evidence


def build(folder):
    """The scene (see the module's docstring); ``folder`` keeps yesterday's KEV catalogue."""
    sync_catalogue(newest_bundled())
    world = World()
    document = json.loads(KEV.read_text("utf-8"))
    document["vulnerabilities"] = [
        entry for entry in document["vulnerabilities"] if entry["cveID"] != WEBP_CVE
    ]
    document["count"] = len(document["vulnerabilities"])
    yesterday = folder / "kev-yesterday.json"
    yesterday.write_text(json.dumps(document), encoding="utf-8")
    webp = folder / "webp"
    webp.mkdir()
    shutil.copy(DEBIAN12 / f"{WEBP}.json", webp)
    import_advisories(webp, yesterday)
    old_webp = with_source_version(debian12_evidence(), "libwebp", "1.2.4-0.2")
    payloads = {
        "old-webp": (world.admin, world.bank, old_webp),
        "old-ssl": (
            world.admin,
            world.bank,
            with_source_version(debian12_evidence(), "openssl", "3.0.19-1~deb12u1"),
        ),
        "no-webp": (world.admin, world.bank, _without(debian12_evidence(), "libwebp")),
        "other-old-webp": (world.other_admin, world.other_bank, old_webp),
        "new-webp": (world.other_admin, world.other_bank, debian12_evidence()),
    }
    hosts = {}
    for number, (name, (user, organisation, payload)) in enumerate(payloads.items()):
        payload = json.loads(json.dumps(payload))
        payload["host"]["hostname"] = name
        payload["host"]["machine_id"] = f"{number + 1:032x}"
        hosts[name] = store(user, organisation, payload).host
    return world, hosts


@pytest.fixture(scope="module")
def scene(django_db_setup, django_db_blocker, tmp_path_factory):
    folder = tmp_path_factory.mktemp("software-feeds")
    with built_once(django_db_blocker, functools.partial(build, folder)) as built:
        yield built


@pytest.fixture
def world(scene):
    return scene[0]


@pytest.fixture
def hosts(scene):
    return scene[1]


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def read(name: str, location) -> list[FeedRun]:
    """Import as the command does, running what the import defers to after its commit (the
    re-match, then the alerts) as an autocommitting process does at once."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        runs = feeding.import_location(name, str(location))
    for run in runs:
        run.refresh_from_db()
    return runs


def software_alerts():
    return Alert.objects.filter(type="software_vulnerability").order_by("hostname", "cve")


def test_a_new_kev_entry_raises_alerts_for_exactly_the_hosts_with_the_package(world, hosts):
    assert not software_alerts().exists()
    raised_before = AuditEvent.objects.filter(action="earlywarning.alert.raise").count()
    (run,) = read("kev", KEV)

    alerts = list(software_alerts())
    assert [(a.organisation_id, a.hostname, a.package, a.cve) for a in alerts] == [
        (world.bank.pk, "old-webp", "libwebp", WEBP_CVE),
        (world.other_bank.pk, "other-old-webp", "libwebp", WEBP_CVE),
    ]
    import_run = AdvisoryFeedImport.objects.get(feed_run=run).import_run
    # Fixed on 2023-09-12, listed on 2023-09-13: the scheme's 7 days run from the fix.
    kev_due = dt.date(2023, 9, 19)
    for alert, host in zip(alerts, (hosts["old-webp"], hosts["other-old-webp"]), strict=True):
        assert (alert.host_id, alert.advisory, alert.installed_version) == (
            host.pk, WEBP, "1.2.4-0.2",
        )  # fmt: skip
        assert (alert.category, alert.severity, alert.control, alert.state) == (
            "vulnerable_package", "critical", "security_update_management", "new",
        )  # fmt: skip
        assert alert.kev
        assert alert.kev_due == kev_due
        assert alert.due_at == software.end_of_day(kev_due)
        assert timezone.localtime(alert.due_at).isoformat() == "2023-09-20T00:00:00+09:00"
        assert (alert.feed.name, alert.grading, alert.tlp) == ("kev", "A1", "amber")
        assert alert.first_seen == alert.last_seen == import_run.finished_at
        assert alert.evidence["kev"]["date_added"] == "2023-09-13"
        assert alert.evidence["kev"]["kev_patch_days"] == 7
        assert alert.evidence["fixed_version"] == "1.2.4-0.2+deb12u1"
        english, japanese = (alert.evidence["remediation"][lang] for lang in ("en", "ja"))
        assert english.startswith(f"Install libwebp 1.2.4-0.2+deb12u1 or later on {host.hostname}")
        assert "2023-09-19" in english
        assert WEBP_CVE in english
        assert "libwebp" in japanese
        assert "2023-09-19" in japanese
        assert japanese != english
    # The run: every catalogue entry read, the two findings, the two alerts.
    assert (run.state, run.rows, run.errors, run.matched, run.alerts_new) == (
        RunState.DONE, KEV_ENTRIES, 0, 2, 2,
    )  # fmt: skip
    assert run.feed.kind == FeedKind.KEV
    assert AuditEvent.objects.filter(action="earlywarning.alert.raise").count() == (
        raised_before + 2
    )
    # Each organisation sees its own alert only.
    assert [a.hostname for a in Alert.objects.visible_to(world.access(world.admin))] == ["old-webp"]
    assert [a.hostname for a in Alert.objects.visible_to(world.access(world.other_admin))] == [
        "other-old-webp"
    ]

    # The same catalogue again: nothing changed, so nothing is raised or seen again.
    before = list(software_alerts().values())
    audit = AuditEvent.objects.count()
    (again,) = read("kev", KEV)
    assert (again.state, again.rows, again.matched, again.alerts_new, again.alerts_updated) == (
        RunState.DONE, KEV_ENTRIES, 0, 0, 0,
    )  # fmt: skip
    assert list(software_alerts().values()) == before
    assert AuditEvent.objects.count() == audit


def test_the_command_line_reads_the_kev_feed(world, hosts, capsys):
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("earlywarning", "import", str(KEV), "--feed", "kev")
    out = capsys.readouterr().out
    assert f"{KEV}: {KEV_ENTRIES} records, 0 bad" in out
    assert software_alerts().count() == 2
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("earlywarning", "feeds", "--format", "json")
    (feed,) = json.loads(capsys.readouterr().out)
    assert (feed["name"], feed["kind"], feed["matched"], feed["alerts_new"]) == ("kev", "kev", 2, 2)
    call_command("earlywarning", "alerts", str(world.bank.pk), "--format", "json")
    (listed,) = json.loads(capsys.readouterr().out)
    assert (listed["type"], listed["cve"], listed["kev"], listed["kev_due"]) == (
        "software_vulnerability", WEBP_CVE, True, "2023-09-19",
    )  # fmt: skip
    assert (listed["host"], listed["package"]) == (hosts["old-webp"].pk, "libwebp")


def test_a_kev_entry_imported_by_the_advisory_command_is_not_missed(world):
    """``mamori advisories import`` changes the same store: its re-match raises the alerts too,
    under the kev feed (created with its defaults)."""
    import_advisories(KEV)
    assert [a.hostname for a in software_alerts()] == ["old-webp", "other-old-webp"]
    assert {a.feed.name for a in software_alerts()} == {"kev"}
    assert not FeedRun.objects.exists()


def test_a_bad_kev_entry_is_reported_and_the_rest_imported(world, tmp_path, capsys):
    document = json.loads(KEV.read_text("utf-8"))
    first = document["vulnerabilities"][0]
    stored = KevEntry.objects.get(cve=first["cveID"]).date_added  # from yesterday's catalogue
    first["dateAdded"] = "last Tuesday"
    path = tmp_path / "kev-damaged.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("earlywarning", "import", str(path), "--feed", "kev")
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{path}: {first['cveID']}: ")
    assert "dateAdded" in line
    run = FeedRun.objects.get()
    assert (run.state, run.rows, run.errors, run.error_lines) == (
        RunState.DONE, KEV_ENTRIES, 1, [line],
    )  # fmt: skip
    assert KevEntry.objects.get(cve=first["cveID"]).date_added == stored
    assert [a.hostname for a in software_alerts()] == ["old-webp", "other-old-webp"]


def test_a_feed_refuses_another_format(world, tmp_path):
    folder = tmp_path / "osv"
    folder.mkdir()
    shutil.copy(OPENSSL_ADVISORY, folder)
    with pytest.raises(CommandError, match="OSV directory, not what the kev feed reads"):
        call_command("earlywarning", "import", str(folder), "--feed", "kev")
    with pytest.raises(CommandError, match="CISA KEV, not what the osv feed reads"):
        call_command("earlywarning", "import", str(KEV), "--feed", "osv")
    assert not KevEntry.objects.filter(cve=WEBP_CVE).exists()


def test_an_advisory_past_the_deadline_raises_an_alert(world, hosts, tmp_path):
    folder = tmp_path / "osv"
    folder.mkdir()
    shutil.copy(OPENSSL_ADVISORY, folder)
    (run,) = read("osv", folder)
    assert (run.rows, run.errors, run.matched, run.alerts_new) == (1, 0, 1, 1)
    (alert,) = software_alerts()
    assert (alert.organisation_id, alert.host_id, alert.hostname) == (
        world.bank.pk, hosts["old-ssl"].pk, "old-ssl",
    )  # fmt: skip
    assert (alert.package, alert.installed_version, alert.cve, alert.advisory) == (
        "openssl", "3.0.19-1~deb12u1", "CVE-2026-31790", "MAMORI-DEB12-CVE-2026-31790-openssl",
    )  # fmt: skip
    assert (alert.category, alert.kev, alert.kev_due, alert.severity) == (
        "vulnerable_package", False, None, "high",
    )  # fmt: skip
    assert (alert.feed.name, alert.grading) == ("osv", "A2")
    # Not KEV-listed: the scheme owner's deadline for software alerts (24 hours by default).
    assert alert.due_at - alert.created_at < dt.timedelta(hours=24, minutes=1)
    published = dt.date(2026, 4, 3)
    assert alert.evidence["days_since_fix"] == (timezone.localdate() - published).days
    assert alert.evidence["patch_days"] == 14
    assert "past the scheme's deadline of 14 days" in alert.evidence["remediation"]["en"]

    # A fix released three days ago is not over the deadline yet: found, but no alert.
    record = json.loads(OPENSSL_SIBLING.read_text("utf-8"))
    fresh = f"{timezone.localdate() - dt.timedelta(days=3)}T00:00:00Z"
    record["published"] = record["modified"] = fresh
    (folder / OPENSSL_SIBLING.name).write_text(json.dumps(record), encoding="utf-8")
    (folder / OPENSSL_ADVISORY.name).unlink()
    (fresh_run,) = read("osv", folder)
    assert (fresh_run.rows, fresh_run.alerts_new) == (1, 0)
    latest = Host.objects.get(pk=hosts["old-ssl"].pk).latest_evaluation
    row = latest.vulnerability_rows.get(advisory=record["id"])
    assert (row.overdue, row.days_since_fix) == (False, 3)
    assert software_alerts().count() == 1


def test_a_finding_listed_in_kev_later_is_the_same_alert_made_critical(world, hosts, tmp_path):
    """The libwebp advisory revised (a later ``modified``): its findings, past the deadline
    since 2023, are alerts; the KEV listing then makes the same alerts critical, with the KEV
    deadline."""
    record = json.loads((DEBIAN12 / f"{WEBP}.json").read_text("utf-8"))
    record["modified"] = "2026-11-01T00:00:00Z"
    record["details"] += "\n(revised)"
    folder = tmp_path / "revised"
    folder.mkdir()
    (folder / f"{WEBP}.json").write_text(json.dumps(record), encoding="utf-8")
    read("osv", folder)
    overdue = {a.pk: a for a in software_alerts()}
    assert [(a.hostname, a.kev, a.severity) for a in overdue.values()] == [
        ("old-webp", False, "high"),
        ("other-old-webp", False, "high"),
    ]
    (run,) = read("kev", KEV)
    assert (run.alerts_new, run.alerts_updated) == (0, 2)
    for alert in software_alerts():
        before = overdue[alert.pk]
        assert (alert.kev, alert.severity, alert.kev_due, alert.times_seen) == (
            True, "critical", dt.date(2023, 9, 19), 2,
        )  # fmt: skip
        assert alert.due_at == software.end_of_day(dt.date(2023, 9, 19)) < before.due_at
        assert alert.first_seen == before.first_seen < alert.last_seen
        assert alert.evidence["kev"]["cve"] == WEBP_CVE


def test_epss_scores_enrich_the_alerts_already_raised(world):
    read("kev", KEV)
    assert set(software_alerts().values_list("epss", flat=True)) == {None}
    (run,) = read("epss", EPSS_FILE)
    assert (run.state, run.rows, run.errors, run.matched, run.alerts_updated) == (
        RunState.DONE, EPSS_ROWS, 0, 2, 2,
    )  # fmt: skip
    assert EpssScore.objects.count() == EPSS_ROWS
    score = EpssScore.objects.get(cve=WEBP_CVE)
    assert (score.epss, score.percentile, score.score_date, score.model_version) == (
        0.46711, 0.97402, dt.date(2026, 11, 20), "v2025.03.14",
    )  # fmt: skip
    assert set(software_alerts().values_list("epss", "epss_percentile")) == {(0.46711, 0.97402)}

    # The same scores gzip-compressed, as FIRST publishes them: nothing changes.
    (again,) = read("epss", EPSS_GZ)
    assert (again.rows, again.matched, again.alerts_updated) == (EPSS_ROWS, 2, 0)
    assert EpssScore.objects.count() == EPSS_ROWS


def test_epss_scores_known_before_go_with_new_alerts_and_an_older_file_changes_none(
    world, tmp_path
):
    read("epss", EPSS_FILE)
    older = tmp_path / "epss_scores-2026-11-01.csv"
    older.write_text(
        "#model_version:v2025.03.14,score_date:2026-11-01T00:00:00+0000\n"
        "cve,epss,percentile\n"
        f"{WEBP_CVE},0.01000,0.50000\n",
        encoding="utf-8",
    )
    (run,) = read("epss", older)
    assert (run.rows, run.errors) == (1, 0)
    assert EpssScore.objects.get(cve=WEBP_CVE).score_date == dt.date(2026, 11, 20)
    read("kev", KEV)
    assert set(software_alerts().values_list("epss", "epss_percentile")) == {(0.46711, 0.97402)}


def test_malformed_epss_rows_are_reported_by_file_and_line(world, capsys):
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("earlywarning", "import", str(EPSS_MALFORMED), "--feed", "epss")
    errors = capsys.readouterr().err.splitlines()
    assert errors == [
        f"{EPSS_MALFORMED}:4: the CVE id 'CVE-24-1' is not of the form CVE-YYYY-NNNN",
        f"{EPSS_MALFORMED}:6: the epss value '1.5' is not a number between 0 and 1",
        f"{EPSS_MALFORMED}:7: the epss value '-0.1' is not a number between 0 and 1",
        f"{EPSS_MALFORMED}:8: the epss value 'nan' is not a number between 0 and 1",
        f"{EPSS_MALFORMED}:9: the percentile value 'inf' is not a number between 0 and 1",
        f"{EPSS_MALFORMED}:10: the row has 2 values but the header has 3 columns",
        f"{EPSS_MALFORMED}:11: the row has 4 values but the header has 3 columns",
        f"{EPSS_MALFORMED}:14: the epss value '' is not a number between 0 and 1",
    ]
    run = FeedRun.objects.get()
    assert (run.state, run.rows, run.errors) == (RunState.DONE, 11, 8)
    assert sorted(EpssScore.objects.values_list("cve", flat=True)) == [
        "CVE-2023-44493", "CVE-2023-4863", "CVE-2024-1086",
    ]  # fmt: skip


def test_raising_twice_has_the_effect_of_once(world):
    """``raise_software_alerts`` delivered twice (tests/core/test_tasks_run_twice.py)."""
    (run,) = read("kev", KEV)
    import_run = AdvisoryFeedImport.objects.get(feed_run=run).import_run
    once = list(software_alerts().values())
    audit = AuditEvent.objects.count()
    assert tasks.raise_software_alerts([WEBP], import_run.pk) == {
        "findings": 2, "new": 0, "updated": 0,
    }  # fmt: skip
    assert list(software_alerts().values()) == once
    assert AuditEvent.objects.count() == audit
    run.refresh_from_db()
    assert (run.matched, run.alerts_new, run.alerts_updated) == (2, 2, 0)
    # A re-match queued without its import raises nothing: there is no moment to date it by.
    assert tasks.raise_software_alerts([WEBP], None) == {"findings": 0, "new": 0, "updated": 0}


def _fresh_sibling(folder, days_ago: int) -> dict:
    """The openssl advisory whose fix ``old-ssl`` lacks, released ``days_ago`` days ago."""
    record = json.loads(OPENSSL_SIBLING.read_text("utf-8"))
    fresh = f"{timezone.localdate() - dt.timedelta(days=days_ago)}T00:00:00Z"
    record["published"] = record["modified"] = fresh
    folder.mkdir(exist_ok=True)
    (folder / OPENSSL_SIBLING.name).write_text(json.dumps(record), encoding="utf-8")
    return record


def test_a_finding_that_goes_over_the_deadline_later_is_raised_on_the_day_it_crosses(
    world, hosts, tmp_path
):
    """A fix released three days before the import is found but not overdue; eleven days
    later it is past the 14 days with no import or upload to notice: the deadline sweep
    raises it then, once."""
    record = _fresh_sibling(tmp_path / "osv", days_ago=3)
    (run,) = read("osv", tmp_path / "osv")
    assert (run.matched, run.alerts_new) == (0, 0)
    found = Host.objects.get(pk=hosts["old-ssl"].pk).latest_evaluation.vulnerability_rows.get(
        advisory=record["id"]
    )
    # Unrated: serious until shown otherwise (the 14-day rule).
    assert (found.overdue, found.days_since_fix, found.severity) == (False, 3, None)
    now = timezone.now()

    # Day 14 since the fix: on the deadline, not over it.
    with TestCase.captureOnCommitCallbacks(execute=True):
        raised = software.sweep_deadlines(now=now + dt.timedelta(days=11))
    assert (raised.findings, raised.new) == (0, 0)
    assert not software_alerts().exists()

    # Day 15: over it.
    later = now + dt.timedelta(days=12)
    audit = AuditEvent.objects.filter(action="earlywarning.alert.raise").count()
    with TestCase.captureOnCommitCallbacks(execute=True):
        raised = software.sweep_deadlines(now=later)
    assert (raised.findings, raised.new) == (1, 1)
    (alert,) = software_alerts()
    assert (alert.organisation_id, alert.host_id, alert.package, alert.cve) == (
        world.bank.pk, hosts["old-ssl"].pk, "openssl", "CVE-2026-28387",
    )  # fmt: skip
    assert (alert.kev, alert.severity, alert.state, alert.feed.name) == (
        False, "high", "new", "osv",
    )  # fmt: skip
    assert alert.first_seen == alert.last_seen == later
    assert (alert.evidence["days_since_fix"], alert.evidence["overdue"]) == (15, True)
    assert (
        "released 15 days ago, past the scheme's deadline of 14 days"
        in (alert.evidence["remediation"]["en"])
    )
    assert AuditEvent.objects.filter(action="earlywarning.alert.raise").count() == audit + 1

    # The sweep again (the beat is hourly), and on the next days: the same one alert.
    before = list(software_alerts().values())
    assert tasks.sweep_software_deadlines() == {"findings": 0, "new": 0}
    raised = software.sweep_deadlines(now=later)
    assert (raised.findings, raised.new) == (0, 0)
    raised = software.sweep_deadlines(now=later + dt.timedelta(days=2))
    assert (raised.findings, raised.new) == (0, 0)
    assert list(software_alerts().values()) == before


def test_the_sweep_catches_up_a_week_the_beat_missed_and_leaves_findings_already_alerted(
    world, hosts, tmp_path
):
    _fresh_sibling(tmp_path / "osv", days_ago=3)
    read("osv", tmp_path / "osv")
    read("kev", KEV)  # the webp hosts' KEV alerts
    kev_alerts = list(software_alerts().values())
    # The beat was away for six days after the crossing: raised when it is back, not lost.
    raised = software.sweep_deadlines(now=timezone.now() + dt.timedelta(days=17))
    assert (raised.findings, raised.new) == (1, 1)
    assert software_alerts().get(package="openssl").evidence["days_since_fix"] == 20
    # The KEV alerts were not touched by the sweep.
    assert [a for a in software_alerts().values() if a["package"] == "libwebp"] == kev_alerts


def test_an_upload_that_reports_a_kev_listed_package_raises_its_alert_without_an_import(
    world, hosts
):
    """A host enrolled after the KEV entry was imported: its first upload raises the alert,
    at once, dated by its evaluation; the same host uploading again is the same alert seen
    again."""
    read("kev", KEV)
    assert software_alerts().count() == 2
    payload = with_source_version(debian12_evidence(), "libwebp", "1.2.4-0.2")
    payload["host"]["hostname"] = "late-webp"
    payload["host"]["machine_id"] = f"{99:032x}"
    collected = dt.datetime.now(dt.UTC).replace(microsecond=0)
    payload["collected_at"] = f"{collected - dt.timedelta(minutes=10):%Y-%m-%dT%H:%M:%SZ}"
    with TestCase.captureOnCommitCallbacks(execute=True):
        host = store(world.admin, world.bank, payload).host
    alert = software_alerts().get(hostname="late-webp")
    evaluation = Host.objects.get(pk=host.pk).latest_evaluation
    assert (alert.organisation_id, alert.host_id, alert.cve, alert.kev, alert.severity) == (
        world.bank.pk, host.pk, WEBP_CVE, True, "critical",
    )  # fmt: skip
    assert alert.first_seen == alert.last_seen == evaluation.evaluated_at
    assert alert.kev_due == dt.date(2023, 9, 19)
    # The immediate e-mail of a KEV alert is queued with it.
    assert OutboxMessage.objects.filter(task="mamori.earlywarning.tasks.send_alert_mail").exists()

    # The task delivered twice: the effect of once (RUN_TWICE).
    once = list(software_alerts().values())
    assert tasks.raise_host_software_alerts([host.pk]) == {
        "findings": 1, "new": 0, "updated": 0,
    }  # fmt: skip
    assert list(software_alerts().values()) == once

    # The next collection still has the old libwebp: seen again, not a second alert.
    payload["collected_at"] = f"{collected:%Y-%m-%dT%H:%M:%SZ}"
    with TestCase.captureOnCommitCallbacks(execute=True):
        store(world.admin, world.bank, payload)
    alert.refresh_from_db()
    assert software_alerts().filter(hostname="late-webp").count() == 1
    assert (alert.times_seen, alert.first_seen < alert.last_seen) == (2, True)


def test_an_upload_with_nothing_kev_listed_or_overdue_queues_nothing(world):
    payload = debian12_evidence()
    payload["host"]["hostname"] = "patched"
    payload["host"]["machine_id"] = f"{98:032x}"
    # (The scene's own uploads of old libwebp queued theirs, never run: built in a transaction.)
    queued = OutboxMessage.objects.filter(
        task="mamori.earlywarning.tasks.raise_host_software_alerts"
    )
    before = queued.count()
    with TestCase.captureOnCommitCallbacks(execute=True):
        store(world.admin, world.bank, payload)
    assert queued.count() == before
    assert not software_alerts().exists()


def test_what_an_alert_names_without_a_database_constraint_goes_with_it(world, hosts, settings):
    """The references a KEV raise writes thousands of have no constraint in the database (it
    cost a third of the raise): Django keeps them — a removed host leaves its alerts without a
    host, a removed alert takes its events and webhook deliveries."""
    settings.WEBHOOK_ALLOW_LOOPBACK = True  # a receiver on this machine (nothing is sent here)
    endpoints.create_endpoint(
        world.admin, world.access(world.admin), world.bank, url="https://127.0.0.1:8443/hook"
    )
    read("kev", KEV)
    alert = software_alerts().get(hostname="old-webp")
    assert (alert.events.count(), alert.webhook_deliveries.count()) == (1, 1)
    Host.objects.filter(pk=hosts["old-webp"].pk).delete()
    alert.refresh_from_db()
    assert (alert.host_id, alert.hostname) == (None, "old-webp")
    events, deliveries = AlertEvent.objects.all(), WebhookDelivery.objects.all()
    assert (events.filter(alert=alert).count(), deliveries.filter(alert=alert).count()) == (1, 1)
    alert.delete()
    assert not events.filter(alert_id=alert.pk).exists()
    assert not deliveries.filter(alert_id=alert.pk).exists()
    assert software_alerts().count() == 1  # the other bank's


class _Counting(SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self):
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(folder):
    """A real HTTP server on 127.0.0.1 serving ``folder``; yields its base URL and the paths
    it was asked for."""
    requests: list[str] = []
    handler = type("Handler", (_Counting,), {"requests": requests})
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_the_beat_reads_each_due_feed_from_its_location_once(world, tmp_path):
    """``read_due_feeds`` and ``read_feed``, each run twice (tests/core/test_tasks_run_twice.py):
    each due feed is fetched once, its run recorded; a location that cannot be read is a failed
    run, tried again only after its interval."""
    shutil.copy(KEV, tmp_path / "kev.json")
    (tmp_path / "epss.csv.gz").write_bytes(gzip.compress(EPSS_FILE.read_bytes()))
    with serving(tmp_path) as (base, requests):
        kev = software.feed_for("kev")
        kev.location = f"{base}/kev.json?token=secret"
        kev.save()
        epss = software.feed_for("epss")
        epss.location = f"{base}/epss.csv.gz"
        epss.save()
        missing = Feed.objects.create(
            name="kev-mirror", kind=FeedKind.KEV, location=f"{base}/gone.json"
        )
        Feed.objects.create(name="osv", kind=FeedKind.OSV, location=str(tmp_path), enabled=False)
        with TestCase.captureOnCommitCallbacks(execute=True):
            assert tasks.read_due_feeds() == 3
        assert sorted(requests) == ["/epss.csv.gz", "/gone.json", "/kev.json?token=secret"]
        with TestCase.captureOnCommitCallbacks(execute=True):
            assert tasks.read_due_feeds() == 0
            assert tasks.read_feed(kev.pk) == {"feed": kev.pk, "read": False}
        assert len(requests) == 3

    (kev_run,) = FeedRun.objects.filter(feed=kev)
    assert kev_run.source == f"{base}/kev.json"  # the token is not shown
    assert (kev_run.state, kev_run.rows, kev_run.alerts_new) == (RunState.DONE, KEV_ENTRIES, 2)
    assert [a.hostname for a in software_alerts()] == ["old-webp", "other-old-webp"]
    (epss_run,) = FeedRun.objects.filter(feed=epss)
    assert (epss_run.state, epss_run.rows, epss_run.errors) == (RunState.DONE, EPSS_ROWS, 0)
    # Read before or after the alerts were raised, the scores reach them.
    assert set(software_alerts().values_list("epss", flat=True)) == {0.46711}
    (failed,) = FeedRun.objects.filter(feed=missing)
    assert failed.state == RunState.FAILED
    assert "answered 404" in failed.failure
    # Due again once its interval has passed.
    Feed.objects.filter(pk=missing.pk).update(
        last_run_at=timezone.now() - dt.timedelta(minutes=missing.interval_minutes + 1)
    )
    assert [feed.name for feed in Feed.objects.all() if tasks.is_due(feed, timezone.now())] == [
        "kev-mirror"
    ]
    assert ImportRun.objects.filter(requested_by="earlywarning:kev").count() == 1


def test_a_download_that_is_not_the_catalogue_is_refused_whole(world, tmp_path):
    """An http answer that is not the catalogue is refused whole, with its reason."""
    (tmp_path / "kev.json").write_bytes(b"<html>maintenance</html>")
    with (
        serving(tmp_path) as (base, _requests),
        pytest.raises(CommandError, match="cannot be imported: unrecognised format"),
    ):
        call_command("earlywarning", "import", f"{base}/kev.json", "--feed", "kev")
    assert not KevEntry.objects.filter(cve=WEBP_CVE).exists()
    assert not software_alerts().exists()


def test_remediation_without_a_fix_says_what_to_do_meanwhile():
    finding = {
        "host": "web-01",
        "package": "libwebp",
        "fixed_version": None,
        "advisory": WEBP,
        "cve": WEBP_CVE,
        "kev": {"kev_patch_days": 7, "due": "2023-09-20"},
    }
    texts = software.remediation(finding)
    assert texts["en"].startswith("No fix for CVE-2023-4863 in libwebp on web-01")
    assert "web-01" in texts["ja"]
    assert texts["ja"] != texts["en"]
    # Without a released fix the days count from the listing.
    assert software.kev_due_date(None, dt.date(2026, 1, 10), 7) == dt.date(2026, 1, 17)
    # Listed long after its fix: due the day it was listed.
    assert software.kev_due_date(dt.date(2025, 1, 1), dt.date(2026, 1, 10), 7) == dt.date(
        2026, 1, 10
    )
