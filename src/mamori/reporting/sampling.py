"""The daily metric samples: computed for every organisation once a day is over, written once,
sealed with a digest and chained into the audit trail; recomputed on demand to show they still
follow from the history (``mamori reporting sample``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from mamori.audit.services import record
from mamori.reporting import history, metrics
from mamori.reporting.benchmark import supply_hot_spots
from mamori.reporting.models import DaySeal, MetricSample

# Finished days the nightly sampling still fills in when the beat was away that long.
CATCH_UP_DAYS = 7


class DayNotOver(ValueError):
    """A day is sampled once it is over (in the instance's time zone)."""


class DemoDay(ValueError):
    """The day's samples were written by the demo's storyline: there is no history to
    recompute them from."""


def today() -> dt.date:
    from mamori.earlywarning.sector import today as local_today

    return local_today()


@dataclass
class Day:
    day: dt.date
    digest: str
    organisation_digests: dict[int, str]
    values: dict[int, dict[str, object]]
    # The seal of the day when it was sampled before (None: sampled by this call, or not stored).
    sealed: DaySeal | None = None
    stored_now: bool = False
    differing: list[int] = field(default_factory=list)

    @property
    def matches_seal(self) -> bool | None:
        if self.sealed is None:
            return None
        return self.sealed.digest == self.digest

    def samples(self, organisation_id: int | None = None) -> list[dict]:
        return [
            {"organisation": pk, "metric": key, "value": value}
            for pk in sorted(self.values)
            if organisation_id is None or pk == organisation_id
            for key, value in self.values[pk].items()
        ]


def compute(day: dt.date, organisation_ids: list[int] | None = None) -> Day:
    """The metrics of ``day`` from history, writing nothing: of the organisations taking part
    by its end, or of those given (a sealed day is recomputed for the ones it sealed)."""
    if organisation_ids is None:
        organisation_ids = history.organisations_with_history(day)
    inputs = history.inputs_for(organisation_ids, day)
    values = {pk: metrics.compute(inputs[pk]) for pk in organisation_ids}
    digests = {pk: metrics.organisation_digest(v) for pk, v in values.items()}
    return Day(day, metrics.day_digest(day, digests), digests, values)


def sample(day: dt.date, *, record_history: bool = False) -> Day:
    """Sample ``day``: store and seal it if it was not, else recompute it and compare with its
    seal. ``record_history`` first brings the episode and graph history up to the day (the
    nightly run does, for the day just over)."""
    if day >= today():
        raise DayNotOver(day)
    sealed = DaySeal.objects.filter(day=day).first()
    if sealed is not None and sealed.origin != "sampled":
        raise DemoDay(day)
    if sealed is None and record_history:
        history.record_day(day)
    result = compute(day, sorted(int(pk) for pk in sealed.organisation_digests) if sealed else None)
    if sealed is not None:
        result.sealed = sealed
        result.differing = [
            pk
            for pk, value in result.organisation_digests.items()
            if sealed.organisation_digests.get(str(pk)) != value
        ]
        return result
    try:
        with transaction.atomic():
            seal = DaySeal.objects.create(
                day=day,
                digest=result.digest,
                organisation_digests={
                    str(pk): value for pk, value in result.organisation_digests.items()
                },
                organisations=len(result.values),
                sampled_at=timezone.now(),
                sector={"supply": supply_hot_spots(day)},
            )
            MetricSample.objects.bulk_create(
                (
                    MetricSample(organisation_id=pk, day=day, metric=key, value=value)
                    for pk, values in result.values.items()
                    for key, value in values.items()
                ),
                batch_size=2000,
            )
            event = record(
                None,
                "reporting.day_sampled",
                seal,
                details={
                    "day": day.isoformat(),
                    "digest": result.digest,
                    "organisations": len(result.values),
                },
            )
            seal.audit_seq = event.seq
            seal.save(update_fields=["audit_seq"])
    except IntegrityError:
        # Another run sealed the day meanwhile: what it stored stands.
        result.sealed = DaySeal.objects.get(day=day)
        return result
    result.stored_now = True
    return result


def sample_finished_days(catch_up: int = CATCH_UP_DAYS) -> list[Day]:
    """The nightly run: each of the last ``catch_up`` finished days without a seal, oldest
    first; the history of what changes in place is recorded for the newest (yesterday) only —
    the days the beat missed have what was recorded up to them."""
    yesterday = today() - dt.timedelta(days=1)
    days = [yesterday - dt.timedelta(days=back) for back in range(catch_up)]
    sealed = set(DaySeal.objects.filter(day__in=days).values_list("day", flat=True))
    return [
        sample(day, record_history=day == yesterday) for day in sorted(days) if day not in sealed
    ]
