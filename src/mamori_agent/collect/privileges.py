"""The ``privileges`` section: sudoers rules, who can become root, NOPASSWD grants."""

from __future__ import annotations

import re

from ..context import Section
from .accounts import GROUP, parse_group

SUDOERS = "/etc/sudoers"
MAX_INCLUDE_DEPTH = 16
MAX_ALIAS_DEPTH = 32
ADMIN_GROUPS = ("sudo", "wheel", "admin")
_ALIAS_KINDS = ("User_Alias", "Runas_Alias", "Host_Alias", "Cmnd_Alias", "Cmd_Alias")
_TAG = re.compile(r"^([A-Z_]+):\s*")
_OPTION = re.compile(r"^(ROLE|TYPE|CWD|CHROOT|TIMEOUT|NOTBEFORE|NOTAFTER)=\S+\s*")
_INCLUDE = re.compile(r"^[#@](include|includedir)\s+(.+)$")
_UID_COMMENT = re.compile(r"^#-?\d")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines with backslash continuations joined, comments removed, numbered by their first
    physical line."""
    lines, buffer, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not buffer:
            start = number
        if raw.endswith("\\"):
            buffer += raw[:-1] + " "
            continue
        buffer += raw
        lines.append((start, buffer))
        buffer = ""
    if buffer:
        lines.append((start, buffer))
    cleaned = []
    for number, line in lines:
        stripped = line.strip()
        if _INCLUDE.match(stripped):
            cleaned.append((number, stripped))
            continue
        out = []
        for index, char in enumerate(line):
            # "#" starts a comment, except "#123" (a uid) where a name is expected
            if char == "#" and not _UID_COMMENT.match(line[index:]):
                break
            out.append(char)
        text_line = "".join(out).strip()
        if text_line:
            cleaned.append((number, text_line))
    return cleaned


def _split_top(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside parentheses and not escaped with a backslash."""
    parts, depth, current, index = [], 0, [], 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            current.append(text[index : index + 2])
            index += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        if char == separator and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current).strip())
    return [part for part in parts if part]


class _Sudoers:
    def __init__(self) -> None:
        self.files: list[str] = []
        self.rules: list[dict] = []
        self.nopasswd: list[dict] = []
        self.aliases: dict[str, dict[str, list[str]]] = {kind: {} for kind in _ALIAS_KINDS}


def _parse_commands(text: str) -> tuple[str | None, list[tuple[str, bool]]]:
    """(first runas spec, [(command, nopasswd)]) of a ``Cmnd_Spec_List``."""
    runas = None
    nopasswd = False
    commands = []
    for item in _split_top(text, ","):
        item = item.strip()
        match = re.match(r"^\(([^)]*)\)\s*", item)
        if match:
            if runas is None:
                runas = " ".join(match.group(1).split())
            item = item[match.end() :]
        while True:
            option = _OPTION.match(item)
            if option:
                item = item[option.end() :]
                continue
            tag = _TAG.match(item)
            if tag:
                if tag.group(1) == "NOPASSWD":
                    nopasswd = True
                elif tag.group(1) == "PASSWD":
                    nopasswd = False
                item = item[tag.end() :]
                continue
            break
        command = " ".join(item.replace("\\,", ",").split())
        if command:
            commands.append((command, nopasswd))
    return runas, commands


def _user_spec(state: _Sudoers, line: str, path: str, number: int) -> bool:
    """Parses a user specification; False when the line is not one."""
    head, found, rest = line.partition("=")
    if not found:
        return False
    words = re.sub(r"\s*,\s*", ",", head.strip()).split()
    if len(words) < 2:
        return False
    principals = ",".join(words[:-1]).split(",")
    # ": Host_List = Cmnd_Spec_List" may follow; tags end with ":" too, so require "=" after.
    segments = re.split(r"\s:\s*(?=[\w,!%+.-]+\s*=)", rest)
    host_groups = [(words[-1].split(","), segments[0])]
    for segment in segments[1:]:
        hosts, _, commands = segment.partition("=")
        host_groups.append((re.sub(r"\s*,\s*", ",", hosts.strip()).split(","), commands))
    for hosts, commands_text in host_groups:
        runas, commands = _parse_commands(commands_text)
        if not commands:
            continue
        for principal in principals:
            rule = {
                "principal": principal,
                "hosts": hosts,
                "runas": runas,
                "commands": [command for command, _ in commands],
                "nopasswd": any(flag for _, flag in commands),
                "file": path,
                "line": number,
            }
            state.rules.append(rule)
            if rule["nopasswd"]:
                state.nopasswd.append(
                    {
                        "principal": principal,
                        "file": path,
                        "line": number,
                        "commands": [command for command, flag in commands if flag],
                    }
                )
    return True


def _defaults(state: _Sudoers, line: str, path: str, number: int) -> None:
    match = re.match(r"^Defaults([:@>!]\S+)?\s+(.*)$", line)
    if not match:
        return
    binding, values = match.group(1), match.group(2)
    settings = [value.strip() for value in _split_top(values, ",")]
    if "!authenticate" in settings:
        principal = binding[1:] if binding and binding[0] == ":" else "ALL"
        state.nopasswd.append(
            {"principal": principal, "file": path, "line": number, "commands": ["ALL"]}
        )


def _read(section: Section, path: str, state: _Sudoers, depth: int) -> bool:
    text = section.read_text(path, limit=4 * 1024 * 1024)
    if text is None:
        return False
    state.files.append(path)
    directory = path.rsplit("/", 1)[0] or "/"
    for number, line in _logical_lines(text):
        include = _INCLUDE.match(line)
        if include:
            if depth >= MAX_INCLUDE_DEPTH:
                section.error(path, f"line {number}: includes nested too deeply")
                continue
            target = include.group(2).strip().strip('"')
            if not target.startswith("/"):
                target = f"{directory}/{target}"
            if include.group(1) == "include":
                _read(section, target, state, depth + 1)
            else:
                for name in section.list_dir(target):
                    # sudo skips names ending in "~" or containing "." (editor and package
                    # manager leftovers)
                    if name.endswith("~") or "." in name:
                        continue
                    _read(section, f"{target}/{name}", state, depth + 1)
            continue
        first = line.split(None, 1)[0]
        if first.startswith("Defaults"):
            _defaults(state, line, path, number)
        elif first in _ALIAS_KINDS:
            kind = "Cmnd_Alias" if first == "Cmd_Alias" else first
            for definition in _split_top(line[len(first) :], ":"):
                name, found, members = definition.partition("=")
                if found:
                    state.aliases[kind][name.strip()] = _split_top(members, ",")
        elif not _user_spec(state, line, path, number):
            section.error(path, f"line {number}: not understood")
    return True


class AliasTooDeep(ValueError):
    pass


def _expand(name: str, aliases: dict[str, list[str]], seen: frozenset = frozenset()) -> list[str]:
    if name in aliases and name not in seen:
        if len(seen) >= MAX_ALIAS_DEPTH:
            raise AliasTooDeep(name)
        expanded = []
        for member in aliases[name]:
            expanded.extend(_expand(member.strip(), aliases, seen | {name}))
        return expanded
    return [name]


def _grants_root(rule: dict, aliases: dict[str, dict[str, list[str]]]) -> bool:
    commands = []
    for command in rule["commands"]:
        commands.extend(_expand(command, aliases["Cmnd_Alias"]))
    if "ALL" not in commands:
        return False
    runas = rule["runas"]
    if runas is None:
        return True  # the default runas user is root
    users = runas.split(":", 1)[0]
    if not users.strip():
        return False  # "(:group)" only changes the group
    members = []
    for member in users.split(","):
        members.extend(_expand(member.strip(), aliases["Runas_Alias"]))
    return any(member in ("ALL", "root", "#0") for member in members)


def _administrators(
    section: Section, state: _Sudoers, users: list[dict], groups: dict[str, dict]
) -> list[str]:
    names = {user["name"] for user in users if user["uid"] == 0}
    by_uid = {user["uid"]: user["name"] for user in users}
    gid_names = {info["gid"]: name for name, info in groups.items()}

    def group_members(group: str) -> set[str]:
        info = groups.get(group)
        if info is None:
            return set()
        members = set(info["members"])
        members.update(user["name"] for user in users if user["gid"] == info["gid"])
        return members

    for rule in state.rules:
        try:
            if not _grants_root(rule, state.aliases):
                continue
            principals = _expand(rule["principal"], state.aliases["User_Alias"])
        except AliasTooDeep as error:
            section.error(rule["file"], f"line {rule['line']}: aliases nested too deeply ({error})")
            continue
        for principal in principals:
            if principal.startswith("!") or principal.startswith(("+", "%:")):
                continue
            if principal == "ALL":
                names.update(user["name"] for user in users)
            elif principal.startswith("%#") and principal[2:].isdigit():
                names.update(group_members(gid_names.get(int(principal[2:]), "")))
            elif principal.startswith("%"):
                names.update(group_members(principal[1:]))
            elif principal.startswith("#") and principal[1:].isdigit():
                if int(principal[1:]) in by_uid:
                    names.add(by_uid[int(principal[1:])])
            else:
                names.add(principal)
    return sorted(names)


def collect_privileges(section: Section) -> dict:
    users = section.ctx.facts.get("users")
    errors_before = len(section.errors)
    group_text = section.read_text(GROUP)
    if group_text is not None:
        groups: dict[str, dict] | None = parse_group(group_text)
    elif len(section.errors) == errors_before:
        groups = {}  # no /etc/group at all: no groups to expand
    else:
        groups = None  # unreadable: administrators cannot be listed
    admin_groups = None
    if groups is not None and users is not None:
        admin_groups = {}
        for name in ADMIN_GROUPS:
            if name in groups:
                members = set(groups[name]["members"])
                members.update(u["name"] for u in users if u["gid"] == groups[name]["gid"])
                admin_groups[name] = sorted(members)
    state = _Sudoers()
    kind = section.kind(SUDOERS)
    if kind is not None and not _read(section, SUDOERS, state, 0):
        section.unknown(SUDOERS, "sudoers could not be read")
        return section.finish(
            {
                "sudoers_files": state.files,
                "rules": None,
                "administrators": None,
                "nopasswd": None,
                "admin_groups": admin_groups,
            }
        )
    administrators = (
        _administrators(section, state, users, groups)
        if users is not None and groups is not None
        else None
    )
    return section.finish(
        {
            "sudoers_files": state.files,
            "rules": state.rules,
            "administrators": administrators,
            "nopasswd": state.nopasswd,
            "admin_groups": admin_groups,
        }
    )
