"""Managing people: member pages, new accounts with a one-time password, new organisations and
the staff admin. Every rule is tested both ways, and a refused request leaves the database as
it was."""

from __future__ import annotations

import json
import re
import threading

import pytest
from django.contrib.messages import constants as message_levels
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from mamori.accounts.models import User
from mamori.audit.models import AuditEvent
from mamori.audit.services import verify_trail
from mamori.catalogue.models import Catalogue
from mamori.catalogue.services import current_catalogue
from mamori.certificates.models import Certificate
from mamori.core.errors import MamoriError, NotAllowed, WrongState
from mamori.organisations import permissions, services
from mamori.organisations.models import (
    Category,
    Membership,
    MembershipInvitation,
    Organisation,
    Role,
)
from tests.conftest import client_for, make_user

pytestmark = pytest.mark.django_db


def corporate_number(base: str) -> str:
    """A 13-digit corporate number with the right check digit for these twelve digits."""
    total = sum(
        int(digit) * (1 if position % 2 else 2)
        for position, digit in enumerate(reversed(base), start=1)
    )
    return f"{9 - total % 9}{base}"


def english(client: Client) -> Client:
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def members_url(organisation) -> str:
    return reverse("organisations:members", args=[organisation.pk])


def add_url(organisation) -> str:
    return reverse("organisations:add_member", args=[organisation.pk])


def remove_url(membership) -> str:
    return reverse("organisations:remove_member", args=[membership.organisation_id, membership.pk])


def membership(user, organisation, role) -> Membership:
    return Membership.objects.get(user=user, organisation=organisation, role=role)


def footprint() -> tuple:
    """Everything the member and organisation pages could write."""
    return (
        tuple(
            Membership.objects.order_by("pk").values_list(
                "pk", "user_id", "organisation_id", "role"
            )
        ),
        tuple(User.objects.order_by("pk").values_list("pk", "username", "password", "email")),
        tuple(Organisation.objects.order_by("pk").values_list("pk", "name_ja", "corporate_number")),
        AuditEvent.objects.count(),
    )


def levels(response) -> set[int]:
    return {message.level for message in get_messages(response.wsgi_request)}


def new_user_data(**overrides) -> dict:
    return {
        "mode": "new",
        "username": "dave",
        "display_name": "Dave Dev",
        "email": "dave@example.jp",
        "language": "en",
        "role": Role.APPLICANT_CONTRIBUTOR,
        **overrides,
    }


# --- Who sees the member list -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "status", "manages"),
    [
        ("admin", 200, True),
        ("contributor", 200, False),
        ("signatory", 200, False),
        ("owner", 200, True),
        ("assessor", 404, False),  # sees the bank because of its submission, not its people
        ("other_admin", 404, False),
        ("outsider", 404, False),
    ],
)
def test_who_sees_the_bank_member_list(world, persona, status, manages):
    world.submitted()  # so ada, the assessor, can see the bank itself
    client = client_for(getattr(world, persona))
    assert client.get(reverse("organisations:detail", args=[world.bank.pk])).status_code == (
        200 if persona != "other_admin" and persona != "outsider" else 404
    )
    response = client.get(members_url(world.bank))
    assert response.status_code == status
    if status == 404:
        assert "carol@example.jp" not in response.content.decode()
        return
    page = response.content.decode()
    for user in (world.admin, world.contributor, world.signatory):
        assert user.email in page
        assert f"<code>{user.username}</code>" in page
    assert (add_url(world.bank) in page) is manages
    assert (
        remove_url(membership(world.contributor, world.bank, Role.APPLICANT_CONTRIBUTOR)) in page
    ) is manages


def test_assessors_read_their_own_body_members(world):
    client = client_for(world.assessor)
    response = client.get(members_url(world.body))
    assert response.status_code == 200
    page = response.content.decode()
    assert world.assessor2.email in page
    assert add_url(world.body) not in page
    assert client.get(members_url(world.other_body)).status_code == 404


def test_anonymous_visitors_are_sent_to_login(world):
    response = Client().get(members_url(world.bank))
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/?next=")


def test_the_member_list_costs_the_same_queries_however_many_members(world):
    client = client_for(world.admin)
    client.get(members_url(world.bank))  # warm the session and the caches

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(members_url(world.bank)).status_code == 200
        return len(queries)

    before = count()
    for index in range(8):
        make_user(f"extra{index}", world.bank, Role.APPLICANT_CONTRIBUTOR)
    assert count() == before


def test_the_pages_link_to_the_member_list(world):
    admin = client_for(world.admin)
    assert members_url(world.bank) in admin.get("/").content.decode()
    assert (
        members_url(world.bank)
        in admin.get(reverse("organisations:detail", args=[world.bank.pk])).content.decode()
    )
    # Contributors read the list from the organisation page; the home page link is for admins.
    contributor = client_for(world.contributor)
    assert members_url(world.bank) not in contributor.get("/").content.decode()
    assert (
        members_url(world.bank)
        in contributor.get(reverse("organisations:detail", args=[world.bank.pk])).content.decode()
    )
    owner = client_for(world.owner)
    assert reverse("organisations:create") in owner.get("/organisations/").content.decode()
    assert reverse("organisations:create") not in admin.get("/organisations/").content.decode()


def test_the_member_pages_speak_japanese_by_default(world):
    client = client_for(world.admin)  # no Accept-Language: Japanese, the default
    page = client.get(members_url(world.bank)).content.decode()
    for text in (
        "メンバー",
        "申請組織管理者",
        "役員署名者",
        "アカウントを持っている人を招待",
        "登録日",
    ):
        assert text in page
    refused = client.post(remove_url(membership(world.admin, world.bank, Role.APPLICANT_ADMIN)))
    assert [str(m) for m in get_messages(refused.wsgi_request)] == [
        "alice はこの組織の最後の申請組織管理者です。"
        "先に別のメンバーを申請組織管理者にしてください。"
    ]


# --- Inviting an existing user (tests/organisations/test_membership_consent.py has the rest) ----


def test_an_applicant_admin_invites_an_existing_user(world):
    before = footprint()
    response = client_for(world.admin).post(
        add_url(world.bank),
        {"mode": "existing", "username": "eve", "role": Role.BOARD_SIGNATORY},
    )
    assert (response.status_code, response.url) == (302, members_url(world.bank))
    assert message_levels.SUCCESS in levels(response)
    assert footprint()[0] == before[0]  # no membership before eve accepts
    invitation = MembershipInvitation.objects.get()
    event = AuditEvent.objects.get(action="membership.invited")
    assert (event.actor, event.object_id, event.organisation) == (
        world.admin,
        str(invitation.pk),
        world.bank,
    )
    assert event.details["username"] == "eve"
    assert event.details["role"] == "board_signatory"
    services.accept_invitation(world.outsider, invitation.pk)
    added = membership(world.outsider, world.bank, Role.BOARD_SIGNATORY)
    event = AuditEvent.objects.get(action="membership.added")
    assert (event.actor, event.object_id, event.organisation) == (
        world.outsider,
        str(added.pk),
        world.bank,
    )
    assert event.details == {
        "user": "eve",
        "user_id": world.outsider.pk,
        "role": "board_signatory",
        "invitation": invitation.pk,
        "invited_by": "alice",
    }
    assert verify_trail() is None


@pytest.mark.parametrize("persona", ["contributor", "signatory"])
def test_members_without_the_right_cannot_add(world, persona):
    before = footprint()
    response = client_for(getattr(world, persona)).post(
        add_url(world.bank), {"mode": "existing", "username": "eve", "role": "applicant_admin"}
    )
    assert response.status_code == 403
    assert footprint() == before


@pytest.mark.parametrize("persona", ["assessor", "other_admin", "outsider"])
def test_those_outside_the_organisation_get_404_when_adding(world, persona):
    world.submitted()
    before = footprint()
    response = client_for(getattr(world, persona)).post(
        add_url(world.bank), {"mode": "existing", "username": "eve", "role": "applicant_admin"}
    )
    assert response.status_code == 404
    assert footprint() == before


@pytest.mark.parametrize("role", [Role.ASSESSOR, Role.SCHEME_OWNER])
def test_an_applicant_admin_cannot_grant_scheme_roles(world, role):
    before = footprint()
    client = english(client_for(world.admin))
    response = client.post(
        add_url(world.bank), {"mode": "existing", "username": "eve", "role": role}
    )
    assert response.status_code == 422
    assert "role" in response.context["invite_form"].errors
    assert footprint() == before
    # The service refuses it too, whatever interface calls it.
    with pytest.raises(NotAllowed):
        services.invite_member(world.admin, world.access(world.admin), world.bank.pk, "eve", role)
    assert footprint() == before


def test_an_applicant_admin_cannot_touch_another_organisation_through_the_service(world):
    before = footprint()
    with pytest.raises(NotAllowed):
        services.invite_member(
            world.admin, world.access(world.admin), world.other_bank.pk, "eve", "applicant_admin"
        )
    assert footprint() == before


def test_only_scheme_owners_grant_assessor_and_only_in_a_certification_body(world):
    owner = english(client_for(world.owner))
    response = owner.post(
        add_url(world.body), {"mode": "existing", "username": "eve", "role": Role.ASSESSOR}
    )
    assert response.status_code == 302
    services.accept_invitation(world.outsider, MembershipInvitation.objects.get().pk)
    assert membership(world.outsider, world.body, Role.ASSESSOR)

    before = footprint()
    # The role is not offered for a bank...
    response = owner.post(
        add_url(world.bank), {"mode": "existing", "username": "eve", "role": Role.ASSESSOR}
    )
    assert response.status_code == 422
    assert footprint() == before
    # ...and the model's own rule refuses it behind the service as well.
    with pytest.raises(MamoriError) as refused:
        services.invite_member(
            world.owner, world.access(world.owner), world.bank.pk, "eve", Role.ASSESSOR
        )
    assert refused.value.field == "role"
    assert "certification body" in refused.value.message
    assert footprint() == before


def test_a_scheme_owner_grants_scheme_owner(world):
    response = client_for(world.owner).post(
        add_url(world.secretariat),
        {"mode": "existing", "username": "eve", "role": Role.SCHEME_OWNER},
    )
    assert response.status_code == 302
    services.accept_invitation(world.outsider, MembershipInvitation.objects.get().pk)
    assert membership(world.outsider, world.secretariat, Role.SCHEME_OWNER)


def test_members_of_a_body_cannot_grant_there(world):
    before = footprint()
    response = client_for(world.assessor).post(
        add_url(world.body), {"mode": "existing", "username": "eve", "role": Role.ASSESSOR}
    )
    assert response.status_code == 403
    assert footprint() == before


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("carol", "carol already has this role here."),  # the list shows it: nothing new
        ("", "This field is required."),
    ],
)
def test_inviting_a_member_again_is_a_field_error(world, username, message):
    before = footprint()
    response = english(client_for(world.admin)).post(
        add_url(world.bank),
        {"mode": "existing", "username": username, "role": Role.APPLICANT_CONTRIBUTOR},
    )
    assert response.status_code == 422
    assert response.context["invite_form"].errors["username"] == [message]
    assert message in response.content.decode()
    assert footprint() == before


# --- Creating a user ----------------------------------------------------------------------------


def test_a_new_user_gets_a_password_shown_once_that_signs_in(world, production_hashing):
    client = english(client_for(world.admin))
    response = client.post(add_url(world.bank), new_user_data())
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    password = re.search(r'<code class="secret" id="initial-password">([^<]+)</code>', page).group(
        1
    )
    assert len(password) >= 20

    dave = User.objects.get(username="dave")
    assert (dave.display_name, dave.email, dave.language) == ("Dave Dev", "dave@example.jp", "en")
    assert dave.check_password(password)
    assert dave.password.startswith("argon2$")
    assert membership(dave, world.bank, Role.APPLICANT_CONTRIBUTOR)

    # Shown once: the member list afterwards does not carry it.
    assert password not in client.get(members_url(world.bank)).content.decode()

    # The password signs in through the real, throttled login page.
    signed_in = Client(REMOTE_ADDR="192.0.2.40").post(
        "/accounts/login/", {"username": "dave", "password": password}
    )
    assert (signed_in.status_code, signed_in.url) == (302, "/")
    # And through the test client's own login (django-axes wants the request it came with).
    assert Client().login(username="dave", password=password, request=signed_in.wsgi_request)
    assert not Client().login(username="dave", password="wrong", request=signed_in.wsgi_request)

    # The audit trail records the account and the membership, never the password.
    created = AuditEvent.objects.get(action="user.created")
    assert (created.actor, created.object_id, created.organisation) == (
        world.admin,
        str(dave.pk),
        world.bank,
    )
    assert created.details == {"username": "dave", "language": "en"}
    added = AuditEvent.objects.get(action="membership.added")
    assert added.details["user"] == "dave"
    for event in AuditEvent.objects.all():
        text = json.dumps(event.details)
        assert password not in text
        assert dave.password not in text
    assert verify_trail() is None


def test_generated_passwords_differ_and_pass_the_password_rules(world):
    passwords = {services.generate_initial_password() for _ in range(50)}
    assert len(passwords) == 50
    for password in passwords:
        assert re.fullmatch(r"[a-z2-9]{5}(-[a-z2-9]{5}){3}", password)


def test_a_scheme_owner_creates_the_first_administrator(world):
    organisation = Organisation.objects.create(
        name_ja="新銀行", name_en="New Bank", category=Category.FINANCIAL_INSTITUTION
    )
    response = client_for(world.owner).post(
        add_url(organisation), new_user_data(username="nora", role=Role.APPLICANT_ADMIN)
    )
    assert response.status_code == 200
    nora = User.objects.get(username="nora")
    assert membership(nora, organisation, Role.APPLICANT_ADMIN)
    assert Client().get("/").status_code == 302  # sanity: nothing public changed


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("username", "Alice", "This user name is already taken."),  # any case
        (
            "username",
            "<script>x</script>",
            "Enter a valid username. This value may contain only letters, numbers, and "
            "@/./+/-/_ characters.",
        ),
        ("username", "a" * 151, "Ensure this value has at most 150 characters (it has 151)."),
        ("username", "", "This field is required."),
        ("email", "not-an-email", "Enter a valid email address."),
        ("email", "dave@example.jp\nBcc: x@evil.test", "Enter a valid email address."),
        ("display_name", "", "This field is required."),
        ("display_name", "Dave\x00Dev", "Null characters are not allowed."),
        ("language", "fr", "Select a valid choice. fr is not one of the available choices."),
        (
            "role",
            "scheme_owner",
            "Select a valid choice. scheme_owner is not one of the available choices.",
        ),
    ],
)
def test_bad_new_user_input_is_a_field_error(world, field, value, message):
    before = footprint()
    response = english(client_for(world.admin)).post(
        add_url(world.bank), new_user_data(**{field: value})
    )
    assert response.status_code == 422
    errors = response.context["new_form"].errors
    assert message in errors[field], errors
    assert 'id="initial-password"' not in response.content.decode()
    assert footprint() == before


def test_a_user_name_taken_meanwhile_is_refused_by_the_service(world):
    """The form checks first; the service checks again inside its transaction."""
    before = footprint()
    with pytest.raises(MamoriError) as refused, translation.override("en"):
        services.create_user_and_add(
            world.admin,
            world.access(world.admin),
            world.bank.pk,
            username="CAROL",
            display_name="x",
            email="x@example.jp",
            language="ja",
            role=Role.APPLICANT_CONTRIBUTOR,
        )
    assert (refused.value.field, refused.value.message) == (
        "username",
        "This user name is already taken.",
    )
    assert footprint() == before


def test_a_refused_role_creates_no_user(world):
    before = footprint()
    with pytest.raises(NotAllowed):
        services.create_user_and_add(
            world.contributor,
            world.access(world.contributor),
            world.bank.pk,
            username="zed",
            display_name="Zed",
            email="zed@example.jp",
            language="ja",
            role=Role.APPLICANT_CONTRIBUTOR,
        )
    assert footprint() == before


def test_hostile_display_names_are_shown_escaped(world):
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    client = client_for(world.admin)
    response = client.post(add_url(world.bank), new_user_data(display_name=hostile))
    assert response.status_code == 200
    for page in (response.content.decode(), client.get(members_url(world.bank)).content.decode()):
        assert hostile not in page
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
        assert "<img src=x" not in page
    assert User.objects.get(username="dave").display_name == hostile


def test_a_missing_mode_is_read_as_adding_an_existing_user(world):
    before = footprint()
    response = client_for(world.admin).post(add_url(world.bank), {"username": "dave"})
    assert response.status_code == 422
    assert set(response.context["invite_form"].errors) == {"role"}
    assert footprint() == before


@pytest.mark.parametrize("name", ["add_member", "remove_member", "members"])
def test_only_the_right_methods_are_accepted(world, name):
    client = client_for(world.admin)
    member = membership(world.contributor, world.bank, Role.APPLICANT_CONTRIBUTOR)
    args = [world.bank.pk, member.pk] if name == "remove_member" else [world.bank.pk]
    url = reverse(f"organisations:{name}", args=args)
    before = footprint()
    if name == "members":
        assert client.post(url, {"username": "eve", "role": "applicant_admin"}).status_code == 405
    else:
        assert client.get(url).status_code == 405
    assert footprint() == before


# --- Removing a membership ----------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["admin", "owner"])
def test_removing_a_membership(world, persona):
    carol = membership(world.contributor, world.bank, Role.APPLICANT_CONTRIBUTOR)
    actor = getattr(world, persona)
    response = client_for(actor).post(remove_url(carol))
    assert (response.status_code, response.url) == (302, members_url(world.bank))
    assert message_levels.SUCCESS in levels(response)
    assert not Membership.objects.filter(pk=carol.pk).exists()
    assert User.objects.filter(pk=world.contributor.pk).exists()  # the account stays
    event = AuditEvent.objects.get(action="membership.removed")
    assert (event.actor, event.object_id, event.organisation) == (actor, str(carol.pk), world.bank)
    assert event.details == {
        "user": "carol",
        "user_id": world.contributor.pk,
        "role": "applicant_contributor",
    }
    assert verify_trail() is None


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("contributor", 403),
        ("signatory", 403),
        ("other_admin", 404),
        ("outsider", 404),
        ("assessor", 404),
    ],
)
def test_removing_is_refused_to_others(world, persona, status):
    world.submitted()
    carol = membership(world.contributor, world.bank, Role.APPLICANT_CONTRIBUTOR)
    before = footprint()
    assert client_for(getattr(world, persona)).post(remove_url(carol)).status_code == status
    assert footprint() == before


def test_an_applicant_admin_cannot_remove_a_scheme_granted_role(world):
    granted = Membership.objects.create(
        user=world.outsider, organisation=world.bank, role=Role.SCHEME_OWNER
    )
    before = footprint()
    assert client_for(world.admin).post(remove_url(granted)).status_code == 403
    with pytest.raises(NotAllowed):
        services.remove_member(world.admin, world.access(world.admin), world.bank.pk, granted.pk)
    assert footprint() == before
    assert client_for(world.owner).post(remove_url(granted)).status_code == 302
    assert not Membership.objects.filter(pk=granted.pk).exists()


def test_a_membership_of_another_organisation_is_not_found_here(world):
    oscar = membership(world.other_admin, world.other_bank, Role.APPLICANT_ADMIN)
    before = footprint()
    url = reverse("organisations:remove_member", args=[world.bank.pk, oscar.pk])
    assert client_for(world.admin).post(url).status_code == 404
    assert client_for(world.owner).post(url).status_code == 404
    assert footprint() == before


@pytest.mark.parametrize("persona", ["admin", "owner"])
def test_the_last_applicant_admin_stays_while_others_remain(world, persona):
    alice = membership(world.admin, world.bank, Role.APPLICANT_ADMIN)
    before = footprint()
    response = english(client_for(getattr(world, persona))).post(remove_url(alice))
    assert (response.status_code, response.url) == (302, members_url(world.bank))
    assert message_levels.ERROR in levels(response)
    text = [str(m) for m in get_messages(response.wsgi_request)]
    assert text == [
        "alice is the organisation's last applicant administrator. Make another member an "
        "administrator first."
    ]
    assert footprint() == before


def test_the_last_admin_may_go_with_another_admin_in_place(world):
    client = client_for(world.admin)
    client.post(
        add_url(world.bank), {"mode": "existing", "username": "bob", "role": "applicant_admin"}
    )
    services.accept_invitation(world.signatory, MembershipInvitation.objects.get().pk)
    assert membership(world.signatory, world.bank, Role.APPLICANT_ADMIN)
    response = client.post(remove_url(membership(world.admin, world.bank, Role.APPLICANT_ADMIN)))
    # Alice left the bank and can no longer see its member list: she goes home.
    assert (response.status_code, response.url) == (302, reverse("home"))
    assert not Membership.objects.filter(user=world.admin, organisation=world.bank).exists()
    assert client.get(members_url(world.bank)).status_code == 404


def test_a_second_role_of_the_last_admin_counts_as_another_member(world):
    """Alice as signatory would be left in an organisation without an administrator."""
    Membership.objects.filter(organisation=world.bank).exclude(user=world.admin).delete()
    Membership.objects.create(user=world.admin, organisation=world.bank, role=Role.BOARD_SIGNATORY)
    alice = membership(world.admin, world.bank, Role.APPLICANT_ADMIN)
    with pytest.raises(WrongState):
        services.remove_member(world.owner, world.access(world.owner), world.bank.pk, alice.pk)


def test_the_only_member_of_an_organisation_can_be_removed(world):
    lonely = Organisation.objects.create(
        name_ja="単独", name_en="Alone", category=Category.IT_VENDOR
    )
    only = Membership.objects.create(
        user=world.outsider, organisation=lonely, role=Role.APPLICANT_ADMIN
    )
    response = client_for(world.owner).post(remove_url(only))
    assert response.status_code == 302
    assert not Membership.objects.filter(organisation=lonely).exists()


def test_a_scheme_owner_keeps_their_own_last_scheme_owner_role(world):
    own = membership(world.owner, world.secretariat, Role.SCHEME_OWNER)
    before = footprint()
    response = english(client_for(world.owner)).post(remove_url(own))
    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "You cannot remove your own last scheme-owner role. Ask another scheme owner to do it."
    ]
    assert footprint() == before

    # Another scheme owner may remove it...
    oliver = make_user("oliver", world.secretariat, Role.SCHEME_OWNER, mfa=True)
    assert client_for(oliver).post(remove_url(own)).status_code == 302
    assert not Membership.objects.filter(pk=own.pk).exists()
    # ...and so may Oliver himself, for one of two scheme-owner roles.
    second = Membership.objects.create(user=oliver, organisation=world.bank, role=Role.SCHEME_OWNER)
    services.remove_member(oliver, world.access(oliver), world.bank.pk, second.pk)
    assert not Membership.objects.filter(pk=second.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_two_admins_removing_each_other_at_once_leave_one(catalogue):
    """The organisation row is locked: the second removal sees the first and is refused."""
    from tests.conftest import World

    world = World()
    dan = make_user("dan", world.bank, Role.APPLICANT_ADMIN)
    alice_role = membership(world.admin, world.bank, Role.APPLICANT_ADMIN)
    dan_role = membership(dan, world.bank, Role.APPLICANT_ADMIN)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def remove(actor, target, name):
        # As in two requests: each read its user's roles before either removal happened.
        access = world.access(actor)
        try:
            barrier.wait(timeout=10)
            services.remove_member(actor, access, world.bank.pk, target.pk)
            outcomes[name] = "removed"
        except WrongState:
            outcomes[name] = "refused"
        finally:
            connection.close()

    threads = [
        threading.Thread(target=remove, args=(world.admin, dan_role, "alice removes dan")),
        threading.Thread(target=remove, args=(dan, alice_role, "dan removes alice")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes.values()) == ["refused", "removed"]
    assert (
        Membership.objects.filter(organisation=world.bank, role=Role.APPLICANT_ADMIN).count() == 1
    )
    assert AuditEvent.objects.filter(action="membership.removed").count() == 1
    assert verify_trail() is None


def test_permission_rules_as_plain_functions(world):
    access = world.access
    assert permissions.grantable_roles(access(world.admin), world.bank) == [
        Role.APPLICANT_ADMIN,
        Role.APPLICANT_CONTRIBUTOR,
        Role.BOARD_SIGNATORY,
    ]
    assert permissions.grantable_roles(access(world.admin), world.other_bank) == []
    assert permissions.grantable_roles(access(world.contributor), world.bank) == []
    assert permissions.grantable_roles(access(world.owner), world.bank) == list(Role.values)
    assert Role.ASSESSOR not in permissions.offered_roles(access(world.owner), world.bank)
    assert permissions.offered_roles(access(world.owner), world.body) == list(Role.values)
    assert permissions.can_view_members(access(world.assessor), world.body)
    assert not permissions.can_view_members(access(world.assessor), world.bank)
    assert permissions.can_create_organisation(access(world.owner))
    assert not permissions.can_create_organisation(access(world.admin))


# --- New organisations --------------------------------------------------------------------------


def organisation_data(**overrides) -> dict:
    return {
        "name_ja": "みらい信用金庫",
        "name_en": "Mirai Shinkin Bank",
        "category": Category.FINANCIAL_INSTITUTION,
        "corporate_number": corporate_number("123456789012"),
        "country": "jp",
        **overrides,
    }


def test_a_scheme_owner_creates_an_organisation(world):
    client = client_for(world.owner)
    assert client.get(reverse("organisations:create")).status_code == 200
    response = client.post(reverse("organisations:create"), organisation_data())
    created = Organisation.objects.get(name_en="Mirai Shinkin Bank")
    assert (response.status_code, response.url) == (302, members_url(created))
    assert (created.category, created.corporate_number, created.country) == (
        Category.FINANCIAL_INSTITUTION,
        corporate_number("123456789012"),
        "JP",
    )
    event = AuditEvent.objects.get(action="organisation.created")
    assert (event.actor, event.object_id, event.organisation) == (
        world.owner,
        str(created.pk),
        created,
    )
    assert event.details["corporate_number"] == created.corporate_number
    assert verify_trail() is None


@pytest.mark.parametrize("persona", ["admin", "contributor", "assessor", "other_admin", "outsider"])
def test_nobody_else_finds_the_new_organisation_page(world, persona):
    client = client_for(getattr(world, persona))
    before = footprint()
    assert client.get(reverse("organisations:create")).status_code == 404
    assert client.post(reverse("organisations:create"), organisation_data()).status_code == 404
    assert footprint() == before
    with pytest.raises(NotAllowed):
        services.create_organisation(
            getattr(world, persona), world.access(getattr(world, persona)), **organisation_data()
        )
    assert footprint() == before


def test_anonymous_visitors_are_sent_to_login_for_a_new_organisation(world):
    response = Client().post(reverse("organisations:create"), organisation_data())
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/?next=")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("corporate_number", "1234567890123", "This corporate number's check digit is wrong."),
        ("corporate_number", "12345", "A corporate number has exactly 13 digits."),
        (
            "corporate_number",
            "１２３４５６７８９０１２３",
            "A corporate number has exactly 13 digits.",
        ),
        ("name_ja", "", "This field is required."),
        ("name_en", "x" * 201, "Ensure this value has at most 200 characters (it has 201)."),
        (
            "category",
            "bakery",
            "Select a valid choice. bakery is not one of the available choices.",
        ),
        ("country", "J1", "Enter a two-letter country code such as JP."),
        ("country", "JPN", "Ensure this value has at most 2 characters (it has 3)."),
    ],
)
def test_bad_organisation_input_is_a_field_error(world, field, value, message):
    before = footprint()
    response = english(client_for(world.owner)).post(
        reverse("organisations:create"), organisation_data(**{field: value})
    )
    assert response.status_code == 422
    assert message in response.context["form"].errors[field]
    assert footprint() == before


def test_a_corporate_number_belongs_to_one_organisation(world):
    number = corporate_number("987654321098")
    Organisation.objects.create(
        name_ja="既存", name_en="Existing", category=Category.IT_VENDOR, corporate_number=number
    )
    before = footprint()
    response = english(client_for(world.owner)).post(
        reverse("organisations:create"), organisation_data(corporate_number=number)
    )
    assert response.status_code == 422
    assert response.context["form"].errors["corporate_number"] == [
        "An organisation with this corporate number already exists."
    ]
    with pytest.raises(MamoriError) as refused:
        services.create_organisation(
            world.owner,
            world.access(world.owner),
            **{**organisation_data(corporate_number=number), "country": "JP"},
        )
    assert refused.value.field == "corporate_number"
    assert footprint() == before
    # Without a corporate number, any number of organisations may exist.
    for name in ("A", "B"):
        response = client_for(world.owner).post(
            reverse("organisations:create"), organisation_data(name_en=name, corporate_number="")
        )
        assert response.status_code == 302


def test_hostile_organisation_names_are_shown_escaped(world):
    hostile = "<script>alert(1)</script>"
    client = client_for(world.owner)
    response = client.post(
        reverse("organisations:create"), organisation_data(name_ja=hostile, corporate_number="")
    )
    assert response.status_code == 302
    page = client.get(response.url).content.decode()
    assert hostile not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- The Django admin -----------------------------------------------------------------------------


@pytest.fixture
def staff(world):
    user = make_user("stan", mfa=True)
    user.is_staff = user.is_superuser = True
    user.save(update_fields=["is_staff", "is_superuser"])
    return user


ADMIN_LISTS = (
    "organisations/organisation",
    "organisations/membership",
    "accounts/user",
    "catalogue/catalogue",
    "certificates/certificate",
    "audit/auditevent",
)


def test_verified_staff_open_every_changelist(world, staff):
    certificate = Certificate.objects.get(assessment=world.passed())
    client = client_for(staff)
    assert client.get("/admin/").status_code == 200
    for path in ADMIN_LISTS:
        response = client.get(f"/admin/{path}/")
        assert response.status_code == 200, path
    # The read-only records open as views, with no save button.
    event = AuditEvent.objects.order_by("seq").first()
    for path in (
        f"/admin/certificates/certificate/{certificate.pk}/change/",
        f"/admin/audit/auditevent/{event.pk}/change/",
        f"/admin/catalogue/catalogue/{current_catalogue().pk}/change/",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert 'name="_save"' not in response.content.decode(), path
    user_page = client.get(f"/admin/accounts/user/{world.admin.pk}/change/").content.decode()
    assert 'name="display_name"' in user_page
    assert 'name="language"' in user_page


@pytest.mark.parametrize(
    ("device", "target"), [(True, "/accounts/mfa/verify/"), (False, "/accounts/mfa/setup/")]
)
def test_unverified_staff_are_sent_to_the_second_factor(world, device, target):
    user = make_user("sam", mfa=device)
    user.is_staff = user.is_superuser = True
    user.save(update_fields=["is_staff", "is_superuser"])
    client = client_for(user, verified=False)
    for path in ("/admin/", "/admin/organisations/membership/", "/admin/login/"):
        response = client.get(path)
        assert (response.status_code, response.url) == (302, target), path


@pytest.mark.parametrize("persona", ["admin", "assessor", "owner", "outsider"])
def test_the_admin_does_not_exist_for_non_staff(world, persona):
    client = client_for(getattr(world, persona))
    for path in ("/admin/", "/admin/organisations/membership/", "/admin/accounts/user/1/change/"):
        assert client.get(path).status_code == 404, path


def test_anonymous_visitors_go_to_our_login_never_the_admin_form(world):
    client = Client()
    response = client.get("/admin/organisations/")
    assert (response.status_code, response.url) == (
        302,
        "/accounts/login/?next=/admin/organisations/",
    )
    for query, target in (
        ("", "/admin/"),
        ("?next=/admin/audit/auditevent/", "/admin/audit/auditevent/"),
        ("?next=https://evil.example/", "/admin/"),
        ("?next=/accounts/tokens/", "/admin/"),
    ):
        response = client.get("/admin/login/" + query)
        assert response.status_code == 302
        assert response.url == "/accounts/login/?next=" + target, query
    # Credentials posted to the admin's form are not even read: no way around our login page.
    make_user("stella", password="correct-horse-battery-staple-42")
    response = client.post(
        "/admin/login/", {"username": "stella", "password": "correct-horse-battery-staple-42"}
    )
    assert (response.status_code, response.url) == (302, "/accounts/login/?next=/admin/")
    assert "_auth_user_id" not in client.session


def test_staff_sign_in_through_our_login_page_into_the_admin(world, staff):
    staff.set_password("correct-horse-battery-staple-42")
    staff.save(update_fields=["password"])
    client = Client(REMOTE_ADDR="192.0.2.77")
    response = client.post(
        "/accounts/login/?next=/admin/",
        {"username": "stan", "password": "correct-horse-battery-staple-42", "next": "/admin/"},
    )
    assert (response.status_code, response.url) == (302, "/admin/")
    # The password alone is not enough: the second factor comes first.
    assert client.get("/admin/").url == "/accounts/mfa/verify/"


@pytest.mark.parametrize(
    ("path", "model"),
    [
        ("certificates/certificate", Certificate),
        ("audit/auditevent", AuditEvent),
        ("catalogue/catalogue", Catalogue),
    ],
)
def test_read_only_records_cannot_be_added_changed_or_deleted(world, staff, path, model):
    world.passed()
    client = client_for(staff)
    obj = model.objects.order_by("pk").first()
    before = (footprint(), list(model.objects.order_by("pk").values()))
    assert client.get(f"/admin/{path}/add/").status_code == 403
    assert client.post(f"/admin/{path}/add/", {"number": "X-1"}).status_code == 403
    assert (
        client.post(f"/admin/{path}/{obj.pk}/change/", {"number": "X-1", "action": "x"}).status_code
        == 403
    )
    assert client.get(f"/admin/{path}/{obj.pk}/delete/").status_code == 403
    assert client.post(f"/admin/{path}/{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = client.post(
        f"/admin/{path}/",
        {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)
    after = (footprint(), list(model.objects.order_by("pk").values()))
    # Staff looking leaves no trace except Django's own admin log; nothing of ours changed.
    assert after == before
    assert verify_trail() is None


@pytest.mark.parametrize("path", ["accounts/user", "organisations/organisation"])
def test_users_and_organisations_are_kept_for_the_audit_trail(world, staff, path):
    pk = world.admin.pk if path == "accounts/user" else world.bank.pk
    client = client_for(staff)
    before = footprint()
    assert client.post(f"/admin/{path}/{pk}/delete/", {"post": "yes"}).status_code == 403
    assert footprint() == before


def test_the_admin_enforces_the_membership_rules_and_audits(world, staff):
    client = english(client_for(staff))
    before = footprint()
    refused = client.post(
        "/admin/organisations/membership/add/",
        {"user": world.outsider.pk, "organisation": world.bank.pk, "role": Role.ASSESSOR},
    )
    assert refused.status_code == 200
    assert "Assessors belong to a certification body." in refused.content.decode()
    # An empty organisation is a field error, not a crash in the model's rule.
    missing = client.post(
        "/admin/organisations/membership/add/", {"user": world.outsider.pk, "role": Role.ASSESSOR}
    )
    assert missing.status_code == 200
    assert "This field is required." in missing.content.decode()
    duplicate = client.post(
        "/admin/organisations/membership/add/",
        {
            "user": world.contributor.pk,
            "organisation": world.bank.pk,
            "role": Role.APPLICANT_CONTRIBUTOR,
        },
    )
    assert duplicate.status_code == 200
    assert footprint() == before

    added = client.post(
        "/admin/organisations/membership/add/",
        {"user": world.outsider.pk, "organisation": world.body.pk, "role": Role.ASSESSOR},
    )
    assert added.status_code == 302
    granted = membership(world.outsider, world.body, Role.ASSESSOR)
    event = AuditEvent.objects.get(action="membership.added")
    assert (event.actor, event.object_id, event.details["via"]) == (staff, str(granted.pk), "admin")
    removed = client.post(f"/admin/organisations/membership/{granted.pk}/delete/", {"post": "yes"})
    assert removed.status_code == 302
    assert not Membership.objects.filter(pk=granted.pk).exists()
    assert AuditEvent.objects.get(action="membership.removed").object_id == str(granted.pk)
    assert verify_trail() is None


def test_staff_create_a_user_in_the_admin_and_the_trail_has_no_password(world, staff):
    password = "tidal-Quartz-84-meadow-Lantern"
    response = client_for(staff).post(
        "/admin/accounts/user/add/",
        {
            "username": "wendy",
            "display_name": "Wendy Web",
            "email": "wendy@example.jp",
            "language": "en",
            "usable_password": "true",
            "password1": password,
            "password2": password,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    wendy = User.objects.get(username="wendy")
    assert (wendy.display_name, wendy.language) == ("Wendy Web", "en")
    assert wendy.check_password(password)
    event = AuditEvent.objects.get(action="user.created", object_id=str(wendy.pk))
    assert event.actor == staff
    assert event.details["via"] == "admin"
    text = json.dumps(event.details)
    assert password not in text
    assert "password" not in text
    assert verify_trail() is None
