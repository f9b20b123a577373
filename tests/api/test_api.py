"""The REST API as integrators use it: organisation tokens, the whole workflow from a new
assessment to a publicly verifiable certificate, and a reason with every refusal."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml
from dateutil.relativedelta import relativedelta
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from mamori.accounts.models import TokenKind
from mamori.assessments.models import Answer, Assessment, State, Verdict
from mamori.catalogue import samples
from mamori.catalogue.models import Question
from mamori.certificates import services as certificate_services
from mamori.certificates.models import Certificate
from mamori.organisations.models import Membership, Role
from tests.conftest import api_token, client_for, newest_bundled

pytestmark = pytest.mark.django_db(transaction=False)

PUBLIC_KEYS = {"number", "organisation", "level", "scope", "issued", "expires", "status"}
SCOPE_TEXT = "本店オペレーションセンター / Head-office operations centre"
SECRET_ANSWER = "社外秘の回答 confidential-answer-7f3a"
ASSESSOR_COMMENT = "Show the backup log for the last month."
DECISION_SUMMARY = "All controls in place."
# The catalogue version in force, which a new assessment gets.
CURRENT = newest_bundled().version


@pytest.fixture(autouse=True)
def _fresh_throttle():
    # The public endpoint is throttled per client address, and every test client shares one.
    cache.clear()


def api(user, organisation, kind=TokenKind.USER) -> Client:
    """A client that sends ``Authorization: Token <key>`` with a fresh token for ``user`` at
    ``organisation``, and no session."""
    return Client(headers={"Authorization": f"Token {api_token(user, organisation, kind)}"})


def post(client: Client, url: str, body: dict | None = None):
    return client.post(url, body or {}, content_type="application/json")


def put(client: Client, url: str, body: dict):
    return client.put(url, body, content_type="application/json")


def assert_error(response, status: int, code: str) -> dict:
    """Every refusal is JSON with a human-readable ``detail`` and a machine-readable ``code``."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["detail"], str)
    assert body["detail"].strip()
    assert body["code"] == code, body
    return body


def answer_value(question: Question):
    """What the applicant types: a sub-set scope with its description, a recognisable text for
    free-text answers (it must never reach the public), a compliant value otherwise."""
    if question.qid == "A2.1":
        return "subset"
    if question.qid == "A2.2":
        return SCOPE_TEXT
    if question.rules.kind == "text":
        return SECRET_ANSWER
    return samples.compliant_value(question.rules)


def answer_everything(client: Client, assessment_id: int) -> None:
    listed = client.get(f"/api/assessments/{assessment_id}/answers/")
    assert listed.status_code == 200
    questions = {
        q.qid: q
        for q in Question.objects.filter(catalogue__assessments=assessment_id).select_related(
            "catalogue"
        )
    }
    for row in listed.json():
        saved = put(
            client,
            f"/api/assessments/{assessment_id}/answers/{row['question']}/",
            {"value": answer_value(questions[row["question"]]), "version": row["version"]},
        )
        assert saved.status_code == 200, (row["question"], saved.content)


def start(client: Client, world) -> dict:
    created = post(
        client,
        "/api/assessments/",
        {"organisation": world.bank.pk, "certification_body": world.body.pk, "level": "CE"},
    )
    assert created.status_code == 201, created.content
    return created.json()


# --- Service endpoints -------------------------------------------------------------------------


def test_healthz_answers_ok():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_schema_is_openapi_3_with_every_endpoint_and_the_token_scheme():
    response = Client().get("/api/schema/")
    assert response.status_code == 200
    content_type = response["Content-Type"]
    text = response.content.decode()
    document = json.loads(text) if "json" in content_type else yaml.safe_load(text)
    assert str(document["openapi"]).startswith("3.")
    paths = document["paths"]
    expected = {
        "/api/organisations/": "get",
        "/api/organisations/{id}/": "get",
        "/api/assessments/": "post",
        "/api/assessments/{id}/": "get",
        "/api/assessments/{id}/answers/": "get",
        "/api/assessments/{id}/answers/{qid}/": "put",
        "/api/assessments/{id}/submit/": "post",
        "/api/assessments/{id}/marks/": "post",
        "/api/assessments/{id}/clarification/": "post",
        "/api/assessments/{id}/respond/": "post",
        "/api/assessments/{id}/decision/": "post",
        "/api/certificates/": "get",
        "/api/certificates/{number}/": "get",
        "/api/public/certificates/{number}": "get",
    }
    for path, method in expected.items():
        assert method in paths.get(path, {}), f"{method.upper()} {path} missing from the schema"
    scheme = document["components"]["securitySchemes"]["tokenAuth"]
    assert scheme == {**scheme, "type": "apiKey", "in": "header", "name": "Authorization"}
    assert {"tokenAuth": []} in paths["/api/assessments/{id}/submit/"]["post"]["security"]
    # Verification is public: the operation accepts an anonymous caller.
    assert {} in paths["/api/public/certificates/{number}"]["get"]["security"]


# --- Tokens and scoping ------------------------------------------------------------------------


def test_requests_without_a_valid_token_are_refused_with_a_reason(world):
    assert_error(Client().get("/api/organisations/"), 401, "not_authenticated")
    bad = Client(headers={"Authorization": "Token mamori_not-a-real-key"})
    assert_error(bad.get("/api/organisations/"), 401, "authentication_failed")
    malformed = Client(headers={"Authorization": "Token two parts"})
    assert_error(malformed.get("/api/organisations/"), 401, "authentication_failed")


def test_agent_tokens_cannot_use_the_scheme_api(world):
    agent = api(world.admin, world.bank, kind=TokenKind.AGENT)
    assert_error(agent.get("/api/organisations/"), 403, "permission_denied")


def test_organisations_are_scoped_to_the_token_organisation(world):
    # Alice also administers the other bank; a token for her bank sees only her bank.
    Membership.objects.create(
        user=world.admin, organisation=world.other_bank, role=Role.APPLICANT_ADMIN
    )
    client = api(world.admin, world.bank)
    listed = client.get("/api/organisations/")
    assert listed.status_code == 200
    body = listed.json()
    assert body["count"] == 1
    assert body["results"] == [
        {
            "id": world.bank.pk,
            "name_ja": "テスト銀行",
            "name_en": "Test Bank",
            "category": "financial_institution",
            "corporate_number": "",
            "country": "JP",
            "identity_verified": True,
        }
    ]
    assert client.get(f"/api/organisations/{world.bank.pk}/").json()["name_en"] == "Test Bank"
    assert_error(client.get(f"/api/organisations/{world.other_bank.pk}/"), 404, "not_found")
    assert_error(client.get("/api/organisations/not-a-number/"), 404, "not_found")


def test_assessors_see_their_body_and_the_organisations_it_reviews(world):
    client = api(world.assessor, world.body)
    assert [o["id"] for o in client.get("/api/organisations/").json()["results"]] == [world.body.pk]
    # A draft is not the body's business yet; a submission is.
    world.start()
    assert client.get("/api/organisations/").json()["count"] == 1
    world.submitted()
    ids = [o["id"] for o in client.get("/api/organisations/").json()["results"]]
    assert ids == [world.bank.pk, world.body.pk]
    assert client.get(f"/api/organisations/{world.bank.pk}/").status_code == 200
    assert_error(client.get(f"/api/organisations/{world.other_bank.pk}/"), 404, "not_found")


def test_outsiders_and_other_tenants_get_404_for_assessments(world):
    draft = world.start()
    submitted = world.submitted()
    # A token of a user without any membership there sees nothing at all.
    outsider = api(world.outsider, world.bank)
    assert outsider.get("/api/organisations/").json()["count"] == 0
    assert outsider.get("/api/assessments/").json()["count"] == 0
    for client in (
        outsider,
        api(world.other_admin, world.other_bank),
        api(world.other_assessor, world.other_body),
    ):
        for assessment in (draft, submitted):
            assert_error(client.get(f"/api/assessments/{assessment.pk}/"), 404, "not_found")
            assert_error(client.get(f"/api/assessments/{assessment.pk}/answers/"), 404, "not_found")
    # The bank's own assessor sees the submission, never the draft.
    assessor = api(world.assessor, world.body)
    assert [a["id"] for a in assessor.get("/api/assessments/").json()["results"]] == [submitted.pk]
    assert_error(assessor.get(f"/api/assessments/{draft.pk}/"), 404, "not_found")


# --- The workflow ------------------------------------------------------------------------------


def test_workflow_from_new_assessment_to_public_certificate(world):
    applicant = api(world.admin, world.bank)
    created = start(applicant, world)
    assessment_id = created["id"]
    assert created["state"] == State.DRAFT
    assert created["organisation"] == world.bank.pk
    assert created["catalogue"] == CURRENT
    assert created["declaration"]["valid"] is False

    answers = applicant.get(f"/api/assessments/{assessment_id}/answers/").json()
    assert len(answers) == Question.objects.filter(catalogue__version=CURRENT).count()
    assert all(row["value"] is None and row["version"] == 0 for row in answers)

    answer_everything(applicant, assessment_id)
    rows = {
        row["question"]: row
        for row in applicant.get(f"/api/assessments/{assessment_id}/answers/").json()
    }
    assert rows["A2.2"]["value"] == SCOPE_TEXT
    assert rows["A2.2"]["version"] == 1
    assert rows["A9.2"]["value"] == samples.compliant_value(
        Question.objects.get(catalogue__version=CURRENT, qid="A9.2").rules
    )

    # Versions make concurrent edits visible: the stale one is refused, nothing is written.
    changed = put(
        applicant, f"/api/assessments/{assessment_id}/answers/A9.2/", {"value": 3, "version": 1}
    )
    assert changed.status_code == 200
    assert changed.json()["version"] == 2
    stale = put(
        applicant, f"/api/assessments/{assessment_id}/answers/A9.2/", {"value": 5, "version": 1}
    )
    assert_error(stale, 409, "conflict")
    assert Answer.objects.get(assessment_id=assessment_id, question__qid="A9.2").value == 3

    # Submitting needs the board declaration, for the answers as they are now.
    assert_error(
        post(applicant, f"/api/assessments/{assessment_id}/submit/"), 409, "declaration_missing"
    )
    world.sign(Assessment.objects.get(pk=assessment_id))
    submitted = post(applicant, f"/api/assessments/{assessment_id}/submit/")
    assert submitted.status_code == 200, submitted.content
    body = submitted.json()
    assert body["state"] == State.SUBMITTED
    assert body["declaration"]["valid"] is True
    assert body["declaration"]["name"] == "Bob Board"
    assert_error(
        post(applicant, f"/api/assessments/{assessment_id}/submit/"), 409, "already_submitted"
    )
    locked = put(
        applicant, f"/api/assessments/{assessment_id}/answers/A9.2/", {"value": 1, "version": 2}
    )
    assert_error(locked, 409, "wrong_state")

    assigned = {user.username: user for user in (world.assessor, world.assessor2)}[body["assessor"]]
    assessor = api(assigned, world.body)
    seen = {
        row["question"]: row
        for row in assessor.get(f"/api/assessments/{assessment_id}/answers/").json()
    }
    assert seen["A9.2"]["value"] == 3
    assert seen["A9.2"]["mark"] is None

    scored = [
        q.qid
        for q in Question.objects.filter(catalogue__version=CURRENT).order_by("position")
        if q.is_scored
    ]
    for qid in scored:
        flagged = qid == "A9.2"
        marked = post(
            assessor,
            f"/api/assessments/{assessment_id}/marks/",
            {
                "question": qid,
                "verdict": Verdict.NEEDS_INFORMATION if flagged else Verdict.COMPLIANT,
                "comment": ASSESSOR_COMMENT if flagged else "",
            },
        )
        assert marked.status_code == 200, (qid, marked.content)
        assert marked.json()["mark"]["round"] == 1
    assert assessor.get(f"/api/assessments/{assessment_id}/").json()["state"] == State.IN_REVIEW

    clarification = post(assessor, f"/api/assessments/{assessment_id}/clarification/")
    assert clarification.status_code == 200
    assert clarification.json()["state"] == State.CLARIFICATION
    assert clarification.json()["feedback_due"] is not None

    # The applicant sees the question and the comment, and may change only that answer.
    flagged_row = {
        row["question"]: row
        for row in applicant.get(f"/api/assessments/{assessment_id}/answers/").json()
    }["A9.2"]
    assert flagged_row["mark"] == {
        "verdict": Verdict.NEEDS_INFORMATION,
        "comment": ASSESSOR_COMMENT,
        "round": 1,
    }
    other = put(
        applicant, f"/api/assessments/{assessment_id}/answers/A9.1/", {"value": "yes", "version": 1}
    )
    assert_error(other, 409, "not_flagged")
    fixed = put(
        applicant, f"/api/assessments/{assessment_id}/answers/A9.2/", {"value": 1, "version": 2}
    )
    assert fixed.status_code == 200
    assert fixed.json()["version"] == 3
    responded = post(applicant, f"/api/assessments/{assessment_id}/respond/")
    assert responded.status_code == 200
    assert responded.json()["state"] == State.IN_REVIEW

    remarked = post(
        assessor,
        f"/api/assessments/{assessment_id}/marks/",
        {"question": "A9.2", "verdict": Verdict.COMPLIANT},
    )
    assert remarked.status_code == 200
    assert remarked.json()["mark"]["verdict"] == Verdict.COMPLIANT
    decided = post(
        assessor,
        f"/api/assessments/{assessment_id}/decision/",
        {"outcome": "pass", "summary": DECISION_SUMMARY},
    )
    assert decided.status_code == 201, decided.content
    assert decided.json()["outcome"] == "pass"
    assert decided.json()["round"] == 1
    assert_error(
        post(assessor, f"/api/assessments/{assessment_id}/decision/", {"outcome": "pass"}),
        409,
        "already_decided",
    )
    assert applicant.get(f"/api/assessments/{assessment_id}/").json()["state"] == State.PASSED

    certificates = applicant.get("/api/certificates/").json()["results"]
    assert len(certificates) == 1
    certificate = certificates[0]
    assert certificate["assessment_id"] == assessment_id
    assert certificate["status"] == "valid"
    assert certificate["revoked_at"] is None
    assert certificate["scope"] == SCOPE_TEXT
    number = certificate["number"]
    assert applicant.get(f"/api/certificates/{number}/").json()["number"] == number
    assert assessor.get(f"/api/certificates/{number}/").status_code == 200
    assert_error(
        api(world.other_admin, world.other_bank).get(f"/api/certificates/{number}/"),
        404,
        "not_found",
    )

    public = Client().get(f"/api/public/certificates/{number}")
    assert public.status_code == 200
    data = public.json()
    assert set(data) >= PUBLIC_KEYS
    issued = timezone.localdate()
    assert data["number"] == number
    assert data["organisation"] == "テスト銀行"
    assert data["level"] == "CE"
    assert data["scope"] == SCOPE_TEXT
    assert data["status"] == "valid"
    assert data["issued"] == issued.isoformat()
    assert dt.date.fromisoformat(data["expires"]) == issued + relativedelta(months=12)

    # Nothing confidential: no answers, no comments, no people.
    text = public.content.decode()
    for secret in (
        SECRET_ANSWER,
        ASSESSOR_COMMENT,
        DECISION_SUMMARY,
        "Bob Board",
        "Director",
        "@example.jp",
    ):
        assert secret not in text
    people = {
        user.username for user in (world.admin, world.signatory, world.assessor, world.assessor2)
    }
    assert not people & {value for value in data.values() if isinstance(value, str)}
    assert not {"answers", "assessor", "declaration", "organisation_id", "assessment_id"} & set(
        data
    )


def test_failed_assessment_is_resubmitted_through_the_api(world):
    assessment = world.mark_all(world.submitted(failing={"A6.4"}))
    assessor = api(world.assessor, world.body)
    assert_error(
        post(assessor, f"/api/assessments/{assessment.pk}/decision/", {"outcome": "pass"}),
        409,
        "cannot_pass",
    )
    failed = post(
        assessor,
        f"/api/assessments/{assessment.pk}/decision/",
        {"outcome": "fail", "summary": "A6.4"},
    )
    assert failed.status_code == 201
    assert failed.json()["outcome"] == "fail"
    assert not Certificate.objects.filter(assessment=assessment).exists()

    applicant = api(world.admin, world.bank)
    version = Answer.objects.get(assessment=assessment, question__qid="A6.4").version
    fixed = put(
        applicant,
        f"/api/assessments/{assessment.pk}/answers/A6.4/",
        {"value": "yes", "version": version},
    )
    assert fixed.status_code == 200, fixed.content
    # The corrected answers need a fresh board declaration before they go back.
    assert_error(
        post(applicant, f"/api/assessments/{assessment.pk}/resubmit/"), 409, "declaration_missing"
    )
    world.sign(assessment)
    resubmitted = post(applicant, f"/api/assessments/{assessment.pk}/resubmit/")
    assert resubmitted.status_code == 200
    assert resubmitted.json()["state"] == State.RESUBMITTED
    assert resubmitted.json()["round"] == 2
    assert_error(post(applicant, f"/api/assessments/{assessment.pk}/resubmit/"), 409, "wrong_state")


# --- Public verification -----------------------------------------------------------------------


def test_public_verification_shows_expired_and_revoked_certificates_as_such(world):
    valid = world.passed().certificate
    expired = world.passed().certificate
    revoked = world.passed().certificate
    today = timezone.localdate()
    Certificate.objects.filter(pk=expired.pk).update(
        issued_on=today - dt.timedelta(days=400), expires_on=today - dt.timedelta(days=35)
    )
    certificate_services.revoke(
        world.assessor, world.access(world.assessor), revoked.pk, "Scope misrepresented"
    )
    anonymous = Client()
    for certificate, status in ((valid, "valid"), (expired, "expired"), (revoked, "revoked")):
        response = anonymous.get(f"/api/public/certificates/{certificate.number}")
        assert response.status_code == 200
        assert response.json()["status"] == status
    # Typed by hand from a paper certificate: case and surrounding blanks do not matter.
    typed = anonymous.get(f"/api/public/certificates/{expired.number.lower()}")
    assert typed.json()["number"] == expired.number
    assert (
        "Scope misrepresented"
        not in anonymous.get(f"/api/public/certificates/{revoked.number}").content.decode()
    )

    listed = api(world.admin, world.bank).get("/api/certificates/").json()["results"]
    assert {row["number"]: row["status"] for row in listed} == {
        valid.number: "valid",
        expired.number: "expired",
        revoked.number: "revoked",
    }
    assert next(row for row in listed if row["number"] == revoked.number)["revoked_at"]


def test_unknown_certificate_number_is_a_json_404():
    assert_error(Client().get("/api/public/certificates/CE-2026-NOTREAL0"), 404, "not_found")
    assert_error(Client().get("/api/public/certificates/%3Cscript%3E"), 404, "not_found")


# --- Refusals: a reason and a code, nothing written --------------------------------------------


def test_invalid_input_is_a_400_with_the_field(world):
    applicant = api(world.admin, world.bank)
    body = assert_error(
        post(
            applicant,
            "/api/assessments/",
            {"organisation": "abc", "certification_body": world.body.pk},
        ),
        400,
        "invalid",
    )
    assert "organisation" in body["errors"]
    body = assert_error(
        post(
            applicant,
            "/api/assessments/",
            {"organisation": world.bank.pk, "certification_body": world.bank.pk},
        ),
        400,
        "invalid",
    )
    assert body["field"] == "certification_body"
    not_json = applicant.post("/api/assessments/", "{not json", content_type="application/json")
    assert_error(not_json, 400, "parse_error")
    assert not Assessment.objects.exists()

    assessment = world.start()
    url = f"/api/assessments/{assessment.pk}/answers"
    body = assert_error(
        put(applicant, f"{url}/Z9.9/", {"value": "yes", "version": 0}), 400, "unknown_question"
    )
    assert body["field"] == "question"
    body = assert_error(
        put(applicant, f"{url}/A6.4/", {"value": 42, "version": 0}), 400, "not_a_choice"
    )
    assert body["field"] == "value"
    body = assert_error(
        put(applicant, f"{url}/A9.2/", {"value": "weekly", "version": 0}), 400, "not_a_number"
    )
    assert body["field"] == "value"
    body = assert_error(put(applicant, f"{url}/A6.4/", {"value": "yes"}), 400, "invalid")
    assert "version" in body["errors"]
    assert not Answer.objects.filter(assessment=assessment).exists()


def test_forbidden_actions_are_a_403_with_a_reason(world):
    submitted = world.submitted()
    # An assessor may read the answers but never change them.
    assessor = api(world.assessor, world.body)
    refused = put(
        assessor, f"/api/assessments/{submitted.pk}/answers/A6.4/", {"value": "no", "version": 1}
    )
    assert_error(refused, 403, "not_allowed")
    # A contributor edits answers but cannot start or submit.
    contributor = api(world.contributor, world.bank)
    started = post(
        contributor,
        "/api/assessments/",
        {"organisation": world.bank.pk, "certification_body": world.body.pk},
    )
    assert_error(started, 403, "not_allowed")
    draft = world.start()
    world.answer_all(draft)
    world.sign(draft)
    assert_error(post(contributor, f"/api/assessments/{draft.pk}/submit/"), 403, "not_allowed")
    assert Assessment.objects.get(pk=draft.pk).state == State.DRAFT


def test_assessor_session_without_the_second_factor_is_refused_as_json(world):
    response = client_for(world.assessor, verified=False).get("/api/assessments/")
    assert_error(response, 403, "mfa_required")


def test_decisions_and_marks_validate_their_input(world):
    assessment = world.mark_all(world.submitted())
    assessor = api(world.assessor, world.body)
    url = f"/api/assessments/{assessment.pk}"
    body = assert_error(post(assessor, f"{url}/decision/", {"outcome": "maybe"}), 400, "invalid")
    assert "outcome" in body["errors"]
    body = assert_error(
        post(assessor, f"{url}/marks/", {"question": "A6.4", "verdict": Verdict.NON_COMPLIANT}),
        400,
        "invalid",
    )
    assert body["field"] == "comment"
    body = assert_error(
        post(assessor, f"{url}/marks/", {"question": "A6.4", "verdict": "great"}), 400, "invalid"
    )
    assert "verdict" in body["errors"]
    # An assessor of another body does not even learn that the assessment exists.
    other = api(world.other_assessor, world.other_body)
    assert_error(post(other, f"{url}/decision/", {"outcome": "pass"}), 404, "not_found")
    assert Assessment.objects.get(pk=assessment.pk).state == State.IN_REVIEW
