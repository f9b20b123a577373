"""The Django side of matching: the in-memory advisory index and ``assess_evidence``.

Each process builds the index once from the database and keeps it; it is rebuilt only when an
import moved the index generation (``IndexGeneration``). Rows are read as plain column values and
turned into ``records`` objects directly: no feed is parsed again.
"""

from __future__ import annotations

import gc
import json
import sys
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date

from django.db.models import TextField, Value
from django.db.models.functions import Cast, Concat

from mamori.advisories import records
from mamori.advisories.lifecycle import os_support, software_support
from mamori.advisories.matching import AdvisoryIndex, host_platform, match_evidence
from mamori.advisories.models import (
    Advisory,
    AffectedPackage,
    EolCycle,
    IndexGeneration,
    KevEntry,
)
from mamori.advisories.signals import IndexChanges

_CHUNK = 10_000
# Above this many changed advisories the index is rebuilt rather than updated in place (the
# re-match then matches every target anyway; see verification.tasks.FULL_REMATCH_ABOVE).
IN_PLACE_LIMIT = 2000
_EVENT_KINDS = {kind: kind for kind in records.EVENT_KINDS}


@dataclass(frozen=True)
class _Snapshot:
    generation: tuple
    index: AdvisoryIndex
    cycles: tuple[records.EolCycle, ...]
    # (family, release) pairs the store has advisories for: a host whose OS release is not
    # among them has not been checked for vulnerabilities at all.
    platforms: frozenset[tuple[str, str]]


_lock = threading.Lock()
_snapshot: _Snapshot | None = None


def load_index() -> AdvisoryIndex:
    """The matching index of every stored advisory and KEV entry (cached per process)."""
    return _current().index


def load_cycles() -> tuple[records.EolCycle, ...]:
    """Every stored release cycle, from both lifecycle sources (cached with the index)."""
    return _current().cycles


def assess_evidence(
    evidence: dict, *, as_of: date, patch_days: int = 14, cvss_threshold: float = 7.0
) -> dict:
    """Vulnerabilities, OS support and third-party software support for one host's evidence.

    ``vulnerabilities`` is None when the store holds no advisories at all (not assessed, rather
    than an empty list that would read as "nothing missing"); ``vulnerabilities_complete`` is
    False when it holds none for the host's OS ecosystem and release."""
    snapshot = _current()
    empty = len(snapshot.index) == 0
    platform = host_platform(evidence)
    complete = not empty and (
        platform is None
        or any(
            (platform.family, release) in snapshot.platforms
            for release in platform.releases
            if release
        )
    )
    return {
        "vulnerabilities": None
        if empty
        else match_evidence(
            snapshot.index,
            evidence,
            as_of=as_of,
            patch_days=patch_days,
            cvss_threshold=cvss_threshold,
        ),
        "vulnerabilities_complete": complete,
        "os_support": os_support(evidence, snapshot.cycles, as_of=as_of),
        "software_support": software_support(evidence, snapshot.cycles, as_of=as_of),
    }


def stored_platforms() -> frozenset[tuple[str, str]]:
    """The (family, release) pairs the store has advisories for (cached with the index)."""
    return _current().platforms


def forget_index() -> None:
    """Drop this process's cached index (the next call rebuilds it)."""
    global _snapshot
    with _lock:
        _snapshot = None


def _current() -> _Snapshot:
    global _snapshot
    generation = IndexGeneration.current()
    snapshot = _snapshot
    if snapshot is not None and snapshot.generation == generation:
        return snapshot
    with _lock:
        if _snapshot is not None and _snapshot.generation == generation:
            return _snapshot
        # Millions of small long-lived objects, none of them garbage and none in a cycle: the
        # cyclic collector would walk them again and again while they are made (a third of the
        # build time) and once more after. So it is paused while building, and what exists
        # then is moved out of its way (gc.freeze); refcounting still frees an old index. The
        # collection first leaves no garbage cycle to be frozen with it (the previous index is
        # frozen already, so this walks only the rest of the process).
        _snapshot = None  # let the old index go first: two at once would double the memory
        gc.collect()
        collecting = gc.isenabled()
        gc.disable()
        try:
            # Tagged with the generation read before building: should an import commit while
            # we read, the next call sees a newer generation and builds again.
            _snapshot = _Snapshot(
                generation=generation,
                index=AdvisoryIndex(iter_stored_advisories(), iter_stored_kev()),
                cycles=tuple(iter_stored_cycles()),
                platforms=frozenset(
                    AffectedPackage.objects.values_list("family", "release").distinct()
                ),
            )
            gc.freeze()
        finally:
            if collecting:
                gc.enable()
        return _snapshot


def _json_columns(*columns: str) -> Concat:
    """The JSON columns of a row as one JSON array in text: one ``json.loads`` per row instead
    of one per column (the JSON decoding is most of the time a cold index build takes)."""
    parts: list = [Value("[")]
    for position, column in enumerate(columns):
        if position:
            parts.append(Value(","))
        parts.append(Cast(column, TextField()))
    parts.append(Value("]"))
    return Concat(*parts, output_field=TextField())


def apply_changes(changes: IndexChanges) -> bool:
    """Bring this process's cached index up to date with one import run by filing again the
    advisories it changed (and reloading KEV and lifecycle data if they changed) instead of
    building the whole index: milliseconds instead of seconds. Only when the cached index is
    exactly the run's starting point and nothing else moved the generation; otherwise returns
    False and the index is rebuilt on its next use.

    Called by the process that re-matches after the import (the importing process in the
    embedded deployment, a worker otherwise), where nothing matches at the same time."""
    global _snapshot
    if len(changes.advisory_ids) > IN_PLACE_LIMIT:
        return False  # a bulk import: rebuilding is as fast, and the id list stays small
    with _lock:
        snapshot = _snapshot
        if (
            snapshot is None
            or not changes.alone
            or snapshot.generation != changes.generation_before
            or IndexGeneration.current() != changes.generation_after
        ):
            return False
        index = snapshot.index
        platforms = set(snapshot.platforms)
        for advisory in iter_stored_advisories(changes.advisory_ids):
            index.add(advisory)
            platforms.update((item.family, item.release) for item in advisory.affected)
        if changes.kev_changed:
            index.replace_kev(iter_stored_kev())
        _snapshot = _Snapshot(
            generation=tuple(changes.generation_after),
            index=index,
            cycles=tuple(iter_stored_cycles()) if changes.eol_changed else snapshot.cycles,
            platforms=frozenset(platforms),
        )
        return True


def iter_stored_advisories(osv_ids: Iterable[str] | None = None) -> Iterator[records.Advisory]:
    """Every stored advisory (or those of ``osv_ids``) as a ``records.Advisory``, its affected
    packages included."""
    # One copy of each repeated string (ecosystems, versions, vectors): the same versions
    # recur in every advisory of a package, and this halves the index's memory.
    strings: dict[str, str] = {}

    def shared(text: str) -> str:
        return strings.setdefault(text, text)

    selected = Advisory.objects.all()
    affected_rows = AffectedPackage.objects.all()
    if osv_ids is not None:
        wanted = sorted(set(osv_ids))
        selected = selected.filter(osv_id__in=wanted)
        affected_rows = affected_rows.filter(advisory__osv_id__in=wanted)
    advisories = (
        selected.annotate(lists=_json_columns("aliases", "cvss_vectors"))
        .values_list(
            "pk", "osv_id", "modified", "published", "withdrawn", "summary", "severity", "lists"
        )
        .order_by()
    )
    stored = list(advisories.iterator(chunk_size=_CHUNK))
    osv_ids = {row[0]: row[1] for row in stored}

    affected: dict[int, list[records.AffectedPackage]] = defaultdict(list)
    rows = (
        affected_rows.annotate(lists=_json_columns("ranges", "versions", "cvss_vectors"))
        .values_list("advisory_id", "ecosystem", "family", "release", "name", "severity", "lists")
        .order_by("pk")  # document order within each advisory
    )
    for advisory_pk, ecosystem, family, release, name, severity, lists in rows.iterator(
        chunk_size=_CHUNK
    ):
        ranges, versions, vectors = json.loads(lists)
        affected[advisory_pk].append(
            records.AffectedPackage(
                advisory_id=osv_ids[advisory_pk],
                ecosystem=shared(ecosystem),
                family=shared(family),
                release=shared(release),
                name=sys.intern(name),
                ranges=tuple(
                    records.Range(
                        type=shared(item["type"]),
                        events=tuple(
                            (_EVENT_KINDS[kind], shared(version))
                            for kind, version in item["events"]
                        ),
                    )
                    for item in ranges
                ),
                versions=tuple(map(shared, versions)),
                severity=severity or None,
                cvss_vectors=tuple(map(shared, vectors)),
            )
        )
    del osv_ids
    for pk, osv_id, modified, published, withdrawn, summary, severity, lists in stored:
        aliases, vectors = json.loads(lists)
        yield records.Advisory(
            id=osv_id,
            modified=modified,
            published=published,
            withdrawn=withdrawn,
            aliases=tuple(aliases),
            summary=summary,
            cvss_vectors=tuple(vectors),
            severity=severity or None,
            affected=tuple(affected.pop(pk, ())),
        )


def iter_stored_kev() -> Iterator[records.KevEntry]:
    rows = KevEntry.objects.values_list(
        "cve", "vendor", "product", "name", "date_added", "due_date", "known_ransomware"
    ).order_by()
    for cve, vendor, product, name, added, due, ransomware in rows.iterator(chunk_size=_CHUNK):
        yield records.KevEntry(
            cve=cve,
            vendor=vendor,
            product=product,
            name=name,
            date_added=added,
            due_date=due,
            known_ransomware=ransomware,
        )


def iter_stored_cycles() -> Iterator[records.EolCycle]:
    fields = (
        "product",
        "cycle",
        "release_date",
        "eol",
        "extended",
        "lts",
        "source",
        "codename",
        "eol_date_unknown",
        "extended_open",
    )
    for row in EolCycle.objects.values(*fields).order_by("product", "source", "cycle"):
        yield records.EolCycle(**row)
