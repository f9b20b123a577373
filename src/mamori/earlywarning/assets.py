"""Read and check an organisation's claim to a network asset: an address, a prefix, a range, an
AS number or a domain. Nothing here touches the database; Django is imported only for
``gettext_lazy``, so that refusals are shown in the reader's language.

``parse_asset`` returns the claim in one canonical form, so that the same asset written two
ways is one asset and ``matching`` can index it:

- ``ip``: the address as ``ipaddress`` prints it (IPv6 compressed, lower case); ``first`` =
  ``last`` = its integer.
- ``cidr``: ``network/length`` (``2001:db8::/32``); host bits must be zero — ``192.0.2.1/24`` is
  refused with the network it probably meant, rather than silently widened or narrowed.
- ``range``: ``FIRST-LAST`` in canonical addresses; one version, FIRST not after LAST.
- ``asn``: ``AS64500`` (asplain with the ``AS`` prefix, as the RIRs write it); the number is in
  ``asn``. ``64500``, ``as64500`` and asdot (``1.10`` = 65546, RFC 5396) are read.
- ``domain``: lower-case ASCII, non-ASCII labels as IDNA 2008 A-labels (``xn--…``), no trailing
  dot; ``include_subdomains`` says whether the names under it are claimed too.

An IPv4-mapped IPv6 address or prefix (``::ffff:10.0.0.1``) *is* the IPv4 address inside it:
it is registered as that IPv4 address (so ``::ffff:198.51.100.7`` becomes ``198.51.100.7``) and
judged as one, so a private address cannot come in disguised. The other ways of writing an IPv4
address inside IPv6 — IPv4-compatible ``::a.b.c.d``, 6to4 ``2002::/16``, Teredo ``2001::/32``,
NAT64 ``64:ff9b::/96`` — are refused: an organisation registers the IPv4 address itself.

Refused (``AssetRefused``, with a message naming the value): what is not public unicast address
space an organisation can hold — private, shared (carrier-grade NAT), loopback, link-local,
documentation, benchmarking, multicast, unspecified, reserved and IETF-protocol blocks (IANA's
special-purpose registries, listed in ``IPV4_BLOCKS`` and ``IPV6_BLOCKS``; IPv6 outside global
unicast ``2000::/3`` is reserved) — and any prefix or range that reaches into them; prefixes and
ranges wider than /8 (IPv4) or /19 (IPv6), which no single organisation is allotted; AS numbers
that are reserved, private or for documentation; domain names that are not registrable internet
names. Documentation addresses, AS numbers and domains (``192.0.2.0/24``, ``AS64500``,
``example.com``, ``example.co.jp``) are accepted with ``allow_documentation=True``: the demo and the tests use
them, because every real public address belongs to a real organisation.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

import idna
from django.utils.translation import gettext_lazy as _

from mamori.earlywarning.matching import normalise_hostname

KINDS = ("ip", "cidr", "range", "asn", "domain")
INTERVAL_KINDS = frozenset({"ip", "cidr", "range"})
# The widest prefix one organisation may claim; a range may not hold more addresses either.
WIDEST_PREFIX = {4: 8, 6: 19}
MAX_ASN = 2**32 - 1
MAX_DOMAIN_LENGTH = 253  # RFC 1035: 255 octets on the wire = 253 characters without the root
MAX_LABEL_LENGTH = 63

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class NetworkAsset:
    """One claimed asset in canonical form (module docstring). ``first``/``last`` (integers)
    and ``version`` are set for ip, cidr and range; ``asn`` for asn; ``domain`` for domain."""

    kind: str
    value: str
    version: int | None = None
    first: int | None = None
    last: int | None = None
    asn: int | None = None
    domain: str | None = None
    include_subdomains: bool = False

    @property
    def display_value(self) -> str:
        """The value as a person reads it: a domain's A-labels in Unicode (``例え.jp``)."""
        if self.domain is not None and "xn--" in self.domain:
            return idna.decode(self.domain)
        return self.value


class AssetRefused(ValueError):
    """A claim that cannot be registered. ``code`` says why, for programs (``private``,
    ``documentation``, ``too_wide``...); ``str()`` is the message in the active language, so it
    can be shown, or logged in a worker, long after the refusal was made."""

    def __init__(self, code: str, message: Any, **params: Any):
        super().__init__(code, message, params)
        self.code = code
        self.message = message
        self.params = params

    def __str__(self) -> str:
        return str(self.message) % {name: str(value) for name, value in self.params.items()}


# --- address space nobody can claim -------------------------------------------------------------


@dataclass(frozen=True)
class SpecialBlock:
    network: Network
    code: str
    what: Any  # a lazy description, shown in the refusal


def _blocks(*rows: tuple[str, str, Any]) -> tuple[SpecialBlock, ...]:
    return tuple(SpecialBlock(ipaddress.ip_network(text), code, what) for text, code, what in rows)


# IANA IPv4 Special-Purpose Address Registry, the blocks not globally reachable or not
# assignable to an organisation. The most specific first: the first block a claim reaches into
# names the refusal.
IPV4_BLOCKS = _blocks(
    ("0.0.0.0/32", "unspecified", _("the unspecified address")),
    ("0.0.0.0/8", "reserved", _("“this network” (RFC 791)")),
    ("10.0.0.0/8", "private", _("private address space (RFC 1918)")),
    ("100.64.0.0/10", "private", _("shared address space for carrier-grade NAT (RFC 6598)")),
    ("127.0.0.0/8", "loopback", _("loopback addresses")),
    ("169.254.0.0/16", "link_local", _("link-local addresses")),
    ("172.16.0.0/12", "private", _("private address space (RFC 1918)")),
    ("192.0.0.0/24", "reserved", _("IETF protocol assignments (RFC 6890)")),
    ("192.0.2.0/24", "documentation", _("documentation addresses (RFC 5737)")),
    ("192.88.99.0/24", "reserved", _("the deprecated 6to4 relay anycast block (RFC 7526)")),
    ("192.168.0.0/16", "private", _("private address space (RFC 1918)")),
    ("198.18.0.0/15", "benchmarking", _("benchmarking addresses (RFC 2544)")),
    ("198.51.100.0/24", "documentation", _("documentation addresses (RFC 5737)")),
    ("203.0.113.0/24", "documentation", _("documentation addresses (RFC 5737)")),
    ("224.0.0.0/4", "multicast", _("multicast addresses")),
    ("255.255.255.255/32", "reserved", _("the limited broadcast address")),
    ("240.0.0.0/4", "reserved", _("reserved address space (RFC 1112)")),
)

# IANA IPv6 Special-Purpose Address Registry and address space: everything outside global
# unicast 2000::/3 is reserved (the last two rows), and inside it the blocks below.
IPV6_BLOCKS = _blocks(
    ("::/128", "unspecified", _("the unspecified address")),
    ("::1/128", "loopback", _("loopback addresses")),
    ("::/96", "reserved", _("IPv4-compatible addresses (deprecated, RFC 4291)")),
    ("64:ff9b::/96", "reserved", _("the NAT64 prefix (RFC 6052); register the IPv4 address")),
    ("64:ff9b:1::/48", "reserved", _("the local-use IPv4/IPv6 translation prefix (RFC 8215)")),
    ("100::/64", "reserved", _("the discard-only prefix (RFC 6666)")),
    ("fc00::/7", "private", _("unique local addresses (RFC 4193)")),
    ("fe80::/10", "link_local", _("link-local addresses")),
    ("fec0::/10", "reserved", _("site-local addresses (deprecated, RFC 3879)")),
    ("ff00::/8", "multicast", _("multicast addresses")),
    ("2001:db8::/32", "documentation", _("documentation addresses (RFC 3849)")),
    ("3fff::/20", "documentation", _("documentation addresses (RFC 9637)")),
    ("2001::/32", "reserved", _("the Teredo prefix (RFC 4380); register the IPv4 address")),
    ("2001:2::/48", "benchmarking", _("benchmarking addresses (RFC 5180)")),
    ("2001::/23", "reserved", _("IETF protocol assignments (RFC 2928)")),
    ("2002::/16", "reserved", _("the 6to4 prefix (RFC 3056); register the IPv4 address")),
    ("::/3", "reserved", _("reserved address space outside global unicast 2000::/3")),
    ("4000::/2", "reserved", _("reserved address space outside global unicast 2000::/3")),
    ("8000::/1", "reserved", _("reserved address space outside global unicast 2000::/3")),
)

_BLOCKS = {4: IPV4_BLOCKS, 6: IPV6_BLOCKS}

_SPECIAL_ADDRESS = _(
    "'%(value)s' is in %(block)s, %(what)s; only public addresses an organisation holds can "
    "be registered."
)
_SPECIAL_INTERVAL = _(
    "'%(value)s' reaches into %(block)s, %(what)s; only public addresses an organisation holds "
    "can be registered."
)


def _refuse_special(value: str, version: int, first: int, last: int, allow_documentation: bool):
    """Refuse an interval that reaches into a block nobody can claim."""
    for block in _BLOCKS[version]:
        if block.code == "documentation" and allow_documentation:
            continue
        if (
            first <= int(block.network.broadcast_address)
            and int(block.network.network_address) <= last
        ):
            message = _SPECIAL_ADDRESS if first == last else _SPECIAL_INTERVAL
            raise AssetRefused(
                block.code, message, value=value, block=block.network, what=block.what
            )


# --- addresses, prefixes, ranges ----------------------------------------------------------------

_DOTTED_QUAD = re.compile(r"(\d+)\.(\d+)\.(\d+)\.(\d+)\Z")


def _read_address(text: str, value: str) -> Address:
    """One address of a claim as written (``value`` is the whole claim, for messages)."""
    if "%" in text:
        raise AssetRefused(
            "zone_id",
            _(
                "'%(value)s' carries a zone id (the part after %%), which names an interface "
                "of one machine, not an address on the internet; write the address without it."
            ),
            value=value,
        )
    quad = _DOTTED_QUAD.search(text)
    if quad and any(len(octet) > 1 and octet.startswith("0") for octet in quad.groups()):
        raise AssetRefused(
            "leading_zero",
            _(
                "'%(value)s' has a leading zero in an IPv4 number, which some tools read as "
                "octal and others as decimal; write it without leading zeros."
            ),
            value=value,
        )
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise AssetRefused(
            "invalid", _("'%(value)s' is not an IPv4 or IPv6 address."), value=value
        ) from None


def _parse_address(text: str, value: str) -> Address:
    """One address of a claim, an IPv4-mapped IPv6 address as the IPv4 address inside it."""
    address = _read_address(text, value)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _parse_ip(text: str, allow_documentation: bool) -> NetworkAsset:
    if "/" in text:
        raise AssetRefused(
            "wrong_kind", _("'%(value)s' is a prefix; register it as kind cidr."), value=text
        )
    if "-" in text:
        raise AssetRefused(
            "wrong_kind", _("'%(value)s' is a range; register it as kind range."), value=text
        )
    address = _parse_address(text, text)
    number = int(address)
    _refuse_special(text, address.version, number, number, allow_documentation)
    return NetworkAsset(
        kind="ip", value=str(address), version=address.version, first=number, last=number
    )


def _too_wide(value: str, version: int) -> AssetRefused:
    return AssetRefused(
        "too_wide",
        _(
            "'%(value)s' spans more than a /%(limit)s, wider than any one organisation is "
            "allotted; register the prefixes you hold."
        ),
        value=value,
        limit=WIDEST_PREFIX[version],
    )


def _parse_cidr(text: str, allow_documentation: bool) -> NetworkAsset:
    address_text, slash, length_text = text.partition("/")
    if not slash:
        raise AssetRefused(
            "invalid",
            _("'%(value)s' has no prefix length; write it as address/length, e.g. 192.0.2.0/24."),
            value=text,
        )
    # Only a plain number: ipaddress would also read netmasks (/255.255.255.0) and host masks
    # (/0.0.0.255), and one spelling per prefix keeps the registry and its CSV unambiguous.
    if not (length_text.isascii() and length_text.isdigit()) or (
        len(length_text) > 1 and length_text.startswith("0")
    ):
        raise AssetRefused(
            "invalid",
            _("'%(value)s' has no valid prefix length after the slash (a number, e.g. /24)."),
            value=text,
        )
    address = _read_address(address_text, text)
    length = int(length_text)
    if length > address.max_prefixlen:
        raise AssetRefused(
            "invalid",
            _("'%(value)s' has a prefix length longer than the address (at most /%(max)s)."),
            value=text,
            max=address.max_prefixlen,
        )
    if (
        isinstance(address, ipaddress.IPv6Address)
        and address.ipv4_mapped is not None
        and length >= 96
    ):
        # ::ffff:a.b.c.d/length is the IPv4 prefix inside, its length counted in IPv4 bits.
        # A shorter prefix reaches beyond ::ffff:0:0/96 into reserved space and is refused
        # as IPv6 below.
        address, length = address.ipv4_mapped, length - 96
    network = ipaddress.ip_network(f"{address}/{length}", strict=False)
    if network.network_address != address:
        raise AssetRefused(
            "host_bits",
            _(
                "'%(value)s' has host bits set: the network with that length is %(network)s; "
                "register that, or the single address as kind ip."
            ),
            value=text,
            network=network,
        )
    if length < WIDEST_PREFIX[network.version]:
        raise _too_wide(text, network.version)
    first, last = int(network.network_address), int(network.broadcast_address)
    _refuse_special(text, network.version, first, last, allow_documentation)
    return NetworkAsset(
        kind="cidr", value=str(network), version=network.version, first=first, last=last
    )


def _parse_range(text: str, allow_documentation: bool) -> NetworkAsset:
    parts = text.split("-")
    if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
        raise AssetRefused(
            "invalid",
            _("'%(value)s' is not a range; write it as FIRST-LAST, e.g. 192.0.2.10-192.0.2.20."),
            value=text,
        )
    first_address = _parse_address(parts[0].strip(), text)
    last_address = _parse_address(parts[1].strip(), text)
    if first_address.version != last_address.version:
        raise AssetRefused(
            "mixed_versions",
            _("'%(value)s' mixes IPv4 and IPv6; a range is of one version."),
            value=text,
        )
    first, last = int(first_address), int(last_address)
    if first > last:
        raise AssetRefused(
            "reversed",
            _("'%(value)s' starts after it ends; write the lower address first."),
            value=text,
        )
    version = first_address.version
    if last - first + 1 > 2 ** (first_address.max_prefixlen - WIDEST_PREFIX[version]):
        raise _too_wide(text, version)
    _refuse_special(text, version, first, last, allow_documentation)
    return NetworkAsset(
        kind="range",
        value=f"{first_address}-{last_address}",
        version=version,
        first=first,
        last=last,
    )


# --- AS numbers ---------------------------------------------------------------------------------

_ASN = re.compile(r"(?:AS)?(\d+)(?:\.(\d+))?", re.IGNORECASE | re.ASCII)

# IANA's 16- and 32-bit AS number registries: what no organisation holds.
ASN_BLOCKS: tuple[tuple[int, int, str, Any], ...] = (
    (0, 0, "reserved", _("reserved (RFC 7607)")),
    (23456, 23456, "reserved", _("AS_TRANS, reserved for 4-byte AS transition (RFC 6793)")),
    (64496, 64511, "documentation", _("reserved for documentation (RFC 5398)")),
    (64512, 65534, "private", _("reserved for private use (RFC 6996)")),
    (65535, 65535, "reserved", _("reserved (RFC 7300)")),
    (65536, 65551, "documentation", _("reserved for documentation (RFC 5398)")),
    (65552, 131071, "reserved", _("reserved by IANA")),
    (4200000000, 4294967294, "private", _("reserved for private use (RFC 6996)")),
    (4294967295, 4294967295, "reserved", _("reserved (RFC 7300)")),
)


def _parse_asn(text: str, allow_documentation: bool) -> NetworkAsset:
    match = _ASN.fullmatch(text)
    if match is None:
        raise AssetRefused(
            "invalid",
            _("'%(value)s' is not an AS number; write it as AS64500 or 64500."),
            value=text,
        )
    high, low = match.groups()
    if low is None:
        number = int(high)
    else:  # asdot: high.low = high × 65536 + low, each part 16 bits
        if int(high) > 0xFFFF or int(low) > 0xFFFF:
            number = MAX_ASN + 1
        else:
            number = int(high) * 65536 + int(low)
    if number > MAX_ASN:
        raise AssetRefused(
            "invalid",
            _("'%(value)s' is beyond the largest AS number (4294967295)."),
            value=text,
        )
    for low_bound, high_bound, code, what in ASN_BLOCKS:
        if low_bound <= number <= high_bound:
            if code == "documentation" and allow_documentation:
                break
            raise AssetRefused(
                code,
                _(
                    "'%(value)s' is %(what)s; only AS numbers assigned to an organisation can be registered."
                ),
                value=text,
                what=what,
            )
    return NetworkAsset(kind="asn", value=f"AS{number}", asn=number)


# --- domains ------------------------------------------------------------------------------------

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?", re.ASCII)
# Special-use names (RFC 6761, 6762, 6761's .localhost, 7686, 8375, 9476) and the ICANN-reserved
# .internal: never resolved on the public internet, so never an organisation's internet asset.
SPECIAL_USE_TLDS = frozenset({"localhost", "local", "internal", "invalid", "test", "onion", "alt"})
SPECIAL_USE_SUFFIXES = ("arpa",)  # reverse-mapping zones and home.arpa (RFC 8375)
# Names reserved for examples: RFC 2606's, and those JPRS keeps out of registration in .jp.
DOCUMENTATION_DOMAINS = (
    "example",
    "example.com",
    "example.net",
    "example.org",
    "example.jp",
    *(f"example.{sld}.jp" for sld in ("ac", "ad", "co", "ed", "go", "gr", "lg", "ne", "or")),
)


def _is_under(name: str, parent: str) -> bool:
    return name == parent or name.endswith("." + parent)


def _parse_domain(text: str, include_subdomains: bool, allow_documentation: bool) -> NetworkAsset:
    if text.startswith("*."):
        raise AssetRefused(
            "wildcard",
            _(
                "'%(value)s' is a wildcard; register the domain without '*.' and include its "
                "subdomains."
            ),
            value=text,
        )
    if _looks_like_address(text):
        raise AssetRefused(
            "ip_literal",
            _("'%(value)s' is an IP address, not a domain name; register it as kind ip."),
            value=text,
        )
    if not text.isascii():
        try:
            idna.encode(text, uts46=True, transitional=False)
        except (idna.IDNAError, UnicodeError) as error:
            raise AssetRefused(
                "invalid",
                _("'%(value)s' is not a valid internationalised domain name (%(reason)s)."),
                value=text,
                reason=error,
            ) from None
    name = normalise_hostname(text) or ""
    if _looks_like_address(name):  # full-width digits read as an address after mapping
        raise AssetRefused(
            "ip_literal",
            _("'%(value)s' is an IP address, not a domain name; register it as kind ip."),
            value=text,
        )
    if len(name) > MAX_DOMAIN_LENGTH:
        raise AssetRefused(
            "too_long",
            _("'%(value)s' is longer than a domain name can be (%(max)s characters)."),
            value=text,
            max=MAX_DOMAIN_LENGTH,
        )
    labels = name.split(".")
    for label in labels:
        if not label:
            raise AssetRefused(
                "invalid",
                _("'%(value)s' has an empty label (two dots in a row, or a dot at the start)."),
                value=text,
            )
        if len(label) > MAX_LABEL_LENGTH:
            raise AssetRefused(
                "invalid",
                _("'%(value)s' has a label longer than %(max)s characters: '%(label)s'."),
                value=text,
                max=MAX_LABEL_LENGTH,
                label=label,
            )
        if not _LABEL.fullmatch(label):
            raise AssetRefused(
                "invalid",
                _(
                    "'%(value)s' has a label with characters a domain name cannot hold: "
                    "'%(label)s' (letters, digits and inner hyphens only)."
                ),
                value=text,
                label=label,
            )
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError):
                raise AssetRefused(
                    "invalid",
                    _("'%(value)s' has a label that is not a valid IDNA A-label: '%(label)s'."),
                    value=text,
                    label=label,
                ) from None
    tld = labels[-1]
    if tld in SPECIAL_USE_TLDS or tld in SPECIAL_USE_SUFFIXES:
        raise AssetRefused(
            "special_use",
            _(
                "'%(value)s' is under .%(tld)s, a special-use name that is never resolved on "
                "the internet."
            ),
            value=text,
            tld=tld,
        )
    if len(labels) < 2:
        raise AssetRefused(
            "single_label",
            _("'%(value)s' is a single label; register a domain such as example.co.jp."),
            value=text,
        )
    if tld.isdigit():
        raise AssetRefused(
            "invalid",
            _("'%(value)s' ends in an all-numeric label, which no top-level domain is."),
            value=text,
        )
    if not allow_documentation and any(_is_under(name, parent) for parent in DOCUMENTATION_DOMAINS):
        raise AssetRefused(
            "documentation",
            _("'%(value)s' is reserved for documentation and examples; nobody can own it."),
            value=text,
        )
    return NetworkAsset(
        kind="domain", value=name, domain=name, include_subdomains=include_subdomains
    )


def _looks_like_address(text: str) -> bool:
    candidate = text.strip().removeprefix("[").removesuffix("]").rstrip(".")
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


# --- the entry point ----------------------------------------------------------------------------


def parse_asset(
    kind: str,
    value: str,
    include_subdomains: bool = False,
    *,
    allow_documentation: bool = False,
) -> NetworkAsset:
    """The claim ``value`` of ``kind`` (one of ``KINDS``) in canonical form, or
    ``AssetRefused`` saying why it cannot be registered (module docstring: the rules).
    White space around the value is ignored."""
    kind_text = kind.strip().lower() if isinstance(kind, str) else kind
    if kind_text not in KINDS:
        raise AssetRefused(
            "unknown_kind",
            _("'%(kind)s' is not a kind of asset; use one of %(kinds)s."),
            kind=kind,
            kinds=", ".join(KINDS),
        )
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise AssetRefused("empty", _("The %(kind)s value is empty."), kind=kind_text)
    if any(character.isspace() for character in text) and kind_text != "range":
        raise AssetRefused("invalid", _("'%(value)s' contains white space."), value=text)
    if include_subdomains and kind_text != "domain":
        raise AssetRefused(
            "subdomains_not_domain",
            _("'%(value)s' is not a domain; only domains can include subdomains."),
            value=text,
        )
    if kind_text == "ip":
        return _parse_ip(text, allow_documentation)
    if kind_text == "cidr":
        return _parse_cidr(text, allow_documentation)
    if kind_text == "range":
        return _parse_range(text, allow_documentation)
    if kind_text == "asn":
        return _parse_asn(text, allow_documentation)
    return _parse_domain(text, bool(include_subdomains), allow_documentation)


def overlaps(a: NetworkAsset, b: NetworkAsset) -> bool:
    """Whether two claims cover something in common: addresses of one version in both
    intervals, the same AS number, or a domain name both cover (the same name, or a name under
    a domain claimed with its subdomains). Claims of different kinds of identifier (an address
    and a domain) never overlap: which addresses a name resolves to changes over time."""
    if a.kind in INTERVAL_KINDS and b.kind in INTERVAL_KINDS:
        return a.version == b.version and a.first <= b.last and b.first <= a.last
    if a.kind == "asn" and b.kind == "asn":
        return a.asn == b.asn
    if a.kind == "domain" and b.kind == "domain":
        if a.domain == b.domain:
            return True
        return (a.include_subdomains and _is_under(b.domain, a.domain)) or (
            b.include_subdomains and _is_under(a.domain, b.domain)
        )
    return False
