"""Early warning, a new KEV entry: 10,000 hosts on PostgreSQL, about 2,800 with the affected
package; time from the KEV import's commit to every alert stored (and handed to delivery).

Builds ``mamori_bench_ewsoft`` (dropped and recreated, so the name must contain "bench") with the
fleet of ``bench/fleet_rematch.py`` (its generator and loader: the real advisories, 10,000 hosts
in five organisations, openssl older than the current point release on ~30 % of them), then:

1. a new openssl advisory whose fix came out three days ago (not past the 14-day rule, so no
   alert yet) is imported with ``mamori advisories import``: the re-match lists it on the
   hosts that run an older openssl;
2. **measured**: CISA's catalogue with one entry more — that advisory's CVE — is read as the
   early-warning KEV feed (``feeding.import_location("kev", ...)``, what ``mamori earlywarning
   import --feed kev`` and the feed's task run). The clock starts at the import's commit (the
   ``advisories_changed`` signal is sent after it) and stops when ``software.raise_alerts`` has
   committed the alerts and handed them to delivery (``earlywarning.notify.alerts_raised``,
   called inside that transaction when it exists) — the moment that transaction commits. The
   embedded mode then sends the immediate e-mail in this process (a worker's task with a
   broker): the time until the raise returns, with it, is printed too; split into the re-match
   and the raise;
3. the same catalogue read again (nothing may change), and an EPSS file scoring the CVE
   (every alert enriched).

With ``--reuse`` the measurement runs again on the database of the last run (a new CVE each
time). Figures are printed and written to ``bench/results/earlywarning_kev.json``. Run it as
bench/README.md says; like the fleet benchmark it needs the in-process (eager) task mode.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))
# Before fleet_rematch's configure_environment() sets its own defaults.
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mamori_bench_ewsoft")
os.environ.setdefault("MAMORI_VAR_DIR", str(ROOT / "var" / "bench-ewsoft" / "var"))

import fleet_rematch as fleet  # noqa: E402

RESULTS_FILE = ROOT / "bench" / "results" / "earlywarning_kev.json"
WORK = ROOT / "var" / "bench-ewsoft"
TARGET_S = 2.0
FIX_AGE_DAYS = 3  # the new advisory's fix: recent, within the 14-day rule


def build(args) -> dict:
    """The fleet of bench/fleet_rematch.py on a fresh database."""
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from mamori.verification.models import Host, Vulnerability

    database = fleet.check_database()
    figures: dict = {}
    print(f"database {database['NAME']}: dropped, created, migrated", flush=True)
    fleet.recreate_database(database)
    mark = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    figures["migrate_s"] = fleet.step("migrate", mark)
    mark = time.perf_counter()
    fleet.import_advisories(fleet.advisory_paths("real"))
    figures["advisory_import_s"] = fleet.step("advisories imported", mark)
    mark = time.perf_counter()
    generator = fleet.Fleet(*fleet.base_evidence(), timezone.now())
    plans = list(generator.plans(args.hosts))
    figures["generate_s"] = fleet.step(f"{len(plans):,} host documents generated", mark)
    organisations = fleet.create_organisations(len(fleet.ORGANISATION_SHARES))
    mark = time.perf_counter()
    figures.update(fleet.load_fleet(plans, organisations, args.uploaded, args.workers))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    figures["fleet_load_s"] = fleet.step("fleet loaded (with VACUUM ANALYZE)", mark)
    figures["hosts"] = Host.objects.count()
    figures["debian12_hosts_with_older_openssl"] = generator.facts.old_openssl
    figures["vulnerability_rows"] = Vulnerability.objects.count()
    return figures


class Clock:
    """The import's commit (``advisories_changed`` is sent after it), the end of the re-match,
    and the end of the raise (its transaction committed, delivery handed the alerts)."""

    def __init__(self) -> None:
        self.commit_at = self.rematched_at = self.raised_at = self.committed_at = None
        self.rematch = None
        self.raised = None
        self._undo = []

    def __enter__(self) -> Clock:
        from mamori.advisories.signals import advisories_changed
        from mamori.earlywarning import software
        from mamori.verification.services import rematch

        send = advisories_changed.send

        def timed_send(*args, **kwargs):
            self.commit_at = time.perf_counter()
            return send(*args, **kwargs)

        advisories_changed.send = timed_send
        self._undo.append(lambda: delattr(advisories_changed, "send"))
        original_rematch = rematch.rematch_advisories

        def timed_rematch(*args, **kwargs):
            self.rematch = original_rematch(*args, **kwargs)
            self.rematched_at = time.perf_counter()
            return self.rematch

        rematch.rematch_advisories = timed_rematch
        self._undo.append(lambda: setattr(rematch, "rematch_advisories", original_rematch))
        original_raise = software.raise_alerts

        def timed_raise(*args, **kwargs):
            self.raised = original_raise(*args, **kwargs)
            self.raised_at = time.perf_counter()
            return self.raised

        software.raise_alerts = timed_raise
        self._undo.append(lambda: setattr(software, "raise_alerts", original_raise))
        from django.db import transaction

        from mamori.earlywarning import notify

        original_announce = notify.alerts_raised

        def timed_announce(*args, **kwargs):
            # The first callback after the raise's commit: the alerts and their deliveries are
            # stored and queued. What the embedded mode then runs in this process (the immediate
            # e-mail; a worker's job with a broker) is after the clock stops.
            if self.committed_at is None:
                transaction.on_commit(self._mark_commit)
            return original_announce(*args, **kwargs)

        notify.alerts_raised = timed_announce
        self._undo.append(lambda: setattr(notify, "alerts_raised", original_announce))
        return self

    def _mark_commit(self) -> None:
        self.committed_at = time.perf_counter()

    def __exit__(self, *exc) -> None:
        for undo in reversed(self._undo):
            undo()


def kev_catalogue(folder: Path, cve: str, today: dt.date) -> Path:
    """CISA's catalogue (the data's) with one entry added today for ``cve``."""
    document = json.loads((fleet.DATA / "kev" / "known_exploited_vulnerabilities.json").read_text())
    document["vulnerabilities"].append(
        {
            "cveID": cve,
            "vendorProject": "OpenSSL",
            "product": "OpenSSL",
            "vulnerabilityName": "OpenSSL bench vulnerability",
            "dateAdded": today.isoformat(),
            "shortDescription": "A vulnerability made up for the benchmark.",
            "requiredAction": "Apply mitigations per vendor instructions.",
            "dueDate": (today + dt.timedelta(days=21)).isoformat(),
            "knownRansomwareCampaignUse": "Unknown",
            "notes": "",
            "cwes": [],
        }
    )
    document["count"] = len(document["vulnerabilities"])
    path = folder / "known_exploited_vulnerabilities.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def run_measurement() -> dict:
    from django.db.models import Count
    from django.utils import timezone

    from mamori.advisories import services as advisory_services
    from mamori.advisories.models import Advisory
    from mamori.audit.models import AuditEvent
    from mamori.core.models import OutboxMessage
    from mamori.earlywarning import feeding
    from mamori.earlywarning.models import Alert
    from mamori.verification.models import Host, HostTarget, Vulnerability

    try:
        from mamori.earlywarning import notify

        hook = "alerts_raised" if hasattr(notify, "alerts_raised") else None
    except ImportError:
        hook = None
    serial = 99100 + Advisory.objects.filter(osv_id__startswith="MAMORI-BENCH-KEV-").count()
    cve = f"CVE-2026-{serial}"
    advisory_id = f"MAMORI-BENCH-KEV-{cve}-openssl"
    today = timezone.localdate()
    published = timezone.now().replace(microsecond=0) - dt.timedelta(days=FIX_AGE_DAYS)
    record = fleet.new_advisory(advisory_id, cve, "openssl", fleet.OPENSSL_NEW_FIX, published)
    WORK.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="kev-", dir=WORK))
    (folder / "osv").mkdir()
    (folder / "osv" / f"{advisory_id}.json").write_text(json.dumps(record), encoding="utf-8")

    # 1. The advisory, not past the deadline: listed on the hosts, no alert.
    mark = time.perf_counter()
    fleet.import_advisories([folder / "osv"])
    setup_s = time.perf_counter() - mark
    latest = Host.objects.values("latest_evaluation")
    listing = Vulnerability.objects.filter(advisory=advisory_id, evaluation_id__in=latest)
    hosts_listing = listing.count()
    overdue = listing.filter(overdue=True).count()
    with_package = (
        HostTarget.objects.filter(target__names__family="Debian", target__names__name="openssl")
        .values("host")
        .distinct()
        .count()
    )
    alerts_before = Alert.objects.filter(cve=cve).count()
    print(
        f"advisory {advisory_id} (fix {FIX_AGE_DAYS} days old): {hosts_listing:,} of "
        f"{Host.objects.count():,} hosts list it ({with_package:,} have openssl; {overdue} overdue,"
        f" {alerts_before} alerts) — imported and re-matched in {setup_s:.2f} s",
        flush=True,
    )

    # Every organisation has a webhook endpoint (a documentation address: queued deliveries are
    # only recorded here, never sent), so the measured path queues one delivery per alert.
    from mamori.earlywarning.models import WebhookDelivery, WebhookEndpoint
    from mamori.organisations.models import Organisation

    for organisation_id in (
        Organisation.objects.filter(hosts__isnull=False).distinct().values_list("pk", flat=True)
    ):
        WebhookEndpoint.objects.get_or_create(
            organisation_id=organisation_id,
            url=f"https://192.0.2.1/bench/{organisation_id}",
            defaults={"secret": "bench-secret", "enabled": True},
        )
    deliveries_before = WebhookDelivery.objects.count()

    # 2. Measured: the KEV feed with that CVE added.
    kev_file = kev_catalogue(folder, cve, today)
    advisory_services.load_index()  # a long-lived worker holds the index already
    audit_before = AuditEvent.objects.count()
    outbox_before = OutboxMessage.objects.count()
    with Clock() as clock:
        started = time.perf_counter()
        (run,) = feeding.import_location("kev", str(kev_file))
        ended = time.perf_counter()
    if clock.commit_at is None or clock.raised_at is None or clock.committed_at is None:
        sys.exit("the KEV import sent no signal, or no alerts were raised")
    run.refresh_from_db()
    alerts = Alert.objects.filter(cve=cve, type="software_vulnerability")
    stored = alerts.count()
    by_organisation = dict(
        alerts.values_list("organisation_id")
        .annotate(n=Count("pk"))
        .values_list("organisation_id", "n")
    )
    figures = {
        "cve": cve,
        "advisory": advisory_id,
        "hosts": Host.objects.count(),
        "hosts_with_openssl": with_package,
        "hosts_listing_the_advisory": hosts_listing,
        "alerts_stored": stored,
        "alerts_new": clock.raised.new,
        "alerts_kev": alerts.filter(kev=True, severity="critical").count(),
        "alerts_by_organisation": by_organisation,
        "audit_entries_added": AuditEvent.objects.count() - audit_before,
        "outbox_messages_added": OutboxMessage.objects.count() - outbox_before,
        "webhook_deliveries_queued": WebhookDelivery.objects.count() - deliveries_before,
        "delivery_hook": hook or "none (earlywarning.notify not installed)",
        "feed_run": {
            "rows": run.rows,
            "matched": run.matched,
            "alerts_new": run.alerts_new,
            "errors": run.errors,
        },
        "import_until_commit_s": round(clock.commit_at - started, 3),
        "commit_to_rematched_s": round(clock.rematched_at - clock.commit_at, 3),
        "rematched_to_alerts_stored_s": round(clock.committed_at - clock.rematched_at, 3),
        "commit_to_alerts_stored_s": round(clock.committed_at - clock.commit_at, 3),
        # Until the raise returned: with the immediate e-mail the embedded mode sends in-process.
        "commit_to_raise_returned_s": round(clock.raised_at - clock.commit_at, 3),
        "whole_command_s": round(ended - started, 3),
        "rematch_split": {
            step.replace(" ", "_") + "_s": round(value, 4)
            for step, value in clock.rematch.timings.items()
        },
        "target_s": TARGET_S,
    }
    print(
        f"KEV entry {cve}: commit → {stored:,} alerts stored "
        f"{figures['commit_to_alerts_stored_s']} s (target < {TARGET_S} s): re-match "
        f"{figures['commit_to_rematched_s']} s, raise {figures['rematched_to_alerts_stored_s']} s"
        f"; until the raise returned, with the embedded mode's e-mail sent in-process "
        f"{figures['commit_to_raise_returned_s']} s; import until commit "
        f"{figures['import_until_commit_s']} s, whole command "
        f"{figures['whole_command_s']} s\n"
        f"    {hosts_listing:,} hosts list the advisory, {stored:,} alerts ({figures['alerts_kev']:,}"
        f" KEV, critical) in {len(by_organisation)} organisations; {figures['audit_entries_added']:,}"
        f" audit entries; delivery hook: {figures['delivery_hook']}, "
        f"{figures['webhook_deliveries_queued']:,} webhook deliveries and "
        f"{figures['outbox_messages_added']:,} outbox messages queued\n"
        f"    re-match split: {json.dumps(figures['rematch_split'])}",
        flush=True,
    )

    # 3. The same catalogue again, then an EPSS file scoring the CVE.
    snapshot = list(alerts.order_by("pk").values_list("pk", "last_seen", "times_seen"))
    mark = time.perf_counter()
    (again,) = feeding.import_location("kev", str(kev_file))
    again_s = time.perf_counter() - mark
    again.refresh_from_db()
    unchanged = list(alerts.order_by("pk").values_list("pk", "last_seen", "times_seen")) == snapshot
    figures["read_again"] = {
        "seconds": round(again_s, 3),
        "alerts_new": again.alerts_new,
        "alerts_updated": again.alerts_updated,
        "alerts_unchanged": unchanged,
    }
    print(
        f"the same catalogue again: {again_s:.2f} s, {again.alerts_new} new, "
        f"{again.alerts_updated} seen again, alerts unchanged: {unchanged}",
        flush=True,
    )
    epss = folder / f"epss_scores-{today}.csv"
    epss.write_text(
        f"#model_version:v2025.03.14,score_date:{today}T00:00:00+0000\n"
        "cve,epss,percentile\n"
        f"{cve},0.91234,0.99876\n",
        encoding="utf-8",
    )
    mark = time.perf_counter()
    (scored,) = feeding.import_location("epss", str(epss))
    epss_s = time.perf_counter() - mark
    figures["epss"] = {
        "seconds": round(epss_s, 3),
        "alerts_with_score": scored.matched,
        "alerts_enriched": scored.alerts_updated,
    }
    print(
        f"EPSS file scoring {cve}: {epss_s:.2f} s, {scored.alerts_updated:,} alerts enriched",
        flush=True,
    )
    shutil.rmtree(folder)
    if stored != hosts_listing or clock.raised.new != stored or not unchanged:
        sys.exit("the alerts do not match the hosts that list the advisory")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--uploaded", type=int, default=20, help="hosts through accept_upload")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--reuse", action="store_true", help="measure on the last run's data")
    args = parser.parse_args(argv)

    fleet.configure_environment()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    report: dict = {
        "benchmark": "earlywarning_kev",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if args.reuse:
        database = fleet.check_database()
        call_command("migrate", interactive=False, verbosity=0)
        report["load"] = {"reused": database["NAME"]}
    else:
        report["load"] = build(args)
    load_before = os.getloadavg()
    report["kev"] = run_measurement()
    load_after = os.getloadavg()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
    report["machine"] = {
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "python": platform.python_version(),
        "postgresql": server,
    }
    print(
        f"load average (1 min) before/after measuring: {load_before[0]:.2f} / "
        f"{load_after[0]:.2f} on {os.cpu_count()} CPUs"
    )
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n")
    print(f"results written to {RESULTS_FILE.relative_to(ROOT)}")
    met = report["kev"]["commit_to_alerts_stored_s"] < TARGET_S
    print(f"target < {TARGET_S} s: {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
