"""``mamori reporting sample|pack`` — board and sector reporting for operators and scripts.

- ``sample [--date D] [--organisation ORG] [--format json|text]``: the metric samples of a
  finished day (default: yesterday), recomputed from the stored history. A day not sampled yet
  is stored, sealed and chained into the audit trail; a day sampled before is compared with its
  seal, and a difference is an error (exit status 1). ``--format json`` prints
  ``{"date", "digest", "samples": [{"organisation", "metric", "value"}], ...}`` where
  ``digest`` is the day's digest (over every organisation's); ``--organisation`` limits the
  samples printed to one organisation (an id or a corporate number).

- ``pack ORGANISATION [--from D --to D] [--lang ja|en] --output FILE.pdf|FILE.xlsx``: the board
  pack of a period (the last finished quarter by default) as PDF or XLSX, by the output's
  suffix. The pack is stored like one made on the pages (the same figures give the same pack;
  other figures a new version) and the file written whole or not at all.

ORGANISATION is an id or a corporate number. Exit status 0 on success, 2 for bad input (one line
on stderr), 1 when a recomputed day differs from its seal.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _


def parse_day(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(
            _("%(option)s must be a date as YYYY-MM-DD, not %(value)s.")
            % {"option": option, "value": value[:40]},
            returncode=2,
        ) from None


class Command(BaseCommand):
    help = "Board and sector reporting: daily metric samples."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sampled = sub.add_parser(
            "sample", help="the metric samples of a finished day, stored once and checked after"
        )
        sampled.add_argument("--date", metavar="YYYY-MM-DD", help="the day (default: yesterday)")
        sampled.add_argument("--organisation", metavar="ORGANISATION")
        sampled.add_argument("--format", choices=("json", "text"), default="text")
        packed = sub.add_parser("pack", help="write a board pack as PDF or XLSX")
        packed.add_argument("organisation", metavar="ORGANISATION")
        packed.add_argument("--from", dest="first", metavar="YYYY-MM-DD")
        packed.add_argument("--to", dest="last", metavar="YYYY-MM-DD")
        packed.add_argument("--lang", choices=("ja", "en"), default="ja")
        packed.add_argument("--output", required=True, metavar="FILE.pdf|FILE.xlsx")

    def handle(self, *args, action, **options):
        if action == "sample":
            return self.sample(options["date"], options["organisation"], options["format"])
        return self.pack(
            options["organisation"],
            options["first"],
            options["last"],
            options["lang"],
            options["output"],
        )

    def pack(self, reference, first, last, language, output) -> None:
        from mamori.organisations.reference import for_command
        from mamori.reporting import pack, render, sampling, services

        path = Path(output)
        kind = path.suffix.lower().lstrip(".")
        if kind not in ("pdf", "xlsx"):
            raise CommandError(
                _("--output must name a .pdf or an .xlsx file, not %(name)s.")
                % {"name": path.name[:80]},
                returncode=2,
            )
        if (first is None) != (last is None):
            raise CommandError(_("Give both --from and --to, or neither."), returncode=2)
        organisation = for_command(reference)
        if first is None:
            period = pack.last_finished_quarter(sampling.today())
        else:
            period = pack.Period(parse_day(first, "--from"), parse_day(last, "--to"))
        try:
            made = services.make_pack(None, organisation, period)
        except services.ReportingError as error:
            raise CommandError(str(error), returncode=2) from None
        made.refresh_from_db()
        stored = made.file_for(kind, language)
        if stored:
            with stored.open("rb") as handle:
                data = handle.read()
        else:  # a worker renders the stored files; this file is wanted now
            self.stderr.write(_("Rendering the pack…"))
            data = (render.pdf if kind == "pdf" else render.xlsx)(made.content, language)
        temporary = path.with_name(f".{path.name}.part")
        try:
            temporary.write_bytes(data)
            temporary.replace(path)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise CommandError(
                _("Cannot write %(path)s: %(reason)s")
                % {"path": path, "reason": error.strerror or error},
                returncode=2,
            ) from None
        self.stdout.write(
            _("%(path)s: board pack %(start)s – %(end)s, version %(version)s, digest %(digest)s.")
            % {
                "path": path,
                "start": period.first.isoformat(),
                "end": period.last.isoformat(),
                "version": made.version,
                "digest": made.digest,
            }
        )

    def sample(self, date: str | None, reference: str | None, output: str) -> None:
        from mamori.organisations.reference import for_command
        from mamori.reporting import sampling

        day = parse_day(date, "--date") if date else sampling.today() - dt.timedelta(days=1)
        organisation = for_command(reference) if reference else None
        try:
            result = sampling.sample(day)
        except sampling.DemoDay:
            raise CommandError(
                _(
                    "The samples of %(day)s were written by the demo (mamori demo) from its "
                    "storyline, not sampled from history: there is nothing to recompute."
                )
                % {"day": day.isoformat()},
                returncode=2,
            ) from None
        except sampling.DayNotOver:
            raise CommandError(
                _("%(day)s is not over yet: a day is sampled once it has ended.")
                % {"day": day.isoformat()},
                returncode=2,
            ) from None
        only = organisation.pk if organisation else None
        if output == "json":
            document = {
                "date": day.isoformat(),
                "digest": result.digest,
                "samples": result.samples(only),
                "sealed": result.sealed.digest if result.sealed else None,
                "stored_now": result.stored_now,
            }
            if organisation is not None:
                document["organisation_digest"] = result.organisation_digests.get(organisation.pk)
            self.stdout.write(json.dumps(document, ensure_ascii=False, indent=2))
        else:
            self.write_text(result, only)
        if result.matches_seal is False:
            self.stderr.write(
                _(
                    "The samples of %(day)s recomputed now differ from those sealed on "
                    "%(sealed)s (digest %(digest)s), for %(count)s organisations."
                )
                % {
                    "day": day.isoformat(),
                    "sealed": result.sealed.sampled_at.date().isoformat(),
                    "digest": result.sealed.digest[:16],
                    "count": len(result.differing),
                }
            )
            sys.exit(1)

    def write_text(self, result, only: int | None) -> None:
        for row in result.samples(only):
            value = json.dumps(row["value"], ensure_ascii=False, sort_keys=True)
            self.stdout.write(f"{row['organisation']}\t{row['metric']}\t{value}")
        if result.stored_now:
            line = _("%(day)s sampled and sealed: %(count)s organisations, digest %(digest)s.")
        else:
            line = _("%(day)s recomputed: %(count)s organisations, digest %(digest)s, as sealed.")
        self.stdout.write(
            line
            % {"day": result.day.isoformat(), "count": len(result.values), "digest": result.digest}
        )
