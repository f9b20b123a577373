"""Bad input against the Plus pages and services: a clear refusal, never a 500, and nothing
half-written (no row, no audit entry, no file left behind)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape

from mamori.audit.models import AuditEvent
from mamori.certificates.models import Certificate
from mamori.core.errors import MamoriError, WrongState
from mamori.plus import services
from mamori.plus.models import Device, DeviceCheck, PlusAudit, TestAttachment
from mamori.plus.models import TestCase as PlusTestCase
from tests.conftest import World, built_once
from tests.plus.conftest import as_assessor, page_client, pass_assessor_cases, request, upload
from tests.plus.test_rules import completed, manual_round

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def scene(django_db_setup, django_db_blocker):
    """The personas and an audit requested on a passed certificate, built once: each test's
    changes are undone after it (``built_once``)."""

    def build():
        world = World()
        certificate = Certificate.objects.get(assessment=world.passed())
        return world, certificate, request(world, certificate)

    with translation.override("en"), built_once(django_db_blocker, build) as built:
        yield built


@pytest.fixture
def world(scene, db):
    return scene[0]


@pytest.fixture
def certificate(scene, db):
    return Certificate.objects.get(pk=scene[1].pk)


@pytest.fixture
def audit(scene, db):
    return PlusAudit.objects.get(pk=scene[2].pk)


@pytest.fixture
def files(tmp_path):
    with override_settings(
        STORAGES={
            **settings.STORAGES,
            "default": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": tmp_path, "base_url": None},
            },
        }
    ):
        yield tmp_path


def _stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def _nothing_written(before: tuple) -> None:
    assert _snapshot() == before


def _snapshot() -> tuple:
    return (
        AuditEvent.objects.count(),
        Device.objects.count(),
        list(PlusTestCase.objects.order_by("pk").values_list("result", "notes")),
        list(DeviceCheck.objects.order_by("pk").values_list("status", "source", "notes")),
        TestAttachment.objects.count(),
        list(PlusAudit.objects.values_list("state", "public_addresses")),
    )


HOSTILE = [
    "<script>alert(1)</script>",
    "'; DROP TABLE plus_device; --",
    "名前\u202eexe.txt",
    "{{ 7*7 }} {% debug %}",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_device_names_are_stored_as_text_and_escaped(world, audit, name):
    as_assessor(world, services.add_device, audit, name, "Windows 11 Pro 23H2", "end_user")
    page = page_client(world.admin).get(reverse("plus:detail", args=[audit.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert escape(name) in text
    if "<script>" in name:
        assert "<script>alert(1)</script>" not in text
    assert "49" not in text.split('id="frame"')[1].split("</table>")[0]


@pytest.mark.parametrize(
    ("name", "build", "kind", "field"),
    [
        ("", "Windows 11", "end_user", "name"),
        ("   ", "Windows 11", "end_user", "name"),
        ("PC\x00-1", "Windows 11", "end_user", "name"),
        ("PC\x1b[31m", "Windows 11", "end_user", "name"),
        ("x" * 256, "Windows 11", "end_user", "name"),
        ("PC-1", "", "end_user", "os_build"),
        ("PC-1", "W" * 121, "end_user", "os_build"),
        ("PC-1", "Windows 11", "laptop", "kind"),
        ("PC-1", "Windows 11", "", "kind"),
    ],
)
def test_bad_devices_are_refused(world, audit, name, build, kind, field):
    before = _snapshot()
    with pytest.raises(MamoriError) as refused:
        as_assessor(world, services.add_device, audit, name, build, kind)
    assert refused.value.field == field
    _nothing_written(before)


def test_a_duplicate_name_is_refused_case_insensitively_and_the_page_says_why(world, audit):
    as_assessor(world, services.add_device, audit, "Reception PC", "Windows 11", "end_user")
    before = _snapshot()
    alice = page_client(world.admin)
    response = alice.post(
        reverse("plus:add_device", args=[audit.pk]),
        {"name": "reception pc", "os_build": "Windows 11", "kind": "end_user"},
        follow=True,
    )
    assert response.status_code == 200
    assert "already listed" in response.content.decode()
    response = alice.post(
        reverse("plus:add_device", args=[audit.pk]),
        {"name": "x" * 300, "os_build": "Windows 11", "kind": "end_user"},
        follow=True,
    )
    assert response.status_code == 200
    assert "Device name:" in response.content.decode()
    _nothing_written(before)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.0.1", "not a public address"),
        ("127.0.0.1", "not a public address"),
        ("192.168.1.0/24", "not a public address"),
        ("fe80::1", "not a public address"),
        ("example.jp", "not an IP address"),
        ("133.242.0.10; rm -rf /", "not an IP address"),
        ("\n".join(f"8.8.{n // 250}.{n % 250}" for n in range(300)), "at most 256"),
        ("133.242.0.10\x00", "control characters"),
    ],
)
def test_bad_public_addresses_are_refused(world, audit, text, message):
    before = _snapshot()
    with pytest.raises(MamoriError, match=message):
        services.set_public_addresses(world.admin, world.access(world.admin), audit.pk, text)
    _nothing_written(before)


def test_addresses_are_normalised_and_deduplicated(world, audit):
    services.set_public_addresses(
        world.admin,
        world.access(world.admin),
        audit.pk,
        "133.242.0.10/32\n133.242.0.10\n2001:4860:4860::8888\n133.242.0.17/29 # offices\n",
    )
    audit.refresh_from_db()
    assert audit.public_addresses == "133.242.0.10\n2001:4860:4860::8888\n133.242.0.16/29"


@pytest.mark.parametrize(
    "kinds",
    [
        {},
        {"host-999999": "server"},
        {"device-abc": "server"},
        {"../../etc": "server"},
        {"KIND": "server"},
    ],
)
def test_bad_kinds_are_refused(world, audit, kinds):
    as_assessor(world, services.add_device, audit, "PC-1", "Windows 11", "end_user")
    before = _snapshot()
    with pytest.raises(MamoriError):
        as_assessor(world, services.confirm_kinds, audit, kinds)
    device = Device.objects.get(name="PC-1")
    with pytest.raises(MamoriError):
        as_assessor(world, services.confirm_kinds, audit, {f"device-{device.pk}": "mainframe"})
    _nothing_written(before)


def test_decisions_refused_unfinished_without_a_fail_and_twice(world, audit):
    manual_round(world, audit)
    before = _snapshot()
    for outcome in ("pass", "fail"):
        with pytest.raises(WrongState) as unfinished:
            as_assessor(world, services.decide, audit, outcome, "")
        assert unfinished.value.code == "unfinished"
        assert "TC1, TC2, TC3, TC4, TC5, TC6, TC7" in unfinished.value.message
    with pytest.raises(MamoriError):
        as_assessor(world, services.decide, audit, "maybe", "")
    _nothing_written(before)


def test_fail_needs_a_failed_case_and_pass_no_failed_case(world, audit):
    completed(world, audit)
    with pytest.raises(WrongState) as nothing:
        as_assessor(world, services.decide, audit, "fail", "")
    assert nothing.value.code == "nothing_failed"
    as_assessor(world, services.decide, audit, "pass", "")
    before = _snapshot()
    with pytest.raises(WrongState) as twice:
        as_assessor(world, services.decide, audit, "pass", "")
    assert twice.value.code == "already_decided"
    _nothing_written(before)


def test_a_fail_needs_notes_and_texts_are_bounded(world, audit):
    sample_round = manual_round(world, audit)
    item = sample_round.sampled.get()
    before = _snapshot()
    with pytest.raises(MamoriError, match="what to fix"):
        as_assessor(world, services.record_test_case, audit, "TC1", "fail", "  ")
    with pytest.raises(MamoriError, match="what to fix"):
        as_assessor(world, services.record_device_check, audit, item.pk, "TC3", "fail", "")
    with pytest.raises(MamoriError, match="under 4,000"):
        as_assessor(world, services.record_test_case, audit, "TC1", "pass", "x" * 4001)
    with pytest.raises(MamoriError, match="control characters"):
        as_assessor(world, services.record_test_case, audit, "TC1", "pass", "ok\x00")
    with pytest.raises(MamoriError):
        as_assessor(world, services.record_test_case, audit, "TC2", "pass", "")
    with pytest.raises(MamoriError):
        as_assessor(world, services.record_test_case, audit, "TC9", "pass", "")
    with pytest.raises(MamoriError):
        as_assessor(world, services.record_test_case, audit, "TC1", "unknown", "")
    with pytest.raises(MamoriError):
        as_assessor(world, services.record_device_check, audit, item.pk, "TC1", "pass", "")
    with pytest.raises(MamoriError) as elsewhere:
        as_assessor(world, services.record_device_check, audit, 999_999, "TC2", "pass", "")
    assert elsewhere.value.code == "not_sampled"
    _nothing_written(before)


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("scan.exe", b"MZ\x90\x00", "type_not_allowed"),
        ("scan.pdf", b"MZ not a pdf", "content_mismatch"),
        ("scan.png", b"%PDF-1.4", "content_mismatch"),
        ("scan.txt", b"", "empty"),
        ("scan.txt", b"text\x00with a NUL", "content_mismatch"),
        ("scan.docx", b"PK\x03\x04 not really a zip", "content_mismatch"),
    ],
)
def test_bad_uploads_are_refused_and_the_result_is_not_recorded(
    world, audit, files, name, content, code
):
    manual_round(world, audit)
    before = _snapshot()
    with pytest.raises(MamoriError) as refused:
        as_assessor(
            world,
            services.record_test_case,
            audit,
            "TC1",
            "pass",
            "scan clean",
            upload(name, content),
        )
    assert refused.value.code == code
    _nothing_written(before)
    assert _stored_files(files) == []


def test_a_file_too_large_is_refused_on_the_page(world, audit, files):
    manual_round(world, audit)
    before = _snapshot()
    ada = page_client(world.assessor)
    with override_settings(EVIDENCE_MAX_BYTES=1024):
        response = ada.post(
            reverse("plus:test_case", args=[audit.pk, "TC1"]),
            {"result": "pass", "notes": "", "file": upload("big.txt", b"a" * 2048)},
        )
    assert response.status_code == 422
    assert "larger than the limit" in response.content.decode()
    _nothing_written(before)
    assert _stored_files(files) == []


def test_a_hostile_file_name_is_made_safe_and_stored_under_a_random_name(world, audit, files):
    manual_round(world, audit)
    attachment = as_assessor(
        world,
        services.add_test_attachment,
        audit,
        "TC5",
        upload("../../etc/<b>passwd</b>.txt", b"downloads blocked\n"),
    )
    assert attachment.original_name == "<b>passwd<b>.txt" or "/" not in attachment.original_name
    stored = _stored_files(files)
    assert len(stored) == 1
    assert stored[0].parent.name == str(audit.pk)
    assert stored[0].parent.parent.name == "plus"
    assert "passwd" not in stored[0].name
    page = page_client(world.admin).get(reverse("plus:detail", args=[audit.pk])).content.decode()
    assert "<b>passwd" not in page


def test_a_failure_after_the_file_was_written_leaves_no_file(world, audit, files, monkeypatch):
    manual_round(world, audit)
    before = _snapshot()

    def broken(*args, **kwargs):
        raise RuntimeError("the audit trail is unavailable")

    monkeypatch.setattr(services, "record", broken)
    with pytest.raises(RuntimeError):
        as_assessor(
            world,
            services.record_test_case,
            audit,
            "TC1",
            "pass",
            "scan clean",
            upload("scan.pdf", b"%PDF-1.4\n%%EOF\n"),
        )
    _nothing_written(before)
    assert _stored_files(files) == []


def test_files_and_ids_from_elsewhere_are_404(world, audit, files):
    manual_round(world, audit)
    attachment = as_assessor(
        world, services.add_test_attachment, audit, "TC1", upload("scan.txt", b"clean\n")
    )
    alice = page_client(world.admin)
    assert alice.get(reverse("plus:download", args=[audit.pk, attachment.pk])).status_code == 200
    for url in (
        reverse("plus:download", args=[audit.pk + 1000, attachment.pk]),
        reverse("plus:download", args=[audit.pk, attachment.pk + 1000]),
        reverse("plus:test_case", args=[audit.pk, "TC8"]),
        reverse("plus:detail", args=[99_999_999]),
        f"/plus/{audit.pk}/tests/%00/",
        "/plus/99999999999999999999999/",
    ):
        assert alice.get(url).status_code in (400, 404), url
    assert (
        page_client(world.other_admin)
        .get(reverse("plus:download", args=[audit.pk, attachment.pk]))
        .status_code
        == 404
    )


def test_pages_answer_bad_posts_with_a_reason(world, audit):
    manual_round(world, audit)
    ada = page_client(world.assessor)
    before = _snapshot()
    for url, data in (
        (reverse("plus:decide", args=[audit.pk]), {"outcome": "perhaps"}),
        (reverse("plus:decide", args=[audit.pk]), {"outcome": "pass", "summary": "s" * 5000}),
        (reverse("plus:device_check", args=[audit.pk, 1]), {"code": "TC9", "status": "pass"}),
        (reverse("plus:kinds", args=[audit.pk]), {"kind-host-abc": "server"}),
        (reverse("plus:addresses", args=[audit.pk]), {"public_addresses": "a" * 5000}),
        (reverse("plus:draw", args=[audit.pk]), {}),
    ):
        response = ada.post(url, data, follow=True)
        assert response.status_code == 200, url
        levels = [message.tags for message in response.context["messages"]]
        assert levels == ["error"], (url, levels)
    response = ada.post(reverse("plus:test_case", args=[audit.pk, "TC1"]), {"result": "maybe"})
    assert response.status_code == 422
    _nothing_written(before)
    pass_assessor_cases(world, audit)
