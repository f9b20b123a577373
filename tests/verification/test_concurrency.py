"""Concurrent uploads of the same evidence: one is stored, the others are acknowledged as
duplicates, none fails. Runs with real transactions (and threads with their own connections)."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection

from mamori.accounts.models import TokenKind
from mamori.verification.models import Evaluation, Evidence, Host
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
    assert sorted(statuses) == [200] * (UPLOADERS - 1) + [201], bodies
    assert sum(1 for body in bodies if body["duplicate"]) == UPLOADERS - 1
    assert {body["evidence"] for body in bodies} == {Evidence.objects.get().pk}
    assert Host.objects.count() == 1
    assert Evaluation.objects.count() == 1
