"""Shared helpers for the advisory tests: real records and variants of them, and running the
import command the way an operator does (English messages, exit status, both output streams).
The data's paths and counts are in tests/datafiles.py."""

from __future__ import annotations

import copy
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation


def real_record(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def variant(path: Path, **changes) -> dict:
    """A deep copy of a real record with top-level fields replaced (None removes one)."""
    record = copy.deepcopy(real_record(path))
    for key, value in changes.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    return record


def write_json(path: Path, document: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    message: str = ""  # the CommandError text, when the command ended with one

    @property
    def bad_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def run_import(*arguments: object) -> Result:
    """``mamori advisories import ARGUMENTS --quiet`` in English; never raises."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with translation.override("en"):
        try:
            call_command(
                "advisories",
                "import",
                *[str(argument) for argument in arguments],
                "--quiet",
                stdout=stdout,
                stderr=stderr,
            )
        except CommandError as exc:
            return Result(exc.returncode, stdout.getvalue(), stderr.getvalue(), str(exc))
    return Result(0, stdout.getvalue(), stderr.getvalue())


@pytest.fixture(autouse=True)
def _fresh_index_cache():
    """Each test starts without a cached index, as a new process would."""
    from mamori.advisories import services

    services.forget_index()
    yield
    services.forget_index()
