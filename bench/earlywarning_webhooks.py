"""Early-warning webhooks: 5,000 deliveries to a local HTTPS receiver, 10 % answered 500 at first.

Builds ``mamori_bench_webhooks`` (dropped and recreated, so the name must contain "bench") on
PostgreSQL: 100 organisations, each with an administrator and one webhook registered through
``endpoints.create_endpoint`` (the URL checked, the secret made), all pointing at one receiver:
the tests' HTTPS receiver (tests/earlywarning/receivers.py, a threaded server with a self-signed
certificate made by openssl) run in a **separate process**, so that it does not share this
process's interpreter lock. The receiver checks every request's ``X-Mamori-Signature`` itself
with ``hmac`` (as docs/earlywarning-webhooks.md tells receivers to) and answers 500 to the first
attempt of every delivery whose id is a multiple of 10, 200 otherwise.

Then, measured:

1. **raise**: 5,000 alerts (50 per organisation) raised with ``alerts.upsert`` and
   ``notify.alerts_raised`` in one transaction — the alerts, the 5,000 delivery rows with their
   JSON bodies and the outbox messages, committed;
2. **first attempts**: the outbox's beat (``deliver_outbox``, in-process as on the embedded
   default's worker) runs the five ``deliver_webhooks`` messages (1,000 deliveries each), each
   sending ``--concurrency`` deliveries at once with ``webhooks.deliver_async``;
3. **retries**: the 500 answered deliveries wait for their backoff (30 s less 0–25 % jitter; the
   bench waits in real time, or with ``--no-wait`` makes them due at once) and the retry beat
   (``retry_webhook_deliveries``) sends them again;

and checks that every delivery is delivered exactly once more than it failed, that the receiver
saw 5,500 requests with no bad signature, and each delivery's id delivered once. With
``--baseline N`` (default 500) it also sends N more deliveries one at a time (concurrency 1) for
comparison. Peak RSS is printed; results go to ``bench/results/earlywarning_webhooks.json``.

Run (PostgreSQL running on 127.0.0.1:5432; production mode, the loopback receiver allowed inside
this process only, as the tests allow it)::

    .venv/bin/python bench/earlywarning_webhooks.py [--deliveries 5000] [--concurrency 50]
        [--no-wait] [--baseline 500]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import benchdb  # bench/benchdb.py: the scripts run from bench/, which is on sys.path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

WORK = ROOT / "var" / "bench-webhooks"
RESULTS_FILE = ROOT / "bench" / "results" / "earlywarning_webhooks.json"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/mamori_bench_webhooks"
ORGANISATIONS = 100
FAILING_EVERY = 10  # delivery ids divisible by this are answered 500 at their first attempt
SIGNATURE_TOLERANCE = 300


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# --- the receiver, in its own process ---------------------------------------------------------


def _valid_signature(secret: str, header: str | None, body: bytes) -> bool:
    """The receiver's side of docs/earlywarning-webhooks.md, written from the document."""
    if not header:
        return False
    items = [item.strip().partition("=") for item in header.split(",")]
    stamps = [value for key, _sep, value in items if key == "t"]
    candidates = [value for key, _sep, value in items if key == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit() or not candidates:
        return False
    if abs(time.time() - int(stamps[0])) > SIGNATURE_TOLERANCE:
        return False
    expected = hmac.new(
        secret.encode(), stamps[0].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


def serve(cert: str, key: str, secrets, ready, stop, results) -> None:
    """The receiver process: serve until ``stop`` is set, then report what it saw."""
    from tests.earlywarning.receivers import Certificate, receiver

    lock = threading.Lock()
    attempts: dict[str, int] = {}
    stats = {"requests": 0, "answered_500": 0, "bad_signatures": 0, "delivered_ids": set()}
    known: dict[str, str] = {}

    def answer(request) -> int:
        if not known:
            known.update(dict(secrets))  # filled by the parent before the first delivery
        delivery = request.headers.get("x-mamori-delivery", "")
        good = _valid_signature(
            known.get(request.path, ""), request.headers.get("x-mamori-signature"), request.body
        )
        with lock:
            stats["requests"] += 1
            attempts[delivery] = attempts.get(delivery, 0) + 1
            if not good:
                stats["bad_signatures"] += 1
                return 400
            if int(delivery) % FAILING_EVERY == 0 and attempts[delivery] == 1:
                stats["answered_500"] += 1
                return 500
            stats["delivered_ids"].add(delivery)
            return 200

    with receiver(certificate=Certificate(Path(cert), Path(key)), answer=answer) as hook:
        ready.put(hook.origin)
        stop.wait()
    with lock:
        results.put(
            {
                "requests": stats["requests"],
                "answered_500": stats["answered_500"],
                "bad_signatures": stats["bad_signatures"],
                "delivered_ids": len(stats["delivered_ids"]),
                "most_attempts": max(attempts.values(), default=0),
            }
        )


# --- environment and database -----------------------------------------------------------------


def configure_environment() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mamori.settings")
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("SECRET_KEY", "bench-only-key-0123456789abcdefghijklmnopqrstuvwxyz")
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    os.environ.setdefault("MAMORI_VAR_DIR", str(WORK / "var"))
    os.environ.setdefault("MAMORI_LOG_LEVEL", "WARNING")
    # The outbox runs the tasks in this process, as the embedded default's worker does.
    os.environ.pop("CELERY_BROKER_URL", None)


def check_database() -> dict:
    return benchdb.check_database("mamori_bench_...")


def step(label: str, started: float) -> float:
    seconds = time.perf_counter() - started
    print(f"  {label}: {seconds:.2f} s", flush=True)
    return round(seconds, 3)


# --- the measurement --------------------------------------------------------------------------


def organisations_with_webhooks(count: int, origin: str, prefix: str) -> list:
    """``count`` organisations, each with an administrator and a webhook to ``origin``."""
    from mamori.accounts.models import User
    from mamori.earlywarning import endpoints
    from mamori.organisations.access import Access
    from mamori.organisations.models import Category, Membership, Organisation, Role

    made = []
    for number in range(count):
        organisation = Organisation.objects.create(
            name_ja=f"架空銀行{prefix}{number}",
            name_en=f"Fictitious Bank {prefix}{number}",
            category=Category.FINANCIAL_INSTITUTION,
        )
        admin = User.objects.create_user(
            username=f"admin-{prefix}{number}", email=f"admin-{prefix}{number}@example.jp"
        )
        Membership.objects.create(user=admin, organisation=organisation, role=Role.APPLICANT_ADMIN)
        endpoint, secret = endpoints.create_endpoint(
            admin, Access.for_user(admin), organisation, url=f"{origin}/hooks/{prefix}{number}"
        )
        made.append((organisation, endpoint, secret))
    return made


def raise_alerts(
    organisations: list, per_organisation: int, tag: str, timings: dict | None = None
) -> list[int]:
    """Exposure alerts on documentation addresses, raised and notified in one transaction;
    returns the delivery ids recorded (``timings`` gets the steps' seconds)."""
    timings = {} if timings is None else timings
    from django.db import transaction
    from django.utils import timezone

    from mamori.earlywarning import alerts, notify
    from mamori.earlywarning.models import WebhookDelivery

    now = timezone.now()
    sightings = []
    for index, (organisation, _endpoint, _secret) in enumerate(organisations):
        for number in range(per_organisation):
            address = f"198.51.100.{number % 250 + 1}"
            sightings.append(
                alerts.Sighting(
                    organisation_id=organisation.pk,
                    type="exposure",
                    key=alerts.alert_key("bench", tag, index, number),
                    category="scan_rdp",
                    seen_at=now - dt.timedelta(seconds=number),
                    severity="high",
                    control="firewalls",
                    ip=address,
                    port=3389 + number // 250,
                    hostname=f"rdp-{number}.bank-{index}.example",
                    evidence={"ip": address, "port": str(3389 + number // 250), "tag": "rdp"},
                )
            )
    before = set(WebhookDelivery.objects.values_list("pk", flat=True))
    with transaction.atomic():
        mark = time.perf_counter()
        upserted = alerts.upsert(sightings, feed=None, now=now)
        timings["upsert_s"] = round(time.perf_counter() - mark, 3)
        mark = time.perf_counter()
        notify.alerts_raised(upserted, now=now)
        timings["alerts_raised_s"] = round(time.perf_counter() - mark, 3)
        mark = time.perf_counter()
    timings["commit_s"] = round(time.perf_counter() - mark, 3)
    return sorted(set(WebhookDelivery.objects.values_list("pk", flat=True)) - before)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--no-wait", action="store_true", help="make the retries due at once (no backoff wait)"
    )
    parser.add_argument(
        "--baseline", type=int, default=500, help="deliveries sent one at a time, for comparison"
    )
    args = parser.parse_args(argv)
    if args.deliveries % ORGANISATIONS:
        parser.error(f"--deliveries must be a multiple of {ORGANISATIONS}")

    configure_environment()
    WORK.mkdir(parents=True, exist_ok=True)
    import django

    django.setup()
    database = check_database()

    from django.conf import settings
    from django.core.management import call_command
    from django.db.models import Count
    from django.test.utils import override_settings
    from django.utils import timezone
    from tests.earlywarning.receivers import tls_certificate

    from mamori.core.tasks import deliver_outbox
    from mamori.earlywarning import delivery
    from mamori.earlywarning.models import DeliveryState, WebhookDelivery
    from mamori.earlywarning.tasks import retry_webhook_deliveries

    print(f"database {database['NAME']}: dropped, created, migrated", flush=True)
    benchdb.recreate_database(database)
    call_command("migrate", interactive=False, verbosity=0)

    certificate = tls_certificate(Path(tempfile.mkdtemp(dir=WORK)))
    context = multiprocessing.get_context("spawn")
    manager = context.Manager()
    secrets = manager.dict()
    ready, results, stop = context.Queue(), context.Queue(), context.Event()
    server = context.Process(
        target=serve,
        args=(str(certificate.cert), str(certificate.key), secrets, ready, stop, results),
        daemon=True,
    )
    server.start()
    origin = ready.get(timeout=60)
    print(f"receiver (separate process) at {origin}", flush=True)

    report: dict = {
        "benchmark": "earlywarning_webhooks",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
        },
        "deliveries": args.deliveries,
        "concurrency": args.concurrency,
        "organisations": ORGANISATIONS,
    }
    # The receiver is on loopback: allowed in this process only, as in the tests (production
    # mode refuses MAMORI_WEBHOOK_ALLOW_LOOPBACK at start), its certificate trusted.
    with override_settings(WEBHOOK_ALLOW_LOOPBACK=True, WEBHOOK_CA_FILE=str(certificate.cert)):
        organisations = organisations_with_webhooks(ORGANISATIONS, origin, "m")
        baseline = organisations_with_webhooks(10, origin, "b") if args.baseline else []
        for _organisation, endpoint, secret in organisations + baseline:
            secrets[endpoint.url.removeprefix(origin)] = secret

        print(f"{args.deliveries} deliveries, {args.concurrency} at a time:", flush=True)
        mark = time.perf_counter()
        raising: dict = {}
        ids = raise_alerts(organisations, args.deliveries // ORGANISATIONS, "main", raising)
        report["raise_s"] = step(
            f"{len(ids)} alerts raised, deliveries recorded and queued (one commit)", mark
        )
        report["raise_steps_s"] = raising
        print(
            f"    alerts.upsert {raising['upsert_s']:.2f} s, notify.alerts_raised "
            f"{raising['alerts_raised_s']:.2f} s, commit {raising['commit_s']:.2f} s",
            flush=True,
        )
        assert len(ids) == args.deliveries, len(ids)

        import mamori.earlywarning.delivery as delivery_module

        delivery_module.CONCURRENCY = args.concurrency
        started = time.perf_counter()
        deliver_outbox()
        report["first_attempts_s"] = step("first attempts (the outbox's task messages)", started)
        first = WebhookDelivery.objects.filter(pk__in=ids)
        delivered_first = first.filter(state=DeliveryState.DELIVERED).count()
        failed = list(first.filter(state=DeliveryState.FAILED).values_list("next_attempt_at"))
        print(f"    delivered {delivered_first}, failed (500) {len(failed)}", flush=True)
        report["first_attempts"] = {"delivered": delivered_first, "failed": len(failed)}
        report["first_attempts_per_s"] = round(len(ids) / report["first_attempts_s"])

        latest_due = max((due for (due,) in failed), default=timezone.now())
        wait = max(0.0, (latest_due - timezone.now()).total_seconds())
        if args.no_wait:
            WebhookDelivery.objects.filter(state=DeliveryState.FAILED).update(
                next_attempt_at=timezone.now()
            )
            print("    retries made due at once (--no-wait)", flush=True)
            wait = 0.0
        else:
            print(f"    waiting {wait:.1f} s for the retries' backoff", flush=True)
            time.sleep(wait + 0.5)
        report["backoff_wait_s"] = round(wait, 1)
        mark = time.perf_counter()
        rounds = 0
        while WebhookDelivery.objects.filter(pk__in=ids, state=DeliveryState.FAILED).exists():
            retry_webhook_deliveries()
            rounds += 1
            if rounds > 5:
                break
        report["retries_s"] = step(f"retries ({rounds} beat run)", mark)
        report["total_s"] = round(time.perf_counter() - started, 2)

        states = dict(
            WebhookDelivery.objects.filter(pk__in=ids)
            .values_list("state")
            .annotate(count=Count("pk"))
        )
        attempts = dict(
            WebhookDelivery.objects.filter(pk__in=ids)
            .values_list("attempt")
            .annotate(count=Count("pk"))
        )
        report["states"] = states
        report["attempts"] = {str(key): value for key, value in sorted(attempts.items())}

        if args.baseline:
            baseline_ids = raise_alerts(baseline, args.baseline // len(baseline), "baseline")
            # The same receiver rule (ids that are multiples of 10 answered 500 first): their
            # retries are made due at once after the timed first attempts, to end delivered.
            mark = time.perf_counter()
            report_one = delivery.deliver_due(baseline_ids, concurrency=1, budget=3600)
            one_at_a_time = time.perf_counter() - mark
            report["baseline"] = {
                "deliveries": len(baseline_ids),
                "first_attempts_one_at_a_time_s": round(one_at_a_time, 2),
                "per_s": round(len(baseline_ids) / one_at_a_time),
                "delivered": report_one.delivered,
            }
            WebhookDelivery.objects.filter(pk__in=baseline_ids, state="failed").update(
                next_attempt_at=timezone.now()
            )
            delivery.deliver_due(baseline_ids, budget=3600)
            print(
                f"  baseline: {len(baseline_ids)} first attempts one at a time: "
                f"{one_at_a_time:.2f} s ({report['baseline']['per_s']}/s)",
                flush=True,
            )
            ids = ids + baseline_ids

    stop.set()
    seen = results.get(timeout=60)
    server.join(timeout=30)
    manager.shutdown()
    report["receiver"] = seen
    report["peak_rss_mib"] = round(peak_rss_mib())
    report["machine"]["load_average_at_end"] = [round(value, 2) for value in os.getloadavg()]
    all_delivered = WebhookDelivery.objects.filter(pk__in=ids, state=DeliveryState.DELIVERED)
    expected_500 = sum(1 for pk in ids if pk % FAILING_EVERY == 0)
    checks = {
        "every delivery delivered": all_delivered.count() == len(ids),
        "no bad signature": seen["bad_signatures"] == 0,
        "each id delivered once": seen["delivered_ids"] == len(ids),
        "requests = deliveries + first 500s": seen["requests"] == len(ids) + expected_500,
    }
    report["checks"] = checks
    print(
        f"\nAll {args.deliveries} delivered in {report['total_s']:.1f} s from the first attempt "
        f"(first attempts {report['first_attempts_s']:.1f} s = "
        f"{report['first_attempts_per_s']}/s; backoff wait {report['backoff_wait_s']:.1f} s; "
        f"retries {report['retries_s']:.1f} s); raise + record + queue {report['raise_s']:.1f} s",
        flush=True,
    )
    print(
        f"receiver: {seen['requests']} requests, {seen['answered_500']} answered 500, "
        f"{seen['bad_signatures']} bad signatures; peak RSS {report['peak_rss_mib']} MiB; "
        f"timeout {settings.WEBHOOK_TIMEOUT_SECONDS} s; load average "
        f"{report['machine']['load_average_at_start'][0]} at the start, "
        f"{report['machine']['load_average_at_end'][0]} at the end on {os.cpu_count()} CPUs",
        flush=True,
    )
    for label, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {label}", flush=True)
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
