"""The whole scheme workflow through the web pages, as applicants and assessors use it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mamori.assessments.models import Assessment, State
from mamori.audit.services import verify_trail
from mamori.certificates.models import Certificate
from tests.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=False)


def test_applicant_to_certificate_through_pages(world, clients):
    admin = clients["admin"]
    response = admin.post(
        reverse("assessments:start"),
        {"organisation": world.bank.pk, "certification_body": world.body.pk, "level": "CE"},
    )
    assert response.status_code == 302
    assessment = Assessment.objects.get(organisation=world.bank)
    assert response.url == reverse("assessments:section", args=[assessment.pk, "A2"])

    page = admin.get(response.url)
    assert page.status_code == 200
    assert "A2.1" in page.content.decode()

    # Autosave one answer through the htmx endpoint.
    saved = admin.post(
        reverse("assessments:answer", args=[assessment.pk, "A2.1"]),
        {"value": "subset", "version": "0"},
        HTTP_HX_REQUEST="true",
    )
    assert saved.status_code == 200
    body = saved.content.decode()
    assert 'hx-swap-oob="true"' in body
    assert "A2.1" in body

    world.answer_all(assessment)
    assert admin.get(reverse("assessments:precheck", args=[assessment.pk])).status_code == 200
    signatory = clients["signatory"]
    signed = signatory.post(
        reverse("assessments:declaration", args=[assessment.pk]),
        {"name": "Bob Board", "title": "Director", "confirm": "on"},
    )
    assert signed.status_code == 302
    submitted = admin.post(reverse("assessments:submit", args=[assessment.pk]))
    assert submitted.status_code == 302
    assessment.refresh_from_db()
    assert assessment.state == State.SUBMITTED

    assessor = client_for(assessment.assessor)
    assert assessor.get(reverse("assessments:queue")).status_code == 200
    review = assessor.get(reverse("assessments:review", args=[assessment.pk]))
    assert review.status_code == 200
    world.assessor = assessment.assessor
    world.mark_all(assessment)
    decided = assessor.post(
        reverse("assessments:decide", args=[assessment.pk]), {"outcome": "pass", "summary": "good"}
    )
    assert decided.status_code == 302
    certificate = Certificate.objects.get(assessment=assessment)
    assert certificate.status == "valid"
    public = client_for(world.outsider).get(
        reverse("certificates:verify", args=[certificate.number])
    )
    assert public.status_code == 200
    assert certificate.number in public.content.decode()
    assert verify_trail() is None


def test_fail_then_resubmit(world, clients):
    assessment = world.failed("A6.4")
    assert assessment.state == State.FAILED
    advice = clients["admin"].get(reverse("assessments:advice", args=[assessment.pk, 1]))
    assert advice.status_code == 200
    assert "A6.4" in advice.content.decode()
