"""``mamori-agent`` on the command line: exit status 0/1/2 and one line per failure."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from mamori_agent import __version__
from mamori_agent.cli import main

from .conftest import agent_environment


def run(*arguments: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mamori_agent", *arguments],
        capture_output=True,
        text=True,
        env=agent_environment(),
        check=False,
        **kwargs,
    )


def one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_version():
    result = run("--version")
    assert (result.returncode, result.stdout) == (0, f"mamori-agent {__version__}\n")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((), "the following arguments are required: COMMAND"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
        (("collect", "--bogus"), "unrecognized arguments: --bogus"),
        (("upload",), "the following arguments are required: --url"),
    ],
)
def test_usage_errors_are_one_line(arguments, message):
    result = run(*arguments)
    assert result.returncode == 2
    assert message in one_line(result.stderr)
    assert result.stdout == ""


def test_root_that_does_not_exist_or_is_not_a_directory(tmp_path, capsys):
    assert main(["collect", "--root", str(tmp_path / "missing")]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"mamori-agent: --root {tmp_path / 'missing'}: no such directory"
    )
    (tmp_path / "file").write_text("x")
    assert main(["collect", "--root", str(tmp_path / "file")]) == 2
    assert one_line(capsys.readouterr().err).endswith(": not a directory")


def test_output_in_a_missing_directory(tmp_path, capsys, debian_root):
    target = tmp_path / "missing" / "evidence.json"
    assert main(["collect", "--root", str(debian_root), "--output", str(target)]) == 2
    assert "does not exist" in one_line(capsys.readouterr().err)
    assert not target.parent.exists()
    assert main(["collect", "--root", str(debian_root), "--output", str(tmp_path)]) == 2
    assert one_line(capsys.readouterr().err).endswith("is a directory")


def test_output_is_written_atomically_and_privately(tmp_path, capsys, debian_root, assert_valid):
    target = tmp_path / "evidence.json"
    target.write_text("old content")
    target.chmod(0o644)
    assert main(["collect", "--root", str(debian_root), "-o", str(target)]) == 0
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert_valid(json.loads(target.read_text()))
    assert sorted(os.listdir(tmp_path)) == ["evidence.json"]  # no temporary file left


def test_a_failed_write_leaves_no_half_written_file(tmp_path, capsys, debian_root, monkeypatch):
    target = tmp_path / "evidence.json"
    target.write_text("previous evidence")

    def full_disk(descriptor, *args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    assert main(["collect", "--root", str(debian_root), "-o", str(target)]) == 1
    assert one_line(capsys.readouterr().err) == (
        f"mamori-agent: cannot write {target}: no space left on device"
    )
    assert target.read_text() == "previous evidence"
    assert sorted(os.listdir(tmp_path)) == ["evidence.json"]


def test_collect_prints_json_to_stdout(debian_root, assert_valid):
    result = run("collect", "--root", str(debian_root))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    evidence = assert_valid(json.loads(result.stdout))
    assert evidence["host"]["hostname"] == "bank-web-01"


def test_collect_survives_a_closed_stdout(debian_root):
    process = subprocess.Popen(
        [sys.executable, "-m", "mamori_agent", "collect", "--root", str(debian_root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=agent_environment(),
    )
    process.stdout.read(10)
    process.stdout.close()
    _out, err = process.communicate(timeout=60)
    assert process.returncode in (0, 1)
    assert b"Traceback" not in err


def test_an_internal_error_is_one_line_not_a_traceback(capsys, monkeypatch, debian_root):
    def explode(root):
        raise ValueError("unexpected")

    monkeypatch.setattr("mamori_agent.cli.collect", explode)
    assert main(["collect", "--root", str(debian_root)]) == 1
    assert one_line(capsys.readouterr().err) == (
        "mamori-agent: internal error: ValueError: unexpected"
    )


def test_a_crashing_collector_only_loses_its_section(monkeypatch, debian_root, assert_valid):
    from mamori_agent import collect as collect_module

    def explode(section):
        raise KeyError("boom")

    sections = tuple(
        (name, explode if name == "ssh" else function) for name, function in collect_module.SECTIONS
    )
    monkeypatch.setattr(collect_module, "SECTIONS", sections)
    evidence = assert_valid(collect_module.collect(str(debian_root)))
    assert evidence["ssh"] == {
        "status": "unknown",
        "errors": [{"path": None, "reason": "internal error: KeyError: 'boom'"}],
    }
    assert evidence["accounts"]["users"]


def test_hostile_strings_are_made_safe(tmp_path, assert_valid):
    from mamori_agent.collect import MAX_STRING_CHARS, clean, collect

    assert clean("a\x00b") == "a\ufffdb"
    assert clean("x" * 5000) == "x" * (MAX_STRING_CHARS - 1) + "…"
    assert clean("bad\udcffname") == "bad\ufffdname"
    root = tmp_path / "root"
    (root / "etc/sudoers.d").mkdir(parents=True)
    (root / "etc/hostname").write_bytes(b"host\xff\x00name" + b"a" * 5000 + b"\n")
    (root / "etc/sudoers").write_text("@includedir /etc/sudoers.d\n")
    with open(os.fsencode(root / "etc/sudoers.d") + b"/bad\xffname", "w") as handle:
        handle.write("alice ALL=(ALL) NOPASSWD: ALL\n")
    evidence = assert_valid(collect(str(root)))
    hostname = evidence["host"]["hostname"]
    assert "\x00" not in hostname
    assert len(hostname) == MAX_STRING_CHARS
    assert evidence["privileges"]["sudoers_files"] == [
        "/etc/sudoers",
        "/etc/sudoers.d/bad\ufffdname",
    ]
    json.dumps(evidence, ensure_ascii=False).encode("utf-8")  # valid UTF-8 throughout
