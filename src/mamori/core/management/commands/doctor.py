"""``mamori doctor``: the readiness checks of ``/readyz`` for an operator, one line per check,
or the same JSON (``--format json``); non-zero when something is not ready."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from mamori.core import readiness


class Command(BaseCommand):
    help = "Check the database, cache, broker, worker, beat, mail server and disk space."
    # It must run, and say so, when what the system checks look at is broken.
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=("text", "json"), default="text")

    def handle(self, *args, format: str, **options):
        report = readiness.run()
        if format == "json":
            self.stdout.write(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
        else:
            for check in report.checks:
                self.stdout.write(f"{check.name:<9} {check.status:<4} {check.detail}")
        if not report.ready:
            raise SystemExit(1)
