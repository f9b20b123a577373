"""``collect --root`` never executes anything: structurally (no module but commands.py can start a
process, and the root mode gets no runner) and in fact (with every way to start a process
broken, a root collection still succeeds)."""

from __future__ import annotations

import ast
import contextlib
import os
import subprocess
from pathlib import Path

import pytest

import mamori_agent
from mamori_agent.collect import collect
from mamori_agent.commands import CommandRunner
from mamori_agent.context import Context
from mamori_agent.rootfs import FileSystem

PACKAGE = Path(mamori_agent.__file__).parent
PROCESS_MODULES = {"subprocess", "pty", "multiprocessing", "concurrent", "asyncio", "platform"}
PROCESS_FUNCTIONS = {
    "system",
    "popen",
    "fork",
    "forkpty",
    "posix_spawn",
    "posix_spawnp",
    "execv",
    "execve",
    "execl",
    "execle",
    "execlp",
    "execlpe",
    "execvp",
    "execvpe",
    "spawnv",
    "spawnve",
    "spawnl",
    "spawnle",
}


def test_only_commands_py_can_start_a_process():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        relative = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module.split(".")[0]]
            if set(names) & PROCESS_MODULES and relative != "commands.py":
                offenders.append(f"{relative}:{node.lineno} imports {names}")
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
                and node.attr in PROCESS_FUNCTIONS
            ):
                offenders.append(f"{relative}:{node.lineno} uses os.{node.attr}")
    assert offenders == []


def test_the_root_mode_context_cannot_run_commands(tmp_path):
    context = Context(FileSystem(str(tmp_path)), None)
    assert context.live is False
    assert context.can_run("nft") is False
    with pytest.raises(RuntimeError, match="never run on a mounted root"):
        context.run("nft")


class ProcessStarted(AssertionError):
    pass


@contextlib.contextmanager
def no_processes(monkeypatch):
    """Breaks every way the standard library starts a process."""

    def refuse(*args, **kwargs):
        raise ProcessStarted(f"a process was started: {args!r}")

    with monkeypatch.context() as patch:
        patch.setattr(subprocess, "Popen", refuse)
        for name in PROCESS_FUNCTIONS:
            if hasattr(os, name):
                patch.setattr(os, name, refuse)
        yield


def test_the_guard_does_stop_processes(monkeypatch):
    with no_processes(monkeypatch):
        with pytest.raises(ProcessStarted):
            subprocess.run(["/bin/true"], check=False)
        with pytest.raises(ProcessStarted):
            os.system("true")  # noqa: S605 - the guard must stop this
        # the live runner, given a program to run, is caught by the guard too
        monkeypatch.setattr("mamori_agent.commands.find_program", lambda name: "/bin/true")
        with pytest.raises(ProcessStarted):
            CommandRunner().run("nft")


@pytest.mark.parametrize("tree", ["debian_root", "alpine_root", "rocky_root"])
def test_root_collection_starts_no_process(tree, request, monkeypatch, assert_valid):
    root = request.getfixturevalue(tree)  # built (with rpmbuild) before the guard
    with no_processes(monkeypatch):
        evidence = collect(str(root))
    assert_valid(evidence)
    for name, section in evidence.items():
        if isinstance(section, dict) and "errors" in section:
            assert not any("internal error" in error["reason"] for error in section["errors"]), name
    assert evidence["packages"]["items"]
