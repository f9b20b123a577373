"""Background work for verification: re-matching hosts when advisories change.

An advisory import sends ``advisories_changed(keys={(family, name), ...})`` after it commits.
``rematch_for_keys`` finds, through the ``HostPackageKey`` index, the hosts whose latest evidence
has one of those packages, and queues them in batches; ``rematch_hosts`` evaluates each batch
again. Embedded (no broker) both run in-process; on Redis the batches spread over the workers.
"""

from __future__ import annotations

import logging

from mamori.celery import app
from mamori.verification import services

log = logging.getLogger(__name__)


@app.task(name="mamori.verification.tasks.rematch_for_keys")
def rematch_for_keys(keys: list[list[str]]) -> int:
    """Queue a re-match of every host affected by advisories for these (family, name) keys;
    returns how many hosts were queued."""
    host_ids = services.hosts_with_keys((family, name) for family, name in keys)
    for start in range(0, len(host_ids), services.REMATCH_BATCH):
        rematch_hosts.delay(host_ids[start : start + services.REMATCH_BATCH])
    log.info("re-match: %d package keys, %d hosts queued", len(keys), len(host_ids))
    return len(host_ids)


@app.task(name="mamori.verification.tasks.rematch_hosts")
def rematch_hosts(host_ids: list[int]) -> int:
    return services.rematch_hosts(host_ids)


def on_advisories_changed(sender=None, keys=(), **_kwargs) -> None:
    """Receiver of ``advisories_changed`` (sent after the import's transaction committed)."""
    if not keys:
        return
    rematch_for_keys.delay(sorted([str(family), str(name)] for family, name in keys))
