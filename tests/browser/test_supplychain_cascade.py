"""The supplier-survey cascade in a real browser (issue 4, section 6): the institution lists a
critical service, starts a survey and invites a Tier-1 supplier by e-mail; the supplier signs in,
answers and invites its own supplier; that Tier-2 supplier answers without an account and names
a sole Tier-3 provider; the institution then sees the three-tier graph, drawn by Cytoscape, with
the Tier-3 provider flagged as a single point of failure.

Every step is clicked through the pages; the invitation links are read from the e-mails the
pages sent (Django's outbox, shared with the live server's thread).
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.core import mail
from django.utils import timezone

from mamori.organisations.models import Category, Organisation, Role
from mamori.supplychain.models import Campaign, Invitation, InvitationStatus, Node
from tests.browser.conftest import ui
from tests.conftest import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LINK = re.compile(r"https?://\S+/supply/i/[A-Za-z0-9_\-]+/")
# Records CSP violations in the page itself (Chromium also logs them as console errors).
CSP_PROBE = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""

SERVICE = {"ja": "勘定系システム", "en": "Core banking"}
TIER1 = {"ja": "勘定系運用サービス", "en": "Core operations"}
TIER2 = {"ja": "コロケーション", "en": "Colocation"}
TIER3 = "Chiller C"  # named by Tier 2, never invited: the expected single point of failure
ALTERNATIVES = ("Grid East", "Generator West")  # Tier 1's power: two providers, no SPOF


@pytest.fixture
def people(world):
    """The bank's administrator and a supplier organisation with its own administrator."""
    world.admin.set_password(PASSWORD)
    world.admin.save(update_fields=["password"])
    vendor = Organisation.objects.create(
        name_ja="ベンダーA", name_en="Vendor A", category=Category.IT_VENDOR
    )
    world.vendor = vendor
    world.vendor_admin = make_user("vendor-a", vendor, Role.APPLICANT_ADMIN, password=PASSWORD)
    return world


def link_sent_to(address: str) -> str:
    """The invitation link of the last e-mail sent to ``address``."""
    sent = [m for m in mail.outbox if address in m.to]
    assert sent, f"no e-mail to {address}; outbox: {[m.to for m in mail.outbox]}"
    match = LINK.search(sent[-1].body)
    assert match, sent[-1].body
    return match.group(0)


def watch(tab) -> list[str]:
    """Console errors, uncaught exceptions and failed requests of ``tab``, as they happen."""
    problems: list[str] = []
    tab.page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    tab.page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    tab.page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    tab.context.add_init_script(CSP_PROBE)
    return problems


def fill_invitation(tab, need: str, name: str, country: str, email: str) -> None:
    tab.page.fill("#id_need", need)
    tab.page.fill("#id_supplier_name", name)
    tab.page.fill("#id_country", country)
    tab.page.fill("#id_email", email)
    tab.click_and_wait("main form:has(#id_email) button[type=submit]")
    tab.see_message("The invitation was sent.")


def fill_answers(tab, names: dict, country: str, need: str, providers: list[str]) -> None:
    """The questionnaire: what is supplied, one site and one need with its providers."""
    tab.see("h1", ui("Questionnaire", tab.language))
    tab.page.select_option("#id_kind", "ict")
    tab.page.fill("#id_name_ja", names["ja"])
    tab.page.fill("#id_name_en", names["en"])
    tab.page.fill("#id_country", country)
    tab.page.select_option("#id_disclosure", "full")
    tab.page.fill("#id_sites-0-name", "Tokyo" if country == "JP" else "Singapore")
    tab.page.fill("#id_sites-0-country", country)
    tab.page.fill("#id_needs-0-name", need)
    tab.page.fill("#id_needs-0-providers", "\n".join(providers))
    tab.click_and_wait("main form button[type=submit]")
    tab.see_message("Your answers were saved.")


# --- the three parties ------------------------------------------------------------------------


def institution_invites_tier1(bank, language: str) -> tuple[Node, Campaign]:
    bank.login("alice", PASSWORD)
    bank.open("/supply/services/")
    bank.see_language()
    bank.page.fill("#id_name_ja", SERVICE["ja"])
    bank.page.fill("#id_name_en", SERVICE["en"])
    bank.page.select_option("#id_criticality", "critical")
    bank.click_and_wait("main form button[type=submit]")
    bank.see_message("The critical service was added.")
    service = Node.objects.services().get(name_en=SERVICE["en"])
    assert service.critical
    bank.see("#services", SERVICE[language])

    bank.open("/supply/campaigns/new/")
    bank.page.fill("#id_title", "ICT supplier survey 2026")
    bank.page.check(f"input[name=services][value='{service.pk}']")
    deadline = timezone.localdate() + dt.timedelta(days=21)
    bank.page.fill("#id_deadline", deadline.isoformat())
    bank.click_and_wait("main form button[type=submit]")
    bank.see_message("The survey was created. Invite the Tier-1 suppliers.")
    campaign = Campaign.objects.get(owner=service.owner)
    bank.check(bank.page.url.endswith(f"/supply/campaigns/{campaign.pk}/"), "not on the survey")

    fill_invitation(bank, "hosting", "Vendor A", "JP", "a@vendor.example")
    return service, campaign


def tier1_answers_and_invites(vendor, link: str, language: str) -> Invitation:
    vendor.login("vendor-a", PASSWORD)
    response = vendor.page.goto(link)
    vendor.check(response is not None and response.status == 200, "the link did not open")
    vendor.see_language()
    vendor.see("#invited-by", "テスト銀行" if language == "ja" else "Test Bank")
    vendor.page.select_option(
        "#id_organisation", label="ベンダーA" if language == "ja" else "Vendor A"
    )
    vendor.click_and_wait("main form button[type=submit]")
    invitation = Invitation.objects.get(email="a@vendor.example")
    vendor.check(
        vendor.page.url.endswith(f"/supply/responses/{invitation.pk}/answer/"),
        "answering for the organisation should open the questionnaire",
    )
    fill_answers(vendor, TIER1, "JP", "power", list(ALTERNATIVES))

    vendor.click_and_wait("#invite-suppliers")
    vendor.see("h1", ui("Invite your suppliers", language))
    fill_invitation(vendor, "datacentre", "DC B", "SG", "b@dc.example")
    vendor.see("#sent", "DC B")
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.ANSWERED
    return invitation


def tier2_answers_without_account(dc, link: str, language: str) -> Invitation:
    response = dc.page.goto(link)
    dc.check(response is not None and response.status == 200, "the link did not open")
    dc.see_language()
    dc.see("#invited-by", "ベンダーA" if language == "ja" else "Vendor A")
    dc.click_and_wait("#answer-without-account")
    fill_answers(dc, TIER2, "SG", "cooling", [TIER3])
    invitation = Invitation.objects.get(email="b@dc.example")
    assert invitation.status == InvitationStatus.ANSWERED
    assert invitation.tier == 2
    assert invitation.organisation is None
    return invitation


# --- the flow ---------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "ja"])
def test_cascade_to_three_tier_graph_with_spof(browse, people, language):
    bank = browse("alice", language)
    service, campaign = institution_invites_tier1(bank, language)
    vendor = browse("vendor-a", language)
    tier1 = tier1_answers_and_invites(vendor, link_sent_to("a@vendor.example"), language)
    dc = browse("dc-b", language)
    tier2 = tier2_answers_without_account(dc, link_sent_to("b@dc.example"), language)
    assert tier2.parent == tier1

    # The survey page counts the answers tier by tier.
    bank.open(f"/supply/campaigns/{campaign.pk}/")
    for tier in ("1", "2"):
        row = bank.page.locator(f"#tracking tr[data-tier='{tier}'] td")
        assert row.all_inner_texts()[:3] == [tier, "1", "1"], row.all_inner_texts()

    # The institution opens the service's graph from its list of critical services.
    problems = watch(bank)
    bank.open("/supply/services/")
    with bank.page.expect_navigation() as navigation:
        bank.page.locator(f"#services a[href='/supply/services/{service.pk}/']").click()
    # Served under the site's strict policy, so a clean console below means the graph needs
    # neither inline script nor inline style.
    policy = navigation.value.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy, policy
    assert "style-src 'self'" in policy, policy
    assert "unsafe-inline" not in policy, policy
    bank.see_language()
    bank.see("h1", SERVICE[language])
    bank.see("main h2", ui("The chain, tier by tier", language))
    bank.absent("#no-answers")

    # Cytoscape drew the graph: the script took over the container and put canvases in it.
    bank.see_class("#service-graph", "sc-ready")
    bank.see("#service-graph canvas")
    size = bank.page.eval_on_selector(
        "#service-graph", "e => [e.querySelectorAll('canvas').length, e.clientHeight]"
    )
    bank.check(size[0] > 0 and size[1] > 0, f"no drawn graph: canvases, height = {size}")

    # Its data: three tiers, labelled in the page's language, the Tier-3 provider a SPOF.
    data = json.loads(bank.page.inner_text("#service-graph-data"))
    labels = {str(t): ui("Tier %(tier)s", language) % {"tier": t} for t in (1, 2, 3)}
    assert data["tier_labels"] == labels
    drawn = {e["data"]["label"]: e for e in data["elements"] if e["group"] == "nodes"}
    assert drawn[TIER3]["data"]["tier"] == 3
    assert "spof" in drawn[TIER3]["classes"].split()
    for name in ALTERNATIVES:
        assert drawn[name]["data"]["tier"] == 2
        assert "spof" not in drawn[name]["classes"].split()

    # The table: one row per node with its tier; the SPOF column and the row mark agree.
    rows = {}
    for row in bank.page.locator("#graph-table tbody tr").all():
        cells = row.locator("td").all_inner_texts()
        rows[cells[0].split("\n")[0].strip()] = (cells, row.get_attribute("class") or "")
    tiers = {name: cells[2] for name, (cells, _css) in rows.items()}
    assert tiers[TIER1[language]] == "1", tiers
    assert tiers[TIER2[language]] == "2", tiers
    assert tiers[TIER3] == "3", tiers
    assert {tiers[name] for name in ALTERNATIVES} == {"2"}, tiers
    # The service itself has no tier (its direct providers are Tier 1).
    assert sorted(set(tiers.values())) == ["1", "2", "3", "—"], tiers
    yes, no = ui("yes", language), ui("no", language)
    for name in (TIER1[language], TIER2[language], TIER3):
        cells, css = rows[name]
        assert "sc-row-spof" in css.split(), (name, css)
        assert cells[6].strip() == yes, (name, cells)
    for name in ALTERNATIVES:
        cells, css = rows[name]
        assert "sc-row-spof" not in css.split(), (name, css)
        assert cells[6].strip() == no, (name, cells)

    # The findings list the same single points of failure, and only those.
    spof = bank.page.locator("#finding-spof li").all_inner_texts()
    assert TIER3 in spof, spof
    assert sorted(spof) == sorted([TIER1[language], TIER2[language], TIER3]), spof
    bank.see("#finding-sole-source", TIER3)

    # Nothing went wrong in the page: no console error, no script error, no CSP violation.
    violations = bank.page.evaluate("window.__cspViolations")
    assert violations == [], violations
    assert problems == [], problems
