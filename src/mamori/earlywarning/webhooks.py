"""Webhooks: where one may go, how its body is signed, how it is delivered and retried.

The network layer only: no model, no setting. The caller (the registry's services and the
delivery task) stores URLs and secrets, writes the delivery log and schedules retries with
:func:`next_attempt_delay` and :func:`should_disable`.

Destinations (server-side request forgery)
------------------------------------------
:func:`check_destination` accepts a URL only when it is ``https://``, carries no user name or
password, and its host — an IP literal, or every address its name resolves to — is a public
internet address. Refused, each with a message naming the problem: loopback, private
(RFC 1918, ``fc00::/7``), carrier-grade NAT (``100.64.0.0/10``), link-local (``169.254.0.0/16``
with the cloud metadata address ``169.254.169.254``, ``fe80::/10``), unspecified, multicast,
documentation, benchmarking and other reserved ranges, IPv6 outside global unicast
(``2000::/3``); IPv6 forms that embed an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64
``64:ff9b::/96``, 6to4 ``2002::/16``) are judged by the address they embed; IPv4 addresses
written in the other forms URL parsers accept (``2130706433``, ``0x7f.1``, ``0177.0.0.1``,
``127.1``) are refused whatever they mean, as are single-label names (they resolve through the
local search domains), local-only suffixes (``localhost``, ``.local``, ``.internal``,
``.home.arpa``, ``.localdomain``) and cloud metadata names (``metadata.google.internal``).

Any port is allowed: receivers legitimately listen on 8443 and the like, and the address rules
above already keep requests off internal networks; what a public host's other ports may be
probed for is bounded by TLS (the request is only sent after a verified TLS handshake).

``allow_loopback_for_tests`` lets loopback addresses (``127.0.0.0/8``, ``::1``) through, and
``http://`` with them only; production code refuses to set it (the caller's setting does).

The returned :class:`Destination` pins the addresses checked: :func:`deliver` connects to them
and never looks the name up again, so a name that resolves to a public address for the check and
to an internal one a moment later (DNS rebinding) reaches nothing internal. The request still
carries the name in ``Host``, and TLS sends it as SNI and verifies the certificate against it.
A delivery task checks the stored URL again before each attempt, so that addresses follow the
receiver's DNS over time while every connection goes where a check just allowed.

Signatures
----------
Each delivery carries ``X-Mamori-Signature: t=<timestamp>,v1=<hex>``, where ``<timestamp>`` is
the Unix time of the attempt in seconds and ``<hex>`` the lower-case hex HMAC-SHA256, keyed with
the webhook's secret, of ``"<timestamp>."`` followed by the exact body bytes (the scheme Stripe
uses). A receiver recomputes it over the raw body, compares in constant time, and refuses
timestamps more than five minutes from its clock, so a captured delivery cannot be replayed
later (:func:`verify_signature` does all three). More ``v1=`` items may appear, one per secret,
while a secret is being rotated; any one matching is enough.

Retries
-------
A failed attempt (no answer, or an answer other than 2xx) is retried after
:func:`next_attempt_delay`: 30 s, 2 min, 8 min, 32 min, 2 h 8 min, then every 6 h (each delay
multiplied by 4 up to the 6 h cap), each shortened by a random 0–25 % so that many deliveries
failing together do not retry together. :func:`should_disable` turns a webhook off once it
has failed 10 times in a row over at least 24 hours — about a day of a receiver that is down,
not a burst of failures in one bad minute.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import functools
import hashlib
import hmac
import ipaddress
import random
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import httpx
import idna
from django.utils.translation import gettext as _

from mamori.core.errors import MamoriError

SIGNATURE_HEADER = "X-Mamori-Signature"
USER_AGENT = "Mamori-Webhook/1"
MAX_URL_LENGTH = 2048
# The receiver's answer is kept for the delivery log up to this many bytes; the rest is never
# read, so a receiver answering gigabytes costs nothing.
EXCERPT_BYTES = 4096
SIGNATURE_TOLERANCE_SECONDS = 300

RETRY_FIRST_DELAY_SECONDS = 30.0
RETRY_FACTOR = 4
RETRY_MAX_DELAY_SECONDS = 6 * 3600.0
RETRY_JITTER = 0.25
DISABLE_AFTER_FAILURES = 10
DISABLE_AFTER_FAILING_FOR = dt.timedelta(hours=24)

Resolver = Callable[[str], Iterable[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DestinationRefused(MamoriError):
    """The URL may not receive webhooks; the message says why."""

    code = "webhook_destination_refused"


class DestinationUnresolved(DestinationRefused):
    """The host name did not resolve (now): at delivery time a failed attempt to retry, not a
    refusal of the URL."""

    code = "webhook_destination_unresolved"


# --- Checking a destination -------------------------------------------------------------------


def resolve_host(hostname: str) -> list[str]:
    """Every address the system resolver gives for ``hostname``, in its order of preference."""
    addresses: list[str] = []
    for *_rest, sockaddr in socket.getaddrinfo(hostname, None, type=socket.SOCK_STREAM):
        if sockaddr[0] not in addresses:
            addresses.append(sockaddr[0])
    return addresses


@dataclass(frozen=True)
class Destination:
    """A checked webhook URL with the addresses it may be delivered to.

    ``host`` is the ASCII host name (A-labels), or for an IP-literal URL the address itself;
    ``target`` is the path and query sent on the request line; ``addresses`` are the checked
    addresses, tried in order — the only ones :func:`deliver` connects to.
    """

    url: str
    scheme: str
    host: str
    port: int
    target: str
    addresses: tuple[str, ...]
    host_is_address: bool = False

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default_port = 443 if self.scheme == "https" else 80
        return host if self.port == default_port else f"{host}:{self.port}"


_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")

# Checked in order, so that the most telling name wins (the metadata address before the
# link-local range it sits in). The IANA special-purpose registries, with multicast and 240/4.
_V4_RANGES = [
    ("metadata", "169.254.169.254/32"),  # AWS, GCP, Azure, OpenStack instance metadata
    ("metadata", "169.254.170.2/32"),  # AWS ECS task metadata
    ("metadata", "100.100.100.200/32"),  # Alibaba Cloud instance metadata
    ("metadata", "168.63.129.16/32"),  # Azure WireServer (a public-looking platform address)
    ("unspecified", "0.0.0.0/8"),
    ("loopback", "127.0.0.0/8"),
    ("private", "10.0.0.0/8"),
    ("private", "172.16.0.0/12"),
    ("private", "192.168.0.0/16"),
    ("shared", "100.64.0.0/10"),
    ("link_local", "169.254.0.0/16"),
    ("documentation", "192.0.2.0/24"),
    ("documentation", "198.51.100.0/24"),
    ("documentation", "203.0.113.0/24"),
    ("benchmarking", "198.18.0.0/15"),
    ("reserved", "192.0.0.0/24"),  # IETF protocol assignments
    ("reserved", "192.88.99.0/24"),  # the retired 6to4 relay anycast
    ("multicast", "224.0.0.0/4"),
    ("reserved", "240.0.0.0/4"),  # with the limited broadcast 255.255.255.255
]
_V6_RANGES = [
    ("metadata", "fd00:ec2::254/128"),  # AWS instance metadata over IPv6
    ("unspecified", "::/128"),
    ("loopback", "::1/128"),
    ("private", "fc00::/7"),
    ("private", "64:ff9b:1::/48"),  # NAT64 for local use (RFC 8215)
    ("link_local", "fe80::/10"),
    ("site_local", "fec0::/10"),
    ("multicast", "ff00::/8"),
    ("documentation", "2001:db8::/32"),
    ("documentation", "3fff::/20"),
    ("benchmarking", "2001:2::/48"),
    ("tunnel", "2001::/32"),  # Teredo: the IPv4 end is hidden in it
    ("reserved", "2001::/23"),  # IETF protocol assignments
]
_V4_TABLE = [(kind, ipaddress.IPv4Network(net)) for kind, net in _V4_RANGES]
_V6_TABLE = [(kind, ipaddress.IPv6Network(net)) for kind, net in _V6_RANGES]
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT ::ffff:0:a.b.c.d

_LOCAL_SUFFIXES = ("localhost", "local", "internal", "home.arpa", "localdomain")
_METADATA_NAMES = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_HEX_OR_DECIMAL_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")


def _kind_text(kind: str) -> str:
    return {
        "metadata": _("a cloud metadata service address"),
        "unspecified": _("an unspecified address"),
        "loopback": _("a loopback address"),
        "private": _("a private network address"),
        "shared": _("a carrier-grade NAT (shared) address"),
        "link_local": _("a link-local address"),
        "site_local": _("a site-local address"),
        "documentation": _("a documentation address"),
        "benchmarking": _("a benchmarking address"),
        "multicast": _("a multicast address"),
        "tunnel": _("a Teredo tunnel address"),
        "reserved": _("a reserved special-purpose address"),
        "not_global": _("not a global unicast address"),
    }[kind]


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and would reach (mapped, NAT64, 6to4...)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or address in _IPV4_TRANSLATED:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(address: IPAddress) -> str | None:
    """Why ``address`` may not receive webhooks, in words, or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            inner_problem = address_problem(inner)
            if inner_problem is not None:
                return _("an IPv6 form of %(inner)s, %(kind)s") % {
                    "inner": inner,
                    "kind": inner_problem,
                }
            if address in _IPV4_COMPATIBLE:  # deprecated since 2006: nothing routes it
                return _kind_text("reserved")
            return None  # judged by the public IPv4 address it reaches
        for kind, network in _V6_TABLE:
            if address in network:
                return _kind_text(kind)
        if address not in _GLOBAL_UNICAST_V6:
            return _kind_text("not_global")
        return None
    for kind, network in _V4_TABLE:
        if address in network:
            return _kind_text(kind)
    return None


def _refuse_address(host: str, address: IPAddress, problem: str, *, literal: bool):
    values = {"host": host, "address": address, "kind": problem}
    if literal:
        message = _("%(address)s is %(kind)s; webhooks can only go to public internet addresses.")
    else:
        message = _(
            "%(host)s resolves to %(address)s, %(kind)s; webhooks can only go to public "
            "internet addresses."
        )
    return DestinationRefused(message % values, field="url")


def _whatwg_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a host means when its last label is a number, read as browsers and
    many URL libraries do (decimal, octal with a leading 0, hex with 0x, one to four parts:
    ``2130706433``, ``0x7f.1`` and ``0177.0.0.1`` all mean 127.0.0.1); None for a name.
    Raises :class:`DestinationRefused` when it ends in a number but is no address."""
    parts = host.split(".")
    if not _HEX_OR_DECIMAL_LABEL.match(parts[-1]):
        return None
    invalid = DestinationRefused(_("%(host)s is not a valid host name.") % {"host": host})
    if len(parts) > 4:
        raise invalid
    numbers = []
    for part in parts:
        if part.startswith("0x"):
            number = int(part[2:] or "0", 16)
        elif len(part) > 1 and part.startswith("0"):
            if not re.fullmatch(r"[0-7]+", part):
                raise invalid
            number = int(part, 8)
        elif part.isdigit() and part.isascii():
            number = int(part)
        else:
            raise invalid
        numbers.append(number)
    if any(number > 255 for number in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise invalid
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _split(url: str) -> tuple[SplitResult, int | None]:
    if not isinstance(url, str) or not url.strip():
        raise DestinationRefused(_("Enter the webhook's URL."), field="url")
    if len(url) > MAX_URL_LENGTH:
        raise DestinationRefused(
            _("The webhook URL is longer than %(limit)s characters.") % {"limit": MAX_URL_LENGTH},
            field="url",
        )
    # URL parsers disagree on these (Python drops tabs and newlines, browsers read "\" as "/"),
    # and any disagreement about the host is a way around the checks.
    if any(ord(char) <= 0x20 or ord(char) == 0x7F or char == "\\" for char in url):
        raise DestinationRefused(
            _("The webhook URL contains spaces, control characters or backslashes."),
            field="url",
        )
    try:
        parts = urlsplit(url)
        port = parts.port  # urlsplit checks the port only when asked for it
    except ValueError:
        raise DestinationRefused(
            _("%(url)s is not a valid URL.") % {"url": url[:200]}, field="url"
        ) from None
    return parts, port


def is_documentation_address(address: IPAddress) -> bool:
    """In a documentation range (RFC 5737, 3849, 9637): nothing ever answers there."""
    table = _V6_TABLE if isinstance(address, ipaddress.IPv6Address) else _V4_TABLE
    return any(kind == "documentation" and address in net for kind, net in table)


def check_destination(
    url: str,
    *,
    resolve: Resolver = resolve_host,
    allow_loopback_for_tests: bool = False,
    allow_documentation: bool = False,
) -> Destination:
    """The checked :class:`Destination` for ``url``, or :class:`DestinationRefused` saying why
    not (:class:`DestinationUnresolved` when the name does not resolve). ``resolve`` (a host
    name → its addresses) is called at most once, and not at all for an IP-literal URL.
    ``allow_documentation`` lets a documentation address through, for the demo's webhook, which
    is registered but never reached: every delivery checks again without it, and is refused."""
    parts, explicit_port = _split(url)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or (scheme == "http" and not allow_loopback_for_tests):
        raise DestinationRefused(_("Webhook URLs must start with https://."), field="url")
    if "@" in parts.netloc:
        raise DestinationRefused(
            _(
                "The webhook URL must not contain a user name or password; the signature "
                "proves that deliveries come from Mamori."
            ),
            field="url",
        )
    if parts.fragment or url.endswith("#"):
        raise DestinationRefused(
            _("The webhook URL must not have a #fragment: it is never sent to the receiver."),
            field="url",
        )
    port = explicit_port or (443 if scheme == "https" else 80)
    if explicit_port == 0:
        raise DestinationRefused(_("The webhook URL's port must be 1 to 65535."), field="url")
    raw_host = parts.hostname or ""
    if not raw_host:
        raise DestinationRefused(_("The webhook URL has no host."), field="url")
    shown_host = raw_host[:100]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    if parts.netloc.startswith("[") or ":" in raw_host:
        if "%" in raw_host:  # an IPv6 zone (interface) only means something on this machine
            raise DestinationRefused(
                _("%(host)s names a network interface of this machine; refused.")
                % {"host": shown_host},
                field="url",
            )
        try:
            literal: IPAddress | None = ipaddress.IPv6Address(raw_host)
        except ValueError:
            raise DestinationRefused(
                _("%(host)s is not a valid host name.") % {"host": shown_host}, field="url"
            ) from None
        host = raw_host
    else:
        name = raw_host[:-1] if raw_host.endswith(".") else raw_host
        try:
            host = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            raise DestinationRefused(
                _("%(host)s is not a valid host name.") % {"host": shown_host}, field="url"
            ) from None
        literal = _whatwg_ipv4(host)
        if literal is not None and str(literal) != host:
            raise DestinationRefused(
                _(
                    "%(host)s is an IPv4 address written in an unusual form (it means "
                    "%(address)s); such forms are refused."
                )
                % {"host": shown_host, "address": literal},
                field="url",
            )
        if literal is None:
            _check_name(host, shown_host, allow_loopback_for_tests)

    addresses = [literal] if literal is not None else _resolve(host, shown_host, resolve)

    for address in addresses:
        if allow_loopback_for_tests and any(address in net for net in _LOOPBACK):
            continue
        if allow_documentation and is_documentation_address(address):
            continue
        problem = address_problem(address)
        if problem is not None:
            raise _refuse_address(shown_host, address, problem, literal=literal is not None)
    if scheme == "http" and not all(any(a in net for net in _LOOPBACK) for a in addresses):
        raise DestinationRefused(_("Webhook URLs must start with https://."), field="url")

    destination = Destination(
        url="",
        scheme=scheme,
        host=host,
        port=port,
        target=target,
        addresses=tuple(str(address) for address in addresses),
        host_is_address=literal is not None,
    )
    # The URL as it will be used: A-label host, no default port, no trailing dot.
    normalised = f"{scheme}://{destination.host_header}{target}"
    return dataclasses.replace(destination, url=normalised)


def _check_name(host: str, shown_host: str, allow_loopback_for_tests: bool) -> None:
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise DestinationRefused(
            _("%(host)s is not a valid host name.") % {"host": shown_host}, field="url"
        )
    if host in _METADATA_NAMES:
        raise DestinationRefused(
            _("%(host)s is a cloud metadata service; webhooks can only go to public hosts.")
            % {"host": shown_host},
            field="url",
        )
    local_suffix = next((s for s in _LOCAL_SUFFIXES if host == s or host.endswith("." + s)), None)
    if local_suffix == "localhost" and allow_loopback_for_tests:
        return
    if local_suffix is not None:
        raise DestinationRefused(
            _("%(host)s is a local-only name (%(suffix)s); webhooks can only go to public hosts.")
            % {"host": shown_host, "suffix": local_suffix},
            field="url",
        )
    if len(labels) < 2:
        raise DestinationRefused(
            _(
                "%(host)s is a single-label name, which only resolves inside a local network; "
                "enter the receiver's full domain name."
            )
            % {"host": shown_host},
            field="url",
        )


def _resolve(host: str, shown_host: str, resolve: Resolver) -> list[IPAddress]:
    try:
        answers = list(resolve(host))
    except OSError as exc:
        raise DestinationUnresolved(
            _("%(host)s could not be resolved (%(error)s).")
            % {"host": shown_host, "error": exc.strerror or exc},
            field="url",
        ) from None
    addresses: list[IPAddress] = []
    for answer in answers:
        # A resolver may give link-local IPv6 answers with their zone ("fe80::1%eth0").
        address = ipaddress.ip_address(str(answer).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise DestinationUnresolved(
            _("%(host)s resolves to no address.") % {"host": shown_host}, field="url"
        )
    return addresses


# --- Signing ----------------------------------------------------------------------------------


def _key(secret: bytes | str) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def signature(secret: bytes | str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 under ``secret`` of ``"<timestamp>."`` followed by ``body``."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError(f"timestamp must be a non-negative int, not {timestamp!r}")
    message = f"{timestamp}.".encode("ascii") + bytes(body)
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def signature_header(secret: bytes | str, timestamp: int, body: bytes) -> str:
    """The ``X-Mamori-Signature`` value: ``t=<timestamp>,v1=<hex>``."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify_signature(
    secret: bytes | str,
    header: str | None,
    body: bytes,
    *,
    now: float,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """Whether ``header`` (an ``X-Mamori-Signature`` value) signs ``body`` under ``secret``
    at a time within ``tolerance`` seconds of ``now``. Malformed headers are simply False."""
    if not isinstance(header, str) or len(header) > 4096:
        return False
    timestamps: list[str] = []
    candidates: list[str] = []
    for item in header.split(","):
        key, separator, value = item.strip().partition("=")
        if not separator:
            return False
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            candidates.append(value)
        # other schemes (v0, a future v2) are not ours to judge
    if len(timestamps) != 1 or not candidates:
        return False
    stamp = timestamps[0]
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
        return False
    timestamp = int(stamp)
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).encode("ascii")
    matched = False
    for candidate in candidates:  # every one compared: the time taken says nothing
        matched |= hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
    return matched


# --- Delivering -------------------------------------------------------------------------------


class DeliveryError(enum.StrEnum):
    """Why no HTTP answer came back; the value is what callers store."""

    CONNECT = "connect"  # no connection to any of the pinned addresses
    TLS = "tls"  # the TLS handshake failed (certificate not valid for the name, untrusted...)
    TIMEOUT = "timeout"  # no complete answer within the timeout
    PROTOCOL = "protocol"  # the connection broke or the answer was not HTTP

    @property
    def message(self) -> str:
        return {
            DeliveryError.CONNECT: _("The receiver could not be reached."),
            DeliveryError.TLS: _(
                "The receiver's TLS certificate was not accepted (not valid for its name, "
                "expired or not from a trusted authority)."
            ),
            DeliveryError.TIMEOUT: _("The receiver did not answer in time."),
            DeliveryError.PROTOCOL: _(
                "The connection broke, or the receiver's answer was not valid HTTP."
            ),
        }[self]


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one attempt gave: the status the receiver answered, or the ``error`` that kept it
    from answering; ``elapsed`` seconds; up to :data:`EXCERPT_BYTES` of the answer's body;
    the address connected to; ``detail`` in the network library's words, for the log."""

    status_code: int | None
    error: DeliveryError | None
    elapsed: float
    response_excerpt: str = ""
    address: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """The system's trusted authorities, TLS 1.2 or later, host names checked. One context for
    every delivery: building one loads the whole trust store."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def deliver(
    destination: Destination,
    body: bytes,
    *,
    secret: bytes | str,
    timestamp: int,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> DeliveryOutcome:
    """POST ``body`` (JSON) to ``destination``, signed; never longer than ``timeout`` seconds
    in all, whatever the receiver does, and never raises for what the network does.

    Connects only to ``destination.addresses`` (in order, the next one when a connection is
    refused), sends the host name in ``Host`` and as TLS SNI and checks the certificate against
    it; does not follow redirects (a 3xx is the answer, and a failure), reads at most
    :data:`EXCERPT_BYTES` of the answer and ignores proxy variables in the environment.
    ``headers`` adds headers (an event name, a delivery id); it cannot replace ``Host``, the
    content type or the signature. ``ssl_context`` replaces :func:`default_ssl_context` (tests
    pass one trusting their own certificate). Not for use inside a running event loop: await
    :func:`deliver_async` there.
    """
    return asyncio.run(
        deliver_async(
            destination,
            body,
            secret=secret,
            timestamp=timestamp,
            timeout=timeout,
            headers=headers,
            ssl_context=ssl_context,
        )
    )


async def deliver_async(
    destination: Destination,
    body: bytes,
    *,
    secret: bytes | str,
    timestamp: int,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> DeliveryOutcome:
    """:func:`deliver` for callers already in an event loop (many deliveries at once)."""
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, not {timeout}")
    body = bytes(body)
    request_headers = httpx.Headers(headers or {})
    for framing in ("Content-Length", "Transfer-Encoding", "Connection"):
        request_headers.pop(framing, None)  # httpx frames the body itself
    request_headers["Host"] = destination.host_header
    request_headers["Content-Type"] = "application/json"
    request_headers["User-Agent"] = USER_AGENT
    # The answer is read raw and cut short: a compressed one could not be cut safely.
    request_headers["Accept-Encoding"] = "identity"
    request_headers[SIGNATURE_HEADER] = signature_header(secret, timestamp, body)
    extensions = {}
    if destination.scheme == "https" and not destination.host_is_address:
        # httpcore sends this name as SNI and checks the certificate against it, while the
        # connection goes to the pinned address in the URL.
        extensions["sni_hostname"] = destination.host

    started = time.monotonic()
    address = ""

    def outcome(status=None, error=None, excerpt="", detail="") -> DeliveryOutcome:
        return DeliveryOutcome(
            status_code=status,
            error=error,
            elapsed=time.monotonic() - started,
            response_excerpt=excerpt,
            address=address,
            detail=detail,
        )

    try:
        # The outer bound: httpx's timeouts apply to each read and write, so a receiver that
        # answers one byte at a time would never trip them.
        async with asyncio.timeout(timeout):
            async with httpx.AsyncClient(
                verify=ssl_context or default_ssl_context(),
                trust_env=False,  # an HTTPS_PROXY would resolve the name itself
                follow_redirects=False,
                timeout=httpx.Timeout(timeout),
            ) as client:
                refused: Exception | None = None
                for address in destination.addresses:
                    request = client.build_request(
                        "POST",
                        _pinned_url(destination, address),
                        content=body,
                        headers=request_headers,
                        extensions=extensions,
                    )
                    try:
                        response = await client.send(request, stream=True)
                    except httpx.ConnectError as exc:
                        if _tls_failure(exc):
                            return outcome(error=DeliveryError.TLS, detail=_describe(exc))
                        refused = exc
                        continue
                    try:
                        excerpt = await _read_excerpt(response)
                    finally:
                        await response.aclose()
                    detail = ""
                    if response.is_redirect:
                        location = response.headers.get("Location", "")[:300]
                        detail = f"redirect not followed (Location: {location})"
                    return outcome(status=response.status_code, excerpt=excerpt, detail=detail)
                return outcome(error=DeliveryError.CONNECT, detail=_describe(refused))
    except (TimeoutError, httpx.TimeoutException):
        return outcome(
            error=DeliveryError.TIMEOUT, detail=f"no complete answer within {timeout:g} s"
        )
    except httpx.HTTPError as exc:
        return outcome(error=DeliveryError.PROTOCOL, detail=_describe(exc))


def _pinned_url(destination: Destination, address: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"{destination.scheme}://{host}:{destination.port}{destination.target}"


async def _read_excerpt(response: httpx.Response) -> str:
    received = bytearray()
    async for chunk in response.aiter_raw():
        received += chunk
        if len(received) >= EXCERPT_BYTES:
            break
    return bytes(received[:EXCERPT_BYTES]).decode("utf-8", errors="replace")


def _tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    return (str(exc) or type(exc).__name__)[:500]


# --- Retrying and giving up -------------------------------------------------------------------


def nominal_attempt_delay(attempt: int) -> float:
    """The delay after failed attempt number ``attempt`` (1 for the first), before jitter."""
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValueError(f"attempt must be an int from 1, not {attempt!r}")
    if attempt > 12:  # 4**11 · 30 s is far past the cap; no need to compute giant powers
        return RETRY_MAX_DELAY_SECONDS
    return min(RETRY_MAX_DELAY_SECONDS, RETRY_FIRST_DELAY_SECONDS * RETRY_FACTOR ** (attempt - 1))


def next_attempt_delay(attempt: int, *, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first): the nominal
    delay (30 s × 4^(attempt − 1), at most 6 h) shortened by a random 0–25 %, so in
    ``(0.75 × nominal, nominal]``. ``rng`` returns a float in [0, 1)."""
    return nominal_attempt_delay(attempt) * (1.0 - RETRY_JITTER * rng())


def should_disable(consecutive_failures: int, failing_for: dt.timedelta) -> bool:
    """Whether a webhook that has failed ``consecutive_failures`` times in a row, the first of
    them ``failing_for`` ago, should be turned off: 10 failures over at least 24 hours."""
    return (
        consecutive_failures >= DISABLE_AFTER_FAILURES and failing_for >= DISABLE_AFTER_FAILING_FOR
    )
