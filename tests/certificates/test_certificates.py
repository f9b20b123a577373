"""Certificates: issued on a pass with number, level, scope and validity; their PDF and the advice
report after a fail; revocation; the public register, verification and the CLI listing."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from pathlib import Path

import pytest
from dateutil.relativedelta import relativedelta
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from mamori.assessments import services
from mamori.assessments.models import Decision, Level, Outcome
from mamori.audit.models import AuditEvent
from mamori.certificates.models import Certificate
from mamori.certificates.services import revoke
from tests.certificates import certificate_expiring, days_from_today
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

# Level prefix, year of issue, eight characters of Crockford's base32 (no I, L, O, U).
NUMBER = re.compile(r"^CE-(\d{4})-[0-9A-HJKMNP-TV-Z]{8}$")
WHOLE_ORGANISATION = "組織全体 / Whole organisation"


def pdf_text(path: str | Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def register_numbers(client: Client, query: str = "") -> list[str]:
    response = client.get(reverse("certificates:register"), {"q": query} if query else {})
    assert response.status_code == 200
    return [certificate.number for certificate in response.context["page"].object_list]


def verify_page(number: str) -> str:
    response = Client().get(reverse("certificates:verify", args=[number]))
    assert response.status_code == 200
    return response.content.decode()


def public_status(number: str) -> str:
    response = Client().get(reverse("api-public-certificate", args=[number]))
    assert response.status_code == 200
    return response.json()["status"]


# --- Issuing ------------------------------------------------------------------------------------


def test_pass_issues_a_certificate_with_number_level_scope_and_a_year_of_validity(
    world, django_capture_on_commit_callbacks
):
    # The PDF is rendered by a task queued after the decision commits; run it (eagerly) here.
    with django_capture_on_commit_callbacks(execute=True):
        assessment = world.passed()

    certificate = Certificate.objects.get(assessment=assessment)
    today = timezone.localdate()
    match = NUMBER.match(certificate.number)
    assert match, certificate.number
    assert match.group(1) == str(today.year)
    assert certificate.level == Level.CE
    assert certificate.organisation == world.bank
    assert certificate.certification_body == world.body
    assert certificate.organisation_name_ja == "テスト銀行"
    assert certificate.organisation_name_en == "Test Bank"
    assert certificate.scope_text == WHOLE_ORGANISATION
    assert certificate.catalogue_version == "CE-JP 2026.1"  # the newest, in force today
    assert certificate.issued_on == today
    assert certificate.expires_on == today + relativedelta(months=12)
    assert certificate.status == "valid"
    assert certificate.issued_by == world.assessor
    issued = AuditEvent.objects.get(action="certificate.issued")
    assert issued.details["number"] == certificate.number
    assert issued.details["expires_on"] == certificate.expires_on.isoformat()

    assert certificate.pdf.name == f"certificates/{certificate.number}.pdf"
    assert Path(certificate.pdf.path).is_file()
    text = pdf_text(certificate.pdf.path)
    assert certificate.number in text
    assert "Test Bank" in text
    # The dates as each language writes them, the level with its "-style".
    expires = certificate.expires_on
    assert f"{expires.year}年{expires.month}月{expires.day}日" in text
    assert f"{expires.day} {expires:%b} {expires.year}" in text
    assert "Cyber-Essentials-style" in text

    download = client_for(world.admin).get(reverse("certificates:pdf", args=[certificate.number]))
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    assert download["Content-Disposition"].startswith("attachment;")
    assert b"".join(download.streaming_content).startswith(b"%PDF")
    # Someone else's certificate PDF does not exist as far as an outsider can tell.
    outsider = client_for(world.outsider).get(
        reverse("certificates:pdf", args=[certificate.number])
    )
    assert outsider.status_code == 404


def pdf_qr_codes(path: str | Path) -> list[str]:
    """What the QR codes printed in a PDF say, read by an independent decoder (zxing-cpp)."""
    import zxingcpp

    return [
        code.text
        for page in PdfReader(path).pages
        for image in page.images
        for code in zxingcpp.read_barcodes(image.image)
        if code.format == zxingcpp.BarcodeFormat.QRCode
    ]


def test_the_pdf_prints_the_verification_address_and_its_qr_code_and_says_when_revoked(
    world, settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://mamori.example.jp/"
    with django_capture_on_commit_callbacks(execute=True):
        assessment = world.passed()
    certificate = Certificate.objects.get(assessment=assessment)
    address = f"https://mamori.example.jp/verify/{certificate.number}"
    issued_pdf = certificate.pdf.path
    text = pdf_text(issued_pdf)
    assert address in text
    assert pdf_qr_codes(issued_pdf) == [address]
    assert "REVOKED" not in text
    # The address answers: it is the public verification page of this certificate.
    assert Client().get(address.removeprefix("https://mamori.example.jp")).status_code == 200

    client = client_for(world.assessor)
    url = reverse("certificates:revoke", args=[certificate.number])
    with django_capture_on_commit_callbacks(execute=False) as pending:
        client.post(url, {"reason": "重大なインシデント / serious incident"})
    # Until the new PDF is ready, the one that does not say "revoked" is no longer handed out.
    certificate.refresh_from_db()
    assert not certificate.pdf
    waiting = client.get(reverse("certificates:pdf", args=[certificate.number]))
    assert waiting.status_code == 302
    assert waiting.url == reverse("certificates:detail", args=[certificate.number])
    for callback in pending:
        callback()
    certificate.refresh_from_db()
    assert certificate.pdf.name == f"certificates/{certificate.number}.pdf"
    text = " ".join(pdf_text(certificate.pdf.path).split())
    day = timezone.localdate(certificate.revoked_at)
    assert "失効 / REVOKED" in text
    assert f"この認定証は {day.year}年{day.month}月{day.day}日 に失効しており、無効です。" in text
    assert (
        f"This certificate was revoked on {day.day} {day:%b} {day.year} and is not valid." in text
    )
    assert "serious incident" not in text  # the reason stays internal
    assert pdf_qr_codes(certificate.pdf.path) == [address]
    download = client.get(reverse("certificates:pdf", args=[certificate.number]))
    assert b"".join(download.streaming_content) == Path(certificate.pdf.path).read_bytes()
    assert len(list(Path(certificate.pdf.path).parent.glob(f"{certificate.number}*"))) == 1


def test_certificate_numbers_are_unique(world):
    numbers = {
        certificate_expiring(world, organisation, days_from_today(365)).number
        for organisation in (world.bank, world.other_bank, world.bank, world.other_bank)
    }
    assert len(numbers) == 4
    assert all(NUMBER.match(number) for number in numbers)
    first, second = Certificate.objects.order_by("pk")[:2]
    # The database itself refuses a second certificate with the same number.
    with pytest.raises(IntegrityError), transaction.atomic():
        Certificate.objects.filter(pk=second.pk).update(number=first.number)


def test_a_subset_scope_prints_the_applicants_description(world):
    description = (
        "本店事務センターの内部系ネットワーク（VLAN 10～30） / Head-office operations network"
    )
    assessment = world.start()
    world.answer_all(assessment)
    admin, access = world.admin, world.access(world.admin)
    snapshot = services.Snapshot.load(assessment)
    for qid, value in (("A2.1", "subset"), ("A2.2", description), ("A2.3", "yes")):
        current = snapshot.answers.get(qid)
        services.save_answer(
            admin, access, assessment.pk, qid, value, current.version if current else 0
        )
    world.sign(assessment)
    if services.submit(admin, access, assessment.pk).assessor_id != world.assessor.pk:
        services.take_over(world.assessor, world.access(world.assessor), assessment.pk)
    world.mark_all(assessment)
    services.decide(world.assessor, world.access(world.assessor), assessment.pk, "pass", "ok")

    certificate = Certificate.objects.get(assessment=assessment)
    assert certificate.scope_text == description
    assert description in verify_page(certificate.number)
    public = Client().get(reverse("api-public-certificate", args=[certificate.number])).json()
    assert public["scope"] == description


def test_advice_report_pdf_after_a_fail_in_japanese_and_english(
    world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assessment = world.failed("A6.4")

    assert not Certificate.objects.filter(assessment=assessment).exists()
    decision = Decision.objects.get(assessment=assessment, round=1)
    assert decision.outcome == Outcome.FAIL
    japanese = pdf_text(decision.report_pdf.path)
    english = pdf_text(decision.report_pdf_en.path)
    for text in (japanese, english):
        assert "A6.4" in text
        assert assessment.reference in text
    assert "改善助言レポート" in japanese
    assert "必要な対応" in japanese
    assert "Advice report" in english
    assert "What to do" in english
    # Only failed requirements are listed: a compliant one is absent.
    assert "A6.3" not in english

    admin = client_for(world.admin)
    for language, field in (("ja", "report_pdf"), ("en", "report_pdf_en")):
        response = admin.get(
            reverse("assessments:advice_pdf", args=[assessment.pk, 1]), {"lang": language}
        )
        assert response.status_code == 200
        assert response["Content-Disposition"].startswith("attachment;")
        assert (
            b"".join(response.streaming_content) == Path(getattr(decision, field).path).read_bytes()
        )


# --- Revocation ---------------------------------------------------------------------------------


def test_revoking_marks_it_revoked_everywhere_and_drops_it_from_the_register(world):
    certificate = world.passed().certificate
    anonymous = Client()
    assert certificate.number in register_numbers(anonymous)

    response = client_for(world.assessor).post(
        reverse("certificates:revoke", args=[certificate.number]),
        {"reason": "重大なインシデント / serious incident"},
    )
    assert response.status_code == 302
    certificate.refresh_from_db()
    assert certificate.status == "revoked"
    assert certificate.revoked_by == world.assessor
    assert certificate.revoked_reason == "重大なインシデント / serious incident"
    assert AuditEvent.objects.filter(
        action="certificate.revoked", object_id=str(certificate.pk)
    ).exists()

    page = verify_page(certificate.number)
    assert 'class="verify-result revoked"' in page
    assert f"認定証 {certificate.number} は失効しており、無効です。" in page
    assert "serious incident" not in page  # the reason stays internal
    assert public_status(certificate.number) == "revoked"
    assert certificate.number not in register_numbers(anonymous)
    assert certificate.number not in register_numbers(anonymous, certificate.number)


def test_revoking_needs_a_reason_a_right_and_happens_once(world):
    certificate = certificate_expiring(world, world.bank, days_from_today(200))
    url = reverse("certificates:revoke", args=[certificate.number])

    assert client_for(world.assessor).post(url, {"reason": "   "}).status_code == 302
    certificate.refresh_from_db()
    assert certificate.revoked_at is None

    # The applicant sees its certificate but cannot revoke it; an outsider does not see it.
    assert client_for(world.admin).post(url, {"reason": "no"}).status_code == 302
    assert client_for(world.outsider).post(url, {"reason": "no"}).status_code == 404
    assert client_for(world.other_assessor).post(url, {"reason": "no"}).status_code == 404
    certificate.refresh_from_db()
    assert certificate.revoked_at is None

    revoke(world.owner, world.access(world.owner), certificate.pk, "scheme owner decision")
    first = Certificate.objects.get(pk=certificate.pk).revoked_at
    assert client_for(world.assessor).post(url, {"reason": "again"}).status_code == 302
    certificate.refresh_from_db()
    assert certificate.revoked_at == first
    assert certificate.revoked_reason == "scheme owner decision"
    assert AuditEvent.objects.filter(action="certificate.revoked").count() == 1


# --- Public register and verification -----------------------------------------------------------


def test_register_finds_certificates_by_japanese_name_english_name_and_number(world):
    mine = certificate_expiring(world, world.bank, days_from_today(200))
    other = certificate_expiring(world, world.other_bank, days_from_today(100))
    client = Client()

    assert set(register_numbers(client)) == {mine.number, other.number}
    assert register_numbers(client, "テスト銀行") == [mine.number]
    assert register_numbers(client, "テスト") == [mine.number]
    assert register_numbers(client, "Test Bank") == [mine.number]
    assert register_numbers(client, "test bank") == [mine.number]
    assert register_numbers(client, "Other") == [other.number]
    assert register_numbers(client, "他行") == [other.number]
    assert register_numbers(client, mine.number) == [mine.number]
    assert register_numbers(client, mine.number.lower()) == [mine.number]
    assert register_numbers(client, "no such bank") == []
    empty = client.get(reverse("certificates:register"), {"q": "no such bank"})
    assert "該当する有効な認定証はありません。" in empty.content.decode()
    # The register shows the name in the reader's language.
    english = client.get(
        reverse("certificates:register"), {"q": "テスト"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert "Test Bank" in english.content.decode()


def test_expired_certificates_show_as_expired_and_leave_the_register(world):
    expired = certificate_expiring(world, world.bank, days_from_today(-1))
    last_day = certificate_expiring(world, world.other_bank, days_from_today(0))
    client = Client()

    page = verify_page(expired.number)
    assert 'class="verify-result expired"' in page
    assert f"認定証 {expired.number} は" in page
    assert "有効期限が切れており、現在は無効です。" in page
    assert public_status(expired.number) == "expired"
    assert expired.number not in register_numbers(client)
    assert expired.number not in register_numbers(client, "テスト銀行")

    # A certificate is valid through its expiry date.
    assert 'class="verify-result valid"' in verify_page(last_day.number)
    assert public_status(last_day.number) == "valid"
    assert register_numbers(client) == [last_day.number]


@pytest.mark.parametrize(
    ("language", "no_such"),
    [
        ("ja", "該当する認定証はありません。番号「{number}」の認定証は存在しません。"),
        ("en", "No such certificate: no certificate has the number “{number}”."),
    ],
)
def test_verify_unknown_or_malformed_numbers_say_no_such_certificate(world, language, no_such):
    """404 still, but with the public verification page's own message, not the generic page."""
    issued = certificate_expiring(world, world.bank, days_from_today(200))
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    for path, shown in (
        (reverse("certificates:verify", args=["CE-2026-NOSUCH00"]), "CE-2026-NOSUCH00"),
        (reverse("certificates:verify", args=["ce-2026-nosuch00"]), "CE-2026-NOSUCH00"),
        ("/verify/<script>", "&lt;SCRIPT&gt;"),
        ("/verify/" + "X" * 200, "X" * 40),
        (reverse("certificates:verify_lookup") + "?number=CE-2026-NOSUCH00", None),
        (reverse("certificates:verify_lookup") + "?number=not%20a%20number", "NOT A NUMBER"),
    ):
        response = client.get(path, follow=True)
        assert response.status_code == 404, path
        page = response.content.decode()
        result = re.search(r'<p class="verify-result unknown" id="verify-result">(.*?)</p>', page)
        assert result, page
        assert result.group(1) == no_such.format(number=shown or "CE-2026-NOSUCH00"), path
        assert issued.number not in page
        assert "<script>" not in page.lower()
    # An empty lookup goes back to the register; a real number still verifies.
    assert client.get(reverse("certificates:verify_lookup")).status_code == 302
    assert client.get(reverse("certificates:verify", args=[issued.number])).status_code == 200
    assert (
        client.get(reverse("api-public-certificate", args=["CE-2026-NOSUCH00"])).status_code == 404
    )


# --- CLI --------------------------------------------------------------------------------------


def test_certificates_list_json(world):
    valid = certificate_expiring(world, world.bank, days_from_today(100))
    expired = certificate_expiring(world, world.other_bank, days_from_today(-3))
    revoked = certificate_expiring(world, world.bank, days_from_today(50))
    revoke(world.assessor, world.access(world.assessor), revoked.pk, "withdrawn")

    out = io.StringIO()
    call_command("certificates", "list", "--format", "json", stdout=out)
    rows = json.loads(out.getvalue())

    assert len(rows) == 3
    for row in rows:
        assert {"number", "organisation", "level", "status", "issued", "expires"} <= set(row)
        dt.date.fromisoformat(row["issued"])
        dt.date.fromisoformat(row["expires"])
    by_number = {row["number"]: row for row in rows}
    assert by_number[valid.number]["status"] == "valid"
    assert by_number[expired.number]["status"] == "expired"
    assert by_number[revoked.number]["status"] == "revoked"
    assert by_number[valid.number]["organisation"] == "テスト銀行"
    assert by_number[expired.number]["organisation"] == "他行"
    assert by_number[valid.number]["level"] == "CE"
    assert by_number[valid.number]["expires"] == valid.expires_on.isoformat()
    assert by_number[valid.number]["issued"] == valid.issued_on.isoformat()

    for status, certificate in (("valid", valid), ("expired", expired), ("revoked", revoked)):
        out = io.StringIO()
        call_command("certificates", "list", "--format", "json", "--status", status, stdout=out)
        assert [row["number"] for row in json.loads(out.getvalue())] == [certificate.number]


def test_certificates_list_with_no_certificates_is_an_empty_json_list(db):
    out = io.StringIO()
    call_command("certificates", "list", "--format", "json", stdout=out)
    assert json.loads(out.getvalue()) == []


def test_the_public_verification_page_can_be_shared_by_a_cache_and_sets_no_cookie(world):
    """Anonymous readers get the same page per language: no cookie, ``Cache-Control: public``
    for a few seconds, the language in ``Vary`` or the address; a signed-in reader's page (their
    name in the header, a CSRF token) is private."""
    issued = certificate_expiring(world, world.bank, days_from_today(200))
    path = reverse("certificates:verify", args=[issued.number])
    for client, language in ((Client(), "ja"), (Client(HTTP_ACCEPT_LANGUAGE="en"), "en")):
        response = client.get(path)
        assert response.status_code == 200
        assert not response.cookies, response.cookies
        assert response["Cache-Control"] == "public, max-age=5"
        assert {"Accept-Language", "Cookie"} <= {
            part.strip() for part in response["Vary"].split(",")
        }
        assert response["Content-Language"] == language
        page = response.content.decode()
        assert "csrfmiddlewaretoken" not in page
        assert "X-CSRFToken" not in page
    # The switch is a link that names the language, so a cache keys it by address.
    english = Client().get(path + "?lang=en")
    assert english["Content-Language"] == "en"
    assert f"Certificate {issued.number} is valid until" in english.content.decode()
    assert 'href="?lang=ja"' in english.content.decode()
    assert (
        'href="?lang=en"'
        in Client(HTTP_ACCEPT_LANGUAGE="en").get(path + "?lang=ja").content.decode()
    )
    assert not english.cookies
    # Unknown numbers too (404), and nonsense in ?lang= is the reader's own language.
    missing = Client().get(reverse("certificates:verify", args=["CE-2026-NOSUCH00"]) + "?lang=xx")
    assert (missing.status_code, missing["Content-Language"]) == (404, "ja")
    assert missing["Cache-Control"] == "public, max-age=5"
    signed_in = client_for(world.admin).get(path)
    assert "private" in signed_in["Cache-Control"]
    assert "public" not in signed_in["Cache-Control"]
    assert "X-CSRFToken" in signed_in.content.decode()
