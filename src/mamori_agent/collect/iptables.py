"""iptables: ``iptables-save`` output (live, or the same format saved in rules.v4 and
/etc/sysconfig/iptables), and ufw's rule tuples."""

from __future__ import annotations

import shlex

from .netfilter import Allowed, normalise_source, port_value

MAX_JUMP_DEPTH = 64  # far deeper than real rulesets; keeps hostile ones from recursing
_POLICIES = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject"}
_RETURN_TRAFFIC = frozenset(("ESTABLISHED", "RELATED"))
_IGNORED_OPTIONS = frozenset(("-m", "--match", "-c", "--comment", "--set-counters"))


class FilterTable:
    def __init__(self) -> None:
        self.policies: dict[str, str] = {}
        self.rules: dict[str, list[list[str]]] = {}


def parse_save(text: str) -> tuple[FilterTable | None, list[str]]:
    """The ``*filter`` table of iptables-save output (``None`` when there is none)."""
    table: FilterTable | None = None
    current = None
    problems = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[") and "]" in line:  # iptables-save --counters: "[0:0] -A ..."
            line = line.split("]", 1)[1].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            current = line[1:]
            if current == "filter" and table is None:
                table = FilterTable()
            continue
        if current != "filter" or table is None:
            continue
        if line == "COMMIT":
            current = None
        elif line.startswith(":"):
            fields = line[1:].split()
            if fields:
                table.policies[fields[0]] = fields[1] if len(fields) > 1 else "-"
                table.rules.setdefault(fields[0], [])
        elif line.startswith(("-A ", "-I ")):
            try:
                words = shlex.split(line)
            except ValueError:
                problems.append(f"line {number}: unbalanced quotes")
                continue
            if len(words) >= 2:
                chain = table.rules.setdefault(words[1], [])
                if words[0] == "-I":
                    chain.insert(0, words[2:])
                else:
                    chain.append(words[2:])
    return table, problems


def _ports(text: str, services: dict[str, int]) -> list[int | str]:
    ports = []
    for part in text.split(","):
        port = port_value(part, services)
        if port is not None:
            ports.append(port)
    return ports


def _rule(
    words: list[str],
    table: FilterTable,
    services: dict[str, int],
    inherited: tuple,
    allowed: Allowed,
    visited: set[str],
) -> str | None:
    protocol, ports, source = inherited
    conditions = False
    unknown = False
    target = None
    negated = False
    index = 0
    while index < len(words):
        word = words[index]
        value = words[index + 1] if index + 1 < len(words) else ""
        if word == "!":
            # A negated match: we keep the rule but do not narrow it (over-reporting an open
            # port is safer than hiding one).
            negated = True
            conditions = True
            index += 1
            continue
        if word in ("-i", "--in-interface"):
            if value == "lo" and not negated:
                return None
            conditions = True
        elif word in ("-p", "--protocol"):
            lowered = value.lower()
            if lowered in ("icmp", "ipv6-icmp", "icmpv6", "1", "58") and not negated:
                return None
            protocol = lowered if lowered in ("tcp", "udp", "sctp") and not negated else None
            if protocol is None and lowered not in ("all", "0"):
                unknown = True
            conditions = True
        elif word in ("--dport", "--destination-port", "--dports", "--destination-ports"):
            if negated:  # every port but some: listed as all ports
                ports = ["1-65535"]
            else:
                ports = _ports(value, services)
                if not ports:
                    unknown = True
            conditions = True
        elif word in ("-s", "--source", "--src"):
            source = "any" if negated else normalise_source(value)
            conditions = True
        elif word in ("--state", "--ctstate"):
            states = set(value.upper().split(","))
            if states <= _RETURN_TRAFFIC and not negated:
                return None
            conditions = True
        elif word in ("-j", "--jump", "-g", "--goto"):
            target = value
            index += 2
            break
        elif word in _IGNORED_OPTIONS:
            pass
        elif word.startswith("-"):
            if word not in ("--icmp-type", "--icmpv6-type"):
                unknown = True
            conditions = True
        else:
            index += 1
            continue
        negated = False
        index += 2
    if target == "ACCEPT":
        if ports is None and unknown:
            return None
        for port in ports if ports is not None else ["1-65535"]:
            allowed.add(port, protocol or "any", source or "any")
    elif target in table.rules and target not in visited and len(visited) <= MAX_JUMP_DEPTH:
        _chain(target, table, services, (protocol, ports, source), allowed, visited | {target})
    if not conditions and target in ("DROP", "REJECT"):
        return _POLICIES[target]
    return None


def _chain(
    name: str,
    table: FilterTable,
    services: dict[str, int],
    inherited: tuple,
    allowed: Allowed,
    visited: set[str],
) -> str | None:
    last = None
    for words in table.rules.get(name, []):
        last = _rule(words, table, services, inherited, allowed, visited)
    return last


def input_effect(table: FilterTable, services: dict[str, int]) -> tuple[str | None, Allowed]:
    """The INPUT chain's effective default (policy, or a final unconditional DROP/REJECT) and
    the ports it accepts."""
    allowed = Allowed()
    final = _chain("INPUT", table, services, (None, None, None), allowed, {"INPUT"})
    default = _POLICIES.get(table.policies.get("INPUT", "ACCEPT"))
    if default == "accept" and final in ("drop", "reject"):
        default = final
    return default, allowed


def has_rules(table: FilterTable) -> bool:
    """Whether the filter table filters anything (a non-ACCEPT policy or any rule)."""
    if any(policy not in ("ACCEPT", "-") for policy in table.policies.values()):
        return True
    return any(table.rules.values())


def parse_ufw_tuples(text: str, services: dict[str, int], allowed: Allowed) -> None:
    """ufw's ``### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in`` comments in user.rules."""
    for line in text.splitlines():
        if not line.startswith("### tuple ###"):
            continue
        fields = line[len("### tuple ###") :].split()
        if len(fields) < 7 or fields[-1] != "in":
            continue
        action = fields[0].split("_", 1)[0]
        if action not in ("allow", "limit"):
            continue
        protocol, destination_port, _destination, _source_port, source = fields[1:6]
        protocols = ["tcp", "udp"] if protocol == "any" and destination_port != "any" else None
        if destination_port == "any":
            ports: list[int | str] = ["1-65535"]
        else:
            ports = _ports(destination_port, services)
        for port in ports:
            for each in protocols or [protocol if protocol in ("tcp", "udp") else "any"]:
                allowed.add(port, each, normalise_source(source))
