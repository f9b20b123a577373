"""Evidence upload: ``POST /api/evidence/`` with an agent or user token. The request reads and
stores the evidence and answers 202 with a status URL; the evaluation (schema validation,
advisory matching, the five controls) runs once the upload is committed — in-process here, as
on the embedded default, and in a worker with a broker (test_upload_worker.py)."""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import json
import tracemalloc
import zlib

import pytest
from django.test import Client, TestCase, override_settings
from django.utils import timezone
from django.utils.html import escape

from mamori.accounts.models import TokenKind
from mamori.audit.models import AuditEvent
from mamori.audit.services import verify_trail
from mamori.organisations.models import Membership
from mamori.verification import services
from mamori.verification.models import (
    CONTROLS,
    CheckResult,
    Evaluation,
    Evidence,
    EvidenceUpload,
    Host,
    HostTarget,
    MatchTarget,
    Trigger,
    Vulnerability,
)
from mamori.verification.services import ingest
from mamori.verification.tasks import evaluate_evidence_upload
from tests.conftest import api_token, client_for
from tests.verification.conftest import evaluated, post_evidence, upload_evidence
from tests.verification.factory import agent_evidence, debian12_evidence

pytestmark = pytest.mark.django_db


def _rows() -> tuple[int, ...]:
    return (
        Host.objects.count(),
        Evidence.objects.count(),
        Evaluation.objects.count(),
        CheckResult.objects.count(),
        HostTarget.objects.count(),
        MatchTarget.objects.count(),
        Vulnerability.objects.count(),
        AuditEvent.objects.filter(action="evidence.uploaded").count(),
    )


NOTHING = (0,) * 8


def _failed(key, body, code: str = "invalid_evidence", **kwargs) -> dict:
    """Accepted (202) by the request, then refused by the evaluation: the status says why and
    nothing but the receipt is stored."""
    response, status = upload_evidence(key, body, **kwargs)
    assert response.status_code == 202, response.content[:500]
    assert status["status"] == "failed", status
    assert status["code"] == code, status
    assert status["detail"].strip()
    assert (status["host"], status["evidence"], status["controls"]) == (None, None, None)
    assert _rows() == NOTHING
    assert bytes(EvidenceUpload.objects.get(pk=status["upload"]).body) == b""  # not kept
    return status


def _refused(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert isinstance(body["detail"], str)
    assert body["detail"].strip()
    if code:
        assert body["code"] == code, body
    return body


# --- Accepted uploads -----------------------------------------------------------------------


def test_real_agent_evidence_is_stored_and_evaluated(world, agent_key):
    """This machine's evidence, collected by the agent itself, goes through the whole path."""
    payload = agent_evidence()
    response, body = upload_evidence(agent_key, payload, compress=True)
    assert response.status_code == 202, response.content[:500]
    accepted = response.json()
    assert accepted["duplicate"] is False
    # The request answered before the evaluation ran (here: after the commit).
    assert (accepted["status"], accepted["controls"]) == ("pending", None)
    assert response["Location"] == accepted["status_url"]
    assert accepted["status_url"] == f"http://testserver/api/evidence/uploads/{accepted['upload']}/"
    assert body["status"] == "done"
    assert set(body["controls"]) == set(CONTROLS)
    assert set(body["controls"].values()) <= {"pass", "fail", "unknown"}

    host = Host.objects.get(pk=body["host"])
    assert host.organisation == world.bank
    assert host.hostname == payload["host"]["hostname"][:255]
    evidence = Evidence.objects.get(pk=body["evidence"])
    assert evidence.host == host
    assert evidence.payload == payload
    assert (evidence.digest, evidence.size) == services.digest_of(payload)
    evaluation = host.latest_evaluation
    assert evaluation.evidence == evidence
    assert evaluation.trigger == Trigger.UPLOAD
    assert evaluation.controls == body["controls"]
    assert evaluation.result["schema"] == "mamori.evaluation/1"
    assert evaluation.checks.count() == len(evaluation.result["findings"]) > 0
    assert len(evaluation.findings_en) == len(evaluation.result["findings"])
    assert HostTarget.objects.filter(host=host).exists()


def test_upload_stores_everything_and_records_it(world, agent_key, evidence):
    body = evaluated(agent_key, evidence)
    host = Host.objects.get(pk=body["host"])
    assert (host.hostname, host.machine_id) == ("web-01", "0123456789abcdef0123456789abcdef")
    assert (host.os_id, host.os_version, host.architecture) == ("debian", "12", "x86_64")
    assert host.os_pretty_name == "Debian GNU/Linux 12 (bookworm)"
    assert host.latest_evidence_id == body["evidence"]
    evaluation = host.latest_evaluation
    assert evaluation.catalogue_version == "CE-JP 2026.1"
    assert evaluation.as_of == timezone.localdate()
    # The well-configured host with an empty advisory store: the firewall control passes.
    assert body["controls"]["firewalls"] == "pass"
    failed = {row.check_id for row in evaluation.checks.filter(status="fail")}
    assert evaluation.failed_checks == len(failed)
    # The target index holds the source packages (at their versions) the matcher looks up.
    targets = set(
        MatchTarget.objects.filter(hosts__host=host).values_list("family", "name", "version")
    )
    openssl = next(item for item in evidence["packages"]["items"] if item["name"] == "openssl")
    assert ("Debian", "openssl", openssl.get("source_version") or openssl["version"]) in targets
    assert any(name == "glibc" for _family, name, _version in targets)
    event = AuditEvent.objects.get(action="evidence.uploaded")
    assert event.actor == world.admin
    assert event.organisation_id == world.bank.pk
    assert event.details["token_kind"] == TokenKind.AGENT
    assert event.details["digest"] == Evidence.objects.get().digest
    assert event.details["upload"] == body["upload"]
    receipt = EvidenceUpload.objects.get()
    assert (receipt.state, receipt.evidence_id, bytes(receipt.body)) == (
        "done",
        body["evidence"],
        b"",
    )
    assert verify_trail() is None


def test_a_user_token_may_upload_too(world, evidence):
    key = api_token(world.contributor, world.bank)
    evaluated(key, evidence)
    assert Host.objects.get().organisation == world.bank


def test_gzip_body(agent_key, evidence):
    evaluated(agent_key, evidence, compress=True)
    assert Evidence.objects.get().payload == evidence


def test_the_same_evidence_twice_is_acknowledged_not_stored(agent_key, evidence):
    # Sent twice before it is evaluated: the second is the same pending upload (202).
    first = post_evidence(agent_key, evidence)
    again = post_evidence(agent_key, evidence)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == {**first.json(), "duplicate": True}
    assert EvidenceUpload.objects.count() == 1
    with TestCase.captureOnCommitCallbacks(execute=True):
        evaluate_evidence_upload(first.json()["upload"])
    done = Client().get(first["Location"], HTTP_AUTHORIZATION=f"Token {agent_key}").json()
    assert done["status"] == "done"
    before = (*_rows(), EvidenceUpload.objects.count())
    # Same content, other key order and whitespace, compressed: the canonical digest is equal.
    reordered = json.dumps(dict(reversed(list(evidence.items()))), indent=2).encode()
    second = post_evidence(agent_key, reordered, compress=True)
    assert second.status_code == 200, second.content[:300]
    assert second.json() == {**done, "duplicate": True}
    assert (*_rows(), EvidenceUpload.objects.count()) == before


def test_newer_collections_become_current_and_late_old_ones_join_the_history(agent_key):
    now = timezone.now().replace(microsecond=0)
    first = debian12_evidence(collected_at=now - dt.timedelta(days=2))
    newer = debian12_evidence(collected_at=now - dt.timedelta(days=1))
    newer["host"]["hostname"] = "web-01-renamed"
    older = debian12_evidence(collected_at=now - dt.timedelta(days=3))
    ids = []
    for payload in (first, newer, older):
        ids.append(evaluated(agent_key, payload)["evidence"])
    host = Host.objects.get()  # one host: the machine id is the same
    assert host.latest_evidence_id == ids[1]
    assert host.latest_evaluation.evidence_id == ids[1]
    assert host.hostname == "web-01-renamed"
    assert host.evidence.count() == 3


def test_hosts_are_told_apart_by_machine_id_else_hostname(world, agent_key):
    key_other_bank = api_token(world.other_admin, world.other_bank, TokenKind.AGENT)
    a = debian12_evidence(hostname="a", machine_id="aa" * 16)
    b = debian12_evidence(hostname="a", machine_id="bb" * 16)  # same name, other machine
    c = debian12_evidence(hostname="Legacy-Box", machine_id=None)
    d = debian12_evidence(
        hostname="legacy-box", machine_id=None, collected_at=timezone.now() - dt.timedelta(hours=1)
    )
    for payload in (a, b, c, d):
        evaluated(agent_key, payload)
    # The same machine in another organisation is that organisation's host.
    evaluated(key_other_bank, a)
    assert Host.objects.filter(organisation=world.bank).count() == 3
    assert Host.objects.get(organisation=world.bank, machine_id="").evidence.count() == 2
    assert Host.objects.filter(organisation=world.other_bank).count() == 1


# --- Refusals -------------------------------------------------------------------------------


def test_no_or_bad_token_is_401(evidence):
    _refused(post_evidence(None, evidence), 401)
    _refused(post_evidence("mamori_not-a-real-token", evidence), 401)
    assert _rows() == NOTHING


def test_a_browser_session_cannot_upload(world, evidence):
    """Uploads are for tokens: a signed-in browser (and so a cross-site form) gets 401."""
    client = client_for(world.admin)
    response = client.post("/api/evidence/", json.dumps(evidence), content_type="application/json")
    _refused(response, 401)
    assert _rows() == NOTHING


def test_a_token_whose_user_left_the_organisation_is_refused(world, evidence):
    key = api_token(world.contributor, world.bank, TokenKind.AGENT)
    Membership.objects.filter(user=world.contributor).delete()
    _refused(post_evidence(key, evidence), 403, "not_allowed")
    assert _rows() == NOTHING


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/hosts/"),
        ("get", "/api/hosts/{host}"),
        ("get", "/api/hosts/{host}/evidence"),
        ("get", "/api/evidence/"),
        ("get", "/api/organisations/"),
        ("get", "/api/certificates/"),
    ],
)
def test_an_agent_token_reads_nothing(agent_key, evidence, method, url):
    host = post_evidence(agent_key, evidence).json()["host"]
    client = Client(HTTP_AUTHORIZATION=f"Token {agent_key}", HTTP_ACCEPT_LANGUAGE="en")
    response = getattr(client, method)(url.format(host=host))
    # The evidence endpoint takes no GET at all; everywhere else the token kind is refused.
    assert response.status_code in (403, 405), response.content
    if url != "/api/evidence/":
        assert response.json()["detail"] == "Agent tokens may only upload evidence."


def test_too_large_as_sent_is_413(agent_key, evidence):
    with override_settings(MAMORI_EVIDENCE_UPLOAD_MAX_BYTES=10_000):
        body = _refused(post_evidence(agent_key, evidence), 413, "too_large")
    assert "10,000" in body["detail"]
    assert _rows() == NOTHING


def test_too_large_once_decompressed_is_413(agent_key, evidence):
    raw = json.dumps(evidence).encode()
    assert len(gzip.compress(raw)) < 100_000 < len(raw)
    with override_settings(MAMORI_EVIDENCE_UPLOAD_MAX_BYTES=100_000):
        body = _refused(post_evidence(agent_key, raw, compress=True), 413, "too_large")
    assert "decompressed" in body["detail"]


def test_a_gzip_bomb_stops_at_the_limit_without_inflating(agent_key):
    """64 MiB of zeros in 64 KiB of gzip, four times the default limit: refused with 413 after
    decompressing at most the limit, so memory stays bounded."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"0" * (1024 * 1024)
    bomb = b"".join(compressor.compress(chunk) for _ in range(64)) + compressor.flush()
    assert len(bomb) < 200_000
    tracemalloc.start()
    try:
        response = post_evidence(agent_key, bomb, headers={"HTTP_CONTENT_ENCODING": "gzip"})
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    _refused(response, 413, "too_large")
    limit = ingest.DEFAULT_MAX_BYTES
    assert peak < 1.5 * limit, f"peak {peak:,} bytes while refusing a bomb"


@pytest.mark.parametrize(
    ("raw", "headers", "status", "needle"),
    [
        (b"  \n", {}, 400, "empty"),
        (b"{not json", {}, 400, "not valid JSON"),
        (b'{"schema": "mamori.evidence/1"', {}, 400, "not valid JSON"),
        (b"[1, 2, 3]", {}, 400, "JSON object"),
        (b'{"a": NaN}', {}, 400, "NaN"),
        (b"\xff\xfe{}", {}, 400, "UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, {}, 400, ""),
        (b'{"schema": "mamori.evidence/0"}', {}, 400, "$.schema"),
        (gzip.compress(b"{}")[:-6], {"HTTP_CONTENT_ENCODING": "gzip"}, 400, "truncated"),
        (b"plain, not gzip", {"HTTP_CONTENT_ENCODING": "gzip"}, 400, "gzip"),
        (gzip.compress(b"{}") + b"junk", {"HTTP_CONTENT_ENCODING": "gzip"}, 400, "after"),
        (b"{}", {"HTTP_CONTENT_ENCODING": "br"}, 415, "br"),
    ],
    ids=[
        "empty",
        "garbage",
        "truncated",
        "array",
        "nan",
        "not-utf8",
        "deeply-nested",
        "wrong-schema",
        "truncated-gzip",
        "not-gzip",
        "gzip-trailing-junk",
        "brotli",
    ],
)
def test_malformed_bodies_are_refused_with_a_reason(agent_key, raw, headers, status, needle):
    body = _refused(post_evidence(agent_key, raw, headers=headers), status)
    assert needle in body["detail"]
    assert _rows() == NOTHING


def test_not_json_content_type_is_415(agent_key, evidence):
    response = post_evidence(agent_key, evidence, content_type="text/plain")
    _refused(response, 415)


def _set(document: dict, path: tuple, value) -> dict:
    changed = copy.deepcopy(document)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (("packages", "items", 3, "name"), 5, "$.packages.items[3]"),
        (("host", "hostname"), ["a"], "$.host"),
        (("firewall", "default_inbound"), "maybe", "$.firewall"),
        (("ssh", "status"), "fine", "$.ssh"),
    ],
)
def test_schema_errors_name_the_json_path(agent_key, evidence, path, value, named):
    """The schema is checked by the evaluation, not the request (seconds for a large
    document): the status says what is wrong, and where."""
    status = _failed(agent_key, _set(evidence, path, value))
    assert status["detail"].startswith(named), status


def test_what_the_request_reads_is_refused_at_once(agent_key, evidence):
    """The schema id, the host and the collection time are read by the request itself."""
    body = _refused(post_evidence(agent_key, _set(evidence, ("collected_at",), "yesterday")), 400)
    assert body["detail"].startswith("$.collected_at"), body
    body = _refused(post_evidence(agent_key, _set(evidence, ("schema",), "other/1")), 400)
    assert body["field"] == "$.schema"
    assert _rows() == NOTHING
    assert not EvidenceUpload.objects.exists()


def test_a_collection_from_the_future_is_refused(agent_key):
    payload = debian12_evidence(collected_at=timezone.now() + dt.timedelta(days=2))
    body = _refused(post_evidence(agent_key, payload), 400)
    assert body["field"] == "$.collected_at"


@pytest.mark.parametrize(
    ("hostname", "accepted"),
    [
        ("<script>alert('x')</script>", True),
        ("host\u202egnp.exe", True),  # right-to-left override
        ("ホスト-東京-01", True),
        ("'; DROP TABLE verification_host; --", True),
        ("x" * 1000, True),
        ("nul\x00byte", False),
        ("\ud800lonely-surrogate", False),
    ],
    ids=["html", "rtl-override", "japanese", "sql", "long", "nul", "surrogate"],
)
def test_hostile_hostnames(world, agent_key, hostname, accepted):
    payload = debian12_evidence(hostname="placeholder")
    raw = json.dumps(payload).replace('"placeholder"', json.dumps(hostname)).encode()
    if not accepted:
        body = _refused(post_evidence(agent_key, raw), 400)
        assert body["field"].startswith("$.host")
        assert _rows() == NOTHING
        assert not EvidenceUpload.objects.exists()
        return
    evaluated(agent_key, raw)
    host = Host.objects.get()
    assert host.hostname == (hostname if len(hostname) <= 255 else hostname[:254] + "…")
    for url in ("/hosts/", f"/hosts/{host.pk}/"):
        page = client_for(world.admin).get(url).content.decode()
        assert "<script>alert" not in page
        assert escape(host.hostname) in page


def test_a_very_long_hostname_without_machine_id_stays_one_host(agent_key):
    name = "h" * 300 + ".example.jp"
    now = timezone.now().replace(microsecond=0)
    for hours in (2, 1):
        payload = debian12_evidence(
            hostname=name, machine_id=None, collected_at=now - dt.timedelta(hours=hours)
        )
        evaluated(agent_key, payload)
    host = Host.objects.get()
    assert host.evidence.count() == 2
    assert len(host.hostname) == 255


def test_a_host_needs_a_hostname_or_a_machine_id(agent_key):
    anonymous = debian12_evidence(machine_id=None)
    anonymous["host"]["hostname"] = None
    body = _refused(post_evidence(agent_key, anonymous), 400)
    assert body["field"] == "$.host"
    only_id = debian12_evidence(machine_id="d" * 32)
    only_id["host"]["hostname"] = None
    evaluated(agent_key, only_id)
    assert Host.objects.get().hostname == "d" * 32


def test_a_failure_half_way_stores_nothing(world, evidence, monkeypatch):
    """The audit entry is the last write of an upload: when it fails, host, evidence,
    evaluation, check rows and package keys are rolled back with it."""

    def broken(*args, **kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(ingest, "record", broken)
    body = json.dumps(evidence).encode("utf-8")
    with pytest.raises(RuntimeError):
        services.accept_upload(
            services.AgentUpload(organisation=world.bank, body=body, user=world.admin)
        )
    assert _rows() == NOTHING
    # The receipt stays pending: the task fails, and its redelivery evaluates it again.
    receipt = EvidenceUpload.objects.get()
    assert receipt.state == "pending"
    assert gzip.decompress(bytes(receipt.body)) == ingest.canonical_bytes(evidence)
    monkeypatch.undo()
    assert services.evaluate_upload(receipt.pk).state == "done"
    assert Evidence.objects.get().payload == evidence


def test_deep_nesting_inside_valid_evidence_is_refused(agent_key, evidence):
    nested: dict = {}
    inner = nested
    for _ in range(200):
        inner["x"] = {}
        inner = inner["x"]
    evidence["backups"]["extra"] = nested
    status = _failed(agent_key, evidence)
    assert "nested deeper" in status["detail"]


def test_evidence_that_cannot_be_evaluated_fails_and_stores_nothing(
    agent_key, evidence, monkeypatch
):
    """Should evaluation ever break on schema-valid evidence, the agent learns it from the
    status and nothing half-evaluated is stored (the traceback goes to the log)."""
    from mamori.verification import evaluation

    def broken(*args, **kwargs):
        raise KeyError("unexpected")

    monkeypatch.setattr(evaluation, "evaluate", broken)
    status = _failed(agent_key, evidence, "evaluation_failed")
    assert "could not be evaluated" in status["detail"]


def _python_items(count: int) -> list[dict]:
    return [
        {
            "manager": "python",
            "name": f"package-{index}",
            "version": "1.0",
            "architecture": None,
            "source_name": f"package-{index}",
            "source_version": "1.0",
            "location": "/usr/local/lib/python3.11/dist-packages",
            "installer": "pip",
            "managed_by": None,
        }
        for index in range(count)
    ]


def test_evidence_larger_than_the_form_limit_is_accepted(agent_key, evidence):
    """Django's 2.5 MiB limit for form bodies does not apply: evidence is read as a stream up
    to its own limit (16 MiB)."""
    evidence["packages"]["items"] += _python_items(15_000)
    evidence["packages"]["managers"].append("python")
    raw = json.dumps(evidence).encode()
    assert len(raw) > 3 * 1024 * 1024
    evaluated(agent_key, raw)
    assert Evidence.objects.get().size > 3 * 1024 * 1024


def test_a_million_packages_is_refused_once_decompressed_past_the_limit(agent_key, evidence):
    """A million packages do not fit the limit even compressed well: 413 once decompressed,
    without building the document (the body stops at the limit; see read_body)."""
    item = json.dumps(_python_items(1)[0]).encode()
    evidence["packages"]["items"] = []
    head, tail = json.dumps(evidence).encode().split(b'"items": []')
    compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(head + b'"items": [' + item)]
    batch = b"," + b",".join([item] * 10_000)
    parts += [compressor.compress(batch) for _ in range(100)]
    parts.append(compressor.compress(b"]" + tail) + compressor.flush())
    raw = b"".join(parts)
    response = post_evidence(agent_key, raw, headers={"HTTP_CONTENT_ENCODING": "gzip"})
    _refused(response, 413, "too_large")


def test_too_many_items_within_the_size_limit_are_refused_by_path(agent_key, evidence):
    evidence["services"]["enabled"] = [f"u{index}.service" for index in range(250_000)]
    status = _failed(agent_key, evidence, compress=True)
    assert status["detail"].startswith("$.services.enabled"), status
