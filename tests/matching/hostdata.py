"""Real test data for the matcher: evidence built from the Debian 12 host snapshot, and the OSV,
KEV and end-of-life files vendored in tests/data read with the importer's own parsers."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from functools import cache

from mamori.advisories import osv, records
from tests.datafiles import (
    DEBIAN12_OS_RELEASE,
    DEBIAN12_STATUS,
    DISTRO_INFO,
    EOL_PRODUCTS,
    KEV_FILE,
    OSV,
)

_SOURCE_FIELD = re.compile(r"(?P<name>\S+)(?:\s+\((?P<version>[^)]+)\))?")


def read_dpkg_status(text: str) -> list[dict]:
    """``packages.items`` for dpkg, as docs/evidence.md defines them: installed packages only,
    ``Source: name (version)`` for a binNMU, the binary's name/version when there is no Source."""
    items = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if not line or line[0] in " \t" or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        if "Package" not in fields:
            continue
        if fields.get("Status") not in ("install ok installed", "hold ok installed"):
            continue
        source_name, source_version = fields["Package"], fields["Version"]
        if "Source" in fields:
            match = _SOURCE_FIELD.fullmatch(fields["Source"])
            source_name = match["name"]
            source_version = match["version"] or fields["Version"]
        items.append(
            {
                "manager": "dpkg",
                "name": fields["Package"],
                "version": fields["Version"],
                "architecture": fields.get("Architecture"),
                "source_name": source_name,
                "source_version": source_version,
            }
        )
    return items


def read_os_release(text: str) -> dict:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"')
    return {
        "status": "ok",
        "errors": [],
        "id": values.get("ID"),
        "id_like": values.get("ID_LIKE", "").split() or [],
        "version_id": values.get("VERSION_ID"),
        "version_codename": values.get("VERSION_CODENAME"),
        "name": values.get("NAME"),
        "pretty_name": values.get("PRETTY_NAME"),
    }


def evidence(os_section: dict, items: list[dict], *, esm: bool | None = None) -> dict:
    """A minimal ``mamori.evidence/1`` document with the sections the matcher reads."""
    return {
        "schema": "mamori.evidence/1",
        "os": os_section,
        "packages": {
            "status": "ok",
            "errors": [],
            "managers": sorted({item["manager"] for item in items}),
            "items": items,
        },
        "updates": {
            "status": "ok",
            "errors": [],
            "apt_sources": None if esm is None else {"entries": [], "esm": esm},
        },
    }


@cache
def debian12_items() -> tuple[dict, ...]:
    return tuple(read_dpkg_status(DEBIAN12_STATUS.read_text()))


def debian12_os() -> dict:
    return read_os_release(DEBIAN12_OS_RELEASE.read_text())


def debian12_evidence(overrides: dict[str, str] | None = None) -> dict:
    """The snapshot host; ``overrides`` sets the source version of every binary of a source."""
    items = [dict(item) for item in debian12_items()]
    for item in items:
        if overrides and item["source_name"] in overrides:
            item["source_version"] = overrides[item["source_name"]]
    return evidence(debian12_os(), items)


def os_section(os_id: str, version_id: str | None, pretty_name: str = "") -> dict:
    return {
        "status": "ok",
        "errors": [],
        "id": os_id,
        "id_like": [],
        "version_id": version_id,
        "version_codename": None,
        "name": None,
        "pretty_name": pretty_name,
    }


def python_item(
    name: str, version: str, installer: str | None = "pip", location: str | None = None
):
    return {
        "manager": "python",
        "name": name,
        "version": version,
        "architecture": None,
        "source_name": name,
        "source_version": version,
        "location": location or "/usr/local/lib/python3.11/dist-packages",
        "installer": installer,
    }


@cache
def load_osv(folder: str) -> tuple[records.Advisory, ...]:
    """Every record under ``tests/data/osv/<folder>``, parsed by ``osv.parse_osv``."""
    found = []
    for path in sorted((OSV / folder).rglob("*.json")):
        found.append(osv.parse_osv(json.loads(path.read_text())))
    return tuple(found)


def raw_osv(folder: str) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted((OSV / folder).rglob("*.json"))]


@cache
def load_kev() -> tuple[records.KevEntry, ...]:
    data = json.loads(KEV_FILE.read_text())
    return tuple(item for item in osv.parse_kev(data) if isinstance(item, records.KevEntry))


@cache
def load_eol() -> tuple[records.EolCycle, ...]:
    cycles: list[records.EolCycle] = []
    for path in sorted(EOL_PRODUCTS.glob("*.json")):
        cycles.extend(
            item
            for item in osv.parse_endoflife(path.stem, json.loads(path.read_text()))
            if isinstance(item, records.EolCycle)
        )
    for product in ("debian", "ubuntu"):
        text = (DISTRO_INFO / f"{product}.csv").read_text()
        cycles.extend(
            item
            for item in osv.parse_distro_info(product, text)
            if isinstance(item, records.EolCycle)
        )
    return tuple(cycles)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- records built directly -------------------------------------------------------------------


def make_advisory(
    advisory_id: str = "TEST-2026-1",
    *,
    ecosystem: str = "Debian:12",
    name: str = "foo",
    events: tuple[tuple[str, str], ...] | None = (("introduced", "0"), ("fixed", "1.2-1")),
    range_type: str = "ECOSYSTEM",
    ranges: tuple[records.Range, ...] | None = None,
    versions: tuple[str, ...] = (),
    published: str | None = "2026-01-01T10:00:00",
    withdrawn: str | None = None,
    aliases: tuple[str, ...] = (),
    cvss: tuple[str, ...] = (),
    rating: str | None = None,
    package_cvss: tuple[str, ...] = (),
    package_rating: str | None = None,
    summary: str = "test advisory",
    extra_affected: tuple[records.AffectedPackage, ...] = (),
) -> records.Advisory:
    family, _, release = ecosystem.partition(":")
    if ranges is None:
        ranges = () if events is None else (records.Range(range_type, tuple(events)),)
    affected = records.AffectedPackage(
        advisory_id=advisory_id,
        ecosystem=ecosystem,
        family=family,
        release=release,
        name=name,
        ranges=ranges,
        versions=versions,
        severity=package_rating,
        cvss_vectors=package_cvss,
    )
    return records.Advisory(
        id=advisory_id,
        modified=utc("2026-01-02T00:00:00"),
        published=utc(published) if published else None,
        withdrawn=utc(withdrawn) if withdrawn else None,
        aliases=aliases,
        summary=summary,
        cvss_vectors=cvss,
        severity=rating,
        affected=(affected, *extra_affected),
    )


def dpkg_item(
    name: str, version: str, source: str | None = None, source_version: str | None = None
):
    return {
        "manager": "dpkg",
        "name": name,
        "version": version,
        "architecture": "amd64",
        "source_name": source or name,
        "source_version": source_version or version,
    }


def debian_host(items: list[dict], version_id: str | None = "12") -> dict:
    return evidence(os_section("debian", version_id, f"Debian GNU/Linux {version_id}"), items)


def ubuntu_host(version_id: str, items: list[dict], *, esm: bool = False) -> dict:
    lts = " LTS" if version_id.endswith(".04") and int(version_id[:2]) % 2 == 0 else ""
    return evidence(os_section("ubuntu", version_id, f"Ubuntu {version_id}.1{lts}"), items, esm=esm)
