"""``mamori advisories import PATH...`` and ``mamori advisories stats``.

Exit status of ``import``: 0 when every record was imported; 1 when some were bad (reported one
per line on stderr, after all good records were imported) or the import failed; 2 for a usage
error (a missing path, an unrecognised format: one line naming the file, nothing imported).

What was skipped without making a record bad — a part of a record left out (an ``affected``
entry or a range that cannot be used; the rest of the record is imported) or a record older than
the stored one — is reported on stderr too, one line each naming the record, and counted in the
summary; it does not change the exit status.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.db.models import Count
from django.utils.translation import gettext as _
from tqdm import tqdm

from mamori.advisories import osv, sources
from mamori.advisories.importer import DEFAULT_BATCH_SIZE, Importer, finish_run
from mamori.advisories.models import (
    Advisory,
    AffectedPackage,
    EolCycle,
    ImportRun,
    IndexGeneration,
    KevEntry,
)

KIND_LABELS = {"osv": "OSV", "kev": "KEV", "eol": "EOL"}


class Command(BaseCommand):
    help = "Import advisories (OSV, CISA KEV, end-of-life data) or show what is stored."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        importing = sub.add_parser(
            "import",
            help="import OSV JSON records, lists, directories or all.zip files, the CISA KEV "
            "catalogue, endoflife.date JSON and distro-info CSV; the format is detected per file",
        )
        importing.add_argument("paths", nargs="+", metavar="PATH")
        importing.add_argument(
            "--product",
            help="the endoflife.date product of a single JSON file (default: the file name)",
        )
        importing.add_argument("--quiet", action="store_true", help="no progress bar")
        importing.add_argument(
            "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="records per transaction"
        )
        stats = sub.add_parser("stats", help="counts by ecosystem, KEV entries, EOL products")
        stats.add_argument("--format", choices=("text", "json"), default="text")

    def handle(self, *args, action, **options):
        if action == "stats":
            self.show_stats(options["format"])
        else:
            self.run_import(
                [Path(path) for path in options["paths"]],
                product=options.get("product"),
                quiet=options.get("quiet", False),
                batch_size=options["batch_size"],
                raw_stderr=options.get("stderr") or sys.stderr,
            )

    # --- import -------------------------------------------------------------------------------

    def run_import(self, paths, *, product, quiet, batch_size, raw_stderr):
        if product is not None and (len(paths) != 1 or not osv.valid_product(product)):
            raise CommandError(
                _("--product takes one endoflife.date product slug and one file"), returncode=2
            )
        if batch_size < 1:
            raise CommandError(_("--batch-size must be at least 1"), returncode=2)
        try:
            found = [sources.detect(path, product=product) for path in paths]
        except sources.UsageError as exc:
            raise CommandError(str(exc), returncode=2) from None

        started = time.monotonic()
        run = ImportRun.objects.create(
            requested_by=_current_user(), paths=[str(path) for path in paths]
        )
        totals = [source.total for source in found]
        progress = tqdm(
            total=sum(totals) if None not in totals else None,
            unit=" records",
            file=raw_stderr,
            disable=quiet or not _isatty(raw_stderr),
            **_terminal_size(raw_stderr),
        )

        def report_bad(where: str, bad: osv.BadRecord) -> None:
            line = (
                f"{bad.record_id}: {bad.reason} ({where})"
                if bad.record_id
                else f"{where}: {bad.reason}"
            )
            progress.write(line, file=raw_stderr)

        def report_skipped(where: str, part: osv.SkippedPart) -> None:
            progress.write(f"{part.record_id}: {part.reason} ({where})", file=raw_stderr)

        importer = Importer(run, batch_size=batch_size, on_bad=report_bad, on_skip=report_skipped)
        try:
            for source in found:
                for kind, where, item in sources.read(source):
                    importer.add(kind, where, item)
                    if not isinstance(item, osv.SkippedPart):  # a part is no record of its own
                        progress.update()
            importer.finish()
        except BaseException as exc:
            progress.close()
            # If the database is what failed, the run stays "running"; the cause is below.
            with contextlib.suppress(DatabaseError):
                finish_run(run, importer, error=f"{type(exc).__name__}: {exc}"[:2000])
            if isinstance(exc, Exception):
                raise CommandError(
                    _("import failed: %(error)s")
                    % {"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__},
                    returncode=1,
                ) from exc
            raise
        progress.close()
        finish_run(run, importer)
        self.stdout.write(summary_line(run, time.monotonic() - started))
        if run.bad:
            raise CommandError(
                _("%(bad)d bad records were skipped; the others were imported") % {"bad": run.bad},
                returncode=1,
            )

    # --- stats --------------------------------------------------------------------------------

    def show_stats(self, output_format: str) -> None:
        ecosystems = (
            AffectedPackage.objects.values("family")
            .annotate(
                packages=Count("name", distinct=True), advisories=Count("advisory", distinct=True)
            )
            .order_by("family")
        )
        last_run = ImportRun.objects.order_by("-created_at").first()
        data = {
            "advisories": Advisory.objects.count(),
            "withdrawn": Advisory.objects.filter(withdrawn__isnull=False).count(),
            "affected_packages": AffectedPackage.objects.count(),
            "ecosystems": {
                row["family"]: {"advisories": row["advisories"], "packages": row["packages"]}
                for row in ecosystems
            },
            "kev": KevEntry.objects.count(),
            "eol": {
                f"{row['product']} ({row['source']})": row["cycles"]
                for row in EolCycle.objects.values("product", "source")
                .annotate(cycles=Count("pk"))
                .order_by("product", "source")
            },
            "generation": IndexGeneration.current()[0],
            "last_import": None
            if last_run is None
            else {
                "started": last_run.created_at.isoformat(),
                "state": last_run.state,
                "added": last_run.added,
                "changed": last_run.changed,
                "unchanged": last_run.unchanged,
                "withdrawn": last_run.withdrawn,
                "bad": last_run.bad,
                "skipped": last_run.skipped,
            },
        }
        if output_format == "json":
            self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False))
            return
        self.stdout.write(
            _("%(advisories)d advisories (%(withdrawn)d withdrawn), %(affected)d affected packages")
            % {
                "advisories": data["advisories"],
                "withdrawn": data["withdrawn"],
                "affected": data["affected_packages"],
            }
        )
        for family, row in data["ecosystems"].items():
            self.stdout.write(
                "  "
                + _("%(family)s: %(advisories)d advisories, %(packages)d packages")
                % {"family": family, **row}
            )
        self.stdout.write(_("KEV: %(count)d entries") % {"count": data["kev"]})
        self.stdout.write(_("EOL: %(count)d products") % {"count": len(data["eol"])})
        for product, cycles in data["eol"].items():
            self.stdout.write(f"  {product}: {cycles}")


def summary_line(run: ImportRun, seconds: float) -> str:
    parts = []
    for kind, label in KIND_LABELS.items():
        counts = run.counts.get(kind) or {}
        if not any(counts.values()):
            continue
        parts.append(
            _(
                "%(kind)s %(added)d added, %(changed)d changed, %(unchanged)d unchanged, "
                "%(withdrawn)d withdrawn, %(bad)d bad"
            )
            % {"kind": label, **counts}
        )
    if not parts:
        parts.append(_("no records found"))
    if run.skipped:
        parts.append(
            _("%(skipped)d skipped (records or parts of records)") % {"skipped": run.skipped}
        )
    return _("import %(run)d finished in %(seconds).1f s: %(counts)s") % {
        "run": run.pk,
        "seconds": seconds,
        "counts": "; ".join(parts),
    }


def _current_user() -> str:
    try:
        return getpass.getuser()[:150]
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return ""


def _terminal_size(stream) -> dict[str, int]:
    """The terminal's size for tqdm, 80x24 where it reports none: a fresh pseudo-terminal says
    0x0, and tqdm then draws nothing at all."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return {"ncols": 80, "nrows": 24}
    return {"ncols": size.columns or 80, "nrows": size.lines or 24}


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
