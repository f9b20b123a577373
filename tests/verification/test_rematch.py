"""New advisories re-match the fleet as sets: the changed advisories are compared with the
distinct package versions (targets) of their packages, and only the hosts that hold an affected
target have their vulnerability rows, update-management checks and verdict patched, in one
transaction. A patched evaluation must read exactly like a full evaluation of the same evidence
against the same advisories."""

from __future__ import annotations

import json
import shutil

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import formats, timezone, translation

from mamori.advisories import services as advisory_services
from mamori.advisories.models import IndexGeneration
from mamori.advisories.signals import IndexChanges, advisories_changed
from mamori.verification import services
from mamori.verification.evaluation import (
    effective_settings,
    is_kev_overdue,
    vulnerability_check_ids,
)
from mamori.verification.models import (
    CheckResult,
    Evaluation,
    Host,
    HostTarget,
    MatchTarget,
    Trigger,
    VerdictChange,
    Vulnerability,
)
from mamori.verification.services import rematch
from tests.datafiles import DEBIAN12 as OSV
from tests.datafiles import KEV_FILE as KEV
from tests.verification.conftest import import_advisories, store
from tests.verification.factory import debian12_evidence, with_source_version

pytestmark = pytest.mark.django_db

WEBP = "MAMORI-DEB12-CVE-2023-4863-libwebp"


def _without(evidence: dict, source: str) -> dict:
    evidence["packages"]["items"] = [
        item for item in evidence["packages"]["items"] if item["source_name"] != source
    ]
    return evidence


def _folder(tmp_path, pattern: str, name: str):
    folder = tmp_path / name
    folder.mkdir()
    for path in OSV.glob(pattern):
        shutil.copy(path, folder / path.name)
    return folder


def _payloads():
    return {
        "old": with_source_version(
            debian12_evidence(hostname="old-webp", machine_id="a" * 32), "libwebp", "1.2.4-0.2"
        ),
        "none": _without(debian12_evidence(hostname="no-webp", machine_id="b" * 32), "libwebp"),
        "fixed": debian12_evidence(hostname="new-webp", machine_id="c" * 32),
    }


def _store_fleet(world) -> dict[str, Host]:
    """Three hosts:
    - ``old-webp`` (bank) runs a libwebp from before the fix of CVE-2023-4863;
    - ``no-webp`` (bank) has no libwebp at all;
    - ``new-webp`` (other bank) runs the fixed libwebp."""
    payloads = _payloads()
    return {
        "old": store(world.admin, world.bank, payloads["old"]).host,
        "none": store(world.admin, world.bank, payloads["none"]).host,
        "fixed": store(world.other_admin, world.other_bank, payloads["fixed"]).host,
    }


@pytest.fixture
def unmatched_fleet(world):
    """The fleet uploaded before any advisory was imported."""
    hosts = _store_fleet(world)
    for host in hosts.values():
        assert not host.latest_evaluation.vulnerabilities_matched
    return hosts


@pytest.fixture
def fleet(world, tmp_path):
    """The fleet uploaded after the openssl advisories and the KEV catalogue were imported:
    every host is matched, none has the libwebp advisory yet."""
    import_advisories(_folder(tmp_path, "*-openssl.json", "openssl"), KEV)
    hosts = _store_fleet(world)
    for host in hosts.values():
        evaluation = host.latest_evaluation
        assert evaluation.vulnerabilities_matched
        assert evaluation.vulnerability_coverage == "ok"
        assert not evaluation.vulnerability_rows.filter(advisory=WEBP).exists()
    return hosts


def _evaluations(host: Host) -> list[Evaluation]:
    return list(Evaluation.objects.filter(evidence__host=host).order_by("pk"))


def _full(host: Host):
    """A full evaluation of the host's latest evidence now, stored nowhere."""
    host = Host.objects.select_related("latest_evidence", "latest_evaluation").get(pk=host.pk)
    return services.evaluate_evidence(
        host.latest_evidence.payload,
        as_of=host.latest_evaluation.as_of,
        catalogue=services.catalogue_settings_for(host.organisation_id),
    )


COMPARED = ("controls", "findings", "not_applicable", "vulnerabilities", "summary")


def assert_reads_like_a_full_evaluation(host: Host) -> None:
    host = Host.objects.select_related("latest_evaluation").get(pk=host.pk)
    evaluation = host.latest_evaluation
    full = _full(host)
    japanese = evaluation.localised_result("ja")
    for key in COMPARED:
        assert japanese[key] == full.result[key], key
    assert evaluation.localised_result("en")["findings"] == full.findings_en
    assert evaluation.controls == full.result["controls"]
    vulnerabilities = full.vulnerabilities or []
    assert evaluation.vulnerabilities == len(vulnerabilities)
    assert evaluation.overdue_vulnerabilities == sum(1 for v in vulnerabilities if v["overdue"])
    assert evaluation.kev_vulnerabilities == sum(1 for v in vulnerabilities if v["kev"])
    assert evaluation.failed_checks == sum(
        1 for f in full.result["findings"] if f["status"] == "fail"
    )
    rows = dict(evaluation.checks.values_list("check_id", "status"))
    assert rows == {f["check"]: f["status"] for f in full.result["findings"]}
    # The vulnerability checks' texts live in the document only (they depend on the rows).
    details = dict(evaluation.checks.values_list("check_id", "detail"))
    assert details == {
        f["check"]: "" if f["check"] in vulnerability_check_ids() else f["detail"]
        for f in full.result["findings"]
    }
    kev_days = effective_settings(full.result["settings"])["kev_patch_days"]
    assert evaluation.kev_overdue_vulnerabilities == sum(
        1 for v in vulnerabilities if is_kev_overdue(v, kev_days)
    )


def test_first_import_evaluates_the_unmatched_hosts_of_its_packages_in_full(
    unmatched_fleet, tmp_path
):
    """Hosts evaluated before any advisory existed are not patched but evaluated in full: only
    that can tell whether advisories now cover their release."""
    import_advisories(_folder(tmp_path, "*-libwebp.json", "osv"), KEV)
    old = _evaluations(unmatched_fleet["old"])
    assert [e.trigger for e in old] == [Trigger.UPLOAD, Trigger.REMATCH]
    latest = Host.objects.get(pk=unmatched_fleet["old"].pk).latest_evaluation
    assert latest == old[-1]
    assert WEBP in {v["advisory"] for v in latest.vulnerability_records()}
    assert latest.kev_vulnerabilities >= 1
    assert latest.security_update_management == "fail"
    # Without libwebp the host is untouched; the fixed one is evaluated and has nothing.
    assert [e.trigger for e in _evaluations(unmatched_fleet["none"])] == [Trigger.UPLOAD]
    fixed = _evaluations(unmatched_fleet["fixed"])
    assert [e.trigger for e in fixed] == [Trigger.UPLOAD, Trigger.REMATCH]
    assert fixed[-1].vulnerabilities == 0
    for host in unmatched_fleet.values():
        if host.hostname != "no-webp":
            assert_reads_like_a_full_evaluation(host)


def test_a_new_advisory_patches_only_the_hosts_with_an_affected_version(fleet, tmp_path):
    before = {name: host.latest_evaluation for name, host in fleet.items()}
    evaluations = Evaluation.objects.count()
    import_advisories(_folder(tmp_path, "*-libwebp.json", "osv"))

    # No evaluation is added: the latest one of the affected host is patched in place.
    assert Evaluation.objects.count() == evaluations
    old = Host.objects.get(pk=fleet["old"].pk).latest_evaluation
    assert old.pk == before["old"].pk
    assert old.rematched_at is not None
    row = old.vulnerability_rows.get(advisory=WEBP)
    assert (row.package, row.installed_version, row.kev, row.overdue) == (
        "libwebp",
        "1.2.4-0.2",
        True,
        True,
    )
    assert old.security_update_management == "fail"
    assert old.checks.get(check_id="UPD-04").status == "fail"
    upd04 = next(f for f in old.localised_result("en")["findings"] if f["check"] == "UPD-04")
    assert WEBP in upd04["detail"]
    assert_reads_like_a_full_evaluation(fleet["old"])
    change = VerdictChange.objects.get(host=fleet["old"])
    assert (change.before, change.after, change.advisories) == (
        before["old"].security_update_management,
        "fail",
        [WEBP],
    )
    assert change.before != "fail"

    # The fixed version and the host without the package are not touched at all.
    for name in ("fixed", "none"):
        evaluation = Evaluation.objects.get(pk=before[name].pk)
        assert evaluation.rematched_at is None
        assert not evaluation.vulnerability_rows.filter(advisory=WEBP).exists()
        assert_reads_like_a_full_evaluation(fleet[name])


def test_the_rematch_task_twice_has_the_effect_of_once(fleet, tmp_path):
    """Delivery is at least once (tests/core/test_tasks_run_twice.py): the import's re-match,
    run a second time with the same arguments, changes nothing more (it only stamps the
    patched evaluations' ``rematched_at`` again)."""
    from mamori.core.models import OutboxMessage, OutboxState
    from mamori.verification.tasks import rematch_advisories

    import_advisories(_folder(tmp_path, "*-libwebp.json", "osv"))
    message = OutboxMessage.objects.filter(task=rematch_advisories.name).order_by("pk").last()
    assert message.state == OutboxState.DONE

    def state():
        evaluations = Evaluation.objects.order_by("pk")
        return (
            list(evaluations.values_list("pk", "security_update_management", "vulnerabilities")),
            list(evaluations.values_list("rematched_at", flat=True).filter(rematched_at=None)),
            list(VerdictChange.objects.values_list("host_id", "before", "after")),
            sorted(
                Evaluation.objects.filter(vulnerability_rows__isnull=False).values_list(
                    "pk", "vulnerability_rows__advisory"
                )
            ),
        )

    once = state()
    outcome = rematch_advisories(*message.args)
    assert outcome["verdicts_changed"] == 0
    assert state() == once


def test_a_withdrawn_advisory_takes_its_findings_back(fleet, tmp_path):
    folder = _folder(tmp_path, "*-libwebp.json", "osv")
    original = Host.objects.get(pk=fleet["old"].pk).latest_evaluation
    verdict_before = original.security_update_management
    import_advisories(folder)
    path = folder / f"{WEBP}.json"
    record = json.loads(path.read_text())
    record["withdrawn"] = "2026-11-20T00:00:00Z"
    record["modified"] = "2026-11-20T00:00:00Z"
    path.write_text(json.dumps(record))
    import_advisories(folder)
    evaluation = Host.objects.get(pk=fleet["old"].pk).latest_evaluation
    assert evaluation.pk == original.pk
    assert not evaluation.vulnerability_rows.filter(advisory=WEBP).exists()
    assert evaluation.security_update_management == verdict_before
    assert_reads_like_a_full_evaluation(fleet["old"])


def test_rematch_all_reads_like_full_evaluations(fleet, tmp_path):
    """The set-based full re-match (after a bulk import): every host as if evaluated anew."""
    import_advisories(_folder(tmp_path, "*-libwebp.json", "osv"))
    Vulnerability.objects.all().delete()  # as if the rows had been lost
    outcome = services.rematch_all()
    assert outcome.hosts_patched == 3
    assert outcome.targets_affected >= 1
    for host in fleet.values():
        assert_reads_like_a_full_evaluation(host)


def test_the_signal_alone_drives_the_rematch(fleet):
    """What the importer sends after commit: only the advisories named are compared."""
    advisory_services.load_index()
    generation = IndexGeneration.current()
    nothing = IndexChanges(frozenset({"NO-SUCH-ADVISORY"}), False, False, generation, generation, 0)
    advisories_changed.send(sender=None, keys=set(), changes=nothing)
    assert not Evaluation.objects.filter(rematched_at__isnull=False).exists()


def test_the_index_is_updated_in_place_when_exactly_one_import_behind(fleet, tmp_path):
    index = advisory_services.load_index()
    assert WEBP not in index
    received = []

    def receiver(sender, changes=None, **_kwargs):
        received.append((changes, advisory_services.apply_changes(changes)))

    advisories_changed.connect(receiver, dispatch_uid="test-in-place")
    try:
        # The test's receiver runs after the re-match, which already applied the change.
        import_advisories(_folder(tmp_path, "*-libwebp.json", "osv"))
    finally:
        advisories_changed.disconnect(dispatch_uid="test-in-place")
    ((changes, _again),) = received
    assert changes.advisory_ids == frozenset({WEBP})
    assert changes.alone
    assert changes.bumps == 1
    assert advisory_services.load_index() is index  # not rebuilt
    assert WEBP in index
    # Another writer moved the generation meanwhile: not in place, rebuilt on next use.
    advisory_services.forget_index()
    advisory_services.load_index()
    IndexGeneration.bump()
    moved = IndexChanges(
        frozenset({WEBP}), False, False, changes.generation_after, changes.generation_after, 0
    )
    assert not advisory_services.apply_changes(moved)


def test_finding_affected_targets_is_an_index_lookup(fleet):
    """One query per family and 500 names, whatever the fleet; the evidence is never read."""
    keys = {("Debian", "libwebp"), ("Debian", "openssl"), ("PyPI", "django")}
    with CaptureQueriesContext(connection) as queries:
        targets = services.targets_with_keys(keys)
    assert len(queries.captured_queries) == 2
    assert all("payload" not in query["sql"] for query in queries.captured_queries)
    names = set(MatchTarget.objects.filter(pk__in=targets).values_list("name", "version"))
    assert {name for name, _version in names} == {"libwebp", "openssl"}
    # Two libwebp versions in the fleet: two targets, however many hosts share each.
    assert len([1 for name, _version in names if name == "libwebp"]) == 2
    many = {("Debian", f"package-{index}") for index in range(1200)} | {("Debian", "libwebp")}
    with CaptureQueriesContext(connection) as queries:
        services.targets_with_keys(many)
    assert len(queries.captured_queries) == 3


def test_the_target_index_follows_the_latest_evidence(world, fleet):
    """When a host's newest collection drops a package, its targets drop it too, and a
    re-match for that package no longer touches the host."""
    host = fleet["old"]
    assert HostTarget.objects.filter(host=host, target__name="libwebp").exists()
    newer = _without(debian12_evidence(hostname="old-webp", machine_id="a" * 32), "libwebp")
    store(world.admin, world.bank, newer)
    assert not HostTarget.objects.filter(host=host, target__name="libwebp").exists()
    assert services.hosts_with_keys({("Debian", "libwebp")}) == [fleet["fixed"].pk]


def test_hosts_sharing_a_version_share_its_target(world, fleet):
    shared = MatchTarget.objects.get(name="openssl", hosts__host=fleet["old"])
    assert set(shared.hosts.values_list("host__hostname", flat=True)) == {
        "old-webp",
        "no-webp",
        "new-webp",
    }


def test_a_rematch_never_replaces_a_newer_upload(world, fleet):
    """The full re-evaluation evaluates the evidence it read; if a newer collection arrived
    meanwhile, the newer one's evaluation stays current."""
    host = fleet["old"]
    stale_evidence_id = host.latest_evidence_id
    store(world.admin, world.bank, debian12_evidence(hostname="old-webp", machine_id="a" * 32))
    host.refresh_from_db()
    assert host.latest_evidence_id != stale_evidence_id
    current = host.latest_evaluation_id
    Host.objects.filter(pk=host.pk).update(latest_evidence_id=stale_evidence_id)
    original = rematch.evaluate_evidence

    def evaluate_then_newer_arrives(payload, **kwargs):
        evaluated = original(payload, **kwargs)
        Host.objects.filter(pk=host.pk).update(
            latest_evidence_id=Host.objects.get(pk=host.pk).evidence.latest("collected_at").pk
        )
        return evaluated

    rematch.evaluate_evidence = evaluate_then_newer_arrives
    try:
        assert services.rematch_hosts([host.pk]) == 0
    finally:
        rematch.evaluate_evidence = original
    host.refresh_from_db()
    assert host.latest_evaluation_id == current


def test_the_patch_is_one_transaction(fleet, tmp_path, monkeypatch):
    """A failure while patching leaves every host as it was: no half-patched fleet."""
    before = {
        name: (
            Evaluation.objects.get(pk=host.latest_evaluation_id).security_update_management,
            Vulnerability.objects.filter(evaluation_id=host.latest_evaluation_id).count(),
            CheckResult.objects.get(
                evaluation_id=host.latest_evaluation_id, check_id="UPD-04"
            ).detail,
        )
        for name, host in fleet.items()
    }
    folder = _folder(tmp_path, "*-libwebp.json", "osv")
    from mamori.core import bulk

    def refuse(*_args, **_kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(rematch, "update_rows", refuse)
    import_advisories(folder)
    monkeypatch.setattr(rematch, "update_rows", bulk.update_rows)
    # The import stands; the re-match waits in the outbox with its error, for the beat.
    from mamori.core.models import OutboxMessage, OutboxState

    failed = OutboxMessage.objects.order_by("pk").last()
    assert failed.task == "mamori.verification.tasks.rematch_advisories"
    assert failed.state == OutboxState.PENDING
    assert failed.last_error == "RuntimeError: the database went away"
    for name, host in fleet.items():
        assert (
            Evaluation.objects.get(pk=host.latest_evaluation_id).security_update_management,
            Vulnerability.objects.filter(evaluation_id=host.latest_evaluation_id).count(),
            CheckResult.objects.get(
                evaluation_id=host.latest_evaluation_id, check_id="UPD-04"
            ).detail,
        ) == before[name]
    assert not Evaluation.objects.filter(rematched_at__isnull=False).exists()
    assert timezone.now()  # the fleet is still readable


def test_the_host_page_shows_the_patch(world, fleet, tmp_path):
    from django.urls import reverse

    from tests.conftest import client_for

    import_advisories(_folder(tmp_path, "*-libwebp.json", "osv"))
    host = Host.objects.get(pk=fleet["old"].pk)
    page = client_for(world.admin).get(reverse("verification:detail", args=[host.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert WEBP in text
    # The factory's host was undecided on updates (no advisory said anything about it); the
    # KEV-listed libwebp fix makes it fail, and the page says when and why.
    change = VerdictChange.objects.get(host=host)
    assert (change.control, change.before, change.after) == (
        "security_update_management",
        "unknown",
        "fail",
    )
    assert change.evaluation_id == host.latest_evaluation_id
    assert 'id="verdict-changes"' in text
    rematched = timezone.localtime(host.latest_evaluation.rematched_at)
    with translation.override("ja"):  # the client sends no language: the page is Japanese
        assert formats.date_format(rematched, "DATETIME_FORMAT") in text


def _debian11(payload: dict) -> dict:
    payload["os"].update(
        version_id="11", version_codename="bullseye", pretty_name="Debian GNU/Linux 11 (bullseye)"
    )
    return payload


def test_a_release_without_advisories_is_evaluated_in_full_only_when_they_arrive(
    world, fleet, tmp_path
):
    """A Debian 11 host when only Debian 12 advisories exist: its update checks are undecided.
    A Debian 12 advisory for one of its packages changes nothing for it; the first Debian 11
    advisory makes the re-match evaluate it in full, and from then on it is matched."""
    payload = _debian11(
        with_source_version(
            debian12_evidence(hostname="old-11", machine_id="d" * 32), "libwebp", "1.2.4-0.2"
        )
    )
    host = store(world.admin, world.bank, payload).host
    assert host.latest_evaluation.vulnerability_coverage == "no_advisories"
    import_advisories(_folder(tmp_path, "*-libwebp.json", "osv"))
    assert [e.trigger for e in _evaluations(host)] == [Trigger.UPLOAD]
    assert Evaluation.objects.get(pk=host.latest_evaluation_id).rematched_at is None

    folder = tmp_path / "bullseye"
    folder.mkdir()
    record = json.loads((OSV / f"{WEBP}.json").read_text())
    record["id"] = "MAMORI-DEB11-CVE-2023-4863-libwebp"
    for affected in record["affected"]:
        affected["package"]["ecosystem"] = "Debian:11"
    (folder / "deb11.json").write_text(json.dumps(record))
    import_advisories(folder)
    evaluations = _evaluations(host)
    assert [e.trigger for e in evaluations] == [Trigger.UPLOAD, Trigger.REMATCH]
    latest = Host.objects.get(pk=host.pk).latest_evaluation
    assert latest == evaluations[-1]
    assert latest.vulnerability_coverage == "ok"
    assert "MAMORI-DEB11-CVE-2023-4863-libwebp" in {
        v["advisory"] for v in latest.vulnerability_records()
    }
    assert_reads_like_a_full_evaluation(host)


def test_a_kev_import_flags_the_rows_of_the_advisories_it_names(world, tmp_path):
    """KEV entries change no advisory, yet they change findings: the importer names the
    advisories whose CVEs were added, and the re-match replaces those rows."""
    import_advisories(_folder(tmp_path, "*-openssl.json", "openssl"))
    hosts = _store_fleet(world)
    import_advisories(_folder(tmp_path, "*-libwebp.json", "webp"))
    old = Host.objects.get(pk=hosts["old"].pk).latest_evaluation
    row = old.vulnerability_rows.get(advisory=WEBP)
    assert not row.kev
    assert old.kev_overdue_vulnerabilities == 0
    assert old.checks.get(check_id="UPD-04").status == "pass"

    import_advisories(KEV)
    old.refresh_from_db()
    assert old.vulnerability_rows.get(advisory=WEBP).kev
    assert old.kev_vulnerabilities >= 1
    assert old.kev_overdue_vulnerabilities >= 1
    assert old.checks.get(check_id="UPD-04").status == "fail"
    assert_reads_like_a_full_evaluation(hosts["old"])
    assert_reads_like_a_full_evaluation(hosts["fixed"])


def test_a_bulk_import_rebuilds_the_index_instead_of_updating_it_in_place(fleet):
    advisory_services.load_index()
    generation = IndexGeneration.current()
    many = frozenset(f"BULK-{index}" for index in range(advisory_services.IN_PLACE_LIMIT + 1))
    assert not advisory_services.apply_changes(
        IndexChanges(many, False, False, generation, generation, 0)
    )
