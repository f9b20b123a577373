"""Progress, pre-check and decision rules over one assessment's answers.

Pure logic, no Django imports: works on catalogue ``QuestionSpec``s, answer values keyed by
question id and the current round's verdicts, so it is easy to test and fast on large assessments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mamori.catalogue.spec import QuestionSpec

COMPLIANT, NON_COMPLIANT, NEEDS_INFORMATION = "compliant", "non_compliant", "needs_information"


@dataclass(frozen=True)
class Progress:
    answered: int
    required: int

    @property
    def percent(self) -> int:
        return 100 if self.required == 0 else round(100 * self.answered / self.required)

    @property
    def complete(self) -> bool:
        return self.answered >= self.required


@dataclass(frozen=True)
class Blocker:
    qid: str
    reason: str  # unanswered | auto_fail | unmarked | non_compliant | needs_information


def applicable(specs: Sequence[QuestionSpec], answers: Mapping[str, Any]) -> list[QuestionSpec]:
    return [spec for spec in specs if spec.applies(answers)]


def progress(specs: Sequence[QuestionSpec], answers: Mapping[str, Any]) -> Progress:
    required = [spec for spec in applicable(specs, answers) if spec.required]
    answered = sum(1 for spec in required if answers.get(spec.qid) is not None)
    return Progress(answered, len(required))


def unanswered(specs: Sequence[QuestionSpec], answers: Mapping[str, Any]) -> list[str]:
    return [
        spec.qid
        for spec in applicable(specs, answers)
        if spec.required and answers.get(spec.qid) is None
    ]


def auto_failures(specs: Sequence[QuestionSpec], answers: Mapping[str, Any]) -> list[str]:
    return [
        spec.qid
        for spec in applicable(specs, answers)
        if spec.scoring == "scored" and spec.auto_fails(answers.get(spec.qid))
    ]


def not_compliant(specs: Sequence[QuestionSpec], answers: Mapping[str, Any]) -> list[str]:
    """Scored answers the catalogue's own rule does not consider compliant (a hint, not a mark)."""
    return [
        spec.qid
        for spec in applicable(specs, answers)
        if spec.scoring == "scored" and spec.is_compliant(answers.get(spec.qid)) is False
    ]


def pass_blockers(
    specs: Sequence[QuestionSpec], answers: Mapping[str, Any], verdicts: Mapping[str, str]
) -> list[Blocker]:
    """Why the assessment cannot pass yet; an empty list means it may pass. Every applicable
    scored answer needs a compliant mark, and no auto-fail rule may be triggered."""
    blockers = []
    auto = set(auto_failures(specs, answers))
    for spec in applicable(specs, answers):
        if spec.scoring != "scored":
            continue
        verdict = verdicts.get(spec.qid)
        if spec.qid in auto:
            blockers.append(Blocker(spec.qid, "auto_fail"))
        elif verdict is None:
            blockers.append(Blocker(spec.qid, "unmarked"))
        elif verdict != COMPLIANT:
            blockers.append(Blocker(spec.qid, verdict))
    return blockers


def failed_requirements(
    specs: Sequence[QuestionSpec], answers: Mapping[str, Any], verdicts: Mapping[str, str]
) -> list[str]:
    """Question ids that make an assessment fail: auto-fails and non-compliant marks."""
    auto = set(auto_failures(specs, answers))
    return [
        spec.qid
        for spec in applicable(specs, answers)
        if spec.qid in auto or verdicts.get(spec.qid) == NON_COMPLIANT
    ]


def remaining_compliant(
    specs: Sequence[QuestionSpec], answers: Mapping[str, Any], verdicts: Mapping[str, str]
) -> list[str]:
    """The answers "mark the remaining answers compliant" may mark: applicable, scored,
    answered and not marked yet, and neither failing automatically nor found not compliant by
    the catalogue's own rule (those are left for the assessor to mark one by one)."""
    auto = set(auto_failures(specs, answers))
    return [
        spec.qid
        for spec in applicable(specs, answers)
        if spec.scoring == "scored"
        and answers.get(spec.qid) is not None
        and spec.qid not in verdicts
        and spec.qid not in auto
        and spec.is_compliant(answers.get(spec.qid)) is not False
    ]
