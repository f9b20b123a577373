"""`mamori demo`: the real working group's roster loaded as a roster with nothing invented attached
to it, and a fictitious scheme with every role, assessment state and certificate status;
idempotent. The demo is built once for the package (tests/demo/conftest.py)."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.db.models import Count, Q
from django.test import override_settings
from django.urls import reverse
from django.utils import translation

from mamori.accounts.models import User
from mamori.assessments.models import Assessment, State
from mamori.audit.models import AuditEvent
from mamori.audit.services import verify_trail
from mamori.certificates.models import Certificate, Status
from mamori.demo import builder, cast
from mamori.organisations.models import (
    APPLICANT_ROLES,
    Category,
    Membership,
    Organisation,
    Role,
    WorkingGroup,
)
from mamori.supplychain.models import Campaign, Entity, HearingNote, Invitation, Node
from mamori.verification.models import Host
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def _roster() -> dict:
    return builder.roster()


def _counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (
            Organisation,
            WorkingGroup,
            User,
            Membership,
            Assessment,
            Certificate,
            AuditEvent,
        )
    }


def test_the_roster_is_loaded_as_such_members_by_category_and_the_convenor_apart(demo):
    roster = _roster()
    group = WorkingGroup.objects.get(name_en=builder.WORKING_GROUP_NAME[1])
    members = list(group.members.all())
    assert len(members) == len(roster["organisations"]) == 36
    for entry in roster["organisations"]:
        organisation = Organisation.objects.get(name_en=entry["name_en"])
        assert organisation.name_ja == entry["name_ja"]
        assert organisation.category == entry["category"]
        assert organisation in members
    by_category = dict(group.members.values_list("category").annotate(n=Count("pk")))
    assert by_category == {
        Category.FINANCIAL_INSTITUTION: 6,
        Category.IT_VENDOR: 12,
        Category.INDUSTRY_ASSOCIATION: 14,
        Category.GOVERNMENT: 4,
    }
    assert group.convenor.name_en == "Financial Services Agency"
    assert group.convenor.name_ja == "金融庁"
    assert group.convenor.category == Category.GOVERNMENT
    assert group.convenor not in members
    assert group.source == roster["source"]


def test_nothing_invented_is_attached_to_a_real_organisation(demo):
    group = WorkingGroup.objects.get(name_en=builder.WORKING_GROUP_NAME[1])
    real = set(group.members.values_list("pk", flat=True)) | {group.convenor_id}
    assert len(real) == 37
    for name_ja, name_en in Organisation.objects.filter(pk__in=real).values_list(
        "name_ja", "name_en"
    ):
        assert not cast.is_fictitious(name_ja, name_en), name_en
    # No user acts for them, and nothing the demo invents names them.
    assert not Membership.objects.filter(organisation__in=real).exists()
    assert not Assessment.objects.filter(organisation__in=real).exists()
    assert not Certificate.objects.filter(organisation__in=real).exists()
    assert not Host.objects.filter(organisation__in=real).exists()
    assert not Campaign.objects.filter(owner__in=real).exists()
    assert not Invitation.objects.filter(organisation__in=real).exists()
    assert not Entity.objects.filter(Q(organisation__in=real) | Q(owner__in=real)).exists()
    assert not Node.objects.filter(owner__in=real).exists()
    assert not HearingNote.objects.filter(invitation__organisation__in=real).exists()
    for entry in _roster()["organisations"]:
        for name in (entry["name_ja"], entry["name_en"]):
            assert not Node.objects.filter(Q(name_ja=name) | Q(name_en=name)).exists(), name
            assert not Invitation.objects.filter(supplier_name=name).exists(), name

    # Every other organisation is fictitious and says so in both languages: the scheme's, the
    # applicants' and every supplier that registered itself in a survey.
    others = Organisation.objects.exclude(pk__in=real)
    assert others.count() > len(cast.WITH_USERS)
    for name_ja, name_en in others.values_list("name_ja", "name_en"):
        assert cast.is_fictitious(name_ja, name_en), (name_ja, name_en)
    for node in Node.objects.exclude(kind="service"):
        assert node.name_ja.endswith(cast.MARK_JA) or "（社名非開示）" in node.name_ja, node.name_ja


def test_every_role_assessment_state_and_certificate_status_on_fictitious_organisations(demo):
    body = Organisation.objects.get(name_en=cast.CERTIFICATION_BODY.name_en)
    assert body.category == Category.CERTIFICATION_BODY
    assert Membership.objects.filter(organisation=body, role=Role.ASSESSOR).count() == 2
    assert Membership.objects.filter(role=Role.SCHEME_OWNER).count() == 1
    assert set(Membership.objects.values_list("role", flat=True)) == set(Role.values)
    # Assessors and the scheme owner have MFA set up, as the product requires.
    for membership in Membership.objects.filter(role__in=(Role.ASSESSOR, Role.SCHEME_OWNER)):
        assert membership.user.totpdevice_set.filter(confirmed=True).exists()

    states = dict(Assessment.objects.values_list("state").annotate(n=Count("pk")))
    assert set(states) == set(State.values)
    statuses = [certificate.status for certificate in Certificate.objects.all()]
    for status in Status.values:
        assert status in statuses, status
    assert Certificate.objects.currently_valid().count() >= 3
    # A bank, a shinkin bank, a securities firm, an insurer and two IT vendors apply.
    applicants = Organisation.objects.filter(
        pk__in=Assessment.objects.values("organisation_id")
    ).values_list("name_en", flat=True)
    assert set(applicants) == {entry.name_en for entry in cast.APPLICANTS}
    (revoked,) = [c for c in Certificate.objects.all() if c.status == Status.REVOKED]
    assert revoked.organisation.name_en == cast.RURI_SHINKIN.name_en


def test_the_demo_people_keep_the_separation_of_duties(demo):
    """No demo scheme owner holds an applicant's role, and no demo assessor belongs to an
    organisation their certification body assesses (organisations/conflicts.py)."""
    owners = Membership.objects.filter(role=Role.SCHEME_OWNER).values("user_id")
    assert not Membership.objects.filter(user_id__in=owners, role__in=APPLICANT_ROLES).exists()
    for assessor in Membership.objects.filter(role=Role.ASSESSOR):
        assessed = Assessment.objects.filter(certification_body_id=assessor.organisation_id).values(
            "organisation_id"
        )
        assert not Membership.objects.filter(
            user_id=assessor.user_id, organisation_id__in=assessed
        ).exists(), assessor


def test_the_users_passwords_are_printed_work_and_the_trail_is_intact(demo):
    credentials = json.loads(demo.credentials_file.read_text(encoding="utf-8"))
    assert {row["role"] for row in credentials} == set(Role.values)
    for row in credentials:
        assert row["username"] in demo.output
        assert row["password"] in demo.output
        assert User.objects.get(username=row["username"]).check_password(row["password"])
        assert row["organisation"].endswith(cast.MARK_JA)
    assert demo.credentials_file.stat().st_mode & 0o777 == 0o600
    assert "the working group's roster (36 members and the convenor)" in demo.output
    assert verify_trail() is None


def test_the_scheme_owner_sees_the_roster_page_with_the_convenor_apart(demo):
    group = WorkingGroup.objects.get(name_en=builder.WORKING_GROUP_NAME[1])
    owner = client_for(User.objects.get(username="owner"))
    owner.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    page = owner.get(reverse("organisations:working_group", args=[group.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="member-count">36<' in html
    assert "Financial Services Agency" in html
    assert "not a member" in html
    # A demo applicant is on no roster: the page does not exist for it.
    applicant = client_for(User.objects.get(username="kohaku-admin"))
    assert applicant.get(reverse("organisations:working_group", args=[group.pk])).status_code == 404


def test_running_the_demo_again_changes_nothing_and_still_shows_the_passwords(demo):
    before = _counts()
    out = io.StringIO()
    with override_settings(VAR_DIR=demo.var_dir), translation.override("en"):
        call_command("demo", stdout=out)
    assert _counts() == before
    again = out.getvalue()
    assert "Demo data is already loaded." in again
    for row in json.loads(demo.credentials_file.read_text(encoding="utf-8")):
        assert row["password"] in again


def test_a_database_with_the_earlier_demo_is_refused_in_one_line(demo):
    from django.core.management.base import CommandError

    Organisation.objects.create(
        name_ja="守り認証株式会社（デモ）",
        name_en=builder.EARLIER_DEMO_BODY,
        category=Category.CERTIFICATION_BODY,
    )
    before = _counts()
    with pytest.raises(CommandError) as raised:
        call_command("demo", stdout=io.StringIO())
    message = str(raised.value)
    assert "\n" not in message
    assert "earlier demo" in message
    assert _counts() == before
