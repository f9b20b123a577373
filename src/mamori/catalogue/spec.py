"""The in-memory shape of a requirement catalogue and of one question's answer.

Pure logic, no Django imports: the loader builds these from YAML, the database stores them, and
answer validation, pre-checks and scoring work on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from mamori.catalogue import rules
from mamori.core.controls import FIVE_CONTROLS

KINDS = ("yes_no", "choice", "multi_choice", "number", "text", "inventory")
COLUMN_KINDS = ("text", "number", "choice", "yes_no")
SCORINGS = ("scored", "informational")
# The areas a question belongs to: the five controls and the parts of the scheme around them.
CONTROLS = ("organisation", "scope", "insurance", *FIVE_CONTROLS, "backups", "governance")
YES, NO, NOT_APPLICABLE = "yes", "no", "not_applicable"
TEXT_MAX_LENGTH = 5000
INVENTORY_MAX_ROWS = 500
CELL_MAX_LENGTH = 300


class AnswerError(ValueError):
    """An answer value that does not fit its question. ``code`` and ``params`` name the problem;
    the web layer turns them into a translated message."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


@dataclass(frozen=True)
class QuestionSpec:
    qid: str
    kind: str
    scoring: str = "informational"
    required: bool = True
    options: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    max_length: int = TEXT_MAX_LENGTH
    columns: tuple[dict, ...] = ()
    not_applicable: bool = False
    compliant: dict | None = None
    auto_fail: dict | None = None
    applies_if: dict | None = None
    settings: dict = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_spec(
        cls, qid: str, kind: str, scoring: str, required: bool, spec: dict, settings: dict
    ) -> QuestionSpec:
        return cls(
            qid=qid,
            kind=kind,
            scoring=scoring,
            required=required,
            options=tuple(option["value"] for option in spec.get("options", ())),
            minimum=_bound(spec.get("min"), settings),
            maximum=_bound(spec.get("max"), settings),
            max_length=int(spec.get("max_length", TEXT_MAX_LENGTH)),
            columns=tuple(spec.get("columns", ())),
            not_applicable=bool(spec.get("not_applicable", False)),
            compliant=spec.get("compliant"),
            auto_fail=(spec.get("auto_fail") or {}).get("when"),
            applies_if=spec.get("applies_if"),
            settings=settings,
        )

    @property
    def choices(self) -> tuple[str, ...]:
        if self.kind == "yes_no":
            return (YES, NO, NOT_APPLICABLE) if self.not_applicable else (YES, NO)
        return self.options

    def normalise(self, raw: Any) -> Any:
        """Return the stored form of ``raw`` or raise AnswerError. ``None`` clears an answer."""
        if raw is None or raw == "" or raw == []:
            return None
        if self.kind in ("yes_no", "choice"):
            return _one_of(raw, self.choices)
        if self.kind == "multi_choice":
            if not isinstance(raw, list):
                raise AnswerError("not_a_list")
            picked = [_one_of(item, self.choices) for item in raw]
            if len(set(picked)) != len(picked):
                raise AnswerError("duplicate_choice")
            return [value for value in self.choices if value in picked]
        if self.kind == "number":
            return _number(raw, self.minimum, self.maximum)
        if self.kind == "text":
            return _text(raw, self.max_length)
        return self._inventory(raw)

    def _inventory(self, raw: Any) -> list[dict] | None:
        if not isinstance(raw, list):
            raise AnswerError("not_a_table")
        if len(raw) > INVENTORY_MAX_ROWS:
            raise AnswerError("too_many_rows", limit=INVENTORY_MAX_ROWS)
        rows = []
        known = {column["id"] for column in self.columns}
        for number, row in enumerate(raw, start=1):
            if not isinstance(row, dict):
                raise AnswerError("row_not_an_object", row=number)
            unknown = sorted(set(row) - known)
            if unknown:
                raise AnswerError("unknown_column", row=number, column=unknown[0])
            clean = {}
            for column in self.columns:
                try:
                    clean[column["id"]] = _cell(column, row.get(column["id"]), self.settings)
                except AnswerError as exc:
                    raise AnswerError(
                        exc.code, row=number, column=column["id"], **exc.params
                    ) from None
            if all(value is None for value in clean.values()):
                continue  # a blank row left over from the form
            for column in self.columns:
                if column.get("required") and clean[column["id"]] is None:
                    raise AnswerError("cell_required", row=number, column=column["id"])
            rows.append(clean)
        return rows or None

    def applies(self, answers: dict[str, Any]) -> bool:
        if not self.applies_if:
            return True
        return rules.evaluate(
            self.applies_if["rule"], answers.get(self.applies_if["question"]), self.settings
        )

    def auto_fails(self, value: Any) -> bool:
        return bool(self.auto_fail) and rules.evaluate(self.auto_fail, value, self.settings)

    def is_compliant(self, value: Any) -> bool | None:
        """The catalogue's own view of an answer: None when it has no rule for this question."""
        if self.compliant is None or value is None:
            return None
        return rules.evaluate(self.compliant, value, self.settings)


def _bound(value: Any, settings: dict) -> float | None:
    return None if value is None else rules.resolve_number(value, settings)


def _one_of(raw: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(raw, str):
        raise AnswerError("not_a_choice", allowed=", ".join(allowed))
    if raw not in allowed:
        raise AnswerError("unknown_choice", value=raw[:50], allowed=", ".join(allowed))
    return raw


def _number(raw: Any, minimum: float | None, maximum: float | None) -> int | float:
    if isinstance(raw, bool):
        raise AnswerError("not_a_number")
    if isinstance(raw, str):
        try:
            parsed = Decimal(raw.strip().replace(",", ""))
        except InvalidOperation:
            raise AnswerError("not_a_number") from None
        if not parsed.is_finite():
            raise AnswerError("not_a_number")
        raw = int(parsed) if parsed == parsed.to_integral_value() else float(parsed)
    if not isinstance(raw, int | float) or (isinstance(raw, float) and not math.isfinite(raw)):
        raise AnswerError("not_a_number")
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if abs(raw) > 10**12:
        raise AnswerError("number_too_large")
    if minimum is not None and raw < minimum:
        raise AnswerError("below_minimum", minimum=minimum)
    if maximum is not None and raw > maximum:
        raise AnswerError("above_maximum", maximum=maximum)
    return raw


def _text(raw: Any, max_length: int) -> str | None:
    if not isinstance(raw, str):
        raise AnswerError("not_text")
    if "\x00" in raw:
        raise AnswerError("control_characters")
    # Keep line breaks and tabs; other control characters have no place in an answer.
    if any(ord(char) < 32 and char not in "\n\r\t" for char in raw):
        raise AnswerError("control_characters")
    text = raw.strip().replace("\r\n", "\n")
    if len(text) > max_length:
        raise AnswerError("too_long", limit=max_length)
    return text or None


def _cell(column: dict, raw: Any, settings: dict) -> Any:
    if raw is None or raw == "":
        return None
    kind = column["kind"]
    if kind == "number":
        return _number(
            raw, _bound(column.get("min"), settings), _bound(column.get("max"), settings)
        )
    if kind == "choice":
        return _one_of(raw, tuple(option["value"] for option in column.get("options", ())))
    if kind == "yes_no":
        return _one_of(raw, (YES, NO))
    return _text(raw, CELL_MAX_LENGTH)
