"""RPM headers as stored in the sqlite rpm database (rpm ≥ 4.16: RHEL 9, Fedora 33+, SUSE 15.5+).

``Packages.blob`` holds each package's header without the 8-byte header magic: the number of index
entries and the length of the data store (big-endian uint32 each), then 16-byte index entries
``(tag, type, offset, count)``, then the data store. We read the handful of tags we need.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import tempfile

from ..rootfs import FileError, FileSystem

TAG_NAME = 1000
TAG_VERSION = 1001
TAG_RELEASE = 1002
TAG_EPOCH = 1003
TAG_ARCH = 1022
TAG_SOURCERPM = 1044
TAG_DIRINDEXES = 1116
TAG_BASENAMES = 1117
TAG_DIRNAMES = 1118

TYPE_INT32 = 4
TYPE_STRING = 6
TYPE_STRING_ARRAY = 8
TYPE_I18NSTRING = 9

_PACKAGE_TAGS = frozenset((TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH, TAG_ARCH, TAG_SOURCERPM))
_FILE_TAGS = frozenset((TAG_DIRINDEXES, TAG_BASENAMES, TAG_DIRNAMES))
_MAX_INDEX_ENTRIES = 1 << 20
_MAX_DATA_BYTES = 256 * 1024 * 1024
MAX_DATABASE_BYTES = 2 * 1024 * 1024 * 1024


class HeaderError(ValueError):
    pass


def parse_header(blob: bytes, *, with_files: bool = False) -> dict[int, list]:
    """The wanted tags of one header blob: tag → list of values (strings or ints)."""
    if len(blob) < 8:
        raise HeaderError("header shorter than 8 bytes")
    index_count, data_length = struct.unpack_from(">II", blob, 0)
    if index_count > _MAX_INDEX_ENTRIES or data_length > _MAX_DATA_BYTES:
        raise HeaderError("implausible header size")
    data_start = 8 + 16 * index_count
    data_end = data_start + data_length
    if data_end > len(blob):
        raise HeaderError("header truncated")
    wanted = _PACKAGE_TAGS | _FILE_TAGS if with_files else _PACKAGE_TAGS
    values: dict[int, list] = {}
    for entry in range(index_count):
        tag, kind, offset, count = struct.unpack_from(">iIiI", blob, 8 + 16 * entry)
        if tag not in wanted:
            continue
        if offset < 0 or offset >= data_length:
            raise HeaderError(f"tag {tag}: offset outside the data store")
        position = data_start + offset
        if kind == TYPE_INT32:
            if count > (data_end - position) // 4:
                raise HeaderError(f"tag {tag}: integers run past the data store")
            values[tag] = list(struct.unpack_from(f">{count}i", blob, position))
        elif kind in (TYPE_STRING, TYPE_STRING_ARRAY, TYPE_I18NSTRING):
            if kind == TYPE_STRING and count != 1:
                raise HeaderError(f"tag {tag}: a string with count {count}")
            strings = []
            for _ in range(count):
                end = blob.find(b"\0", position, data_end)
                if end < 0:
                    raise HeaderError(f"tag {tag}: unterminated string")
                strings.append(blob[position:end].decode("utf-8", errors="replace"))
                position = end + 1
            values[tag] = strings
        else:
            raise HeaderError(f"tag {tag}: unexpected type {kind}")
    return values


def _first(values: dict[int, list], tag: int):
    found = values.get(tag)
    return found[0] if found else None


def _source_parts(sourcerpm: str | None) -> list[str] | None:
    """``openssl-3.0.7-27.el9.src.rpm`` → ``["openssl", "3.0.7", "27.el9"]``."""
    if not sourcerpm:
        return None
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if sourcerpm.endswith(suffix):
            parts = sourcerpm[: -len(suffix)].rsplit("-", 2)
            if len(parts) == 3 and all(parts):
                return parts
    return None


def source_name(sourcerpm: str | None) -> str | None:
    """``openssl-3.0.7-27.el9.src.rpm`` → ``openssl``."""
    parts = _source_parts(sourcerpm)
    return parts[0] if parts else None


def source_version_release(sourcerpm: str | None) -> str | None:
    """``openssl-3.0.7-27.el9.src.rpm`` → ``3.0.7-27.el9``."""
    parts = _source_parts(sourcerpm)
    return f"{parts[1]}-{parts[2]}" if parts else None


def package_item(
    name: str,
    epoch: int | None,
    version: str,
    release: str | None,
    arch: str | None,
    sourcerpm: str | None,
) -> dict:
    prefix = f"{epoch}:" if epoch is not None else ""
    full = prefix + version + (f"-{release}" if release else "")
    src_version_release = source_version_release(sourcerpm)
    return {
        "manager": "rpm",
        "name": name,
        "version": full,
        "architecture": arch or None,
        "source_name": source_name(sourcerpm) or name,
        "source_version": prefix + src_version_release if src_version_release else full,
    }


def header_item(values: dict[int, list]) -> dict | None:
    """The evidence item of one header; ``None`` for the ``gpg-pubkey`` pseudo-packages (imported
    signing keys, not software)."""
    name = _first(values, TAG_NAME)
    version = _first(values, TAG_VERSION)
    if not name or version is None:
        raise HeaderError("header without NAME or VERSION")
    if name == "gpg-pubkey":
        return None
    return package_item(
        name,
        _first(values, TAG_EPOCH),
        version,
        _first(values, TAG_RELEASE),
        _first(values, TAG_ARCH),
        _first(values, TAG_SOURCERPM),
    )


def header_metadata_dirs(values: dict[int, list]) -> list[str]:
    """Python metadata directories (``*.dist-info``/``*.egg-info``) the package owns."""
    basenames = values.get(TAG_BASENAMES) or []
    dirnames = values.get(TAG_DIRNAMES) or []
    indexes = values.get(TAG_DIRINDEXES) or []
    found = []
    for position, basename in enumerate(basenames):
        if basename.endswith((".dist-info", ".egg-info")) and position < len(indexes):
            index = indexes[position]
            if 0 <= index < len(dirnames):
                found.append(dirnames[index] + basename)
    return found


class RpmDatabase:
    """The packages of an sqlite rpm database read through the root's resolver."""

    def __init__(self, items: list[dict], metadata_dirs: set[str], errors: list[str]) -> None:
        self.items = items
        self.metadata_dirs = metadata_dirs
        self.errors = errors


def read_sqlite_database(fs: FileSystem, path: str) -> RpmDatabase:
    """Copy the database (and its write-ahead log) into a private directory and read the copy:
    sqlite must not open the files itself (it would follow links out of the root and could write
    next to them), and the copy is never modified on the host. Raises FileError or
    sqlite3.Error."""
    with tempfile.TemporaryDirectory(prefix="mamori-agent-rpmdb-") as private:
        copy = os.path.join(private, "rpmdb.sqlite")
        fs.copy_to(path, copy, limit=MAX_DATABASE_BYTES)
        try:
            fs.copy_to(path + "-wal", copy + "-wal", limit=MAX_DATABASE_BYTES)
        except FileError as error:
            if not error.missing:
                raise
        connection = sqlite3.connect(copy)
        try:
            rows = connection.execute("SELECT hnum, blob FROM Packages ORDER BY hnum").fetchall()
        finally:
            connection.close()
    items, metadata_dirs, errors = [], set(), []
    for number, blob in rows:
        try:
            values = parse_header(bytes(blob), with_files=True)
            item = header_item(values)
        except HeaderError as error:
            errors.append(f"package header {number}: {error}")
            continue
        if item is not None:
            items.append(item)
            metadata_dirs.update(header_metadata_dirs(values))
    return RpmDatabase(items, metadata_dirs, errors)


def parse_query_output(text: str) -> list[dict]:
    """Output of the live ``rpm --query --all`` (see commands.RPM_QUERY_FORMAT)."""
    items = []
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) != 6 or fields[0] == "gpg-pubkey":
            continue
        name, epoch, version, release, arch, sourcerpm = (
            None if value == "(none)" else value for value in fields
        )
        if not name or version is None:
            continue
        items.append(
            package_item(
                name,
                int(epoch) if epoch and epoch.isdigit() else None,
                version,
                release,
                arch,
                sourcerpm,
            )
        )
    return items
