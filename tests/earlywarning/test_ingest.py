"""Importing network reports: rows matched to verified assets become alerts, de-duplicated across
days; unverified claims and other organisations' addresses raise nothing; overlapping claims go
to the scheme owner; bad rows are reported by file:line and the rest is imported; the command
line reads files, folders and a URL served by a real HTTP server."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from mamori.audit.models import AuditEvent
from mamori.earlywarning import alerts, feeding, registry
from mamori.earlywarning.models import (
    Alert,
    AlertState,
    AssetOverlap,
    FeedRun,
    Observation,
    RunState,
)
from tests.datafiles import DATA

pytestmark = pytest.mark.django_db

REPORTS = DATA / "earlywarning" / "shadowserver"
HOSTILE = DATA / "earlywarning" / "hostile"


@pytest.fixture(autouse=True)
def _documentation_assets(settings):
    settings.EARLYWARNING_DOCUMENTATION_ASSETS = True
    with translation.override("en"):
        yield


def claim(world, organisation, kind, value, *, verified=True, **options):
    admin = world.admin if organisation == world.bank else world.other_admin
    asset = registry.register(
        admin, world.access(admin), organisation, kind=kind, value=value, **options
    )
    if verified:
        asset = registry.approve(
            world.owner, world.access(world.owner), asset, reason="RIR checked"
        )
    return asset


@pytest.fixture
def claims(world):
    return {
        "bank": claim(world, world.bank, "cidr", "192.0.2.0/25"),
        "bank_host": claim(world, world.bank, "ip", "192.0.2.10"),
        "other": claim(world, world.other_bank, "cidr", "198.51.100.0/25"),
        "pending": claim(world, world.other_bank, "cidr", "203.0.113.0/24", verified=False),
    }


def import_file(name: str, path) -> list[FeedRun]:
    return feeding.import_location(name, str(path))


def test_a_report_raises_one_alert_per_observation_of_a_verified_asset(world, claims):
    (run,) = import_file("scan_rdp", REPORTS / "scan_rdp.csv")
    assert (run.state, run.rows, run.matched, run.alerts_new, run.errors) == (
        RunState.DONE, 3, 3, 3, 0,
    )  # fmt: skip
    bank = Alert.objects.filter(organisation=world.bank).order_by("port")
    assert [(a.ip, a.port, a.type, a.category, a.state) for a in bank] == [
        ("192.0.2.10", 3389, "exposure", "scan_rdp", "new"),
        ("192.0.2.11", 3390, "exposure", "scan_rdp", "new"),
    ]
    # The narrowest verified claim is the alert's asset; the row is kept whole as evidence.
    first = bank[0]
    assert first.asset == claims["bank_host"]
    assert bank[1].asset == claims["bank"]
    assert first.evidence["rdp_protocol"] == "RDP"
    assert first.evidence["hostname"] == "rdp-gw.bank-a.example"
    assert first.first_seen == dt.datetime(2026, 11, 20, 0, 12, 45, tzinfo=dt.UTC)
    assert first.control == "firewalls"
    assert (first.reliability, first.credibility, first.tlp) == ("B", 2, "amber")
    # Exposure: 24 hours to acknowledge by default.
    assert (
        dt.timedelta(hours=23, minutes=59)
        < first.due_at - first.created_at
        < dt.timedelta(hours=24, minutes=1)
    )
    other = Alert.objects.get(organisation=world.other_bank)
    assert (other.ip, other.asset) == ("198.51.100.23", claims["other"])
    assert Observation.objects.filter(run=run).count() == 3
    assert AuditEvent.objects.filter(action="earlywarning.alert.raise").count() == 3


def test_unverified_claims_raise_nothing(world, claims):
    import_file("scan_http_vulnerable", REPORTS / "scan_http_vulnerable.csv")
    assert not Alert.objects.filter(ip__startswith="203.0.113.").exists()


def test_the_same_report_twice_changes_nothing_and_the_next_day_moves_last_seen(world, claims):
    import_file("scan_rdp", REPORTS / "daily" / "2026-11-20-scan_rdp.csv")
    before = {a.pk: (a.last_seen, a.times_seen) for a in Alert.objects.all()}
    audit_before = AuditEvent.objects.count()
    (again,) = import_file("scan_rdp", REPORTS / "daily" / "2026-11-20-scan_rdp.csv")
    assert (again.alerts_new, again.alerts_updated, again.matched) == (0, 0, 3)
    assert {a.pk: (a.last_seen, a.times_seen) for a in Alert.objects.all()} == before
    assert AuditEvent.objects.count() == audit_before
    (next_day,) = import_file("scan_rdp", REPORTS / "daily" / "2026-11-21-scan_rdp.csv.gz")
    # 198.51.100.24 is new (the other bank's); two are seen again.
    assert (next_day.alerts_new, next_day.alerts_updated) == (1, 2)
    seen_again = Alert.objects.get(ip="192.0.2.10")
    assert seen_again.times_seen == 2
    assert seen_again.last_seen == dt.datetime(2026, 11, 21, 0, 11, 58, tzinfo=dt.UTC)
    assert seen_again.first_seen == dt.datetime(2026, 11, 20, 0, 12, 45, tzinfo=dt.UTC)
    assert Alert.objects.get(ip="192.0.2.11").times_seen == 1  # not in the second report


def test_a_closed_alert_seen_again_reopens(world, claims):
    import_file("scan_rdp", REPORTS / "daily" / "2026-11-20-scan_rdp.csv")
    alert = Alert.objects.get(ip="192.0.2.10")
    alerts.change_state(world.admin, world.access(world.admin), alert, AlertState.CLOSED)
    # Closed on the day of the first report: the next day's report sees it again.
    Alert.objects.filter(pk=alert.pk).update(closed_at=dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC))
    import_file("scan_rdp", REPORTS / "daily" / "2026-11-21-scan_rdp.csv.gz")
    alert.refresh_from_db()
    assert (alert.state, alert.reopened, alert.closed_at) == (AlertState.NEW, 1, None)
    assert AuditEvent.objects.filter(action="earlywarning.alert.reopen").count() == 1


def test_overlapping_claims_go_to_the_scheme_owner_not_to_either_organisation(world, claims):
    shared = claim(world, world.other_bank, "range", "192.0.2.8-192.0.2.15")
    assert AssetOverlap.objects.filter(asset=shared).count() == 2  # the /25 and the single address
    import_file("scan_rdp", REPORTS / "scan_rdp.csv")
    assert not Alert.objects.filter(ip__in=["192.0.2.10", "192.0.2.11"]).exists()
    assert Alert.objects.filter(ip="198.51.100.23").exists()
    # Each row counts once on each overlap it falls in: .10 in both of the bank's claims, .11
    # in the /25 only.
    counted = dict(AssetOverlap.objects.values_list("other_id", "observations"))
    assert counted[claims["bank"].pk] == 2
    assert counted[claims["bank_host"].pk] == 1


def test_an_incident_from_a_sinkhole_is_one_alert_for_every_connection(world, claims):
    import_file("event4_sinkhole", REPORTS / "event4_sinkhole.csv")
    (incident,) = Alert.objects.filter(type="incident", organisation=world.bank)
    assert (incident.ip, incident.port, incident.severity, incident.control) == (
        "192.0.2.50", None, "critical", "malware_protection",
    )  # fmt: skip
    assert incident.times_seen == 2
    assert incident.evidence["infection"] == "qakbot"
    # Incidents: 4 hours to acknowledge.
    assert incident.due_at - incident.created_at < dt.timedelta(hours=4, minutes=1)


def test_bad_rows_are_reported_by_line_and_the_rest_is_imported(world, claims, capsys):
    path = HOSTILE / "scan_exchange-malformed.csv"
    call_command("earlywarning", "import", str(path), "--feed", "scan_exchange")
    run = FeedRun.objects.get()
    assert run.state == RunState.DONE
    assert run.errors >= 8
    errors = capsys.readouterr().err.splitlines()
    assert errors[0].startswith(f"{path}:3: ")
    assert all(line.startswith(f"{path}:") for line in errors[: run.errors])
    imported = set(Alert.objects.values_list("ip", flat=True))
    assert "192.0.2.70" in imported
    assert "192.0.2.256" not in imported
    # The spreadsheet formula is kept as it came, as text.
    formula = Alert.objects.filter(hostname__startswith="=HYPERLINK").first()
    assert formula is None or formula.evidence["hostname"].startswith("=HYPERLINK")


@pytest.mark.parametrize(
    ("path", "feed", "words"),
    [
        (HOSTILE / "blocklist-no-ip-column.csv", "blocklist", "no 'ip' column"),
        (HOSTILE / "blocklist-header-only.csv", "blocklist", None),
        (REPORTS / "scan_rdp.csv", "no_such_report", "unknown"),
        (REPORTS / "missing.csv", "scan_rdp", "no such file"),
    ],
)
def test_unusable_reports_are_refused_with_one_line_and_exit_status_2(world, path, feed, words):
    if words is None:
        call_command("earlywarning", "import", str(path), "--feed", feed)
        assert FeedRun.objects.get().rows == 0
        return
    with pytest.raises(CommandError, match=words) as refused:
        call_command("earlywarning", "import", str(path), "--feed", feed)
    assert refused.value.returncode == 2
    assert not Alert.objects.exists()


@contextlib.contextmanager
def serving(folder):
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_command_line_reads_a_folder_and_a_url_and_lists_feeds_and_alerts(
    world, claims, capsys
):
    call_command("earlywarning", "import", str(REPORTS / "daily"), "--feed", "scan_rdp")
    assert FeedRun.objects.count() == 2
    with serving(REPORTS) as address:
        call_command(
            "earlywarning", "import", f"{address}/event4_sinkhole.csv", "--feed", "event4_sinkhole"
        )
    capsys.readouterr()
    call_command("earlywarning", "feeds", "--format", "json")
    feeds = {feed["name"]: feed for feed in json.loads(capsys.readouterr().out)}
    assert feeds["scan_rdp"]["state"] == "done"
    assert feeds["event4_sinkhole"]["matched"] == 3
    call_command("earlywarning", "alerts", str(world.bank.pk), "--format", "json")
    listed = json.loads(capsys.readouterr().out)
    assert {item["organisation"] for item in listed} == {world.bank.pk}
    assert {(item["type"], item["ip"], item["port"]) for item in listed} == {
        ("exposure", "192.0.2.10", 3389),
        ("exposure", "192.0.2.11", 3390),
        ("incident", "192.0.2.50", None),
    }
    for item in listed:
        assert {
            "organisation",
            "type",
            "state",
            "asset",
            "ip",
            "port",
            "first_seen",
            "last_seen",
        } <= set(item)
        dt.datetime.fromisoformat(item["first_seen"])
    with pytest.raises(CommandError, match="not a state"):
        call_command("earlywarning", "alerts", "--state", "sleepy")
