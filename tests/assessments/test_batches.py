"""Answers and marks stored many at once (``save_answers``, ``mark_answers``): the same checks as
one at a time, all or none, one audit entry each, and a cost that does not grow with their
number. ``save_answer``/``mark_answer`` are the one-item case of the same code."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from mamori.assessments import services
from mamori.assessments.models import Answer, Mark, Verdict
from mamori.audit.models import AuditEvent
from mamori.audit.services import verify_trail
from mamori.catalogue import samples
from mamori.core.errors import Conflict, MamoriError

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def compliant(questions) -> list[services.AnswerChange]:
    return [services.AnswerChange(q.qid, samples.compliant_value(q.rules), 0) for q in questions]


def footprint(assessment) -> tuple:
    assessment.refresh_from_db()
    return (
        sorted(
            Answer.objects.filter(assessment=assessment).values_list("question__qid", "version")
        ),
        AuditEvent.objects.count(),
        assessment.answers_digest,
    )


def test_answers_saved_together_are_each_checked_stored_and_audited(world):
    draft = world.start()
    questions = services.Snapshot.load(draft).questions
    before = AuditEvent.objects.count()
    saved = services.save_answers(
        world.admin, world.access(world.admin), draft.pk, compliant(questions)
    )
    assert [answer.question.qid for answer in saved] == [q.qid for q in questions]
    assert all(answer.pk and answer.version == 1 for answer in saved)
    events = list(AuditEvent.objects.filter(seq__gt=before).order_by("seq"))
    assert [e.details["question"] for e in events] == [q.qid for q in questions]
    assert {e.action for e in events} == {"answer.saved"}
    assert verify_trail() is None  # chained as if recorded one by one
    draft.refresh_from_db()
    assert draft.answers_digest == services.answers_digest(services.Snapshot.load(draft).values)

    # Again: unchanged answers are left alone; a changed one gets a new version and one entry.
    first, second = questions[0], questions[1]
    changed = samples.failing_value(second.rules) or "changed"
    again = services.save_answers(
        world.admin,
        world.access(world.admin),
        draft.pk,
        [
            services.AnswerChange(first.qid, samples.compliant_value(first.rules), 1),
            services.AnswerChange(second.qid, changed, 1),
        ],
    )
    assert [(a.question.qid, a.version) for a in again] == [(first.qid, 1), (second.qid, 2)]
    assert AuditEvent.objects.count() == before + len(questions) + 1


@pytest.mark.parametrize(
    ("spoil", "error", "reason"),
    [
        (lambda changes: changes.append(changes[0]), MamoriError, "is answered twice"),
        (
            lambda changes: changes.insert(5, services.AnswerChange("Z9.99", "yes", 0)),
            MamoriError,
            "There is no question Z9.99",
        ),
        (
            lambda changes: changes.__setitem__(
                -1, services.AnswerChange(changes[-1].qid, {"not": "an answer"}, 0)
            ),
            MamoriError,
            None,
        ),
        (
            lambda changes: changes.__setitem__(
                3, services.AnswerChange(changes[3].qid, changes[3].value, 7)
            ),
            Conflict,
            "Someone else saved this answer first",
        ),
        (
            lambda changes: changes.__setitem__(
                2, services.AnswerChange(changes[2].qid, changes[2].value, None)
            ),
            Conflict,
            "Send the version you edited",
        ),
    ],
    ids=["duplicate", "unknown-question", "bad-value", "stale-version", "no-version"],
)
def test_one_bad_answer_stores_none_of_them(world, spoil, error, reason):
    draft = world.start()
    questions = services.Snapshot.load(draft).questions
    changes = compliant(questions)
    spoil(changes)
    before = footprint(draft)
    with pytest.raises(error) as refused:
        services.save_answers(world.admin, world.access(world.admin), draft.pk, changes)
    if reason is None:  # a value the question cannot take: its own message, on the value
        assert refused.value.field.startswith("value"), refused.value.field
        assert str(refused.value)
    else:
        assert reason in str(refused.value)
    assert footprint(draft) == before


def test_the_cost_of_a_batch_does_not_grow_with_its_size(world):
    access = world.access(world.admin)
    counts = []
    for size in (3, 60):
        draft = world.start(organisation=world.other_bank, admin=world.other_admin)
        questions = services.Snapshot.load(draft).questions[:size]
        with CaptureQueriesContext(connection) as queries:
            services.save_answers(
                world.other_admin, world.access(world.other_admin), draft.pk, compliant(questions)
            )
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1], counts
    assert access  # alice's own access plays no part in oscar's drafts


def test_marks_together_are_all_or_none_and_each_audited(world):
    assessment = world.submitted(failing={"A6.4"})
    snapshot = services.Snapshot.load(assessment)
    auto = set(services.scoring.auto_failures(snapshot.specs, snapshot.values))
    assert "A6.4" in auto
    scored = [q.qid for q in snapshot.questions if q.is_scored and q.qid in snapshot.answers]
    access = world.access(world.assessor)
    everything_compliant = [services.MarkChange(qid, Verdict.COMPLIANT) for qid in scored]
    before = AuditEvent.objects.count()
    with pytest.raises(MamoriError, match="automatic fail"):
        services.mark_answers(world.assessor, access, assessment.pk, everything_compliant)
    assert Mark.objects.filter(answer__assessment=assessment).count() == 0
    assert AuditEvent.objects.count() == before

    marks = services.mark_answers(
        world.assessor,
        access,
        assessment.pk,
        [
            services.MarkChange(qid, Verdict.NON_COMPLIANT, "fix it")
            if qid in auto
            else services.MarkChange(qid, Verdict.COMPLIANT)
            for qid in scored
        ],
    )
    assert [m.answer.question.qid for m in marks] == scored
    assert all(m.pk for m in marks)
    marked = AuditEvent.objects.filter(seq__gt=before, action="answer.marked")
    assert sorted(e.details["question"] for e in marked) == sorted(scored)
    # Marking again in the same round updates the marks; it does not add any.
    services.mark_answer(
        world.assessor, access, assessment.pk, scored[0], Verdict.NON_COMPLIANT, "x"
    )
    assert Mark.objects.filter(answer__assessment=assessment).count() == len(scored)
    assert Mark.objects.get(
        answer__question__qid=scored[0], answer__assessment=assessment
    ).verdict == (Verdict.NON_COMPLIANT)
    assert verify_trail() is None
