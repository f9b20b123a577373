"""The built agent, under the oldest Python at hand (3.9 where there is one), uploading to the real Mamori server (Django's live server):
what an operator does after ``make agent``."""

from __future__ import annotations

import json
import subprocess

import pytest

from mamori.accounts.models import ApiToken, TokenKind
from mamori.organisations.models import Category, Organisation, Role
from mamori.verification.models import Evidence, EvidenceUpload, Host

from .conftest import clean_environment

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def agent_token():
    from tests.conftest import make_user

    bank = Organisation.objects.create(
        name_ja="エージェント銀行", name_en="Agent Bank", category=Category.FINANCIAL_INSTITUTION
    )
    admin = make_user("agent-admin", bank, Role.APPLICANT_ADMIN)
    _token, key = ApiToken.issue(user=admin, organisation=bank, name="hosts", kind=TokenKind.AGENT)
    return bank, key


def test_upload_to_the_server(live_server, agent_token, pyz, oldest_python, debian_root, tmp_path):
    bank, key = agent_token
    environment = {**clean_environment(), "MAMORI_AGENT_TOKEN": key}
    evidence_file = tmp_path / "evidence.json"
    collected = subprocess.run(
        [oldest_python, str(pyz), "collect", "--root", str(debian_root), "-o", str(evidence_file)],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert collected.returncode == 0, collected.stderr
    command = [
        oldest_python,
        str(pyz),
        "upload",
        "--url",
        live_server.url,
        "--file",
        str(evidence_file),
    ]
    first = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    assert first.returncode == 0, first.stderr
    # Embedded (no broker): the evaluation ran when the upload was committed, before the
    # answer, so the 202 already says done and the agent does not poll.
    assert "stored and evaluated (HTTP 202); firewalls=" in first.stdout
    assert key not in first.stdout + first.stderr
    again = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    assert again.returncode == 0, again.stderr
    assert "already received (duplicate) (HTTP 200)" in again.stdout
    host = Host.objects.get(organisation=bank)
    assert host.hostname == "bank-web-01"
    assert Evidence.objects.filter(host=host).count() == 1
    stored = Evidence.objects.get(host=host).payload
    assert stored == json.loads(evidence_file.read_text())
    assert EvidenceUpload.objects.get().state == "done"

    wrong = subprocess.run(
        [*command[:-2], "--file", str(evidence_file)],
        capture_output=True,
        text=True,
        env={**environment, "MAMORI_AGENT_TOKEN": "mam_not-a-real-token"},
        check=False,
    )
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("mamori-agent: upload failed: HTTP 401")
    assert len(wrong.stderr.splitlines()) == 1
