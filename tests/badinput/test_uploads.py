"""Bad evidence uploads: too large, disallowed or disguised types, empty files and hostile file
names. Each is refused at the form with the reason (or stored under a safe name), and a refused
upload leaves no row, no audit event and no file behind."""

from __future__ import annotations

import html
import io
import zipfile

import pytest
from django.core.files import File
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse

from mamori.assessments import services
from mamori.assessments.models import Attachment
from mamori.audit.models import AuditEvent
from mamori.core.errors import MamoriError
from tests.badinput.conftest import stored_files, web

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
TYPES = ".csv, .docx, .jpeg, .jpg, .pdf, .png, .txt, .xlsx"


def zipped(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<xml/>")
    return buffer.getvalue()


def upload(client, assessment, name: str, content: bytes, question: str = ""):
    return client.post(
        reverse("assessments:evidence", args=[assessment.pk]),
        {"file": SimpleUploadedFile(name, content), "question": question},
    )


def form_errors(response, field: str) -> list[str]:
    return list(response.context["form"].errors.get(field, []))


def assert_refused(response, field: str, reason: str, status: int = 422) -> None:
    assert response.status_code == status
    assert form_errors(response, field) == [reason]
    # The reason is on the page the user sees, escaped like any other text.
    assert html.escape(reason) in response.content.decode()


@override_settings(EVIDENCE_MAX_BYTES=1024 * 1024)
def test_too_large(world, draft, footprint):
    before = footprint(draft)
    response = upload(web(world.admin), draft, "big.txt", b"a" * (1024 * 1024 + 1))
    assert_refused(response, "file", "The file is larger than the limit of 1.0\xa0MB.")
    assert footprint(draft) == before
    assert before.files == frozenset()


@override_settings(EVIDENCE_MAX_BYTES=1024 * 1024)
def test_exactly_the_limit_is_accepted(world, draft, footprint):
    """The limit is inclusive: the refusal above is about size, not about text files."""
    response = upload(web(world.admin), draft, "limit.txt", b"a" * (1024 * 1024))
    assert response.status_code == 302
    assert Attachment.objects.get(assessment=draft).size == 1024 * 1024


DISALLOWED = {
    "exe": ("setup.exe", b"MZ\x90\x00" + b"\x00" * 60),
    "html": ("page.html", b"<html><script>alert(1)</script></html>"),
    "svg": ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
    "js": ("app.js", b"alert(1)"),
    "double-extension": ("report.pdf.exe", b"MZ\x90\x00"),
    "no-extension": ("README", b"hello"),
    "dots-only": ("....", b"hello"),
    "upper-case-exe": ("SETUP.EXE", b"MZ\x90\x00"),
}


@pytest.mark.parametrize(("name", "content"), DISALLOWED.values(), ids=list(DISALLOWED))
def test_disallowed_type(world, draft, footprint, name, content):
    before = footprint(draft)
    response = upload(web(world.admin), draft, name, content)
    assert_refused(response, "file", f"Files of this type are not accepted. Allowed: {TYPES}.")
    assert footprint(draft) == before


MISMATCHED = {
    "pdf-not-pdf": ("policy.pdf", b"just some text, not a PDF", ".pdf"),
    "png-with-html": ("screen.png", b"<html><script>alert(1)</script></html>", ".png"),
    "jpg-with-pdf": ("photo.jpg", PDF, ".jpg"),
    "txt-with-binary": ("notes.txt", b"MZ\x90\x00\x03\x00\x00\x00", ".txt"),
    "csv-not-text": ("assets.csv", b"\xff\xfe\x00\x00\xfe\xff", ".csv"),
    "docx-not-zip": ("policy.docx", b"plain text pretending", ".docx"),
    "docx-other-zip": ("policy.docx", zipped("payload.sh"), ".docx"),
    "xlsx-is-docx": ("sheet.xlsx", zipped("[Content_Types].xml", "word/document.xml"), ".xlsx"),
}


@pytest.mark.parametrize(("name", "content", "ext"), MISMATCHED.values(), ids=list(MISMATCHED))
def test_content_not_matching_extension(world, draft, footprint, name, content, ext):
    before = footprint(draft)
    response = upload(web(world.admin), draft, name, content)
    assert_refused(response, "file", f"The file's content does not match its {ext} extension.")
    assert footprint(draft) == before


def test_empty_file(world, draft, footprint):
    before = footprint(draft)
    response = upload(web(world.admin), draft, "empty.txt", b"")
    assert_refused(response, "file", "The submitted file is empty.")
    assert footprint(draft) == before


def test_empty_file_through_the_service(world, draft, footprint):
    """The service refuses it too, whatever form or API hands it the file."""
    before = footprint(draft)
    with pytest.raises(MamoriError) as refused:
        services.add_attachment(
            world.admin,
            world.access(world.admin),
            draft.pk,
            SimpleUploadedFile("empty.txt", b""),
            None,
        )
    assert refused.value.code == "empty"
    assert footprint(draft) == before


def test_no_file(world, draft, footprint):
    before = footprint(draft)
    response = web(world.admin).post(
        reverse("assessments:evidence", args=[draft.pk]), {"question": "A4.2"}
    )
    assert_refused(response, "file", "This field is required.")
    assert footprint(draft) == before


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        ("Z9.99", "There is no question Z9.99 in this catalogue."),
        ("A" * 17, "Ensure this value has at most 16 characters (it has 17)."),
        ("A4.2\x00", "Null characters are not allowed."),
    ],
    ids=["unknown", "too-long", "nul"],
)
def test_upload_for_a_bad_question(world, draft, footprint, question, reason):
    before = footprint(draft)
    response = upload(web(world.admin), draft, "policy.pdf", PDF, question)
    assert_refused(response, "question", reason)
    assert footprint(draft) == before


def test_upload_after_submit(world, footprint):
    assessment = world.submitted()
    before = footprint(assessment)
    response = upload(web(world.admin), assessment, "late.pdf", PDF)
    assert_refused(
        response, "file", "Evidence can no longer be added to this assessment.", status=409
    )
    assert footprint(assessment) == before


def test_upload_by_the_assessor(world, footprint):
    assessment = world.submitted()
    before = footprint(assessment)
    response = upload(web(world.assessor), assessment, "mine.pdf", PDF)
    assert_refused(response, "file", "You cannot add evidence to this assessment.", status=403)
    assert footprint(assessment) == before


def test_upload_by_an_outsider(world, draft, footprint):
    before = footprint(draft)
    response = upload(web(world.other_admin), draft, "x.pdf", PDF)
    assert response.status_code == 404
    assert footprint(draft) == before


TRAVERSAL = {
    "posix-relative": ("../../etc/passwd.txt", "passwd.txt"),
    "windows-relative": ("..\\..\\win.ini.txt", "win.ini.txt"),
    "posix-absolute": ("/etc/passwd.txt", "passwd.txt"),
    "windows-absolute": ("C:\\Windows\\win.ini.txt", "win.ini.txt"),
    "unc": ("\\\\server\\share\\evil.txt", "evil.txt"),
    "dots-and-slashes": ("....//....//notes.txt", "notes.txt"),
    "mixed": ("..\\../..\\/report.txt", "report.txt"),
}


def _assert_stored_safely(attachment, root, expected_name: str) -> None:
    assert attachment.original_name == expected_name
    # The file on disk has a random name inside the assessment's evidence folder.
    stored = (root / attachment.file.name).resolve()
    assert stored.is_relative_to((root / "evidence" / str(attachment.assessment_id)).resolve())
    assert expected_name not in attachment.file.name
    assert stored_files(root) == {attachment.file.name}
    # Nothing escaped the private folder (its parent is this test's own tmp_path).
    outside = {path.name for path in root.parent.rglob("*") if path.is_file()}
    assert outside == {stored.name}


@pytest.mark.parametrize(("name", "expected"), TRAVERSAL.values(), ids=list(TRAVERSAL))
def test_path_traversal_name_through_the_form(world, draft, evidence_root, name, expected):
    response = upload(web(world.admin), draft, name, b"root:x:0:0\n")
    assert response.status_code == 302
    _assert_stored_safely(Attachment.objects.get(assessment=draft), evidence_root, expected)


@pytest.mark.parametrize(("name", "expected"), TRAVERSAL.values(), ids=list(TRAVERSAL))
def test_path_traversal_name_through_the_service(world, draft, evidence_root, name, expected):
    """Django's form parser (and its UploadedFile) already trim names; the service must not rely
    on that, so it gets a plain File that keeps the name exactly as a client sent it."""
    raw = File(io.BytesIO(b"root:x:0:0\n"), name=name)
    assert raw.name == name
    attachment = services.add_attachment(
        world.admin, world.access(world.admin), draft.pk, raw, None
    )
    _assert_stored_safely(attachment, evidence_root, expected)


def test_control_characters_and_long_names_are_cleaned(world, draft, evidence_root):
    name = "evil\x00name\x1b[31m" + "x" * 300 + ".txt"
    raw = File(io.BytesIO(b"hello"), name=name)
    attachment = services.add_attachment(
        world.admin, world.access(world.admin), draft.pk, raw, None
    )
    assert attachment.original_name.startswith("evilname[31mxxx")
    assert attachment.original_name.endswith(".txt")
    assert len(attachment.original_name) == 150
    assert stored_files(evidence_root) == {attachment.file.name}


def test_hostile_file_name_is_escaped_on_pages(world, draft):
    name = "<img src=x onerror=alert(1)>.txt"
    client = web(world.admin)
    assert upload(client, draft, name, b"hello", "A4.2").status_code == 302
    attachment = Attachment.objects.get(assessment=draft)
    assert attachment.original_name == name
    for url in (
        reverse("assessments:evidence", args=[draft.pk]),
        reverse("assessments:section", args=[draft.pk, "A4"]),
    ):
        page = client.get(url).content.decode()
        assert "<img src=x onerror" not in page
        assert html.escape(name) in page


def test_download_is_never_rendered_inline(world, draft):
    """Text that looks like HTML is handed out as a download, sandboxed and not sniffed."""
    client = web(world.admin)
    assert upload(client, draft, "notes.txt", b"<script>alert(1)</script>").status_code == 302
    attachment = Attachment.objects.get(assessment=draft)
    response = client.get(reverse("assessments:download_evidence", args=[draft.pk, attachment.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert b"".join(response.streaming_content) == b"<script>alert(1)</script>"


def test_refused_upload_writes_no_audit_event(world, draft):
    """Spelled out once: the refusal leaves the audit trail exactly as long as it was."""
    count = AuditEvent.objects.count()
    response = upload(web(world.admin), draft, "page.html", b"<html></html>")
    assert response.status_code == 422
    assert AuditEvent.objects.count() == count
