"""Evaluate ``mamori.evidence/1`` against the five controls: ``mamori.evaluation/1``.

The host checks are data (``checks/*.yaml``, see :mod:`mamori.verification.rules`). This module
adds the few facts a rule cannot compute by itself -- the ``derived`` namespace (sockets that the
firewall exposes, whether sshd accepts passwords, overdue and KEV-listed vulnerabilities, the
life-cycle verdicts) -- runs every check, and turns the outcomes into a verdict per control:
``fail`` if any non-informational check of the control fails, else ``unknown`` if any is unknown,
else ``pass``. Unknown is never a pass.

Texts come in Japanese (default) and English: check texts from the YAML, the few generic
sentences from the tables below. Pure logic, no Django imports: settings arrive as a Mapping.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from mamori.advisories.matching import host_platform
from mamori.core.controls import FIVE_CONTROLS
from mamori.core.controls import LABELS as CONTROL_NAMES
from mamori.verification import rules
from mamori.verification.evidence import EvidenceError, validate_evidence
from mamori.verification.rules import Check, Context, Note, clean

__all__ = [
    "DEFAULT_SETTINGS",
    "SCHEMA",
    "EvidenceError",
    "bundled_checks",
    "evaluate",
    "render_text",
    "validate_evidence",
]

SCHEMA = "mamori.evaluation/1"
LANGUAGES = ("ja", "en")

# Thresholds the checks refer to as $name. A catalogue's settings override them; the values
# equal those of the bundled catalogue CE-JP 2026, so a catalogue that lacks one still gets the
# scheme's number. ``malware_signature_max_age_days`` has no catalogue question behind it: ClamAV's
# freshclam checks for new signatures several times a day and the daily database is rebuilt
# every day, so signatures older than 3 days mean updating is broken -- yet a laptop switched
# off over a long weekend is not failed for it. ``kev_patch_days`` (known-exploited fixes)
# defaults to ``patch_days``; an AI-era catalogue can shorten it.
DEFAULT_SETTINGS: dict[str, int | float] = {
    "patch_days": 14,
    "cvss_threshold": 7.0,
    "lockout_attempts": 10,
    "password_min_length": 12,
    "password_min_length_with_blocklist": 8,
    "password_min_length_with_mfa": 8,
    "malware_signature_max_age_days": 3,
}

OS_PACKAGE_MANAGERS = ("dpkg", "rpm", "apk")
MATCHING_SETTINGS = {"patch_days", "cvss_threshold", "kev_patch_days"}
SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
WILDCARD_ADDRESSES = {"0.0.0.0", "::", "*", "::ffff:0.0.0.0", "[::]"}  # noqa: S104 - names, not binds
ANY_SOURCES = {"any", "", "0.0.0.0/0", "::/0", "anywhere"}
MAX_FACT_ITEMS = 100  # list items kept per fact in the JSON
MAX_SHOWN_ITEMS = 20  # list items written into a detail sentence
MAX_NOTES = 6

STATUS_LABELS = {
    "pass": {"ja": "合格", "en": "PASS"},
    "fail": {"ja": "不合格", "en": "FAIL"},
    "unknown": {"ja": "判定不能", "en": "UNKNOWN"},
    "info": {"ja": "情報", "en": "INFO"},
}
SEVERITY_LABELS = {
    "critical": {"ja": "緊急", "en": "critical"},
    "high": {"ja": "高", "en": "high"},
    "medium": {"ja": "中", "en": "medium"},
    "low": {"ja": "低", "en": "low"},
    "info": {"ja": "情報", "en": "info"},
}
# Generic sentences: the check files hold the specific ones.
TEXT = {
    "unknown_detail": {
        "ja": "証拠が不足しているため判定できません。",
        "en": "The evidence is not sufficient to decide.",
    },
    "unknown_remediation": {
        "ja": "根拠に示した不足している情報を得られるようにして（エージェントを root 権限で実行する、脆弱性情報とサポート期限のデータを取り込む等）、改めて評価してください。判定できない項目は合格とはみなされません。",
        "en": "Make the missing information named above available (run the agent as root; import advisories and life-cycle data) and evaluate again. A check that cannot be decided never counts as passed.",
    },
    "applies_unknown": {
        "ja": "このチェックが当てはまるかどうかを判断できません。",
        "en": "It cannot be told whether this check applies.",
    },
    "none": {"ja": "なし", "en": "none"},
    "not_set": {"ja": "未設定", "en": "not set"},
    "unknown": {"ja": "不明", "en": "unknown"},
    "yes": {"ja": "はい", "en": "yes"},
    "no": {"ja": "いいえ", "en": "no"},
    "more": {"ja": "ほか {count} 件", "en": "{count} more"},
    "count_items": {"ja": "{count} 件のリスト", "en": "a list of {count}"},
    "count_keys": {"ja": "{count} 項目のオブジェクト", "en": "an object of {count} keys"},
    "why": {"ja": "根拠: ", "en": "Why: "},
}
NOTE_TEXT = {
    "false": {
        "ja": "{path} は {value}（期待: {rule}）",
        "en": "{path} is {value} (expected {rule})",
    },
    "unwanted": {
        "ja": "{path} は {value}（{rule} であってはならない）",
        "en": "{path} is {value} (must not be {rule})",
    },
    "unknown": {"ja": "{path} は不明（{reason}）", "en": "{path} is unknown ({reason})"},
    "each_false": {
        "ja": "{path} の {count} 件中 {failed} 件が不適合: {items}",
        "en": "{path}: {failed} of {count} items do not comply: {items}",
    },
    "some_true_unwanted": {
        "ja": "{path} にあってはならない項目 {failed} 件: {items}",
        "en": "{path}: {failed} items that must not be there: {items}",
    },
    "some_false": {
        "ja": "{path} の {count} 件のいずれも条件を満たしません",
        "en": "{path}: none of {count} items complies",
    },
    "each_true_unwanted": {
        "ja": "{path} のすべての項目が条件に当てはまります（当てはまってはならない）",
        "en": "{path}: every item matches, which it must not",
    },
    "items_unknown": {
        "ja": "{path} の {failed} 件は判定できません: {items}",
        "en": "{path}: cannot decide for {failed} items: {items}",
    },
}
REASON_TEXT = {
    "section_unknown": {"ja": "収集できなかったセクション", "en": "section not collected"},
    "null": {"ja": "エージェントが確認できなかった値", "en": "not established by the agent"},
    "missing": {"ja": "証拠に含まれない値", "en": "not in the evidence"},
    "type": {"ja": "想定外の値の型", "en": "unexpected value type"},
    "setting": {"ja": "未定義の設定値", "en": "setting not defined"},
}
RULE_TEXT = {
    "equals": {"ja": "{x}", "en": "{x}"},
    "not_equals": {"ja": "{x} 以外", "en": "other than {x}"},
    "in": {"ja": "{x} のいずれか", "en": "one of {x}"},
    "not_in": {"ja": "{x} 以外", "en": "none of {x}"},
    "contains": {"ja": "{x} を含む", "en": "containing {x}"},
    "not_contains": {"ja": "{x} を含まない", "en": "not containing {x}"},
    "empty": {"ja": "空", "en": "empty"},
    "not_empty": {"ja": "空でない", "en": "not empty"},
    "lt": {"ja": "{x} 未満", "en": "< {x}"},
    "lte": {"ja": "{x} 以下", "en": "≤ {x}"},
    "gt": {"ja": "{x} 超", "en": "> {x}"},
    "gte": {"ja": "{x} 以上", "en": "≥ {x}"},
    "within_days": {"ja": "{x} 日以内", "en": "at most {x} days old"},
}
# Why a derived fact is null, shown with the unknown it causes.
DERIVED_REASONS = {
    "not_matched": {
        "ja": "脆弱性の照合が行われていません",
        "en": "vulnerability matching was not run",
    },
    "packages_incomplete": {
        "ja": "パッケージ一覧を完全には収集できませんでした",
        "en": "the package list could not be fully collected",
    },
    "no_lifecycle": {
        "ja": "サポート期限の判定が行われていません",
        "en": "support life-cycle was not assessed",
    },
    "firewall_unknown": {
        "ja": "ファイアウォールまたは待ち受けポートの状態が不明です",
        "en": "the firewall or the listening sockets are not known",
    },
    "ssh_unknown": {"ja": "sshd の設定が不明です", "en": "the sshd configuration is not known"},
    "no_advisories": {
        "ja": "このホストの OS リリース向けの脆弱性情報が取り込まれていません",
        "en": "no advisories for this host's OS release have been imported",
    },
    "os_not_matched": {
        "ja": "この OS のパッケージは脆弱性照合の対象外です",
        "en": "this OS's packages are not covered by vulnerability matching",
    },
}


@lru_cache(maxsize=1)
def bundled_checks() -> tuple[Check, ...]:
    """The checks shipped in ``checks/*.yaml``, validated once per process."""
    return tuple(rules.load_checks(settings=DEFAULT_SETTINGS))


def effective_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    merged: dict[str, Any] = dict(DEFAULT_SETTINGS)
    for name, value in (settings or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            merged[name] = value
    merged.setdefault("kev_patch_days", merged["patch_days"])
    return merged


def evaluate(
    evidence: Mapping[str, Any],
    *,
    as_of: dt.date,
    settings: Mapping[str, Any],
    vulnerabilities: Sequence[Mapping[str, Any]] | None = None,
    os_support: Mapping[str, Any] | None = None,
    software_support: Sequence[Mapping[str, Any]] | None = None,
    vulnerabilities_complete: bool = True,
    language: str = "ja",
    catalogue: str | None = None,
    checks: Iterable[Check] | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Evaluate checked evidence (see ``validate_evidence``) as of ``as_of``.

    ``vulnerabilities``, ``os_support`` and ``software_support`` are what
    ``mamori.advisories.services.assess_evidence`` returns. None means "not assessed": the
    checks that need them are unknown, never passed; an empty list means "assessed, none".
    ``vulnerabilities_complete=False`` says the advisory data does not cover the host's
    ecosystem and release: vulnerabilities found still fail, but none found is unknown.
    """
    if not isinstance(evidence, Mapping):
        raise TypeError("evidence must be a mapping; validate it first")
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
    values = effective_settings(settings)
    derived, explanations = derive(
        evidence,
        as_of=as_of,
        settings=values,
        vulnerabilities=vulnerabilities,
        os_support=os_support,
        software_support=software_support,
        vulnerabilities_complete=vulnerabilities_complete,
        language=language,
    )
    context = Context(
        document={**evidence, "derived": derived},
        settings=values,
        as_of=as_of,
        explanations=explanations,
    )
    selected = tuple(checks) if checks is not None else bundled_checks()
    findings, not_applicable = [], []
    for check in selected:
        finding = _finding(check, context, language)
        if finding is None:
            not_applicable.append(check.id)
        else:
            findings.append(finding)
    controls = control_verdicts(findings)
    passed_vulnerabilities = [dict(item) for item in vulnerabilities or ()]
    # The thresholds this evaluation applied: the checks' $settings, plus those the matcher
    # (patch_days, cvss_threshold) and the KEV rule use.
    used = sorted(
        {name for check in selected for name in check.settings_used()} | MATCHING_SETTINGS
    )
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    return {
        "schema": SCHEMA,
        "evaluated_at": moment.isoformat().replace("+00:00", "Z"),
        "as_of": as_of.isoformat(),
        "language": language,
        "catalogue": catalogue,
        "settings": {name: values[name] for name in used if name in values},
        "host": _host(evidence),
        "controls": controls,
        "findings": findings,
        "not_applicable": not_applicable,
        "vulnerabilities": passed_vulnerabilities,
        "os_support": dict(os_support) if os_support is not None else None,
        "software_support": (
            [dict(item) for item in software_support] if software_support is not None else None
        ),
        "summary": _summary(findings, not_applicable, vulnerabilities),
    }


def control_verdicts(findings: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """fail if any deciding check fails, else unknown if any is unknown (or none applied),
    else pass."""
    statuses: dict[str, list[str]] = {control: [] for control in FIVE_CONTROLS}
    for finding in findings:
        if finding["control"] in statuses and finding["status"] != "info":
            statuses[finding["control"]].append(finding["status"])
    verdicts = {}
    for control, seen in statuses.items():
        if "fail" in seen:
            verdicts[control] = "fail"
        elif "unknown" in seen or not seen:
            verdicts[control] = "unknown"
        else:
            verdicts[control] = "pass"
    return verdicts


# ---------------------------------------------------------------------------------------------
# Derived facts


def derive(
    evidence: Mapping[str, Any],
    *,
    as_of: dt.date,
    settings: Mapping[str, Any],
    vulnerabilities: Sequence[Mapping[str, Any]] | None,
    os_support: Mapping[str, Any] | None,
    software_support: Sequence[Mapping[str, Any]] | None,
    vulnerabilities_complete: bool = True,
    language: str = "ja",
) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``derived`` namespace the checks read, and why any of its values is null."""
    why: dict[str, str] = {}

    def unknown(name: str, reason: str) -> None:
        why[f"derived.{name}"] = DERIVED_REASONS[reason][language]

    derived: dict[str, Any] = {}
    derived["exposed_sockets"] = exposed_sockets(evidence)
    if derived["exposed_sockets"] is None:
        unknown("exposed_sockets", "firewall_unknown")
    contexts = ssh_contexts(evidence)
    derived["ssh_contexts"] = contexts
    derived["ssh_password_login"] = (
        None if contexts is None else any(context["password_login"] for context in contexts)
    )
    if contexts is None:
        unknown("ssh_contexts", "ssh_unknown")
        unknown("ssh_password_login", "ssh_unknown")

    services = evidence.get("services")
    enabled = services.get("enabled") if isinstance(services, Mapping) else None
    derived["enabled_service_count"] = len(enabled) if isinstance(enabled, list) else None

    basis = vulnerability_basis(
        evidence,
        matched=vulnerabilities is not None,
        advisories_cover_release=vulnerabilities_complete,
    )
    facts, reasons = derive_vulnerability_facts(basis, vulnerabilities, settings, language)
    derived.update(facts)
    why.update(reasons)
    if os_support is None:
        derived["os_support"] = None
        unknown("os_support", "no_lifecycle")
    else:
        derived["os_support"] = dict(os_support)
        if os_support.get("supported") is None and os_support.get("reason"):
            why["derived.os_support.supported"] = clean(str(os_support["reason"]), 80)
    if software_support is None:
        derived["software_support"] = None
        unknown("software_support", "no_lifecycle")
    else:
        derived["software_support"] = [dict(item) for item in software_support]
    return derived, why


@dataclass(frozen=True)
class VulnerabilityBasis:
    """What, besides the vulnerability list itself, the vulnerability checks read: whether the
    package list is complete, whether the advisory data covers the host (``ok``, or why not:
    ``no_advisories``, ``os_not_matched``), and whether matching ran at all. Stored with each
    evaluation so that a re-match can decide those checks again from the list alone."""

    packages_complete: bool
    coverage: str
    matched: bool


COVERAGE = ("ok", "no_advisories", "os_not_matched")
VULNERABILITY_PATHS = (
    "derived.vulnerability_count",
    "derived.overdue_vulnerabilities",
    "derived.kev_overdue",
)
# What a vulnerability check may read besides the list: the basis. A check that reads more
# could not be decided again from stored rows (``vulnerability_checks`` refuses it).
BASIS_PATHS = ("derived.packages_complete", "derived.vulnerabilities_complete")


def vulnerability_basis(
    evidence: Mapping[str, Any], *, matched: bool, advisories_cover_release: bool
) -> VulnerabilityBasis:
    packages = evidence.get("packages")
    complete = isinstance(packages, Mapping) and packages.get("status") == "ok"
    if not advisories_cover_release:
        coverage = "no_advisories"
    elif not vulnerability_ecosystem_known(evidence):
        coverage = "os_not_matched"
    else:
        coverage = "ok"
    return VulnerabilityBasis(packages_complete=complete, coverage=coverage, matched=matched)


def derive_vulnerability_facts(
    basis: VulnerabilityBasis,
    vulnerabilities: Sequence[Mapping[str, Any]] | None,
    settings: Mapping[str, Any],
    language: str,
    total: int | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``derived`` facts the vulnerability checks read, and why any of them is null.
    With ``total``, ``vulnerabilities`` may hold only the overdue and KEV-listed items (the
    others are only counted)."""
    derived: dict[str, Any] = {}
    why: dict[str, str] = {}

    def unknown(name: str, reason: str) -> None:
        why[f"derived.{name}"] = DERIVED_REASONS[reason][language]

    derived["packages_complete"] = True if basis.packages_complete else None
    if not basis.packages_complete:
        unknown("packages_complete", "packages_incomplete")
    derived["vulnerabilities_complete"] = True if basis.coverage == "ok" else None
    if basis.coverage != "ok":
        unknown("vulnerabilities_complete", basis.coverage)
    if vulnerabilities is None or not basis.matched:
        for name in ("vulnerability_count", "overdue_vulnerabilities", "kev_overdue"):
            derived[name] = None
            unknown(name, "not_matched")
        return derived, why
    items = [item for item in vulnerabilities if isinstance(item, Mapping)]
    derived["vulnerability_count"] = len(items) if total is None else total
    derived["overdue_vulnerabilities"] = [
        _vulnerability_fact(item) for item in items if item.get("overdue") is True
    ]
    kev_days = settings["kev_patch_days"]
    derived["kev_overdue"] = [
        _vulnerability_fact(item) for item in items if is_kev_overdue(item, kev_days)
    ]
    return derived, why


def is_kev_overdue(item: Mapping[str, Any], kev_days: int | float) -> bool:
    """A KEV-listed vulnerability whose fix has been out longer than ``kev_days``."""
    return (
        item.get("kev") is True
        and bool(item.get("fixed_version"))
        and _is_number(item.get("days_since_fix"))
        and item["days_since_fix"] > kev_days
    )


def _check_paths(check: Check) -> set[str]:
    paths: set[str] = set()
    for node in (check.condition, check.applies_when):
        if node is not None:
            paths.update(rules.paths_of(node))
    paths.update(spec["path"] for spec in check.facts.values())
    return paths


def _reads_vulnerabilities(path: str) -> bool:
    return any(path == p or path.startswith((f"{p}.", f"{p}[")) for p in VULNERABILITY_PATHS)


def vulnerability_checks(checks: Iterable[Check] | None = None) -> tuple[Check, ...]:
    """The checks whose outcome depends on the vulnerability list. Each must read nothing but
    the list and the basis, or a re-match could not decide it again from stored rows."""
    if checks is None:
        return _bundled_vulnerability_checks()
    return _vulnerability_checks(checks)


@lru_cache(maxsize=1)
def _bundled_vulnerability_checks() -> tuple[Check, ...]:
    return _vulnerability_checks(bundled_checks())


def _vulnerability_checks(checks: Iterable[Check]) -> tuple[Check, ...]:
    found = []
    for check in checks:
        paths = _check_paths(check)
        if not any(_reads_vulnerabilities(path) for path in paths):
            continue
        other = sorted(
            path
            for path in paths
            if not _reads_vulnerabilities(path)
            and not any(path == p or path.startswith(f"{p}.") for p in BASIS_PATHS)
        )
        if other:
            raise ValueError(
                f"{check.source}: check {check.id} reads the vulnerability list and also "
                f"{', '.join(other)}; a vulnerability check may read only the list and "
                f"{', '.join(BASIS_PATHS)}"
            )
        for node in (check.condition, check.applies_when):
            if node is not None:
                _require_summary_tests(check, node)
        found.append(check)
    return tuple(found)


# What a vulnerability check's condition may ask of the lists and the count, so that its
# outcome depends only on how many items there are (VulnerabilitySummary), never on which:
# a re-match then decides it from counters, without reading every row of every host.
LIST_TESTS = frozenset(rules.SHAPE_TESTS)
COUNT_TESTS = frozenset((*rules.COMPARISONS, "equals", "not_equals"))
LIST_PATHS = ("derived.overdue_vulnerabilities", "derived.kev_overdue")


def _require_summary_tests(check: Check, node: Mapping[str, Any]) -> None:
    for operator in rules.COMBINATORS:
        if operator in node:
            for part in node[operator]:
                _require_summary_tests(check, part)
            return
    path = node.get("path", "")
    operators = set(node) - rules.LEAF_EXTRAS
    if path in LIST_PATHS:
        allowed = LIST_TESTS
    elif path == "derived.vulnerability_count":
        allowed = COUNT_TESTS
    elif _reads_vulnerabilities(path):
        allowed = frozenset()
    else:
        return
    if not operators <= allowed:
        raise ValueError(
            f"{check.source}: check {check.id} tests {path} with "
            f"{', '.join(sorted(operators - allowed))}; a vulnerability check may test the lists "
            "only for emptiness and the count only by comparison"
        )


@dataclass(frozen=True)
class VulnerabilitySummary:
    """All a vulnerability check's outcome depends on (see ``_require_summary_tests``)."""

    total: int
    overdue: int
    kev_overdue: int


def vulnerability_statuses(
    basis: VulnerabilityBasis,
    summary: VulnerabilitySummary,
    *,
    settings: Mapping[str, Any],
    as_of: dt.date,
) -> dict[str, str]:
    """The status of each vulnerability check, from the counts alone. The conditions are run
    by the rule engine on lists of the right length whose items it never looks into (the
    checks are refused at load otherwise), so this agrees with ``evaluate`` by construction."""
    values = effective_settings(settings)
    derived, why = derive_vulnerability_facts(basis, [], values, "en", summary.total)
    if derived["overdue_vulnerabilities"] is not None:
        derived["overdue_vulnerabilities"] = [{}] * summary.overdue
        derived["kev_overdue"] = [{}] * summary.kev_overdue
    context = Context(document={"derived": derived}, settings=values, as_of=as_of, explanations=why)
    statuses = {}
    for check in vulnerability_checks():
        applies = True
        if check.applies_when is not None:
            applies = rules.evaluate_condition(check.applies_when, context).value
            if applies is rules.FALSE:
                continue  # not applicable: no finding, as in ``_finding``
        if check.informational:
            statuses[check.id] = "info"
            continue
        if applies is rules.UNKNOWN:
            statuses[check.id] = "unknown"
            continue
        outcome = rules.evaluate_condition(check.condition, context)
        statuses[check.id] = {True: "pass", False: "fail", None: "unknown"}[outcome.value]
    return statuses


def vulnerability_findings(
    basis: VulnerabilityBasis,
    vulnerabilities: Sequence[Mapping[str, Any]] | None,
    *,
    settings: Mapping[str, Any],
    as_of: dt.date,
    language: str = "ja",
    checks: Iterable[Check] | None = None,
    total: int | None = None,
) -> list[dict[str, Any]]:
    """The findings of the vulnerability checks alone, exactly as ``evaluate`` writes them for
    the same list and basis (a re-match and the host page rely on it). ``total``: see
    ``derive_vulnerability_facts``."""
    values = effective_settings(settings)
    derived, why = derive_vulnerability_facts(basis, vulnerabilities, values, language, total)
    context = Context(document={"derived": derived}, settings=values, as_of=as_of, explanations=why)
    findings = []
    for check in vulnerability_checks(checks):
        finding = _finding(check, context, language)
        if finding is not None:
            findings.append(finding)
    return findings


def with_vulnerabilities(
    result: Mapping[str, Any],
    vulnerabilities: Sequence[Mapping[str, Any]] | None,
    basis: VulnerabilityBasis,
    *,
    language: str,
    findings: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """An evaluation document with its vulnerability list replaced: the vulnerability checks'
    findings decided again, the verdicts and the summary recomputed. ``findings`` are the
    document's findings in ``language`` when they are stored apart from it."""
    as_of = dt.date.fromisoformat(result["as_of"])
    fresh = {
        finding["check"]: finding
        for finding in vulnerability_findings(
            basis,
            vulnerabilities,
            settings=result.get("settings") or {},
            as_of=as_of,
            language=language,
        )
    }
    order = {check.id: position for position, check in enumerate(bundled_checks())}
    decided_again = vulnerability_check_ids()
    kept = [
        dict(finding)
        for finding in (result.get("findings") if findings is None else findings) or ()
        if finding.get("check") not in decided_again
    ]
    merged = sorted([*kept, *fresh.values()], key=lambda f: order.get(f["check"], len(order)))
    not_applicable = [
        check_id for check_id in result.get("not_applicable") or () if check_id not in decided_again
    ] + sorted(decided_again - fresh.keys(), key=lambda check_id: order.get(check_id, 0))
    listed = None if vulnerabilities is None else [dict(item) for item in vulnerabilities]
    return {
        **result,
        "language": language,
        "controls": control_verdicts(merged),
        "findings": merged,
        "not_applicable": not_applicable,
        "vulnerabilities": listed or [],
        "summary": _summary(merged, not_applicable, listed),
    }


@lru_cache(maxsize=1)
def vulnerability_check_ids() -> frozenset[str]:
    """Ids of the bundled checks that depend on the vulnerability list."""
    return frozenset(check.id for check in vulnerability_checks())


def vulnerability_ecosystem_known(evidence: Mapping[str, Any]) -> bool:
    """False when the host has OS packages whose ecosystem vulnerability matching cannot look
    up (an OS without OSV data, or an unreadable os-release): none found then means nothing."""
    packages = evidence.get("packages")
    items = packages.get("items") if isinstance(packages, Mapping) else None
    has_os_packages = isinstance(items, list) and any(
        isinstance(item, Mapping) and item.get("manager") in OS_PACKAGE_MANAGERS for item in items
    )
    return not has_os_packages or host_platform(evidence) is not None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _vulnerability_fact(item: Mapping[str, Any]) -> dict[str, Any]:
    keys = (
        "package",
        "installed_version",
        "advisory",
        "fixed_version",
        "severity",
        "cvss",
        "kev",
        "fix_published",
        "days_since_fix",
    )
    return {key: item.get(key) for key in keys}


def exposed_sockets(evidence: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """Sockets listening on every address that the host firewall lets anyone reach.

    With a default-deny firewall, a wildcard socket is exposed when an allow rule from any
    source covers its port and protocol (a rule limited to some sources is an allow-list, which
    the scheme accepts). With a default-accept firewall or none active, every wildcard socket is
    exposed. None when the sockets or the firewall cannot be read.
    """
    listening = evidence.get("listening")
    firewall = evidence.get("firewall")
    if not isinstance(listening, Mapping) or listening.get("status") == "unknown":
        return None
    sockets = listening.get("sockets")
    if not isinstance(sockets, list) or not isinstance(firewall, Mapping):
        return None
    if firewall.get("status") == "unknown":
        return None
    wildcard = [
        item
        for item in sockets
        if isinstance(item, Mapping)
        and isinstance(item.get("address"), str)
        and _is_wildcard(item["address"])
        and _is_number(item.get("port"))
    ]
    default = firewall.get("default_inbound")
    if default in ("drop", "reject"):
        allowed = firewall.get("allowed_inbound")
        if not isinstance(allowed, list):
            return None
        open_rules = [
            rule
            for rule in allowed
            if isinstance(rule, Mapping) and str(rule.get("source", "any")).lower() in ANY_SOURCES
        ]
        exposed = [item for item in wildcard if any(_covers(rule, item) for rule in open_rules)]
    elif default == "accept":
        exposed = wildcard
    else:
        backends = firewall.get("backends")
        known_off = (
            firewall.get("status") == "ok"
            and isinstance(backends, list)
            and all(isinstance(b, Mapping) and b.get("active") is False for b in backends)
        )
        if not known_off:
            return None
        exposed = wildcard
    unique = {
        (str(item.get("protocol")), str(item["address"]), int(item["port"])) for item in exposed
    }
    return [
        {"protocol": protocol, "address": address, "port": port}
        for protocol, address, port in sorted(unique, key=lambda key: (key[2], key[0], key[1]))
    ]


def _is_wildcard(address: str) -> bool:
    if address in WILDCARD_ADDRESSES:
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_unspecified
    except ValueError:
        return False


def _covers(rule: Mapping[str, Any], socket: Mapping[str, Any]) -> bool:
    protocol = str(rule.get("protocol", "any")).lower()
    family = str(socket.get("protocol", "")).lower().rstrip("6")
    if protocol not in ("any", "all", family):
        return False
    port = socket["port"]
    allowed = rule.get("port")
    if allowed in (None, "any", "*"):
        return True
    if _is_number(allowed):
        return int(allowed) == port
    if isinstance(allowed, str):
        low, _, high = allowed.replace(":", "-").partition("-")
        try:
            return int(low) <= port <= int(high or low)
        except ValueError:
            return False
    return False


# sshd's own defaults for the keys the checks read (sshd_config(5), OpenSSH 7.0 and later).
SSH_DEFAULTS = {
    "permitrootlogin": "prohibit-password",
    "permitemptypasswords": "no",
    "maxauthtries": 6,
    "passwordauthentication": "yes",
    "kbdinteractiveauthentication": "yes",
    "usepam": "no",
    "authenticationmethods": "any",
}


def ssh_contexts(evidence: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """sshd's effective settings per context: the global ones, and for every ``Match`` block
    the global ones overridden by the block's own -- with sshd's defaults for absent keys, and
    whether a password is accepted there. Empty when sshd is not installed; None when its
    configuration is unknown (or Match blocks exist that the evidence does not detail)."""
    ssh = evidence.get("ssh")
    if not isinstance(ssh, Mapping) or ssh.get("status") == "unknown":
        return None
    if ssh.get("installed") is False:
        return []
    settings = ssh.get("settings")
    if ssh.get("installed") is not True or not isinstance(settings, Mapping):
        return None
    contexts = [("global", settings)]
    matches = ssh.get("matches")
    if isinstance(matches, list):
        for block in matches:
            if not isinstance(block, Mapping) or not isinstance(block.get("settings"), Mapping):
                return None
            where = f"{block.get('file')}:{block.get('line')}"
            name = f"Match {clean(str(block.get('criteria') or ''), 80)} ({clean(where, 120)})"
            contexts.append((name, {**settings, **block["settings"]}))
    elif ssh.get("match_blocks"):
        return None
    return [
        {
            "context": name,
            "permitrootlogin": _ssh_value(values, "permitrootlogin"),
            "permitemptypasswords": _ssh_value(values, "permitemptypasswords"),
            "maxauthtries": _ssh_value(values, "maxauthtries"),
            "password_login": _ssh_password_login(values),
        }
        for name, values in contexts
    ]


def _ssh_value(values: Mapping[str, Any], name: str, *aliases: str) -> Any:
    for key in (name, *aliases):
        value = values.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
        if _is_number(value):
            return value
    return SSH_DEFAULTS[name]


def _ssh_password_login(values: Mapping[str, Any]) -> bool:
    """A password is accepted directly, or through keyboard-interactive when PAM asks for it,
    unless AuthenticationMethods allows neither."""
    methods = str(_ssh_value(values, "authenticationmethods"))
    if methods != "any":
        allowed = {method.split(":")[0] for chain in methods.split() for method in chain.split(",")}
        if not allowed & {"password", "keyboard-interactive"}:
            return False
    password = _ssh_value(values, "passwordauthentication") != "no"
    keyboard = (
        _ssh_value(values, "kbdinteractiveauthentication", "challengeresponseauthentication")
        != "no"
    )
    return password or (keyboard and _ssh_value(values, "usepam") == "yes")


# ---------------------------------------------------------------------------------------------
# Findings


def _finding(check: Check, context: Context, language: str) -> dict[str, Any] | None:
    notes: list[Note] = []
    applies_unknown = False
    if check.applies_when is not None:
        applies = rules.evaluate_condition(check.applies_when, context)
        if applies.value is rules.FALSE:
            return None
        if applies.value is rules.UNKNOWN:
            applies_unknown = True
            notes = applies.notes
    if check.informational:
        status = "info"
    elif applies_unknown:
        status = "unknown"
    else:
        outcome = rules.evaluate_condition(check.condition, context)
        status = {True: "pass", False: "fail", None: "unknown"}[outcome.value]
        notes = outcome.notes
    facts = {name: _fact(spec, context) for name, spec in check.facts.items()}
    detail = _detail(check, status, facts, notes, applies_unknown, language)
    if status == "fail":
        remediation = check.remediation[language]
    elif status == "unknown":
        remediation = TEXT["unknown_remediation"][language]
    else:
        remediation = ""
    return {
        "check": check.id,
        "control": check.control,
        "status": status,
        "severity": check.severity,
        "title": check.title[language],
        "detail": detail,
        "remediation": remediation,
        "questions": list(check.questions),
        "facts": {name: value for name, (value, _reason, _spec) in facts.items()},
    }


def _fact(spec: Mapping[str, str], context: Context) -> tuple[Any, str, Mapping[str, str]]:
    """(value, why it is unknown or "", spec); lists capped for the JSON."""
    value, reason = rules.resolve(context.document, spec["path"], context)
    if isinstance(value, list):
        value = value[:MAX_FACT_ITEMS]
    return (None if reason else value), reason, spec


def _detail(
    check: Check,
    status: str,
    facts: Mapping[str, tuple[Any, str, Mapping[str, str]]],
    notes: list[Note],
    applies_unknown: bool,
    language: str,
) -> str:
    shown = {
        name: _show_fact(value, reason, spec, language)
        for name, (value, reason, spec) in facts.items()
    }
    if applies_unknown and not check.informational:
        text = TEXT["applies_unknown"][language]
    elif status in check.detail:
        text = check.detail[status][language].format_map(shown)
    else:
        text = TEXT["unknown_detail"][language]
    if status in ("fail", "unknown") and notes:
        explained = _explain(notes, language)
        if explained:
            text = f"{text} {TEXT['why'][language]}{explained}"
    return text


def _show_fact(value: Any, reason: str, spec: Mapping[str, str], language: str) -> str:
    if reason == "missing":
        return TEXT["not_set"][language]
    if reason:
        return TEXT["unknown"][language]
    if isinstance(value, list):
        if not value:
            return TEXT["none"][language]
        template = spec.get("item", "")
        shown = [
            rules.label_item(item, template) if template else _scalar(item, language)
            for item in value[:MAX_SHOWN_ITEMS]
        ]
        if len(value) > MAX_SHOWN_ITEMS:
            shown.append(TEXT["more"][language].format(count=len(value) - MAX_SHOWN_ITEMS))
        return ", ".join(shown)
    return _scalar(value, language)


def _scalar(value: Any, language: str) -> str:
    if isinstance(value, rules.Count):
        return TEXT[f"count_{value.kind}"][language].format(count=value.size)
    if isinstance(value, bool):
        return TEXT["yes" if value else "no"][language]
    if value is None:
        return TEXT["unknown"][language]
    if isinstance(value, Mapping):
        if not value:
            return TEXT["none"][language]
        parts = []
        for key, item in list(value.items())[:MAX_SHOWN_ITEMS]:
            if isinstance(item, list):
                item = " ".join(_scalar(part, language) for part in item[:MAX_SHOWN_ITEMS])
            elif not isinstance(item, str):
                item = _scalar(item, language)
            parts.append(f"{clean(str(key), 60)}: {clean(item)}")
        return ", ".join(parts)
    if isinstance(value, list):
        return ", ".join(_scalar(item, language) for item in value[:MAX_SHOWN_ITEMS])
    return clean(str(value))


def _explain(notes: list[Note], language: str) -> str:
    sentences: list[str] = []
    for note in notes:
        sentence = _note_sentence(note, language)
        if sentence and sentence not in sentences:
            sentences.append(sentence)
    if len(sentences) > MAX_NOTES:
        extra = TEXT["more"][language].format(count=len(sentences) - MAX_NOTES)
        sentences = [*sentences[:MAX_NOTES], extra]
    return "; ".join(sentences)


def _note_sentence(note: Note, language: str) -> str:
    if note.operator in rules.ITEM_TESTS and note.reason in ("", "items_unknown"):
        items = ", ".join(note.items)
        if note.more_items:
            items += ", " + TEXT["more"][language].format(count=note.more_items)
        failed = len(note.items) + note.more_items
        values = {"path": note.path, "count": note.count, "failed": failed, "items": items}
        if note.state == "unknown":
            key = "items_unknown" if note.items else None
        elif note.operator == "each":
            key = "each_false" if note.state == "false" and note.expected else None
            if note.state == "true" and not note.expected:
                key = "each_true_unwanted"
        else:
            key = "some_true_unwanted" if note.state == "true" and not note.expected else None
            if note.state == "false" and note.expected:
                key = "some_false"
        return NOTE_TEXT[key][language].format(**values) if key else ""
    if note.state == "unknown":
        reason = REASON_TEXT.get(note.reason, REASON_TEXT["null"])[language]
        if note.info and note.reason == "null":
            reason = note.info  # a derived fact says why it is null
        elif note.info:
            reason = f"{reason}: {note.info}"
        return NOTE_TEXT["unknown"][language].format(path=note.path, reason=reason)
    holds = note.state == "true"
    if holds == note.expected:
        return ""  # this test is not why the check failed
    template = NOTE_TEXT["false" if note.expected else "unwanted"][language]
    return template.format(
        path=note.path, value=_scalar(note.value, language), rule=_rule(note, language)
    )


def _rule(note: Note, language: str) -> str:
    operand = note.operand
    if isinstance(operand, list):
        shown = ", ".join(_scalar(item, language) for item in operand)
    elif isinstance(operand, str) and operand.startswith("$"):
        shown = operand
    else:
        shown = _scalar(operand, language)
    return RULE_TEXT[note.operator][language].format(x=shown)


def _host(evidence: Mapping[str, Any]) -> dict[str, Any]:
    host = evidence.get("host") if isinstance(evidence.get("host"), Mapping) else {}
    os_release = evidence.get("os") if isinstance(evidence.get("os"), Mapping) else {}
    return {
        "hostname": host.get("hostname"),
        "machine_id": host.get("machine_id"),
        "architecture": host.get("architecture"),
        "os": os_release.get("pretty_name") or os_release.get("name"),
        "collected_at": evidence.get("collected_at"),
    }


def _summary(
    findings: list[dict[str, Any]],
    not_applicable: list[str],
    vulnerabilities: Sequence[Mapping[str, Any]] | None,
) -> dict[str, Any]:
    counts = dict.fromkeys(rules.STATUSES, 0)
    for finding in findings:
        counts[finding["status"]] += 1
    items = [item for item in vulnerabilities or () if isinstance(item, Mapping)]
    return {
        **counts,
        "not_applicable": len(not_applicable),
        "vulnerabilities": len(items) if vulnerabilities is not None else None,
        "overdue": sum(1 for item in items if item.get("overdue") is True)
        if vulnerabilities is not None
        else None,
        "kev": sum(1 for item in items if item.get("kev") is True)
        if vulnerabilities is not None
        else None,
    }


# ---------------------------------------------------------------------------------------------
# Text report

REPORT_TEXT = {
    "title": {"ja": "Mamori 評価結果", "en": "Mamori evaluation"},
    "host": {"ja": "ホスト", "en": "Host"},
    "as_of": {"ja": "基準日", "en": "As of"},
    "catalogue": {"ja": "カタログ", "en": "Catalogue"},
    "controls": {"ja": "5つの基本対策", "en": "Controls"},
    "failing": {"ja": "不合格のチェック", "en": "Failing checks"},
    "undecided": {"ja": "判定不能のチェック", "en": "Undecided checks"},
    "questions": {"ja": "設問", "en": "Questions"},
    "detail": {"ja": "詳細", "en": "Detail"},
    "remediation": {"ja": "対処", "en": "Remediation"},
    "overdue": {"ja": "期限超過の脆弱性", "en": "Overdue vulnerabilities"},
    "no_overdue": {"ja": "期限超過の脆弱性はありません。", "en": "No overdue vulnerabilities."},
    "not_matched": {
        "ja": "脆弱性の照合は行われていません。",
        "en": "Vulnerability matching was not run.",
    },
    "fixed_in": {"ja": "修正版", "en": "fixed in"},
    "published": {"ja": "公開", "en": "published"},
    "days": {"ja": "{days} 日経過", "en": "{days} days ago"},
    "summary": {
        "ja": "集計: 合格 {pass} / 不合格 {fail} / 判定不能 {unknown} / 情報 {info} / 対象外 {not_applicable}",
        "en": "Summary: {pass} passed, {fail} failed, {unknown} undecided, {info} informational, {not_applicable} not applicable",
    },
    "vulnerability_summary": {
        "ja": "脆弱性 {vulnerabilities} 件（期限超過 {overdue} 件、KEV 掲載 {kev} 件）",
        "en": "vulnerabilities: {vulnerabilities} ({overdue} overdue, {kev} KEV-listed)",
    },
}


def render_text(result: Mapping[str, Any], language: str | None = None) -> str:
    """A readable report of an evaluation: controls first, then the failing checks with their
    remediation, the undecided ones, and the overdue vulnerabilities."""
    lang = language or result.get("language") or "ja"
    lang = lang if lang in LANGUAGES else "ja"

    def t(key: str, **values: Any) -> str:
        text = REPORT_TEXT[key][lang]
        return text.format(**values) if values else text

    host = result.get("host") or {}
    lines = [f"{t('title')} ({result.get('schema', SCHEMA)})"]
    name = clean(str(host.get("hostname") or "?"))
    system = clean(str(host.get("os") or "?"))
    lines.append(f"{t('host')}: {name} — {system}")
    catalogue = clean(str(result.get("catalogue") or "-"))
    lines.append(f"{t('as_of')}: {result.get('as_of')}    {t('catalogue')}: {catalogue}")
    lines.append("")
    lines.append(t("controls"))
    controls = result.get("controls") or {}
    width = max(_width(CONTROL_NAMES[control][lang]) for control in FIVE_CONTROLS) + 2
    for control in FIVE_CONTROLS:
        label = CONTROL_NAMES[control][lang]
        verdict = STATUS_LABELS.get(controls.get(control, "unknown"), STATUS_LABELS["unknown"])
        lines.append(f"  {label}{' ' * (width - _width(label))}{verdict[lang]}")
    findings = list(result.get("findings") or [])
    for status, heading in (("fail", "failing"), ("unknown", "undecided")):
        selected = sorted(
            (item for item in findings if item.get("status") == status),
            key=lambda item: (SEVERITY_ORDER.get(item.get("severity"), 9), item.get("check", "")),
        )
        if not selected:
            continue
        lines.append("")
        lines.append(f"{t(heading)} ({len(selected)})")
        for item in selected:
            severity = SEVERITY_LABELS.get(item.get("severity"), {lang: "?"})[lang]
            lines.append(f"  {item.get('check')} [{severity}] {item.get('title')}")
            if item.get("questions"):
                lines.append(f"    {t('questions')}: {', '.join(item['questions'])}")
            lines.append(f"    {t('detail')}: {item.get('detail')}")
            if item.get("remediation"):
                lines.append(f"    {t('remediation')}: {item.get('remediation')}")
    lines.append("")
    summary = result.get("summary") or {}
    if summary.get("vulnerabilities") is None:
        lines.append(t("not_matched"))
    else:
        overdue = [item for item in result.get("vulnerabilities") or [] if item.get("overdue")]
        if overdue:
            lines.append(f"{t('overdue')} ({len(overdue)})")
            for item in overdue:
                lines.append("  " + _vulnerability_line(item, lang, t))
        else:
            lines.append(t("no_overdue"))
    lines.append("")
    counts = {key: summary.get(key, 0) for key in (*rules.STATUSES, "not_applicable")}
    line = t("summary", **counts)
    if summary.get("vulnerabilities") is not None:
        line += "; " + t(
            "vulnerability_summary",
            vulnerabilities=summary.get("vulnerabilities", 0),
            overdue=summary.get("overdue", 0),
            kev=summary.get("kev", 0),
        )
    lines.append(line)
    return "\n".join(lines) + "\n"


def _vulnerability_line(item: Mapping[str, Any], lang: str, t) -> str:
    advisory = clean(str(item.get("advisory") or "?"), 80)
    aliases = [alias for alias in item.get("aliases") or [] if isinstance(alias, str)]
    cves = [alias for alias in aliases if alias.startswith("CVE-") and alias != advisory]
    if cves:
        advisory += f" ({clean(cves[0], 40)})"
    parts = [
        clean(str(item.get("package") or "?"), 80),
        clean(str(item.get("installed_version") or "?"), 80),
        advisory,
        f"{t('fixed_in')} {clean(str(item.get('fixed_version') or '?'), 80)}",
    ]
    rating = SEVERITY_LABELS.get(str(item.get("severity") or "").lower(), {}).get(lang)
    if rating:
        parts.append(rating)
    if _is_number(item.get("cvss")):
        parts.append(f"CVSS {item['cvss']}")
    if item.get("fix_published"):
        published = f"{t('published')} {clean(str(item['fix_published']), 32)}"
        if _is_number(item.get("days_since_fix")):
            published += f" ({t('days', days=item['days_since_fix'])})"
        parts.append(published)
    if item.get("kev"):
        parts.append("KEV")
    return "  ".join(parts)


def _width(text: str) -> int:
    """Columns a string takes in a terminal: East Asian wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


# ---------------------------------------------------------------------------------------------
# A finding as a page shows it


# The facts that list missing fixes (``_vulnerability_fact``): a page shows them as a table.
VULNERABILITY_FACT_KEYS = frozenset({"package", "installed_version", "advisory", "fixed_version"})
PAGE_TEXT = {
    "listed_below": {"ja": "{count} 件（下の表）", "en": "{count} (listed below)"},
}


def is_vulnerability_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(item, Mapping) and item.keys() >= VULNERABILITY_FACT_KEYS for item in value
        )
    )


def split_detail(detail: str, language: str) -> tuple[str, str]:
    """A finding's detail as (the check's own sentence, the explanation in evidence paths that
    ``_detail`` appends after "Why: "); the second is empty when there is none."""
    head, marker, explanation = detail.partition(f" {TEXT['why'][language]}")
    return (head, explanation) if marker else (detail, "")


@lru_cache(maxsize=1)
def _checks_by_id() -> dict[str, Check]:
    return {check.id: check for check in bundled_checks()}


def page_finding(finding: Mapping[str, Any], language: str) -> dict[str, Any]:
    """What a host page shows of a finding: the check's own sentence, its missing fixes as
    rows for a table (not run into the sentence), and apart, for whoever runs the agent, the
    explanation in evidence paths. The finding itself (the ``mamori.evaluation/1`` contract)
    is not changed."""
    detail = str(finding.get("detail") or "")
    summary, explanation = split_detail(detail, language)
    facts = finding.get("facts") if isinstance(finding.get("facts"), Mapping) else {}
    rows = [item for value in facts.values() if is_vulnerability_list(value) for item in value]
    check = _checks_by_id().get(str(finding.get("check")))
    status = finding.get("status")
    if rows and check is not None and status in check.detail and set(check.facts) <= facts.keys():
        shown = {}
        for name, spec in check.facts.items():
            value = facts[name]
            if is_vulnerability_list(value):
                shown[name] = PAGE_TEXT["listed_below"][language].format(count=len(value))
            else:
                shown[name] = _show_fact(value, "" if value is not None else "null", spec, language)
        summary = check.detail[status][language].format_map(shown)
    return {"summary": summary, "explanation": explanation, "vulnerabilities": rows}
