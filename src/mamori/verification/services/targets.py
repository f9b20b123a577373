"""The targets of a host: the distinct things vulnerability matching looks up for its latest
evidence (a source package at one version, with the host's binaries of it), shared by every
host that has them. An upload writes them (``sync_targets``); a re-match finds the targets of
the changed advisories' packages by name (``targets_with_keys``) and reads them back
(``load_targets``) to compare them with the index.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from mamori.verification.models import Host, HostTarget, MatchTarget, MatchTargetName

# Package names longer than this are clipped in the name index (and in look-ups, alike): a
# clipped name can only make a re-match compare one target too many, never miss one.
KEY_NAME_LENGTH = MatchTargetName._meta.get_field("name").max_length
KEY_LOOKUP_CHUNK = 500
ID_CHUNK = 5000


def sorted_chunks(values: Iterable, size: int = ID_CHUNK):
    """``values`` sorted, in lists of at most ``size`` (one ``IN`` clause each)."""
    ordered = sorted(values)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def target_digest(target) -> str:
    """The identity of a ``matching.Target``: every field matching reads."""
    canonical = json.dumps(
        [
            target.family,
            list(target.releases),
            target.name,
            target.version,
            list(target.binaries),
            target.manager,
            list(target.also_names),
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def targets_of(payload: dict) -> dict[str, Any]:
    """The targets of one evidence, by digest."""
    from mamori.advisories.matching import host_targets

    return {target_digest(target): target for target in host_targets(payload)}


def target_ids(targets: Mapping[str, Any]) -> dict[str, int]:
    """The ``MatchTarget`` id of each target (by digest), creating the rows that are new."""
    ids: dict[str, int] = {}
    digests = list(targets)
    for start in range(0, len(digests), ID_CHUNK):
        chunk = digests[start : start + ID_CHUNK]
        ids.update(MatchTarget.objects.filter(digest__in=chunk).values_list("digest", "pk"))
    missing = [digest for digest in digests if digest not in ids]
    if missing:
        MatchTarget.objects.bulk_create(
            [
                MatchTarget(
                    digest=digest,
                    family=targets[digest].family[:32],
                    name=targets[digest].name,
                    version=targets[digest].version,
                    releases=list(targets[digest].releases),
                    binaries=list(targets[digest].binaries),
                    manager=targets[digest].manager[:16],
                    also_names=list(targets[digest].also_names),
                )
                for digest in missing
            ],
            ignore_conflicts=True,  # a concurrent upload may create the same target
        )
        created = dict(MatchTarget.objects.filter(digest__in=missing).values_list("digest", "pk"))
        MatchTargetName.objects.bulk_create(
            MatchTargetName(target_id=created[digest], family=family, name=name)
            for digest in missing
            if digest in created
            for family, name in sorted(_target_keys(targets[digest]))
        )
        ids.update(created)
    return ids


def _target_keys(target) -> set[tuple[str, str]]:
    return {(target.family[:32], name[:KEY_NAME_LENGTH]) for name in target.names}


def sync_targets(host: Host, targets: Mapping[str, Any]) -> None:
    """Make the host's target rows those of ``targets``, touching only the rows that change.
    A target row first created by a concurrent transaction that has not committed yet is
    waited for by the unique index, so ``target_ids`` always ends with every id."""
    wanted = set(target_ids(targets).values())
    existing = dict(HostTarget.objects.filter(host=host).values_list("target_id", "pk"))
    gone = [pk for target_id, pk in existing.items() if target_id not in wanted]
    if gone:
        HostTarget.objects.filter(pk__in=gone).delete()
    HostTarget.objects.bulk_create(
        HostTarget(host=host, target_id=target_id) for target_id in sorted(wanted - existing.keys())
    )


def targets_with_keys(keys: Iterable[tuple[str, str]]) -> set[int]:
    """Targets looked up under any of ``keys``: index look-ups, never a scan."""
    names_by_family: dict[str, set[str]] = defaultdict(set)
    for family, name in keys:
        names_by_family[str(family)[:32]].add(str(name)[:KEY_NAME_LENGTH])
    found: set[int] = set()
    for family, names in names_by_family.items():
        ordered = sorted(names)
        for start in range(0, len(ordered), KEY_LOOKUP_CHUNK):
            chunk = ordered[start : start + KEY_LOOKUP_CHUNK]
            found.update(
                MatchTargetName.objects.filter(family=family, name__in=chunk).values_list(
                    "target_id", flat=True
                )
            )
    return found


def hosts_with_keys(keys: Iterable[tuple[str, str]]) -> list[int]:
    """Hosts whose latest evidence looks up any of ``keys``."""
    return sorted(
        set(
            HostTarget.objects.filter(target_id__in=targets_with_keys(keys))
            .values_list("host_id", flat=True)
            .distinct()
        )
    )


def load_targets(ids: Iterable[int]) -> dict[int, Any]:
    """``matching.Target`` objects of these ``MatchTarget`` ids, by id."""
    from mamori.advisories.matching import Target

    targets = {}
    for chunk in sorted_chunks(ids):
        for (
            pk,
            family,
            releases,
            name,
            version,
            binaries,
            manager,
            also,
        ) in MatchTarget.objects.filter(pk__in=chunk).values_list(
            "pk", "family", "releases", "name", "version", "binaries", "manager", "also_names"
        ):
            targets[pk] = Target(
                family, tuple(releases), name, version, tuple(binaries), manager, tuple(also)
            )
    return targets
