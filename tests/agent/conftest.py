"""Fixtures for the host agent's tests: the evidence schema, Python 3.9, root filesystems."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import pytest

from . import roots

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "src"
SCHEMA_PATH = REPO / "src/mamori/verification/schemas/evidence.schema.json"
# The agent supports Python 3.9 (the interpreter of Debian 11, Ubuntu 20.04 and RHEL 8), which
# Debian 12 does not package. Where one is, MAMORI_PYTHON39 names it; else it is looked up on PATH,
# then asked of pyenv or uv when those are installed.
PYTHON39_VARIABLE = "MAMORI_PYTHON39"


def _is_python(candidate: str | None, version: tuple[int, int]) -> bool:
    if not candidate or not os.access(candidate, os.X_OK):
        return False
    check = subprocess.run(
        [candidate, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    )
    return check.returncode == 0 and check.stdout.strip() == str(version)


def _tool_answer(*command: str) -> str | None:
    """The first line a version manager prints (``pyenv prefix 3.9``, ``uv python find 3.9``),
    or None when it is not installed or knows no such Python."""
    if shutil.which(command[0]) is None:
        return None
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=60, stdin=subprocess.DEVNULL
    )
    lines = result.stdout.strip().splitlines()
    return lines[0] if result.returncode == 0 and lines else None


def python39_candidates() -> list[str]:
    found = [shutil.which("python3.9")]  # a pyenv shim is found here but may not run: checked
    prefix = _tool_answer("pyenv", "prefix", "3.9")
    if prefix:
        found.append(str(Path(prefix) / "bin" / "python3.9"))
    found.append(_tool_answer("uv", "python", "find", "3.9"))
    return [candidate for candidate in found if candidate]


@functools.cache
def find_python39() -> str | None:
    """MAMORI_PYTHON39 (which must be a 3.9, else the run fails), or the first 3.9 found."""
    configured = os.environ.get(PYTHON39_VARIABLE)
    if configured:
        if not _is_python(configured, (3, 9)):
            pytest.fail(f"{PYTHON39_VARIABLE}={configured} is not a Python 3.9 interpreter")
        return configured
    for candidate in python39_candidates():
        if _is_python(candidate, (3, 9)):
            return candidate
    return None


@pytest.fixture(scope="session")
def python39() -> str:
    """A Python 3.9 to run the agent under. Found nowhere, the tests that compare 3.9 with 3.11
    are skipped, saying so in pytest's summary (``-ra``): the agent's 3.9 syntax is still checked
    by ``make lint`` (ruff's per-file-target-version), its 3.9 behaviour is then not."""
    found = find_python39()
    if found is None:
        pytest.skip(
            "no Python 3.9 found (python3.9 on PATH, pyenv, uv): the agent is not run under 3.9 "
            f"here; set {PYTHON39_VARIABLE}=/path/to/python3.9 to run it"
        )
    return found


@pytest.fixture(scope="session")
def oldest_python(python311) -> str:
    """The oldest supported Python at hand, for tests that must run everywhere (the end-to-end
    upload): 3.9 where there is one, else 3.11."""
    return find_python39() or python311


@pytest.fixture(scope="session")
def python311() -> str:
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    for candidate in ("/usr/bin/python3.11", shutil.which("python3.11")):
        if _is_python(candidate, (3, 11)):
            return candidate  # type: ignore[return-value]
    pytest.fail("the agent must also be tested under Python 3.11, which was not found")


@pytest.fixture(scope="session")
def evidence_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.fixture(scope="session")
def assert_valid(evidence_validator):
    def check(evidence: dict) -> dict:
        problems = [
            f"{error.json_path}: {error.message[:200]}"
            for error in evidence_validator.iter_errors(evidence)
        ]
        assert not problems, problems
        return evidence

    return check


@pytest.fixture(scope="session")
def roots_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("agent-roots")


@pytest.fixture(scope="session")
def debian_root(roots_dir) -> Path:
    return roots.build_debian(roots_dir / "debian")


@pytest.fixture(scope="session")
def alpine_root(roots_dir) -> Path:
    return roots.build_alpine(roots_dir / "alpine")


@pytest.fixture(scope="session")
def rpm_packages(roots_dir) -> list[Path]:
    try:
        return roots.build_rpms(roots_dir / "rpm-work")
    except RuntimeError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def rocky_root(roots_dir, rpm_packages) -> Path:
    return roots.build_rocky(roots_dir / "rocky", rpm_packages)


def agent_environment(**extra: str) -> dict[str, str]:
    """The environment for running the agent from the source tree in a child process."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "SSL_CERT_FILE", "SSL_CERT_DIR", "MAMORI_AGENT_TOKEN")
    }
    environment["PYTHONPATH"] = str(SOURCE)
    environment.update(extra)
    return environment


def run_unprivileged(arguments: list[str]) -> subprocess.CompletedProcess:
    """Runs the agent from the source tree as an unprivileged user: ``nobody`` when the tests
    run as root (where chmod 000 does not stop reads), else the current user."""
    command = [sys.executable, "-m", "mamori_agent", *arguments]
    if os.geteuid() == 0:
        command = [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",  # the system interpreter: a pyenv one may live under /root
            "-m",
            "mamori_agent",
            *arguments,
        ]
    return subprocess.run(
        command, capture_output=True, text=True, env=agent_environment(), check=False, cwd="/"
    )


@pytest.fixture
def shared_tmp():
    """A temporary directory other users can enter (pytest's own is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="mamori-agent-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base)


@pytest.fixture(scope="session")
def pyz(tmp_path_factory) -> Path:
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is needed to build the agent")
    target = tmp_path_factory.mktemp("pyz") / "mamori-agent.pyz"
    result = subprocess.run(
        [make, "--no-print-directory", "agent", f"AGENT_PYZ={target}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"built {target}"
    return target


def clean_environment() -> dict[str, str]:
    """No PYTHONPATH: the archive must carry everything it needs."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
