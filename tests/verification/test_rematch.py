"""New advisories re-match only the hosts that have an affected package, found through the
``HostPackageKey`` index, never by reading every host's evidence."""

from __future__ import annotations

import shutil

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mamori.advisories.signals import advisories_changed
from mamori.verification import services
from mamori.verification.models import Evaluation, Host, HostPackageKey, Trigger
from tests.verification.conftest import import_advisories, store
from tests.verification.factory import DATA, debian12_evidence, with_source_version

pytestmark = pytest.mark.django_db


def _without(evidence: dict, source: str) -> dict:
    evidence["packages"]["items"] = [
        item for item in evidence["packages"]["items"] if item["source_name"] != source
    ]
    return evidence


@pytest.fixture
def fleet(world):
    """Three hosts before any advisory is known:
    - ``old-webp`` (bank) runs a libwebp from before the fix of CVE-2023-4863;
    - ``no-webp`` (bank) has no libwebp at all;
    - ``new-webp`` (other bank) runs the fixed libwebp."""
    old = with_source_version(
        debian12_evidence(hostname="old-webp", machine_id="a" * 32), "libwebp", "1.2.4-0.2"
    )
    none = _without(debian12_evidence(hostname="no-webp", machine_id="b" * 32), "libwebp")
    fixed = debian12_evidence(hostname="new-webp", machine_id="c" * 32)
    hosts = {
        "old": store(world.admin, world.bank, old).host,
        "none": store(world.admin, world.bank, none).host,
        "fixed": store(world.other_admin, world.other_bank, fixed).host,
    }
    for host in hosts.values():
        assert host.latest_evaluation.vulnerabilities == 0
    return hosts


def _evaluations(host: Host) -> list[Evaluation]:
    return list(Evaluation.objects.filter(evidence__host=host).order_by("pk"))


def test_import_rematches_only_hosts_with_an_affected_package(fleet, tmp_path):
    folder = tmp_path / "osv"
    folder.mkdir()
    for path in (DATA / "osv" / "debian12").glob("*-libwebp.json"):
        shutil.copy(path, folder / path.name)
    import_advisories(folder, DATA / "kev" / "known_exploited_vulnerabilities.json")

    old = _evaluations(fleet["old"])
    assert [e.trigger for e in old] == [Trigger.UPLOAD, Trigger.REMATCH]
    host = Host.objects.get(pk=fleet["old"].pk)
    assert host.latest_evaluation == old[-1]
    latest = old[-1]
    assert latest.evidence_id == host.latest_evidence_id
    advisories = {v["advisory"] for v in latest.result["vulnerabilities"]}
    assert "MAMORI-DEB12-CVE-2023-4863-libwebp" in advisories
    assert latest.kev_vulnerabilities >= 1
    assert latest.security_update_management == "fail"

    # The host without libwebp was not evaluated again.
    assert [e.trigger for e in _evaluations(fleet["none"])] == [Trigger.UPLOAD]
    # The fixed host has the package, so it was re-matched, and nothing matches it.
    fixed = _evaluations(fleet["fixed"])
    assert [e.trigger for e in fixed] == [Trigger.UPLOAD, Trigger.REMATCH]
    assert fixed[-1].vulnerabilities == 0


def test_the_signal_alone_drives_the_rematch(fleet):
    """What the importer sends after commit: only the keys named are looked up."""
    advisories_changed.send(sender=None, keys={("Debian", "no-such-package")})
    assert Evaluation.objects.filter(trigger=Trigger.REMATCH).count() == 0
    advisories_changed.send(sender=None, keys={("Debian", "libwebp"), ("PyPI", "django")})
    rematched = set(
        Evaluation.objects.filter(trigger=Trigger.REMATCH).values_list(
            "evidence__host__hostname", flat=True
        )
    )
    assert rematched == {"old-webp", "new-webp"}
    advisories_changed.send(sender=None, keys={("Debian", "glibc")})
    assert Evaluation.objects.filter(trigger=Trigger.REMATCH).count() == 5


def test_finding_affected_hosts_is_an_index_lookup(fleet):
    """One query per family and 500 names, whatever the fleet; the evidence is never read."""
    keys = {("Debian", "libwebp"), ("Debian", "openssl"), ("PyPI", "django")}
    with CaptureQueriesContext(connection) as queries:
        host_ids = services.hosts_with_keys(keys)
    assert len(queries.captured_queries) == 2
    assert all("payload" not in query["sql"] for query in queries.captured_queries)
    assert set(host_ids) == {fleet["old"].pk, fleet["none"].pk, fleet["fixed"].pk}
    many = {("Debian", f"package-{index}") for index in range(1200)} | {("Debian", "libwebp")}
    with CaptureQueriesContext(connection) as queries:
        host_ids = services.hosts_with_keys(many)
    assert len(queries.captured_queries) == 3
    assert set(host_ids) == {fleet["old"].pk, fleet["fixed"].pk}


def test_the_index_follows_the_latest_evidence(world, fleet):
    """When a host's newest collection drops a package, the index drops it too, and a
    re-match for that package no longer touches the host."""
    host = fleet["old"]
    assert HostPackageKey.objects.filter(host=host, family="Debian", name="libwebp").exists()
    newer = _without(debian12_evidence(hostname="old-webp", machine_id="a" * 32), "libwebp")
    store(world.admin, world.bank, newer)
    assert not HostPackageKey.objects.filter(host=host, name="libwebp").exists()
    assert services.hosts_with_keys({("Debian", "libwebp")}) == [fleet["fixed"].pk]


def test_a_rematch_never_replaces_a_newer_upload(world, fleet):
    """The re-match evaluates the evidence it read; if a newer collection arrived meanwhile,
    the newer one's evaluation stays current."""
    host = fleet["old"]
    stale_evidence_id = host.latest_evidence_id
    store(
        world.admin,
        world.bank,
        debian12_evidence(hostname="old-webp", machine_id="a" * 32),
    )
    host.refresh_from_db()
    assert host.latest_evidence_id != stale_evidence_id
    current = host.latest_evaluation_id
    Host.objects.filter(pk=host.pk).update(latest_evidence_id=stale_evidence_id)
    # Simulate the race: the task read the stale evidence, then the newer upload committed.
    original = services.evaluate_evidence

    def evaluate_then_newer_arrives(payload, **kwargs):
        evaluated = original(payload, **kwargs)
        Host.objects.filter(pk=host.pk).update(
            latest_evidence_id=Host.objects.get(pk=host.pk).evidence.latest("collected_at").pk
        )
        return evaluated

    services.evaluate_evidence = evaluate_then_newer_arrives
    try:
        assert services.rematch_hosts([host.pk]) == 0
    finally:
        services.evaluate_evidence = original
    host.refresh_from_db()
    assert host.latest_evaluation_id == current
