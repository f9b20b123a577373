"""nftables: parse a ruleset (``nft list ruleset`` output or an ``/etc/nftables.conf`` script)
and work out its effect on inbound traffic."""

from __future__ import annotations

import re
from collections.abc import Callable

from .netfilter import Allowed, covers, normalise_source, port_value, strictest

FAMILIES = frozenset(("ip", "ip6", "inet", "arp", "bridge", "netdev"))
_TOKEN = re.compile(r'"[^"\n]*"|\n|[{};,]|[^\s{};,"]+')
_TABLE_BLOCKS = frozenset(
    ("chain", "set", "map", "flowtable", "counter", "quota", "limit", "ct", "secmark", "synproxy")
)
_VERDICTS = frozenset(("accept", "drop", "reject", "jump", "goto", "return", "continue", "queue"))
_PORT_PROTOCOLS = frozenset(("tcp", "udp", "sctp", "dccp", "th"))
_ICMP = frozenset(("icmp", "icmpv6", "ipv6-icmp", "1", "58"))
_LOG_OPTIONS = frozenset(("prefix", "level", "group", "snaplen", "queue-threshold", "flags"))
_RETURN_TRAFFIC = frozenset(("established", "related"))
MAX_INCLUDE_DEPTH = 16
MAX_JUMP_DEPTH = 16  # the kernel's own jump stack (NFT_JUMP_STACK_SIZE)


class Node:
    __slots__ = ("children", "line", "words")

    def __init__(self, words: list[str], children: list[Node] | None, line: int) -> None:
        self.words = words
        self.children = children
        self.line = line


def _strip_comments(text: str) -> str:
    text = text.replace("\\\n", " ")
    out = []
    for line in text.split("\n"):
        quoted = False
        for index, char in enumerate(line):
            if char == '"':
                quoted = not quoted
            elif char == "#" and not quoted:
                line = line[:index]
                break
        out.append(line)
    return "\n".join(out)


def parse(text: str) -> list[Node]:
    """Statements and blocks. A ``{`` opens a block only where nftables has blocks (a table at
    the top, chains and sets in a table); elsewhere it is an anonymous set inside a rule."""
    root: list[Node] = []
    stack: list[tuple[list[Node], str]] = [(root, "top")]
    words: list[str] = []
    set_depth = 0
    line = 1
    start_line = 1

    def flush() -> None:
        nonlocal words
        if words:
            stack[-1][0].append(Node(words, None, start_line))
        words = []

    for word in _TOKEN.findall(_strip_comments(text)):
        if word == "\n":
            line += 1
            if set_depth == 0:
                flush()
            continue
        if not words:
            start_line = line
        if word == ";":
            if set_depth == 0:
                flush()
        elif word == "{":
            level = stack[-1][1]
            opens_block = (
                set_depth == 0
                and bool(words)
                and (
                    (level == "top" and (words[0] == "table" or _is_add_block(words)))
                    or (level == "table" and words[0] in _TABLE_BLOCKS)
                )
            )
            if opens_block:
                node = Node(words, [], start_line)
                stack[-1][0].append(node)
                kind = "table" if words[0] == "table" or words[1:2] == ["table"] else "inner"
                stack.append((node.children, kind))  # type: ignore[arg-type]
                words = []
            else:
                set_depth += 1
                words.append(word)
        elif word == "}":
            if set_depth > 0:
                set_depth -= 1
                words.append(word)
            else:
                flush()
                if len(stack) > 1:
                    stack.pop()
        else:
            words.append(word)
    flush()
    return root


def _is_add_block(words: list[str]) -> bool:
    return (
        len(words) >= 2 and words[0] in ("add", "create") and words[1] in _TABLE_BLOCKS | {"table"}
    )


class Chain:
    def __init__(self) -> None:
        self.hook: str | None = None
        self.type: str | None = None
        self.policy: str | None = None
        self.rules: list[list[str]] = []


class Table:
    def __init__(self) -> None:
        self.chains: dict[str, Chain] = {}
        self.sets: dict[str, list[str]] = {}


class Ruleset:
    def __init__(self) -> None:
        self.tables: dict[tuple[str, str], Table] = {}
        self.defines: dict[str, list[str]] = {}

    def table(self, family: str, name: str) -> Table:
        return self.tables.setdefault((family, name), Table())


def _family_and_names(words: list[str], count: int) -> tuple[str, list[str]] | None:
    """``[family] name...``: nftables defaults the family to ``ip``."""
    if words and words[0] in FAMILIES:
        family, names = words[0], words[1 : 1 + count]
    else:
        family, names = "ip", words[:count]
    if len(names) < count:
        return None
    return family, names


def _set_elements(words: list[str]) -> list[str]:
    """``elements = { 22, 80 }`` → ``["22", "80"]``; a map's ``{ 22 : accept }`` → ``["22 :
    accept"]``."""
    elements, current = [], []
    for word in words:
        if word in ("{", "}", "=", "elements"):
            continue
        if word == ",":
            if current:
                elements.append(" ".join(current))
            current = []
        else:
            current.append(word.strip('"'))
    if current:
        elements.append(" ".join(current))
    return elements


class Loader:
    """Builds a :class:`Ruleset` from parsed nodes, following ``include`` through ``read``
    (which returns the texts of the matching files)."""

    def __init__(self, read: Callable[[str], list[str]] | None = None) -> None:
        self.ruleset = Ruleset()
        self.read = read
        self.problems: list[str] = []

    def load_text(self, text: str, depth: int = 0) -> None:
        self._top(parse(text), depth)

    def _top(self, nodes: list[Node], depth: int) -> None:
        for node in nodes:
            words = node.words
            head = words[0]
            if head == "table" and node.children is not None:
                found = _family_and_names(words[1:], 1)
                if found:
                    self._table_body(self.ruleset.table(found[0], found[1][0]), node.children)
            elif head == "flush" and words[1:2] == ["ruleset"]:
                self.ruleset.tables.clear()
            elif head == "include" and len(words) > 1:
                if self.read is None:
                    continue
                if depth >= MAX_INCLUDE_DEPTH:
                    self.problems.append("includes nested too deeply")
                    continue
                for included in self.read(words[1].strip('"')):
                    self.load_text(included, depth + 1)
            elif head == "define" and len(words) >= 3 and words[2] == "=":
                self.ruleset.defines[words[1]] = words[3:]
            elif head in ("add", "create", "insert") and len(words) >= 2:
                self._command(node, head)

    def _command(self, node: Node, verb: str) -> None:
        words, kind = node.words, node.words[1]
        if kind == "table":
            found = _family_and_names(words[2:], 1)
            if found:
                table = self.ruleset.table(found[0], found[1][0])
                if node.children is not None:
                    self._table_body(table, node.children)
        elif kind == "chain":
            found = _family_and_names(words[2:], 2)
            if found:
                family, (table_name, chain_name) = found
                chain = self.ruleset.table(family, table_name).chains.setdefault(
                    chain_name, Chain()
                )
                if node.children is not None:
                    self._chain_body(chain, node.children)
        elif kind == "rule":
            found = _family_and_names(words[2:], 3)
            if found:
                family, (table_name, chain_name, *_) = found
                offset = 2 + (1 if words[2] in FAMILIES else 0) + 2
                rule = words[offset:]
                if rule[:1] in (["position"], ["handle"], ["index"]):
                    rule = rule[2:]
                chain = self.ruleset.table(family, table_name).chains.setdefault(
                    chain_name, Chain()
                )
                if verb == "insert":
                    chain.rules.insert(0, rule)
                else:
                    chain.rules.append(rule)
        elif kind in ("set", "map"):
            found = _family_and_names(words[2:], 2)
            if found and node.children is not None:
                family, (table_name, set_name) = found
                self._set_body(self.ruleset.table(family, table_name), set_name, node.children)
        elif kind == "element":
            found = _family_and_names(words[2:], 2)
            if found:
                family, (table_name, set_name) = found
                offset = 2 + (1 if words[2] in FAMILIES else 0) + 2
                table = self.ruleset.table(family, table_name)
                table.sets.setdefault(set_name, []).extend(_set_elements(words[offset:]))

    def _table_body(self, table: Table, nodes: list[Node]) -> None:
        for node in nodes:
            words = node.words
            if words[0] == "chain" and len(words) >= 2:
                chain = table.chains.setdefault(words[1], Chain())
                self._chain_body(chain, node.children or [])
            elif words[0] in ("set", "map") and len(words) >= 2:
                self._set_body(table, words[1], node.children or [])

    def _chain_body(self, chain: Chain, nodes: list[Node]) -> None:
        for node in nodes:
            words = node.words
            if words[0] == "type" and "hook" in words:
                chain.type = words[1] if len(words) > 1 else None
                position = words.index("hook")
                chain.hook = words[position + 1] if position + 1 < len(words) else None
            elif words[0] == "policy" and len(words) > 1:
                chain.policy = words[1]
            elif words[0] in ("comment", "devices", "device", "priority"):
                continue
            else:
                chain.rules.append(words)

    def _set_body(self, table: Table, name: str, nodes: list[Node]) -> None:
        elements = table.sets.setdefault(name, [])
        for node in nodes:
            if node.words[0] == "elements":
                elements.extend(_set_elements(node.words[1:]))


class _Context:
    """What the rules leading to a chain already required (a jump inherits it)."""

    def __init__(
        self,
        protocols: list[str] | None = None,
        ports: list[int | str] | None = None,
        sources: list[str] | None = None,
    ) -> None:
        self.protocols = protocols
        self.ports = ports
        self.sources = sources


class Analysis:
    def __init__(self, ruleset: Ruleset, services: dict[str, int]) -> None:
        self.ruleset = ruleset
        self.services = services

    def _map_elements(self, words: list[str], index: int, table: Table) -> tuple[str, int]:
        """The elements of a verdict map ``{ key : verdict, ... }`` (or ``@map``) as text."""
        if index < len(words) and words[index] == "{":
            end = index + 1
            while end < len(words) and words[end] != "}":
                end += 1
            return " ".join(words[index + 1 : end]), end + 1
        if index < len(words) and words[index].startswith("@"):
            return ", ".join(table.sets.get(words[index][1:], [])), index + 1
        return "", index + 1

    def _values(self, words: list[str], index: int, table: Table) -> tuple[list[str], int]:
        """The value at ``words[index]``: a word, an anonymous set ``{ a, b }`` or ``@set``."""
        if index >= len(words):
            return [], index
        word = words[index]
        if word in ("!=", "=="):
            values, end = self._values(words, index + 1, table)
            return (["!"] if word == "!=" else values), end
        if word == "{":
            end = index + 1
            values = []
            while end < len(words) and words[end] != "}":
                if words[end] != ",":
                    values.append(words[end].strip('"'))
                end += 1
            return values, end + 1
        if word.startswith("@"):
            return list(table.sets.get(word[1:], [])), index + 1
        if word.startswith("$"):
            return _set_elements(self.ruleset.defines.get(word[1:], [])), index + 1
        return [word.strip('"')], index + 1

    def _substitute(self, words: list[str]) -> list[str]:
        out: list[str] = []
        for word in words:
            if word.startswith("$") and word[1:] in self.ruleset.defines:
                out.extend(self.ruleset.defines[word[1:]])
            else:
                out.append(word)
        return out

    def rule(
        self,
        words: list[str],
        table: Table,
        context: _Context,
        allowed: Allowed,
        visited: set[str],
    ) -> str | None:
        """Adds what the rule accepts to ``allowed``; returns its verdict when the rule has no
        condition at all (so a final ``drop`` can be recognised)."""
        words = self._substitute(words)
        if "comment" in words:
            words = words[: words.index("comment")]
        protocols = context.protocols
        ports = context.ports
        sources = context.sources
        conditions = False
        unknown = False
        verdict = None
        target = None
        vmap: tuple[str, str] | None = None
        index = 0
        while index < len(words):
            word = words[index]
            following = words[index + 1] if index + 1 < len(words) else ""
            if word in ("iif", "iifname") or (word == "meta" and following in ("iif", "iifname")):
                if word == "meta":
                    index += 1
                values, index = self._values(words, index + 1, table)
                if "lo" in values:
                    return None  # loopback traffic is not inbound from the network
                conditions = True
            elif word == "ct" and following == "state":
                if words[index + 2 : index + 3] == ["vmap"]:
                    return None  # ct state vmap: return-traffic bookkeeping
                values, index = self._values(words, index + 2, table)
                states = {state for value in values for state in value.split(",")}
                if states and states <= _RETURN_TRAFFIC:
                    return None
                conditions = True
            elif word in ("ip", "ip6") and following == "saddr":
                values, index = self._values(words, index + 2, table)
                sources = ["any"] if "!" in values else [normalise_source(v) for v in values]
                conditions = True
            elif word in _PORT_PROTOCOLS and following == "dport":
                if words[index + 2 : index + 3] == ["vmap"]:
                    elements, index = self._map_elements(words, index + 3, table)
                    vmap = ("port:" + word, elements)
                    continue
                values, index = self._values(words, index + 2, table)
                if word != "th":
                    protocols = [word]
                if "!" in values:  # every port but some: listed as all ports
                    ports = ["1-65535"]
                    conditions = True
                    continue
                ports = [
                    port
                    for port in (port_value(value, self.services) for value in values)
                    if port is not None
                ]
                if not ports:
                    unknown = True
                conditions = True
            elif (word == "meta" and following == "l4proto") or (
                word in ("ip", "ip6") and following in ("protocol", "nexthdr")
            ):
                if words[index + 2 : index + 3] == ["vmap"]:
                    elements, index = self._map_elements(words, index + 3, table)
                    vmap = ("protocol", elements)
                    continue
                values, index = self._values(words, index + 2, table)
                if any(value in _ICMP for value in values) or "!" in values:
                    return None
                protocols = [value for value in values if value in ("tcp", "udp", "sctp")]
                if not protocols:
                    unknown = True
                conditions = True
            elif word in ("icmp", "icmpv6"):
                return None
            elif word == "counter":
                index += 1
                while index + 1 < len(words) and words[index] in ("packets", "bytes"):
                    index += 2
            elif word == "log":
                index += 1
                while index + 1 < len(words) and words[index] in _LOG_OPTIONS:
                    index += 2
            elif word == "limit":
                index += 1
                while index < len(words) and words[index] not in _VERDICTS:
                    index += 1
            elif word in _VERDICTS:
                verdict = word
                target = following if word in ("jump", "goto") else None
                break
            else:
                unknown = True
                conditions = True
                index += 1
        if vmap is not None:
            self._vmap(vmap, table, _Context(protocols, ports, sources), allowed, visited)
            return None
        if verdict == "accept":
            self._accept(protocols, ports, sources, unknown, allowed)
        elif verdict in ("jump", "goto") and target:
            self.chain(target, table, _Context(protocols, ports, sources), allowed, visited)
        if not conditions and not unknown and context.ports is None:
            return verdict
        return None

    def _accept(
        self,
        protocols: list[str] | None,
        ports: list[int | str] | None,
        sources: list[str] | None,
        unknown: bool,
        allowed: Allowed,
    ) -> None:
        if ports is None and unknown:
            return  # accepted under a condition we do not read: not a port we can name
        for protocol in protocols or ["any"]:
            for port in ports if ports is not None else ["1-65535"]:
                for source in sources or ["any"]:
                    allowed.add(port, protocol, source)

    def _vmap(
        self,
        vmap: tuple[str, str],
        table: Table,
        context: _Context,
        allowed: Allowed,
        visited: set[str],
    ) -> None:
        kind, text = vmap
        for element in text.split(","):
            key, _, verdict_text = element.partition(":")
            verdict_words = verdict_text.split()
            if not verdict_words:
                continue
            key = key.strip().strip('"')
            if kind.startswith("port:"):
                protocol = kind.split(":", 1)[1]
                port = port_value(key, self.services)
                if port is None:
                    continue
                protocols = [protocol] if protocol != "th" else context.protocols
                child = _Context(protocols, [port], context.sources)
            else:
                if key in _ICMP or key not in ("tcp", "udp", "sctp"):
                    continue
                child = _Context([key], context.ports, context.sources)
            if verdict_words[0] == "accept":
                self._accept(child.protocols, child.ports, child.sources, False, allowed)
            elif verdict_words[0] in ("jump", "goto") and len(verdict_words) > 1:
                self.chain(verdict_words[1], table, child, allowed, visited)

    def chain(
        self, name: str, table: Table, context: _Context, allowed: Allowed, visited: set[str]
    ) -> str | None:
        """Walks a chain; returns the verdict of a final unconditional rule, if any."""
        chain = table.chains.get(name)
        if chain is None or name in visited or len(visited) > MAX_JUMP_DEPTH:
            return None
        visited = visited | {name}
        last = None
        for words in chain.rules:
            last = self.rule(words, table, context, allowed, visited)
        return last

    def input_defaults(self) -> tuple[str | None, str | None, Allowed, int]:
        """(IPv4 default, IPv6 default, accepted ports, number of input base chains).

        Every base chain on the input hook sees each packet, and a drop in any of them is
        final: a port is open only where every dropping chain accepts it. Chains whose default
        accepts only add ports when no chain drops by default.
        """
        by_family: dict[str, list[tuple[str | None, Allowed]]] = {"ipv4": [], "ipv6": []}
        count = 0
        for (family, _name), table in sorted(self.ruleset.tables.items()):
            if family not in ("ip", "ip6", "inet"):
                continue
            for name, chain in sorted(table.chains.items()):
                if chain.hook != "input" or chain.type not in (None, "filter"):
                    continue
                count += 1
                chain_allowed = Allowed()
                final = self.chain(name, table, _Context(), chain_allowed, set())
                default = chain.policy or "accept"
                if default == "accept" and final in ("drop", "reject"):
                    default = final
                if default not in ("accept", "drop", "reject"):
                    default = None
                if family in ("ip", "inet"):
                    by_family["ipv4"].append((default, chain_allowed))
                if family in ("ip6", "inet"):
                    by_family["ipv6"].append((default, chain_allowed))
        allowed = Allowed()
        for chains in by_family.values():
            restrictive = [each for default, each in chains if default in ("drop", "reject")]
            if restrictive:
                for entry in restrictive[0].entries:
                    if all(covers(other, entry) for other in restrictive[1:]):
                        allowed.add(entry["port"], entry["protocol"], entry["source"])
            else:
                for _default, each in chains:
                    allowed.extend(each)
        return (
            strictest([default for default, _ in by_family["ipv4"]]),
            strictest([default for default, _ in by_family["ipv6"]]),
            allowed,
            count,
        )
