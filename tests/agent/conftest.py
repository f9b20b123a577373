"""Fixtures for the host agent's tests: the evidence schema, Python 3.9, root filesystems."""

from __future__ import annotations

import glob
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
PYTHON39_CANDIDATES = (
    "/root/.pyenv/versions/3.9.18/bin/python3.9",
    *sorted(glob.glob("/root/.pyenv/versions/3.9*/bin/python3.9")),
    "/usr/bin/python3.9",
    "/usr/local/bin/python3.9",
)


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


def find_python(version: tuple[int, int], candidates: tuple[str | None, ...]) -> str:
    name = "python{}.{}".format(*version)
    for candidate in (*candidates, shutil.which(name)):
        if _is_python(candidate, version):
            return candidate  # type: ignore[return-value]
    pytest.fail(
        f"the agent must be tested under Python {version[0]}.{version[1]}, which was not found "
        f"({name} on PATH or {', '.join(c for c in candidates if c)}); install it, e.g. "
        f"`pyenv install {version[0]}.{version[1]}`"
    )


@pytest.fixture(scope="session")
def python39() -> str:
    return find_python((3, 9), PYTHON39_CANDIDATES)


@pytest.fixture(scope="session")
def python311() -> str:
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    return find_python((3, 11), ("/usr/bin/python3.11",))


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
            "/usr/bin/python3",  # the system interpreter: pyenv's lives under /root
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
