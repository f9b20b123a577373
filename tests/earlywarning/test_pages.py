"""The early-warning pages: the inbox (filters, empty states, times in the viewer's time zone),
one alert (evidence as escaped text, grading, TLP, KEV/EPSS, control, remediation, history) and
its lifecycle actions with form errors, never a server error. In Japanese and English."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from mamori.audit.models import AuditEvent
from mamori.earlywarning.feeds.network import REPORT_TYPES
from mamori.earlywarning.models import Alert, AlertState
from tests.conftest import client_for
from tests.earlywarning.scene import HOSTILE_EVIDENCE, network_feed, raise_alert, verified_asset
from tests.verification.conftest import store
from tests.verification.factory import debian12_evidence

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _documentation_assets(settings):
    settings.EARLYWARNING_DOCUMENTATION_ASSETS = True


def english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def bank(world):
    """The bank with a verified prefix, a scan_rdp feed and one alert with hostile evidence."""
    prefix = verified_asset(
        world.admin, world.access(world.admin), world.bank, "cidr", "198.51.100.0/24"
    )
    feed = network_feed("scan_rdp")
    alert = raise_alert(
        world.bank,
        feed=feed,
        asset=prefix,
        ip="198.51.100.7",
        port=3389,
        evidence=HOSTILE_EVIDENCE,
        seen_at=dt.datetime(2026, 3, 2, 1, 2, 3, tzinfo=dt.UTC),
    )
    return {"prefix": prefix, "feed": feed, "alert": alert}


def inbox_url(world) -> str:
    return reverse("earlywarning:inbox", args=[world.bank.pk])


def alert_url(alert) -> str:
    return reverse("earlywarning:alert", args=[alert.pk])


# --- Navigation and the start page -------------------------------------------------------------


def test_the_navigation_links_early_warning_for_applicants_and_the_scheme_owner(world):
    link = reverse("earlywarning:index")
    for user in (world.admin, world.signatory, world.owner):
        assert f'href="{link}"' in client_for(user).get("/").content.decode(), user
    for user in (world.assessor, world.outsider):
        assert f'href="{link}"' not in client_for(user).get("/").content.decode(), user


def test_a_member_of_one_organisation_goes_straight_to_its_inbox(world):
    for start in (reverse("earlywarning:index"), "/earlywarning/alerts/"):
        response = client_for(world.contributor).get(start)
        assert response.status_code == 302
        assert response.url == inbox_url(world)
    assert client_for(world.assessor).get(reverse("earlywarning:index")).status_code == 404


def test_the_scheme_owner_finds_the_queues(world, bank):
    registry_claim = {"kind": "cidr", "value": "203.0.113.0/24"}
    client_for(world.admin).post(
        reverse("earlywarning:assets", args=[world.bank.pk]), registry_claim
    )
    page = english(client_for(world.owner)).get(reverse("earlywarning:index")).content.decode()
    assert reverse("earlywarning:approvals") in page
    assert "Claims awaiting approval</a> (1)" in page
    assert reverse("earlywarning:inbox", args=[world.bank.pk]) not in page


# --- The inbox ---------------------------------------------------------------------------------


def test_the_inbox_in_japanese_shows_the_alert_in_japan_time(world, bank):
    page = client_for(world.admin).get(inbox_url(world)).content.decode()
    assert "アラート" in page
    label = REPORT_TYPES["scan_rdp"].label["ja"]
    assert label in page
    # 01:02:03 UTC is 10:02 in Japan; the stored UTC value is in the datetime attribute.
    assert '<time datetime="2026-03-02T01:02:03Z">' in page
    assert re.search(r"10:02\S* JST</time>", page), page[page.find("<time") :][:200]
    assert reverse("earlywarning:alert", args=[bank["alert"].pk]) in page


def test_the_inbox_in_english(world, bank):
    page = english(client_for(world.admin)).get(inbox_url(world)).content.decode()
    assert "Alerts" in page
    assert "Severity" in page
    assert REPORT_TYPES["scan_rdp"].label["en"] in page
    assert "High" in page
    assert "New" in page


def test_the_viewer_chooses_a_time_zone_for_the_session(world, bank):
    client = english(client_for(world.admin))
    chosen = client.post(
        reverse("earlywarning:time_zone"), {"time_zone": "Europe/London", "next": inbox_url(world)}
    )
    assert (chosen.status_code, chosen.url) == (302, inbox_url(world))
    page = client.get(inbox_url(world)).content.decode()
    assert re.search(r"1:02\S* GMT</time>", page) or re.search(r"01:02\S* GMT</time>", page)
    assert '<time datetime="2026-03-02T01:02:03Z">' in page
    # Nonsense, a path and an abbreviation are refused with the reason; the zone stays.
    for nonsense, words in (
        ("Mars/Olympus_Mons", "is not a time zone; use a name such as Asia/Tokyo or UTC."),
        ("../../etc/passwd", "is not a time zone"),
        ("JST", "&#x27;JST&#x27; is not a time zone"),
        ("", "Choose a time zone."),
    ):
        refused = client.post(
            reverse("earlywarning:time_zone"),
            {"time_zone": nonsense, "next": inbox_url(world)},
            follow=True,
        )
        assert refused.status_code == 200
        assert words in refused.content.decode()
        assert client.session["mamori_time_zone"] == "Europe/London"
    # A "next" that leaves the site goes to the early-warning start page instead.
    away = client.post(
        reverse("earlywarning:time_zone"),
        {"time_zone": "UTC", "next": "https://evil.example/"},
    )
    assert away.url == reverse("earlywarning:index")


def _rows(page: str) -> set[int]:
    return {int(pk) for pk in re.findall(r'data-alert="(\d+)"', page)}


def test_filters_by_type_state_severity_and_asset(world, bank):
    domain = verified_asset(
        world.admin, world.access(world.admin), world.bank, "domain", "bank.example.jp"
    )
    other = raise_alert(
        world.bank,
        type="incident",
        category="event4_sinkhole",
        severity="critical",
        control="malware_protection",
    )
    low = raise_alert(world.bank, severity="low", category="scan_http", asset=domain)
    alerts_url = inbox_url(world)
    client = client_for(world.admin)
    client.post(reverse("earlywarning:alert_state", args=[low.pk]), {"state": "acknowledged"})
    cases = {
        "": {bank["alert"].pk, other.pk, low.pk},
        "?type=incident": {other.pk},
        "?severity=low": {low.pk},
        "?state=acknowledged": {low.pk},
        "?state=open": {bank["alert"].pk, other.pk, low.pk},
        "?state=closed": set(),
        f"?asset={domain.pk}": {low.pk},
        f"?asset={bank['prefix'].pk}&type=exposure": {bank["alert"].pk},
    }
    for query, expected in cases.items():
        page = client.get(alerts_url + query).content.decode()
        assert _rows(page) == expected, query
    # Open alerts first, the most severe first among them.
    order = re.findall(r'data-alert="(\d+)"', client.get(alerts_url).content.decode())
    assert [int(pk) for pk in order] == [other.pk, bank["alert"].pk, low.pk]


@pytest.mark.parametrize(
    "query",
    [
        "?type=apocalypse",
        "?state=%3Cscript%3E",
        "?severity=11",
        "?asset=abc",
        "?asset=999999999999999999999",
        "?page=-1",
        "?page=banana",
        "?type=exposure&type=incident&state=new%00",
    ],
)
def test_nonsense_filters_are_named_and_left_out_never_an_error(world, bank, query):
    client = english(client_for(world.admin))
    response = client.get(inbox_url(world) + query)
    assert response.status_code == 200
    page = response.content.decode()
    if "page=" not in query:
        assert "This condition was left out." in page
    assert "<script>" not in page.split("</head>")[1].replace("<script src", "")
    assert bank["alert"].pk in _rows(page) or "type=exposure" in query


def test_another_asset_id_is_no_filter_choice(world, bank):
    theirs = verified_asset(
        world.other_admin,
        world.access(world.other_admin),
        world.other_bank,
        "cidr",
        "203.0.113.0/24",
    )
    page = english(client_for(world.admin)).get(f"{inbox_url(world)}?asset={theirs.pk}")
    assert "Select a valid choice" in page.content.decode()
    assert "203.0.113.0/24" not in page.content.decode()


def test_empty_inbox_says_what_to_do_next(world):
    client = english(client_for(world.admin))
    page = client.get(inbox_url(world)).content.decode()
    assert "Register your public IP addresses" in page
    assert reverse("earlywarning:assets_from_assessment", args=[world.bank.pk]) in page
    signatory = english(client_for(world.signatory)).get(inbox_url(world)).content.decode()
    assert "Ask your organisation's administrator" in signatory
    client.post(
        reverse("earlywarning:assets", args=[world.bank.pk]),
        {"kind": "domain", "value": "bank.example.jp"},
    )
    page = client.get(inbox_url(world)).content.decode()
    assert "None of your registered assets is verified yet" in page
    verified_asset(world.admin, world.access(world.admin), world.bank, "ip", "198.51.100.9")
    page = client.get(inbox_url(world)).content.decode()
    assert "Nothing has been reported about your verified assets" in page
    assert (
        "アラートはまだありません" in client_for(world.admin).get(inbox_url(world)).content.decode()
    )


def test_inbox_queries_do_not_grow_with_alerts(world, bank):
    client = client_for(world.admin)

    def count() -> int:
        client.get(inbox_url(world))
        with CaptureQueriesContext(connection) as queries:
            response = client.get(inbox_url(world))
        assert response.status_code == 200
        return len(queries.captured_queries)

    few = count()
    for number in range(30):
        raise_alert(
            world.bank, asset=bank["prefix"], feed=bank["feed"], ip=f"198.51.100.{number + 10}"
        )
    # Every kind of row: a software vulnerability on a host, a supplier notice.
    host = store(world.admin, world.bank, debian12_evidence(hostname="web-01", machine_id="7" * 32))
    for number in range(5):
        raise_alert(
            world.bank,
            type="software_vulnerability",
            category="kev",
            host_id=host.host.pk,
            cve=f"CVE-2026-{number:04d}",
            package="openssl",
        )
        raise_alert(
            world.bank,
            type="supplier_exposure",
            category="supplier_exposure",
            evidence={"service": "s", "service_name": "勘定系", "service_name_en": "Core banking"},
        )
    many = count()
    assert many == few, (few, many)
    assert few <= 14
    # The filters and the asset column do not add a query per alert either.
    client.get(f"{inbox_url(world)}?state=open&asset={bank['prefix'].pk}")
    with CaptureQueriesContext(connection) as queries:
        client.get(f"{inbox_url(world)}?state=open&asset={bank['prefix'].pk}")
    assert len(queries.captured_queries) == few + 1  # the asset filter's one look-up


# --- One alert ----------------------------------------------------------------------------------


def test_alert_page_shows_everything_about_the_alert_in_japanese(world, bank):
    alert = bank["alert"]
    page = client_for(world.contributor).get(alert_url(alert)).content.decode()
    assert REPORT_TYPES["scan_rdp"].remediation["ja"] in page
    assert "A2" in page
    assert "TLP:AMBER" in page
    assert "198.51.100.0/24" in page
    assert "ファイアウォール" in page  # the control
    assert "2026-03-02T01:02:03Z" in page
    assert "確認済みにする</button>" in page  # the acknowledge action, in Japanese
    assert "新規" in page
    assert "確認期限" in page


def test_alert_page_in_english_with_grading_tlp_and_history(world, bank):
    alert = bank["alert"]
    page = english(client_for(world.admin)).get(alert_url(alert)).content.decode()
    assert REPORT_TYPES["scan_rdp"].remediation["en"] in page
    assert "A: completely reliable" in page
    assert "2: probably true" in page
    assert "Firewalls" in page
    assert "Raised" in page  # the history's first entry
    assert 'data-action="acknowledged"' in page
    assert 'data-action="risk_accepted"' in page


def test_hostile_evidence_is_shown_as_text_never_as_markup(world, bank):
    page = english(client_for(world.admin)).get(alert_url(bank["alert"])).content.decode()
    body = page.split("<main", 1)[1]
    assert "<script>alert" not in body
    assert "&lt;script&gt;alert(&#x27;tag&#x27;)&lt;/script&gt;" in body
    assert "<img" not in body
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in body
    # The formula is text in a cell, not a link: nothing points at the address it names.
    assert "=HYPERLINK(&quot;https://evil.example/&quot;,&quot;open me&quot;)" in body
    assert 'href="https://evil.example/' not in body


def test_software_alert_shows_kev_epss_and_generic_remediation(world):
    alert = raise_alert(
        world.bank,
        type="software_vulnerability",
        category="kev",
        severity="critical",
        control="security_update_management",
        cve="CVE-2023-4863",
        advisory="DSA-5496-1",
        package="libwebp7",
        installed_version="1.2.4-0.2",
        kev=True,
        kev_due=dt.date(2023, 10, 4),
        epss=0.9364,
        epss_percentile=0.9991,
        evidence={"package": "libwebp7", "version": "1.2.4-0.2"},
    )
    page = english(client_for(world.admin)).get(alert_url(alert)).content.decode()
    assert "<h1>CVE-2023-4863 — libwebp7</h1>" in page
    assert "libwebp7" in page
    assert re.search(r'id="kev">Yes — fix by', page)
    assert "0.9364" in page
    assert "percentile 0.9991" in page
    assert "Update the package to a version that fixes this vulnerability" in page
    japanese = client_for(world.admin).get(alert_url(alert)).content.decode()
    assert "この脆弱性を修正したバージョンにパッケージを更新してください" in japanese


def test_supplier_notice_names_the_service_and_says_what_to_do(world):
    alert = raise_alert(
        world.bank,
        type="supplier_exposure",
        category="supplier_exposure",
        severity="critical",
        evidence={
            "service": "bank:core",
            "service_name": "勘定系",
            "service_name_en": "Core banking",
            "single_point_of_failure": True,
            "detail": "minimal",
        },
    )
    page = english(client_for(world.admin)).get(alert_url(alert)).content.decode()
    assert "<h1>Supplier exposure: Core banking</h1>" in page
    assert "Contact the supplier and ask how and by when" in page
    japanese = client_for(world.admin).get(alert_url(alert)).content.decode()
    assert "<h1>委託先の露出: 勘定系</h1>" in japanese


def test_every_network_report_kind_has_its_remediation(world):
    for name in ("event4_sinkhole_http", "blocklist", "scan_smb", "scan_ftp"):
        alert = raise_alert(world.bank, category=name)
        page = english(client_for(world.admin)).get(alert_url(alert)).content.decode()
        kind = REPORT_TYPES.get(name) or next(
            REPORT_TYPES[p]
            for p in REPORT_TYPES
            if "*" in p and re.fullmatch(p.replace("*", ".*"), name)
        )
        assert escape(kind.remediation["en"]) in page, name


# --- Lifecycle actions -------------------------------------------------------------------------


def post_state(client, alert, **data):
    return client.post(reverse("earlywarning:alert_state", args=[alert.pk]), data)


def test_acknowledge_mitigate_close_and_reopen_through_the_page(world, bank):
    alert = bank["alert"]
    client = english(client_for(world.contributor))
    done = post_state(client, alert, state="acknowledged")
    assert (done.status_code, done.url) == (302, alert_url(alert))
    alert.refresh_from_db()
    assert alert.state == AlertState.ACKNOWLEDGED
    assert alert.acknowledged_at is not None
    assert post_state(client, alert, state="mitigated", reason="port closed").status_code == 302
    assert post_state(client, alert, state="closed").status_code == 302
    reopened = post_state(client, alert, state="new", reason="seen open again by our own scan")
    assert reopened.status_code == 302
    alert.refresh_from_db()
    assert (alert.state, alert.reopened) == (AlertState.NEW, 1)
    page = client.get(alert_url(alert)).content.decode()
    assert "Acknowledged" in page
    assert "seen open again by our own scan" in page
    changes = AuditEvent.objects.filter(
        action="earlywarning.alert.state", object_id=str(alert.pk)
    ).count()
    assert changes == 4


def test_accepting_a_risk_needs_a_reason_and_a_date_within_a_year(world, bank):
    alert = bank["alert"]
    client = english(client_for(world.admin))
    today = timezone.localdate()
    cases = [
        ({"state": "risk_accepted", "reason": "", "until": ""}, "Give a reason."),
        (
            {"state": "risk_accepted", "reason": "legacy", "until": ""},
            "A risk is accepted until a date after today",
        ),
        (
            {"state": "risk_accepted", "reason": "legacy", "until": str(today)},
            "A risk is accepted until a date after today",
        ),
        (
            {
                "state": "risk_accepted",
                "reason": "legacy",
                "until": str(today.replace(year=today.year + 2)),
            },
            "at most a year ahead",
        ),
        ({"state": "risk_accepted", "reason": "x", "until": "tomorrow"}, "Enter a valid date."),
        ({"state": "false_positive", "reason": "  "}, "Give a reason."),
        ({"state": "exploded"}, "Select a valid choice"),
        ({"state": "acknowledged", "reason": "x" * 2001}, "at most 2000 characters"),
    ]
    for data, words in cases:
        response = client.post(reverse("earlywarning:alert_state", args=[alert.pk]), data)
        assert response.status_code == 422, data
        assert words in response.content.decode(), (data, words)
    alert.refresh_from_db()
    assert alert.state == AlertState.NEW
    accepted = post_state(
        client,
        alert,
        state="risk_accepted",
        reason="legacy system, isolated",
        until=str(today + dt.timedelta(days=30)),
    )
    assert accepted.status_code == 302
    alert.refresh_from_db()
    assert alert.state == AlertState.RISK_ACCEPTED
    assert alert.risk_accepted_until == today + dt.timedelta(days=30)


def test_a_state_that_does_not_allow_the_action_says_so(world, bank):
    alert = bank["alert"]
    client = english(client_for(world.admin))
    post_state(client, alert, state="acknowledged")
    again = post_state(client, alert, state="acknowledged")
    assert again.status_code == 409
    assert "An alert that is Acknowledged cannot become Acknowledged." in again.content.decode()


def test_a_board_signatory_reads_alerts_but_does_not_handle_them(world, bank):
    alert = bank["alert"]
    client = english(client_for(world.signatory))
    page = client.get(alert_url(alert)).content.decode()
    assert "data-action=" not in page
    refused = post_state(client, alert, state="acknowledged")
    assert refused.status_code == 403
    assert escape("Only the organisation's administrators and contributors") in (
        refused.content.decode()
    )
    alert.refresh_from_db()
    assert alert.state == AlertState.NEW


@pytest.mark.parametrize("user", ["other_admin", "owner", "assessor", "outsider"])
def test_outsiders_find_no_alert(world, bank, user):
    alert = bank["alert"]
    client = client_for(getattr(world, user))
    assert client.get(alert_url(alert)).status_code == 404
    assert post_state(client, alert, state="acknowledged").status_code == 404
    assert client.get(inbox_url(world)).status_code == 404
    assert Alert.objects.get(pk=alert.pk).state == AlertState.NEW
