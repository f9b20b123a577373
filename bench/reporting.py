"""Board reporting (issue 12) at sector scale on PostgreSQL: two years of daily metric samples
for 600 organisations, the sector dashboard, one board pack, and the nightly sampling.

Builds ``mamori_bench_reporting`` (dropped and recreated, so the name must contain "bench";
``--reuse`` keeps it) with, generated from a fixed seed:

- 600 fictitious applicants (bank, shinkin bank, credit cooperative, insurer, securities firm,
  IT vendor; names ending in （架空） / (fictitious)), each with an administrator (the sampler
  samples organisations with an applicant member only), and the secretariat (scheme owner), a
  supervisor (observer) and a certification body; certificates of yearly cycles (some lapse);
- each applicant's two years as a storyline (``Story``): 10 hosts rolled out over the first
  year, controls slipping now and then, vulnerabilities arriving every day and fixed at the
  organisation's patch rounds (KEV-listed ones faster), early-warning alerts acknowledged and
  mitigated, a supply graph for a tenth of them (``supplychain.services.import_graph``), board
  meetings. Every day of it goes through the sampler's own ``metrics.compute``: 730 days x 600
  applicants x 22 metrics = 9.6 M ``MetricSample`` rows and 730 ``DaySeal`` rows, written
  with PostgreSQL COPY (the table's secondary indexes and foreign key are dropped for the load
  and made again after it). The histories the nightly run keeps are loaded to match: the
  vulnerability episodes of the two years (``VulnerabilityEpisode``), the graph versions, the
  alerts with their events;
- the day after the 730: each host's check-in (an ``Evidence`` and its ``Evaluation`` with the
  vulnerabilities open on it that day, ~7 per host), a few re-match ``VerdictChange`` rows.

Then it measures (median and spread where a step is repeated; load average printed):

1. the load itself: time and table sizes;
2. the nightly sampling of that day in a separate process, as the worker runs it, with the
   clock just after midnight: ``sampling.sample(day, record_history=True)`` (records the
   episodes and graph versions, computes every organisation's metrics, writes and seals the
   samples, audits the seal), split into record_day / compute / write, its query count and
   peak RSS; then recomputing the sealed day three times (``sampling.compute``);
3. the sector dashboard ``GET /reporting/sector/`` as the observer (MFA passed) on the latest
   day: the first request of the quarter (it forms and stores the peer cohorts) and warm
   requests; ``benchmark.dashboard()`` and ``benchmark.positions_for()`` alone;
4. a board pack for the last finished quarter: compose (samples read + ``pack.compose``), then
   ``render.pdf`` / ``render.xlsx`` in Japanese and English; and ``services.make_pack`` end to
   end (what the page's request waits for: the files are left to the worker).

``--reuse`` measures again on the last run's database: the sampled day is the next one (the
samples of a day are written once), with that day's check-ins loaded first. Results go to
``bench/results/reporting.json``. Run it as bench/README.md says (``make bench-reporting``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

import benchdb  # bench/benchdb.py: the scripts run from bench/, which is on sys.path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/mamori_bench_reporting"
RESULTS_FILE = ROOT / "bench" / "results" / "reporting.json"
SEED = "mamori-bench-reporting-1"
JST = dt.timezone(dt.timedelta(hours=9))
# Days the storyline runs on past the 730 seeded days: how many --reuse runs the data allows.
EXTRA_DAYS = 120

DASHBOARD_TARGET_MS = 300.0
PACK_TARGET_S = 5.0
SAMPLING_TARGET_S = 60.0

# The working group's categories, with how many of the 600 applicants each has.
CATEGORIES = (
    ("bank", 0.20, "銀行", "Bank"),
    ("shinkin_bank", 0.25, "信用金庫", "Shinkin Bank"),
    ("credit_cooperative", 0.13, "信用組合", "Credit Cooperative"),
    ("insurer", 0.15, "保険", "Insurance"),
    ("securities", 0.14, "証券", "Securities"),
    ("it_vendor", 0.13, "システムズ", "Systems"),
)
PACKAGES = (
    "openssl", "linux", "glibc", "curl", "openssh", "nginx", "postgresql-15", "python3.11",
    "sudo", "systemd", "zlib", "libxml2", "bind9", "git", "vim", "expat", "krb5", "tiff",
    "samba", "apache2", "libwebp", "xz-utils", "perl", "gnutls28", "sqlite3",
)  # fmt: skip
# severity, share, CVSS
SEVERITIES = (
    ("critical", 0.05, 9.4),
    ("high", 0.22, 7.8),
    ("medium", 0.45, 5.5),
    ("low", 0.23, 3.1),
    ("unknown", 0.05, None),
)
# alert type, share, category
ALERT_KINDS = (
    ("exposure", 0.40, "open_rdp"),
    ("network_abuse", 0.25, "botnet_drone"),
    ("incident", 0.10, "sinkhole_http"),
    ("software_vulnerability", 0.20, "kev_listed"),
    ("supplier_exposure", 0.05, "supplier_notice"),
)


def configure_environment() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mamori.settings")
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("SECRET_KEY", "bench-only-key-0123456789abcdefghijklmnopqrstuvwxyz")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
    os.environ.setdefault("MAMORI_VAR_DIR", str(ROOT / "var" / "bench-reporting"))
    os.environ.setdefault("MAMORI_LOG_LEVEL", "WARNING")
    # Tasks run in this process, as on the embedded (broker-less) default.
    os.environ.pop("CELERY_BROKER_URL", None)


def check_database() -> dict:
    return benchdb.check_database("mamori_bench_reporting")


def days_between(first: dt.date, last: dt.date):
    day = first
    while day <= last:
        yield day
        day += dt.timedelta(days=1)


def at(day: dt.date, hour: int = 0, minute: int = 0) -> dt.datetime:
    """``day`` at ``hour``:``minute`` in Japan (minutes may run past 59)."""
    return dt.datetime.combine(day, dt.time(), tzinfo=JST) + dt.timedelta(
        hours=hour, minutes=minute
    )


def poisson(rng: random.Random, rate: float) -> int:
    limit = math.exp(-rate)
    count, product = 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def pick(rng: random.Random, table) -> tuple:
    roll, total = rng.random(), 0.0
    for row in table:
        total += row[1]
        if roll < total:
            return row
    return table[-1]


def summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
    return {
        "runs": len(ordered),
        "median": round(statistics.median(ordered), 4),
        "p90": round(p90, 4),
        "min": round(ordered[0], 4),
        "max": round(ordered[-1], 4),
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- The storyline ------------------------------------------------------------------------------


class Episode:
    """One vulnerability on one host of the storyline; ``metrics.compute`` reads it as a
    ``metrics.Episode`` (same attribute names)."""

    __slots__ = (
        "advisory",
        "closed_on",
        "cvss",
        "fix_published",
        "host",
        "kev",
        "kev_on",
        "opened_on",
        "overdue_on",
        "package",
        "severity",
    )  # fmt: skip

    def __init__(self, host, package, advisory, severity, cvss, kev, fix_published, opened_on,
                 closed_on, overdue_on):  # fmt: skip
        self.host = host
        self.package = package
        self.advisory = advisory
        self.severity = severity
        self.cvss = cvss
        self.kev = kev
        self.fix_published = fix_published
        self.opened_on = opened_on
        self.closed_on = closed_on
        self.kev_on = opened_on if kev else None
        self.overdue_on = overdue_on


class StoryAlert:
    __slots__ = ("acknowledged", "category", "mitigated", "raised", "serial", "type")

    def __init__(self, serial, kind, category, raised, acknowledged, mitigated):
        self.serial = serial
        self.type = kind
        self.category = category
        self.raised = raised
        self.acknowledged = acknowledged
        self.mitigated = mitigated


class Story:
    """One applicant's two years, decided by its own random stream (so the same for every
    run): how strong it is, when its hosts arrive and go quiet, which controls slip when, its
    patch rounds, every vulnerability found (host, package, advisory, severity, KEV, the day it
    is fixed), its alerts, certificates, supply graph and board meetings."""

    HOSTS = 10

    def __init__(self, index: int, category: str, first: dt.date, last: dt.date, checkin_days: int,
                 hosts: int = HOSTS, graph: dict | None = None):  # fmt: skip
        from mamori.reporting import metrics, supply

        rng = random.Random(f"{SEED}:{index}")
        self.rng = rng
        self.index = index
        self.first = first
        self.checkin_days = checkin_days
        span = (last - first).days
        s = 0.55 + 0.45 * rng.betavariate(4, 2)
        if category == "it_vendor":
            s *= 0.95
        self.strength = s
        self.hosts = hosts
        self.host_from = [
            first + dt.timedelta(days=0 if j < max(1, hosts * 6 // 10) else rng.randint(20, 400))
            for j in range(hosts)
        ]
        out_of_scope = rng.random() < 0.2
        self.in_scope = [not (out_of_scope and j == hosts - 1) for j in range(hosts)]
        self.checkin_minute = [60 + (index * 7 + j * 13) % 240 for j in range(hosts)]
        # Hosts that go quiet for a while (agent broken, host rebuilt): shorter and rarer in a
        # well-run organisation.
        self.silences: list[list[tuple[dt.date, dt.date]]] = []
        for _j in range(hosts):
            spells, day = [], first
            while day <= last:
                day += dt.timedelta(days=int(rng.expovariate(1 / (240 if s > 0.8 else 110))) + 1)
                length = rng.randint(3, 15)
                spells.append((day, day + dt.timedelta(days=length - 1)))
                day += dt.timedelta(days=length)
            self.silences.append(spells)
        self.base = {c: min(1.0, s + rng.uniform(-0.04, 0.1)) for c in metrics.CONTROLS}
        # A control slips for a while (a new build without the scanner, a firewall rule undone).
        self.slips = []
        for _n in range(poisson(rng, 3 * (1.05 - s))):
            start = first + dt.timedelta(days=rng.randint(0, span))
            self.slips.append(
                (
                    start,
                    start + dt.timedelta(days=rng.randint(20, 120)),
                    rng.choice(metrics.CONTROLS),
                    rng.uniform(0.15, 0.45),
                )
            )
        self.patch_every = 14 if s >= 0.85 else (21 if s >= 0.7 else 35)
        self.patch_offset = rng.randrange(self.patch_every)
        self.fix_rate = 0.55 + 0.4 * s
        self.arrival_rate = 0.9 * (1.45 - s)  # new findings per host and day
        self.alert_rate = 0.01 + 0.05 * (1 - s)
        # Certificates: yearly cycles, renewed a little early, sometimes lapsing for weeks.
        self.certificates: list = []
        never = rng.random() < 0.08
        issued = first + dt.timedelta(days=rng.randint(-330, 120))
        level = "PLUS" if rng.random() < 0.15 else "CE"
        while not never and issued <= last:
            expires = issued + dt.timedelta(days=364)
            self.certificates.append(metrics.Certificate(level, issued, expires, None))
            if rng.random() < 0.12 * (1.3 - s):
                issued = expires + dt.timedelta(days=rng.randint(15, 90))
            else:
                issued = expires - dt.timedelta(days=rng.randint(0, 30))
        graph_from = first + dt.timedelta(days=rng.randint(0, min(330, span)))
        self.graph_from = graph_from if graph is not None else None
        self.supply = supply.figures(graph) if graph is not None else None
        self.meetings: list[dt.date] = []
        board = rng.random() < 0.6
        quarter_end = dt.date(first.year, 3 * ((first.month - 1) // 3) + 1, 1)
        while quarter_end <= last:
            following = dt.date(
                quarter_end.year + (quarter_end.month == 10), (quarter_end.month + 2) % 12 + 1, 1
            )
            meeting = following + dt.timedelta(days=rng.randint(25, 60))
            if board:
                self.meetings.append(meeting)
            quarter_end = following
        self.serial = 0
        self.alert_serial = 0
        self.episodes: list[Episode] = []  # open, or closed within the remediation window
        self.alerts: list[StoryAlert] = []  # open, or handled within the alert window
        self.new_episodes: list[Episode] = []
        self.new_alerts: list[StoryAlert] = []
        self._verdicts: dict = {}

    # -- what happens on a day

    def silent(self, j: int, day: dt.date) -> tuple[dt.date, dt.date] | None:
        for spell in self.silences[j]:
            if spell[0] > day:
                return None
            if spell[0] <= day <= spell[1]:
                return spell
        return None

    def present(self, day: dt.date) -> list[int]:
        return [j for j in range(self.hosts) if self.host_from[j] <= day]

    def _next_patch(self, after: dt.date) -> dt.date:
        offset = ((after - self.first).days - self.patch_offset) % self.patch_every
        return after + dt.timedelta(days=(self.patch_every - offset) % self.patch_every)

    def advance(self, day: dt.date) -> None:
        """The day's new findings and alerts (appended to ``new_episodes`` / ``new_alerts``)."""
        rng = self.rng
        working = [j for j in self.present(day) if self.silent(j, day) is None]
        for _n in range(poisson(rng, self.arrival_rate * len(working))):
            j = rng.choice(working) if working else 0
            severity, _share, cvss = pick(rng, SEVERITIES)
            kev = severity in ("critical", "high") and rng.random() < 0.03
            if kev:  # fixed out of band, quickly in a well-run organisation
                lasting = (
                    rng.randint(1, 4)
                    if self.strength >= 0.85
                    else rng.randint(2, int(8 + 60 * (1 - self.strength)))
                )
                closed = day + dt.timedelta(days=lasting)
            else:  # at a patch round, or one of the next ones
                closed = self._next_patch(day + dt.timedelta(days=2))
                while rng.random() > self.fix_rate:
                    closed += dt.timedelta(days=self.patch_every)
            fix = day - dt.timedelta(days=rng.randint(0, 10)) if rng.random() < 0.9 else None
            overdue = (
                max(fix + dt.timedelta(days=15), day)
                if fix is not None and severity in ("critical", "high")
                else None
            )
            self.serial += 1
            episode = Episode(
                j, rng.choice(PACKAGES), f"CVE-{day.year}-{self.index:03d}{self.serial:05d}",
                severity, cvss, kev, fix, day, closed, overdue,
            )  # fmt: skip
            self.episodes.append(episode)
            self.new_episodes.append(episode)
        for _n in range(poisson(rng, self.alert_rate)):
            kind, _share, category = pick(rng, ALERT_KINDS)
            raised = at(day, 12) + dt.timedelta(minutes=rng.randint(0, 300))
            hours = rng.expovariate(1 / (2 + 30 * (1 - self.strength)))
            acknowledged = raised + dt.timedelta(hours=hours) if rng.random() > 0.04 else None
            mitigated = (
                acknowledged + dt.timedelta(days=rng.uniform(0.5, 12))
                if acknowledged is not None and rng.random() > 0.1
                else None
            )
            self.alert_serial += 1
            alert = StoryAlert(self.alert_serial, kind, category, raised, acknowledged, mitigated)
            self.alerts.append(alert)
            self.new_alerts.append(alert)
        if day.weekday() == 0:  # drop what no metric of the day reads any more
            window = day - dt.timedelta(days=92)
            self.episodes = [e for e in self.episodes if e.closed_on > window]
            horizon = at(day) - dt.timedelta(days=32)
            self.alerts = [a for a in self.alerts if a.mitigated is None or a.mitigated > horizon]

    # -- the state at the end of a day

    def share(self, control: str, day: dt.date) -> float:
        value = self.base[control]
        for start, end, slipped, drop in self.slips:
            if slipped == control and start <= day <= end:
                value -= drop
        return min(1.0, max(0.0, value))

    def host_states(self, day: dt.date) -> list[tuple[int, bool, dt.datetime, dict]]:
        """(host, in scope, last check-in, verdicts) of each host present on the day."""
        from mamori.reporting import metrics

        present = self.present(day)
        in_scope = [j for j in present if self.in_scope[j]]
        passing = {c: round(len(in_scope) * self.share(c, day)) for c in metrics.CONTROLS}
        states = []
        rank = 0
        for j in present:
            spell = self.silent(j, day)
            seen = spell[0] - dt.timedelta(days=1) if spell else day
            last = at(seen, 0, self.checkin_minute[j])
            if self.in_scope[j]:
                key = tuple(rank < passing[c] for c in metrics.CONTROLS)
                rank += 1
            else:
                key = (True,) * len(metrics.CONTROLS)
            verdicts = self._verdicts.get(key)
            if verdicts is None:
                verdicts = {
                    c: "pass" if ok else "fail" for c, ok in zip(metrics.CONTROLS, key, strict=True)
                }
                self._verdicts[key] = verdicts
            states.append((j, self.in_scope[j], last, verdicts))
        return states

    def inputs(self, day: dt.date, end: dt.datetime):
        from mamori.reporting import metrics

        hosts = [
            metrics.HostDay(in_scope, last, verdicts)
            for _j, in_scope, last, verdicts in self.host_states(day)
        ]
        lives = []
        for alert in self.alerts:
            if alert.raised >= end:
                continue
            acknowledged = (
                alert.acknowledged if alert.acknowledged and alert.acknowledged < end else None
            )
            mitigated = alert.mitigated if alert.mitigated and alert.mitigated < end else None
            state = "mitigated" if mitigated else ("acknowledged" if acknowledged else "new")
            lives.append(
                metrics.AlertLife(alert.type, alert.raised, state, acknowledged, mitigated)
            )
        meetings = [m for m in self.meetings if m <= day]
        return metrics.DayInputs(
            day=day,
            end=end,
            checkin_days=self.checkin_days,
            certificates=self.certificates,
            hosts=hosts,
            episodes=self.episodes,
            alerts=lives,
            supply=self.supply if self.graph_from is not None and self.graph_from <= day else None,
            board_review=meetings[-1].isoformat() if meetings else None,
        )

    def open_on(self, day: dt.date) -> list[Episode]:
        return [e for e in self.episodes if e.opened_on <= day < e.closed_on]


def graph_document(index: int) -> dict:
    """A small supply graph: two critical services on a shared data centre, cloud, software
    vendor and carrier (shared between organisations, so the sector has hot spots)."""
    return {
        "schema": "mamori.supplygraph/1",
        "nodes": [
            {"id": "core", "entity": f"bench-self-{index}", "name": "勘定系システム",
             "name_en": "Core banking", "country": "JP", "critical": True, "certified": True,
             "disclosure": "full"},
            {"id": "net", "entity": f"bench-self-{index}", "name": "インターネットバンキング",
             "name_en": "Internet banking", "country": "JP", "critical": True,
             "certified": True, "disclosure": "full"},
            {"id": "dc", "entity": f"bench-dc-{index % 4}", "name": f"データセンター{index % 4}",
             "country": "JP", "critical": False, "certified": index % 3 == 0,
             "disclosure": "full"},
            {"id": "cloud", "entity": f"bench-cloud-{index % 3}", "name": f"クラウド{index % 3}",
             "country": "JP", "critical": False, "certified": True, "disclosure": "partial"},
            {"id": "vendor", "entity": f"bench-vendor-{index % 5}",
             "name": f"ソフトウェア会社{index % 5}", "country": "JP", "critical": False,
             "certified": index % 2 == 0, "disclosure": "none" if index % 4 else "full"},
            {"id": "telecom", "entity": f"bench-telecom-{index % 2}", "name": f"通信{index % 2}",
             "country": "JP", "critical": False, "certified": False, "disclosure": "partial"},
            {"id": "power", "entity": "bench-power", "name": "電力会社", "country": "JP",
             "critical": False, "certified": False, "disclosure": "none"},
        ],
        "requirements": [
            {"node": "core", "need": "hosting", "providers": ["dc"]},
            {"node": "core", "need": "software", "providers": ["vendor"]},
            {"node": "core", "need": "backup", "providers": ["dc", "cloud"]},
            {"node": "net", "need": "hosting", "providers": ["cloud"]},
            {"node": "net", "need": "connectivity", "providers": ["telecom"]},
            {"node": "dc", "need": "power", "providers": ["power"]},
        ],
    }  # fmt: skip


# --- The world: organisations, people, certificates, hosts, graphs ----------------------------


class World:
    """The benchmark's organisations and hosts, by storyline index (read back on --reuse)."""

    def __init__(self, organisations, categories, hosts, observer, owner, others):
        self.organisations = organisations  # index -> pk
        self.categories = categories  # index -> category
        self.hosts = hosts  # (index, j) -> pk
        self.observer = observer
        self.owner = owner
        self.others = others  # pks of the non-applicant organisations

    @property
    def graph_indexes(self) -> list[int]:
        return [i for i in range(len(self.organisations)) if i % 10 == 0]

    @classmethod
    def read(cls) -> World:
        from mamori.accounts.models import User
        from mamori.organisations.models import Organisation
        from mamori.verification.models import Host

        rows = list(
            Organisation.objects.filter(name_en__startswith="Bench ")
            .order_by("pk")
            .values_list("pk", "category")
        )
        organisations = [pk for pk, _c in rows]
        index_of = {pk: i for i, pk in enumerate(organisations)}
        hosts = {}
        for pk, organisation_id, hostname in Host.objects.filter(
            organisation_id__in=organisations
        ).values_list("pk", "organisation_id", "hostname"):
            hosts[(index_of[organisation_id], int(hostname.rsplit("-", 1)[1]))] = pk
        others = list(
            Organisation.objects.exclude(pk__in=organisations).values_list("pk", flat=True)
        )
        return cls(
            organisations,
            [c for _pk, c in rows],
            hosts,
            User.objects.get(username="bench-observer"),
            User.objects.get(username="bench-owner"),
            others,
        )


def create_world(count: int, hosts_per: int, first: dt.date, last: dt.date) -> tuple[World, list]:
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from mamori.accounts.models import User
    from mamori.assessments.models import Assessment
    from mamori.catalogue.services import current_catalogue, load_bundled
    from mamori.certificates.models import Certificate
    from mamori.core.bulk import insert_rows
    from mamori.organisations.models import Category, Membership, Organisation, Role
    from mamori.supplychain.services import export_graph, import_graph
    from mamori.verification.models import Host, identity_key
    from mamori.verification.services.assurance import checkin_days

    load_bundled()
    catalogue = current_catalogue()
    created = at(first - dt.timedelta(days=30), 9)
    rng = random.Random(f"{SEED}:categories")
    categories = []
    for category, share, _ja, _en in CATEGORIES:
        categories += [category] * round(share * count)
    categories = (categories + [CATEGORIES[0][0]] * count)[:count]
    rng.shuffle(categories)
    labels = {c: (ja, en) for c, _s, ja, en in CATEGORIES}
    serials: Counter = Counter()
    applicants = []
    for category in categories:
        serials[category] += 1
        ja, en = labels[category]
        applicants.append(
            Organisation(
                name_ja=f"ベンチ{ja}{serials[category]:03d}（架空）",
                name_en=f"Bench {en} {serials[category]:03d} (fictitious)",
                category=category,
            )
        )
    with transaction.atomic():
        applicants = Organisation.objects.bulk_create(applicants)
        secretariat, regulator, body = Organisation.objects.bulk_create(
            [
                Organisation(name_ja="ベンチ事務局（架空）", name_en="Secretariat (fictitious)",
                             category=Category.INDUSTRY_ASSOCIATION),
                Organisation(name_ja="ベンチ監督当局（架空）", name_en="Supervisor (fictitious)",
                             category=Category.GOVERNMENT),
                Organisation(name_ja="ベンチ認証機関（架空）",
                             name_en="Certification Body (fictitious)",
                             category=Category.CERTIFICATION_BODY),
            ]
        )  # fmt: skip
        Organisation.objects.update(created_at=created, updated_at=created)
        # Each applicant takes part through its administrator (the sampler samples only
        # organisations with an applicant member).
        admins = User.objects.bulk_create(
            User(username=f"bench-admin-{i:03d}", email=f"bench-admin-{i:03d}@example.jp",
                 display_name=f"bench-admin-{i:03d}", password=make_password(None))
            for i in range(count)
        )  # fmt: skip
        Membership.objects.bulk_create(
            Membership(user=admin, organisation=organisation, role=Role.APPLICANT_ADMIN)
            for admin, organisation in zip(admins, applicants, strict=True)
        )
        Membership.objects.update(created_at=created, updated_at=created)
        people = {}
        for username, organisation, role in (
            ("bench-owner", secretariat, Role.SCHEME_OWNER),
            ("bench-observer", regulator, Role.OBSERVER),
            ("bench-assessor", body, Role.ASSESSOR),
        ):
            user = User.objects.create_user(
                username=username, email=f"{username}@example.jp", display_name=username
            )
            Membership.objects.create(user=user, organisation=organisation, role=role)
            TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
            people[username] = user
    window = checkin_days()
    stories = [
        Story(i, categories[i], first, last, window, hosts_per,
              graph_document(i) if i % 10 == 0 else None)
        for i in range(count)
    ]  # fmt: skip
    assessor = people["bench-assessor"]
    with transaction.atomic():
        assessments, certificates = [], []
        for i, story in enumerate(stories):
            for n, cycle in enumerate(story.certificates):
                decided = at(cycle.issued_on, 10)
                assessments.append(
                    Assessment(
                        organisation=applicants[i], catalogue=catalogue, certification_body=body,
                        assessor=assessor, level="CE", state="passed", started_by=assessor,
                        complete_by=cycle.issued_on, submitted_at=decided - dt.timedelta(days=20),
                        decided_at=decided,
                    )
                )  # fmt: skip
                certificates.append(
                    Certificate(
                        number=f"BENCH-{applicants[i].pk:05d}-{n}",
                        organisation=applicants[i], certification_body=body,
                        organisation_name_ja=applicants[i].name_ja,
                        organisation_name_en=applicants[i].name_en, level=cycle.level,
                        scope_text="組織全体", catalogue_version=catalogue.version,
                        issued_on=cycle.issued_on, expires_on=cycle.expires_on, issued_by=assessor,
                    )
                )  # fmt: skip
        assessments = Assessment.objects.bulk_create(assessments, batch_size=1000)
        for assessment, certificate in zip(assessments, certificates, strict=True):
            certificate.assessment = assessment
        Certificate.objects.bulk_create(certificates, batch_size=1000)
        host_rows, keys = [], []
        for i, story in enumerate(stories):
            for j in range(hosts_per):
                hostname = f"o{i:03d}-srv-{j:02d}"
                seen = at(story.host_from[j], 0, 30)
                host_rows.append(
                    Host(
                        organisation_id=applicants[i].pk, hostname=hostname,
                        identity=identity_key("", hostname), os_pretty_name="Debian GNU/Linux 12 (bookworm)",
                        os_id="debian", os_version="12", architecture="amd64", first_seen=seen,
                        last_seen=seen, in_scope=story.in_scope[j],
                    )
                )  # fmt: skip
                keys.append((i, j))
        insert_rows(Host, host_rows, with_ids=True)
    graphs = {}
    for i in range(0, count, 10):
        import_graph(applicants[i], graph_document(i))
        graphs[i] = export_graph(applicants[i])
    # The storyline's supply figures from the graph as stored (what the sampler will read).
    for i, document in graphs.items():
        from mamori.reporting import supply

        stories[i].supply = supply.figures(document)
    world = World(
        [o.pk for o in applicants],
        categories,
        {key: host.pk for key, host in zip(keys, host_rows, strict=True)},
        people["bench-observer"],
        people["bench-owner"],
        [secretariat.pk, regulator.pk, body.pk],
    )
    world.graph_documents = graphs
    return world, stories


# --- Loading the samples and histories with COPY ------------------------------------------------


@contextmanager
def without_secondary_indexes(model):
    """Drop the table's foreign keys, unique constraints and secondary indexes for a bulk load
    and make them again afterwards from their own definitions (one sort each instead of
    millions of index insertions and deferred foreign-key checks)."""
    from django.db import connection

    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('u', 'f')",
            [table],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
            [table, table],
        )
        indexes = cursor.fetchall()
        for name, _definition in constraints:
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for _name, definition in indexes:
            cursor.execute(definition)
        for name, definition in constraints:
            cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def copy_text(value) -> str:
    """A value in COPY's text format (dates, numbers, None as \\N; no tabs or newlines here)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value)


def load_history(world: World, stories: list[Story], first: dt.date, last: dt.date,
                 through: dt.date) -> dict:  # fmt: skip
    """Every day of the storyline from ``first`` to ``last``: each organisation's metrics with
    ``metrics.compute`` into ``MetricSample`` (COPY) and the day's ``DaySeal``; the vulnerability
    episodes, graph versions and alerts of those days as the nightly run would have kept them.
    The stories then go on to ``through`` (the day the benchmark samples)."""
    import orjson
    from django.db import connection, transaction

    from mamori.earlywarning.sector import bounds
    from mamori.reporting import metrics
    from mamori.reporting.models import (
        DaySeal,
        GraphVersion,
        LedgerDay,
        MetricSample,
        VulnerabilityEpisode,
    )

    figures: dict = {}
    organisations = world.organisations
    metric_bytes = [key.encode() for key in metrics.METRIC_KEYS]
    constants: dict = {}

    def encoded(value) -> bytes:
        if value is None:
            return b"\\N"
        if isinstance(value, dict):
            return orjson.dumps(value)
        try:
            found = constants.get(value)
        except TypeError:
            return orjson.dumps(value)
        if found is None:
            found = constants[value] = orjson.dumps(value)
        return found

    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    # The episodes wait in a file while the samples' COPY holds the connection.
    episodes_file = tempfile.TemporaryFile()  # noqa: SIM115 - closed after the second COPY
    seals = []
    alerts: list[tuple[int, StoryAlert]] = []
    started = time.perf_counter()
    compute_s = 0.0
    rows = 0
    total_days = (last - first).days + 1
    with without_secondary_indexes(MetricSample), transaction.atomic():
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(
                "COPY reporting_metricsample (organisation_id, day, metric, value) FROM STDIN"
            ) as copy,
        ):
            for number, day in enumerate(days_between(first, last), start=1):
                end = bounds(day)[1]
                day_text = day.isoformat().encode()
                digests = {}
                chunk = []
                mark = time.perf_counter()
                for i, story in enumerate(stories):
                    story.advance(day)
                    values = metrics.compute(story.inputs(day, end))
                    pk = organisations[i]
                    digests[pk] = metrics.organisation_digest(values)
                    prefix = b"%d\t%s\t" % (pk, day_text)
                    for key, value in zip(metric_bytes, values.values(), strict=True):
                        chunk.append(prefix + key + b"\t" + encoded(value) + b"\n")
                    for e in story.new_episodes:
                        closed = e.closed_on if e.closed_on <= last else None
                        episodes_file.write(
                            "\t".join(
                                copy_text(v)
                                for v in (
                                    pk, world.hosts[(i, e.host)], e.package, e.advisory,
                                    e.severity, e.opened_on, closed, e.kev_on, e.overdue_on,
                                )
                            ).encode()
                            + b"\n"
                        )  # fmt: skip
                    story.new_episodes.clear()
                    alerts += [(i, a) for a in story.new_alerts]
                    story.new_alerts.clear()
                compute_s += time.perf_counter() - mark
                copy.write(b"".join(chunk))
                rows += len(chunk)
                seals.append(
                    DaySeal(
                        day=day,
                        digest=metrics.day_digest(day, digests),
                        organisation_digests={str(pk): d for pk, d in digests.items()},
                        organisations=len(digests),
                        sampled_at=at(day + dt.timedelta(days=1), 0, 20),
                        sector={"supply": None},
                        origin="demo",
                    )
                )
                if number % 73 == 0 or number == total_days:
                    elapsed = time.perf_counter() - started
                    print(
                        f"    {number:,}/{total_days:,} days, {rows:,} samples, {elapsed:.0f} s "
                        f"(storyline and metrics.compute {compute_s:.0f} s)",
                        flush=True,
                    )
        DaySeal.objects.bulk_create(seals, batch_size=100)
    figures["samples_copied_s"] = round(time.perf_counter() - started, 1)
    figures["samples_generate_s"] = round(compute_s, 1)
    figures["sample_rows"] = rows
    mark = time.perf_counter()
    episodes_file.seek(0)
    with (
        without_secondary_indexes(VulnerabilityEpisode),
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.cursor.copy(
            "COPY reporting_vulnerabilityepisode (organisation_id, host_id, package, advisory, "
            "severity, opened_on, closed_on, kev_on, overdue_on) FROM STDIN"
        ) as copy,
    ):
        while block := episodes_file.read(1 << 20):
            copy.write(block)
    episodes_file.close()
    figures["episodes_copied_s"] = round(time.perf_counter() - mark, 1)
    # The graph versions the nightly runs would have stored (the graph as exported), the
    # ledger of the last recorded day, the alerts with their events.
    GraphVersion.objects.bulk_create(
        GraphVersion(
            organisation_id=organisations[i], day=stories[i].graph_from,
            digest=_content_digest(document), document=document,
        )
        for i, document in world.graph_documents.items()
    )  # fmt: skip
    LedgerDay.objects.update_or_create(pk=LedgerDay.SINGLETON, defaults={"day": last})
    for day in days_between(last + dt.timedelta(days=1), through):
        for story in stories:
            story.advance(day)
            alerts += [(story.index, a) for a in story.new_alerts]
            story.new_alerts.clear()
            story.new_episodes.clear()
    insert_alerts(world, alerts)
    figures["alerts"] = len(alerts)
    return figures


def _content_digest(document) -> str:
    from mamori.audit.chain import digest

    return digest(document)


def insert_alerts(world: World, alerts: list[tuple[int, StoryAlert]]) -> None:
    """The storyline's alerts as the early-warning app stores them: the alert, its "new" event
    when raised and the events of its acknowledgement and mitigation."""
    from django.db import transaction

    from mamori.core.bulk import insert_rows
    from mamori.earlywarning.models import Alert, AlertEvent

    objects, events = [], []
    for i, alert in alerts:
        state = (
            "mitigated" if alert.mitigated else ("acknowledged" if alert.acknowledged else "new")
        )
        objects.append(
            Alert(
                organisation_id=world.organisations[i], type=alert.type, state=state,
                key=f"bench-{i}-{alert.serial}", category=alert.category,
                first_seen=alert.raised, last_seen=alert.raised,
                due_at=alert.raised + dt.timedelta(hours=24), state_changed_at=alert.mitigated
                or alert.acknowledged, acknowledged_at=alert.acknowledged,
                mitigated_at=alert.mitigated,
            )
        )  # fmt: skip
    with transaction.atomic():
        insert_rows(Alert, objects, with_ids=True)
        for (_i, alert), stored in zip(alerts, objects, strict=True):
            events.append(AlertEvent(alert_id=stored.pk, at=alert.raised, state="new"))
            if alert.acknowledged:
                events.append(
                    AlertEvent(alert_id=stored.pk, at=alert.acknowledged, state="acknowledged")
                )
            if alert.mitigated:
                events.append(AlertEvent(alert_id=stored.pk, at=alert.mitigated, state="mitigated"))
        insert_rows(AlertEvent, events)


def load_checkins(world: World, stories: list[Story], day: dt.date) -> dict:
    """The day's check-ins: every working host uploads once (an ``Evidence``, its
    ``Evaluation`` with the storyline's verdicts and the vulnerabilities open on the host that
    day); a host never seen before that is quiet gets its last upload; a few re-matches patch a
    verdict in place (``VerdictChange``), some of them just after midnight."""
    from django.db import transaction

    from mamori.core.bulk import insert_rows, update_rows
    from mamori.verification.models import (
        CONTROLS,
        Evaluation,
        Evidence,
        Host,
        VerdictChange,
        Vulnerability,
    )

    if Evidence.objects.filter(received_at__gte=at(day), received_at__lt=at(day, 24)).exists():
        print(f"   the check-ins of {day} are loaded already", flush=True)
        return {"evidence": 0, "evaluations": 0, "vulnerabilities": 0, "verdict_changes": 0}
    with_evidence = set(
        Host.objects.filter(latest_evidence__isnull=False).values_list("pk", flat=True)
    )
    evidence, evaluations, per_evaluation, hosts = [], [], [], []
    changes = []
    for i, story in enumerate(stories):
        open_by_host = defaultdict(list)
        for e in story.open_on(day):
            open_by_host[e.host].append(e)
        for j, _in_scope, last, verdicts in story.host_states(day):
            host = world.hosts[(i, j)]
            if last.date() != day and host in with_evidence:
                continue  # quiet today: its last upload stands
            evidence.append(
                Evidence(
                    host_id=host, collected_at=last - dt.timedelta(minutes=1), received_at=last,
                    digest=f"bench:{host}:{last.isoformat()}", payload={}, size=2,
                )
            )  # fmt: skip
            found = open_by_host.get(j, [])
            verdicts = dict(verdicts)
            choice = random.Random(f"{SEED}:{day}:{host}").random()
            evaluation = Evaluation(
                evaluated_at=last + dt.timedelta(seconds=30), as_of=last.date(), trigger="upload",
                result={}, vulnerabilities=len(found), vulnerabilities_matched=True,
                packages_complete=True,
                overdue_vulnerabilities=sum(1 for e in found if e.overdue_on and e.overdue_on <= day),
                kev_vulnerabilities=sum(1 for e in found if e.kev), **verdicts,
            )  # fmt: skip
            evaluations.append(evaluation)
            per_evaluation.append(found)
            hosts.append((host, last))
            if choice < 0.03 and last.date() == day:
                # A re-match in the afternoon: listed a new advisory, failed the control.
                changes.append((host, evaluation, at(day, 15), "security_update_management",
                                "pass", "fail"))  # fmt: skip
            elif choice < 0.04 and last.date() == day:
                # One ten minutes after midnight: the day's verdict is the one before.
                control = CONTROLS[int(choice * 1000) % len(CONTROLS)]
                before = verdicts[control]
                after = "fail" if before == "pass" else "pass"
                setattr(evaluation, control, after)
                changes.append((host, evaluation, at(day + dt.timedelta(days=1), 0, 10), control,
                                before, after))  # fmt: skip
    with transaction.atomic():
        insert_rows(Evidence, evidence, with_ids=True)
        for item, evaluation in zip(evidence, evaluations, strict=True):
            evaluation.evidence_id = item.pk
        insert_rows(Evaluation, evaluations, with_ids=True)
        rows = []
        for evaluation, found in zip(evaluations, per_evaluation, strict=True):
            for e in found:
                rows.append(
                    Vulnerability(
                        evaluation_id=evaluation.pk, package=e.package, installed_version="1.0-1",
                        advisory=e.advisory, fixed_version="1.0-2", severity=e.severity,
                        cvss=e.cvss, kev=e.kev, fix_published=e.fix_published,
                        days_since_fix=(day - e.fix_published).days if e.fix_published else None,
                        overdue=bool(e.overdue_on and e.overdue_on <= day),
                    )
                )  # fmt: skip
        insert_rows(Vulnerability, rows)
        insert_rows(
            VerdictChange,
            [
                VerdictChange(host_id=host, evaluation_id=evaluation.pk, changed_at=moment,
                              control=control, before=before, after=after,
                              advisories=["CVE-2026-BENCH"])
                for host, evaluation, moment, control, before, after in changes
            ],
        )  # fmt: skip
        update_rows(
            Host,
            ["latest_evidence", "latest_evaluation", "last_seen"],
            [
                (host, item.pk, evaluation.pk, last)
                for (host, last), item, evaluation in zip(hosts, evidence, evaluations, strict=True)
            ],
        )
    return {
        "evidence": len(evidence),
        "evaluations": len(evaluations),
        "vulnerabilities": len(rows),
        "verdict_changes": len(changes),
    }


def form_past_cohorts(first: dt.date, last: dt.date) -> int:
    """The peer cohorts of every quarter before ``last``'s, in order, as the dashboard would
    have formed them on the quarter's first day (each on the one before)."""
    from mamori.reporting import benchmark, peers

    category_of = benchmark.categories()
    formed = 0
    day = first
    current = peers.quarter_of(last)
    while peers.quarter_of(day) < current:
        for key in [*benchmark.PEER_METRICS, *benchmark.DERIVED]:
            benchmark.cohort(key, day, category_of)
            formed += 1
        start = peers.quarter_start(day)
        day = dt.date(start.year + (start.month == 10), (start.month + 2) % 12 + 1, 1)
    return formed


def table_sizes() -> dict:
    from django.db import connection

    sizes = {}
    with connection.cursor() as cursor:
        for table in (
            "reporting_metricsample",
            "reporting_dayseal",
            "reporting_vulnerabilityepisode",
            "verification_vulnerability",
            "earlywarning_alertevent",
        ):
            cursor.execute(
                "SELECT reltuples::bigint, pg_relation_size(oid), pg_indexes_size(oid), "
                "pg_total_relation_size(oid) FROM pg_class WHERE oid = %s::regclass",
                [table],
            )
            estimate, heap, indexes, total = cursor.fetchone()
            sizes[table] = {
                "rows_estimate": estimate,
                "heap_mb": round(heap / 2**20, 1),
                "indexes_mb": round(indexes / 2**20, 1),
                "total_mb": round(total / 2**20, 1),
            }
        cursor.execute("SELECT count(*) FROM reporting_metricsample")
        sizes["reporting_metricsample"]["rows"] = cursor.fetchone()[0]
        cursor.execute("SELECT pg_database_size(current_database())")
        sizes["database_mb"] = round(cursor.fetchone()[0] / 2**20, 1)
    return sizes


# --- Measuring ---------------------------------------------------------------------------------


class Timers:
    """Wall time spent in patched functions, by label (nested labels overlap)."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: Counter = Counter()

    def wrap(self, stack: ExitStack, owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started
                self.calls[label] += 1

        stack.enter_context(mock.patch.object(owner, name, timed))

    def rounded(self) -> dict:
        return {label: round(seconds, 3) for label, seconds in self.seconds.items()}


class QueryCounter:
    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def child_sample(day: dt.date) -> int:
    """The nightly sampling of ``day`` in this (fresh) process, the clock at 00:20 the next
    morning; prints one JSON line."""
    from django.db import connection

    from mamori.reporting import history, metrics, sampling
    from mamori.reporting.models import MetricSample

    moment = at(day + dt.timedelta(days=1), 0, 20).astimezone(dt.UTC)
    origin = time.monotonic()

    def clock():
        return moment + dt.timedelta(seconds=time.monotonic() - origin)

    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    timers = Timers()
    counter = QueryCounter()
    with ExitStack() as stack:
        stack.enter_context(mock.patch("django.utils.timezone.now", new=clock))
        stack.enter_context(connection.execute_wrapper(counter))
        timers.wrap(stack, history, "record_day", "record_day")
        timers.wrap(stack, history, "_record_episodes", "record_day.episodes")
        timers.wrap(stack, history, "_record_graphs", "record_day.graphs")
        timers.wrap(stack, sampling, "compute", "compute")
        timers.wrap(stack, history, "organisations_with_history", "compute.organisations")
        timers.wrap(stack, history, "inputs_for", "compute.inputs_for")
        for part in (
            "_certificates",
            "_hosts",
            "_episodes",
            "_supply",
            "_alerts",
            "_board_reviews",
        ):
            timers.wrap(stack, history, part, f"compute.inputs_for.{part.lstrip('_')}")
        timers.wrap(stack, metrics, "compute", "compute.metrics")
        timers.wrap(stack, metrics, "organisation_digest", "compute.digests")
        timers.wrap(stack, sampling, "supply_hot_spots", "write.supply_hot_spots")
        timers.wrap(stack, MetricSample.objects, "bulk_create", "write.samples_bulk_create")
        timers.wrap(stack, sampling, "record", "write.audit_entry")
        started = time.perf_counter()
        result = sampling.sample(day, record_history=True)
        total = time.perf_counter() - started
    rss_sampled = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    split = timers.rounded()
    split["write"] = round(total - split.get("record_day", 0) - split.get("compute", 0), 3)
    recompute = []
    with mock.patch("django.utils.timezone.now", new=clock):
        for _n in range(3):
            started = time.perf_counter()
            again = sampling.compute(day)
            recompute.append(time.perf_counter() - started)
            if again.digest != result.digest:
                print(json.dumps({"error": "the recomputed day does not match its seal"}))
                return 1
    print(
        json.dumps(
            {
                "day": day.isoformat(),
                "stored_now": result.stored_now,
                "organisations": len(result.values),
                "samples_written": MetricSample.objects.filter(day=day).count(),
                "seconds": round(total, 3),
                "split": split,
                "calls": dict(timers.calls),
                "queries": counter.count,
                "peak_rss_mb_sampling": round(rss_sampled / 1024, 1),
                "rss_mb_after_setup": round(rss_start / 1024, 1),
                "recompute_s": summary(recompute),
            }
        )
    )
    return 0


def run_child(day: dt.date) -> dict:
    """Run the sampling in a fresh process; its own peak RSS from ``wait4``."""
    arguments = [sys.executable, str(Path(__file__).resolve()), "--child-sample", day.isoformat()]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(arguments, env=os.environ.copy(), stdout=out, stderr=err)
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace").strip()
        stderr = err.read().decode(errors="replace").strip()
    if process.returncode != 0 or not stdout:
        sys.exit(f"the sampling process failed ({process.returncode}):\n{stdout}\n{stderr}")
    found = json.loads(stdout.splitlines()[-1])
    found["process_s"] = round(seconds, 2)
    found["process_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
    found["process_peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    if stderr:
        found["stderr"] = stderr[-2000:]
    return found


def client_for(user):
    from django.test import Client
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client = Client()
    client.force_login(user)
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    return client


def measure_dashboard(world: World, requests: int, runs: int) -> dict:
    from django.db import connection
    from django.urls import reverse

    from mamori.organisations.models import Organisation
    from mamori.reporting import benchmark, peers
    from mamori.reporting.models import PeerCohort

    day = benchmark.latest_sealed_day()
    url = reverse("reporting:sector")
    client = client_for(world.observer)

    def get() -> tuple[float, int]:
        counter = QueryCounter()
        with connection.execute_wrapper(counter):
            started = time.perf_counter()
            response = client.get(url)
            seconds = time.perf_counter() - started
        text = response.content.decode()
        if response.status_code != 200 or 'id="certification"' not in text:
            sys.exit(f"GET {url} answered {response.status_code} without the figures")
        return seconds * 1000, counter.count

    benchmark.dashboard()  # the quarter's cohorts exist ...
    get()  # ... and the process has served the page once (templates, URL resolver)
    quarter = peers.quarter_of(day)
    removed, _ = PeerCohort.objects.filter(quarter=quarter).delete()
    load_before = load_average()
    cold_ms, cold_queries = get()
    formed = PeerCohort.objects.filter(quarter=quarter).count()
    warm, queries = [], 0
    for _n in range(requests):
        ms, queries = get()
        warm.append(ms)
    alone = []
    for _n in range(runs):
        started = time.perf_counter()
        benchmark.dashboard()
        alone.append((time.perf_counter() - started) * 1000)
    organisation = Organisation.objects.get(pk=world.organisations[0])
    positions, found = [], []
    for _n in range(runs):
        started = time.perf_counter()
        found = benchmark.positions_for(organisation)
        positions.append((time.perf_counter() - started) * 1000)
    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        benchmark.dashboard()
    dashboard_queries = counter.count
    return {
        "day": day.isoformat(),
        "url": url,
        "cohorts_removed_then_formed": [removed, formed],
        "cold_ms": round(cold_ms, 1),
        "cold_queries": cold_queries,
        "warm_ms": summary(warm),
        "warm_queries": queries,
        "dashboard_call_ms": summary(alone),
        "dashboard_call_queries": dashboard_queries,
        "positions_for_ms": summary(positions),
        "positions_rows": len(found),
        "load_average": [load_before, load_average()],
    }


def measure_pack(world: World, runs: int) -> dict:
    from django.utils import timezone

    from mamori.organisations.models import Organisation
    from mamori.reporting import pack, render, services
    from mamori.reporting.models import BoardPack

    period = pack.last_finished_quarter(timezone.localdate())
    organisation = Organisation.objects.get(pk=world.organisations[0])
    governance = services.governance_mapping()
    load_before = load_average()
    read, compose, content = [], [], None
    for _n in range(runs):
        started = time.perf_counter()
        series = services.series_for(organisation.pk, period)
        read.append(time.perf_counter() - started)
        started = time.perf_counter()
        content = pack.compose(
            services.organisation_facts(organisation), period, series, governance,
            previous_reviewed=False,
        )  # fmt: skip
        compose.append(time.perf_counter() - started)
    outputs: dict[str, list[float]] = {}
    sizes = {}
    started = time.perf_counter()
    render.pdf(content, "ja")  # the process's first: WeasyPrint imported, fonts loaded
    first_pdf = time.perf_counter() - started
    for _n in range(runs):
        for language in ("ja", "en"):
            for kind, function in (("pdf", render.pdf), ("xlsx", render.xlsx)):
                started = time.perf_counter()
                data = function(content, language)
                outputs.setdefault(f"{kind}_{language}", []).append(time.perf_counter() - started)
                sizes[f"{kind}_{language}"] = len(data)
    medians = {key: statistics.median(values) for key, values in outputs.items()}
    compose_s = statistics.median(read) + statistics.median(compose)
    total = compose_s + medians["pdf_ja"] + medians["xlsx_ja"]
    # make_pack end to end for an organisation without a pack of the quarter yet: on the
    # embedded default the render task runs in this process once the pack is committed.
    packs = BoardPack.objects.filter(period_from=period.first, period_to=period.last)
    taken = set(packs.values_list("organisation_id", flat=True))
    target = next(pk for pk in world.organisations[1:] if pk not in taken)
    started = time.perf_counter()
    made = services.make_pack(None, Organisation.objects.get(pk=target), period)
    make_s = time.perf_counter() - started
    made.refresh_from_db()
    return {
        "organisation": organisation.name_en,
        "period": period.as_dict(),
        "series_days": len(next(iter(series.values()))) if series else 0,
        "read_samples_s": summary(read),
        "compose_s": summary(compose),
        "outputs_s": {key: summary(values) for key, values in outputs.items()},
        "first_pdf_s": round(first_pdf, 3),
        "bytes": sizes,
        "compose_pdf_xlsx_ja_s": round(total, 3),
        "compose_all_four_s": round(compose_s + sum(medians.values()), 3),
        "make_pack": {
            "organisation": target,
            "seconds": round(make_s, 3),
            "rendered": made.rendered_at is not None,
        },
        "load_average": [load_before, load_average()],
    }


# --- Main ---------------------------------------------------------------------------------------


def code_version() -> dict:
    """The commit measured, and the reporting app's files changed since (the checkout is shared)."""

    def git(*arguments: str) -> str:
        try:
            return subprocess.run(
                ["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=False
            ).stdout.strip()
        except OSError:
            return ""

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "changed": git("status", "--short", "--", "src/mamori/reporting").splitlines(),
    }


def build(args, first: dt.date, last: dt.date, sample_day: dt.date) -> tuple[dict, World, list]:
    from django.core.management import call_command
    from django.db import connection

    database = check_database()
    figures: dict = {}
    print(f"database {database['NAME']}: dropped, created, migrated", flush=True)
    benchdb.recreate_database(database)
    connection.close()
    started = time.perf_counter()
    mark = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    figures["migrate_s"] = round(time.perf_counter() - mark, 1)
    mark = time.perf_counter()
    world, stories = create_world(
        args.organisations, args.hosts, first, last + dt.timedelta(days=EXTRA_DAYS)
    )
    figures["world_s"] = round(time.perf_counter() - mark, 1)
    print(
        f"  {len(world.organisations):,} applicants + {len(world.others)} others, "
        f"{len(world.hosts):,} hosts, {len(world.graph_documents)} supply graphs: "
        f"{figures['world_s']:.1f} s",
        flush=True,
    )
    mark = time.perf_counter()
    print(f"  samples {first} .. {last} (COPY):", flush=True)
    figures.update(load_history(world, stories, first, last, sample_day))
    figures["history_s"] = round(time.perf_counter() - mark, 1)
    print(
        f"  samples, seals, episodes, alerts: {figures['history_s']:.1f} s "
        f"({figures['sample_rows']:,} samples; COPY incl. generation "
        f"{figures['samples_copied_s']} s, of it storyline + metrics.compute "
        f"{figures['samples_generate_s']} s; episodes {figures['episodes_copied_s']} s)",
        flush=True,
    )
    mark = time.perf_counter()
    figures["cohorts_formed"] = form_past_cohorts(first, last)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    figures["cohorts_vacuum_s"] = round(time.perf_counter() - mark, 1)
    figures["load_s"] = round(time.perf_counter() - started, 1)
    connection.close()
    return figures, world, stories


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reuse", action="store_true", help="measure on the last run's data")
    parser.add_argument("--organisations", type=int, default=600)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--hosts", type=int, default=Story.HOSTS, help="hosts per organisation")
    parser.add_argument("--requests", type=int, default=20, help="warm dashboard requests")
    parser.add_argument("--runs", type=int, default=3, help="runs of each pack output")
    parser.add_argument("--child-sample", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    configure_environment()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Max, Min
    from django.utils import timezone

    from mamori.reporting.models import DaySeal
    from mamori.verification.services.assurance import checkin_days

    if args.child_sample:
        check_database()
        return child_sample(dt.date.fromisoformat(args.child_sample))

    report: dict = {
        "benchmark": "reporting",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "code": code_version(),
        "load_average_start": load_average(),
    }
    if args.reuse:
        database = check_database()
        call_command("migrate", interactive=False, verbosity=0)
        bounds = DaySeal.objects.aggregate(first=Min("day"), last=Max("day"))
        if bounds["first"] is None:
            sys.exit(f"{database['NAME']} has no sampled days: run without --reuse first")
        first, sample_day = bounds["first"], bounds["last"] + dt.timedelta(days=1)
        if (sample_day - first).days >= args.days + EXTRA_DAYS:
            sys.exit("the storyline ends here: run without --reuse to load the data again")
        world = World.read()
        mark = time.perf_counter()
        stories = [
            Story(i, category, first, first + dt.timedelta(days=args.days - 1 + EXTRA_DAYS),
                  checkin_days(), args.hosts, None)
            for i, category in enumerate(world.categories)
        ]  # fmt: skip
        for day in days_between(first, sample_day):
            for story in stories:
                story.advance(day)
                story.new_episodes.clear()
                if day != sample_day:
                    story.new_alerts.clear()  # stored by the runs before
        alerts = [(s.index, a) for s in stories for a in s.new_alerts]
        insert_alerts(world, alerts)
        report["load"] = {
            "reused": database["NAME"],
            "storyline_replayed_s": round(time.perf_counter() - mark, 1),
            "alerts_added": len(alerts),
        }
    else:
        sample_day = timezone.localdate() - dt.timedelta(days=1)
        last = sample_day - dt.timedelta(days=1)
        first = last - dt.timedelta(days=args.days - 1)
        report["load"], world, stories = build(args, first, last, sample_day)
    mark = time.perf_counter()
    checkins = load_checkins(world, stories, sample_day)
    checkins["seconds"] = round(time.perf_counter() - mark, 1)
    report["checkins"] = checkins
    del stories
    report["tables"] = table_sizes()
    connection.close()
    load = report["load"]
    samples = report["tables"]["reporting_metricsample"]
    print(
        f"1. data: {samples['rows']:,} samples ({samples['total_mb']:,} MB with indexes: heap "
        f"{samples['heap_mb']:,} MB, indexes {samples['indexes_mb']:,} MB); database "
        f"{report['tables']['database_mb']:,} MB"
        + (f"; loaded in {load['load_s']:.0f} s" if "load_s" in load else " (reused)"),
        flush=True,
    )
    print(
        f"   check-ins of {sample_day}: {checkins['evidence']:,} uploads, "
        f"{checkins['vulnerabilities']:,} vulnerability rows, {checkins['verdict_changes']} "
        f"verdict changes ({checkins['seconds']} s)",
        flush=True,
    )

    # 4 first: it seals the day the dashboard then shows.
    load_before = load_average()
    sampled = run_child(sample_day)
    sampled["load_average"] = [load_before, load_average()]
    report["sampling"] = sampled
    split = sampled["split"]
    print(
        f"4. nightly sampling of {sampled['day']}: {sampled['seconds']:.1f} s (target < "
        f"{SAMPLING_TARGET_S:.0f} s) for {sampled['organisations']} organisations, "
        f"{sampled['samples_written']:,} samples, {sampled['queries']:,} queries; peak RSS "
        f"{sampled['peak_rss_mb_sampling']:.0f} MiB\n"
        f"   record_day {split.get('record_day', 0):.2f} s (episodes "
        f"{split.get('record_day.episodes', 0):.2f}, graphs {split.get('record_day.graphs', 0):.2f})"
        f", compute {split.get('compute', 0):.2f} s (inputs_for "
        f"{split.get('compute.inputs_for', 0):.2f}, metrics {split.get('compute.metrics', 0):.2f}"
        f", digests {split.get('compute.digests', 0):.2f}), write {split['write']:.2f} s "
        f"(samples {split.get('write.samples_bulk_create', 0):.2f}, hot spots "
        f"{split.get('write.supply_hot_spots', 0):.2f}, audit {split.get('write.audit_entry', 0):.2f})"
        f"\n   inputs_for: "
        + ", ".join(
            f"{label.rsplit('.', 1)[1]} {seconds:.2f}"
            for label, seconds in split.items()
            if label.startswith("compute.inputs_for.")
        )
        + f"\n   recomputing the sealed day: median {sampled['recompute_s']['median']:.2f} s "
        f"({sampled['recompute_s']['min']:.2f}–{sampled['recompute_s']['max']:.2f})",
        flush=True,
    )

    dashboard = measure_dashboard(world, args.requests, max(5, args.runs))
    report["dashboard"] = dashboard
    print(
        f"2. sector dashboard {dashboard['url']} (observer, day {dashboard['day']}): first request "
        f"of the quarter {dashboard['cold_ms']:.0f} ms ({dashboard['cold_queries']} queries, "
        f"{dashboard['cohorts_removed_then_formed'][1]} cohorts formed); warm median "
        f"{dashboard['warm_ms']['median']:.0f} ms, p90 {dashboard['warm_ms']['p90']:.0f} ms, "
        f"max {dashboard['warm_ms']['max']:.0f} ms over {dashboard['warm_ms']['runs']} requests "
        f"({dashboard['warm_queries']} queries; target < {DASHBOARD_TARGET_MS:.0f} ms)\n"
        f"   benchmark.dashboard() alone: median {dashboard['dashboard_call_ms']['median']:.0f} ms "
        f"({dashboard['dashboard_call_ms']['min']:.0f}–{dashboard['dashboard_call_ms']['max']:.0f}"
        f", {dashboard['dashboard_call_queries']} queries); positions_for(one organisation): "
        f"median {dashboard['positions_for_ms']['median']:.0f} ms "
        f"({dashboard['positions_for_ms']['min']:.0f}–{dashboard['positions_for_ms']['max']:.0f}"
        f", {dashboard['positions_rows']} positions)",
        flush=True,
    )

    packed = measure_pack(world, args.runs)
    report["pack"] = packed
    outputs = packed["outputs_s"]
    print(
        f"3. board pack {packed['period']['from']}..{packed['period']['to']} of "
        f"{packed['organisation']}: compose + PDF ja + XLSX ja {packed['compose_pdf_xlsx_ja_s']:.2f} s"
        f" (target < {PACK_TARGET_S:.0f} s); all four outputs {packed['compose_all_four_s']:.2f} s\n"
        f"   read samples {packed['read_samples_s']['median']:.3f} s, compose "
        f"{packed['compose_s']['median']:.3f} s, "
        + ", ".join(
            f"{key.replace('_', ' ')} {value['median']:.2f} s ({value['min']:.2f}–{value['max']:.2f})"
            for key, value in outputs.items()
        )
        + f"; the process's first PDF {packed['first_pdf_s']:.2f} s\n"
        f"   make_pack end to end (the request's part; the worker renders the files): "
        f"{packed['make_pack']['seconds']:.2f} s, rendered: {packed['make_pack']['rendered']}",
        flush=True,
    )

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
    report["machine"] = {
        "cpus": os.cpu_count(),
        "load_average_end": load_average(),
        "python": platform.python_version(),
        "postgresql": server,
    }
    checks = {
        "dashboard_warm_median_ms": (
            dashboard["warm_ms"]["median"], DASHBOARD_TARGET_MS,
        ),
        "pack_compose_pdf_xlsx_s": (packed["compose_pdf_xlsx_ja_s"], PACK_TARGET_S),
        "nightly_sampling_s": (sampled["seconds"], SAMPLING_TARGET_S),
    }  # fmt: skip
    report["targets"] = {
        name: {"value": value, "target": target, "met": value < target}
        for name, (value, target) in checks.items()
    }
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n")
    loads = report["load_average_start"], report["machine"]["load_average_end"]
    print(
        f"\nsummary ({os.cpu_count()} CPUs, load average {loads[0][0]:.2f} at the start, {loads[1][0]:.2f} at the end)"
    )
    rows = [
        ("data", f"{samples['rows']:,} samples, {samples['total_mb']:,} MB"
         + (f", loaded in {load['load_s']:.0f} s" if "load_s" in load else " (reused)"), "minutes"),
        ("sector dashboard, warm median", f"{dashboard['warm_ms']['median']:.0f} ms "
         f"(p90 {dashboard['warm_ms']['p90']:.0f}, first of quarter {dashboard['cold_ms']:.0f})",
         f"< {DASHBOARD_TARGET_MS:.0f} ms"),
        ("board pack, compose + PDF + XLSX (ja)", f"{packed['compose_pdf_xlsx_ja_s']:.2f} s",
         f"< {PACK_TARGET_S:.0f} s"),
        (f"nightly sampling, {sampled['organisations']} organisations",
         f"{sampled['seconds']:.1f} s, peak RSS "
         f"{sampled['peak_rss_mb_sampling']:.0f} MiB", f"< {SAMPLING_TARGET_S:.0f} s"),
    ]  # fmt: skip
    for label, value, target in rows:
        print(f"  {label:<40} {value:<48} target {target}")
    missed = [name for name, item in report["targets"].items() if not item["met"]]
    print(f"results written to {RESULTS_FILE.relative_to(ROOT)}")
    print("targets: " + ("all met" if not missed else "MISSED " + ", ".join(missed)))
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
