"""Shared fixtures: the bundled catalogue, personas for every role, and helpers to move an
assessment through the workflow with the real services."""

from __future__ import annotations

import functools
import shutil

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from mamori.accounts.models import ApiToken, TokenKind, User
from mamori.assessments import services
from mamori.assessments.models import Level, Outcome, Verdict
from mamori.catalogue import samples
from mamori.catalogue.loader import ParsedCatalogue
from mamori.catalogue.services import parse_bundled, sync_catalogue
from mamori.core.access import Access
from mamori.organisations.models import Category, Membership, Organisation, Role

PASSWORD = "correct-horse-battery-staple-42"


@functools.cache
def newest_bundled() -> ParsedCatalogue:
    """The newest bundled catalogue version, parsed once per test process. It is the one new
    assessments get (``current_catalogue``), so tests see what a new applicant sees."""
    return parse_bundled()[-1]


@pytest.fixture
def catalogue(db):
    catalogue, _outcome = sync_catalogue(newest_bundled())
    return catalogue


def make_user(
    username: str,
    organisation: Organisation | None = None,
    role: str | None = None,
    *,
    mfa: bool = False,
    password: str | None = None,
) -> User:
    user = User.objects.create_user(
        username=username, email=f"{username}@example.jp", display_name=username
    )
    if password:
        user.set_password(password)
        user.save(update_fields=["password"])
    if organisation is not None and role is not None:
        Membership.objects.create(user=user, organisation=organisation, role=role)
    if mfa:
        TOTPDevice.objects.create(user=user, name="test", confirmed=True)
    return user


class World:
    """Two applicant organisations, a certification body with two assessors, a second body,
    a scheme owner and an outsider: alice's bank is the main applicant."""

    def __init__(self):
        self.bank = Organisation.objects.create(
            name_ja="テスト銀行", name_en="Test Bank", category=Category.FINANCIAL_INSTITUTION
        )
        self.other_bank = Organisation.objects.create(
            name_ja="他行", name_en="Other Bank", category=Category.FINANCIAL_INSTITUTION
        )
        self.body = Organisation.objects.create(
            name_ja="認定機関A", name_en="Body A", category=Category.CERTIFICATION_BODY
        )
        self.other_body = Organisation.objects.create(
            name_ja="認定機関B", name_en="Body B", category=Category.CERTIFICATION_BODY
        )
        self.secretariat = Organisation.objects.create(
            name_ja="事務局", name_en="Secretariat", category=Category.OTHER
        )
        self.admin = make_user("alice", self.bank, Role.APPLICANT_ADMIN)
        self.contributor = make_user("carol", self.bank, Role.APPLICANT_CONTRIBUTOR)
        self.signatory = make_user("bob", self.bank, Role.BOARD_SIGNATORY)
        self.assessor = make_user("ada", self.body, Role.ASSESSOR, mfa=True)
        self.assessor2 = make_user("abe", self.body, Role.ASSESSOR, mfa=True)
        self.other_assessor = make_user("otto", self.other_body, Role.ASSESSOR, mfa=True)
        self.owner = make_user("olive", self.secretariat, Role.SCHEME_OWNER, mfa=True)
        self.other_admin = make_user("oscar", self.other_bank, Role.APPLICANT_ADMIN)
        self.outsider = make_user("eve")

    def access(self, user) -> Access:
        return Access.for_user(user)

    # --- moving an assessment along, through the real services -------------------------------
    def start(self, organisation=None, admin=None) -> object:
        admin = admin or self.admin
        return services.start_assessment(
            admin, self.access(admin), organisation or self.bank, self.body, Level.CE
        )

    def answer_all(self, assessment, failing=(), user=None):
        user = user or self.admin
        snapshot = services.Snapshot.load(assessment)
        for question in snapshot.questions:
            value = samples.failing_value(question.rules) if question.qid in failing else None
            if value is None:
                value = samples.compliant_value(question.rules)
            if question.qid == assessment.catalogue.scope["kind_question"]:
                value = "whole"
            current = snapshot.answers.get(question.qid)
            services.save_answer(
                user,
                self.access(user),
                assessment.pk,
                question.qid,
                value,
                current.version if current else 0,
            )

    def sign(self, assessment):
        return services.sign_declaration(
            self.signatory, self.access(self.signatory), assessment.pk, "Bob Board", "Director"
        )

    def submitted(self, failing=(), organisation=None, admin=None):
        assessment = self.start(organisation, admin)
        self.answer_all(assessment, failing, admin)
        if organisation is None:
            self.sign(assessment)
        else:
            signatory = make_user(f"sig-{assessment.pk}", organisation, Role.BOARD_SIGNATORY)
            services.sign_declaration(signatory, self.access(signatory), assessment.pk, "S", "T")
        assessment = services.submit(
            admin or self.admin, self.access(admin or self.admin), assessment.pk
        )
        if assessment.assessor_id != self.assessor.pk:
            services.take_over(self.assessor, self.access(self.assessor), assessment.pk)
        assessment.refresh_from_db()
        return assessment

    def mark_all(self, assessment, verdicts=None):
        snapshot = services.Snapshot.load(assessment)
        auto = set(services.scoring.auto_failures(snapshot.specs, snapshot.values))
        for question in snapshot.questions:
            if not question.is_scored or question.qid not in snapshot.answers:
                continue
            verdict = (verdicts or {}).get(question.qid)
            if verdict is None:
                verdict = Verdict.NON_COMPLIANT if question.qid in auto else Verdict.COMPLIANT
            services.mark_answer(
                self.assessor,
                self.access(self.assessor),
                assessment.pk,
                question.qid,
                verdict,
                "" if verdict == Verdict.COMPLIANT else "needs work",
            )
        assessment.refresh_from_db()
        return assessment

    def passed(self):
        assessment = self.mark_all(self.submitted())
        services.decide(
            self.assessor, self.access(self.assessor), assessment.pk, Outcome.PASS, "ok"
        )
        assessment.refresh_from_db()
        return assessment

    def failed(self, qid="A6.4"):
        assessment = self.mark_all(self.submitted(failing={qid}))
        services.decide(
            self.assessor, self.access(self.assessor), assessment.pk, Outcome.FAIL, "fix it"
        )
        assessment.refresh_from_db()
        return assessment


@pytest.fixture
def world(catalogue):
    return World()


def client_for(user, *, verified: bool | None = None) -> Client:
    """A logged-in test client; users who need MFA are marked as having passed it."""
    client = Client()
    client.force_login(user)
    needs_mfa = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    if verified if verified is not None else needs_mfa:
        device = TOTPDevice.objects.get(user=user, confirmed=True)
        session = client.session
        session["otp_device_id"] = device.persistent_id
        session.save()
    return client


@pytest.fixture
def clients(world):
    return {
        name: client_for(getattr(world, name))
        for name in (
            "admin",
            "contributor",
            "signatory",
            "assessor",
            "assessor2",
            "other_assessor",
            "owner",
            "other_admin",
            "outsider",
        )
    }


def api_token(user, organisation, kind=TokenKind.USER) -> str:
    _token, key = ApiToken.issue(user=user, organisation=organisation, name="test", kind=kind)
    return key


# System tools the suite compares against are installed by `make test` (TEST_PACKAGES): a
# missing one is a failure with a reason, never a silent skip.
def require_tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing; `make test` installs it with apt-get"
    return path


@pytest.fixture(scope="session")
def dpkg_tool() -> str:
    return require_tool("dpkg")


@pytest.fixture(scope="session")
def rpm_tool() -> str:
    return require_tool("rpm")


@pytest.fixture(scope="session")
def debsecan_tool() -> str:
    return require_tool("debsecan")
