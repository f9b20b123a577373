"""One assessment as its pages, reports and services read it: questions, answers and marks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mamori.assessments import scoring
from mamori.assessments.models import Answer, Assessment, Mark
from mamori.catalogue.models import Question


@dataclass
class Snapshot:
    """One assessment's questions, answers and current-round marks, loaded in three queries."""

    assessment: Assessment
    questions: list[Question]
    answers: dict[str, Answer]
    marks: dict[str, Mark]

    @classmethod
    def load(cls, assessment: Assessment, round_: int | None = None) -> Snapshot:
        questions = list(
            Question.objects.filter(catalogue_id=assessment.catalogue_id)
            .select_related("section", "catalogue")
            .order_by("position")
        )
        by_pk = {question.pk: question.qid for question in questions}
        answers = {
            by_pk[answer.question_id]: answer
            for answer in Answer.objects.filter(assessment=assessment)
        }
        round_ = assessment.round if round_ is None else round_
        marks = {
            by_pk[mark.answer.question_id]: mark
            for mark in Mark.objects.filter(
                answer__assessment=assessment, round=round_
            ).select_related("answer", "assessor")
        }
        return cls(assessment, questions, answers, marks)

    @property
    def specs(self):
        return [question.rules for question in self.questions]

    @property
    def values(self) -> dict[str, Any]:
        return {qid: answer.value for qid, answer in self.answers.items()}

    @property
    def verdicts(self) -> dict[str, str]:
        return {qid: mark.verdict for qid, mark in self.marks.items()}

    def progress(self) -> scoring.Progress:
        return scoring.progress(self.specs, self.values)
