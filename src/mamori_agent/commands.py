"""The fixed, read-only system commands the live mode may run — and nothing else.

This is the only module of the agent that can start a process. The commands are named by a key,
run by absolute path (the first of a few standard locations that exists on the host), without a
shell, with a clean environment, no input and a timeout. A root-mode collection never gets a
:class:`CommandRunner`, so nothing under ``--root`` can be executed.
"""

from __future__ import annotations

import os
import subprocess
import time

_LOCATIONS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")
_ENVIRONMENT = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "LANG": "C"}
MAX_OUTPUT_BYTES = 32 * 1024 * 1024

RPM_QUERY_FORMAT = (
    "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n"  # one line each
)

#: key → (program, arguments). Every one of them only reads state.
COMMANDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "nft": ("nft", ("list", "ruleset")),
    "iptables-save": ("iptables-save", ()),
    "ip6tables-save": ("ip6tables-save", ()),
    "systemctl-running": (
        "systemctl",
        ("list-units", "--type=service", "--state=running", "--no-legend", "--plain", "--no-pager"),
    ),
    # Only for a BerkeleyDB rpm database (RHEL 8 and older), which the agent does not parse.
    "rpm-query": ("rpm", ("--query", "--all", "--queryformat", RPM_QUERY_FORMAT)),
}


class CommandResult:
    def __init__(self, command: str, output: str | None, reason: str | None) -> None:
        self.command = command  # what ran, for the evidence's error paths
        self.output = output  # stdout when the command succeeded, else None
        self.reason = reason  # one line when it did not

    @property
    def ok(self) -> bool:
        return self.output is not None


def find_program(name: str) -> str | None:
    for directory in _LOCATIONS:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


class CommandRunner:
    """Runs the fixed commands within one time budget for the whole collection."""

    def __init__(self, *, budget_seconds: float = 6.0, timeout_seconds: float = 3.0) -> None:
        self.deadline = time.monotonic() + budget_seconds
        self.timeout_seconds = timeout_seconds

    def available(self, key: str) -> bool:
        return find_program(COMMANDS[key][0]) is not None

    def run(self, key: str) -> CommandResult:
        program_name, arguments = COMMANDS[key]
        program = find_program(program_name)
        display = " ".join((program_name, *arguments))
        if program is None:
            return CommandResult(display, None, "not installed")
        display = " ".join((program, *arguments))
        timeout = min(self.timeout_seconds, self.deadline - time.monotonic())
        if timeout <= 0:
            return CommandResult(display, None, "not run: the time budget for commands is spent")
        try:
            completed = subprocess.run(  # noqa: S603 - fixed argv, absolute path, no shell
                (program, *arguments),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                env=_ENVIRONMENT,
                close_fds=True,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return CommandResult(display, None, f"timed out after {timeout:.1f} s")
        except OSError as error:
            return CommandResult(display, None, (error.strerror or str(error)).lower())
        stderr = completed.stderr.decode("utf-8", errors="replace").strip()
        if completed.returncode != 0:
            first_line = stderr.splitlines()[0] if stderr else ""
            lowered = stderr.lower()
            if "permission denied" in lowered or "operation not permitted" in lowered:
                reason = "permission denied"
                if first_line:
                    reason += ": " + first_line
            else:
                reason = f"exit status {completed.returncode}"
                if first_line:
                    reason += ": " + first_line
            return CommandResult(display, None, reason[:300])
        stdout = completed.stdout[:MAX_OUTPUT_BYTES]
        return CommandResult(display, stdout.decode("utf-8", errors="replace"), None)
