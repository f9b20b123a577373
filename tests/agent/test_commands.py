"""The live mode's command runner: fixed commands, absolute paths, a clean environment, a timeout
and a time budget. The test adds its own harmless commands to the fixed table to exercise it."""

from __future__ import annotations

import os
import time

import pytest

from mamori_agent import commands
from mamori_agent.commands import COMMANDS, CommandRunner, find_program


@pytest.fixture
def table(monkeypatch):
    def add(key: str, program: str, *arguments: str) -> None:
        monkeypatch.setitem(COMMANDS, key, (program, arguments))

    return add


def test_the_fixed_commands_only_read():
    assert set(COMMANDS) == {
        "nft",
        "iptables-save",
        "ip6tables-save",
        "systemctl-running",
        "rpm-query",
    }
    assert COMMANDS["nft"] == ("nft", ("list", "ruleset"))
    assert COMMANDS["systemctl-running"][1][0] == "list-units"
    assert COMMANDS["rpm-query"][1][:2] == ("--query", "--all")


def test_programs_are_found_by_absolute_path_only():
    env = find_program("env")
    assert env is not None
    assert os.path.isabs(env)
    assert find_program("no-such-program-mamori") is None


def test_environment_is_clean_and_output_captured(table):
    table("environment", "env")
    result = CommandRunner().run("environment")
    assert result.ok
    assert sorted(result.output.splitlines()) == [
        "LANG=C",
        "LC_ALL=C",
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
    ]
    assert result.command.startswith("/")


def test_failures_are_one_line_reasons(table):
    table("missing", "no-such-program-mamori")
    assert CommandRunner().run("missing").reason == "not installed"
    table("fails", "false")
    assert CommandRunner().run("fails").reason == "exit status 1"
    table(
        "denied", "sh", "-c", "echo 'nft: Operation not permitted (you must be root)' >&2; exit 1"
    )
    result = CommandRunner().run("denied")
    assert result.reason == ("permission denied: nft: Operation not permitted (you must be root)")
    assert not result.ok


def test_timeout_and_budget(table):
    table("slow", "sleep", "5")
    started = time.monotonic()
    result = CommandRunner(timeout_seconds=0.2).run("slow")
    assert time.monotonic() - started < 2
    assert result.reason == "timed out after 0.2 s"
    spent = CommandRunner(budget_seconds=0)
    assert spent.run("slow").reason == "not run: the time budget for commands is spent"


def test_huge_output_is_capped(table, monkeypatch):
    monkeypatch.setattr(commands, "MAX_OUTPUT_BYTES", 1000)
    table("chatty", "head", "-c", "5000", "/dev/zero")
    result = CommandRunner().run("chatty")
    assert len(result.output) == 1000


def test_systemctl_without_systemd_is_reported():
    """On this machine systemd is not PID 1: the agent says so instead of running systemctl."""
    from mamori_agent.collect import collect

    evidence = collect()
    services = evidence["services"]
    if os.path.isdir("/run/systemd/system"):
        assert services["running"] is not None
    else:
        assert services["running"] is None
        assert {
            "path": "/run/systemd/system",
            "reason": "systemd is not running (not booted with systemd)",
        } in services["errors"]
