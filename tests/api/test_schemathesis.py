"""A schemathesis run against the served OpenAPI schema: whatever the generated request, the API
answers with a reason and never with a server error.

The run goes through the real WSGI application with real organisation tokens (an applicant
administrator's and an assessor's) against a database that holds assessments in every state, so
generated ids, question ids and certificate numbers reach real objects, not only 404s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.utils import timezone
from hypothesis import settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from mamori.assessments import services
from mamori.assessments.models import Answer, Assessment, Outcome, Verdict
from mamori.catalogue import samples
from mamori.catalogue.models import Question
from mamori.catalogue.services import load_bundled
from mamori.certificates import services as certificate_services
from mamori.certificates.models import Certificate
from mamori.wsgi import application
from tests.conftest import World, api_token

pytestmark = pytest.mark.django_db

# The schema exactly as the application serves it, loaded through the WSGI app (no network).
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@dataclass
class Known:
    """Real ids the generators mix into what they draw; filled by the ``seeded`` fixture before
    any case is generated (PostgreSQL sequences are not reset between runs, so ids vary)."""

    assessments: list[int] = field(default_factory=list)
    organisations: list[int] = field(default_factory=list)
    certificates: list[str] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    alerts: list[int] = field(default_factory=list)
    assets: list[int] = field(default_factory=list)
    packs: list[int] = field(default_factory=list)


KNOWN = Known()


def _with_known(value, known: list):
    """Either what schemathesis generated (valid or deliberately invalid) or a real value."""
    if not known:
        return st.just(value)
    return st.one_of(st.just(value), st.sampled_from(known))


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    if not path_parameters:
        return st.just(path_parameters)
    path = context.operation.path
    if path.startswith("/api/organisations/"):
        ids = KNOWN.organisations
    elif path.startswith("/api/earlywarning/alerts/"):
        ids = KNOWN.alerts
    elif path.startswith("/api/earlywarning/assets/"):
        ids = KNOWN.assets
    elif path.startswith("/api/reporting/packs/"):
        ids = KNOWN.packs
    else:
        ids = KNOWN.assessments
    choices = {
        "id": ids,
        "number": KNOWN.certificates,
        "qid": KNOWN.questions,
    }
    strategies = {
        name: _with_known(value, choices.get(name, [])) for name, value in path_parameters.items()
    }
    return st.fixed_dictionaries(strategies)


@schema.hook
def flatmap_body(context, body):
    """Mark bodies name real questions, new assessments real organisations, half of the time."""
    if not isinstance(body, dict):
        return st.just(body)
    strategies = {name: st.just(value) for name, value in body.items()}
    if "question" in body:
        strategies["question"] = _with_known(body["question"], KNOWN.questions)
    for name in ("organisation", "certification_body"):
        if name in body:
            strategies[name] = _with_known(body[name], KNOWN.organisations)
    return st.fixed_dictionaries(strategies)


class States:
    """Assessments in every state for the bank, plus a draft of the other bank that neither
    token may see. The answers are entered once through the services; the other assessments
    take a copy of them in one statement (the answer path itself is what the fuzzed PUTs
    exercise), and every state change after that goes through the real services again."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.template = world.start()
        world.answer_all(self.template)
        self.values = services.Snapshot.load(self.template).values

    def answered(self, **overrides) -> Assessment:
        assessment = self.world.start()
        values = {**self.values, **overrides}
        questions = dict(
            Question.objects.filter(catalogue=assessment.catalogue).values_list("qid", "pk")
        )
        Answer.objects.bulk_create(
            Answer(
                assessment=assessment,
                question_id=questions[qid],
                value=value,
                updated_by=self.world.admin,
            )
            for qid, value in values.items()
        )
        assessment.answers_digest = services.answers_digest(values)
        assessment.save(update_fields=["answers_digest"])
        return assessment

    def submitted(self, **overrides) -> Assessment:
        world = self.world
        assessment = self.answered(**overrides)
        world.sign(assessment)
        assessment = services.submit(world.admin, world.access(world.admin), assessment.pk)
        if assessment.assessor_id != world.assessor.pk:
            services.take_over(world.assessor, world.access(world.assessor), assessment.pk)
        assessment.refresh_from_db()
        return assessment

    def decided(self, outcome: str, **overrides) -> Assessment:
        world = self.world
        assessment = world.mark_all(self.submitted(**overrides))
        services.decide(world.assessor, world.access(world.assessor), assessment.pk, outcome, "")
        assessment.refresh_from_db()
        return assessment

    def build(self) -> dict[str, Assessment]:
        world = self.world
        assessor = world.access(world.assessor)
        states = {"draft_empty": world.start(), "draft_answered": self.template}
        states["draft_signed"] = self.answered()
        world.sign(states["draft_signed"])
        states["in_review"] = world.mark_all(self.submitted())

        flagged = self.submitted()
        world.mark_all(flagged, {"A9.2": Verdict.NEEDS_INFORMATION})
        states["clarification"] = services.request_clarification(
            world.assessor, assessor, flagged.pk
        )

        states["passed"] = self.decided(Outcome.PASS)
        a64 = Question.objects.get(catalogue=self.template.catalogue, qid="A6.4")
        failing = samples.failing_value(a64.rules)
        states["failed"] = self.decided(Outcome.FAIL, **{"A6.4": failing})
        expired = self.decided(Outcome.PASS)
        Certificate.objects.filter(assessment=expired).update(
            issued_on=timezone.localdate() - dt.timedelta(days=800),
            expires_on=timezone.localdate() - dt.timedelta(days=435),
        )
        states["expired"] = expired
        revoked = self.decided(Outcome.PASS)
        certificate_services.revoke(
            world.assessor, assessor, revoked.certificate.pk, "Scope no longer accurate"
        )
        states["revoked"] = revoked
        states["other_bank"] = world.start(world.other_bank, world.other_admin)
        return states


def _early_warning(world: World) -> tuple[list[int], list[int]]:
    """The bank's claims (a verified prefix, a pending domain) and alerts in several states,
    and the other bank's alert that neither token may see: ids for the generated requests."""
    from django.test import override_settings

    from tests.earlywarning.scene import raise_alert, verified_asset

    with override_settings(EARLYWARNING_DOCUMENTATION_ASSETS=True):
        access = world.access(world.admin)
        prefix = verified_asset(world.admin, access, world.bank, "cidr", "198.51.100.0/24")
        domain = verified_asset(world.admin, access, world.bank, "domain", "bank.example.jp")
        theirs = verified_asset(
            world.other_admin,
            world.access(world.other_admin),
            world.other_bank,
            "ip",
            "203.0.113.7",
        )
    alerts = [raise_alert(world.bank, asset=prefix, ip=f"198.51.100.{n}") for n in (1, 2, 3)]
    alerts[1].state = "acknowledged"
    alerts[2].state = "closed"
    for alert in alerts[1:]:
        alert.save(update_fields=["state"])
    alerts.append(raise_alert(world.other_bank, asset=theirs, ip="203.0.113.7"))
    return [alert.pk for alert in alerts], [prefix.pk, domain.pk, theirs.pk]


def _board_packs(world: World) -> list[int]:
    """A board pack of each bank (a finished quarter, without samples: every figure empty)."""
    import datetime as dt

    from mamori.reporting import pack, services

    quarter = pack.Period(dt.date(2026, 7, 1), dt.date(2026, 9, 30))
    return [
        services.make_pack(admin, organisation, quarter).pk
        for admin, organisation in (
            (world.admin, world.bank),
            (world.other_admin, world.other_bank),
        )
    ]


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker) -> Iterator[dict[str, str]]:
    """One realistic database for every generated case of this module, built once and rolled
    back at the end; each test still runs in its own savepoint (the ``db`` mark)."""
    with django_db_blocker.unblock(), transaction.atomic():
        load_bundled()
        world = World()
        states = States(world).build()
        KNOWN.assessments = sorted(assessment.pk for assessment in states.values())
        KNOWN.organisations = [
            world.bank.pk,
            world.other_bank.pk,
            world.body.pk,
            world.other_body.pk,
        ]
        KNOWN.certificates = sorted(Certificate.objects.values_list("number", flat=True))
        KNOWN.questions = list(
            Question.objects.filter(catalogue=states["draft_empty"].catalogue).values_list(
                "qid", flat=True
            )
        )
        KNOWN.alerts, KNOWN.assets = _early_warning(world)
        KNOWN.packs = _board_packs(world)
        tokens = {
            "applicant": api_token(world.admin, world.bank),
            "assessor": api_token(world.assessor, world.body),
        }
        # Django's own test client does the same: a request must not close the connection
        # that holds the test's open transaction.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            yield tokens
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
            # The public endpoint is throttled per client; later tests start with a clean slate.
            cache.clear()
            transaction.set_rollback(True)


def error_has_a_reason(ctx, response, case) -> None:
    """Every refusal is JSON with a human-readable ``detail`` and a machine-readable ``code``."""
    if not 400 <= response.status_code < 500:
        return
    assert response.headers.get("content-type", [""])[0].startswith("application/json"), (
        f"{response.status_code} is not JSON: {response.text[:200]}"
    )
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("detail"), str), body
    assert body["detail"].strip(), body
    assert isinstance(body.get("code"), str), body


# No response is a server error (the point of the run); documented responses match the schema
# that clients are generated from; refusals carry a reason.
CHECKS = [not_a_server_error, response_schema_conformance, error_has_a_reason]


# On PostgreSQL only: a value the API forgot to check (a NUL byte, a string over a column's
# length, a number out of range) is refused by PostgreSQL and shows as a server error there;
# SQLite stores it quietly, so the same examples there prove less, at the same cost.
@pytest.mark.strict_database
@pytest.mark.parametrize("persona", ["applicant", "assessor"])
@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, database=None)
def test_no_server_error(case, seeded, persona):
    case.call_and_validate(headers={"Authorization": f"Token {seeded[persona]}"}, checks=CHECKS)
