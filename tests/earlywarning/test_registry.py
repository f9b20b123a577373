"""The asset registry: who registers and verifies what, overlapping claims, DNS ownership against
a real DNS server on 127.0.0.1, CSV import (all or nothing) and export."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from mamori.audit.models import AuditEvent
from mamori.core.errors import Conflict, MamoriError, NotAllowed, WrongState
from mamori.earlywarning import registry
from mamori.earlywarning.models import Asset, AssetOverlap, AssetState, VerificationMethod
from tests.earlywarning.localdns import local_dns_server

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _documentation_assets(settings):
    # Real addresses belong to real organisations: the tests claim documentation ranges. The
    # messages are read in English.
    settings.EARLYWARNING_DOCUMENTATION_ASSETS = True
    with translation.override("en"):
        yield


@pytest.fixture(scope="module")
def dns_server():
    with local_dns_server() as server:
        yield server


def register(world, user, kind, value, organisation=None, **options):
    return registry.register(
        user, world.access(user), organisation or world.bank, kind=kind, value=value, **options
    )


def footprint() -> tuple[int, int, int]:
    return Asset.objects.count(), AssetOverlap.objects.count(), AuditEvent.objects.count()


def test_an_administrator_registers_claims_in_canonical_form_awaiting_verification(world):
    asset = register(world, world.admin, "cidr", " 198.51.100.0/24 ", label="Head office")
    assert (asset.kind, asset.value, asset.state) == ("cidr", "198.51.100.0/24", "pending")
    assert (asset.ip_version, asset.first_hex[-8:], asset.last_hex[-8:]) == (
        4,
        "c6336400",
        "c63364ff",
    )
    six = register(world, world.contributor, "ip", "2001:DB8:0:0::1")
    assert six.value == "2001:db8::1"
    domain = register(world, world.admin, "domain", "Bank.Example.JP.", include_subdomains=True)
    assert (domain.value, domain.include_subdomains, str(domain)) == (
        "bank.example.jp",
        True,
        "*.bank.example.jp",
    )
    assert domain.verification_token.startswith("mamori-verification=")
    assert len(domain.verification_token) > 40
    assert not any(asset.counts for asset in (asset, six, domain))
    event = AuditEvent.objects.filter(action="earlywarning.asset.register").last()
    assert event.details["value"] == "*.bank.example.jp"


@pytest.mark.parametrize("user", ["signatory", "other_admin", "assessor", "owner", "outsider"])
def test_only_the_organisations_editors_register(world, user):
    before = footprint()
    with pytest.raises(NotAllowed):
        register(world, getattr(world, user), "ip", "198.51.100.7")
    assert footprint() == before


@pytest.mark.parametrize(
    ("kind", "value", "words"),
    [
        ("cidr", "10.0.0.0/8", "private"),
        ("ip", "127.0.0.1", "loopback"),
        ("cidr", "2.0.0.0/7", "/8"),
        ("ip", "banana", "not an IPv4 or IPv6 address"),
        ("domain", "localhost", "localhost"),
        ("asn", "AS64512", "private"),
    ],
)
def test_nonsense_is_refused_with_the_reason_and_nothing_stored(world, kind, value, words):
    before = footprint()
    with pytest.raises(MamoriError) as refused:
        register(world, world.admin, kind, value)
    assert refused.value.field == "value"
    assert words in str(refused.value.message), refused.value.message
    assert footprint() == before


def test_documentation_ranges_are_refused_where_real_things_are_watched(world, settings):
    settings.EARLYWARNING_DOCUMENTATION_ASSETS = False
    with pytest.raises(MamoriError, match="documentation"):
        register(world, world.admin, "cidr", "203.0.113.0/24")


def test_the_same_claim_twice_is_a_conflict_but_a_withdrawn_one_can_be_made_again(world):
    asset = register(world, world.admin, "ip", "198.51.100.7")
    with pytest.raises(Conflict):
        register(world, world.admin, "ip", "198.51.100.7")
    registry.withdraw(world.admin, world.access(world.admin), asset)
    again = register(world, world.admin, "ip", "198.51.100.7")
    assert again.state == AssetState.PENDING


def test_overlapping_claims_of_two_organisations_are_recorded_for_the_scheme_owner(world):
    mine = register(world, world.admin, "cidr", "198.51.100.0/24")
    theirs = register(
        world, world.other_admin, "range", "198.51.100.200-198.51.101.10", world.other_bank
    )
    apart = register(world, world.other_admin, "cidr", "203.0.113.0/25", world.other_bank)
    domain = register(world, world.admin, "domain", "example.jp", include_subdomains=True)
    below = register(world, world.other_admin, "domain", "www.shop.example.jp", world.other_bank)
    assert AssetOverlap.objects.filter(asset=theirs, other=mine).exists()
    assert AssetOverlap.objects.filter(asset=below, other=domain).exists()
    assert not AssetOverlap.objects.filter(asset=apart).exists()
    # Within one organisation, nested claims are normal (a block and one address in it).
    register(world, world.admin, "ip", "198.51.100.9")
    assert AssetOverlap.objects.count() == 2


def test_the_scheme_owner_approves_an_address_block_with_a_reason(world):
    asset = register(world, world.admin, "cidr", "198.51.100.0/24")
    with pytest.raises(NotAllowed):
        registry.approve(world.admin, world.access(world.admin), asset, reason="mine")
    with pytest.raises(MamoriError, match="why"):
        registry.approve(world.owner, world.access(world.owner), asset, reason="  ")
    approved = registry.approve(
        world.owner, world.access(world.owner), asset, reason="RIR record JPNIC checked"
    )
    assert (approved.state, approved.method, approved.decided_by) == (
        AssetState.VERIFIED,
        VerificationMethod.APPROVAL,
        world.owner,
    )
    assert approved.counts
    with pytest.raises(WrongState):
        registry.approve(world.owner, world.access(world.owner), approved, reason="again")
    domain = register(world, world.admin, "domain", "bank.example.jp")
    with pytest.raises(WrongState, match="DNS"):
        registry.approve(world.owner, world.access(world.owner), domain, reason="trust me")


def test_a_domain_is_verified_by_its_txt_record_on_a_real_dns_server(world, settings, dns_server):
    settings.DNS_RESOLVER = dns_server.host
    settings.DNS_PORT = dns_server.port
    settings.DNS_TIMEOUT_SECONDS = 2
    asset = register(world, world.admin, "domain", "bank.example.jp")
    dns_server.serve({"_mamori.bank.example.jp": ["mamori-verification=someone-elses-token"]})
    result = registry.check_domain(world.admin, world.access(world.admin), asset)
    assert not result.found
    asset.refresh_from_db()
    assert (asset.state, asset.last_check_result) == (AssetState.PENDING, "wrong_token")
    # The other bank cannot even ask.
    with pytest.raises(NotAllowed):
        registry.check_domain(world.other_admin, world.access(world.other_admin), asset)
    dns_server.serve({"_mamori.bank.example.jp": ["v=spf1 -all", asset.verification_token]})
    result = registry.check_domain(world.admin, world.access(world.admin), asset)
    assert result.found
    asset.refresh_from_db()
    assert (asset.state, asset.method) == (AssetState.VERIFIED, VerificationMethod.DNS_TXT)
    assert AuditEvent.objects.filter(action="earlywarning.asset.verify").count() == 1


# --- CSV --------------------------------------------------------------------------------------


def import_csv(world, text: str, **options):
    return registry.import_csv(
        world.admin, world.access(world.admin), world.bank, text.encode(), source="assets.csv",
        **options,
    )  # fmt: skip


def test_a_csv_file_with_one_bad_row_registers_nothing_and_names_every_bad_line(world):
    before = footprint()
    result = import_csv(
        world,
        "kind,value,include_subdomains\n"
        "ip,198.51.100.7,\n"
        "cidr,192.168.0.0/16,false\n"
        "domain,bank.example.jp,maybe\n"
        "ip,198.51.100.7,no\n"
        "planet,mars,\n",
    )
    assert result.created == []
    assert [line.split(":")[1] for line in result.errors] == ["3", "4", "5", "6"]
    assert "private" in result.errors[0]
    assert "true or false" in result.errors[1]
    assert "line 2" in result.errors[2]
    assert footprint() == before


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"value\n1.2.3.4\n", "missing: kind"),
        (b"kind,value\n", "no claims"),
        (b"\xff\xfekind", "not UTF-8"),
        (b"kind,value\nip,1.2.3.4\x00\n", "NUL"),
    ],
)
def test_unreadable_csv_files_are_refused_with_a_clear_reason(world, data, words):
    result = registry.import_csv(
        world.admin, world.access(world.admin), world.bank, data, source="a.csv"
    )
    assert result.created == []
    assert words in result.errors[0], result.errors


def test_the_command_line_imports_approves_and_exports(world, tmp_path, capsys):
    path = tmp_path / "assets.csv"
    path.write_text(
        "kind,value,include_subdomains\n"
        "cidr,198.51.100.0/24,false\n"
        "range,203.0.113.10-203.0.113.20,\n"
        "asn,AS64500,\n"
        "domain,bank.example.jp,true\n",
        encoding="utf-8",
    )
    with pytest.raises(CommandError, match="--reason"):
        call_command("earlywarning", "assets", "import", str(world.bank.pk), str(path), "--approve")
    call_command(
        "earlywarning", "assets", "import", world.bank.corporate_number or str(world.bank.pk),
        str(path), "--approve", "--reason", "JPNIC records checked by the operator",
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "4 assets registered" in out
    assert "3 verified, 1 awaiting verification" in out
    states = dict(Asset.objects.filter(organisation=world.bank).values_list("value", "state"))
    assert states == {
        "198.51.100.0/24": "verified",
        "203.0.113.10-203.0.113.20": "verified",
        "AS64500": "verified",
        "bank.example.jp": "pending",
    }
    # The same file again: every row is already registered, nothing changes.
    with pytest.raises(CommandError, match="already registered"):
        call_command("earlywarning", "assets", "import", str(world.bank.pk), str(path))
    with pytest.raises(CommandError, match="No organisation"):
        call_command("earlywarning", "assets", "import", "999999", str(path))
    call_command("earlywarning", "assets", "export", str(world.bank.pk))
    exported = capsys.readouterr().out.splitlines()
    assert exported[0] == "kind,value,include_subdomains,state,verified_at,label"
    assert "domain,bank.example.jp,true,pending,," in exported
