"""The address a request really comes from, for login lock-outs and rate limits.

Behind a reverse proxy every request arrives from the proxy's address, so limits keyed on
``REMOTE_ADDR`` would treat all users as one client. The proxy names the client in
``X-Forwarded-For``, but anyone can send that header: it is believed only when the request comes
from a configured proxy (``MAMORI_TRUSTED_PROXIES``), and then only as far as the chain of
trusted proxies goes. nginx appends the address it saw to whatever the client sent, so the
header is read from the right: the first hop that is not one of our proxies is the client, and
anything to its left is the client's own claim, ignored.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: list[str] | tuple[str, ...]) -> tuple[Network, ...]:
    """Addresses and CIDR ranges (``127.0.0.1``, ``10.0.0.0/8``, ``::1``); ValueError names a
    malformed entry."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or CIDR range") from None
    return tuple(networks)


@lru_cache(maxsize=8)
def _trusted(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_networks(entries)


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket is the same client as over IPv4.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: Address | None, networks: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_address(request) -> str:
    """The client's IP address as text: ``REMOTE_ADDR``, or, when that is a trusted proxy, the
    right-most ``X-Forwarded-For`` hop that is not a trusted proxy itself."""
    remote_text = request.META.get("REMOTE_ADDR", "") or ""
    remote = _address(remote_text)
    networks = _trusted(tuple(settings.TRUSTED_PROXIES))
    if not _is_trusted(remote, networks):
        return str(remote) if remote is not None else remote_text
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for hop in reversed(forwarded.split(",")):
        address = _address(hop)
        if address is None:
            # Our proxy writes plain addresses; anything else came from further out and cannot
            # be told apart from a forgery, so the request counts as the proxy's own.
            break
        if not _is_trusted(address, networks):
            return str(address)
    return str(remote)
