"""``mamori evaluate EVIDENCE.json``: evaluate one host's evidence against the five controls.

Exit status: 0 when the evidence was evaluated, whatever the verdict (the report says it);
2 for bad input or usage (unreadable file, not JSON, not valid evidence, unknown catalogue);
1 when the database is not ready; and, only when asked with ``--fail-on-fail`` or
``--fail-on-unknown`` (for CI pipelines), 3 when a control fails (or is not passed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils import translation
from django.utils.translation import gettext as _

from mamori.verification.evaluation import evaluate, render_text
from mamori.verification.evidence import MAX_EVIDENCE_BYTES, EvidenceError, validate_evidence

EXIT_INPUT = 2
EXIT_RUNTIME = 1
EXIT_CONTROL_FAILED = 3


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value[:40]!r}") from None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


class Command(BaseCommand):
    help = (
        "Evaluate a host's evidence (mamori-agent collect) against the five controls, using the "
        "advisories and life-cycle data in the database. Exit 0 when evaluated; 2 bad input; "
        "1 database not ready; 3 with --fail-on-fail/--fail-on-unknown when a control is not met."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument(
            "evidence", metavar="EVIDENCE.json", help="evidence file, or - for standard input"
        )
        parser.add_argument("--format", choices=("json", "text"), default="text")
        parser.add_argument(
            "--as-of", type=_date, default=None, help="evaluate as of this date (default: today)"
        )
        parser.add_argument("--lang", choices=("ja", "en"), default="ja")
        parser.add_argument(
            "--catalogue",
            metavar="VERSION",
            default=None,
            help="catalogue version whose settings apply (default: the newest loaded)",
        )
        parser.add_argument(
            "--fail-on-fail",
            action="store_true",
            help="exit with status 3 when any control fails",
        )
        parser.add_argument(
            "--fail-on-unknown",
            action="store_true",
            help="exit with status 3 when any control fails or cannot be decided",
        )

    def handle(self, *args, **options):
        # Messages, warnings and the report all follow --lang (Japanese by default).
        with translation.override(options["lang"]):
            self.evaluate(options)

    def evaluate(self, options: dict) -> None:
        source = options["evidence"]
        evidence = self.read_evidence(source, options.get("stdin"))
        as_of = options["as_of"] or dt.date.today()
        try:
            version, settings = catalogue_settings(options["catalogue"])
            assessed, complete = assess(evidence, as_of=as_of, settings=settings)
        except DatabaseError as exc:
            first_line = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            raise CommandError(
                _("the database is not ready (%(error)s); run 'mamori migrate'")
                % {"error": first_line},
                returncode=EXIT_RUNTIME,
            ) from None
        if assessed["vulnerabilities"] is None:
            self.stderr.write(
                _(
                    "warning: no advisories are imported, so the vulnerability checks cannot be "
                    "decided; run 'mamori advisories import PATH...'"
                )
            )
        elif not complete:
            self.stderr.write(
                _(
                    "warning: no advisories for this host's OS release are imported; a host "
                    "without findings is not taken as up to date"
                )
            )
        result = evaluate(
            evidence,
            as_of=as_of,
            settings=settings,
            vulnerabilities=assessed["vulnerabilities"],
            os_support=assessed["os_support"],
            software_support=assessed["software_support"],
            vulnerabilities_complete=complete,
            language=options["lang"],
            catalogue=version,
        )
        if options["format"] == "json":
            self.stdout.write(json.dumps(result, ensure_ascii=False, indent=2))
        else:
            self.stdout.write(render_text(result, options["lang"]), ending="")
        controls = result["controls"]
        failing = [name for name, verdict in controls.items() if verdict == "fail"]
        undecided = [name for name, verdict in controls.items() if verdict == "unknown"]
        if failing and (options["fail_on_fail"] or options["fail_on_unknown"]):
            raise CommandError(
                _("controls failed: %(controls)s") % {"controls": ", ".join(failing)},
                returncode=EXIT_CONTROL_FAILED,
            )
        if undecided and options["fail_on_unknown"]:
            raise CommandError(
                _("controls not decided: %(controls)s") % {"controls": ", ".join(undecided)},
                returncode=EXIT_CONTROL_FAILED,
            )

    def read_evidence(self, source: str, stdin: Any = None) -> dict:
        """Read, parse and validate the evidence; one line and exit status 2 on any problem."""
        name = "<stdin>" if source == "-" else source

        def refuse(message: str) -> CommandError:
            return CommandError(f"{name}: {message}", returncode=EXIT_INPUT)

        try:
            if source == "-":
                stream = stdin if stdin is not None else sys.stdin.buffer
                raw = stream.read(MAX_EVIDENCE_BYTES + 1)
            else:
                # Read at most one byte past the limit: a huge file (or /dev/zero) is refused
                # without being loaded.
                with open(source, "rb") as handle:
                    raw = handle.read(MAX_EVIDENCE_BYTES + 1)
        except OSError as exc:
            raise refuse(_("cannot read: %(reason)s") % {"reason": exc.strerror or exc}) from None
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        if len(raw) > MAX_EVIDENCE_BYTES:
            raise refuse(
                _("larger than %(limit)s MiB; evidence of a real host is far smaller")
                % {"limit": MAX_EVIDENCE_BYTES // (1024 * 1024)}
            )
        if not raw.strip():
            raise refuse(_("empty; expected the JSON written by mamori-agent collect"))
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise refuse(
                _("not UTF-8 text (byte %(position)s)") % {"position": exc.start}
            ) from None
        try:
            evidence = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise refuse(_("not usable JSON: nested too deeply")) from None
        except json.JSONDecodeError as exc:
            raise refuse(
                _("not valid JSON: %(reason)s (line %(line)s, column %(column)s)")
                % {"reason": exc.msg, "line": exc.lineno, "column": exc.colno}
            ) from None
        except ValueError as exc:  # NaN/Infinity, or an integer too long to convert
            raise refuse(_("not valid JSON: %(reason)s") % {"reason": str(exc)[:200]}) from None
        try:
            validate_evidence(evidence)
        except EvidenceError as exc:
            raise refuse(
                _("not valid evidence at %(path)s: %(reason)s")
                % {"path": exc.path, "reason": exc.reason}
            ) from None
        return evidence


def catalogue_settings(version: str | None) -> tuple[str | None, dict]:
    """The named catalogue version's settings (from the database, else a bundled file), else
    the newest catalogue loaded, else the newest bundled file -- so that evaluating works
    before ``mamori catalogue load``."""
    from mamori.catalogue.models import Catalogue
    from mamori.catalogue.services import parse_bundled

    rows = Catalogue.objects.order_by("-valid_from", "-pk")
    row = rows.filter(version=version).first() if version else rows.first()
    if row is not None:
        return row.version, dict(row.settings)
    bundled = parse_bundled()
    if version:
        for parsed in bundled:
            if parsed.version == version:
                return parsed.version, dict(parsed.settings)
        known = sorted(
            {*Catalogue.objects.values_list("version", flat=True)}
            | {parsed.version for parsed in bundled}
        )
        raise CommandError(
            _("unknown catalogue version '%(version)s' (known: %(known)s)")
            % {"version": version[:60], "known": ", ".join(known) or "-"},
            returncode=EXIT_INPUT,
        )
    if bundled:
        return bundled[-1].version, dict(bundled[-1].settings)
    return None, {}


def assess(evidence: dict, *, as_of: dt.date, settings: dict) -> tuple[dict, bool]:
    """Vulnerabilities and life-cycle from the advisory store, and whether the store covers the
    host's OS ecosystem and release (see ``assess_evidence``)."""
    from mamori.advisories.services import assess_evidence

    assessed = assess_evidence(
        evidence,
        as_of=as_of,
        patch_days=int(settings.get("patch_days", 14)),
        cvss_threshold=float(settings.get("cvss_threshold", 7.0)),
    )
    return assessed, assessed.pop("vulnerabilities_complete")
