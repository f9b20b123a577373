"""What every collector receives: the file system, the command runner (live mode only) and its
section, which records what could not be read."""

from __future__ import annotations

from .commands import CommandResult, CommandRunner
from .rootfs import MAX_FILE_BYTES, FileError, FileSystem

MAX_ERRORS_PER_SECTION = 100
MAX_REASON_CHARS = 300
NOT_ON_ROOT = "not available on a mounted root"


class Context:
    """One collection. ``runner`` is ``None`` under ``--root``: nothing can be executed there."""

    def __init__(self, fs: FileSystem, runner: CommandRunner | None) -> None:
        self.fs = fs
        self._runner = runner
        self.facts: dict = {}  # what one collector established for the next ones

    @property
    def live(self) -> bool:
        return self._runner is not None

    def can_run(self, key: str) -> bool:
        return self._runner is not None and self._runner.available(key)

    def run(self, key: str) -> CommandResult:
        if self._runner is None:
            raise RuntimeError("commands are never run on a mounted root")
        return self._runner.run(key)


class Section:
    """Collects one section's errors and works out its status."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.fs = ctx.fs
        self.errors: list[dict] = []
        self._seen: set[tuple] = set()
        self._dropped = 0
        self._unknown = False

    # -- errors -------------------------------------------------------------------------------

    def error(self, path: str | None, reason: str) -> None:
        reason = " ".join(str(reason).split())[:MAX_REASON_CHARS] or "error"
        key = (path, reason)
        if key in self._seen:
            return
        self._seen.add(key)
        if len(self.errors) >= MAX_ERRORS_PER_SECTION:
            self._dropped += 1
            return
        self.errors.append({"path": path, "reason": reason})

    def file_error(self, error: FileError) -> None:
        self.error(error.path, error.reason)

    def command_error(self, result: CommandResult) -> None:
        self.error(result.command, result.reason or "failed")

    def unknown(self, path: str | None, reason: str) -> None:
        """Nothing usable: the section's values are all null."""
        self.error(path, reason)
        self._unknown = True

    @property
    def status(self) -> str:
        if self._unknown:
            return "unknown"
        return "partial" if self.errors else "ok"

    def finish(self, data: dict) -> dict:
        errors = list(self.errors)
        if self._dropped:
            errors.append({"path": None, "reason": f"{self._dropped} more errors not listed"})
        return {"status": self.status, "errors": errors, **data}

    # -- file access that records failures -------------------------------------------------------

    def read_text(self, path: str, *, limit: int = MAX_FILE_BYTES) -> str | None:
        """The file's text, or ``None`` when it is missing (not an error) or unreadable
        (recorded)."""
        try:
            return self.fs.read_text(path, limit=limit)
        except FileError as error:
            if not error.missing:
                self.file_error(error)
            return None

    def read_bytes(
        self, path: str, *, limit: int = MAX_FILE_BYTES, truncate: bool = False
    ) -> bytes | None:
        try:
            return self.fs.read_bytes(path, limit=limit, truncate=truncate)
        except FileError as error:
            if not error.missing:
                self.file_error(error)
            return None

    def kind(self, path: str) -> str | None:
        try:
            return self.fs.kind(path)
        except FileError as error:
            self.file_error(error)
            return None

    def exists(self, path: str) -> bool:
        return self.kind(path) is not None

    def is_dir(self, path: str) -> bool:
        return self.kind(path) == "dir"

    def list_dir(self, path: str) -> list[str]:
        try:
            return self.fs.list_dir(path)
        except FileError as error:
            if not error.missing and error.reason != "not a directory":
                self.file_error(error)
            return []

    def glob(self, pattern: str) -> list[str]:
        return self.fs.glob(pattern, on_error=self.file_error)

    def readlink(self, path: str) -> str | None:
        try:
            return self.fs.readlink(path)
        except FileError as error:
            if not error.missing:
                self.file_error(error)
            return None
