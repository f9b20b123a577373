"""Gather each organisation's history as of the end of a day (``metrics.DayInputs``), in a few
queries for any number of organisations, from records that do not change afterwards:

- certificates: issued, expiry and revocation dates;
- hosts: first seen, evidence receipt times, scope changes (each in the audit trail), the
  evaluation of the day (the newest one evaluated by its end) with the verdict changes a
  re-match made after the day undone (``VerdictChange`` keeps the verdict before);
- vulnerabilities: ``VulnerabilityEpisode`` (the re-match patches vulnerability rows in place,
  so the sampling keeps their history: ``record_day``);
- supply chain: the ``GraphVersion`` in force on the day (the graph is edited in place);
- early-warning alerts: their immutable events (``AlertEvent``), replayed to the day's end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from django.db import transaction
from django.db.models import F, Max, Q, Window
from django.db.models.functions import RowNumber

from mamori.audit.chain import digest as content_digest
from mamori.reporting import metrics, supply
from mamori.reporting.models import GraphVersion, LedgerDay, VulnerabilityEpisode

SCOPE_CHANGED = "host.scope_changed"


def bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    from mamori.earlywarning.sector import bounds as day_bounds

    return day_bounds(day)


def inputs_for(organisation_ids: Sequence[int], day: dt.date) -> dict[int, metrics.DayInputs]:
    """Each organisation's ``DayInputs`` for ``day``."""
    from mamori.verification.services.assurance import checkin_days

    _start, end = bounds(day)
    window = checkin_days()
    found = {
        pk: metrics.DayInputs(day=day, end=end, checkin_days=window) for pk in organisation_ids
    }
    for chunk in _chunks(list(organisation_ids), 500):
        _certificates(found, chunk, day)
        _hosts(found, chunk, end)
        _episodes(found, chunk, day)
        _supply(found, chunk, day)
        _alerts(found, chunk, end)
        _board_reviews(found, chunk, end)
    return found


def _chunks(values: list, size: int) -> Iterable[list]:
    for at in range(0, len(values), size):
        yield values[at : at + size]


def _certificates(found, organisation_ids, day) -> None:
    from mamori.certificates.models import Certificate

    rows = Certificate.objects.filter(
        organisation_id__in=organisation_ids, issued_on__lte=day, expires_on__gte=day
    ).values_list("organisation_id", "level", "issued_on", "expires_on", "revoked_at")
    for organisation_id, level, issued_on, expires_on, revoked_at in rows:
        found[organisation_id].certificates.append(
            metrics.Certificate(level, issued_on, expires_on, revoked_at)
        )


def _hosts(found, organisation_ids, end) -> None:
    from mamori.audit.models import AuditEvent
    from mamori.verification.models import CONTROLS, Evaluation, Evidence, Host, VerdictChange

    hosts = list(
        Host.objects.filter(organisation_id__in=organisation_ids, first_seen__lt=end).values_list(
            "pk", "organisation_id", "in_scope"
        )
    )
    if not hosts:
        return
    host_ids = [pk for pk, _org, _scope in hosts]
    # The scope on the day: the value before the first change after it, if there was one.
    later_scope: dict[int, bool] = {}
    changes = (
        AuditEvent.objects.filter(
            action=SCOPE_CHANGED, organisation_id__in=organisation_ids, created_at__gte=end
        )
        .order_by("-created_at", "-seq")
        .values_list("object_id", "details")
    )
    for object_id, details in changes:  # newest first: the earliest change is written last
        later_scope[int(object_id)] = not bool((details or {}).get("in_scope"))
    last_checkin = dict(
        Evidence.objects.filter(host_id__in=host_ids, received_at__lt=end)
        .values("host_id")
        .annotate(last=Max("received_at"))
        .values_list("host_id", "last")
    )
    newest = (
        Evaluation.objects.filter(evidence__host_id__in=host_ids, evaluated_at__lt=end)
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("evidence__host_id")],
                order_by=[F("evaluated_at").desc(), F("pk").desc()],
            )
        )
        .filter(rank=1)
        .values_list("pk", "evidence__host_id", *CONTROLS)
    )
    verdicts: dict[int, dict[str, str]] = {}
    host_of_evaluation: dict[int, int] = {}
    for pk, host_id, *values in newest:
        verdicts[host_id] = dict(zip(CONTROLS, values, strict=True))
        host_of_evaluation[pk] = host_id
    # A re-match after the day patched the verdict in place: its change record keeps the one
    # before (the earliest change after the day tells what the day had).
    undone = (
        VerdictChange.objects.filter(
            evaluation_id__in=list(host_of_evaluation), changed_at__gte=end
        )
        .order_by("-changed_at", "-pk")
        .values_list("evaluation_id", "control", "before")
    )
    for evaluation_id, control, before in undone:
        verdicts[host_of_evaluation[evaluation_id]][control] = before
    for pk, organisation_id, in_scope in hosts:
        found[organisation_id].hosts.append(
            metrics.HostDay(
                in_scope=later_scope.get(pk, in_scope),
                last_checkin=last_checkin.get(pk),
                verdicts=verdicts.get(pk),
            )
        )


def _episodes(found, organisation_ids, day) -> None:
    window_start = day - dt.timedelta(days=metrics.REMEDIATION_WINDOW_DAYS)
    rows = (
        VulnerabilityEpisode.objects.filter(
            organisation_id__in=organisation_ids, opened_on__lte=day
        )
        .filter(Q(closed_on__isnull=True) | Q(closed_on__gt=window_start))
        .values_list(
            "organisation_id", "severity", "opened_on", "closed_on", "kev_on", "overdue_on"
        )
    )
    for organisation_id, severity, opened_on, closed_on, kev_on, overdue_on in rows:
        found[organisation_id].episodes.append(
            metrics.Episode(severity, opened_on, closed_on, kev_on, overdue_on)
        )


def _supply(found, organisation_ids, day) -> None:
    in_force = (
        GraphVersion.objects.filter(organisation_id__in=organisation_ids, day__lte=day)
        .order_by("organisation_id", "-day")
        .values_list("organisation_id", "document")
    )
    seen: set[int] = set()
    for organisation_id, document in in_force:
        if organisation_id in seen:
            continue
        seen.add(organisation_id)
        found[organisation_id].supply = supply.figures(document)


def _alerts(found, organisation_ids, end) -> None:
    from mamori.earlywarning.models import AlertEvent
    from mamori.earlywarning.sector import replay

    events = list(
        AlertEvent.objects.filter(alert__organisation_id__in=organisation_ids, at__lt=end)
        .order_by("at", "pk")
        .values_list("alert_id", "at", "state", "alert__organisation_id", "alert__type")
    )
    meta = {
        alert_id: (organisation_id, kind) for alert_id, _at, _s, organisation_id, kind in events
    }
    lives = replay(((alert_id, at, state) for alert_id, at, state, _o, _k in events), end)
    for alert_id, life in lives.items():
        organisation_id, kind = meta[alert_id]
        found[organisation_id].alerts.append(
            metrics.AlertLife(kind, life.raised, life.state, life.acknowledged, life.mitigated)
        )


def _board_reviews(found, organisation_ids, end) -> None:
    """The meeting date of each organisation's latest pack signed before the day's end."""
    from mamori.reporting.models import BoardPack

    rows = (
        BoardPack.objects.filter(organisation_id__in=organisation_ids, signed_at__lt=end)
        .order_by("organisation_id", "meeting_date")
        .values_list("organisation_id", "meeting_date")
    )
    for organisation_id, meeting_date in rows:
        found[organisation_id].board_review = meeting_date.isoformat()


# --- keeping the history of what changes in place ---------------------------------------------


def recorded_through() -> dt.date | None:
    row = LedgerDay.objects.filter(pk=LedgerDay.SINGLETON).first()
    return row.day if row else None


def record_day(day: dt.date) -> bool:
    """Bring the vulnerability episodes and the supply-graph versions up to ``day`` from the
    state now, once: a day at or before the last recorded one is left as it was (recomputing a
    past day reads what was recorded for it). Returns whether it recorded."""
    with transaction.atomic():
        ledger, _created = LedgerDay.objects.select_for_update().get_or_create(
            pk=LedgerDay.SINGLETON, defaults={"day": dt.date.min}
        )
        if ledger.day >= day:
            return False
        _record_episodes(day)
        _record_graphs(day)
        ledger.day = day
        ledger.save(update_fields=["day"])
    return True


def _record_episodes(day: dt.date) -> None:
    from mamori.advisories.matching import is_overdue
    from mamori.verification.models import Host, Vulnerability
    from mamori.verification.services.evaluations import catalogue_settings_for

    rows = Vulnerability.objects.filter(
        evaluation_id__in=Host.objects.filter(latest_evaluation__isnull=False).values(
            "latest_evaluation_id"
        )
    ).values_list(
        "evaluation__evidence__host_id",
        "evaluation__evidence__host__organisation_id",
        "package",
        "advisory",
        "severity",
        "cvss",
        "kev",
        "fix_published",
    )
    current: dict[tuple[int, str, str], tuple] = {}
    for host_id, organisation_id, package, advisory, severity, cvss, kev, fix_published in rows:
        current[(host_id, package, advisory)] = (
            organisation_id,
            severity,
            cvss,
            kev,
            fix_published,
        )
    open_episodes = {
        (e.host_id, e.package, e.advisory): e
        for e in VulnerabilityEpisode.objects.filter(closed_on__isnull=True)
    }
    thresholds: dict[int, tuple[int, float]] = {}

    def overdue_from(organisation_id: int, severity, cvss, fix_published) -> dt.date | None:
        if fix_published is None:
            return None
        if organisation_id not in thresholds:
            values = catalogue_settings_for(organisation_id, day).values
            thresholds[organisation_id] = (
                int(values.get("patch_days", 14)),
                float(values.get("cvss_threshold", 7.0)),
            )
        patch_days, cvss_threshold = thresholds[organisation_id]
        if not is_overdue(patch_days + 1, patch_days, severity, cvss, cvss_threshold):
            return None  # not serious enough for the deadline
        # Never before the day it is recorded: a past day recomputed must not change.
        return max(fix_published + dt.timedelta(days=patch_days + 1), day)

    closed = [e.pk for key, e in open_episodes.items() if key not in current]
    VulnerabilityEpisode.objects.filter(pk__in=closed).update(closed_on=day)
    new, changed = [], []
    for key, (organisation_id, severity, cvss, kev, fix_published) in current.items():
        episode = open_episodes.get(key)
        if episode is None:
            new.append(
                VulnerabilityEpisode(
                    organisation_id=organisation_id,
                    host_id=key[0],
                    package=key[1],
                    advisory=key[2],
                    severity=severity or "unknown",
                    opened_on=day,
                    kev_on=day if kev else None,
                    overdue_on=overdue_from(organisation_id, severity, cvss, fix_published),
                )
            )
            continue
        touched = False
        if kev and episode.kev_on is None:
            episode.kev_on, touched = day, True
        if episode.overdue_on is None:
            overdue_on = overdue_from(organisation_id, severity, cvss, fix_published)
            if overdue_on is not None:
                episode.overdue_on, touched = overdue_on, True
        if touched:
            changed.append(episode)
    VulnerabilityEpisode.objects.bulk_create(new, batch_size=1000)
    VulnerabilityEpisode.objects.bulk_update(changed, ["kev_on", "overdue_on"], batch_size=1000)


def _record_graphs(day: dt.date) -> None:
    from mamori.organisations.models import Organisation
    from mamori.supplychain.models import Node
    from mamori.supplychain.services import export_graph

    owners = set(Node.objects.values_list("owner_id", flat=True).distinct())
    latest: dict[int, str] = {}
    for organisation_id, version_digest in GraphVersion.objects.order_by(
        "organisation_id", "-day"
    ).values_list("organisation_id", "digest"):
        latest.setdefault(organisation_id, version_digest)
    versions = []
    for organisation in Organisation.objects.filter(pk__in=owners | set(latest)).order_by("pk"):
        document = (
            export_graph(organisation)
            if organisation.pk in owners
            else {"schema": "mamori.supplygraph/1", "nodes": [], "requirements": []}
        )
        document_digest = content_digest(document)
        if latest.get(organisation.pk) != document_digest:
            versions.append(
                GraphVersion(
                    organisation=organisation, day=day, digest=document_digest, document=document
                )
            )
    GraphVersion.objects.bulk_create(versions)


def organisations_with_history(day: dt.date) -> list[int]:
    """The organisations sampled for ``day``: those taking part as applicants by its end (an
    administrator, contributor or board member). Certification bodies, the scheme owner, a
    supervisor and organisations known only by name (a working group's roster) have no figures
    of their own, and none are made up for them."""
    from mamori.organisations.models import APPLICANT_ROLES, Membership, Organisation

    _start, end = bounds(day)
    applicants = Membership.objects.filter(role__in=APPLICANT_ROLES, created_at__lt=end).values(
        "organisation_id"
    )
    return list(
        Organisation.objects.filter(created_at__lt=end, pk__in=applicants)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
