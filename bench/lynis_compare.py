"""Lynis and Mamori on the same machine: which findings correspond, per control.

Runs ``lynis audit system --quick --no-colors`` (as root; Lynis writes /var/log/lynis.log and
/var/log/lynis-report.dat) and reads its findings from the report file: ``warning[]``,
``suggestion[]``, ``details[]``, the tests executed and skipped, and the facts the mapped tests
report (``firewall_active``, ``vulnerable_package[]``, ...). Then collects evidence of the live
host with our agent (``mamori_agent.collect.collect``) and evaluates it with the pure
``evaluate`` and the bundled catalogue's settings; vulnerabilities, OS and software support
come from the real data in tests/data or $MAMORI_BENCH_DATA (OSV Debian 12/Ubuntu/PyPI, KEV,
distro-info and endoflife.date), matched in memory as the server would after importing them.

Prints, per control, the table of our checks and the Lynis tests that look at the same thing
(``MAPPING``) with both results, then what Lynis reports that none of our checks covers and what
we report that Lynis does not. ``--report FILE`` reads an existing Lynis report instead of
running Lynis; ``--markdown`` prints the tables as Markdown (for docs/side-by-side.md). Results
also go to bench/results/lynis_compare.json.
Run: ``sudo .venv/bin/python bench/lynis_compare.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

# The real data: the subset vendored for the tests, or a full copy in the same layout named by
# MAMORI_BENCH_DATA (bench/README.md, "Data").
DATA = Path(os.environ.get("MAMORI_BENCH_DATA") or ROOT / "tests" / "data")
RESULTS_FILE = ROOT / "bench" / "results" / "lynis_compare.json"
CATALOGUE = ROOT / "src" / "mamori" / "catalogue" / "data" / "ce-jp-2026.yaml"
LYNIS_REPORT = Path("/var/log/lynis-report.dat")
LYNIS_COMMAND = ("audit", "system", "--quick", "--no-colors")

# --- the Lynis report file --------------------------------------------------------------------


@dataclass(frozen=True)
class LynisFinding:
    """One ``warning[]`` or ``suggestion[]`` line: ``TEST-ID|text|details|solution|``."""

    kind: str  # "warning" or "suggestion"
    test: str
    text: str
    details: str = "-"
    solution: str = "-"


@dataclass(frozen=True)
class LynisDetail:
    """One ``details[]`` line: ``TEST-ID|component|key:value;key:value;|``."""

    test: str
    component: str
    fields: dict[str, str]


@dataclass
class LynisReport:
    values: dict[str, str] = field(default_factory=dict)  # key=value (the last one wins)
    lists: dict[str, list[str]] = field(default_factory=dict)  # key[]=value, in order
    warnings: list[LynisFinding] = field(default_factory=list)
    suggestions: list[LynisFinding] = field(default_factory=list)
    details: list[LynisDetail] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # lines that are not key=value

    @property
    def findings(self) -> list[LynisFinding]:
        return [*self.warnings, *self.suggestions]

    def for_tests(self, tests: Iterable[str]) -> list[LynisFinding]:
        wanted = set(tests)
        return [finding for finding in self.findings if finding.test in wanted]


def parse_report(text: str) -> LynisReport:
    """A ``lynis-report.dat`` → ``LynisReport``. Lines that are not ``key=value`` are kept in
    ``problems`` (a truncated or foreign file is reported, not fatal)."""
    report = LynisReport()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        key, separator, value = line.partition("=")
        if not separator or not key:
            report.problems.append(f"line {number}: not key=value: {line[:60]!r}")
            continue
        if key.endswith("[]"):
            name = key[:-2]
            if name in ("warning", "suggestion"):
                finding = _finding(name, value)
                (report.warnings if name == "warning" else report.suggestions).append(finding)
            elif name == "details":
                report.details.append(_detail(value))
            report.lists.setdefault(name, []).append(value)
        else:
            report.values[key] = value
    report.executed = _test_list(report.values.get("tests_executed", ""))
    report.skipped = _test_list(report.values.get("tests_skipped", ""))
    return report


def _finding(kind: str, value: str) -> LynisFinding:
    parts = value.split("|")
    parts += ["-"] * (4 - len(parts))
    return LynisFinding(kind, parts[0], parts[1], parts[2] or "-", parts[3] or "-")


def _detail(value: str) -> LynisDetail:
    parts = value.split("|")
    parts += [""] * (3 - len(parts))
    fields = {}
    for item in parts[2].split(";"):
        name, separator, content = item.partition(":")
        if separator:
            fields[name] = content
    return LynisDetail(parts[0], parts[1], fields)


def _test_list(value: str) -> list[str]:
    return [item for item in value.split("|") if item]


# --- the mapping ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    control: str
    checks: tuple[str, ...]  # our check ids
    tests: tuple[str, ...]  # Lynis test ids looking at the same thing ("" when none)
    facts: tuple[str, ...]  # report keys the Lynis tests write (``name`` or ``name[]``)
    ours: str  # what our checks decide
    lynis: str  # what the Lynis tests look at


MAPPING: tuple[Row, ...] = (
    Row("firewalls", ("FW-01",),
        ("FIRE-4502", "FIRE-4508", "FIRE-4512", "FIRE-4513", "FIRE-4536", "FIRE-4538", "FIRE-4540", "FIRE-4586", "FIRE-4590"),
        ("firewall_active", "firewall_software[]", "firewall_empty_ruleset"),
        "an active nftables/iptables/ufw/firewalld whose default inbound policy is drop or reject",
        "iptables/nftables present (kernel module, /proc/net/ip_tables_names or kernel config), empty or unused rules, logging; default-deny is a manual item"),
    Row("firewalls", ("FW-02", "FW-03"), ("NETW-3012",), ("network_listen[]",),
        "listening sockets the firewall lets any source reach; fails on clear-text remote services (FTP, Telnet, TFTP, r-services)",
        "lists listening sockets, no verdict"),
    Row("secure_configuration", ("SC-01",),
        ("INSE-8000", "INSE-8002", "INSE-8016", "INSE-8100", "INSE-8102", "INSE-8104", "INSE-8116", "INSE-8304", "INSE-8316", "INSE-8320", "INSE-8322"),
        (),
        "legacy clear-text services (telnet, rsh, tftp, NIS, talk, inetd/xinetd) enabled",
        "inetd/xinetd installed and enabled, telnet via inetd; rsh, telnet, NIS and TFTP servers installed"),
    Row("secure_configuration", ("SC-02",), ("AUTH-9283",), (),
        "no account with an empty password field", "accounts without a password"),
    Row("secure_configuration", ("SC-03",), ("SSH-7408",), (),
        "sshd configuration (files, Include, Match) refuses empty passwords",
        "options of the running sshd (needs a running daemon), among them PermitEmptyPasswords"),
    Row("security_update_management", ("UPD-01", "UPD-06", "UPD-07"), ("PKGS-7420",),
        ("unattended_upgrade_tool[]",),
        "unattended-upgrades / dnf-automatic / periodic apk upgrade installed, enabled, refreshing lists",
        "a tool to apply upgrades automatically is installed"),
    Row("security_update_management", ("UPD-02",), (), (),
        "the OS release is still supported by its vendor (Debian including LTS; Ubuntu ESM when enrolled)",
        "none (Lynis checks only its own age: LYNIS)"),
    Row("security_update_management", ("UPD-03", "UPD-04"), ("PKGS-7388", "PKGS-7392", "PKGS-7398"),
        ("vulnerable_package[]", "vulnerable_packages_found"),
        "each installed source package against imported advisories: fix missing for more than patch_days (14) days, KEV-listed fixes",
        "apt-get update, then upgrades offered by a *-security suite (no dates, no severity, no CVE)"),
    Row("security_update_management", ("UPD-05",), (), (),
        "pip-installed software whose product reached end of life (endoflife.date)", "none"),
    Row("user_access_control", ("UAC-01",), ("AUTH-9204",), (),
        "no account other than root with UID 0", "users with UID 0"),
    Row("user_access_control", ("UAC-02", "UAC-03"), ("SSH-7408",), (),
        "sshd: no root login with a password; MaxAuthTries within lockout_attempts when passwords are accepted",
        "options of the running sshd, among them PermitRootLogin and MaxAuthTries"),
    Row("user_access_control", ("UAC-04",), ("AUTH-9408", "DEB-0880"), ("auth_failed_logins_logged",),
        "pam_faillock/pam_tally2 deny between 1 and lockout_attempts (10)",
        "failed logins are logged (FAILLOG_ENAB); suggests fail2ban"),
    Row("user_access_control", ("UAC-05",), ("AUTH-9262",), (),
        "pam_pwquality minlen >= 12, or >= 8 with the dictionary check",
        "a password-strength PAM module is present (cracklib, passwdqc, pwquality)"),
    Row("user_access_control", ("UAC-06",), ("AUTH-9229", "AUTH-9230"), (),
        "no stored password hash uses MD5 or DES",
        "hashing method and rounds configured for new passwords"),
    Row("user_access_control", ("UAC-07", "UAC-08"), ("AUTH-9250", "AUTH-9252"), (),
        "no sudo rule grants ALL commands with NOPASSWD; who can become root",
        "the sudoers file exists; ownership and permissions of sudo configuration files"),
    Row("malware_protection", ("MAL-01",),
        ("HRDN-7230", "MALW-3280", "MALW-3282", "MALW-3284", "MALW-3286", "MALW-3290"),
        ("malware_scanner_installed", "malware_scanner[]"),
        "ClamAV with fresh signatures and on-access scanning, fapolicyd enforcing, or a known EDR agent",
        "a malware scanner (rkhunter, chkrootkit, ClamAV, LMD, ...) is installed"),
    Row("informational", ("BAK-01",), (), (),
        "backup tools and timers (reported, never decides)", "none"),
)  # fmt: skip

# Lynis test id prefixes, for grouping what none of our checks covers.
LYNIS_GROUPS = {
    "ACCT": "accounting and auditing",
    "AUTH": "authentication (password ageing, umask, locked accounts)",
    "BANN": "login banners",
    "BOOT": "boot and services",
    "DBS": "databases",
    "DEB": "Debian tooling (plugin)",
    "FILE": "file systems and permissions",
    "FINT": "file integrity",
    "HOME": "home directories",
    "HRDN": "hardening (compilers)",
    "KRNL": "kernel and sysctl",
    "LOGG": "logging",
    "LYNIS": "Lynis itself",
    "NAME": "name services",
    "NETW": "network protocols",
    "PKGS": "package tooling",
    "STRG": "storage drivers",
    "TOOL": "automation tools",
    "USB": "USB storage",
}


def mapped_tests() -> set[str]:
    return {test for row in MAPPING for test in row.tests}


def finding_states(evaluation: Mapping[str, Any]) -> dict[str, str]:
    """Our check id → pass/fail/unknown/info, or "n/a" for checks that did not apply."""
    states = {item["check"]: item["status"] for item in evaluation.get("findings", ())}
    states.update(dict.fromkeys(evaluation.get("not_applicable", ()), "n/a"))
    return states


def lynis_result(report: LynisReport, row: Row) -> dict[str, Any]:
    """What Lynis said about a row: its findings, which tests ran, the facts they reported."""
    ran = [test for test in row.tests if test in report.executed]
    skipped = [test for test in row.tests if test in report.skipped]
    facts = {}
    for name in row.facts:
        if name.endswith("[]"):
            values = report.lists.get(name[:-2])
            if values is not None:
                facts[name] = values
        elif name in report.values:
            facts[name] = report.values[name]
    findings = report.for_tests(row.tests)
    if not row.tests:
        summary = "no such test"
    elif findings:
        summary = "; ".join(f"{item.kind} {item.test}: {item.text}" for item in findings)
    elif ran:
        summary = "no finding"
    else:
        summary = "not run (skipped: prerequisites)" if skipped else "not run"
    return {
        "ran": ran,
        "skipped": skipped,
        "facts": facts,
        "findings": findings,
        "summary": summary,
    }


def compare(report: LynisReport, evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """Rows with both results, and the two "finds what the other does not" lists."""
    states = finding_states(evaluation)
    rows = []
    both, lynis_only_mapped, ours_only = [], [], []
    for row in MAPPING:
        ours = {check: states.get(check, "missing") for check in row.checks}
        lynis = lynis_result(report, row)
        we_flag = any(state in ("fail", "unknown") for state in ours.values())
        rows.append({"row": row, "ours": ours, "lynis": lynis})
        if we_flag and lynis["findings"]:
            both.append(row)
        elif we_flag:
            ours_only.append(row)
        elif lynis["findings"]:
            lynis_only_mapped.append(row)
    known = mapped_tests()
    unmapped = [finding for finding in report.findings if finding.test not in known]
    groups: dict[str, list[LynisFinding]] = {}
    for finding in unmapped:
        prefix = finding.test.split("-", 1)[0]
        groups.setdefault(prefix, []).append(finding)
    return {
        "rows": rows,
        "both": both,
        "lynis_only_mapped": lynis_only_mapped,
        "ours_only": ours_only,
        "lynis_unmapped": groups,
    }


# --- running both -----------------------------------------------------------------------------


def run_lynis(program: str) -> tuple[float, str]:
    begin = time.perf_counter()
    result = subprocess.run(
        [program, *LYNIS_COMMAND], capture_output=True, text=True, check=False, timeout=1800
    )
    elapsed = time.perf_counter() - begin
    if result.returncode != 0:
        raise SystemExit(f"lynis failed ({result.returncode}): {result.stderr.strip()[-300:]}")
    return elapsed, result.stdout


def our_evaluation(as_of: dt.date) -> tuple[dict, dict, float, float]:
    """(evidence, evaluation, collection seconds, evaluation seconds) for this live host."""
    from mamori.advisories import lifecycle, osv, records
    from mamori.advisories.matching import AdvisoryIndex, match_evidence
    from mamori.catalogue.loader import load_catalogue
    from mamori.verification.evaluation import evaluate, validate_evidence
    from mamori_agent.collect import collect

    begin = time.perf_counter()
    evidence = collect(None)
    collect_s = time.perf_counter() - begin

    advisories = [
        osv.parse_osv(json.loads(path.read_text()))
        for folder in ("debian12", "ubuntu", "pypi")
        for path in sorted((DATA / "osv" / folder).rglob("*.json"))
    ]
    kev_data = json.loads((DATA / "kev" / "known_exploited_vulnerabilities.json").read_text())
    kev = [item for item in osv.parse_kev(kev_data) if isinstance(item, records.KevEntry)]
    cycles: list[records.EolCycle] = []
    for product in ("debian", "ubuntu"):
        text = (DATA / "eol" / "distro-info" / f"{product}.csv").read_text()
        cycles += [c for c in osv.parse_distro_info(product, text) if isinstance(c, records.EolCycle)]  # fmt: skip
    for path in sorted((DATA / "eol" / "products").glob("*.json")):
        parsed = osv.parse_endoflife(path.stem, json.loads(path.read_text()))
        cycles += [c for c in parsed if isinstance(c, records.EolCycle)]
    settings = load_catalogue(CATALOGUE).settings

    begin = time.perf_counter()
    validate_evidence(evidence)
    vulnerabilities = match_evidence(
        AdvisoryIndex(advisories, kev),
        evidence,
        as_of=as_of,
        patch_days=int(settings.get("patch_days", 14)),
        cvss_threshold=float(settings.get("cvss_threshold", 7.0)),
    )
    evaluation = evaluate(
        evidence,
        as_of=as_of,
        settings=settings,
        vulnerabilities=vulnerabilities,
        os_support=lifecycle.os_support(evidence, cycles, as_of=as_of),
        software_support=lifecycle.software_support(evidence, cycles, as_of=as_of),
        language="en",
    )
    return evidence, evaluation, collect_s, time.perf_counter() - begin


# --- output -----------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _facts(facts: Mapping[str, Any]) -> str:
    shown = []
    for name, value in facts.items():
        if isinstance(value, list):
            shown.append(f"{name} ×{len(value)}")
        else:
            shown.append(f"{name}={value}")
    return ", ".join(shown)


def print_tables(result: Mapping[str, Any], markdown: bool, out=None) -> None:
    from mamori.verification.rules import CONTROLS  # the five, then "informational"

    out = out or sys.stdout

    def line(*cells: str) -> None:
        if markdown:
            print("| " + " | ".join(_cell(cell) for cell in cells) + " |", file=out)
        else:
            print("  " + "  ·  ".join(cells), file=out)

    for control in CONTROLS:
        rows = [item for item in result["rows"] if item["row"].control == control]
        if not rows:
            continue
        print(f"\n{'### ' if markdown else ''}{control}\n", file=out)
        if markdown:
            line("our checks", "ours here", "Lynis tests", "Lynis here", "facts Lynis reported")
            line("---", "---", "---", "---", "---")
        for item in rows:
            row, lynis = item["row"], item["lynis"]
            ours = ", ".join(f"{check} {state}" for check, state in item["ours"].items())
            tests = ", ".join(row.tests) or "—"
            line(", ".join(row.checks), ours, tests, lynis["summary"], _facts(lynis["facts"]))

    print(f"\n{'### ' if markdown else ''}Lynis findings none of our checks maps to\n", file=out)
    if markdown:
        line("group", "count", "Lynis tests", "examples")
        line("---", "---", "---", "---")
    for prefix, findings in sorted(result["lynis_unmapped"].items()):
        tests = sorted({finding.test for finding in findings})
        examples = "; ".join(sorted({finding.text for finding in findings})[:2])
        line(LYNIS_GROUPS.get(prefix, prefix), str(len(findings)), ", ".join(tests), examples)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--report", type=Path, help="read this Lynis report instead of running Lynis"
    )
    parser.add_argument("--program", default=shutil.which("lynis") or "/usr/sbin/lynis")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date.today())
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    args = parser.parse_args(argv)

    lynis_s = None
    if args.report is None:
        if os.geteuid() != 0:
            print("error: run as root (Lynis audits fully only as root), or pass --report", file=sys.stderr)  # fmt: skip
            return 2
        if not Path(args.program).exists():
            print(f"error: {args.program} not found (apt-get install lynis)", file=sys.stderr)
            return 2
        lynis_s, _ = run_lynis(args.program)
        args.report = LYNIS_REPORT
    try:
        report = parse_report(args.report.read_text(errors="replace"))
    except OSError as error:
        print(f"error: cannot read {args.report}: {error.strerror}", file=sys.stderr)
        return 2
    if not report.executed:
        print(f"error: {args.report} is not a Lynis report (no tests_executed)", file=sys.stderr)
        return 2

    evidence, evaluation, collect_s, evaluate_s = our_evaluation(args.as_of)
    result = compare(report, evaluation)
    statuses = Counter(item["status"] for item in evaluation["findings"])

    values = report.values
    print(f"Lynis {values.get('lynis_version')} on {values.get('os_fullname')}, "
          f"{values.get('report_datetime_start')} .. {values.get('report_datetime_end')}"
          + (f" ({lynis_s:.1f} s)" if lynis_s is not None else ""))  # fmt: skip
    print(f"  tests performed {values.get('lynis_tests_done')}, executed {len(report.executed)}, "
          f"skipped {len(report.skipped)}; warnings {len(report.warnings)}, suggestions "
          f"{len(report.suggestions)} ({len({f.test for f in report.suggestions})} tests); "
          f"hardening index {values.get('hardening_index')}")  # fmt: skip
    print(f"Mamori agent {evidence.get('agent', {}).get('version', '?')}: collected in "
          f"{collect_s:.2f} s, evaluated in {evaluate_s:.2f} s as of {args.as_of}; controls "
          + ", ".join(f"{name} {state}" for name, state in evaluation["controls"].items()))  # fmt: skip
    print(f"  findings: {dict(sorted(statuses.items()))}, not applicable "
          f"{len(evaluation['not_applicable'])}, vulnerabilities {len(evaluation['vulnerabilities'])}")  # fmt: skip
    print_tables(result, args.markdown)
    print("\nBoth flag:", ", ".join("/".join(row.checks) for row in result["both"]) or "—")
    print("Only Lynis (mapped):", ", ".join("/".join(row.checks) for row in result["lynis_only_mapped"]) or "—")  # fmt: skip
    print("Only ours:", ", ".join("/".join(row.checks) for row in result["ours_only"]) or "—")
    unmapped = sum(len(items) for items in result["lynis_unmapped"].values())
    print(f"Lynis findings outside every mapped test: {unmapped}")

    figures = {
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "lynis_version": values.get("lynis_version"),
        "lynis_started": values.get("report_datetime_start"),
        "lynis_seconds": round(lynis_s, 1) if lynis_s is not None else None,
        "lynis_tests_done": values.get("lynis_tests_done"),
        "lynis_warnings": len(report.warnings),
        "lynis_suggestions": len(report.suggestions),
        "lynis_hardening_index": values.get("hardening_index"),
        "lynis_unmapped_findings": unmapped,
        "ours_collect_seconds": round(collect_s, 2),
        "ours_controls": evaluation["controls"],
        "ours_findings": dict(statuses),
        "rows": [
            {
                "checks": list(item["row"].checks),
                "ours": item["ours"],
                "lynis_tests": list(item["row"].tests),
                "lynis": item["lynis"]["summary"],
            }
            for item in result["rows"]
        ],
    }
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
