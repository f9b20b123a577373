"""``mamori restore FILE``: an archive of ``mamori backup`` into an empty database and files
folder (core/backup.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from mamori.core import backup
from mamori.core.management.commands.backup import first_line
from mamori.core.management.progress import terminal_progress


class Command(BaseCommand):
    help = (
        "Restore an archive of 'mamori backup' into the configured database and files folder, "
        "which must be empty; every member is checked against the manifest first."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE")
        parser.add_argument(
            "--force",
            action="store_true",
            help="replace a database and files folder that are not empty",
        )
        parser.add_argument("--quiet", action="store_true", help="no progress on a terminal")

    def handle(self, *args, file, force, quiet, **options):
        stderr = options.get("stderr") or sys.stderr
        try:
            with terminal_progress(stderr, enabled=not quiet) as progress:
                result = backup.restore(Path(file), force=force, progress=progress)
        except backup.BackupError as exc:
            raise CommandError(str(exc)) from None
        except DatabaseError as exc:
            raise CommandError(f"the database failed: {first_line(exc)}") from None
        except OSError as exc:
            raise CommandError(f"cannot restore {file}: {exc.strerror or exc}") from None
        self.stdout.write(
            f"restored the backup of {result.created_at} into {result.database} and "
            f"{result.files_dir} ({result.files} files)"
        )
        if result.pending_migrations:
            self.stdout.write(
                f"{result.pending_migrations} migrations are newer than the backup: "
                "run 'mamori migrate'"
            )
