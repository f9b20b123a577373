"""Declarative answer rules: ``compliant``, ``auto_fail.when`` and ``applies_if`` in catalogues.

A rule is a mapping with exactly one operator, e.g. ``{"equals": "yes"}`` or
``{"at_most": "$patch_days"}``; ``all``/``any``/``not`` combine rules. Numbers may name a catalogue
setting with ``$name`` so a catalogue version can tighten a threshold without code changes.
Pure logic, no Django imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real
from typing import Any

COMPARISONS = {
    "at_least": lambda value, bound: value >= bound,
    "at_most": lambda value, bound: value <= bound,
    "greater_than": lambda value, bound: value > bound,
    "less_than": lambda value, bound: value < bound,
}
VALUE_OPERATORS = {"equals", "not_equals", "in", "not_in", "includes", "excludes"}
COMBINATORS = {"all", "any", "not"}
OPERATORS = frozenset(COMPARISONS) | VALUE_OPERATORS | COMBINATORS


class RuleError(ValueError):
    """A rule that is malformed or refers to an unknown setting."""


def resolve_number(bound: Any, settings: Mapping[str, Any]) -> Real:
    if isinstance(bound, str) and bound.startswith("$"):
        name = bound[1:]
        if name not in settings:
            raise RuleError(f"unknown setting {bound!r}")
        bound = settings[name]
    if isinstance(bound, bool) or not isinstance(bound, Real):
        raise RuleError(f"{bound!r} is not a number")
    return bound


def check_rule(rule: Any, settings: Mapping[str, Any]) -> None:
    """Raise RuleError when ``rule`` is not well formed (used by the catalogue loader)."""
    if not isinstance(rule, Mapping) or len(rule) != 1:
        raise RuleError("a rule is a mapping with exactly one operator")
    ((operator, operand),) = rule.items()
    if operator not in OPERATORS:
        raise RuleError(f"unknown rule operator {operator!r}")
    if operator in ("all", "any"):
        if not isinstance(operand, list) or not operand:
            raise RuleError(f"{operator!r} takes a non-empty list of rules")
        for sub in operand:
            check_rule(sub, settings)
    elif operator == "not":
        check_rule(operand, settings)
    elif operator in COMPARISONS:
        resolve_number(operand, settings)
    elif operator in ("in", "not_in"):
        if not isinstance(operand, list) or not operand:
            raise RuleError(f"{operator!r} takes a non-empty list of values")
    elif isinstance(operand, bool):
        raise RuleError('booleans are not answer values; quote "yes" and "no"')


def rule_values(rule: Mapping[str, Any]) -> list[Any]:
    """Every literal answer value a rule compares against (to check them against options)."""
    ((operator, operand),) = rule.items()
    if operator in ("all", "any"):
        return [value for sub in operand for value in rule_values(sub)]
    if operator == "not":
        return rule_values(operand)
    if operator in ("in", "not_in"):
        return list(operand)
    if operator in VALUE_OPERATORS:
        return [operand]
    return []


def evaluate(rule: Mapping[str, Any], value: Any, settings: Mapping[str, Any]) -> bool:
    """True when ``value`` (a normalised answer) satisfies ``rule``. Missing answers never match."""
    ((operator, operand),) = rule.items()
    if operator == "all":
        return all(evaluate(sub, value, settings) for sub in operand)
    if operator == "any":
        return any(evaluate(sub, value, settings) for sub in operand)
    if operator == "not":
        return value is not None and not evaluate(operand, value, settings)
    if value is None:
        return False
    if operator in COMPARISONS:
        if isinstance(value, bool) or not isinstance(value, Real):
            return False
        return COMPARISONS[operator](value, resolve_number(operand, settings))
    if operator == "equals":
        return value == operand
    if operator == "not_equals":
        return value != operand
    if operator == "in":
        return value in operand
    if operator == "not_in":
        return value not in operand
    if operator == "includes":
        return isinstance(value, list) and operand in value
    if operator == "excludes":
        return isinstance(value, list) and operand not in value
    raise RuleError(f"unknown rule operator {operator!r}")
