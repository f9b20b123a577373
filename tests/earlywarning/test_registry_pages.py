"""The asset registry pages: registering a claim (form errors, never a server error), a domain's
TXT record and "check now" against a real DNS server on 127.0.0.1 (with and without htmx),
withdrawal, CSV import (all or nothing, errors by line) and export, and the starting list from
the latest assessment's inventory (A2). In Japanese and English."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape

from mamori.assessments import services as assessments
from mamori.audit.models import AuditEvent
from mamori.earlywarning.models import Asset, AssetState
from tests.conftest import client_for
from tests.earlywarning.localdns import local_dns_server

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _documentation_assets(settings):
    settings.EARLYWARNING_DOCUMENTATION_ASSETS = True


@pytest.fixture(scope="module")
def dns_server():
    with local_dns_server() as server:
        yield server


@pytest.fixture
def resolver(settings, dns_server):
    settings.DNS_RESOLVER = dns_server.host
    settings.DNS_PORT = dns_server.port
    settings.DNS_TIMEOUT_SECONDS = 2
    return dns_server


def english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def registry_url(world, organisation=None) -> str:
    return reverse("earlywarning:assets", args=[(organisation or world.bank).pk])


def register(client, world, **data):
    return client.post(registry_url(world), {"kind": "cidr", "value": "", **data})


# --- Registering ---------------------------------------------------------------------------------


def test_a_prefix_is_registered_and_waits_for_approval(world):
    client = english(client_for(world.admin))
    response = register(client, world, value=" 198.51.100.0/24 ", label="Head office")
    assert (response.status_code, response.url) == (302, registry_url(world))
    asset = Asset.objects.get(organisation=world.bank)
    assert (asset.value, asset.state, asset.label) == ("198.51.100.0/24", "pending", "Head office")
    page = client.get(registry_url(world)).content.decode()
    assert "waits for the scheme owner" in page
    assert reverse("earlywarning:asset", args=[asset.pk]) in page
    japanese = client_for(world.admin).get(registry_url(world)).content.decode()
    assert "資産の登録簿" in japanese
    assert "検証待ち" in japanese


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"value": "10.0.0.0/8"}, "private"),
        ({"value": "192.0.2.1/24"}, "192.0.2.0/24"),
        ({"value": "0.0.0.0/0"}, "wider than"),
        ({"kind": "ip", "value": "<script>alert(1)</script>"}, "&lt;script&gt;"),
        ({"kind": "domain", "value": "localhost"}, "localhost"),
        ({"kind": "asn", "value": "AS4294967296"}, "AS"),
        ({"kind": "cidr", "value": "198.51.100.0/24", "include_subdomains": "on"}, "only domains"),
        ({"kind": "printer", "value": "198.51.100.7"}, "Select a valid choice"),
        ({"value": ""}, "This field is required."),
        ({"value": "x" * 301}, "at most 300 characters"),
        ({"value": "198.51.100.0/24", "label": "two\nlines"}, "line breaks"),
        ({"value": "198.51.100.0/24\x00"}, "Null characters are not allowed."),
    ],
)
def test_bad_claims_come_back_with_the_reason(world, data, words):
    client = english(client_for(world.contributor))
    response = register(client, world, **data)
    assert response.status_code == 422, data
    assert words in response.content.decode(), (data, words)
    assert not Asset.objects.exists()


def test_a_claim_registered_twice_is_a_conflict(world):
    client = english(client_for(world.admin))
    register(client, world, value="198.51.100.0/24")
    again = register(client, world, value="198.51.100.0/24")
    assert again.status_code == 409
    assert "198.51.100.0/24 is already registered for this organisation." in (
        again.content.decode()
    )
    assert Asset.objects.count() == 1


def test_a_board_signatory_sees_the_registry_but_registers_nothing(world):
    client = english(client_for(world.signatory))
    page = client.get(registry_url(world)).content.decode()
    assert 'id="register-asset"' not in page
    refused = register(client, world, value="198.51.100.0/24")
    assert refused.status_code == 403
    assert escape("Only the organisation's administrators and contributors register") in (
        refused.content.decode()
    )
    assert not Asset.objects.exists()
    for name in ("assets_import", "assets_from_assessment"):
        assert client.get(reverse(f"earlywarning:{name}", args=[world.bank.pk])).status_code == 404


@pytest.mark.parametrize("user", ["other_admin", "owner", "assessor", "outsider"])
def test_no_one_else_finds_the_registry(world, user):
    client = client_for(getattr(world, user))
    for name in ("assets", "assets_import", "assets_export", "assets_from_assessment"):
        assert client.get(reverse(f"earlywarning:{name}", args=[world.bank.pk])).status_code == 404
    assert register(client, world, value="198.51.100.0/24").status_code == 404
    assert not Asset.objects.exists()


# --- A domain and its TXT record -----------------------------------------------------------------


def test_a_domain_shows_its_txt_record_and_is_verified_by_check_now(world, resolver):
    client = english(client_for(world.admin))
    response = register(
        client, world, kind="domain", value="Bank.Example.JP", include_subdomains="on"
    )
    asset = Asset.objects.get()
    assert response.url == reverse("earlywarning:asset", args=[asset.pk])
    page = client.get(response.url).content.decode()
    assert '<code id="txt-name">_mamori.bank.example.jp</code>' in page
    assert f'<code id="txt-value">{asset.verification_token}</code>' in page
    assert "Not checked yet." in page
    check_url = reverse("earlywarning:asset_check", args=[asset.pk])
    assert f'hx-post="{check_url}"' in page
    # No record yet: the box says so, in place (htmx), and the claim stays pending.
    resolver.serve({})
    missing = client.post(check_url, HTTP_HX_REQUEST="true")
    assert missing.status_code == 200
    box = missing.content.decode()
    assert box.startswith('<div class="card" id="domain-check">')
    assert "does not exist in DNS (NXDOMAIN)" in box
    asset.refresh_from_db()
    assert (asset.state, asset.last_check_result) == ("pending", "nxdomain")
    # Another organisation's token is refused by name.
    resolver.serve({"_mamori.bank.example.jp": ["mamori-verification=not-this-one"]})
    wrong = client.post(check_url, HTTP_HX_REQUEST="true").content.decode()
    assert "with another token" in wrong
    # The record with the token: verified, without JavaScript too.
    resolver.serve({"_mamori.bank.example.jp": ["v=spf1 -all", asset.verification_token]})
    found = client.post(check_url, follow=True)
    assert "the domain is verified" in found.content.decode()
    asset.refresh_from_db()
    assert (asset.state, asset.method) == (AssetState.VERIFIED, "dns_txt")
    assert AuditEvent.objects.filter(action="earlywarning.asset.verify").count() == 1
    japanese = client_for(world.admin).get(response.url).content.decode()
    assert "今すぐ確認" in japanese


def test_checking_a_prefix_or_a_withdrawn_domain_is_refused_with_the_reason(world, resolver):
    resolver.serve({})
    client = english(client_for(world.admin))
    register(client, world, value="198.51.100.0/24")
    prefix = Asset.objects.get()
    refused = client.post(
        reverse("earlywarning:asset_check", args=[prefix.pk]), HTTP_HX_REQUEST="true"
    )
    assert refused.status_code == 409
    assert "Only a domain is verified by DNS." in refused.content.decode()
    register(client, world, kind="domain", value="bank.example.jp")
    domain = Asset.objects.get(kind="domain")
    client.post(reverse("earlywarning:asset_withdraw", args=[domain.pk]))
    gone = client.post(reverse("earlywarning:asset_check", args=[domain.pk]), follow=True)
    assert "This claim is no longer live." in gone.content.decode()
    assert resolver.resolver.queries == []


def test_withdrawing_a_claim(world):
    client = english(client_for(world.contributor))
    register(client, world, value="198.51.100.0/24")
    asset = Asset.objects.get()
    page = client.get(reverse("earlywarning:asset", args=[asset.pk])).content.decode()
    assert "waits for the scheme owner&#x27;s approval" in page
    withdrawn = client.post(reverse("earlywarning:asset_withdraw", args=[asset.pk]))
    assert withdrawn.url == registry_url(world)
    asset.refresh_from_db()
    assert asset.state == AssetState.WITHDRAWN
    signatory = english(client_for(world.signatory))
    register(client, world, value="198.51.100.0/24")
    again = Asset.objects.get(state="pending")
    refused = signatory.post(reverse("earlywarning:asset_withdraw", args=[again.pk]), follow=True)
    assert "Only the organisation" in refused.content.decode()
    assert Asset.objects.get(pk=again.pk).state == AssetState.PENDING


# --- CSV import and export -----------------------------------------------------------------------


def upload(client, world, text: str, name: str = "assets.csv"):
    return client.post(
        reverse("earlywarning:assets_import", args=[world.bank.pk]),
        {"file": SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")},
    )


def test_a_good_csv_registers_every_row(world):
    client = english(client_for(world.admin))
    response = upload(
        client,
        world,
        "kind,value,include_subdomains,comment\n"
        "cidr,198.51.100.0/24,false,head office\n"
        "domain,bank.example.jp,true,\n"
        "asn,AS64500,,\n",
    )
    assert response.status_code == 302
    assert sorted(Asset.objects.values_list("value", flat=True)) == [
        "198.51.100.0/24",
        "AS64500",
        "bank.example.jp",
    ]


def test_a_csv_with_bad_rows_registers_nothing_and_names_every_line(world):
    client = english(client_for(world.admin))
    response = upload(
        client,
        world,
        "kind,value,include_subdomains\n"
        "cidr,198.51.100.0/24,false\n"
        "cidr,10.0.0.0/8,false\n"
        "domain,bank.example.jp,maybe\n"
        "cidr,198.51.100.0/24,false\n"
        'printer,=HYPERLINK("https://evil.example/"),false\n',
        name="../../etc/registry.csv",
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert "Nothing was registered." in page
    assert "registry.csv:3:" in page
    assert "private" in page
    assert "registry.csv:4: include_subdomains must be true or false" in page
    assert "registry.csv:5: 198.51.100.0/24 is already on line 2." in page
    assert "registry.csv:6:" in page
    assert "../../etc" not in page
    assert not Asset.objects.exists()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "The submitted file is empty."),
        (b"kind;value\ncidr;198.51.100.0/24\n", "the header must name the columns"),
        (b"\xff\xfe\x00k\x00i", "is not UTF-8 text"),
        (b"kind,value\n", "the file has no claims"),
    ],
)
def test_unusable_files_are_refused_with_the_reason(world, content, words):
    client = english(client_for(world.admin))
    response = client.post(
        reverse("earlywarning:assets_import", args=[world.bank.pk]),
        {"file": SimpleUploadedFile("assets.csv", content)},
    )
    assert response.status_code == 422
    assert words in response.content.decode()
    assert not Asset.objects.exists()


def test_a_file_over_the_limit_is_refused_unread(world, monkeypatch):
    from mamori.earlywarning import registry

    monkeypatch.setattr(registry, "CSV_MAX_BYTES", 2**20)
    header = b"kind,value,include_subdomains\n"
    big = header + b"ip,198.51.100.7,false\n" * (2**20 // 22 + 1)
    response = english(client_for(world.admin)).post(
        reverse("earlywarning:assets_import", args=[world.bank.pk]),
        {"file": SimpleUploadedFile("big.csv", big)},
    )
    assert response.status_code == 422
    assert "big.csv: the file is larger than 1 MB." in response.content.decode()
    assert not Asset.objects.exists()


def test_export_is_the_registry_as_csv_with_safe_cells(world):
    client = english(client_for(world.admin))
    register(client, world, value="198.51.100.0/24", label='=HYPERLINK("https://evil.example/")')
    register(client, world, kind="domain", value="bank.example.jp", include_subdomains="on")
    signatory = client_for(world.signatory)
    response = signatory.get(reverse("earlywarning:assets_export", args=[world.bank.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["kind", "value", "include_subdomains", "state", "verified_at", "label"]
    assert rows[1][:4] == ["cidr", "198.51.100.0/24", "false", "pending"]
    assert rows[1][5].startswith("'=HYPERLINK")
    assert rows[2][:4] == ["domain", "bank.example.jp", "true", "pending"]


# --- A starting list from the latest assessment -------------------------------------------------


def _inventory(world, rows: list[dict]):
    assessment = world.start()
    snapshot = assessments.Snapshot.load(assessment)
    assessments.save_answer(
        world.admin,
        world.access(world.admin),
        assessment.pk,
        "A2.8",
        rows,
        snapshot.answers["A2.8"].version if "A2.8" in snapshot.answers else 0,
    )
    return assessment


def test_the_latest_assessment_offers_its_inventory_as_a_starting_list(world):
    _inventory(
        world,
        [
            {"asset_kind": "ip_range", "identifier": "198.51.100.0/24", "purpose": "head office"},
            {"asset_kind": "domain", "identifier": "bank.example.jp"},
            {"asset_kind": "web_application", "identifier": "https://ib.bank.example.jp/login"},
            {"asset_kind": "ip_range", "identifier": "203.0.113.10-203.0.113.20"},
            {"asset_kind": "ip_range", "identifier": "10.1.0.0/16", "purpose": "internal"},
            {"asset_kind": "domain", "identifier": "BANK.example.jp"},
        ],
    )
    client = english(client_for(world.admin))
    url = reverse("earlywarning:assets_from_assessment", args=[world.bank.pk])
    page = client.get(url).content.decode()
    for value in (
        "198.51.100.0/24",
        "bank.example.jp",
        "ib.bank.example.jp",
        "203.0.113.10-203.0.113.20",
    ):
        assert f"<code>{value}</code>" in page, value
    assert page.count('name="choice"') == 4  # the upper-case domain is the same claim
    assert 'id="unusable"' in page
    assert "10.1.0.0/16" in page
    assert "private" in page
    # Nothing ticked: the reason, nothing stored.
    none = client.post(url, {})
    assert none.status_code == 422
    assert "Tick at least one value." in none.content.decode()
    # A value that was not offered cannot be slipped in.
    slipped = client.post(url, {"choice": ["cidr|192.0.2.0/24|0"]})
    assert slipped.status_code == 422
    assert "Select a valid choice" in slipped.content.decode()
    assert not Asset.objects.exists()
    done = client.post(url, {"choice": ["cidr|198.51.100.0/24|0", "domain|bank.example.jp|0"]})
    assert done.status_code == 302
    assert sorted(Asset.objects.values_list("value", "state", "label")) == [
        ("198.51.100.0/24", "pending", "A2.8"),
        ("bank.example.jp", "pending", "A2.8"),
    ]
    again = client.get(url).content.decode()
    assert again.count("Already registered") == 2
    assert again.count('name="choice"') == 2


def test_without_an_assessment_the_page_says_so(world):
    page = english(client_for(world.admin)).get(
        reverse("earlywarning:assets_from_assessment", args=[world.bank.pk])
    )
    assert page.status_code == 200
    assert "has no assessment yet" in page.content.decode()
