"""An assessor never reviews an organisation they belong to (issue 10, section 3).

The reported case: an assessor who had been added to the bank edited answers of an assessment
assigned to them and then marked it. Consent and the membership rules now keep an assessor out
of an organisation whose assessments their body marks (tests/organisations/
test_membership_consent.py); here the other half: an assessor who does belong to an organisation
(they joined before it chose their body) is never assigned its review, automatically or by
taking it over, and cannot mark, clarify, decide or decide an appeal on it, through the pages or
with an API token of their body, whose access shows only the body. The same for Plus audits.

ada (an assessor of body A) is a contributor of the bank; abe, the other assessor of body A,
plays the World's reviewing assessor. Built once for the module; each test in a savepoint.
"""

from __future__ import annotations

import pytest
from django.contrib.messages import constants as message_levels
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import translation

from mamori.accounts.models import ApiToken
from mamori.assessments import appeals, assignment, services
from mamori.assessments.models import (
    Answer,
    Assessment,
    AssignmentRule,
    Decision,
    Mark,
    ReviewAssignment,
    Verdict,
)
from mamori.audit.models import AuditEvent
from mamori.certificates.models import Certificate
from mamori.core.errors import NotAllowed
from mamori.organisations.access import Access
from mamori.organisations.conflicts import CONFLICT_CODE
from mamori.organisations.models import Membership, Role
from mamori.plus import services as plus
from mamori.plus.models import PlusAudit
from tests.conftest import World, api_token, built_once, client_for

pytestmark = pytest.mark.django_db
MARK_QID = "A4.4"


def _submit(world: World) -> Assessment:
    assessment = world.start()
    world.answer_all(assessment)
    world.sign(assessment)
    return services.submit(world.admin, world.access(world.admin), assessment.pk)


def build():
    world = World()
    # abe reviews; ada belongs to the bank (she joined it before it chose body A).
    world.assessor, world.assessor2 = world.assessor2, world.assessor
    ada = world.assessor2
    Membership.objects.create(user=ada, organisation=world.bank, role=Role.APPLICANT_CONTRIBUTOR)
    ReviewAssignment.objects.create(
        certification_body=world.body, rule=AssignmentRule.ROUND_ROBIN, last_assigned=world.assessor
    )
    submitted = _submit(world)  # round robin would give it to ada next: it goes to abe
    # An assessment assigned to ada before the rule existed (the reported case).
    legacy = _submit(world)
    Assessment.objects.filter(pk=legacy.pk).update(assessor=ada)
    failed = world.failed()
    appeals.lodge(world.admin, world.access(world.admin), failed.pk, "We disagree.")
    passed = world.passed()
    certificate = Certificate.objects.get(assessment=passed)
    audit = plus.request_audit(world.admin, world.access(world.admin), certificate.pk)
    return {
        "world": world,
        "ada": ada,
        "submitted": submitted,
        "legacy": legacy,
        "failed": failed,
        "audit": audit,
        "ada_token": api_token(ada, world.body),
    }


@pytest.fixture(scope="module")
def scene(django_db_setup, django_db_blocker):
    with built_once(django_db_blocker, build) as built:
        yield built


@pytest.fixture
def world(scene, db):
    return scene["world"]


def footprint() -> tuple:
    return (
        tuple(Assessment.objects.order_by("pk").values_list("pk", "state", "assessor_id")),
        Mark.objects.count(),
        Decision.objects.count(),
        tuple(PlusAudit.objects.values_list("pk", "assessor_id")),
        AuditEvent.objects.count(),
    )


def test_new_submissions_never_go_to_a_member_of_the_applicant(scene, world):
    ada = scene["ada"]
    assert scene["submitted"].assessor == world.assessor  # round robin skipped ada's turn
    for rule in (AssignmentRule.ROUND_ROBIN, AssignmentRule.LEAST_LOADED):
        ReviewAssignment.objects.filter(certification_body=world.body).update(rule=rule)
        assert assignment.pick_assessor(world.body.pk, world.bank.pk) == world.assessor
        # For another applicant ada is an assessor like any other.
        assert ada in {
            assignment.pick_assessor(world.body.pk, world.other_bank.pk) for _ in range(2)
        }
    # With abe gone, nobody impartial is left: the submission waits in the queue.
    world.assessor.is_active = False
    world.assessor.save(update_fields=["is_active"])
    assert assignment.pick_assessor(world.body.pk, world.bank.pk) is None


def test_the_plus_audit_never_goes_to_a_member_either(scene, world):
    ada = scene["ada"]
    assert scene["audit"].assessor == world.assessor
    # Even named as the one who certified the basic assessment.
    assert plus._pick_assessor(world.body.pk, ada.pk, world.bank.pk) == world.assessor
    before = footprint()
    with pytest.raises(NotAllowed) as refused:
        plus.take_over(ada, Access.for_user(ada), scene["audit"].pk)
    assert refused.value.code == CONFLICT_CODE
    assert footprint() == before


def _post(client: Client, name: str, assessment: Assessment, data=None, **extra):
    return client.post(
        reverse(f"assessments:{name}", args=[assessment.pk]),
        data or {},
        HTTP_ACCEPT_LANGUAGE="en",
        **extra,
    )


REFUSAL = (
    "You are a member of this organisation, so you cannot review its assessments: another "
    "assessor of your certification body must."
)


@pytest.mark.parametrize("target", ["submitted", "legacy"])
@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("take", None),
        ("start_review", None),
        ("mark_remaining", None),
        ("clarify", None),
        ("decide", {"outcome": "fail", "summary": "x"}),
    ],
)
def test_a_member_cannot_take_or_review_through_the_pages(scene, target, action, data):
    assessment = scene[target]
    before = footprint()
    response = _post(client_for(scene["ada"]), action, assessment, data)
    assert response.status_code == 302
    messages = list(get_messages(response.wsgi_request))
    assert [m.level for m in messages] == [message_levels.ERROR]
    if target == "legacy" or action == "take":
        assert str(messages[0]) == REFUSAL
    assert footprint() == before


def test_the_reported_case_marking_an_assigned_review_is_refused(scene):
    """Assigned to ada before the rule: her marks are refused on the page, its autosave and the
    API (with a token of her body, whose access does not show her bank membership)."""
    legacy, ada = scene["legacy"], scene["ada"]
    before = footprint()
    data = {"verdict": Verdict.COMPLIANT, "comment": ""}
    url = reverse("assessments:mark", args=[legacy.pk, MARK_QID])
    client = client_for(ada)
    page = client.post(url, data, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 302
    assert [str(m) for m in get_messages(page.wsgi_request)] == [f"{MARK_QID}: {REFUSAL}"]
    htmx = client.post(url, data, HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE="en")
    assert htmx.status_code == 403
    api = Client().post(
        f"/api/assessments/{legacy.pk}/marks",
        {"question": MARK_QID, **data},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {scene['ada_token']}",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert api.status_code == 403, api.content
    assert api.json()["detail"] == REFUSAL
    token = ApiToken.objects.get(user=ada)
    assert token.organisation == scene["world"].body
    with pytest.raises(NotAllowed) as refused:
        services.mark_answer(ada, Access.for_user(ada), legacy.pk, MARK_QID, "compliant", "")
    assert refused.value.code == CONFLICT_CODE
    assert footprint() == before
    assert not Answer.objects.filter(assessment=legacy, marks__isnull=False).exists()


def test_a_member_cannot_decide_the_appeal(scene):
    ada, failed = scene["ada"], scene["failed"]
    access = Access.for_user(ada)
    assessment = Assessment.objects.get(pk=failed.pk)
    with translation.override("en"):
        refusal = appeals.decide_refusal(access, assessment)
        assert (refusal.code, refusal.message) == (CONFLICT_CODE, REFUSAL)
    before = footprint()
    response = client_for(ada).post(
        reverse("assessments:appeal_decide", args=[failed.pk]),
        {"outcome": "uphold", "reason": "x"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 403
    assert REFUSAL in response.content.decode()
    assert footprint() == before
