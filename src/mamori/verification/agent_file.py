"""The agent as one file to download from the hosts page: the zipapp ``make agent`` builds,
made here from the installed ``mamori_agent`` package the same way (a copy without caches, a
``__main__`` that calls the CLI, ``#!/usr/bin/env python3``, compressed).

Built on first request and kept under ``VAR_DIR/agent``, named by the agent's version and a
digest of its source, so an upgraded server builds the new agent once and never hands out a
stale one. Building is atomic (a temporary file renamed into place), so requests that race
each get a whole file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipapp
from pathlib import Path

import mamori_agent

MAIN = "import sys\nfrom mamori_agent.cli import main\nsys.exit(main())\n"
INTERPRETER = "/usr/bin/env python3"
DOWNLOAD_NAME = "mamori-agent.pyz"


def _sources() -> list[Path]:
    root = Path(mamori_agent.__file__).parent
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def source_digest() -> str:
    root = Path(mamori_agent.__file__).parent
    digest = hashlib.sha256(MAIN.encode())
    for path in _sources():
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def agent_pyz(directory: Path) -> Path:
    """The path of the agent zipapp under ``directory``, built if it is not there yet."""
    target = directory / f"mamori-agent-{mamori_agent.__version__}-{source_digest()[:16]}.pyz"
    if target.is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    root = Path(mamori_agent.__file__).parent
    with tempfile.TemporaryDirectory(dir=directory) as staging:
        package = Path(staging) / "app" / "mamori_agent"
        for path in _sources():
            copy = package / path.relative_to(root)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
        (package.parent / "__main__.py").write_text(MAIN)
        built = Path(staging) / DOWNLOAD_NAME
        zipapp.create_archive(package.parent, built, interpreter=INTERPRETER, compressed=True)
        built.chmod(0o755)
        os.replace(built, target)
    return target
