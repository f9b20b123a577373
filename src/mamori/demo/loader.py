"""Everything ``mamori demo`` loads, in one call: the roster and the fictitious scheme
(``builder``), the hosts with agent evidence (``hosts``), the supply-chain surveys
(``supplychain``), the early-warning claims, alerts and webhook (``earlywarning``) and two
years of board-reporting samples with a signed and an unsigned pack (``reporting``).
Idempotent, so a test module can build the demo once and read it in every test, and
``mamori demo`` can be run again on a loaded database."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from mamori.demo import builder, earlywarning, hosts, supplychain
from mamori.demo import reporting as board_reporting

CREDENTIALS_FILE = "demo-credentials.json"


@dataclass
class Loaded:
    created: bool  # the scheme demo was built by this call (False: it was there already)
    credentials_file: Path
    credentials: list[builder.DemoUser]
    hosts: hosts.Loaded
    supplychain: supplychain.Result
    earlywarning: earlywarning.Result
    reporting: board_reporting.Result


def load(var_dir: Path, *, now: dt.datetime | None = None) -> Loaded:
    """Load what is not loaded yet; the demo users' passwords go to ``var_dir`` (mode 0600).
    Raises ``builder.EarlierDemoLoaded`` on a database that holds the earlier demo."""
    credentials_file = Path(var_dir) / CREDENTIALS_FILE
    created = not builder.already_loaded()
    if created:
        credentials = builder.build(credentials_file)
    else:
        credentials = builder.read_credentials(credentials_file)
    # Hosts after the organisations exist; they check in again on a later day, as deployed
    # agents would.
    loaded_hosts = hosts.build(now=now)
    chains = supplychain.build()
    # After the surveys: a supplier's alert reaches the bank through the bank's survey.
    warnings = earlywarning.build(now=now)
    # Last: the samples are computed from everything above.
    reporting = board_reporting.build(now=now)
    return Loaded(created, credentials_file, credentials, loaded_hosts, chains, warnings, reporting)
