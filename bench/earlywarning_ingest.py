"""Early-warning ingest benchmark: one network report of 1,000,000 rows (IPv4 and IPv6) against
100,000 verified prefixes and ranges and 20,000 verified domains, on PostgreSQL.

Builds ``mamori_bench_earlywarning`` (dropped and recreated, so the name must contain "bench")
with 500 fictitious organisations, their claims written with COPY in the shape
``registry.register`` + ``approve`` store, then imports a generated Shadowserver-shaped
``scan_rdp`` report (gzip, about 2 % of rows about a registered asset, some on the same
address and port on two days) with the real ``feeding.import_location``: reading, matching,
alert upsert, observations and audit entries. It prints the time, the rows per second, the
alerts raised and the peak RSS, and the ratio to a straightforward per-row ``ipaddress`` scan
of all prefixes measured on a sample. Targets (issue 11): < 60 s, peak RSS < 1 GB.

    make bench-earlywarning            # or: python bench/earlywarning_ingest.py [--rows N]
"""

from __future__ import annotations

import argparse
import gzip
import ipaddress
import json
import os
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/mamori_bench_earlywarning"
WORK = ROOT / "var" / "bench-earlywarning"
RESULTS_FILE = ROOT / "bench" / "results" / "earlywarning_ingest.json"
SEED = 20261207
HEADER = "timestamp,ip,port,hostname,tag,asn,geo,region,city,naics,sector\n"


def configure_environment() -> None:
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("SECRET_KEY", "bench-only-key-0123456789abcdefghijklmnopqrstuvwxyz")
    os.environ.setdefault("ALLOWED_HOSTS", "localhost")
    os.environ.setdefault("MAMORI_VAR_DIR", str(WORK / "var"))
    os.environ["MAMORI_EARLYWARNING_DOCUMENTATION_ASSETS"] = "1"
    os.environ["DJANGO_SETTINGS_MODULE"] = "mamori.settings"


def public_v4(rng: random.Random) -> int:
    while True:
        first = rng.randint(1, 223)
        if first not in (10, 100, 127, 169, 172, 192, 198, 203):
            return (first << 24) | rng.getrandbits(24)


def claims(rng: random.Random, prefixes: int, domains: int) -> tuple[list, list]:
    """Address claims (version, first, last, text kind, value) and domains, distinct."""
    addresses, seen = [], set()
    while len(addresses) < prefixes:
        if rng.random() < 0.7:
            length = rng.choice((20, 22, 24, 24, 24, 26, 28, 32))
            network = ipaddress.IPv4Network((public_v4(rng), length), strict=False)
            kind = "ip" if length == 32 else "cidr"
        else:
            length = rng.choice((32, 40, 48, 48, 56, 64))
            base = (0x2400 << 112) | rng.getrandbits(112)
            network = ipaddress.IPv6Network((base, length), strict=False)
            kind = "cidr"
        value = str(network.network_address) if kind == "ip" else str(network)
        if value in seen:
            continue
        seen.add(value)
        addresses.append(
            (
                network.version,
                int(network.network_address),
                int(network.broadcast_address),
                kind,
                value,
            )
        )
    names = [f"host{index}.org{index % 997}.example" for index in range(domains)]
    return addresses, names


def write_report(path: Path, rng: random.Random, addresses: list, names: list, rows: int) -> int:
    """A gzip scan_rdp report; returns how many rows fall inside a claim."""
    hits = 0
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1, newline="") as out:
        out.write(HEADER)
        for index in range(rows):
            day = 20 + (index % 2)
            if rng.random() < 0.02:
                version, first, last, _kind, _value = addresses[rng.randrange(len(addresses))]
                number = first + rng.randrange(min(last - first + 1, 1 << 16))
                hits += 1
                hostname = names[rng.randrange(len(names))] if rng.random() < 0.2 else ""
            else:
                version = 4 if rng.random() < 0.8 else 6
                number = public_v4(rng) if version == 4 else (0x2A00 << 112) | rng.getrandbits(112)
                hostname = ""
            address = (
                ipaddress.ip_address(number) if version == 6 else ipaddress.IPv4Address(number)
            )
            out.write(
                f"2026-11-{day} 0{index % 10}:00:00,{address},3389,{hostname},rdp,64500,JP,TOKYO,"
                "CHIYODA,522110,Banking\n"
            )
    return hits


def load_claims(addresses: list, names: list, organisations: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from mamori.earlywarning.models import Asset, address_hex
    from mamori.organisations.models import Category, Organisation

    Organisation.objects.bulk_create(
        [
            Organisation(
                name_ja=f"ベンチ機関{index}（架空）",
                name_en=f"Bench institution {index} (fictitious)",
                category=Category.OTHER,
            )
            for index in range(organisations)
        ]
    )
    ids = list(Organisation.objects.values_list("pk", flat=True))
    now = timezone.now().isoformat()
    table = Asset._meta.db_table
    columns = (
        "organisation_id, kind, value, include_subdomains, label, ip_version, first_hex, "
        "last_hex, asn, state, method, verified_at, reason, hoster_permission, "
        "verification_token, last_check_result, created_at, updated_at"
    )
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for index, (version, first, last, kind, value) in enumerate(addresses):
            copy.write_row(
                (ids[index % len(ids)], kind, value, False, "", version, address_hex(first),
                 address_hex(last), None, "verified", "approval", now, "bench", "", "", "", now, now)
            )  # fmt: skip
        for index, name in enumerate(names):
            copy.write_row(
                (ids[(index * 7) % len(ids)], "domain", name, index % 3 == 0, "", None, "", "",
                 None, "verified", "dns_txt", now, "", "", "mamori-verification=x", "found", now, now)
            )  # fmt: skip


def naive_ratio(addresses: list, report: Path, sample: int, index_seconds_per_row: float) -> dict:
    """Per row, every claim checked with ``ipaddress`` — the straightforward way."""
    networks = [
        ipaddress.ip_network(value)
        if kind == "cidr"
        else ipaddress.ip_network(value + ("/32" if version == 4 else "/128"))
        for version, _first, _last, kind, value in addresses
    ]
    rows = []
    with gzip.open(report, "rt", encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            rows.append(line.split(",")[1])
            if len(rows) == sample:
                break
    started = time.perf_counter()
    for text in rows:
        address = ipaddress.ip_address(text)
        [
            network
            for network in networks
            if address.version == network.version and address in network
        ]
    per_row = (time.perf_counter() - started) / sample
    return {
        "sample_rows": sample,
        "naive_ms_per_row": round(per_row * 1000, 3),
        "mamori_us_per_row": round(index_seconds_per_row * 1e6, 2),
        "ratio": round(per_row / index_seconds_per_row),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--prefixes", type=int, default=100_000)
    parser.add_argument("--domains", type=int, default=20_000)
    parser.add_argument("--organisations", type=int, default=500)
    parser.add_argument("--sample", type=int, default=100, help="rows of the naive scan")
    args = parser.parse_args(argv)
    configure_environment()
    WORK.mkdir(parents=True, exist_ok=True)
    import django

    django.setup()
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql" or "bench" not in database["NAME"]:
        raise SystemExit("DATABASE_URL must name a PostgreSQL database whose name contains 'bench'")
    from bench.fleet_rematch import recreate_database

    recreate_database(database)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    rng = random.Random(SEED)
    print(f"generating {args.prefixes:,} claims, {args.domains:,} domains, {args.rows:,} rows ...")
    addresses, names = claims(rng, args.prefixes, args.domains)
    report = WORK / "scan_rdp.csv.gz"
    hits = write_report(report, rng, addresses, names, args.rows)
    load_claims(addresses, names, args.organisations)
    print(f"  {hits:,} rows inside a claim; importing ...", flush=True)

    from mamori.earlywarning import feeding
    from mamori.earlywarning.models import Alert, Observation

    started = time.perf_counter()
    (run,) = feeding.import_location("scan_rdp", str(report))
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    alerts = Alert.objects.count()
    figures = {
        "rows": run.rows,
        "prefixes": args.prefixes,
        "domains": args.domains,
        "matched": run.matched,
        "alerts": alerts,
        "alerts_new": run.alerts_new,
        "alerts_updated": run.alerts_updated,
        "observations": Observation.objects.count(),
        "errors": run.errors,
        "seconds": round(seconds, 2),
        "rows_per_second": round(run.rows / seconds),
        "peak_rss_mb": round(peak_mb),
    }
    figures["naive"] = naive_ratio(addresses, report, args.sample, seconds / run.rows)
    print(json.dumps(figures, indent=1))
    print(
        f"\n{run.rows:,} rows in {seconds:.1f} s ({figures['rows_per_second']:,} rows/s; target "
        f"< 60 s), {alerts:,} alerts, peak RSS {peak_mb:.0f} MB (target < 1,024); the per-row "
        f"ipaddress scan is {figures['naive']['ratio']:,}x slower per row"
    )
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(figures, indent=1) + "\n")
    return 0 if seconds < 60 and peak_mb < 1024 else 1


if __name__ == "__main__":
    sys.exit(main())
