"""Signals other apps connect to.

``fleet_rematched`` is sent by the re-match task (``tasks.rematch_advisories``) once the hosts'
vulnerability rows, checks and verdicts have been patched and committed for the advisories one
import changed. ``advisory_ids`` names those advisories (a frozenset of OSV ids); ``run`` is the
advisory import (``advisories.ImportRun`` pk) that changed them, None when the re-match was not
started by an import. A receiver that reads the hosts' latest vulnerability rows of these
advisories now reads what the import made of them (early warning raises its software alerts
from them).

``host_evaluated`` is sent, in the transaction that stores it, when an upload's evaluation
becomes a host's latest and finds KEV-listed or overdue vulnerabilities; ``host_id`` names the
host. A receiver that must act on them queues its work through the outbox (it commits with the
evaluation or not at all).
"""

from __future__ import annotations

from django.dispatch import Signal

fleet_rematched = Signal()
host_evaluated = Signal()
