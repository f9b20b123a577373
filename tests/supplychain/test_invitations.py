"""Invitation links: only a hash is stored, at least 128 random bits, expiry, one organisation per
link, a clear page that reveals nothing for tampered, expired and reused links; claiming an
organisation; reminders for overdue invitations."""

from __future__ import annotations

import datetime as dt
import hashlib
import math

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from mamori.audit.models import AuditEvent
from mamori.organisations.access import Access
from mamori.organisations.models import Membership, Organisation, Role
from mamori.supplychain import services, tasks
from mamori.supplychain.models import Invitation, InvitationStatus
from tests.conftest import PASSWORD, client_for
from tests.supplychain.test_survey_cascade import (
    answer_post,
    build_chain,
    supplier_org,
    token_from_last_mail,
)


@pytest.fixture
def chain(world, django_capture_on_commit_callbacks):
    return build_chain(world, django_capture_on_commit_callbacks)


@pytest.fixture
def fresh(world, chain, django_capture_on_commit_callbacks):
    """A new, unbound Tier-1 invitation and its token."""
    with django_capture_on_commit_callbacks(execute=True):
        sent = services.invite(
            world.admin,
            Access.for_user(world.admin),
            campaign=chain.campaign,
            for_node=chain.service,
            need="network",
            supplier_name="Carrier N",
            country="JP",
            email="n@example.jp",
            site_url="http://testserver/",
        )
    return sent


def _assert_clear_page(response, *secrets):
    assert response.status_code == 404
    body = response.content.decode()
    assert 'id="invalid-link"' in body
    for secret in secrets:
        assert secret not in body


def test_only_the_hash_is_stored_and_the_token_has_at_least_128_bits(fresh):
    token = fresh.token
    # token_urlsafe(32): 43 characters of base64url, 6 bits each.
    assert len(token) * 6 >= 128
    assert math.log2(64) * len(token) >= 256
    invitation = Invitation.objects.get(pk=fresh.invitation.pk)
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    row = Invitation.objects.filter(pk=invitation.pk).values().get()
    assert token not in {str(value) for value in row.values()}
    # The e-mail carries the link; the link is the credential.
    assert mail.outbox[-1].to == ["n@example.jp"]
    assert token_from_last_mail() == token


def test_tokens_differ_per_invitation(chain):
    assert chain.token_a != chain.token_b
    assert chain.a.token_hash != chain.b.token_hash


def test_tampered_token_gives_the_clear_page(client, fresh):
    tampered = fresh.token[:-1] + ("A" if fresh.token[-1] != "A" else "B")
    _assert_clear_page(client.get(f"/supply/i/{tampered}/"), "テスト銀行", "Carrier N")
    _assert_clear_page(client.get("/supply/i/x/"), "テスト銀行")
    # The token was not accepted into the session either.
    assert client.get(f"/supply/responses/{fresh.invitation.pk}/answer/").status_code == 404


def test_expired_token_gives_the_clear_page(client, fresh):
    Invitation.objects.filter(pk=fresh.invitation.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    _assert_clear_page(client.get(f"/supply/i/{fresh.token}/"), "テスト銀行", "Carrier N")


def test_a_bound_link_is_refused_to_another_organisation(world, fresh):
    org_x, user_x = supplier_org("通信X", "carrier-x")
    org_y, user_y = supplier_org("通信Y", "carrier-y")
    x = client_for(user_x)
    assert x.post(f"/supply/i/{fresh.token}/", {"organisation": str(org_x.pk)}).status_code == 302
    invitation = Invitation.objects.get(pk=fresh.invitation.pk)
    assert invitation.organisation == org_x
    # X's members come back through the same link.
    assert x.get(f"/supply/i/{fresh.token}/")["Location"] == f"/supply/responses/{invitation.pk}/"
    # Y (another organisation) is refused, with nothing about the chain shown.
    y = client_for(user_y)
    _assert_clear_page(y.get(f"/supply/i/{fresh.token}/"), "テスト銀行", "通信X")
    _assert_clear_page(
        y.post(f"/supply/i/{fresh.token}/", {"organisation": str(org_y.pk)}), "通信X"
    )
    assert y.get(f"/supply/responses/{invitation.pk}/answer/").status_code == 404
    with pytest.raises(services.WrongState):
        services.bind(user_y, Access.for_user(user_y), invitation, org_y)
    invitation.refresh_from_db()
    assert invitation.organisation == org_x
    # Anonymous visitors learn only that they must sign in.
    response = Client().get(f"/supply/i/{fresh.token}/")
    assert response.status_code == 403
    assert "通信X" not in response.content.decode()
    assert "テスト銀行" not in response.content.decode()


def test_a_session_that_opened_the_link_loses_it_once_bound(world, fresh):
    anonymous = Client()
    assert anonymous.get(f"/supply/i/{fresh.token}/").status_code == 200
    assert anonymous.get(f"/supply/responses/{fresh.invitation.pk}/answer/").status_code == 200
    org_x, user_x = supplier_org("通信X", "carrier-x")
    services.bind(user_x, Access.for_user(user_x), fresh.invitation, org_x)
    assert anonymous.get(f"/supply/responses/{fresh.invitation.pk}/answer/").status_code == 404
    assert anonymous.get(f"/supply/responses/{fresh.invitation.pk}/claim/").status_code == 404


def test_the_owner_cannot_answer_its_own_survey(world, fresh):
    with pytest.raises(services.MamoriError):
        services.bind(world.admin, Access.for_user(world.admin), fresh.invitation, world.bank)


def test_claim_checks_the_password_and_signs_in(world, fresh):
    anonymous = Client()
    anonymous.get(f"/supply/i/{fresh.token}/")
    assert (
        anonymous.post(
            f"/supply/responses/{fresh.invitation.pk}/answer/", answer_post("回線")
        ).status_code
        == 302
    )
    form = {
        "name_ja": "通信N",
        "name_en": "Carrier N KK",
        "corporate_number": "6987650000001",
        "country": "JP",
        "username": "carrier-n",
        "email": "admin@carrier.example",
        "password": "password",
        "password2": "password",
    }
    weak = anonymous.post(f"/supply/responses/{fresh.invitation.pk}/claim/", form)
    assert weak.status_code == 422
    assert not Organisation.objects.filter(name_en="Carrier N KK").exists()
    taken = anonymous.post(
        f"/supply/responses/{fresh.invitation.pk}/claim/",
        dict(form, username="alice", password=PASSWORD, password2=PASSWORD),
    )
    assert taken.status_code == 422
    assert not Organisation.objects.filter(name_en="Carrier N KK").exists()
    response = anonymous.post(
        f"/supply/responses/{fresh.invitation.pk}/claim/",
        dict(form, password=PASSWORD, password2=PASSWORD),
    )
    assert response.status_code == 302
    organisation = Organisation.objects.get(name_en="Carrier N KK")
    membership = Membership.objects.get(organisation=organisation)
    assert membership.role == Role.APPLICANT_ADMIN
    assert membership.user.check_password(PASSWORD)
    assert int(anonymous.session["_auth_user_id"]) == membership.user.pk
    invitation = Invitation.objects.get(pk=fresh.invitation.pk)
    assert invitation.organisation == organisation
    assert invitation.status == InvitationStatus.ANSWERED
    assert AuditEvent.objects.filter(
        action="supplychain.invitation_claimed", object_id=str(invitation.pk)
    ).exists()
    # Claiming works once: the signed-in user now just sees its answers.
    assert anonymous.get(f"/supply/responses/{invitation.pk}/claim/").status_code == 404
    assert anonymous.get(f"/supply/responses/{invitation.pk}/").status_code == 200


def test_signed_in_users_cannot_claim(world, fresh):
    c = client_for(world.other_admin)
    c.get(f"/supply/i/{fresh.token}/")
    assert c.get(f"/supply/responses/{fresh.invitation.pk}/claim/").status_code == 404


# --- Reminders --------------------------------------------------------------------------------


def test_reminders_go_once_per_window_and_only_to_overdue_invitations(
    world, chain, fresh, django_capture_on_commit_callbacks
):
    old_token = fresh.token
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.send_invitation_reminders() == 0  # nothing overdue yet
    assert mail.outbox == []
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    # Overdue: the fresh (unbound) one and the answered chain ones; only the fresh one counts.
    Invitation.objects.update(due_on=yesterday)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.send_invitation_reminders() == 1
    assert [m.to for m in mail.outbox] == [["n@example.jp"]]
    new_token = token_from_last_mail()
    assert new_token != old_token
    # The old link stopped working; the new one works.
    assert Client().get(f"/supply/i/{old_token}/").status_code == 404
    assert Client().get(f"/supply/i/{new_token}/").status_code == 200
    assert AuditEvent.objects.filter(action="supplychain.invitation_reminded").count() == 1
    # Not twice in the same window.
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.send_invitation_reminders() == 0
    assert len(mail.outbox) == 1
    # After the window, once more.
    Invitation.objects.filter(pk=fresh.invitation.pk).update(
        last_reminded_at=timezone.now() - services.REMINDER_WINDOW - dt.timedelta(minutes=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.send_invitation_reminders() == 1
    assert len(mail.outbox) == 2


def test_a_bound_overdue_invitation_is_reminded_with_its_answers_page(
    world, fresh, django_capture_on_commit_callbacks
):
    org_x, user_x = supplier_org("通信X", "carrier-x")
    services.bind(user_x, Access.for_user(user_x), fresh.invitation, org_x)
    before = Invitation.objects.get(pk=fresh.invitation.pk).token_hash
    Invitation.objects.filter(pk=fresh.invitation.pk).update(
        due_on=timezone.localdate() - dt.timedelta(days=3)
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.send_invitation_reminders() == 1
    assert f"/supply/responses/{fresh.invitation.pk}/" in mail.outbox[0].body
    assert Invitation.objects.get(pk=fresh.invitation.pk).token_hash == before


def test_declined_invitations_are_not_reminded(world, fresh, django_capture_on_commit_callbacks):
    services.decline(None, fresh.invitation)
    Invitation.objects.update(due_on=timezone.localdate() - dt.timedelta(days=3))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.send_invitation_reminders() == 0
    assert mail.outbox == []


def test_the_beat_schedule_runs_the_reminders():
    from mamori.celery import app

    app.loader.import_default_modules()
    schedule = app.conf.beat_schedule
    assert any(
        entry["task"] == "mamori.supplychain.tasks.send_invitation_reminders"
        for entry in schedule.values()
    )
    assert "mamori.supplychain.tasks.send_invitation_reminders" in app.tasks
