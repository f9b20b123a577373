"""``mamori catalogue check`` on broken catalogue files: a non-zero exit and one
``file:line: problem`` line per problem, pointing at the line to fix."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from mamori.catalogue.services import bundled_files

BUNDLED = Path(bundled_files()[0]).read_text(encoding="utf-8")
PROBLEM_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<problem>.+)$")


def line_of(text: str, fragment: str, after: str = "") -> int:
    """The 1-based number of the first line containing ``fragment`` (after ``after``)."""
    start = text.index(after) if after else 0
    return text.count("\n", 0, text.index(fragment, start)) + 1


def replace_once(text: str, old: str, new: str, after: str = "") -> str:
    start = text.index(after) if after else 0
    at = text.index(old, start)
    return text[:at] + new + text[at + len(old) :]


def check(path: Path) -> tuple[str, str]:
    """Run the command as the CLI does; a CommandError is what makes the exit status non-zero."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="catalogue check failed"):
        call_command("catalogue", "check", str(path), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def problems(stderr: str, path: Path) -> list[tuple[int, str]]:
    found = []
    for line in stderr.strip().splitlines():
        match = PROBLEM_LINE.match(line)
        assert match, f"not a file:line: problem line: {line!r}"
        assert match["file"] == str(path)
        found.append((int(match["line"]), match["problem"]))
    assert found
    return found


def write(tmp_path: Path, text: str, name: str = "broken.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_bundled_catalogue_passes(tmp_path):
    """The control for the cases below: the unbroken file is fine."""
    out = io.StringIO()
    call_command("catalogue", "check", str(write(tmp_path, BUNDLED)), stdout=out)
    assert ": ok: CE-JP 2026," in out.getvalue()


def test_unknown_question_kind(tmp_path):
    text = replace_once(BUNDLED, "kind: text", "kind: slider", after="id: A1.1")
    path = write(tmp_path, text)
    _out, err = check(path)
    assert problems(err, path) == [
        (
            line_of(text, "kind: slider"),
            "question A1.1: unknown kind 'slider' (one of: yes_no, choice, multi_choice, "
            "number, text, inventory)",
        )
    ]


def test_question_ids_out_of_order(tmp_path):
    text = replace_once(BUNDLED, "- id: A1.2", "- id: A1.9")
    path = write(tmp_path, text)
    _out, err = check(path)
    assert (
        line_of(text, "- id: A1.9"),
        "question id 'A1.9' should be 'A1.2' (ids are consecutive)",
    ) in problems(err, path)


def test_missing_english_text(tmp_path):
    english = '          en: "What is the organisation\'s registered legal name?"\n'
    text = replace_once(BUNDLED, english, "")
    path = write(tmp_path, text)
    _out, err = check(path)
    ((line, problem),) = problems(err, path)
    assert problem == "question A1.1 'text' needs a non-empty 'en' text"
    # The text block that lacks it: its first line, the Japanese text.
    assert line == line_of(text, "ja:", after="id: A1.1")


def test_unknown_setting_placeholder(tmp_path):
    text = replace_once(
        BUNDLED, "within {clarification_working_days} working days", "within {nope} days"
    )
    path = write(tmp_path, text)
    _out, err = check(path)
    assert problems(err, path) == [
        (
            line_of(text, "within {nope} days"),
            "question A1.6 'guidance' (en) refers to unknown setting {nope}",
        )
    ]


def test_invalid_yaml(tmp_path):
    text = replace_once(BUNDLED, "catalogue: CE-JP 2026", "catalogue: [CE-JP 2026")
    path = write(tmp_path, text)
    _out, err = check(path)
    ((line, problem),) = problems(err, path)
    assert problem.startswith("invalid YAML: ")
    assert line > 0


def test_several_problems_are_all_reported(tmp_path):
    text = replace_once(BUNDLED, "kind: text", "kind: slider", after="id: A1.1")
    text = replace_once(text, "scoring: scored", "scoring: maybe", after="id: A4.2")
    path = write(tmp_path, text)
    _out, err = check(path)
    reported = problems(err, path)
    assert [line for line, _ in reported] == [
        line_of(text, "kind: slider"),
        line_of(text, "scoring: maybe"),
    ]


def test_not_a_mapping(tmp_path):
    path = write(tmp_path, "- just\n- a list\n")
    _out, err = check(path)
    assert problems(err, path) == [(1, "the catalogue must be a mapping")]


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("catalogue: Café\n".encode("latin-1"))
    _out, err = check(path)
    ((line, problem),) = problems(err, path)
    assert line == 0
    assert problem.startswith("not UTF-8 text")


def test_missing_file(tmp_path):
    path = tmp_path / "absent.yaml"
    _out, err = check(path)
    assert problems(err, path) == [(0, "cannot read file: No such file or directory")]


def test_oversized_file(tmp_path):
    path = write(tmp_path, "# " + "x" * (2 * 1024 * 1024) + "\n")
    _out, err = check(path)
    assert problems(err, path) == [(0, "file is larger than 2097152 bytes")]


def test_cli_exits_non_zero(tmp_path):
    """The installed ``mamori`` command, as an author runs it: exit status and stderr."""
    text = replace_once(BUNDLED, "kind: text", "kind: slider", after="id: A1.1")
    path = write(tmp_path, text)
    mamori = Path(sys.executable).with_name("mamori")
    result = subprocess.run(
        [str(mamori), "catalogue", "check", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "MAMORI_VAR_DIR": str(tmp_path / "var")},
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert f"{path}:{line_of(text, 'kind: slider')}: question A1.1: unknown kind 'slider'" in (
        result.stderr
    )
    assert "catalogue check failed" in result.stderr
    assert "Traceback" not in result.stderr
