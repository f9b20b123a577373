"""``mamori reporting sample`` — board and sector reporting for operators and scripts.

- ``sample [--date D] [--organisation ORG] [--format json|text]``: the metric samples of a
  finished day (default: yesterday), recomputed from the stored history. A day not sampled yet
  is stored, sealed and chained into the audit trail; a day sampled before is compared with its
  seal, and a difference is an error (exit status 1). ``--format json`` prints
  ``{"date", "digest", "samples": [{"organisation", "metric", "value"}], ...}`` where
  ``digest`` is the day's digest (over every organisation's); ``--organisation`` limits the
  samples printed to one organisation (an id or a corporate number).

Exit status 0 on success, 2 for bad input (one line on stderr), 1 when a recomputed day differs
from its seal.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

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

    def handle(self, *args, action, **options):
        if action == "sample":
            return self.sample(options["date"], options["organisation"], options["format"])
        return None

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
