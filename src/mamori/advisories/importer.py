"""Store what ``sources.read`` yields: batched, idempotent, one transaction per batch.

A batch is all-or-nothing: an advisory and its affected rows land together or not at all. A bad
record is found before its batch is written (by the parsers) and is skipped and reported; the
rest of its batch still lands. Should the database refuse a batch, its records are written one
by one so that only the refused record is lost (and reported).

Idempotence: each advisory carries the SHA-256 of its normalised content. A record whose digest
is the stored one is "unchanged"; one whose ``modified`` is older than the stored one is also left
alone (the database keeps the newer; counted "unchanged" and reported as skipped); otherwise it
replaces the stored advisory and all of its affected rows. Outcomes are exclusive and add up to
the records read: ``added``, ``changed``, ``unchanged``, ``withdrawn`` (stored as withdrawn, new
or newly so) and ``bad``.

Nothing is dropped silently: besides the bad records, every record not written for being older
and every part of a record the parser left out (``osv.SkippedPart``: an ``affected`` entry or a
range) is reported, by record id and with the reason, in ``RunTotals.skipped`` (and through
``on_skip`` as it happens).

After each batch that wrote anything the index generation moves (in the same transaction), so
that every process rebuilds its matching index; when the run ends, ``advisories_changed`` is sent
once, after commit, with every (family, package) pair whose matches may have changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from mamori.advisories import osv, records
from mamori.advisories.models import (
    Advisory,
    AffectedPackage,
    EolCycle,
    ImportRun,
    IndexGeneration,
    KevEntry,
)
from mamori.advisories.signals import IndexChanges, advisories_changed
from mamori.core.bulk import insert_rows

DEFAULT_BATCH_SIZE = 500
KINDS = ("osv", "kev", "eol")
OUTCOMES = ("added", "changed", "unchanged", "withdrawn", "bad")

BadReporter = Callable[[str, osv.BadRecord], None]
SkipReporter = Callable[[str, osv.SkippedPart], None]
# What a database says when it will not store one record's values (psycopg raises ValueError
# for some values it cannot even send).
REFUSED = (DataError, IntegrityError, ValueError)


@dataclass
class RunTotals:
    """Counts per kind and the pairs to announce; kept in memory for one run."""

    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {kind: dict.fromkeys(OUTCOMES, 0) for kind in KINDS}
    )
    bad_records: list[dict[str, str]] = field(default_factory=list)
    # Records left unwritten (older than the stored one) and parts of records left out, as
    # {"where", "id", "part", "reason"} ("part" empty for a whole record); listed up to
    # ImportRun.MAX_LISTED_BAD, counted in full in ``skipped_count``.
    skipped: list[dict[str, str]] = field(default_factory=list)
    skipped_count: int = 0
    keys: set[tuple[str, str]] = field(default_factory=set)
    changed_cves: set[str] = field(default_factory=set)
    # The OSV ids whose matches may differ now (written, or named by a changed KEV entry), and
    # how many times this run moved the index generation: a process whose index is exactly
    # one run behind can then apply these ids to it instead of building it again.
    advisory_ids: set[str] = field(default_factory=set)
    kev_changed: bool = False
    eol_changed: bool = False
    generation_before: tuple | None = None
    bumps: int = 0

    def count(self, kind: str, outcome: str, number: int = 1) -> None:
        self.counts[kind][outcome] += number

    def total(self, outcome: str) -> int:
        return sum(per_kind[outcome] for per_kind in self.counts.values())


def advisory_digest(advisory: records.Advisory) -> str:
    """SHA-256 of the normalised record. Its ``repr`` (frozen dataclasses of tuples, strings
    and UTC datetimes) names every field in order; a new field or another Python that writes
    it differently only makes the next import rewrite each record once."""
    return hashlib.sha256(repr(advisory).encode()).hexdigest()


def ranges_to_json(ranges: Iterable[records.Range]) -> list[dict[str, Any]]:
    return [
        {"type": item.type, "events": [list(event) for event in item.events]} for item in ranges
    ]


class Importer:
    """Feeds items into per-kind batches and writes them. Use ``add()`` for every item, then
    ``finish()`` once; ``totals`` has the counts at any time."""

    def __init__(
        self,
        run: ImportRun,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        on_bad: BadReporter | None = None,
        on_skip: SkipReporter | None = None,
    ):
        self.run = run
        self.batch_size = max(1, batch_size)
        self.on_bad = on_bad
        self.on_skip = on_skip
        self.totals = RunTotals()
        self._advisories: dict[str, records.Advisory] = {}
        self._where: dict[str, str] = {}  # the file each pending advisory came from
        self._kev: dict[str, records.KevEntry] = {}
        self._eol: dict[tuple[str, str, str], records.EolCycle] = {}
        self.totals.generation_before = IndexGeneration.current()

    # --- feeding ------------------------------------------------------------------------------

    def add(self, kind: str, where: str, item: object) -> None:
        if isinstance(item, osv.BadRecord):
            self._bad(kind, where, item)
        elif isinstance(item, osv.SkippedPart):
            self._skipped(where, item)
        elif kind == "osv":
            if item.id in self._advisories:  # the same id twice in a batch: keep both in order
                self._flush_advisories()
            self._advisories[item.id] = item
            self._where[item.id] = where
            if len(self._advisories) >= self.batch_size:
                self._flush_advisories()
        elif kind == "kev":
            if item.cve in self._kev:
                self._flush_kev()
            self._kev[item.cve] = item
            if len(self._kev) >= self.batch_size:
                self._flush_kev()
        elif kind == "eol":
            key = (item.product, item.cycle, item.source)
            if key in self._eol:
                self._flush_eol()
            self._eol[key] = item
            if len(self._eol) >= self.batch_size:
                self._flush_eol()
        else:  # pragma: no cover - sources yield only the three kinds
            raise ValueError(kind)

    def finish(self) -> None:
        """Write what is pending and work out the pairs that changed KEV entries touch."""
        self._flush_advisories()
        self._flush_kev()
        self._flush_eol()
        if self.totals.changed_cves:
            keys, ids = advisories_for_cves(self.totals.changed_cves)
            self.totals.keys |= keys
            self.totals.advisory_ids |= ids

    def _bad(self, kind: str, where: str, bad: osv.BadRecord) -> None:
        self.totals.count(kind, "bad")
        if len(self.totals.bad_records) < ImportRun.MAX_LISTED_BAD:
            self.totals.bad_records.append(
                {"where": where, "id": bad.record_id or "", "reason": bad.reason}
            )
        if self.on_bad is not None:
            self.on_bad(where, bad)

    def _skipped(self, where: str, part: osv.SkippedPart) -> None:
        self.totals.skipped_count += 1
        if len(self.totals.skipped) < ImportRun.MAX_LISTED_BAD:
            self.totals.skipped.append(
                {"where": where, "id": part.record_id, "part": part.part, "reason": part.reason}
            )
        if self.on_skip is not None:
            self.on_skip(where, part)

    # --- advisories ---------------------------------------------------------------------------

    def _flush_advisories(self) -> None:
        pending = list(self._advisories.values())
        where = dict(self._where)
        self._advisories.clear()
        self._where.clear()
        if not pending:
            return
        try:
            with transaction.atomic():
                outcomes, keys, ids, older = self._write_advisories(pending)
            self.totals.bumps += 1 if ids else 0
        except REFUSED:
            # The batch was rolled back: write it again record by record to find the refused
            # one. (A lost connection is no refusal and ends the run.)
            outcomes, keys, ids, older = self._write_one_by_one(pending, where)
        for outcome in outcomes:
            self.totals.count("osv", outcome)
        self.totals.keys |= keys
        self.totals.advisory_ids |= ids
        for advisory, stored_modified in older:
            self._skipped(
                where[advisory.id],
                osv.SkippedPart(
                    advisory.id,
                    "",
                    f"modified {advisory.modified.isoformat()} is older than the stored "
                    f"record's {stored_modified.isoformat()}; record not written",
                ),
            )

    def _write_one_by_one(
        self, pending: list[records.Advisory], where: dict[str, str]
    ) -> tuple[list[str], set, set, list]:
        outcomes: list[str] = []
        keys: set[tuple[str, str]] = set()
        ids: set[str] = set()
        older: list[tuple[records.Advisory, datetime]] = []
        for advisory in pending:
            try:
                with transaction.atomic():
                    one_outcome, one_keys, one_ids, one_older = self._write_advisories([advisory])
            except REFUSED as exc:
                reason = (
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                )
                self._bad(
                    "osv",
                    where.get(advisory.id, advisory.id),
                    osv.BadRecord(advisory.id, f"refused by the database: {reason}"),
                )
                continue
            outcomes += one_outcome
            keys |= one_keys
            ids |= one_ids
            older += one_older
            self.totals.bumps += 1 if one_ids else 0
        return outcomes, keys, ids, older

    def _write_advisories(
        self, pending: list[records.Advisory]
    ) -> tuple[list[str], set, set, list]:
        """Write one batch inside the caller's transaction; returns outcomes, the changed pairs,
        the ids written (the generation moved when there are any) and the records left alone
        for being older than the stored ones, with the stored ``modified``."""
        stored = {
            osv_id: (pk, modified, digest, withdrawn)
            for osv_id, pk, modified, digest, withdrawn in Advisory.objects.filter(
                osv_id__in=[advisory.id for advisory in pending]
            ).values_list("osv_id", "pk", "modified", "digest", "withdrawn")
        }
        outcomes: list[str] = []
        keys: set[tuple[str, str]] = set()
        to_create: list[Advisory] = []
        to_update: list[Advisory] = []
        written: list[records.Advisory] = []
        older: list[tuple[records.Advisory, datetime]] = []
        for advisory in pending:
            digest = advisory_digest(advisory)
            previous = stored.get(advisory.id)
            if previous is not None:
                pk, modified, stored_digest, was_withdrawn = previous
                if stored_digest == digest or advisory.modified < modified:
                    if stored_digest != digest:
                        older.append((advisory, modified))
                    outcomes.append("unchanged")
                    continue
                row = self._advisory_row(advisory, digest)
                row.pk = pk
                to_update.append(row)
                newly_withdrawn = advisory.withdrawn is not None and was_withdrawn is None
                outcomes.append("withdrawn" if newly_withdrawn else "changed")
            else:
                to_create.append(self._advisory_row(advisory, digest))
                outcomes.append("withdrawn" if advisory.withdrawn is not None else "added")
            written.append(advisory)
        if not written:
            return outcomes, keys, set(), older

        if to_update:
            old_rows = AffectedPackage.objects.filter(advisory_id__in=[row.pk for row in to_update])
            keys |= set(old_rows.values_list("family", "name"))
            old_rows.delete()
            Advisory.objects.bulk_update(to_update, fields=ADVISORY_FIELDS)
        if to_create:
            insert_rows(Advisory, to_create)
            if any(row.pk is None for row in to_create):  # COPY, or no RETURNING
                ids = Advisory.objects.filter(osv_id__in=[row.osv_id for row in to_create])
                primary_keys = dict(ids.values_list("osv_id", "pk"))
                for row in to_create:
                    row.pk = primary_keys[row.osv_id]
        primary_key = {row.osv_id: row.pk for row in (*to_create, *to_update)}
        affected_rows = []
        for advisory in written:
            for package in advisory.affected:
                keys.add((package.family, package.name))
                affected_rows.append(
                    AffectedPackage(
                        advisory_id=primary_key[advisory.id],
                        ecosystem=package.ecosystem,
                        family=package.family,
                        release=package.release,
                        name=package.name,
                        ranges=ranges_to_json(package.ranges),
                        versions=list(package.versions),
                        severity=package.severity or "",
                        cvss_vectors=list(package.cvss_vectors),
                    )
                )
        insert_rows(AffectedPackage, affected_rows)
        IndexGeneration.bump()
        return outcomes, keys, {advisory.id for advisory in written}, older

    def _advisory_row(self, advisory: records.Advisory, digest: str) -> Advisory:
        return Advisory(
            osv_id=advisory.id,
            modified=advisory.modified,
            published=advisory.published,
            withdrawn=advisory.withdrawn,
            aliases=list(advisory.aliases),
            summary=advisory.summary,
            severity=advisory.severity or "",
            cvss_vectors=list(advisory.cvss_vectors),
            digest=digest,
            import_run=self.run,
            updated_at=timezone.now(),  # bulk_update does not run auto_now
        )

    # --- KEV ----------------------------------------------------------------------------------

    def _flush_kev(self) -> None:
        pending = list(self._kev.values())
        self._kev.clear()
        if not pending:
            return
        stored = {
            row["cve"]: row
            for row in KevEntry.objects.filter(cve__in=[entry.cve for entry in pending]).values(
                "pk", "cve", *KEV_FIELDS
            )
        }
        to_create, to_update = [], []
        for entry in pending:
            values = {name: getattr(entry, attribute) for name, attribute in KEV_ATTRIBUTES}
            previous = stored.get(entry.cve)
            if previous is None:
                to_create.append(KevEntry(cve=entry.cve, **values))
                self.totals.count("kev", "added")
            elif any(previous[name] != value for name, value in values.items()):
                to_update.append(
                    KevEntry(pk=previous["pk"], cve=entry.cve, updated_at=timezone.now(), **values)
                )
                self.totals.count("kev", "changed")
            else:
                self.totals.count("kev", "unchanged")
                continue
            self.totals.changed_cves.add(entry.cve)
        if to_create or to_update:
            with transaction.atomic():
                KevEntry.objects.bulk_create(to_create)
                KevEntry.objects.bulk_update(to_update, fields=[*KEV_FIELDS, "updated_at"])
                IndexGeneration.bump()
            self.totals.bumps += 1
            self.totals.kev_changed = True

    # --- lifecycle ----------------------------------------------------------------------------

    def _flush_eol(self) -> None:
        pending = list(self._eol.values())
        self._eol.clear()
        if not pending:
            return
        products = {cycle.product for cycle in pending}
        stored = {
            (row["product"], row["cycle"], row["source"]): row
            for row in EolCycle.objects.filter(product__in=products).values(
                "pk", "product", "cycle", "source", *EOL_FIELDS
            )
        }
        to_create, to_update = [], []
        for cycle in pending:
            values = {name: getattr(cycle, name) for name in EOL_FIELDS}
            previous = stored.get((cycle.product, cycle.cycle, cycle.source))
            identity = {"product": cycle.product, "cycle": cycle.cycle, "source": cycle.source}
            if previous is None:
                to_create.append(EolCycle(**identity, **values))
                self.totals.count("eol", "added")
            elif any(previous[name] != value for name, value in values.items()):
                to_update.append(
                    EolCycle(pk=previous["pk"], **identity, updated_at=timezone.now(), **values)
                )
                self.totals.count("eol", "changed")
            else:
                self.totals.count("eol", "unchanged")
        if to_create or to_update:
            with transaction.atomic():
                EolCycle.objects.bulk_create(to_create)
                EolCycle.objects.bulk_update(to_update, fields=[*EOL_FIELDS, "updated_at"])
                IndexGeneration.bump()
            self.totals.bumps += 1
            self.totals.eol_changed = True


ADVISORY_FIELDS = [
    "modified",
    "published",
    "withdrawn",
    "aliases",
    "summary",
    "severity",
    "cvss_vectors",
    "digest",
    "import_run",
    "updated_at",
]
# (model field, records.KevEntry attribute)
KEV_ATTRIBUTES = (
    ("vendor", "vendor"),
    ("product", "product"),
    ("name", "name"),
    ("date_added", "date_added"),
    ("due_date", "due_date"),
    ("known_ransomware", "known_ransomware"),
)
KEV_FIELDS = [name for name, _ in KEV_ATTRIBUTES]
EOL_FIELDS = [
    "codename",
    "release_date",
    "eol",
    "eol_date_unknown",
    "extended",
    "extended_open",
    "lts",
]


def advisories_for_cves(cves: set[str]) -> tuple[set[tuple[str, str]], set[str]]:
    """(family, name) pairs and OSV ids of the advisories that name any of ``cves`` (as id or
    alias).

    Aliases are a JSON list, which SQLite cannot search by element, so this reads them all; it
    runs once per import that changed KEV entries."""
    named = {
        pk: osv_id
        for pk, osv_id, aliases in Advisory.objects.values_list("pk", "osv_id", "aliases").iterator(
            chunk_size=5000
        )
        if osv_id in cves or not cves.isdisjoint(aliases or ())
    }
    advisory_pks = sorted(named)
    keys: set[tuple[str, str]] = set()
    for start in range(0, len(advisory_pks), 5000):
        chunk = advisory_pks[start : start + 5000]
        keys |= set(
            AffectedPackage.objects.filter(advisory_id__in=chunk).values_list("family", "name")
        )
    return keys, set(named.values())


def finish_run(run: ImportRun, importer: Importer, *, error: str = "") -> None:
    """Record the outcome of ``run`` and, once that is committed, announce what changed."""
    totals = importer.totals
    run.added = totals.total("added")
    run.changed = totals.total("changed")
    run.unchanged = totals.total("unchanged")
    run.withdrawn = totals.total("withdrawn")
    run.bad = totals.total("bad")
    run.counts = totals.counts
    run.bad_records = totals.bad_records
    run.skipped = totals.skipped_count
    run.skipped_records = totals.skipped
    run.error = error
    if error:
        run.state = ImportRun.State.FAILED
    elif run.bad:
        run.state = ImportRun.State.BAD_RECORDS
    else:
        run.state = ImportRun.State.SUCCEEDED
    run.finished_at = timezone.now()
    keys = frozenset(totals.keys)
    changes = IndexChanges(
        advisory_ids=frozenset(totals.advisory_ids),
        kev_changed=totals.kev_changed,
        eol_changed=totals.eol_changed,
        generation_before=totals.generation_before,
        generation_after=IndexGeneration.current(),
        bumps=totals.bumps,
    )
    with transaction.atomic():
        run.save()
        if keys or changes.advisory_ids:
            transaction.on_commit(
                lambda: advisories_changed.send(
                    sender=Advisory, keys=set(keys), run=run.pk, changes=changes
                )
            )
