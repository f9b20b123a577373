"""``mamori backup FILE``: the database and the private files in one archive (core/backup.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from mamori.core import backup
from mamori.core.management.progress import terminal_progress


class Command(BaseCommand):
    help = (
        "Write the database (a consistent snapshot) and the private files to one archive, "
        "with a manifest of SHA-256 digests."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE", help="the archive to write (replaced whole)")
        parser.add_argument("--quiet", action="store_true", help="no progress on a terminal")

    def handle(self, *args, file, quiet, **options):
        stderr = options.get("stderr") or sys.stderr
        try:
            with terminal_progress(stderr, enabled=not quiet) as progress:
                result = backup.backup(Path(file), progress)
        except backup.BackupError as exc:
            raise CommandError(str(exc)) from None
        except DatabaseError as exc:
            raise CommandError(f"the database failed: {first_line(exc)}") from None
        except OSError as exc:
            raise CommandError(f"cannot write {file}: {exc.strerror or exc}") from None
        for name in result.missing:
            stderr.write(f"warning: {name} is named in the database but was not found\n")
        self.stdout.write(
            f"backup written to {result.path}: database {megabytes(result.database_bytes)}, "
            f"files {megabytes(result.files_bytes)} ({result.files})"
        )


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"
