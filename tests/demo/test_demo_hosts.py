"""The demo's hosts: evidence collected by the real agent from written root trees, evaluated
against the bundled advisories, shown on the host and certificate pages, loaded idempotently."""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import replace
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone, translation

from mamori.accounts.models import User
from mamori.advisories import sources
from mamori.advisories.models import Advisory, EolCycle, KevEntry
from mamori.audit.models import AuditEvent
from mamori.certificates.models import Certificate
from mamori.demo import cast, hosts
from mamori.organisations.models import Category, Organisation, Role
from mamori.verification.evidence import validate_evidence
from mamori.verification.models import CONTROLS, CheckResult, Evaluation, Evidence, Host
from mamori.verification.services import continuous_assurance, digest_of
from tests.conftest import client_for, make_user

KOHAKU_HOSTS = {spec.hostname for spec in hosts.HOSTS if spec.organisation == hosts.KOHAKU_BANK}
MENOU_HOSTS = {spec.hostname for spec in hosts.HOSTS if spec.organisation == hosts.MENOU_SYSTEMS}


def _spec(hostname: str) -> hosts.Spec:
    return next(spec for spec in hosts.HOSTS if spec.hostname == hostname)


def _get(client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return response.content.decode()


def _counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (
            Host,
            Evidence,
            Evaluation,
            CheckResult,
            Advisory,
            KevEntry,
            EolCycle,
            AuditEvent,
        )
    }


# --- The bundle and the collection (no database) --------------------------------------------


def test_the_bundled_advisories_are_small_self_contained_and_credited():
    files = [path for path in hosts.ADVISORIES.rglob("*") if path.is_file()]
    assert sum(path.stat().st_size for path in files) < 300 * 1024
    formats = {}
    for path in files:
        if path.suffix in (".json", ".csv"):
            formats[path.relative_to(hosts.ADVISORIES).parts[0]] = sources.detect(path).format
    assert formats == {
        "debian12": sources.OSV_RECORD,
        "ubuntu": sources.OSV_RECORD,
        "kev": sources.KEV,
        "distro-info": sources.DISTRO_INFO,
        "endoflife": sources.ENDOFLIFE,
    }
    readme = (hosts.ADVISORIES / "README.md").read_text(encoding="utf-8")
    for licence in ("CC BY-SA 4.0", "CC0 1.0", "ISC", "MIT"):
        assert licence in readme
    assert (hosts.HOST_DATA / "README.md").exists()
    # Nothing outside the package is read when the demo is built: its data folders are inside
    # the package (the absolute paths in hosts.py are those of the simulated hosts' trees).
    package = Path(hosts.__file__).resolve().parent
    for folder in (hosts.ADVISORIES, hosts.HOST_DATA):
        assert folder.resolve().is_relative_to(package)


def test_a_demo_host_is_collected_by_the_real_agent_the_same_way_every_time():
    spec = _spec("kb-web-01")
    moment = dt.datetime(2026, 11, 25, 23, 40, tzinfo=dt.UTC)
    evidence = hosts.collect_host(spec, spec.versions, moment)
    again = hosts.collect_host(spec, spec.versions, moment)
    assert digest_of(evidence) == digest_of(again)
    validate_evidence(evidence)

    assert evidence["agent"]["name"] == "mamori-agent"
    assert evidence["collected_at"] == "2026-11-25T23:40:00Z"
    assert evidence["host"]["hostname"] == "kb-web-01"
    assert re.fullmatch(r"[0-9a-f]{32}", evidence["host"]["machine_id"])
    assert evidence["os"]["pretty_name"] == "Debian GNU/Linux 12 (bookworm)"
    assert evidence["firewall"]["default_inbound"] == "drop"
    listening = evidence["listening"]
    assert listening["status"] == "ok"
    assert {(item["address"], item["port"]) for item in listening["sockets"]} >= {
        ("0.0.0.0", 443),  # noqa: S104
        ("::", 22),
        ("127.0.0.1", 25),
    }
    assert evidence["malware"]["clamav"]["on_access"] is True
    assert evidence["malware"]["clamav"]["newest_signature"] == "2026-11-25T17:40:00Z"

    # The earlier collection differs in the package held back, and only there.
    earlier = hosts.collect_host(spec, spec.earlier, moment)

    def versions(document):
        return {
            item["name"]: item["version"]
            for item in document["packages"]["items"]
            if item["manager"] == "dpkg"
        }

    changed = {
        name for name, version in versions(evidence).items() if versions(earlier)[name] != version
    }
    assert changed == {"openssl", "libssl3"}
    assert versions(earlier)["openssl"] == "3.0.18-1~deb12u2"


# --- The whole demo ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_demo_shows_hosts_findings_vulnerabilities_history_and_assurance(demo):
    # One test for the pages and idempotence, on the demo built once for the package.
    assert "Demo hosts: 10 hosts in 2 organisations, 12 collections stored" in demo.output

    kohaku = Organisation.objects.get(name_en=hosts.KOHAKU_BANK)
    menou = Organisation.objects.get(name_en=hosts.MENOU_SYSTEMS)
    for organisation in (kohaku, menou):
        assert cast.is_fictitious(organisation.name_ja, organisation.name_en)
    for organisation, names in ((kohaku, KOHAKU_HOSTS), (menou, MENOU_HOSTS)):
        stored = set(
            Host.objects.filter(organisation=organisation).values_list("hostname", flat=True)
        )
        assert stored == names
        assert 4 <= len(stored) <= 8
    assert Host.objects.count() == len(hosts.HOSTS)

    latest = {
        host.hostname: host.latest_evaluation
        for host in Host.objects.select_related("latest_evaluation")
    }
    assert all(evaluation is not None for evaluation in latest.values())
    # Some hosts fail security update management on overdue fixes, one of them KEV-listed.
    app = latest["kb-app-01"]
    assert app.security_update_management == "fail"
    assert app.overdue_vulnerabilities >= 1
    assert app.kev_vulnerabilities >= 1
    # glibc 2.36-9+deb12u1 misses the fix for CVE-2023-4911 ("Looney Tunables"), KEV-listed.
    looney_tunables = "MAMORI-DEB12-CVE-2023-4911-glibc"
    assert latest["kb-batch-01"].security_update_management == "fail"  # Ubuntu: USNs
    assert latest["kb-report-01"].security_update_management == "fail"  # Debian 11: ended
    # Others pass controls: firewalls on most, everything on the well-kept ones.
    assert latest["kb-web-01"].firewalls == "pass"
    assert latest["kb-db-01"].firewalls == "fail"
    assert latest["kb-bastion-01"].user_access_control == "fail"
    for name in ("kb-web-01", "ms-web-01", "ms-jump-01"):
        assert all(getattr(latest[name], control) == "pass" for control in CONTROLS), name

    # History: the web server failed before its openssl upgrade and passes now.
    web = Host.objects.get(organisation=kohaku, hostname="kb-web-01")
    older, newer = Evidence.objects.filter(host=web).order_by("collected_at")
    assert newer.pk == web.latest_evidence_id
    assert timezone.now() - newer.collected_at < dt.timedelta(days=2)
    assert older.evaluations.get().security_update_management == "fail"

    # The applicant sees its hosts (and only its own), findings, vulnerabilities and the diff.
    applicant = client_for(User.objects.get(username="kohaku-admin"))
    applicant.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    listing = _get(applicant, reverse("verification:list"))
    assert all(name in listing for name in KOHAKU_HOSTS)
    assert not any(name in listing for name in MENOU_HOSTS)
    app_host = Host.objects.get(organisation=kohaku, hostname="kb-app-01")
    detail_url = reverse("verification:detail", args=[app_host.pk])
    page = _get(applicant, detail_url)
    assert "kb-app-01" in page
    assert looney_tunables in page
    assert ">KEV<" in page
    assert 'id="overdue"' in page
    web_page = _get(applicant, reverse("verification:detail", args=[web.pk]))
    assert 'id="history"' in web_page
    diff = _get(
        applicant, f"{reverse('verification:diff', args=[web.pk])}?from={older.pk}&to={newer.pk}"
    )
    assert "3.0.18-1~deb12u2" in diff
    assert "3.0.19-1~deb12u2" in diff
    assert 'id="diff-controls"' in diff

    # The certification body's assessor sees it too; an outsider and another applicant do not.
    assessor = User.objects.get(username="assessor1")
    assert "kb-app-01" in _get(client_for(assessor), detail_url)
    _get(client_for(make_user("eve")), detail_url, 404)
    _get(client_for(User.objects.get(username="ruri-admin")), detail_url, 404)

    # Continuous assurance on the certificate: every host checked in, figures per control.
    certificate = Certificate.objects.currently_valid().get(organisation=kohaku)
    assurance = continuous_assurance(kohaku.pk)
    assert assurance.in_scope == assurance.checked_in == len(KOHAKU_HOSTS)
    assert 0 < assurance.passing["firewalls"] < assurance.in_scope
    certificate_page = _get(applicant, reverse("certificates:detail", args=[certificate.number]))
    assert 'id="continuous-assurance"' in certificate_page
    assert (
        f'data-control="firewalls">{assurance.passing["firewalls"]} / {assurance.in_scope}<'
        in certificate_page
    )

    # Running the demo again the same day changes nothing.
    before = _counts()
    with override_settings(VAR_DIR=demo.var_dir), translation.override("en"):
        call_command("demo", stdout=(again := io.StringIO()))
    assert _counts() == before
    assert "0 collections stored, 10 already stored" in again.getvalue()


@pytest.mark.django_db
def test_hosts_check_in_again_on_a_later_day_without_new_hosts(catalogue):
    # Its own organisation, so the test reads the same whether the package's demo is loaded.
    bank = Organisation.objects.create(
        name_ja="テスト銀行（架空）",
        name_en="Test Bank (fictitious)",
        category=Category.FINANCIAL_INSTITUTION,
    )
    make_user("test-bank-admin", bank, Role.APPLICANT_ADMIN)
    # The third host's organisation does not exist: its host is skipped.
    specs = (
        replace(_spec("kb-web-01"), organisation=bank.name_en),
        replace(_spec("kb-app-01"), organisation=bank.name_en),
        replace(_spec("ms-web-01"), organisation="Nobody (fictitious)"),
    )
    now = timezone.now()
    hosts_of_bank = Host.objects.filter(organisation=bank)
    evidence_of_bank = Evidence.objects.filter(host__organisation=bank)

    def read(counts) -> int:
        return sum(counts.get(outcome, 0) for outcome in ("added", "changed", "unchanged"))

    first = hosts.build(specs, now=now - dt.timedelta(days=1))
    assert (first.hosts, first.organisations, first.stored, first.duplicates) == (2, 1, 3, 0)
    assert read(first.advisories["osv"]) == Advisory.objects.count() > 0
    assert hosts_of_bank.count() == 2

    second = hosts.build(specs, now=now)
    assert (second.stored, second.duplicates) == (2, 0)
    assert second.advisories["osv"]["unchanged"] == Advisory.objects.count()
    assert hosts_of_bank.count() == 2
    assert evidence_of_bank.count() == 5
    for host in hosts_of_bank.select_related("latest_evidence"):
        # The newest collection is the latest; the history keeps the earlier ones.
        assert host.latest_evidence.collected_at == max(
            host.evidence.values_list("collected_at", flat=True)
        )
        assert host.latest_evidence.collected_at.date() == (
            now.astimezone(dt.UTC).date() - dt.timedelta(days=1)
        )

    third = hosts.build(specs, now=now)
    assert (third.stored, third.duplicates) == (0, 2)
    assert evidence_of_bank.count() == 5
    assert hosts_of_bank.get(hostname="kb-app-01").latest_evidence.payload["mode"] == "live"
