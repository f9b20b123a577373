"""An organisation registered through a supplier-survey link has a distinct identity and is
unverified until confirmed (issue 10, section 3).

Before, anyone holding a link registered an organisation with a real bank's exact name and then
made Mamori e-mail any address "from" it. Now: a Japanese organisation gives its corporate
number (13 digits, check digit verified, one organisation per number); a name that is the same
as a registered one (width, case, spaces and legal form aside) is refused and a close one is
flagged; the organisation is marked unverified wherever it is shown until the scheme owner or
its inviter confirms it (on the audit trail); and until then its invitations to its own
suppliers are held: Mamori e-mails nobody in its name.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from mamori.accounts.models import User
from mamori.assessments.services import start_assessment
from mamori.audit.models import AuditEvent
from mamori.audit.services import verify_trail
from mamori.organisations.access import Access
from mamori.organisations.models import Membership, Organisation
from mamori.supplychain import services
from mamori.supplychain.models import Invitation
from tests.conftest import PASSWORD, World, api_token, built_once, client_for
from tests.organisations.test_members import corporate_number
from tests.supplychain import bank_survey_with_one_invitation
from tests.supplychain.test_survey_cascade import LINK

pytestmark = pytest.mark.django_db

BANK_NUMBER = corporate_number("100000000001")


def build():
    world = World()
    Organisation.objects.filter(pk=world.bank.pk).update(corporate_number=BANK_NUMBER)
    _service, _campaign, sent = bank_survey_with_one_invitation(
        world, supplier_name="Vendor C", email="c@example.jp"
    )
    return world, sent


@pytest.fixture(scope="module")
def scene(django_db_setup, django_db_blocker):
    with built_once(django_db_blocker, build) as built:
        yield built


@pytest.fixture
def world(scene, db):
    return scene[0]


@pytest.fixture
def sent(scene, db):
    return scene[1]


def claim_form(**overrides) -> dict:
    return {
        "name_ja": "株式会社クラウドC",
        "name_en": "Cloud C KK",
        "corporate_number": corporate_number("200000000002"),
        "country": "JP",
        "username": "cloud-c",
        "email": "admin@cloud-c.example",
        "password": PASSWORD,
        "password2": PASSWORD,
        **overrides,
    }


def claim(sent, **overrides):
    browser = Client(HTTP_ACCEPT_LANGUAGE="en")
    browser.get(f"/supply/i/{sent.token}/")
    response = browser.post(
        f"/supply/responses/{sent.invitation.pk}/claim/", claim_form(**overrides)
    )
    return browser, response


def footprint() -> tuple:
    return Organisation.objects.count(), User.objects.count(), AuditEvent.objects.count()


# --- A distinct identity ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "corporate_number",
            "",
            "An organisation registered in Japan gives its 13-digit corporate number.",
        ),
        ("corporate_number", "1234567890123", "This corporate number's check digit is wrong."),
        ("corporate_number", "123456789012", "A corporate number has exactly 13 digits."),
        (
            "corporate_number",
            "１２３４５６７８９０１２３",
            "A corporate number has exactly 13 digits.",
        ),
        (
            "corporate_number",
            BANK_NUMBER,
            "An organisation with this corporate number already exists.",
        ),
        # The bank's own name, however it is typed: refused.
        ("name_ja", "テスト銀行", "テスト銀行 is already registered in Mamori."),
        ("name_ja", "ﾃｽﾄ銀行", "テスト銀行 is already registered in Mamori."),
        ("name_ja", "株式会社　テスト 銀行", "テスト銀行 is already registered in Mamori."),
        ("name_en", "TEST  BANK", "Test Bank is already registered in Mamori."),
        ("name_en", "Ｔｅｓｔ　Ｂａｎｋ Co., Ltd.", "Test Bank is already registered in Mamori."),
    ],
)
def test_a_claim_that_could_pass_for_another_is_refused(sent, field, value, message):
    before = footprint()
    _browser, response = claim(sent, **{field: value})
    assert response.status_code == 422
    errors = [str(e) for e in response.context["form"].errors.get(field, [])] + [
        str(e) for e in response.context["form"].errors.get("name_ja", [])
    ]
    assert any(error.startswith(message) for error in errors), errors
    assert footprint() == before
    assert Invitation.objects.get(pk=sent.invitation.pk).organisation_id is None


def test_an_organisation_abroad_may_register_without_a_corporate_number(sent):
    _browser, response = claim(sent, corporate_number="", country="SG")
    assert response.status_code == 302
    organisation = Organisation.objects.get(name_en="Cloud C KK")
    assert (organisation.corporate_number, organisation.identity_verified) == ("", False)


def test_a_close_name_is_flagged_for_whoever_confirms(world, sent):
    _browser, response = claim(sent, name_ja="テスト銀行システムズ株式会社", name_en="TB Systems")
    assert response.status_code == 302
    organisation = Organisation.objects.get(name_en="TB Systems")
    assert organisation.resembles == [world.bank.pk]
    created = AuditEvent.objects.get(action="organisation.created", object_id=str(organisation.pk))
    assert created.details["resembles"] == [world.bank.pk]
    page = client_for(world.owner).get(
        f"/organisations/{organisation.pk}/", HTTP_ACCEPT_LANGUAGE="en"
    )
    assert re.search(r'id="resembles">Test Bank<', page.content.decode())


# --- Unverified until confirmed -----------------------------------------------------------------


def test_unverified_is_shown_wherever_the_organisation_is(world, sent):
    browser, response = claim(sent)
    assert response.status_code == 302
    organisation = Organisation.objects.get(name_en="Cloud C KK")
    assert organisation.identity_verified is False
    mark = 'class="badge unverified"'
    owner = client_for(world.owner)
    bank = client_for(world.admin)
    shown = {
        "owner's list": owner.get("/organisations/"),
        "owner's list, unverified only": owner.get("/organisations/?identity=unverified"),
        "detail": owner.get(f"/organisations/{organisation.pk}/"),
        "its own list": browser.get("/organisations/"),
        "its member page": browser.get(f"/organisations/{organisation.pk}/members/"),
        "the survey's chain": bank.get(f"/supply/campaigns/{sent.invitation.campaign_id}/"),
        "its answers, for the bank": bank.get(f"/supply/responses/{sent.invitation.pk}/"),
    }
    claimer = Membership.objects.get(organisation=organisation).user
    draft = start_assessment(claimer, Access.for_user(claimer), organisation, world.body, "CE")
    shown["its assessment"] = browser.get(f"/assessments/{draft.pk}/")
    for where, page in shown.items():
        assert page.status_code == 200, where
        assert mark in page.content.decode(), where
    unverified_only = shown["owner's list, unverified only"].context["page"].object_list
    assert list(unverified_only) == [organisation]
    api = Client().get(
        f"/api/organisations/{organisation.pk}",
        HTTP_AUTHORIZATION=f"Token {api_token(world.owner, world.secretariat)}",
    )
    assert api.json()["identity_verified"] is False
    # Registered organisations are not marked.
    assert mark not in owner.get(f"/organisations/{world.bank.pk}/").content.decode()


def test_no_mail_in_the_name_of_an_unverified_organisation(
    world, sent, django_capture_on_commit_callbacks
):
    """The claimer invites its own supplier at an address of its choice: the invitation is
    recorded but held; reminders skip it; confirming it sends it, to that address only."""
    browser, _response = claim(sent)
    organisation = Organisation.objects.get(name_en="Cloud C KK")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            f"/supply/responses/{sent.invitation.pk}/invite/",
            {
                "target": str(sent.invitation.node_id),
                "need": "payments",
                "supplier_name": "Victim Ltd",
                "country": "JP",
                "email": "victim@example.org",
            },
        )
    assert response.status_code == 302
    assert mail.outbox == []
    held = Invitation.objects.get(email="victim@example.org")
    assert held.mail_held
    assert (
        "e-mail held until your organisation is confirmed"
        in browser.get(f"/supply/responses/{sent.invitation.pk}/").content.decode()
    )
    Invitation.objects.filter(pk=held.pk).update(due_on=timezone.localdate() - dt.timedelta(days=1))
    with django_capture_on_commit_callbacks(execute=True):
        services.send_due_reminders()
    assert mail.outbox == []

    # The bank, which invited it, confirms it from the supplier's answers page.
    before = AuditEvent.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(world.admin).post(
            f"/supply/organisations/{organisation.pk}/confirm/",
            {"next": f"/supply/responses/{sent.invitation.pk}/"},
        )
    assert (response.status_code, response.url) == (302, f"/supply/responses/{sent.invitation.pk}/")
    organisation.refresh_from_db()
    assert (organisation.identity_verified, organisation.identity_confirmed_by) == (
        True,
        world.admin,
    )
    confirmed = AuditEvent.objects.get(action="organisation.identity_confirmed")
    assert (confirmed.actor, confirmed.details["as"]) == (world.admin, "inviter")
    assert AuditEvent.objects.filter(action="supplychain.invitation_released").count() == 1
    assert AuditEvent.objects.count() == before + 2
    assert verify_trail() is None
    (message,) = mail.outbox
    assert message.to == ["victim@example.org"]
    assert "Cloud C KK" in message.subject or "株式会社クラウドC" in message.subject
    token = LINK.search(message.body).group(1)
    landing = Client(HTTP_ACCEPT_LANGUAGE="en").get(f"/supply/i/{token}/")
    assert landing.status_code == 200
    assert 'class="badge unverified"' not in landing.content.decode()


def test_the_scheme_owner_confirms_from_the_organisation_page(world, sent):
    claim(sent)
    organisation = Organisation.objects.get(name_en="Cloud C KK")
    owner = client_for(world.owner)
    page = owner.get(f"/organisations/{organisation.pk}/").content.decode()
    assert 'id="confirm-identity"' in page
    response = owner.post(f"/supply/organisations/{organisation.pk}/confirm/")
    assert response.status_code == 302
    assert Organisation.objects.get(pk=organisation.pk).identity_verified
    confirmed = AuditEvent.objects.get(action="organisation.identity_confirmed")
    assert (confirmed.actor, confirmed.details["as"]) == (world.owner, "scheme_owner")


def test_nobody_else_confirms(world, sent):
    browser, _response = claim(sent)
    organisation = Organisation.objects.get(name_en="Cloud C KK")
    url = f"/supply/organisations/{organisation.pk}/confirm/"
    before = footprint()
    for persona in ("claimer", "contributor", "signatory", "other_admin", "outsider", "assessor"):
        client = browser if persona == "claimer" else client_for(getattr(world, persona))
        response = client.post(url)
        assert response.status_code == 404, persona
        assert "Cloud C KK" not in response.content.decode()
    anonymous = Client().post(url)
    assert anonymous.status_code == 302
    assert anonymous.url.startswith("/accounts/login/")
    assert not Organisation.objects.get(pk=organisation.pk).identity_verified
    assert footprint() == before


def test_an_unverified_organisation_confirms_nobody(
    world, sent, django_capture_on_commit_callbacks
):
    """Its own supplier is not its to confirm while it is itself unverified."""
    browser, _response = claim(sent)
    claimer = Membership.objects.get(organisation__name_en="Cloud C KK").user
    with django_capture_on_commit_callbacks(execute=True):
        deeper = services.invite(
            claimer,
            Access.for_user(claimer),
            campaign=sent.invitation.campaign,
            for_node=sent.invitation.node,
            need="dc",
            supplier_name="DC D",
            country="SG",
            email="d@example.jp",
            parent=Invitation.objects.get(pk=sent.invitation.pk),
            site_url="http://testserver/",
        )
    assert deeper.invitation.mail_held
    # A held link does not work: nobody was sent it.
    assert Client().get(f"/supply/i/{deeper.token}/").status_code == 404
    services.claim_organisation(
        deeper.invitation,
        name_ja="DC D",
        name_en="DC D Pte",
        corporate_number="",
        country="SG",
        username="dc-d",
        email="d@example.jp",
        password=PASSWORD,
        link_key="its-browser",
    )
    dc_d = Organisation.objects.get(name_en="DC D Pte")
    assert browser.post(f"/supply/organisations/{dc_d.pk}/confirm/").status_code == 404
    assert not Organisation.objects.get(pk=dc_d.pk).identity_verified
