"""Where a feed is read from: a file, a directory of files, or an http(s) URL (pure logic, no
Django imports).

``iter_sources(location)`` lists what a location holds as ``(name, opener)`` pairs, in the
order to read them: one for a file or URL, one per ``*.csv`` / ``*.csv.gz`` file for a
directory (not recursive, hidden files left out, sorted by name — Shadowserver's file names
start with the date, so that is also the order of the days). ``opener()`` is a context manager
that gives a binary stream for the readers of this package, which detect gzip themselves.
``open_source(location)`` opens a single file or URL.

Limits, each with its own ``SourceError`` message naming the location:

- ``max_bytes``: a file over it is refused before it is read; a download is refused when its
  ``Content-Length`` says it is over, or stopped when the body goes over (the byte count is of
  the body as decoded from any ``Content-Encoding``, so a compressed response cannot expand
  past it either).
- ``timeout``: seconds to connect, or to wait for the next part of the answer (httpx's per-step
  timeout). ``total_timeout`` bounds the whole download, so that a server sending a byte now and
  then cannot hold a worker for ever.
- Only ``http`` and ``https`` URLs are fetched. Any answer but 200 is an error giving the
  status. Redirects are followed. Messages show a URL without its user name, password, query
  and fragment: a feed's download link often carries its access token there.

Feed locations are set by the scheme owner's operators, not by organisations, so no address
filtering is done here (the webhook sender, whose URLs come from organisations, has its own).
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import httpx

from mamori.earlywarning.feeds.errors import SourceError, escaped, gettext_noop, shown

DEFAULT_TIMEOUT = 30.0
DEFAULT_TOTAL_TIMEOUT = 15 * 60.0
# The largest daily Shadowserver report of a big network is tens of megabytes and EPSS's
# compressed file about 2 MB; a quarter of a gigabyte is far beyond either.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
FEED_SUFFIXES = (".csv", ".csv.gz")
USER_AGENT = "Mamori-early-warning/1"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_CHUNK = 64 * 1024

Opener = Callable[[], AbstractContextManager[BinaryIO]]


def is_url(location: str) -> bool:
    return _SCHEME.match(location) is not None


def display_url(url: str) -> str:
    """``url`` without what must not appear in a message or a log: user name, password, query
    and fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return shown(url.split("?", 1)[0].split("#", 1)[0])
    if ":" in host:
        host = f"[{host}]"
    return escaped(f"{parts.scheme}://{host}{port}{parts.path}", None)


def iter_sources(
    location: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    total_timeout: float | None = DEFAULT_TOTAL_TIMEOUT,
) -> Iterator[tuple[str, Opener]]:
    """The files (or the URL) a location holds, each with its opener. A missing location or a
    directory without feed files is refused here, before anything is read."""
    if is_url(location):
        _check_scheme(location)
        opener = partial(
            _open_url, location, timeout=timeout, max_bytes=max_bytes, total_timeout=total_timeout
        )
        return iter([(display_url(location), opener)])
    path = Path(location)
    if path.is_dir():
        try:
            files = sorted(
                entry
                for entry in path.iterdir()
                if entry.name.lower().endswith(FEED_SUFFIXES)
                and not entry.name.startswith(".")
                and entry.is_file()
            )
        except OSError as exc:
            raise SourceError(
                gettext_noop("cannot read %(location)s: %(detail)s"),
                location=escaped(location, None),
                detail=exc.strerror or str(exc),
            ) from None
        if not files:
            raise SourceError(
                gettext_noop("the directory %(location)s holds no .csv or .csv.gz file"),
                location=escaped(location, None),
            )
        return iter([(str(file), partial(_open_file, file, max_bytes=max_bytes)) for file in files])
    if not path.exists():
        raise SourceError(
            gettext_noop("no such file or directory: %(location)s"),
            location=escaped(location, None),
        )
    if not path.is_file():
        raise SourceError(
            gettext_noop("%(location)s is neither a regular file nor a directory"),
            location=escaped(location, None),
        )
    return iter([(str(path), partial(_open_file, path, max_bytes=max_bytes))])


def open_source(
    location: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    total_timeout: float | None = DEFAULT_TOTAL_TIMEOUT,
) -> AbstractContextManager[BinaryIO]:
    """One file or URL as a binary stream (a directory is refused: use ``iter_sources``)."""
    if not is_url(location) and Path(location).is_dir():
        raise SourceError(
            gettext_noop("%(location)s is a directory; read it file by file"),
            location=escaped(location, None),
        )
    ((_name, opener),) = iter_sources(
        location, timeout=timeout, max_bytes=max_bytes, total_timeout=total_timeout
    )
    return opener()


def _check_scheme(url: str) -> None:
    match = _SCHEME.match(url)
    scheme = match.group(1).lower() if match else ""
    if scheme not in ("http", "https"):
        raise SourceError(
            gettext_noop("only http and https URLs can be read, not %(scheme)s"),
            scheme=shown(scheme),
        )


@contextmanager
def _open_file(path: Path, *, max_bytes: int) -> Iterator[BinaryIO]:
    try:
        stream = path.open("rb")
    except FileNotFoundError:
        raise SourceError(
            gettext_noop("no such file or directory: %(location)s"),
            location=escaped(str(path), None),
        ) from None
    except OSError as exc:
        raise SourceError(
            gettext_noop("cannot read %(location)s: %(detail)s"),
            location=escaped(str(path), None),
            detail=exc.strerror or str(exc),
        ) from None
    with stream:
        size = os.fstat(stream.fileno()).st_size
        if size > max_bytes:
            raise SourceError(
                gettext_noop("%(location)s has %(size)s bytes, over the limit of %(limit)s"),
                location=escaped(str(path), None),
                size=size,
                limit=max_bytes,
            )
        yield stream


@contextmanager
def _open_url(
    url: str, *, timeout: float, max_bytes: int, total_timeout: float | None
) -> Iterator[BinaryIO]:
    shown_url = display_url(url)
    deadline = time.monotonic() + total_timeout if total_timeout else None
    try:
        with (
            httpx.Client(
                timeout=timeout, follow_redirects=True, headers={"User-Agent": USER_AGENT}
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise SourceError(
                    gettext_noop("%(url)s answered %(status)s %(reason)s"),
                    url=shown_url,
                    status=response.status_code,
                    reason=escaped(response.reason_phrase),
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise SourceError(
                    gettext_noop("%(url)s has %(size)s bytes, over the limit of %(limit)s"),
                    url=shown_url,
                    size=int(declared),
                    limit=max_bytes,
                )
            body = _Body(response, max_bytes=max_bytes, deadline=deadline, url=shown_url)
            yield io.BufferedReader(body, _CHUNK)  # type: ignore[misc]
    except httpx.TimeoutException:
        raise SourceError(
            gettext_noop("%(url)s did not answer within %(seconds)s seconds"),
            url=shown_url,
            seconds=timeout,
        ) from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise SourceError(
            gettext_noop("%(url)s is not a URL that can be fetched: %(detail)s"),
            url=shown_url,
            detail=escaped(str(exc)),
        ) from None
    except httpx.HTTPError as exc:
        raise SourceError(
            gettext_noop("%(url)s could not be fetched: %(detail)s"),
            url=shown_url,
            detail=escaped(str(exc) or type(exc).__name__),
        ) from None


class _Body(io.RawIOBase):
    """A response body as a raw stream that counts what it delivers and watches the clock."""

    def __init__(
        self, response: httpx.Response, *, max_bytes: int, deadline: float | None, url: str
    ):
        self._chunks = response.iter_bytes()
        self._pending = memoryview(b"")
        self._received = 0
        self._max_bytes = max_bytes
        self._deadline = deadline
        self._url = url

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            if self._deadline is not None and time.monotonic() > self._deadline:
                raise SourceError(
                    gettext_noop("%(url)s is taking too long: stopped after %(size)s bytes"),
                    url=self._url,
                    size=self._received,
                )
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._received += len(chunk)
            if self._received > self._max_bytes:
                raise SourceError(
                    gettext_noop("%(url)s sent more than %(limit)s bytes"),
                    url=self._url,
                    limit=self._max_bytes,
                )
            self._pending = memoryview(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count
