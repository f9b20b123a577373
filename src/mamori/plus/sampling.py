"""Choosing the devices a Cyber Essentials Plus audit tests: pure Python, no Django.

The scheme's table, per OS build among end-user devices (editions and feature versions count as
different builds): 1 device → 1, 2–5 → 2, 6–19 → 3, 20–60 → 4, 61 or more → 5. Servers are all
tested.

The choice is random and reproducible. A 256-bit seed from ``secrets`` is drawn once per
sample; within each build every device is ranked by HMAC-SHA256(seed, device key) and the
lowest ranks are taken. With the seed recorded in the audit trail next to a digest of the frame,
anyone can recompute the sample and see that it was neither hand-picked nor redrawn until it
suited someone. Unlike ``random.Random``, HMAC-SHA256 gives the same ranks on every Python
version and platform.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

END_USER = "end_user"
SERVER = "server"
KINDS = (END_USER, SERVER)
SEED_BYTES = 32
UNKNOWN_BUILD = "unknown"

# (smallest population, largest population or None for "and more", devices to test)
SAMPLE_TABLE: tuple[tuple[int, int | None, int], ...] = (
    (1, 1, 1),
    (2, 5, 2),
    (6, 19, 3),
    (20, 60, 4),
    (61, None, 5),
)


def sample_size(population: int) -> int:
    """How many end-user devices of one OS build are tested, out of ``population``."""
    if population < 0:
        raise ValueError("a population cannot be negative")
    for smallest, largest, size in SAMPLE_TABLE:
        if population >= smallest and (largest is None or population <= largest):
            return size
    return 0


def build_key(os_build: str) -> str:
    """Builds are grouped case- and spacing-insensitively ("Windows 11  23H2" = "windows 11
    23h2"); an empty build is its own group, "unknown"."""
    return " ".join((os_build or "").split()).casefold() or UNKNOWN_BUILD


@dataclass(frozen=True)
class FrameEntry:
    """One device of the sampling frame: a stable key (e.g. ``device:12``), its OS build and
    whether it is an end-user device or a server."""

    key: str
    os_build: str
    kind: str


@dataclass(frozen=True)
class BuildSample:
    build: str
    population: int
    size: int
    chosen: tuple[str, ...]


@dataclass(frozen=True)
class Draw:
    seed: str  # hex
    frame_digest: str
    frame_size: int
    builds: tuple[BuildSample, ...]  # end-user devices, per build
    servers: tuple[str, ...]  # every server

    @property
    def chosen(self) -> tuple[str, ...]:
        """Every device to test: the end-user samples by build, then the servers."""
        return tuple(key for build in self.builds for key in build.chosen) + self.servers

    def as_record(self) -> dict:
        """What the audit trail keeps: enough to recompute and check the sample."""
        return {
            "seed": self.seed,
            "frame_digest": self.frame_digest,
            "frame_size": self.frame_size,
            "builds": [
                {
                    "build": build.build,
                    "population": build.population,
                    "size": build.size,
                    "chosen": list(build.chosen),
                }
                for build in self.builds
            ],
            "servers": list(self.servers),
        }


def _checked(entries: Iterable[FrameEntry]) -> list[FrameEntry]:
    frame = list(entries)
    keys = [entry.key for entry in frame]
    if len(set(keys)) != len(keys):
        raise ValueError("the frame lists a device twice")
    for entry in frame:
        if entry.kind not in KINDS:
            raise ValueError(f"device {entry.key}: kind must be one of {', '.join(KINDS)}")
        if not entry.key:
            raise ValueError("every device needs a key")
    return frame


def frame_digest(entries: Iterable[FrameEntry]) -> str:
    """SHA-256 of the frame in canonical form: the same devices, builds and kinds give the
    same digest in any order."""
    rows = sorted((entry.key, build_key(entry.os_build), entry.kind) for entry in entries)
    canonical = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def rank(seed: bytes, key: str) -> str:
    return hmac.new(seed, key.encode("utf-8"), hashlib.sha256).hexdigest()


def new_seed() -> bytes:
    return secrets.token_bytes(SEED_BYTES)


def draw(entries: Iterable[FrameEntry], seed: bytes) -> Draw:
    """The sample of ``entries`` for ``seed``. Raises ValueError for a malformed frame."""
    if len(seed) < 16:
        raise ValueError("the seed must have at least 128 bits")
    frame = _checked(entries)
    by_build: dict[str, list[str]] = {}
    servers = []
    for entry in frame:
        if entry.kind == SERVER:
            servers.append(entry.key)
        else:
            by_build.setdefault(build_key(entry.os_build), []).append(entry.key)
    builds = []
    for build in sorted(by_build):
        keys = by_build[build]
        size = sample_size(len(keys))
        ranked = sorted(keys, key=lambda key: (rank(seed, key), key))
        builds.append(BuildSample(build, len(keys), size, tuple(sorted(ranked[:size]))))
    return Draw(
        seed=seed.hex(),
        frame_digest=frame_digest(frame),
        frame_size=len(frame),
        builds=tuple(builds),
        servers=tuple(sorted(servers)),
    )


def verify(entries: Iterable[FrameEntry], record: dict) -> bool:
    """Whether ``record`` (``Draw.as_record()``) is exactly the sample its seed gives for this
    frame: the check anyone can run on the audit trail."""
    try:
        seed = bytes.fromhex(record["seed"])
    except (KeyError, TypeError, ValueError):
        return False
    frame = list(entries)
    if frame_digest(frame) != record.get("frame_digest"):
        return False
    return draw(frame, seed).as_record() == record
