"""The read-only hosts API, scoped like the pages."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from mamori.verification.models import CONTROLS
from tests.conftest import api_token
from tests.verification.conftest import store
from tests.verification.factory import debian12_evidence

pytestmark = pytest.mark.django_db


def _api(user, organisation, **headers) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {api_token(user, organisation)}", **headers)


def test_hosts_list_detail_and_evidence(world):
    now = timezone.now().replace(microsecond=0)
    first = debian12_evidence(hostname="api-01", collected_at=now - dt.timedelta(hours=2))
    host = store(world.admin, world.bank, first).host
    store(world.admin, world.bank, debian12_evidence(hostname="api-01", collected_at=now))
    store(world.other_admin, world.other_bank, debian12_evidence(hostname="hidden"))
    api = _api(world.signatory, world.bank)

    listed = api.get("/api/hosts/").json()
    assert [item["hostname"] for item in listed["results"]] == ["api-01"]
    item = listed["results"][0]
    assert set(item["controls"]) == set(CONTROLS)
    assert item["organisation"] == world.bank.pk

    detail = api.get(f"/api/hosts/{host.pk}").json()
    assert detail["evaluation"]["result"]["schema"] == "mamori.evaluation/1"
    assert detail["evaluation"]["result"]["language"] == "ja"
    english = _api(world.signatory, world.bank, HTTP_ACCEPT_LANGUAGE="en")
    assert english.get(f"/api/hosts/{host.pk}").json()["evaluation"]["result"]["language"] == "en"

    evidence = api.get(f"/api/hosts/{host.pk}/evidence").json()
    assert evidence["count"] == 2
    newest, oldest = evidence["results"]
    assert newest["collected_at"] > oldest["collected_at"]
    assert set(newest["evaluation"]["controls"]) == set(CONTROLS)
    assert "payload" not in newest


def test_outsiders_get_404(world):
    host = store(world.admin, world.bank, debian12_evidence(hostname="api-02")).host
    for user, organisation in (
        (world.other_admin, world.other_bank),
        (world.assessor, world.body),  # body A has nothing of the bank's yet
        (world.owner, world.secretariat),
    ):
        api = _api(user, organisation)
        for url in (f"/api/hosts/{host.pk}", f"/api/hosts/{host.pk}/evidence", "/api/hosts/x"):
            response = api.get(url)
            assert response.status_code == 404, (user, url)
            assert response.json()["code"] == "not_found"
        assert api.get("/api/hosts/").json()["count"] == 0
    world.submitted()
    assert _api(world.assessor, world.body).get(f"/api/hosts/{host.pk}").status_code == 200
    assert Client().get("/api/hosts/").status_code == 401
