"""The assessor's review page: section navigation, filters (unmarked, flagged, auto-fail), and
marking the remaining answers compliant in one action, each mark recorded on its own."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from mamori.assessments import scoring, services
from mamori.assessments.models import Mark, Verdict
from mamori.audit.models import AuditEvent
from mamori.audit.services import verify_trail
from mamori.catalogue import samples
from mamori.catalogue.models import Section
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def not_compliant_but_no_auto_fail(assessment) -> str:
    """A scored question with an answer the catalogue rule rejects without failing it outright."""
    for question in services.Snapshot.load(assessment).questions:
        spec = question.rules
        value = samples.failing_value(spec)
        always_applies = not question.spec.get("applies_if")
        if (
            question.is_scored
            and always_applies
            and value is not None
            and not spec.auto_fails(value)
        ):
            return question.qid
    raise AssertionError("the catalogue has no such question")


@pytest.fixture
def review(world):
    """A submission with one auto-failing answer (A6.4) and one the catalogue's rule rejects."""
    draft = world.start()
    rejected = not_compliant_but_no_auto_fail(draft)
    draft.delete()
    assessment = world.submitted(failing={"A6.4", rejected})
    return assessment, rejected


def shown_qids(response) -> list[str]:
    return re.findall(r'<div id="q-([A-Z0-9.]+)" class="question', response.content.decode())


def test_sections_and_filters(world, review):
    assessment, rejected = review
    client = client_for(world.assessor)
    url = reverse("assessments:review", args=[assessment.pk])
    snapshot = services.Snapshot.load(assessment)
    everything = [question.qid for question in snapshot.questions]

    page = client.get(url)
    assert shown_qids(page) == everything
    body = page.content.decode()
    sections = list(Section.objects.filter(catalogue=assessment.catalogue))
    for section in sections:
        assert f'href="?show=all&amp;section={section.code}"' in body
        assert f'id="section-{section.code}"' in body  # a heading to jump to

    a5 = client.get(url, {"section": "A5"})
    assert shown_qids(a5) == [q.qid for q in snapshot.questions if q.section.code == "A5"]
    # The filters count within the section shown.
    assert a5.context["filters"][0] == {
        "name": "all",
        "label": "すべての回答",
        "count": len(shown_qids(a5)),
    }

    auto = client.get(url, {"show": "auto_fail"})
    assert shown_qids(auto) == ["A6.4"]
    assert 'data-filter="auto_fail">' in auto.content.decode()

    unmarked = set(shown_qids(client.get(url, {"show": "unmarked"})))
    scored_answered = {
        q.qid
        for q in snapshot.questions
        if q.is_scored and q.qid in snapshot.answers and q.rules.applies(snapshot.values)
    }
    assert unmarked == scored_answered
    assert shown_qids(client.get(url, {"show": "flagged"})) == []

    access = world.access(world.assessor)
    services.mark_answer(
        world.assessor, access, assessment.pk, rejected, "needs_information", "Which devices?"
    )
    assert shown_qids(client.get(url, {"show": "flagged"})) == [rejected]
    assert rejected not in shown_qids(client.get(url, {"show": "unmarked"}))
    # Filters combine with a section; an unknown filter or section shows everything.
    section = snapshot.answers[rejected].question.section.code
    assert shown_qids(client.get(url, {"show": "flagged", "section": section})) == [rejected]
    assert shown_qids(client.get(url, {"show": "nonsense", "section": "Z9"})) == everything


def test_mark_the_remaining_answers_compliant(world, review):
    assessment, rejected = review
    client = client_for(world.assessor)
    url = reverse("assessments:mark_remaining", args=[assessment.pk])
    snapshot = services.Snapshot.load(assessment)
    expected = scoring.remaining_compliant(snapshot.specs, snapshot.values, snapshot.verdicts)
    assert "A6.4" not in expected
    assert rejected not in expected
    assert len(expected) > 40

    page = client.get(reverse("assessments:review", args=[assessment.pk])).content.decode()
    confirm = re.search(r'<form[^>]*id="mark-remaining"[^>]*data-confirm="([^"]+)"', page, re.S)
    assert confirm
    assert f"残りの {len(expected)} 件の回答を適合と判定しますか" in confirm[1]

    # Nobody else may: not the other assessor of the body (not assigned), not an outsider.
    assert client_for(world.assessor2).post(url).status_code == 302
    assert client_for(world.other_assessor).post(url).status_code == 404
    assert client_for(world.admin).post(url).status_code == 404
    assert client.get(url).status_code == 405
    assert not Mark.objects.filter(answer__assessment=assessment).exists()

    response = client.post(url, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302
    marks = Mark.objects.filter(answer__assessment=assessment, round=assessment.round)
    assert sorted(marks.values_list("answer__question__qid", flat=True)) == sorted(expected)
    assert set(marks.values_list("verdict", flat=True)) == {Verdict.COMPLIANT}
    assert set(marks.values_list("assessor", flat=True)) == {world.assessor.pk}
    # Each mark has its own audit event, as if saved by hand, and one event says what happened.
    marked = AuditEvent.objects.filter(action="answer.marked")
    assert sorted(event.details["question"] for event in marked) == sorted(expected)
    summary = AuditEvent.objects.get(action="answers.remaining_marked_compliant")
    assert summary.details["questions"] == expected
    assert verify_trail() is None
    messages = client.get(response.url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f"Marked {len(expected)} answers compliant." in messages

    # The auto-fail and the rejected answer are left; nothing remains for a second go.
    verdicts = dict(marks.values_list("answer__question__qid", "verdict"))
    blockers = scoring.pass_blockers(snapshot.specs, snapshot.values, verdicts)
    assert {blocker.qid: blocker.reason for blocker in blockers} == {
        "A6.4": "auto_fail",
        rejected: "unmarked",
    }
    again = client.post(url, HTTP_ACCEPT_LANGUAGE="en")
    assert "No answer was left to mark compliant." in client.get(again.url).content.decode()
    assert AuditEvent.objects.filter(action="answers.remaining_marked_compliant").count() == 1


def test_the_remaining_never_include_an_auto_fail_or_a_rejected_answer(catalogue):
    """Every answer failing wherever the catalogue allows, nothing marked: only answers the
    catalogue's rule accepts remain, and never one that fails automatically."""
    specs = [question.rules for question in catalogue.questions.order_by("position")]
    answers = {}
    for spec in specs:
        value = samples.failing_value(spec)
        answers[spec.qid] = value if value is not None else samples.compliant_value(spec)
    remaining = scoring.remaining_compliant(specs, answers, {})
    auto = set(scoring.auto_failures(specs, answers))
    assert auto
    assert not auto & set(remaining)
    assert all(s.is_compliant(answers[s.qid]) is not False for s in specs if s.qid in remaining)
    # Marked answers are not "remaining", whatever their verdict.
    assert scoring.remaining_compliant(specs, answers, dict.fromkeys(remaining, "compliant")) == []
