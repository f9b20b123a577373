"""Peers and the sector on the pages: an organisation sees its position within its category only
in a group of at least five; the scheme owner and observers see the sector dashboard (never an
organisation's name) and export it; nobody else finds it."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.test import Client
from django.urls import reverse
from openpyxl import load_workbook

from mamori.organisations.models import Category, Organisation, Role
from mamori.reporting import benchmark
from mamori.reporting.models import PeerCohort
from tests.conftest import client_for, make_user
from tests.reporting import scene

pytestmark = pytest.mark.django_db

QUARTER_FIRST, QUARTER_LAST = dt.date(2026, 7, 1), dt.date(2026, 9, 30)


def banks(count: int) -> list[Organisation]:
    return [
        Organisation.objects.create(
            name_ja=f"ピア銀行{i}（架空）", name_en=f"Peer Bank {i} (fictitious)",
            category=Category.BANK,
        )
        for i in range(count)
    ]  # fmt: skip


@pytest.fixture
def sector(world):
    """Seven banks (world's bank among them) of different strengths, over Q3 2026."""
    world.bank.category = Category.BANK
    world.bank.save(update_fields=["category"])
    peers = banks(6)
    strengths = {world.bank.pk: 0.6, **{b.pk: 0.7 + 0.05 * i for i, b in enumerate(peers)}}
    scene.store([world.bank, *peers], QUARTER_FIRST, QUARTER_LAST, strengths, every=7)
    world.observer = make_user("sam", world.secretariat, Role.OBSERVER, mfa=True)
    return world


def test_an_organisation_sees_its_position_among_its_peers(sector):
    page = client_for(sector.admin).get(reverse("reporting:organisation", args=[sector.bank.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert 'id="peers"' in text
    assert 'id="no-peers"' not in text
    rows = {row["key"]: row for row in benchmark.positions_for(sector.bank)}
    # The weakest bank on every control: the lowest band of its group of seven.
    firewalls = rows["control_passing.firewalls"]
    assert (firewalls["size"], firewalls["low"]) == (7, 0)
    assert firewalls["high"] <= 50
    assert str(firewalls["group"]) == "銀行"
    # Its peers are never named on its page.
    assert "ピア銀行" not in text
    # The cohort of the quarter is stored once and reused.
    assert PeerCohort.objects.filter(quarter="2026-Q3").count() == len(rows)


def test_no_position_in_a_group_below_five(world):
    world.bank.category = Category.BANK
    world.bank.save(update_fields=["category"])
    scene.store([world.bank, *banks(3)], QUARTER_FIRST, QUARTER_LAST, every=14)
    page = client_for(world.admin).get(reverse("reporting:organisation", args=[world.bank.pk]))
    assert 'id="no-peers"' in page.content.decode()
    assert benchmark.positions_for(world.bank) == []


@pytest.mark.parametrize("who", ["owner", "observer"])
def test_the_scheme_owner_and_observers_see_the_sector_dashboard(sector, who):
    client = client_for(getattr(sector, who))
    page = client.get(reverse("reporting:sector"))
    text = page.content.decode()
    assert page.status_code == 200
    assert "2026-09-30" in text
    assert 'id="certification"' in text
    for organisation in Organisation.objects.all():
        assert organisation.name_ja not in text
        assert organisation.name_en not in text
    exported = client.get(reverse("reporting:sector_export", args=["csv"]) + "?day=2026-09-30")
    assert exported["Content-Disposition"] == 'attachment; filename="mamori-sector-2026-09-30.csv"'
    table = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert table[0][:3] == ["指標", "グループ", "集計した組織数"]
    groups = {row[1] for row in table[1:] if row}
    assert {"業界全体", "銀行"} <= groups
    xlsx = client.get(reverse("reporting:sector_export", args=["xlsx"]))
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet.title == "2026-09-30"
    assert sheet.max_row == len(table)


def test_the_dashboard_is_nobody_elses(sector):
    for user in (sector.admin, sector.signatory, sector.contributor, sector.assessor):
        client = client_for(user)
        assert client.get(reverse("reporting:sector")).status_code == 404
        assert client.get(reverse("reporting:sector_export", args=["csv"])).status_code == 404


def test_the_dashboard_says_so_when_nothing_is_sampled(world):
    observer = make_user("sam", world.secretariat, Role.OBSERVER, mfa=True)
    page = client_for(observer).get(reverse("reporting:sector"))
    assert 'id="sector-empty"' in page.content.decode()


def test_certification_counts_keep_small_categories_out_of_reach(world):
    """Five banks and two insurers: the insurers alone are below k, so the smallest shown
    category joins them and the sector minus the shown groups is never two insurers."""
    counts = benchmark._certification(
        {(pk, "CE" if pk % 2 else None) for pk in range(1, 8)},
        {**dict.fromkeys(range(1, 6), "bank"), 6: "insurer", 7: "insurer"},
    )
    assert counts["groups"] == []
    assert counts["others"] == {"organisations": 7, "certified": 4}
    assert counts["sector"] == {"organisations": 7, "certified": 4}


def test_the_api_gives_the_dashboard_to_observers_and_refuses_a_bad_day(sector):
    from tests.conftest import api_token

    client = Client(HTTP_AUTHORIZATION=f"Token {api_token(sector.observer, sector.secretariat)}")
    figures = client.get("/api/reporting/sector/?day=2026-09-30").json()
    assert figures["day"] == "2026-09-30"
    assert figures["metrics"]["kev_open"]["schema"] == "mamori.peers/1"
    bad = client.get("/api/reporting/sector/?day=yesterday")
    assert bad.status_code == 400
    assert bad.json()["detail"]
