"""What a netfilter ruleset does to inbound traffic: the default verdict of the input hook and
the ports it accepts. Shared by the nftables and iptables readers.

The analysis is deliberately modest: it follows ``jump``/``goto`` into other chains, understands
port matches, source addresses, loopback and connection-tracking conditions, and treats a final
unconditional ``drop``/``reject`` as the chain's default. Anything it cannot read with certainty is
left out of ``allowed_inbound`` rather than guessed.
"""

from __future__ import annotations

import re

# Used when /etc/services cannot tell (nft and iptables resolve names with getservbyname).
BUILTIN_SERVICES = {
    "ftp": 21,
    "ssh": 22,
    "telnet": 23,
    "smtp": 25,
    "domain": 53,
    "dns": 53,
    "bootps": 67,
    "bootpc": 68,
    "tftp": 69,
    "http": 80,
    "www": 80,
    "kerberos": 88,
    "pop3": 110,
    "sunrpc": 111,
    "ntp": 123,
    "netbios-ssn": 139,
    "imap": 143,
    "imap2": 143,
    "snmp": 161,
    "ldap": 389,
    "https": 443,
    "microsoft-ds": 445,
    "smtps": 465,
    "submissions": 465,
    "syslog": 514,
    "submission": 587,
    "ldaps": 636,
    "rsync": 873,
    "imaps": 993,
    "pop3s": 995,
    "nfs": 2049,
    "mysql": 3306,
    "ms-wbt-server": 3389,
    "rdp": 3389,
    "postgresql": 5432,
    "http-alt": 8080,
    "webcache": 8080,
}
_PERMISSIVENESS = {"accept": 2, "reject": 1, "drop": 0}
MAX_PORT = 65535


def parse_services(text: str) -> dict[str, int]:
    """``/etc/services``: name and aliases → port."""
    services: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2 or "/" not in fields[1]:
            continue
        port_text = fields[1].split("/", 1)[0]
        if port_text.isdigit():
            for name in [fields[0], *fields[2:]]:
                services.setdefault(name.lower(), int(port_text))
    return services


def port_value(text: str, services: dict[str, int]) -> int | str | None:
    """``22`` → 22, ``ssh`` → 22, ``8000-8080`` or ``8000:8080`` → ``"8000-8080"``; None when
    the text is not a port."""
    text = text.strip().strip('"').lower()
    match = re.fullmatch(r"(\w[\w.+-]*?)\s*[-:]\s*(\w[\w.+-]*)", text)
    if match and not text.isdigit():
        low = port_value(match.group(1), services)
        high = port_value(match.group(2), services)
        if isinstance(low, int) and isinstance(high, int) and low <= high:
            return low if low == high else f"{low}-{high}"
    if text.isdigit():
        number = int(text)
        return number if 0 < number <= MAX_PORT else None
    return services.get(text, BUILTIN_SERVICES.get(text))


class Allowed:
    """The accumulating list of ``{port, protocol, source}`` entries."""

    def __init__(self) -> None:
        self.entries: list[dict] = []
        self._seen: set[tuple] = set()

    def add(self, port: int | str, protocol: str, source: str) -> None:
        protocol = protocol if protocol in ("tcp", "udp") else "any"
        key = (str(port), protocol, source)
        if key not in self._seen:
            self._seen.add(key)
            self.entries.append({"port": port, "protocol": protocol, "source": source})

    def extend(self, other: Allowed) -> None:
        for entry in other.entries:
            self.add(entry["port"], entry["protocol"], entry["source"])

    def sorted(self) -> list[dict]:
        def key(entry: dict) -> tuple:
            port = entry["port"]
            low = port if isinstance(port, int) else int(str(port).split("-")[0])
            return (low, str(port), entry["protocol"], entry["source"])

        return sorted(self.entries, key=key)


def _port_range(port: int | str) -> tuple[int, int]:
    if isinstance(port, int):
        return port, port
    low, _, high = str(port).partition("-")
    return int(low), int(high or low)


def covers(allowed: Allowed, entry: dict) -> bool:
    """Whether ``allowed`` lets through every port of ``entry`` (sources are not compared: a
    port open to some sources in both chains stays listed)."""
    low, high = _port_range(entry["port"])
    for candidate in allowed.entries:
        if candidate["protocol"] not in ("any", entry["protocol"]):
            continue
        candidate_low, candidate_high = _port_range(candidate["port"])
        if candidate_low <= low and high <= candidate_high:
            return True
    return False


def most_permissive(verdicts: list[str | None]) -> str | None:
    known = [verdict for verdict in verdicts if verdict is not None]
    if not known:
        return None
    return max(known, key=lambda verdict: _PERMISSIVENESS[verdict])


def strictest(verdicts: list[str | None]) -> str | None:
    """Base chains on the same hook all see a packet: a drop in any of them is final."""
    known = [verdict for verdict in verdicts if verdict is not None]
    if not known:
        return None
    return min(known, key=lambda verdict: _PERMISSIVENESS[verdict])


def normalise_source(text: str | None) -> str:
    if not text or text in ("0.0.0.0/0", "::/0", "any", "0/0"):
        return "any"
    return text
