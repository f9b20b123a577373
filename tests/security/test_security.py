"""Security properties across the site: the second factor, login lock-out, password storage and
rules, response headers and cookies, CSRF, evidence downloads, start-up without a secret key,
and API keys that never reach the database or the logs."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.models import Session
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, models
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from mamori.accounts import mfa
from mamori.accounts.models import ApiToken, User, hash_token
from mamori.assessments import services
from mamori.assessments.models import State
from mamori.audit.models import AuditEvent
from mamori.organisations.models import Role
from tests.conftest import PASSWORD, World, client_for, make_user

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def people(db):
    """The personas without the catalogue: enough for everything that needs no assessment."""
    return World()


def code_for(device: TOTPDevice, steps: int = 0) -> str:
    """The code an authenticator app shows now (or ``steps`` periods away) for this device."""
    value = totp(device.bin_key, device.step, device.t0, device.digits, device.drift + steps)
    return f"{value:0{device.digits}d}"


def wrong_code(device: TOTPDevice) -> str:
    """Six digits that are no code the device accepts around now."""
    near = {code_for(device, steps) for steps in range(-3, 4)}
    return next(code for code in (f"{d}" * 6 for d in range(10)) if code not in near)


# --- Second factor ------------------------------------------------------------------------------

# Every kind of page behind the login, for a user who has not passed the second factor.
PROTECTED_PAGES = (
    "/",
    "/assessments/",
    "/review/",
    "/certificates/",
    "/organisations/",
    "/accounts/tokens/",
    "/accounts/password/",
)


@pytest.mark.parametrize("persona", ["assessor", "owner"])
def test_mfa_users_without_the_second_factor_are_sent_to_verify(people, persona):
    user = getattr(people, persona)
    client = client_for(user, verified=False)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    for url in PROTECTED_PAGES:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url == "/accounts/mfa/verify/", url
    # Session calls to the API answer JSON, not a redirect a script cannot follow.
    for url in ("/api/assessments/", "/api/organisations/", "/api/certificates/"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "two-factor" in response.json()["detail"]
    # The second-factor page itself, and the public pages, stay open.
    assert client.get("/accounts/mfa/verify/").status_code == 200
    assert client.get("/register/").status_code == 200
    assert client.get("/healthz").status_code == 200


def test_an_assessor_without_a_device_is_sent_to_setup(people):
    newcomer = make_user("nina", people.body, Role.ASSESSOR)
    client = client_for(newcomer)
    for url in PROTECTED_PAGES:
        response = client.get(url)
        assert (response.status_code, response.url) == (302, "/accounts/mfa/setup/"), url
    assert client.get("/api/assessments/").status_code == 403


def test_an_unverified_assessor_cannot_act(world):
    """The redirect happens before the view: the action does not run."""
    assessment = world.submitted()
    client = client_for(world.assessor2, verified=False)
    response = client.post(reverse("assessments:take", args=[assessment.pk]))
    assert (response.status_code, response.url) == (302, "/accounts/mfa/verify/")
    assessment.refresh_from_db()
    assert assessment.assessor == world.assessor
    api = client.post(f"/api/assessments/{assessment.pk}/decision", {"outcome": "pass"})
    assert api.status_code == 403
    assert assessment.decisions.count() == 0


def test_a_real_totp_code_grants_access(people):
    client = client_for(people.assessor, verified=False)
    device = TOTPDevice.objects.get(user=people.assessor, confirmed=True)
    response = client.post("/accounts/mfa/verify/", {"code": code_for(device)})
    assert (response.status_code, response.url) == (302, "/")
    for url in PROTECTED_PAGES:
        assert client.get(url).status_code == 200, url
    assert client.get("/api/assessments/").status_code == 200


def test_a_wrong_code_is_refused(people):
    client = client_for(people.owner, verified=False)
    device = TOTPDevice.objects.get(user=people.owner, confirmed=True)
    response = client.post("/accounts/mfa/verify/", {"code": wrong_code(device)})
    assert response.status_code == 200
    assert response.context["form"].errors["code"]
    assert client.get("/").url == "/accounts/mfa/verify/"
    assert client.get("/api/organisations/").status_code == 403


def test_one_wrong_code_then_the_right_one_gets_in_at_once(people):
    """A typo is not "too many wrong codes": the right code typed straight after it works."""
    client = client_for(people.assessor, verified=False)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    device = TOTPDevice.objects.get(user=people.assessor, confirmed=True)
    refused = client.post("/accounts/mfa/verify/", {"code": wrong_code(device)})
    assert refused.status_code == 200
    assert refused.context["form"].errors["code"] == [
        "That code is not valid. Check your app's clock and try again."
    ]
    accepted = client.post("/accounts/mfa/verify/", {"code": code_for(device)})
    assert (accepted.status_code, accepted.url) == (302, "/")
    assert client.get("/review/").status_code == 200
    device.refresh_from_db()
    assert device.throttling_failure_count == 0  # the right code forgives the typo


def test_after_five_wrong_codes_the_next_waits_and_then_works(people):
    client = client_for(people.owner, verified=False)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    device = TOTPDevice.objects.get(user=people.owner, confirmed=True)
    for attempt in range(mfa.FREE_WRONG_CODES):
        response = client.post("/accounts/mfa/verify/", {"code": wrong_code(device)})
        assert response.status_code == 200, attempt
    # Now even the right code must wait, and the page says for how long.
    waiting = client.post("/accounts/mfa/verify/", {"code": code_for(device)})
    assert waiting.status_code == 429
    (message,) = waiting.context["form"].errors["code"]
    seconds = int(re.fullmatch(r"Too many wrong codes\. Try again in (\d+) seconds\.", message)[1])
    assert 0 < seconds <= mfa.FIRST_WAIT_SECONDS
    assert client.get("/").url == "/accounts/mfa/verify/"
    device.refresh_from_db()
    assert device.throttling_failure_count == mfa.FREE_WRONG_CODES  # a wait costs no attempt
    # Once the wait is over (the clock moved on), the right code works.
    device.throttling_failure_timestamp -= dt.timedelta(seconds=mfa.FIRST_WAIT_SECONDS)
    device.save(update_fields=["throttling_failure_timestamp"])
    accepted = client.post("/accounts/mfa/verify/", {"code": code_for(device)})
    assert (accepted.status_code, accepted.url) == (302, "/")


def test_the_wait_after_wrong_codes_doubles():
    now = dt.datetime(2026, 4, 1, 9, 0, tzinfo=dt.UTC)
    assert [mfa.seconds_to_wait(count, now, now) for count in range(8)] == [
        0, 0, 0, 0, 0, 30, 60, 120
    ]  # fmt: skip
    assert mfa.seconds_to_wait(5, now - dt.timedelta(seconds=29.5), now) == 1
    assert mfa.seconds_to_wait(5, now - dt.timedelta(seconds=30), now) == 0
    assert mfa.seconds_to_wait(6, None, now) == 0
    assert mfa.seconds_to_wait(60, now, now) == mfa.LONGEST_WAIT_SECONDS


@pytest.mark.parametrize("persona", ["assessor", "owner"])
def test_no_menu_before_the_second_factor(people, persona):
    """The two-factor page shows no menu whose links would only lead back to it."""
    user = getattr(people, persona)
    client = client_for(user, verified=False)
    page = client.get("/accounts/mfa/verify/").content.decode()
    menu = re.search(r'<nav aria-label="[^"]*">(.*?)</nav>', page, re.S)[1]
    assert re.findall(r'href="([^"]+)"', menu) == ["/register/"]  # the public register only
    assert 'href="/accounts/tokens/"' not in page
    assert user.username in page  # who is signed in, and the way out, stay
    assert 'action="/accounts/logout/"' in page
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    client.post("/accounts/mfa/verify/", {"code": code_for(device)})
    page = client.get("/").content.decode()
    menu = re.search(r'<nav aria-label="[^"]*">(.*?)</nav>', page, re.S)[1]
    assert 'href="/certificates/"' in menu
    assert 'href="/accounts/tokens/"' in page


def test_a_code_cannot_be_used_twice(people):
    """A code seen over someone's shoulder is spent once it has been used."""
    device = TOTPDevice.objects.get(user=people.assessor, confirmed=True)
    code = code_for(device)
    first = client_for(people.assessor, verified=False)
    assert first.post("/accounts/mfa/verify/", {"code": code}).status_code == 302
    second = client_for(people.assessor, verified=False)
    assert second.post("/accounts/mfa/verify/", {"code": code}).status_code == 200
    assert second.get("/review/").url == "/accounts/mfa/verify/"


def test_verify_does_not_redirect_off_site(people):
    client = client_for(people.assessor, verified=False)
    device = TOTPDevice.objects.get(user=people.assessor, confirmed=True)
    response = client.post(
        "/accounts/mfa/verify/?next=https://evil.example/phish", {"code": code_for(device)}
    )
    assert (response.status_code, response.url) == (302, "/")


def test_setting_up_a_new_authenticator(people):
    newcomer = make_user("nina", people.body, Role.ASSESSOR)
    client = client_for(newcomer)
    page = client.get("/accounts/mfa/setup/")
    assert page.status_code == 200
    device = TOTPDevice.objects.get(user=newcomer)
    assert not device.confirmed
    # The key the page shows is the device's key, so an app set up from it gives valid codes.
    shown = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page.content.decode()).group(1)
    assert base64.b32decode(shown + "=" * (-len(shown) % 8)) == device.bin_key

    refused = client.post("/accounts/mfa/setup/", {"code": wrong_code(device)})
    assert refused.status_code == 200
    device.refresh_from_db()
    assert not device.confirmed
    assert client.get("/review/").url == "/accounts/mfa/setup/"

    # Right after a wrong code, the right one is taken: no wait for a single mistake.
    done = client.post("/accounts/mfa/setup/", {"code": code_for(device), "next": "/review/"})
    assert (done.status_code, done.url) == (302, "/review/")
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/review/").status_code == 200
    assert client.get("/api/assessments/").status_code == 200
    assert (
        AuditEvent.objects.filter(action="account.mfa_enrolled", actor_id=newcomer.pk).count() == 1
    )


def test_applicants_do_not_need_a_second_factor(people):
    for persona in ("admin", "contributor", "signatory", "other_admin"):
        client = client_for(getattr(people, persona))
        assert client.get("/").status_code == 200, persona
        assert client.get("/assessments/").status_code == 200, persona
        assert client.get("/api/organisations/").status_code == 200, persona


# --- Login lock-out -----------------------------------------------------------------------------


def login(username: str, password: str, address: str):
    return Client(REMOTE_ADDR=address).post(
        "/accounts/login/", {"username": username, "password": password}
    )


@pytest.fixture
def members(people):
    """Two members with real passwords (hashed quickly: see ``production_hashing``)."""
    for user in (people.admin, people.contributor):
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
    return people.admin, people.contributor


def test_a_correct_login_works(members):
    response = login("alice", PASSWORD, "192.0.2.1")
    assert (response.status_code, response.url) == (302, "/")
    assert response.cookies[settings.SESSION_COOKIE_NAME].value


# The lock-out tiers and the client address behind a proxy: test_lockout.py.


# --- Password storage and rules -----------------------------------------------------------------


def test_passwords_are_stored_with_argon2(members, production_hashing):
    alice, _carol = members
    alice.set_password(PASSWORD)
    alice.save(update_fields=["password"])
    alice.refresh_from_db()
    assert alice.password.startswith("argon2$argon2id$")
    assert PASSWORD not in alice.password


def test_an_older_hash_is_upgraded_to_argon2_at_login(people, production_hashing):
    user = make_user("legacy", people.bank, Role.APPLICANT_CONTRIBUTOR)
    User.objects.filter(pk=user.pk).update(password=make_password(PASSWORD, hasher="pbkdf2_sha256"))
    assert login("legacy", PASSWORD, "192.0.2.9").status_code == 302
    user.refresh_from_db()
    assert user.password.startswith("argon2$")


def change_password(client: Client, new: str):
    return client.post(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )


@pytest.mark.parametrize(
    ("new", "reason"),
    [
        ("Kq7#vR2!mZp", "password_too_short"),  # 11 characters
        ("password1234", "password_too_common"),  # on Django's list of common passwords
        ("1qaz2wsx3edc", "password_too_common"),
        ("839201746523", "password_entirely_numeric"),
    ],
)
def test_weak_passwords_are_refused(members, new, reason):
    alice, _carol = members
    client = client_for(alice)
    response = change_password(client, new)
    assert response.status_code == 200
    errors = response.context["form"].errors.as_data()["new_password2"]
    assert reason in {error.code for error in errors}
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_a_long_random_password_is_accepted(members, production_hashing):
    alice, _carol = members
    new = "tidal-Quartz-84-meadow-Lantern"
    response = change_password(client_for(alice), new)
    assert (response.status_code, response.url) == (302, "/")
    alice.refresh_from_db()
    assert alice.check_password(new)
    assert alice.password.startswith("argon2$")


# --- Headers and cookies ------------------------------------------------------------------------


def test_security_headers_on_pages(people):
    for response in (client_for(people.admin).get("/"), Client().get("/accounts/login/")):
        assert response.status_code == 200
        policy = response["Content-Security-Policy"]
        directives = {
            part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()
        }
        assert directives["default-src"] == ["'self'"]
        assert "unsafe-inline" not in policy
        assert "unsafe-eval" not in policy
        assert directives["frame-ancestors"] == ["'none'"]
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["X-Frame-Options"] == "DENY"
        assert response["Referrer-Policy"] == "same-origin"


def test_session_and_csrf_cookies_are_secure_httponly_lax(members):
    page = Client().get("/accounts/login/")
    csrf = page.cookies[settings.CSRF_COOKIE_NAME]
    response = login("alice", PASSWORD, "192.0.2.10")
    session = response.cookies[settings.SESSION_COOKIE_NAME]
    # The suite runs with MAMORI_HTTPS at its default (on), as production does.
    for cookie in (csrf, session):
        assert cookie["secure"] is True, cookie.key
        assert cookie["httponly"] is True, cookie.key
        assert cookie["samesite"] == "Lax", cookie.key


# --- CSRF ---------------------------------------------------------------------------------------


def test_posts_without_a_csrf_token_are_rejected(world):
    assessment = world.start()
    world.answer_all(assessment)
    world.sign(assessment)
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.admin)
    submit = reverse("assessments:submit", args=[assessment.pk])
    assert client.post(submit).status_code == 403
    # The session API checks it too (token clients send no cookies, so they need none).
    api = client.post(f"/api/assessments/{assessment.pk}/submit")
    assert api.status_code == 403
    assessment.refresh_from_db()
    assert assessment.state == State.DRAFT
    # With the token from the page, the same request works: the 403 was the missing token.
    client.get(reverse("assessments:precheck", args=[assessment.pk]))
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    assert client.post(submit, {"csrfmiddlewaretoken": token}).status_code == 302
    assessment.refresh_from_db()
    assert assessment.state == State.SUBMITTED


def test_login_without_a_csrf_token_is_rejected(members):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 403
    assert settings.SESSION_COOKIE_NAME not in response.cookies


# --- Evidence downloads -------------------------------------------------------------------------


def test_evidence_is_downloaded_never_rendered(world, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path, "base_url": None},
        },
    }
    assessment = world.start()
    # Text that a browser would happily run if it were served inline as HTML.
    content = b"<html><script>alert(document.cookie)</script></html>\n"
    attachment = services.add_attachment(
        world.admin,
        world.access(world.admin),
        assessment.pk,
        SimpleUploadedFile("notes.txt", content),
        None,
    )
    response = client_for(world.contributor).get(
        reverse("assessments:download_evidence", args=[assessment.pk, attachment.pk])
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert 'filename="notes.txt"' in response["Content-Disposition"]
    assert response["Content-Security-Policy"].split(";")[0].strip() == "sandbox"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == content


# --- Start-up -----------------------------------------------------------------------------------


def start_django(tmp_path: Path, *, cli: bool = False, **env: str | None):
    """Start Django in a fresh process with production settings plus ``env`` (None unsets)."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"MAMORI_DEBUG", "SECRET_KEY", "SECRET_KEY_FILE", "ALLOWED_HOSTS"}
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="mamori.settings",
        MAMORI_VAR_DIR=str(tmp_path / "var"),
        SECRET_KEY="test-only-key-0123456789abcdefghijklmnopqrstuvwxyz",
        ALLOWED_HOSTS="mamori.example",
    )
    for key, value in env.items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    command = (
        [str(Path(sys.executable).with_name("mamori")), "check"]
        if cli
        else [sys.executable, "-c", "import django; django.setup()"]
    )
    return subprocess.run(
        command, env=environment, cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_production_settings_start(tmp_path):
    """The control for the tests below: with a key and hosts, production mode starts."""
    result = start_django(tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"SECRET_KEY": None}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"ALLOWED_HOSTS": None}, "ALLOWED_HOSTS"),
    ],
    ids=["empty-key", "no-key", "short-key", "no-hosts"],
)
def test_production_mode_refuses_to_start_without_its_secrets(tmp_path, env, named):
    result = start_django(tmp_path, **env)
    assert result.returncode != 0
    reason = result.stderr.strip().splitlines()[-1]
    assert reason.startswith("django.core.exceptions.ImproperlyConfigured: ")
    assert named in reason


def test_the_cli_reports_a_missing_key_in_one_line(tmp_path):
    result = start_django(tmp_path, cli=True, SECRET_KEY="")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("mamori: configuration error: SECRET_KEY")


def test_development_mode_starts_without_a_key(tmp_path):
    result = start_django(tmp_path, SECRET_KEY=None, MAMORI_DEBUG="1")
    assert result.returncode == 0, result.stderr


# --- API keys are never stored or logged --------------------------------------------------------


def _text_fields(model) -> list[str]:
    return [
        f.attname
        for f in model._meta.concrete_fields
        if isinstance(f, models.CharField | models.TextField | models.JSONField)
    ]


def stored_anywhere(secret: str) -> list[str]:
    """Every table and column whose stored text contains ``secret``, sessions decoded."""
    found = []
    for model in apps.get_models():
        fields = _text_fields(model)
        if not fields:
            continue
        for values in model.objects.values_list(*fields):
            for name, value in zip(fields, values, strict=True):
                if value is not None and secret in str(value):
                    found.append(f"{model._meta.label}.{name}")
    for session in Session.objects.all():
        if secret in str(session.get_decoded()):
            found.append("session data")
    return found


def test_api_keys_are_stored_only_as_a_hash_and_never_logged(people, caplog):
    client = client_for(people.admin)
    issued = client.post(
        "/accounts/tokens/",
        {"name": "ci", "organisation": people.bank.pk, "kind": "user"},
    )
    assert issued.status_code == 200
    key = re.search(r'id="new-token">([^<]+)</code>', issued.content.decode()).group(1)
    token = ApiToken.objects.get(user=people.admin, name="ci")
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest() == hash_token(key)
    assert key.startswith(token.key_hint)
    assert len(token.key_hint) < len(key) // 2
    # Shown once: the list of tokens shows only the hint.
    assert key not in client.get("/accounts/tokens/").content.decode()

    caplog.set_level(logging.DEBUG)
    for name in ("django.request", "django.server", "axes", "mamori"):
        caplog.set_level(logging.DEBUG, logger=name)
    api = Client(HTTP_AUTHORIZATION=f"Token {key}")
    with CaptureQueriesContext(connection) as queries:
        assert api.get("/api/organisations/").status_code == 200
        assert api.get("/api/assessments/999999").status_code == 404
        assert api.post("/api/assessments/", {}, content_type="application/json").status_code == 400
        wrong = Client(HTTP_AUTHORIZATION=f"Token {key}x").get("/api/organisations/")
        assert wrong.status_code == 401
    # The capture works: the refused requests above were logged ...
    assert any(record.name == "django.request" for record in caplog.records)
    # ... and nothing anywhere carries the key: not the logs, the SQL sent, or any column.
    assert key not in caplog.text
    assert all(key not in str(record.args) for record in caplog.records)
    assert all(key not in query["sql"] for query in queries.captured_queries)
    assert stored_anywhere(key) == []


def test_revoked_and_mangled_tokens_get_401(people):
    token, key = ApiToken.issue(user=people.admin, organisation=people.bank, name="old")
    assert Client(HTTP_AUTHORIZATION=f"Token {key}").get("/api/organisations/").status_code == 200
    for header in (f"Token {key} extra", "Token", f"Token {key[:-1]}"):
        response = Client(HTTP_AUTHORIZATION=header).get("/api/organisations/")
        assert response.status_code == 401, header
        assert response.json()["detail"]
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=token.created_at)
    response = Client(HTTP_AUTHORIZATION=f"Token {key}").get("/api/organisations/")
    assert response.status_code == 401
