"""The ``listening`` section: sockets accepting connections, from ``/proc/net`` (live only)."""

from __future__ import annotations

import ipaddress
import sys

from ..context import NOT_ON_ROOT, Section

_TABLES = ("tcp", "tcp6", "udp", "udp6")
_TCP_LISTEN = "0A"
_UDP_UNCONNECTED = "07"  # TCP_CLOSE: a bound UDP socket with no peer


def decode_address(text: str) -> str:
    """``/proc/net`` prints addresses as 32-bit words in host byte order."""
    raw = bytes.fromhex(text)
    words = [raw[index : index + 4] for index in range(0, len(raw), 4)]
    packed = b"".join(int.from_bytes(word, "big").to_bytes(4, sys.byteorder) for word in words)
    if len(packed) == 4:
        return str(ipaddress.IPv4Address(packed))
    return str(ipaddress.IPv6Address(packed))


def parse_proc_net(text: str, protocol: str) -> list[dict]:
    sockets = []
    wanted_state = _TCP_LISTEN if protocol.startswith("tcp") else _UDP_UNCONNECTED
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != wanted_state:
            continue
        address, _, port = fields[1].partition(":")
        try:
            sockets.append(
                {
                    "protocol": protocol,
                    "address": decode_address(address),
                    "port": int(port, 16),
                    "inode": int(fields[9]),
                }
            )
        except ValueError:
            continue
    return sockets


def collect_listening(section: Section) -> dict:
    if not section.ctx.live:
        section.unknown(None, NOT_ON_ROOT)
        return section.finish({"sockets": None})
    sockets = []
    readable = 0
    for protocol in _TABLES:
        path = f"/proc/net/{protocol}"
        errors_before = len(section.errors)
        text = section.read_text(path)
        if text is None:
            if len(section.errors) == errors_before and not protocol.endswith("6"):
                section.error(path, "not found")
            # a missing tcp6/udp6: no IPv6 in this kernel, so nothing listens there
            continue
        readable += 1
        sockets.extend(parse_proc_net(text, protocol))
    if not readable:
        section.unknown("/proc/net", "no socket table could be read")
        return section.finish({"sockets": None})
    sockets.sort(key=lambda item: (item["protocol"], item["port"], item["address"], item["inode"]))
    return section.finish({"sockets": sockets})
