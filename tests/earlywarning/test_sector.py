"""Sector figures: replayed from the alerts' history, so a past day recomputed after later
changes gives the same figures and digest; nothing shown below five institutions; no
organisation named."""

from __future__ import annotations

import datetime as dt
import json
from unittest import mock

import pytest
from django.core.management import call_command
from django.utils import timezone

from mamori.earlywarning import alerts, sector
from mamori.earlywarning.models import Alert, AlertState, SectorSample
from mamori.organisations.models import Organisation

pytestmark = pytest.mark.django_db

JST = dt.timezone(dt.timedelta(hours=9))


def raise_alert(organisation, key: str, at: dt.datetime, *, alert_type="exposure", kev=False):
    sighting = alerts.Sighting(
        organisation_id=organisation.pk, type=alert_type, key=key, category="scan_rdp",
        seen_at=at, kev=kev,
    )  # fmt: skip
    (alert,) = alerts.upsert([sighting], feed=None, now=at).new
    return alert


def freeze_time(moment: dt.datetime):
    """The clock the services read, set to ``moment``."""
    return mock.patch("django.utils.timezone.now", return_value=moment)


def at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, tzinfo=JST)


@pytest.fixture
def history(world):
    """Two exposures and a KEV vulnerability raised on 2 November (JST); one acknowledged after
    3 hours and mitigated after 10; the KEV one still open."""
    first = raise_alert(world.bank, "a", at(2, 9))
    raise_alert(world.other_bank, "b", at(2, 10))
    raise_alert(world.bank, "k", at(2, 11), alert_type="software_vulnerability", kev=True)
    with freeze_time(at(2, 12)):
        alerts.change_state(world.admin, world.access(world.admin), first, AlertState.ACKNOWLEDGED)
    with freeze_time(at(2, 19)):
        alerts.change_state(world.admin, world.access(world.admin), first, AlertState.MITIGATED)
    return first


def test_a_day_is_replayed_from_history_and_recomputes_to_the_same_digest(world, history):
    stored = sector.sample(dt.date(2026, 11, 2))
    figures = stored.figures
    assert figures["institutions"] == Organisation.objects.count() >= 5
    day = figures["sector"]
    assert day["raised"] == {"exposure": 2, "software_vulnerability": 1}
    assert day["open"] == {"exposure": 1, "software_vulnerability": 1}
    assert day["time_to_acknowledge"] == {"count": 1, "median_hours": 3.0, "p90_hours": 3.0}
    assert day["time_to_mitigate"] == {"count": 1, "median_hours": 10.0, "p90_hours": 10.0}
    assert day["open_kev_by_age_days"] == {"0-7": 1, "8-14": 0, "15-30": 0, "31+": 0}
    # No organisation is named anywhere in the figures.
    text = json.dumps(figures, ensure_ascii=False)
    for organisation in Organisation.objects.all():
        assert organisation.name_ja not in text
        assert organisation.name_en not in text
    # Later: the KEV alert is closed and the mitigated one reopens. The 2nd is unchanged.
    kev = Alert.objects.get(key="k")
    with freeze_time(at(20, 9)):
        alerts.change_state(world.admin, world.access(world.admin), kev, AlertState.CLOSED)
        alerts.change_state(
            world.admin, world.access(world.admin), history, AlertState.NEW, reason="seen again"
        )
    again = sector.sample(dt.date(2026, 11, 2))
    assert (again.figures, again.digest) == (figures, stored.digest)
    assert SectorSample.objects.count() == 1
    # Twenty days on, the KEV exposure is closed and its age no longer counts.
    later = sector.compute(dt.date(2026, 11, 20))["sector"]
    assert later["open_kev_by_age_days"]["15-30"] == 0
    assert later["open"] == {"exposure": 2}


def test_fewer_than_five_institutions_show_nothing(world, history):
    Organisation.objects.exclude(
        pk__in=[world.bank.pk, world.other_bank.pk, world.secretariat.pk]
    ).delete()
    figures = sector.compute(dt.date(2026, 11, 2))
    assert (figures["sector"], figures["groups"]) == (None, {})


def test_groups_below_five_institutions_stay_inside_the_totals(world, history):
    figures = sector.compute(dt.date(2026, 11, 2))
    counts = {}
    for category in Organisation.objects.values_list("category", flat=True):
        counts[category] = counts.get(category, 0) + 1
    assert set(figures["groups"]) == {c for c, n in counts.items() if n >= 5}


def test_the_command_stores_and_prints_a_day(world, history, capsys):
    call_command("earlywarning", "sector", "--date", "2026-11-02", "--format", "json")
    printed = json.loads(capsys.readouterr().out)
    assert printed["digest"] == SectorSample.objects.get(day=dt.date(2026, 11, 2)).digest
    assert printed["sector"]["raised"]["exposure"] == 2
    with pytest.raises(Exception, match="日付ではありません"):
        call_command("earlywarning", "sector", "--date", "yesterday")
    assert timezone.is_aware(history.created_at)
