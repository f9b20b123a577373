"""Advisory import at scale: 100,000 OSV records into PostgreSQL.

Generates 100,000 OSV records as variants of the real ones in tests/data/osv or
$MAMORI_BENCH_DATA/osv (PyPI, Debian 12 and Ubuntu: new ids, versions shifted, dates moved, half
of them under new package names) and writes them twice: as OSV's per-ecosystem ``all.zip``
layout and as a directory tree. Then, each in its own process as an operator would run it:

1. ``mamori advisories import --quiet osv-100k.zip`` into a fresh database: wall time, records/s
   and the importing process's peak RSS (target: under 500 MB);
2. the same command again (idempotent: every record "unchanged");
3. ``mamori advisories import --quiet osv-100k/`` (the directory; also unchanged);
4. ``load_index()`` in a fresh process: the cold build of the matching index from the database,
   and the warm (cached) call after it.

The database (``mamori_bench_adv`` by default, from ``DATABASE_URL``) is dropped and recreated,
so its name must contain "bench". The generated set stays in ``var/bench-adv/`` and the
database keeps the imported advisories, for the matching benchmark to reuse (bench/README.md).
Results also go to ``bench/results/advisories_import.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The real data: the subset vendored for the tests, or a full copy in the same layout named by
# MAMORI_BENCH_DATA (bench/README.md, "Data").
DATA = Path(os.environ.get("MAMORI_BENCH_DATA") or ROOT / "tests" / "data")
OUTPUT = ROOT / "var" / "bench-adv"
ZIP_FILE = OUTPUT / "osv-100k.zip"
DIRECTORY = OUTPUT / "osv-100k"
RESULTS_FILE = ROOT / "bench" / "results" / "advisories_import.json"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/mamori_bench_adv"
RSS_TARGET_MB = 500
MAMORI = Path(sys.executable).parent / "mamori"
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


# --- generating the records -------------------------------------------------------------------


def real_records() -> list[dict]:
    paths = sorted((DATA / "osv").rglob("*.json"))
    if not paths:
        sys.exit(f"no OSV records under {DATA / 'osv'}")
    return [json.loads(path.read_text(encoding="utf-8")) for path in paths]


def shift_version(version: str, step: int) -> str:
    """Move the last number of a version up by ``step`` ("1.2+deb12u1" → "1.2+deb12u4");
    "0" (introduced at the beginning) stays."""
    if version == "0":
        return version
    return _LAST_NUMBER.sub(lambda match: str(int(match.group(1)) + step), version, count=1)


def shift_time(text: str, days: int) -> str:
    moment = datetime.fromisoformat(text).astimezone(UTC) + timedelta(days=days)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")  # years < 1000 too


def variant(record: dict, step: int) -> dict:
    """Variant ``step`` of a real record: a new id, versions shifted, dates moved ``step`` days;
    odd steps also rename the packages, so the index has more keys than the real data."""
    copy = json.loads(json.dumps(record))
    copy["id"] = f"{record['id']}-B{step:02d}"
    for key in ("modified", "published", "withdrawn"):
        if key in copy:
            copy[key] = shift_time(copy[key], step)
    for affected in copy.get("affected") or []:
        if step % 2 and "package" in affected:
            affected["package"]["name"] = f"{affected['package']['name']}-b{step}"
        for item in affected.get("ranges") or []:
            if item.get("type") == "GIT":
                continue
            for event in item.get("events") or []:
                for kind, version in event.items():
                    event[kind] = shift_version(version, step)
        if "versions" in affected:
            affected["versions"] = [shift_version(v, step) for v in affected["versions"]]
    return copy


def generate(count: int) -> Counter:
    """Write ``count`` variants to the zip and the directory; returns records per ecosystem."""
    records = real_records()
    if DIRECTORY.exists():
        shutil.rmtree(DIRECTORY)
    DIRECTORY.mkdir(parents=True)
    ecosystems: Counter = Counter()
    with zipfile.ZipFile(ZIP_FILE, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for number in range(count):
            record = variant(records[number % len(records)], number // len(records) + 1)
            family = record["affected"][0]["package"]["ecosystem"].split(":")[0]
            ecosystems[family] += 1
            text = json.dumps(record, ensure_ascii=False)
            archive.writestr(f"{record['id']}.json", text)
            folder = DIRECTORY / family.lower()
            folder.mkdir(exist_ok=True)
            (folder / f"{record['id']}.json").write_text(text, encoding="utf-8")
    return ecosystems


# --- database and processes -------------------------------------------------------------------


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    env.setdefault("SECRET_KEY", "bench-only-key-0123456789abcdefghijklmnopqrstuvwxyz")
    env.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    env.setdefault("MAMORI_VAR_DIR", str(OUTPUT / "var"))
    env["MAMORI_LOG_LEVEL"] = "WARNING"
    return env


def recreate_database(url: str) -> str:
    import dj_database_url
    import psycopg
    from psycopg import sql

    database = dj_database_url.parse(url)
    if database["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("The benchmark needs PostgreSQL: DATABASE_URL=postgres://.../mamori_bench_adv")
    name = database["NAME"]
    if "bench" not in name:
        sys.exit(f"Refusing to drop database {name!r}: its name must contain 'bench'.")
    params = {
        "dbname": "postgres",
        "user": database.get("USER"),
        "password": database.get("PASSWORD"),
        "host": database.get("HOST"),
        "port": database.get("PORT"),
    }
    with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def run_child(arguments: list[str], env: dict[str, str]) -> dict:
    """Run one child process: its wall time, exit status, output, and its own peak RSS (from
    ``wait4``, so earlier children such as ``migrate`` do not count)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(arguments, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return {
            "seconds": round(seconds, 2),
            "exit": process.returncode,
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),  # the child's own CPU
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: ru_maxrss is in KiB
            "stdout": out.read().decode(errors="replace").strip(),
            "stderr": err.read().decode(errors="replace").strip()[-2000:],
        }


LOAD_INDEX = """
import json, resource, time, django
django.setup()
from mamori.advisories.services import load_index
started, cpu = time.perf_counter(), time.process_time()
index = load_index()
cold, cold_cpu = time.perf_counter() - started, time.process_time() - cpu
started = time.perf_counter()
again = load_index()
warm = time.perf_counter() - started
print(json.dumps({"advisories": len(index), "cold_seconds": round(cold, 2),
                  "cold_cpu_seconds": round(cold_cpu, 2),
                  "warm_ms": round(warm * 1000, 2), "same_object": again is index}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument(
        "--reuse-data", action="store_true", help="keep var/bench-adv/ from the last run"
    )
    options = parser.parse_args()
    env = environment()
    env.setdefault("DJANGO_SETTINGS_MODULE", "mamori.settings")

    if options.reuse_data and ZIP_FILE.exists() and DIRECTORY.exists():
        print(f"reusing {ZIP_FILE} and {DIRECTORY}")
        ecosystems = None
    else:
        started = time.perf_counter()
        ecosystems = generate(options.records)
        print(
            f"generated {options.records:,} OSV records in {time.perf_counter() - started:.1f} s: "
            + ", ".join(f"{family} {count:,}" for family, count in sorted(ecosystems.items()))
        )
    print(
        f"  zip {ZIP_FILE} ({ZIP_FILE.stat().st_size / 1024 / 1024:.0f} MB), directory {DIRECTORY}"
    )

    name = recreate_database(env["DATABASE_URL"])
    migrate = run_child([str(MAMORI), "migrate", "--noinput", "-v", "0"], env)
    if migrate["exit"] != 0:
        sys.exit(f"migrate failed: {migrate['stderr']}")
    print(f"database {name} created and migrated")

    import_command = [str(MAMORI), "advisories", "import", "--quiet"]
    results: dict = {"records": options.records, "ecosystems": ecosystems, "database": name}
    for label, path in (
        ("first_import_zip", ZIP_FILE),
        ("second_import_zip", ZIP_FILE),
        ("import_directory", DIRECTORY),
    ):
        measured = run_child([*import_command, str(path)], env)
        if measured["exit"] != 0:
            sys.exit(f"{label} failed ({measured['exit']}): {measured['stderr']}")
        measured["records_per_second"] = round(options.records / measured["seconds"])
        results[label] = measured
        print(
            f"{label}: {measured['seconds']:.1f} s ({measured['cpu_seconds']:.1f} s CPU), "
            f"{measured['records_per_second']:,} records/s, peak RSS {measured['peak_rss_mb']} MB"
            f"\n  {measured['stdout']}"
        )

    loaded = run_child([sys.executable, "-c", LOAD_INDEX], env)
    if loaded["exit"] != 0:
        sys.exit(f"load_index failed: {loaded['stderr']}")
    results["load_index"] = {**json.loads(loaded["stdout"]), "peak_rss_mb": loaded["peak_rss_mb"]}
    print(
        f"load_index(): {results['load_index']['advisories']:,} advisories, cold "
        f"{results['load_index']['cold_seconds']} s ({results['load_index']['cold_cpu_seconds']} s "
        f"CPU), warm {results['load_index']['warm_ms']} ms, "
        f"process peak RSS {loaded['peak_rss_mb']} MB"
    )

    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    peak = max(results[label]["peak_rss_mb"] for label in ("first_import_zip", "second_import_zip"))
    if peak >= RSS_TARGET_MB:
        sys.exit(f"peak RSS {peak} MB is over the {RSS_TARGET_MB} MB target")
    print(f"peak RSS of the imports {peak} MB < {RSS_TARGET_MB} MB: target met")


if __name__ == "__main__":
    main()
