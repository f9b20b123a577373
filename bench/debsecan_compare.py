"""debsecan against our matcher: the same dpkg status, the same >= 100,000 advisories.

Advisories: the real Debian 12 records in tests/data/osv/debian12 (201; the full snapshot's
2,385 with MAMORI_BENCH_DATA, bench/README.md) plus generated variants up to ``--advisories``
(fixed seed; the generator of bench/matching.py, restricted to Debian): 60 % DEBIAN-CVE-like
records for this host's own source packages (the kernel weighted 40x) with entries for Debian 11,
12 and 13 — the Debian 12 fix mostly at or below the installed version, ``--missing`` above it,
``--unfixed`` without a fix, and ``--inexact`` with an ``introduced`` above the installed version
(OSV: not affected; debsecan's format cannot say "introduced", so its feed says affected) — and
40 % Debian 12 records for packages the host does not have. ``mamori.advisories.debsecan``
writes the bookworm feed from them.

Timed, on this machine's /var/lib/dpkg/status (``--status``):

- debsecan: wall time of ``debsecan --suite bookworm --source file://DIR/ --status FILE
  --format detail`` as a subprocess (interpreter start, apt_pkg, decompressing and parsing the
  feed, reading the status, matching, printing), median of ``--debsecan-runs``; and the same
  with an empty feed (what starting debsecan costs before it reads any advisory);
- ours, warm: ``match_evidence`` on a built index (the server's steady state: the index is
  cached per process), median and p95 of ``--runs``;
- ours, cold: a fresh ``AdvisoryIndex`` (version cache cleared) and its first match.

It checks that both report the same (binary, CVE) pairs — ours a subset of debsecan's, the rest
exactly the pairs of the records the feed marks inexact — and prints the set sizes, the times
and the ratios. Results also go to bench/results/debsecan_compare.json.
Run: ``.venv/bin/python bench/debsecan_compare.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from matching import (  # bench/matching.py: the same generator building blocks
    AS_OF,
    SEED,
    _advisory,
    _affected,
    _debian12_fix,
    host_evidence,
    percentile,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from mamori.advisories import debsecan, osv, records, versions  # noqa: E402
from mamori.advisories.matching import AdvisoryIndex, host_targets, match_evidence  # noqa: E402

# The real data: the subset vendored for the tests, or a full copy in the same layout named by
# MAMORI_BENCH_DATA (bench/README.md, "Data").
DATA = Path(os.environ.get("MAMORI_BENCH_DATA") or ROOT / "tests" / "data")
RESULTS_FILE = ROOT / "bench" / "results" / "debsecan_compare.json"
SUITE = "bookworm"
HOST_SHARE = 0.6
_CVE = re.compile(r"CVE-\d{4}-\d{4,}$")


def load_debian12() -> list[records.Advisory]:
    return [
        osv.parse_osv(json.loads(path.read_text()))
        for path in sorted((DATA / "osv" / "debian12").glob("*.json"))
    ]


def generate(
    real_count: int,
    sources: dict[str, str],
    total: int,
    *,
    missing: float,
    unfixed: float,
    inexact: float,
) -> Iterator[records.Advisory]:
    """Debian-only variants in the shape of bench/matching.py's (see the module docstring)."""
    rng = random.Random(SEED)
    to_make = total - real_count
    host_count = int(to_make * HOST_SHARE)
    names = sorted(sources)
    weights = [40.0 if name.startswith("linux") else 1.0 for name in names]
    for number in range(1, to_make + 1):
        advisory_id = f"DEBIAN-CVE-BENCH-{number}"
        if number <= host_count:
            name = rng.choices(names, weights)[0]
            if rng.random() < inexact:
                # Introduced after the installed version: OSV says "not affected yet".
                installed = sources[name]
                bookworm = (("introduced", installed + "+deb12u50"), ("fixed", installed + "+deb12u51"))  # fmt: skip
            else:
                bookworm = _debian12_fix(sources[name], rng, missing, unfixed)
            affected = [
                _affected(advisory_id, "Debian:11", name, (("introduced", "0"), ("fixed", "1.0-1+deb11u1"))),
                _affected(advisory_id, "Debian:12", name, bookworm),
                _affected(advisory_id, "Debian:13", name, (("introduced", "0"), ("fixed", "99.0-1"))),
            ]  # fmt: skip
        else:
            name = f"bench-package-{rng.randint(0, 30000):05d}"
            affected = [
                _affected(advisory_id, "Debian:12", name, (("introduced", "0"), ("fixed", "2.0-1+deb12u1")))
            ]  # fmt: skip
        yield _advisory(advisory_id, number, affected, rng)


def our_pairs(result: list[dict]) -> set[tuple[str, str]]:
    pairs = set()
    for item in result:
        names = {
            match.group()
            for identifier in (item["advisory"], *item["aliases"])
            if (match := _CVE.search(identifier))
        } or {item["advisory"]}
        pairs.update((binary, name) for binary in item["binaries"] for name in names)
    return pairs


def run_debsecan(feed_dir: Path, status: Path, output_format: str) -> tuple[float, str]:
    command = debsecan.offline_command(feed_dir, SUITE, status, output_format=output_format)
    begin = time.perf_counter()
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(feed_dir)},
    )
    elapsed = time.perf_counter() - begin
    if result.returncode != 0 or result.stderr:
        raise SystemExit(f"debsecan failed ({result.returncode}): {result.stderr.strip()[:300]}")
    return elapsed, result.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--advisories", type=int, default=100_000, help="total (default 100,000)")
    parser.add_argument("--runs", type=int, default=50, help="warm matches to time")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold builds + matches to time")
    parser.add_argument("--debsecan-runs", type=int, default=5, help="debsecan runs to time")
    parser.add_argument("--missing", type=float, default=0.02)
    parser.add_argument("--unfixed", type=float, default=0.01)
    parser.add_argument("--inexact", type=float, default=0.01)
    parser.add_argument("--status", type=Path, default=Path("/var/lib/dpkg/status"))
    parser.add_argument("--os-release", type=Path, default=Path("/etc/os-release"))
    parser.add_argument("--program", default=debsecan.DEFAULT_PROGRAM)
    args = parser.parse_args(argv)
    if not Path(args.program).exists():
        print(f"error: {args.program} not found (apt-get install debsecan)", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="mamori-debsecan-"))
    try:
        return compare(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare(args: argparse.Namespace, work: Path) -> int:
    status = work / "status"
    shutil.copyfile(args.status, status)  # both tools read the same copy
    host = host_evidence(status, args.os_release)
    targets = host_targets(host)
    sources = {target.name: target.version for target in targets}
    print(f"host: {len(host['packages']['items'])} dpkg packages, {len(targets)} source packages "
          f"({host['os']['pretty_name']})")  # fmt: skip

    real = load_debian12()
    advisories = real + list(
        generate(
            len(real),
            sources,
            args.advisories,
            missing=args.missing,
            unfixed=args.unfixed,
            inexact=args.inexact,
        )
    )
    begin = time.perf_counter()
    feed = debsecan.build_feed(advisories, SUITE, "Debian", "12")
    feed_dir = work / "feed"
    feed_dir.mkdir()
    feed_path = feed.write(feed_dir)
    feed_s = time.perf_counter() - begin
    print(f"advisories: {len(advisories):,} ({len(real):,} real Debian 12); feed: "
          f"{len(feed.lines):,} lines, {len(feed.descriptions):,} names, "
          f"{feed_path.stat().st_size / 1e6:.1f} MB compressed, written in {feed_s:.1f} s; "
          f"{len(feed.inexact):,} advisories inexact")  # fmt: skip

    empty_dir = work / "empty"
    empty_dir.mkdir()
    debsecan.build_feed([], SUITE, "Debian", "12").write(empty_dir)
    run_debsecan(feed_dir, status, "detail")  # page cache warm-up, not timed
    debsecan_s, output = [], ""
    for _ in range(args.debsecan_runs):
        elapsed, output = run_debsecan(feed_dir, status, "detail")
        debsecan_s.append(elapsed)
    startup_s = [run_debsecan(empty_dir, status, "detail")[0] for _ in range(args.debsecan_runs)]
    theirs = debsecan.parse_detail(output)

    def build() -> tuple[AdvisoryIndex, float]:
        versions.clear_cache()
        start = time.perf_counter()
        built = AdvisoryIndex(advisories)
        return built, time.perf_counter() - start

    builds, cold_ms = [], []
    result: list[dict] = []
    for _ in range(args.cold_runs):
        index, build_s = build()
        builds.append(build_s)
        start = time.perf_counter()
        result = match_evidence(index, host, as_of=AS_OF)
        cold_ms.append((time.perf_counter() - start) * 1000)
    warm_ms = []
    for _ in range(args.runs):
        start = time.perf_counter()
        warm = match_evidence(index, host, as_of=AS_OF)
        warm_ms.append((time.perf_counter() - start) * 1000)
    assert warm == result, "a warm match must give the same answer as a cold one"
    ours = our_pairs(result)

    inexact_names = {
        name
        for advisory in advisories
        if advisory.id in feed.inexact
        for name in debsecan.vulnerability_names(advisory)
    }
    extra = theirs - ours
    same = not (ours - theirs) and all(name in inexact_names for _, name in extra)

    figures = {
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "host_packages": len(host["packages"]["items"]),
        "source_packages": len(targets),
        "advisories": len(advisories),
        "feed_lines": len(feed.lines),
        "feed_bytes": feed_path.stat().st_size,
        "inexact_advisories": len(feed.inexact),
        "debsecan_s_median": round(statistics.median(debsecan_s), 3),
        "debsecan_empty_feed_s_median": round(statistics.median(startup_s), 3),
        "ours_warm_ms_median": round(statistics.median(warm_ms), 2),
        "ours_warm_ms_p95": round(percentile(warm_ms, 0.95), 2),
        "ours_index_build_s_median": round(statistics.median(builds), 3),
        "ours_cold_match_ms_median": round(statistics.median(cold_ms), 1),
        "vulnerabilities": len(result),
        "pairs_ours": len(ours),
        "pairs_debsecan": len(theirs),
        "pairs_common": len(ours & theirs),
        "pairs_only_debsecan": len(extra),
        "pairs_only_ours": len(ours - theirs),
        "same_apart_from_inexact": same,
    }
    warm = figures["ours_warm_ms_median"]
    cold_total_ms = (
        figures["ours_index_build_s_median"] * 1000 + figures["ours_cold_match_ms_median"]
    )
    figures["ratio_debsecan_to_warm"] = round(figures["debsecan_s_median"] * 1000 / warm, 1)
    figures["ratio_debsecan_to_cold"] = round(
        figures["debsecan_s_median"] * 1000 / cold_total_ms, 2
    )

    print(f"pairs (binary, CVE): ours {len(ours):,}, debsecan {len(theirs):,}, common "
          f"{len(ours & theirs):,}; only debsecan {len(extra):,} (all from inexact records: "
          f"{same}), only ours {len(ours - theirs):,}")  # fmt: skip
    print(f"debsecan:    median {figures['debsecan_s_median'] * 1000:.0f} ms over "
          f"{args.debsecan_runs} runs (empty feed: "
          f"{figures['debsecan_empty_feed_s_median'] * 1000:.0f} ms)")  # fmt: skip
    print(f"ours warm:   median {warm:.2f} ms, p95 {figures['ours_warm_ms_p95']:.2f} ms over "
          f"{args.runs} runs")  # fmt: skip
    print(f"ours cold:   index build {figures['ours_index_build_s_median'] * 1000:.0f} ms + "
          f"first match {figures['ours_cold_match_ms_median']:.0f} ms = {cold_total_ms:.0f} ms "
          f"(median of {args.cold_runs})")  # fmt: skip
    print(f"ratio:       debsecan / ours warm = {figures['ratio_debsecan_to_warm']}x; "
          f"debsecan / ours cold = {figures['ratio_debsecan_to_cold']}x")  # fmt: skip
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
