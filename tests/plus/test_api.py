"""The read-only Plus API: scoped like the pages, outsiders 404, documented in the schema."""

from __future__ import annotations

import pytest
from django.test import Client

from mamori.accounts.models import TokenKind
from mamori.plus import services
from tests.conftest import api_token
from tests.plus.conftest import as_assessor, confirm_all, debian12_evidence, store

pytestmark = pytest.mark.django_db


def _api(user, organisation, kind=TokenKind.USER) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {api_token(user, organisation, kind)}")


@pytest.fixture
def tested(world, audit, advisories):
    store(world.admin, world.bank, debian12_evidence(hostname="api-web", machine_id="9" * 32))
    as_assessor(world, services.add_device, audit, "Kiosk", "Windows 11 IoT", "end_user")
    confirm_all(world, audit, default="server")
    as_assessor(world, services.draw_sample, audit)
    as_assessor(world, services.fill_from_evidence, audit)
    return audit


def test_members_and_the_body_read_the_audit_its_frame_and_rounds(world, tested):
    audit = tested
    for user, organisation in (
        (world.admin, world.bank),
        (world.signatory, world.bank),
        (world.assessor, world.body),
        (world.assessor2, world.body),
    ):
        api = _api(user, organisation)
        listed = api.get("/api/plus-audits/").json()
        assert [item["id"] for item in listed["results"]] == [audit.pk]
        body = api.get(f"/api/plus-audits/{audit.pk}").json()
        assert body["reference"] == audit.reference
        assert body["base_certificate"] == audit.base_certificate.number
        assert (body["state"], body["round"], body["certificate"]) == ("open", 1, None)
        assert body["scope"] == audit.scope_text
        devices = api.get(f"/api/plus-audits/{audit.pk}/devices").json()
        assert {d["name"]: (d["kind"], d["manual"]) for d in devices} == {
            "api-web": ("server", False),
            "Kiosk": ("server", True),
        }
        rounds = api.get(f"/api/plus-audits/{audit.pk}/rounds").json()
        assert [r["number"] for r in rounds] == [1]
        assert len(rounds[0]["seed"]) == 64
        assert [case["code"] for case in rounds[0]["test_cases"]] == [
            "TC1",
            "TC2",
            "TC3",
            "TC4",
            "TC5",
            "TC6",
            "TC7",
        ]
        sampled = {item["name"]: item for item in rounds[0]["sampled"]}
        assert set(sampled) == {"api-web", "Kiosk"}
        assert {c["code"]: c["result"] for c in sampled["api-web"]["checks"]} == {
            "TC2": "pass",
            "TC3": "pass",
            "TC7": "pass",
        }
        assert sampled["Kiosk"]["checks"] == []


@pytest.mark.parametrize(
    ("persona", "organisation"),
    [
        ("other_assessor", "other_body"),
        ("owner", "secretariat"),
        ("other_admin", "other_bank"),
        ("outsider", "bank"),
    ],
)
def test_everyone_else_finds_nothing(world, tested, persona, organisation):
    api = _api(getattr(world, persona), getattr(world, organisation))
    assert api.get("/api/plus-audits/").json()["results"] == []
    for suffix in ("", "/devices", "/rounds"):
        response = api.get(f"/api/plus-audits/{tested.pk}{suffix}")
        assert response.status_code == 404
        assert tested.organisation.name_en not in response.content.decode()


def test_anonymous_and_agent_tokens_are_refused(world, tested):
    assert Client().get(f"/api/plus-audits/{tested.pk}").status_code == 401
    agent = _api(world.admin, world.bank, TokenKind.AGENT)
    agent.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    for url in ("/api/plus-audits/", f"/api/plus-audits/{tested.pk}/rounds"):
        response = agent.get(url)
        assert response.status_code == 403
        assert response.json()["detail"] == "Agent tokens may only upload evidence."


def test_it_is_read_only(world, tested):
    api = _api(world.assessor, world.body)
    for method in ("post", "put", "patch", "delete"):
        response = getattr(api, method)(
            f"/api/plus-audits/{tested.pk}", {}, content_type="application/json"
        )
        assert response.status_code == 405


def test_the_schema_documents_the_endpoints(world):
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in (
        "/api/plus-audits/",
        "/api/plus-audits/{id}/",
        "/api/plus-audits/{id}/devices/",
        "/api/plus-audits/{id}/rounds/",
    ):
        assert path in text or path.rstrip("/") in text, path
    for component in ("PlusAudit", "SampleRound", "FrameDevice", "DeviceCheck"):
        assert component in text
