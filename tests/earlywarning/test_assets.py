"""Network asset claims: each refusal with the message a person sees, and the one canonical form
of every way of writing the same asset (IPv6 edge forms above all). No database."""

from __future__ import annotations

import ipaddress

import pytest
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st

from mamori.earlywarning.assets import AssetRefused, NetworkAsset, overlaps, parse_asset

PUBLIC_ONLY = (
    "; only public addresses an organisation holds can be registered."  # end of the messages
)


def refusal(kind, value, include_subdomains=False, **options) -> AssetRefused:
    with pytest.raises(AssetRefused) as caught:
        parse_asset(kind, value, include_subdomains, **options)
    return caught.value


def is_in(value, block, what):
    return f"'{value}' is in {block}, {what}{PUBLIC_ONLY}"


def reaches(value, block, what):
    return f"'{value}' reaches into {block}, {what}{PUBLIC_ONLY}"


RFC1918 = "private address space (RFC 1918)"
OUTSIDE = "reserved address space outside global unicast 2000::/3"

# (kind, value, code, message): refused even with allow_documentation=True.
REFUSED = [
    # private, shared, loopback, link-local, multicast, unspecified, benchmarking, reserved
    ("ip", "10.1.2.3", "private", is_in("10.1.2.3", "10.0.0.0/8", RFC1918)),
    ("ip", "172.31.255.255", "private", is_in("172.31.255.255", "172.16.0.0/12", RFC1918)),
    ("ip", "192.168.0.1", "private", is_in("192.168.0.1", "192.168.0.0/16", RFC1918)),
    (
        "ip",
        "100.64.0.1",
        "private",
        is_in(
            "100.64.0.1",
            "100.64.0.0/10",
            "shared address space for carrier-grade NAT (RFC 6598)",
        ),
    ),
    (
        "ip",
        "fd12:3456::1",
        "private",
        is_in("fd12:3456::1", "fc00::/7", "unique local addresses (RFC 4193)"),
    ),
    ("ip", "127.0.0.1", "loopback", is_in("127.0.0.1", "127.0.0.0/8", "loopback addresses")),
    ("ip", "::1", "loopback", is_in("::1", "::1/128", "loopback addresses")),
    (
        "ip",
        "169.254.169.254",
        "link_local",
        is_in("169.254.169.254", "169.254.0.0/16", "link-local addresses"),
    ),
    ("ip", "FE80::1", "link_local", is_in("FE80::1", "fe80::/10", "link-local addresses")),
    ("ip", "224.0.0.251", "multicast", is_in("224.0.0.251", "224.0.0.0/4", "multicast addresses")),
    ("ip", "ff02::1", "multicast", is_in("ff02::1", "ff00::/8", "multicast addresses")),
    ("ip", "0.0.0.0", "unspecified", is_in("0.0.0.0", "0.0.0.0/32", "the unspecified address")),  # noqa: S104 - a refused claim, not a bind
    ("ip", "0.1.2.3", "reserved", is_in("0.1.2.3", "0.0.0.0/8", "“this network” (RFC 791)")),
    ("ip", "::", "unspecified", is_in("::", "::/128", "the unspecified address")),
    (
        "ip",
        "0:0:0:0:0:0:0:0",
        "unspecified",
        is_in("0:0:0:0:0:0:0:0", "::/128", "the unspecified address"),
    ),
    (
        "ip",
        "198.18.0.1",
        "benchmarking",
        is_in("198.18.0.1", "198.18.0.0/15", "benchmarking addresses (RFC 2544)"),
    ),
    (
        "ip",
        "198.19.255.255",
        "benchmarking",
        is_in("198.19.255.255", "198.18.0.0/15", "benchmarking addresses (RFC 2544)"),
    ),
    (
        "ip",
        "2001:2::1",
        "benchmarking",
        is_in("2001:2::1", "2001:2::/48", "benchmarking addresses (RFC 5180)"),
    ),
    (
        "ip",
        "240.0.0.1",
        "reserved",
        is_in("240.0.0.1", "240.0.0.0/4", "reserved address space (RFC 1112)"),
    ),
    (
        "ip",
        "255.255.255.255",
        "reserved",
        is_in("255.255.255.255", "255.255.255.255/32", "the limited broadcast address"),
    ),
    (
        "ip",
        "192.0.0.9",
        "reserved",
        is_in("192.0.0.9", "192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
    ),
    (
        "ip",
        "192.88.99.1",
        "reserved",
        is_in(
            "192.88.99.1", "192.88.99.0/24", "the deprecated 6to4 relay anycast block (RFC 7526)"
        ),
    ),
    (
        "ip",
        "fec0::1",
        "reserved",
        is_in("fec0::1", "fec0::/10", "site-local addresses (deprecated, RFC 3879)"),
    ),
    ("ip", "4000::1", "reserved", is_in("4000::1", "4000::/2", OUTSIDE)),
    ("ip", "100::1", "reserved", is_in("100::1", "100::/64", "the discard-only prefix (RFC 6666)")),
    (
        "ip",
        "2001:4::1",
        "reserved",
        is_in("2001:4::1", "2001::/23", "IETF protocol assignments (RFC 2928)"),
    ),
    # IPv4 inside IPv6: the mapped form is judged as the IPv4 address, the others are refused
    ("ip", "::ffff:10.0.0.1", "private", is_in("::ffff:10.0.0.1", "10.0.0.0/8", RFC1918)),
    (
        "ip",
        "::FFFF:7f00:1",
        "loopback",
        is_in("::FFFF:7f00:1", "127.0.0.0/8", "loopback addresses"),
    ),
    (
        "ip",
        "::ffff:169.254.169.254",
        "link_local",
        is_in("::ffff:169.254.169.254", "169.254.0.0/16", "link-local addresses"),
    ),
    (
        "ip",
        "::8.8.8.8",
        "reserved",
        is_in("::8.8.8.8", "::/96", "IPv4-compatible addresses (deprecated, RFC 4291)"),
    ),
    (
        "ip",
        "64:ff9b::10.0.0.1",
        "reserved",
        is_in(
            "64:ff9b::10.0.0.1",
            "64:ff9b::/96",
            "the NAT64 prefix (RFC 6052); register the IPv4 address",
        ),
    ),
    (
        "ip",
        "2002:a00:1::1",
        "reserved",
        is_in(
            "2002:a00:1::1", "2002::/16", "the 6to4 prefix (RFC 3056); register the IPv4 address"
        ),
    ),
    (
        "ip",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "reserved",
        is_in(
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001::/32",
            "the Teredo prefix (RFC 4380); register the IPv4 address",
        ),
    ),
    # forms that are not one unambiguous address
    (
        "ip",
        "fe80::1%eth0",
        "zone_id",
        "'fe80::1%eth0' carries a zone id (the part after %), which names an interface of one "
        "machine, not an address on the internet; write the address without it.",
    ),
    (
        "ip",
        "2001:db8::1%1",
        "zone_id",
        "'2001:db8::1%1' carries a zone id (the part after %), which names an interface of one "
        "machine, not an address on the internet; write the address without it.",
    ),
    (
        "ip",
        "010.0.0.1",
        "leading_zero",
        "'010.0.0.1' has a leading zero in an IPv4 number, which some tools read as octal and "
        "others as decimal; write it without leading zeros.",
    ),
    (
        "ip",
        "::ffff:192.0.2.01",
        "leading_zero",
        "'::ffff:192.0.2.01' has a leading zero in an IPv4 number, which some tools read as "
        "octal and others as decimal; write it without leading zeros.",
    ),
    ("ip", "1.2.3", "invalid", "'1.2.3' is not an IPv4 or IPv6 address."),
    ("ip", "256.1.1.1", "invalid", "'256.1.1.1' is not an IPv4 or IPv6 address."),
    ("ip", "0x7f.0.0.1", "invalid", "'0x7f.0.0.1' is not an IPv4 or IPv6 address."),
    ("ip", "3232235521", "invalid", "'3232235521' is not an IPv4 or IPv6 address."),
    ("ip", "1:2:3:4:5:6:7:8:9", "invalid", "'1:2:3:4:5:6:7:8:9' is not an IPv4 or IPv6 address."),
    ("ip", "2001:db8:::1", "invalid", "'2001:db8:::1' is not an IPv4 or IPv6 address."),
    ("ip", "１.２.３.４", "invalid", "'１.２.３.４' is not an IPv4 or IPv6 address."),
    ("ip", "192.0.2.1 x", "invalid", "'192.0.2.1 x' contains white space."),
    ("ip", "192.0.2.0/24", "wrong_kind", "'192.0.2.0/24' is a prefix; register it as kind cidr."),
    (
        "ip",
        "192.0.2.1-192.0.2.9",
        "wrong_kind",
        "'192.0.2.1-192.0.2.9' is a range; register it as kind range.",
    ),
    ("ip", "   ", "empty", "The ip value is empty."),
    # prefixes
    (
        "cidr",
        "192.0.2.1/24",
        "host_bits",
        "'192.0.2.1/24' has host bits set: the network with that length is 192.0.2.0/24; "
        "register that, or the single address as kind ip.",
    ),
    (
        "cidr",
        "2001:db8::1/64",
        "host_bits",
        "'2001:db8::1/64' has host bits set: the network with that length is 2001:db8::/64; "
        "register that, or the single address as kind ip.",
    ),
    (
        "cidr",
        "8.0.0.0/7",
        "too_wide",
        "'8.0.0.0/7' spans more than a /8, wider than any one organisation is allotted; register "
        "the prefixes you hold.",
    ),
    (
        "cidr",
        "2400::/18",
        "too_wide",
        "'2400::/18' spans more than a /19, wider than any one organisation is allotted; "
        "register the prefixes you hold.",
    ),
    (
        "cidr",
        "::ffff:0:0/96",
        "too_wide",
        "'::ffff:0:0/96' spans more than a /8, wider than any one organisation is allotted; "
        "register the prefixes you hold.",
    ),
    ("cidr", "10.0.0.0/8", "private", reaches("10.0.0.0/8", "10.0.0.0/8", RFC1918)),
    ("cidr", "172.0.0.0/8", "private", reaches("172.0.0.0/8", "172.16.0.0/12", RFC1918)),
    (
        "cidr",
        "::ffff:10.0.0.0/104",
        "private",
        reaches("::ffff:10.0.0.0/104", "10.0.0.0/8", RFC1918),
    ),
    (
        "cidr",
        "192.0.0.0/8",
        "reserved",
        reaches("192.0.0.0/8", "192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
    ),
    ("cidr", "fe80::/64", "link_local", reaches("fe80::/64", "fe80::/10", "link-local addresses")),
    ("cidr", "fe80::%eth0/64", "zone_id", None),
    ("cidr", "2000::/3", "too_wide", None),
    ("cidr", "6000::/19", "reserved", reaches("6000::/19", "4000::/2", OUTSIDE)),
    (
        "cidr",
        "192.0.2.0",
        "invalid",
        "'192.0.2.0' has no prefix length; write it as address/length, e.g. 192.0.2.0/24.",
    ),
    (
        "cidr",
        "192.0.2.0/255.255.255.0",
        "invalid",
        "'192.0.2.0/255.255.255.0' has no valid prefix length after the slash (a number, e.g. /24).",
    ),
    (
        "cidr",
        "192.0.2.0/024",
        "invalid",
        "'192.0.2.0/024' has no valid prefix length after the slash (a number, e.g. /24).",
    ),
    ("cidr", "192.0.2.0/", "invalid", None),
    (
        "cidr",
        "192.0.2.0/33",
        "invalid",
        "'192.0.2.0/33' has a prefix length longer than the address (at most /32).",
    ),
    (
        "cidr",
        "2001:db8::/129",
        "invalid",
        "'2001:db8::/129' has a prefix length longer than the address (at most /128).",
    ),
    # ranges
    (
        "range",
        "198.51.100.20-198.51.100.10",
        "reversed",
        "'198.51.100.20-198.51.100.10' starts after it ends; write the lower address first.",
    ),
    (
        "range",
        "192.0.2.1-2001:db8::1",
        "mixed_versions",
        "'192.0.2.1-2001:db8::1' mixes IPv4 and IPv6; a range is of one version.",
    ),
    (
        "range",
        "1.0.0.0-2.0.0.0",
        "too_wide",
        "'1.0.0.0-2.0.0.0' spans more than a /8, wider than any one organisation is allotted; "
        "register the prefixes you hold.",
    ),
    (
        "range",
        "2400::-2400:2000::",
        "too_wide",
        "'2400::-2400:2000::' spans more than a /19, wider than any one organisation is "
        "allotted; register the prefixes you hold.",
    ),
    (
        "range",
        "9.255.255.0-10.0.0.5",
        "private",
        reaches("9.255.255.0-10.0.0.5", "10.0.0.0/8", RFC1918),
    ),
    (
        "range",
        "::ffff:10.0.0.1-::ffff:10.0.0.9",
        "private",
        reaches("::ffff:10.0.0.1-::ffff:10.0.0.9", "10.0.0.0/8", RFC1918),
    ),
    (
        "range",
        "192.0.2.1",
        "invalid",
        "'192.0.2.1' is not a range; write it as FIRST-LAST, e.g. 192.0.2.10-192.0.2.20.",
    ),
    ("range", "192.0.2.1-", "invalid", None),
    ("range", "192.0.2.1-192.0.2.5-192.0.2.9", "invalid", None),
    ("range", "192.0.2.1-192.0.2.010", "leading_zero", None),
    ("range", "fe80::1%eth0-fe80::9", "zone_id", None),
    # AS numbers
    (
        "asn",
        "0",
        "reserved",
        "'0' is reserved (RFC 7607); only AS numbers assigned to an organisation can be registered.",
    ),
    ("asn", "AS0", "reserved", None),
    (
        "asn",
        "23456",
        "reserved",
        "'23456' is AS_TRANS, reserved for 4-byte AS transition (RFC 6793); only AS numbers "
        "assigned to an organisation can be registered.",
    ),
    (
        "asn",
        "AS64512",
        "private",
        "'AS64512' is reserved for private use (RFC 6996); only AS numbers assigned to an "
        "organisation can be registered.",
    ),
    ("asn", "65534", "private", None),
    (
        "asn",
        "65535",
        "reserved",
        "'65535' is reserved (RFC 7300); only AS numbers assigned to an organisation can be registered.",
    ),
    (
        "asn",
        "65552",
        "reserved",
        "'65552' is reserved by IANA; only AS numbers assigned to an organisation can be registered.",
    ),
    ("asn", "131071", "reserved", None),
    ("asn", "4200000000", "private", None),
    ("asn", "4294967294", "private", None),
    ("asn", "AS4294967295", "reserved", None),
    ("asn", "4294967296", "invalid", "'4294967296' is beyond the largest AS number (4294967295)."),
    (
        "asn",
        "65535.65536",
        "invalid",
        "'65535.65536' is beyond the largest AS number (4294967295).",
    ),
    ("asn", "AS-1", "invalid", "'AS-1' is not an AS number; write it as AS64500 or 64500."),
    ("asn", "ASN64500", "invalid", None),
    ("asn", "AS 64500", "invalid", "'AS 64500' contains white space."),
    ("asn", "６４５００", "invalid", None),
    # domains
    (
        "domain",
        "192.0.2.1",
        "ip_literal",
        "'192.0.2.1' is an IP address, not a domain name; register it as kind ip.",
    ),
    ("domain", "[2001:db8::1]", "ip_literal", None),
    ("domain", "2001:db8::1", "ip_literal", None),
    ("domain", "１９２.０.２.１", "ip_literal", None),
    (
        "domain",
        "intranet",
        "single_label",
        "'intranet' is a single label; register a domain such as example.co.jp.",
    ),
    ("domain", "jp.", "single_label", None),
    (
        "domain",
        "localhost",
        "special_use",
        "'localhost' is under .localhost, a special-use name that is never resolved on the internet.",
    ),
    ("domain", "www.localhost", "special_use", None),
    (
        "domain",
        "printer.local",
        "special_use",
        "'printer.local' is under .local, a special-use name that is never resolved on the internet.",
    ),
    ("domain", "corp.internal", "special_use", None),
    ("domain", "x.invalid", "special_use", None),
    ("domain", "bank.test", "special_use", None),
    ("domain", "abc.onion", "special_use", None),
    (
        "domain",
        "router.home.arpa",
        "special_use",
        "'router.home.arpa' is under .arpa, a special-use name that is never resolved on the internet.",
    ),
    ("domain", "1.2.0.192.in-addr.arpa", "special_use", None),
    (
        "domain",
        "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 61 + ".jp",
        "too_long",
        None,
    ),
    (
        "domain",
        "a" * 64 + ".jp",
        "invalid",
        f"'{'a' * 64}.jp' has a label longer than 63 characters: '{'a' * 64}'.",
    ),
    (
        "domain",
        "exa_mple.jp",
        "invalid",
        "'exa_mple.jp' has a label with characters a domain name cannot hold: 'exa_mple' "
        "(letters, digits and inner hyphens only).",
    ),
    ("domain", "-bank.jp", "invalid", None),
    ("domain", "bank-.jp", "invalid", None),
    ("domain", "ba!nk.jp", "invalid", None),
    (
        "domain",
        "bank.jp..",
        "invalid",
        "'bank.jp..' has an empty label (two dots in a row, or a dot at the start).",
    ),
    ("domain", ".bank.jp", "invalid", None),
    (
        "domain",
        "xn--zz.jp",
        "invalid",
        "'xn--zz.jp' has a label that is not a valid IDNA A-label: 'xn--zz'.",
    ),
    ("domain", "\u0301bank.jp", "invalid", None),
    ("domain", "ba nk.jp", "invalid", "'ba nk.jp' contains white space."),
    (
        "domain",
        "bank.123",
        "invalid",
        "'bank.123' ends in an all-numeric label, which no top-level domain is.",
    ),
    (
        "domain",
        "*.bank.jp",
        "wildcard",
        "'*.bank.jp' is a wildcard; register the domain without '*.' and include its subdomains.",
    ),
    # kinds and flags
    (
        "host",
        "bank.jp",
        "unknown_kind",
        "'host' is not a kind of asset; use one of ip, cidr, range, asn, domain.",
    ),
    ("domain", "", "empty", "The domain value is empty."),
]

# Refused without allow_documentation, accepted with it: (kind, value, message).
DOCUMENTATION = [
    ("ip", "192.0.2.1", is_in("192.0.2.1", "192.0.2.0/24", "documentation addresses (RFC 5737)")),
    (
        "ip",
        "198.51.100.7",
        is_in("198.51.100.7", "198.51.100.0/24", "documentation addresses (RFC 5737)"),
    ),
    (
        "ip",
        "203.0.113.255",
        is_in("203.0.113.255", "203.0.113.0/24", "documentation addresses (RFC 5737)"),
    ),
    (
        "ip",
        "2001:db8::1",
        is_in("2001:db8::1", "2001:db8::/32", "documentation addresses (RFC 3849)"),
    ),
    (
        "ip",
        "2001:0DB8:0:0:0:0:0:1",
        is_in("2001:0DB8:0:0:0:0:0:1", "2001:db8::/32", "documentation addresses (RFC 3849)"),
    ),
    ("ip", "3fff::1", is_in("3fff::1", "3fff::/20", "documentation addresses (RFC 9637)")),
    (
        "ip",
        "::ffff:192.0.2.1",
        is_in("::ffff:192.0.2.1", "192.0.2.0/24", "documentation addresses (RFC 5737)"),
    ),
    (
        "cidr",
        "2001:db8::/32",
        reaches("2001:db8::/32", "2001:db8::/32", "documentation addresses (RFC 3849)"),
    ),
    (
        "range",
        "203.0.113.10-203.0.113.20",
        reaches(
            "203.0.113.10-203.0.113.20", "203.0.113.0/24", "documentation addresses (RFC 5737)"
        ),
    ),
    (
        "asn",
        "AS64500",
        "'AS64500' is reserved for documentation (RFC 5398); only AS numbers assigned to an "
        "organisation can be registered.",
    ),
    ("asn", "64511", None),
    ("asn", "65536", None),
    ("asn", "1.15", None),
    (
        "domain",
        "example.com",
        "'example.com' is reserved for documentation and examples; nobody can own it.",
    ),
    ("domain", "www.example.org", None),
    ("domain", "mail.example.net", None),
    ("domain", "bank.example", None),
    (
        "domain",
        "EXAMPLE.CO.JP",
        "'EXAMPLE.CO.JP' is reserved for documentation and examples; nobody can own it.",
    ),
    ("domain", "example.jp", None),
    ("domain", "ｅｘａｍｐｌｅ.com", None),
]


@pytest.mark.parametrize(("kind", "value", "code", "message"), REFUSED)
def test_refused(kind, value, code, message):
    for allow_documentation in (False, True):
        refused = refusal(kind, value, allow_documentation=allow_documentation)
        assert refused.code == code
        with translation.override("en"):
            text = str(refused)
        if message is not None:
            assert text == message
        else:  # the same rule as a row with its message: the value is named
            assert f"'{value.strip()}'" in text or value.strip() == ""


@pytest.mark.parametrize(("kind", "value", "message"), DOCUMENTATION)
def test_documentation_is_refused_unless_allowed(kind, value, message):
    refused = refusal(kind, value)
    assert refused.code == "documentation"
    with translation.override("en"):
        if message is not None:
            assert str(refused) == message
        else:
            assert f"'{value}'" in str(refused)
    assert parse_asset(kind, value, allow_documentation=True).kind == kind


def test_subdomains_are_only_for_domains():
    refused = refusal("cidr", "198.51.100.0/24", True, allow_documentation=True)
    assert refused.code == "subdomains_not_domain"
    with translation.override("en"):
        assert str(refused) == (
            "'198.51.100.0/24' is not a domain; only domains can include subdomains."
        )


def test_the_message_is_rendered_in_the_language_of_whoever_reads_it():
    with translation.override("en"):
        refused = refusal("ip", "10.0.0.1")  # refused in an English request...
    with translation.override("ja"):  # ...shown to a Japanese reader later
        assert str(refused) == (
            "「10.0.0.1」は 10.0.0.0/8（プライベートアドレス空間（RFC 1918））に含まれます。"
            "登録できるのは組織が保有する公開アドレスだけです。"
        )
    with translation.override("ja"):
        assert str(refusal("asn", "AS64512")) == (
            "「AS64512」はプライベート用に予約済み（RFC 6996）です。"
            "登録できるのは組織に割り当てられた AS 番号だけです。"
        )
    assert isinstance(refused, ValueError)


def ip(value, version, first, last=None):
    return NetworkAsset("ip", value, version, first, first if last is None else last)


V6_DOC_1 = 0x20010DB8 << 96 | 1

# (kind, value as written, include_subdomains, the canonical asset). allow_documentation=True.
CANONICAL = [
    ("ip", " 192.0.2.1\t", False, ip("192.0.2.1", 4, 0xC0000201)),
    ("ip", "2001:db8::1", False, ip("2001:db8::1", 6, V6_DOC_1)),
    ("ip", "2001:DB8::1", False, ip("2001:db8::1", 6, V6_DOC_1)),
    ("ip", "2001:0db8:0000:0000:0000:0000:0000:0001", False, ip("2001:db8::1", 6, V6_DOC_1)),
    ("ip", "2001:0DB8::0:1", False, ip("2001:db8::1", 6, V6_DOC_1)),
    (
        "ip",
        "2001:db8:0:0:1:0:0:1",
        False,
        ip("2001:db8::1:0:0:1", 6, 0x20010DB8 << 96 | 1 << 48 | 1),
    ),
    (
        "ip",
        "2001:db8::192.0.2.1",
        False,
        ip("2001:db8::c000:201", 6, 0x20010DB8 << 96 | 0xC0000201),
    ),
    ("ip", "::ffff:192.0.2.1", False, ip("192.0.2.1", 4, 0xC0000201)),
    ("ip", "::FFFF:C000:0201", False, ip("192.0.2.1", 4, 0xC0000201)),
    ("ip", "0:0:0:0:0:ffff:192.0.2.1", False, ip("192.0.2.1", 4, 0xC0000201)),
    ("ip", "::ffff:1.2.3.4", False, ip("1.2.3.4", 4, 0x01020304)),
    (
        "cidr",
        "2001:DB8::/32",
        False,
        NetworkAsset("cidr", "2001:db8::/32", 6, 0x20010DB8 << 96, (0x20010DB9 << 96) - 1),
    ),
    (
        "cidr",
        "::ffff:198.51.100.0/120",
        False,
        NetworkAsset("cidr", "198.51.100.0/24", 4, 0xC6336400, 0xC63364FF),
    ),
    (
        "cidr",
        "203.0.113.7/32",
        False,
        NetworkAsset("cidr", "203.0.113.7/32", 4, 0xCB007107, 0xCB007107),
    ),
    (
        "cidr",
        "2400::/19",
        False,
        NetworkAsset("cidr", "2400::/19", 6, 0x2400 << 112, (0x2400 << 112) + 2**109 - 1),
    ),
    ("cidr", "1.0.0.0/8", False, NetworkAsset("cidr", "1.0.0.0/8", 4, 1 << 24, (2 << 24) - 1)),
    (
        "range",
        "198.51.100.10 - 198.51.100.20",
        False,
        NetworkAsset("range", "198.51.100.10-198.51.100.20", 4, 0xC633640A, 0xC6336414),
    ),
    (
        "range",
        "2001:db8::1-2001:DB8:0::FF",
        False,
        NetworkAsset("range", "2001:db8::1-2001:db8::ff", 6, V6_DOC_1, 0x20010DB8 << 96 | 0xFF),
    ),
    (
        "range",
        "::ffff:192.0.2.1-192.0.2.9",
        False,
        NetworkAsset("range", "192.0.2.1-192.0.2.9", 4, 0xC0000201, 0xC0000209),
    ),
    (
        "range",
        "192.0.2.5-192.0.2.5",
        False,
        NetworkAsset("range", "192.0.2.5-192.0.2.5", 4, 0xC0000205, 0xC0000205),
    ),
    (
        "range",
        "2400::-2400:1fff:ffff:ffff:ffff:ffff:ffff:ffff",
        False,
        NetworkAsset(
            "range",
            "2400::-2400:1fff:ffff:ffff:ffff:ffff:ffff:ffff",
            6,
            0x2400 << 112,
            (0x2400 << 112) + 2**109 - 1,
        ),
    ),
    ("asn", "AS64500", False, NetworkAsset("asn", "AS64500", asn=64500)),
    ("asn", "as64500", False, NetworkAsset("asn", "AS64500", asn=64500)),
    ("asn", "64500", False, NetworkAsset("asn", "AS64500", asn=64500)),
    ("asn", "1.10", False, NetworkAsset("asn", "AS65546", asn=65546)),
    ("asn", "AS2.0", False, NetworkAsset("asn", "AS131072", asn=131072)),
    ("asn", "4199999999", False, NetworkAsset("asn", "AS4199999999", asn=4199999999)),
    ("domain", "Bank.CO.JP.", False, NetworkAsset("domain", "bank.co.jp", domain="bank.co.jp")),
    (
        "domain",
        "Straße.DE",
        True,
        NetworkAsset(
            "domain", "xn--strae-oqa.de", domain="xn--strae-oqa.de", include_subdomains=True
        ),
    ),
    (
        "domain",
        "例え。テスト",
        False,
        NetworkAsset("domain", "xn--r8jz45g.xn--zckzah", domain="xn--r8jz45g.xn--zckzah"),
    ),
    ("domain", "ｂａｎｋ.jp", False, NetworkAsset("domain", "bank.jp", domain="bank.jp")),
    (
        "domain",
        "www.example.com",
        True,
        NetworkAsset(
            "domain", "www.example.com", domain="www.example.com", include_subdomains=True
        ),
    ),
    (
        "domain",
        "a" * 63 + ".jp",
        False,
        NetworkAsset("domain", "a" * 63 + ".jp", domain="a" * 63 + ".jp"),
    ),
]


@pytest.mark.parametrize(("kind", "value", "include_subdomains", "expected"), CANONICAL)
def test_canonical_form(kind, value, include_subdomains, expected):
    asset = parse_asset(kind, value, include_subdomains, allow_documentation=True)
    assert asset == expected
    # The canonical value reads back as the same asset: registering it twice is one asset.
    assert parse_asset(kind, asset.value, include_subdomains, allow_documentation=True) == asset
    if asset.first is not None:  # and the interval is what ipaddress says
        if kind == "range":
            first, last = (ipaddress.ip_address(part) for part in asset.value.split("-"))
        else:
            network = ipaddress.ip_network(asset.value)
            first, last = network.network_address, network.broadcast_address
        assert (asset.version, asset.first, asset.last) == (first.version, int(first), int(last))


def test_the_longest_domain_is_accepted_and_one_more_character_is_not():
    longest = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 characters
    assert parse_asset("domain", longest).value == longest
    refused = refusal("domain", longest + "e")
    with translation.override("en"):
        assert str(refused) == (
            f"'{longest}e' is longer than a domain name can be (253 characters)."
        )


def test_display_value_shows_unicode():
    assert parse_asset("domain", "例え.テスト").display_value == "例え.テスト"
    assert parse_asset("domain", "bank.co.jp").display_value == "bank.co.jp"
    assert parse_asset("ip", "2001:DB8::1", allow_documentation=True).display_value == "2001:db8::1"


def doc(kind, value, include_subdomains=False):
    return parse_asset(kind, value, include_subdomains, allow_documentation=True)


OVERLAPS = [
    (doc("cidr", "198.51.100.0/24"), doc("ip", "198.51.100.7"), True),
    (doc("cidr", "198.51.100.0/25"), doc("ip", "198.51.100.128"), False),
    (doc("range", "203.0.113.10-203.0.113.20"), doc("cidr", "203.0.113.16/28"), True),
    (doc("range", "203.0.113.10-203.0.113.20"), doc("cidr", "203.0.113.0/29"), False),
    (doc("range", "203.0.113.10-203.0.113.20"), doc("range", "203.0.113.20-203.0.113.30"), True),
    (doc("range", "203.0.113.10-203.0.113.20"), doc("range", "203.0.113.21-203.0.113.30"), False),
    (doc("cidr", "2001:db8::/32"), doc("ip", "2001:db8:ffff::1"), True),
    (doc("cidr", "2001:db8::/32"), doc("cidr", "192.0.2.0/24"), False),
    (doc("ip", "::ffff:192.0.2.1"), doc("cidr", "192.0.2.0/24"), True),  # the mapped form is IPv4
    (NetworkAsset("ip", "::1", 6, 1, 1), NetworkAsset("ip", "0.0.0.1", 4, 1, 1), False),
    (doc("asn", "AS64500"), doc("asn", "64500"), True),
    (doc("asn", "AS64500"), doc("asn", "AS64501"), False),
    (doc("domain", "example.jp", True), doc("domain", "www.example.jp"), True),
    (doc("domain", "example.jp", True), doc("domain", "a.b.example.jp", True), True),
    (doc("domain", "example.jp"), doc("domain", "www.example.jp"), False),
    (doc("domain", "www.example.jp", True), doc("domain", "example.jp"), False),
    (doc("domain", "Example.JP."), doc("domain", "example.jp"), True),
    (doc("domain", "a.example.jp", True), doc("domain", "b.example.jp", True), False),
    (doc("domain", "example.jp", True), doc("domain", "badexample.jp"), False),
    (doc("domain", "example.jp", True), doc("ip", "192.0.2.1"), False),
    (doc("asn", "64500"), doc("ip", "203.0.113.1"), False),
]


@pytest.mark.parametrize(("a", "b", "expected"), OVERLAPS)
def test_overlaps(a, b, expected):
    assert overlaps(a, b) is expected
    assert overlaps(b, a) is expected


small_ranges = st.tuples(st.integers(0, 63), st.integers(0, 63)).map(sorted)


@settings(max_examples=100, deadline=None)
@given(small_ranges, small_ranges)
def test_overlaps_equals_a_common_address(a, b):
    base = ipaddress.IPv4Address("203.0.113.0")
    claims = [doc("range", f"{base + first}-{base + last}") for first, last in (a, b)]
    common = set(range(a[0], a[1] + 1)) & set(range(b[0], b[1] + 1))
    assert overlaps(*claims) is bool(common)
