"""The ``ssh`` section: the OpenSSH server's configuration, ``Include``s followed."""

from __future__ import annotations

import re

from ..context import Section
from ..rootfs import FileError
from .util import unquote

SSHD_CONFIG = "/etc/ssh/sshd_config"
MAX_INCLUDE_DEPTH = 16  # sshd's own SERVCONF_MAX_DEPTH
_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9]*)\s*(?:=\s*|\s+)(.*?)\s*$")

# Keywords sshd accumulates over several lines instead of keeping the first.
_ACCUMULATING = frozenset(
    (
        "port",
        "listenaddress",
        "hostkey",
        "hostcertificate",
        "acceptenv",
        "allowusers",
        "denyusers",
        "allowgroups",
        "denygroups",
        "subsystem",
        "setenv",
        "permitlisten",
        "permitopen",
    )
)
# Keywords whose patterns are whitespace-separated on one line.
_PATTERN_LISTS = frozenset(
    ("acceptenv", "allowusers", "denyusers", "allowgroups", "denygroups", "setenv")
)
_INTEGERS = frozenset(("maxauthtries", "maxsessions", "clientalivecountmax"))
# Keywords whose value is one of sshd's words (yes/no/prohibit-password/...): sshd reads them
# case-insensitively, we lower-case them so that comparisons are simple.
_ENUMERATED = frozenset(
    (
        "permitrootlogin",
        "passwordauthentication",
        "kbdinteractiveauthentication",
        "challengeresponseauthentication",
        "permitemptypasswords",
        "pubkeyauthentication",
        "hostbasedauthentication",
        "ignorerhosts",
        "gssapiauthentication",
        "kerberosauthentication",
        "x11forwarding",
        "usepam",
        "allowtcpforwarding",
        "allowagentforwarding",
        "allowstreamlocalforwarding",
        "permittunnel",
        "permittty",
        "permituserenvironment",
        "strictmodes",
        "usedns",
        "compression",
        "gatewayports",
        "tcpkeepalive",
        "printmotd",
        "loglevel",
        "disableforwarding",
    )
)


class _State:
    def __init__(self) -> None:
        self.files: list[str] = []
        self.settings: dict = {}
        self.matches: list[dict] = []
        self.in_match = False


def _store(section: Section, target: dict, key: str, value: str, path: str, line: int) -> None:
    if key in _ENUMERATED:
        value = value.lower()
    if key == "port":
        if not value.isdigit() or not 0 < int(value) <= 65535:
            section.error(path, f"line {line}: invalid Port {value[:40]!r}")
            return
        target.setdefault("port", []).append(int(value))
    elif key in _PATTERN_LISTS:
        target.setdefault(key, []).extend(value.split())
    elif key in _ACCUMULATING:
        target.setdefault(key, []).append(value)
    elif key in target:
        return  # the first value wins, as sshd does
    elif key in _INTEGERS:
        if not value.isdigit():
            section.error(path, f"line {line}: invalid {key} {value[:40]!r}")
            return
        target[key] = int(value)
    else:
        target[key] = value


def _read(section: Section, path: str, state: _State, depth: int) -> None:
    text = section.read_text(path, limit=4 * 1024 * 1024)
    if text is None:
        return
    state.files.append(path)
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(raw)
        if match is None:
            section.error(path, f"line {number}: not a keyword and value")
            continue
        key, value = match.group(1).lower(), unquote(match.group(2))
        if key == "include":
            if depth >= MAX_INCLUDE_DEPTH:
                section.error(path, f"line {number}: includes nested too deeply")
                continue
            for pattern in value.split():
                pattern = unquote(pattern)
                if not pattern.startswith("/"):
                    pattern = "/etc/ssh/" + pattern
                for included in section.glob(pattern):
                    _read(section, included, state, depth + 1)
            continue
        if key == "match":
            # Match blocks run until the next Match, across Include boundaries, as in sshd.
            state.in_match = True
            state.matches.append({"criteria": value, "file": path, "line": number, "settings": {}})
            continue
        if state.in_match:
            _store(section, state.matches[-1]["settings"], key, value, path, number)
        else:
            _store(section, state.settings, key, value, path, number)


def collect_ssh(section: Section) -> dict:
    binary = any(section.exists(path) for path in ("/usr/sbin/sshd", "/usr/bin/sshd"))
    state = _State()
    try:
        kind = section.fs.kind(SSHD_CONFIG)
    except FileError as error:  # e.g. a link leaving the root: we cannot tell
        section.unknown(error.path, error.reason)
        return section.finish(
            {
                "installed": True if binary else None,
                "files": [],
                "settings": None,
                "match_blocks": None,
                "matches": None,
            }
        )
    if kind == "file":
        _read(section, SSHD_CONFIG, state, 0)
    elif kind is not None:
        section.error(SSHD_CONFIG, "not a regular file")
    installed = binary or kind is not None
    if installed and SSHD_CONFIG not in state.files:
        section.unknown(SSHD_CONFIG, "the server configuration could not be read")
        return section.finish(
            {
                "installed": True,
                "files": [],
                "settings": None,
                "match_blocks": None,
                "matches": None,
            }
        )
    return section.finish(
        {
            "installed": installed,
            "files": state.files,
            "settings": state.settings,
            "match_blocks": len(state.matches),
            "matches": state.matches,
        }
    )
