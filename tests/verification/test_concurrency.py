"""Concurrent uploads of the same evidence: one is stored, the others are acknowledged as
duplicates, none fails. Runs with real transactions (and threads with their own connections);
without a broker each evaluation runs in its request once the upload is committed."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection

from mamori.accounts.models import TokenKind
from mamori.verification.models import Evaluation, Evidence, EvidenceUpload, Host
from tests.conftest import World, api_token
from tests.verification.conftest import post_evidence
from tests.verification.factory import debian12_evidence

pytestmark = pytest.mark.django_db(transaction=True)

UPLOADERS = 6


def test_concurrent_uploads_of_the_same_evidence(catalogue):
    world = World()
    key = api_token(world.admin, world.bank, TokenKind.AGENT)
    raw = json.dumps(debian12_evidence(hostname="race-01")).encode()
    barrier = threading.Barrier(UPLOADERS)
    statuses: list[int] = []
    bodies: list[dict] = []
    errors: list[BaseException] = []

    def upload() -> None:
        try:
            barrier.wait(timeout=30)
            response = post_evidence(key, raw)
            statuses.append(response.status_code)
            bodies.append(response.json())
        except BaseException as exc:  # reported below, with the thread's failure
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=upload) for _ in range(UPLOADERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    new = [
        (code, body) for code, body in zip(statuses, bodies, strict=True) if not body["duplicate"]
    ]
    assert len(new) == 1, bodies
    code, body = new[0]
    # Embedded (no broker): the evaluation ran at the commit, before the answer.
    assert (code, body["status"]) == (202, "done"), body
    # The others were acknowledged while it was pending (202) or once it was done (200).
    assert set(statuses) <= {200, 202}, statuses
    assert {body["upload"] for body in bodies} == {EvidenceUpload.objects.get().pk}
    assert body["evidence"] == Evidence.objects.get().pk
    assert Host.objects.count() == 1
    assert Evaluation.objects.count() == 1
