"""Match feed observations (an address, an AS number, a host name) to registered network assets.
Pure logic, no Django imports.

The indexes take what ``assets.parse_asset`` produced — integer intervals, AS numbers, A-label
domains — tagged with the caller's asset id, and answer with every asset id that covers an
observation. They know nothing of organisations or verification: the caller builds them from
the verified assets only.

``AddressIndex`` cuts each address family's number line at every interval's first address and
at the address after its last, so that between two cuts the set of covering assets is fixed
(an *elementary segment*). Each segment's set is computed once, by a sweep, when the index is
built (a sweep over the sorted cuts; a cut where k intervals overlap costs O(k log k), and
real registries nest a few deep); a lookup is then one binary search, whatever the nesting or
overlap of prefixes and ranges, and ranges need not be aligned to prefixes. ``match_many`` does the binary search for a
whole chunk of rows with numpy: IPv4 addresses as unsigned 32-bit integers, IPv6 addresses as
their 16 network-order bytes (numpy's fixed-width byte strings compare byte by byte, which for
big-endian numbers of one width is numeric order — IPv6 does not fit a 64-bit integer).

Addresses are read as feeds write them: dotted-quad IPv4 (no leading zeros: ``010.0.0.1`` is
octal to some tools and decimal to others, so it is refused rather than guessed), any IPv6 text
form, upper or lower case, surrounding white space ignored. An IPv4-mapped IPv6 address
(``::ffff:192.0.2.1``) is the IPv4 address inside it, as ``assets.parse_asset`` registers it. A
zone id (``fe80::1%eth0``) names an interface on the observer's machine, not a place on the
internet: such a row, and any other text that is not an address, matches nothing and is
reported to the caller as unparseable.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import socket
from collections import defaultdict
from collections.abc import Hashable, Iterable, Iterator

import idna
import numpy as np

AssetId = Hashable

MAX_ADDRESS = {4: 2**32 - 1, 6: 2**128 - 1}
# The first 12 bytes of an IPv4-mapped IPv6 address (::ffff:0:0/96).
_MAPPED_PREFIX = bytes(10) + b"\xff\xff"
# Rows are matched in chunks of this many: numpy's arrays stay small (a few MB) whatever the
# length of the feed, and results flow out while the feed is still being read.
CHUNK_ROWS = 65_536


def parse_address(text: object) -> tuple[int, int] | None:
    """``(version, integer)`` of an observed address, or None when it is not one (module
    docstring: which forms are read)."""
    packed = _packed(text)
    if packed is None:
        return None
    return (4 if len(packed) == 4 else 6), int.from_bytes(packed, "big")


def _packed(text: object) -> bytes | None:
    """The address in network byte order (4 bytes for IPv4, mapped addresses included, else 16),
    or None. ``inet_pton`` is the C library's parser (glibc's on Debian: strict dotted quads,
    no zone ids), about ten times faster than ``ipaddress``; the property tests hold it to
    ``ipaddress``'s reading."""
    try:
        if ":" in text:  # type: ignore[operator]
            packed = socket.inet_pton(socket.AF_INET6, text)  # type: ignore[arg-type]
            return packed[12:] if packed[:12] == _MAPPED_PREFIX else packed
        return socket.inet_pton(socket.AF_INET, text)  # type: ignore[arg-type]
    except (OSError, TypeError, ValueError):
        # White space around an address is a feed's formatting, not a different address; the
        # stripped text is tried only after the fast path failed.
        if isinstance(text, str) and text != (stripped := text.strip()) and stripped:
            return _packed(stripped)
        return None


class _Segments:
    """The elementary segments of one address family: ``starts`` (sorted; the first is 0) and,
    for each, the index into ``sets`` of the asset ids covering it."""

    def __init__(self, version: int, intervals: list[tuple[int, AssetId, int, int]]):
        starting: dict[int, list[int]] = defaultdict(list)
        ending: dict[int, list[int]] = defaultdict(list)
        owner: dict[int, AssetId] = {}
        for position, asset_id, first, last in intervals:
            owner[position] = asset_id
            starting[first].append(position)
            # An interval that runs to the family's last address never ends: no cut after it
            # (the cut would not fit the family's width).
            if last < MAX_ADDRESS[version]:
                ending[last + 1].append(position)
        self.sets: list[tuple[AssetId, ...]] = [()]
        set_numbers: dict[tuple[AssetId, ...], int] = {(): 0}
        self.starts: list[int] = []
        segment_sets: list[int] = []
        active: set[int] = set()
        for cut in sorted({0, *starting, *ending}):
            active.difference_update(ending.get(cut, ()))
            active.update(starting.get(cut, ()))
            # Ids in the order their intervals were given; an asset with several intervals
            # covering the same address is named once. Most segments are covered by no asset or
            # one: those skip the sort (the build is a loop over 200,000 cuts for 100,000
            # prefixes).
            if not active:
                covering = ()
            elif len(active) == 1:
                covering = (owner[next(iter(active))],)
            else:
                covering = tuple(dict.fromkeys(owner[position] for position in sorted(active)))
            number = set_numbers.setdefault(covering, len(self.sets))
            if number == len(self.sets):
                self.sets.append(covering)
            if segment_sets and segment_sets[-1] == number:
                continue  # the same assets as the segment before: one segment
            self.starts.append(cut)
            segment_sets.append(number)
        self.segment_set_list = segment_sets
        self.segment_sets = np.array(segment_sets, dtype=np.int64)
        if version == 4:
            self.sorted_keys = np.array(self.starts, dtype=np.uint32)
        else:
            self.sorted_keys = np.array(
                [start.to_bytes(16, "big") for start in self.starts], dtype="S16"
            )

    def lookup(self, value: int) -> tuple[AssetId, ...]:
        segment = bisect.bisect_right(self.starts, value) - 1
        return self.sets[self.segment_set_list[segment]]

    def set_numbers(self, keys: np.ndarray) -> np.ndarray:
        """For each key (same dtype as ``sorted_keys``) the number of its set in ``sets``."""
        return self.segment_sets[np.searchsorted(self.sorted_keys, keys, side="right") - 1]


class AddressIndex:
    """Every asset whose addresses contain an observed address (module docstring: how).

    Built from ``(asset_id, version, first, last)`` — an address, a prefix or a range as the
    integers of its first and last address, version 4 or 6. Intervals may nest and overlap; an
    asset may have several. Answers are tuples of asset ids in the order the intervals were
    given, each id once.
    """

    def __init__(self, intervals: Iterable[tuple[AssetId, int, int, int]]):
        by_version: dict[int, list[tuple[int, AssetId, int, int]]] = {4: [], 6: []}
        count = 0
        for position, (asset_id, version, first, last) in enumerate(intervals):
            if version not in by_version:
                raise ValueError(f"asset {asset_id!r}: IP version {version!r} is not 4 or 6")
            if not 0 <= first <= last <= MAX_ADDRESS[version]:
                raise ValueError(
                    f"asset {asset_id!r}: {first}..{last} is not an IPv{version} interval"
                )
            by_version[version].append((position, asset_id, first, last))
            count += 1
        self.interval_count = count
        self._families = {
            version: _Segments(version, found) for version, found in by_version.items()
        }

    @property
    def segment_count(self) -> int:
        """Elementary segments of both families (the size of what a lookup searches)."""
        return sum(len(family.starts) for family in self._families.values())

    def lookup(self, address: object, version: int | None = None) -> tuple[AssetId, ...]:
        """The assets containing ``address``: text as a feed writes it, an ``ipaddress``
        address, or an integer with its ``version``. An unparseable text matches nothing."""
        if isinstance(address, int) and not isinstance(address, bool):
            if version not in self._families:
                raise ValueError("an address given as an integer needs its version (4 or 6)")
            if not 0 <= address <= MAX_ADDRESS[version]:
                raise ValueError(f"{address} is not an IPv{version} address")
            return self._families[version].lookup(address)
        if hasattr(address, "version") and hasattr(address, "packed"):  # ipaddress objects
            address = str(address)
        parsed = parse_address(address)
        if parsed is None:
            return ()
        return self._families[parsed[0]].lookup(parsed[1])

    def match_many(
        self, addresses: Iterable[object], *, unparseable: list[int] | None = None
    ) -> Iterator[tuple[int, tuple[AssetId, ...]]]:
        """``(position in addresses, asset ids)`` for each address that at least one asset
        contains, in input order; addresses no asset contains are skipped. The positions of the
        addresses that could not be read (empty, malformed, a zone id...) are appended to
        ``unparseable`` when it is given, so the caller can report them."""
        rows = iter(addresses)
        start = 0
        while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
            yield from self._match_chunk(chunk, start, unparseable)
            start += len(chunk)

    def _match_chunk(
        self, chunk: list[object], start: int, unparseable: list[int] | None
    ) -> Iterator[tuple[int, tuple[AssetId, ...]]]:
        # The loop of ``_packed`` inlined for the common case (a well-formed address): this
        # loop is most of the time a feed takes to match.
        inet_pton, af_inet, af_inet6 = socket.inet_pton, socket.AF_INET, socket.AF_INET6
        # Each row's version (0: unreadable) in a byte per row, and the packed addresses of each
        # version in row order: numpy finds the positions again without a list of them.
        versions = bytearray(len(chunk))
        rows4: list[bytes] = []
        rows6: list[bytes] = []
        for offset, address in enumerate(chunk):
            try:
                if ":" in address:  # type: ignore[operator]
                    packed = inet_pton(af_inet6, address)  # type: ignore[arg-type]
                    if packed[:12] == _MAPPED_PREFIX:
                        packed = packed[12:]
                else:
                    packed = inet_pton(af_inet, address)  # type: ignore[arg-type]
            except (OSError, TypeError, ValueError):
                packed = _packed(address)  # white space around it, or not an address
                if packed is None:
                    if unparseable is not None:
                        unparseable.append(start + offset)
                    continue
            if len(packed) == 4:
                versions[offset] = 4
                rows4.append(packed)
            else:
                versions[offset] = 6
                rows6.append(packed)
        row_versions = np.frombuffer(versions, dtype=np.uint8)
        hit_positions, hit_sets, hit_versions = [], [], []
        for version, packed_rows, dtype in ((4, rows4, ">u4"), (6, rows6, "S16")):
            if not packed_rows:
                continue
            keys = np.frombuffer(b"".join(packed_rows), dtype=dtype)
            if version == 4:
                keys = keys.astype(np.uint32)  # native byte order, as the sorted keys
            numbers = self._families[version].set_numbers(keys)
            hits = np.flatnonzero(numbers)  # set 0 is the empty set
            hit_positions.append(np.flatnonzero(row_versions == version)[hits])
            hit_sets.append(numbers[hits])
            hit_versions.append(np.full(len(hits), version, dtype=np.int8))
        if not hit_positions:
            return
        found_at = np.concatenate(hit_positions)
        found_sets = np.concatenate(hit_sets)
        found_versions = np.concatenate(hit_versions)
        order = np.argsort(found_at, kind="stable")
        sets = {version: family.sets for version, family in self._families.items()}
        for offset, number, version in zip(
            found_at[order].tolist(),
            found_sets[order].tolist(),
            found_versions[order].tolist(),
            strict=True,
        ):
            yield start + offset, sets[version][number]


def normalise_hostname(text: object) -> str | None:
    """A host name as DNS compares it: lower case, without the root's trailing dot, non-ASCII
    names as IDNA 2008 A-labels (UTS 46 mapping, as browsers and registries do: ``Straße.de``
    is ``xn--strae-oqa.de``, not IDNA 2003's ``strasse.de``, which may be someone else's).
    None for an empty name or one IDNA cannot encode. ASCII names are only lower-cased: feeds
    report what DNS returned, which may hold characters a registrable name may not (``_``)."""
    if not isinstance(text, str):
        return None
    name = text.strip()
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True, transitional=False).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            return None
    name = name.lower()
    if name.endswith("."):
        name = name[:-1]
    return name or None


class DomainIndex:
    """Every asset a host name belongs to: a domain registered as that very name, or a parent
    of it registered with its subdomains. Built from ``(asset_id, domain, include_subdomains)``.
    Answers: the exact registrations first, then the nearest parent's, each id once."""

    def __init__(self, entries: Iterable[tuple[AssetId, str, bool]]):
        exact: dict[str, list[AssetId]] = defaultdict(list)
        subtree: dict[str, list[AssetId]] = defaultdict(list)
        for asset_id, domain, include_subdomains in entries:
            name = normalise_hostname(domain)
            if name is None or "." not in name:
                raise ValueError(f"asset {asset_id!r}: {domain!r} is not a registrable domain")
            (subtree if include_subdomains else exact)[name].append(asset_id)
        self._exact = {name: tuple(ids) for name, ids in exact.items()}
        self._subtree = {name: tuple(ids) for name, ids in subtree.items()}

    def lookup(self, hostname: object) -> tuple[AssetId, ...]:
        name = normalise_hostname(hostname)
        if name is None:
            return ()
        found = self._exact.get(name, ())
        subtree = self._subtree
        if subtree:
            # The name itself, then each parent down to two labels ("a.b.example.jp",
            # "b.example.jp", "example.jp"): a registered domain has at least two.
            start = 0
            while (dot := name.find(".", start)) != -1:
                if ids := subtree.get(name[start:]):
                    found = (*found, *ids)
                start = dot + 1
        return tuple(dict.fromkeys(found)) if len(found) > 1 else found

    def match_many(self, hostnames: Iterable[object]) -> Iterator[tuple[int, tuple[AssetId, ...]]]:
        """``(position, asset ids)`` for each host name that belongs to an asset, in order."""
        for position, hostname in enumerate(hostnames):
            if hostname and (found := self.lookup(hostname)):
                yield position, found


def parse_asn(value: object) -> int | None:
    """An AS number as feeds write it (``64500``, ``AS64500``, ``as64500``), or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 <= value <= 2**32 - 1 else None
    if isinstance(value, str):
        return _parse_asn_text(value)
    return None


# A feed names a few thousand networks over and over: the text of each is read once.
@functools.lru_cache(maxsize=65_536)
def _parse_asn_text(value: str) -> int | None:
    text = value.strip()
    if text[:2].lower() == "as":
        text = text[2:]
    if not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if number <= 2**32 - 1 else None


class AsnIndex:
    """Every asset registered for an AS number. Built from ``(asset_id, asn)``."""

    def __init__(self, entries: Iterable[tuple[AssetId, int]]):
        by_asn: dict[int, list[AssetId]] = defaultdict(list)
        for asset_id, asn in entries:
            by_asn[asn].append(asset_id)
        self._found = {asn: tuple(dict.fromkeys(ids)) for asn, ids in by_asn.items()}

    def lookup(self, asn: object) -> tuple[AssetId, ...]:
        number = parse_asn(asn)
        return () if number is None else self._found.get(number, ())
