"""Read and validate requirement catalogues written in YAML.

Every problem is reported as ``file:line: problem`` so an author can jump to it; all problems in a
file are collected, not just the first. Pure logic, no Django imports: ``mamori catalogue check``
and the database sync both call :func:`load_catalogue`. Run ``python -m mamori.catalogue.loader FILE`` to
check files without a configured Django project.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import string
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mamori.catalogue import rules, spec

LANGUAGES = ("ja", "en")
SECTION_ID = re.compile(r"^A([1-9][0-9]?)$")
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_FILE_BYTES = 2 * 1024 * 1024

CATALOGUE_KEYS = {
    "catalogue",
    "title",
    "valid_from",
    "description",
    "settings",
    "scope",
    "sections",
}
SECTION_KEYS = {"id", "control", "title", "intro", "questions"}
QUESTION_KEYS = {
    "id",
    "kind",
    "scoring",
    "required",
    "text",
    "guidance",
    "remediation",
    "compliant",
    "auto_fail",
    "applies_if",
    "not_applicable",
    "options",
    "min",
    "max",
    "unit",
    "max_length",
    "columns",
}
KIND_KEYS = {
    "yes_no": {"not_applicable"},
    "choice": {"options"},
    "multi_choice": {"options"},
    "number": {"min", "max", "unit"},
    "text": {"max_length"},
    "inventory": {"columns"},
}
COLUMN_KEYS = {"id", "kind", "label", "required", "options", "min", "max"}
# Whole-day settings a catalogue version may set; older versions do without them.
OPTIONAL_DAY_SETTINGS = ("appeal_working_days", "kev_patch_days")


class CatalogueProblems(Exception):
    """Raised with every ``file:line: problem`` found in a catalogue file."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class ParsedQuestion:
    qid: str
    kind: str
    scoring: str
    required: bool
    text: dict
    guidance: dict
    remediation: dict
    spec: dict
    position: int


@dataclass
class ParsedSection:
    code: str
    control: str
    title: dict
    intro: dict
    position: int
    questions: list[ParsedQuestion] = field(default_factory=list)


@dataclass
class ParsedCatalogue:
    version: str
    title: dict
    description: dict
    valid_from: dt.date
    settings: dict
    scope: dict
    sections: list[ParsedSection]
    digest: str
    source: str

    @property
    def questions(self) -> list[ParsedQuestion]:
        return [question for section in self.sections for question in section.questions]


class _Mapping(dict):
    line = 0
    key_lines: dict

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class _Sequence(list):
    line = 0
    item_lines: list


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping key and sequence item."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Mapping:
    loader.flatten_mapping(node)
    mapping = _Mapping()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} must be a string", key_node.start_mark
            )
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = line
    return mapping


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> _Sequence:
    sequence = _Sequence(loader.construct_object(child, deep=True) for child in node.value)
    sequence.line = node.start_mark.line + 1
    sequence.item_lines = [child.start_mark.line + 1 for child in node.value]
    return sequence


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


class ShapeChecker:
    """Checks of a composed YAML document's shape, each problem as ``file:line: problem``:
    shared by the catalogue and the other YAML files read the same way (the governance
    mapping, ``reporting.mapping``)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def problem(self, line: int, message: str) -> None:
        self.problems.append(f"{self.source}:{line}: {message}")

    def mapping(self, value: Any, line: int, what: str) -> _Mapping | None:
        if not isinstance(value, _Mapping):
            self.problem(line, f"{what} must be a mapping")
            return None
        return value

    def keys(self, mapping: _Mapping, allowed: set[str], required: set[str], what: str) -> None:
        for key in mapping:
            if key not in allowed:
                self.problem(mapping.line_of(key), f"unknown key {key!r} in {what}")
        for key in sorted(required - set(mapping)):
            self.problem(mapping.line, f"{what} lacks required key {key!r}")


class _Checker(ShapeChecker):
    def text(
        self, mapping: _Mapping, key: str, what: str, settings: dict, required: bool = True
    ) -> dict:
        value = mapping.get(key)
        line = mapping.line_of(key)
        if value is None:
            if required:
                self.problem(mapping.line, f"{what} lacks {key!r} (a mapping with ja and en)")
            return {}
        if not isinstance(value, _Mapping):
            self.problem(line, f"{what} {key!r} must be a mapping with ja and en")
            return {}
        result = {}
        for language in LANGUAGES:
            text = value.get(language)
            if not isinstance(text, str) or not text.strip():
                self.problem(
                    value.line_of(language) if language in value else value.line,
                    f"{what} {key!r} needs a non-empty {language!r} text",
                )
                continue
            for placeholder in _placeholders(text):
                if placeholder not in settings:
                    self.problem(
                        value.line_of(language),
                        f"{what} {key!r} ({language}) refers to unknown setting {{{placeholder}}}",
                    )
            result[language] = text.strip()
        for extra in set(value) - set(LANGUAGES):
            self.problem(value.line_of(extra), f"unknown language {extra!r} in {what} {key!r}")
        return result

    def rule(
        self,
        value: Any,
        line: int,
        what: str,
        settings: dict,
        allowed_values: tuple[str, ...] | None,
    ) -> dict | None:
        try:
            rules.check_rule(value, settings)
        except rules.RuleError as exc:
            self.problem(line, f"{what}: {exc}")
            return None
        if allowed_values is not None:
            for literal in rules.rule_values(value):
                if literal not in allowed_values:
                    self.problem(
                        line,
                        f"{what} compares with {literal!r}, which is not an "
                        f"allowed answer ({', '.join(allowed_values)})",
                    )
        return _plain(value)


def _placeholders(text: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(text) if name]
    except ValueError:
        return ["<unbalanced braces>"]


def _plain(value: Any) -> Any:
    """Strip the line-tracking types so the result is plain JSON-ready data."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def load_catalogue(path: str | Path) -> ParsedCatalogue:
    """Parse and validate one catalogue file; raise CatalogueProblems listing every problem."""
    path = Path(path)
    source = str(path)
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise CatalogueProblems([f"{source}:0: cannot read file: {exc.strerror}"]) from None
    if len(raw_bytes) > MAX_FILE_BYTES:
        raise CatalogueProblems([f"{source}:0: file is larger than {MAX_FILE_BYTES} bytes"])
    try:
        text = raw_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CatalogueProblems([f"{source}:0: not UTF-8 text ({exc.reason})"]) from None
    return parse_catalogue(text, source, hashlib.sha256(raw_bytes).hexdigest())


def parse_catalogue(text: str, source: str, digest: str | None = None) -> ParsedCatalogue:
    digest = digest or hashlib.sha256(text.encode("utf-8")).hexdigest()
    try:
        document = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise CatalogueProblems([f"{source}:{line}: invalid YAML: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise CatalogueProblems([f"{source}:0: invalid YAML: {exc}"]) from None
    check = _Checker(source)
    top = check.mapping(document, 1, "the catalogue")
    if top is None:
        raise CatalogueProblems(check.problems)
    check.keys(
        top,
        CATALOGUE_KEYS,
        {"catalogue", "title", "valid_from", "settings", "sections"},
        "the catalogue",
    )

    version = top.get("catalogue")
    if not isinstance(version, str) or not version.strip() or len(version) > 40:
        check.problem(
            top.line_of("catalogue"), "'catalogue' must be a version name of 1-40 characters"
        )
        version = ""
    valid_from = top.get("valid_from")
    if not isinstance(valid_from, dt.date) or isinstance(valid_from, dt.datetime):
        check.problem(top.line_of("valid_from"), "'valid_from' must be a date (YYYY-MM-DD)")
        valid_from = dt.date.min

    settings = _settings(check, top)
    title = check.text(top, "title", "the catalogue", settings)
    description = check.text(top, "description", "the catalogue", settings, required=False)
    sections = _sections(check, top, settings)
    scope = _scope(check, top, sections)
    if check.problems:
        raise CatalogueProblems(check.problems)
    return ParsedCatalogue(
        version=version.strip(),
        title=title,
        description=description,
        valid_from=valid_from,
        settings=settings,
        scope=scope,
        sections=sections,
        digest=digest,
        source=source,
    )


def _settings(check: _Checker, top: _Mapping) -> dict:
    raw = top.get("settings")
    if raw is None:
        return {}
    mapping = check.mapping(raw, top.line_of("settings"), "'settings'")
    if mapping is None:
        return {}
    settings = {}
    for name, value in mapping.items():
        if not SNAKE.match(name):
            check.problem(mapping.line_of(name), f"setting name {name!r} must be snake_case")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            check.problem(mapping.line_of(name), f"setting {name!r} must be a number")
        else:
            settings[name] = value
    for name in (
        "completion_months",
        "clarification_working_days",
        "resubmission_working_days",
        "certificate_months",
    ):
        if name not in mapping:
            check.problem(mapping.line, f"'settings' lacks {name!r} (the scheme's timers)")
        elif name in settings and (not isinstance(settings[name], int) or settings[name] < 1):
            check.problem(mapping.line_of(name), f"setting {name!r} must be a whole number >= 1")
    # Optional: a version without them gets the scheme's defaults (see the code that reads them).
    for name in OPTIONAL_DAY_SETTINGS:
        if name in settings and (not isinstance(settings[name], int) or settings[name] < 1):
            check.problem(mapping.line_of(name), f"setting {name!r} must be a whole number >= 1")
    kev, patch = settings.get("kev_patch_days"), settings.get("patch_days")
    if isinstance(kev, int) and isinstance(patch, int | float) and kev > patch:
        check.problem(
            mapping.line_of("kev_patch_days"),
            "setting 'kev_patch_days' must not exceed 'patch_days': "
            "a fix for an exploited vulnerability never gets more time than any other",
        )
    return settings


def _sections(check: _Checker, top: _Mapping, settings: dict) -> list[ParsedSection]:
    raw = top.get("sections")
    if not isinstance(raw, _Sequence) or not raw:
        check.problem(top.line_of("sections"), "'sections' must be a non-empty list")
        return []
    sections: list[ParsedSection] = []
    seen_sections: set[str] = set()
    answers: dict[str, tuple[str, ...] | None] = {}  # qid -> allowed values (None: free)
    for position, (item, line) in enumerate(zip(raw, raw.item_lines, strict=True), start=1):
        mapping = check.mapping(item, line, "a section")
        if mapping is None:
            continue
        check.keys(mapping, SECTION_KEYS, {"id", "control", "title", "questions"}, "a section")
        code = mapping.get("id")
        if not isinstance(code, str) or not SECTION_ID.match(code):
            check.problem(mapping.line_of("id"), f"section id {code!r} must look like A1, A2, ...")
            code = f"?{position}"
        elif code in seen_sections:
            check.problem(mapping.line_of("id"), f"duplicate section id {code!r}")
        seen_sections.add(code)
        control = mapping.get("control")
        if control not in spec.CONTROLS:
            check.problem(
                mapping.line_of("control"),
                f"unknown control {control!r} (one of: {', '.join(spec.CONTROLS)})",
            )
        section = ParsedSection(
            code=code,
            control=str(control),
            title=check.text(mapping, "title", f"section {code}", settings),
            intro=check.text(mapping, "intro", f"section {code}", settings, required=False),
            position=position,
        )
        questions = mapping.get("questions")
        if not isinstance(questions, _Sequence) or not questions:
            check.problem(mapping.line_of("questions"), f"section {code} needs a list of questions")
        else:
            for number, (question, qline) in enumerate(
                zip(questions, questions.item_lines, strict=True), start=1
            ):
                parsed = _question(check, question, qline, code, number, settings, answers)
                if parsed:
                    section.questions.append(parsed)
        sections.append(section)
    position = 0
    for section in sections:
        for question in section.questions:
            position += 1
            question.position = position
    return sections


def _question(
    check: _Checker, item: Any, line: int, section: str, number: int, settings: dict, answers: dict
) -> ParsedQuestion | None:
    mapping = check.mapping(item, line, f"question {number} of {section}")
    if mapping is None:
        return None
    qid = mapping.get("id")
    expected = f"{section}.{number}"
    what = f"question {qid}"
    if qid != expected:
        check.problem(
            mapping.line_of("id"),
            f"question id {qid!r} should be {expected!r} (ids are consecutive)",
        )
        qid = expected if not isinstance(qid, str) else qid
        what = f"question {qid}"
    kind = mapping.get("kind")
    if kind not in spec.KINDS:
        check.problem(
            mapping.line_of("kind"),
            f"{what}: unknown kind {kind!r} (one of: {', '.join(spec.KINDS)})",
        )
        return None
    base = QUESTION_KEYS - set().union(*KIND_KEYS.values())
    check.keys(mapping, base | KIND_KEYS[kind], {"id", "kind", "scoring", "text"}, what)
    scoring = mapping.get("scoring")
    if scoring not in spec.SCORINGS:
        check.problem(
            mapping.line_of("scoring"), f"{what}: scoring must be scored or informational"
        )
    required = mapping.get("required", True)
    if not isinstance(required, bool):
        check.problem(mapping.line_of("required"), f"{what}: 'required' must be true or false")
        required = True

    kind_spec: dict[str, Any] = {}
    allowed: tuple[str, ...] | None = None
    if kind in ("choice", "multi_choice"):
        options = _options(check, mapping, "options", what, settings)
        kind_spec["options"] = options
        allowed = tuple(option["value"] for option in options)
    elif kind == "yes_no":
        not_applicable = mapping.get("not_applicable", False)
        if not isinstance(not_applicable, bool):
            check.problem(
                mapping.line_of("not_applicable"), f"{what}: 'not_applicable' must be true or false"
            )
            not_applicable = False
        kind_spec["not_applicable"] = not_applicable
        allowed = (
            (spec.YES, spec.NO, spec.NOT_APPLICABLE) if not_applicable else (spec.YES, spec.NO)
        )
    elif kind == "number":
        for bound in ("min", "max"):
            if bound in mapping:
                try:
                    rules.resolve_number(mapping[bound], settings)
                    kind_spec[bound] = mapping[bound]
                except rules.RuleError as exc:
                    check.problem(mapping.line_of(bound), f"{what}: '{bound}' {exc}")
        if "unit" in mapping:
            kind_spec["unit"] = check.text(mapping, "unit", what, settings)
    elif kind == "text":
        max_length = mapping.get("max_length", spec.TEXT_MAX_LENGTH)
        if (
            isinstance(max_length, bool)
            or not isinstance(max_length, int)
            or not 1 <= max_length <= 20000
        ):
            check.problem(mapping.line_of("max_length"), f"{what}: 'max_length' must be 1-20000")
        else:
            kind_spec["max_length"] = max_length
    else:
        kind_spec["columns"] = _columns(check, mapping, what, settings)

    for key, rule_what in (("compliant", "'compliant'"),):
        if key in mapping:
            rule = check.rule(
                mapping[key], mapping.line_of(key), f"{what} {rule_what}", settings, allowed
            )
            if rule:
                kind_spec[key] = rule
    if "auto_fail" in mapping:
        auto = check.mapping(
            mapping["auto_fail"], mapping.line_of("auto_fail"), f"{what} 'auto_fail'"
        )
        if auto is not None:
            check.keys(auto, {"when", "reason"}, {"when", "reason"}, f"{what} 'auto_fail'")
            rule = (
                check.rule(
                    auto.get("when"),
                    auto.line_of("when"),
                    f"{what} auto_fail 'when'",
                    settings,
                    allowed,
                )
                if "when" in auto
                else None
            )
            reason = check.text(auto, "reason", f"{what} auto_fail", settings)
            if rule:
                kind_spec["auto_fail"] = {"when": rule, "reason": reason}
        if scoring != "scored":
            check.problem(
                mapping.line_of("auto_fail"), f"{what}: only scored questions can auto-fail"
            )
    if "applies_if" in mapping:
        condition = check.mapping(
            mapping["applies_if"], mapping.line_of("applies_if"), f"{what} 'applies_if'"
        )
        if condition is not None:
            check.keys(
                condition, {"question", "rule"}, {"question", "rule"}, f"{what} 'applies_if'"
            )
            target = condition.get("question")
            if target not in answers:
                check.problem(
                    condition.line_of("question"),
                    f"{what}: applies_if refers to {target!r}, which is not an earlier question",
                )
            elif "rule" in condition:
                rule = check.rule(
                    condition["rule"],
                    condition.line_of("rule"),
                    f"{what} applies_if rule",
                    settings,
                    answers[target],
                )
                if rule:
                    kind_spec["applies_if"] = {"question": target, "rule": rule}
    if scoring == "scored":
        if "compliant" not in mapping:
            check.problem(mapping.line, f"{what}: a scored question needs a 'compliant' rule")
        if "remediation" not in mapping:
            check.problem(mapping.line, f"{what}: a scored question needs 'remediation' advice")
        if kind == "inventory":
            check.problem(
                mapping.line_of("scoring"), f"{what}: an inventory table cannot be scored"
            )

    answers[qid] = allowed
    return ParsedQuestion(
        qid=qid,
        kind=kind,
        scoring=str(scoring),
        required=required,
        text=check.text(mapping, "text", what, settings),
        guidance=check.text(mapping, "guidance", what, settings, required=False),
        remediation=check.text(mapping, "remediation", what, settings, required=False),
        spec=kind_spec,
        position=0,
    )


def _options(check: _Checker, mapping: _Mapping, key: str, what: str, settings: dict) -> list[dict]:
    raw = mapping.get(key)
    if not isinstance(raw, _Sequence) or len(raw) < 2:
        check.problem(mapping.line_of(key), f"{what}: '{key}' needs at least two options")
        return []
    options, seen = [], set()
    for item, line in zip(raw, raw.item_lines, strict=True):
        option = check.mapping(item, line, f"{what} option")
        if option is None:
            continue
        check.keys(option, {"value", "label"}, {"value", "label"}, f"{what} option")
        value = option.get("value")
        if not isinstance(value, str) or not SNAKE.match(value):
            check.problem(
                option.line_of("value"), f"{what}: option value {value!r} must be snake_case text"
            )
            continue
        if value in seen:
            check.problem(option.line_of("value"), f"{what}: duplicate option {value!r}")
        seen.add(value)
        options.append(
            {
                "value": value,
                "label": check.text(option, "label", f"{what} option {value}", settings),
            }
        )
    return options


def _columns(check: _Checker, mapping: _Mapping, what: str, settings: dict) -> list[dict]:
    raw = mapping.get("columns")
    if not isinstance(raw, _Sequence) or len(raw) < 2:
        check.problem(
            mapping.line_of("columns"), f"{what}: an inventory needs at least two columns"
        )
        return []
    columns, seen = [], set()
    for item, line in zip(raw, raw.item_lines, strict=True):
        column = check.mapping(item, line, f"{what} column")
        if column is None:
            continue
        check.keys(column, COLUMN_KEYS, {"id", "kind", "label"}, f"{what} column")
        column_id = column.get("id")
        if not isinstance(column_id, str) or not SNAKE.match(column_id):
            check.problem(
                column.line_of("id"), f"{what}: column id {column_id!r} must be snake_case"
            )
            continue
        if column_id in seen:
            check.problem(column.line_of("id"), f"{what}: duplicate column {column_id!r}")
        seen.add(column_id)
        kind = column.get("kind")
        if kind not in spec.COLUMN_KINDS:
            check.problem(
                column.line_of("kind"), f"{what}: column {column_id} has unknown kind {kind!r}"
            )
            continue
        parsed = {
            "id": column_id,
            "kind": kind,
            "label": check.text(column, "label", f"{what} column {column_id}", settings),
            "required": bool(column.get("required", False)),
        }
        if kind == "choice":
            parsed["options"] = _options(
                check, column, "options", f"{what} column {column_id}", settings
            )
        elif "options" in column:
            check.problem(column.line_of("options"), f"{what}: only choice columns have options")
        for bound in ("min", "max"):
            if bound in column:
                if kind != "number":
                    check.problem(
                        column.line_of(bound), f"{what}: only number columns have '{bound}'"
                    )
                    continue
                try:
                    rules.resolve_number(column[bound], settings)
                    parsed[bound] = column[bound]
                except rules.RuleError as exc:
                    check.problem(
                        column.line_of(bound), f"{what}: column {column_id} '{bound}' {exc}"
                    )
        columns.append(parsed)
    return columns


def _scope(check: _Checker, top: _Mapping, sections: list[ParsedSection]) -> dict:
    raw = top.get("scope")
    if raw is None:
        return {}
    mapping = check.mapping(raw, top.line_of("scope"), "'scope'")
    if mapping is None:
        return {}
    check.keys(
        mapping,
        {"kind_question", "description_question"},
        {"kind_question", "description_question"},
        "'scope'",
    )
    by_id = {question.qid: question for section in sections for question in section.questions}
    kind_q = by_id.get(mapping.get("kind_question"))
    if (
        kind_q is None
        or kind_q.kind != "choice"
        or {option["value"] for option in kind_q.spec.get("options", [])} != {"whole", "subset"}
    ):
        check.problem(
            mapping.line_of("kind_question"),
            "'scope.kind_question' must name a choice question with options whole and subset",
        )
    description_q = by_id.get(mapping.get("description_question"))
    if description_q is None or description_q.kind != "text":
        check.problem(
            mapping.line_of("description_question"),
            "'scope.description_question' must name a text question",
        )
    return _plain(mapping)


def main(argv: list[str] | None = None) -> int:
    paths = argv if argv is not None else sys.argv[1:]
    if not paths:
        sys.stderr.write("usage: python -m mamori.catalogue.loader FILE...\n")
        return 2
    status = 0
    for path in paths:
        try:
            catalogue = load_catalogue(path)
        except CatalogueProblems as exc:
            sys.stderr.write("\n".join(exc.problems) + "\n")
            status = 1
        else:
            sys.stdout.write(
                f"{path}: ok: {catalogue.version}, {len(catalogue.sections)} sections, "
                f"{len(catalogue.questions)} questions\n"
            )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
