"""``mamori earlywarning import|feeds|alerts|assets`` — early warning for operators and scripts.

- ``import PATH|URL --feed NAME``: read a report (a file, every ``.csv``/``.csv.gz`` of a
  folder, or an http(s) address). For network reports NAME is the report type
  (``scan_rdp``, ``event4_sinkhole`` ...). ``--feed kev`` reads CISA's KEV catalogue JSON and
  ``--feed osv`` OSV advisories (JSON, a folder, a zip) with the advisory importer: the KEV-listed
  or overdue findings they make on organisations' hosts become software alerts.
  ``--feed epss`` reads FIRST's daily EPSS CSV (plain or gzip) as scores for those alerts. Bad
  rows are reported as ``file:line: reason`` (bad advisory records by file and id) on stderr
  and skipped; the rest is imported.
- ``feeds [--format json|text]``: each feed's last run, rows, matches and errors.
- ``alerts [ORGANISATION] [--state S] --format json|text``: alerts as a list of objects
  (``organisation`` id, ``type``, ``state``, ``asset``, ``ip``, ``port``, ``first_seen``,
  ``last_seen`` ...).
- ``assets import ORGANISATION FILE.csv [--approve --reason TEXT]``: register claims (columns
  ``kind,value,include_subdomains``), all or none; ``--approve`` records the operator's
  approval of the address blocks and AS numbers. ``assets export ORGANISATION``.

ORGANISATION is an id or a corporate number. Exit status 0 on success, 2 for bad input (one line
on stderr; for files, every bad line), 1 when a report could be read only in part.
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _

from mamori.core.management.progress import terminal_progress


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _tasks_run_here() -> bool:
    """The embedded default runs background tasks in this process, so the alerts of a KEV or
    OSV import are raised before the command ends; with a broker a worker raises them."""
    from mamori.celery import app

    return bool(app.conf.task_always_eager)


class Command(BaseCommand):
    help = "Early warning: import reports, list feeds and alerts, register assets."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        imported = sub.add_parser("import", help="import a report from a file, folder or URL")
        imported.add_argument("location", metavar="PATH|URL")
        imported.add_argument("--feed", required=True, metavar="NAME")
        feeds = sub.add_parser("feeds", help="each feed's status: last run, rows, errors")
        feeds.add_argument("--format", choices=("json", "text"), default="text")
        listed = sub.add_parser("alerts", help="list alerts")
        listed.add_argument("organisation", nargs="?", metavar="ORGANISATION")
        listed.add_argument("--state", default="")
        listed.add_argument("--format", choices=("json", "text"), default="text")
        sector = sub.add_parser(
            "sector", help="the sector's figures for a day (no organisation named), stored"
        )
        sector.add_argument("--date", metavar="YYYY-MM-DD", help="the day (default: yesterday)")
        sector.add_argument("--format", choices=("json", "text"), default="text")
        assets = sub.add_parser("assets", help="register or export an organisation's assets")
        assets_sub = assets.add_subparsers(dest="assets_action", required=True)
        assets_import = assets_sub.add_parser("import", help="register the claims of a CSV file")
        assets_import.add_argument("organisation", metavar="ORGANISATION")
        assets_import.add_argument("path", metavar="FILE.csv")
        assets_import.add_argument("--approve", action="store_true")
        assets_import.add_argument("--reason", default="")
        assets_export = assets_sub.add_parser("export", help="write the registry as CSV")
        assets_export.add_argument("organisation", metavar="ORGANISATION")
        assets_export.add_argument("--output", metavar="FILE")

    def handle(self, *args, action, **options):
        if action == "import":
            return self.import_feed(options["location"], options["feed"])
        if action == "feeds":
            return self.list_feeds(options["format"])
        if action == "alerts":
            return self.list_alerts(options["organisation"], options["state"], options["format"])
        if action == "sector":
            return self.sector(options["date"], options["format"])
        if options["assets_action"] == "import":
            return self.import_assets(
                options["organisation"], options["path"], options["approve"], options["reason"]
            )
        return self.export_assets(options["organisation"], options["output"])

    # --- helpers ----------------------------------------------------------------------------

    def _organisation(self, reference: str):
        from mamori.organisations.reference import for_command

        return for_command(reference)

    # --- import -----------------------------------------------------------------------------

    def import_feed(self, location: str, name: str) -> None:
        from mamori.earlywarning import feeding
        from mamori.earlywarning.feeds.errors import FeedError
        from mamori.earlywarning.models import FeedKind

        try:
            with terminal_progress(self.stderr._out) as progress:
                runs = feeding.import_location(name, location, progress=progress)
        except FeedError as error:
            raise CommandError(error.render(_), returncode=2) from None
        failed = False
        for run in runs:
            if run.feed.kind in (FeedKind.KEV, FeedKind.OSV) and not _tasks_run_here():
                self.stdout.write(
                    _(
                        "%(source)s: alerts are raised once a worker has re-matched the hosts; "
                        "`mamori earlywarning feeds` shows them on this run."
                    )
                    % {"source": run.source}
                )
            for line in run.error_lines:
                self.stderr.write(line)
            if run.errors > len(run.error_lines):
                self.stderr.write(
                    _("%(source)s: %(more)s more rows skipped.")
                    % {"source": run.source, "more": run.errors - len(run.error_lines)}
                )
            if run.failure:
                failed = True
                self.stderr.write(run.failure)
            self.stdout.write(self._run_summary(run))
        if failed:
            sys.exit(1)

    def _run_summary(self, run) -> str:
        from mamori.earlywarning.models import FeedKind

        figures = {
            "source": run.source,
            "rows": run.rows,
            "matched": run.matched,
            "new": run.alerts_new,
            "updated": run.alerts_updated,
            "errors": run.errors,
        }
        kind = run.feed.kind
        if kind == FeedKind.EPSS:
            return (
                _(
                    "%(source)s: %(rows)s scores, %(errors)s skipped; %(matched)s alerts have "
                    "a score, %(updated)s of them changed."
                )
                % figures
            )
        if kind in (FeedKind.KEV, FeedKind.OSV):
            # Alerts are raised once the fleet is re-matched: here, at once (tasks run in this
            # process), or by a worker shortly after (counted on the run then).
            return (
                _(
                    "%(source)s: %(rows)s records, %(errors)s bad; %(matched)s findings on "
                    "hosts, %(new)s new alerts, %(updated)s seen again."
                )
                % figures
            )
        return (
            _(
                "%(source)s: %(rows)s rows, %(matched)s about registered assets, "
                "%(new)s new alerts, %(updated)s seen again, %(errors)s skipped."
            )
            % figures
        )

    # --- feeds ------------------------------------------------------------------------------

    def list_feeds(self, output_format: str) -> None:
        from mamori.earlywarning.models import Feed

        feeds = []
        for feed in Feed.objects.order_by("name"):
            run = feed.runs.first()
            feeds.append(
                {
                    "name": feed.name,
                    "kind": feed.kind,
                    "location": feed.location,
                    "enabled": feed.enabled,
                    "grading": feed.grading,
                    "tlp": feed.tlp,
                    "last_run": _iso(run.started_at) if run else None,
                    "state": run.state if run else None,
                    "rows": run.rows if run else 0,
                    "matched": run.matched if run else 0,
                    "errors": run.errors if run else 0,
                    "alerts_new": run.alerts_new if run else 0,
                    "alerts_updated": run.alerts_updated if run else 0,
                }
            )
        if output_format == "json":
            self.stdout.write(json.dumps(feeds, ensure_ascii=False))
            return
        if not feeds:
            self.stdout.write(
                _(
                    "No feeds yet: import a report with `mamori earlywarning import PATH --feed NAME`."
                )
            )
            return
        for feed in feeds:
            self.stdout.write(
                _(
                    "%(name)s (%(kind)s, %(grading)s, TLP:%(tlp)s): last run %(last)s %(state)s, "
                    "%(rows)s rows, %(matched)s matched, %(errors)s errors"
                )
                % {
                    **feed,
                    "tlp": feed["tlp"].upper(),
                    "last": feed["last_run"] or "-",
                    "state": feed["state"] or "",
                }
            )

    # --- alerts -----------------------------------------------------------------------------

    def list_alerts(self, reference: str | None, state: str, output_format: str) -> None:
        from mamori.earlywarning.models import Alert, AlertState

        alerts = Alert.objects.select_related("asset").order_by("organisation_id", "-last_seen")
        if reference:
            alerts = alerts.filter(organisation=self._organisation(reference))
        if state:
            if state not in AlertState.values:
                raise CommandError(
                    _("'%(state)s' is not a state of an alert; use one of %(states)s.")
                    % {"state": state[:40], "states": ", ".join(AlertState.values)},
                    returncode=2,
                )
            alerts = alerts.filter(state=state)
        rows = [
            {
                "id": alert.pk,
                "organisation": alert.organisation_id,
                "type": alert.type,
                "category": alert.category,
                "state": alert.state,
                "severity": alert.severity,
                "asset": str(alert.asset) if alert.asset_id else None,
                "ip": alert.ip,
                "port": alert.port,
                "hostname": alert.hostname or None,
                "host": alert.host_id,
                "package": alert.package or None,
                "installed_version": alert.installed_version or None,
                "advisory": alert.advisory or None,
                "cve": alert.cve or None,
                "kev": alert.kev,
                "kev_due": _iso(alert.kev_due),
                "epss": alert.epss,
                "epss_percentile": alert.epss_percentile,
                "control": alert.control or None,
                "grading": alert.grading,
                "tlp": alert.tlp,
                "first_seen": _iso(alert.first_seen),
                "last_seen": _iso(alert.last_seen),
                "times_seen": alert.times_seen,
                "due_at": _iso(alert.due_at),
                "overdue": bool(alert.is_open and alert.due_at and alert.due_at < timezone.now()),
            }
            for alert in alerts
        ]
        if output_format == "json":
            self.stdout.write(json.dumps(rows, ensure_ascii=False))
            return
        if not rows:
            self.stdout.write(_("No alerts."))
            return
        for row in rows:
            self.stdout.write(
                f"{row['id']}\t{row['organisation']}\t{row['type']}\t{row['category']}\t"
                f"{row['state']}\t{row['asset'] or row['hostname'] or ''}\t{row['ip'] or ''}"
                f"{':' + str(row['port']) if row['port'] else ''}\t{row['last_seen']}"
            )

    # --- sector -----------------------------------------------------------------------------

    def sector(self, date: str | None, output_format: str) -> None:
        import datetime as dt

        from mamori.earlywarning import sector

        if date:
            try:
                day = dt.date.fromisoformat(date)
            except ValueError:
                raise CommandError(
                    _("'%(date)s' is not a date; write it as YYYY-MM-DD.") % {"date": date[:40]},
                    returncode=2,
                ) from None
        else:
            day = timezone.localdate() - dt.timedelta(days=1)
        stored = sector.sample(day)
        if output_format == "json":
            self.stdout.write(
                json.dumps({"digest": stored.digest, **stored.figures}, ensure_ascii=False)
            )
            return
        figures = stored.figures
        self.stdout.write(f"{figures['day']}  {stored.digest}")
        if figures["sector"] is None:
            self.stdout.write(
                _("Fewer than %(count)s institutions: no figures are shown.")
                % {"count": figures["min_group"]}
            )
            return
        self.stdout.write(json.dumps(figures["sector"], ensure_ascii=False, indent=2))

    # --- assets -----------------------------------------------------------------------------

    def import_assets(self, reference: str, path: str, approve: bool, reason: str) -> None:
        from mamori.earlywarning import registry

        organisation = self._organisation(reference)
        reason = reason.strip()
        if approve and not reason:
            raise CommandError(
                _("--approve needs --reason: say why these claims are approved."), returncode=2
            )
        if reason and not approve:
            raise CommandError(_("--reason is only for --approve."), returncode=2)
        try:
            with open(path, "rb") as handle:
                data = handle.read(registry.CSV_MAX_BYTES + 1)
        except OSError as error:
            raise CommandError(
                _("Cannot read %(path)s: %(reason)s") % {"path": path, "reason": error.strerror},
                returncode=2,
            ) from None
        result = registry.import_csv(
            None, None, organisation, data, source=path, approve_reason=reason if approve else ""
        )
        if result.errors:
            for line in result.errors[1:]:
                self.stderr.write(line)
            raise CommandError(
                _("%(first)s (%(count)s problems; nothing was registered)")
                % {"first": result.errors[0], "count": len(result.errors)},
                returncode=2,
            )
        verified = sum(1 for asset in result.created if asset.counts)
        self.stdout.write(
            _(
                "%(count)s assets registered for %(organisation)s: %(verified)s verified, "
                "%(pending)s awaiting verification."
            )
            % {
                "count": len(result.created),
                "organisation": organisation,
                "verified": verified,
                "pending": len(result.created) - verified,
            }
        )

    def export_assets(self, reference: str, output: str | None) -> None:
        from mamori.earlywarning import registry
        from mamori.earlywarning.models import Asset

        organisation = self._organisation(reference)
        text = registry.export_csv(Asset.objects.filter(organisation=organisation))
        if output:
            try:
                with open(output, "w", encoding="utf-8", newline="") as handle:
                    handle.write(text)
            except OSError as error:
                raise CommandError(
                    _("Cannot write %(path)s: %(reason)s")
                    % {"path": output, "reason": error.strerror},
                    returncode=2,
                ) from None
            return
        self.stdout.write(text, ending="")
