"""The cascade over three tiers through the real pages: the institution invites A, A answers and
invites B, B (without an account) answers, claims an organisation and invites C, who never
answers. The owner sees the chain; A and B see only their own part."""

from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from mamori.audit.models import AuditEvent
from mamori.organisations.access import Access
from mamori.organisations.models import Category, Membership, Organisation, Role
from mamori.supplychain import services
from mamori.supplychain.models import Campaign, Invitation, InvitationStatus, Node
from tests.conftest import PASSWORD, client_for, make_user

LINK = re.compile(r"https?://[^\s]+/supply/i/([A-Za-z0-9_\-]+)/")


def token_from_last_mail() -> str:
    match = LINK.search(mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group(1)


def supplier_org(name: str, username: str):
    organisation = Organisation.objects.create(
        name_ja=name, name_en=name, category=Category.IT_VENDOR
    )
    user = make_user(username, organisation, Role.APPLICANT_ADMIN)
    return organisation, user


def build_chain(world, capture) -> SimpleNamespace:
    """Institution (world.bank) → A (tier 1) → B (tier 2), both answered, through the services."""
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
    org_a, user_a = supplier_org("ベンダーA", "vendor-a")
    org_b, user_b = supplier_org("データセンターB", "dc-b")
    with capture(execute=True):
        sent_a = services.invite(
            world.admin,
            access,
            campaign=campaign,
            for_node=service,
            need="hosting",
            supplier_name="Vendor A",
            country="JP",
            email="a@example.jp",
            site_url="http://testserver/",
        )
    sent_a.invitation = services.bind(user_a, Access.for_user(user_a), sent_a.invitation, org_a)
    services.save_answers(
        user_a,
        sent_a.invitation,
        answers={"name_ja": "勘定系運用", "name_en": "Core ops", "country": "JP", "kind": "ict"},
        sites=[services.SiteRow("data", "Tokyo", "JP")],
        needs=[services.NeedRow("power", ["Grid", "Generator"])],
    )
    with capture(execute=True):
        sent_b = services.invite(
            user_a,
            Access.for_user(user_a),
            campaign=campaign,
            for_node=sent_a.invitation.node,
            need="datacentre",
            supplier_name="DC B",
            country="JP",
            email="b@example.jp",
            parent=sent_a.invitation,
            site_url="http://testserver/",
        )
    sent_b.invitation = services.bind(user_b, Access.for_user(user_b), sent_b.invitation, org_b)
    services.save_answers(
        user_b,
        sent_b.invitation,
        answers={"name_ja": "DC", "name_en": "DC", "country": "JP", "kind": "ict"},
        sites=[],
        needs=[],
    )
    return SimpleNamespace(
        service=service,
        campaign=campaign,
        a=Invitation.objects.get(pk=sent_a.invitation.pk),
        b=Invitation.objects.get(pk=sent_b.invitation.pk),
        org_a=org_a,
        org_b=org_b,
        user_a=user_a,
        user_b=user_b,
        token_a=sent_a.token,
        token_b=sent_b.token,
    )


def answer_post(name: str, *, needs=(), sites=(), disclosure="full", kind="ict") -> dict:
    data = {
        "kind": kind,
        "name_ja": name,
        "name_en": name,
        "country": "JP",
        "disclosure": disclosure,
        "has_bcp": "yes",
        "recovery_hours": "24",
        "inventory_days": "",
        "certification_text": "",
        "sites-TOTAL_FORMS": str(max(len(sites), 1)),
        "sites-INITIAL_FORMS": "0",
        "sites-MIN_NUM_FORMS": "0",
        "sites-MAX_NUM_FORMS": "50",
        "needs-TOTAL_FORMS": str(max(len(needs), 1)),
        "needs-INITIAL_FORMS": "0",
        "needs-MIN_NUM_FORMS": "0",
        "needs-MAX_NUM_FORMS": "50",
        "sites-0-kind": "production",
        "needs-0-name": "",
    }
    for i, (kind_, site, country) in enumerate(sites):
        data.update(
            {f"sites-{i}-kind": kind_, f"sites-{i}-name": site, f"sites-{i}-country": country}
        )
    for i, (need, providers) in enumerate(needs):
        data.update({f"needs-{i}-name": need, f"needs-{i}-providers": "\n".join(providers)})
    return data


@pytest.mark.django_db
def test_three_tier_cascade_through_the_pages(world, django_capture_on_commit_callbacks):
    bank = client_for(world.admin)
    # The institution lists a critical service and starts a survey.
    response = bank.post(
        "/supply/services/",
        {"name_ja": "勘定系システム", "name_en": "Core banking", "criticality": "critical"},
    )
    assert response.status_code == 302
    service = Node.objects.services().get(owner=world.bank)
    assert service.critical
    assert service.entity.organisation == world.bank
    deadline = (timezone.localdate() + dt.timedelta(days=21)).isoformat()
    response = bank.post(
        "/supply/campaigns/new/",
        {
            "organisation": str(world.bank.pk),
            "title": "ICT survey",
            "services": [str(service.pk)],
            "deadline": deadline,
        },
    )
    assert response.status_code == 302
    campaign = Campaign.objects.get(owner=world.bank)

    # Tier 1: A, an existing Mamori organisation.
    org_a, user_a = supplier_org("ベンダーA", "vendor-a")
    with django_capture_on_commit_callbacks(execute=True):
        response = bank.post(
            f"/supply/campaigns/{campaign.pk}/",
            {
                "target": str(service.pk),
                "need": "hosting",
                "supplier_name": "Vendor A",
                "country": "JP",
                "email": "a@example.jp",
            },
        )
    assert response.status_code == 302
    assert mail.outbox[-1].to == ["a@example.jp"]
    token_a = token_from_last_mail()
    # Another Tier-1 supplier B must never learn about.
    with django_capture_on_commit_callbacks(execute=True):
        bank.post(
            f"/supply/campaigns/{campaign.pk}/",
            {
                "target": str(service.pk),
                "need": "network",
                "supplier_name": "Secret Carrier",
                "country": "JP",
                "email": "carrier@example.jp",
            },
        )

    a = client_for(user_a)
    response = a.get(f"/supply/i/{token_a}/")
    assert response.status_code == 200
    assert "テスト銀行" in response.content.decode()  # who invited it
    response = a.post(f"/supply/i/{token_a}/", {"organisation": str(org_a.pk)})
    invitation_a = Invitation.objects.get(campaign=campaign, email="a@example.jp")
    assert response.status_code == 302
    assert response["Location"] == f"/supply/responses/{invitation_a.pk}/answer/"
    response = a.post(
        f"/supply/responses/{invitation_a.pk}/answer/",
        answer_post(
            "勘定系運用サービス",
            needs=[("power", ["Grid East", "Generator"])],
            sites=[("data", "Tokyo", "JP"), ("data", "Osaka", "JP")],
        ),
    )
    assert response.status_code == 302, response.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = a.post(
            f"/supply/responses/{invitation_a.pk}/invite/",
            {
                "target": str(invitation_a.node_id),
                "need": "datacentre",
                "supplier_name": "DC B",
                "country": "SG",
                "email": "b@example.jp",
            },
        )
    assert response.status_code == 302
    token_b = token_from_last_mail()
    invitation_b = Invitation.objects.get(email="b@example.jp")
    assert invitation_b.tier == 2
    assert invitation_b.parent == invitation_a

    # Tier 2: B has no account. It answers through the link, then claims an organisation.
    b = Client()
    response = b.get(f"/supply/i/{token_b}/")
    assert response.status_code == 200
    assert "ベンダーA" in response.content.decode()
    response = b.post(
        f"/supply/responses/{invitation_b.pk}/answer/",
        answer_post("コロケーション", sites=[("production", "Singapore", "SG")]),
    )
    assert response.status_code == 302, response.content.decode()
    response = b.post(
        f"/supply/responses/{invitation_b.pk}/claim/",
        {
            "name_ja": "データセンターB",
            "name_en": "DC B Pte",
            "corporate_number": "",
            "country": "SG",
            "username": "dc-b-admin",
            "email": "admin@dcb.example",
            "password": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.status_code == 302
    org_b = Organisation.objects.get(name_en="DC B Pte")
    user_b = Membership.objects.get(organisation=org_b, role=Role.APPLICANT_ADMIN).user
    invitation_b.refresh_from_db()
    assert invitation_b.organisation == org_b
    assert invitation_b.node.entity.organisation == org_b
    # B is signed in now and invites its own supplier C (tier 3), who never answers.
    with django_capture_on_commit_callbacks(execute=True):
        response = b.post(
            f"/supply/responses/{invitation_b.pk}/invite/",
            {
                "target": str(invitation_b.node_id),
                "need": "cooling",
                "supplier_name": "Chiller C",
                "country": "DE",
                "email": "c@example.jp",
            },
        )
    assert response.status_code == 302
    invitation_c = Invitation.objects.get(email="c@example.jp")
    assert invitation_c.tier == 3

    # The owner sees the whole chain, non-respondents as opaque.
    document = services.export_graph(campaign)
    nodes = {n["id"]: n for n in document["nodes"]}
    reqs = {(r["node"], r["need"]): r["providers"] for r in document["requirements"]}
    key = {inv.pk: inv.node.key for inv in Invitation.objects.filter(campaign=campaign)}
    assert reqs[(service.key, "hosting")] == [key[invitation_a.pk]]
    assert reqs[(key[invitation_a.pk], "datacentre")] == [key[invitation_b.pk]]
    assert reqs[(key[invitation_b.pk], "cooling")] == [key[invitation_c.pk]]
    assert len(reqs[(key[invitation_a.pk], "power")]) == 2
    assert nodes[service.key]["critical"] is True
    assert nodes[key[invitation_a.pk]]["disclosure"] == "full"
    assert nodes[key[invitation_a.pk]]["entity"] == f"org-{org_a.pk}"
    assert nodes[key[invitation_b.pk]]["entity"] == f"org-{org_b.pk}"
    assert nodes[key[invitation_c.pk]]["disclosure"] == "none"
    secret = Invitation.objects.get(email="carrier@example.jp")
    assert nodes[key[secret.pk]]["disclosure"] == "none"

    page = bank.get(f"/supply/campaigns/{campaign.pk}/")
    assert page.status_code == 200
    tracking = {row["tier"]: row for row in page.context["tracking"]}
    assert tracking[1] == {"tier": 1, "invited": 2, "answered": 1, "overdue": 0, "declined": 0}
    assert tracking[2]["answered"] == 1
    assert tracking[3]["invited"] == 1
    assert bank.get(f"/supply/campaigns/{campaign.pk}/graph.json").json() == document

    # A sees only its own answers and its inviter.
    page = a.get(f"/supply/responses/{invitation_a.pk}/").content.decode()
    assert "テスト銀行" in page
    assert "Generator" in page
    # A's own supplier appears under the name A gave it, not with B's answers.
    assert "DC B" in page
    assert "コロケーション" not in page
    assert "Singapore" not in page
    assert a.get(f"/supply/responses/{invitation_b.pk}/").status_code == 404
    assert a.get(f"/supply/campaigns/{campaign.pk}/").status_code == 404
    assert a.get(f"/supply/campaigns/{campaign.pk}/graph.json").status_code == 404
    # B does not see the institution's other suppliers, nor A's.
    b_user = client_for(user_b)
    for path in ("/supply/", f"/supply/responses/{invitation_b.pk}/"):
        page = b_user.get(path).content.decode()
        assert "Secret Carrier" not in page
        assert "Generator" not in page
        assert "テスト銀行" not in page
    assert b_user.get(f"/supply/responses/{secret.pk}/").status_code == 404
    assert b_user.get(f"/supply/responses/{invitation_a.pk}/").status_code == 404

    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "supplychain.invitation_sent",
        "supplychain.invitation_accepted",
        "supplychain.invitation_answered",
        "supplychain.invitation_claimed",
    } <= actions


@pytest.mark.django_db
def test_answers_keep_invited_providers_and_replace_named_ones(
    world, django_capture_on_commit_callbacks
):
    chain = build_chain(world, django_capture_on_commit_callbacks)
    node_a = chain.a.node
    # A renames its needs: "power" now has one provider; the invited "datacentre" one stays.
    services.save_answers(
        chain.user_a,
        chain.a,
        answers={"name_ja": "勘定系運用", "country": "JP", "kind": "ict"},
        sites=[],
        needs=[services.NeedRow("power", ["Grid"])],
    )
    needs = {n.name: sorted(p.name_ja for p in n.providers.all()) for n in node_a.needs.all()}
    assert needs == {"power": ["Grid"], "datacentre": ["DC"]}
    assert not Node.objects.filter(name_ja="Generator").exists()


@pytest.mark.django_db
def test_decline_is_counted_and_stops_answers(world, django_capture_on_commit_callbacks):
    chain = build_chain(world, django_capture_on_commit_callbacks)
    access = Access.for_user(world.admin)
    with django_capture_on_commit_callbacks(execute=True):
        sent = services.invite(
            world.admin,
            access,
            campaign=chain.campaign,
            for_node=chain.service,
            need="hosting",
            supplier_name="Vendor Z",
            country="JP",
            email="z@example.jp",
            site_url="http://testserver/",
        )
    z = Client()
    assert z.get(f"/supply/i/{sent.token}/").status_code == 200
    assert z.post(f"/supply/responses/{sent.invitation.pk}/decline/").status_code == 302
    sent.invitation.refresh_from_db()
    assert sent.invitation.status == InvitationStatus.DECLINED
    assert z.get(f"/supply/responses/{sent.invitation.pk}/answer/").status_code == 404
    assert z.get(f"/supply/i/{sent.token}/").status_code == 404
    rows = {r["tier"]: r for r in services.tracking(chain.campaign.invitations.all())}
    assert rows[1]["declined"] == 1
    assert rows[1]["answered"] == 1


@pytest.mark.django_db
def test_pages_render_in_english_and_japanese(world, django_capture_on_commit_callbacks):
    from mamori.supplychain.models import CriticalService

    chain = build_chain(world, django_capture_on_commit_callbacks)
    assert list(CriticalService.objects.all()) == [chain.service]
    bank = client_for(world.admin)
    a = client_for(chain.user_a)
    pages = [
        (bank, "/supply/"),
        (bank, "/supply/services/"),
        (bank, "/supply/campaigns/new/"),
        (bank, f"/supply/campaigns/{chain.campaign.pk}/"),
        (bank, f"/supply/responses/{chain.a.pk}/"),
        (a, f"/supply/responses/{chain.a.pk}/"),
        (a, f"/supply/responses/{chain.a.pk}/answer/"),
        (a, f"/supply/responses/{chain.a.pk}/invite/"),
    ]
    for language in ("en", "ja"):
        for client, path in pages:
            response = client.get(path, HTTP_ACCEPT_LANGUAGE=language)
            assert response.status_code == 200, path
            assert f'lang="{language}"' in response.content.decode()
    english = bank.get(f"/supply/campaigns/{chain.campaign.pk}/", HTTP_ACCEPT_LANGUAGE="en")
    assert "Responses by tier" in english.content.decode()
    # The answer form shows what A answered before; invited suppliers are not listed as text
    # (they stay whatever A types).
    form = a.get(f"/supply/responses/{chain.a.pk}/answer/").context["need_set"]
    assert form.initial == [
        {"name": "power", "providers": "Grid\nGenerator"},
        {"name": "datacentre", "providers": ""},
    ]


@pytest.mark.django_db
def test_sector_figures_need_three_institutions(world, django_capture_on_commit_callbacks):
    build_chain(world, django_capture_on_commit_callbacks)
    owner = client_for(world.owner)
    page = owner.get("/supply/sector/")
    assert page.status_code == 200
    assert page.context["sector"]["shown"] is False
    assert page.context["sector"]["tiers"] == []
    for name in ("銀行2", "銀行3"):
        institution = Organisation.objects.create(
            name_ja=name, name_en=name, category=Category.FINANCIAL_INSTITUTION
        )
        admin = make_user(f"admin-{name}", institution, Role.APPLICANT_ADMIN)
        access = Access.for_user(admin)
        service = services.create_service(admin, access, institution, name_ja="決済")
        services.create_campaign(
            admin,
            access,
            institution,
            title="s",
            services=[service],
            deadline=timezone.localdate() + dt.timedelta(days=3),
        )
    sector = owner.get("/supply/sector/").context["sector"]
    assert sector["shown"] is True
    assert sector["institutions"] == 3
    assert sector["tiers"][0]["invited"] == 1
    # Aggregates only: no names of institutions or suppliers.
    body = owner.get("/supply/sector/").content.decode()
    assert "テスト銀行" not in body
    assert "ベンダーA" not in body


@pytest.mark.django_db
def test_declared_certification_needs_evidence(world, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    chain = build_chain(world, django_capture_on_commit_callbacks)
    a = client_for(chain.user_a)
    path = f"/supply/responses/{chain.a.pk}/answer/"
    data = answer_post("勘定系運用", kind="part") | {"certification_declared": "on"}
    data["inventory_days"] = "45"
    response = a.post(path, data)
    assert response.status_code == 422
    assert "evidence" in response.content.decode() or "証跡" in response.content.decode()
    upload = SimpleUploadedFile("isms.pdf", b"%PDF-1.4 certificate", content_type="application/pdf")
    response = a.post(path, data | {"certification_file": upload})
    assert response.status_code == 302
    node = Node.objects.get(pk=chain.a.node_id)
    assert node.certification_file.name.startswith("supplychain/evidence/")
    assert node.declared_certified
    assert node.inventory_days == 45
    exported = services.export_graph(chain.campaign)
    assert next(n for n in exported["nodes"] if n["id"] == node.key)["certified"] is True
    node.certification_file.delete(save=False)
