"""Helpers for the verification tests: uploading evidence through the real API."""

from __future__ import annotations

import gzip
import json

import pytest
from django.test import Client, TestCase

from mamori.accounts.models import TokenKind
from tests.conftest import api_token
from tests.verification.factory import debian12_evidence


def post_evidence(
    key: str | None,
    body,
    *,
    compress: bool = False,
    content_type: str = "application/json",
    headers: dict | None = None,
):
    """POST to /api/evidence/ like the agent does; ``body`` is a document or raw bytes."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    extra = dict(headers or {})
    if compress:
        raw = gzip.compress(raw)
        extra["HTTP_CONTENT_ENCODING"] = "gzip"
    if key:
        extra["HTTP_AUTHORIZATION"] = f"Token {key}"
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    return client.generic("POST", "/api/evidence/", raw, content_type=content_type, **extra)


def upload_evidence(key: str, body, **kwargs) -> tuple:
    """POST like the agent, let the queued evaluation run once the upload is committed (as a
    worker does; in-process here, as on the embedded default), and read the upload's status
    with the same token. Returns the POST's response and the status (None when refused)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = post_evidence(key, body, **kwargs)
    if response.status_code not in (200, 202):
        return response, None
    return response, upload_status(key, response.json()["status_url"])


def upload_status(key: str, url: str) -> dict:
    answer = Client().get(url, HTTP_AUTHORIZATION=f"Token {key}")
    assert answer.status_code == 200, answer.content[:500]
    return answer.json()


def evaluated(key: str, body, **kwargs) -> dict:
    """Upload and expect it accepted (202) and evaluated: the status, done."""
    response, status = upload_evidence(key, body, **kwargs)
    assert response.status_code == 202, response.content[:500]
    assert response["Location"] == response.json()["status_url"]
    assert status["status"] == "done", status
    return status


@pytest.fixture
def agent_key(world) -> str:
    """An upload-only agent token of alice's bank."""
    return api_token(world.admin, world.bank, TokenKind.AGENT)


@pytest.fixture
def evidence() -> dict:
    return debian12_evidence()


def store(user, organisation, payload: dict):
    """Upload through the service the API calls (no token: as a signed-in member would)."""
    from mamori.verification import services

    body = json.dumps(payload).encode("utf-8")
    return services.accept_upload(
        services.AgentUpload(organisation=organisation, body=body, user=user)
    )


def import_advisories(*paths) -> None:
    """Import advisory files with the real importer, running what it defers to after commit
    (the ``advisories_changed`` signal and so the re-match)."""
    from django.core.management import call_command
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("advisories", "import", *[str(path) for path in paths], "--quiet")
