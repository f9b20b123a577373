"""Shared fixtures: the bundled catalogue, personas for every role, and helpers to move an
assessment through the workflow with the real services."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import pytest
from django.db import connection, transaction
from django.test import Client, override_settings
from django_otp.plugins.otp_totp.models import TOTPDevice

from mamori.accounts.models import ApiToken, TokenKind, User
from mamori.assessments import services
from mamori.assessments.models import Level, Outcome, Verdict
from mamori.catalogue import samples
from mamori.catalogue.loader import ParsedCatalogue
from mamori.catalogue.services import load_bundled, parse_bundled, sync_catalogue
from mamori.organisations.access import Access
from mamori.organisations.models import Category, Membership, Organisation, Role

PASSWORD = "correct-horse-battery-staple-42"
T = TypeVar("T")


# Argon2 costs 0.5–1 s a hash by design, and the suite sets thousands of passwords. Tests hash
# with MD5 first; the production hashers stay listed after it so any hash still verifies, and
# ``production_hashing`` puts production's list back for the tests that check what it stores.
FAST_HASHER = "django.contrib.auth.hashers.MD5PasswordHasher"


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing():
    from django.conf import settings

    production = list(settings.PASSWORD_HASHERS)
    assert FAST_HASHER not in production
    with override_settings(PASSWORD_HASHERS=[FAST_HASHER, *production]):
        yield production


@pytest.fixture(scope="session", autouse=True)
def _static_files_found_on_request():
    """WhiteNoise finds a static file when it is asked for, instead of scanning them all (and
    building each one's headers) whenever a test client starts a request handler: a few hundred
    files for every client, about 5 % of the suite's time. Production settings still scan at
    start-up (the deployment tests serve static files through gunicorn)."""
    with override_settings(WHITENOISE_AUTOREFRESH=True):
        yield


@pytest.fixture
def production_hashing(_fast_password_hashing):
    """Production's hashers first (new hashes are Argon2); the fast one last, so passwords set
    before the test still verify (and are upgraded, as an older hash is in production)."""
    with override_settings(PASSWORD_HASHERS=[*_fast_password_hashing, FAST_HASHER]):
        yield


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Every test database starts with the bundled catalogues, so a test's ``catalogue`` only
    finds it (a test that empties the database, such as a live-server test, gets it back from
    the next ``catalogue``: the parsed files are kept for the whole run)."""
    with django_db_blocker.unblock():
        load_bundled()


@pytest.fixture(autouse=True)
def _default_language_each_test():
    """Every test starts in the product's default language (Japanese). Django leaves the language
    a request activated in place, so without this a test's outcome would depend on which test ran
    before it on the same worker."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _bundled_catalogues_stay(request, django_db_blocker):
    """A test that commits (``transaction=True``, the live server) empties the database when it
    ends; the bundled catalogues come back at once, so what is built next, a module's shared data
    included, finds them as in a fresh database."""
    yield
    if uses_database(request.node):
        from mamori.catalogue.models import Catalogue

        with django_db_blocker.unblock():
            if not Catalogue.objects.exists():
                load_bundled()


@contextmanager
def built_once(django_db_blocker, build: Callable[[], T]) -> Iterator[T]:
    """For data a whole module or class shares (NetBox's ``setUpTestData``): ``build()`` runs
    once inside a transaction that is rolled back when the block ends. Each test runs in
    pytest-django's own transaction, a savepoint within this one, so a test's changes are undone
    for the next; the Python objects are shared, so tests re-read what they change."""
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            built = build()
            # Check deferred foreign keys once, now: left pending, PostgreSQL would check all of
            # them again at the end of every test, since each rollback re-arms them.
            connection.check_constraints()
            yield built
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def newest_bundled() -> ParsedCatalogue:
    """The newest bundled version: the one new assessments get (``current_catalogue``), so tests
    see what a new applicant sees (parsed once per process, ``parse_bundled``)."""
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
        changes = []
        for question in snapshot.questions:
            value = samples.failing_value(question.rules) if question.qid in failing else None
            if value is None:
                value = samples.compliant_value(question.rules)
            if question.qid == assessment.catalogue.scope["kind_question"]:
                value = "whole"
            current = snapshot.answers.get(question.qid)
            changes.append(
                services.AnswerChange(question.qid, value, current.version if current else 0)
            )
        # All at once, as an API client may: the same checks and one audit entry per answer.
        services.save_answers(user, self.access(user), assessment.pk, changes)

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
        changes = []
        for question in snapshot.questions:
            if not question.is_scored or question.qid not in snapshot.answers:
                continue
            verdict = (verdicts or {}).get(question.qid)
            if verdict is None:
                verdict = Verdict.NON_COMPLIANT if question.qid in auto else Verdict.COMPLIANT
            comment = "" if verdict == Verdict.COMPLIANT else "needs work"
            changes.append(services.MarkChange(question.qid, verdict, comment))
        services.mark_answers(self.assessor, self.access(self.assessor), assessment.pk, changes)
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


# --- Which tests run on which database -------------------------------------------------------
# `make test` runs the suite on SQLite and again on PostgreSQL. A test that touches no database
# proves the same thing both times, so the PostgreSQL run (MAMORI_DATABASE_TESTS_ONLY=1) keeps
# only the tests that use one: through pytest-django's fixtures (anywhere in the fixture
# closure), or through ``fresh_database`` (a database of the suite's backend for a subprocess).
DATABASE_FIXTURES = frozenset(
    {"db", "transactional_db", "django_db_reset_sequences", "live_server", "fresh_database"}
)


def uses_database(item: pytest.Item) -> bool:
    # A scale-out test runs in the PostgreSQL pass only (Makefile), so it is kept there even when
    # its database is reached through a module fixture of its own.
    return (
        item.get_closest_marker("django_db") is not None
        or item.get_closest_marker("scale_out") is not None
        or not DATABASE_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))
    )


# The authorization matrices (about 4,700 requests) run in full on SQLite. On PostgreSQL each
# action is asked by three roles, so every scoping query runs on the production database — the
# organisation's own administrator (its rows found), the administrator of another organisation
# (its rows never found) and the assigned assessor (found through the certification body) — at
# a third of the time: the other roles' cells differ by the Python deciding them, not by SQL.
MATRIX_ROLES_ON_POSTGRESQL = frozenset({"applicant_admin", "other_org_admin", "assigned_assessor"})


def runs_on_postgresql(item: pytest.Item) -> bool:
    if not uses_database(item):
        return False
    if item.get_closest_marker("matrix") is None:
        return True
    role = getattr(item, "callspec", None) and item.callspec.params.get("role")
    return role is None or role in MATRIX_ROLES_ON_POSTGRESQL


def pytest_collection_modifyitems(config, items):
    if os.environ.get("MAMORI_DATABASE_TESTS_ONLY") != "1":
        return
    kept = [item for item in items if runs_on_postgresql(item)]
    dropped = [item for item in items if not runs_on_postgresql(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


# --- Tests that share one running stack stay on one pytest-xdist worker ---------------------
# The deployment test starts nginx, gunicorn, a Celery worker and beat once for its module;
# spread over two workers it would start two, both on its Redis database. xdist's own
# ``--dist loadgroup`` no longer groups anything under pytest 9 (it renames items through an
# attribute pytest stopped reading), so the suite's scheduler keeps these modules together and
# hands out every other test one by one, as ``--dist load`` does.
ONE_WORKER_MODULES = ("tests/deploy/test_stack.py",)


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModulesTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER_MODULES else nodeid

    return ModulesTogether(config, log)
