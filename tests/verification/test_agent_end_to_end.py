"""The real agent, run as a program, uploads to a running server with an agent token."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest
from django.utils import timezone

from mamori.accounts.models import TokenKind
from mamori.verification.models import Evidence, Host
from tests.conftest import World, api_token
from tests.verification.factory import REPO, debian12_evidence

pytestmark = pytest.mark.django_db(transaction=True)


def _agent(*arguments: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("MAMORI_AGENT_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "mamori_agent", *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_the_agent_collects_and_uploads(live_server, catalogue, tmp_path):
    world = World()
    token_file = tmp_path / "agent.token"
    token_file.write_text(api_token(world.admin, world.bank, TokenKind.AGENT) + "\n")
    token_file.chmod(0o600)

    collected = _agent("upload", "--url", live_server.url, "--token-file", str(token_file))
    assert collected.returncode == 0, collected.stderr
    assert len(collected.stdout.strip().splitlines()) == 1
    host = Host.objects.get(organisation=world.bank)
    assert host.latest_evaluation is not None

    evidence_file = tmp_path / "evidence.json"
    evidence_file.write_text(json.dumps(debian12_evidence(hostname="from-file")))
    arguments = ("upload", "--url", live_server.url, "--token-file", str(token_file))
    first = _agent(*arguments, "--file", str(evidence_file))
    second = _agent(*arguments, "--file", str(evidence_file))
    assert first.returncode == second.returncode == 0, (first.stderr, second.stderr)
    assert "stored and evaluated (HTTP 202)" in first.stdout
    assert "already received (duplicate) (HTTP 200)" in second.stdout
    assert Evidence.objects.filter(host__hostname="from-file").count() == 1

    # A refusal comes back as one line with the server's reason and a non-zero exit.
    future = debian12_evidence(collected_at=timezone.now() + dt.timedelta(days=3))
    evidence_file.write_text(json.dumps(future))
    refused = _agent(*arguments, "--file", str(evidence_file))
    assert refused.returncode != 0
    assert "$.collected_at" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
