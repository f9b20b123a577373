"""Vulnerability matching benchmark: this machine's dpkg status against >= 100,000 advisories.

Builds an ``AdvisoryIndex`` from the real OSV records in tests/data/osv or
$MAMORI_BENCH_DATA/osv (Debian 12, Ubuntu, PyPI) plus generated ones, reads this machine's
``/var/lib/dpkg/status`` with the agent's own dpkg reader, and times:

- the index build (filing the records; nothing is parsed yet),
- a cold match (a fresh index and an empty version cache: every bucket the host touches is
  compiled and every version string parsed), median of ``--cold-runs``,
- a warm match (index compiled, version cache warm), median and p95 of ``--runs``,

and prints the number of vulnerabilities. Target: warm < 100 ms. Pure Python, no database.
Run: ``.venv/bin/python bench/matching.py`` (options: ``--help``). Results also go to
``bench/results/matching.json``.

The generated records (see ``generate``) are realistic in shape: DEBIAN-CVE-like records for
this host's own source packages with one affected entry each for Debian 11, 12 and 13
(the Debian 12 fix is mostly at or below the installed version, a few above it, a few unfixed),
USN-like records for the same source names on three Ubuntu releases, PyPI variants of the real
PYSEC records, and Debian 12 records for packages the host does not have. ``--osv PATH`` loads a
directory of OSV JSON or an OSV all.zip instead of generating (e.g. the 100k set that
bench/advisories_import.py writes to var/bench-adv/).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from mamori.advisories import osv, records, versions  # noqa: E402
from mamori.advisories.matching import AdvisoryIndex, host_targets, match_evidence  # noqa: E402
from mamori_agent.collect.packages import parse_dpkg_status  # noqa: E402
from mamori_agent.collect.system import parse_os_release  # noqa: E402

# The real data: the subset vendored for the tests, or a full copy in the same layout named by
# MAMORI_BENCH_DATA (bench/README.md, "Data").
DATA = Path(os.environ.get("MAMORI_BENCH_DATA") or ROOT / "tests" / "data")
RESULTS_FILE = ROOT / "bench" / "results" / "matching.json"
TARGET_WARM_MS = 100.0
SEED = 20261125
AS_OF = date(2026, 11, 25)

# Share of the generated advisories per kind (the rest of the total after the real records).
MIX = {"debian_host": 0.32, "ubuntu_host": 0.25, "pypi": 0.21, "debian_other": 0.22}


def load_real() -> list[records.Advisory]:
    found = []
    for folder in ("debian12", "ubuntu", "pypi"):
        for path in sorted((DATA / "osv" / folder).rglob("*.json")):
            found.append(osv.parse_osv(json.loads(path.read_text())))
    return found


def load_osv_path(path: Path) -> list[records.Advisory]:
    """Every OSV record in a directory (``*.json``, recursive) or an OSV ``all.zip``."""
    if path.is_dir():
        documents = ((item.name, item.read_bytes()) for item in sorted(path.rglob("*.json")))
    else:
        archive = zipfile.ZipFile(path)
        documents = (
            (name, archive.read(name)) for name in archive.namelist() if name.endswith(".json")
        )
    found = []
    for name, content in documents:
        try:
            found.append(osv.parse_osv(json.loads(content)))
        except (osv.BadRecord, ValueError) as error:
            print(f"skipped {name}: {error}", file=sys.stderr)
    return found


def load_kev() -> list[records.KevEntry]:
    data = json.loads((DATA / "kev" / "known_exploited_vulnerabilities.json").read_text())
    return [entry for entry in osv.parse_kev(data) if isinstance(entry, records.KevEntry)]


def _affected(
    advisory_id: str, ecosystem: str, name: str, events: tuple[tuple[str, str], ...]
) -> records.AffectedPackage:
    family, _, release = ecosystem.partition(":")
    return records.AffectedPackage(
        advisory_id=advisory_id,
        ecosystem=ecosystem,
        family=family,
        release=release,
        name=name,
        ranges=(records.Range("ECOSYSTEM", events),),
    )


def _advisory(
    advisory_id: str, number: int, affected: list[records.AffectedPackage], rng: random.Random
) -> records.Advisory:
    published = datetime(2023, 6, 10, tzinfo=UTC) + timedelta(days=rng.randint(0, 1260))
    cve = f"CVE-{published.year}-{90000 + number}"
    return records.Advisory(
        id=advisory_id,
        modified=published,
        published=published,
        withdrawn=None,
        aliases=(cve,),
        summary=f"generated advisory {number}",
        cvss_vectors=(),
        severity=None,
        affected=tuple(replace(item, advisory_id=advisory_id) for item in affected),
    )


def _debian12_fix(installed: str, rng: random.Random, missing: float, unfixed: float):
    """The Debian 12 events of a generated record for an installed source version: mostly a fix
    at or below it (the host is patched), a few above it, a few without a fix."""
    roll = rng.random()
    if roll < unfixed:
        return (("introduced", "0"),)
    if roll < unfixed + missing:
        return (("introduced", "0"), ("fixed", installed + "+deb12u99"))
    lower = rng.choice((installed, installed + "~pre1", installed.rsplit("-", 1)[0] + "-0"))
    return (("introduced", "0"), ("fixed", lower))


def generate(
    real: list[records.Advisory],
    sources: dict[str, str],
    total: int,
    *,
    missing: float,
    unfixed: float,
    seed: int = SEED,
) -> Iterator[records.Advisory]:
    rng = random.Random(seed)
    to_make = total - len(real)
    counts = {kind: int(to_make * share) for kind, share in MIX.items()}
    counts["debian_other"] += to_make - sum(counts.values())
    # Sources weighted like the real feed: the kernel gets far more advisories than the rest.
    names = sorted(sources)
    weights = [40.0 if name.startswith("linux") else 1.0 for name in names]
    pypi = [
        advisory for advisory in real if advisory.affected and advisory.affected[0].family == "PyPI"
    ]

    number = 0
    for _ in range(counts["debian_host"]):
        number += 1
        name = rng.choices(names, weights)[0]
        advisory_id = f"DEBIAN-CVE-BENCH-{number}"
        affected = [
            _affected(
                advisory_id, "Debian:11", name, (("introduced", "0"), ("fixed", "1.0-1+deb11u1"))
            ),
            _affected(
                advisory_id, "Debian:12", name, _debian12_fix(sources[name], rng, missing, unfixed)
            ),
            _affected(advisory_id, "Debian:13", name, (("introduced", "0"), ("fixed", "99.0-1"))),
        ]
        yield _advisory(advisory_id, number, affected, rng)
    for _ in range(counts["ubuntu_host"]):
        number += 1
        name = rng.choice(names)
        advisory_id = f"USN-BENCH-{number}"
        affected = [
            _affected(advisory_id, f"Ubuntu:{release}:LTS", name, (("introduced", "0"), ("fixed", f"1.{number}-0ubuntu0.{release}")))
            for release in ("20.04", "22.04", "24.04")
        ]  # fmt: skip
        yield _advisory(advisory_id, number, affected, rng)
    for index in range(counts["pypi"]):
        number += 1
        original = pypi[index % len(pypi)]
        advisory_id = f"PYSEC-BENCH-{number}"
        yield replace(
            original,
            id=advisory_id,
            affected=tuple(replace(item, advisory_id=advisory_id) for item in original.affected),
        )
    for _ in range(counts["debian_other"]):
        number += 1
        name = f"bench-package-{rng.randint(0, 30000):05d}"
        advisory_id = f"DEBIAN-CVE-BENCH-{number}"
        affected = [
            _affected(
                advisory_id, "Debian:12", name, (("introduced", "0"), ("fixed", "2.0-1+deb12u1"))
            )
        ]
        yield _advisory(advisory_id, number, affected, rng)


def host_evidence(status: Path, os_release: Path) -> dict:
    items, problems = parse_dpkg_status(status.read_text())
    if problems:
        print(f"dpkg status: {len(problems)} malformed stanzas skipped", file=sys.stderr)
    values = parse_os_release(os_release.read_text())
    return {
        "schema": "mamori.evidence/1",
        "os": {
            "status": "ok",
            "errors": [],
            "id": values.get("ID"),
            "version_id": values.get("VERSION_ID"),
            "pretty_name": values.get("PRETTY_NAME"),
        },
        "packages": {"status": "ok", "errors": [], "managers": ["dpkg"], "items": items},
        "updates": {"status": "ok", "errors": [], "apt_sources": None},
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--advisories", type=int, default=100_000, help="total (default 100,000)")
    parser.add_argument("--runs", type=int, default=50, help="warm matches to time")
    parser.add_argument("--cold-runs", type=int, default=5, help="cold matches to time")
    parser.add_argument(
        "--missing",
        type=float,
        default=0.02,
        help="share of the host's Debian 12 records with a fix above the installed version",
    )
    parser.add_argument("--unfixed", type=float, default=0.01, help="share without any fix")
    parser.add_argument("--status", type=Path, default=Path("/var/lib/dpkg/status"))
    parser.add_argument("--os-release", type=Path, default=Path("/etc/os-release"))
    parser.add_argument(
        "--osv", type=Path, help="load the OSV records of this directory or all.zip instead"
    )
    args = parser.parse_args(argv)

    host = host_evidence(args.status, args.os_release)
    targets = host_targets(host)
    sources = {target.name: target.version for target in targets}
    print(f"host: {len(host['packages']['items'])} dpkg packages, {len(targets)} source packages "
          f"({host['os']['pretty_name']})")  # fmt: skip

    started = time.perf_counter()
    if args.osv:
        advisories = load_osv_path(args.osv)
    else:
        real = load_real()
        advisories = real + list(
            generate(real, sources, args.advisories, missing=args.missing, unfixed=args.unfixed)
        )
    kev = load_kev()
    prepared_s = time.perf_counter() - started
    entries = sum(len(advisory.affected) for advisory in advisories)
    print(f"advisories: {len(advisories):,} ({entries:,} affected entries), KEV {len(kev):,}; "
          f"prepared in {prepared_s:.1f} s")  # fmt: skip

    def build() -> tuple[AdvisoryIndex, float]:
        versions.clear_cache()
        begin = time.perf_counter()
        built = AdvisoryIndex(advisories, kev)
        return built, time.perf_counter() - begin

    index, build_s = build()
    builds = [build_s]
    cold_ms = []
    result: list[dict] = []
    for _ in range(args.cold_runs):
        index, build_s = build()
        builds.append(build_s)
        begin = time.perf_counter()
        result = match_evidence(index, host, as_of=AS_OF)
        cold_ms.append((time.perf_counter() - begin) * 1000)
    warm_ms = []
    for _ in range(args.runs):
        begin = time.perf_counter()
        warm = match_evidence(index, host, as_of=AS_OF)
        warm_ms.append((time.perf_counter() - begin) * 1000)
    assert warm == result, "a warm match must give the same answer as a cold one"

    fixed = sum(1 for item in result if item["fixed_version"] is not None)
    overdue = sum(1 for item in result if item["overdue"])
    figures = {
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "host_packages": len(host["packages"]["items"]),
        "source_packages": len(targets),
        "advisories": len(advisories),
        "affected_entries": entries,
        "index_build_s_median": round(statistics.median(builds), 3),
        "cold_match_ms_median": round(statistics.median(cold_ms), 1),
        "warm_match_ms_median": round(statistics.median(warm_ms), 2),
        "warm_match_ms_p95": round(percentile(warm_ms, 0.95), 2),
        "warm_runs": args.runs,
        "vulnerabilities": len(result),
        "with_fix": fixed,
        "overdue": overdue,
        "kev": sum(1 for item in result if item["kev"]),
        "target_warm_ms": TARGET_WARM_MS,
    }
    print(f"index build: median {figures['index_build_s_median']:.2f} s over {len(builds)} builds")
    print(f"cold match:  median {figures['cold_match_ms_median']:.1f} ms over {len(cold_ms)} runs")
    print(f"warm match:  median {figures['warm_match_ms_median']:.2f} ms, "
          f"p95 {figures['warm_match_ms_p95']:.2f} ms over {args.runs} runs "
          f"(target < {TARGET_WARM_MS:.0f} ms)")  # fmt: skip
    print(f"vulnerabilities: {len(result):,} ({fixed:,} with a fix, {overdue:,} overdue, "
          f"{figures['kev']} KEV)")  # fmt: skip
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if figures["warm_match_ms_median"] < TARGET_WARM_MS else 1


if __name__ == "__main__":
    sys.exit(main())
