"""FIRST's daily EPSS file: the comment line, the header and every row, plain or gzip; bad rows
reported by line, files that are not EPSS refused up front. No database."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime

import pytest
from django.utils import translation
from django.utils.translation import gettext

from mamori.earlywarning.feeds.epss import EpssRow, read_epss
from mamori.earlywarning.feeds.errors import FeedError, RowError
from tests.datafiles import EPSS_FILE, EPSS_GZ, EPSS_MALFORMED, EPSS_ROWS

COMMENT = "#model_version:v2025.03.14,score_date:2026-11-20T00:00:00+0000\n"


def rows_of(path) -> tuple[str, datetime, list]:
    with path.open("rb") as stream:
        epss = read_epss(stream, source_name=path.name)
        return epss.model_version, epss.score_date, list(epss.rows)


def refusal(content: str | bytes) -> str:
    data = content.encode() if isinstance(content, str) else content
    with pytest.raises(FeedError) as raised:
        list(read_epss(io.BytesIO(data), source_name="epss.csv").rows)
    return str(raised.value)


def test_the_vendored_file_reads_whole_plain_and_gzip():
    plain = rows_of(EPSS_FILE)
    assert EPSS_GZ.read_bytes()[:2] == b"\x1f\x8b"
    assert rows_of(EPSS_GZ) == plain
    model_version, score_date, rows = plain
    assert model_version == "v2025.03.14"
    assert score_date == datetime(2026, 11, 20, tzinfo=UTC)
    assert len(rows) == EPSS_ROWS
    assert rows[0] == EpssRow(line=3, cve="CVE-2002-0367", epss=0.72316, percentile=0.98740)
    assert rows[-1] == EpssRow(line=14, cve="CVE-2025-12345", epss=0.00042, percentile=0.10711)


def test_bad_rows_are_reported_by_line_and_the_rest_is_read():
    _version, _date, rows = rows_of(EPSS_MALFORMED)
    assert [row.message if isinstance(row, RowError) else row for row in rows] == [
        EpssRow(3, "CVE-2024-1086", 0.82740, 0.99210),
        "line 4: the CVE id 'CVE-24-1' is not of the form CVE-YYYY-NNNN",
        EpssRow(5, "CVE-2023-4863", 0.46711, 0.97402),  # "cve-…" upper-cased
        "line 6: the epss value '1.5' is not a number between 0 and 1",
        "line 7: the epss value '-0.1' is not a number between 0 and 1",
        "line 8: the epss value 'nan' is not a number between 0 and 1",
        "line 9: the percentile value 'inf' is not a number between 0 and 1",
        "line 10: the row has 2 values but the header has 3 columns",
        "line 11: the row has 4 values but the header has 3 columns",
        EpssRow(13, "CVE-2023-44493", 1e-05, 1e-05),  # line 12 is blank
        "line 14: the epss value '' is not a number between 0 and 1",
    ]


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ("#model_version:v2025.03.14,score_date:2026-11-20T00:00:00+0000", datetime(2026, 11, 20, tzinfo=UTC)),
        ("#model_version:v2025.03.14,score_date:2026-11-20T12:55:00Z", datetime(2026, 11, 20, 12, 55, tzinfo=UTC)),
        ("#model_version:v2023.03.01,score_date:2026-11-20T09:00:00+09:00", datetime(2026, 11, 20, tzinfo=UTC)),
        ("# model_version: v2025.03.14 , score_date: 2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_comment_line_forms(comment, expected):
    epss = read_epss(io.StringIO(f"{comment}\ncve,epss,percentile\nCVE-2024-1086,0.1,0.2\n"))
    assert epss.score_date == expected
    assert [row.cve for row in epss.rows] == ["CVE-2024-1086"]


def test_columns_are_read_by_name():
    text = COMMENT + "percentile,cve,date,epss\n0.99,CVE-2024-1086,2026-11-20,0.5\n"
    (row,) = read_epss(io.StringIO(text)).rows
    assert row == EpssRow(3, "CVE-2024-1086", 0.5, 0.99)


REFUSALS = [
    ("", "epss.csv: the file is empty: it has no header line"),
    ("cve,epss,percentile\nCVE-2024-1086,0.1,0.2\n", "epss.csv: the first line is 'cve,epss,percentile', not EPSS's comment '#model_version:…,score_date:…'"),
    ("#score_date:2026-11-20\ncve,epss,percentile\n", "epss.csv: the comment line has no valid model_version: '#score_date:2026-11-20'"),
    ("#model_version:v1 x,score_date:2026-11-20\ncve,epss,percentile\n", "epss.csv: the comment line has no valid model_version: '#model_version:v1 x,score_date:2026-11-20'"),
    ("#model_version:v2025.03.14\ncve,epss,percentile\n", "epss.csv: the comment line has no valid score_date: '#model_version:v2025.03.14'"),
    ("#model_version:v2025.03.14,score_date:yesterday\ncve,epss\n", "epss.csv: the comment line has no valid score_date: '#model_version:v2025.03.14,score_date:yesterday'"),
    (COMMENT, "epss.csv: the file has no header line after its comment"),
    (COMMENT + "cve,epss\nCVE-2024-1086,0.1\n", "epss.csv: the header has no 'percentile' column, which an EPSS file needs"),
    (COMMENT + "cve,epss,cve\n", "epss.csv: the header names the column 'cve' twice"),
    (COMMENT.encode("utf-16"), "epss.csv: the file is UTF-16 text; save it as UTF-8"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "epss.csv: the header line is not UTF-8 text; save the file as UTF-8"),

]  # fmt: skip


@pytest.mark.parametrize(("content", "message"), REFUSALS)
def test_files_that_are_not_epss_are_refused(content, message):
    assert refusal(content) == message


def test_a_truncated_download_stops_with_the_rows_before_it():
    """A gzip file cut short (a download that broke): the rows decompressed before the damage
    are yielded, then the error names the file and how far it got."""
    rows = "".join(
        f"CVE-2024-{n:05d},0.{n * 7919 % 100000:05d},0.{n * 104729 % 100000:05d}\n"
        for n in range(20_000)
    )
    whole = gzip.compress((COMMENT + "cve,epss,percentile\n" + rows).encode())
    epss = read_epss(io.BytesIO(whole[: len(whole) // 2]), source_name="epss_scores.csv.gz")
    read = []
    with pytest.raises(FeedError) as raised:  # noqa: PT012 (the rows before the error count)
        for row in epss.rows:
            read.append(row)
    assert 1000 < len(read) < 20_000
    assert all(isinstance(row, EpssRow) for row in read)
    assert str(raised.value) == (
        "epss_scores.csv.gz: the gzip data is damaged (Compressed file ended before the "
        f"end-of-stream marker was reached); {read[-1].line} lines were read before it"
    )


def test_messages_are_shown_in_japanese():
    _version, _date, rows = rows_of(EPSS_MALFORMED)
    bad_cve = rows[1]
    with translation.override("ja"):
        assert bad_cve.render(gettext) == (
            "4 行目: CVE ID 'CVE-24-1' は CVE-YYYY-NNNN の形式ではありません"
        )
