"""Appeals against a failed assessment: the applicant's administrator lodges one with grounds within
the window, a second assessor of the same certification body (never the one who decided) upholds
or overturns the fail, an overturn issues the certificate, and every step is in the audit trail and
on the assessment page. Refusals and bad input write nothing.

The scene is built once per module inside a transaction rolled back at the end; each test runs in a
savepoint of it, so every test and every matrix cell starts from the same state.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pytest
from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.contrib.messages import constants as message_levels
from django.contrib.messages import get_messages
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import formats, timezone, translation

from mamori.assessments import appeals, permissions, services
from mamori.assessments.models import (
    Answer,
    Appeal,
    Assessment,
    Decision,
    Outcome,
    State,
    Verdict,
)
from mamori.audit.models import AuditEvent
from mamori.audit.services import verify_trail
from mamori.catalogue.services import sync_catalogue
from mamori.certificates.models import Certificate
from mamori.core.errors import MamoriError, NotAllowed, WrongState
from mamori.core.workdays import add_working_days
from tests.conftest import World, api_token, client_for, newest_bundled

pytestmark = pytest.mark.django_db

GROUNDS = "A4.2: the firewall export we sent shows every device behind the boundary firewall."
SECRET = "appeal-grounds-5d1e"  # in the pending appeal's grounds: a 404 must never show it
# The question the assessor judged non-compliant (an ordinary judgement, open to appeal) and the
# auto-fail question (no judgement can pass it).
JUDGED_QID = "A4.2"
AUTO_QID = "A6.4"

ROLES = (
    "applicant_admin",
    "contributor",
    "signatory",
    "deciding_assessor",
    "second_assessor",
    "other_body_assessor",
    "scheme_owner",
    "other_org_admin",
    "outsider",
    "anonymous",
)
PERSONA = {
    "applicant_admin": ("admin", "bank"),
    "contributor": ("contributor", "bank"),
    "signatory": ("signatory", "bank"),
    "deciding_assessor": ("assessor", "body"),
    "second_assessor": ("assessor2", "body"),
    "other_body_assessor": ("other_assessor", "other_body"),
    "scheme_owner": ("owner", "secretariat"),
    "other_org_admin": ("other_admin", "other_bank"),
    "outsider": ("outsider", "bank"),
}


@dataclass
class Scene:
    world: World
    failed: Assessment  # failed on the assessor's judgement of A4.2, not appealed
    pending: Assessment  # the same kind of fail, appealed by alice
    automatic: Assessment  # failed on the auto-fail answer A6.4, appealed by alice
    sessions: dict[str, str]
    tokens: dict[str, str]

    def user(self, role: str):
        return None if role == "anonymous" else getattr(self.world, PERSONA[role][0])

    def client(self, role: str, *, api: bool = False) -> Client:
        client = Client(HTTP_ACCEPT_LANGUAGE="en")
        if role != "anonymous":
            if api:
                client.defaults["HTTP_AUTHORIZATION"] = f"Token {self.tokens[role]}"
            else:
                client.cookies[settings.SESSION_COOKIE_NAME] = self.sessions[role]
        return client


def _failed_on_judgement(world: World) -> Assessment:
    """Every answer compliant by the catalogue's rules, but ada judged A4.2 non-compliant (the
    evidence did not convince her) and failed it."""
    assessment = world.mark_all(world.submitted(), {JUDGED_QID: Verdict.NON_COMPLIANT})
    services.decide(world.assessor, world.access(world.assessor), assessment.pk, Outcome.FAIL, "")
    assessment.refresh_from_db()
    return assessment


def build_scene() -> Scene:
    sync_catalogue(newest_bundled())
    world = World()
    failed = _failed_on_judgement(world)
    pending = _failed_on_judgement(world)
    appeals.lodge(world.admin, world.access(world.admin), pending.pk, f"{GROUNDS} {SECRET}")
    automatic = world.failed(AUTO_QID)
    appeals.lodge(world.admin, world.access(world.admin), automatic.pk, "The patch was applied.")
    for assessment in (failed, pending, automatic):
        assessment.refresh_from_db()
        assert (assessment.state, assessment.assessor) == (State.FAILED, world.assessor)
    sessions, tokens = {}, {}
    for role, (persona, organisation) in PERSONA.items():
        user = getattr(world, persona)
        sessions[role] = client_for(user).cookies[settings.SESSION_COOKIE_NAME].value
        tokens[role] = api_token(user, getattr(world, organisation))
    return Scene(world, failed, pending, automatic, sessions, tokens)


@pytest.fixture(scope="module")
def scene(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield build_scene()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def fingerprint() -> tuple:
    """Everything an appeal request could write."""
    return (
        tuple(Assessment.objects.order_by("pk").values_list("pk", "state", "feedback_due")),
        tuple(Appeal.objects.order_by("pk").values_list("pk", "status", "reviewer", "reason")),
        Decision.objects.count(),
        Certificate.objects.count(),
        AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first(),
    )


def fresh(assessment: Assessment) -> Assessment:
    return Assessment.objects.get(pk=assessment.pk)


# --- Who may do what, as a matrix (tests/security/test_authorization_matrix.py style) -------------
# done: it worked (and its effect is checked); login: anonymous page request sent to log in;
# a number: exactly that status, and nothing was written.
# fmt: off
#                                 adm  con  sig  dec  2nd  oba  own  ooa  out  anon
MATRIX = {
    "detail:pending":            "200  200  200  200  200  404  404  404  404  login",
    "appeal-page:pending":       "200  200  200  200  200  404  404  404  404  login",
    "lodge:pending":             "409  403  403  403  403  404  404  404  404  login",
    "lodge:failed":              "done 403  403  403  403  404  404  404  404  login",
    "api-lodge:pending":         "409  403  403  403  403  404  404  404  404  401",
    "api-lodge:failed":          "done 403  403  403  403  404  404  404  404  401",
    "review-page:pending":       "404  404  404  200  200  404  404  404  404  login",
    "decide:pending":            "404  404  404  403  done 404  404  404  404  login",
    "api-decide:pending":        "403  403  403  403  done 404  404  404  404  401",
    "api-read:pending":          "200  200  200  200  200  404  404  404  404  401",
}
# fmt: on


def _cells():
    for name, cells in MATRIX.items():
        values = cells.split()
        assert len(values) == len(ROLES), name
        for role, expected in zip(ROLES, values, strict=True):
            yield pytest.param(name, role, expected, id=f"{name}-{role}")


def _request(scene: Scene, name: str, role: str):
    action, target = name.split(":")
    assessment = getattr(scene, target)
    api = action.startswith("api")
    client = scene.client(role, api=api)
    page = f"/assessments/{assessment.pk}"
    endpoint = f"/api/assessments/{assessment.pk}"
    if action == "detail":
        return client.get(reverse("assessments:detail", args=[assessment.pk]))
    if action == "appeal-page":
        return client.get(f"{page}/appeal/")
    if action == "lodge":
        return client.post(f"{page}/appeal/", {"grounds": "matrix grounds"})
    if action == "api-lodge":
        body = json.dumps({"grounds": "matrix grounds"})
        return client.post(f"{endpoint}/appeal", body, content_type="application/json")
    if action == "review-page":
        return client.get(f"{page}/appeal/decide/")
    if action == "decide":
        return client.post(
            f"{page}/appeal/decide/", {"outcome": "overturn", "reason": "matrix reason"}
        )
    if action == "api-decide":
        body = json.dumps({"outcome": "overturn", "reason": "matrix reason"})
        return client.post(f"{endpoint}/appeal-decision", body, content_type="application/json")
    return client.get(endpoint)


def _lodged(scene: Scene, assessment: Assessment, user) -> None:
    appeal = Appeal.objects.get(assessment=assessment)
    assert (appeal.status, appeal.grounds, appeal.lodged_by) == ("pending", "matrix grounds", user)
    assert appeal.resubmission_suspended is True
    assert fresh(assessment).feedback_due is None


def _overturned(scene: Scene, assessment: Assessment, user) -> None:
    appeal = Appeal.objects.get(assessment=assessment)
    assert (appeal.status, appeal.reviewer, appeal.reason) == ("overturned", user, "matrix reason")
    assert fresh(assessment).state == State.PASSED
    certificate = Certificate.objects.get(assessment=assessment)
    assert certificate.issued_by == user
    actions = list(AuditEvent.objects.order_by("-seq").values_list("action", flat=True)[:3])
    assert actions == ["certificate.issued", "assessment.passed_on_appeal", "appeal.overturned"]


@pytest.mark.parametrize(("name", "role", "expected"), list(_cells()))
def test_appeal_matrix(scene, name, role, expected):
    before = fingerprint()
    response = _request(scene, name, role)
    status = response.status_code
    what = f"{role} got {status}, expected {expected}"
    assessment = getattr(scene, name.split(":")[1])
    if expected == "done":
        api = name.startswith("api")
        assert status == ({"api-lodge": 201, "api-decide": 200}[name.split(":")[0]] if api else 302)
        if not api:
            levels = {m.level for m in get_messages(response.wsgi_request)}
            assert message_levels.SUCCESS in levels, what
        effect = _lodged if "lodge" in name else _overturned
        effect(scene, assessment, scene.user(role))
        return
    if expected == "login":
        assert status == 302, what
        assert response.url.startswith("/accounts/login/?next="), response.url
    else:
        assert status == int(expected), what
        body = response.content.decode()
        if status == 404:
            assert SECRET not in body, "the 404 shows the grounds"
        elif status == 200 and name.endswith("pending"):
            assert SECRET in body, "who may see the appeal finds its grounds"
        if name.startswith("api") and status >= 400:
            assert response.json()["detail"], "an API refusal always says why"
    assert fingerprint() == before, f"{what}, but something was written"


# --- The journey through the pages -----------------------------------------------------------------


def test_an_overturned_appeal_passes_and_issues_the_certificate(scene):
    world, assessment = scene.world, scene.failed
    alice, ada, abe = (scene.client(role) for role in ROLES[:1] + ROLES[3:5])
    detail = reverse("assessments:detail", args=[assessment.pk])
    due = appeals.appeal_due(assessment, Decision.objects.get(assessment=assessment))

    page = alice.get(detail).content.decode()
    assert reverse("assessments:appeal", args=[assessment.pk]) in page
    assert f"appeal it until {_date(due)}" in page
    form = alice.get(reverse("assessments:appeal", args=[assessment.pk])).content.decode()
    assert 'id="lodge-appeal"' in form
    lodged = alice.post(reverse("assessments:appeal", args=[assessment.pk]), {"grounds": GROUNDS})
    assert lodged.status_code == 302

    # Both sides see the pending appeal, its grounds and its audit trail on the assessment page.
    for client in (alice, ada, abe):
        page = client.get(detail).content.decode()
        assert "Waiting for a second assessor" in page
        assert GROUNDS in page
        assert "Appeal lodged" in page
    page = alice.get(detail).content.decode()
    assert "can no longer be resubmitted" not in page  # no dead end while the appeal is pending
    assert "is reviewing the appeal" in page
    # Ada decided the fail: she is told another assessor decides, and offered nothing to click.
    page = ada.get(detail).content.decode()
    assert "another assessor of the certification body must review it" in page
    assert 'id="appeal-review-link"' not in page
    assert (
        'id="decide-appeal"'
        not in ada.get(f"/assessments/{assessment.pk}/appeal/decide/").content.decode()
    )
    # Abe finds it in his queue and reviews it.
    queue = abe.get(reverse("assessments:queue")).content.decode()
    assert reverse("assessments:appeal_decide", args=[assessment.pk]) in queue
    review = abe.get(reverse("assessments:appeal_decide", args=[assessment.pk])).content.decode()
    assert GROUNDS in review
    assert f"#q-{JUDGED_QID}" in review
    decided = abe.post(
        reverse("assessments:appeal_decide", args=[assessment.pk]),
        {"outcome": "overturn", "reason": "The firewall export is sufficient evidence."},
    )
    assert decided.status_code == 302
    assert decided.url == detail

    assessment.refresh_from_db()
    assert assessment.state == State.PASSED
    certificate = Certificate.objects.get(assessment=assessment)
    today = timezone.localdate()
    assert (certificate.issued_by, certificate.issued_on) == (world.assessor2, today)
    assert certificate.expires_on == today + relativedelta(months=12)
    assert certificate.catalogue_version == newest_bundled().version
    page = alice.get(detail).content.decode()
    assert "Overturned: passed" in page
    assert "The firewall export is sufficient evidence." in page
    assert certificate.number in page
    for step in ("Appeal lodged", "Appeal decided: overturned", "Assessment passed on appeal"):
        assert step in page
    events = AuditEvent.objects.filter(object_type="assessments.appeal").order_by("seq")
    appeal = Appeal.objects.get(assessment=assessment)
    assert [(e.action, e.actor) for e in events.filter(object_id=str(appeal.pk))] == [
        ("appeal.lodged", world.admin),
        ("appeal.overturned", world.assessor2),
    ]
    assert verify_trail() is None
    # Decided once: neither a second appeal nor a second decision.
    with pytest.raises(WrongState):
        appeals.decide(world.assessor2, world.access(world.assessor2), assessment.pk, "uphold", "x")


def _date(day: dt.date) -> str:
    """A date as the English pages print it."""
    with translation.override("en"):
        return formats.date_format(day)


def test_an_upheld_appeal_keeps_the_fail_and_gives_a_fresh_resubmission_window(scene):
    world, assessment = scene.world, scene.automatic
    abe = world.access(world.assessor2)
    before = fingerprint()
    # The catalogue fails this answer by itself: no judgement can overturn it.
    with pytest.raises(WrongState) as refused:
        appeals.decide(world.assessor2, abe, assessment.pk, "overturn", "The patch is in.")
    assert refused.value.code == "auto_fail"
    assert AUTO_QID in str(refused.value.message)
    assert fingerprint() == before
    api = scene.client("second_assessor", api=True)
    upheld = api.post(
        f"/api/assessments/{assessment.pk}/appeal-decision",
        json.dumps({"outcome": "uphold", "reason": "A6.4 fails automatically."}),
        content_type="application/json",
    )
    assert upheld.status_code == 200, upheld.content
    assert upheld.json()["status"] == "upheld"
    assert upheld.json()["reviewer"] == world.assessor2.username
    assessment.refresh_from_db()
    assert assessment.state == State.FAILED
    # The appeal froze a resubmission window that was open: a new one starts now.
    window = assessment.catalogue.settings["resubmission_working_days"]
    assert assessment.feedback_due == add_working_days(timezone.localdate(), window)
    assert permissions.can_resubmit(world.access(world.admin), assessment)
    assert permissions.can_edit(world.access(world.admin), assessment)
    appeal = Appeal.objects.get(assessment=assessment)
    event = AuditEvent.objects.latest("seq")
    assert (event.action, event.object_id, event.details["resubmit_by"]) == (
        "appeal.upheld",
        str(appeal.pk),
        assessment.feedback_due.isoformat(),
    )
    read = scene.client("applicant_admin", api=True).get(f"/api/assessments/{assessment.pk}")
    assert read.json()["appeal"]["status"] == "upheld"
    assert read.json()["appeal"]["reason"] == "A6.4 fails automatically."


def test_answers_are_frozen_while_an_appeal_is_pending(scene):
    world, assessment = scene.world, scene.pending
    alice = world.access(world.admin)
    answer = Answer.objects.get(assessment=assessment, question__qid=JUDGED_QID)
    before = fingerprint()
    assert not permissions.can_edit(alice, assessment)
    with pytest.raises(WrongState):
        services.save_answer(world.admin, alice, assessment.pk, JUDGED_QID, "yes", answer.version)
    with pytest.raises(WrongState) as refused:
        services.resubmit(world.admin, alice, assessment.pk)
    assert refused.value.code == "appeal_pending"
    assert fingerprint() == before


def test_an_appeal_comes_within_the_window_and_before_answers_are_corrected(scene):
    world, assessment = scene.world, scene.failed
    alice = world.access(world.admin)
    decision = Decision.objects.get(assessment=assessment)
    # Ten working days from the decision (the catalogue's appeal_working_days).
    assert assessment.catalogue.settings["appeal_working_days"] == 10
    assert appeals.appeal_due(assessment, decision) == add_working_days(
        timezone.localdate(decision.decided_at), 10
    )
    Decision.objects.filter(pk=decision.pk).update(
        decided_at=decision.decided_at - dt.timedelta(days=30)
    )
    before = fingerprint()
    with pytest.raises(WrongState) as refused:
        appeals.lodge(world.admin, alice, assessment.pk, GROUNDS)
    assert refused.value.code == "appeal_window_closed"
    assert fingerprint() == before

    Decision.objects.filter(pk=decision.pk).update(decided_at=decision.decided_at)
    answer = Answer.objects.get(assessment=assessment, question__qid=JUDGED_QID)
    services.save_answer(world.admin, alice, assessment.pk, JUDGED_QID, "no", answer.version)
    before = fingerprint()
    with pytest.raises(WrongState) as refused:
        appeals.lodge(world.admin, alice, assessment.pk, GROUNDS)
    assert refused.value.code == "answers_changed"
    assert fingerprint() == before


def test_the_default_window_for_catalogues_without_the_setting(scene):
    assessment = fresh(scene.failed)
    decision = Decision.objects.get(assessment=assessment)
    assessment.catalogue.settings = {
        k: v for k, v in assessment.catalogue.settings.items() if k != "appeal_working_days"
    }
    assert appeals.appeal_working_days(assessment) == appeals.DEFAULT_APPEAL_WORKING_DAYS == 10
    assessment.catalogue.settings["appeal_working_days"] = 3
    assert appeals.appeal_due(assessment, decision) == add_working_days(
        timezone.localdate(decision.decided_at), 3
    )


def test_the_deciding_assessor_and_other_roles_are_refused_with_a_reason(scene):
    world, assessment = scene.world, scene.pending
    before = fingerprint()
    with pytest.raises(NotAllowed) as refused:
        appeals.decide(world.assessor, world.access(world.assessor), assessment.pk, "uphold", "x")
    assert refused.value.code == "same_assessor"
    for persona in ("contributor", "signatory"):
        user = getattr(world, persona)
        with pytest.raises(NotAllowed):
            appeals.lodge(user, world.access(user), scene.failed.pk, GROUNDS)
    assert fingerprint() == before


# --- Bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grounds", "reason"),
    [
        ("", "This field is required."),
        ("   \n ", "This field is required."),
        ("x" * 4001, "Ensure this value has at most 4000 characters"),
        ("bell\x07", "control characters"),
    ],
    ids=["empty", "blank", "too-long", "control-character"],
)
def test_bad_grounds_are_refused_with_a_reason(scene, grounds, reason):
    assessment = scene.failed
    before = fingerprint()
    page = scene.client("applicant_admin").post(
        reverse("assessments:appeal", args=[assessment.pk]), {"grounds": grounds}
    )
    assert page.status_code == 422
    assert reason in page.content.decode()
    api = scene.client("applicant_admin", api=True).post(
        f"/api/assessments/{assessment.pk}/appeal",
        json.dumps({"grounds": grounds}),
        content_type="application/json",
    )
    assert api.status_code == 400, api.content
    assert api.json()["detail"]
    assert fingerprint() == before


@pytest.mark.parametrize(
    "body",
    [
        {"outcome": "maybe", "reason": "x"},
        {"outcome": "overturn"},
        {"outcome": "uphold", "reason": ""},
        {"outcome": ["uphold"], "reason": "x"},
        {"reason": "x"},
    ],
    ids=["unknown-outcome", "no-reason", "empty-reason", "outcome-list", "no-outcome"],
)
def test_bad_decisions_on_an_appeal_are_refused_with_a_reason(scene, body):
    assessment = scene.pending
    before = fingerprint()
    api = scene.client("second_assessor", api=True).post(
        f"/api/assessments/{assessment.pk}/appeal-decision",
        json.dumps(body),
        content_type="application/json",
    )
    assert api.status_code == 400, api.content
    assert api.json()["detail"]
    page = scene.client("second_assessor").post(
        reverse("assessments:appeal_decide", args=[assessment.pk]),
        {key: value for key, value in body.items() if isinstance(value, str)},
    )
    assert page.status_code == 422
    assert 'class="errorlist' in page.content.decode()
    assert fingerprint() == before


def test_the_appeal_reads_in_japanese(scene):
    client = scene.client("applicant_admin")
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "ja"
    page = client.get(reverse("assessments:detail", args=[scene.pending.pk])).content.decode()
    for text in ("異議申立て", "別の審査員の判断待ち", "申立ての理由", "監査ログ", "実施者"):
        assert text in page, text
    assert "Waiting for a second assessor" not in page


def test_grounds_that_cannot_be_stored_are_refused(scene):
    """A lone surrogate is a valid JSON escape but no UTF-8 text: the API's parser refuses it,
    and the service does too for any other caller."""
    world, before = scene.world, fingerprint()
    response = scene.client("applicant_admin", api=True).post(
        f"/api/assessments/{scene.failed.pk}/appeal",
        json.dumps({"grounds": "half a character \ud800"}),
        content_type="application/json",
    )
    assert response.status_code == 400, response.content
    assert response.json()["errors"]["grounds"]
    with pytest.raises(MamoriError) as refused:
        appeals.lodge(world.admin, world.access(world.admin), scene.failed.pk, "half \ud800")
    assert refused.value.field == "grounds"
    assert fingerprint() == before
