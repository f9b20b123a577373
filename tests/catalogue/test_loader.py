"""The catalogue loader reports each problem as ``file:line: problem`` (every problem, with the
line an author has to fix), ``mamori catalogue check`` exits accordingly, and a catalogue
version that an assessment uses can no longer change."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from mamori.catalogue.loader import CatalogueProblems, load_catalogue
from mamori.catalogue.models import Catalogue, CatalogueInUse, Question
from mamori.catalogue.services import bundled_files, parse_bundled, sync_catalogue

MAMORI = Path(sys.executable).parent / "mamori"
# The newest edition: the one the ``catalogue`` fixture loads and new assessments get.
NEWEST = parse_bundled()[-1]
BUNDLED = Path(NEWEST.source)
VERSION = NEWEST.version

GOOD = textwrap.dedent(
    """\
    catalogue: TEST 1
    title: {ja: "テスト", en: "Test"}
    valid_from: 2026-04-01
    settings:
      completion_months: 6
      clarification_working_days: 2
      resubmission_working_days: 2
      certificate_months: 12
      patch_days: 14
    sections:
      - id: A1
        control: organisation
        title: {ja: "組織", en: "Organisation"}
        questions:
          - id: A1.1
            kind: yes_no
            scoring: informational
            text: {ja: "質問", en: "Question"}
          - id: A1.2
            kind: yes_no
            scoring: scored
            text: {ja: "{patch_days}日以内ですか", en: "Within {patch_days} days?"}
            remediation: {ja: "直してください", en: "Fix it"}
            compliant: {equals: "yes"}
            applies_if: {question: A1.1, rule: {equals: "yes"}}
          - id: A1.3
            kind: number
            scoring: scored
            min: 0
            text: {ja: "日数", en: "Days"}
            remediation: {ja: "短くしてください", en: "Shorten it"}
            compliant: {at_most: "$patch_days"}
      - id: A4
        control: firewalls
        title: {ja: "ファイアウォール", en: "Firewalls"}
        questions:
          - id: A4.1
            kind: yes_no
            scoring: scored
            text: {ja: "境界ファイアウォールがありますか", en: "Is there a boundary firewall?"}
            guidance: {ja: "説明", en: "Explanation"}
            remediation: {ja: "設置してください", en: "Install one"}
            compliant: {equals: "yes"}
    """
)


def edit(old: str, new: str, occurrence: int = 1) -> str:
    """GOOD with the ``occurrence``-th ``old`` replaced by ``new``."""
    parts = GOOD.split(old)
    assert len(parts) > occurrence, f"{old!r} occurs fewer than {occurrence} times"
    return old.join(parts[:occurrence]) + new + old.join(parts[occurrence:])


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """The 1-based line number of the ``occurrence``-th line containing ``needle`` (a needle
    ending in "$" must end the line)."""
    lines = text.splitlines()
    if needle.endswith("$"):
        found = [n for n, line in enumerate(lines, 1) if line.endswith(needle[:-1])]
    else:
        found = [n for n, line in enumerate(lines, 1) if needle in line]
    return found[occurrence - 1]


def problems_of(text: str, folder: Path) -> tuple[Path, list[str]]:
    path = folder / "catalogue.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogueProblems) as raised:
        load_catalogue(path)
    return path, raised.value.problems


def test_the_base_catalogue_is_valid(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(GOOD, encoding="utf-8")
    parsed = load_catalogue(path)
    assert parsed.version == "TEST 1"
    assert [q.qid for q in parsed.questions] == ["A1.1", "A1.2", "A1.3", "A4.1"]


# Each case: the broken text, the text on the line that must be named, which occurrence of
# that text, and the problem reported.
BROKEN = {
    "bad indentation": (
        edit("        scoring: informational", "       scoring: informational"),
        "scoring: informational",
        1,
        "invalid YAML: expected <block end>, but found '<block mapping start>'",
    ),
    "unknown key": (
        edit(
            '        text: {ja: "質問", en: "Question"}\n',
            '        text: {ja: "質問", en: "Question"}\n        colour: red\n',
        ),
        "colour: red",
        1,
        "unknown key 'colour' in question A1.1",
    ),
    "duplicate section id": (
        edit("  - id: A4\n", "  - id: A1\n").replace("A4.1", "A1.1"),
        "- id: A1$",
        2,
        "duplicate section id 'A1'",
    ),
    "duplicate question id": (
        edit("      - id: A1.2", "      - id: A1.1"),
        "- id: A1.1",
        2,
        "question id 'A1.1' should be 'A1.2' (ids are consecutive)",
    ),
    "duplicate key": (
        edit("        kind: yes_no\n", "        kind: yes_no\n        kind: choice\n"),
        "kind: choice",
        1,
        "invalid YAML: duplicate key 'kind'",
    ),
    "non-consecutive ids": (
        edit("      - id: A1.3", "      - id: A1.4"),
        "- id: A1.4",
        1,
        "question id 'A1.4' should be 'A1.3' (ids are consecutive)",
    ),
    "boolean yes in a rule": (
        edit('compliant: {equals: "yes"}', "compliant: {equals: yes}"),
        "compliant: {equals: yes}",
        1,
        'question A1.2 \'compliant\': booleans are not answer values; quote "yes" and "no"',
    ),
    "unknown setting in a text": (
        edit("Within {patch_days} days?", "Within {patch_dayz} days?"),
        "{patch_dayz}",
        1,
        "question A1.2 'text' (en) refers to unknown setting {patch_dayz}",
    ),
    "unknown setting in a rule": (
        edit('"$patch_days"', '"$patch_dayz"'),
        "$patch_dayz",
        1,
        "question A1.3 'compliant': unknown setting '$patch_dayz'",
    ),
    "applies_if to a later question": (
        edit(
            '        text: {ja: "質問", en: "Question"}\n',
            '        text: {ja: "質問", en: "Question"}\n'
            "        applies_if: {question: A1.3, rule: {at_least: 1}}\n",
        ),
        "applies_if: {question: A1.3",
        1,
        "question A1.1: applies_if refers to 'A1.3', which is not an earlier question",
    ),
    "scored without remediation": (
        edit('        remediation: {ja: "設置してください", en: "Install one"}\n', ""),
        "- id: A4.1",
        1,
        "question A4.1: a scored question needs 'remediation' advice",
    ),
    "unknown kind": (
        edit("        kind: yes_no", "        kind: yesno", 3),
        "kind: yesno",
        1,
        "question A4.1: unknown kind 'yesno' "
        "(one of: yes_no, choice, multi_choice, number, text, inventory)",
    ),
    "missing English text": (
        edit('en: "Organisation"}', 'en: ""}'),
        'en: ""}',
        1,
        "section A1 'title' needs a non-empty 'en' text",
    ),
    "auto-fail on an informational question": (
        edit(
            '        text: {ja: "質問", en: "Question"}\n',
            '        text: {ja: "質問", en: "Question"}\n'
            '        auto_fail: {when: {equals: "no"}, reason: {ja: "不合格", en: "Fails"}}\n',
        ),
        "auto_fail:",
        1,
        "question A1.1: only scored questions can auto-fail",
    ),
    "known-exploited deadline longer than the ordinary one": (
        edit("  patch_days: 14\n", "  patch_days: 14\n  kev_patch_days: 21\n"),
        "kev_patch_days: 21",
        1,
        "setting 'kev_patch_days' must not exceed 'patch_days': "
        "a fix for an exploited vulnerability never gets more time than any other",
    ),
    "appeal window that is not a number of days": (
        edit("  patch_days: 14\n", "  patch_days: 14\n  appeal_working_days: 0.5\n"),
        "appeal_working_days: 0.5",
        1,
        "setting 'appeal_working_days' must be a whole number >= 1",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_each_problem_is_reported_at_its_line(tmp_path, case):
    text, needle, occurrence, problem = BROKEN[case]
    path, problems = problems_of(text, tmp_path)
    assert problems == [f"{path}:{line_of(text, needle, occurrence)}: {problem}"]


def test_every_problem_in_a_file_is_reported_in_order(tmp_path):
    text = GOOD.replace("Within {patch_days} days?", "Within {patch_dayz} days?").replace(
        '        kind: yes_no\n        scoring: scored\n        text: {ja: "境界',
        '        kind: yesno\n        scoring: scored\n        text: {ja: "境界',
    )
    path, problems = problems_of(text, tmp_path)
    assert problems == [
        f"{path}:{line_of(text, '{patch_dayz}')}: question A1.2 'text' (en) refers to "
        "unknown setting {patch_dayz}",
        f"{path}:{line_of(text, 'kind: yesno')}: question A4.1: unknown kind 'yesno' "
        "(one of: yes_no, choice, multi_choice, number, text, inventory)",
    ]


def test_unreadable_and_non_utf8_files_are_reported(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(CatalogueProblems) as raised:
        load_catalogue(missing)
    assert raised.value.problems == [f"{missing}:0: cannot read file: No such file or directory"]

    latin = tmp_path / "latin.yaml"
    latin.write_bytes("catalogue: caf\xe9\n".encode("latin-1"))
    with pytest.raises(CatalogueProblems) as raised:
        load_catalogue(latin)
    (problem,) = raised.value.problems
    assert problem.startswith(f"{latin}:0: not UTF-8 text")


# --- mamori catalogue check ---------------------------------------------------------------------


def test_catalogue_check_command_lists_the_problems(tmp_path):
    text, needle, _occurrence, problem = BROKEN["boolean yes in a rule"]
    broken = tmp_path / "broken.yaml"
    broken.write_text(text, encoding="utf-8")
    err = io.StringIO()
    with pytest.raises(CommandError, match="catalogue check failed"):
        call_command("catalogue", "check", str(broken), stderr=err)
    assert err.getvalue().splitlines() == [f"{broken}:{line_of(text, needle)}: {problem}"]


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in command],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_mamori_catalogue_check_exit_status(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(GOOD, encoding="utf-8")
    text, needle, _occurrence, problem = BROKEN["unknown kind"]
    broken = tmp_path / "broken.yaml"
    broken.write_text(text, encoding="utf-8")

    ok = run(MAMORI, "catalogue", "check", good, BUNDLED)
    assert ok.returncode == 0, ok.stderr
    assert f"{good}: ok: TEST 1, 2 sections, 4 questions" in ok.stdout
    assert f"{BUNDLED}: ok: {VERSION}, 10 sections" in ok.stdout

    failed = run(MAMORI, "catalogue", "check", good, broken)
    assert failed.returncode != 0
    assert f"{broken}:{line_of(text, needle)}: {problem}" in failed.stderr.splitlines()
    assert "catalogue check failed" in failed.stderr
    assert f"{good}: ok" in failed.stdout

    # The same check without Django, e.g. in an editor hook.
    plain = run(sys.executable, "-m", "mamori.catalogue.loader", broken)
    assert plain.returncode == 1
    assert plain.stderr.splitlines() == [f"{broken}:{line_of(text, needle)}: {problem}"]


# --- A catalogue version in use is immutable ----------------------------------------------------


def changed_copy(folder: Path, old: str, new: str) -> Path:
    text = BUNDLED.read_text(encoding="utf-8")
    assert old in text
    path = folder / BUNDLED.name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def database_state(catalogue: Catalogue) -> dict:
    catalogue.refresh_from_db()
    return {
        "digest": catalogue.digest,
        "settings": catalogue.settings,
        "loaded_at": catalogue.loaded_at,
        "questions": list(
            Question.objects.filter(catalogue=catalogue)
            .order_by("position")
            .values_list("pk", "qid", "text_en", "text_ja", "spec")
        ),
    }


@pytest.mark.django_db
def test_loading_the_same_file_again_changes_nothing(catalogue):
    before = database_state(catalogue)
    again, outcome = sync_catalogue(load_catalogue(BUNDLED))
    assert outcome == "unchanged"
    assert again.pk == catalogue.pk
    assert database_state(catalogue) == before
    out = io.StringIO()
    call_command("catalogue", "load", stdout=out)
    # Every bundled edition, oldest first, each already in the test database (tests/conftest.py
    # loads them), so nothing changes.
    assert out.getvalue().splitlines() == [
        f"{load_catalogue(path).version}: unchanged" for path in bundled_files()
    ]
    assert database_state(catalogue) == before


@pytest.mark.django_db
def test_a_catalogue_nobody_uses_yet_may_still_be_corrected(catalogue, tmp_path):
    path = changed_copy(tmp_path, "patch_days: 14", "patch_days: 7")
    updated, outcome = sync_catalogue(load_catalogue(path))
    assert outcome == "updated"
    assert updated.pk == catalogue.pk
    assert updated.settings["patch_days"] == 7


@pytest.mark.django_db
def test_a_catalogue_in_use_cannot_change(world, tmp_path):
    catalogue = Catalogue.objects.get(version=VERSION)
    assessment = world.start()
    assert assessment.catalogue == catalogue
    before = database_state(catalogue)
    path = changed_copy(tmp_path, "patch_days: 14", "patch_days: 30")

    with pytest.raises(CatalogueInUse) as refused:
        sync_catalogue(load_catalogue(path))
    assert str(refused.value) == (
        f"catalogue {VERSION} is used by 1 assessment(s) and cannot change; "
        "publish the change as a new catalogue version"
    )
    with pytest.raises(CommandError, match=f"{VERSION} is used by 1 assessment"):
        call_command("catalogue", "load", str(path))
    assert database_state(catalogue) == before
    assert catalogue.settings["patch_days"] == 14

    # Loading the unchanged file is still fine, and the change can ship as a new version.
    assert sync_catalogue(load_catalogue(BUNDLED))[1] == "unchanged"
    renamed = changed_copy(tmp_path, f"catalogue: {VERSION}\n", "catalogue: CE-JP next\n")
    renamed.write_text(
        renamed.read_text(encoding="utf-8").replace("patch_days: 14", "patch_days: 7", 1),
        encoding="utf-8",
    )
    newer, outcome = sync_catalogue(load_catalogue(renamed))
    assert outcome == "created"
    assert newer.settings["patch_days"] == 7
    assert database_state(catalogue) == before
