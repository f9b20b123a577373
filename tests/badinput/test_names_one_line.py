"""A name is one line of visible text (issue 10, section 3).

The reported failure: a line break in an organisation's name made its supplier invitations fail
with 500 *after* the invitation was saved (the e-mail subject "Supplier survey from <name>"
cannot carry a line break). Now every page where a name is typed refuses line breaks, tabs and
other control or invisible format characters with a form error, the graph import refuses them
naming the node, and an invitation whose e-mail cannot be built is refused before anything is
saved (for names already stored with a line break).

The scene is built once for the module; each request runs in its own savepoint.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone, translation

from mamori.accounts.models import User
from mamori.assessments.models import Assessment, Level
from mamori.assessments.services import start_assessment
from mamori.audit.models import AuditEvent
from mamori.organisations.access import Access
from mamori.organisations.models import Organisation
from mamori.supplychain import services
from mamori.supplychain.models import Campaign, Entity, HearingNote, Invitation, Node
from tests.conftest import PASSWORD, World, built_once, client_for, make_user
from tests.supplychain import bank_survey_with_one_invitation

pytestmark = pytest.mark.django_db

REFUSED = "Names cannot contain line breaks, tabs or other control characters."


def build():
    world = World()
    access = Access.for_user(world.admin)
    draft = start_assessment(world.admin, access, world.bank, world.body, Level.CE)
    service, campaign, sent = bank_survey_with_one_invitation(
        world, supplier_name="Vendor N", email="n@example.jp"
    )
    staff = make_user("stan", mfa=True)
    staff.is_staff = staff.is_superuser = True
    staff.save(update_fields=["is_staff", "is_superuser"])
    return {
        "world": world,
        "draft": draft,
        "service": service,
        "campaign": campaign,
        "sent": sent,
        "staff": staff,
    }


@pytest.fixture(scope="module")
def scene(django_db_setup, django_db_blocker):
    with built_once(django_db_blocker, build) as built:
        yield built


@pytest.fixture
def s(scene, db):
    return scene


def footprint() -> tuple:
    return (
        Organisation.objects.count(),
        Organisation.objects.order_by("-updated_at").values_list("updated_at", flat=True)[0],
        User.objects.count(),
        Node.objects.count(),
        Entity.objects.count(),
        Invitation.objects.count(),
        Campaign.objects.count(),
        HearingNote.objects.count(),
        tuple(Assessment.objects.values_list("declared_name", flat=True)),
        AuditEvent.objects.count(),
    )


# --- The reported failure ------------------------------------------------------------------------


def test_a_name_with_a_line_break_refuses_the_invitation_and_saves_nothing(
    s, django_capture_on_commit_callbacks
):
    """The bank's name was stored with a line break (before names were checked): inviting a
    supplier is a form error, nothing is saved and nothing waits to be sent."""
    world = s["world"]
    Organisation.objects.filter(pk=world.bank.pk).update(name_ja="テスト\n銀行")
    before = footprint()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client_for(world.admin).post(
            f"/supply/campaigns/{s['campaign'].pk}/",
            {
                "target": str(s["service"].pk),
                "need": "network",
                "supplier_name": "Carrier",
                "country": "JP",
                "email": "carrier@example.jp",
            },
            HTTP_ACCEPT_LANGUAGE="ja",
        )
    assert response.status_code == 422
    assert "招待メールを作成できません" in response.content.decode()
    assert callbacks == []
    assert mail.outbox == []
    assert footprint() == before


# --- Every name typed on a page -------------------------------------------------------------------


def _open_link(s) -> Client:
    browser = Client(HTTP_ACCEPT_LANGUAGE="en")
    browser.get(f"/supply/i/{s['sent'].token}/")
    return browser


def _answer(name_ja="回線", **extra) -> dict:
    from tests.supplychain.test_survey_cascade import answer_post

    return {**answer_post(name_ja), **extra}


# (who, url, data, the field the error is on); data and url take the scene.
PAGES = {
    "organisation name (ja)": (
        "owner",
        lambda s: "/organisations/new/",
        lambda s, bad: {
            "name_ja": bad,
            "name_en": "X",
            "category": "it_vendor",
            "corporate_number": "",
            "country": "JP",
        },
        "name_ja",
    ),
    "organisation name (en)": (
        "owner",
        lambda s: "/organisations/new/",
        lambda s, bad: {
            "name_ja": "エックス",
            "name_en": bad,
            "category": "it_vendor",
            "corporate_number": "",
            "country": "JP",
        },
        "name_en",
    ),
    "display name of a new account": (
        "admin",
        lambda s: f"/organisations/{s['world'].bank.pk}/members/add/",
        lambda s, bad: {
            "mode": "new",
            "username": "dave",
            "display_name": bad,
            "email": "dave@example.jp",
            "language": "en",
            "role": "applicant_contributor",
        },
        "display_name",
    ),
    "critical service": (
        "admin",
        lambda s: "/supply/services/",
        lambda s, bad: {"name_ja": bad, "name_en": "", "criticality": "critical"},
        "name_ja",
    ),
    "survey title": (
        "admin",
        lambda s: "/supply/campaigns/new/",
        lambda s, bad: {
            "organisation": str(s["world"].bank.pk),
            "title": bad,
            "services": [str(s["service"].pk)],
            "deadline": (timezone.localdate() + dt.timedelta(days=9)).isoformat(),
        },
        "title",
    ),
    "supplier name": (
        "admin",
        lambda s: f"/supply/campaigns/{s['campaign'].pk}/",
        lambda s, bad: {
            "target": str(s["service"].pk),
            "need": "network",
            "supplier_name": bad,
            "country": "JP",
            "email": "x@example.jp",
        },
        "supplier_name",
    ),
    "need": (
        "admin",
        lambda s: f"/supply/campaigns/{s['campaign'].pk}/",
        lambda s, bad: {
            "target": str(s["service"].pk),
            "need": bad,
            "supplier_name": "Carrier",
            "country": "JP",
            "email": "x@example.jp",
        },
        "need",
    ),
    "hearing interviewer": (
        "admin",
        lambda s: f"/supply/responses/{s['sent'].invitation.pk}/hearings/",
        lambda s, bad: {
            "held_on": timezone.localdate().isoformat(),
            "interviewer": bad,
            "notes": "notes",
        },
        "interviewer",
    ),
    "declaration name": (
        "signatory",
        lambda s: f"/assessments/{s['draft'].pk}/declaration/",
        lambda s, bad: {"name": bad, "title": "Director", "confirm": "on"},
        "name",
    ),
    "answered name": ("link", lambda s: "answer", lambda s, bad: _answer(bad), "name_ja"),
    "ultimate parent": (
        "link",
        lambda s: "answer",
        lambda s, bad: _answer(parent_name=bad),
        "parent_name",
    ),
    "registered organisation": (
        "link",
        lambda s: "claim",
        lambda s, bad: {
            "name_ja": bad,
            "name_en": "Carrier N KK",
            "corporate_number": "",
            "country": "SG",
            "username": "carrier-n",
            "email": "admin@carrier.example",
            "password": PASSWORD,
            "password2": PASSWORD,
        },
        "name_ja",
    ),
}


@pytest.mark.parametrize("page", list(PAGES))
def test_every_name_field_refuses_a_line_break(s, page):
    who, url, data, field = PAGES[page]
    if who == "link":
        client = _open_link(s)
        url = f"/supply/responses/{s['sent'].invitation.pk}/{url(s)}/"
    else:
        client = client_for(getattr(s["world"], who))
        client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
        url = url(s)
    before = footprint()
    response = client.post(url, data(s, "第一行\n第二行"))
    assert response.status_code == 422, page
    key = {"hearing interviewer": "hearing_form", "display name of a new account": "new_form"}
    form = response.context[key.get(page, "form")]
    assert REFUSED in form.errors[field], form.errors
    assert footprint() == before


@pytest.mark.parametrize(
    "bad",
    [
        "line\r\nbreak",
        "tab\there",
        "escape\x1b[31m",
        "right-to-left \u202eknaB tseT",
        "zero\u200bwidth",
        "line\u2028separator",
        "paragraph\u2029separator",
    ],
)
def test_control_and_invisible_characters_are_refused(s, bad):
    before = footprint()
    response = client_for(s["world"].owner).post(
        "/organisations/new/",
        {
            "name_ja": bad,
            "name_en": "X",
            "category": "it_vendor",
            "corporate_number": "",
            "country": "JP",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 422
    assert response.context["form"].errors["name_ja"] == [REFUSED]
    assert footprint() == before


def test_ordinary_spaces_stay_allowed(s):
    response = client_for(s["world"].owner).post(
        "/organisations/new/",
        {
            "name_ja": "株式会社　全角 スペース",
            "name_en": "Space  Corp",
            "category": "it_vendor",
            "corporate_number": "",
            "country": "JP",
        },
    )
    assert response.status_code == 302


def test_providers_one_per_line_keep_their_line_breaks_but_not_tabs(s):
    browser = _open_link(s)
    url = f"/supply/responses/{s['sent'].invitation.pk}/answer/"
    before = footprint()
    refused = browser.post(
        url, _answer(**{"needs-0-name": "power", "needs-0-providers": "Grid\tEast\nGenerator"})
    )
    assert refused.status_code == 422
    assert REFUSED in refused.content.decode()
    assert footprint() == before
    accepted = browser.post(
        url, _answer(**{"needs-0-name": "power", "needs-0-providers": "Grid East\nGenerator"})
    )
    assert accepted.status_code == 302


def test_the_staff_admin_refuses_it_too(s):
    world = s["world"]
    before = footprint()
    response = client_for(s["staff"]).post(
        f"/admin/organisations/organisation/{world.bank.pk}/change/",
        {
            "name_ja": "テスト\n銀行",
            "name_en": "Test Bank",
            "category": "financial_institution",
            "corporate_number": "",
            "country": "JP",
            "identity_verified": "on",
            "resembles": "[]",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    assert REFUSED in response.content.decode()
    assert footprint() == before


def test_the_graph_import_names_the_node(s):
    organisation = s["world"].other_bank
    document = {
        "schema": "mamori.supplygraph/1",
        "nodes": [
            {
                "id": "core",
                "entity": "other-bank",
                "name": "Core\nbanking",
                "country": "JP",
                "critical": True,
                "certified": False,
                "disclosure": "full",
            }
        ],
        "requirements": [],
    }
    before = footprint()
    # In English whatever an earlier test left active (the default is Japanese).
    with translation.override("en"), pytest.raises(services.GraphImportError) as refused:
        services.import_graph(organisation, document)
    assert refused.value.errors == [
        "nodes[0] (core).name: a line break or another control character"
    ]
    assert footprint() == before
