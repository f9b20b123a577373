"""The host pages: list, detail, diff, evidence download and scope; who sees them; how many
queries they take."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
import shutil

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from mamori.audit.models import AuditEvent
from mamori.verification.models import Evidence, Host
from tests.conftest import client_for
from tests.datafiles import DEBIAN12, KEV_FILE
from tests.verification.conftest import import_advisories, store
from tests.verification.factory import debian12_evidence, with_source_version

pytestmark = pytest.mark.django_db


def _open_firewall(evidence: dict) -> dict:
    changed = copy.deepcopy(evidence)
    changed["firewall"]["default_inbound"] = "accept"
    changed["firewall"]["backends"][0]["default_inbound"] = "accept"
    return changed


def _host(world, hostname: str, *, organisation=None, payload=None, **kwargs) -> Host:
    payload = payload or debian12_evidence(
        hostname=hostname, machine_id=hashlib.sha256(hostname.encode()).hexdigest()[:32], **kwargs
    )
    return store(world.admin, organisation or world.bank, payload).host


def _get(client, url: str, status: int = 200):
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return response.content.decode()


# --- The list -----------------------------------------------------------------------------------


def test_empty_list_tells_how_to_deploy_the_agent(world):
    page = _get(client_for(world.admin), reverse("verification:list"))
    assert 'id="deploy-agent"' in page
    download = reverse("verification:agent_download")
    assert f'<a href="{download}" download><code>mamori-agent.pyz</code> をダウンロード</a>' in page
    assert "mamori-agent.pyz upload --url" in page
    assert reverse("accounts:tokens") in page
    # A board signatory does not set up hosts: no download, but who to ask.
    page = _get(client_for(world.signatory), reverse("verification:list"))
    assert download not in page
    assert "申請組織管理者または申請組織担当者から入手してください" in page


def test_list_shows_hosts_with_their_verdicts_and_filters_by_failing_control(world):
    good = _host(world, "good-01")
    bad = _host(
        world,
        "open-01",
        payload=_open_firewall(debian12_evidence(hostname="open-01", machine_id="c" * 32)),
    )
    assert good.latest_evaluation.firewalls == "pass"
    assert bad.latest_evaluation.firewalls == "fail"
    client = client_for(world.admin)
    page = _get(client, reverse("verification:list"))
    assert "good-01" in page
    assert "open-01" in page
    assert 'id="deploy-agent"' not in page
    assert "Debian GNU/Linux 12 (bookworm)" in page
    failing = _get(client, reverse("verification:list") + "?failing=firewalls")
    assert "open-01" in failing
    assert "good-01" not in failing
    # An unknown filter value is ignored, not an error.
    assert "good-01" in _get(client, reverse("verification:list") + "?failing=nonsense&page=x")


def test_nav_has_a_hosts_link_for_members(world):
    page = _get(client_for(world.signatory), "/")
    assert f'href="{reverse("verification:list")}"' in page
    page = _get(client_for(world.outsider), reverse("certificates:register"))
    assert f'href="{reverse("verification:list")}"' not in page


# --- Who sees a host ------------------------------------------------------------------------


def test_members_and_the_reviewing_body_see_a_host_everyone_else_gets_404(world):
    host = _host(world, "bank-web")
    url = reverse("verification:detail", args=[host.pk])
    for user in (world.admin, world.contributor, world.signatory):
        assert "bank-web" in _get(client_for(user), url)
    # Before the bank submits anything to body A, its assessors see nothing.
    for user in (
        world.assessor,
        world.assessor2,
        world.other_assessor,
        world.owner,
        world.other_admin,
        world.outsider,
    ):
        page = _get(client_for(user), url, 404)
        assert "bank-web" not in page
        assert "bank-web" not in _get(client_for(user), reverse("verification:list"))
    world.submitted()
    for user in (world.assessor, world.assessor2):
        assert "bank-web" in _get(client_for(user), url)
        assert "bank-web" in _get(client_for(user), reverse("verification:list"))
    for user in (world.other_assessor, world.owner, world.other_admin, world.outsider):
        _get(client_for(user), url, 404)
    assert client_for(world.admin).get(url).status_code == 200
    anonymous = client_for(world.admin)
    anonymous.logout()
    response = anonymous.get(url)
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")


# --- The detail page ------------------------------------------------------------------------------


@pytest.fixture
def libwebp_advisories(tmp_path):
    """The real Debian 12 libwebp records (one of them, CVE-2023-4863, is KEV-listed) and the
    real KEV catalogue, imported with the real importer."""
    folder = tmp_path / "osv"
    folder.mkdir()
    for path in DEBIAN12.glob("*-libwebp.json"):
        shutil.copy(path, folder / path.name)
    import_advisories(folder, KEV_FILE)
    return folder


def test_detail_shows_failing_findings_with_remediation_and_overdue_kev(world, libwebp_advisories):
    payload = _open_firewall(
        with_source_version(debian12_evidence(hostname="old-webp"), "libwebp", "1.2.4-0.2")
    )
    host = store(world.admin, world.bank, payload).host
    evaluation = host.latest_evaluation
    assert evaluation.security_update_management == "fail"
    assert evaluation.overdue_vulnerabilities >= 1
    assert evaluation.kev_vulnerabilities >= 1
    kev = next(v for v in evaluation.vulnerability_records() if v["kev"])
    assert "CVE-2023-4863" in [kev["advisory"], *kev["aliases"]]

    url = reverse("verification:detail", args=[host.pk])
    page = _get(client_for(world.admin), url)
    failing = [f for f in evaluation.localised_result("ja")["findings"] if f["status"] == "fail"]
    assert failing
    for finding in failing:
        assert escape(finding["title"]) in page
        assert escape(finding["remediation"]) in page
    assert 'id="overdue"' in page
    assert kev["advisory"] in page
    assert ">KEV<" in page

    english = client_for(world.admin)
    english.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    page_en = _get(english, url)
    for finding in evaluation.findings_en:
        if finding["status"] == "fail":
            assert escape(finding["remediation"]) in page_en


def test_findings_in_words_with_missing_fixes_as_a_table_and_signs_besides_colour(
    world, libwebp_advisories
):
    """Japanese page: severities and verdicts translated, pass/fail told by a sign too, the
    overdue fixes as a table, and the evidence paths only in the collapsed technical basis."""
    payload = _open_firewall(
        with_source_version(debian12_evidence(hostname="old-webp"), "libwebp", "1.2.4-0.2")
    )
    host = store(world.admin, world.bank, payload).host
    evaluation = host.latest_evaluation
    url = reverse("verification:detail", args=[host.pk])
    page = _get(client_for(world.admin), url)
    visible = re.sub(r"<details.*?</details>", "", page, flags=re.S)

    assert "derived." not in visible
    assert "derived.overdue_vulnerabilities" in page  # for the agent's operator, collapsed
    update = re.search(r'<div [^>]*id="finding-UPD-03">(.*?)</div>', page, re.S)[1]
    assert "期限を過ぎた未適用の重要な修正があります: 1 件（下の表）。" in update
    assert "深刻度: 緊急" in update
    assert "critical" not in update
    assert '<span aria-hidden="true">✕</span> 不合格' in update
    rows = re.findall(r"<tr>(.*?)</tr>", update, re.S)
    cells = [
        re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", rows[1])
    ]
    assert cells == [
        "libwebp",
        "1.2.4-0.2",
        "1.2.4-0.2+deb12u1",
        "MAMORI-DEB12-CVE-2023-4863-libwebp",
        str(evaluation.vulnerability_records()[0]["days_since_fix"]),
        "はい",
    ]
    # Every control badge carries its verdict as a sign, not only as a colour.
    latest = re.search(r'<div class="card" id="latest-verdict">(.*?)</p>', page, re.S)[1]
    assert (
        latest.count('<span aria-hidden="true">✓</span>')
        + latest.count('<span aria-hidden="true">✕</span>')
        + latest.count('<span aria-hidden="true">?</span>')
        == 5
    )
    assert "ファイアウォール: 不合格" in latest
    listed = _get(client_for(world.admin), reverse("verification:list"))
    assert (
        '<span aria-hidden="true">✕</span> ファイアウォール<span class="visually-hidden">: 不合格</span>'
        in listed
    )
    # The overdue table's severity is translated too; the CLI's JSON keeps its detail text.
    english = client_for(world.admin)
    english.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    update_en = re.search(r'<div [^>]*id="finding-UPD-03">(.*?)</div>', _get(english, url), re.S)[1]
    assert "Important fixes are overdue: 1 (listed below)." in update_en
    assert "Severity: Critical" in update_en
    stored = next(f for f in evaluation.findings_en if f["check"] == "UPD-03")
    assert (
        "Why: derived.overdue_vulnerabilities is a list of 1 (expected empty)" in stored["detail"]
    )


def test_history_diff_and_evidence_download(world):
    now = timezone.now().replace(microsecond=0)
    first = debian12_evidence(hostname="changing", collected_at=now - dt.timedelta(days=1))
    second = _open_firewall(
        with_source_version(
            debian12_evidence(hostname="changing", collected_at=now), "openssl", "3.0.99-1~deb12u1"
        )
    )
    second["listening"]["sockets"].append(
        {"protocol": "tcp6", "address": "::", "port": 8443, "inode": 9}
    )
    second["privileges"]["administrators"].append("mallory")
    host = store(world.admin, world.bank, first).host
    store(world.admin, world.bank, second)
    old, new = Evidence.objects.filter(host=host).order_by("collected_at")
    client = client_for(world.admin)

    detail = _get(client, reverse("verification:detail", args=[host.pk]))
    assert 'id="history"' in detail
    assert f"?from={old.pk}&amp;to={new.pk}" in detail

    diff_url = reverse("verification:diff", args=[host.pk])
    for url in (diff_url, f"{diff_url}?from={old.pk}&to={new.pk}"):
        page = _get(client, url)
        assert "3.0.99-1~deb12u1" in page
        assert "8443" in page
        assert "mallory" in page
        assert 'id="diff-controls"' in page  # the firewall verdict changed
    same = _get(client, f"{diff_url}?from={new.pk}&to={new.pk}")
    assert 'id="unchanged"' in same

    other = _host(world, "elsewhere", organisation=world.other_bank)
    other_evidence = other.latest_evidence_id
    for query in (f"?from={old.pk}&to={other_evidence}", "?from=x&to=1", f"?from={old.pk}"):
        _get(client, diff_url + query, 404)
    # Nor can another organisation's member read the diff of this host.
    _get(client_for(world.other_admin), f"{diff_url}?from={old.pk}&to={new.pk}", 404)

    response = client.get(reverse("verification:evidence_download", args=[host.pk, old.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert json.loads(response.content) == first
    wrong_host = reverse("verification:evidence_download", args=[other.pk, old.pk])
    _get(client_for(world.other_admin), wrong_host, 404)


def test_scope_is_set_by_the_applicants_editors(world):
    world.submitted()  # so body A's assessors see the bank's hosts
    host = _host(world, "scoped")
    url = reverse("verification:scope", args=[host.pk])
    response = client_for(world.signatory).post(url, {"in_scope": "0"})
    assert response.status_code == 302
    assert Host.objects.get(pk=host.pk).in_scope
    response = client_for(world.assessor).post(url, {"in_scope": "0"})
    assert response.status_code == 302
    assert Host.objects.get(pk=host.pk).in_scope
    assert client_for(world.other_admin).post(url, {"in_scope": "0"}).status_code == 404
    response = client_for(world.contributor).post(url, {"in_scope": "0"})
    assert response.status_code == 302
    assert not Host.objects.get(pk=host.pk).in_scope
    event = AuditEvent.objects.get(action="host.scope_changed")
    assert (event.actor, event.details) == (world.contributor, {"in_scope": False})
    assert client_for(world.admin).get(url).status_code == 405


# --- Query counts -------------------------------------------------------------------------------


def _count(client, url: str) -> int:
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries.captured_queries)


def test_list_queries_do_not_grow_with_hosts(world, django_assert_max_num_queries):
    client = client_for(world.admin)
    _host(world, "one")
    few = _count(client, reverse("verification:list"))
    for index in range(12):
        _host(world, f"many-{index:02d}")
    many = _count(client, reverse("verification:list"))
    assert many == few
    cache.clear()
    with django_assert_max_num_queries(few):
        client.get(reverse("verification:list"))


def test_detail_and_diff_queries_do_not_grow_with_history_or_findings(world):
    client = client_for(world.admin)
    now = timezone.now().replace(microsecond=0)
    host = _host(world, "busy", collected_at=now - dt.timedelta(days=30))
    detail = reverse("verification:detail", args=[host.pk])
    diff_url = reverse("verification:diff", args=[host.pk])
    store(
        world.admin,
        world.bank,
        debian12_evidence(
            hostname="busy", machine_id=host.machine_id, collected_at=now - dt.timedelta(days=29)
        ),
    )
    few_detail, few_diff = _count(client, detail), _count(client, diff_url)
    for day in range(28, 16, -1):
        payload = debian12_evidence(
            hostname="busy", machine_id=host.machine_id, collected_at=now - dt.timedelta(days=day)
        )
        if day % 2:
            payload = _open_firewall(payload)  # more failing findings
        store(world.admin, world.bank, payload)
    assert Evidence.objects.filter(host=host).count() == 14
    assert _count(client, detail) == few_detail
    assert _count(client, diff_url) == few_diff
