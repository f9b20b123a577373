"""Shared building blocks of the supply-chain tests."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from mamori.organisations.access import Access
from mamori.supplychain import services


def bank_survey_with_one_invitation(world, *, supplier_name: str, email: str):
    """The bank's critical service, a survey of it, and one Tier-1 supplier invited by the
    bank's administrator, all through the real services: ``(service, campaign, sent)``."""
    access = Access.for_user(world.admin)
    service = services.create_service(
        world.admin, access, world.bank, name_ja="勘定系システム", name_en="Core banking"
    )
    campaign = services.create_campaign(
        world.admin,
        access,
        world.bank,
        title="2026 survey",
        services=[service],
        deadline=timezone.localdate() + dt.timedelta(days=30),
        site_url="http://testserver/",
    )
    sent = services.invite(
        world.admin,
        access,
        campaign=campaign,
        for_node=service,
        need="hosting",
        supplier_name=supplier_name,
        country="JP",
        email=email,
        site_url="http://testserver/",
    )
    return service, campaign, sent
