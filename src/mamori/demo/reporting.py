"""Board-reporting demo: two years of daily metric samples for the fictitious applicants, a
signed and an unsigned board pack, and the sector dashboard they feed.

The demo's scheme was built today, so it has no two years of agent uploads to sample from. The
samples are computed by the sampler's own ``metrics.compute`` from a storyline whose every
turn comes from what the demo holds:

- certificates: the demo's certificates with their real dates (issued, expiring, revoked);
- hosts: the demo's hosts, whose agents were rolled out over the first half year, checking in
  weekly; each control's share of passing hosts climbs to what the hosts' evaluations show
  today, with the step up in the quarter before the organisation's certificate was issued;
- vulnerabilities: the findings on the hosts' latest evaluations, open since the last patch
  round a quarter ago (or since their fix was released, when that is later), and a KEV-listed
  finding last summer remediated after 20 days;
- supply chain: the graph of the organisation's survey, in force since a year ago (stored as
  the ``GraphVersion`` of that day);
- alerts: the early-warning alerts' own events, replayed day by day.

Each day is sealed with ``origin="demo"``: ``mamori reporting sample`` says so instead of
recomputing it. Idempotent: once a demo day is sealed, nothing is written again.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from mamori.accounts.models import User
from mamori.core.bulk import insert_rows
from mamori.demo import cast
from mamori.organisations.access import Access
from mamori.organisations.models import Organisation
from mamori.reporting import metrics, pack, services, supply
from mamori.reporting.models import BoardPack, DaySeal, GraphVersion, MetricSample

DAYS = 730
ROLLOUT_DAYS = 180
# The hosts were last patched this many days ago: what they lack now has been open since then.
PATCH_ROUND_DAYS = 90
KEV_EPISODE = (dt.date(2026, 7, 14), 20)  # opened, days to remediate (a summer KEV listing)


@dataclass
class Result:
    days: int
    organisations: int
    signed: BoardPack | None
    unsigned: BoardPack | None


def already_loaded() -> bool:
    return DaySeal.objects.filter(origin="demo").exists()


def _applicants() -> list[Organisation]:
    names = [entry.name_ja for entry in cast.APPLICANTS]
    return list(Organisation.objects.filter(name_ja__in=names).order_by("pk"))


def _hosts_of(organisation: Organisation) -> tuple[int, dict[str, float]]:
    from mamori.verification.models import CONTROLS, Host

    hosts = list(
        Host.objects.filter(organisation=organisation, in_scope=True).select_related(
            "latest_evaluation"
        )
    )
    passing = Counter()
    for host in hosts:
        for control in CONTROLS:
            if host.latest_evaluation and getattr(host.latest_evaluation, control) == "pass":
                passing[control] += 1
    shares = {c: (passing[c] / len(hosts) if hosts else 0.0) for c in CONTROLS}
    return len(hosts), shares


def _episodes(organisation: Organisation, today: dt.date) -> list[metrics.Episode]:
    from mamori.verification.models import Host, Vulnerability

    rows = Vulnerability.objects.filter(
        evaluation_id__in=Host.objects.filter(organisation=organisation).values(
            "latest_evaluation_id"
        )
    ).values_list("severity", "kev", "fix_published", "overdue")
    episodes = []
    for severity, kev, fix_published, overdue in rows:
        patch_round = today - dt.timedelta(days=PATCH_ROUND_DAYS)
        opened = max(fix_published, patch_round) if fix_published else patch_round
        episodes.append(
            metrics.Episode(
                severity=severity or "unknown",
                opened_on=opened,
                kev_on=opened if kev else None,
                overdue_on=(
                    max(opened, (fix_published or opened) + dt.timedelta(days=15))
                    if overdue
                    else None
                ),
            )
        )
    kev_opened, lasted = KEV_EPISODE
    episodes.append(
        metrics.Episode(
            "critical", kev_opened, kev_opened + dt.timedelta(days=lasted), kev_opened,
            kev_opened + dt.timedelta(days=15),
        )
    )  # fmt: skip
    return episodes


def _certificates(organisation: Organisation) -> list[metrics.Certificate]:
    return [
        metrics.Certificate(level, issued_on, expires_on, revoked_at)
        for level, issued_on, expires_on, revoked_at in organisation.certificates.values_list(
            "level", "issued_on", "expires_on", "revoked_at"
        )
    ]


def _alert_lives(organisation: Organisation):
    from mamori.earlywarning.models import AlertEvent

    return list(
        AlertEvent.objects.filter(alert__organisation=organisation)
        .order_by("at", "pk")
        .values_list("alert_id", "at", "state", "alert__type")
    )


def _storyline(organisation: Organisation, first: dt.date, today: dt.date):
    """A function of the day giving the organisation's ``DayInputs``."""
    from mamori.earlywarning.sector import bounds, replay

    hosts, shares = _hosts_of(organisation)
    certificates = _certificates(organisation)
    certified_on = min((c.issued_on for c in certificates), default=today)
    episodes = _episodes(organisation, today)
    events = _alert_lives(organisation)
    kinds = {alert_id: kind for alert_id, _at, _state, kind in events}
    graph = (
        GraphVersion.objects.filter(organisation=organisation)
        .values_list("document", flat=True)
        .first()
    )
    figures = supply.figures(graph) if graph else None
    supply_from = today - dt.timedelta(days=365)

    def inputs(day: dt.date) -> metrics.DayInputs:
        _start, end = bounds(day)
        rolled_out = min(1.0, (day - first).days / ROLLOUT_DAYS)
        in_scope = round(hosts * rolled_out)
        # Before the certification quarter the controls held at three quarters of today's.
        ready = 1.0 if day >= certified_on - dt.timedelta(days=90) else 0.75
        host_days = []
        for index in range(in_scope):
            # Every tenth host misses a week's check-in now and then: the window shows it.
            late = index % 10 == 9 and day.isocalendar().week % 5 == 0
            verdicts = {
                control: "pass" if index < round(shares[control] * ready * in_scope) else "fail"
                for control in metrics.CONTROLS
            }
            host_days.append(
                metrics.HostDay(True, end - dt.timedelta(days=10 if late else 1), verdicts)
            )
        lives = replay(((a, at, state) for a, at, state, _kind in events), end)
        return metrics.DayInputs(
            day=day,
            end=end,
            checkin_days=7,
            certificates=certificates,
            hosts=host_days,
            episodes=[e for e in episodes if e.opened_on <= day],
            alerts=[
                metrics.AlertLife(
                    kinds[a], life.raised, life.state, life.acknowledged, life.mitigated
                )
                for a, life in lives.items()
                if life.raised is not None
            ],
            supply=figures if day >= supply_from else None,
        )

    return inputs


def _record_graphs(organisations: list[Organisation], day: dt.date) -> None:
    from mamori.audit.chain import digest
    from mamori.supplychain.models import Node
    from mamori.supplychain.services import export_graph

    owners = set(Node.objects.values_list("owner_id", flat=True))
    GraphVersion.objects.bulk_create(
        GraphVersion(organisation=o, day=day, digest=digest(doc), document=doc)
        for o in organisations
        if o.pk in owners
        for doc in [export_graph(o)]
    )


def _signed_and_unsigned(today: dt.date) -> tuple[BoardPack | None, BoardPack | None]:
    quarter = pack.last_finished_quarter(today)
    kohaku = Organisation.objects.get(name_ja=cast.KOHAKU_BANK.name_ja)
    ruri = Organisation.objects.get(name_ja=cast.RURI_SHINKIN.name_ja)
    admin = User.objects.get(username="kohaku-admin")
    board = User.objects.get(username="kohaku-board")
    services.name_owner(admin, Access.for_user(admin), kohaku, board.pk)
    signed = services.make_pack(None, kohaku, quarter, quarterly=True)
    device = TOTPDevice.objects.filter(user=board, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=board, name="demo authenticator", confirmed=True)
    code = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift).token()
    signed = services.sign_pack(
        board,
        Access.for_user(board),
        signed.pk,
        meeting_date=min(quarter.last + dt.timedelta(days=21), today),
        minutes_reference="取締役会議事録 2026-10（デモ）",
        comment="KEV の対応完了を確認。委託先の代替策を次回までに検討する。（デモ）",
        code=f"{code:0{device.digits}d}",
    )
    ruri_admin = User.objects.get(username="ruri-admin")
    ruri_board = User.objects.get(username="ruri-board")
    services.name_owner(ruri_admin, Access.for_user(ruri_admin), ruri, ruri_board.pk)
    unsigned = services.make_pack(None, ruri, quarter, quarterly=True)
    return signed, unsigned


@transaction.atomic
def build(*, now: dt.datetime | None = None) -> Result:
    if already_loaded():
        return Result(DaySeal.objects.filter(origin="demo").count(), 0, None, None)
    today = timezone.localdate(now or timezone.now())
    first = today - dt.timedelta(days=DAYS)
    organisations = _applicants()
    # The applicants joined the scheme two years ago.
    Organisation.objects.filter(pk__in=[o.pk for o in organisations]).update(
        created_at=timezone.make_aware(dt.datetime.combine(first - dt.timedelta(days=1), dt.time()))
    )
    _record_graphs(organisations, today - dt.timedelta(days=365))
    storylines = {o.pk: _storyline(o, first, today) for o in organisations}
    rows, seals = [], []
    for offset in range(DAYS):
        day = first + dt.timedelta(days=offset)
        digests = {}
        for organisation_id, inputs in storylines.items():
            values = metrics.compute(inputs(day))
            digests[organisation_id] = metrics.organisation_digest(values)
            rows += [
                MetricSample(organisation_id=organisation_id, day=day, metric=key, value=value)
                for key, value in values.items()
            ]
        seals.append(
            DaySeal(
                day=day,
                digest=metrics.day_digest(day, digests),
                organisation_digests={str(pk): value for pk, value in digests.items()},
                organisations=len(digests),
                sampled_at=timezone.now(),
                origin="demo",
            )
        )
    insert_rows(MetricSample, rows)
    DaySeal.objects.bulk_create(seals, batch_size=500)
    from mamori.reporting.benchmark import supply_hot_spots

    # The dashboard shows the latest day: its supplier hot spots, as the nightly run stores them.
    DaySeal.objects.filter(day=seals[-1].day).update(
        sector={"supply": supply_hot_spots(seals[-1].day)}
    )
    signed, unsigned = _signed_and_unsigned(today)
    return Result(DAYS, len(organisations), signed, unsigned)
