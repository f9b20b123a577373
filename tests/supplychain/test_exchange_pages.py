"""Importing and exporting an organisation's graph from the web: all or nothing, errors naming
the ids, only for those who manage the organisation's services (others get 404)."""

from __future__ import annotations

import copy
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from mamori.audit.models import AuditEvent
from mamori.supplychain.models import Need, Node
from tests.conftest import client_for
from tests.supplychain.test_models_graph import DOCUMENT

pytestmark = pytest.mark.django_db


def _upload(client, organisation, document, name="graph.json"):
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return client.post(
        reverse("supplychain:exchange", args=[organisation.pk]),
        {"graph": SimpleUploadedFile(name, body, content_type="application/json")},
    )


def test_an_admin_imports_then_exports_the_graph(world):
    client = client_for(world.admin)
    response = _upload(client, world.bank, DOCUMENT)
    assert response.status_code == 302
    owned = Node.objects.filter(owner=world.bank)
    assert set(owned.values_list("key", flat=True)) >= {n["id"] for n in DOCUMENT["nodes"]}
    assert AuditEvent.objects.filter(action="supplychain.graph_imported").count() == 1

    exported = client.get(reverse("supplychain:export", args=[world.bank.pk]))
    assert exported.status_code == 200
    assert exported["Content-Disposition"].startswith("attachment")
    document = json.loads(exported.content)
    assert document["schema"] == "mamori.supplygraph/1"
    assert {n["id"] for n in DOCUMENT["nodes"]} <= {n["id"] for n in document["nodes"]}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d["requirements"][0]["providers"].append("nowhere"), "nowhere"),
        (lambda d: d["nodes"].append(dict(d["nodes"][0])), DOCUMENT["nodes"][0]["id"]),
        (lambda d: d.update(schema="mamori.supplygraph/9"), "schema"),
    ],
)
def test_a_bad_graph_is_refused_naming_the_problem_and_writes_nothing(world, change, named):
    document = copy.deepcopy(DOCUMENT)
    change(document)
    response = _upload(client_for(world.admin), world.bank, document)
    assert response.status_code == 400
    assert named in response.content.decode()
    assert not Node.objects.filter(owner=world.bank).exists()
    assert not Need.objects.exists()


def test_not_json_and_missing_file_are_clear_errors(world):
    client = client_for(world.admin)
    response = _upload(client, world.bank, b"\x89PNG not json")
    assert response.status_code == 400
    assert 'id="import-errors"' in response.content.decode()
    response = client.post(reverse("supplychain:exchange", args=[world.bank.pk]), {})
    assert response.status_code == 400
    assert not Node.objects.exists()


def test_ids_already_in_the_graph_are_refused(world):
    client = client_for(world.admin)
    assert _upload(client, world.bank, DOCUMENT).status_code == 302
    before = Node.objects.count()
    response = _upload(client, world.bank, DOCUMENT)
    assert response.status_code == 400
    assert Node.objects.count() == before


@pytest.mark.parametrize("persona", ["other_admin", "assessor", "outsider"])
def test_others_get_404(world, persona):
    client = client_for(getattr(world, persona))
    assert client.get(reverse("supplychain:exchange", args=[world.bank.pk])).status_code == 404
    assert client.get(reverse("supplychain:export", args=[world.bank.pk])).status_code == 404
    assert _upload(client, world.bank, DOCUMENT).status_code == 404
    assert not Node.objects.exists()
