"""Where tiers start. A bank counts from itself (its direct suppliers are Tier 1); a survey of
products counts from the manufacturers: the organisations invited for the service make the
product (Tier 0) and *their* direct suppliers are Tier 1, as the Japanese medical-device survey
counts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from mamori.organisations.access import Access
from mamori.supplychain import services
from mamori.supplychain.models import CriticalService, Invitation, TierOrigin
from tests.conftest import client_for
from tests.supplychain.test_survey_cascade import supplier_org

pytestmark = pytest.mark.django_db


def _survey(world, service):
    return services.create_campaign(
        world.owner,
        Access.for_user(world.owner),
        world.secretariat,
        title="医療機器調査",
        services=[service],
        deadline=timezone.localdate() + dt.timedelta(days=30),
        site_url="http://testserver/",
    )


def test_a_service_counting_from_the_manufacturers_numbers_them_tier_0(
    world, django_capture_on_commit_callbacks
):
    owner = client_for(world.owner)
    response = owner.post(
        reverse("supplychain:services"),
        {
            "name_ja": "人工呼吸器の供給",
            "name_en": "Supply of ventilators",
            "criticality": "critical",
            "tier_origin": TierOrigin.MANUFACTURER,
        },
    )
    assert response.status_code == 302
    service = CriticalService.objects.get(owner=world.secretariat)
    assert service.tier_origin == TierOrigin.MANUFACTURER
    assert service.first_tier == 0
    campaign = _survey(world, service)
    maker_org, maker_user = supplier_org("甲医科工業", "maker")
    access = Access.for_user(world.owner)
    with django_capture_on_commit_callbacks(execute=True):
        maker = services.invite(
            world.owner,
            access,
            campaign=campaign,
            for_node=service,
            need="人工呼吸器の製造",
            supplier_name="甲医科工業",
            country="JP",
            email="maker@example.jp",
            site_url="http://testserver/",
        ).invitation
    assert maker.tier == 0
    maker = services.bind(maker_user, Access.for_user(maker_user), maker, maker_org)
    with django_capture_on_commit_callbacks(execute=True):
        sensor = services.invite(
            maker_user,
            Access.for_user(maker_user),
            campaign=campaign,
            for_node=maker.node,
            need="流量センサー",
            supplier_name="センサー社",
            country="CH",
            email="sensor@example.jp",
            parent=maker,
            site_url="http://testserver/",
        ).invitation
    assert sensor.tier == 1
    assert [row["tier"] for row in services.tracking(campaign.invitations.all())] == [0, 1]

    for language, tier0, note in (
        ("en", "0 (manufacturers)", "Tiers count from the manufacturers"),
        ("ja", "0（製造販売業者）", "製造販売業者から数えます"),
    ):
        html = owner.get(
            reverse("supplychain:campaign", args=[campaign.pk]), HTTP_ACCEPT_LANGUAGE=language
        ).content.decode()
        assert f'<tr data-tier="0"><td>{tier0}</td>' in html
        assert note in html

    # The service's page counts the same way: the maker is Tier 0, its supplier Tier 1, in the
    # table, in the findings and on the graph's layers (layer 1 is the service's providers).
    page = owner.get(reverse("supplychain:service", args=[service.pk]), HTTP_ACCEPT_LANGUAGE="en")
    report = page.context["report"]
    shown = {row["name"]: row["tier_shown"] for row in report["rows"] if not row["critical"]}
    assert shown == {maker.node.name: 0, sensor.node.name: 1}
    assert page.context["graph_data"]["tier_labels"] == {
        "1": "Tier 0 (manufacturers)",
        "2": "Tier 1",
    }
    sole = {r["provider_name"]: r["tier_shown"] for r in report["findings"]["sole_source"]}
    assert sole == {maker.node.name: None, sensor.node.name: 0}  # the service's need has no tier
    assert (
        "Supply of ventilators needs “人工呼吸器の製造” from 甲医科工業 alone"
        in page.content.decode()
    )
    assert "甲医科工業 (tier 0) needs “流量センサー” from センサー社 alone" in page.content.decode()


def test_a_service_counts_from_itself_unless_told_otherwise(world):
    admin = client_for(world.admin)
    # A form posted without the choice (an older page, a script) keeps the usual count.
    response = admin.post(
        reverse("supplychain:services"),
        {"name_ja": "勘定系システム", "criticality": "critical"},
    )
    assert response.status_code == 302
    service = CriticalService.objects.get(owner=world.bank)
    assert service.tier_origin == TierOrigin.SERVICE
    campaign = services.create_campaign(
        world.admin,
        Access.for_user(world.admin),
        world.bank,
        title="ICT",
        services=[service],
        deadline=timezone.localdate() + dt.timedelta(days=30),
    )
    invitation = services.invite(
        world.admin,
        Access.for_user(world.admin),
        campaign=campaign,
        for_node=service,
        need="hosting",
        supplier_name="Vendor",
        country="JP",
        email="v@example.jp",
        site_url="http://testserver/",
    ).invitation
    assert invitation.tier == 1
    html = admin.get(reverse("supplychain:campaign", args=[campaign.pk])).content.decode()
    assert 'id="tier-origin"' not in html
    assert Invitation.objects.get().tier == 1


def test_an_unknown_tier_origin_is_a_form_error(world):
    response = client_for(world.owner).post(
        reverse("supplychain:services"),
        {"name_ja": "x", "criticality": "critical", "tier_origin": "supplier"},
    )
    assert response.status_code == 422
    assert "tier_origin" in response.context["form"].errors
    assert not CriticalService.objects.exists()
