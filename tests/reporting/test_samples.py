"""Daily metric samples: computed from history as of the end of the day, stored and sealed once,
chained into the audit trail, and recomputed to the same values and digest after the history
moved on (new evidence, a re-match patching a verdict, a scope change, vulnerabilities fixed,
alerts handled, the supply graph edited)."""

from __future__ import annotations

import datetime as dt
import json
from unittest import mock

import pytest
from django.core.management import call_command
from django.utils import timezone

from mamori.audit.models import AuditEvent
from mamori.audit.services import verify_trail
from mamori.certificates.models import Certificate
from mamori.earlywarning import alerts
from mamori.earlywarning.models import AlertState
from mamori.organisations.models import Membership, Organisation
from mamori.reporting import history, sampling
from mamori.reporting.models import DaySeal, MetricSample, VulnerabilityEpisode
from mamori.supplychain.services import import_graph
from mamori.verification.models import (
    CONTROLS,
    Evaluation,
    Evidence,
    Host,
    Trigger,
    VerdictChange,
    Vulnerability,
)
from mamori.verification.services import set_in_scope

pytestmark = pytest.mark.django_db

JST = dt.timezone(dt.timedelta(hours=9))
DAY = dt.date(2026, 11, 10)


def at(day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, tzinfo=JST)


def frozen(moment: dt.datetime):
    """The clock the services read, at ``moment`` (in UTC, as Django's clock gives it)."""
    return mock.patch("django.utils.timezone.now", return_value=moment.astimezone(dt.UTC))


def checkin(host: Host, moment: dt.datetime, failing=(), vulnerabilities=()) -> Evaluation:
    """An upload of ``host`` received at ``moment`` and its evaluation (failing ``failing``),
    with vulnerability rows ``(package, advisory, severity, cvss, kev, fix_published)``."""
    evidence = Evidence.objects.create(
        host=host, collected_at=moment, received_at=moment, digest=f"{host.pk}-{moment}",
        payload={}, size=2,
    )  # fmt: skip
    verdicts = {control: "fail" if control in failing else "pass" for control in CONTROLS}
    evaluation = Evaluation.objects.create(
        evidence=evidence, evaluated_at=moment, as_of=moment.date(), trigger=Trigger.UPLOAD,
        result={}, **verdicts,
    )  # fmt: skip
    for package, advisory, severity, cvss, kev, fix_published in vulnerabilities:
        Vulnerability.objects.create(
            evaluation=evaluation, package=package, installed_version="1.0", advisory=advisory,
            severity=severity, cvss=cvss, kev=kev, fix_published=fix_published,
        )  # fmt: skip
    Host.objects.filter(pk=host.pk).update(
        latest_evidence=evidence, latest_evaluation=evaluation, last_seen=moment
    )
    return evaluation


GRAPH = {
    "schema": "mamori.supplygraph/1",
    "nodes": [
        {"id": "core", "entity": "bank", "name": "Core banking", "country": "JP",
         "critical": True, "certified": True, "disclosure": "full"},
        {"id": "dc", "entity": "dc-co", "name": "Data centre", "country": "JP",
         "critical": False, "certified": False, "disclosure": "full"},
        {"id": "power", "entity": "power-co", "name": "Power", "country": "JP",
         "critical": False, "certified": False, "disclosure": "none"},
    ],
    "requirements": [
        {"node": "core", "need": "hosting", "providers": ["dc"]},
        {"node": "dc", "need": "power", "providers": ["power"]},
    ],
}  # fmt: skip


@pytest.fixture
def bank_history(world):
    """World's bank, as of 10 November 2026 (JST): a CE certificate, three hosts (one out of
    scope, one without recent check-in), vulnerabilities, two alerts and a supply graph."""
    bank = world.bank
    # The organisations and their people were registered before the history begins.
    Organisation.objects.update(created_at=at(1, 0))
    Membership.objects.update(created_at=at(1, 0))
    world.passed()  # the assessor's decision issues the certificate; dated back here
    Certificate.objects.filter(organisation=bank).update(
        issued_on=dt.date(2026, 6, 1), expires_on=dt.date(2027, 5, 31)
    )
    with frozen(at(1)):
        web, mail, old = (
            Host.objects.create(organisation=bank, hostname=name, first_seen=at(1), last_seen=at(1))
            for name in ("web", "mail", "old")
        )
    old_fix = dt.date(2026, 9, 1)
    web_evaluation = checkin(
        web, at(9), vulnerabilities=[
            ("openssl", "CVE-2026-0001", "critical", 9.8, True, old_fix),
            ("zlib", "CVE-2026-0002", "medium", 5.0, False, None),
        ],
    )  # fmt: skip
    checkin(mail, at(10, 8), failing={"malware_protection"})
    checkin(old, at(1))  # out of the 7-day window by the 10th
    with frozen(at(2)):
        first = alerts.upsert(
            [alerts.Sighting(organisation_id=bank.pk, type="exposure", key="a",
                             category="scan_rdp", seen_at=at(2))],
            feed=None, now=at(2),
        ).new[0]  # fmt: skip
    with frozen(at(2, 15)):
        alerts.change_state(world.admin, world.access(world.admin), first, AlertState.ACKNOWLEDGED)
    with frozen(at(9)):
        import_graph(bank, GRAPH)
    # The nightly run of the 10th, just after midnight on the 11th.
    with frozen(at(11, 0) + dt.timedelta(minutes=20)):
        history.record_day(DAY)
        day = sampling.sample(DAY, record_history=True)
    return {"bank": bank, "hosts": (web, mail, old), "web_evaluation": web_evaluation, "day": day}


def test_the_day_is_measured_from_its_history(world, bank_history):
    values = bank_history["day"].values[world.bank.pk]
    assert values["certificate_level"] == "CE"
    assert values["certificate_days_to_expiry"] == (dt.date(2027, 5, 31) - DAY).days
    assert values["hosts_in_scope"] == 3
    assert values["hosts_checked_in"] == 2
    # Two of three in-scope hosts checked in; the mail server fails malware protection.
    assert values["control_passing.firewalls"] == round(2 / 3, 4)
    assert values["control_passing.malware_protection"] == round(1 / 3, 4)
    assert values["vulnerabilities_open"] == {
        "critical": 1, "high": 0, "medium": 1, "low": 0, "unknown": 0
    }  # fmt: skip
    # The critical fix was released on 1 September: past the 14-day deadline long before.
    assert values["vulnerabilities_overdue"] == 1
    assert values["kev_open"] == 1
    assert values["kev_open_age_days"] == {"max": 0, "median": 0.0}
    assert values["remediation_days"] == {"count": 0, "median": None, "p90": None}
    assert values["supplier_coverage_by_tier"] == {
        "1": {"suppliers": 1, "answered": 1, "share": 1.0},
        "2": {"suppliers": 1, "answered": 0, "share": 0.0},
    }
    assert values["supplier_spof"] == 2
    assert values["supplier_uncertified_on_critical_path"] == 2
    assert values["alerts_open"]["exposure"] == 1
    assert values["alerts_raised"] == 0
    assert values["alerts_time_to_acknowledge"] == {
        "count": 1, "median_hours": 3.0, "p90_hours": 3.0
    }  # fmt: skip
    # The applicants are sampled, each with every metric; the certification bodies and the
    # scheme owner's secretariat have no figures of their own.
    assert set(bank_history["day"].values) == {world.bank.pk, world.other_bank.pk}
    assert DaySeal.objects.get(day=DAY).organisations == 2
    assert MetricSample.objects.filter(organisation=world.bank, day=DAY).count() == 22


def test_the_day_is_sealed_once_and_chained_into_the_audit_trail(world, bank_history):
    seal = DaySeal.objects.get(day=DAY)
    assert seal.digest == bank_history["day"].digest
    entry = AuditEvent.objects.get(seq=seal.audit_seq)
    assert entry.action == "reporting.day_sampled"
    assert entry.details == {
        "day": "2026-11-10", "digest": seal.digest, "organisations": seal.organisations
    }  # fmt: skip
    assert verify_trail() is None
    # Sampling the day again stores nothing and adds no entry.
    count = AuditEvent.objects.count()
    with frozen(at(12)):
        again = sampling.sample(DAY, record_history=True)
    assert not again.stored_now
    assert again.matches_seal
    assert AuditEvent.objects.count() == count
    assert MetricSample.objects.filter(day=DAY).count() == 22 * seal.organisations


def test_a_past_day_recomputes_to_the_same_values_after_history_moved_on(
    world, bank_history, capsys
):
    web, mail, old = bank_history["hosts"]
    sealed = bank_history["day"]
    # What happened after the 10th: the web server is patched and checks in; a re-match on the
    # 12th patches the mail server's verdict in place; the old host leaves the scope; the
    # exposure alert is mitigated and a new one raised; the supply graph gains a provider; the
    # nightly runs record all of it.
    with frozen(at(11, 9)):
        checkin(web, at(11, 9))
    mail_evaluation = Host.objects.get(pk=mail.pk).latest_evaluation
    with frozen(at(12)):
        Evaluation.objects.filter(pk=mail_evaluation.pk).update(firewalls="fail")
        VerdictChange.objects.create(
            host=mail, evaluation=mail_evaluation, changed_at=at(12), control="firewalls",
            before="pass", after="fail",
        )  # fmt: skip
        set_in_scope(world.admin, old.pk, False)
        first = alerts.upsert(
            [alerts.Sighting(organisation_id=world.bank.pk, type="incident", key="b",
                             category="sinkhole", seen_at=at(12))],
            feed=None, now=at(12),
        ).new[0]  # fmt: skip
        import_graph(world.bank, {
            "schema": "mamori.supplygraph/1",
            "nodes": [
                {"id": "pay", "entity": "bank", "name": "Payments", "country": "JP",
                 "critical": True, "certified": True, "disclosure": "full"},
                {"id": "cloud", "entity": "cloud-co", "name": "Cloud", "country": "JP",
                 "critical": False, "certified": False, "disclosure": "none"},
            ],
            "requirements": [{"node": "pay", "need": "hosting", "providers": ["cloud"]}],
        })  # fmt: skip
    with frozen(at(12, 13)):
        alerts.change_state(world.admin, world.access(world.admin), first, AlertState.ACKNOWLEDGED)
    with frozen(at(12, 0) + dt.timedelta(minutes=20)):
        sampling.sample(dt.date(2026, 11, 11), record_history=True)
    with frozen(at(13, 0) + dt.timedelta(minutes=20)):
        eleventh_and_twelfth = sampling.sample(dt.date(2026, 11, 12), record_history=True)
    # The later day sees the change ...
    later = eleventh_and_twelfth.values[world.bank.pk]
    assert later["hosts_in_scope"] == 2
    assert later["vulnerabilities_open"]["critical"] == 0
    assert later["remediation_days"] == {"count": 2, "median": 1.0, "p90": 1.0}
    assert later["control_passing.firewalls"] == 0.5
    assert later["supplier_spof"] == 3
    assert VulnerabilityEpisode.objects.filter(closed_on=dt.date(2026, 11, 11)).count() == 2
    # ... and the 10th, recomputed by the command, is what was sealed.
    with frozen(at(20)):
        call_command("reporting", "sample", "--date", "2026-11-10", "--format", "json")
    printed = json.loads(capsys.readouterr().out)
    assert printed["digest"] == sealed.digest == printed["sealed"]
    assert printed["stored_now"] is False
    assert printed["samples"] == sealed.samples()
    stored = {
        (row.organisation_id, row.metric): row.value for row in MetricSample.objects.filter(day=DAY)
    }
    assert stored == {
        (row["organisation"], row["metric"]): row["value"] for row in printed["samples"]
    }


def test_the_command_limits_the_samples_to_one_organisation(world, bank_history, capsys):
    with frozen(at(20)):
        call_command(
            "reporting", "sample", "--date", "2026-11-10", "--organisation",
            str(world.bank.pk), "--format", "json",
        )  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    assert {row["organisation"] for row in printed["samples"]} == {world.bank.pk}
    assert printed["digest"] == DaySeal.objects.get(day=DAY).digest
    assert printed["organisation_digest"] == bank_history["day"].organisation_digests[world.bank.pk]


def test_a_sealed_day_that_no_longer_follows_from_history_is_an_error(world, bank_history, capsys):
    # Tampering with the history the day was measured from: the web server's evaluation.
    Evaluation.objects.filter(pk=bank_history["web_evaluation"].pk).update(firewalls="fail")
    with frozen(at(20)), pytest.raises(SystemExit) as stopped:
        call_command("reporting", "sample", "--date", "2026-11-10")
    assert stopped.value.code == 1
    assert "封印した内容" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--date", "10/11/2026"], "--date には YYYY-MM-DD 形式の日付を指定してください"),
        (["--date", "2026-11-20"], "2026-11-20 はまだ終わっていません"),
        (["--organisation", "9999999"], "ID または法人番号が 9999999 の組織はありません"),
    ],
)
def test_bad_input_stops_the_command_with_one_line(world, arguments, message):
    from django.core.management.base import CommandError

    with frozen(at(20)), pytest.raises(CommandError, match=message) as stopped:
        call_command("reporting", "sample", *arguments)
    assert stopped.value.returncode == 2
    assert not DaySeal.objects.exists()


def test_the_nightly_run_catches_up_the_days_the_beat_missed(world):
    from mamori.reporting.tasks import sample_days

    with frozen(at(20, 1)):
        stored = sample_days()
    assert stored == [f"2026-11-{day:02d}" for day in range(13, 20)]
    with frozen(at(20, 2)):
        assert sample_days() == []
    assert DaySeal.objects.count() == 7
    assert history.recorded_through() == dt.date(2026, 11, 19)
    assert timezone.now() > at(20)  # the clock is back
