"""Find out what a path holds and read its records one at a time (no Django here).

``detect(path)`` names the format of a path given on the command line, or raises ``UsageError``
when there is nothing to read (missing path, unknown format, a single document over the size
cap); ``read(source)`` then yields ``(kind, where, record_or_bad)`` items, where ``kind`` is
"osv", "kev" or "eol", ``where`` names the file (``all.zip:PYSEC-1.json`` for a zip member) and
the last element is a record from ``records.py``, an ``osv.BadRecord``, or an ``osv.SkippedPart``
(yielded right after the OSV record it was left out of).

A directory is read recursively in sorted order: every ``*.json`` file (each detected on its
own) and every distro-info ``*.csv``. Nothing here holds a whole input in memory: zips and
directories are read member by member and file by file, and a JSON list of records is decoded
element by element. A single JSON document (one OSV record, the KEV catalogue, an
endoflife.date list) must be decoded whole, so its size is capped at ``MAX_DOCUMENT_BYTES``.
"""

from __future__ import annotations

import codecs
import json
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mamori.advisories import osv

MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
# distro-info CSVs are a few kilobytes; anything far bigger is not one.
MAX_CSV_BYTES = 16 * 1024 * 1024
_CHUNK = 1024 * 1024
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")

OSV_RECORD = "OSV record"
OSV_LIST = "OSV record list"
OSV_DIRECTORY = "OSV directory"
OSV_ZIP = "OSV zip"
KEV = "CISA KEV"
ENDOFLIFE = "endoflife.date"
DISTRO_INFO = "distro-info"

Item = tuple[str, str, Any]


class UsageError(Exception):
    """A path that cannot be imported at all; ``str()`` is one line naming it."""

    def __init__(self, path: Path | str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class Source:
    path: Path
    format: str
    product: str = ""  # endoflife.date / distro-info product
    total: int | None = None  # records (or files) to expect, when known up front


def detect(path: Path, *, product: str | None = None) -> Source:
    """What ``path`` holds. ``product`` forces an endoflife.date list for that product."""
    if not path.exists():
        raise UsageError(path, "no such file or directory")
    if path.is_dir():
        if product:
            raise UsageError(path, "--product applies to one endoflife.date JSON file")
        total = sum(1 for _ in _directory_files(path))
        if not total:
            raise UsageError(path, "no .json or .csv files in this directory")
        return Source(path, OSV_DIRECTORY, total=total)
    if not path.is_file():
        raise UsageError(path, "not a regular file or directory")
    try:
        source = _detect_file(path, product=product)
    except OSError as exc:
        raise UsageError(path, exc.strerror or str(exc)) from None
    if source is None:
        raise UsageError(
            path,
            "unrecognised format (expected OSV JSON or zip, CISA KEV JSON, "
            "endoflife.date JSON or a distro-info CSV)",
        )
    return source


def read(source: Source) -> Iterator[Item]:
    if source.format == OSV_DIRECTORY:
        yield from _read_directory(source.path)
    elif source.format == OSV_ZIP:
        yield from _read_zip(source.path)
    else:
        yield from _read_file(source, str(source.path))


def _detect_file(path: Path, *, product: str | None) -> Source | None:
    with path.open("rb") as stream:
        head = stream.read(4)
    if head in _ZIP_MAGIC:
        if product:
            raise UsageError(path, "--product applies to one endoflife.date JSON file")
        try:
            with zipfile.ZipFile(path) as archive:
                total = sum(1 for info in archive.infolist() if _is_json_member(info))
        except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
            raise UsageError(path, f"not a readable zip archive: {exc}") from None
        return Source(path, OSV_ZIP, total=total)
    return _detect_document(path, product=product)


def _detect_document(path: Path, *, product: str | None) -> Source | None:
    """A JSON or CSV file: which of the formats it is, or None."""
    first = _first_character(path)
    if first == "[":
        if product is not None:
            return Source(path, ENDOFLIFE, product=product)
        head = _first_element(path)
        if isinstance(head, dict) and "cycle" in head:
            if not osv.valid_product(path.stem):
                raise UsageError(
                    path, "the file name is no endoflife.date product: name it with --product"
                )
            return Source(path, ENDOFLIFE, product=path.stem)
        if head is None or isinstance(head, dict):
            # An empty list, an OSV record, or something unreadable that the reader reports.
            return Source(path, OSV_LIST)
        return None
    if first == "{":
        if product is not None:
            raise UsageError(path, "--product applies to an endoflife.date JSON list")
        _check_document_size(path)
        try:
            document = _load_json(path)
        except osv.BadRecord:
            return Source(path, OSV_RECORD)  # unreadable JSON: reported as a bad record
        if isinstance(document, dict):
            if isinstance(document.get("vulnerabilities"), list):
                return Source(path, KEV, total=len(document["vulnerabilities"]))
            if "id" in document or ("modified" in document and "affected" in document):
                return Source(path, OSV_RECORD, total=1)
        return None
    if product is not None:
        raise UsageError(path, "--product applies to an endoflife.date JSON list")
    distro = _distro_info_product(path)
    if distro:
        return Source(path, DISTRO_INFO, product=distro)
    return None


def _first_character(path: Path) -> str | None:
    with path.open("rb") as stream:
        head = stream.read(4096)
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    return text[:1] or None


def _first_element(path: Path) -> object:
    with path.open("rb") as stream:
        try:
            for element in iter_json_array(stream):
                return element
        except osv.BadRecord:
            return None
    return None


def _distro_info_product(path: Path) -> str | None:
    if path.stat().st_size > MAX_CSV_BYTES:
        return None
    with path.open("rb") as stream:
        first_line = stream.readline(4096)
    try:
        header = first_line.decode("utf-8-sig").strip().split(",")
    except UnicodeDecodeError:
        return None
    return osv.distro_info_product(header)


def _check_document_size(path: Path) -> None:
    size = path.stat().st_size
    if size > MAX_DOCUMENT_BYTES:
        raise UsageError(
            path,
            f"a single JSON document of {size // (1024 * 1024)} MiB is over the "
            f"{MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB limit; import a zip, a directory or "
            "a JSON list instead",
        )


def _load_json(path: Path) -> Any:
    with path.open("rb") as stream:
        return decode_json(stream.read())


def decode_json(data: bytes) -> Any:
    """Bytes of one JSON document → its value; ``BadRecord`` (without id) when unreadable."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise osv.BadRecord(None, f"not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise osv.BadRecord(
            None, f"invalid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise osv.BadRecord(None, "invalid JSON: nested too deeply") from None


# --- readers ----------------------------------------------------------------------------------


def _read_file(source: Source, where: str) -> Iterator[Item]:
    if source.format == OSV_LIST:
        yield from _read_osv_list(source.path, where)
    elif source.format == OSV_RECORD:
        yield from _osv_items(_load_or_bad(source.path), where)
    elif source.format == KEV:
        yield from _kev_items(_load_or_bad(source.path), where)
    elif source.format == ENDOFLIFE:
        yield from _eol_items(source.product, _load_or_bad(source.path), where)
    elif source.format == DISTRO_INFO:
        yield from _distro_info_items(source.product, source.path, where)
    else:  # pragma: no cover - detect() never returns another format
        raise ValueError(source.format)


def _load_or_bad(path: Path) -> Any:
    try:
        _check_document_size(path)
    except UsageError as exc:
        return osv.BadRecord(None, exc.reason)
    try:
        return _load_json(path)
    except osv.BadRecord as bad:
        return bad


def _osv_items(document: Any, where: str) -> Iterator[Item]:
    if isinstance(document, osv.BadRecord):
        yield ("osv", where, document)
    elif isinstance(document, list):
        for element in document:
            yield from _parse_osv(element, where)
    else:
        yield from _parse_osv(document, where)


def _parse_osv(element: Any, where: str) -> Iterator[Item]:
    """The record (or why it is bad), then each part of it that was left out."""
    try:
        advisory, skipped = osv.read_osv(element)
    except osv.BadRecord as bad:
        yield ("osv", where, bad)
        return
    except RecursionError:
        yield ("osv", where, osv.BadRecord(None, "nested too deeply"))
        return
    yield ("osv", where, advisory)
    for part in skipped:
        yield ("osv", where, part)


def _read_osv_list(path: Path, where: str) -> Iterator[Item]:
    with path.open("rb") as stream:
        try:
            for element in iter_json_array(stream):
                yield from _parse_osv(element, where)
        except osv.BadRecord as bad:
            yield ("osv", where, bad)


def _kev_items(document: Any, where: str) -> Iterator[Item]:
    if isinstance(document, osv.BadRecord):
        yield ("kev", where, document)
        return
    try:
        for item in osv.parse_kev(document):
            yield ("kev", where, item)
    except osv.BadRecord as bad:
        yield ("kev", where, bad)


def _eol_items(product: str, document: Any, where: str) -> Iterator[Item]:
    if isinstance(document, osv.BadRecord):
        yield ("eol", where, document)
        return
    try:
        for item in osv.parse_endoflife(product, document):
            yield ("eol", where, item)
    except osv.BadRecord as bad:
        yield ("eol", where, bad)


def _distro_info_items(product: str, path: Path, where: str) -> Iterator[Item]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        yield ("eol", where, osv.BadRecord(None, f"not UTF-8 (byte {exc.start})"))
        return
    try:
        for item in osv.parse_distro_info(product, text):
            yield ("eol", where, item)
    except osv.BadRecord as bad:
        yield ("eol", where, bad)


def _directory_files(root: Path) -> Iterator[Path]:
    """Every ``*.json`` (and distro-info ``*.csv``) file under ``root``, sorted, without
    following directory links (a link loop must not hang an import)."""
    for directory, subdirectories, files in os.walk(root):
        subdirectories.sort()
        for name in sorted(files):
            if name.endswith((".json", ".csv")):
                yield Path(directory, name)


def _read_directory(root: Path) -> Iterator[Item]:
    for path in _directory_files(root):
        where = str(path)
        try:
            source = _detect_document(path, product=None)
        except UsageError as exc:
            yield ("osv", where, osv.BadRecord(None, exc.reason))
            continue
        except OSError as exc:
            yield ("osv", where, osv.BadRecord(None, exc.strerror or str(exc)))
            continue
        if source is None:
            yield ("osv", where, osv.BadRecord(None, "unrecognised format"))
            continue
        try:
            yield from _read_file(source, where)
        except OSError as exc:
            yield ("osv", where, osv.BadRecord(None, exc.strerror or str(exc)))


def _is_json_member(info: zipfile.ZipInfo) -> bool:
    return not info.is_dir() and info.filename.endswith(".json")


def _read_zip(path: Path) -> Iterator[Item]:
    """OSV's per-ecosystem ``all.zip``: one ``<ID>.json`` record per member."""
    with zipfile.ZipFile(path) as archive:
        members = sorted(
            (info for info in archive.infolist() if _is_json_member(info)),
            key=lambda info: info.filename,
        )
        for info in members:
            where = f"{path}:{info.filename}"
            if info.file_size > MAX_DOCUMENT_BYTES:
                yield ("osv", where, osv.BadRecord(None, "member over the size limit"))
                continue
            try:
                data = archive.read(info)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                # A CRC error, a truncated member, an unsupported compression method.
                yield ("osv", where, osv.BadRecord(None, f"unreadable member: {exc}"))
                continue
            try:
                document = decode_json(data)
            except osv.BadRecord as bad:
                yield ("osv", where, bad)
                continue
            del data
            yield from _osv_items(document, where)


# --- streaming JSON arrays ----------------------------------------------------------------------


def iter_json_array(stream: IO[bytes]) -> Iterator[Any]:
    """Decode a JSON array element by element from a binary stream (UTF-8, optional BOM).

    Holds one element (plus a read chunk) at a time. A syntax error, bad UTF-8 or a document
    that is not an array raises ``BadRecord`` (without an id) after the elements before it."""
    decoder = json.JSONDecoder()
    text_decoder = codecs.getincrementaldecoder("utf-8-sig")()
    buffer = ""
    position = 0
    offset = 0  # characters dropped from the front of the buffer, for error positions
    finished = False
    bad_utf8 = ""  # set when the bytes stop being UTF-8: the text before is still read
    read_size = _CHUNK

    def fill() -> bool:
        nonlocal buffer, position, offset, finished, read_size, bad_utf8
        if finished:
            return False
        chunk = stream.read(read_size)
        finished = not chunk
        try:
            text = text_decoder.decode(chunk, final=finished)
        except UnicodeDecodeError as exc:
            # exc.object is what the decoder had (held-back bytes and this chunk); keep the
            # valid part and stop reading.
            text = exc.object[: exc.start].decode("utf-8", errors="replace")
            if offset == 0 and not buffer:
                text = text.removeprefix("\ufeff")
            bad_utf8 = f"not UTF-8 (near character {offset + len(buffer) + len(text)})"
            finished = True
        offset += position
        buffer = buffer[position:] + text
        position = 0
        return True

    def skip_space() -> str:
        nonlocal position
        while True:
            while position < len(buffer) and buffer[position] in " \t\r\n":
                position += 1
            if position < len(buffer):
                return buffer[position]
            if not fill():
                return ""

    def error(message: str) -> osv.BadRecord:
        if bad_utf8:
            return osv.BadRecord(None, bad_utf8)
        return osv.BadRecord(None, f"invalid JSON: {message} (character {offset + position})")

    if skip_space() != "[":
        raise error("expected a list")
    position += 1
    if skip_space() == "]":
        position += 1
    else:
        while True:
            if not skip_space():
                raise error("unexpected end of data")
            while True:
                try:
                    element, end = decoder.raw_decode(buffer, position)
                except json.JSONDecodeError as exc:
                    if finished:
                        position = exc.pos
                        raise error(exc.msg) from None
                    read_size = min(read_size * 2, 64 * _CHUNK)  # a large element: read faster
                    fill()
                    continue
                except RecursionError:
                    raise error("nested too deeply") from None
                if not finished and (end == len(buffer) or buffer[end] not in _AFTER_ELEMENT):
                    # A number cut by the chunk's end decodes short ("45" of "456"): read on
                    # until the element is followed by a delimiter.
                    fill()
                    continue
                break
            position = end
            read_size = _CHUNK
            yield element
            separator = skip_space()
            if separator == ",":
                position += 1
            elif separator == "]":
                position += 1
                break
            elif not separator:
                raise error("unexpected end of data")
            else:
                raise error("expected ',' or ']'")
    if skip_space() or bad_utf8:
        raise error("data after the end of the list")


_AFTER_ELEMENT = frozenset(" \t\r\n,]")
