"""Software feeds: CISA KEV and OSV advisories read as early-warning feeds, and the
``software_vulnerability`` alerts they raise on organisations' hosts.

Reading (``import_advisory_feed``): a KEV or OSV feed is read with the advisory importer that
``mamori advisories import`` uses (``advisories.sources`` + ``advisories.importer``), so there
is one parser per format and one store. The feed run records what was read (records, bad
records by file and id) and is linked to the advisory import (``AdvisoryFeedImport``).

Raising (``raise_alerts``): an import that changed advisories or KEV entries re-matches the fleet
set-based (``verification.tasks.rematch_advisories``, docs/rematch.md); when that re-match has
committed, it sends ``verification.signals.fleet_rematched`` and the alerts are raised from the
hosts' latest vulnerability rows of the changed advisories — the re-match found exactly the
hosts that hold an affected package, so nothing here compares versions or reads evidence:

- a row whose advisory names a CVE in the KEV catalogue is a KEV alert per (host, package, CVE):
  critical, ``kev`` set, due by the scheme's KEV rule (the catalogue's ``kev_patch_days``
  counted from the fix's release, and never before the day the entry was listed: catalogue
  A6.9 says a fix listed later than that is applied at once);
- a row over the scheme's deadline (its ``overdue`` flag: a serious fix older than
  ``patch_days``) is an alert per (host, package, CVE) too, not KEV, due by the alert deadline
  the scheme owner set for software vulnerabilities.

Two more paths raise the same alerts from the hosts' latest rows: an upload whose evaluation
finds KEV-listed or overdue packages on its host (``raise_for_hosts``, through
``verification.signals.host_evaluated``: a new host, or a vulnerable package installed since the
last import), and the hourly deadline sweep (``sweep_deadlines``): a fix released a few days
before it was found was not overdue then, and goes over ``patch_days`` later with no import or
evaluation to notice it — the sweep raises it on the day it crosses.

Whichever import changed the data raises them — an early-warning feed run or
``mamori advisories import`` — so a KEV entry imported by hand is not missed by the feed. An
alert is seen when its import finished, so running the raise twice changes nothing, and the same
finding named again by a later import is "seen again". Each alert carries the finding, the KEV
entry, the EPSS score known for its CVE, and remediation text in Japanese and English.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from mamori.advisories import osv
from mamori.advisories import sources as advisory_sources
from mamori.advisories.importer import Importer, finish_run
from mamori.advisories.matching import is_overdue
from mamori.advisories.models import Advisory, ImportRun, KevEntry
from mamori.core.backup import Progress
from mamori.core.controls import SECURITY_UPDATE_MANAGEMENT
from mamori.earlywarning import alerts
from mamori.earlywarning.feeds import sources
from mamori.earlywarning.feeds.errors import FeedError, escaped
from mamori.earlywarning.models import (
    AdvisoryFeedImport,
    AlertType,
    Credibility,
    EpssScore,
    Feed,
    FeedKind,
    FeedRun,
    Reliability,
    RunState,
    Severity,
    Tlp,
)
from mamori.verification.models import Host, Vulnerability

log = logging.getLogger(__name__)

# One category for both: a finding listed in KEV after its alert was raised for being overdue
# stays the same alert (``kev`` and the severity say which it is now).
CATEGORY = "vulnerable_package"
LOOKUP_CHUNK = 1000
# The findings that make alerts: KEV-listed, or over the scheme's deadline when evaluated.
RAISED = Q(kev=True) | Q(overdue=True)
# Days back the deadline sweep looks for findings it missed (a beat that was away).
SWEEP_CATCH_UP_DAYS = 7
# The CVE an identifier names: the id itself, or a distribution's "UBUNTU-CVE-…" form (the
# advisory index reads KEV-listed advisories the same way, advisories.matching).
CVE_IN_ID = re.compile(r"CVE-\d{4}-\d{4,}", re.ASCII)

# Feeds created on first use. KEV: CISA confirms exploitation (A1). OSV: vendors' and
# distributions' own advisories (A2). EPSS: a model's estimate (B3). Every alert names one
# organisation's vulnerable host, so none is shared beyond it and its helpers (TLP:AMBER).
FEED_DEFAULTS = {
    "kev": {
        "kind": FeedKind.KEV,
        "reliability": Reliability.A,
        "credibility": Credibility.CONFIRMED,
        "tlp": Tlp.AMBER,
    },
    "osv": {
        "kind": FeedKind.OSV,
        "reliability": Reliability.A,
        "credibility": Credibility.PROBABLY_TRUE,
        "tlp": Tlp.AMBER,
    },
    "epss": {
        "kind": FeedKind.EPSS,
        "reliability": Reliability.B,
        "credibility": Credibility.POSSIBLY_TRUE,
        "tlp": Tlp.AMBER,
    },
}
# What each advisory feed accepts (``advisories.sources`` formats).
FEED_FORMATS = {
    FeedKind.KEV: {advisory_sources.KEV},
    FeedKind.OSV: {
        advisory_sources.OSV_RECORD,
        advisory_sources.OSV_LIST,
        advisory_sources.OSV_DIRECTORY,
        advisory_sources.OSV_ZIP,
    },
}


def feed_for(name: str) -> Feed:
    """The ``kev``, ``osv`` or ``epss`` feed, created with its defaults on first use."""
    name = name.strip().lower()
    defaults = FEED_DEFAULTS[name]
    feed, _created = Feed.objects.get_or_create(name=name, defaults=dict(defaults))
    return feed


# --- reading a KEV or OSV feed ------------------------------------------------------------------


def import_advisory_feed(
    feed: Feed, location: str, *, progress: Progress | None = None, now=None
) -> FeedRun:
    """Import the KEV catalogue or the OSV advisories at ``location`` (a file, a folder of OSV
    JSON, an OSV zip, or an http(s) URL of one file) into the advisory store, as ``feed``'s
    run. ``FeedError`` when the location cannot be read or holds another format; a read that
    fails after records were imported is a failed run, returned."""
    progress = progress or Progress()
    now = now or timezone.now()
    with _local_copy(location) as (path, shown):
        try:
            source = advisory_sources.detect(path)
        except advisory_sources.UsageError as error:
            raise FeedError(
                gettext_noop("%(location)s cannot be imported: %(reason)s"),
                location=shown,
                reason=escaped(error.reason, None),
            ) from None
        if source.format not in FEED_FORMATS[feed.kind]:
            raise FeedError(
                gettext_noop("%(location)s holds %(found)s, not what the %(feed)s feed reads"),
                location=shown,
                found=source.format,
                feed=feed.name,
            )
        progress.step(shown)
        size = path.stat().st_size if path.is_file() else 0
        progress.bytes_total(size)
        run = FeedRun.objects.create(feed=feed, source=shown[:500])
        import_run = ImportRun.objects.create(
            requested_by=f"earlywarning:{feed.name}"[:150], paths=[shown[:500]]
        )
        AdvisoryFeedImport.objects.create(feed_run=run, import_run=import_run)
        problems: list[str] = []

        def report_bad(where: str, bad: osv.BadRecord) -> None:
            if len(problems) < FeedRun.ERROR_LINES_KEPT:
                named = f"{bad.record_id}: " if bad.record_id else ""
                problems.append(f"{where}: {named}{bad.reason}")

        importer = Importer(import_run, on_bad=report_bad)
        records = 0
        try:
            for kind, where, item in advisory_sources.read(source):
                importer.add(kind, where, item)
                if not isinstance(item, osv.SkippedPart):  # a part is no record of its own
                    records += 1
            importer.finish()
        except Exception as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            with contextlib.suppress(Exception):
                finish_run(import_run, importer, error=f"{type(exc).__name__}: {reason}"[:2000])
            _finish(run, records, problems, importer, _digest(path), RunState.FAILED, reason)
            if not records:
                raise FeedError(
                    gettext_noop("%(location)s could not be imported: %(reason)s"),
                    location=shown,
                    reason=escaped(reason),
                ) from exc
            # Cut off mid-way (a damaged zip member, a lost file): what was read before is
            # imported and re-matched; the run says why it stopped.
            run.refresh_from_db()
            return run
        progress.bytes_done(size)
        # The run is complete before the import is finished: finishing it commits the import,
        # whose re-match then raises the alerts and counts them on this run.
        _finish(run, records, problems, importer, _digest(path), RunState.DONE, "")
        Feed.objects.filter(pk=feed.pk).update(last_run_at=now)
        finish_run(import_run, importer)
    run.refresh_from_db()
    return run


def _finish(run, records, problems, importer, digest, state, failure) -> None:
    run.state = state
    run.finished_at = timezone.now()
    run.rows = records
    run.errors = importer.totals.total("bad")
    run.error_lines = problems
    run.digest = digest
    run.failure = failure[:2000]
    run.save(
        update_fields=[
            "state", "finished_at", "rows", "errors", "error_lines", "digest", "failure",
        ]
    )  # fmt: skip


def _digest(path: Path) -> str:
    """sha256 of a file read (a folder has none: its files are imported one by one)."""
    if not path.is_file():
        return ""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _local_copy(location: str) -> Iterator[tuple[Path, str]]:
    """The location as a local path, and how messages name it. A URL is downloaded first (with
    the feed readers' limits: size, time, status) into a temporary file removed afterwards:
    the advisory readers detect the format of a file, and read zips by seeking in them."""
    if not sources.is_url(location):
        path = Path(location)
        if not path.exists():
            raise sources.SourceError(
                gettext_noop("no such file or directory: %(location)s"),
                location=escaped(location, None),
            )
        yield path, escaped(location, None)
        return
    shown = sources.display_url(location)
    with tempfile.TemporaryDirectory(prefix="mamori-feed-") as folder:
        target = Path(folder) / "download"
        with sources.open_source(location) as stream, target.open("wb") as copy:
            shutil.copyfileobj(stream, copy, 1 << 20)
        yield target, shown


# --- raising alerts after the re-match ------------------------------------------------------------


@dataclass
class Raised:
    """What one raise did: the findings that make alerts (one per host, package and CVE), and
    the alerts new and seen again."""

    findings: int = 0
    new: int = 0
    updated: int = 0


@dataclass(frozen=True)
class _Row:
    host_id: int
    organisation_id: int
    hostname: str
    catalogue_version: str
    evaluated_at: dt.datetime
    package: str
    installed_version: str
    advisory: str
    fixed_version: str | None
    severity: str | None
    cvss: float | None
    fix_published: dt.date | None
    days_since_fix: int | None
    overdue: bool


def raise_alerts(advisory_ids: Iterable[str], *, import_run_id: int | None) -> Raised:
    """Raise or update the software alerts of these advisories' findings on the hosts' latest
    evaluations (KEV-listed, or past the scheme's deadline), once the re-match has written
    them. ``import_run_id`` is the advisory import that changed them: the moment the alerts
    were seen, and the feed run they are counted on."""
    ids = sorted({str(advisory_id) for advisory_id in advisory_ids})
    import_run = ImportRun.objects.filter(pk=import_run_id).first() if import_run_id else None
    if not ids or import_run is None:
        if ids:
            # Only a re-match queued without its import (by hand, or before this version)
            # gets here: without the import there is no moment to date the alerts by.
            log.warning("software alerts: re-match of %d advisories without its import", len(ids))
        return Raised()
    seen_at = import_run.finished_at or import_run.created_at
    link = (
        AdvisoryFeedImport.objects.filter(import_run=import_run)
        .select_related("feed_run__feed")
        .first()
    )
    rows = _findings(ids)
    return _raise(rows, seen_at=lambda _row: seen_at, link=link)


def raise_for_hosts(host_ids: Iterable[int]) -> Raised:
    """Raise or update the software alerts of these hosts' latest evaluations (a host that
    reported a KEV-listed or overdue package: a new host, or a package installed since), each
    seen when its evaluation was made — so raising twice changes nothing."""
    ids = sorted({int(pk) for pk in host_ids})
    rows = []
    for chunk in _chunks(ids):
        latest = Host.objects.filter(pk__in=chunk, latest_evaluation__isnull=False).values(
            "latest_evaluation"
        )
        rows += _rows(Vulnerability.objects.filter(evaluation_id__in=latest).filter(RAISED))
    return _raise(rows, seen_at=lambda row: row.evaluated_at)


def sweep_deadlines(*, now: dt.datetime | None = None) -> Raised:
    """Raise the findings that went over the scheme's deadline since their evaluation: a fix
    released a few days before the host's evaluation (or before the import that found it) was
    not overdue then, and crosses ``patch_days`` later with no new import or evaluation to
    notice. Each is raised once, on the day it crosses (the beat runs this hourly; findings
    that already have an alert are left to the imports and evaluations that see them)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    rules = _deadlines(set(_catalogue_versions()))
    shortest = min(rule.patch_days for rule in rules.values())
    longest = max(rule.patch_days for rule in rules.values())
    latest = Host.objects.filter(latest_evaluation__isnull=False).values("latest_evaluation")
    candidates = _rows(
        Vulnerability.objects.filter(
            evaluation_id__in=latest,
            overdue=False,
            kev=False,
            fixed_version__isnull=False,
            # Crossed today, or on a day the beat missed (a week back at most).
            fix_published__gt=today - dt.timedelta(days=longest + 1 + SWEEP_CATCH_UP_DAYS),
            fix_published__lt=today - dt.timedelta(days=shortest),
        )
    )
    rules |= _deadlines({row.catalogue_version for row in candidates} - rules.keys())
    crossed = []
    for row in candidates:
        rule = rules[row.catalogue_version]
        days = (today - row.fix_published).days
        if is_overdue(days, rule.patch_days, row.severity, row.cvss, rule.cvss_threshold):
            crossed.append(replace(row, days_since_fix=days, overdue=True))
    return _raise(crossed, seen_at=lambda _row: now, only_new=True)


def _raise(
    rows: list[_Row],
    *,
    seen_at: Callable[[_Row], dt.datetime],
    link: AdvisoryFeedImport | None = None,
    only_new: bool = False,
) -> Raised:
    """The alerts of these findings (KEV-listed, or past the deadline), upserted and announced
    in one transaction; ``link`` names the feed run they are counted on."""
    cves_of = _cves_of_advisories(sorted({row.advisory for row in rows}))
    kev = _kev_entries({cve for cves in cves_of.values() for cve in cves})
    scores = _scores({cve for cves in cves_of.values() for cve in cves})
    deadlines = _deadlines({row.catalogue_version for row in rows})
    templates = remediation_templates()
    sightings: dict[str, list[alerts.Sighting]] = {"kev": [], "osv": []}
    for row in rows:
        cves = cves_of.get(row.advisory) or [""]
        for cve in cves:
            entry = kev.get(cve)
            if entry is None and not row.overdue:
                continue  # KEV-listed through another of its CVEs only
            sighting = _sighting(
                row, cve, entry, scores.get(cve), deadlines, seen_at(row), templates
            )
            sightings["kev" if entry is not None else "osv"].append(sighting)
    if only_new:
        pairs = [(item.organisation_id, item.key) for group in sightings.values() for item in group]
        have = alerts.known(pairs)
        for name, group in sightings.items():
            sightings[name] = [
                item for item in group if (item.organisation_id, item.key) not in have
            ]
    raised = Raised(findings=sum(len(group) for group in sightings.values()))
    with transaction.atomic():
        upserted_all = []
        for default_feed, group in sightings.items():
            if not group:
                continue
            feed = link.feed_run.feed if link is not None else feed_for(default_feed)
            upserted = alerts.upsert(group, feed=feed)
            raised.new += len(upserted.new)
            raised.updated += len(upserted.updated)
            upserted_all.append(upserted)
        if link is not None:
            # Assigned, not added, for the findings: the raise may run twice for one import.
            FeedRun.objects.filter(pk=link.feed_run_id).update(
                matched=raised.findings,
                alerts_new=F("alerts_new") + raised.new,
                alerts_updated=F("alerts_updated") + raised.updated,
            )
        for upserted in upserted_all:
            _announce(upserted)
    return raised


def _announce(upserted: alerts.Upserted) -> None:
    """Hand the alerts, and the notices they raise for the organisations that depend on theirs
    (supplier fan-out), to delivery, in this transaction: what it queues commits with the
    alerts or not at all."""
    from mamori.earlywarning import fanout, notify

    if not (upserted.new or upserted.updated):
        return
    notices = fanout.notices_for([*upserted.new, *upserted.updated])
    notify.alerts_raised(upserted)
    notify.alerts_raised(notices)


def _chunks(values: list, size: int = LOOKUP_CHUNK) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def cves_named(identifier: str, aliases: Iterable[str]) -> list[str]:
    """The CVE ids an advisory names, by its id and aliases, sorted."""
    found = set()
    for text in (identifier, *aliases):
        match = CVE_IN_ID.search(str(text))
        if match:
            found.add(match.group())
    return sorted(found)


def _cves_of_advisories(ids: list[str]) -> dict[str, list[str]]:
    named = {}
    for chunk in _chunks(ids):
        for osv_id, aliases in Advisory.objects.filter(osv_id__in=chunk).values_list(
            "osv_id", "aliases"
        ):
            named[osv_id] = cves_named(osv_id, aliases or ())
    return named


def _findings(ids: list[str]) -> list[_Row]:
    """The latest evaluations' rows of these advisories that are KEV-listed or overdue, with
    their hosts (one query per chunk of advisories)."""
    latest = Host.objects.filter(latest_evaluation__isnull=False).values("latest_evaluation")
    rows = []
    for chunk in _chunks(ids):
        rows += _rows(
            Vulnerability.objects.filter(advisory__in=chunk, evaluation_id__in=latest).filter(
                RAISED
            )
        )
    return rows


def _rows(vulnerabilities) -> list[_Row]:
    """These vulnerability rows with their hosts, as findings (one query)."""
    return [
        _Row(*values)
        for values in vulnerabilities.values_list(
            "evaluation__evidence__host_id",
            "evaluation__evidence__host__organisation_id",
            "evaluation__evidence__host__hostname",
            "evaluation__catalogue_version",
            "evaluation__evaluated_at",
            "package",
            "installed_version",
            "advisory",
            "fixed_version",
            "severity",
            "cvss",
            "fix_published",
            "days_since_fix",
            "overdue",
        ).order_by("evaluation_id", "package", "advisory")
    ]


def _catalogue_versions() -> list[str]:
    from mamori.catalogue.models import Catalogue

    return ["", *Catalogue.objects.values_list("version", flat=True)]


def _kev_entries(cves: set[str]) -> dict[str, dict]:
    found = {}
    for chunk in _chunks(sorted(cves)):
        for entry in KevEntry.objects.filter(cve__in=chunk).values(
            "cve", "vendor", "product", "name", "date_added", "due_date", "known_ransomware"
        ):
            found[entry["cve"]] = entry
    return found


def _scores(cves: set[str]) -> dict[str, tuple[float, float]]:
    found = {}
    for chunk in _chunks(sorted(cves)):
        for cve, epss, percentile in EpssScore.objects.filter(cve__in=chunk).values_list(
            "cve", "epss", "percentile"
        ):
            found[cve] = (epss, percentile)
    return found


@dataclass(frozen=True)
class _Deadlines:
    patch_days: int
    kev_patch_days: int
    cvss_threshold: float


def _deadlines(versions: set[str]) -> dict[str, _Deadlines]:
    """The deadlines each catalogue version sets (the one a host was evaluated with)."""
    from mamori.catalogue.models import Catalogue
    from mamori.verification.evaluation import effective_settings
    from mamori.verification.services.evaluations import bundled_settings

    stored = dict(
        Catalogue.objects.filter(version__in=[v for v in versions if v]).values_list(
            "version", "settings"
        )
    )
    found = {}
    for version in versions:
        values = stored.get(version)
        if values is None:
            values = bundled_settings().values
        settings = effective_settings(values)
        found[version] = _Deadlines(
            int(settings["patch_days"]),
            int(settings["kev_patch_days"]),
            float(settings["cvss_threshold"]),
        )
    return found


def kev_due_date(fix_published: dt.date | None, date_added: dt.date, kev_days: int) -> dt.date:
    """The scheme's KEV rule: the fix within ``kev_days`` of its release; an entry listed
    later than that is due the day it was listed ("apply at once"). Without a released fix the
    days count from the listing (the vendor's workaround meanwhile)."""
    start = fix_published or date_added
    return max(start + dt.timedelta(days=kev_days), date_added)


def end_of_day(day: dt.date) -> dt.datetime:
    """The end of ``day`` in the scheme's time zone (JST): a deadline day is a whole day."""
    return timezone.make_aware(
        dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min),
        timezone.get_default_timezone(),
    )


def _severity(rating: str | None, cvss: float | None) -> str:
    """Overdue findings are serious by the 14-day rule (high, critical, a CVSS score over the
    threshold, or unrated): critical when rated or scored so, high otherwise."""
    if rating == "critical" or (cvss is not None and cvss >= 9.0):
        return Severity.CRITICAL
    return Severity.HIGH


def _sighting(
    row: _Row,
    cve: str,
    entry: dict | None,
    score: tuple[float, float] | None,
    deadlines: dict[str, _Deadlines],
    seen_at: dt.datetime,
    templates: dict[str, dict[str, str]],
) -> alerts.Sighting:
    rules = deadlines[row.catalogue_version]
    finding = {
        "host": row.hostname,
        "package": row.package,
        "installed_version": row.installed_version,
        "fixed_version": row.fixed_version,
        "advisory": row.advisory,
        "cve": cve or None,
        "severity": row.severity,
        "cvss": row.cvss,
        "fix_published": row.fix_published.isoformat() if row.fix_published else None,
        "days_since_fix": row.days_since_fix,
        "overdue": row.overdue,
        "catalogue": row.catalogue_version,
    }
    kev_due = due_at = None
    if entry is not None:
        kev_due = kev_due_date(row.fix_published, entry["date_added"], rules.kev_patch_days)
        due_at = end_of_day(kev_due)
        finding["kev"] = {
            "cve": cve,
            "vendor": entry["vendor"],
            "product": entry["product"],
            "name": entry["name"],
            "date_added": entry["date_added"].isoformat(),
            "cisa_due_date": entry["due_date"].isoformat() if entry["due_date"] else None,
            "known_ransomware": entry["known_ransomware"],
            "kev_patch_days": rules.kev_patch_days,
            "due": kev_due.isoformat(),
        }
    else:
        finding["patch_days"] = rules.patch_days
    finding["remediation"] = remediation(finding, templates)
    return alerts.Sighting(
        organisation_id=row.organisation_id,
        type=AlertType.SOFTWARE_VULNERABILITY,
        # One alert per host, package and CVE (the advisory where it names none): two sources'
        # advisories of one CVE are one alert, and a CVE listed in KEV later is the same alert.
        key=alerts.alert_key(
            AlertType.SOFTWARE_VULNERABILITY, row.host_id, row.package, cve or row.advisory
        ),
        category=CATEGORY,
        seen_at=seen_at,
        severity=Severity.CRITICAL if entry is not None else _severity(row.severity, row.cvss),
        control=SECURITY_UPDATE_MANAGEMENT,
        host_id=row.host_id,
        hostname=row.hostname,
        cve=cve,
        advisory=row.advisory,
        package=row.package,
        installed_version=row.installed_version,
        kev=entry is not None,
        kev_due=kev_due,
        epss=score[0] if score else None,
        epss_percentile=score[1] if score else None,
        evidence=finding,
        due_at=due_at,
    )


REMEDIATION_LANGUAGES = ("ja", "en")
# What to do, by the finding's kind; translated once per raise, not once per alert.
KEV_UNFIXED = gettext_noop(
    "No fix for %(cve)s in %(package)s on %(host)s has been released yet, and it is being "
    "exploited (CISA KEV). Apply the vendor's workaround, or take the affected service off the "
    "network until the fix is out."
)
KEV_FIXED = gettext_noop(
    "Install %(package)s %(fixed)s or later on %(host)s. %(cve)s is being exploited (CISA KEV); "
    "the scheme requires its fix within %(days)s days of release, by %(due)s."
)
OVERDUE = gettext_noop(
    "Install %(package)s %(fixed)s or later on %(host)s. The fix for %(cve)s was released "
    "%(days)s days ago, past the scheme's deadline of %(limit)s days."
)

REMEDIATION_TEXTS = {"kev_unfixed": KEV_UNFIXED, "kev": KEV_FIXED, "overdue": OVERDUE}


def remediation_templates() -> dict[str, dict[str, str]]:
    """The remediation texts in each language, from the translation catalogue."""
    texts = {}
    for language in REMEDIATION_LANGUAGES:
        with translation.override(language):
            texts[language] = {name: _(text) for name, text in REMEDIATION_TEXTS.items()}
    return texts


def remediation(finding: dict, templates: dict | None = None) -> dict[str, str]:
    """What to do about a finding, in Japanese and English."""
    templates = templates or remediation_templates()
    named = finding["cve"] or finding["advisory"]
    kev = finding.get("kev")
    params = {
        "package": finding["package"],
        "fixed": finding["fixed_version"] or "",
        "host": finding["host"],
        "cve": named,
    }
    if kev is not None and not finding["fixed_version"]:
        which = "kev_unfixed"
    elif kev is not None:
        which = "kev"
        params.update(days=kev["kev_patch_days"], due=kev["due"])
    else:
        which = "overdue"
        params.update(days=finding["days_since_fix"], limit=finding["patch_days"])
    return {language: texts[which] % params for language, texts in templates.items()}
