"""Background work for verification: evaluating uploaded evidence, and re-matching the fleet
when advisories change.

``evaluate_evidence_upload`` checks, evaluates and stores one upload the API received
(``ingest.evaluate_upload``); running it twice stores nothing twice.

An advisory import sends ``advisories_changed(keys=..., changes=IndexChanges(...))`` after it
commits. ``rematch_advisories`` brings the process's advisory index up to date (in place when
it is exactly one import behind), compares the changed advisories with the distinct package
versions of the fleet and patches the hosts that hold an affected one, in one transaction
(``rematch.rematch_advisories``). An import that changed more advisories than
``FULL_REMATCH_ABOVE`` re-matches everything, set-based (``rematch.rematch_all``). Embedded (no
broker) the task runs in-process; on Redis a worker runs it. When it is done it sends
``signals.fleet_rematched`` with the advisories and the import run, so that what reads the new
vulnerability rows (early warning's software alerts) runs after them, never before.
"""

from __future__ import annotations

import logging

from mamori.advisories.signals import IndexChanges
from mamori.celery import app
from mamori.core import outbox
from mamori.verification.services import ingest, rematch
from mamori.verification.signals import fleet_rematched

log = logging.getLogger(__name__)

# Above this many changed advisories, comparing each with its packages' targets costs more
# than matching every target once against the whole index.
FULL_REMATCH_ABOVE = 2000


def _changes_from(payload: dict | None) -> IndexChanges | None:
    if not payload:
        return None
    return IndexChanges(
        advisory_ids=frozenset(payload.get("advisory_ids") or ()),
        kev_changed=bool(payload.get("kev_changed")),
        eol_changed=bool(payload.get("eol_changed")),
        generation_before=_generation(payload.get("generation_before")),
        generation_after=_generation(payload.get("generation_after")) or (0, None),
        bumps=int(payload.get("bumps") or 0),
    )


def _generation(value) -> tuple | None:
    if not value:
        return None
    number, token = value
    return (int(number), _uuid(token))


def _uuid(token):
    import uuid

    return uuid.UUID(str(token)) if token else None


def _payload(changes: IndexChanges) -> dict:
    def generation(value):
        return None if value is None else [value[0], str(value[1]) if value[1] else None]

    return {
        "advisory_ids": sorted(changes.advisory_ids),
        "kev_changed": changes.kev_changed,
        "eol_changed": changes.eol_changed,
        "generation_before": generation(changes.generation_before),
        "generation_after": generation(changes.generation_after),
        "bumps": changes.bumps,
    }


@app.task(name="mamori.verification.tasks.evaluate_evidence_upload")
def evaluate_evidence_upload(upload_id: int) -> str:
    """Evaluate one received upload; returns its state afterwards."""
    receipt = ingest.evaluate_upload(upload_id)
    return receipt.state if receipt is not None else "missing"


@app.task(name="mamori.verification.tasks.rematch_advisories")
def rematch_advisories(changes: dict) -> dict:
    """Re-match after one import run; returns what it did (counts and timings)."""
    from mamori.advisories.services import apply_changes

    parsed = _changes_from(changes)
    in_place = apply_changes(parsed) if parsed is not None else False
    if parsed is None or len(parsed.advisory_ids) > FULL_REMATCH_ABOVE:
        outcome = rematch.rematch_all()
    else:
        outcome = rematch.rematch_advisories(parsed.advisory_ids)
    if parsed is not None:
        # The import run travels with the payload (``on_advisories_changed``); a payload queued
        # without it still re-matches, and its receivers are told the run is unknown.
        fleet_rematched.send(
            sender=rematch_advisories,
            advisory_ids=parsed.advisory_ids,
            run=_run_of(changes),
        )
    log.info(
        "re-match: %d advisories, %d of %d targets affected, %d hosts patched (%d verdicts "
        "changed), %d evaluated in full; index updated in place: %s",
        outcome.advisories,
        outcome.targets_affected,
        outcome.targets_compared,
        outcome.hosts_patched,
        outcome.verdicts_changed,
        outcome.hosts_reevaluated,
        in_place,
    )
    return {
        "advisories": outcome.advisories,
        "targets_compared": outcome.targets_compared,
        "targets_affected": outcome.targets_affected,
        "hosts_patched": outcome.hosts_patched,
        "verdicts_changed": outcome.verdicts_changed,
        "hosts_reevaluated": outcome.hosts_reevaluated,
        "index_in_place": in_place,
    }


def _run_of(changes: dict | None) -> int | None:
    run = (changes or {}).get("run")
    return int(run) if isinstance(run, int) and not isinstance(run, bool) else None


def on_advisories_changed(sender=None, keys=(), changes=None, run=None, **_kwargs) -> None:
    """Receiver of ``advisories_changed`` (sent after the import's transaction committed): the
    re-match goes into the outbox at once (its row commits on its own), so a broker that is
    away delays it and does not fail the import. The import run's id goes with it."""
    if changes is None and not keys:
        return
    payload = _payload(changes) if changes is not None else None
    if payload is not None and run is not None:
        payload["run"] = int(run)
    outbox.enqueue(rematch_advisories, payload)
