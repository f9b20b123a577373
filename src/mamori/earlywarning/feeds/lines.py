"""Reading a feed's CSV text safely, one record at a time (pure logic, no Django imports).

The readers of this package take either a binary stream (a file, an HTTP body, gzip-compressed
or not: the gzip magic bytes decide) or an iterable of lines, one line an item (``str`` or
``bytes``, or a text stream, as tests and callers holding text have them; the size limit is then
checked on each line already read, so give untrusted input as a binary stream). ``CsvRecords`` turns that into ``(line, values)`` pairs for the
standard ``csv`` module's parse of each record, with ``RowError`` in place of a record that
cannot be used:

- Memory stays bounded whatever the input: a physical line is read with a size limit, and a
  record (which may span lines inside a quoted value) is cut off at ``max_row_bytes``; the rest
  of an over-long line is skipped in chunks without being kept. A file of any size streams
  through in constant memory.
- The text must be UTF-8 (a leading byte-order mark is dropped). UTF-16 is refused up front with
  a message saying so; a row that is not UTF-8 is a row error. NUL bytes are refused: no CSV
  tool writes them, and they end strings early in C code further on.
- Quoting is parsed strictly (``csv`` ``strict=True``): ``"a"b`` or a quote left open at the end
  of the file is an error, not a silently merged value.

A record's ``line`` is the physical line it starts on, 1 being the file's first line.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import zlib
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from mamori.earlywarning.feeds.errors import FeedError, RowError, escaped, gettext_noop, shown

GZIP_MAGIC = b"\x1f\x8b"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = "\ufeff"
_CHUNK = 64 * 1024

# A record longer than this is skipped. It stays below the csv module's own field limit
# (131,072 characters, a process-wide setting this package leaves alone), so the message a
# long row gets is this one; Shadowserver's widest rows are a few kilobytes.
DEFAULT_MAX_ROW_BYTES = 128 * 1024

Source = BinaryIO | Iterable[str] | Iterable[bytes]

TOO_LONG = gettext_noop("the row is longer than %(limit)s bytes; skipped up to line %(last)s")
NUL = gettext_noop("the row contains a NUL byte")
NOT_UTF8 = gettext_noop("the row is not UTF-8 text")
NOT_CSV = gettext_noop("the row is not valid CSV (%(detail)s)")
OPEN_QUOTE = gettext_noop("a quoted value is not closed before the end of the file")


class _LineProblem(Exception):
    """Raised by ``_Lines`` in the middle of the csv module's read of a record; the record is
    reported as a ``RowError`` and reading goes on with the next line."""

    def __init__(self, template: str, **params: object):
        self.template = template
        self.params = params


class _RawReader(io.RawIOBase):
    """Any object with ``read(n)`` as a raw stream, so that ``io.BufferedReader`` gives it a
    bounded ``readline`` and ``peek``."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        if not data:
            return 0
        buffer[: len(data)] = data
        return len(data)


def binary_text(stream: BinaryIO) -> io.BufferedIOBase:
    """``stream`` ready for bounded ``readline``: decompressed when it starts with gzip's magic
    bytes (EPSS is published as ``.csv.gz``; a report may be stored compressed too)."""
    if isinstance(stream, io.BufferedReader):
        buffered = stream
    else:
        buffered = io.BufferedReader(_RawReader(stream), _CHUNK)
    if buffered.peek(2)[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=buffered, mode="rb")
    return buffered


class _Lines:
    """The physical lines of a source as ``str`` ending in "\n", each decoded on its own (the
    iterable the csv module reads). ``start_record()`` opens a new byte budget of
    ``max_row_bytes``; a line that would go over it, a NUL byte or undecodable bytes raise
    ``_LineProblem`` after the whole line has been consumed, so reading resumes cleanly on the
    next line."""

    def __init__(self, source: Source, max_row_bytes: int):
        self.max_row_bytes = max_row_bytes
        self.count = 0  # physical lines handed out (or skipped) so far
        self._budget = max_row_bytes
        if hasattr(source, "read") and not isinstance(source, io.TextIOBase):
            self._stream: io.BufferedIOBase | None = binary_text(source)  # type: ignore[arg-type]
            self._items: Iterator | None = None
        else:
            self._stream = None
            self._items = iter(source)  # type: ignore[arg-type]

    def start_record(self) -> None:
        self._budget = self.max_row_bytes

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        data = self._next_bytes()
        self.count += 1
        if len(data) > self._budget:
            self._budget = 0
            raise _LineProblem(TOO_LONG, limit=self.max_row_bytes, last=self.count)
        self._budget -= len(data)
        if b"\x00" in data:
            raise _LineProblem(NUL)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise _LineProblem(NOT_UTF8) from None
        if self.count == 1:
            text = text.removeprefix(_UTF8_BOM)
        # The csv module is given each line with its end, so that a quoted value may span
        # lines; "\r\n" becomes "\n" (Excel and Windows tools write it).
        return text.rstrip("\r\n") + "\n"

    def _next_bytes(self) -> bytes:
        """The next physical line, or as much of it as the budget allows plus one byte (the
        sign that it is over), its remainder skipped."""
        if self._stream is None:
            item = next(self._items)  # type: ignore[arg-type]
            return item.encode("utf-8", "surrogateescape") if isinstance(item, str) else item
        limit = self._budget + 1
        try:
            data = self._stream.readline(limit)
            if not data:
                raise StopIteration
            if len(data) >= limit and not data.endswith(b"\n"):
                rest = data
                while rest and not rest.endswith(b"\n"):
                    rest = self._stream.readline(_CHUNK)
        except (OSError, EOFError, zlib.error) as exc:
            if isinstance(exc, gzip.BadGzipFile | EOFError | zlib.error):
                raise FeedError(
                    gettext_noop(
                        "the gzip data is damaged (%(detail)s); %(line)s lines were read before it"
                    ),
                    line=self.count,
                    detail=escaped(str(exc) or type(exc).__name__, None),
                ) from None
            raise
        return data

    def first_bytes(self) -> bytes:
        """The start of a binary source, without consuming it (empty for an iterable)."""
        if self._stream is None or not hasattr(self._stream, "peek"):
            return b""
        return self._stream.peek(4)[:4]


class CsvRecords:
    """The records of a CSV source as ``(line, values)``, or ``RowError`` for a record that
    cannot be used; blank lines are skipped. ``next_line()`` reads one physical line as text
    (EPSS's comment line before its header)."""

    def __init__(self, source: Source, *, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES):
        if max_row_bytes < 1:
            raise ValueError("max_row_bytes must be positive")
        self._lines = _Lines(source, max_row_bytes)
        head = self._lines.first_bytes()
        if head[:2] in _UTF16_BOMS:
            raise FeedError(gettext_noop("the file is UTF-16 text; save it as UTF-8"))
        self._reader = csv.reader(self._lines, strict=True)

    def next_line(self) -> tuple[int, str] | RowError | None:
        """The next physical line as text, None at the end of the file."""
        self._lines.start_record()
        try:
            text = next(self._lines)
        except StopIteration:
            return None
        except _LineProblem as problem:
            return RowError(self._lines.count, problem.template, problem.params)
        return self._lines.count, text.rstrip("\n")

    def __iter__(self) -> Iterator[tuple[int, list[str]] | RowError]:
        while True:
            self._lines.start_record()
            first = self._lines.count + 1
            try:
                values = next(self._reader)
            except StopIteration:
                return
            except _LineProblem as problem:
                yield RowError(first, problem.template, problem.params)
                continue
            except csv.Error as exc:
                if str(exc) == "unexpected end of data":
                    yield RowError(first, OPEN_QUOTE, {})
                else:
                    yield RowError(first, NOT_CSV, {"detail": escaped(str(exc), None)})
                continue
            if values:
                yield first, values


def header_names(values: list[str], *, max_columns: int) -> list[str]:
    """The column names of a header row: trimmed, lower-case, each named once."""
    if len(values) > max_columns:
        raise FeedError(
            gettext_noop("the header has %(count)s columns, more than the limit of %(limit)s"),
            count=len(values),
            limit=max_columns,
        )
    names: list[str] = []
    for position, value in enumerate(values, start=1):
        name = value.strip().lower()
        if not name:
            raise FeedError(
                gettext_noop("column %(position)s of the header has no name"), position=position
            )
        if name in names:
            raise FeedError(
                gettext_noop("the header names the column %(name)s twice"), name=shown(name)
            )
        names.append(name)
    return names


def header_problem(error: RowError) -> FeedError:
    """A header line that could not be read, as the error that refuses the file."""
    templates = {
        NUL: gettext_noop("the header line contains a NUL byte: is this a CSV file?"),
        NOT_UTF8: gettext_noop("the header line is not UTF-8 text; save the file as UTF-8"),
        OPEN_QUOTE: gettext_noop("the header line opens a quoted value that is never closed"),
    }
    if error.template in templates:
        return FeedError(templates[error.template])
    if error.template == TOO_LONG:
        return FeedError(
            gettext_noop("the header line is longer than %(limit)s bytes"),
            limit=error.params["limit"],
        )
    return FeedError(
        gettext_noop("the header line is not valid CSV (%(detail)s)"),
        detail=error.params.get("detail", ""),
    )


class HashingReader(io.RawIOBase):
    """A stream that hashes what is read through it (a feed run's digest) and reports each
    read's size (the command line's progress bar)."""

    def __init__(self, stream: BinaryIO, on_read=None):
        self._stream = stream
        self.digest = hashlib.sha256()
        self._on_read = on_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        self.digest.update(data)
        if self._on_read is not None and data:
            self._on_read(len(data))
        return len(data)


def complete_rows(
    records: Iterable[tuple[int, list[str]] | RowError], width: int
) -> Iterator[tuple[int, list[str]] | RowError]:
    """The records of a CSV body with as many values as the header has columns; a record of
    another width becomes a ``RowError`` (reading goes on), as do records already refused."""
    for record in records:
        if isinstance(record, RowError):
            yield record
            continue
        line, values = record
        if len(values) != width:
            yield RowError(
                line,
                gettext_noop("the row has %(count)s values but the header has %(width)s columns"),
                {"count": len(values), "width": width},
            )
            continue
        yield record
