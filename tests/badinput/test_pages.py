"""Bad input through the web pages: the htmx autosave answers 422/409 with the reason shown at
the field, the plain form post redirects with a message, and nothing is written either way."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from mamori.assessments import services
from mamori.assessments.models import Answer, Decision, State, Verdict
from mamori.audit.models import AuditEvent
from mamori.certificates.models import Certificate
from tests.badinput.conftest import answer_url, flash, web
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def field_status(body: str, qid: str) -> str:
    """The error line shown at question ``qid`` by an htmx fragment: the autosave's status line
    (sent out of band, the form itself is never replaced), or a review item's."""
    line = re.search(
        rf'<p id="status-{re.escape(qid)}" hx-swap-oob="true" class="status ([a-z]*)"[^>]*>(.*?)</p>',
        body,
        re.S,
    )
    if line:
        assert line.group(1) == "error", f"no error shown at {qid}"
        return html.unescape(line.group(2)).strip()
    block = re.search(rf'<div id="q-{re.escape(qid)}"(.*?)<p class="status ([a-z]*)"', body, re.S)
    assert block, f"no status line for {qid} in the fragment"
    assert 'id="q-' not in block.group(1), f"no status line in the block of {qid}"
    assert block.group(2) == "error", f"no error shown at {qid}"
    status = re.match(r"[^>]*>(.*?)</p>", body[block.end() :], re.S)
    return html.unescape(status.group(1)).strip()


def autosave(client, assessment, qid: str, data: dict):
    return client.post(answer_url(assessment, qid), data, HTTP_HX_REQUEST="true")


def inventory_row(index: int, **cells) -> dict:
    return {f"row-{index}-{column}": value for column, value in cells.items()}


LAPTOP = {"device_type": "laptop", "os": "Windows 11", "os_version": "24H2", "count": "3"}

# (question, posted fields without the version, the reason shown at the field)
WRONG_ANSWERS = {
    "yes_no-1": ("A4.2", {"value": "1"}, "'1' is not one of the choices (yes, no)."),
    "yes_no-true": ("A4.2", {"value": "true"}, "'true' is not one of the choices (yes, no)."),
    "yes_no-maybe": ("A4.2", {"value": "maybe"}, "'maybe' is not one of the choices (yes, no)."),
    "choice-unknown": (
        "A1.3",
        {"value": "casino"},
        "'casino' is not one of the choices (bank, shinkin_bank,",
    ),
    "number-abc": ("A1.4", {"value": "abc"}, "Enter a number."),
    "number-1e999": ("A1.4", {"value": "1e999"}, "That number is too large."),
    "number-nan": ("A1.4", {"value": "NaN"}, "Enter a number."),
    "number-infinity": ("A1.4", {"value": "-Infinity"}, "Enter a number."),
    "number-huge": ("A1.4", {"value": "9" * 40}, "That number is too large."),
    "number-below-minimum": ("A1.4", {"value": "-5"}, "Enter 0 or more."),
    "multi_choice-duplicates": (
        "A4.1",
        {"value": ["host_firewall", "host_firewall"]},
        "Each choice can be picked only once.",
    ),
    "multi_choice-unknown": (
        "A4.1",
        {"value": ["host_firewall", "moat"]},
        "'moat' is not one of the choices (boundary_firewall,",
    ),
    "text-nul": ("A1.1", {"value": "Test\x00Bank"}, "The text contains control characters"),
    "text-control": ("A1.1", {"value": "Test\x1bBank"}, "The text contains control characters"),
    "text-too-long": ("A1.1", {"value": "x" * 301}, "Keep it under 300 characters."),
    "inventory-unknown-column": (
        "A2.4",
        inventory_row(0, **LAPTOP, colour="red"),
        "Row 1 has an unknown column 'colour'.",
    ),
    "inventory-missing-required-cell": (
        "A2.4",
        inventory_row(0, device_type="laptop", os="Windows 11", count="3"),
        "Row 1: fill in 'OS version (edition, build)'.",
    ),
    "inventory-wrong-cell-type": (
        "A2.4",
        inventory_row(0, **{**LAPTOP, "count": "lots"}),
        "Row 1, column 'Count': Enter a number.",
    ),
    "inventory-wrong-cell-choice": (
        "A2.4",
        inventory_row(0, **{**LAPTOP, "device_type": "toaster"}),
        "Row 1, column 'Device type': 'toaster' is not one of the choices",
    ),
    "inventory-nul-in-cell": (
        "A2.4",
        inventory_row(0, **{**LAPTOP, "os": "Win\x00dows"}),
        "Row 1, column 'Operating system': The text contains control characters",
    ),
    # One cell per row keeps the post under Django's field-count limit, so the row limit
    # itself is what refuses it.
    "inventory-too-many-rows": (
        "A2.4",
        {key: value for i in range(501) for key, value in inventory_row(i, os="Linux").items()},
        "A table can have at most 500 rows.",
    ),
}


@pytest.mark.parametrize(("qid", "data", "reason"), WRONG_ANSWERS.values(), ids=list(WRONG_ANSWERS))
def test_autosave_rejects_wrong_answer_at_the_field(world, draft, footprint, qid, data, reason):
    before = footprint(draft)
    response = autosave(web(world.admin), draft, qid, {**data, "version": "0"})
    assert response.status_code == 422
    assert field_status(response.content.decode(), qid).startswith(reason)
    assert footprint(draft) == before
    assert not Answer.objects.filter(assessment=draft).exists()


def test_autosave_rejects_wrong_answer_and_keeps_the_stored_one(world, draft, footprint):
    """A bad edit of an existing answer leaves the saved value and its version as they were."""
    client = web(world.admin)
    assert autosave(client, draft, "A1.4", {"value": "250", "version": "0"}).status_code == 200
    before = footprint(draft)
    response = autosave(client, draft, "A1.4", {"value": "two hundred", "version": "1"})
    assert response.status_code == 422
    body = response.content.decode()
    assert field_status(body, "A1.4") == "Enter a number."
    # The form with what the user typed stays as it is: the answer sends no input back, and
    # keeps the version the user edited (it moves on only when a save succeeds).
    assert "<input" not in body
    assert 'id="version-A1.4"' not in body
    assert footprint(draft) == before
    assert before.answers["A1.4"] == ("250", 1)


def test_plain_post_of_wrong_answer_redirects_with_message(world, draft, footprint):
    """Without JavaScript the form posts normally: back to the section with the reason."""
    before = footprint(draft)
    response = web(world.admin).post(answer_url(draft, "A1.4"), {"value": "abc", "version": "0"})
    assert response.status_code == 302
    assert response.url == reverse("assessments:section", args=[draft.pk, "A1"]) + "#q-A1.4"
    assert flash(response) == ["A1.4: Enter a number."]
    assert footprint(draft) == before


def test_plain_post_message_is_shown_on_the_section_page(world, draft, footprint):
    before = footprint(draft)
    page = web(world.admin).post(
        answer_url(draft, "A4.2"), {"value": "maybe", "version": "0"}, follow=True
    )
    assert page.status_code == 200
    assert html.escape("A4.2: 'maybe' is not one of the choices (yes, no).") in (
        page.content.decode()
    )
    assert footprint(draft) == before


@pytest.mark.parametrize(
    "qid", ["Z9.99", "A1.1x", "a" * 300, "A1.1'--", "A1.1\x00", "..%2FA1.1"], ids=repr
)
def test_unknown_question_id_gives_404(world, draft, footprint, qid):
    before = footprint(draft)
    response = autosave(web(world.admin), draft, qid, {"value": "yes", "version": "0"})
    assert response.status_code == 404
    assert footprint(draft) == before


def test_missing_version_is_refused(world, draft, footprint):
    before = footprint(draft)
    response = autosave(web(world.admin), draft, "A4.2", {"value": "yes"})
    assert response.status_code == 409
    assert field_status(response.content.decode(), "A4.2") == (
        "Send the version you edited (currently 0)."
    )
    assert footprint(draft) == before


@pytest.mark.parametrize("version", ["abc", "-1", "1.5", "99999999999999999999999"])
def test_malformed_version_is_a_conflict_not_a_crash(world, draft, footprint, version):
    before = footprint(draft)
    response = autosave(web(world.admin), draft, "A4.2", {"value": "yes", "version": version})
    assert response.status_code == 409
    assert field_status(response.content.decode(), "A4.2").startswith(
        "Someone else saved this answer first (now version 0)."
    )
    assert footprint(draft) == before


def test_two_people_editing_at_once(world, draft, footprint):
    """Alice and Carol both open the page at version 1; Alice saves first, Carol is told and her
    value is not stored over Alice's."""
    alice, carol = web(world.admin), web(world.contributor)
    assert autosave(alice, draft, "A1.4", {"value": "100", "version": "0"}).status_code == 200
    version = Answer.objects.get(assessment=draft, question__qid="A1.4").version
    for client in (alice, carol):  # both read the page at the same version
        page = client.get(reverse("assessments:section", args=[draft.pk, "A1"]))
        assert page.status_code == 200
    assert autosave(alice, draft, "A1.4", {"value": "120", "version": version}).status_code == 200
    before = footprint(draft)
    response = autosave(carol, draft, "A1.4", {"value": "130", "version": version})
    assert response.status_code == 409
    assert field_status(response.content.decode(), "A1.4") == (
        "Someone else saved this answer first (now version 2). "
        "Reload to see their answer, then apply your change again."
    )
    assert footprint(draft) == before
    assert before.answers["A1.4"] == ("120", 2)


def test_two_people_creating_the_first_answer_at_once(world, draft, footprint):
    """Both saw "no answer yet" (version 0); the second to save is refused."""
    first = autosave(web(world.admin), draft, "A4.2", {"value": "yes", "version": "0"})
    assert first.status_code == 200
    before = footprint(draft)
    response = autosave(web(world.contributor), draft, "A4.2", {"value": "no", "version": "0"})
    assert response.status_code == 409
    assert "Someone else saved this answer first (now version 1)." in field_status(
        response.content.decode(), "A4.2"
    )
    assert footprint(draft) == before
    assert before.answers["A4.2"] == ('"yes"', 1)


def test_editing_a_submitted_assessment_htmx(world, footprint):
    assessment = world.submitted()
    before = footprint(assessment)
    version = before.answers["A4.2"][1]
    response = autosave(web(world.admin), assessment, "A4.2", {"value": "no", "version": version})
    assert response.status_code == 409
    assert field_status(response.content.decode(), "A4.2") == (
        "This assessment is Submitted and its answers cannot be changed."
    )
    assert footprint(assessment) == before


def test_editing_a_submitted_assessment_plain_post(world, footprint):
    assessment = world.submitted()
    before = footprint(assessment)
    response = web(world.admin).post(answer_url(assessment, "A1.4"), {"value": "1", "version": 1})
    assert response.status_code == 302
    assert flash(response) == [
        "A1.4: This assessment is Submitted and its answers cannot be changed."
    ]
    assert footprint(assessment) == before


def test_editing_an_unflagged_answer_during_clarification(world, footprint):
    """During clarification only the flagged answers may change."""
    assessment = world.submitted()
    services.mark_answer(
        world.assessor,
        world.access(world.assessor),
        assessment.pk,
        "A4.2",
        Verdict.NEEDS_INFORMATION,
        "Which firewall?",
    )
    services.request_clarification(world.assessor, world.access(world.assessor), assessment.pk)
    before = footprint(assessment)
    version = before.answers["A4.3"][1]
    response = autosave(web(world.admin), assessment, "A4.3", {"value": "no", "version": version})
    assert response.status_code == 409
    assert field_status(response.content.decode(), "A4.3") == (
        "Only the answers the assessor flagged can be changed now."
    )
    assert footprint(assessment) == before


def test_double_submit_through_the_page(world, footprint):
    """The second click on "submit" is refused with a message; one submission is recorded."""
    assessment = world.start()
    world.answer_all(assessment)
    world.sign(assessment)
    client = web(world.admin)
    first = client.post(reverse("assessments:submit", args=[assessment.pk]))
    assert first.status_code == 302
    assert flash(first) == ["Submitted. The certification body will review it."]
    client.get(first.url)  # the page shows (and so consumes) the first message
    before = footprint(assessment)
    assert before.state == State.SUBMITTED
    second = client.post(reverse("assessments:submit", args=[assessment.pk]))
    assert second.status_code == 302
    assert second.url == reverse("assessments:detail", args=[assessment.pk])
    assert flash(second) == ["This assessment has already been submitted."]
    assert footprint(assessment) == before
    assert (
        AuditEvent.objects.filter(
            action="assessment.submitted", object_id=str(assessment.pk)
        ).count()
        == 1
    )


def test_submit_with_unanswered_questions(world, draft, footprint):
    before = footprint(draft)
    response = web(world.admin).post(reverse("assessments:submit", args=[draft.pk]))
    assert response.status_code == 302
    (message,) = flash(response)
    assert message.endswith("required questions are unanswered, first A1.1.")
    assert footprint(draft) == before


def test_submit_without_declaration(world, draft, footprint):
    world.answer_all(draft)
    before = footprint(draft)
    response = web(world.admin).post(reverse("assessments:submit", args=[draft.pk]))
    assert response.status_code == 302
    assert flash(response) == [
        "A board signatory must sign the declaration for the current answers."
    ]
    assert footprint(draft) == before


def test_submit_by_get_is_not_allowed(world, draft, footprint):
    before = footprint(draft)
    response = web(world.admin).get(reverse("assessments:submit", args=[draft.pk]))
    assert response.status_code == 405
    assert footprint(draft) == before


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"name": "", "title": "Director", "confirm": "on"}, "name", "This field is required."),
        ({"name": "   ", "title": "Director", "confirm": "on"}, "name", "This field is required."),
        (
            {"name": "Bob\x00Board", "title": "Director", "confirm": "on"},
            "name",
            "Null characters are not allowed.",
        ),
        (
            {"name": "B" * 151, "title": "Director", "confirm": "on"},
            "name",
            "Ensure this value has at most 150 characters (it has 151).",
        ),
        ({"name": "Bob Board", "title": "Director"}, "confirm", "This field is required."),
    ],
    ids=["empty-name", "blank-name", "nul-in-name", "long-name", "not-confirmed"],
)
def test_declaration_form_errors(world, draft, footprint, fields, field, reason):
    world.answer_all(draft)
    before = footprint(draft)
    response = web(world.signatory).post(
        reverse("assessments:declaration", args=[draft.pk]), fields
    )
    assert response.status_code == 422
    assert response.context["form"].errors[field] == [reason]
    assert html.escape(reason) in response.content.decode()
    assert footprint(draft) == before


def test_declaration_after_submit(world, footprint):
    assessment = world.submitted()
    before = footprint(assessment)
    response = web(world.signatory).post(
        reverse("assessments:declaration", args=[assessment.pk]),
        {"name": "Bob Board", "title": "Director", "confirm": "on"},
    )
    assert response.status_code == 409
    assert response.context["form"].non_field_errors() == [
        "The assessment has already been submitted."
    ]
    assert footprint(assessment) == before


def _in_review(world):
    assessment = world.mark_all(world.submitted())
    assert assessment.state == State.IN_REVIEW
    return assessment


def test_deciding_twice_through_the_page(world, footprint):
    assessment = _in_review(world)
    client = web(world.assessor)
    url = reverse("assessments:decide", args=[assessment.pk])
    first = client.post(url, {"outcome": "pass", "summary": "good"})
    assert first.status_code == 302
    assert flash(first) == ["Passed. The certificate has been issued."]
    client.get(first.url)  # the page shows (and so consumes) the first message
    before = footprint(assessment)
    second = client.post(url, {"outcome": "fail", "summary": "changed my mind"})
    assert second.status_code == 302
    assert second.url == reverse("assessments:review", args=[assessment.pk])
    assert flash(second) == ["This round has already been decided."]
    assert footprint(assessment) == before
    assert Decision.objects.filter(assessment=assessment).count() == 1
    assert Certificate.objects.filter(assessment=assessment).count() == 1


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, "Choose pass or fail."),
        ({"outcome": "maybe"}, "Choose pass or fail."),
        (
            {"outcome": "pass", "summary": "s" * 4001},
            "Ensure this value has at most 4000 characters (it has 4001).",
        ),
        ({"outcome": "pass", "summary": "good\x00"}, "Null characters are not allowed."),
    ],
    ids=["no-outcome", "unknown-outcome", "long-summary", "nul-in-summary"],
)
def test_decision_form_errors(world, footprint, fields, reason):
    assessment = _in_review(world)
    before = footprint(assessment)
    response = web(world.assessor).post(reverse("assessments:decide", args=[assessment.pk]), fields)
    assert response.status_code == 302
    assert flash(response) == [reason]
    assert footprint(assessment) == before


def test_pass_with_non_compliant_answers_is_refused(world, footprint):
    assessment = world.mark_all(world.submitted(failing={"A6.4"}))
    before = footprint(assessment)
    response = web(world.assessor).post(
        reverse("assessments:decide", args=[assessment.pk]), {"outcome": "pass"}
    )
    assert response.status_code == 302
    assert flash(response) == [
        "It cannot pass yet: 1 answers are not marked compliant, first A6.4."
    ]
    assert footprint(assessment) == before


def test_marking_by_a_non_assigned_assessor(world, footprint):
    """Abe works for the same body but the submission is Ada's: refused, with the reason."""
    assessment = world.submitted()
    before = footprint(assessment)
    response = web(world.assessor2).post(
        reverse("assessments:mark", args=[assessment.pk, "A4.2"]),
        {"verdict": "compliant", "comment": ""},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 403
    assert "This submission is assigned to another assessor; take it over first." in (
        response.content.decode()
    )
    assert footprint(assessment) == before


def test_marking_by_an_assessor_of_another_body(world, footprint):
    assessment = world.submitted()
    before = footprint(assessment)
    response = web(world.other_assessor).post(
        reverse("assessments:mark", args=[assessment.pk, "A4.2"]),
        {"verdict": "compliant"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 404
    assert footprint(assessment) == before


def test_deciding_by_a_non_assigned_assessor(world, footprint):
    assessment = _in_review(world)
    before = footprint(assessment)
    response = web(world.assessor2).post(
        reverse("assessments:decide", args=[assessment.pk]), {"outcome": "pass"}
    )
    assert response.status_code == 302
    assert flash(response) == [
        "This submission is assigned to another assessor; take it over first."
    ]
    assert footprint(assessment) == before


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"verdict": "excellent"}, "Choose a verdict."),
        ({}, "Choose a verdict."),
        (
            {"verdict": "compliant", "comment": "c" * 4001},
            "Ensure this value has at most 4000 characters (it has 4001).",
        ),
        ({"verdict": "compliant", "comment": "ok\x00"}, "Null characters are not allowed."),
        (
            {"verdict": "non_compliant", "comment": "  "},
            "Say what is wrong or missing, so the applicant can act on it.",
        ),
    ],
    ids=["unknown-verdict", "no-verdict", "long-comment", "nul-in-comment", "no-comment"],
)
def test_mark_form_errors(world, footprint, fields, reason):
    assessment = world.submitted()
    before = footprint(assessment)
    response = web(world.assessor).post(
        reverse("assessments:mark", args=[assessment.pk, "A4.2"]), fields, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422
    assert field_status(response.content.decode(), "A4.2") == reason
    assert footprint(assessment) == before


def test_marking_an_auto_fail_answer_compliant(world, footprint):
    assessment = world.submitted(failing={"A6.4"})
    before = footprint(assessment)
    response = web(world.assessor).post(
        reverse("assessments:mark", args=[assessment.pk, "A6.4"]),
        {"verdict": "compliant"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422
    assert field_status(response.content.decode(), "A6.4") == (
        "This answer triggers an automatic fail and cannot be marked compliant."
    )
    assert footprint(assessment) == before


def test_marking_an_unknown_question_gives_404(world, footprint):
    assessment = world.submitted()
    before = footprint(assessment)
    response = web(world.assessor).post(
        reverse("assessments:mark", args=[assessment.pk, "Z9.9"]), {"verdict": "compliant"}
    )
    assert response.status_code == 404
    assert footprint(assessment) == before


@pytest.mark.parametrize(
    "path",
    [
        "/assessments/99999999999999999999999/",
        "/assessments/99999999999999999999999/sections/A1/",
        "/assessments/1/sections/A1%00/",
        "/assessments/1/review/A1.1%00/",
        "/assessments/1/sections/" + "A" * 500 + "/",
        "/assessments/1/advice/99999999999999999999999/",
        "/assessments/1/evidence/99999999999999999999999/",
    ],
    ids=[
        "huge-pk",
        "huge-pk-section",
        "nul-section",
        "nul-mark",
        "long-section",
        "huge-round",
        "huge-file",
    ],
)
def test_odd_path_parameters_give_404(world, draft, path):
    path = path.replace("/1/", f"/{draft.pk}/")
    response = web(world.admin).get(path)
    assert response.status_code == 404


def test_full_size_inventory_saves_through_the_form(world, draft):
    """A table of 500 rows (the most a table may have) with every cell filled is valid input and
    must not hit Django's limit on form fields. It did: above ~160 rows a bare 400 that htmx does
    not swap in, so the rows were silently not saved."""
    full = {"device_type": "laptop", "os": "Windows 11", "os_version": "24H2"}
    full |= {"ownership": "organisation", "remote_use": "yes", "count": "3"}
    data = {key: value for i in range(500) for key, value in inventory_row(i, **full).items()}
    response = autosave(web(world.admin), draft, "A2.4", {**data, "version": "0"})
    assert response.status_code == 200
    answer = Answer.objects.get(assessment=draft, question__qid="A2.4")
    assert len(answer.value) == 500


def test_flood_of_form_fields_is_refused(world, draft, footprint, settings):
    """More fields than any form of ours has: Django refuses the request, nothing is written."""
    before = footprint(draft)
    flood = {f"row-{i % 1000}-x{i}": "1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS)}
    response = autosave(web(world.admin), draft, "A2.4", {**flood, "version": "0"})
    assert response.status_code == 400
    assert footprint(draft) == before


def test_japanese_reason_at_the_field(world, draft, footprint):
    """Japanese is the default language: the reason is given in Japanese."""
    before = footprint(draft)
    client = client_for(world.admin)
    response = autosave(client, draft, "A1.4", {"value": "abc", "version": "0"})
    assert response.status_code == 422
    assert field_status(response.content.decode(), "A1.4") == "数値を入力してください。"
    assert footprint(draft) == before


def test_autosave_by_someone_who_may_only_read(world, draft, footprint):
    """The board signatory sees the answers but does not edit them."""
    before = footprint(draft)
    response = autosave(web(world.signatory), draft, "A4.2", {"value": "yes", "version": "0"})
    assert response.status_code == 403
    assert field_status(response.content.decode(), "A4.2") == (
        "You cannot change this assessment's answers."
    )
    assert footprint(draft) == before


def test_autosave_by_an_outsider(world, draft, footprint):
    before = footprint(draft)
    response = autosave(web(world.other_admin), draft, "A4.2", {"value": "yes", "version": "0"})
    assert response.status_code == 404
    assert footprint(draft) == before
