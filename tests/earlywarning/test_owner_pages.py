"""The scheme owner's early-warning pages (approvals with the hoster's permission kept privately
and only ever downloaded, refusals, overlapping claims, deadlines), and overdue alerts on the
host and certificate pages: for members and assessors, never for the scheme owner or on a
public page."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from mamori.audit.models import AuditEvent
from mamori.certificates.models import Certificate
from mamori.earlywarning import registry
from mamori.earlywarning.models import Asset, AssetOverlap, AssetState, DeadlinePolicy
from tests.conftest import client_for
from tests.earlywarning.scene import raise_alert
from tests.verification.conftest import store
from tests.verification.factory import debian12_evidence

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture(autouse=True)
def _documentation_assets(settings, tmp_path):
    settings.EARLYWARNING_DOCUMENTATION_ASSETS = True
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "mamori.core.storage.PrivateFileStorage",
            "OPTIONS": {"location": tmp_path, "base_url": None},
        },
    }
    settings.PRIVATE_FILES_ROOT = tmp_path


def english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def claim(world, value="198.51.100.0/24", organisation=None, user=None, kind="cidr") -> Asset:
    user = user or world.admin
    return registry.register(
        user, world.access(user), organisation or world.bank, kind=kind, value=value
    )


# --- Approvals -----------------------------------------------------------------------------------


def test_the_queue_lists_address_blocks_and_as_numbers_not_domains(world):
    prefix = claim(world)
    asn = claim(world, "AS64500", kind="asn")
    domain = claim(world, "bank.example.jp", kind="domain")
    page = english(client_for(world.owner)).get(reverse("earlywarning:approvals"))
    assert page.status_code == 200
    text = page.content.decode()
    assert f'id="claim-{prefix.pk}"' in text
    assert f'id="claim-{asn.pk}"' in text
    assert f'id="claim-{domain.pk}"' not in text
    assert "Test Bank" in text
    japanese = client_for(world.owner).get(reverse("earlywarning:approvals")).content.decode()
    assert "承認待ちの申告" in japanese


def test_approving_with_the_hosters_permission_keeps_it_private(world, tmp_path):
    prefix = claim(world)
    owner = english(client_for(world.owner))
    response = owner.post(
        reverse("earlywarning:approve", args=[prefix.pk]),
        {
            "reason": "APNIC whois names Test Bank; hosted by Example DC",
            "permission": SimpleUploadedFile("permission letter.pdf", PDF),
        },
    )
    assert response.status_code == 302
    prefix.refresh_from_db()
    assert (prefix.state, prefix.method, prefix.decided_by) == ("verified", "approval", world.owner)
    stored = Path(tmp_path) / prefix.hoster_permission.name
    assert stored.read_bytes() == PDF
    assert (
        AuditEvent.objects.filter(action="earlywarning.asset.approve").get().details["permission"]
    )
    download_url = reverse("earlywarning:asset_permission", args=[prefix.pk])
    for user in (world.owner, world.admin, world.contributor):
        download = client_for(user).get(download_url)
        assert download.status_code == 200, user
        assert download["Content-Disposition"].startswith("attachment;")
        assert download["Content-Type"] == "application/octet-stream"
        assert download["Content-Security-Policy"] == "sandbox; default-src 'none'"
        assert b"".join(download.streaming_content) == PDF
    for user in (world.signatory, world.other_admin, world.assessor, world.outsider):
        assert client_for(user).get(download_url).status_code == 404, user


@pytest.mark.parametrize(
    ("data", "words", "status"),
    [
        ({"reason": ""}, "This field is required.", 422),
        ({"reason": "   "}, "This field is required.", 422),
        (
            {"reason": "ok", "permission": SimpleUploadedFile("letter.pdf", b"MZ\x90\x00binary")},
            "does not match its .pdf extension",
            422,
        ),
        (
            {"reason": "ok", "permission": SimpleUploadedFile("letter.exe", PDF)},
            "Files of this type are not accepted",
            422,
        ),
    ],
)
def test_bad_approvals_come_back_with_the_reason(world, data, words, status):
    prefix = claim(world)
    response = english(client_for(world.owner)).post(
        reverse("earlywarning:approve", args=[prefix.pk]), data
    )
    assert response.status_code == status
    assert words in response.content.decode()
    prefix.refresh_from_db()
    assert prefix.state == AssetState.PENDING
    assert not prefix.hoster_permission


def test_refusing_needs_a_reason_and_a_decided_claim_cannot_be_approved(world):
    prefix = claim(world)
    owner = english(client_for(world.owner))
    empty = owner.post(reverse("earlywarning:refuse", args=[prefix.pk]), {"reason": ""})
    assert empty.status_code == 422
    refused = owner.post(
        reverse("earlywarning:refuse", args=[prefix.pk]), {"reason": "not in the RIR record"}
    )
    assert refused.status_code == 302
    prefix.refresh_from_db()
    assert (prefix.state, prefix.reason) == (AssetState.REFUSED, "not in the RIR record")
    late = owner.post(reverse("earlywarning:approve", args=[prefix.pk]), {"reason": "oops"})
    assert late.status_code == 409
    assert "Only a claim awaiting verification can be approved." in late.content.decode()


@pytest.mark.parametrize("user", ["admin", "contributor", "signatory", "assessor", "outsider"])
def test_nobody_but_the_scheme_owner_finds_the_owners_pages(world, user):
    prefix = claim(world)
    client = client_for(getattr(world, user))
    for name in ("approvals", "overlaps", "deadlines"):
        assert client.get(reverse(f"earlywarning:{name}")).status_code == 404
    assert (
        client.post(
            reverse("earlywarning:approve", args=[prefix.pk]), {"reason": "mine"}
        ).status_code
        == 404
    )
    assert (
        client.post(reverse("earlywarning:refuse", args=[prefix.pk]), {"reason": "x"}).status_code
        == 404
    )
    assert Asset.objects.get(pk=prefix.pk).state == AssetState.PENDING


# --- Overlapping claims -------------------------------------------------------------------------


def test_overlaps_are_listed_and_settled_after_refusing_one_claim(world):
    ours = claim(world, "198.51.100.0/24")
    theirs = claim(
        world, "198.51.100.128/25", organisation=world.other_bank, user=world.other_admin
    )
    overlap = AssetOverlap.objects.get()
    owner = english(client_for(world.owner))
    page = owner.get(reverse("earlywarning:overlaps")).content.decode()
    assert f'id="overlap-{overlap.pk}"' in page
    assert "Test Bank" in page
    assert "Other Bank" in page
    refused = owner.post(
        reverse("earlywarning:refuse", args=[theirs.pk]),
        {"reason": "the /25 is ours, sub-let", "from": "overlaps"},
    )
    assert refused.url == reverse("earlywarning:overlaps")
    unexplained = owner.post(reverse("earlywarning:settle", args=[overlap.pk]), {"settlement": ""})
    assert unexplained.status_code == 422
    settled = owner.post(
        reverse("earlywarning:settle", args=[overlap.pk]),
        {"settlement": "Other Bank's claim refused: the range is Test Bank's"},
    )
    assert settled.status_code == 302
    overlap.refresh_from_db()
    assert overlap.settled_by == world.owner
    again = owner.post(reverse("earlywarning:settle", args=[overlap.pk]), {"settlement": "x"})
    assert again.status_code == 409
    page = owner.get(reverse("earlywarning:overlaps")).content.decode()
    assert 'id="no-overlaps"' in page
    assert 'id="settled"' in page
    assert Asset.objects.get(pk=ours.pk).state == AssetState.PENDING


# --- Deadlines ------------------------------------------------------------------------------------


def test_deadlines_are_set_per_type_and_new_alerts_follow_them(world):
    owner = english(client_for(world.owner))
    page = owner.get(reverse("earlywarning:deadlines")).content.decode()
    assert 'value="4"' in page
    assert 'value="12"' in page
    assert 'value="24"' in page
    hours = {
        "incident": "2",
        "network_abuse": "12",
        "exposure": "48",
        "software_vulnerability": "24",
        "supplier_exposure": "24",
    }
    for bad, words in (
        ("0", "greater than or equal to 1"),
        ("abc", "Enter a whole number."),
        ("9000", "less than or equal to 8784"),
        ("", "This field is required."),
    ):
        response = owner.post(reverse("earlywarning:deadlines"), {**hours, "incident": bad})
        assert response.status_code == 422, bad
        assert words in response.content.decode(), bad
    assert not DeadlinePolicy.objects.exists()
    saved = owner.post(reverse("earlywarning:deadlines"), hours)
    assert saved.status_code == 302
    assert dict(DeadlinePolicy.objects.values_list("type", "acknowledge_hours")) == {
        "incident": 2,
        "exposure": 48,
    }
    event = AuditEvent.objects.get(action="earlywarning.deadlines.set")
    assert event.details["changed"] == {"incident": [4, 2], "exposure": [24, 48]}
    before = timezone.now()
    alert = raise_alert(world.bank, type="incident", category="event4_sinkhole")
    assert dt.timedelta(hours=2) <= alert.due_at - before < dt.timedelta(hours=2, minutes=1)


# --- Overdue alerts on the host and certificate pages ------------------------------------------


@pytest.fixture
def overdue(world):
    host = store(world.admin, world.bank, debian12_evidence(hostname="web-01", machine_id="7" * 32))
    host = host.host
    past = timezone.now() - dt.timedelta(hours=1)
    late_host = raise_alert(
        world.bank,
        type="software_vulnerability",
        category="kev",
        host_id=host.pk,
        package="libwebp7",
        due_at=past,
    )
    late_network = raise_alert(world.bank, due_at=past)
    raise_alert(world.bank, due_at=timezone.now() + dt.timedelta(hours=3))  # not yet due
    return {"host": host, "late_host": late_host, "late_network": late_network}


def test_overdue_alerts_on_the_host_page(world, overdue):
    url = reverse("verification:detail", args=[overdue["host"].pk])
    member = english(client_for(world.contributor)).get(url).content.decode()
    assert 'id="overdue-alerts"' in member
    assert "1 open alert is past its deadline" in member
    assert reverse("earlywarning:alert", args=[overdue["late_host"].pk]) in member
    assert reverse("earlywarning:alert", args=[overdue["late_network"].pk]) not in member
    japanese = client_for(world.contributor).get(url).content.decode()
    assert "期限を過ぎた早期警戒アラート" in japanese
    assert "確認期限を過ぎた未完了のアラートが 1 件あります。" in japanese


def test_overdue_alerts_on_the_certificate_panel(world, overdue):
    world.passed()
    certificate = Certificate.objects.get(organisation=world.bank)
    url = reverse("certificates:detail", args=[certificate.number])
    member = english(client_for(world.signatory)).get(url).content.decode()
    panel = member[member.find('id="continuous-assurance"') :]
    assert "2 open alerts are past their deadline" in panel
    assert reverse("earlywarning:alert", args=[overdue["late_network"].pk]) in panel
    assessor = english(client_for(world.assessor)).get(url).content.decode()
    assert "2 open alerts are past their deadline" in assessor
    assert "/earlywarning/alerts/" not in assessor  # figures only: alerts are the bank's
    owner = english(client_for(world.owner)).get(url)
    assert owner.status_code == 200
    assert 'id="overdue-alerts"' not in owner.content.decode()
    # Never on the public pages.
    for public in (
        reverse("certificates:verify", args=[certificate.number]),
        reverse("certificates:register"),
        f"/api/public/certificates/{certificate.number}",
    ):
        text = english(client_for(world.outsider)).get(public).content.decode()
        assert "overdue" not in text.lower(), public
        assert "earlywarning" not in text, public


def test_the_panel_says_when_nothing_is_overdue(world):
    world.passed()
    certificate = Certificate.objects.get(organisation=world.bank)
    page = english(client_for(world.admin)).get(
        reverse("certificates:detail", args=[certificate.number])
    )
    assert "No open alert is past its deadline to acknowledge." in page.content.decode()
