"""Who may use an invitation link before an organisation claims it (issue 10, section 3).

- An expired link stops working in a browser that opened it before the expiry: every request
  checks the expiry, not only the first one through the link.
- The first browser that saves answers holds the pen: another holder of the link (a forwarded
  e-mail, a colleague) reads the answers but cannot overwrite them, decline the invitation,
  register the organisation or bind it to another. The pages say so.

The scene (personas, a survey and its invitations) is built once for the module.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from mamori.audit.models import AuditEvent
from mamori.core.errors import WrongState
from mamori.organisations.models import Organisation
from mamori.supplychain import services
from mamori.supplychain.models import Invitation, Node
from tests.conftest import PASSWORD, World, built_once, client_for
from tests.supplychain import bank_survey_with_one_invitation
from tests.supplychain.test_survey_cascade import answer_post, supplier_org

pytestmark = pytest.mark.django_db


def build():
    world = World()
    _service, _campaign, sent = bank_survey_with_one_invitation(
        world, supplier_name="Vendor L", email="l@example.jp"
    )
    vendor, vendor_admin = supplier_org("ベンダーV", "vendor-v")
    return world, sent, vendor, vendor_admin


@pytest.fixture(scope="module")
def scene(django_db_setup, django_db_blocker):
    with built_once(django_db_blocker, build) as built:
        yield built


@pytest.fixture
def sent(scene, db):
    return scene[1]


def urls(pk: int) -> dict[str, str]:
    base = f"/supply/responses/{pk}/"
    return {
        "response": base,
        "answer": base + "answer/",
        "decline": base + "decline/",
        "claim": base + "claim/",
        "offline": base + "offline/",
        "xlsx": base + "offline/questionnaire.xlsx",
        "csv": base + "offline/questionnaire.csv",
    }


def footprint(invitation: Invitation) -> tuple:
    node = Node.objects.get(pk=invitation.node_id)
    row = Invitation.objects.get(pk=invitation.pk)
    return (
        node.name_ja,
        node.updated_at,
        row.status,
        row.organisation_id,
        row.answer_lock,
        Organisation.objects.count(),
        AuditEvent.objects.count(),
    )


def claim_form(**overrides) -> dict:
    return {
        "name_ja": "回線L株式会社",
        "name_en": "Line L KK",
        "corporate_number": "",
        "country": "SG",
        "username": "line-l",
        "email": "admin@line-l.example",
        "password": PASSWORD,
        "password2": PASSWORD,
        **overrides,
    }


# --- Expiry, on every request -------------------------------------------------------------------


def test_a_page_opened_before_the_expiry_stops_working_after_it(sent):
    pk, browser = sent.invitation.pk, Client()
    assert browser.get(f"/supply/i/{sent.token}/").status_code == 200
    pages = urls(pk)
    for name in ("response", "answer", "offline", "xlsx", "claim"):
        assert browser.get(pages[name]).status_code == 200, name

    Invitation.objects.filter(pk=pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    before = footprint(sent.invitation)
    for name in ("response", "answer", "offline", "xlsx", "csv", "claim"):
        assert browser.get(pages[name]).status_code == 404, name
    assert browser.post(pages["answer"], answer_post("期限切れの回答")).status_code == 404
    assert browser.post(pages["decline"]).status_code == 404
    assert browser.post(pages["claim"], claim_form()).status_code == 404
    assert footprint(sent.invitation) == before
    # The link itself gives the clear page, as it always did.
    assert browser.get(f"/supply/i/{sent.token}/").status_code == 404


def test_the_services_refuse_an_expired_link_too(sent):
    Invitation.objects.filter(pk=sent.invitation.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    invitation = Invitation.objects.get(pk=sent.invitation.pk)
    before = footprint(invitation)
    with pytest.raises(WrongState) as refused:
        services.save_answers(
            None,
            invitation,
            answers={"name_ja": "x", "kind": "ict", "country": "JP"},
            sites=[],
            needs=[],
            link_key="a-browser",
        )
    assert refused.value.code == "expired"
    with pytest.raises(WrongState):
        services.decline(None, invitation, link_key="a-browser")
    assert footprint(invitation) == before


# --- The first browser that answers holds the pen ------------------------------------------------


def test_another_holder_of_the_link_reads_but_cannot_overwrite(sent, scene):
    pk, pages = sent.invitation.pk, urls(sent.invitation.pk)
    first, second = Client(HTTP_ACCEPT_LANGUAGE="en"), Client(HTTP_ACCEPT_LANGUAGE="en")
    first.get(f"/supply/i/{sent.token}/")
    second.get(f"/supply/i/{sent.token}/")  # both opened it before anyone answered
    assert first.post(pages["answer"], answer_post("最初の回答")).status_code == 302

    before = footprint(sent.invitation)
    # The second browser's form, loaded before, is refused: nothing is overwritten.
    assert second.post(pages["answer"], answer_post("上書き")).status_code == 404
    for name in ("answer", "offline", "claim"):
        assert second.get(pages[name]).status_code == 404, name
    assert second.post(pages["decline"]).status_code == 404
    assert second.post(pages["claim"], claim_form()).status_code == 404
    assert footprint(sent.invitation) == before
    # It still reads the answers, and is told why it cannot change them.
    page = second.get(pages["response"]).content.decode()
    assert "最初の回答" in page
    assert 'id="answered-elsewhere"' in page
    assert 'id="edit-answers"' not in page
    landing = second.get(f"/supply/i/{sent.token}/").content.decode()
    assert 'id="answered-elsewhere"' in landing
    assert 'id="answer-without-account"' not in landing
    # A signed-in holder cannot bind it to their organisation either.
    _world, _sent, vendor, vendor_admin = scene
    member = client_for(vendor_admin)
    member.get(f"/supply/i/{sent.token}/")
    response = member.post(f"/supply/i/{sent.token}/", {"organisation": str(vendor.pk)})
    assert response.status_code == 200
    assert footprint(sent.invitation) == before

    # The first browser goes on, and registers the organisation.
    assert first.post(pages["answer"], answer_post("二度目の回答")).status_code == 302
    assert first.post(pages["claim"], claim_form()).status_code == 302
    invitation = Invitation.objects.select_related("organisation").get(pk=pk)
    assert invitation.organisation.name_en == "Line L KK"
    assert Node.objects.get(pk=invitation.node_id).name_ja == "二度目の回答"


def test_the_pen_outlives_the_session_in_the_same_browser(sent):
    """The session ends after an idle hour; the browser keeps its key in a cookie, so opening
    the link again days later gives the answers back to it, and to no other browser."""
    pages = urls(sent.invitation.pk)
    first = Client()
    first.get(f"/supply/i/{sent.token}/")
    assert first.post(pages["answer"], answer_post("最初の回答")).status_code == 302
    cookie = first.cookies["mamori_answer_key"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == int(services.INVITATION_TTL.total_seconds())
    del first.cookies[settings.SESSION_COOKIE_NAME]  # the idle session is gone
    assert first.get(pages["answer"]).status_code == 404  # the link must be opened again
    first.get(f"/supply/i/{sent.token}/")
    assert first.post(pages["answer"], answer_post("続きの回答")).status_code == 302
    assert Node.objects.get(pk=sent.invitation.node_id).name_ja == "続きの回答"
    # A browser without that cookie is another holder.
    other = Client()
    other.get(f"/supply/i/{sent.token}/")
    assert other.post(pages["answer"], answer_post("上書き")).status_code == 404


def test_the_services_keep_the_pen_with_the_first_browser(sent):
    invitation = sent.invitation
    answers = {"name_ja": "A", "kind": "ict", "country": "JP", "disclosure": "full"}
    services.save_answers(None, invitation, answers=answers, sites=[], needs=[], link_key="one")
    before = footprint(invitation)
    for call in (
        lambda: services.save_answers(
            None, invitation, answers=answers, sites=[], needs=[], link_key="two"
        ),
        lambda: services.decline(None, invitation, link_key="two"),
        lambda: services.claim_organisation(invitation, **{**_claim_args(), "link_key": "two"}),
    ):
        with pytest.raises(WrongState) as refused:
            call()
        assert refused.value.code == "answered_elsewhere"
    assert footprint(invitation) == before


def _claim_args() -> dict:
    form = claim_form()
    return {key: form[key] for key in ("name_ja", "name_en", "corporate_number", "country")} | {
        "username": form["username"],
        "email": form["email"],
        "password": form["password"],
    }


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "the first browser that saves answers through this link keeps them"),
        ("ja", "最初に回答を保存したブラウザ"),
    ],
)
def test_the_pages_explain_the_rule(sent, language, text):
    browser = Client(HTTP_ACCEPT_LANGUAGE=language)
    for page in (f"/supply/i/{sent.token}/", urls(sent.invitation.pk)["answer"]):
        body = browser.get(page).content.decode()
        assert 'id="pen-rule"' in body
        assert text in body
