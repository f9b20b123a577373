"""The upload answers before the evaluation: 120,000 packages are received, stored and
acknowledged (202) in about a second instead of being evaluated inside the request (23 s, past
the web server's timeout); the status URL is read by the token that sent it and by the
organisation's members only; and the evaluation, run twice, stores once."""

from __future__ import annotations

import gzip
import json
import time

import pytest
from django.test import Client, TestCase

from mamori.accounts.models import TokenKind
from mamori.audit.models import AuditEvent
from mamori.verification.models import Evaluation, Evidence, EvidenceUpload, Host
from mamori.verification.tasks import evaluate_evidence_upload
from tests.conftest import api_token, client_for
from tests.verification.conftest import post_evidence, upload_status
from tests.verification.factory import debian12_evidence

pytestmark = pytest.mark.django_db

PACKAGES = 120_000


@pytest.fixture(scope="module")
def large_upload() -> bytes:
    """A Debian host's evidence with 120,000 packages, compressed as the agent sends it (about
    0.4 MB gzip, 14 MB of JSON: under the 16 MiB limit)."""
    evidence = debian12_evidence(hostname="big-01", machine_id="b1" * 16)
    items = evidence["packages"]["items"]
    items += [
        {
            "manager": "dpkg",
            "name": f"l{index}",
            "version": "1.0",
            "architecture": "all",
            "source_name": f"s{index // 4}",
            "source_version": "1.0",
        }
        for index in range(PACKAGES - len(items))
    ]
    return gzip.compress(json.dumps(evidence, separators=(",", ":")).encode(), mtime=0)


def test_a_large_upload_is_acknowledged_without_being_evaluated(world, large_upload):
    key = api_token(world.admin, world.bank, TokenKind.AGENT)
    with TestCase.captureOnCommitCallbacks(execute=False) as queued:
        started = time.perf_counter()
        response = post_evidence(key, large_upload, headers={"HTTP_CONTENT_ENCODING": "gzip"})
        elapsed = time.perf_counter() - started
    assert response.status_code == 202, response.content[:500]
    assert elapsed < 5.0, f"{elapsed:.2f} s to acknowledge {PACKAGES:,} packages"
    print(f"\n{PACKAGES:,} packages ({len(large_upload):,} bytes gzip): 202 after {elapsed:.2f} s")
    body = response.json()
    assert (body["status"], body["host"], body["controls"]) == ("pending", None, None)
    assert response["Retry-After"] == "2"
    assert not Evidence.objects.exists()
    assert not Evaluation.objects.exists()
    receipt = EvidenceUpload.objects.get()
    assert (receipt.hostname, receipt.state) == ("big-01", "pending")
    assert len(receipt.body) < len(large_upload) * 2  # stored compressed
    assert len(queued) == 1  # the evaluation, queued for after the commit


def test_the_status_is_for_the_token_that_sent_it_and_the_organisations_members(
    world, evidence_status
):
    url, key = evidence_status
    assert upload_status(key, url)["status"] == "done"
    # Another agent token of the same organisation did not send it.
    other_agent = api_token(world.contributor, world.bank, TokenKind.AGENT)
    assert _get(url, other_agent).status_code == 404
    # Members: with their own token, or signed in.
    assert _get(url, api_token(world.contributor, world.bank)).status_code == 200
    assert client_for(world.signatory).get(url).status_code == 200
    # Everyone else: 404, whoever they are (the assessor reviewing the bank included).
    for user, organisation in (
        (world.other_admin, world.other_bank),
        (world.assessor, world.body),
        (world.owner, world.secretariat),
    ):
        response = _get(url, api_token(user, organisation))
        assert response.status_code == 404
        assert response.json() == {"detail": "Not found.", "code": "not_found"}
    assert client_for(world.outsider).get(url).status_code == 404
    assert Client().get(url).status_code == 401
    missing = url.rsplit("/", 2)[0] + "/999999/"
    assert _get(missing, key).status_code == 404


def test_evaluating_twice_stores_once(world, agent_key, evidence):
    """A redelivered task (late acknowledgement) finds the upload done and stores nothing."""
    with TestCase.captureOnCommitCallbacks(execute=False) as queued:
        response = post_evidence(agent_key, evidence)
    upload = response.json()["upload"]
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert evaluate_evidence_upload(upload) == "done"
        queued[0]()
        assert evaluate_evidence_upload(upload) == "done"
    assert Evidence.objects.count() == Evaluation.objects.count() == Host.objects.count() == 1
    assert AuditEvent.objects.filter(action="evidence.uploaded").count() == 1
    assert evaluate_evidence_upload(999_999) == "missing"


def test_a_failed_upload_may_be_sent_again(agent_key, evidence, monkeypatch):
    """Once the evaluation failed (a bug of ours, later fixed), the same evidence is a new
    upload, not a duplicate of the failure."""
    from mamori.verification import evaluation

    real = evaluation.evaluate
    monkeypatch.setattr(evaluation, "evaluate", lambda *a, **k: {}["broken"])
    with TestCase.captureOnCommitCallbacks(execute=True):
        first = post_evidence(agent_key, evidence)
    assert upload_status(agent_key, first["Location"])["status"] == "failed"
    monkeypatch.setattr(evaluation, "evaluate", real)
    with TestCase.captureOnCommitCallbacks(execute=True):
        second = post_evidence(agent_key, evidence)
    assert second.status_code == 202
    assert second.json()["duplicate"] is False
    assert upload_status(agent_key, second["Location"])["status"] == "done"
    assert EvidenceUpload.objects.count() == 2


@pytest.fixture
def evidence_status(world, evidence) -> tuple[str, str]:
    key = api_token(world.admin, world.bank, TokenKind.AGENT)
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = post_evidence(key, evidence)
    return response["Location"], key


def _get(url: str, key: str):
    return Client(HTTP_ACCEPT_LANGUAGE="en").get(url, HTTP_AUTHORIZATION=f"Token {key}")
