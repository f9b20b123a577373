"""The advice report given on failure: each failed requirement with what to do about it."""

from __future__ import annotations

import contextlib

from django.utils import translation

from mamori.assessments import scoring
from mamori.assessments.models import Assessment, Decision
from mamori.assessments.snapshot import Snapshot

# What the advice report tells the applicant to do next, by where the assessment stands now.
RESUBMIT = "resubmit"  # the first failure, window open: correct and resubmit once
RESUBMITTED = "resubmitted"  # the first failure, already resubmitted: this report is history
WINDOW_CLOSED = "window_closed"  # the first failure, window passed without a resubmission
FINAL = "final"  # the resubmission failed too: only a new assessment remains


def next_step(decision: Decision, assessment: Assessment) -> str:
    """One resubmission is allowed, within the window after the first failure; after that (or
    after the resubmission fails) a new assessment is needed (README, the scheme workflow)."""
    if decision.round > 1:
        return FINAL
    if assessment.round > decision.round:
        return RESUBMITTED
    if assessment.can_resubmit:
        return RESUBMIT
    return WINDOW_CLOSED


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
        "next_step": next_step(decision, assessment),
        "language": language,
    }
