"""The rule engine: three-valued (Kleene) logic, leaf tests, and the check-file loader."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mamori.catalogue.loader import load_catalogue
from mamori.catalogue.services import bundled_files
from mamori.verification import rules
from mamori.verification.evaluation import DEFAULT_SETTINGS, bundled_checks
from mamori.verification.rules import CheckProblems, Context, evaluate_condition, load_checks

T, F, U = True, False, None
CATALOGUE = Path(__file__).resolve().parents[2] / "src/mamori/catalogue/data/ce-jp-2026.yaml"


def context(document: dict, settings: dict | None = None) -> Context:
    return Context(document, settings or {"limit": 10}, dt.date(2026, 11, 25))


def value(node: dict, document: dict, settings: dict | None = None) -> bool | None:
    return evaluate_condition(node, context(document, settings)).value


# A document whose paths t, f, u are true, false and unknown under {equals: true}.
TRUTH = {"t": True, "f": False, "u": None}
LEAF = {
    T: {"path": "t", "equals": True},
    F: {"path": "f", "equals": True},
    U: {"path": "u", "equals": True},
}


def kleene_and(values):
    return F if F in values else U if U in values else T


def kleene_or(values):
    return T if T in values else U if U in values else F


def kleene_not(value):
    return None if value is None else not value


@pytest.mark.parametrize(
    "values", [*list(itertools.product((T, F, U), repeat=2)), (T,), (U,), (F, U, T)]
)
def test_combinators_follow_kleene_logic(values):
    leaves = [LEAF[v] for v in values]
    assert value({"all": leaves}, TRUTH) is kleene_and(values)
    assert value({"any": leaves}, TRUTH) is kleene_or(values)
    assert value({"none": leaves}, TRUTH) is kleene_not(kleene_or(values))


def test_unknown_is_never_pass_even_nested():
    # none of (unknown) is unknown, not true; all(true, none(any(unknown, false))) is unknown.
    assert value({"none": [LEAF[U]]}, TRUTH) is U
    nested = {"all": [LEAF[T], {"none": [{"any": [LEAF[U], LEAF[F]]}]}]}
    assert value(nested, TRUTH) is U
    # A false part decides an all and a true part an any, whatever the unknowns.
    assert value({"all": [LEAF[U], LEAF[F]]}, TRUTH) is F
    assert value({"any": [LEAF[U], LEAF[T]]}, TRUTH) is T


@pytest.mark.parametrize(
    ("node", "document", "expected"),
    [
        ({"path": "a", "equals": "no"}, {"a": "No"}, T),  # case-insensitive text
        ({"path": "a", "equals": "no"}, {"a": " no "}, T),
        ({"path": "a", "equals": 6}, {"a": "6"}, T),  # sshd values are text
        ({"path": "a", "equals": True}, {"a": "true"}, F),  # booleans only equal booleans
        ({"path": "a", "equals": 1}, {"a": True}, F),
        ({"path": "a", "not_equals": "hash"}, {"a": "locked"}, T),
        ({"path": "a", "in": ["drop", "reject"]}, {"a": "REJECT"}, T),
        ({"path": "a", "in": ["drop", "reject"]}, {"a": "accept"}, F),
        ({"path": "a", "not_in": [21, 23]}, {"a": 22}, T),
        ({"path": "a", "not_in": [21, 23]}, {"a": 23}, F),
        ({"path": "a", "lte": 10}, {"a": 10}, T),
        ({"path": "a", "lte": 10}, {"a": 11}, F),
        ({"path": "a", "lt": 10}, {"a": 10}, F),
        ({"path": "a", "gte": "$limit"}, {"a": "10"}, T),
        ({"path": "a", "gt": "$limit"}, {"a": 10}, F),
        ({"path": "a", "lte": "$absent"}, {"a": 1}, U),  # an undefined setting decides nothing
        ({"path": "a", "lte": 10}, {"a": "many"}, U),  # not a number
        ({"path": "a", "lte": 10}, {"a": True}, U),
        ({"path": "a", "lte": 10}, {"a": float("nan")}, U),
        ({"path": "a", "empty": True}, {"a": []}, T),
        ({"path": "a", "empty": True}, {"a": ["x"]}, F),
        ({"path": "a", "not_empty": True}, {"a": {"k": 1}}, T),
        ({"path": "a", "not_empty": True}, {"a": ""}, F),
        ({"path": "a", "empty": True}, {"a": 0}, U),
        ({"path": "a", "contains": "ALL"}, {"a": ["/usr/bin/apt", "all"]}, T),
        ({"path": "a", "contains": "ALL"}, {"a": ["/usr/bin/apt"]}, F),
        ({"path": "a", "not_contains": "rpm"}, {"a": ["dpkg", "python"]}, T),
        ({"path": "a", "contains": "esm"}, {"a": "https://esm.ubuntu.com/"}, T),
        ({"path": "a", "equals": "x"}, {"a": ["x"]}, U),  # a list where a value was expected
        ({"path": "a.b", "equals": 1}, {"a": "text"}, U),
        ({"path": "a.b", "equals": 1}, {"a": {"b": 1}}, T),
        ({"path": "a.b", "equals": 1}, {"a": {}}, U),  # missing
        ({"path": "a.b", "equals": 1}, {"a": None}, U),  # null
        ({"path": "a.b", "equals": "no", "default": "no"}, {"a": {}}, T),  # absent: the default
        ({"path": "a.b", "equals": "no", "default": "no"}, {"a": {"b": None}}, U),  # null stays
        ({"path": "a.b", "equals": "no", "default": "no"}, {"a": None}, U),
        ({"path": "a.b", "equals": "no", "when_null": "no"}, {"a": {"b": None}}, T),
        ({"path": "a.b", "equals": "no", "when_null": "no"}, {"a": None}, T),
        ({"path": "a.b", "equals": "no", "when_null": "no"}, {"a": {}}, U),  # missing stays
        ({"path": "a", "within_days": 3}, {"a": "2026-11-22T23:59:59Z"}, T),
        ({"path": "a", "within_days": 3}, {"a": "2026-11-21T23:59:59Z"}, F),
        ({"path": "a", "within_days": 3}, {"a": "2026-11-26T01:00:00+09:00"}, T),  # = 25th UTC
        ({"path": "a", "within_days": 3}, {"a": "2026-11-20"}, F),
        ({"path": "a", "within_days": 3}, {"a": "last tuesday"}, U),
    ],
)
def test_leaf_tests(node, document, expected):
    assert value(node, document) is expected


@pytest.mark.parametrize(
    ("items", "each", "some"),
    [
        ([], T, F),
        ([1, 2], T, T),
        ([1, 5], F, T),
        ([5, 6], F, F),
        ([1, None], U, T),
        ([5, None], F, U),
        ([None], U, U),
    ],
)
def test_each_and_some_over_items(items, each, some):
    inner = {"path": "@", "lt": 3}
    assert value({"path": "list", "each": inner}, {"list": items}) is each
    assert value({"path": "list", "some": inner}, {"list": items}) is some


def test_item_paths_are_relative_and_labels_name_failing_items():
    document = {
        "users": [
            {"name": "root", "uid": 0},
            {"name": "toor", "uid": 0},
            {"name": "alice", "uid": 1000},
        ]
    }
    node = {
        "path": "users",
        "each": {"any": [{"path": "name", "equals": "root"}, {"path": "uid", "not_equals": 0}]},
        "label": "{name} (uid {uid}) {missing}",
    }
    outcome = evaluate_condition(node, context(document))
    assert outcome.value is F
    head = outcome.notes[0]
    assert head.items == ("toor (uid 0) ?",)
    assert head.count == 3


def test_each_notes_are_capped():
    document = {"list": list(range(100, 150))}
    outcome = evaluate_condition(
        {"path": "list", "each": {"path": "@", "lt": 3}}, context(document)
    )
    assert len(outcome.notes[0].items) == rules.MAX_NOTE_ITEMS
    assert outcome.notes[0].more_items == 50 - rules.MAX_NOTE_ITEMS


def test_a_section_with_status_unknown_makes_its_values_unknown_but_not_its_status():
    document = {
        "firewall": {
            "status": "unknown",
            "errors": [{"path": "/usr/sbin/nft", "reason": "permission denied"}],
            "default_inbound": "drop",
        }
    }
    outcome = evaluate_condition(
        {"path": "firewall.default_inbound", "equals": "drop"}, context(document)
    )
    assert outcome.value is U
    assert outcome.notes[0].reason == "section_unknown"
    assert "permission denied" in outcome.notes[0].info
    assert value({"path": "firewall.status", "equals": "unknown"}, document) is T
    assert value({"path": "firewall.errors", "not_empty": True}, document) is T
    # A partial section keeps its values: the agent nulls what it could not read.
    document["firewall"]["status"] = "partial"
    assert value({"path": "firewall.default_inbound", "equals": "drop"}, document) is T


def test_hostile_values_are_cleaned_in_labels():
    label = rules.label_item({"name": "evil\x1b[2J\u202e"}, "{name}")
    assert "\x1b" not in label
    assert "\u202e" not in label
    assert rules.label_item({"name": "x" * 1000}, "{name}").endswith("…")


# ---------------------------------------------------------------------------------------------
# The loader


def catalogue_ids(path: Path) -> tuple[set[str], set[str]]:
    parsed = load_catalogue(path)
    return {question.qid for question in parsed.questions}, set(parsed.settings)


# A check names question ids, not versions: they must mean the same in every bundled edition.
@pytest.mark.parametrize("path", bundled_files(), ids=lambda path: path.name)
def test_bundled_checks_refer_to_existing_questions_and_settings(path):
    questions, settings = catalogue_ids(path)
    checks = load_checks(questions=questions, settings=settings | set(DEFAULT_SETTINGS))
    assert [check.id for check in checks] == [check.id for check in bundled_checks()]
    assert {check.control for check in checks} == set(rules.CONTROLS)
    for check in checks:
        for qid in check.questions:
            assert qid in questions, (check.id, qid)
        assert check.settings_used() <= set(DEFAULT_SETTINGS)
        for language in ("ja", "en"):
            assert check.title[language]
            assert check.remediation[language]
            for status, texts in check.detail.items():
                assert texts[language], (check.id, status, language)


@pytest.mark.parametrize("path", bundled_files(), ids=lambda path: path.name)
def test_every_control_question_section_matches_the_catalogue_section(path):
    """A check of a control only cites that control's catalogue section (A4 firewalls, ...)."""
    parsed = load_catalogue(path)
    section_of = {q.qid: s.control for s in parsed.sections for q in s.questions}
    for check in bundled_checks():
        for qid in check.questions:
            expected = "backups" if check.control == "informational" else check.control
            if check.id == "UAC-04" and qid == "A5.10":
                continue  # lockout also answers the device-unlock question of A5
            assert section_of[qid] == expected, (check.id, qid)


def test_default_settings_equal_the_bundled_catalogue_values():
    parsed = load_catalogue(CATALOGUE)
    for name, default in DEFAULT_SETTINGS.items():
        if name in parsed.settings:
            assert parsed.settings[name] == default, name
    for path in bundled_files():
        load_catalogue(path)  # every bundled catalogue still loads


def write(tmp_path: Path, text: str, name: str = "checks.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


VALID = """\
checks:
  - id: XX-01
    control: firewalls
    questions: [A4.2]
    severity: high
    title: {ja: "題", en: "Title"}
    remediation: {ja: "対処", en: "Fix it"}
    condition: {path: firewall.default_inbound, in: [drop, reject]}
    facts:
      default: firewall.default_inbound
    detail:
      pass: {ja: "可 {default}", en: "ok {default}"}
      fail: {ja: "不可", en: "not ok"}
"""


def problems(tmp_path: Path, text: str, **kwargs) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(CheckProblems) as raised:
        load_checks([path], **kwargs)
    return raised.value.problems


def test_a_valid_file_loads(tmp_path):
    (check,) = load_checks([write(tmp_path, VALID)], questions={"A4.2"}, settings=set())
    assert check.id == "XX-01"
    assert check.source.endswith("checks.yaml:2")


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("id: XX-01", "id: firewall-one", 2, "must look like FW-01"),
        ("control: firewalls", "control: dns", 3, "unknown control 'dns'"),
        ("severity: high", "severity: urgent", 5, "severity must be one of"),
        ("questions: [A4.2]", "questions: [A4.99]", 4, "question A4.99 does not exist"),
        ("questions: [A4.2]", "questions: []", 4, "non-empty list"),
        ("    title:", "    colour: red\n    title:", 6, "unknown key 'colour'"),
        ('title: {ja: "題", en: "Title"}', 'title: {ja: "題"}', 6, "non-empty 'en' text"),
        ("in: [drop, reject]", "in: drop", 8, "takes a non-empty list"),
        (
            "{path: firewall.default_inbound, in: [drop, reject]}",
            "{path: firewall.default_inbound, in: [drop], equals: x}",
            8,
            "exactly one operator",
        ),
        (
            "{path: firewall.default_inbound, in: [drop, reject]}",
            "{in: [drop]}",
            8,
            "needs a 'path'",
        ),
        (
            "{path: firewall.default_inbound, in: [drop, reject]}",
            "{path: firewall..x, in: [drop]}",
            8,
            "needs a 'path'",
        ),
        (
            "{path: firewall.default_inbound, in: [drop, reject]}",
            "{path: a, lte: $nowhere}",
            8,
            "unknown setting '$nowhere'",
        ),
        (
            "{path: firewall.default_inbound, in: [drop, reject]}",
            "{path: a, lte: many}",
            8,
            "takes a number or a $setting",
        ),
        (
            "{path: firewall.default_inbound, in: [drop, reject]}",
            "{path: a, empty: false}",
            8,
            "write 'empty: true'",
        ),
        (
            "{path: firewall.default_inbound, in: [drop, reject]}",
            "{path: a, matches: x}",
            8,
            "unknown condition key 'matches'",
        ),
        (
            "{path: firewall.default_inbound, in: [drop, reject]}",
            '{path: "@", equals: 1}',
            8,
            "only names an item",
        ),
        (
            "{path: firewall.default_inbound, in: [drop, reject]}",
            "{path: a, equals: 1, label: x}",
            8,
            "'label' only goes with each/some",
        ),
        (
            "{path: firewall.default_inbound, in: [drop, reject]}",
            "{all: []}",
            8,
            "non-empty list of conditions",
        ),
        (
            "{path: firewall.default_inbound, in: [drop, reject]}",
            "{all: [{path: a, equals: 1}], any: []}",
            8,
            "cannot be mixed",
        ),
        (
            'pass: {ja: "可 {default}", en: "ok {default}"}',
            'pass: {ja: "可 {nothing}", en: "ok"}',
            12,
            "refers to {nothing}, which is not a fact",
        ),
        ('      fail: {ja: "不可", en: "not ok"}\n', "", 11, "'detail' lacks a 'fail' text"),
        (
            "    condition: {path: firewall.default_inbound, in: [drop, reject]}\n",
            "",
            2,
            "needs a condition",
        ),
        (
            "severity: high",
            "severity: info",
            8,
            "informational check reports facts and has no condition",
        ),
        (
            "default: firewall.default_inbound",
            'default: {path: a, item: "{a.b}"}',
            10,
            "'item' must be a format",
        ),
    ],
)
def test_loader_reports_file_and_line(tmp_path, old, new, line, message):
    assert old in VALID
    found = problems(tmp_path, VALID.replace(old, new), questions={"A4.2"}, settings=set())
    expected = f"{tmp_path / 'checks.yaml'}:{line}: "
    assert any(p.startswith(expected) and message in p for p in found), found


def test_loader_reports_yaml_errors_duplicates_and_unreadable_files(tmp_path):
    found = problems(tmp_path, "checks:\n  - id: XX-01\n    title: [unclosed\n")
    assert found[0].startswith(f"{tmp_path / 'checks.yaml'}:")
    assert "invalid YAML" in found[0]

    first = write(tmp_path, VALID, "a.yaml")
    second = write(tmp_path, VALID, "b.yaml")
    with pytest.raises(CheckProblems) as raised:
        load_checks([first, second])
    assert raised.value.problems == [f"{second}:2: duplicate check id 'XX-01' (first at {first}:2)"]

    with pytest.raises(CheckProblems) as raised:
        load_checks([tmp_path / "missing.yaml"])
    assert raised.value.problems[0].startswith(f"{tmp_path / 'missing.yaml'}:0: cannot read file")

    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe checks")
    with pytest.raises(CheckProblems) as raised:
        load_checks([binary])
    assert "not UTF-8" in raised.value.problems[0]

    found = problems(tmp_path, "- just a list\n")
    assert found == [
        f"{tmp_path / 'checks.yaml'}:1: a check file is a mapping with a 'checks' list"
    ]


def test_loader_collects_every_problem_of_a_file(tmp_path):
    text = VALID.replace("control: firewalls", "control: dns").replace(
        "severity: high", "severity: x"
    )
    found = problems(tmp_path, text, questions={"A4.2"}, settings=set())
    assert len(found) == 2


ROOT = Path(__file__).resolve().parents[2]


def test_docs_checks_md_is_generated_from_the_check_files():
    expected = rules.checks_markdown(bundled_checks())
    assert (ROOT / "docs/checks.md").read_text(encoding="utf-8") == expected, (
        "regenerate: python -m mamori.verification.rules --markdown > docs/checks.md"
    )
    for check in bundled_checks():
        assert f"## {check.id}" in expected


def test_docs_link_to_the_packaged_evaluation_schema():
    link = ROOT / "docs/evaluation.schema.json"
    assert link.is_symlink()
    assert not Path(link.readlink()).is_absolute()
    assert link.resolve() == ROOT / "src/mamori/verification/schemas/evaluation.schema.json"


def test_the_module_checks_files_from_the_command_line(tmp_path, capsys):
    assert rules.main([]) == 0
    assert capsys.readouterr().out == f"ok: {len(bundled_checks())} checks\n"
    broken = write(tmp_path, VALID.replace("severity: high", "severity: urgent"))
    assert rules.main([str(broken)]) == 1
    assert f"{broken}:5: check XX-01: severity must be one of" in capsys.readouterr().err


def test_the_evaluation_modules_import_no_django():
    code = (
        "import sys\n"
        "import mamori.verification.evaluation, mamori.verification.rules\n"
        "import mamori.verification.evidence\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'django'))\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert run.stdout.strip() == "[]"
