"""Hearing notes: the survey owner records what a supplier said in a hearing (interview), on the
supplier's page of the survey. The owner's administrators record, its members read, the
supplier and everyone else do not learn the notes exist (404)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mamori.audit.models import AuditEvent
from mamori.audit.services import verify_trail
from mamori.core.errors import MamoriError, NotAllowed
from mamori.organisations.access import Access
from mamori.supplychain import services
from mamori.supplychain.models import HearingNote
from tests.conftest import client_for
from tests.supplychain.test_survey_cascade import build_chain

pytestmark = pytest.mark.django_db

NOTES = "流量センサーの代替品の評価に 9 か月かかるとの説明。"


def _form(**changes) -> dict:
    data = {
        "held_on": (timezone.localdate() - dt.timedelta(days=2)).isoformat(),
        "interviewer": "調達 太郎",
        "participants": "ベンダーA 調達部長",
        "notes": NOTES,
        "follow_ups": "2 週間以内に回答をもらう。",
    }
    data.update(changes)
    return data


@pytest.fixture
def chain(world, django_capture_on_commit_callbacks):
    return build_chain(world, django_capture_on_commit_callbacks)


def _urls(invitation) -> tuple[str, str]:
    return (
        reverse("supplychain:response", args=[invitation.pk]),
        reverse("supplychain:hearing_add", args=[invitation.pk]),
    )


def test_the_owners_administrator_records_a_hearing_and_its_members_read_it(world, chain):
    page_url, post_url = _urls(chain.a)
    admin = client_for(world.admin)
    form_page = admin.get(page_url).content.decode()
    assert 'id="hearing-form"' in form_page
    assert "ヒアリング" in form_page  # Japanese first

    response = admin.post(post_url, _form())
    assert response.status_code == 302
    assert response["Location"] == f"{page_url}#hearings"
    note = HearingNote.objects.get()
    assert (note.invitation, note.recorded_by, note.notes) == (chain.a, world.admin, NOTES)
    assert note.held_on == timezone.localdate() - dt.timedelta(days=2)

    # Audited, with a digest of the text but not the text (the notes are confidential).
    event = AuditEvent.objects.get(action="supplychain.hearing_recorded")
    assert event.actor_id == world.admin.pk
    assert event.organisation_id == world.bank.pk
    assert event.details["invitation"] == chain.a.pk
    assert "after_digest" in event.details
    assert NOTES not in str(event.details)
    assert verify_trail() is None

    # Every member of the owner reads the notes, in both languages; only administrators record.
    for user in (world.admin, world.contributor, world.signatory):
        client = client_for(user)
        for language, heading in (("ja", "この取引先とのヒアリング"), ("en", "Hearings")):
            html = client.get(page_url, HTTP_ACCEPT_LANGUAGE=language).content.decode()
            assert NOTES in html
            assert heading in html
        has_form = 'id="hearing-form"' in client.get(page_url).content.decode()
        assert has_form is (user == world.admin)


def test_a_deeper_tier_supplier_can_be_heard_too(world, chain):
    _page_url, post_url = _urls(chain.b)
    assert client_for(world.admin).post(post_url, _form()).status_code == 302
    assert HearingNote.objects.get().invitation == chain.b


@pytest.mark.parametrize(
    "who", ["contributor", "signatory", "supplier", "tier2", "other_bank", "outsider", "owner"]
)
def test_nobody_else_records_a_hearing_and_the_supplier_never_sees_one(world, chain, who):
    services.record_hearing(
        world.admin,
        Access.for_user(world.admin),
        chain.a,
        held_on=timezone.localdate(),
        interviewer="調達 太郎",
        notes=NOTES,
    )
    users = {
        "contributor": world.contributor,
        "signatory": world.signatory,
        "supplier": chain.user_a,
        "tier2": chain.user_b,
        "other_bank": world.other_admin,
        "outsider": world.outsider,
        "owner": world.owner,  # the scheme owner, not the survey's owner
    }
    client = client_for(users[who])
    page_url, post_url = _urls(chain.a)
    response = client.post(post_url, _form(notes="書き換え"))
    assert response.status_code == 404
    assert HearingNote.objects.count() == 1
    assert "書き換え" not in response.content.decode()
    page = client.get(page_url)
    if who == "supplier":
        # The supplier sees its own answers, not what its customer noted about it.
        assert page.status_code == 200
        assert NOTES not in page.content.decode()
        assert 'id="hearings"' not in page.content.decode()
    elif who in ("contributor", "signatory"):
        assert NOTES in page.content.decode()
    else:
        assert page.status_code == 404
        assert NOTES not in page.content.decode()


def test_signed_out_visitors_are_sent_to_sign_in(chain):
    _page_url, post_url = _urls(chain.a)
    response = Client().post(post_url, _form())
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not HearingNote.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"held_on": (timezone.localdate() + dt.timedelta(days=1)).isoformat()}, "held_on"),
        ({"held_on": "2026-02-30"}, "held_on"),
        ({"interviewer": "  "}, "interviewer"),
        ({"notes": ""}, "notes"),
        ({"notes": "x" * 10001}, "notes"),
    ],
)
def test_bad_input_is_a_form_error_and_nothing_is_written(world, chain, changes, field):
    _page_url, post_url = _urls(chain.a)
    response = client_for(world.admin).post(post_url, _form(**changes))
    assert response.status_code == 422
    assert field in response.context["hearing_form"].errors
    assert 'id="hearing-form"' in response.content.decode()
    assert not HearingNote.objects.exists()
    assert not AuditEvent.objects.filter(action="supplychain.hearing_recorded").exists()


def test_the_service_checks_the_rules_itself(world, chain):
    with pytest.raises(NotAllowed):
        services.record_hearing(
            world.contributor,
            Access.for_user(world.contributor),
            chain.a,
            held_on=timezone.localdate(),
            interviewer="x",
            notes="x",
        )
    with pytest.raises(MamoriError) as raised:
        services.record_hearing(
            world.admin,
            Access.for_user(world.admin),
            chain.a,
            held_on=timezone.localdate() + dt.timedelta(days=1),
            interviewer="x",
            notes="x",
        )
    assert raised.value.field == "held_on"
    assert not HearingNote.objects.exists()
