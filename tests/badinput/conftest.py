"""Shared tools for the bad-input tests: a private evidence folder per test, a footprint of
everything a refused request could have written, and clients that speak English."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from mamori.assessments.models import Answer, Assessment, Attachment, Decision, Mark
from mamori.audit.models import AuditEvent
from mamori.certificates.models import Certificate
from tests.conftest import api_token, client_for


@pytest.fixture(autouse=True)
def evidence_root(settings, tmp_path) -> Path:
    """Each test stores files in its own folder, so "no stray file" is an exact check and
    parallel runs never see each other's uploads."""
    root = tmp_path / "private"
    root.mkdir()
    settings.PRIVATE_FILES_ROOT = root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "mamori.core.storage.PrivateFileStorage",
            "OPTIONS": {"location": root, "base_url": None},
        },
    }
    return root


def stored_files(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


@dataclass(frozen=True)
class Footprint:
    """Everything about one assessment that a request could write."""

    state: str
    round: int
    answers_digest: str
    declared_name: str
    declared_at: object
    assessor_id: int | None
    answers: dict
    marks: tuple
    decisions: int
    certificates: int
    attachments: int
    audit_events: int
    files: frozenset

    @classmethod
    def of(cls, assessment: Assessment, root: Path) -> Footprint:
        fresh = Assessment.objects.get(pk=assessment.pk)
        return cls(
            state=fresh.state,
            round=fresh.round,
            answers_digest=fresh.answers_digest,
            declared_name=fresh.declared_name,
            declared_at=fresh.declared_at,
            assessor_id=fresh.assessor_id,
            answers={
                answer.question.qid: (json.dumps(answer.value, sort_keys=True), answer.version)
                for answer in Answer.objects.filter(assessment=fresh).select_related("question")
            },
            marks=tuple(
                Mark.objects.filter(answer__assessment=fresh)
                .order_by("pk")
                .values_list("pk", "round", "verdict", "comment", "assessor_id")
            ),
            decisions=Decision.objects.filter(assessment=fresh).count(),
            certificates=Certificate.objects.filter(assessment=fresh).count(),
            attachments=Attachment.objects.filter(assessment=fresh).count(),
            # Every audit event, not only this assessment's: a refused request writes none.
            audit_events=AuditEvent.objects.count(),
            files=frozenset(stored_files(root)),
        )


@pytest.fixture
def footprint(evidence_root):
    """``before = footprint(a)`` ... ``assert footprint(a) == before``."""
    return lambda assessment: Footprint.of(assessment, evidence_root)


def english(client: Client) -> Client:
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def web(user) -> Client:
    return english(client_for(user))


def api(user, organisation) -> Client:
    client = Client(HTTP_AUTHORIZATION=f"Token {api_token(user, organisation)}")
    return english(client)


def flash(response) -> list[str]:
    """The messages a redirecting view queued for the next page."""
    return [str(message) for message in get_messages(response.wsgi_request)]


def answer_url(assessment, qid: str) -> str:
    return reverse("assessments:answer", args=[assessment.pk, qid])


def api_answer_url(assessment, qid: str) -> str:
    return f"/api/assessments/{assessment.pk}/answers/{qid}"


def put_json(client: Client, url: str, body) -> object:
    return client.put(url, json.dumps(body), content_type="application/json")


def post_json(client: Client, url: str, body) -> object:
    return client.post(url, json.dumps(body), content_type="application/json")


@pytest.fixture
def draft(world):
    """A fresh draft of alice's bank, nothing answered yet."""
    return world.start()
