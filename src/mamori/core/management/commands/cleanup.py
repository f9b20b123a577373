"""``mamori cleanup``: what the daily clean-up on the beat does, now, printing what it removed."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from mamori.core import cleanup


class Command(BaseCommand):
    help = (
        "Remove expired sessions, old login-attempt records, delivered outbox messages and "
        "orphaned files in the private file store, and print what was removed."
    )

    def handle(self, *args, **options):
        report = cleanup.run()
        write = self.stdout.write
        write(f"expired sessions: {report.sessions}")
        write(
            f"login-attempt records older than {settings.LOGIN_RECORDS_RETENTION_DAYS} days: "
            f"{report.login_records}"
        )
        write(
            f"delivered outbox messages older than {settings.OUTBOX_RETENTION_DAYS} days: "
            f"{report.outbox_messages}"
        )
        write(
            f"accepted mail receipts older than {settings.OUTBOX_RETENTION_DAYS} days: "
            f"{report.mail_receipts}"
        )
        write(
            f"orphaned files older than {settings.ORPHAN_FILE_GRACE_HOURS} hours: "
            f"{len(report.orphaned_files)}"
        )
        for name in report.orphaned_files:
            write(f"  {name}")
