"""The review assignment rule: visible on the queue, changed by the body's assessors or the
scheme owner (audited), and applied to each new submission."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mamori.assessments import services
from mamori.assessments.models import AssignmentRule, ReviewAssignment
from mamori.audit.models import AuditEvent
from mamori.audit.services import verify_trail
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def submit_new(world):
    """A complete, signed assessment submitted through the real service; who got it."""
    assessment = world.start()
    world.answer_all(assessment)
    world.sign(assessment)
    return services.submit(world.admin, world.access(world.admin), assessment.pk).assessor


def set_rule(client, world, rule: str, body=None):
    return client.post(
        reverse("assessments:assignment"),
        {"certification_body": (body or world.body).pk, "rule": rule},
        HTTP_ACCEPT_LANGUAGE="en",
    )


def test_the_rule_is_shown_on_the_queue_and_the_default_is_least_loaded(world):
    queue = client_for(world.assessor).get(reverse("assessments:queue"), HTTP_ACCEPT_LANGUAGE="en")
    assert (
        "New submissions to Body A go: To the assessor with the fewest open reviews."
        in queue.content.decode()
    )
    assert submit_new(world) == world.assessor  # ties: the longest-standing member
    assert submit_new(world) == world.assessor2  # then whoever has fewer open reviews


def test_to_nobody_leaves_submissions_in_the_queue_for_an_assessor_to_take(world):
    client = client_for(world.assessor2)
    response = set_rule(client, world, AssignmentRule.QUEUE)
    assert (response.status_code, response.url) == (302, reverse("assessments:assignment"))
    event = AuditEvent.objects.get(action="assessment.assignment_rule_changed")
    assert event.details == {"from": "least_loaded", "to": "queue"}
    assert event.actor_id == world.assessor2.pk
    assert verify_trail() is None

    assert submit_new(world) is None
    queue = client_for(world.assessor).get(
        reverse("assessments:queue"), {"show": "unassigned"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert queue.context["counts"]["unassigned"] == 1
    (waiting,) = queue.context["page"].object_list
    assert "To nobody: assessors take submissions from the queue." in queue.content.decode()
    services.take_over(world.assessor, world.access(world.assessor), waiting.pk)
    waiting.refresh_from_db()
    assert waiting.assessor == world.assessor


def test_round_robin_gives_each_assessor_a_turn(world):
    set_rule(client_for(world.owner), world, AssignmentRule.ROUND_ROBIN)
    assert [submit_new(world) for _ in range(3)] == [
        world.assessor,
        world.assessor2,
        world.assessor,
    ]
    assert ReviewAssignment.objects.get(certification_body=world.body).last_assigned == (
        world.assessor
    )


def test_who_may_see_and_change_the_rule(world):
    url = reverse("assessments:assignment")
    # Applicants and outsiders have no such page; another body's assessor only sees its own.
    for persona in ("admin", "outsider", "signatory"):
        assert client_for(getattr(world, persona)).get(url).status_code == 404, persona
    other = client_for(world.other_assessor)
    page = other.get(url)
    assert [row["body"] for row in page.context["rows"]] == [world.other_body]
    assert set_rule(other, world, AssignmentRule.QUEUE).status_code == 404
    # The scheme owner sees and may change every body's rule.
    owner_rows = client_for(world.owner).get(url).context["rows"]
    assert {row["body"] for row in owner_rows} == {world.body, world.other_body}
    assert all(row["can_change"] for row in owner_rows)
    # A rule that does not exist is refused with a reason; nothing changes.
    assessor = client_for(world.assessor)
    refused = set_rule(assessor, world, "whoever")
    assert refused.status_code == 302
    follow = assessor.get(refused.url, HTTP_ACCEPT_LANGUAGE="en")
    assert "Choose how submissions are assigned." in follow.content.decode()
    assert not ReviewAssignment.objects.filter(rule="whoever").exists()
    assert not AuditEvent.objects.filter(action="assessment.assignment_rule_changed").exists()
