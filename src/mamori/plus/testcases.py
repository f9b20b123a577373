"""Test cases TC2, TC3 and TC7 of a Plus audit, judged from one host's latest evaluation: pure
Python, no Django.

Which host checks (docs/checks.md) decide each test case:

- TC2, authenticated vulnerability check: UPD-02 (OS still supported by its vendor), UPD-03 (no
  fix rated high/critical, CVSS ≥ the catalogue's threshold or unrated left unapplied for more
  than the catalogue's ``patch_days``), UPD-04 (KEV-listed fixes applied in time) and UPD-05 (no
  end-of-life software). The automatic-update settings (UPD-01/06/07) are configuration, which
  the self-assessment covers; a missing fix is what TC2 looks for.
- TC3, malware protection: MAL-01 (ClamAV with fresh signatures and on-access scanning, or
  fapolicyd enforcing, or a known EDR agent).
- TC7, account separation: UAC-01 (no account other than root with UID 0, i.e. no hidden second
  administrator), UAC-02 (no root login over SSH with a password: root is a shared account) and
  UAC-07 (no sudo rule granting every command without a password, which makes a day-to-day
  account an administrator in all but name). The list of accounts that can become root (UAC-08)
  is reported for the assessor, who confirms with the users that they do not work as them.

A device's result is ``fail`` if any of its checks fails, else ``unknown`` if any is unknown or
none applied, else ``pass``. Evidence older than the catalogue's ``plus_evidence_days`` says
nothing about the device during the audit: its result is ``unknown``, whatever it says.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PASS, FAIL, UNKNOWN, PENDING = "pass", "fail", "unknown", "pending"

ALL_CASES = ("TC1", "TC2", "TC3", "TC4", "TC5", "TC6", "TC7")
EVIDENCE_CASES = ("TC2", "TC3", "TC7")
ASSESSOR_CASES = ("TC1", "TC4", "TC5", "TC6")
EVIDENCE_CHECKS: dict[str, tuple[str, ...]] = {
    "TC2": ("UPD-02", "UPD-03", "UPD-04", "UPD-05"),
    "TC3": ("MAL-01",),
    "TC7": ("UAC-01", "UAC-02", "UAC-07"),
}
# At most this many overdue vulnerabilities are copied into a device's result (the host page
# lists them all).
OVERDUE_LISTED = 20

# Why a device's result is unknown.
NO_EVALUATION = "no_evaluation"
STALE = "stale"
NO_CHECKS = "no_checks"
UNDECIDED = "undecided"


@dataclass(frozen=True)
class DeviceVerdict:
    status: str
    facts: dict = field(default_factory=dict)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _findings(result: Mapping | None) -> list[Mapping]:
    if not isinstance(result, Mapping):
        return []
    return [item for item in result.get("findings") or [] if isinstance(item, Mapping)]


def _overdue(result: Mapping) -> list[dict]:
    keys = ("package", "installed_version", "advisory", "fixed_version", "days_since_fix", "kev")
    items = [
        item
        for item in result.get("vulnerabilities") or []
        if isinstance(item, Mapping) and item.get("overdue")
    ]
    items.sort(key=lambda item: (not item.get("kev"), -(item.get("days_since_fix") or 0)))
    return [{key: item.get(key) for key in keys} for item in items]


def judge(
    code: str,
    result: Mapping | None,
    *,
    findings_en: Iterable[Mapping] = (),
    collected_at: dt.datetime | None,
    now: dt.datetime,
    max_age_days: int,
) -> DeviceVerdict:
    """TC2, TC3 or TC7 for one device, from its latest evaluation ``result`` (the
    ``mamori.evaluation/1`` document, Japanese texts) and its English findings."""
    checks = EVIDENCE_CHECKS[code]
    if not isinstance(result, Mapping) or collected_at is None:
        return DeviceVerdict(UNKNOWN, {"reason": NO_EVALUATION})
    english = {_text(item.get("check")): item for item in findings_en if isinstance(item, Mapping)}
    statuses: dict[str, str] = {}
    findings = []
    for item in _findings(result):
        check = _text(item.get("check"))
        if check not in checks:
            continue
        status = _text(item.get("status"))
        statuses[check] = status if status in (PASS, FAIL) else UNKNOWN
        if statuses[check] != PASS:
            en = english.get(check, {})
            findings.append(
                {
                    "check": check,
                    "status": statuses[check],
                    "title": {"ja": _text(item.get("title")), "en": _text(en.get("title"))},
                    "detail": {"ja": _text(item.get("detail")), "en": _text(en.get("detail"))},
                    "remediation": {
                        "ja": _text(item.get("remediation")),
                        "en": _text(en.get("remediation")),
                    },
                }
            )
    facts: dict[str, Any] = {
        "collected_at": collected_at.isoformat(),
        "as_of": _text(result.get("as_of")),
        "checks": statuses,
        "findings": findings,
    }
    if code == "TC2":
        overdue = _overdue(result)
        facts["overdue"] = overdue[:OVERDUE_LISTED]
        facts["overdue_total"] = len(overdue)
    if code == "TC7":
        for item in _findings(result):
            if item.get("check") == "UAC-08" and isinstance(item.get("facts"), Mapping):
                administrators = item["facts"].get("administrators")
                if isinstance(administrators, list):
                    facts["administrators"] = [str(name) for name in administrators[:100]]
    if collected_at < now - dt.timedelta(days=max_age_days):
        return DeviceVerdict(UNKNOWN, {**facts, "reason": STALE})
    if not statuses:
        return DeviceVerdict(UNKNOWN, {**facts, "reason": NO_CHECKS})
    if FAIL in statuses.values():
        return DeviceVerdict(FAIL, facts)
    if UNKNOWN in statuses.values():
        return DeviceVerdict(UNKNOWN, {**facts, "reason": UNDECIDED})
    return DeviceVerdict(PASS, facts)


def aggregate(statuses: Iterable[str | None], expected: int) -> str:
    """A test case's result over the ``expected`` sampled devices, from the statuses recorded
    so far (None: not yet tested). One failing device fails the test case."""
    recorded = [status for status in statuses if status]
    if FAIL in recorded:
        return FAIL
    if expected <= 0 or len(recorded) < expected:
        return PENDING
    if UNKNOWN in recorded:
        return UNKNOWN
    return PASS


def decision_blockers(results: Mapping[str, str]) -> list[str]:
    """The test cases that stop any decision: not tested yet, or undecided."""
    return [code for code in ALL_CASES if results.get(code, PENDING) not in (PASS, FAIL)]


def failed_cases(results: Mapping[str, str]) -> list[str]:
    return [code for code in ALL_CASES if results.get(code) == FAIL]
