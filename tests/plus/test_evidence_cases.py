"""TC2, TC3 and TC7 from real evaluations (evidence uploaded through the server's own path, the
real advisories imported), the override with a reason, and the pure rules behind them."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from django.utils import timezone

from mamori.audit.models import AuditEvent
from mamori.core.errors import MamoriError, WrongState
from mamori.plus import services, testcases
from mamori.plus.models import DeviceCheck
from mamori.plus.models import TestCase as PlusTestCase
from tests.plus.conftest import as_assessor, confirm_all, debian12_evidence, store
from tests.verification.factory import with_source_version

pytestmark = pytest.mark.django_db


def _sampled(world, audit, *payloads):
    """Upload each evidence for the bank, confirm every device as a server (all sampled) and
    draw."""
    hosts = [store(world.admin, world.bank, payload).host for payload in payloads]
    confirm_all(world, audit, default="server")
    sample_round = as_assessor(world, services.draw_sample, audit)
    return hosts, sample_round


def _checks(sample_round, code) -> dict[str, DeviceCheck]:
    return {
        check.sampled.device.name: check
        for check in DeviceCheck.objects.filter(
            sampled__round=sample_round, code=code
        ).select_related("sampled__device")
    }


def test_tc2_fails_on_an_overdue_fix_and_lists_it(world, audit, advisories):
    old_webp = with_source_version(
        debian12_evidence(hostname="old-webp", machine_id="b" * 32), "libwebp", "1.2.4-0.2"
    )
    current = debian12_evidence(hostname="current", machine_id="c" * 32)
    _hosts, sample_round = _sampled(world, audit, old_webp, current)
    counts = as_assessor(world, services.fill_from_evidence, audit)
    assert counts["TC2"] == {"pass": 1, "fail": 1, "unknown": 0}
    checks = _checks(sample_round, "TC2")
    failing = checks["old-webp"]
    assert (failing.status, failing.source, failing.evidence_status) == ("fail", "evidence", "fail")
    assert failing.facts["checks"]["UPD-03"] == "fail"
    assert failing.facts["overdue_total"] >= 1
    listed = failing.facts["overdue"]
    assert {item["package"] for item in listed} == {"libwebp"}
    assert any(item["kev"] for item in listed)  # CVE-2023-4863 is KEV-listed
    assert checks["current"].status == "pass"
    assert set(checks["current"].facts["checks"]) == {"UPD-02", "UPD-03", "UPD-04", "UPD-05"}
    results = dict(PlusTestCase.objects.filter(round=sample_round).values_list("code", "result"))
    assert results["TC2"] == "fail"
    assert results["TC3"] == results["TC7"] == "pass"
    event = AuditEvent.objects.get(action="plus.evidence_filled")
    assert event.details["counts"]["TC2"]["fail"] == 1
    assert len(event.details["evaluations"]) == 2


def test_tc3_and_tc7_fail_from_the_evidence(world, audit, advisories):
    unprotected = debian12_evidence(hostname="bare", machine_id="d" * 32)
    unprotected["malware"]["clamav"] = {
        "installed": False,
        "databases": [],
        "newest_signature": None,
        "freshclam_enabled": False,
        "clamd_enabled": False,
        "on_access": False,
    }
    admin = copy.deepcopy(unprotected)
    admin["host"]["hostname"], admin["host"]["machine_id"] = "admin-box", "e" * 32
    admin["privileges"]["nopasswd"] = [
        {"principal": "alice", "commands": ["ALL"], "file": "/etc/sudoers", "line": 3}
    ]
    _hosts, sample_round = _sampled(world, audit, unprotected, admin)
    as_assessor(world, services.fill_from_evidence, audit)
    assert {name: c.status for name, c in _checks(sample_round, "TC3").items()} == {
        "bare": "fail",
        "admin-box": "fail",
    }
    tc7 = _checks(sample_round, "TC7")
    assert (tc7["bare"].status, tc7["admin-box"].status) == ("pass", "fail")
    assert tc7["admin-box"].facts["checks"] == {
        "UAC-01": "pass",
        "UAC-02": "pass",
        "UAC-07": "fail",
    }
    assert [f["check"] for f in tc7["admin-box"].facts["findings"]] == ["UAC-07"]
    assert tc7["admin-box"].facts["findings"][0]["remediation"]["en"]
    assert tc7["admin-box"].facts["findings"][0]["remediation"]["ja"]


def test_old_evidence_is_unknown_and_an_override_needs_a_reason(world, audit, advisories):
    days = services.Timing.of(audit.catalogue).evidence_days
    stale = debian12_evidence(
        hostname="stale",
        machine_id="f" * 32,
        collected_at=timezone.now().replace(microsecond=0) - dt.timedelta(days=days + 1),
    )
    _hosts, sample_round = _sampled(world, audit, stale)
    as_assessor(world, services.fill_from_evidence, audit)
    check = _checks(sample_round, "TC2")["stale"]
    assert (check.status, check.facts["reason"]) == ("unknown", "stale")
    results = dict(PlusTestCase.objects.filter(round=sample_round).values_list("code", "result"))
    assert results["TC2"] == results["TC3"] == results["TC7"] == "unknown"
    with pytest.raises(WrongState) as unfinished:
        as_assessor(world, services.decide, audit, "fail", "")
    assert unfinished.value.code == "unfinished"

    item = check.sampled
    with pytest.raises(MamoriError) as no_reason:
        as_assessor(world, services.record_device_check, audit, item.pk, "TC2", "pass", "ok", "")
    assert no_reason.value.code == "reason_required"
    check.refresh_from_db()
    assert check.source == "evidence"
    assert not AuditEvent.objects.filter(action="plus.check_overridden").exists()

    as_assessor(
        world,
        services.record_device_check,
        audit,
        item.pk,
        "TC2",
        "pass",
        "apt list --upgradable showed nothing; console screenshot attached",
        "The agent's timer was off during the audit; checked on the console with the admin.",
    )
    check.refresh_from_db()
    assert (check.status, check.source, check.evidence_status) == ("pass", "assessor", "unknown")
    event = AuditEvent.objects.get(action="plus.check_overridden")
    assert (event.details["from"], event.details["to"], event.details["evidence"]) == (
        "unknown",
        "pass",
        "unknown",
    )
    assert event.actor == world.assessor
    assert "after_digest" in event.details
    # A later fill keeps the override and records what the evidence says next to it.
    as_assessor(world, services.fill_from_evidence, audit)
    check.refresh_from_db()
    assert (check.status, check.evidence_status) == ("pass", "unknown")
    assert check.override_reason.startswith("The agent's timer")


def test_a_host_without_an_evaluation_is_unknown(world, audit):
    host = store(world.admin, world.bank, debian12_evidence(hostname="lost")).host
    confirm_all(world, audit, default="server")
    sample_round = as_assessor(world, services.draw_sample, audit)
    type(host).objects.filter(pk=host.pk).update(latest_evaluation=None)
    as_assessor(world, services.fill_from_evidence, audit)
    check = _checks(sample_round, "TC3")["lost"]
    assert (check.status, check.facts) == ("unknown", {"reason": "no_evaluation"})


def test_fill_needs_an_agent_host_in_the_sample(world, audit):
    as_assessor(world, services.add_device, audit, "Kiosk", "Windows 11 IoT", "end_user")
    as_assessor(world, services.draw_sample, audit)
    with pytest.raises(WrongState) as none:
        as_assessor(world, services.fill_from_evidence, audit)
    assert none.value.code == "no_agent_hosts"


# --- The pure rules ------------------------------------------------------------------------------


NOW = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)


def _result(**statuses) -> dict:
    return {
        "as_of": "2026-11-26",
        "findings": [
            {"check": check.replace("_", "-"), "status": status, "title": "t", "detail": "d"}
            for check, status in statuses.items()
        ],
        "vulnerabilities": [],
    }


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ({"MAL_01": "pass"}, "pass"),
        ({"MAL_01": "fail"}, "fail"),
        ({"MAL_01": "unknown"}, "unknown"),
        ({"FW_01": "pass"}, "unknown"),  # none of TC3's checks applied
    ],
)
def test_judge_tc3(statuses, expected):
    verdict = testcases.judge("TC3", _result(**statuses), collected_at=NOW, now=NOW, max_age_days=3)
    assert verdict.status == expected


def test_judge_a_fail_decides_even_next_to_an_unknown_and_age_counts():
    result = _result(UAC_01="unknown", UAC_07="fail")
    assert (
        testcases.judge("TC7", result, collected_at=NOW, now=NOW, max_age_days=3).status == "fail"
    )
    old = NOW - dt.timedelta(days=3, seconds=1)
    verdict = testcases.judge("TC7", result, collected_at=old, now=NOW, max_age_days=3)
    assert (verdict.status, verdict.facts["reason"]) == ("unknown", "stale")
    assert testcases.judge("TC2", None, collected_at=None, now=NOW, max_age_days=3).status == (
        "unknown"
    )


@pytest.mark.parametrize(
    ("statuses", "expected_count", "result"),
    [
        ([], 2, "pending"),
        (["pass"], 2, "pending"),
        (["fail"], 2, "fail"),
        (["pass", "unknown"], 2, "unknown"),
        (["pass", "pass"], 2, "pass"),
        (["unknown", "fail"], 2, "fail"),
    ],
)
def test_aggregate(statuses, expected_count, result):
    assert testcases.aggregate(statuses, expected_count) == result


def test_blockers_and_failures():
    results = dict.fromkeys(testcases.ALL_CASES, "pass")
    assert testcases.decision_blockers(results) == []
    results.update(TC2="unknown", TC5="pending", TC7="fail")
    assert testcases.decision_blockers(results) == ["TC2", "TC5"]
    assert testcases.failed_cases(results) == ["TC7"]
