"""Bad input through the REST API: every refusal is a 4xx JSON body with a human ``detail`` and a
machine ``code``, and nothing is written."""

from __future__ import annotations

import pytest

from mamori.assessments import services
from mamori.assessments.models import Answer, Decision, State
from mamori.audit.models import AuditEvent
from mamori.catalogue import samples
from mamori.certificates.models import Certificate
from tests.badinput.conftest import api, api_answer_url, post_json, put_json
from tests.conftest import api_token

pytestmark = pytest.mark.django_db


def refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["detail"], str)
    assert body["detail"].strip()
    return body


@pytest.fixture
def alice(world):
    return api(world.admin, world.bank)


LAPTOP = {"device_type": "laptop", "os": "Windows 11", "os_version": "24H2", "count": 3}

# (question, value sent, code, detail) — the detail is the start of the reason given.
WRONG_VALUES = {
    "yes_no-1": ("A4.2", 1, "not_a_choice", "Choose one of: yes, no."),
    "yes_no-true": ("A4.2", True, "not_a_choice", "Choose one of: yes, no."),
    "yes_no-maybe": ("A4.2", "maybe", "unknown_choice", "'maybe' is not one of the choices"),
    "yes_no-list": ("A4.2", ["yes"], "not_a_choice", "Choose one of: yes, no."),
    "yes_no-object": ("A4.2", {"$ne": None}, "not_a_choice", "Choose one of: yes, no."),
    "yes_no-case": ("A4.2", "YES", "unknown_choice", "'YES' is not one of the choices"),
    "choice-number": ("A1.3", 3, "not_a_choice", "Choose one of: bank, shinkin_bank,"),
    "number-abc": ("A1.4", "abc", "not_a_number", "Enter a number."),
    "number-1e999-string": ("A1.4", "1e999", "number_too_large", "That number is too large."),
    "number-nan-string": ("A1.4", "NaN", "not_a_number", "Enter a number."),
    "number-huge": ("A1.4", 10**13, "number_too_large", "That number is too large."),
    "number-bool": ("A1.4", True, "not_a_number", "Enter a number."),
    "number-list": ("A1.4", [1], "not_a_number", "Enter a number."),
    "number-negative": ("A1.4", -1, "below_minimum", "Enter 0 or more."),
    "multi_choice-string": ("A4.1", "host_firewall", "not_a_list", "Send a list of choices."),
    "multi_choice-duplicates": (
        "A4.1",
        ["host_firewall", "host_firewall"],
        "duplicate_choice",
        "Each choice can be picked only once.",
    ),
    "multi_choice-number-item": ("A4.1", [1], "not_a_choice", "Choose one of: boundary_firewall"),
    "multi_choice-nested": (
        "A4.1",
        [["host_firewall"]],
        "not_a_choice",
        "Choose one of: boundary_firewall",
    ),
    "text-number": ("A1.1", 123, "not_text", "Enter text."),
    "text-object": ("A1.1", {"$gt": ""}, "not_text", "Enter text."),
    "text-nul": ("A1.1", "Test\x00Bank", "control_characters", "The text contains control"),
    "text-escape": ("A1.1", "\x1b[31mred", "control_characters", "The text contains control"),
    "text-too-long": ("A1.1", "x" * 301, "too_long", "Keep it under 300 characters."),
    "inventory-object": ("A2.4", LAPTOP, "not_a_table", "Send the table as a list of rows."),
    "inventory-string": ("A2.4", "laptops", "not_a_table", "Send the table as a list of rows."),
    "inventory-row-string": ("A2.4", ["row"], "row_not_an_object", "Row 1 is not a set of"),
    "inventory-row-list": ("A2.4", [LAPTOP, [1, 2]], "row_not_an_object", "Row 2 is not a set"),
    "inventory-unknown-column": (
        "A2.4",
        [{**LAPTOP, "colour": "red"}],
        "unknown_column",
        "Row 1 has an unknown column 'colour'.",
    ),
    "inventory-missing-required-cell": (
        "A2.4",
        [{key: value for key, value in LAPTOP.items() if key != "os"}],
        "cell_required",
        "Row 1: fill in 'Operating system'.",
    ),
    "inventory-too-many-rows": (
        "A2.4",
        [LAPTOP] * 501,
        "too_many_rows",
        "A table can have at most 500 rows.",
    ),
    "inventory-cell-type": (
        "A2.4",
        [{**LAPTOP, "count": "lots"}],
        "not_a_number",
        "Row 1, column 'Count': Enter a number.",
    ),
    "inventory-cell-object": (
        "A2.4",
        [{**LAPTOP, "os": {"name": "Windows"}}],
        "not_text",
        "Row 1, column 'Operating system': Enter text.",
    ),
    "inventory-cell-nul": (
        "A2.4",
        [{**LAPTOP, "os": "Win\x00"}],
        "control_characters",
        "Row 1, column 'Operating system': The text contains control",
    ),
    "inventory-cell-negative": (
        "A2.4",
        [{**LAPTOP, "count": -2}],
        "below_minimum",
        "Row 1, column 'Count': Enter 0 or more.",
    ),
}


# A table cell's problem names the column by its label (as the page shows it); the field gives
# programs the cell's place and key. Every other refusal is about the value as a whole.
CELL_FIELDS = {
    "inventory-unknown-column": "value[0].colour",
    "inventory-missing-required-cell": "value[0].os",
    "inventory-cell-type": "value[0].count",
    "inventory-cell-object": "value[0].os",
    "inventory-cell-nul": "value[0].os",
    "inventory-cell-negative": "value[0].count",
}


@pytest.mark.parametrize(
    ("qid", "value", "code", "detail", "field"),
    [(*case, CELL_FIELDS.get(name, "value")) for name, case in WRONG_VALUES.items()],
    ids=list(WRONG_VALUES),
)
def test_wrong_answer_value(world, draft, footprint, alice, qid, value, code, detail, field):
    before = footprint(draft)
    response = put_json(alice, api_answer_url(draft, qid), {"value": value, "version": 0})
    body = refused(response, 400, code)
    assert body["detail"].startswith(detail)
    assert body["field"] == field
    assert footprint(draft) == before
    assert not Answer.objects.filter(assessment=draft).exists()


def test_wrong_value_keeps_the_stored_answer(world, draft, footprint, alice):
    url = api_answer_url(draft, "A1.4")
    assert put_json(alice, url, {"value": 250, "version": 0}).status_code == 200
    before = footprint(draft)
    refused(put_json(alice, url, {"value": "many", "version": 1}), 400, "not_a_number")
    assert footprint(draft) == before
    assert before.answers["A1.4"] == ("250", 1)


def test_number_beyond_json_float_range(world, draft, footprint, alice):
    """1e400 parses to infinity, which is not a JSON value: refused before the answer is read."""
    before = footprint(draft)
    response = alice.put(
        api_answer_url(draft, "A1.4"), '{"value": 1e400, "version": 0}', "application/json"
    )
    body = refused(response, 400, "invalid")
    assert body["errors"] == {"value": ["Value must be valid JSON."]}
    assert footprint(draft) == before


def test_nan_literal_is_a_parse_error(world, draft, footprint, alice):
    before = footprint(draft)
    response = alice.put(
        api_answer_url(draft, "A1.4"), '{"value": NaN, "version": 0}', "application/json"
    )
    body = refused(response, 400, "parse_error")
    assert "JSON parse error" in body["detail"]
    assert footprint(draft) == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ('{"value": "yes", "version": 0', "parse_error"),
        ("{value: yes}", "parse_error"),
        ("\x00", "parse_error"),
        (b"\xff\xfe{}", "parse_error"),
        ("", "invalid"),  # no body at all: both fields are reported missing
    ],
    ids=["unclosed", "unquoted", "nul", "not-utf8", "empty"],
)
def test_malformed_json_body(world, draft, footprint, alice, body, code):
    before = footprint(draft)
    response = alice.put(api_answer_url(draft, "A4.2"), body, "application/json")
    result = refused(response, 400, code)
    if code == "parse_error":
        assert result["detail"].startswith("JSON parse error")
    else:
        assert set(result["errors"]) == {"value", "version"}
    assert footprint(draft) == before


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ([1, 2], {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
        ("yes", {"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]}),
        ({"value": "yes"}, {"version": ["This field is required."]}),
        ({"version": 0}, {"value": ["This field is required."]}),
        ({"value": "yes", "version": None}, {"version": ["This field may not be null."]}),
        (
            {"value": "yes", "version": -1},
            {"version": ["Ensure this value is greater than or equal to 0."]},
        ),
        ({"value": "yes", "version": "abc"}, {"version": ["A valid integer is required."]}),
        ({"value": "yes", "version": 1.5}, {"version": ["A valid integer is required."]}),
    ],
    ids=[
        "list-body",
        "string-body",
        "missing-version",
        "missing-value",
        "null-version",
        "negative-version",
        "text-version",
        "fraction-version",
    ],
)
def test_body_of_the_wrong_shape(world, draft, footprint, alice, body, errors):
    before = footprint(draft)
    response = put_json(alice, api_answer_url(draft, "A4.2"), body)
    result = refused(response, 400, "invalid")
    assert result["detail"] == "Invalid input."
    assert result["errors"] == errors
    assert footprint(draft) == before


def test_form_encoded_body_is_refused(world, draft, footprint, alice):
    before = footprint(draft)
    response = alice.put(
        api_answer_url(draft, "A4.2"), "value=yes&version=0", "application/x-www-form-urlencoded"
    )
    refused(response, 415, "unsupported_media_type")
    assert footprint(draft) == before


def test_unknown_question_id(world, draft, footprint, alice):
    before = footprint(draft)
    response = put_json(alice, api_answer_url(draft, "A9.99"), {"value": "yes", "version": 0})
    body = refused(response, 400, "unknown_question")
    assert body["detail"] == "There is no question A9.99 in this catalogue."
    assert footprint(draft) == before


@pytest.mark.parametrize(
    "qid",
    ["A1.1;DROP", "..%2F..%2Fetc", "A" * 17, "A1.1%00", "%3Cscript%3E"],
    ids=["sql", "traversal", "too-long", "nul", "script"],
)
def test_question_id_of_the_wrong_form_is_404(world, draft, footprint, alice, qid):
    before = footprint(draft)
    response = put_json(alice, api_answer_url(draft, qid), {"value": "yes", "version": 0})
    refused(response, 404, "not_found")
    assert footprint(draft) == before


def test_answer_url_works_with_and_without_trailing_slash(world, draft, alice):
    """The documented form has no slash; a question id with a dot is not a format suffix."""
    url = api_answer_url(draft, "A4.2")
    assert put_json(alice, url, {"value": "yes", "version": 0}).status_code == 200
    assert put_json(alice, url + "/", {"value": "no", "version": 1}).status_code == 200
    assert Answer.objects.get(assessment=draft, question__qid="A4.2").value == "no"


def test_stale_version_two_clients(world, draft, footprint, alice):
    """Alice and Carol both read version 1; Alice saves first; Carol gets 409 and her value is
    not stored."""
    carol = api(world.contributor, world.bank)
    url = api_answer_url(draft, "A1.4")
    assert put_json(alice, url, {"value": 100, "version": 0}).status_code == 200
    seen = {}
    for name, client in (("alice", alice), ("carol", carol)):
        listing = client.get(f"/api/assessments/{draft.pk}/answers")
        assert listing.status_code == 200
        seen[name] = next(row for row in listing.json() if row["question"] == "A1.4")["version"]
    assert seen == {"alice": 1, "carol": 1}
    assert put_json(alice, url, {"value": 120, "version": seen["alice"]}).status_code == 200
    before = footprint(draft)
    body = refused(put_json(carol, url, {"value": 130, "version": seen["carol"]}), 409, "conflict")
    assert body["detail"] == (
        "Someone else saved this answer first (now version 2). "
        "Reload to see their answer, then apply your change again."
    )
    assert footprint(draft) == before
    assert before.answers["A1.4"] == ("120", 2)


def test_stale_version_reason_in_japanese(world, draft, footprint):
    """Without Accept-Language the API answers in Japanese, the default language."""
    client = api(world.admin, world.bank)
    del client.defaults["HTTP_ACCEPT_LANGUAGE"]
    url = api_answer_url(draft, "A1.4")
    assert put_json(client, url, {"value": 1, "version": 0}).status_code == 200
    before = footprint(draft)
    body = refused(put_json(client, url, {"value": 2, "version": 0}), 409, "conflict")
    assert body["detail"].startswith(
        "他の利用者が先にこの回答を保存しました（現在のバージョン：1）"
    )
    assert footprint(draft) == before


def test_version_from_the_future(world, draft, footprint, alice):
    before = footprint(draft)
    response = put_json(alice, api_answer_url(draft, "A4.2"), {"value": "yes", "version": 10**22})
    refused(response, 409, "conflict")
    assert footprint(draft) == before


def test_editing_after_submit(world, footprint, alice):
    assessment = world.submitted()
    before = footprint(assessment)
    version = before.answers["A4.2"][1]
    response = put_json(
        alice, api_answer_url(assessment, "A4.2"), {"value": "no", "version": version}
    )
    body = refused(response, 409, "wrong_state")
    assert body["detail"] == "This assessment is Submitted and its answers cannot be changed."
    assert footprint(assessment) == before


def test_double_submit(world, footprint, alice):
    assessment = world.start()
    world.answer_all(assessment)
    world.sign(assessment)
    url = f"/api/assessments/{assessment.pk}/submit"
    first = alice.post(url)
    assert first.status_code == 200
    assert first.json()["state"] == State.SUBMITTED
    before = footprint(assessment)
    body = refused(alice.post(url), 409, "already_submitted")
    assert body["detail"] == "This assessment has already been submitted."
    assert footprint(assessment) == before
    assert (
        AuditEvent.objects.filter(
            action="assessment.submitted", object_id=str(assessment.pk)
        ).count()
        == 1
    )


def test_submit_incomplete(world, draft, footprint, alice):
    before = footprint(draft)
    body = refused(alice.post(f"/api/assessments/{draft.pk}/submit"), 409, "incomplete")
    assert body["detail"].endswith("required questions are unanswered, first A1.1.")
    assert footprint(draft) == before


def test_submit_by_a_contributor(world, footprint):
    assessment = world.start()
    world.answer_all(assessment)
    world.sign(assessment)
    before = footprint(assessment)
    carol = api(world.contributor, world.bank)
    body = refused(carol.post(f"/api/assessments/{assessment.pk}/submit"), 403, "not_allowed")
    assert body["detail"] == "Only an applicant administrator can submit."
    assert footprint(assessment) == before


# --- Assessors ------------------------------------------------------------------------------


def marks_url(assessment) -> str:
    return f"/api/assessments/{assessment.pk}/marks"


def decision_url(assessment) -> str:
    return f"/api/assessments/{assessment.pk}/decision"


def test_marking_by_a_non_assigned_assessor(world, footprint):
    assessment = world.submitted()
    before = footprint(assessment)
    abe = api(world.assessor2, world.body)
    response = post_json(abe, marks_url(assessment), {"question": "A4.2", "verdict": "compliant"})
    body = refused(response, 403, "not_allowed")
    assert body["detail"] == "This submission is assigned to another assessor; take it over first."
    assert footprint(assessment) == before


def test_marking_by_an_assessor_of_another_body(world, footprint):
    assessment = world.submitted()
    before = footprint(assessment)
    otto = api(world.other_assessor, world.other_body)
    response = post_json(otto, marks_url(assessment), {"question": "A4.2", "verdict": "compliant"})
    refused(response, 404, "not_found")
    assert footprint(assessment) == before


def test_marking_by_the_applicant(world, footprint, alice):
    assessment = world.submitted()
    before = footprint(assessment)
    response = post_json(alice, marks_url(assessment), {"question": "A4.2", "verdict": "compliant"})
    # Refused with a reason; whether as "not allowed" or "not in review" is the matrix's business.
    code = {403: "not_allowed", 409: "wrong_state"}.get(response.status_code)
    assert code, response.content
    refused(response, response.status_code, code)
    assert footprint(assessment) == before


@pytest.mark.parametrize(
    ("body", "status", "code", "detail"),
    [
        ({"question": "A4.2", "verdict": "excellent"}, 400, "invalid", "Invalid input."),
        ({"question": "A4.2"}, 400, "invalid", "Invalid input."),
        ({"verdict": "compliant"}, 400, "invalid", "Invalid input."),
        ({"question": "A" * 17, "verdict": "compliant"}, 400, "invalid", "Invalid input."),
        ({"question": "A4.2\x00", "verdict": "compliant"}, 400, "invalid", "Invalid input."),
        (
            {"question": "A4.2", "verdict": "compliant", "comment": "c" * 4001},
            400,
            "invalid",
            "Invalid input.",
        ),
        (
            {"question": "A9.99", "verdict": "compliant"},
            400,
            "unknown_question",
            "There is no question A9.99 in this catalogue.",
        ),
        (
            {"question": "A4.2", "verdict": "non_compliant", "comment": "  "},
            400,
            "invalid",
            "Say what is wrong or missing, so the applicant can act on it.",
        ),
    ],
    ids=[
        "unknown-verdict",
        "no-verdict",
        "no-question",
        "long-question",
        "nul-question",
        "long-comment",
        "unknown-question",
        "no-comment",
    ],
)
def test_bad_mark(world, footprint, body, status, code, detail):
    assessment = world.submitted()
    before = footprint(assessment)
    ada = api(world.assessor, world.body)
    result = refused(post_json(ada, marks_url(assessment), body), status, code)
    assert result["detail"] == detail
    assert footprint(assessment) == before


def test_marking_an_auto_fail_answer_compliant(world, footprint):
    assessment = world.submitted(failing={"A6.4"})
    before = footprint(assessment)
    ada = api(world.assessor, world.body)
    response = post_json(ada, marks_url(assessment), {"question": "A6.4", "verdict": "compliant"})
    body = refused(response, 400, "auto_fail")
    assert body["detail"] == (
        "This answer triggers an automatic fail and cannot be marked compliant."
    )
    assert footprint(assessment) == before


def test_marking_after_the_decision(world, footprint):
    assessment = world.passed()
    before = footprint(assessment)
    ada = api(world.assessor, world.body)
    response = post_json(
        ada, marks_url(assessment), {"question": "A4.2", "verdict": "non_compliant", "comment": "x"}
    )
    body = refused(response, 409, "wrong_state")
    assert body["detail"] == "Answers can be marked only while the assessment is under review."
    assert footprint(assessment) == before


def test_deciding_twice(world, footprint):
    assessment = world.mark_all(world.submitted())
    ada = api(world.assessor, world.body)
    first = post_json(ada, decision_url(assessment), {"outcome": "pass", "summary": "good"})
    assert first.status_code == 201
    before = footprint(assessment)
    second = post_json(ada, decision_url(assessment), {"outcome": "fail", "summary": "no"})
    body = refused(second, 409, "already_decided")
    assert body["detail"] == "This round has already been decided."
    assert footprint(assessment) == before
    assert Decision.objects.filter(assessment=assessment).count() == 1
    assert Certificate.objects.filter(assessment=assessment).count() == 1


def test_deciding_by_a_non_assigned_assessor(world, footprint):
    assessment = world.mark_all(world.submitted())
    before = footprint(assessment)
    abe = api(world.assessor2, world.body)
    body = refused(
        post_json(abe, decision_url(assessment), {"outcome": "pass"}), 403, "not_allowed"
    )
    assert body["detail"] == "This submission is assigned to another assessor; take it over first."
    assert footprint(assessment) == before


@pytest.mark.parametrize(
    ("body", "status", "code", "detail"),
    [
        ({"outcome": "maybe"}, 400, "invalid", "Invalid input."),
        ({}, 400, "invalid", "Invalid input."),
        ({"outcome": "pass", "summary": "s" * 4001}, 400, "invalid", "Invalid input."),
        ({"outcome": "pass", "summary": "ok\x00"}, 400, "invalid", "Invalid input."),
        ({"outcome": ["pass"]}, 400, "invalid", "Invalid input."),
        (
            {"outcome": "fail"},
            409,
            "nothing_failed",
            "To fail it, mark the failing answers non-compliant first.",
        ),
    ],
    ids=["unknown-outcome", "no-outcome", "long-summary", "nul-summary", "list", "fail-nothing"],
)
def test_bad_decision(world, footprint, body, status, code, detail):
    assessment = world.mark_all(world.submitted())
    before = footprint(assessment)
    ada = api(world.assessor, world.body)
    result = refused(post_json(ada, decision_url(assessment), body), status, code)
    assert result["detail"] == detail
    assert footprint(assessment) == before


def test_pass_with_failing_answers(world, footprint):
    assessment = world.mark_all(world.submitted(failing={"A6.4"}))
    before = footprint(assessment)
    ada = api(world.assessor, world.body)
    body = refused(
        post_json(ada, decision_url(assessment), {"outcome": "pass"}), 409, "cannot_pass"
    )
    assert body["detail"] == "It cannot pass yet: 1 answers are not marked compliant, first A6.4."
    assert footprint(assessment) == before


def test_deciding_before_review(world, footprint):
    """Nothing is marked yet, so the review has not started: no decision possible."""
    assessment = world.submitted()
    before = footprint(assessment)
    ada = api(world.assessor, world.body)
    body = refused(
        post_json(ada, decision_url(assessment), {"outcome": "pass"}), 409, "wrong_state"
    )
    assert body["detail"] == "A decision can be made only during review."
    assert footprint(assessment) == before


# --- Path parameters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/assessments/abc"),
        ("get", "/api/assessments/1.5"),
        ("get", "/api/assessments/-1"),
        ("get", "/api/assessments/99999999999999999999999"),
        ("get", "/api/assessments/%00"),
        ("get", "/api/assessments/abc/answers"),
        ("post", "/api/assessments/abc/submit"),
        ("post", "/api/assessments/99999999999999999999999/marks"),
        ("get", "/api/organisations/abc"),
        ("get", "/api/organisations/99999999999999999999999"),
        ("get", "/api/certificates/!!!"),
        ("get", "/api/certificates/" + "A" * 40),
        ("get", "/api/public/certificates/%00"),
        ("get", "/api/public/certificates/' OR '1'='1"),
        ("get", "/api/public/certificates/" + "A" * 500),
        ("get", "/api/public/certificates/..%2F..%2Fetc%2Fpasswd"),
    ],
    ids=lambda value: value if len(value) < 40 else value[:40] + "...",
)
def test_path_parameters_of_the_wrong_type_give_404(world, draft, alice, method, path):
    response = getattr(alice, method)(path)
    refused(response, 404, "not_found")


def test_unknown_method_is_405(world, draft, footprint, alice):
    before = footprint(draft)
    refused(alice.delete(f"/api/assessments/{draft.pk}"), 405, "method_not_allowed")
    assert footprint(draft) == before


@pytest.mark.parametrize(
    "header",
    ["Token a\x00b", "Token " + "x" * 5000, "Token ' OR 1=1 --", "Token ../../etc/passwd"],
    ids=["nul", "long", "sql", "traversal"],
)
def test_token_header_with_odd_bytes(world, draft, header):
    client = api(world.admin, world.bank)
    client.defaults["HTTP_AUTHORIZATION"] = header
    refused(client.get(f"/api/assessments/{draft.pk}"), 401, "authentication_failed")


def test_token_of_another_organisation_sees_nothing(world, draft, footprint):
    before = footprint(draft)
    client = api(world.admin, world.bank)
    client.defaults["HTTP_AUTHORIZATION"] = (
        f"Token {api_token(world.other_admin, world.other_bank)}"
    )
    refused(client.get(f"/api/assessments/{draft.pk}"), 404, "not_found")
    response = put_json(client, api_answer_url(draft, "A4.2"), {"value": "yes", "version": 0})
    refused(response, 404, "not_found")
    assert footprint(draft) == before


def test_mark_body_not_json(world, footprint):
    assessment = world.submitted()
    before = footprint(assessment)
    ada = api(world.assessor, world.body)
    response = ada.post(marks_url(assessment), "{'question': 'A4.2'}", "application/json")
    refused(response, 400, "parse_error")
    assert footprint(assessment) == before
    assert before.marks == ()


def test_marking_an_unanswered_question(world, footprint):
    """An optional question left blank has nothing to mark."""
    assessment = world.start()
    snapshot = services.Snapshot.load(assessment)
    for question in snapshot.questions:
        if question.qid == "A3.3":  # optional: left unanswered
            continue
        value = samples.compliant_value(question.rules)
        if question.qid == "A2.1":
            value = "whole"
        services.save_answer(
            world.admin, world.access(world.admin), assessment.pk, question.qid, value, 0
        )
    world.sign(assessment)
    assessment = services.submit(world.admin, world.access(world.admin), assessment.pk)
    if assessment.assessor_id != world.assessor.pk:  # as world.submitted() does
        services.take_over(world.assessor, world.access(world.assessor), assessment.pk)
    before = footprint(assessment)
    assert "A3.3" not in before.answers
    ada = api(world.assessor, world.body)
    response = post_json(ada, marks_url(assessment), {"question": "A3.3", "verdict": "compliant"})
    body = refused(response, 400, "invalid")
    assert body["detail"] == "Question A3.3 has no answer to mark."
    assert footprint(assessment) == before


def test_answer_by_the_assessor(world, footprint):
    """Assessors see the answers but never change them."""
    assessment = world.submitted()
    before = footprint(assessment)
    ada = api(world.assessor, world.body)
    version = before.answers["A4.2"][1]
    response = put_json(
        ada, api_answer_url(assessment, "A4.2"), {"value": "no", "version": version}
    )
    body = refused(response, 403, "not_allowed")
    assert body["detail"] == "You cannot change this assessment's answers."
    assert footprint(assessment) == before
