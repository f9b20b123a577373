"""The whole Plus audit through the pages and the real agent: a basic pass, the request, evidence
collected by ``mamori-agent collect --root`` and uploaded to ``/api/evidence/``, the frame, a
recorded random sample, test cases filled from the evaluations, a failed first round, the fix,
a second sample, the pass and a PLUS certificate anyone can verify."""

from __future__ import annotations

import io
import json

import pytest
from dateutil.relativedelta import relativedelta
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from mamori.accounts.models import TokenKind
from mamori.audit.models import AuditEvent
from mamori.audit.services import verify_trail
from mamori.certificates.models import Certificate
from mamori.plus import sampling
from mamori.plus.models import (
    AuditState,
    Device,
    DeviceCheck,
    PlusAudit,
    SampleRound,
    TestAttachment,
)
from mamori.plus.models import TestCase as PlusTestCase
from mamori.verification.models import Host
from tests.conftest import api_token, client_for
from tests.plus.conftest import collect, debian12_evidence, fix_account_separation, page_client
from tests.verification.conftest import evaluated

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


def _post(client: Client, url: str, data=None, *, expect_error: bool = False) -> list[str]:
    response = client.post(url, data or {}, follow=True)
    assert response.status_code == 200, response.status_code
    texts = _messages(response)
    levels = [message.tags for message in response.context["messages"]]
    assert ("error" in levels) == expect_error, texts
    return texts


def _results(sample_round: SampleRound) -> dict[str, str]:
    return dict(PlusTestCase.objects.filter(round=sample_round).values_list("code", "result"))


def _device_statuses(sample_round: SampleRound, code: str) -> dict[str, str]:
    return dict(
        DeviceCheck.objects.filter(sampled__round=sample_round, code=code).values_list(
            "sampled__device__name", "status"
        )
    )


def _record_manual(ada: Client, audit: PlusAudit, sample_round: SampleRound) -> None:
    manual = sample_round.sampled.get(device__manual=True)
    for code in ("TC2", "TC3", "TC7"):
        _post(
            ada,
            reverse("plus:device_check", args=[audit.pk, manual.pk]),
            {
                "code": code,
                "status": "pass",
                "notes": f"{code} checked on the device with the user's own account",
            },
        )


def _assessor_cases(ada: Client, audit: PlusAudit, *, with_file: bool = False) -> None:
    for code in ("TC1", "TC4", "TC5", "TC6"):
        data = {"result": "pass", "notes": f"{code}: as the scheme describes, nothing found"}
        if with_file and code == "TC1":
            data["file"] = io.BytesIO(PDF)
            data["file"].name = "external-scan.pdf"
        response = ada.post(reverse("plus:test_case", args=[audit.pk, code]), data, follow=True)
        assert response.redirect_chain == [(reverse("plus:detail", args=[audit.pk]), 302)]
        assert _messages(response) == ["The test case was recorded."]


def test_plus_from_the_basic_pass_to_a_publicly_verifiable_plus_certificate(
    world, certificate, advisories, debian_root
):
    alice, ada = page_client(world.admin), page_client(world.assessor)

    # --- alice starts it from her certificate -------------------------------------------------
    page = alice.get(reverse("certificates:detail", args=[certificate.number])).content.decode()
    assert 'id="plus-request-link"' in page
    form = alice.get(reverse("plus:request") + f"?certificate={certificate.number}")
    assert form.status_code == 200
    response = alice.post(reverse("plus:request"), {"certificate": str(certificate.pk)})
    assert response.status_code == 302
    audit = PlusAudit.objects.get(base_certificate=certificate)
    assert response.url == reverse("plus:detail", args=[audit.pk])
    assert audit.scope_text == certificate.scope_text
    assert audit.certification_body == certificate.certification_body
    assert audit.assessor == world.assessor  # who passed the basic assessment
    assert audit.deadline == certificate.issued_on + relativedelta(months=3)
    assert audit.state == AuditState.OPEN

    # --- the agents report; alice lists a device without the agent ---------------------------
    agent_key = api_token(world.admin, world.bank, TokenKind.AGENT)
    uploaded = evaluated(agent_key, collect(debian_root))
    web = Host.objects.get(pk=uploaded["host"])
    assert web.hostname == "bank-web-01"
    app = evaluated(agent_key, debian12_evidence(hostname="bank-app-01", machine_id="a" * 32))
    _post(
        alice,
        reverse("plus:add_device", args=[audit.pk]),
        {"name": "Reception PC", "os_build": "Windows 11 Pro 23H2", "kind": "end_user"},
    )
    _post(
        alice,
        reverse("plus:addresses", args=[audit.pk]),
        {"public_addresses": "133.242.0.10\n133.242.0.16/29  # branch offices"},
    )
    audit.refresh_from_db()
    assert audit.public_addresses == "133.242.0.10\n133.242.0.16/29"

    # --- ada confirms the kinds and draws -----------------------------------------------------
    detail = ada.get(reverse("plus:detail", args=[audit.pk])).content.decode()
    for name in ("bank-web-01", "bank-app-01", "Reception PC", "debian 12"):
        assert name in detail
    errors = _post(ada, reverse("plus:draw", args=[audit.pk]), expect_error=True)
    assert "Confirm the kind of every device first" in errors[0]
    manual = Device.objects.get(audit=audit, manual=True)
    _post(
        ada,
        reverse("plus:kinds", args=[audit.pk]),
        {
            f"kind-host-{web.pk}": "server",
            f"kind-host-{app['host']}": "end_user",
            f"kind-device-{manual.pk}": "end_user",
        },
    )
    _post(ada, reverse("plus:draw", args=[audit.pk]))
    first = SampleRound.objects.get(audit=audit, number=1)
    sampled = set(first.sampled.values_list("device__name", flat=True))
    # One debian 12 end-user device → 1, one Windows build → 1, every server: all three.
    assert sampled == {"bank-web-01", "bank-app-01", "Reception PC"}
    assert first.sampled.get(device__name="bank-web-01").kind == "server"
    drawn = AuditEvent.objects.get(action="plus.sample_drawn", object_id=str(first.pk))
    assert drawn.details["seed"] == first.seed
    assert len(first.seed) == 64
    assert drawn.details["frame_digest"] == first.frame_digest
    assert drawn.details["round"] == 1
    # Anyone with the trail can recompute the sample from the frame and the seed.
    frame = [
        sampling.FrameEntry(device.frame_key, device.os_build, device.kind)
        for device in Device.objects.filter(audit=audit)
    ]
    record = {key: drawn.details[key] for key in ("seed", "frame_digest", "frame_size")}
    record.update(builds=drawn.details["builds"], servers=drawn.details["servers"])
    assert sampling.verify(frame, record)

    # --- round 1: evidence, the manual device, the assessor's cases ---------------------------
    _post(ada, reverse("plus:fill", args=[audit.pk]))
    assert _device_statuses(first, "TC2") == {"bank-web-01": "pass", "bank-app-01": "pass"}
    assert _device_statuses(first, "TC3") == {"bank-web-01": "pass", "bank-app-01": "pass"}
    assert _device_statuses(first, "TC7") == {"bank-web-01": "fail", "bank-app-01": "pass"}
    failing = DeviceCheck.objects.get(
        sampled__round=first, sampled__device__name="bank-web-01", code="TC7"
    )
    assert failing.evaluation == Host.objects.get(pk=web.pk).latest_evaluation
    assert set(failing.facts["checks"]) == {"UAC-01", "UAC-02", "UAC-07"}
    assert failing.facts["checks"]["UAC-01"] == "fail"
    assert "toor" in failing.facts["administrators"]
    assert _results(first)["TC2"] == "pending"  # the manual device is not tested yet
    assert _results(first)["TC7"] == "fail"
    _record_manual(ada, audit, first)
    _assessor_cases(ada, audit, with_file=True)
    results = _results(first)
    assert results == {
        "TC1": "pass",
        "TC2": "pass",
        "TC3": "pass",
        "TC4": "pass",
        "TC5": "pass",
        "TC6": "pass",
        "TC7": "fail",
    }
    scan = TestAttachment.objects.get(test_case__round=first, test_case__code="TC1")
    assert scan.original_name == "external-scan.pdf"
    download = alice.get(reverse("plus:download", args=[audit.pk, scan.pk]))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PDF
    assert "attachment" in download["Content-Disposition"]

    errors = _post(
        ada, reverse("plus:decide", args=[audit.pk]), {"outcome": "pass"}, expect_error=True
    )
    assert "TC7" in errors[0]
    _post(
        ada,
        reverse("plus:decide", args=[audit.pk]),
        {"outcome": "fail", "summary": "Accounts with root's powers on the web server."},
    )
    audit.refresh_from_db()
    assert audit.state == AuditState.RETEST
    assert audit.retest_due == min(audit.deadline, timezone.localdate() + relativedelta(days=30))

    # alice sees what failed and what to do about it
    page = alice.get(reverse("plus:detail", args=[audit.pk])).content.decode()
    assert 'id="retest-message"' in page
    assert 'id="round-1-failed"' in page
    assert "TC7 Account separation" in page
    uac01 = next(f for f in failing.facts["findings"] if f["check"] == "UAC-01")
    assert escape(uac01["remediation"]["en"]) in page

    # --- the fix, estate-wide; a second random sample -----------------------------------------
    fix_account_separation(debian_root)
    evaluated(agent_key, collect(debian_root))
    _post(ada, reverse("plus:draw", args=[audit.pk]))
    second = SampleRound.objects.get(audit=audit, number=2)
    assert second.seed != first.seed
    assert AuditEvent.objects.filter(action="plus.sample_drawn").count() == 2
    _post(ada, reverse("plus:fill", args=[audit.pk]))
    assert _device_statuses(second, "TC7") == {"bank-web-01": "pass", "bank-app-01": "pass"}
    _record_manual(ada, audit, second)
    _assessor_cases(ada, audit)
    assert set(_results(second).values()) == {"pass"}
    _post(
        ada, reverse("plus:decide", args=[audit.pk]), {"outcome": "pass", "summary": "Well done."}
    )
    audit.refresh_from_db()
    assert audit.state == AuditState.PASSED

    # --- the PLUS certificate ----------------------------------------------------------------
    plus = Certificate.objects.get(plus_audit=audit)
    today = timezone.localdate()
    assert plus.level == "PLUS"
    assert plus.number.startswith(f"CEP-{today.year}-")
    assert plus.assessment is None
    assert plus.scope_text == certificate.scope_text
    assert plus.catalogue_version == certificate.catalogue_version
    assert (plus.issued_on, plus.expires_on) == (today, today + relativedelta(months=12))
    assert plus.status == "valid"
    # The basic certificate stays as it was.
    assert Certificate.objects.get(pk=certificate.pk).status == "valid"
    issued = AuditEvent.objects.get(action="certificate.issued", object_id=str(plus.pk))
    assert issued.details["plus_audit"] == audit.pk

    anyone = Client(HTTP_ACCEPT_LANGUAGE="en")
    verify = anyone.get(reverse("certificates:verify", args=[plus.number])).content.decode()
    assert f"Certificate {plus.number} is valid until" in verify
    assert "Cyber-Essentials-style Plus (technical verification)" in verify
    public = anyone.get(f"/api/public/certificates/{plus.number}").json()
    assert (public["level"], public["status"], public["scope"]) == (
        "PLUS",
        "valid",
        certificate.scope_text,
    )
    register = anyone.get(reverse("certificates:register"), {"q": plus.number})
    assert [c.number for c in register.context["page"].object_list] == [plus.number]
    out = io.StringIO()
    call_command("certificates", "list", "--format", "json", stdout=out)
    listed = {row["number"]: row["level"] for row in json.loads(out.getvalue())}
    assert listed == {certificate.number: "CE", plus.number: "PLUS"}
    private = client_for(world.admin).get("/api/certificates/").json()["results"]
    assert {item["number"]: item["assessment_id"] for item in private} == {
        certificate.number: certificate.assessment_id,
        plus.number: None,
    }
    page = alice.get(reverse("certificates:detail", args=[plus.number])).content.decode()
    assert 'id="plus-audit-link"' in page

    actions = list(
        AuditEvent.objects.filter(action__startswith="plus.")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    for action in (
        "plus.requested",
        "plus.device_added",
        "plus.addresses_changed",
        "plus.kinds_confirmed",
        "plus.sample_drawn",
        "plus.evidence_filled",
        "plus.check_recorded",
        "plus.test_recorded",
        "plus.decided",
    ):
        assert action in actions
    assert verify_trail() is None
