"""Hostile strings: script tags and SQL are stored exactly as typed (they are data), shown escaped
on every page, and never change the database's shape. Odd search strings and certificate
numbers give a page or a 404, never a 500."""

from __future__ import annotations

import html

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from mamori.assessments import services
from mamori.assessments.models import Answer, Outcome, Verdict
from mamori.certificates.models import Certificate
from tests.badinput.conftest import answer_url, api, api_answer_url, english, put_json, web

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
ESCAPED = html.escape(SCRIPT)  # &lt;script&gt;alert(1)&lt;/script&gt;
SQL = "'; DROP TABLE assessments_answer; --"


def assert_escaped(page: str, raw: str = SCRIPT) -> None:
    assert raw not in page
    assert html.escape(raw) in page


def save(world, assessment, qid: str, value) -> None:
    current = Answer.objects.filter(assessment=assessment, question__qid=qid).first()
    services.save_answer(
        world.admin,
        world.access(world.admin),
        assessment.pk,
        qid,
        value,
        current.version if current else 0,
    )


def test_script_in_text_answer_is_stored_verbatim(world, draft):
    response = web(world.admin).post(
        answer_url(draft, "A1.5"), {"value": SCRIPT, "version": "0"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert Answer.objects.get(assessment=draft, question__qid="A1.5").value == SCRIPT
    # The autosave's answer never sends the form back (the input stays as the user typed it),
    # so the value is not in it at all; the pages show it escaped (the tests below).
    body = response.content.decode()
    assert SCRIPT not in body
    assert ESCAPED not in body


def test_script_in_text_answer_is_escaped_on_the_section_page(world, draft):
    save(world, draft, "A1.5", SCRIPT)
    page = web(world.admin).get(reverse("assessments:section", args=[draft.pk, "A1"]))
    assert page.status_code == 200
    assert_escaped(page.content.decode())


def test_script_in_text_answer_is_escaped_on_the_read_only_section_page(world):
    """After submission the answer is shown as text, not in a textarea: escaped there too."""
    assessment = world.start()
    world.answer_all(assessment)
    save(world, assessment, "A1.5", SCRIPT)
    world.sign(assessment)
    services.submit(world.admin, world.access(world.admin), assessment.pk)
    page = web(world.admin).get(reverse("assessments:section", args=[assessment.pk, "A1"]))
    assert 'class="answer-view"' in page.content.decode()
    assert_escaped(page.content.decode())


def test_script_in_text_answer_is_escaped_on_the_review_page(world):
    assessment = world.start()
    world.answer_all(assessment)
    save(world, assessment, "A1.5", SCRIPT)
    world.sign(assessment)
    assessment = services.submit(world.admin, world.access(world.admin), assessment.pk)
    page = web(assessment.assessor).get(reverse("assessments:review", args=[assessment.pk]))
    assert page.status_code == 200
    assert_escaped(page.content.decode())


def test_script_in_inventory_cell_is_escaped_in_the_editor(world, draft):
    cell = '"><script>alert(1)</script>'
    row = {"device_type": "laptop", "os": cell, "os_version": "1", "count": 1}
    save(world, draft, "A2.4", [row])
    assert Answer.objects.get(assessment=draft, question__qid="A2.4").value[0]["os"] == cell
    page = web(world.admin).get(reverse("assessments:section", args=[draft.pk, "A2"]))
    assert_escaped(page.content.decode(), cell)


def test_script_echoed_in_an_error_is_escaped(world, draft, footprint):
    """A refused value is shown back next to the reason: escaped in both places."""
    before = footprint(draft)
    response = web(world.admin).post(
        answer_url(draft, "A4.2"), {"value": SCRIPT, "version": "0"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422
    assert_escaped(response.content.decode())
    assert footprint(draft) == before


def test_script_in_declaration_name_is_stored_verbatim_and_escaped(world, draft):
    world.answer_all(draft)
    client = web(world.signatory)
    url = reverse("assessments:declaration", args=[draft.pk])
    response = client.post(url, {"name": SCRIPT, "title": SCRIPT, "confirm": "on"})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.declared_name == SCRIPT
    assert draft.declared_title == SCRIPT
    for page_url in (url, reverse("assessments:detail", args=[draft.pk])):
        page = client.get(page_url)
        assert page.status_code == 200
        assert_escaped(page.content.decode())


def test_script_in_declaration_name_is_escaped_on_the_review_page(world):
    assessment = world.start()
    world.answer_all(assessment)
    services.sign_declaration(
        world.signatory, world.access(world.signatory), assessment.pk, SCRIPT, "Director"
    )
    assessment = services.submit(world.admin, world.access(world.admin), assessment.pk)
    page = web(assessment.assessor).get(reverse("assessments:review", args=[assessment.pk]))
    assert_escaped(page.content.decode())


def test_script_in_assessor_comment_and_summary_is_escaped_on_the_advice_page(world):
    assessment = world.submitted(failing={"A6.4"})
    world.mark_all(assessment, {"A6.4": Verdict.NON_COMPLIANT})
    services.mark_answer(
        world.assessor,
        world.access(world.assessor),
        assessment.pk,
        "A6.4",
        Verdict.NON_COMPLIANT,
        SCRIPT,
    )
    services.decide(
        world.assessor, world.access(world.assessor), assessment.pk, Outcome.FAIL, SQL + SCRIPT
    )
    page = web(world.admin).get(reverse("assessments:advice", args=[assessment.pk, 1]))
    assert page.status_code == 200
    body = page.content.decode()
    assert_escaped(body)
    assert html.escape(SQL + SCRIPT) in body
    assert "A6.4" in body


def test_script_in_scope_text_is_escaped_on_public_verification(world):
    """The scope description is printed on the certificate and shown to anyone."""
    assessment = world.start()
    world.answer_all(assessment)
    save(world, assessment, "A2.1", "subset")
    save(world, assessment, "A2.2", SCRIPT)
    save(world, assessment, "A2.3", "yes")
    world.sign(assessment)
    assessment = services.submit(world.admin, world.access(world.admin), assessment.pk)
    if assessment.assessor_id != world.assessor.pk:
        services.take_over(world.assessor, world.access(world.assessor), assessment.pk)
    world.mark_all(assessment)
    services.decide(world.assessor, world.access(world.assessor), assessment.pk, "pass", "ok")
    certificate = Certificate.objects.get(assessment=assessment)
    assert certificate.scope_text == SCRIPT
    page = english(Client()).get(reverse("certificates:verify", args=[certificate.number]))
    assert page.status_code == 200
    assert_escaped(page.content.decode())
    public = Client().get(f"/api/public/certificates/{certificate.number}")
    assert public.json()["scope"] == SCRIPT  # JSON carries the data as it is


def test_sql_in_text_answer_through_the_page(world, draft):
    response = web(world.admin).post(
        answer_url(draft, "A1.5"), {"value": SQL, "version": "0"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert Answer.objects.get(assessment=draft, question__qid="A1.5").value == SQL
    assert "assessments_answer" in connection.introspection.table_names()
    assert Answer.objects.filter(assessment=draft).count() == 1


def test_sql_in_text_answer_through_the_api(world, draft):
    alice = api(world.admin, world.bank)
    response = put_json(alice, api_answer_url(draft, "A1.5"), {"value": SQL, "version": 0})
    assert response.status_code == 200
    assert response.json()["value"] == SQL
    assert Answer.objects.get(assessment=draft, question__qid="A1.5").value == SQL
    assert "assessments_answer" in connection.introspection.table_names()


def test_sql_in_inventory_and_choices(world, draft, footprint):
    """SQL as a choice is refused like any unknown choice; as a cell it is plain text."""
    before = footprint(draft)
    alice = api(world.admin, world.bank)
    refused = put_json(alice, api_answer_url(draft, "A4.2"), {"value": SQL, "version": 0})
    assert refused.status_code == 400
    assert footprint(draft) == before
    row = {"device_type": "laptop", "os": SQL, "os_version": "1 OR 1=1", "count": 1}
    saved = put_json(alice, api_answer_url(draft, "A2.4"), {"value": [row], "version": 0})
    assert saved.status_code == 200
    (stored,) = Answer.objects.get(assessment=draft, question__qid="A2.4").value
    assert stored == {**row, "ownership": None, "remote_use": None}
    assert "assessments_answer" in connection.introspection.table_names()


ODD_SEARCHES = {
    "long": "x" * 10_000,
    "sql": SQL,
    "sql-or": "' OR '1'='1",
    "like-wildcards": "%_%\\",
    "script": SCRIPT,
    "nul": "bank\x00",
    "control": "\x1b[2J\x07",
    "rtl-override": "\u202egnp.exe",
    "emoji": "🏦" * 50,
    "surrogate-like": "\udcff".encode("utf-8", "surrogatepass").decode("latin-1"),
    "only-spaces": "     ",
}


@pytest.mark.parametrize("query", ODD_SEARCHES.values(), ids=list(ODD_SEARCHES))
def test_odd_public_register_search(world, query):
    world.passed()  # one certificate on the register, so the search runs a real query
    response = english(Client()).get(reverse("certificates:register"), {"q": query})
    assert response.status_code == 200
    assert SCRIPT not in response.content.decode()


@pytest.mark.parametrize("query", ODD_SEARCHES.values(), ids=list(ODD_SEARCHES))
def test_odd_organisation_search(world, query):
    response = web(world.admin).get(reverse("organisations:list"), {"q": query})
    assert response.status_code == 200
    assert SCRIPT not in response.content.decode()


def test_register_search_finds_by_name_after_odd_input(world):
    """The odd-input handling does not break the search itself."""
    certificate = Certificate.objects.get(assessment=world.passed())
    page = english(Client()).get(reverse("certificates:register"), {"q": "Test Bank\x00"})
    assert certificate.number in page.content.decode()


GARBAGE_NUMBERS = {
    "sql": "' OR '1'='1",
    "traversal": "..%2F..%2Fetc%2Fpasswd",
    "nul": "CE-2026-%00",
    "script": "%3Cscript%3E",
    "long": "A" * 5000,
    "unknown-but-well-formed": "CE-2026-ZZZZZZZZ",
    "lower-case-unknown": "ce-2026-zzzzzzzz",
    "unicode": "証明書",
    "spaces": "%20%20",
}


@pytest.mark.parametrize("number", GARBAGE_NUMBERS.values(), ids=list(GARBAGE_NUMBERS))
def test_verify_garbage_is_404(world, number):
    world.passed()  # a real certificate exists, so a lookup runs against real rows
    response = english(Client()).get(f"/verify/{number}")
    assert response.status_code == 404


@pytest.mark.parametrize("number", GARBAGE_NUMBERS.values(), ids=list(GARBAGE_NUMBERS))
def test_certificate_page_garbage_is_404(world, number):
    response = web(world.admin).get(f"/certificates/{number}/")
    assert response.status_code == 404


def test_verify_lookup_with_garbage_says_no_such_certificate(world):
    response = english(Client()).get(reverse("certificates:verify_lookup"), {"number": SQL})
    assert response.status_code == 404
    assert 'class="verify-result unknown"' in response.content.decode()
    assert "No such certificate" in response.content.decode()
    empty = english(Client()).get(reverse("certificates:verify_lookup"), {"number": "  "})
    assert empty.status_code == 302
    assert empty.url == reverse("certificates:register")
