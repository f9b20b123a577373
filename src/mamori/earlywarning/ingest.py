"""Importing a network observation report: rows → verified assets → alerts.

The report is read as a stream (``feeds.network``), in batches: each batch's addresses are
matched at once against an index of every verified address asset (``matching``), and its host
names and AS numbers against the verified domains and ASNs. A row about one organisation's
asset is a sighting of an alert of that organisation; a row that concerns claims of two or more
organisations (or an asset in an unsettled overlap) raises nothing and is counted on the
overlap for the scheme owner. Rows about no verified asset concern nobody in the sector and are
only counted. Matched rows are kept whole (``Observation.raw``) as the alerts' evidence.

A bad row is reported as ``file:line: reason`` and skipped; the rest of the report is imported.
"""

from __future__ import annotations

import bisect
import io
import ipaddress
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from mamori.earlywarning import alerts, fanout, matching, notify
from mamori.earlywarning.feeds import network
from mamori.earlywarning.feeds.errors import FeedError, RowError
from mamori.earlywarning.feeds.lines import HashingReader
from mamori.earlywarning.models import (
    ADDRESS_KINDS,
    Asset,
    AssetKind,
    AssetOverlap,
    Feed,
    FeedKind,
    FeedRun,
    Observation,
    RunState,
)

BATCH_ROWS = 20_000


@dataclass
class VerifiedAssets:
    """Every verified asset, indexed for matching: built once per import."""

    addresses: matching.AddressIndex
    domains: matching.DomainIndex
    asns: matching.AsnIndex
    organisation_of: dict[int, int]
    width_of: dict[int, int]  # addresses an asset covers: the narrowest names the alert
    # Per IP version, the sorted first addresses and their asset ids (for prefix rows).
    starts: dict[int, tuple[list[int], list[int]]] = field(default_factory=dict)

    @classmethod
    def load(cls) -> VerifiedAssets:
        intervals, domains, asns = [], [], []
        organisation_of: dict[int, int] = {}
        width_of: dict[int, int] = {}
        starts: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        rows = Asset.objects.verified().values_list(
            "pk", "organisation_id", "kind", "value", "include_subdomains", "ip_version",
            "first_hex", "last_hex", "asn",
        )  # fmt: skip
        for pk, organisation_id, kind, value, subdomains, version, first, last, asn in rows:
            organisation_of[pk] = organisation_id
            if kind in ADDRESS_KINDS:
                first_number, last_number = int(first, 16), int(last, 16)
                intervals.append((pk, version, first_number, last_number))
                width_of[pk] = last_number - first_number
                starts[version].append((first_number, pk))
            elif kind == AssetKind.DOMAIN:
                domains.append((pk, value, subdomains))
                width_of[pk] = 0
            elif kind == AssetKind.ASN:
                asns.append((pk, asn))
                width_of[pk] = 2**128  # an AS number is the widest claim
        sorted_starts = {}
        for version, items in starts.items():
            items.sort()
            sorted_starts[version] = ([start for start, _ in items], [pk for _, pk in items])
        return cls(
            matching.AddressIndex(intervals),
            matching.DomainIndex(domains),
            matching.AsnIndex(asns),
            organisation_of,
            width_of,
            sorted_starts,
        )

    def prefix_assets(self, text: str) -> tuple[int, ...]:
        """Assets overlapping a reported prefix: those containing its first address, and those
        that start inside it (any interval overlapping it does one or the other)."""
        try:
            network_ = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return ()
        first, last = int(network_.network_address), int(network_.broadcast_address)
        found = list(self.addresses.lookup(first, network_.version))
        firsts, ids = self.starts.get(network_.version, ([], []))
        low = bisect.bisect_right(firsts, first)
        high = bisect.bisect_right(firsts, last)
        found.extend(ids[low:high])
        return tuple(dict.fromkeys(found))


@dataclass
class Totals:
    rows: int = 0
    matched: int = 0
    errors: int = 0
    error_lines: list[str] = field(default_factory=list)
    new: int = 0
    updated: int = 0

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_lines) < FeedRun.ERROR_LINES_KEPT:
            self.error_lines.append(text)


def feed_for(name: str) -> Feed:
    """The feed of a report type, created on first import with the defaults."""
    network.report_kind(name)  # FeedError for an unknown type
    feed, _created = Feed.objects.get_or_create(
        name=name.strip().lower(), defaults={"kind": FeedKind.NETWORK}
    )
    if feed.kind != FeedKind.NETWORK:
        raise FeedError(network.gettext_noop("%(name)s is not a network report feed"), name=name)
    return feed


def import_report(feed: Feed, stream: BinaryIO, *, source: str, now=None, on_read=None) -> FeedRun:
    """Read one report of ``feed``'s type and raise or update the alerts it shows. The run is
    recorded (rows, matches, errors by line) whatever happens; a report refused whole (no
    header, no address column) or cut off (a damaged gzip stream, a failed download) leaves a
    failed run and raises ``FeedError``, after the rows before the damage were imported."""
    now = now or timezone.now()
    run = FeedRun.objects.create(feed=feed, source=source[:500])
    totals = Totals()
    reader = HashingReader(stream, on_read)
    try:
        rows = network.read_report(
            io.BufferedReader(reader, 1 << 16), feed.name, source_name=source, now=now
        )
        verified = VerifiedAssets.load()
        kind = network.report_kind(feed.name)
        for batch in _batches(rows, BATCH_ROWS):
            _import_batch(feed, kind, run, verified, batch, totals, source, now)
    except FeedError as error:
        _finish(run, totals, reader.digest, state=RunState.FAILED, failure=error.render(_))
        raise
    _finish(run, totals, reader.digest, state=RunState.DONE)
    Feed.objects.filter(pk=feed.pk).update(last_run_at=now)
    return run


def _batches(rows: Iterable, size: int) -> Iterator[list]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _finish(run: FeedRun, totals: Totals, digest, *, state: str, failure: str = "") -> None:
    run.state = state
    run.finished_at = timezone.now()
    run.rows = totals.rows
    run.matched = totals.matched
    run.errors = totals.errors
    run.error_lines = totals.error_lines
    run.alerts_new = totals.new
    run.alerts_updated = totals.updated
    run.digest = digest.hexdigest()
    run.failure = failure
    run.save()


def _import_batch(feed, kind, run, verified, batch, totals: Totals, source, now) -> None:
    observations = [row for row in batch if not isinstance(row, RowError)]
    for problem in batch:
        if isinstance(problem, RowError):
            totals.rows += 1
            totals.error(f"{source}:{problem.line}: {problem.render(_)}")
    totals.rows += len(observations)
    matches: dict[int, tuple[int, ...]] = {}
    plain = [row.ip if "/" not in row.ip else "" for row in observations]
    for position, ids in verified.addresses.match_many(plain):
        matches[position] = ids
    for position, row in enumerate(observations):
        extra: tuple[int, ...] = ()
        if "/" in row.ip:
            extra += verified.prefix_assets(row.ip)
        if row.hostname:
            extra += verified.domains.lookup(row.hostname)
        if row.asn is not None:
            extra += verified.asns.lookup(row.asn)
        if extra:
            matches[position] = tuple(dict.fromkeys(matches.get(position, ()) + extra))
    if not matches:
        return
    sightings: list[alerts.Sighting] = []
    kept: list[tuple[network.ObservationRow, tuple[int, str]]] = []
    held_pairs: dict[tuple[int, int], int] = {}
    for position in sorted(matches):
        row, ids = observations[position], matches[position]
        totals.matched += 1
        organisations = {verified.organisation_of[asset_id] for asset_id in ids}
        if len(organisations) > 1:
            # Verified claims of two organisations cover what was seen: the scheme owner
            # settles who holds it; neither organisation is told meanwhile.
            for pair in itertools.combinations(sorted(ids), 2):
                if verified.organisation_of[pair[0]] != verified.organisation_of[pair[1]]:
                    held_pairs[pair] = held_pairs.get(pair, 0) + 1
            continue
        asset_id = min(ids, key=lambda pk: verified.width_of.get(pk, 0))
        organisation_id = organisations.pop()
        key = alerts.alert_key(kind.alert_type, network.observation_key(feed.name, row))
        sightings.append(
            alerts.Sighting(
                organisation_id=organisation_id,
                type=kind.alert_type,
                key=key,
                category=feed.name,
                seen_at=row.seen_at,
                severity=kind.severity,
                control=kind.control,
                asset_id=asset_id,
                ip=row.ip.split("/")[0] or None,
                # Only a port that identifies what was seen (an open service's); a sinkhole's
                # source port is new on every connection and stays in the evidence.
                port=row.port if "port" in kind.key_parts else None,
                hostname=row.hostname,
                evidence=row.raw,
            )
        )
        kept.append((row, (organisation_id, key)))
    with transaction.atomic():
        upserted = alerts.upsert(sightings, feed=feed, now=now)
        totals.new += len(upserted.new)
        totals.updated += len(upserted.updated)
        # The organisations that depend on these ones hear of it too (supplier notices).
        notices = fanout.notices_for([*upserted.new, *upserted.updated], now=now)
        # E-mail and webhooks, recorded with the alerts (sent once this commits).
        notify.alerts_raised(upserted, now=now)
        notify.alerts_raised(notices, now=now)
        Observation.objects.bulk_create(
            [
                Observation(
                    run=run,
                    alert=upserted.alert_of[group],
                    line=row.line,
                    seen_at=row.seen_at,
                    ip=row.ip.split("/")[0] or None,
                    port=row.port,
                    raw=row.raw,
                )
                for row, group in kept
                if group in upserted.alert_of
            ],
            batch_size=1000,
        )
        _count_held(held_pairs, now)


def _count_held(held_pairs: dict[tuple[int, int], int], now) -> None:
    """Rows held back are counted on the overlap they fall in, recorded now if it was not
    known (an address inside one organisation's AS and another's prefix, say)."""
    for (first_id, second_id), count in held_pairs.items():
        overlap = AssetOverlap.objects.filter(
            Q(asset_id=first_id, other_id=second_id) | Q(asset_id=second_id, other_id=first_id)
        ).first() or AssetOverlap.objects.create(asset_id=second_id, other_id=first_id)
        AssetOverlap.objects.filter(pk=overlap.pk).update(
            observations=F("observations") + count, last_observed_at=now
        )
