"""Shadowserver-shaped network reports: every vendored report type reads, the address is the
organisation's side of each, malformed and hostile rows are reported by line while the rest is
read, files that cannot be used are refused up front, and the observation key de-duplicates
the same observation across days. No database."""

from __future__ import annotations

import csv
import gzip
import io
import tracemalloc
from datetime import UTC, datetime

import pytest
from django.utils import translation
from django.utils.translation import gettext
from hypothesis import given, settings
from hypothesis import strategies as st

from mamori.core.controls import FIVE_CONTROLS
from mamori.earlywarning.feeds import network
from mamori.earlywarning.feeds.errors import FeedError, RowError
from mamori.earlywarning.feeds.network import (
    ALERT_TYPES,
    REPORT_TYPES,
    SEVERITIES,
    ObservationRow,
    normalise_ip,
    observation_key,
    parse_timestamp,
    read_report,
    report_kind,
)
from tests.datafiles import (
    EARLYWARNING_HOSTILE,
    SHADOWSERVER,
    SHADOWSERVER_DAILY,
    SHADOWSERVER_ROWS,
)

# The vendored reports are dated 2026-11-20/21; "now" is fixed so that no test depends on the
# day it runs (a row more than a day after "now" is refused as from the future).
NOW = datetime(2026, 11, 22, tzinfo=UTC)
MALFORMED = EARLYWARNING_HOSTILE / "scan_exchange-malformed.csv"


def read(path, report_type=None, **options):
    with path.open("rb") as stream:
        return list(
            read_report(
                stream,
                report_type or path.name.split("-")[0].removesuffix(".csv"),
                source_name=path.name,
                now=NOW,
                **options,
            )
        )


def read_text(text: str | bytes, report_type="scan_rdp", **options):
    data = text.encode() if isinstance(text, str) else text
    return list(
        read_report(io.BytesIO(data), report_type, source_name="report.csv", now=NOW, **options)
    )


def refusal(text: str | bytes, report_type="scan_rdp", **options) -> str:
    with pytest.raises(FeedError) as raised:
        read_text(text, report_type, **options)
    return str(raised.value)


def raw_header(path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as stream:
        return next(csv.reader(stream))


@pytest.mark.parametrize("report_type", sorted(SHADOWSERVER_ROWS))
def test_every_vendored_report_reads_whole(report_type):
    path = SHADOWSERVER / f"{report_type}.csv"
    rows = read(path)
    assert all(isinstance(row, ObservationRow) for row in rows), rows
    assert len(rows) == SHADOWSERVER_ROWS[report_type]
    header = raw_header(path)
    for row in rows:
        assert list(row.raw) == header  # every column kept, in the file's order
        assert row.seen_at.tzinfo is UTC
        assert row.seen_at.date() == datetime(2026, 11, 20).date()


def test_a_scan_row_in_full():
    first = read(SHADOWSERVER / "scan_rdp.csv")[0]
    assert (first.line, first.ip, first.port, first.asn, first.hostname, first.tag) == (
        2,
        "192.0.2.10",
        3389,
        64496,
        "rdp-gw.bank-a.example",
        "rdp",
    )
    assert first.seen_at == datetime(2026, 11, 20, 0, 12, 45, tzinfo=UTC)
    assert first.protocol == ""  # scan_rdp has no protocol column
    assert first.raw["subject_common_name"] == "RDP-GW01"
    assert first.raw["handshake"] == ""


@pytest.mark.parametrize(
    ("report_type", "line", "ip", "port", "asn", "tag", "other_side"),
    [
        # Sinkhole: the infected device is the source; dst_ip is the sinkhole.
        ("event4_sinkhole", 2, "192.0.2.50", 51544, 64496, "qakbot", "203.0.113.5"),
        ("event4_sinkhole_http", 3, "2001:db8:1::51", 60110, 64496, "necurs", "2001:db8:ffff::7"),
        # Honeypot: the attacker is the source; dst_ip is the honeypot.
        ("event4_honeypot_brute_force", 3, "198.51.100.91", 38636, 64497, "telnet-brute-force", "203.0.113.101"),
    ],
)  # fmt: skip
def test_event_reports_are_about_the_source_side(report_type, line, ip, port, asn, tag, other_side):
    row = next(r for r in read(SHADOWSERVER / f"{report_type}.csv") if r.line == line)
    assert (row.ip, row.port, row.asn, row.tag, row.protocol) == (ip, port, asn, tag, "tcp")
    assert row.raw["dst_ip"] == other_side
    assert report_kind(report_type).ip_column == "src_ip"


def test_a_ddos_target_report_is_about_the_destination_side():
    header = "timestamp,protocol,src_ip,src_port,dst_ip,dst_port,dst_asn,dst_hostname,infection\n"
    row = "2026-11-20 09:00:00,udp,203.0.113.200,6667,192.0.2.90,53,64496,ns.bank-a.example,mirai\n"
    (observed,) = read_text(header + row, "event4_honeypot_ddos_target")
    assert (observed.ip, observed.port, observed.asn, observed.hostname, observed.tag) == (
        "192.0.2.90",
        53,
        64496,
        "ns.bank-a.example",
        "mirai",
    )


def test_a_blocklist_names_addresses_and_prefixes():
    rows = read(SHADOWSERVER / "blocklist.csv")
    assert [(row.ip, row.port, row.tag) for row in rows] == [
        ("192.0.2.60", None, "Spam source"),
        ("198.51.100.128/25", None, "Hijacked range"),
        ("2001:db8:1::60", None, "Spam source"),
    ]


MALFORMED_ERRORS = [
    (3, "line 3: the timestamp '2026-13-40 25:00:00' is not a date and time"),
    (4, "line 4: the timestamp is empty"),
    (5, "line 5: the ip value '192.0.2.256' is not an IP address"),
    (6, "line 6: the ip value 'fe80::1%eth0' is not an IP address"),
    (7, "line 7: the port value '70000' is not a port number (0–65535)"),
    (8, "line 8: the asn value 'ASX' is not an AS number"),
    (9, "line 9: the row has 3 values but the header has 16 columns"),
    (14, "line 14: the ip value '192.000.002.001' is not an IP address"),
    (15, "line 15: the timestamp '2099-01-01 00:00:00' is in the future"),
    (16, "line 16: the row is not valid CSV (',' expected after '\"')"),
    (17, "line 17: the ip column is empty"),
    (18, "line 18: the timestamp '20261120T080000Z' is not a date and time"),
]


def test_malformed_rows_are_reported_by_line_and_the_rest_is_read():
    results = read(MALFORMED)
    errors = [(item.line, item.message) for item in results if isinstance(item, RowError)]
    assert errors == MALFORMED_ERRORS
    assert [item.line for item in results if isinstance(item, ObservationRow)] == [
        2,
        10,
        11,
        12,
        13,
    ]
    assert MALFORMED.read_text("utf-8").count("\n") == 18  # nothing was left unreported


def test_unknown_columns_and_hostile_values_are_kept_verbatim_and_never_interpreted():
    rows = {row.line: row for row in read(MALFORMED) if isinstance(row, ObservationRow)}
    assert rows[2].raw["x_new_field"] == "kept"
    injected = rows[10]
    assert injected.hostname == '=HYPERLINK("http://attacker.example","x")'
    assert injected.raw["servername"] == "@SUM(1+1)*cmd|' /C calc'!A0"
    assert (injected.raw["url"], injected.raw["x_new_field"]) == ("+1+1", "-2+3")
    assert rows[11].hostname == "evil\u202ecod.example"


def test_addresses_and_times_are_normalised():
    rows = {row.line: row for row in read(MALFORMED) if isinstance(row, ObservationRow)}
    mapped, upper = rows[12], rows[13]
    assert mapped.ip == "192.0.2.77"  # ::ffff:192.0.2.77, so that IPv4 prefixes match it
    assert mapped.seen_at == datetime(2026, 11, 19, 23, 0, tzinfo=UTC)  # 08:00+09:00
    assert upper.ip == "2001:db8:1::1"  # 2001:DB8:1:0::1
    assert upper.seen_at == datetime(2026, 11, 19, 23, 0, 0, 250000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20 01:02:03", datetime(2026, 11, 20, 1, 2, 3, tzinfo=UTC)),
        ("2026-11-20T01:02:03Z", datetime(2026, 11, 20, 1, 2, 3, tzinfo=UTC)),
        ("2026-11-20T01:02:03.521730Z", datetime(2026, 11, 20, 1, 2, 3, 521730, tzinfo=UTC)),
        ("2026-11-20T01:02:03.123456789+00:00", datetime(2026, 11, 20, 1, 2, 3, 123456, tzinfo=UTC)),
        ("2026-11-20T10:02:03+0900", datetime(2026, 11, 20, 1, 2, 3, tzinfo=UTC)),
        ("2026-11-19T20:02:03-05:00", datetime(2026, 11, 20, 1, 2, 3, tzinfo=UTC)),
        (" 2026-11-20 01:02:03 ", datetime(2026, 11, 20, 1, 2, 3, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_accepted_timestamps(text, expected):
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-20",  # no time: Shadowserver always gives one
        "20261120T010203Z",
        "2026-W47-5T01:02:03",
        "2026-11-20 01:02",
        "2026-02-30 01:02:03",
        "2026-11-20 24:00:00",
        "2026-11-20T01:02:03+24:00",
        "2026-11-20T01:02:03+09:60",
        "1763600523",
        "２０２６-11-20 01:02:03",  # full-width digits
    ],
)
def test_refused_timestamps(text):
    with pytest.raises(ValueError, match="not a timestamp"):
        parse_timestamp(text)


def test_a_row_at_most_a_day_ahead_of_now_is_accepted():
    text = "timestamp,ip\n2026-11-20 12:00:00,192.0.2.1\n"
    early = datetime(2026, 11, 19, 12, 0, 1, tzinfo=UTC)
    (accepted,) = list(read_report(io.StringIO(text), "scan_rdp", source_name="r", now=early))
    assert isinstance(accepted, ObservationRow)
    too_early = datetime(2026, 11, 19, 11, 59, 59, tzinfo=UTC)
    (refused,) = list(read_report(io.StringIO(text), "scan_rdp", source_name="r", now=too_early))
    assert refused.message == "line 2: the timestamp '2026-11-20 12:00:00' is in the future"


@pytest.mark.parametrize(
    ("report_type", "value", "expected"),
    [
        ("scan_rdp", "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("scan_rdp", "::ffff:c000:0201", "192.0.2.1"),
        ("scan_rdp", "[2001:db8::1]", "line 2: the ip value '[2001:db8::1]' is not an IP address"),
        ("scan_rdp", "2001:db8::1/128", "line 2: the ip value '2001:db8::1/128' is not an IP address"),
        ("scan_rdp", "192.0.2.1:3389", "line 2: the ip value '192.0.2.1:3389' is not an IP address"),
        ("scan_rdp", "3221225985", "line 2: the ip value '3221225985' is not an IP address"),
        ("scan_rdp", "\x1b[31m192.0.2.1", "line 2: the ip value '\\x1b[31m192.0.2.1' is not an IP address"),
        ("scan_rdp", "x" * 100, f"line 2: the ip value '{'x' * 60}…' is not an IP address"),
        ("blocklist", "192.0.2.7/32", "192.0.2.7"),
        ("blocklist", "2001:db8::/32", "2001:db8::/32"),
        ("blocklist", "198.51.100.0/255.255.255.0", "198.51.100.0/24"),
        ("blocklist", "192.0.2.5/24", "line 2: the prefix '192.0.2.5/24' has host bits set (the network is 192.0.2.0/24)"),
        ("blocklist", "10.0.0.0/7", "line 2: the prefix '10.0.0.0/7' is wider than /8"),
        ("blocklist", "0.0.0.0/0", "line 2: the prefix '0.0.0.0/0' is wider than /8"),
        ("blocklist", "2000::/3", "line 2: the prefix '2000::/3' is wider than /19"),
        ("blocklist", "192.0.2.0/33", "line 2: the ip value '192.0.2.0/33' is not an IP address or prefix"),
        ("blocklist", "example.com", "line 2: the ip value 'example.com' is not an IP address or prefix"),
    ],
)  # fmt: skip
def test_address_forms(report_type, value, expected):
    (result,) = read_text(f'timestamp,ip\n2026-11-20 00:00:00,"{value}"\n', report_type)
    assert (result.ip if isinstance(result, ObservationRow) else result.message) == expected


@settings(max_examples=300, deadline=None)
@given(st.ip_addresses(), st.sampled_from(["compressed", "exploded", "upper"]))
def test_addresses_normalise_as_ipaddress_prints_them(address, form):
    """The fast path (C library for IPv6, a pattern for IPv4) agrees with ``ipaddress`` on any
    address written in any of its forms."""
    text = {
        "compressed": address.compressed,
        "exploded": address.exploded,
        "upper": address.compressed.upper(),
    }[form]
    mapped = getattr(address, "ipv4_mapped", None)
    assert normalise_ip(text) == str(mapped or address)


@pytest.mark.parametrize(
    ("port", "asn", "expected"),
    [
        ("0", "0", (0, None)),  # Shadowserver writes AS 0 for "unknown"
        ("65535", "AS4294967295", (65535, 4294967295)),
        (" 443 ", "as64496", (443, 64496)),
        ("", "", (None, None)),
        ("-1", "64496", "line 2: the port value '-1' is not a port number (0–65535)"),
        ("443.0", "64496", "line 2: the port value '443.0' is not a port number (0–65535)"),
        ("٤٤٣", "64496", "line 2: the port value '٤٤٣' is not a port number (0–65535)"),
        ("443", "4294967296", "line 2: the asn value '4294967296' is not an AS number"),
        ("443", "AS 64496", "line 2: the asn value 'AS 64496' is not an AS number"),
    ],
)
def test_ports_and_as_numbers(port, asn, expected):
    (result,) = read_text(f"timestamp,ip,port,asn\n2026-11-20 00:00:00,192.0.2.1,{port},{asn}\n")
    if isinstance(result, ObservationRow):
        assert (result.port, result.asn) == expected
    else:
        assert result.message == expected


def test_a_report_resaved_by_excel_reads_the_same():
    """BOM, CRLF line ends, header names upper-case and padded with spaces."""
    original = read(SHADOWSERVER / "blocklist.csv")
    resaved = read(EARLYWARNING_HOSTILE / "blocklist-excel.csv", "blocklist")
    assert [(r.line, r.ip, r.tag, r.raw) for r in resaved] == [
        (r.line, r.ip, r.tag, r.raw) for r in original
    ]


def test_nul_bytes_and_other_encodings_are_row_errors():
    results = read(EARLYWARNING_HOSTILE / "blocklist-nul-and-shift_jis.csv", "blocklist")
    assert [r.message if isinstance(r, RowError) else r.ip for r in results] == [
        "line 2: the row contains a NUL byte",
        "line 3: the row is not UTF-8 text",
        "198.51.100.128/25",
        "2001:db8:1::60",
    ]


def test_a_header_only_report_has_no_rows():
    assert read(EARLYWARNING_HOSTILE / "blocklist-header-only.csv", "blocklist") == []


REFUSALS = [
    # (content, report type, options, message)
    ("", "scan_rdp", {}, "report.csv: the file is empty: it has no header line"),
    ("\n\r\n\n", "scan_rdp", {}, "report.csv: the file is empty: it has no header line"),
    ("timestamp,ip\n", "scan_rdp", {}, None),  # a header alone is a valid, empty report
    ("timestamp,address\n", "scan_rdp", {}, "report.csv: the header has no 'ip' column, which scan_rdp reports need"),
    ("ip,port\n", "scan_rdp", {}, "report.csv: the header has no 'timestamp' column, which scan_rdp reports need"),
    ("timestamp,ip\n", "event4_sinkhole", {}, "report.csv: the header has no 'src_ip' column, which event4_sinkhole reports need"),
    ("timestamp,IP,Ip\n", "scan_rdp", {}, "report.csv: the header names the column 'ip' twice"),
    ("timestamp,ip,,port\n", "scan_rdp", {}, "report.csv: column 3 of the header has no name"),
    ("timestamp,ip,a,b,c,d\n", "scan_rdp", {"max_columns": 5}, "report.csv: the header has 6 columns, more than the limit of 5"),
    ("timestamp,ip," + "x" * 100 + "\n", "scan_rdp", {"max_row_bytes": 64}, "report.csv: the header line is longer than 64 bytes"),
    ('timestamp,"ip\n2026-11-20 00:00:00,192.0.2.1\n', "scan_rdp", {}, "report.csv: the header line opens a quoted value that is never closed"),
    ('"timestamp"x,ip\n', "scan_rdp", {}, "report.csv: the header line is not valid CSV (',' expected after '\"')"),
    (b"timestamp,ip,h\xf4te\n", "scan_rdp", {}, "report.csv: the header line is not UTF-8 text; save the file as UTF-8"),
    (b"timestamp,ip\x00\n", "scan_rdp", {}, "report.csv: the header line contains a NUL byte: is this a CSV file?"),
    (b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "scan_rdp", {}, "report.csv: the header line contains a NUL byte: is this a CSV file?"),
    ("timestamp,ip\n".encode("utf-16-le"), "scan_rdp", {}, "report.csv: the header line contains a NUL byte: is this a CSV file?"),
    ("timestamp,ip\n".encode("utf-16"), "scan_rdp", {}, "report.csv: the file is UTF-16 text; save it as UTF-8"),
    (gzip.compress("timestamp,ip\n".encode("utf-16"), mtime=0), "scan_rdp", {}, "report.csv: the file is UTF-16 text; save it as UTF-8"),
    (gzip.compress(b"timestamp,ip\n", mtime=0)[:12], "scan_rdp", {}, "report.csv: the gzip data is damaged (Compressed file ended before the end-of-stream marker was reached); 0 lines were read before it"),
]  # fmt: skip


@pytest.mark.parametrize(("content", "report_type", "options", "message"), REFUSALS)
def test_files_that_cannot_be_used_are_refused_up_front(content, report_type, options, message):
    if message is None:
        assert read_text(content, report_type, **options) == []
    else:
        assert refusal(content, report_type, **options) == message


def test_the_utf16_fixture_is_refused():
    with pytest.raises(FeedError) as raised:
        read(EARLYWARNING_HOSTILE / "blocklist-utf16.csv", "blocklist")
    assert str(raised.value) == "blocklist-utf16.csv: the file is UTF-16 text; save it as UTF-8"


def test_a_report_without_its_address_column_is_refused():
    with pytest.raises(FeedError) as raised:
        read(EARLYWARNING_HOSTILE / "blocklist-no-ip-column.csv", "blocklist")
    assert str(raised.value) == (
        "blocklist-no-ip-column.csv: the header has no 'ip' column, which blocklist reports need"
    )
    # A sinkhole report read as a scan: the scan's column is missing, said the same way.
    with pytest.raises(FeedError) as raised:
        read(SHADOWSERVER / "event4_sinkhole.csv", "scan_rdp")
    assert "the header has no 'ip' column, which scan_rdp reports need" in str(raised.value)


def test_refusal_is_immediate_not_on_first_row():
    """read_report checks before it returns, so a caller learns of a bad file before it
    starts a run (the rows themselves are read lazily)."""
    with pytest.raises(FeedError):
        read_report(io.BytesIO(b"timestamp,address\n"), "scan_rdp", source_name="r.csv")


@pytest.mark.parametrize(
    "report_type", ["scan", "scan-rdp", "scan_*", "event4_microsoft_sinkhole", "../scan_rdp", ""]
)
def test_unknown_report_types_are_refused(report_type):
    with pytest.raises(FeedError) as raised:
        read_report(io.BytesIO(b"timestamp,ip\n"), report_type, source_name="r.csv")
    message = str(raised.value)
    known = ", ".join(sorted(REPORT_TYPES))
    assert message == f"the report type '{report_type}' is unknown; known types: {known}"


def test_an_oversized_row_is_skipped_and_the_next_one_read():
    good = "2026-11-20 00:00:00,192.0.2.1,3389\n"
    text = (
        "timestamp,ip,port\n" + good + f'2026-11-20 00:00:00,192.0.2.2,"{"A" * 200_000}"\n' + good
    )
    results = read_text(text)
    assert [r.message if isinstance(r, RowError) else r.line for r in results] == [
        2,
        "line 3: the row is longer than 131072 bytes; skipped up to line 3",
        4,
    ]


def test_a_quote_left_open_is_cut_at_the_row_limit_and_reading_resumes():
    good = "2026-11-20 00:00:00,192.0.2.1,3389\n"
    text = "timestamp,ip,port\n" + '2026-11-20 00:00:00,"192.0.2.2,3389\n' + good * 30
    results = read_text(text, max_row_bytes=200)
    messages = [r.message if isinstance(r, RowError) else r.line for r in results]
    # Every line is 36 bytes: 200 hold the open row (line 2) and the four lines after it; the
    # fifth (line 7) goes over, and reading starts again on line 8.
    assert messages == [
        "line 2: the row is longer than 200 bytes; skipped up to line 7",
        *range(8, 33),
    ]


def test_a_quote_left_open_at_the_end_of_the_file():
    text = 'timestamp,ip,port\n2026-11-20 00:00:00,192.0.2.1,"3389\n'
    assert [r.message for r in read_text(text)] == [
        "line 2: a quoted value is not closed before the end of the file"
    ]


def test_a_quoted_value_may_span_lines():
    text = 'timestamp,ip,detail\n2026-11-20 00:00:00,192.0.2.1,"one\ntwo"\n2026-11-20 00:00:00,192.0.2.2,x\n'
    first, second = read_text(text, "scan_http_vulnerable")
    assert (first.line, first.raw["detail"], second.line) == (2, "one\ntwo", 4)


def test_too_many_values_is_a_row_error():
    text = "timestamp,ip\n2026-11-20 00:00:00,192.0.2.1," + ",".join("x" * 10) + "\n"
    assert [r.message for r in read_text(text)] == [
        "line 2: the row has 12 values but the header has 2 columns"
    ]


class GeneratedReport(io.RawIOBase):
    """A report of ``rows`` rows (IPv4 and IPv6 mixed) made as it is read: nothing holds the
    whole file. ``produced`` counts its bytes."""

    def __init__(self, rows: int):
        self._rows = rows
        self._made = 0
        self._pending = b"timestamp,ip,port,hostname,tag,asn\n"
        self.produced = len(self._pending)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while len(self._pending) < len(buffer) and self._made < self._rows:
            n = self._made
            self._made += 1
            address = (
                f"2001:db8:{n >> 16:x}::{n & 0xFFFF:x}"
                if n % 2
                else f"198.51.{(n >> 8) & 255}.{n & 255}"
            )
            row = f"2026-11-20 00:00:{n % 60:02d},{address},{n % 65536},h{n}.example,rdp,64496\n"
            self._pending += row.encode()
            self.produced += len(row)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


def test_a_large_report_streams_in_constant_memory():
    rows = 6_000
    report = GeneratedReport(rows)
    tracemalloc.start()
    try:
        stream = io.BufferedReader(report)
        count = sum(
            1
            for row in read_report(stream, "scan_rdp", source_name="big.csv", now=NOW)
            if isinstance(row, ObservationRow)
        )
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == rows
    # The reader holds one row, its buffers and a small timestamp cache (about 50 kB measured,
    # whatever the number of rows); the report is over 300 kB.
    assert report.produced > 300_000
    assert peak < 150_000, peak


def test_the_same_observation_on_consecutive_days_has_one_key():
    # The second day is gzip-compressed: the reader recognises it by its magic bytes.
    day1, day2 = (read(path, "scan_rdp") for path in sorted(SHADOWSERVER_DAILY.iterdir()))
    assert [path.suffix for path in sorted(SHADOWSERVER_DAILY.iterdir())] == [".csv", ".gz"]
    keys1 = {row.ip: observation_key("scan_rdp", row) for row in day1}
    keys2 = {row.ip: observation_key("scan_rdp", row) for row in day2}
    assert keys1["192.0.2.10"] == keys2["192.0.2.10"]
    assert keys1["198.51.100.23"] == keys2["198.51.100.23"]
    assert len(set(keys1.values()) | set(keys2.values())) == 4  # 3 per day, 2 shared
    assert all(len(key) == 64 and int(key, 16) >= 0 for key in keys1.values())


def test_sinkhole_and_honeypot_keys_leave_out_the_ephemeral_source_port():
    sinkhole = read(SHADOWSERVER / "event4_sinkhole.csv")
    assert sinkhole[0].port != sinkhole[1].port
    assert observation_key("event4_sinkhole", sinkhole[0]) == observation_key(
        "event4_sinkhole", sinkhole[1]
    )
    brute = read(SHADOWSERVER / "event4_honeypot_brute_force.csv")
    keys = [observation_key("event4_honeypot_brute_force", row) for row in brute]
    assert keys[0] == keys[2] != keys[1]  # same device, same attack; then telnet


def row_with(**changes) -> ObservationRow:
    base = {
        "line": 2,
        "seen_at": datetime(2026, 11, 20, tzinfo=UTC),
        "ip": "192.0.2.10",
        "port": 3389,
        "asn": 64496,
        "hostname": "h.example",
        "tag": "rdp",
        "protocol": "tcp",
        "raw": {"timestamp": "2026-11-20 00:00:00", "ip": "192.0.2.10"},
    }
    return ObservationRow(**(base | changes))


@pytest.mark.parametrize(
    ("changes", "same"),
    [
        ({"seen_at": datetime(2026, 12, 24, tzinfo=UTC), "line": 900}, True),
        ({"hostname": "renamed.example", "asn": 64497}, True),
        ({"tag": " RDP "}, True),
        ({"raw": {"timestamp": "x", "ip": "192.0.2.10", "cert_length": "4096"}}, True),
        ({"port": 3390}, False),
        ({"ip": "192.0.2.11"}, False),
        ({"protocol": "udp"}, False),
        ({"tag": "rdp;cve-2019-0708"}, False),
    ],
)
def test_what_the_key_depends_on(changes, same):
    assert (
        observation_key("scan_rdp", row_with(**changes)) == observation_key("scan_rdp", row_with())
    ) is same


def test_the_report_type_is_part_of_the_key():
    row = row_with()
    assert observation_key("scan_rdp", row) == observation_key(" SCAN_RDP ", row)
    assert observation_key("scan_rdp", row) != observation_key("scan6_rdp", row)


@pytest.mark.parametrize(
    ("report_type", "kind", "ip_column"),
    [
        ("scan_rdp", network.REMOTE_ACCESS, "ip"),
        ("scan6_rdp", network.REMOTE_ACCESS, "ip"),
        (" Scan_SMB ", network.REMOTE_ACCESS, "ip"),
        ("scan_http_vulnerable", network.VULNERABLE_SERVICE, "ip"),
        ("scan6_http_vulnerable", network.VULNERABLE_SERVICE, "ip"),
        ("scan_exchange", network.VULNERABLE_SERVICE, "ip"),
        ("scan_ftp", network.OPEN_SERVICE, "ip"),
        ("scan6_ssh", network.OPEN_SERVICE, "ip"),
        ("event4_sinkhole", network.COMPROMISED_HOST, "src_ip"),
        ("event4_sinkhole_http", network.COMPROMISED_HOST, "src_ip"),
        ("event6_sinkhole_http", network.COMPROMISED_HOST, "src_ip"),
        ("event4_honeypot_brute_force", network.BRUTE_FORCE_SOURCE, "src_ip"),
        ("event4_honeypot_darknet", network.HONEYPOT_ABUSE, "src_ip"),
        ("event4_honeypot_http_scan", network.HONEYPOT_ABUSE, "src_ip"),
        ("event4_honeypot_ddos_target", network.DDOS_TARGET, "dst_ip"),
        ("blocklist", network.BLOCKLISTED, "ip"),
    ],
)
def test_report_types_map_to_their_kind(report_type, kind, ip_column):
    assert report_kind(report_type) is kind
    assert kind.ip_column == ip_column


@pytest.mark.parametrize("name", sorted(REPORT_TYPES))
def test_every_kind_names_a_scheme_control_and_texts_in_both_languages(name):
    kind = REPORT_TYPES[name]
    assert kind.control in FIVE_CONTROLS
    assert kind.alert_type in ALERT_TYPES
    assert kind.severity in SEVERITIES
    assert kind.side in ("", "src_", "dst_")
    for text in (kind.label, kind.remediation):
        assert set(text) == {"ja", "en"}
        assert all(value.strip() for value in text.values())
    assert kind.allows_prefix is (kind is network.BLOCKLISTED)


def test_messages_are_shown_in_japanese():
    (error,) = read_text("timestamp,ip\nyesterday,192.0.2.1\n")
    with pytest.raises(FeedError) as raised:
        read_text("timestamp,address\n")
    assert error.message == "line 2: the timestamp 'yesterday' is not a date and time"
    with translation.override("ja"):
        assert error.render(gettext) == "2 行目: タイムスタンプ 'yesterday' は日時ではありません"
        assert raised.value.render(gettext) == (
            "report.csv: 見出し行に、scan_rdp レポートに必要な 'ip' 列がありません"
        )
