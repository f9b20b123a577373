"""The hash chain behind the audit trail. Pure logic, no Django imports.

Each entry's hash covers its own fields and the previous entry's hash, so altering or removing any
entry breaks every hash after it. ``verify`` walks entries in sequence order and names the first
broken one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def entry_hash(fields: dict[str, Any], prev_hash: str) -> str:
    canonical = json.dumps(
        {**fields, "prev_hash": prev_hash},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def digest(value: Any) -> str:
    """A stable digest of any JSON-able value, for before/after snapshots."""
    canonical = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Entry:
    seq: int
    fields: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Break:
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.problem}"


def verify(entries: Iterable[Entry], head_seq: int | None = None) -> Break | None:
    """Return the first break in the chain, or None when it is intact."""
    expected_seq, expected_prev = 1, GENESIS
    for entry in entries:
        if entry.seq != expected_seq:
            return Break(expected_seq, "missing (removed from the log)")
        if entry.prev_hash != expected_prev:
            return Break(entry.seq, "does not follow the entry before it (prev_hash differs)")
        if entry_hash(entry.fields, entry.prev_hash) != entry.hash:
            return Break(entry.seq, "altered (its contents no longer match its hash)")
        expected_seq, expected_prev = entry.seq + 1, entry.hash
    if head_seq is not None and head_seq >= expected_seq:
        return Break(expected_seq, f"missing (removed; the log's head is at entry {head_seq})")
    return None
