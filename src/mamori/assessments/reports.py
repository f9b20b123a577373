"""The advice report given on failure: each failed requirement with what to do about it."""

from __future__ import annotations

import contextlib

from django.utils import translation

from mamori.assessments import scoring
from mamori.assessments.models import Decision
from mamori.assessments.services import Snapshot


def advice_context(decision: Decision, language: str | None = None) -> dict:
    assessment = decision.assessment
    snapshot = Snapshot.load(assessment, round_=decision.round)
    failed = set(scoring.failed_requirements(snapshot.specs, snapshot.values, snapshot.verdicts))
    auto = set(scoring.auto_failures(snapshot.specs, snapshot.values))
    with translation.override(language) if language else contextlib.nullcontext():
        items = [
            {
                "question": question,
                "qid": question.qid,
                "section": question.section.title,
                "text": question.text,
                "answer": snapshot.answers.get(question.qid),
                "mark": snapshot.marks.get(question.qid),
                "auto_fail": question.qid in auto,
                "auto_fail_reason": question.auto_fail_reason if question.qid in auto else "",
                "remediation": question.remediation,
            }
            for question in snapshot.questions
            if question.qid in failed
        ]
        organisation_name = assessment.organisation.name
    return {
        "decision": decision,
        "assessment": assessment,
        "organisation_name": organisation_name,
        "items": items,
        "can_resubmit": assessment.can_resubmit and decision.round == assessment.round,
        "language": language,
    }
