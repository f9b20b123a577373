"""API tokens expire and rotate: a default lifetime per kind, a lifetime chosen within the maximum
when issuing, a rotation that keeps the old key working for a stated overlap (with audit entries),
401 with a reason for an expired, rotated or revoked key, and the tokens that end soon shown on
the token pages, the organisation's included."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client, override_settings
from django.utils import timezone

from mamori.accounts.models import ApiToken, TokenKind, TokenState
from mamori.audit.models import AuditEvent
from tests.conftest import World, client_for

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


@pytest.fixture
def people(db):
    return World()


def api(key: str, path: str = "/api/organisations/"):
    return Client(HTTP_AUTHORIZATION=f"Token {key}", HTTP_ACCEPT_LANGUAGE="en").get(path)


def new_key(response) -> str:
    return re.search(r'id="new-token">([^<]+)</code>', response.content.decode()).group(1)


def issue_on_page(client, people, **fields):
    data = {"name": "ci", "organisation": people.bank.pk, "kind": "user", **fields}
    return client.post("/accounts/tokens/", data)


def close_to(moment: dt.datetime, expected: dt.datetime) -> bool:
    return abs(moment - expected) < dt.timedelta(minutes=1)


# --- Expiry when issuing -------------------------------------------------------------------------


def test_every_token_expires_after_the_default_lifetime_of_its_kind(people):
    assert settings.TOKEN_LIFETIME_DAYS == {"user": 90, "agent": 365}
    client = client_for(people.admin)
    now = timezone.now()
    for kind, days in (("user", 90), ("agent", 365)):
        response = issue_on_page(client, people, name=kind, kind=kind)
        assert response.status_code == 200
        token = ApiToken.objects.get(name=kind)
        assert token.lifetime_days == days
        assert close_to(token.expires_at, now + days * DAY)
        assert api(new_key(response)).status_code in (200, 403)  # agent keys only upload


def test_the_issuer_picks_a_lifetime_within_the_maximum(people):
    client = client_for(people.admin)
    page = client.get("/accounts/tokens/").content.decode()
    assert 'name="lifetime_days"' in page
    assert 'max="365"' in page

    chosen = issue_on_page(client, people, name="short", lifetime_days="7")
    assert chosen.status_code == 200
    token = ApiToken.objects.get(name="short")
    assert token.lifetime_days == 7
    assert close_to(token.expires_at, timezone.now() + 7 * DAY)
    assert "It works until" in chosen.content.decode() or "有効期限" in chosen.content.decode()

    for refused in ("366", "0", "-1", "many"):
        response = issue_on_page(client, people, name=f"bad{refused}", lifetime_days=refused)
        assert response.status_code == 422, refused
        assert not ApiToken.objects.filter(name=f"bad{refused}").exists()


@override_settings(TOKEN_MAX_LIFETIME_DAYS=30, TOKEN_LIFETIME_DAYS={"user": 20, "agent": 30})
def test_the_maximum_is_a_setting(people):
    client = client_for(people.admin)
    assert issue_on_page(client, people, name="a", lifetime_days="31").status_code == 422
    assert issue_on_page(client, people, name="b", lifetime_days="30").status_code == 200
    assert issue_on_page(client, people, name="c").status_code == 200
    assert ApiToken.objects.get(name="c").lifetime_days == 20


# --- Refusals with a reason ----------------------------------------------------------------------


def test_an_expired_token_gets_401_saying_what_to_do(people):
    token, key = ApiToken.issue(user=people.admin, organisation=people.bank, name="old")
    assert api(key).status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - DAY)
    response = api(key)
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "token_expired"
    assert body["detail"].startswith("This token expired at ")
    assert "Rotate it or create a new token on the tokens page" in body["detail"]
    assert f"{settings.SITE_URL}/accounts/tokens/" in body["detail"]
    assert response["WWW-Authenticate"] == "Token"
    # In Japanese, the default language, as well.
    japanese = Client(HTTP_AUTHORIZATION=f"Token {key}").get("/api/organisations/").json()
    assert "有効期限" in japanese["detail"]


def test_revoked_unknown_and_deactivated_tokens_get_401(people):
    token, key = ApiToken.issue(user=people.admin, organisation=people.bank, name="old")
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    revoked = api(key).json()
    assert revoked["code"] == "token_revoked"
    assert "This token was revoked." in revoked["detail"]
    unknown = api(key + "x")
    assert (unknown.status_code, unknown.json()["code"]) == (401, "authentication_failed")

    _token, other = ApiToken.issue(user=people.contributor, organisation=people.bank, name="c")
    people.contributor.is_active = False
    people.contributor.save(update_fields=["is_active"])
    # A deactivated user's key says nothing about itself.
    assert api(other).json() == unknown.json()


# --- Rotation ------------------------------------------------------------------------------------


def test_rotation_issues_a_new_key_and_keeps_the_old_one_for_the_overlap(people):
    old, old_key = ApiToken.issue(
        user=people.admin,
        organisation=people.bank,
        name="agent-1",
        kind=TokenKind.AGENT,
        lifetime_days=120,
    )
    client = client_for(people.admin)
    before = timezone.now()
    response = client.post(f"/accounts/tokens/{old.pk}/rotate/")
    assert response.status_code == 200
    key = new_key(response)
    page = response.content.decode()
    assert 'id="rotation-overlap"' in page

    old.refresh_from_db()
    new = old.replaced_by
    assert new is not None
    assert new.key_hint == key[: len(new.key_hint)]
    assert (new.name, new.kind, new.organisation, new.user, new.lifetime_days) == (
        "agent-1",
        TokenKind.AGENT,
        people.bank,
        people.admin,
        120,
    )
    assert close_to(new.expires_at, before + 120 * DAY)
    overlap = dt.timedelta(hours=settings.TOKEN_ROTATION_OVERLAP_HOURS)
    assert settings.TOKEN_ROTATION_OVERLAP_HOURS == 72
    assert close_to(old.expires_at, before + overlap)
    overlap_ends = old.expires_at.isoformat()
    assert old.state_at(timezone.now()) == TokenState.REPLACED

    # Both keys upload evidence during the overlap (agent keys may do nothing else).
    for k in (old_key, key):
        assert api(k).json()["detail"] == "Agent tokens may only upload evidence."

    # After the overlap the old key is refused, naming its replacement.
    ApiToken.objects.filter(pk=old.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    refused = api(old_key).json()
    assert refused["code"] == "token_replaced"
    assert "Configure the new key" in refused["detail"]
    assert api(key).status_code == 403  # still an agent key, not an expired one

    rotated = AuditEvent.objects.get(action="token.rotated")
    assert rotated.object_id == str(old.pk)
    assert rotated.details["replacement"] == new.pk
    assert rotated.details["old_key_valid_until"] == overlap_ends
    issued = AuditEvent.objects.get(action="token.issued", object_id=str(new.pk))
    assert issued.details["rotated_from"] == old.pk
    assert old_key not in str(rotated.details)
    assert key not in str(issued.details)


def test_a_token_is_rotated_once_by_its_owner_only(people):
    token, _key = ApiToken.issue(user=people.contributor, organisation=people.bank, name="c")
    url = f"/accounts/tokens/{token.pk}/rotate/"
    # Not the owner: not even the organisation's administrator gets a key for it.
    for user in (people.admin, people.other_admin, people.outsider):
        assert client_for(user).post(url).status_code == 404, user
    owner = client_for(people.contributor)
    assert owner.get(url).status_code == 405
    assert owner.post(url).status_code == 200
    assert owner.post(url).status_code == 404  # it has a successor already
    assert ApiToken.objects.filter(name="c").count() == 2

    revoked, _ = ApiToken.issue(user=people.contributor, organisation=people.bank, name="r")
    ApiToken.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    assert owner.post(f"/accounts/tokens/{revoked.pk}/rotate/").status_code == 404


def test_an_expired_token_can_be_rotated_into_a_fresh_one(people):
    token, key = ApiToken.issue(user=people.admin, organisation=people.bank, name="lapsed")
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - DAY)
    response = client_for(people.admin).post(f"/accounts/tokens/{token.pk}/rotate/")
    assert response.status_code == 200
    assert api(new_key(response)).status_code == 200
    assert api(key).status_code == 401
    token.refresh_from_db()
    assert token.expires_at < timezone.now()


def test_a_token_for_an_organisation_one_has_left_cannot_be_rotated(people):
    token, _key = ApiToken.issue(user=people.contributor, organisation=people.bank, name="c")
    people.contributor.memberships.all().delete()
    response = client_for(people.contributor).post(f"/accounts/tokens/{token.pk}/rotate/")
    assert response.status_code == 404


# --- Tokens that end soon, and the organisation's token page -------------------------------------


def expiring_in(token: ApiToken, days: float) -> None:
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() + days * DAY)


def test_tokens_near_expiry_are_shown_to_their_owner(people):
    soon, _ = ApiToken.issue(user=people.admin, organisation=people.bank, name="soon")
    later, _ = ApiToken.issue(user=people.admin, organisation=people.bank, name="later")
    expiring_in(soon, 5)
    expiring_in(later, settings.TOKEN_EXPIRY_WARNING_DAYS + 2)
    page = client_for(people.admin).get("/accounts/tokens/", HTTP_ACCEPT_LANGUAGE="en")
    text = page.content.decode()
    assert "1 of your tokens expires within 14 days" in text
    banner = text[text.index('id="expiring-tokens"') : text.index("</ul>")]
    assert "soon" in banner
    assert "later" not in banner
    assert f'id="token-{soon.pk}" data-state="expiring"' in text
    assert f'id="token-{later.pk}" data-state="active"' in text


def test_the_organisation_token_page_shows_every_token_and_those_near_expiry(people):
    mine, _ = ApiToken.issue(user=people.admin, organisation=people.bank, name="alice-ci")
    agent, _ = ApiToken.issue(
        user=people.contributor, organisation=people.bank, name="host-7", kind=TokenKind.AGENT
    )
    _elsewhere, _ = ApiToken.issue(
        user=people.other_admin, organisation=people.other_bank, name="other-bank"
    )
    expiring_in(agent, 3)
    url = f"/accounts/tokens/organisations/{people.bank.pk}/"

    page = client_for(people.admin).get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    text = page.content.decode()
    assert "1 token of this organisation expires within 14 days" in text
    assert "host-7" in text
    assert "alice-ci" in text
    assert "other-bank" not in text
    # The one that ends soonest comes first; carol's is hers to rotate, alice may revoke it.
    assert text.index("host-7") < text.index("alice-ci")
    assert f"/accounts/tokens/{agent.pk}/rotate/" not in text
    assert f"/accounts/tokens/{mine.pk}/rotate/" in text
    assert f"/accounts/tokens/{agent.pk}/revoke/" in text
    # Its administrators find it from their token page.
    assert url in client_for(people.admin).get("/accounts/tokens/").content.decode()

    # Only the organisation's administrators: its other members and everyone else find nothing.
    for user in (
        people.contributor,
        people.signatory,
        people.other_admin,
        people.owner,
        people.assessor,
        people.outsider,
    ):
        assert client_for(user).get(url).status_code == 404, user
    assert (
        client_for(people.other_admin)
        .get(f"/accounts/tokens/organisations/{people.other_bank.pk}/")
        .status_code
        == 200
    )
    assert Client().get(url).status_code == 302


def test_an_administrator_revokes_a_colleagues_token(people):
    agent, key = ApiToken.issue(
        user=people.contributor, organisation=people.bank, name="host-7", kind=TokenKind.AGENT
    )
    revoke = f"/accounts/tokens/{agent.pk}/revoke/"
    # Members without the administrator's role, and other organisations' administrators, cannot.
    for user in (people.signatory, people.other_admin, people.owner):
        assert client_for(user).post(revoke).status_code == 404, user
    response = client_for(people.admin).post(revoke, {"back": "organisation"})
    assert response.status_code == 302
    assert response.url == f"/accounts/tokens/organisations/{people.bank.pk}/"
    assert api(key).json()["code"] == "token_revoked"
    event = AuditEvent.objects.get(action="token.revoked")
    assert (event.actor_name, event.details["owner"]) == ("alice", "carol")
    # Revoked once: again is 404.
    assert client_for(people.admin).post(revoke).status_code == 404


# --- Tokens issued before expiry existed ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_existing_tokens_get_the_default_lifetime_from_the_migration(people):
    """The data migration: tokens without an expiry get the default lifetime of their kind
    counted from the migration; one with an expiry keeps it, within the maximum."""
    executor = MigrationExecutor(connection)
    before = [("accounts", "0003_apitoken_lifetime_and_replacement")]
    latest = executor.loader.graph.leaf_nodes("accounts")
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    historic_token = old_apps.get_model("accounts", "ApiToken")
    created = timezone.now() - 800 * DAY
    common = {"user_id": people.admin.pk, "organisation_id": people.bank.pk}
    rows = {
        "user": historic_token.objects.create(kind="user", name="u", key_hash="1" * 64, **common),
        "agent": historic_token.objects.create(kind="agent", name="a", key_hash="2" * 64, **common),
        "short": historic_token.objects.create(
            kind="user",
            name="s",
            key_hash="3" * 64,
            expires_at=timezone.now() + 3 * DAY,
            **common,
        ),
        "forever": historic_token.objects.create(
            kind="user",
            name="f",
            key_hash="4" * 64,
            expires_at=timezone.now() + 9000 * DAY,
            **common,
        ),
    }
    historic_token.objects.update(created_at=created)
    now = timezone.now()
    executor = MigrationExecutor(connection)
    executor.migrate(latest)
    tokens = {name: ApiToken.objects.get(pk=row.pk) for name, row in rows.items()}
    assert tokens["user"].lifetime_days == 90
    assert close_to(tokens["user"].expires_at, now + 90 * DAY)
    assert tokens["agent"].lifetime_days == 365
    assert close_to(tokens["agent"].expires_at, now + 365 * DAY)
    assert close_to(tokens["short"].expires_at, now + 3 * DAY)
    assert close_to(tokens["forever"].expires_at, now + 365 * DAY)
