"""Shared helpers for the advisory tests: where the real data is, and running the import
command the way an operator does (English messages, exit status, both output streams)."""

from __future__ import annotations

import copy
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

REPO = Path(__file__).resolve().parents[2]


def _shared_data() -> Path:
    """/work/shared/data here; ``../shared/data`` beside a fresh clone (CI)."""
    configured = os.environ.get("MAMORI_SHARED_DATA")
    candidates = [Path(configured)] if configured else []
    candidates += [REPO.parent / "shared" / "data", Path("/work/shared/data")]
    for candidate in candidates:
        if (candidate / "osv").is_dir():
            return candidate
    return candidates[-1]


DATA = _shared_data()
OSV = DATA / "osv"
PYPI = OSV / "pypi"
DEBIAN12 = OSV / "debian12"
UBUNTU = OSV / "ubuntu"
KEV_FILE = DATA / "kev" / "known_exploited_vulnerabilities.json"
EOL_PRODUCTS = DATA / "eol" / "products"
DISTRO_INFO = DATA / "eol" / "distro-info"

# Counts of the real data (shared/data/README.md and the folders' READMEs).
PYPI_RECORDS = 2661
PYPI_WITHDRAWN = 10
DEBIAN12_RECORDS = 2385
UBUNTU_RECORDS = 7
KEV_ENTRIES = 1404
EOL_PRODUCT_FILES = 32


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
