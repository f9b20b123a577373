"""The ``packages`` section: dpkg, rpm, apk and the system Python's distributions."""

from __future__ import annotations

import re
import sqlite3
from collections import Counter

from ..context import Section
from ..rootfs import FileError
from . import rpmdb
from .system import uname_architecture

DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_INFO = "/var/lib/dpkg/info"
APK_INSTALLED = "/lib/apk/db/installed"
RPM_SQLITE = ("/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite")
RPM_BERKELEY = ("/var/lib/rpm/Packages", "/var/lib/rpm/Packages.db")
_SOURCE_RE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?\s*$")

# Where the system interpreter keeps distributions: Debian's dist-packages, the site-packages
# of RHEL, SUSE and Alpine (lib64 for compiled ones on RHEL), and /usr/local for pip.
PYTHON_SITE_PATTERNS = (
    "/usr/lib/python3*/site-packages",
    "/usr/lib/python3*/dist-packages",
    "/usr/lib64/python3*/site-packages",
    "/usr/local/lib/python3*/site-packages",
    "/usr/local/lib/python3*/dist-packages",
    "/usr/local/lib64/python3*/site-packages",
)
_METADATA_LIMIT = 4 * 1024 * 1024


def parse_dpkg_status(text: str) -> tuple[list[dict], list[str]]:
    """Installed packages of a dpkg status file, and one message per malformed stanza."""
    items, problems = [], []
    fields: dict[str, str] = {}
    line_number = 0

    def finish_stanza(end_line: int) -> None:
        if not fields:
            return
        name = fields.get("package")
        # Status is "want flag state". Only the state says whether the files are on disk: a
        # package selected for removal ("deinstall ok installed") is still installed, and still
        # vulnerable, until the removal runs. debsecan counts it the same way.
        status = fields.get("status", "").split()
        if len(status) != 3 or status[2] != "installed":
            return
        version = fields.get("version")
        if not name or not version:
            problems.append(f"stanza ending at line {end_line}: installed without Package/Version")
            return
        source_name, source_version = name, version
        source = fields.get("source")
        if source:
            match = _SOURCE_RE.match(source)
            if match:
                source_name = match.group(1)
                source_version = match.group(2) or version
            else:
                problems.append(f"package {name}: malformed Source field")
        items.append(
            {
                "manager": "dpkg",
                "name": name,
                "version": version,
                "architecture": fields.get("architecture") or None,
                "source_name": source_name,
                "source_version": source_version,
            }
        )

    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            finish_stanza(line_number)
            fields = {}
            continue
        if line[0] in " \t":
            continue  # continuation of a multi-line field we do not need
        key, found, value = line.partition(":")
        if found:
            fields[key.strip().lower()] = value.strip()
    finish_stanza(line_number)
    return items, problems


def parse_apk_installed(text: str) -> tuple[list[dict], set[str]]:
    """Packages of apk's installed database, and the directories (``F:``) they own."""
    items, directories = [], set()
    fields: dict[str, str] = {}

    def finish_stanza() -> None:
        name, version = fields.get("P"), fields.get("V")
        if name and version:
            items.append(
                {
                    "manager": "apk",
                    "name": name,
                    "version": version,
                    "architecture": fields.get("A") or None,
                    "source_name": fields.get("o") or name,
                    "source_version": version,
                }
            )

    for line in text.splitlines():
        if not line.strip():
            finish_stanza()
            fields = {}
            continue
        if len(line) >= 2 and line[1] == ":":
            key, value = line[0], line[2:]
            if key == "F":
                directories.add("/" + value.strip("/"))
            elif key not in fields:
                fields[key] = value
    finish_stanza()
    return items, directories


def normalise_python_name(name: str) -> str:
    """PEP 503."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _metadata_fields(text: str) -> dict[str, str]:
    """Name and Version from the RFC 822 header block of METADATA/PKG-INFO."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break
        key, separator, value = line.partition(":")
        key = key.strip().lower()
        if separator and key in ("name", "version") and key not in found:
            found[key] = value.strip()
    return found


def _dpkg_metadata_dirs(section: Section) -> set[str]:
    """Python metadata directories listed in dpkg's file lists (``info/*.list``)."""
    owned = set()
    for name in section.list_dir(DPKG_INFO):
        if not name.endswith(".list"):
            continue
        text = section.read_text(f"{DPKG_INFO}/{name}")
        for line in (text or "").splitlines():
            if line.endswith((".dist-info", ".egg-info")):
                owned.add(line)
    return owned


def collect_python(section: Section, owners: dict[str, set[str]]) -> list[dict]:
    """Distributions in the system interpreter's site directories.

    ``owners`` maps a package manager to the metadata directories its packages own, so that
    distributions installed by the OS vendor can be told from pip-installed ones.
    """
    items = []
    locations = []
    for pattern in PYTHON_SITE_PATTERNS:
        for location in section.glob(pattern):
            if location not in locations and section.is_dir(location):
                locations.append(location)
    for location in locations:
        for entry in section.list_dir(location):
            if not entry.endswith((".dist-info", ".egg-info")):
                continue
            path = f"{location}/{entry}"
            kind = section.kind(path)
            if kind == "dir":
                metadata_path = path + (
                    "/METADATA" if entry.endswith(".dist-info") else "/PKG-INFO"
                )
            elif kind == "file" and entry.endswith(".egg-info"):
                metadata_path = path  # distutils wrote PKG-INFO as a single file
            else:
                continue
            text = section.read_text(metadata_path, limit=_METADATA_LIMIT)
            if text is None:
                continue
            fields = _metadata_fields(text)
            if not fields.get("name") or not fields.get("version"):
                section.error(metadata_path, "no Name or Version in the metadata")
                continue
            installer = None
            if kind == "dir" and entry.endswith(".dist-info"):
                installer_text = section.read_text(path + "/INSTALLER", limit=4096)
                if installer_text and installer_text.strip():
                    installer = installer_text.strip().splitlines()[0].strip()
            managed_by = next(
                (manager for manager, dirs in sorted(owners.items()) if path in dirs), None
            )
            name = normalise_python_name(fields["name"])
            items.append(
                {
                    "manager": "python",
                    "name": name,
                    "version": fields["version"],
                    "architecture": None,
                    "source_name": name,
                    "source_version": fields["version"],
                    "location": location,
                    "installer": installer,
                    "managed_by": managed_by,
                }
            )
    return items


def _collect_rpm(section: Section) -> tuple[list[dict], set[str], bool] | None:
    """(items, owned metadata directories, whether the database could be read), or None
    when there is no rpm database."""
    ctx = section.ctx
    for path in RPM_SQLITE:
        kind = section.kind(path)
        if kind is None:
            continue
        if kind != "file":
            section.error(path, "not a regular file")
            return [], set(), False
        try:
            database = rpmdb.read_sqlite_database(section.fs, path)
        except FileError as error:
            section.file_error(error)
            return [], set(), False
        except sqlite3.Error as error:
            section.error(path, f"not a readable rpm database: {error}")
            return [], set(), False
        for problem in database.errors:
            section.error(path, problem)
        return database.items, database.metadata_dirs, True
    for path in RPM_BERKELEY:
        if not section.exists(path):
            continue
        if ctx.live and ctx.can_run("rpm-query"):
            result = ctx.run("rpm-query")
            if result.ok:
                return rpmdb.parse_query_output(result.output or ""), set(), True
            section.command_error(result)
            return [], set(), False
        reason = "BerkeleyDB/ndb rpm database is not parsed by the agent"
        if not ctx.live:
            reason += "; collect on the live host instead"
        section.error(path, reason)
        return [], set(), False
    return None


def collect_packages(section: Section) -> dict:
    ctx = section.ctx
    managers: list[str] = []
    items: list[dict] = []
    owners: dict[str, set[str]] = {}
    architecture = None
    installed: dict[str, set[str]] = {}
    databases_read = 0

    status_text = section.read_text(DPKG_STATUS)
    if status_text is not None:
        dpkg_items, problems = parse_dpkg_status(status_text)
        for problem in problems:
            section.error(DPKG_STATUS, problem)
        managers.append("dpkg")
        databases_read += 1
        items.extend(dpkg_items)
        installed["dpkg"] = {item["name"] for item in dpkg_items}
        dpkg_arch = next(
            (item["architecture"] for item in dpkg_items if item["name"] == "dpkg"), None
        )
        architecture = architecture or dpkg_arch or _most_common_arch(dpkg_items)
    elif section.exists("/var/lib/dpkg"):
        section.error(DPKG_STATUS, "dpkg status could not be read")

    rpm = _collect_rpm(section)
    if rpm is not None:
        rpm_items, rpm_dirs, rpm_read = rpm
        databases_read += rpm_read
        if rpm_items or not managers:
            managers.append("rpm")
            items.extend(rpm_items)
            installed["rpm"] = {item["name"] for item in rpm_items}
            owners["rpm"] = rpm_dirs
            architecture = architecture or _most_common_arch(rpm_items)

    apk_text = section.read_text(APK_INSTALLED)
    if apk_text is not None:
        apk_items, apk_dirs = parse_apk_installed(apk_text)
        managers.append("apk")
        databases_read += 1
        items.extend(apk_items)
        installed["apk"] = {item["name"] for item in apk_items}
        owners["apk"] = apk_dirs
        arch_text = section.read_text("/etc/apk/arch", limit=4096)
        apk_arch = arch_text.strip() if arch_text and arch_text.strip() else None
        architecture = architecture or apk_arch or _most_common_arch(apk_items)

    if "dpkg" in managers:
        owners["dpkg"] = _dpkg_metadata_dirs(section)
    python_items = collect_python(section, owners)
    if python_items:
        managers.append("python")
        items.extend(python_items)

    if not databases_read and section.errors:
        section.unknown(None, "no package database could be read")
    ctx.facts["installed"] = installed
    ctx.facts["package_architecture"] = uname_architecture(architecture)
    return section.finish({"managers": managers, "items": items})


def _most_common_arch(items: list[dict]) -> str | None:
    counts = Counter(
        item["architecture"]
        for item in items
        if item.get("architecture") and item["architecture"] not in ("all", "noarch", "any")
    )
    return counts.most_common(1)[0][0] if counts else None


def is_installed(facts: dict, *names: str) -> bool | None:
    """Whether any of ``names`` is installed by a package manager; ``None`` when no package
    database could be read."""
    installed = facts.get("installed") or {}
    if not installed:
        return None
    return any(name in packages for packages in installed.values() for name in names)
