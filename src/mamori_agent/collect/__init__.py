"""Collects one evidence document (``mamori.evidence/1``, see docs/evidence.md)."""

from __future__ import annotations

import datetime
import sys
import time
from collections.abc import Callable

from .. import SCHEMA, __version__
from ..commands import CommandRunner
from ..context import Context, Section
from ..rootfs import FileSystem
from .accounts import collect_accounts
from .authentication import collect_authentication
from .backups import collect_backups
from .firewall import collect_firewall
from .listening import collect_listening
from .malware import collect_malware
from .packages import collect_packages
from .privileges import collect_privileges
from .services import collect_services
from .ssh import collect_ssh
from .system import collect_host, collect_os
from .updates import collect_updates
from .util import UTC

MAX_STRING_CHARS = 4096

# In dependency order: later collectors use what earlier ones found (ctx.facts).
SECTIONS: tuple[tuple[str, Callable[[Section], dict]], ...] = (
    ("packages", collect_packages),
    ("os", collect_os),
    ("services", collect_services),
    ("updates", collect_updates),
    ("firewall", collect_firewall),
    ("listening", collect_listening),
    ("ssh", collect_ssh),
    ("accounts", collect_accounts),
    ("privileges", collect_privileges),
    ("authentication", collect_authentication),
    ("malware", collect_malware),
    ("backups", collect_backups),
)
OUTPUT_ORDER = (
    "os",
    "packages",
    "updates",
    "firewall",
    "listening",
    "services",
    "ssh",
    "accounts",
    "privileges",
    "authentication",
    "malware",
    "backups",
)


def _utc_now() -> str:
    return datetime.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def clean(value):
    """Make every string safe to store: no NUL (PostgreSQL rejects it in JSON), no lone
    surrogates (undecodable file names), at most MAX_STRING_CHARS characters."""
    if isinstance(value, str):
        if not value.isascii():
            value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        if "\x00" in value:
            value = value.replace("\x00", "\ufffd")
        if len(value) > MAX_STRING_CHARS:
            value = value[: MAX_STRING_CHARS - 1] + "…"
        return value
    if isinstance(value, dict):
        return {clean(key): clean(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(item) for item in value]
    return value


def collect(root: str | None = None) -> dict:
    """Collect evidence from the live host, or (``root``) from a mounted root filesystem without
    executing anything: the root mode gets no command runner at all."""
    started = time.monotonic()
    collected_at = _utc_now()
    fs = FileSystem(root if root is not None else "/")
    ctx = Context(fs, CommandRunner() if root is None else None)
    sections: dict[str, dict] = {}
    host: dict | None = None
    for name, collector in SECTIONS:
        section = Section(ctx)
        try:
            result = collector(section)
            if name == "os":
                host = collect_host(section, ctx.facts.get("package_architecture"))
                result = section.finish(
                    {key: value for key, value in result.items() if key not in ("status", "errors")}
                )
        except Exception as error:  # a bug in one collector must not lose the others
            failed = Section(ctx)
            failed.unknown(None, f"internal error: {error.__class__.__name__}: {error}")
            result = failed.finish({})
        sections[name] = result
    if host is None:
        host = {"hostname": None, "machine_id": None, "architecture": None, "fqdn": None}
    evidence = {
        "schema": SCHEMA,
        "agent": {
            "name": "mamori-agent",
            "version": __version__,
            "python": ".".join(str(part) for part in sys.version_info[:3]),
        },
        "collected_at": collected_at,
        "mode": "live" if root is None else "root",
        "duration_ms": 0,
        "host": host,
    }
    for name in OUTPUT_ORDER:
        evidence[name] = sections[name]
    evidence["duration_ms"] = int((time.monotonic() - started) * 1000)
    return clean(evidence)
