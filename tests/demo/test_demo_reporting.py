"""The board-reporting demo as `mamori demo` loads it: two years of daily samples for the
fictitious applicants that follow the demo's own story (agents rolled out over half a year,
certificates on their real dates, a summer KEV finding fixed in 20 days), a signed and an
unsigned quarterly pack, and a sector dashboard; a demo day is never passed off as recomputed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from mamori.accounts.models import User
from mamori.audit.models import AuditEvent
from mamori.demo import cast
from mamori.demo import reporting as demo_reporting
from mamori.organisations.models import Organisation
from mamori.reporting import metrics, pack
from mamori.reporting.models import BoardPack, DaySeal, MetricSample
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def _org(entry: cast.Fictitious) -> Organisation:
    return Organisation.objects.get(name_en=entry.name_en)


def _series(organisation: Organisation, metric: str) -> dict[dt.date, object]:
    return dict(
        MetricSample.objects.filter(organisation=organisation, metric=metric).values_list(
            "day", "value"
        )
    )


def test_two_years_of_samples_for_every_applicant(demo):
    today = timezone.localdate()
    days = list(DaySeal.objects.order_by("day").values_list("day", flat=True))
    assert len(days) == demo_reporting.DAYS
    assert days[0] == today - dt.timedelta(days=demo_reporting.DAYS)
    assert days[-1] == today - dt.timedelta(days=1)
    assert set(DaySeal.objects.values_list("origin", flat=True)) == {"demo"}
    applicants = [_org(entry) for entry in cast.APPLICANTS]
    assert MetricSample.objects.count() == len(days) * len(applicants) * len(metrics.METRIC_KEYS)
    # Only fictitious organisations have samples.
    sampled = set(MetricSample.objects.values_list("organisation_id", flat=True).distinct())
    assert sampled == {organisation.pk for organisation in applicants}


def test_the_samples_follow_the_demos_story(demo):
    kohaku = _org(cast.KOHAKU_BANK)
    first = DaySeal.objects.order_by("day").first().day
    hosts = _series(kohaku, "hosts_in_scope")
    # The agents were rolled out over the first half year, then every host counts.
    assert hosts[first] < hosts[first + dt.timedelta(days=demo_reporting.ROLLOUT_DAYS)]
    assert hosts[first + dt.timedelta(days=demo_reporting.ROLLOUT_DAYS)] == kohaku.hosts.count()
    # The certificate counts from the day it was issued, as the demo issued it.
    certificate = kohaku.certificates.get(revoked_at__isnull=True)
    levels = _series(kohaku, "certificate_level")
    before = certificate.issued_on - dt.timedelta(days=1)
    if before in levels:
        assert levels[before] is None
    assert levels[min(certificate.issued_on, max(levels))] in ("CE", None)
    # The summer KEV listing: open from its day, remediated 20 days later.
    opened, lasted = demo_reporting.KEV_EPISODE
    kev = _series(kohaku, "kev_open")
    assert kev[opened] == kev[opened - dt.timedelta(days=1)] + 1
    assert kev[opened + dt.timedelta(days=lasted)] == kev[opened - dt.timedelta(days=1)]
    remediation = _series(kohaku, "remediation_days")[opened + dt.timedelta(days=lasted)]
    assert remediation["count"] >= 1
    assert remediation["median"] == float(lasted)


def test_a_signed_and_an_unsigned_pack(demo):
    quarter = pack.last_finished_quarter(timezone.localdate())
    signed = BoardPack.objects.get(organisation=_org(cast.KOHAKU_BANK))
    unsigned = BoardPack.objects.get(organisation=_org(cast.RURI_SHINKIN))
    for made in (signed, unsigned):
        assert (made.period_from, made.period_to) == (quarter.first, quarter.last)
        assert made.quarterly
    assert signed.signed_by == User.objects.get(username="kohaku-board")
    assert AuditEvent.objects.get(seq=signed.signature_seq).details["digest"] == signed.digest
    assert unsigned.signed_at is None
    page = client_for(User.objects.get(username="kohaku-board")).get(
        reverse("reporting:pack", args=[signed.pk])
    )
    assert 'id="signed"' in page.content.decode()


def test_the_sector_dashboard_for_the_demo_observer(demo):
    observer = User.objects.get(username="observer")
    page = client_for(observer).get(reverse("reporting:sector"))
    text = page.content.decode()
    assert page.status_code == 200
    assert 'id="certification"' in text
    for entry in cast.APPLICANTS:
        assert entry.name_ja not in text
        assert entry.name_en not in text


def test_a_demo_day_is_not_passed_off_as_recomputed(demo):
    day = DaySeal.objects.order_by("day").first().day
    with pytest.raises(CommandError, match="demo") as stopped:
        call_command("reporting", "sample", "--date", day.isoformat())
    assert stopped.value.returncode == 2


def test_loading_again_changes_nothing(demo):
    counts = (MetricSample.objects.count(), DaySeal.objects.count(), BoardPack.objects.count())
    demo_reporting.build()
    assert (
        MetricSample.objects.count(), DaySeal.objects.count(), BoardPack.objects.count()
    ) == counts  # fmt: skip
