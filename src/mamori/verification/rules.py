"""Host checks as data: load ``checks/*.yaml`` and evaluate their conditions over evidence.

A check (see ``docs/checks.md``) names a control, the catalogue questions it supports, texts in
Japanese and English, and a condition tree over evidence paths, in the spirit of Wazuh's SCA
policies: ``all`` / ``any`` / ``none`` of leaf tests such as ``{path: ssh.settings.port, equals:
22}``. Evidence is often incomplete (the agent could not read a file, not root, a mounted root), so
the logic has three values -- True, False and None for *unknown* -- combined as in Kleene's logic:

- ``all``: False if any part is False, else unknown if any part is unknown, else True;
- ``any``: True if any part is True, else unknown if any part is unknown, else False;
- ``none``: False if any part is True, else unknown if any part is unknown, else True.

A leaf whose path is null or missing, or lies in a section whose ``status`` is ``unknown``, is
unknown. Unknown never becomes a pass. Numbers may name a setting as ``$name`` (the catalogue's
``settings`` plus the evaluator's defaults) so that a catalogue version can tighten a threshold.

Pure logic, no Django imports: the CLI, the server and the tests all call this module.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

# The catalogue loader's line-tracking YAML loader gives every problem a line number.
from mamori.catalogue.loader import _LineLoader, _Mapping, _Sequence
from mamori.core.controls import FIVE_CONTROLS

CHECKS_DIR = Path(__file__).resolve().parent / "checks"
LANGUAGES = ("ja", "en")
# A check names one of the five controls, or none ("informational": reported, never decisive).
CONTROLS = (*FIVE_CONTROLS, "informational")
SEVERITIES = ("critical", "high", "medium", "low", "info")
STATUSES = ("pass", "fail", "unknown", "info")
CHECK_ID = re.compile(r"^[A-Z]{2,5}-[0-9]{2,3}$")
QUESTION_ID = re.compile(r"^A[0-9]{1,2}\.[0-9]{1,2}$")
PATH = re.compile(r"^(@|[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*)$")
FACT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
ITEM_PATH = "@"  # inside each/some: the list item itself
MAX_FILE_BYTES = 1024 * 1024
MAX_NOTE_ITEMS = 10

CHECK_KEYS = {
    "id",
    "control",
    "questions",
    "severity",
    "title",
    "rationale",
    "remediation",
    "applies_when",
    "condition",
    "facts",
    "detail",
}
COMBINATORS = ("all", "any", "none")
COMPARISONS = {
    "lt": lambda value, bound: value < bound,
    "lte": lambda value, bound: value <= bound,
    "gt": lambda value, bound: value > bound,
    "gte": lambda value, bound: value >= bound,
}
VALUE_TESTS = ("equals", "not_equals", "in", "not_in", "contains", "not_contains")
SHAPE_TESTS = ("empty", "not_empty")
ITEM_TESTS = ("each", "some")
DATE_TESTS = ("within_days",)
LEAF_OPERATORS = (*VALUE_TESTS, *COMPARISONS, *SHAPE_TESTS, *ITEM_TESTS, *DATE_TESTS)
LEAF_EXTRAS = {"path", "default", "when_null", "label"}

TRUE, FALSE, UNKNOWN = True, False, None


class CheckProblems(Exception):
    """Raised with every ``file:line: problem`` found in the check files."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Check:
    id: str
    control: str
    questions: tuple[str, ...]
    severity: str
    title: Mapping[str, str]
    rationale: Mapping[str, str]
    remediation: Mapping[str, str]
    condition: Mapping[str, Any] | None
    applies_when: Mapping[str, Any] | None
    facts: Mapping[str, Mapping[str, str]]  # name -> {"path": ..., "item": template or ""}
    detail: Mapping[str, Mapping[str, str]]  # status -> {"ja": ..., "en": ...}
    source: str  # file:line of the check, for error messages and docs

    @property
    def informational(self) -> bool:
        """Informational checks report facts (status ``info``) and never decide a control."""
        return self.severity == "info"

    def settings_used(self) -> set[str]:
        names: set[str] = set()
        for node in (self.condition, self.applies_when):
            if node is not None:
                names |= _settings_in(node)
        return names


# ---------------------------------------------------------------------------------------------
# Loading and validation


def load_checks(
    paths: Iterable[str | Path] | None = None,
    *,
    questions: Iterable[str] | None = None,
    settings: Iterable[str] | None = None,
) -> list[Check]:
    """Parse and validate check files (default: the bundled ``checks/*.yaml``).

    ``questions``: catalogue question ids every check's ``questions`` must be among;
    ``settings``: setting names a ``$name`` may refer to. Either is skipped when None.
    Raises CheckProblems listing every problem as ``file:line: problem``.
    """
    files = sorted(CHECKS_DIR.glob("*.yaml")) if paths is None else [Path(p) for p in paths]
    problems: list[str] = []
    checks: list[Check] = []
    known_questions = set(questions) if questions is not None else None
    known_settings = set(settings) if settings is not None else None
    seen: dict[str, str] = {}
    for path in files:
        source = str(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            problems.append(f"{source}:0: cannot read file: {exc.strerror}")
            continue
        if len(raw) > MAX_FILE_BYTES:
            problems.append(f"{source}:0: file is larger than {MAX_FILE_BYTES} bytes")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(f"{source}:0: not UTF-8 text ({exc.reason})")
            continue
        parser = _CheckParser(source, known_questions, known_settings)
        for check in parser.parse(text):
            if check.id in seen:
                parser.problem(
                    int(check.source.rsplit(":", 1)[1]),
                    f"duplicate check id {check.id!r} (first at {seen[check.id]})",
                )
            else:
                seen[check.id] = check.source
                checks.append(check)
        problems.extend(parser.problems)
    if problems:
        raise CheckProblems(problems)
    return sorted(checks, key=lambda check: (CONTROLS.index(check.control), check.id))


class _CheckParser:
    def __init__(self, source: str, questions: set[str] | None, settings: set[str] | None) -> None:
        self.source = source
        self.questions = questions
        self.settings = settings
        self.problems: list[str] = []

    def problem(self, line: int, message: str) -> None:
        self.problems.append(f"{self.source}:{line}: {message}")

    def parse(self, text: str) -> list[Check]:
        try:
            document = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            self.problem(mark.line + 1 if mark else 0, f"invalid YAML: {exc.problem}")
            return []
        except yaml.YAMLError as exc:
            self.problem(0, f"invalid YAML: {exc}")
            return []
        if not isinstance(document, _Mapping):
            self.problem(1, "a check file is a mapping with a 'checks' list")
            return []
        for key in document:
            if key != "checks":
                self.problem(document.line_of(key), f"unknown key {key!r} (only 'checks')")
        items = document.get("checks")
        if not isinstance(items, _Sequence) or not items:
            self.problem(document.line_of("checks"), "'checks' must be a non-empty list")
            return []
        checks = []
        for item, line in zip(items, items.item_lines, strict=True):
            check = self.check(item, line)
            if check is not None:
                checks.append(check)
        return checks

    def check(self, item: Any, line: int) -> Check | None:
        if not isinstance(item, _Mapping):
            self.problem(line, "a check must be a mapping")
            return None
        before = len(self.problems)
        check_id = item.get("id")
        if not isinstance(check_id, str) or not CHECK_ID.match(check_id):
            self.problem(item.line_of("id"), f"check id {check_id!r} must look like FW-01")
            check_id = f"?{line}"
        what = f"check {check_id}"
        for key in item:
            if key not in CHECK_KEYS:
                self.problem(item.line_of(key), f"{what}: unknown key {key!r}")
        for key in ("id", "control", "questions", "severity", "title", "remediation", "detail"):
            if key not in item:
                self.problem(item.line, f"{what} lacks required key {key!r}")
        control = item.get("control")
        if "control" in item and control not in CONTROLS:
            self.problem(
                item.line_of("control"),
                f"{what}: unknown control {control!r} (one of: {', '.join(CONTROLS)})",
            )
        severity = item.get("severity")
        if "severity" in item and severity not in SEVERITIES:
            self.problem(
                item.line_of("severity"),
                f"{what}: severity must be one of {', '.join(SEVERITIES)}",
            )
        if control == "informational" and severity != "info":
            self.problem(
                item.line_of("severity"), f"{what}: informational checks have severity info"
            )
        questions = self.question_ids(item, what)
        title = self.texts(item, "title", what)
        rationale = self.texts(item, "rationale", what, required=False)
        remediation = self.texts(item, "remediation", what)
        facts = self.facts(item, what)
        informational = severity == "info"
        condition = None
        if "condition" in item:
            if informational:
                self.problem(
                    item.line_of("condition"),
                    f"{what}: an informational check reports facts and has no condition",
                )
            else:
                condition = self.node(item["condition"], item.line_of("condition"), what)
        elif not informational and "severity" in item:
            self.problem(item.line, f"{what}: a check with severity {severity} needs a condition")
        applies_when = None
        if "applies_when" in item:
            applies_when = self.node(item["applies_when"], item.line_of("applies_when"), what)
        detail = self.details(item, what, facts, informational)
        if len(self.problems) > before:
            return None
        return Check(
            id=check_id,
            control=control,
            questions=questions,
            severity=severity,
            title=title,
            rationale=rationale,
            remediation=remediation,
            condition=condition,
            applies_when=applies_when,
            facts=facts,
            detail=detail,
            source=f"{self.source}:{item.line}",
        )

    def question_ids(self, item: _Mapping, what: str) -> tuple[str, ...]:
        raw = item.get("questions")
        line = item.line_of("questions")
        if "questions" not in item:
            return ()
        if not isinstance(raw, list) or not raw:
            self.problem(line, f"{what}: 'questions' must be a non-empty list of catalogue ids")
            return ()
        ids = []
        for qid in raw:
            if not isinstance(qid, str) or not QUESTION_ID.match(qid):
                self.problem(line, f"{what}: question id {qid!r} must look like A4.1")
            elif self.questions is not None and qid not in self.questions:
                self.problem(line, f"{what}: question {qid} does not exist in the catalogue")
            elif qid in ids:
                self.problem(line, f"{what}: question {qid} is listed twice")
            else:
                ids.append(qid)
        return tuple(ids)

    def texts(self, item: _Mapping, key: str, what: str, *, required: bool = True) -> dict:
        value = item.get(key)
        if value is None:
            if required and key in item:
                self.problem(item.line_of(key), f"{what}: {key!r} needs ja and en texts")
            return {}
        return self.text_pair(value, item.line_of(key), f"{what} {key!r}")

    def text_pair(
        self, value: Any, line: int, what: str, names: set[str] | None = None
    ) -> dict[str, str]:
        if not isinstance(value, _Mapping):
            self.problem(line, f"{what} must be a mapping with ja and en")
            return {}
        result = {}
        for language in LANGUAGES:
            text = value.get(language)
            if not isinstance(text, str) or not text.strip():
                self.problem(value.line_of(language), f"{what} needs a non-empty {language!r} text")
                continue
            if names is not None:
                for name in _placeholders(text):
                    if name not in names:
                        self.problem(
                            value.line_of(language),
                            f"{what} ({language}) refers to {{{name}}}, which is not a fact",
                        )
            result[language] = text.strip()
        for extra in set(value) - set(LANGUAGES):
            self.problem(value.line_of(extra), f"unknown language {extra!r} in {what}")
        return result

    def facts(self, item: _Mapping, what: str) -> dict[str, dict[str, str]]:
        raw = item.get("facts")
        if raw is None:
            return {}
        if not isinstance(raw, _Mapping):
            self.problem(item.line_of("facts"), f"{what}: 'facts' must map names to paths")
            return {}
        facts = {}
        for name, spec in raw.items():
            line = raw.line_of(name)
            if not FACT_NAME.match(name):
                self.problem(line, f"{what}: fact name {name!r} must be snake_case")
                continue
            if isinstance(spec, str):
                spec = {"path": spec}
            elif isinstance(spec, _Mapping):
                for key in spec:
                    if key not in ("path", "item"):
                        self.problem(spec.line_of(key), f"{what}: fact {name}: unknown key {key!r}")
            else:
                self.problem(line, f"{what}: fact {name} must be a path or {{path, item}}")
                continue
            path = spec.get("path")
            if not isinstance(path, str) or not PATH.match(path) or path == ITEM_PATH:
                self.problem(line, f"{what}: fact {name} has an invalid path {path!r}")
                continue
            template = spec.get("item", "")
            if not isinstance(template, str) or not _valid_template(template):
                self.problem(line, f"{what}: fact {name}: 'item' must be a format like '{{port}}'")
                continue
            facts[name] = {"path": path, "item": template}
        return facts

    def details(
        self, item: _Mapping, what: str, facts: dict, informational: bool
    ) -> dict[str, dict[str, str]]:
        raw = item.get("detail")
        if raw is None:
            return {}
        line = item.line_of("detail")
        if not isinstance(raw, _Mapping):
            self.problem(line, f"{what}: 'detail' maps statuses to ja/en texts")
            return {}
        allowed = ("info",) if informational else ("pass", "fail", "unknown")
        required = ("info",) if informational else ("pass", "fail")
        for status in raw:
            if status not in allowed:
                self.problem(
                    raw.line_of(status),
                    f"{what}: detail status {status!r} is not one of {', '.join(allowed)}",
                )
        for status in required:
            if status not in raw:
                self.problem(line, f"{what}: 'detail' lacks a {status!r} text")
        return {
            status: self.text_pair(
                raw[status], raw.line_of(status), f"{what} detail {status}", set(facts)
            )
            for status in allowed
            if status in raw
        }

    def node(self, node: Any, line: int, what: str, *, in_item: bool = False) -> dict | None:
        """Validate one condition node; return it as plain data (None when invalid)."""
        if not isinstance(node, _Mapping):
            self.problem(line, f"{what}: a condition is a mapping (all/any/none or a test)")
            return None
        line = node.line
        combinators = [key for key in node if key in COMBINATORS]
        if combinators:
            if len(node) != 1:
                self.problem(line, f"{what}: {combinators[0]!r} cannot be mixed with other keys")
                return None
            operator = combinators[0]
            parts = node[operator]
            if not isinstance(parts, _Sequence) or not parts:
                self.problem(line, f"{what}: {operator!r} takes a non-empty list of conditions")
                return None
            checked = [
                self.node(part, part_line, what, in_item=in_item)
                for part, part_line in zip(parts, parts.item_lines, strict=True)
            ]
            if any(part is None for part in checked):
                return None
            return {operator: checked}
        before = len(self.problems)
        unknown = [key for key in node if key not in LEAF_OPERATORS and key not in LEAF_EXTRAS]
        for key in unknown:
            self.problem(node.line_of(key), f"{what}: unknown condition key {key!r}")
        path = node.get("path")
        if not isinstance(path, str) or not PATH.match(path):
            self.problem(line, f"{what}: a test needs a 'path' like ssh.settings.port")
            return None
        if path == ITEM_PATH and not in_item:
            self.problem(line, f"{what}: path '@' only names an item inside each/some")
            return None
        operators = [key for key in node if key in LEAF_OPERATORS]
        if len(operators) != 1:
            self.problem(
                line,
                f"{what}: a test has exactly one operator (one of: {', '.join(LEAF_OPERATORS)})",
            )
            return None
        (operator,) = operators
        operand = node[operator]
        result: dict[str, Any] = {"path": path, operator: operand}
        for extra in ("default", "when_null"):
            if extra in node:
                if isinstance(node[extra], (dict, list)):
                    self.problem(node.line_of(extra), f"{what}: {extra!r} must be a plain value")
                result[extra] = node[extra]
        if "label" in node:
            if operator not in ITEM_TESTS:
                self.problem(node.line_of("label"), f"{what}: 'label' only goes with each/some")
            elif not isinstance(node["label"], str) or not _valid_template(node["label"]):
                self.problem(node.line_of("label"), f"{what}: 'label' must be a format string")
            else:
                result["label"] = node["label"]
        oline = node.line_of(operator)
        if operator in ITEM_TESTS:
            inner = self.node(operand, oline, what, in_item=True)
            if inner is None:
                return None
            result[operator] = inner
        elif operator in ("in", "not_in"):
            if (
                not isinstance(operand, list)
                or not operand
                or any(isinstance(value, (dict, list)) for value in operand)
            ):
                self.problem(oline, f"{what}: {operator!r} takes a non-empty list of plain values")
        elif operator in SHAPE_TESTS:
            if operand is not True:
                self.problem(oline, f"{what}: write '{operator}: true'")
        elif operator in COMPARISONS or operator in DATE_TESTS:
            self.number(operand, oline, what, operator)
        elif isinstance(operand, (dict, list)):
            self.problem(oline, f"{what}: {operator!r} compares with a plain value")
        return None if len(self.problems) > before else result

    def number(self, operand: Any, line: int, what: str, operator: str) -> None:
        if isinstance(operand, str) and operand.startswith("$"):
            name = operand[1:]
            if self.settings is not None and name not in self.settings:
                self.problem(line, f"{what}: {operator!r} refers to unknown setting {operand!r}")
            return
        if isinstance(operand, bool) or not isinstance(operand, (int, float)):
            self.problem(line, f"{what}: {operator!r} takes a number or a $setting")


def _placeholders(text: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError:
        return ["<unbalanced braces>"]


def _valid_template(template: str) -> bool:
    """A ``{name}`` format string whose names are plain identifiers (no attribute access)."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError:
        return False
    return all(FACT_NAME.match(name) for name in names)


def _settings_in(node: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for key, value in node.items():
        if key in COMBINATORS:
            for part in value:
                names |= _settings_in(part)
        elif key in ITEM_TESTS:
            names |= _settings_in(value)
        elif (
            isinstance(value, str) and value.startswith("$") and key in (*COMPARISONS, *DATE_TESTS)
        ):
            names.add(value[1:])
    return names


# ---------------------------------------------------------------------------------------------
# Evaluation


@dataclass(frozen=True)
class Note:
    """One test's contribution to an outcome, kept to explain a failing or unknown check.

    ``state`` is the test's own value (``"true"``, ``"false"``, ``"unknown"``); ``expected`` is
    False when the test sits under an odd number of ``none`` (it was meant NOT to hold). For
    unknowns ``reason`` is ``section_unknown``, ``null``, ``missing``, ``type`` or ``setting``
    and ``info`` the agent's error text, the offending type or the setting. For each/some,
    ``items`` are labels of the list items concerned (at most MAX_NOTE_ITEMS, ``more_items``
    counts the rest) and ``count`` the length of the list.
    """

    path: str
    operator: str
    operand: Any
    state: str
    value: Any = None
    expected: bool = True
    reason: str = ""
    info: str = ""
    items: tuple[str, ...] = ()
    more_items: int = 0
    count: int = 0


@dataclass
class Outcome:
    """A three-valued result and the notes that explain it."""

    value: bool | None
    notes: list[Note] = field(default_factory=list)


@dataclass(frozen=True)
class Context:
    """What conditions are evaluated against: the evidence with its ``derived`` facts, the
    settings (defaults applied), the evaluation date, and why derived values are null."""

    document: Mapping[str, Any]
    settings: Mapping[str, Any]
    as_of: dt.date
    explanations: Mapping[str, str] = field(default_factory=dict)


def evaluate_condition(node: Mapping[str, Any], context: Context) -> Outcome:
    return _evaluate(node, context.document, context, top=True)


def _evaluate(node: Mapping[str, Any], root: Any, context: Context, *, top: bool) -> Outcome:
    for operator in COMBINATORS:
        if operator in node:
            parts = [_evaluate(part, root, context, top=top) for part in node[operator]]
            return _combine(operator, parts)
    return _leaf(node, root, context, top=top)


def _combine(operator: str, parts: list[Outcome]) -> Outcome:
    values = [part.value for part in parts]

    def notes(*wanted: bool | None) -> list[Note]:
        return [note for part in parts if part.value in wanted for note in part.notes]

    if operator == "all":
        if FALSE in values:
            return Outcome(FALSE, notes(FALSE))
        if UNKNOWN in values:
            return Outcome(UNKNOWN, notes(UNKNOWN))
        return Outcome(TRUE, notes(TRUE))
    if operator == "any":
        if TRUE in values:
            return Outcome(TRUE, notes(TRUE))
        if UNKNOWN in values:
            return Outcome(UNKNOWN, notes(UNKNOWN))
        return Outcome(FALSE, notes(FALSE))
    # none: the negation of any
    if TRUE in values:
        return Outcome(FALSE, [_negated(note) for note in notes(TRUE)])
    if UNKNOWN in values:
        return Outcome(UNKNOWN, [_negated(note) for note in notes(UNKNOWN)])
    return Outcome(TRUE, [_negated(note) for note in notes(FALSE)])


def _negated(note: Note) -> Note:
    return replace(note, expected=not note.expected)


def _leaf(node: Mapping[str, Any], root: Any, context: Context, *, top: bool) -> Outcome:
    path = node["path"]
    operator = next(key for key in node if key in LEAF_OPERATORS)
    operand = node[operator]
    value, reason, info = _resolve(root, path, context, top=top)
    if reason == "missing" and "default" in node:
        value, reason = node["default"], ""
    elif reason == "null" and "when_null" in node:
        value, reason = node["when_null"], ""
    if reason:
        return Outcome(
            UNKNOWN, [Note(path, operator, operand, "unknown", reason=reason, info=info)]
        )

    def result(holds: bool) -> Outcome:
        state = "true" if holds else "false"
        return Outcome(holds, [Note(path, operator, operand, state, value=_shown(value))])

    def mismatch(what: str) -> Outcome:
        note = Note(path, operator, operand, "unknown", _shown(value), reason="type", info=what)
        return Outcome(UNKNOWN, [note])

    if operator in ITEM_TESTS:
        if not isinstance(value, list):
            return mismatch(type(value).__name__)
        return _items(node, operator, value, context)
    if operator in ("equals", "not_equals"):
        if isinstance(value, (dict, list)):
            return mismatch(type(value).__name__)
        same = _same(value, operand)
        return result(same if operator == "equals" else not same)
    if operator in ("in", "not_in"):
        if isinstance(value, (dict, list)):
            return mismatch(type(value).__name__)
        found = any(_same(value, candidate) for candidate in operand)
        return result(found if operator == "in" else not found)
    if operator in ("contains", "not_contains"):
        if isinstance(value, list):
            found = any(
                not isinstance(item, (dict, list)) and _same(item, operand) for item in value
            )
        elif isinstance(value, str) and isinstance(operand, str):
            found = operand.casefold() in value.casefold()
        else:
            return mismatch(type(value).__name__)
        return result(found if operator == "contains" else not found)
    if operator in SHAPE_TESTS:
        if not isinstance(value, (list, dict, str)):
            return mismatch(type(value).__name__)
        return result((len(value) == 0) == (operator == "empty"))
    bound = _setting(operand, context)
    if bound is None:
        note = Note(path, operator, operand, "unknown", reason="setting", info=str(operand))
        return Outcome(UNKNOWN, [note])
    if operator in COMPARISONS:
        number = _number(value)
        if number is None:
            return mismatch(type(value).__name__)
        return result(COMPARISONS[operator](number, bound))
    # within_days: the date at ``path`` is at most ``bound`` days before as_of
    moment = _date(value)
    if moment is None:
        return mismatch("date")
    return result((context.as_of - moment).days <= bound)


def _items(node: Mapping[str, Any], operator: str, items: list, context: Context) -> Outcome:
    """``each``: every item satisfies the inner condition (True for an empty list);
    ``some``: at least one does. Items are evaluated with paths relative to the item."""
    inner = node[operator]
    outcomes = [_evaluate(inner, item, context, top=False) for item in items]
    values = [outcome.value for outcome in outcomes]
    if operator == "each":
        value = FALSE if FALSE in values else UNKNOWN if UNKNOWN in values else TRUE
    else:
        value = TRUE if TRUE in values else UNKNOWN if UNKNOWN in values else FALSE
    # The items that explain the value: the unknown ones, the failing ones of a failing each,
    # the matching ones of a passing some. A passing each or failing some lists none.
    if value is UNKNOWN:
        explains = UNKNOWN
    elif (operator == "each") == (value is FALSE):
        explains = value
    else:
        explains = "nothing"
    picked = [index for index, outcome in enumerate(outcomes) if outcome.value is explains]
    template = node.get("label", "")
    head = Note(
        node["path"],
        operator,
        None,
        "true" if value is TRUE else "false" if value is FALSE else "unknown",
        value=f"[{len(items)} items]",
        reason="items_unknown" if value is UNKNOWN else "",
        items=tuple(label_item(items[index], template) for index in picked[:MAX_NOTE_ITEMS]),
        more_items=max(0, len(picked) - MAX_NOTE_ITEMS),
        count=len(items),
    )
    detail = outcomes[picked[0]].notes if picked else []
    prefix = node["path"] + "[]."
    inner_notes = [
        replace(note, path=note.path if note.path == ITEM_PATH else prefix + note.path)
        for note in detail
    ]
    return Outcome(value, [head, *inner_notes])


def label_item(item: Any, template: str) -> str:
    """A short text for a list item: ``template`` filled from its fields, else key=value pairs."""
    if isinstance(item, Mapping):
        if template:
            return clean(template.format_map(_ItemFields(item)))
        shown = ", ".join(f"{key}={_shown(value)}" for key, value in list(item.items())[:6])
        return clean(shown)
    return clean(str(_shown(item)))


class _ItemFields(dict):
    """Format a label from an item's fields; absent or null fields show as "?"."""

    def __missing__(self, key: str) -> str:
        return "?"

    def __getitem__(self, key: str) -> str:
        value = super().get(key)
        if value is None:
            return "?"
        if isinstance(value, list):
            return " ".join(str(_shown(part)) for part in value[:20])
        return str(_shown(value))

    def __contains__(self, key: object) -> bool:  # format_map only calls __getitem__
        return True


def _resolve(root: Any, path: str, context: Context, *, top: bool) -> tuple[Any, str, str]:
    """Follow ``path`` from ``root``: (value, "", "") or (None, reason, info) when unknown."""
    if path == ITEM_PATH:
        return (root, "", "") if root is not None else (None, "null", "")
    parts = path.split(".")
    if top and isinstance(root, Mapping):
        section = root.get(parts[0])
        if (
            isinstance(section, Mapping)
            and section.get("status") == "unknown"
            and parts[1:] not in (["status"], ["errors"])
        ):
            return None, "section_unknown", _section_errors(section)

    def explanation(depth: int) -> str:
        """Why the value is null: the explanation of the path or of its nearest parent."""
        if not top:
            return ""
        for end in range(depth, 0, -1):
            found = context.explanations.get(".".join(parts[:end]))
            if found:
                return found
        return ""

    current = root
    for depth, part in enumerate(parts):
        if current is None:
            return None, "null", explanation(depth)
        if not isinstance(current, Mapping):
            return None, "type", type(current).__name__
        if part not in current:
            return None, "missing", explanation(depth + 1)
        current = current[part]
    if current is None:
        return None, "null", explanation(len(parts))
    return current, "", ""


def _section_errors(section: Mapping[str, Any]) -> str:
    errors = section.get("errors")
    if not isinstance(errors, list):
        return ""
    described = []
    for error in errors[:3]:
        if isinstance(error, Mapping):
            where, reason = error.get("path"), error.get("reason")
            described.append(f"{where}: {reason}" if where else str(reason))
    more = f" (+{len(errors) - 3})" if len(errors) > 3 else ""
    return clean("; ".join(described) + more)


def _same(value: Any, operand: Any) -> bool:
    """Equality as an administrator reads configuration: case-insensitive text, "6" == 6,
    but booleans only equal booleans."""
    if isinstance(value, bool) or isinstance(operand, bool):
        return isinstance(value, bool) and isinstance(operand, bool) and value == operand
    if isinstance(value, str) and isinstance(operand, str):
        return value.strip().casefold() == operand.casefold()
    left, right = _number(value), _number(operand)
    if left is not None and right is not None:
        return left == right
    return value == operand


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str) and len(value) < 40:
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _setting(operand: Any, context: Context) -> float | None:
    if isinstance(operand, str) and operand.startswith("$"):
        return _number(context.settings.get(operand[1:]))
    return _number(operand)


def _date(value: Any) -> dt.date | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.date()


# Control characters, and the bidirectional overrides that can make text read backwards.
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
MAX_VALUE_CHARS = 200


def clean(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """Text from evidence, made safe to show: control and bidi characters escaped, length
    capped (a hostile account name must not rewrite an operator's terminal or flood a page)."""
    text = _UNSAFE_CHARACTERS.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Count:
    """A list or object in a note, summarised by its size (the renderer words it)."""

    size: int
    kind: str  # "items" or "keys"

    def __str__(self) -> str:
        return f"[{self.size} {self.kind}]"


def _shown(value: Any) -> Any:
    """A value as a note shows it: scalars as they are (text cleaned), containers summarised."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, list):
        return Count(len(value), "items")
    if isinstance(value, Mapping):
        return Count(len(value), "keys")
    return value


def resolve(document: Mapping[str, Any], path: str, context: Context) -> tuple[Any, str]:
    """The value at ``path`` (section status honoured) and why it is unknown ("" if known:
    ``missing``, ``null``, ``section_unknown`` or ``type``)."""
    value, reason, _info = _resolve(document, path, context, top=True)
    return value, reason


# ---------------------------------------------------------------------------------------------
# Documentation: docs/checks.md is generated from the check files.

_DESCRIBE = {
    "equals": "= {x}",
    "not_equals": "≠ {x}",
    "in": "∈ {{{x}}}",
    "not_in": "∉ {{{x}}}",
    "contains": "contains {x}",
    "not_contains": "does not contain {x}",
    "empty": "is empty",
    "not_empty": "is not empty",
    "lt": "< {x}",
    "lte": "≤ {x}",
    "gt": "> {x}",
    "gte": "≥ {x}",
    "within_days": "is at most {x} days before the evaluation date",
}


def describe(node: Mapping[str, Any]) -> str:
    """A condition in one line of English, for docs/checks.md."""
    for operator in COMBINATORS:
        if operator in node:
            parts = "; ".join(describe(part) for part in node[operator])
            return f"{operator} of ({parts})"
    operator = next(key for key in node if key in LEAF_OPERATORS)
    operand = node[operator]
    path = f"`{node['path']}`"
    default = f" (absent: {node['default']})" if "default" in node else ""
    if "when_null" in node:
        default += f" (null: {node['when_null']!r})"
    if operator in ITEM_TESTS:
        quantifier = "every item of" if operator == "each" else "some item of"
        return f"{quantifier} {path}: {describe(operand)}"
    if isinstance(operand, list):
        shown = ", ".join(str(item) for item in operand)
    else:
        shown = str(operand).lower() if isinstance(operand, bool) else str(operand)
    return f"{path}{default} {_DESCRIBE[operator].format(x=shown)}"


def paths_of(node: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The evidence paths a condition reads (item paths under their list)."""
    found: list[str] = []
    for operator in COMBINATORS:
        if operator in node:
            for part in node[operator]:
                found += [p for p in paths_of(part, prefix) if p not in found]
            return found
    path = node["path"] if not prefix else f"{prefix}[].{node['path']}"
    path = prefix if node["path"] == ITEM_PATH else path
    found.append(path)
    for operator in ITEM_TESTS:
        if operator in node:
            found += [p for p in paths_of(node[operator], path) if p not in found]
    return found


def checks_markdown(checks: Iterable[Check]) -> str:
    """docs/checks.md: a table of every check, then each check's rule in full."""
    checks = list(checks)
    lines = [
        "# Host checks",
        "",
        "<!-- Generated from src/mamori/verification/checks/*.yaml by",
        "     `python -m mamori.verification.rules --markdown > docs/checks.md`; do not edit. -->",
        "",
        "Every check evaluates the evidence of one host (see [evidence.md](evidence.md)) and",
        "the `derived` facts of [evaluation.md](evaluation.md#derived-facts). A check **passes**",
        "when its condition is true, **fails** when it is false, and is **unknown** when the",
        "condition cannot be decided because a value it needs is null, missing or in a section",
        "the agent could not collect (three-valued logic: unknown is never a pass).",
        "Informational checks (severity `info`) only report facts and never decide a control.",
        "`$name` is a catalogue setting (defaults in evaluation.md).",
        "",
        "| id | control | questions | severity | check | passes when | fails | unknown when |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for check in checks:
        if check.informational:
            passes, fails = "— (reports facts)", "never"
            unknown = "—"
        else:
            passes = describe(check.condition)
            fails = re.sub(r"\s*\([^()]*\{[a-z_]+\}[^()]*\)", "", check.detail["fail"]["en"])
            fails = re.sub(r"\{[a-z_]+\}", "…", fails)
            unknown = "a value of " + ", ".join(f"`{p}`" for p in paths_of(check.condition))
            unknown += " is unknown and the rest does not decide"
        cells = [
            f"[{check.id}](#{check.id.lower()})",
            check.control,
            ", ".join(check.questions),
            check.severity,
            check.title["en"],
            passes,
            fails,
            unknown,
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    lines.append("")
    for check in checks:
        lines += [f"## {check.id}", "", f"**{check.title['en']}** / {check.title['ja']}", ""]
        lines.append(
            f"Control `{check.control}`, questions {', '.join(check.questions)}, "
            f"severity `{check.severity}`. Source: `{_relative(check.source)}`."
        )
        lines.append("")
        if check.rationale:
            lines += [check.rationale["en"], "", check.rationale["ja"], ""]
        if check.applies_when is not None:
            lines += [f"- Applies when: {describe(check.applies_when)}."]
        if check.condition is not None:
            lines += [f"- Passes when: {describe(check.condition)}."]
        if check.facts:
            facts = ", ".join(f"`{name}` = `{spec['path']}`" for name, spec in check.facts.items())
            lines += [f"- Reports: {facts}."]
        lines += [f"- Remediation: {check.remediation['en']}", ""]
    return "\n".join(lines)


def _relative(source: str) -> str:
    marker = "src/mamori/"
    return source[source.index(marker) :] if marker in source else source


def main(argv: list[str] | None = None) -> int:
    """``python -m mamori.verification.rules [--markdown] [FILE...]``: check the files (default:
    the bundled ones) and print ``file:line: problem``, or the markdown documentation."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    markdown = "--markdown" in args
    files = [arg for arg in args if arg != "--markdown"] or None
    try:
        checks = load_checks(files)
    except CheckProblems as exc:
        sys.stderr.write("\n".join(exc.problems) + "\n")
        return 1
    if markdown:
        sys.stdout.write(checks_markdown(checks))
    else:
        sys.stdout.write(f"ok: {len(checks)} checks\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
