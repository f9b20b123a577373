"""FIRST's daily EPSS scores (pure logic, no Django imports).

The file (``epss_scores-YYYY-MM-DD.csv.gz``, about 300,000 rows) starts with one comment line
naming the model and the day the scores are for, then a header and a row per CVE::

    #model_version:v2025.03.14,score_date:2025-12-01T00:00:00+0000
    cve,epss,percentile
    CVE-1999-0001,0.01269,0.79098

``read_epss(stream)`` reads the comment and header at once (``FeedError`` when either is
missing or wrong) and returns an ``EpssFile`` whose ``rows`` yields ``EpssRow`` (line, CVE id,
score, percentile) or ``RowError`` as it is consumed: constant memory, gzip or plain text
(detected by the magic bytes). The header is read by name, so extra columns are ignored and the
three may come in any order. Checks: the CVE id is "CVE-" + a year + at least four digits
(returned upper-case); both numbers are finite and between 0 and 1. The score date may be
given with "Z", "+0000" or "+00:00", or as a plain date (taken as midnight UTC).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from mamori.earlywarning.feeds.errors import FeedError, RowError, gettext_noop, shown
from mamori.earlywarning.feeds.lines import (
    DEFAULT_MAX_ROW_BYTES,
    CsvRecords,
    Source,
    complete_rows,
    header_names,
    header_problem,
)
from mamori.earlywarning.feeds.network import parse_timestamp

COLUMNS = ("cve", "epss", "percentile")
_CVE = re.compile(r"CVE-\d{4}-\d{4,19}", re.ASCII | re.IGNORECASE)
_MODEL_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
# A plain decimal number ("0.00042", "1e-05"); float() alone would also take "nan", "inf",
# "1_0" and surrounding spaces.
_NUMBER = re.compile(r"\d+(?:\.\d*)?(?:[eE][-+]?\d+)?", re.ASCII)
_MAX_COLUMNS = 16


class EpssRow(NamedTuple):
    """One score: the line it is on, the CVE id (upper-case), the probability of exploitation
    in the next 30 days, and its percentile among all scored CVEs."""

    line: int
    cve: str
    epss: float
    percentile: float


@dataclass(frozen=True)
class EpssFile:
    """The file's model version and score date (UTC), and its rows, read as they are
    consumed."""

    model_version: str
    score_date: datetime
    rows: Iterator[EpssRow | RowError]


def read_epss(
    source: Source, *, source_name: str = "EPSS", max_row_bytes: int = DEFAULT_MAX_ROW_BYTES
) -> EpssFile:
    """The model version, score date and rows of one EPSS file."""
    try:
        records = CsvRecords(source, max_row_bytes=max_row_bytes)
        first = records.next_line()
        while first is not None and not isinstance(first, RowError) and not first[1].strip():
            first = records.next_line()
        if first is None:
            raise FeedError(gettext_noop("the file is empty: it has no header line"))
        if isinstance(first, RowError):
            raise header_problem(first)
        model_version, score_date = _comment(first[1])
        rows = iter(records)
        header = next(rows, None)
        if header is None:
            raise FeedError(gettext_noop("the file has no header line after its comment"))
        if isinstance(header, RowError):
            raise header_problem(header)
        columns = header_names(header[1], max_columns=_MAX_COLUMNS)
        for required in COLUMNS:
            if required not in columns:
                raise FeedError(
                    gettext_noop("the header has no %(column)s column, which an EPSS file needs"),
                    column=shown(required),
                )
    except FeedError as error:
        raise error.about(source_name) from None
    return EpssFile(model_version, score_date, _rows(rows, columns, source_name))


def _comment(text: str) -> tuple[str, datetime]:
    """The model version and score date of the comment line."""
    line = text.strip()
    if not line.startswith("#"):
        raise FeedError(
            gettext_noop(
                "the first line is %(value)s, not EPSS's comment '#model_version:…,score_date:…'"
            ),
            value=shown(line),
        )
    fields: dict[str, str] = {}
    for part in line[1:].split(","):
        name, _colon, value = part.partition(":")
        fields[name.strip().lower()] = value.strip()
    version = fields.get("model_version", "")
    if not _MODEL_VERSION.fullmatch(version):
        raise FeedError(
            gettext_noop("the comment line has no valid model_version: %(value)s"),
            value=shown(line),
        )
    date_text = fields.get("score_date", "")
    try:
        if _DATE.fullmatch(date_text):
            score_date = datetime.strptime(date_text, "%Y-%m-%d").replace(tzinfo=UTC)
        else:
            score_date = parse_timestamp(date_text)
    except ValueError:
        raise FeedError(
            gettext_noop("the comment line has no valid score_date: %(value)s"),
            value=shown(line),
        ) from None
    return version, score_date


def _rows(rows, columns: list[str], source_name: str) -> Iterator[EpssRow | RowError]:
    try:
        yield from _checked_rows(rows, columns)
    except FeedError as error:
        raise error.about(source_name) from None


def _checked_rows(rows, columns: list[str]) -> Iterator[EpssRow | RowError]:
    cve_at, epss_at, percentile_at = (columns.index(name) for name in COLUMNS)
    for record in complete_rows(rows, len(columns)):
        if isinstance(record, RowError):
            yield record
            continue
        line, values = record
        cve = values[cve_at].strip()
        if not _CVE.fullmatch(cve):
            yield RowError(
                line,
                gettext_noop("the CVE id %(value)s is not of the form CVE-YYYY-NNNN"),
                {"value": shown(values[cve_at])},
            )
            continue
        try:
            epss = _probability(values[epss_at], "epss")
            percentile = _probability(values[percentile_at], "percentile")
        except _NotProbability as problem:
            yield RowError(line, problem.template, problem.params)
            continue
        yield EpssRow(line, cve.upper(), epss, percentile)


class _NotProbability(Exception):
    def __init__(self, template: str, **params: object):
        self.template = template
        self.params = params


def _probability(value: str, column: str) -> float:
    text = value.strip()
    number = float(text) if _NUMBER.fullmatch(text) else math.nan
    if not (0.0 <= number <= 1.0):  # also false for NaN
        raise _NotProbability(
            gettext_noop("the %(column)s value %(value)s is not a number between 0 and 1"),
            column=column,
            value=shown(value),
        )
    return number
