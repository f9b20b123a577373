"""bench/lynis_compare.py's report parser and mapping, on a real Lynis report (trimmed copy).

Running Lynis itself takes 38 s on an idle 2-core machine and 58 s under the load of a parallel
test run, needs root and network (PKGS-7392 runs ``apt-get update``) and writes /var/log, so the
live run is left to the bench script; these tests read the report it captured.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
from bench import lynis_compare
from bench.lynis_compare import MAPPING, LynisFinding, compare, lynis_result, parse_report

from mamori.catalogue.loader import load_catalogue
from mamori.verification.evaluation import bundled_checks, evaluate, validate_evidence
from mamori_agent.collect import collect

REPORT = Path(__file__).parent / "data" / "lynis-report.dat"


@pytest.fixture(scope="module")
def report():
    return parse_report(REPORT.read_text())


def row_for(check: str) -> lynis_compare.Row:
    return next(row for row in MAPPING if check in row.checks)


def test_report_values_lists_and_tests(report):
    assert report.problems == []
    assert report.values["lynis_version"] == "3.0.8"
    assert report.values["os_fullname"] == "Debian GNU/Linux 12 (bookworm)"
    assert report.values["hardening_index"] == "56"
    assert report.values["lynis_tests_done"] == "245"
    assert len(report.executed) == 245
    assert len(report.skipped) == 208
    assert not set(report.executed) & set(report.skipped)
    assert len(report.lists["vulnerable_package"]) == 69
    assert report.lists["firewall_software"] == ["iptables"]
    assert len(report.lists["manual"]) == 4


def test_warnings_and_suggestions(report):
    assert [(item.test, item.text) for item in report.warnings] == [
        ("PKGS-7392", "Found one or more vulnerable packages."),
        ("LOGG-2138", "klogd is not running, which could lead to missing kernel messages in log files"),
    ]  # fmt: skip
    assert len(report.suggestions) == 47
    by_test = Counter(item.test for item in report.suggestions)
    assert by_test["NETW-3200"] == 4  # one per uncommon protocol
    assert by_test["FILE-6310"] == 3
    malware = report.for_tests(["HRDN-7230"])
    assert malware == [
        LynisFinding(
            "suggestion",
            "HRDN-7230",
            "Harden the system by installing at least one malware scanner, to perform periodic file system scans",
            "-",
            "Install a tool like rkhunter, chkrootkit, OSSEC",
        )
    ]  # fmt: skip
    redis = report.for_tests(["DBS-1884"])[0]
    assert redis.details == "/etc/redis/redis.conf"
    assert redis.solution == "text:configure 'requirepass' setting in /etc/redis/redis.conf"


def test_details_fields(report):
    first = report.details[0]
    assert (first.test, first.component) == ("KRNL-6000", "sysctl")
    assert first.fields == {
        "desc": "Disable loading of TTY line disciplines",
        "field": "dev.tty.ldisc_autoload",
        "prefval": "0",
        "value": "1",
    }


def test_a_broken_report_is_reported_not_fatal():
    parsed = parse_report("# comment\nlynis_version=3.0.8\ngarbage line\nwarning[]=ONLY-ID\n=x\n")
    assert parsed.values == {"lynis_version": "3.0.8"}
    assert parsed.warnings == [LynisFinding("warning", "ONLY-ID", "-", "-", "-")]
    assert [problem.split(":")[0] for problem in parsed.problems] == ["line 3", "line 5"]
    assert parsed.executed == []


def test_the_mapping_covers_every_check_once_under_its_control():
    checks = {check.id: check.control for check in bundled_checks()}
    mapped = [check for row in MAPPING for check in row.checks]
    assert Counter(mapped) == Counter(checks.keys())  # every bundled check, exactly once
    for row in MAPPING:
        for check in row.checks:
            assert row.control == checks[check], check


def test_every_mapped_lynis_test_exists(report):
    """Lynis lists every registered test as executed or skipped: a typo would show here."""
    known = set(report.executed) | set(report.skipped)
    assert lynis_compare.mapped_tests() <= known


def test_lynis_side_per_row(report):
    firewall = lynis_result(report, row_for("FW-01"))
    assert firewall["summary"] == "no finding"
    assert "FIRE-4590" in firewall["ran"]
    assert "FIRE-4508" in firewall["skipped"]  # no iptables binary: rules never looked at
    assert firewall["facts"] == {
        "firewall_active": "1",
        "firewall_software[]": ["iptables"],
        "firewall_empty_ruleset": "0",
    }
    assert lynis_result(report, row_for("SC-03"))["summary"] == "not run (skipped: prerequisites)"
    assert lynis_result(report, row_for("UPD-02"))["summary"] == "no such test"
    updates = lynis_result(report, row_for("UPD-03"))
    assert updates["summary"].startswith("warning PKGS-7392: Found one or more vulnerable")
    assert len(updates["facts"]["vulnerable_package[]"]) == 69
    assert lynis_result(report, row_for("MAL-01"))["facts"] == {"malware_scanner_installed": "0"}


def test_compare_with_our_live_evaluation(report):
    """Our side is the real agent on this machine, evaluated with the bundled catalogue."""
    evidence = collect(None)
    validate_evidence(evidence)
    settings = load_catalogue(lynis_compare.CATALOGUE).settings
    evaluation = evaluate(
        evidence, as_of=dt.date(2026, 11, 26), settings=settings, vulnerabilities=[]
    )
    result = compare(report, evaluation)
    assert len(result["rows"]) == len(MAPPING)
    for item in result["rows"]:
        assert "missing" not in item["ours"].values(), item["row"].checks
    flagged = {row.checks for row in result["both"] + result["ours_only"]}
    lynis_flags = {row.checks for row in result["both"] + result["lynis_only_mapped"]}
    assert not {row.checks for row in result["both"]} & {
        row.checks for row in result["ours_only"] + result["lynis_only_mapped"]
    }
    for item in result["rows"]:
        we_flag = any(state in ("fail", "unknown") for state in item["ours"].values())
        assert (item["row"].checks in flagged) == we_flag
        assert (item["row"].checks in lynis_flags) == bool(item["lynis"]["findings"])
    unmapped = result["lynis_unmapped"]
    assert sum(len(items) for items in unmapped.values()) == 42
    assert {finding.test for finding in unmapped["KRNL"]} == {"KRNL-5788", "KRNL-5820", "KRNL-6000"}
    assert "FIRE" not in unmapped
    assert "MALW" not in unmapped


def test_bench_reads_a_saved_report(tmp_path, capsys, monkeypatch):
    """The script end to end on the saved report (no Lynis run), writing its results file."""
    monkeypatch.setattr(lynis_compare, "RESULTS_FILE", tmp_path / "lynis.json")
    assert lynis_compare.main(["--report", str(REPORT), "--as-of", "2026-11-26", "--markdown"]) == 0
    printed = capsys.readouterr().out
    assert "Lynis 3.0.8 on Debian GNU/Linux 12 (bookworm), 2026-11-26 04:01:05" in printed
    assert "warnings 2, suggestions 47" in printed
    assert "| FW-01 | FW-01 " in printed
    assert (tmp_path / "lynis.json").exists()


def test_bench_refuses_a_file_that_is_not_a_report(tmp_path, capsys):
    other = tmp_path / "not-a-report.dat"
    other.write_text("hello=world\n")
    assert lynis_compare.main(["--report", str(other)]) == 2
    assert "is not a Lynis report" in capsys.readouterr().err
    assert lynis_compare.main(["--report", str(tmp_path / "missing.dat")]) == 2
