"""The matching indexes against brute force: for random registries of nested and overlapping
prefixes and unaligned ranges (IPv4 and IPv6), every address in every text form a feed may
write gets exactly the assets ``ipaddress`` says contain it, in the order they were given;
domains likewise against a plain suffix check. No database."""

from __future__ import annotations

import ipaddress
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mamori.earlywarning import matching
from mamori.earlywarning.matching import (
    AddressIndex,
    AsnIndex,
    DomainIndex,
    normalise_hostname,
    parse_address,
)

BITS = {4: 32, 6: 128}
# Each registry lives in one small region of the address space (a /16 of IPv4, a /104 of IPv6)
# so that its prefixes and ranges nest and overlap often; a few reach the ends of the space.
REGION_BITS = {4: 16, 6: 24}

# Texts that are not addresses a feed row can be matched on (module docstring of matching).
NOT_ADDRESSES = [
    "",
    "   ",
    "not-an-ip",
    "fe80::1%eth0",
    "2001:db8::1%1",
    "010.0.0.1",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "1:2:3:4:5:6:7:8:9",
    "::ffff:010.1.2.3",
    "１.２.３.４",
    "192.0.2.0/24",
    None,
    b"192.0.2.1",
]


@st.composite
def registries(draw, version):
    """A list of (asset id, ipaddress network or (first, last) address pair)."""
    bits = BITS[version]
    region_bits = REGION_BITS[version]
    top = bits - region_bits
    region = draw(st.integers(0, 2**top - 1)) << region_bits
    address = (ipaddress.IPv4Address, ipaddress.IPv6Address)[version == 6]
    assets = []
    for asset_id in range(draw(st.integers(0, 14))):
        shape = draw(st.sampled_from(["prefix", "prefix", "range", "edge"]))
        if shape == "prefix":
            length = draw(st.integers(top, bits))
            base = region + draw(st.integers(0, 2**region_bits - 1))
            network = ipaddress.ip_network((address(base), length), strict=False)
            assets.append((asset_id, network))
        elif shape == "range":
            first = region + draw(st.integers(0, 2**region_bits - 1))
            last = draw(st.integers(first, min(first + 2 ** (region_bits - 2), 2**bits - 1)))
            assets.append((asset_id, (address(first), address(last))))
        else:  # an interval that starts at the first address or ends at the last one
            cut = draw(st.integers(0, 2**bits - 1))
            pair = (
                (address(0), address(cut))
                if draw(st.booleans())
                else (address(cut), address(2**bits - 1))
            )
            assets.append((asset_id, pair))
    # An asset with two intervals (a prefix and a range of the same organisation's claim).
    if assets and draw(st.booleans()):
        assets.append((assets[0][0], assets[-1][1]))
    return assets


def intervals(assets, version):
    for asset_id, claim in assets:
        if isinstance(claim, tuple):
            yield asset_id, version, int(claim[0]), int(claim[1])
        else:
            yield asset_id, version, int(claim.network_address), int(claim.broadcast_address)


def brute_force(assets, address) -> tuple:
    """The ids of the assets containing ``address``, by ``ipaddress``, in the order given."""
    found = []
    for asset_id, claim in assets:
        if isinstance(claim, tuple):
            inside = claim[0].version == address.version and claim[0] <= address <= claim[1]
        else:
            inside = claim.version == address.version and address in claim
        if inside and asset_id not in found:
            found.append(asset_id)
    return tuple(found)


def oracle_address(text):
    """What ``ipaddress`` reads in a feed's text, under matching's rules: white space around it
    ignored, no zone id, a mapped IPv6 address is its IPv4 address. None: not an address."""
    if not isinstance(text, str):
        return None
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            return None
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
    return address


@st.composite
def probes(draw, assets, version):
    """Addresses around the registry's edges and inside its region, written as feeds do."""
    bits = BITS[version]
    candidates = set()
    for _asset_id, _version, first, last in intervals(assets, version):
        candidates.update({first - 1, first, last, last + 1})
    candidates = sorted(value for value in candidates if 0 <= value < 2**bits)
    chosen = draw(st.lists(st.sampled_from(candidates), max_size=40)) if candidates else []
    chosen += draw(st.lists(st.integers(0, 2**bits - 1), max_size=10))
    chosen += [0, 2**bits - 1]
    texts = []
    for value in chosen:
        address = (ipaddress.IPv4Address, ipaddress.IPv6Address)[version == 6](value)
        if version == 4:
            forms = [str(address), f"::ffff:{address}", f"::FFFF:{address}", f" {address}\t"]
        else:
            forms = [str(address), address.exploded, address.exploded.upper(), str(address).upper()]
        texts.append(draw(st.sampled_from(forms)))
    return texts


def check_registry(assets, texts, version):
    index = AddressIndex(intervals(assets, version))
    expected = {}
    for position, text in enumerate(texts):
        address = oracle_address(text)
        want = () if address is None else brute_force(assets, address)
        assert index.lookup(text) == want, (text, assets)
        if address is not None:
            assert index.lookup(int(address), address.version) == want
            assert index.lookup(address) == want
        if want:
            expected[position] = want
    unparseable = []
    assert dict(index.match_many(texts, unparseable=unparseable)) == expected
    assert list(dict(index.match_many(texts))) == sorted(expected)  # input order
    assert unparseable == [i for i, text in enumerate(texts) if oracle_address(text) is None]


@settings(max_examples=150, deadline=None)
@given(st.data(), st.sampled_from([4, 6]))
def test_address_index_equals_brute_force(data, version):
    assets = data.draw(registries(version))
    texts = data.draw(probes(assets, version))
    texts += data.draw(st.lists(st.sampled_from(NOT_ADDRESSES), max_size=4))
    texts = data.draw(st.permutations(texts))
    check_registry(assets, texts, version)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_address_index_with_both_versions_equals_brute_force(data):
    assets4 = data.draw(registries(4))
    assets6 = [(asset_id + 100, claim) for asset_id, claim in data.draw(registries(6))]
    assets = assets4 + assets6
    texts = data.draw(probes(assets4, 4)) + data.draw(probes(assets6, 6))
    texts = data.draw(st.permutations(texts))
    index = AddressIndex([*intervals(assets4, 4), *intervals(assets6, 6)])
    expected = {}
    for position, text in enumerate(texts):
        want = brute_force(assets, oracle_address(text))
        if want:
            expected[position] = want
    assert dict(index.match_many(texts)) == expected


def test_match_many_across_chunks(monkeypatch):
    """Rows are matched in chunks; positions run on across them and every row is seen once."""
    monkeypatch.setattr(matching, "CHUNK_ROWS", 7)
    network = ipaddress.ip_network("198.51.100.0/24")
    index = AddressIndex([("doc", 4, int(network.network_address), int(network.broadcast_address))])
    texts = [f"198.51.{100 + i % 2}.{i}" if i % 5 else "junk" for i in range(50)]
    unparseable = []
    found = list(index.match_many(iter(texts), unparseable=unparseable))
    assert found == [(i, ("doc",)) for i in range(50) if i % 5 and i % 2 == 0]
    assert unparseable == list(range(0, 50, 5))


def test_an_empty_index_matches_nothing():
    index = AddressIndex([])
    assert index.lookup("192.0.2.1") == ()
    assert index.lookup("2001:db8::1") == ()
    assert list(index.match_many(["192.0.2.1", "2001:db8::1", "x"])) == []


def test_bad_intervals_and_integer_lookups_are_refused():
    with pytest.raises(ValueError, match="IP version 5 is not 4 or 6"):
        AddressIndex([("a", 5, 0, 1)])
    with pytest.raises(ValueError, match=r"'b': 9\.\.3 is not an IPv4 interval"):
        AddressIndex([("b", 4, 9, 3)])
    with pytest.raises(ValueError, match=r"'c': 0\.\.4294967296 is not an IPv4 interval"):
        AddressIndex([("c", 4, 0, 2**32)])
    index = AddressIndex([("a", 6, 0, 2**128 - 1)])
    with pytest.raises(ValueError, match="needs its version"):
        index.lookup(5)
    with pytest.raises(ValueError, match="is not an IPv4 address"):
        index.lookup(2**32, 4)
    assert index.lookup(2**128 - 1, 6) == ("a",)


def test_parse_address_reads_feed_forms():
    assert parse_address("192.0.2.1") == (4, 0xC0000201)
    assert parse_address("::FFFF:192.0.2.1") == (4, 0xC0000201)
    assert parse_address(" 2001:DB8::1\n") == (6, 0x20010DB8 << 96 | 1)
    assert parse_address("2001:0db8:0000:0000:0000:0000:0000:0001") == (6, 0x20010DB8 << 96 | 1)
    assert parse_address("::") == (6, 0)
    assert parse_address("::1") == (6, 1)
    assert parse_address("64:ff9b::192.0.2.1") == (6, 0x64FF9B << 96 | 0xC0000201)
    for text in NOT_ADDRESSES:
        assert parse_address(text) is None, text


# --- domains ------------------------------------------------------------------------------------

LABELS = ["a", "b", "www", "mail", "xn--strae-oqa", "xn--r8jz45g"]
TLDS = ["jp", "com", "co.jp"]


def domain_names(min_labels: int):
    return st.builds(
        lambda labels, tld: ".".join([*labels, tld]),
        st.lists(st.sampled_from(LABELS), min_size=min_labels, max_size=3),
        st.sampled_from(TLDS),
    )


def written_as_feeds_do(name: str, style: int) -> str:
    """Upper case, a root dot, or Unicode labels: all the same DNS name."""
    if style == 1:
        return name.upper()
    if style == 2:
        return name + "."
    if style == 3:
        return name.replace("xn--strae-oqa", "STRAßE").replace("xn--r8jz45g", "例え")
    return name


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(domain_names(1), st.booleans()), max_size=12),  # registrable
    st.lists(st.tuples(domain_names(0), st.integers(0, 3)), max_size=25),  # "jp" too
)
def test_domain_index_equals_brute_force(registered, queries):
    entries = [(asset_id, name, subtree) for asset_id, (name, subtree) in enumerate(registered)]
    index = DomainIndex(entries)
    for name, style in queries:
        found = index.lookup(written_as_feeds_do(name, style))
        expected = {
            asset_id
            for asset_id, domain, subtree in entries
            if name == domain or (subtree and name.endswith("." + domain))
        }
        assert set(found) == expected, (name, entries)
        assert len(found) == len(set(found))
    hosts = [written_as_feeds_do(name, style) for name, style in queries]
    assert dict(index.match_many(hosts)) == {
        position: index.lookup(host) for position, host in enumerate(hosts) if index.lookup(host)
    }


def test_domain_lookup_order_and_forms():
    index = DomainIndex(
        [
            ("parent", "example.jp", True),
            ("exact", "www.example.jp", False),
            ("nearer", "www.example.jp", True),
            ("german", "xn--strae-oqa.de", False),
        ]
    )
    assert index.lookup("WWW.Example.JP.") == ("exact", "nearer", "parent")
    assert index.lookup("a.www.example.jp") == ("nearer", "parent")
    assert index.lookup("example.jp") == ("parent",)
    assert index.lookup("badexample.jp") == ()  # a suffix, not a parent domain
    assert index.lookup("Straße.de") == ("german",)  # IDNA 2008: ß is kept
    assert index.lookup("strasse.de") == ()  # IDNA 2003's mapping: another domain
    for nothing in ("", None, ".", "jp", "xn--zz\udcff.de", 42):
        assert index.lookup(nothing) == ()
    with pytest.raises(ValueError, match="asset 'tld': 'jp' is not a registrable domain"):
        DomainIndex([("tld", "jp", True)])


def test_normalise_hostname():
    assert normalise_hostname(" Mail.Example.JP. ") == "mail.example.jp"
    assert normalise_hostname("例え。ＪＰ") == "xn--r8jz45g.jp"  # ideographic full stop
    assert normalise_hostname("_dmarc.example.jp") == "_dmarc.example.jp"  # as DNS returned it
    assert normalise_hostname("\u0301a.jp") is None  # a label may not start with a combining mark
    assert normalise_hostname("") is None


def test_asn_index():
    index = AsnIndex([("a", 64500), ("b", 64500), ("c", 4200000000), ("a", 64500)])
    assert index.lookup(64500) == ("a", "b")
    assert index.lookup("AS64500") == ("a", "b")
    assert index.lookup(" as64500 ") == ("a", "b")
    assert index.lookup("4200000000") == ("c",)
    for nothing in (64501, "", "AS", "AS-1", "1.5", None, True, 2**32, "６４５００"):
        assert index.lookup(nothing) == (), nothing


def test_matching_imports_without_django():
    """The benchmark and feed workers load it without a configured project."""
    probe = (
        "import sys; import mamori.earlywarning.matching; "
        "print(sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
