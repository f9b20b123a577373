"""EPSS scores: FIRST's daily file stored as one score per CVE, and the software alerts
enriched with them.

``import_epss`` reads one file (``feeds.epss``: a comment naming the model and the score date,
then ``cve,epss,percentile``) in batches and upserts the scores in bulk; a score is replaced by
one of the same or a newer day, never by an older file's. A bad row is reported as
``file:line: reason`` on the feed run and skipped; the rest of the file is imported. Then every
software alert whose CVE has a score takes it (``enrich_alerts``); alerts raised later take the
score known when they are raised (``software.raise_alerts``). Reading the same file twice
changes nothing.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mamori.core.bulk import update_rows
from mamori.earlywarning.feeds.epss import EpssRow, read_epss
from mamori.earlywarning.feeds.errors import FeedError, RowError
from mamori.earlywarning.feeds.lines import HashingReader
from mamori.earlywarning.models import (
    Alert,
    AlertType,
    EpssScore,
    Feed,
    FeedRun,
    RunState,
)

BATCH_ROWS = 5000
SCORE_FIELDS = ["epss", "percentile", "score_date", "model_version"]


@dataclass
class _Totals:
    rows: int = 0
    stored: int = 0
    errors: int = 0
    error_lines: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_lines) < FeedRun.ERROR_LINES_KEPT:
            self.error_lines.append(text)


def import_epss(feed: Feed, stream: BinaryIO, *, source: str, now=None, on_read=None) -> FeedRun:
    """Store the scores of one EPSS file as ``feed``'s run and enrich the software alerts. The
    run is recorded whatever happens; a file refused whole (no comment line, no header) or cut
    off leaves a failed run and raises ``FeedError``, after the rows before it were stored."""
    now = now or timezone.now()
    run = FeedRun.objects.create(feed=feed, source=source[:500])
    totals = _Totals()
    reader = HashingReader(stream, on_read)
    try:
        scores = read_epss(io.BufferedReader(reader, 1 << 16), source_name=source)
        score_date = scores.score_date.date()
        for batch in _batches(scores.rows, BATCH_ROWS):
            good: list[EpssRow] = []
            for row in batch:
                totals.rows += 1
                if isinstance(row, RowError):
                    reason = _(row.template) % dict(row.params)
                    totals.error(f"{source}:{row.line}: {reason}")
                else:
                    good.append(row)
            totals.stored += store_scores(good, score_date, scores.model_version)
    except FeedError as error:
        _finish(run, totals, reader.digest, state=RunState.FAILED, failure=error.render(_))
        raise
    matched, enriched = enrich_alerts()
    _finish(run, totals, reader.digest, state=RunState.DONE, matched=matched, enriched=enriched)
    Feed.objects.filter(pk=feed.pk).update(last_run_at=now)
    return run


def _batches(rows: Iterable, size: int) -> Iterator[list]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _finish(run, totals: _Totals, digest, *, state, failure="", matched=0, enriched=0) -> None:
    run.state = state
    run.finished_at = timezone.now()
    run.rows = totals.rows
    run.matched = matched
    run.alerts_updated = enriched
    run.errors = totals.errors
    run.error_lines = totals.error_lines
    run.digest = digest.hexdigest()
    run.failure = failure
    run.save()


def store_scores(rows: list[EpssRow], score_date, model_version: str) -> int:
    """Upsert one batch's scores (one statement); returns how many were new or changed. A CVE
    twice in the batch keeps its last row; a stored score of a later day is kept."""
    latest: dict[str, EpssRow] = {row.cve: row for row in rows}
    if not latest:
        return 0
    stored = {
        cve: (epss, percentile, day, model)
        for cve, epss, percentile, day, model in EpssScore.objects.filter(
            cve__in=list(latest)
        ).values_list("cve", *SCORE_FIELDS)
    }
    changed = []
    for cve, row in latest.items():
        values = (row.epss, row.percentile, score_date, model_version)
        previous = stored.get(cve)
        if previous == values or (previous is not None and previous[2] > score_date):
            continue
        changed.append(
            EpssScore(
                cve=cve,
                epss=row.epss,
                percentile=row.percentile,
                score_date=score_date,
                model_version=model_version,
            )
        )
    if changed:
        with transaction.atomic():
            EpssScore.objects.bulk_create(
                changed,
                update_conflicts=True,
                unique_fields=["cve"],
                update_fields=SCORE_FIELDS,
                batch_size=1000,
            )
    return len(changed)


def enrich_alerts() -> tuple[int, int]:
    """Give every software alert the stored score of its CVE. Returns (alerts whose CVE has a
    score, alerts changed)."""
    alerts = list(
        Alert.objects.filter(type=AlertType.SOFTWARE_VULNERABILITY)
        .exclude(cve="")
        .values_list("pk", "cve", "epss", "epss_percentile")
    )
    cves = sorted({cve for _pk, cve, _epss, _percentile in alerts})
    scores: dict[str, tuple[float, float]] = {}
    for start in range(0, len(cves), BATCH_ROWS):
        scores.update(
            (cve, (epss, percentile))
            for cve, epss, percentile in EpssScore.objects.filter(
                cve__in=cves[start : start + BATCH_ROWS]
            ).values_list("cve", "epss", "percentile")
        )
    matched = 0
    changed = []
    for pk, cve, epss, percentile in alerts:
        score = scores.get(cve)
        if score is None:
            continue
        matched += 1
        if (epss, percentile) != score:
            changed.append((pk, *score))
    with transaction.atomic():
        update_rows(Alert, ["epss", "epss_percentile"], changed)
    return matched, len(changed)
