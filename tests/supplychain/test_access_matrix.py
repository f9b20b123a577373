"""Authorization as a role × object × action matrix. Outsiders get 404 (anonymous visitors of
sign-in-only pages are sent to sign in); nobody learns that an object exists."""

from __future__ import annotations

import pytest
from django.test import Client

from mamori.organisations.models import Organisation
from tests.conftest import client_for
from tests.supplychain.test_survey_cascade import build_chain

ROLES = (
    "institution_admin",
    "institution_member",
    "tier1",
    "tier2",
    "unrelated",
    "scheme_owner",
    "anonymous",
)
OK, GONE, LOGIN, DONE = 200, 404, "login", "done"
# A link bound to an organisation, opened by someone not signed in: a page asking to sign in
# as a member of the organisation that answers (403), naming nobody.
SIGN_IN = 403


def _invite_form(target_pk: int) -> dict:
    return {
        "target": str(target_pk),
        "need": "backup",
        "supplier_name": "New Supplier",
        "country": "JP",
        "email": "new@example.jp",
    }


# (object, action) → expected outcome per role. GETs first; the POSTs change state.
MATRIX = {
    ("campaign", "view"): {
        "institution_admin": OK,
        "institution_member": OK,
        "tier1": GONE,
        "tier2": GONE,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": LOGIN,
    },
    ("campaign", "export"): {
        "institution_admin": OK,
        "institution_member": OK,
        "tier1": GONE,
        "tier2": GONE,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": LOGIN,
    },
    ("tier1 response", "view"): {
        "institution_admin": OK,
        "institution_member": OK,
        "tier1": OK,
        "tier2": GONE,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": GONE,
    },
    ("tier1 response", "edit"): {
        "institution_admin": GONE,
        "institution_member": GONE,
        "tier1": OK,
        "tier2": GONE,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": GONE,
    },
    ("tier2 response", "view"): {
        "institution_admin": OK,
        "institution_member": OK,
        "tier1": GONE,
        "tier2": OK,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": GONE,
    },
    ("tier2 response", "edit"): {
        "institution_admin": GONE,
        "institution_member": GONE,
        "tier1": GONE,
        "tier2": OK,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": GONE,
    },
    ("tier1 invitations", "view"): {
        "institution_admin": GONE,
        "institution_member": GONE,
        "tier1": OK,
        "tier2": GONE,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": LOGIN,
    },
    ("sector", "view"): {
        "institution_admin": GONE,
        "institution_member": GONE,
        "tier1": GONE,
        "tier2": GONE,
        "unrelated": GONE,
        "scheme_owner": OK,
        "anonymous": LOGIN,
    },
    ("surveys", "view"): {
        "institution_admin": OK,
        "institution_member": OK,
        "tier1": OK,
        "tier2": OK,
        "unrelated": OK,
        "scheme_owner": OK,
        "anonymous": LOGIN,
    },
    ("own services", "view"): {
        "institution_admin": OK,
        "institution_member": GONE,
        "tier1": GONE,
        "tier2": GONE,
        "unrelated": OK,
        "scheme_owner": OK,
        "anonymous": LOGIN,
    },
    ("new survey", "view"): {
        "institution_admin": OK,
        "institution_member": GONE,
        "tier1": GONE,
        "tier2": GONE,
        "unrelated": OK,
        "scheme_owner": OK,
        "anonymous": LOGIN,
    },
    ("service graph", "view"): {
        "institution_admin": OK,
        "institution_member": OK,
        "tier1": GONE,
        "tier2": GONE,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": LOGIN,
    },
    ("concentration", "choose"): {
        "institution_admin": DONE,
        "institution_member": DONE,
        "tier1": OK,
        "tier2": OK,
        "unrelated": OK,
        "scheme_owner": OK,
        "anonymous": LOGIN,
    },
    ("institution concentration", "view"): {
        "institution_admin": OK,
        "institution_member": OK,
        "tier1": GONE,
        "tier2": GONE,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": LOGIN,
    },
    ("sector concentration", "view"): {
        "institution_admin": GONE,
        "institution_member": GONE,
        "tier1": GONE,
        "tier2": GONE,
        "unrelated": GONE,
        "scheme_owner": OK,
        "anonymous": LOGIN,
    },
    ("institution graph", "import"): {
        "institution_admin": OK,
        "institution_member": GONE,
        "tier1": GONE,
        "tier2": GONE,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": LOGIN,
    },
    ("institution graph", "export"): {
        "institution_admin": OK,
        "institution_member": GONE,
        "tier1": GONE,
        "tier2": GONE,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": LOGIN,
    },
    ("tier1 link", "open"): {
        "institution_admin": GONE,
        "institution_member": GONE,
        "tier1": DONE,
        "tier2": GONE,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": SIGN_IN,
    },
    ("tier1 offline", "view"): {
        "institution_admin": GONE,
        "institution_member": GONE,
        "tier1": OK,
        "tier2": GONE,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": GONE,
    },
    ("tier1 offline upload", "view"): {
        "institution_admin": GONE,
        "institution_member": GONE,
        "tier1": OK,
        "tier2": GONE,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": GONE,
    },
    ("tier1 offline", "xlsx"): {
        "institution_admin": GONE,
        "institution_member": GONE,
        "tier1": OK,
        "tier2": GONE,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": GONE,
    },
    ("tier1 offline", "csv"): {
        "institution_admin": GONE,
        "institution_member": GONE,
        "tier1": OK,
        "tier2": GONE,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": GONE,
    },
    ("tier1 response", "claim"): {
        "institution_admin": GONE,
        "institution_member": GONE,
        "tier1": GONE,
        "tier2": GONE,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": GONE,
    },
    ("tier2 response", "save"): {
        "institution_admin": GONE,
        "institution_member": GONE,
        "tier1": GONE,
        "tier2": DONE,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": GONE,
    },
    ("tier1 invitations", "send"): {
        "institution_admin": GONE,
        "institution_member": GONE,
        "tier1": DONE,
        "tier2": GONE,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": LOGIN,
    },
    ("campaign", "invite"): {
        "institution_admin": DONE,
        "institution_member": GONE,
        "tier1": GONE,
        "tier2": GONE,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": LOGIN,
    },
    ("tier1 hearing", "record"): {
        "institution_admin": DONE,
        "institution_member": GONE,
        "tier1": GONE,
        "tier2": GONE,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": LOGIN,
    },
    ("tier2 response", "decline"): {
        "institution_admin": GONE,
        "institution_member": GONE,
        "tier1": GONE,
        "tier2": DONE,
        "unrelated": GONE,
        "scheme_owner": GONE,
        "anonymous": GONE,
    },
    # B registered itself through A's link (unverified here): A, which invited it, or the scheme
    # owner confirms it; the institution did not invite B, and B cannot vouch for itself.
    ("tier2 organisation", "confirm"): {
        "institution_admin": GONE,
        "institution_member": GONE,
        "tier1": DONE,
        "tier2": GONE,
        "unrelated": GONE,
        "scheme_owner": DONE,
        "anonymous": LOGIN,
    },
}


def _requests(chain):
    from mamori.supplychain.models import ImportState, OfflineImport
    from tests.supplychain.test_survey_cascade import answer_post

    campaign, a, b = chain.campaign, chain.a, chain.b
    upload, _created = OfflineImport.objects.get_or_create(
        invitation=a,
        defaults={
            "file_name": "answers.csv",
            "language": "en",
            "site_url": "http://testserver/",
            "state": ImportState.IMPORTED,
            "summary": {"format": "csv", "sites": 1, "needs": 1, "invited": 0},
        },
    )
    return {
        ("campaign", "view"): ("get", f"/supply/campaigns/{campaign.pk}/", None),
        ("campaign", "export"): ("get", f"/supply/campaigns/{campaign.pk}/graph.json", None),
        ("tier1 response", "view"): ("get", f"/supply/responses/{a.pk}/", None),
        ("tier1 response", "edit"): ("get", f"/supply/responses/{a.pk}/answer/", None),
        ("tier2 response", "view"): ("get", f"/supply/responses/{b.pk}/", None),
        ("tier2 response", "edit"): ("get", f"/supply/responses/{b.pk}/answer/", None),
        ("tier1 invitations", "view"): ("get", f"/supply/responses/{a.pk}/invite/", None),
        ("sector", "view"): ("get", "/supply/sector/", None),
        ("surveys", "view"): ("get", "/supply/", None),
        ("own services", "view"): ("get", "/supply/services/", None),
        ("new survey", "view"): ("get", "/supply/campaigns/new/", None),
        ("service graph", "view"): ("get", f"/supply/services/{chain.service.pk}/", None),
        ("concentration", "choose"): ("get", "/supply/concentration/", None),
        ("institution concentration", "view"): (
            "get",
            f"/supply/organisations/{campaign.owner_id}/concentration/",
            None,
        ),
        ("sector concentration", "view"): ("get", "/supply/sector/concentration/", None),
        ("institution graph", "import"): (
            "get",
            f"/supply/organisations/{campaign.owner_id}/graph/",
            None,
        ),
        ("institution graph", "export"): (
            "get",
            f"/supply/organisations/{campaign.owner_id}/graph.json",
            None,
        ),
        ("tier1 link", "open"): ("get", f"/supply/i/{chain.token_a}/", None),
        ("tier1 offline", "view"): ("get", f"/supply/responses/{a.pk}/offline/", None),
        ("tier1 offline upload", "view"): (
            "get",
            f"/supply/responses/{a.pk}/offline/uploads/{upload.pk}/",
            None,
        ),
        ("tier1 offline", "xlsx"): (
            "get",
            f"/supply/responses/{a.pk}/offline/questionnaire.xlsx",
            None,
        ),
        ("tier1 offline", "csv"): (
            "get",
            f"/supply/responses/{a.pk}/offline/questionnaire.csv",
            None,
        ),
        ("tier1 response", "claim"): ("get", f"/supply/responses/{a.pk}/claim/", None),
        ("tier2 response", "decline"): ("post", f"/supply/responses/{b.pk}/decline/", None),
        ("tier1 hearing", "record"): (
            "post",
            f"/supply/responses/{a.pk}/hearings/",
            {"held_on": "2026-01-05", "interviewer": "x", "notes": "heard"},
        ),
        ("tier2 response", "save"): (
            "post",
            f"/supply/responses/{b.pk}/answer/",
            answer_post("changed"),
        ),
        ("tier1 invitations", "send"): (
            "post",
            f"/supply/responses/{a.pk}/invite/",
            _invite_form(a.node_id),
        ),
        ("campaign", "invite"): (
            "post",
            f"/supply/campaigns/{campaign.pk}/",
            _invite_form(chain.service.pk),
        ),
        ("tier2 organisation", "confirm"): (
            "post",
            f"/supply/organisations/{chain.org_b.pk}/confirm/",
            None,
        ),
    }


def _client(world, chain, role: str) -> Client:
    users = {
        "institution_admin": world.admin,
        "institution_member": world.contributor,
        "tier1": chain.user_a,
        "tier2": chain.user_b,
        "unrelated": world.other_admin,
        "scheme_owner": world.owner,
    }
    return Client() if role == "anonymous" else client_for(users[role])


def _outcome(response):
    if response.status_code == 302:
        if response["Location"].startswith("/accounts/login/"):
            return LOGIN
        return DONE
    return response.status_code


@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(world, role, django_capture_on_commit_callbacks):
    chain = build_chain(world, django_capture_on_commit_callbacks)
    Organisation.objects.filter(pk=chain.org_b.pk).update(identity_verified=False)
    client = _client(world, chain, role)
    requests = _requests(chain)
    wrong = []
    for key, expected_by_role in MATRIX.items():
        method, path, data = requests[key]
        with django_capture_on_commit_callbacks(execute=True):
            response = getattr(client, method)(path, data or {})
        outcome = _outcome(response)
        if outcome != expected_by_role[role]:
            wrong.append((key, expected_by_role[role], outcome))
        if outcome == GONE:
            body = response.content.decode()
            # A 404 says nothing about the chain.
            assert "ベンダーA" not in body
            assert "データセンターB" not in body
    assert wrong == []


def test_matrix_covers_every_role_and_action():
    assert all(set(row) == set(ROLES) for row in MATRIX.values())


def test_scoped_querysets(world, django_capture_on_commit_callbacks):
    from mamori.organisations.access import Access
    from mamori.supplychain.models import Campaign, Invitation

    chain = build_chain(world, django_capture_on_commit_callbacks)
    everyone = {chain.a.pk, chain.b.pk}

    def invitations(user) -> set[int]:
        return set(
            Invitation.objects.visible_to(Access.for_user(user)).values_list("pk", flat=True)
        )

    def campaigns(user) -> set[int]:
        return set(Campaign.objects.visible_to(Access.for_user(user)).values_list("pk", flat=True))

    assert invitations(world.admin) == everyone
    # A sees the invitation it answers and the one it sent (not the answers to it).
    assert invitations(chain.user_a) == everyone
    assert invitations(chain.user_b) == {chain.b.pk}
    assert invitations(world.other_admin) == set()
    assert invitations(world.owner) == set()
    assert campaigns(world.admin) == {chain.campaign.pk}
    assert campaigns(chain.user_a) == set()
    assert campaigns(world.owner) == set()


def test_who_may_start_a_survey(world):
    from mamori.organisations.models import Category, Organisation, Role
    from tests.conftest import make_user

    vendor = Organisation.objects.create(
        name_ja="ベンダー", name_en="Vendor", category=Category.IT_VENDOR
    )
    vendor_admin = make_user("vendor-admin", vendor, Role.APPLICANT_ADMIN)
    expected = {
        world.admin: 200,  # an institution's administrator
        world.owner: 200,  # the scheme owner, for its own organisation
        world.contributor: 404,
        world.signatory: 404,
        world.assessor: 404,
        vendor_admin: 404,  # an administrator, but not of an institution
        world.outsider: 404,
    }
    for user, status in expected.items():
        client = client_for(user)
        assert client.get("/supply/campaigns/new/").status_code == status, user
        assert client.get("/supply/services/").status_code == status, user


def test_campaign_page_queries_do_not_grow_with_the_chain(
    world, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from mamori.organisations.access import Access
    from mamori.supplychain import services

    chain = build_chain(world, django_capture_on_commit_callbacks)
    client = client_for(world.admin)
    path = f"/supply/campaigns/{chain.campaign.pk}/"
    with CaptureQueriesContext(connection) as small:
        assert client.get(path).status_code == 200
    access = Access.for_user(world.admin)
    for i in range(6):
        with django_capture_on_commit_callbacks(execute=True):
            services.invite(
                world.admin,
                access,
                campaign=chain.campaign,
                for_node=chain.service,
                need=f"need {i}",
                supplier_name=f"S{i}",
                country="JP",
                email=f"s{i}@example.jp",
                site_url="http://testserver/",
            )
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(path).status_code == 200


def supply_routes() -> set[str]:
    from django.urls import get_resolver

    from tests.security.test_authorization_matrix import _routes

    return {route for route in _routes(get_resolver().url_patterns) if route.startswith("supply/")}


def test_every_supply_url_is_in_the_matrix(world, django_capture_on_commit_callbacks):
    """A new supply-chain page fails here until this matrix says who may use it (the central
    matrix in tests/security leaves the supply/ routes to this one)."""
    from django.urls import resolve

    chain = build_chain(world, django_capture_on_commit_callbacks)
    covered = {resolve(path).route for _method, path, _data in _requests(chain).values()}
    assert supply_routes() - covered == set()
    assert set(_requests(chain)) == set(MATRIX)
