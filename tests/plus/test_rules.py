"""The scheme's rules around a Plus audit: it follows a valid, recent Cyber Essentials pass; no
decision after the deadline; a sample is used within three working days or drawn again; a second
sample only after a failed first one, and within the retest window; the table on a real frame.

Time passing is simulated by moving the stored dates back (the certificate's issue date, the
round's start-testing date), exactly as they would read after that time."""

from __future__ import annotations

import datetime as dt

import pytest
from dateutil.relativedelta import relativedelta
from django.urls import reverse
from django.utils import timezone, translation

from mamori.assessments import services as assessment_services
from mamori.assessments.models import Assessment, Level
from mamori.audit.models import AuditEvent
from mamori.certificates import services as certificate_services
from mamori.certificates.models import Certificate
from mamori.core.errors import MamoriError, NotAllowed, WrongState
from mamori.plus import services
from mamori.plus.models import AuditState, PlusAudit, SampleRound
from tests.conftest import client_for
from tests.plus.conftest import as_assessor, pass_assessor_cases, request

pytestmark = pytest.mark.django_db


def manual_round(world, audit, devices=(("Reception PC", "Windows 11 Pro 23H2", "end_user"),)):
    """Devices without the agent, listed by the assessor (so their kinds are confirmed), and
    the first sample drawn."""
    for name, build, kind in devices:
        as_assessor(world, services.add_device, audit, name, build, kind)
    return as_assessor(world, services.draw_sample, audit)


def pass_devices(world, audit, sample_round, status="pass"):
    for item in sample_round.sampled.all():
        for code in ("TC2", "TC3", "TC7"):
            as_assessor(
                world,
                services.record_device_check,
                audit,
                item.pk,
                code,
                status,
                "checked on the device" if status == "pass" else "admin rights in daily use",
            )


def completed(world, audit, tc7="pass"):
    sample_round = manual_round(world, audit)
    pass_devices(world, audit, sample_round)
    if tc7 != "pass":
        item = sample_round.sampled.first()
        as_assessor(
            world, services.record_device_check, audit, item.pk, "TC7", tc7, "works as admin"
        )
    pass_assessor_cases(world, audit)
    return sample_round


# --- Plus follows a basic pass ------------------------------------------------------------------


def test_a_plus_self_assessment_cannot_be_started_any_more(world):
    with pytest.raises(MamoriError) as refused:
        assessment_services.start_assessment(
            world.admin, world.access(world.admin), world.bank, world.body, Level.PLUS
        )
    assert refused.value.code == "plus_needs_certificate"
    page = client_for(world.admin).post(
        reverse("assessments:start"),
        {"organisation": world.bank.pk, "certification_body": world.body.pk, "level": "PLUS"},
    )
    assert page.status_code == 422
    assert 'value="PLUS"' not in page.content.decode()
    api = client_for(world.admin).post(
        "/api/assessments/",
        {"organisation": world.bank.pk, "certification_body": world.body.pk, "level": "PLUS"},
        content_type="application/json",
    )
    assert api.status_code == 400
    assert api.json()["code"] == "plus_needs_certificate"
    assert not Assessment.objects.exists()


def test_who_may_start_it(world, certificate):
    for user in (world.contributor, world.signatory, world.other_admin, world.other_assessor):
        with pytest.raises(NotAllowed):
            request(world, certificate, user)
    assert services.eligible_certificates(world.access(world.contributor)) == []
    assert services.eligible_certificates(world.access(world.other_assessor)) == []
    assert services.eligible_certificates(world.access(world.admin)) == [certificate]
    # An assessor of the body opens it for herself.
    audit = request(world, certificate, world.assessor2)
    assert (audit.assessor, audit.requested_by) == (world.assessor2, world.assessor2)
    with pytest.raises(WrongState) as again:
        request(world, certificate)
    assert again.value.code == "exists"
    assert services.eligible_certificates(world.access(world.admin)) == []


def test_a_revoked_or_too_old_certificate_cannot_start_one(world, certificate):
    old = timezone.localdate() - relativedelta(months=3) - dt.timedelta(days=1)
    Certificate.objects.filter(pk=certificate.pk).update(
        issued_on=old, expires_on=old + relativedelta(months=12)
    )
    with pytest.raises(WrongState) as late:
        request(world, certificate)
    assert late.value.code == "deadline_passed"
    assert "within 3 months" in late.value.message
    assert services.eligible_certificates(world.access(world.admin)) == []
    page = client_for(world.admin).get(reverse("plus:request"))
    assert 'id="no-eligible"' in page.content.decode()

    Certificate.objects.filter(pk=certificate.pk).update(issued_on=timezone.localdate())
    certificate_services.revoke(
        world.assessor, world.access(world.assessor), certificate.pk, "scope misstated"
    )
    with translation.override("en"), pytest.raises(WrongState, match="is Revoked; a Plus audit"):
        request(world, certificate)
    assert not PlusAudit.objects.exists()


def test_the_request_page_is_404_for_those_who_can_never_request(world, certificate):
    for user in (world.contributor, world.signatory, world.owner, world.outsider):
        assert client_for(user).get(reverse("plus:request")).status_code == 404
    for user in (world.admin, world.assessor):
        assert client_for(user).get(reverse("plus:request")).status_code == 200


# --- The deadline -----------------------------------------------------------------------------


def _months_ago(world, audit, days_late: int = 1) -> None:
    """Three months and ``days_late`` days have passed since the basic pass."""
    issued = timezone.localdate() - relativedelta(months=3) - dt.timedelta(days=days_late)
    Certificate.objects.filter(pk=audit.base_certificate_id).update(
        issued_on=issued, expires_on=issued + relativedelta(months=12)
    )
    PlusAudit.objects.filter(pk=audit.pk).update(deadline=issued + relativedelta(months=3))


def test_no_plus_decision_after_the_deadline(world, audit):
    completed(world, audit)
    _months_ago(world, audit)
    before = AuditEvent.objects.count()
    with pytest.raises(WrongState) as refused:
        as_assessor(world, services.decide, audit, "pass", "")
    assert refused.value.code == "deadline_passed"
    assert "No Plus decision is possible" in refused.value.message
    assert "pass Cyber Essentials again" in refused.value.message
    for action, args in (
        (services.draw_sample, ()),
        (services.record_test_case, ("TC1", "pass", "")),
        (services.add_device, ("Late PC", "Windows 11", "end_user")),
    ):
        with pytest.raises(WrongState):
            as_assessor(world, action, audit, *args)
    assert AuditEvent.objects.count() == before
    assert not Certificate.objects.filter(level="PLUS").exists()
    audit.refresh_from_db()
    assert audit.is_lapsed
    assert audit.state == AuditState.OPEN

    page = client_for(world.admin).get(reverse("plus:detail", args=[audit.pk])).content.decode()
    assert 'id="lapsed-message"' in page
    assert 'id="deadline-passed"' in page
    ada = client_for(world.assessor).get(reverse("plus:detail", args=[audit.pk])).content.decode()
    assert 'id="decide"' not in ada  # no form offers what cannot be done


def test_the_last_day_still_counts(world, audit):
    completed(world, audit)
    _months_ago(world, audit, days_late=0)
    as_assessor(world, services.decide, audit, "pass", "")
    assert Certificate.objects.filter(plus_audit=audit, level="PLUS").exists()


def test_a_revoked_basic_certificate_stops_the_decision(world, audit):
    completed(world, audit)
    certificate_services.revoke(
        world.assessor, world.access(world.assessor), audit.base_certificate_id, "misstated"
    )
    with pytest.raises(WrongState) as refused:
        as_assessor(world, services.decide, audit, "pass", "")
    assert refused.value.code == "base_not_valid"


# --- Rounds --------------------------------------------------------------------------------------


def test_a_stale_sample_is_drawn_again_a_used_one_is_not(world, audit):
    first = manual_round(world, audit)
    with pytest.raises(WrongState) as busy:
        as_assessor(world, services.draw_sample, audit)
    assert busy.value.code == "round_in_progress"
    # Drawn four working days ago and never used: testing may not start on it any more.
    SampleRound.objects.filter(pk=first.pk).update(
        test_by=timezone.localdate() - dt.timedelta(days=1)
    )
    with pytest.raises(WrongState) as stale:
        as_assessor(world, services.record_test_case, audit, "TC1", "pass", "")
    assert stale.value.code == "sample_stale"
    redrawn = as_assessor(world, services.draw_sample, audit)
    assert (redrawn.pk, redrawn.number, redrawn.draws) == (first.pk, 1, 2)
    assert redrawn.seed != first.seed
    assert redrawn.test_by > timezone.localdate()
    draws = AuditEvent.objects.filter(action="plus.sample_drawn").order_by("seq")
    assert [event.details["draw"] for event in draws] == [1, 2]
    # Once testing started the sample is kept, however long testing takes.
    as_assessor(world, services.record_test_case, audit, "TC1", "pass", "")
    SampleRound.objects.filter(pk=first.pk).update(
        test_by=timezone.localdate() - dt.timedelta(days=5)
    )
    with pytest.raises(WrongState):
        as_assessor(world, services.draw_sample, audit)
    as_assessor(world, services.record_test_case, audit, "TC4", "pass", "")


def test_a_second_sample_after_a_fail_then_the_audit_closes(world, audit):
    completed(world, audit, tc7="fail")
    first = as_assessor(world, services.decide, audit, "fail", "admin rights in daily use")
    audit.refresh_from_db()
    assert (first.outcome, audit.state) == ("fail", AuditState.RETEST)
    with pytest.raises(WrongState) as decided:
        as_assessor(world, services.record_test_case, audit, "TC1", "fail", "x")
    assert decided.value.code == "already_decided"
    second = as_assessor(world, services.draw_sample, audit)
    assert second.number == 2
    audit.refresh_from_db()
    assert (audit.state, audit.round) == (AuditState.OPEN, 2)
    pass_devices(world, audit, second, status="fail")
    pass_assessor_cases(world, audit)
    as_assessor(world, services.decide, audit, "fail", "still")
    audit.refresh_from_db()
    assert audit.state == AuditState.FAILED
    with pytest.raises(WrongState, match="a new Cyber Essentials certificate"):
        as_assessor(world, services.draw_sample, audit)
    with pytest.raises(WrongState) as twice:
        as_assessor(world, services.decide, audit, "fail", "")
    assert twice.value.code == "already_decided"


def test_the_retest_window_closes(world, audit):
    completed(world, audit, tc7="fail")
    as_assessor(world, services.decide, audit, "fail", "")
    audit.refresh_from_db()
    assert audit.retest_due == min(audit.deadline, timezone.localdate() + relativedelta(days=30))
    PlusAudit.objects.filter(pk=audit.pk).update(
        retest_due=timezone.localdate() - dt.timedelta(days=1)
    )
    with pytest.raises(WrongState) as closed:
        as_assessor(world, services.draw_sample, audit)
    assert closed.value.code == "retest_closed"


def test_the_table_and_servers_in_full_on_a_real_frame(world, audit):
    devices = [(f"PC-A{n}", "Windows 11 Pro 23H2", "end_user") for n in range(7)]
    devices += [(f"PC-B{n}", "windows 11 pro  23h2 ", "end_user") for n in range(1)]
    devices += [(f"PC-C{n}", "Windows 10 Pro 22H2", "end_user") for n in range(2)]
    devices += [(f"SRV-{n}", "Windows Server 2022", "server") for n in range(3)]
    sample_round = manual_round(world, audit, devices)
    names = list(sample_round.sampled.values_list("device__name", "kind", "os_build"))
    servers = {name for name, kind, _build in names if kind == "server"}
    assert servers == {"SRV-0", "SRV-1", "SRV-2"}
    # 8 devices of one build (case and spacing do not make a new build) → 3; 2 → 2.
    a_build = [name for name, kind, build in names if kind == "end_user" and "11" in build]
    c_build = [name for name, kind, build in names if kind == "end_user" and "10" in build]
    assert (len(a_build), len(c_build)) == (3, 2)
    assert sample_round.frame_size == 13
    event = AuditEvent.objects.get(action="plus.sample_drawn")
    assert {b["build"]: (b["population"], b["size"]) for b in event.details["builds"]} == {
        "windows 11 pro 23h2": (8, 3),
        "windows 10 pro 22h2": (2, 2),
    }


def test_an_empty_frame_cannot_be_sampled(world, audit):
    with pytest.raises(WrongState) as empty:
        as_assessor(world, services.draw_sample, audit)
    assert empty.value.code == "empty_frame"


def test_take_over_and_only_the_assigned_assessor_tests(world, audit):
    manual_round(world, audit)
    with pytest.raises(NotAllowed, match="take it over"):
        services.record_test_case(
            world.assessor2, world.access(world.assessor2), audit.pk, "TC1", "pass", ""
        )
    services.take_over(world.assessor2, world.access(world.assessor2), audit.pk)
    services.record_test_case(
        world.assessor2, world.access(world.assessor2), audit.pk, "TC1", "pass", ""
    )
    with pytest.raises(NotAllowed):
        as_assessor(world, services.record_test_case, audit, "TC4", "pass", "")
    for user in (world.admin, world.other_assessor):
        with pytest.raises(NotAllowed):
            services.take_over(user, world.access(user), audit.pk)
