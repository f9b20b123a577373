"""The Plus pages: what each side is offered, the lists, and no query per device."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mamori.plus import services
from tests.plus.conftest import as_assessor, page_client, request
from tests.plus.test_rules import completed, manual_round

pytestmark = pytest.mark.django_db


def _page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_the_assessor_is_offered_what_she_can_do_now(world, audit):
    url = reverse("plus:detail", args=[audit.pk])
    ada, abe, alice = (page_client(u) for u in (world.assessor, world.assessor2, world.admin))
    as_assessor(world, services.add_device, audit, "PC-1", "Windows 11 Pro 23H2", "end_user")
    page = _page(ada, url)
    assert 'id="draw"' in page
    assert 'id="kinds-form"' in page
    assert 'id="add-device"' in page
    assert "Take over this audit" not in page
    other = _page(abe, url)
    assert "Take over this audit" in other
    assert 'id="draw"' not in other
    assert 'id="kinds-form"' not in other
    applicant = _page(alice, url)
    assert 'id="add-device"' in applicant
    assert 'id="draw"' not in applicant
    assert 'id="kinds-form"' not in applicant
    signatory = _page(page_client(world.signatory), url)
    assert 'id="add-device"' not in signatory

    as_assessor(world, services.draw_sample, audit)
    page = _page(ada, url)
    assert 'id="draw"' not in page  # round 1 is being tested
    assert 'id="fill"' in page
    assert 'id="decide"' in page
    assert 'id="decide"' not in _page(alice, url)


def test_the_draw_is_offered_again_after_a_failed_round(world, audit):
    completed(world, audit, tc7="fail")
    as_assessor(world, services.decide, audit, "fail", "admin rights in daily use")
    url = reverse("plus:detail", args=[audit.pk])
    page = _page(page_client(world.assessor), url)
    assert "Draw the second sample" in page
    assert 'id="decide"' not in page
    applicant = _page(page_client(world.admin), url)
    assert 'id="retest-message"' in applicant
    assert "admin rights in daily use" in applicant


def test_no_query_per_device(world, audit):
    """Two audits of the bank, one round each: 2 servers sampled, and 12 with their results."""
    from mamori.certificates.models import Certificate

    ada = page_client(world.assessor)

    def queries(audit) -> int:
        url = reverse("plus:detail", args=[audit.pk])
        ada.get(url)  # warm the session
        with CaptureQueriesContext(connection) as captured:
            assert ada.get(url).status_code == 200
        return len(captured)

    manual_round(world, audit, [(f"SRV-{n}", "Windows Server 2022", "server") for n in range(2)])
    small = queries(audit)
    second = Certificate.objects.get(assessment=world.passed())
    bigger = request(world, second)
    sample_round = manual_round(
        world, bigger, [(f"SRV-{n}", f"Build {n}", "server") for n in range(12)]
    )
    assert sample_round.sampled.count() == 12
    for item in sample_round.sampled.all():
        as_assessor(world, services.record_device_check, bigger, item.pk, "TC3", "pass", "ok")
    as_assessor(world, services.record_test_case, bigger, "TC1", "pass", "clean")
    assert queries(bigger) == small


def test_lists_and_panels(world, certificate):
    # Before any audit: the certificate page offers the request to those who may make it.
    url = reverse("certificates:detail", args=[certificate.number])
    assert 'id="plus-request-link"' in _page(page_client(world.admin), url)
    assert 'id="plus-request-link"' in _page(page_client(world.assessor2), url)
    for user in (world.contributor, world.owner):
        assert 'id="plus-panel"' not in _page(page_client(user), url)
    audit = request(world, certificate)
    for user in (world.admin, world.contributor, world.assessor):
        assert 'id="plus-audit-link"' in _page(page_client(user), url)
    assert 'id="plus-panel"' not in _page(page_client(world.owner), url)
    # The assessment's page links to it as well.
    assessment = reverse("assessments:detail", args=[certificate.assessment_id])
    assert 'id="plus-audit-link"' in _page(page_client(world.admin), assessment)

    listing = reverse("plus:list")
    assert audit.reference in _page(page_client(world.admin), listing)
    assert audit.reference in _page(page_client(world.assessor), f"{listing}?show=mine")
    assert audit.reference not in _page(page_client(world.assessor2), f"{listing}?show=mine")
    assert audit.reference not in _page(page_client(world.assessor), f"{listing}?show=unassigned")
    for user in (world.other_assessor, world.owner, world.other_admin, world.outsider):
        assert audit.reference not in _page(page_client(user), listing)


def test_pages_render_in_japanese_by_default(world, audit):
    from tests.conftest import client_for

    page = client_for(world.admin).get(reverse("plus:detail", args=[audit.pk]))
    assert page.status_code == 200
    assert '<html lang="ja">' in page.content.decode()
