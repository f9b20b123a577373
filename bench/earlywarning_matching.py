"""Early-warning matching in memory: 1,000,000 observation rows against 100,000 registered
prefixes and ranges, 20,000 domains and 1,000 AS numbers.

Generates from a fixed seed, through ``assets.parse_asset`` like any registration (timed apart):

- 100,000 address claims, 70 % IPv4 and 30 % IPv6: prefixes of realistic lengths (IPv4 /16–/29,
  IPv6 /29–/64) in public space, 10 % nested inside an earlier claim and 5 % unaligned
  ``FIRST-LAST`` ranges, so that prefixes nest and overlap;
- 20,000 domains (half with their subdomains) under .jp, .co.jp, .ne.jp, .or.jp, .com, .net;
- 1,000 AS numbers;
- 1,000,000 feed rows (``ip``, ``asn``, ``hostname``), 75 % IPv4 and 25 % IPv6: 12 % inside a
  registered claim, the rest anywhere in public space; 1 in 4 IPv6 addresses written upper case
  or expanded, 1 in 1,000 rows an unreadable address; 30 % with a host name, a fifth of them
  under a registered domain.

Then times building the three indexes and matching every row (``AddressIndex.match_many`` on
the ip column, ``DomainIndex.lookup`` on host names, ``AsnIndex.lookup`` on AS numbers), prints
rows per second and the peak RSS (``resource.getrusage``) after each step, and compares with a
straightforward per-row scan of all claims with ``ipaddress`` on a sample of rows, extrapolated
to all rows (the scan's answers must equal the index's). Pure Python and numpy, no database.

Run: ``.venv/bin/python bench/earlywarning_matching.py`` (options: ``--help``). Results also go
to ``bench/results/earlywarning_matching.json``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import platform
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from mamori.earlywarning.assets import AssetRefused, NetworkAsset, parse_asset  # noqa: E402
from mamori.earlywarning.matching import AddressIndex, AsnIndex, DomainIndex  # noqa: E402

RESULTS_FILE = ROOT / "bench" / "results" / "earlywarning_matching.json"
SEED = 20261201
IPV4_LENGTHS = {
    16: 2,
    18: 2,
    19: 3,
    20: 5,
    21: 5,
    22: 10,
    23: 8,
    24: 40,
    25: 4,
    26: 5,
    27: 5,
    28: 5,
    29: 6,
}
IPV6_LENGTHS = {29: 2, 32: 20, 36: 5, 40: 8, 44: 10, 48: 40, 56: 10, 64: 5}
TLDS = ["jp", "co.jp", "ne.jp", "or.jp", "com", "net"]
LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def weighted(rng: random.Random, weights: dict[int, int]) -> int:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def random_public(rng: random.Random, version: int) -> int:
    """An address in space organisations hold: IPv4 1.0.0.0–223.255.255.255, IPv6 in the
    RIRs' 2400::/6 (parse_asset refuses what is special inside them)."""
    if version == 4:
        return rng.randrange(1 << 24, 224 << 24)
    return rng.randrange(0x2400 << 112, 0x2800 << 112)


def generate_claims(rng: random.Random, count: int) -> tuple[list[NetworkAsset], int]:
    """``count`` address claims through parse_asset; also the number it refused (retried)."""
    claims: list[NetworkAsset] = []
    refused = 0
    while len(claims) < count:
        version = 4 if rng.random() < 0.7 else 6
        bits = 32 if version == 4 else 128
        shape = rng.random()
        parent = None
        if shape < 0.10 and claims:
            parent = rng.choice(claims)  # nested inside an earlier claim (of its version)
            version, bits = parent.version, 32 if parent.version == 4 else 128
        if shape >= 0.95:  # an unaligned range of 2–5,000 addresses
            first = random_public(rng, version)
            last = first + rng.randrange(1, 5000)
            text = (
                f"{ipaddress.ip_address(first) if version == 4 else ipaddress.IPv6Address(first)}-"
            )
            text += str(
                ipaddress.IPv4Address(last) if version == 4 else ipaddress.IPv6Address(last)
            )
            kind = "range"
        else:
            length = weighted(rng, IPV4_LENGTHS if version == 4 else IPV6_LENGTHS)
            if parent is not None:
                parent_length = bits - (parent.last - parent.first + 1).bit_length() + 1
                length = min(bits, max(length, parent_length + rng.randrange(1, 9)))
                base = rng.randrange(parent.first, parent.last + 1)
            else:
                base = random_public(rng, version)
            address = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
            network = ipaddress.ip_network((address(base), length), strict=False)
            text, kind = str(network), "cidr"
        try:
            claims.append(parse_asset(kind, text))
        except AssetRefused:
            refused += 1
    return claims, refused


def random_label(rng: random.Random) -> str:
    return "".join(rng.choices(LETTERS[:26], k=1) + rng.choices(LETTERS, k=rng.randrange(3, 12)))


def generate_domains(rng: random.Random, count: int) -> list[NetworkAsset]:
    domains: dict[str, NetworkAsset] = {}
    while len(domains) < count:
        name = f"{random_label(rng)}.{rng.choice(TLDS)}"
        if rng.random() < 0.2:
            name = f"{random_label(rng)}.{name}"
        domains.setdefault(name, parse_asset("domain", name, rng.random() < 0.5))
    return list(domains.values())


def address_text(rng: random.Random, version: int, value: int) -> str:
    if version == 4:
        return str(ipaddress.IPv4Address(value))
    address = ipaddress.IPv6Address(value)
    style = rng.random()
    if style < 0.125:
        return str(address).upper()
    if style < 0.25:
        return address.exploded
    return str(address)


def generate_rows(
    rng: random.Random,
    count: int,
    claims: list[NetworkAsset],
    domains: list[NetworkAsset],
    asns: list[int],
) -> tuple[list[str], list[str], list[str]]:
    """The three columns of ``count`` feed rows: ip, asn, hostname ('' when absent)."""
    ips, asn_column, hostnames = [], [], []
    claims_by_version = {
        4: [c for c in claims if c.version == 4],
        6: [c for c in claims if c.version == 6],
    }
    for _ in range(count):
        version = 4 if rng.random() < 0.75 else 6
        draw = rng.random()
        if draw < 0.001:
            ips.append(rng.choice(["", "n/a", "fe80::1%eth0", "300.1.2.3", "010.0.0.1"]))
        elif draw < 0.121:
            claim = rng.choice(claims_by_version[version])
            ips.append(address_text(rng, version, rng.randrange(claim.first, claim.last + 1)))
        else:
            ips.append(address_text(rng, version, random_public(rng, version)))
        asn_column.append(str(rng.choice(asns) if rng.random() < 0.05 else rng.randrange(1, 60000)))
        if rng.random() < 0.3:
            if rng.random() < 0.2:
                domain = rng.choice(domains)
                host = (
                    f"{random_label(rng)}.{domain.domain}"
                    if domain.include_subdomains
                    else domain.domain
                )
            else:
                host = f"{random_label(rng)}.{random_label(rng)}.{rng.choice(TLDS)}"
            hostnames.append(host.upper() if rng.random() < 0.05 else host)
        else:
            hostnames.append("")
    return ips, asn_column, hostnames


def naive_scan(
    claims: list[NetworkAsset], sample: list[tuple[int, str]]
) -> tuple[float, dict[int, tuple]]:
    """What one would write first: for each row, parse it and test every claim with ipaddress."""
    prepared = []
    for asset_id, claim in enumerate(claims):
        if claim.kind == "range":
            first, last = (ipaddress.ip_address(part) for part in claim.value.split("-"))
            prepared.append((asset_id, None, first, last))
        else:
            prepared.append((asset_id, ipaddress.ip_network(claim.value), None, None))
    found: dict[int, tuple] = {}
    started = time.perf_counter()
    for position, text in sample:
        try:
            address = ipaddress.ip_address(text.strip())
        except ValueError:
            continue
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        hits = []
        for asset_id, network, first, last in prepared:
            if network is not None:
                if network.version == address.version and address in network:
                    hits.append(asset_id)
            elif first.version == address.version and first <= address <= last:
                hits.append(asset_id)
        if hits:
            found[position] = tuple(hits)
    return time.perf_counter() - started, found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefixes", type=int, default=100_000)
    parser.add_argument("--domains", type=int, default=20_000)
    parser.add_argument("--asns", type=int, default=1_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=200, help="rows for the ipaddress scan")
    parser.add_argument("--seed", type=int, default=SEED)
    options = parser.parse_args(argv)
    rng = random.Random(options.seed)
    figures: dict[str, object] = {"python": platform.python_version(), "seed": options.seed}

    started = time.perf_counter()
    claims, refused = generate_claims(rng, options.prefixes)
    domains = generate_domains(rng, options.domains)
    asns = rng.sample(range(1, 64000), options.asns)
    validation = time.perf_counter() - started
    kinds = {kind: sum(claim.kind == kind for claim in claims) for kind in ("cidr", "range")}
    print(
        f"claims: {len(claims):,} ({sum(c.version == 4 for c in claims):,} IPv4, "
        f"{sum(c.version == 6 for c in claims):,} IPv6; {kinds['range']:,} ranges), "
        f"{len(domains):,} domains, {len(asns):,} AS numbers; "
        f"parse_asset refused {refused:,} generated claims (special space), "
        f"generation and validation {validation:.2f} s"
    )
    started = time.perf_counter()
    ips, asn_column, hostnames = generate_rows(rng, options.rows, claims, domains, asns)
    print(f"rows: {len(ips):,} generated in {time.perf_counter() - started:.2f} s")
    rss_data = peak_rss_mib()
    print(f"peak RSS with the generated data: {rss_data:.0f} MiB")

    started = time.perf_counter()
    address_index = AddressIndex((i, c.version, c.first, c.last) for i, c in enumerate(claims))
    build_address = time.perf_counter() - started
    started = time.perf_counter()
    domain_index = DomainIndex((i, d.domain, d.include_subdomains) for i, d in enumerate(domains))
    asn_index = AsnIndex((i, asn) for i, asn in enumerate(asns))
    build_other = time.perf_counter() - started
    rss_indexes = peak_rss_mib()
    print(
        f"indexes: addresses {build_address:.2f} s ({address_index.segment_count:,} segments), "
        f"domains and AS numbers {build_other:.2f} s; peak RSS {rss_indexes:.0f} MiB"
    )

    started = time.perf_counter()
    unparseable: list[int] = []
    address_hits = dict(address_index.match_many(ips, unparseable=unparseable))
    match_addresses = time.perf_counter() - started
    started = time.perf_counter()
    domain_hits = {
        i: found
        for i, host in enumerate(hostnames)
        if host and (found := domain_index.lookup(host))
    }
    match_domains = time.perf_counter() - started
    started = time.perf_counter()
    asn_hits = {i: found for i, asn in enumerate(asn_column) if (found := asn_index.lookup(asn))}
    match_asns = time.perf_counter() - started
    rss_matched = peak_rss_mib()
    total = match_addresses + match_domains + match_asns
    rows = len(ips)
    print(
        f"match: addresses {match_addresses:.2f} s ({rows / match_addresses:,.0f} rows/s; "
        f"{len(address_hits):,} rows hit, {len(unparseable):,} unreadable), "
        f"host names {match_domains:.2f} s ({sum(1 for h in hostnames if h):,} names, "
        f"{len(domain_hits):,} hit), AS numbers {match_asns:.2f} s ({len(asn_hits):,} hit)"
    )
    print(
        f"all three columns: {total:.2f} s = {rows / total:,.0f} rows/s; "
        f"with the index builds {total + build_address + build_other:.2f} s; peak RSS {rss_matched:.0f} MiB"
    )

    sample_rng = random.Random(options.seed + 1)
    sample = sorted(sample_rng.sample(range(rows), min(options.sample, rows)))
    naive_seconds, naive_found = naive_scan(claims, [(i, ips[i]) for i in sample])
    index_found = {i: address_hits[i] for i in sample if i in address_hits}
    agree = naive_found == index_found
    per_row = naive_seconds / len(sample)
    extrapolated = per_row * rows
    print(
        f"ipaddress scan of all {len(claims):,} claims per row: {len(sample)} rows in "
        f"{naive_seconds:.2f} s ({per_row * 1000:.1f} ms a row; {len(naive_found)} hit), "
        f"extrapolated to {rows:,} rows {extrapolated:,.0f} s = {extrapolated / match_addresses:,.0f}x "
        f"the index; answers {'agree' if agree else 'DISAGREE'}"
    )

    figures.update(
        {
            "claims": len(claims),
            "ranges": kinds["range"],
            "domains": len(domains),
            "asns": len(asns),
            "rows": rows,
            "segments": address_index.segment_count,
            "build_address_index_s": round(build_address, 3),
            "build_domain_asn_index_s": round(build_other, 3),
            "match_addresses_s": round(match_addresses, 3),
            "match_hostnames_s": round(match_domains, 3),
            "match_asns_s": round(match_asns, 3),
            "address_rows_per_s": round(rows / match_addresses),
            "all_columns_rows_per_s": round(rows / total),
            "address_hits": len(address_hits),
            "hostname_hits": len(domain_hits),
            "asn_hits": len(asn_hits),
            "unparseable": len(unparseable),
            "peak_rss_mib_data": round(rss_data),
            "peak_rss_mib_indexes": round(rss_indexes),
            "peak_rss_mib_matched": round(rss_matched),
            "naive_sample_rows": len(sample),
            "naive_sample_s": round(naive_seconds, 3),
            "naive_extrapolated_s": round(extrapolated),
            "naive_ratio": round(extrapolated / match_addresses),
            "naive_agrees": agree,
        }
    )
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {RESULTS_FILE.relative_to(ROOT)}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
