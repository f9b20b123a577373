"""Re-matching hosts after the advisories changed, without new evidence.

Two ways. ``rematch_hosts`` evaluates hosts' latest evidence again in full (a new evaluation,
triggered by ``rematch``). The set-based re-match (``rematch_advisories``, ``rematch_all``)
compares the changed advisories with the distinct targets of their packages, not with hosts,
then patches the vulnerability rows, the vulnerability checks and the update-management verdict
of the hosts holding an affected target, in one transaction (docs/rematch.md).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from mamori.core.bulk import insert_rows, update_rows
from mamori.core.controls import SECURITY_UPDATE_MANAGEMENT
from mamori.verification.models import (
    CheckResult,
    Evaluation,
    Host,
    HostTarget,
    MatchTarget,
    Trigger,
    VerdictChange,
    Vulnerability,
)
from mamori.verification.services.evaluations import (
    CatalogueSettings,
    EvaluationFailed,
    bundled_settings,
    catalogue_settings_for,
    evaluate_evidence,
    store_evaluation,
)
from mamori.verification.services.targets import (
    KEY_LOOKUP_CHUNK,
    load_targets,
    sorted_chunks,
    targets_with_keys,
)


def rematch_hosts(host_ids: Iterable[int], today: dt.date | None = None) -> int:
    """Evaluate the latest evidence of these hosts again (new advisories, same evidence);
    store each result as an evaluation triggered by ``rematch``. Returns how many."""
    as_of = today or timezone.localdate()
    settings_by_organisation: dict[int, CatalogueSettings] = {}
    done = 0
    hosts = (
        Host.objects.filter(pk__in=list(host_ids), latest_evidence__isnull=False)
        .select_related("latest_evidence")
        .order_by("pk")
    )
    for host in hosts.iterator(chunk_size=50):
        evidence = host.latest_evidence
        catalogue = settings_by_organisation.get(host.organisation_id)
        if catalogue is None:
            catalogue = catalogue_settings_for(host.organisation_id, as_of)
            settings_by_organisation[host.organisation_id] = catalogue
        try:
            evaluated = evaluate_evidence(evidence.payload, as_of=as_of, catalogue=catalogue)
        except EvaluationFailed:
            continue  # logged; the host keeps its previous evaluation
        with transaction.atomic():
            locked = Host.objects.select_for_update().filter(pk=host.pk).first()
            if locked is None or locked.latest_evidence_id != evidence.pk:
                continue  # a newer upload arrived meanwhile and was evaluated on arrival
            evaluation = store_evaluation(
                evidence, evaluated, as_of=as_of, catalogue=catalogue, trigger=Trigger.REMATCH
            )
            Host.objects.filter(pk=host.pk).update(latest_evaluation=evaluation)
        done += 1
    return done


# --- Set-based re-match: patch the vulnerability rows and verdicts ----------------------------

UPDATE_CONTROL = SECURITY_UPDATE_MANAGEMENT  # the one control a re-match can change


@dataclass
class RematchOutcome:
    """What a set-based re-match did, and where its time went (seconds by step)."""

    advisories: int = 0
    targets_compared: int = 0
    targets_affected: int = 0
    hosts_patched: int = 0
    verdicts_changed: int = 0
    hosts_reevaluated: int = 0
    rows_written: int = 0
    timings: dict[str, float] = field(default_factory=dict)


class _Clock:
    def __init__(self, outcome: RematchOutcome):
        self.outcome = outcome
        self.last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.outcome.timings[step] = self.outcome.timings.get(step, 0.0) + now - self.last
        self.last = now


def _settings_by_version(versions: Iterable[str]) -> dict[str, CatalogueSettings]:
    """The thresholds each evaluation was made with, by its catalogue version."""
    from mamori.catalogue.models import Catalogue

    versions = set(versions)
    found = {
        version: CatalogueSettings(version, dict(values))
        for version, values in Catalogue.objects.filter(
            version__in=[v for v in versions if v]
        ).values_list("version", "settings")
    }
    missing = versions - found.keys()
    if missing:
        bundled = bundled_settings()
        for version in missing:
            found[version] = CatalogueSettings(version, bundled.values)
    return found


def _matching_parameters(values: Mapping[str, Any]) -> tuple[int, float]:
    return int(values.get("patch_days", 14)), float(values.get("cvss_threshold", 7.0))


@dataclass(frozen=True)
class _Latest:
    host_id: int
    evaluation_id: int
    catalogue_version: str
    as_of: dt.date
    basis: Any
    verdict: str
    failed_checks: int
    counts: tuple[int, int, int, int]  # vulnerabilities, overdue, KEV-listed, KEV overdue


def _latest_evaluations(host_ids: Iterable[int]) -> dict[int, _Latest]:
    """The latest evaluation of each host, by evaluation id (without its document)."""
    from mamori.verification.evaluation import VulnerabilityBasis

    latest: dict[int, _Latest] = {}
    for chunk in sorted_chunks(host_ids):
        rows = (
            Host.objects.filter(pk__in=chunk, latest_evaluation__isnull=False)
            .values_list(
                "pk",
                "latest_evaluation_id",
                "latest_evaluation__catalogue_version",
                "latest_evaluation__as_of",
                "latest_evaluation__packages_complete",
                "latest_evaluation__vulnerability_coverage",
                "latest_evaluation__vulnerabilities_matched",
                f"latest_evaluation__{UPDATE_CONTROL}",
                "latest_evaluation__failed_checks",
                "latest_evaluation__vulnerabilities",
                "latest_evaluation__overdue_vulnerabilities",
                "latest_evaluation__kev_vulnerabilities",
                "latest_evaluation__kev_overdue_vulnerabilities",
            )
            .order_by()
        )
        for (
            host_id,
            pk,
            version,
            as_of,
            complete,
            coverage,
            matched,
            verdict,
            failed,
            *counts,
        ) in rows:
            latest[pk] = _Latest(
                host_id,
                pk,
                version,
                as_of,
                VulnerabilityBasis(complete, coverage, matched),
                verdict,
                failed,
                tuple(counts),
            )
    return latest


def _needs_full_evaluation(latest: _Latest) -> bool:
    """Only a full evaluation can tell whether advisories now cover a host that was not
    matched, or whose OS release had no advisories: the patch keeps the basis as it was."""
    return not latest.basis.matched or latest.basis.coverage == "no_advisories"


def rematch_advisories(advisory_ids: Iterable[str], today: dt.date | None = None) -> RematchOutcome:
    """Re-match the fleet after these advisories were added, changed or withdrawn (their
    current state is in the index): compare them with the distinct targets of their packages,
    then patch the vulnerability rows and the update-management verdict of the hosts that hold
    an affected target or had a finding of them — in one transaction."""
    from mamori.advisories.services import load_index

    outcome = RematchOutcome()
    clock = _Clock(outcome)
    as_of = today or timezone.localdate()
    ids = frozenset(str(advisory_id) for advisory_id in advisory_ids)
    outcome.advisories = len(ids)
    if not ids:
        return outcome
    index = load_index()
    clock.lap("index")
    keys: set[tuple[str, str]] = set()
    for advisory_id in ids:
        advisory = index.get(advisory_id)
        if advisory is not None:
            keys |= index.keys_for(advisory)
    candidates = load_targets(targets_with_keys(keys))
    outcome.targets_compared = len(candidates)
    affected = {
        pk
        for pk, target in candidates.items()
        if any(found["advisory"] in ids for found in index.match_targets([target], as_of=as_of))
    }
    outcome.targets_affected = len(affected)
    clock.lap("compare")

    holders: dict[int, set[int]] = defaultdict(set)
    for chunk in sorted_chunks(affected):
        for host_id, target_id in HostTarget.objects.filter(target_id__in=chunk).values_list(
            "host_id", "target_id"
        ):
            holders[host_id].add(target_id)
    # Hosts that had a finding of these advisories lose or change it.
    latest_ids = Host.objects.filter(latest_evaluation__isnull=False).values("latest_evaluation")
    had = set()
    for chunk in sorted_chunks(ids, KEY_LOOKUP_CHUNK):
        had.update(
            Vulnerability.objects.filter(advisory__in=chunk, evaluation_id__in=latest_ids)
            .values_list("evaluation__evidence__host_id", flat=True)
            .distinct()
        )
    # Hosts never matched, or without advisories for their release until now, are evaluated
    # in full when the advisories concern one of their packages (and, for the latter, their
    # release): only that can tell whether advisories now cover them.
    changed_platforms = {
        (affected.family, affected.release)
        for advisory_id in ids
        if (advisory := index.get(advisory_id)) is not None
        for affected in advisory.affected
    }
    unmatched = set()
    for chunk in sorted_chunks(candidates):
        for host_id, target_id, matched in (
            HostTarget.objects.filter(target_id__in=chunk)
            .filter(
                Q(host__latest_evaluation__vulnerabilities_matched=False)
                | Q(host__latest_evaluation__vulnerability_coverage="no_advisories")
            )
            .values_list("host_id", "target_id", "host__latest_evaluation__vulnerabilities_matched")
        ):
            target = candidates[target_id]
            if not matched or any(
                (target.family, release) in changed_platforms
                for release in target.releases
                if release
            ):
                unmatched.add(host_id)
    latest = _latest_evaluations(set(holders) | had | unmatched)
    clock.lap("hosts")
    # Those not to be evaluated in full that still lack coverage keep their evaluation: the
    # patch would not change their basis, and these advisories are not for their release.
    full = sorted(
        unmatched
        | {
            item.host_id
            for item in latest.values()
            if item.host_id in holders and _needs_full_evaluation(item)
        }
    )
    full_set = set(full)
    patch = {
        pk: item
        for pk, item in latest.items()
        if item.host_id not in full_set and not _needs_full_evaluation(item)
    }
    if full:
        outcome.hosts_reevaluated = rematch_hosts(full, as_of)
        clock.lap("full evaluations")

    settings = _settings_by_version(item.catalogue_version for item in patch.values())
    records: dict[tuple, list[dict]] = {}
    new_rows: dict[int, list[dict]] = {}
    for pk, item in patch.items():
        held = frozenset(holders.get(item.host_id, ()))
        group = (held, item.catalogue_version)
        if group not in records:
            patch_days, threshold = _matching_parameters(settings[item.catalogue_version].values)
            records[group] = [
                found
                for found in index.match_targets(
                    [candidates[target_id] for target_id in sorted(held)],
                    as_of=as_of,
                    patch_days=patch_days,
                    cvss_threshold=threshold,
                )
                if found["advisory"] in ids
            ]
        new_rows[pk] = records[group]
    clock.lap("match")
    _patch(patch, new_rows, settings, replacing=ids, outcome=outcome, clock=clock)
    return outcome


def rematch_all(today: dt.date | None = None) -> RematchOutcome:
    """Re-match every host's latest evaluation against the whole index, once per distinct
    target instead of once per host (after a bulk import or a first import)."""
    from mamori.advisories.services import load_index

    outcome = RematchOutcome()
    clock = _Clock(outcome)
    as_of = today or timezone.localdate()
    index = load_index()
    clock.lap("index")
    used = HostTarget.objects.values("target_id")
    targets = load_targets(MatchTarget.objects.filter(pk__in=used).values_list("pk", flat=True))
    outcome.targets_compared = len(targets)
    affected = {pk for pk, target in targets.items() if index.match_targets([target], as_of=as_of)}
    outcome.targets_affected = len(affected)
    clock.lap("compare")
    holders: dict[int, set[int]] = defaultdict(set)
    for chunk in sorted_chunks(affected):
        for host_id, target_id in HostTarget.objects.filter(target_id__in=chunk).values_list(
            "host_id", "target_id"
        ):
            holders[host_id].add(target_id)
    latest = _latest_evaluations(Host.objects.values_list("pk", flat=True))
    clock.lap("hosts")
    full = _covered_now(
        {item.host_id: item for item in latest.values() if _needs_full_evaluation(item)}
    )
    patch = {pk: item for pk, item in latest.items() if not _needs_full_evaluation(item)}
    if full:
        outcome.hosts_reevaluated = rematch_hosts(full, as_of)
        clock.lap("full evaluations")
    settings = _settings_by_version(item.catalogue_version for item in patch.values())
    records: dict[tuple, list[dict]] = {}
    new_rows: dict[int, list[dict]] = {}
    for pk, item in patch.items():
        held = frozenset(holders.get(item.host_id, ()))
        group = (held, item.catalogue_version)
        if group not in records:
            patch_days, threshold = _matching_parameters(settings[item.catalogue_version].values)
            records[group] = index.match_targets(
                [targets[target_id] for target_id in sorted(held)],
                as_of=as_of,
                patch_days=patch_days,
                cvss_threshold=threshold,
            )
        new_rows[pk] = records[group]
    clock.lap("match")
    _patch(patch, new_rows, settings, replacing=None, outcome=outcome, clock=clock)
    return outcome


def _covered_now(hosts: Mapping[int, _Latest]) -> list[int]:
    """Of these hosts (never matched, or without advisories for their release), those a full
    evaluation could now tell more about: never matched, or advisories for their release exist
    now (their targets name the release)."""
    from mamori.advisories.services import stored_platforms

    platforms = stored_platforms()
    chosen = {host_id for host_id, item in hosts.items() if not item.basis.matched}
    rest = [host_id for host_id in hosts if host_id not in chosen]
    for chunk in sorted_chunks(rest):
        for host_id, family, releases in (
            HostTarget.objects.filter(host_id__in=chunk)
            .values_list("host_id", "target__family", "target__releases")
            .distinct()
        ):
            if any((family, release) in platforms for release in releases or () if release):
                chosen.add(host_id)
    return sorted(chosen)


@transaction.atomic
def _patch(
    patch: Mapping[int, _Latest],
    new_rows: Mapping[int, list[dict]],
    settings: Mapping[str, CatalogueSettings],
    *,
    replacing: frozenset[str] | None,
    outcome: RematchOutcome,
    clock: _Clock,
) -> None:
    """Replace the vulnerability rows of these evaluations (those of ``replacing`` advisories,
    or all), move their counters by what was replaced, decide the vulnerability checks again
    from the counters, and patch the check rows and the update-management verdict where a
    status changed. Evaluations not named keep everything. Nothing here reads a host's other
    vulnerabilities: the work grows with the rows replaced, not with the rows kept."""
    from mamori.verification.evaluation import (
        VulnerabilitySummary,
        control_verdicts,
        effective_settings,
        is_kev_overdue,
        vulnerability_check_ids,
        vulnerability_statuses,
    )

    if not patch:
        return
    evaluation_ids = sorted(patch)
    kev_days = {
        version: effective_settings(values.values)["kev_patch_days"]
        for version, values in settings.items()
    }
    counts = {pk: list(patch[pk].counts) for pk in evaluation_ids}

    def count(pk: int, item: Mapping[str, Any], step: int) -> None:
        figures = counts[pk]
        figures[0] += step
        figures[1] += step * bool(item.get("overdue"))
        figures[2] += step * bool(item.get("kev"))
        figures[3] += step * is_kev_overdue(item, kev_days[patch[pk].catalogue_version])

    for chunk in sorted_chunks(evaluation_ids):
        rows = Vulnerability.objects.filter(evaluation_id__in=chunk)
        if replacing is None:
            for pk in chunk:
                counts[pk] = [0, 0, 0, 0]
            rows.delete()
            continue
        for advisories in sorted_chunks(replacing, KEY_LOOKUP_CHUNK):
            replaced = rows.filter(advisory__in=advisories)
            for pk, overdue, kev, fixed, days in replaced.values_list(
                "evaluation_id", "overdue", "kev", "fixed_version", "days_since_fix"
            ):
                item = {"overdue": overdue, "kev": kev, "fixed_version": fixed}
                count(pk, item | {"days_since_fix": days}, -1)
            replaced.delete()
    written = []
    for pk in evaluation_ids:
        for found in new_rows.get(pk, ()):
            written.append(Vulnerability.from_record(pk, dict(found)))
            count(pk, found, +1)
    insert_rows(Vulnerability, written)
    outcome.rows_written = len(written)
    clock.lap("write rows")

    decided_again = vulnerability_check_ids()
    stored: dict[int, dict[str, tuple[int, str]]] = defaultdict(dict)
    for chunk in sorted_chunks(evaluation_ids):
        for pk, evaluation_id, check_id, status in CheckResult.objects.filter(
            evaluation_id__in=chunk, check_id__in=sorted(decided_again)
        ).values_list("pk", "evaluation_id", "check_id", "status"):
            stored[evaluation_id][check_id] = (pk, status)
    clock.lap("read rows")

    decided: dict[tuple, dict[str, str]] = {}
    changed: dict[int, dict[str, str]] = {}
    for pk in evaluation_ids:
        item = patch[pk]
        total, overdue, _kev, kev_overdue = counts[pk]
        key = (item.basis, total, overdue, kev_overdue, item.catalogue_version, item.as_of)
        statuses = decided.get(key)
        if statuses is None:
            statuses = decided[key] = vulnerability_statuses(
                item.basis,
                VulnerabilitySummary(total, overdue, kev_overdue),
                settings=settings[item.catalogue_version].values,
                as_of=item.as_of,
            )
        before = {check_id: status for check_id, (_row, status) in stored[pk].items()}
        if statuses != before:
            changed[pk] = statuses
    # Only where a check's status changed can the verdict change: read the control's other
    # checks for those evaluations alone.
    others: dict[int, list[str]] = defaultdict(list)
    for chunk in sorted_chunks(changed):
        for evaluation_id, status in (
            CheckResult.objects.filter(evaluation_id__in=chunk, control=UPDATE_CONTROL)
            .exclude(check_id__in=sorted(decided_again))
            .values_list("evaluation_id", "status")
        ):
            others[evaluation_id].append(status)
    clock.lap("decide")

    now = timezone.now()
    evaluation_updates = []
    check_updates, check_inserts, check_deletes = [], [], []
    changes = []
    checks_by_id = {check.id: check for check in _vulnerability_check_objects()}
    for pk in evaluation_ids:
        item = patch[pk]
        verdict, failed = item.verdict, item.failed_checks
        statuses = changed.get(pk)
        if statuses is not None:
            previous = stored[pk]
            verdict = control_verdicts(
                [{"control": UPDATE_CONTROL, "status": s} for s in others.get(pk, ())]
                + [
                    {"control": checks_by_id[check_id].control, "status": status}
                    for check_id, status in statuses.items()
                ]
            )[UPDATE_CONTROL]
            failed += sum(1 for status in statuses.values() if status == "fail") - sum(
                1 for _row, status in previous.values() if status == "fail"
            )
            for check_id, status in statuses.items():
                if check_id in previous:
                    if previous[check_id][1] != status:
                        check_updates.append((previous[check_id][0], status))
                else:
                    check = checks_by_id[check_id]
                    check_inserts.append(
                        CheckResult(
                            evaluation_id=pk,
                            check_id=check.id,
                            control=check.control,
                            status=status,
                            severity=check.severity[:16],
                        )
                    )
            check_deletes += [
                row for check_id, (row, _s) in previous.items() if check_id not in statuses
            ]
        evaluation_updates.append((pk, verdict, *counts[pk], failed, now))
        if verdict != item.verdict:
            changes.append(
                VerdictChange(
                    host_id=item.host_id,
                    evaluation_id=pk,
                    changed_at=now,
                    control=UPDATE_CONTROL,
                    before=item.verdict,
                    after=verdict,
                    # The advisories found now, or (a withdrawal) those that were replaced.
                    advisories=sorted(
                        {found["advisory"] for found in new_rows.get(pk, ())} or (replacing or ())
                    )[:50],
                )
            )
    update_rows(
        Evaluation,
        [
            UPDATE_CONTROL,
            "vulnerabilities",
            "overdue_vulnerabilities",
            "kev_vulnerabilities",
            "kev_overdue_vulnerabilities",
            "failed_checks",
            "rematched_at",
        ],
        evaluation_updates,
    )
    update_rows(CheckResult, ["status"], check_updates)
    if check_inserts:
        CheckResult.objects.bulk_create(check_inserts)
    if check_deletes:
        CheckResult.objects.filter(pk__in=check_deletes).delete()
    insert_rows(VerdictChange, changes)
    outcome.hosts_patched = len(evaluation_updates)
    outcome.verdicts_changed = len(changes)
    clock.lap("update")


def _vulnerability_check_objects():
    from mamori.verification.evaluation import vulnerability_checks

    return vulnerability_checks()
