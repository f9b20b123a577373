"""Every file the agent reads goes through :class:`FileSystem`.

The collectors name files by their *host* path (``/etc/ssh/sshd_config``). ``FileSystem`` maps
such a path to a file under its root directory and resolves symbolic links itself, one component
at a time, the way the kernel would inside a ``chroot``: an absolute link target starts again at
the root, ``..`` goes to the physical parent. A path that would climb above the root is refused
(on the live host, whose root is ``/``, it stays at ``/`` exactly as the kernel does).

The walk holds an ``O_PATH`` descriptor for every directory on the way, so a directory swapped for
a link while we read cannot redirect us outside the root. Only regular files are opened, never
blocking (``O_NONBLOCK``: a FIFO must not hang the agent), and never devices: their type is
checked before the ``open``. Reads are capped.

This module runs nothing: it has no way to execute a program (see ``commands.py``, the only
module that can, and which the root mode never receives).
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from collections.abc import Callable, Iterator

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_SYMLINKS = 40  # the kernel's own limit (MAXSYMLINKS)

NOT_FOUND = "not found"
LEAVES_ROOT = "symlink leaves the root"

_O_PATH = getattr(os, "O_PATH", 0)  # Linux only; the agent targets Linux
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_GLOB_MAGIC = ("*", "?", "[")


class FileError(Exception):
    """A host path that could not be read; ``reason`` is one line for the evidence."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason

    @property
    def missing(self) -> bool:
        return self.reason == NOT_FOUND

    def as_error(self) -> dict:
        return {"path": self.path, "reason": self.reason}


def _components(path: str) -> list[str]:
    return [part for part in path.split("/") if part and part != "."]


def _describe_type(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "is a directory"
    if stat.S_ISFIFO(mode):
        return "not a regular file (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "not a regular file (device)"
    if stat.S_ISSOCK(mode):
        return "not a regular file (socket)"
    return "not a regular file"


def _os_reason(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return NOT_FOUND
    if isinstance(error, PermissionError):
        return "permission denied"
    if error.errno == errno.ELOOP:
        return "too many levels of symbolic links"
    if error.errno == errno.ENOTDIR:
        return "not a directory"
    text = error.strerror or error.__class__.__name__
    return text[:1].lower() + text[1:]


class FileSystem:
    """Read-only access to the files of one root directory (``/`` for the live host)."""

    def __init__(self, root: str = "/") -> None:
        real = os.path.realpath(root)
        if not os.path.isdir(real):
            raise NotADirectoryError(root)
        self.root = real
        self.is_host_root = real == "/"

    # -- the resolver -------------------------------------------------------------------------

    def _walk(self, path: str, *, follow_final: bool) -> tuple[list[int], str]:
        """Resolve ``path`` inside the root.

        Returns the stack of directory descriptors (the caller closes them; the last one is the
        parent of the final component) and the final component's name (``"."`` for a directory
        path such as ``/``). Raises :class:`FileError`.
        """
        if not path.startswith("/"):
            raise FileError(path, "not an absolute path")
        if "\x00" in path:
            raise FileError(path.replace("\x00", "\\0"), "invalid path (NUL byte)")
        stack = [os.open(self.root, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)]
        pending = list(reversed(_components(path)))
        links = 0
        try:
            while pending:
                name = pending.pop()
                if name == "..":
                    if len(stack) > 1:
                        os.close(stack.pop())
                    elif not self.is_host_root:
                        raise FileError(path, LEAVES_ROOT if links else "path leaves the root")
                    continue
                try:
                    info = os.stat(name, dir_fd=stack[-1], follow_symlinks=False)
                except OSError as error:
                    raise FileError(path, _os_reason(error)) from None
                is_final = not pending
                if stat.S_ISLNK(info.st_mode) and (follow_final or not is_final):
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise FileError(path, "too many levels of symbolic links")
                    try:
                        target = os.readlink(name, dir_fd=stack[-1])
                    except OSError as error:
                        raise FileError(path, _os_reason(error)) from None
                    if target.startswith("/"):
                        while len(stack) > 1:
                            os.close(stack.pop())
                    pending.extend(reversed(_components(target)))
                    if not pending:  # a link to "/" or "." names a directory itself
                        return stack, "."
                    continue
                if is_final:
                    return stack, name
                if not stat.S_ISDIR(info.st_mode):
                    raise FileError(path, "not a directory")
                try:
                    stack.append(
                        os.open(
                            name,
                            _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                            dir_fd=stack[-1],
                        )
                    )
                except OSError as error:
                    raise FileError(path, _os_reason(error)) from None
            return stack, "."
        except BaseException:
            for fd in stack:
                os.close(fd)
            raise

    def _lstat_final(self, path: str, *, follow: bool = True) -> os.stat_result:
        stack, name = self._walk(path, follow_final=follow)
        try:
            return os.stat(name, dir_fd=stack[-1], follow_symlinks=False)
        except OSError as error:
            raise FileError(path, _os_reason(error)) from None
        finally:
            for fd in stack:
                os.close(fd)

    def _open_regular(self, path: str) -> int:
        stack, name = self._walk(path, follow_final=True)
        try:
            try:
                before = os.stat(name, dir_fd=stack[-1], follow_symlinks=False)
            except OSError as error:
                raise FileError(path, _os_reason(error)) from None
            # Decide on the type before opening: opening a device can have side effects.
            if not stat.S_ISREG(before.st_mode):
                raise FileError(path, _describe_type(before.st_mode))
            try:
                fd = os.open(name, _OPEN_FLAGS, dir_fd=stack[-1])
            except OSError as error:
                raise FileError(path, _os_reason(error)) from None
            after = os.fstat(fd)
            if not stat.S_ISREG(after.st_mode) or (after.st_dev, after.st_ino) != (
                before.st_dev,
                before.st_ino,
            ):
                os.close(fd)
                raise FileError(path, "changed while being read")
            return fd
        finally:
            for fd in stack:
                os.close(fd)

    # -- queries --------------------------------------------------------------------------------

    def kind(self, path: str) -> str | None:
        """``"file"``, ``"dir"``, ``"other"`` or ``None`` when the path does not exist.

        Other failures (a link leaving the root, permission denied) raise :class:`FileError`.
        """
        try:
            info = self._lstat_final(path)
        except FileError as error:
            if error.missing:
                return None
            raise
        if stat.S_ISREG(info.st_mode):
            return "file"
        if stat.S_ISDIR(info.st_mode):
            return "dir"
        return "other"

    def stat(self, path: str) -> os.stat_result:
        return self._lstat_final(path)

    def readlink(self, path: str) -> str | None:
        """The target of ``path`` when it is a symbolic link (not followed), else ``None``."""
        stack, name = self._walk(path, follow_final=False)
        try:
            try:
                return os.readlink(name, dir_fd=stack[-1])
            except OSError as error:
                if error.errno == errno.EINVAL:
                    return None
                raise FileError(path, _os_reason(error)) from None
        finally:
            for fd in stack:
                os.close(fd)

    def list_dir(self, path: str) -> list[str]:
        """Entry names of a directory, sorted (byte order, as ``ls`` with ``LC_ALL=C``)."""
        stack, name = self._walk(path, follow_final=True)
        try:
            try:
                fd = os.open(
                    name,
                    os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                    dir_fd=stack[-1],
                )
            except OSError as error:
                raise FileError(path, _os_reason(error)) from None
            try:
                return sorted(os.listdir(fd))
            except OSError as error:
                raise FileError(path, _os_reason(error)) from None
            finally:
                os.close(fd)
        finally:
            for fd in stack:
                os.close(fd)

    def read_bytes(
        self, path: str, *, limit: int = MAX_FILE_BYTES, truncate: bool = False
    ) -> bytes:
        """The content of a regular file, at most ``limit`` bytes.

        A longer file raises ``FileError("file too large")`` unless ``truncate`` asks for just
        its beginning (a ClamAV database header, say).
        """
        fd = self._open_regular(path)
        try:
            chunks = []
            size = 0
            while size <= limit:
                try:
                    chunk = os.read(fd, min(1024 * 1024, limit + 1 - size))
                except OSError as error:
                    raise FileError(path, _os_reason(error)) from None
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            data = b"".join(chunks)
            if len(data) > limit:
                if not truncate:
                    raise FileError(path, f"file too large (over {limit} bytes)")
                data = data[:limit]
            return data
        finally:
            os.close(fd)

    def read_text(self, path: str, *, limit: int = MAX_FILE_BYTES) -> str:
        return self.read_bytes(path, limit=limit).decode("utf-8", errors="replace")

    def copy_to(self, path: str, destination: str, *, limit: int) -> None:
        """Copy a regular file to ``destination`` (a new private file), at most ``limit`` bytes."""
        fd = self._open_regular(path)
        try:
            out = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                copied = 0
                while True:
                    chunk = os.read(fd, 1024 * 1024)
                    if not chunk:
                        break
                    copied += len(chunk)
                    if copied > limit:
                        raise FileError(path, f"file too large (over {limit} bytes)")
                    os.write(out, chunk)
            finally:
                os.close(out)
        except OSError as error:
            raise FileError(path, _os_reason(error)) from None
        finally:
            os.close(fd)

    def glob(
        self, pattern: str, *, on_error: Callable[[FileError], None] | None = None
    ) -> list[str]:
        """Host paths matching a shell pattern, sorted; wildcards may appear in any component.

        Like glob(3), ``*`` does not match a leading dot. Directories that cannot be listed are
        skipped (reported to ``on_error`` unless they simply do not exist).
        """
        candidates = ["/"]
        for part in _components(pattern):
            next_candidates = []
            for base in candidates:
                if not any(magic in part for magic in _GLOB_MAGIC):
                    next_candidates.append(_join(base, part))
                    continue
                try:
                    names = self.list_dir(base)
                except FileError as error:
                    if (
                        on_error is not None
                        and not error.missing
                        and error.reason != ("not a directory")
                    ):
                        on_error(error)
                    continue
                for name in names:
                    if name.startswith(".") and not part.startswith("."):
                        continue
                    if fnmatch.fnmatchcase(name, part):
                        next_candidates.append(_join(base, name))
            candidates = next_candidates
        found = []
        for candidate in candidates:
            try:
                if self.kind(candidate) is not None:
                    found.append(candidate)
            except FileError as error:
                if on_error is not None:
                    on_error(error)
        return sorted(found)

    def iter_lines(self, path: str, *, limit: int = MAX_FILE_BYTES) -> Iterator[str]:
        yield from self.read_text(path, limit=limit).splitlines()


def _join(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name
