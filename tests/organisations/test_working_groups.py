"""A working group's roster: its members by category and its convenor, who calls the group and
is not one of its members. The scheme owner and the people of the organisations on the roster
see it; anyone else gets 404. The staff admin refuses a convenor among the members."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from mamori.audit.models import AuditEvent
from mamori.organisations.models import Category, Organisation, Role, WorkingGroup
from tests.conftest import client_for, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def group(world):
    convenor = Organisation.objects.create(
        name_ja="所管庁", name_en="Supervisory Agency", category=Category.GOVERNMENT
    )
    association = Organisation.objects.create(
        name_ja="業界協会", name_en="Industry Association", category=Category.INDUSTRY_ASSOCIATION
    )
    group = WorkingGroup.objects.create(
        name_ja="作業部会", name_en="Working group", source="Announcement", convenor=convenor
    )
    group.members.set([world.bank, association])
    return group


def _url(group) -> str:
    return reverse("organisations:working_group", args=[group.pk])


def test_the_roster_lists_members_by_category_and_the_convenor_apart(world, group):
    client = client_for(world.owner)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    html = client.get(_url(group)).content.decode()
    assert 'id="member-count">2<' in html
    convenor = html.split('id="convenor">')[1].split("</dd>")[0]
    assert "Supervisory Agency" in convenor
    assert "not a member" in convenor
    members = html.split('id="member-count"')[1]
    assert "Supervisory Agency" not in members
    assert members.index("Financial institution") < members.index("Test Bank")
    assert members.index("Industry association") < members.index("Industry Association")
    # Japanese first.
    html = client_for(world.owner).get(_url(group)).content.decode()
    assert "主催者" in html
    assert "メンバーには含まれない" in html


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("owner", 200),
        ("admin", 200),  # the bank is a member
        ("signatory", 200),
        ("other_admin", 404),
        ("assessor", 404),
        ("outsider", 404),
    ],
)
def test_who_sees_the_roster(world, group, persona, status):
    response = client_for(getattr(world, persona)).get(_url(group))
    assert response.status_code == status
    if status == 404:
        assert "Supervisory Agency" not in response.content.decode()
        assert "所管庁" not in response.content.decode()


def test_the_convenors_people_see_it_and_others_are_sent_to_sign_in(world, group):
    agency_user = make_user("agnes", group.convenor, Role.APPLICANT_ADMIN)
    assert client_for(agency_user).get(_url(group)).status_code == 200
    response = Client().get(_url(group))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_an_organisation_page_names_its_working_groups_and_its_part(world, group):
    client = client_for(world.owner)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    bank = client.get(reverse("organisations:detail", args=[world.bank.pk])).content.decode()
    assert "Working group</a> — member" in bank
    agency = client.get(reverse("organisations:detail", args=[group.convenor_id])).content.decode()
    assert "Working group</a> — convenor" in agency
    listing = client.get(reverse("organisations:list")).content.decode()
    assert f'href="{_url(group)}"' in listing
    # A member of another organisation is on no roster: no link, no group.
    other = client_for(world.other_admin).get(reverse("organisations:list")).content.decode()
    assert 'id="working-groups"' not in other


def test_the_admin_refuses_the_convenor_among_the_members_and_audits_a_change(world, group):
    staff = make_user("stan", mfa=True)
    staff.is_staff = staff.is_superuser = True
    staff.save(update_fields=["is_staff", "is_superuser"])
    client = client_for(staff)
    path = f"/admin/organisations/workinggroup/{group.pk}/change/"
    assert client.get(path).status_code == 200
    members = [world.bank.pk, group.convenor_id]
    response = client.post(
        path,
        {
            "name_ja": group.name_ja,
            "name_en": group.name_en,
            "source": group.source,
            "convenor": group.convenor_id,
            "members": members,
        },
    )
    assert response.status_code == 200
    assert "主催者は会合を招集する組織で、メンバーには含まれません。" in response.content.decode()
    group.refresh_from_db()
    assert group.convenor not in group.members.all()
    assert not AuditEvent.objects.filter(action__startswith="working_group.").exists()

    response = client.post(
        path,
        {
            "name_ja": group.name_ja,
            "name_en": "Working group (renamed)",
            "source": group.source,
            "convenor": group.convenor_id,
            "members": [world.bank.pk],
        },
    )
    assert response.status_code == 302
    assert list(group.members.all()) == [world.bank]
    event = AuditEvent.objects.get(action="working_group.changed")
    assert event.details["members"] == [world.bank.pk]
    assert event.details["convenor"] == group.convenor_id
