"""Continuous assurance on the certificate page (and its API), and nothing of it in public."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from mamori.verification import services
from mamori.verification.models import Host
from tests.conftest import api_token, client_for
from tests.verification.conftest import store
from tests.verification.factory import debian12_evidence

pytestmark = pytest.mark.django_db


@pytest.fixture
def certified(world):
    """The bank, certified, with four hosts: two recent and passing the firewall control, one
    recent with an open firewall, one that last checked in ten days ago, and one out of scope;
    plus a host of the other bank that must never count."""
    assessment = world.passed()
    certificate = assessment.certificate

    def host(name, *, open_firewall=False, organisation=None):
        machine_id = hashlib.sha256(name.encode()).hexdigest()[:32]
        payload = debian12_evidence(hostname=name, machine_id=machine_id)
        if open_firewall:
            payload = copy.deepcopy(payload)
            payload["firewall"]["default_inbound"] = "accept"
            payload["firewall"]["backends"][0]["default_inbound"] = "accept"
        return store(world.admin, organisation or world.bank, payload).host

    hosts = {
        "a": host("a"),
        "b": host("b"),
        "open": host("o", open_firewall=True),
        "stale": host("s"),
        "out": host("x"),
        "elsewhere": host("e", organisation=world.other_bank),
    }
    Host.objects.filter(pk=hosts["stale"].pk).update(
        last_seen=timezone.now() - dt.timedelta(days=10)
    )
    Host.objects.filter(pk=hosts["out"].pk).update(in_scope=False)
    return certificate, hosts


def test_the_figures(world, certified):
    _certificate, hosts = certified
    assurance = services.continuous_assurance(world.bank.pk)
    assert (assurance.window_days, assurance.in_scope, assurance.checked_in) == (7, 4, 3)
    assert hosts["a"].latest_evaluation.firewalls == "pass"
    # The stale host passes on old evidence but is not counted; the open one fails.
    assert assurance.passing["firewalls"] == 2
    with override_settings(MAMORI_ASSURANCE_CHECKIN_DAYS=30):
        wider = services.continuous_assurance(world.bank.pk)
    assert (wider.window_days, wider.checked_in, wider.passing["firewalls"]) == (30, 4, 3)
    assert services.continuous_assurance(world.other_body.pk).in_scope == 0


def test_the_certificate_page_shows_them(world, certified):
    certificate, _hosts = certified
    url = reverse("certificates:detail", args=[certificate.number])
    client = client_for(world.admin)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    page = client.get(url).content.decode()
    assert 'id="continuous-assurance"' in page
    assert "3 of 4 in-scope hosts checked in within the last 7 days." in page
    assert 'data-control="firewalls">2 / 4<' in page
    # The scheme owner sees the certificate, and so the figures, but no host.
    owner_page = client_for(world.owner).get(url).content.decode()
    assert 'id="continuous-assurance"' in owner_page
    assert ">a<" not in owner_page


def test_the_certificate_api_has_them(world, certified):
    certificate, _hosts = certified
    key = api_token(world.admin, world.bank)
    response = Client(HTTP_AUTHORIZATION=f"Token {key}").get(
        f"/api/certificates/{certificate.number}/assurance"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["in_scope_hosts"] == 4
    assert body["checked_in"] == 3
    assert body["passing"]["firewalls"] == 2
    other = api_token(world.other_admin, world.other_bank)
    response = Client(HTTP_AUTHORIZATION=f"Token {other}").get(
        f"/api/certificates/{certificate.number}/assurance"
    )
    assert response.status_code == 404


def test_public_pages_show_nothing_of_it(world, certified):
    certificate, hosts = certified
    anonymous = Client(HTTP_ACCEPT_LANGUAGE="en")
    page = anonymous.get(reverse("certificates:verify", args=[certificate.number]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "continuous-assurance" not in text
    assert "Continuous assurance" not in text
    assert "in-scope hosts" not in text
    register = anonymous.get(reverse("certificates:register")).content.decode()
    assert "in-scope hosts" not in register
    public = anonymous.get(f"/api/public/certificates/{certificate.number}").json()
    assert set(public) == {
        "number",
        "organisation",
        "organisation_en",
        "level",
        "scope",
        "issued",
        "expires",
        "status",
        "certification_body",
    }
    assert anonymous.get(f"/api/certificates/{certificate.number}/assurance").status_code == 401
    assert anonymous.get(f"/hosts/{hosts['a'].pk}/").status_code == 302
