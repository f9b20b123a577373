"""Plausible answers for any catalogue question: compliant ones for demo data, tests and
benchmarks, and failing ones where a test or demo needs a fail. Plain Python: no Django."""

from __future__ import annotations

from typing import Any

from mamori.catalogue.spec import QuestionSpec

SAMPLE_TEXT = "デモ回答: 方針に従い運用しています。 (Demo answer: operated according to policy.)"


def _candidates(spec: QuestionSpec) -> list[Any]:
    if spec.kind in ("yes_no", "choice"):
        return list(spec.choices)
    if spec.kind == "multi_choice":
        return [[choice] for choice in spec.choices] + [list(spec.choices)]
    if spec.kind == "number":
        numbers = {0, 1, 2, 5, 6, 7, 8, 10, 12, 14, 30, 90, 365}
        numbers |= {value for value in spec.settings.values() if isinstance(value, int | float)}
        if spec.minimum is not None:
            numbers.add(spec.minimum)
        if spec.maximum is not None:
            numbers.add(spec.maximum)
        return sorted(
            n
            for n in numbers
            if (spec.minimum is None or n >= spec.minimum)
            and (spec.maximum is None or n <= spec.maximum)
        )
    if spec.kind == "text":
        return [SAMPLE_TEXT[: spec.max_length]]
    return [[_sample_row(spec)]]


def _sample_row(spec: QuestionSpec) -> dict:
    row = {}
    for column in spec.columns:
        if column["kind"] == "number":
            row[column["id"]] = max(
                1, column.get("min", 1) if isinstance(column.get("min"), int) else 1
            )
        elif column["kind"] == "choice":
            row[column["id"]] = column["options"][0]["value"]
        elif column["kind"] == "yes_no":
            row[column["id"]] = "yes"
        else:
            row[column["id"]] = "demo"
    return row


def compliant_value(spec: QuestionSpec) -> Any:
    """A valid answer the catalogue considers compliant and that triggers no auto-fail."""
    candidates = _candidates(spec)
    for value in candidates:
        if spec.auto_fails(value):
            continue
        if spec.compliant is None or spec.is_compliant(value):
            return spec.normalise(value)
    return spec.normalise(candidates[0])


def failing_value(spec: QuestionSpec) -> Any | None:
    """A valid answer that auto-fails (preferred) or is not compliant; None if there is none."""
    candidates = _candidates(spec)
    for value in candidates:
        if spec.auto_fails(value):
            return spec.normalise(value)
    for value in candidates:
        if spec.is_compliant(value) is False:
            return spec.normalise(value)
    return None
