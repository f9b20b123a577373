"""A supplier shown with the organisation that answered for it, in brackets, only when the two
names differ (issue 9, section 5: "株式会社NTTデータ (株式会社NTTデータ)")."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.conf import settings
from django.utils import timezone

from mamori.organisations.access import Access
from mamori.supplychain import services
from tests.conftest import client_for
from tests.supplychain.test_survey_cascade import supplier_org

SAME = "株式会社テストデータ"  # invited under the name its organisation has in Mamori
DIFFERENT = "ベンダーX"  # invited under a trade name; the organisation is "株式会社エックス"


@pytest.mark.django_db
def test_campaign_page_names_an_answering_organisation_once(
    world, django_capture_on_commit_callbacks
):
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
    for supplier, (org_name, username) in (
        (SAME, (SAME, "same")),
        (DIFFERENT, ("株式会社エックス", "different")),
    ):
        organisation, user = supplier_org(org_name, username)
        with django_capture_on_commit_callbacks(execute=True):
            sent = services.invite(
                world.admin,
                access,
                campaign=campaign,
                for_node=service,
                need=f"need of {username}",
                supplier_name=supplier,
                country="JP",
                email=f"{username}@example.jp",
                site_url="http://testserver/",
            )
        services.bind(user, Access.for_user(user), sent.invitation, organisation)

    client = client_for(world.admin)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ja"
    html = client.get(f"/supply/campaigns/{campaign.pk}/").content.decode()
    cells = re.findall(r'<td><a href="/supply/responses/\d+/">(.*?)</td>', html, re.S)
    texts = [re.sub(r"<[^>]+>", "", cell).strip() for cell in cells]
    assert SAME in texts
    assert f"{DIFFERENT} (株式会社エックス)" in texts
