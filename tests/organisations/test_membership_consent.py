"""Membership consent (issue 10, section 3): nobody joins an organisation without accepting.

Before, an applicant administrator added any existing user by user name: an assessor added this
way marked the bank's answers, and the scheme owner added this way read them. Now the member
form sends an invitation that the invited user accepts or declines after signing in; it expires;
every step is on the audit trail; the answer of the form is the same, in words and in the
queries it costs, whether the user name exists, does not, or belongs to someone who could never
take the role (a conflict of interest).

The personas are built once for the module; each test runs in its own savepoint.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from mamori.assessments.models import Level
from mamori.assessments.services import start_assessment
from mamori.audit.models import AuditEvent
from mamori.audit.services import verify_trail
from mamori.core.errors import NotAllowed, WrongState
from mamori.organisations import services
from mamori.organisations.conflicts import CONFLICT_CODE
from mamori.organisations.models import (
    InvitationState,
    Membership,
    MembershipInvitation,
    Organisation,
    Role,
)
from tests.conftest import World, built_once, client_for, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def scene(django_db_setup, django_db_blocker):
    """The World personas; the bank has a draft assessment with body A, so ada and abe
    (assessors of body A) may never join it, and olive (scheme owner) never joins any applicant."""

    def build():
        world = World()
        start_assessment(world.admin, world.access(world.admin), world.bank, world.body, Level.CE)
        return world

    with built_once(django_db_blocker, build) as world:
        yield world


@pytest.fixture
def world(scene, db):
    return scene


@pytest.fixture(autouse=True)
def _english_messages():
    # The services' messages are matched in English; a page rendered in Japanese by an earlier
    # test on the same worker leaves Japanese active.
    with translation.override("en"):
        yield


def add_url(organisation) -> str:
    return reverse("organisations:add_member", args=[organisation.pk])


def members_url(organisation) -> str:
    return reverse("organisations:members", args=[organisation.pk])


def invite(client, organisation, username: str, role: str = Role.APPLICANT_CONTRIBUTOR):
    return client.post(
        add_url(organisation),
        {"mode": "existing", "username": username, "role": role},
        HTTP_ACCEPT_LANGUAGE="en",
    )


def texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def memberships() -> tuple:
    return tuple(Membership.objects.order_by("pk").values_list("pk", "user_id", "role"))


# --- The invitation and its answer --------------------------------------------------------------


def test_an_invited_user_joins_only_by_accepting(world):
    before = memberships()
    response = invite(client_for(world.admin), world.bank, "eve", Role.BOARD_SIGNATORY)
    assert (response.status_code, response.url) == (302, members_url(world.bank))
    assert memberships() == before  # no role without consent
    invitation = MembershipInvitation.objects.get()
    assert (invitation.user, invitation.role, invitation.state) == (
        world.outsider,
        Role.BOARD_SIGNATORY,
        InvitationState.PENDING,
    )
    assert dt.timedelta(days=13) < invitation.expires_at - timezone.now() <= dt.timedelta(days=14)
    sent = AuditEvent.objects.get(action="membership.invited")
    assert (sent.actor, sent.organisation, sent.object_id) == (
        world.admin,
        world.bank,
        str(invitation.pk),
    )
    # The inviter's list shows it waiting.
    page = client_for(world.admin).get(members_url(world.bank)).content.decode()
    assert re.search(r'<table id="invitations">.*<code>eve</code>', page, re.S)

    eve = client_for(world.outsider)
    assert "/invitations/" in eve.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    listed = eve.get(reverse("organisations:invitations"), HTTP_ACCEPT_LANGUAGE="en")
    assert list(listed.context["invitations"]) == [invitation]
    assert "Test Bank" in listed.content.decode()

    accepted = eve.post(reverse("organisations:accept_invitation", args=[invitation.pk]))
    assert accepted.status_code == 302
    assert Membership.objects.filter(
        user=world.outsider, organisation=world.bank, role=Role.BOARD_SIGNATORY
    ).exists()
    invitation.refresh_from_db()
    assert invitation.state == InvitationState.ACCEPTED
    added = AuditEvent.objects.get(action="membership.added")
    assert added.actor == world.outsider
    assert added.details["invited_by"] == "alice"
    assert AuditEvent.objects.get(action="membership.invitation_accepted").actor == world.outsider
    assert verify_trail() is None
    # Answered: no longer waiting anywhere.
    assert not eve.get(reverse("organisations:invitations")).context["invitations"]


def test_a_declined_invitation_gives_no_role(world):
    invitation = services.invite_member(
        world.admin, world.access(world.admin), world.bank.pk, "eve", Role.APPLICANT_ADMIN
    )
    before = memberships()
    response = client_for(world.outsider).post(
        reverse("organisations:decline_invitation", args=[invitation.pk])
    )
    assert response.status_code == 302
    assert memberships() == before
    invitation.refresh_from_db()
    assert invitation.state == InvitationState.DECLINED
    assert AuditEvent.objects.filter(action="membership.invitation_declined").count() == 1
    # Once answered it cannot be accepted after all.
    with pytest.raises(WrongState):
        services.accept_invitation(world.outsider, invitation.pk)
    assert memberships() == before


@pytest.mark.parametrize("persona", ["admin", "contributor", "owner", "other_admin", "assessor"])
def test_nobody_else_answers_an_invitation(world, persona):
    invitation = services.invite_member(
        world.admin, world.access(world.admin), world.bank.pk, "eve", Role.APPLICANT_ADMIN
    )
    client = client_for(getattr(world, persona))
    before = (memberships(), AuditEvent.objects.count())
    for name in ("accept_invitation", "decline_invitation"):
        assert (
            client.post(reverse(f"organisations:{name}", args=[invitation.pk])).status_code == 404
        )
    assert invitation not in client.get(reverse("organisations:invitations")).context["invitations"]
    assert (memberships(), AuditEvent.objects.count()) == before


def test_an_expired_invitation_cannot_be_accepted(world):
    invitation = services.invite_member(
        world.admin, world.access(world.admin), world.bank.pk, "eve", Role.APPLICANT_ADMIN
    )
    MembershipInvitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    before = (memberships(), AuditEvent.objects.count())
    eve = client_for(world.outsider)
    assert not eve.get(reverse("organisations:invitations")).context["invitations"]
    response = eve.post(
        reverse("organisations:accept_invitation", args=[invitation.pk]), HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 302
    assert texts(response)[0].startswith("This invitation expired on ")
    assert (memberships(), AuditEvent.objects.count()) == before
    # It no longer blocks a new invitation of the same name.
    services.invite_member(
        world.admin, world.access(world.admin), world.bank.pk, "eve", Role.APPLICANT_ADMIN
    )


def test_an_invitation_lapses_with_the_inviters_right(world):
    """Accepting checks the grant again: an administrator removed meanwhile grants nothing."""
    invitation = services.invite_member(
        world.admin, world.access(world.admin), world.bank.pk, "eve", Role.APPLICANT_ADMIN
    )
    second = make_user("ann", world.bank, Role.APPLICANT_ADMIN)
    Membership.objects.filter(user=world.admin, organisation=world.bank).delete()
    before = memberships()
    with pytest.raises(WrongState, match="can no longer grant this role"):
        services.accept_invitation(world.outsider, invitation.pk)
    assert memberships() == before
    assert second.pk  # the bank still has an administrator


def test_the_administrator_withdraws_an_invitation(world):
    invitation = services.invite_member(
        world.admin, world.access(world.admin), world.bank.pk, "eve", Role.APPLICANT_ADMIN
    )
    url = reverse("organisations:cancel_invitation", args=[world.bank.pk, invitation.pk])
    assert client_for(world.contributor).post(url).status_code == 403
    assert client_for(world.other_admin).post(url).status_code == 404
    assert client_for(world.admin).post(url).status_code == 302
    invitation.refresh_from_db()
    assert invitation.state == InvitationState.CANCELLED
    assert AuditEvent.objects.get(action="membership.invitation_cancelled").actor == world.admin
    with pytest.raises(WrongState):
        services.accept_invitation(world.outsider, invitation.pk)
    assert not Membership.objects.filter(user=world.outsider).exists()


# --- Nothing tells whether a user name exists ---------------------------------------------------

SQL_VALUES = re.compile(
    r"'(?:[^']|'')*'|\"s\d+_x\d+\"|\bNULL\b|\bNone\b|\b(?:true|false)\b|\b\d+(?:\.\d+)?\b"
)


def shape(queries) -> list[str]:
    """The statements without their values (and savepoint names): what runs, not with what."""
    return [SQL_VALUES.sub("?", query["sql"]) for query in queries]


def test_the_form_answers_alike_for_every_user_name(world):
    """An existing user who may join, one who may never (ada: an assessor of the body that marks
    the bank), and a name nobody has: the same page, message and queries."""
    answers = {}
    for username in ("eve", "ada", "nobody-at-all"):
        client = client_for(world.admin)
        client.get(members_url(world.bank))  # warm the session
        with CaptureQueriesContext(connection) as queries:
            response = invite(client, world.bank, username)
        answers[username] = (
            response.status_code,
            response.url,
            [text.replace(username, "NAME") for text in texts(response)],
            shape(queries.captured_queries),
        )
    assert answers["eve"] == answers["ada"] == answers["nobody-at-all"]
    status, url, (message,), _shape = answers["eve"]
    assert (status, url) == (302, members_url(world.bank))
    assert message.startswith("NAME is invited as Applicant contributor. They join when they")
    # All three wait on the administrator's list, alike.
    page = client.get(members_url(world.bank)).content.decode()
    for username in ("eve", "ada", "nobody-at-all"):
        assert f"<code>{username}</code>" in page
    # Only eve's reaches anyone; ada's and the unknown name's reach nobody and expire.
    reached = dict(MembershipInvitation.objects.values_list("username", "user_id"))
    assert reached == {"eve": world.outsider.pk, "ada": None, "nobody-at-all": None}
    assert (
        not client_for(world.assessor)
        .get(reverse("organisations:invitations"))
        .context["invitations"]
    )
    # The trail (staff only) says why.
    withheld = {
        event.details["username"]: event.details["withheld"]
        for event in AuditEvent.objects.filter(action="membership.invited")
    }
    assert withheld == {"eve": None, "ada": "conflict", "nobody-at-all": "unknown"}


def test_repeating_an_invitation_is_refused_alike_for_unknown_names(world):
    client = client_for(world.admin)
    for username in ("eve", "nobody-at-all"):
        invite(client, world.bank, username)
        again = invite(client, world.bank, username)
        assert again.status_code == 422
        (error,) = again.context["invite_form"].errors["username"]
        assert error.startswith(f"{username} is already invited to this role;")


# --- Conflicts of interest at invitation and at acceptance ---------------------------------------


def test_an_assessor_of_the_body_never_joins_the_bank(world):
    """The reported case: alice adds ada, an assessor of the body marking the bank. The form
    answers as for anyone, nothing reaches ada, and if an invitation reached her before the bank
    chose body A, accepting it is refused."""
    response = invite(client_for(world.admin), world.bank, "ada")
    assert response.status_code == 302
    assert not Membership.objects.filter(user=world.assessor, organisation=world.bank).exists()
    # An invitation that reached ada while the bank had no assessment with body A:
    other = Organisation.objects.create(name_ja="新銀行", name_en="New Bank", category="other")
    admin = make_user("nina", other, Role.APPLICANT_ADMIN)
    early = services.invite_member(admin, world.access(admin), other.pk, "ada", "board_signatory")
    assert early.user == world.assessor
    start_assessment(admin, world.access(admin), other, world.body, Level.CE)
    before = (memberships(), AuditEvent.objects.count())
    response = client_for(world.assessor).post(
        reverse("organisations:accept_invitation", args=[early.pk]), HTTP_ACCEPT_LANGUAGE="en"
    )
    assert texts(response) == [
        "An assessor cannot hold a role in an organisation whose assessments their "
        "certification body marks (conflict of interest)."
    ]
    assert (memberships(), AuditEvent.objects.count()) == before


def test_the_scheme_owner_never_joins_an_applicant(world):
    # Invited by the bank: withheld, as any name.
    invite(client_for(world.admin), world.bank, "olive")
    assert MembershipInvitation.objects.get(username="olive").user is None
    # The scheme owner, who manages every member list, is told at once.
    owner = world.access(world.owner)
    for organisation, username, role in (
        (world.bank, "eve", Role.SCHEME_OWNER),  # a scheme-owner role in an applicant
        (world.secretariat, "carol", Role.SCHEME_OWNER),  # carol works for the bank
        (world.body, "carol", Role.ASSESSOR),  # the bank's assessments are marked by body A
    ):
        with pytest.raises(NotAllowed) as refused:
            services.invite_member(world.owner, owner, organisation.pk, username, role)
        assert refused.value.code == CONFLICT_CODE
    # A page says it at the role.
    response = invite(client_for(world.owner), world.secretariat, "carol", Role.SCHEME_OWNER)
    assert response.status_code == 403
    assert response.context["invite_form"].errors["role"] == [
        "A scheme owner cannot hold a role in an applicant organisation: scheme owners never "
        "see an applicant's answers."
    ]


def test_the_scheme_owner_appoints_an_assessor_who_accepts(world):
    invitation = services.invite_member(
        world.owner, world.access(world.owner), world.body.pk, "eve", Role.ASSESSOR
    )
    membership = services.accept_invitation(world.outsider, invitation.pk)
    assert (membership.organisation, membership.role) == (world.body, Role.ASSESSOR)
    # The new assessor is asked for the second factor before anything else.
    response = client_for(world.outsider, verified=False).get("/")
    assert response.status_code == 302
    assert response.url.startswith("/accounts/mfa/")


def test_staff_cannot_grant_a_conflicting_role_in_the_admin(world):
    staff = make_user("stan", mfa=True)
    staff.is_staff = staff.is_superuser = True
    staff.save(update_fields=["is_staff", "is_superuser"])
    before = memberships()
    response = client_for(staff).post(
        "/admin/organisations/membership/add/",
        {"user": world.assessor.pk, "organisation": world.bank.pk, "role": Role.BOARD_SIGNATORY},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    assert "(conflict of interest)" in response.content.decode()
    assert memberships() == before


def test_the_pages_speak_japanese(world):
    invitation = services.invite_member(
        world.admin, world.access(world.admin), world.bank.pk, "eve", Role.APPLICANT_ADMIN
    )
    eve = client_for(world.outsider)
    page = eve.get(reverse("organisations:invitations")).content.decode()
    for text in ("招待", "承諾", "辞退", "テスト銀行"):
        assert text in page
    members = client_for(world.admin).get(members_url(world.bank)).content.decode()
    assert "回答待ちの招待" in members
    response = eve.post(reverse("organisations:accept_invitation", args=[invitation.pk]))
    assert texts(response) == ["テスト銀行の申請組織管理者になりました。"]
