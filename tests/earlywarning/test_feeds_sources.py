"""Where feeds are read from: files, directories, and http(s) URLs served by a real HTTP server
started by the test (fixture files, an error status, a server that never answers, one that
drips, one that sends too much). No database."""

from __future__ import annotations

import contextlib
import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mamori.earlywarning.feeds.epss import read_epss
from mamori.earlywarning.feeds.errors import SourceError
from mamori.earlywarning.feeds.network import ObservationRow, read_report
from mamori.earlywarning.feeds.sources import display_url, iter_sources, open_source
from tests.datafiles import EPSS_GZ, SHADOWSERVER, SHADOWSERVER_DAILY, SHADOWSERVER_ROWS

SCAN_RDP = SHADOWSERVER / "scan_rdp.csv"


class Feeds(ThreadingHTTPServer):
    """Serves the vendored fixtures and misbehaves on purpose under some paths."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FeedHandler)
        self.release = threading.Event()  # lets hanging handlers go at the end of the test
        self.requests: list[str] = []

    def handle_error(self, request, client_address):
        pass  # clients that give up on purpose break the connection

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class FeedHandler(BaseHTTPRequestHandler):
    server: Feeds

    def log_message(self, format, *args):
        pass

    def send(self, status: int, body: bytes, content_type="text/csv", length: int | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.server.requests.append(self.path)
        path = self.path.split("?", 1)[0]
        if path == "/scan_rdp.csv":
            self.send(200, SCAN_RDP.read_bytes())
        elif path == "/epss_scores-current.csv.gz":
            self.send(200, EPSS_GZ.read_bytes(), "application/gzip")
        elif path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/scan_rdp.csv")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/broken.csv":
            self.send(500, b"Internal Server Error")
        elif path == "/hang.csv":
            self.server.release.wait(10)  # accepts the request, never answers
        elif path == "/huge-declared.csv":
            self.send_response(200)
            self.send_header("Content-Length", str(10 * 1024 * 1024))
            self.end_headers()
            self.server.release.wait(10)
        elif path == "/huge-chunked.csv":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            row = b"2026-11-20 00:00:00,192.0.2.1,3389\n" * 1000
            with contextlib.suppress(OSError):
                self.wfile.write(b"12\r\ntimestamp,ip,port\n\r\n")
                for _ in range(1000):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(row), row))
        elif path == "/drip.csv":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            with contextlib.suppress(OSError):
                for _ in range(100):
                    self.wfile.write(b"1\r\nx\r\n")
                    self.wfile.flush()
                    if self.server.release.wait(0.1):
                        return
        else:
            self.send(404, b"Not Found")


@pytest.fixture
def feeds():
    server = Feeds()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


def report_rows(stream, name="scan_rdp.csv"):
    return [
        (row.line, row.ip, row.port)
        for row in read_report(stream, "scan_rdp", source_name=name)
        if isinstance(row, ObservationRow)
    ]


def source_error(location: str, **options) -> str:
    with pytest.raises(SourceError) as raised, open_source(location, **options) as stream:
        stream.read()
    return str(raised.value)


def test_a_file():
    ((name, opener),) = iter_sources(str(SCAN_RDP))
    assert name == str(SCAN_RDP)
    with opener() as stream:
        assert stream.read() == SCAN_RDP.read_bytes()
    with open_source(str(SCAN_RDP)) as stream:
        assert len(report_rows(stream)) == SHADOWSERVER_ROWS["scan_rdp"]


def test_a_directory_is_read_file_by_file_in_name_order(tmp_path):
    names = [name for name, _opener in iter_sources(str(SHADOWSERVER_DAILY))]
    assert names == [
        str(SHADOWSERVER_DAILY / "2026-11-20-scan_rdp.csv"),
        str(SHADOWSERVER_DAILY / "2026-11-21-scan_rdp.csv.gz"),
    ]
    days = []
    for name, opener in iter_sources(str(SHADOWSERVER_DAILY)):
        with opener() as stream:
            days.append(report_rows(stream, name))
    assert [len(day) for day in days] == [3, 3]

    for name in ("b.CSV", "a.csv.gz", ".hidden.csv", "notes.txt", "c.csv.bak"):
        (tmp_path / name).write_bytes(b"timestamp,ip\n")
    (tmp_path / "sub.csv").mkdir()
    assert [name for name, _ in iter_sources(str(tmp_path))] == [
        str(tmp_path / "a.csv.gz"),
        str(tmp_path / "b.CSV"),
    ]


def test_missing_and_empty_locations_are_refused_up_front(tmp_path):
    with pytest.raises(SourceError) as raised:
        iter_sources(str(tmp_path / "nothing.csv"))
    assert str(raised.value) == f"no such file or directory: {tmp_path / 'nothing.csv'}"
    (tmp_path / "readme.txt").write_text("not a feed")
    with pytest.raises(SourceError) as raised:
        iter_sources(str(tmp_path))
    assert str(raised.value) == f"the directory {tmp_path} holds no .csv or .csv.gz file"
    with pytest.raises(SourceError) as raised:
        open_source(str(SHADOWSERVER_DAILY))
    assert str(raised.value) == f"{SHADOWSERVER_DAILY} is a directory; read it file by file"


def test_a_file_over_the_size_limit_is_refused_before_it_is_read():
    size = SCAN_RDP.stat().st_size
    assert source_error(str(SCAN_RDP), max_bytes=size - 1) == (
        f"{SCAN_RDP} has {size} bytes, over the limit of {size - 1}"
    )
    with open_source(str(SCAN_RDP), max_bytes=size) as stream:
        assert stream.read() == SCAN_RDP.read_bytes()


def test_a_url(feeds):
    ((name, opener),) = iter_sources(f"{feeds.base}/scan_rdp.csv?token=SECRET")
    assert name == f"{feeds.base}/scan_rdp.csv"  # the token stays out of names and messages
    with opener() as stream:
        from_url = report_rows(stream)
    with SCAN_RDP.open("rb") as stream:
        assert from_url == report_rows(stream)
    assert feeds.requests == ["/scan_rdp.csv?token=SECRET"]


def test_a_gzip_url_and_a_redirect(feeds):
    with open_source(f"{feeds.base}/epss_scores-current.csv.gz") as stream:
        epss = read_epss(stream)
        assert epss.model_version == "v2025.03.14"
        assert len(list(epss.rows)) == 12
    with open_source(f"{feeds.base}/moved") as stream:
        assert len(report_rows(stream)) == 3
    assert feeds.requests[-2:] == ["/moved", "/scan_rdp.csv"]


def test_an_error_status_is_an_error_naming_it(feeds):
    assert source_error(f"{feeds.base}/broken.csv") == (
        f"{feeds.base}/broken.csv answered 500 Internal Server Error"
    )
    assert source_error(f"{feeds.base}/gone.csv?key=SECRET") == (
        f"{feeds.base}/gone.csv answered 404 Not Found"
    )


def test_a_server_that_never_answers_times_out(feeds):
    started = time.monotonic()
    message = source_error(f"{feeds.base}/hang.csv", timeout=0.5)
    assert message == f"{feeds.base}/hang.csv did not answer within 0.5 seconds"
    assert time.monotonic() - started < 5


def test_too_much_data_is_refused(feeds):
    assert source_error(f"{feeds.base}/huge-declared.csv", max_bytes=1024 * 1024) == (
        f"{feeds.base}/huge-declared.csv has 10485760 bytes, over the limit of 1048576"
    )
    # No Content-Length: the body is counted as it arrives, and stopped once over.
    rows = 0
    with (  # noqa: PT012 (the rows read before the limit count too)
        pytest.raises(SourceError) as raised,
        open_source(f"{feeds.base}/huge-chunked.csv", max_bytes=1024 * 1024) as stream,
    ):
        for _row in read_report(stream, "scan_rdp", source_name="huge-chunked.csv"):
            rows += 1
    assert str(raised.value) == (f"{feeds.base}/huge-chunked.csv sent more than 1048576 bytes")
    assert 0 < rows < 30_000  # rows before the limit were read, the rest never arrived


def test_a_server_that_drips_is_stopped_by_the_total_timeout(feeds):
    started = time.monotonic()
    message = source_error(f"{feeds.base}/drip.csv", timeout=2, total_timeout=0.5)
    assert message.startswith(f"{feeds.base}/drip.csv is taking too long: stopped after ")
    assert message.endswith(" bytes")
    assert time.monotonic() - started < 3


def test_unreachable_and_unsupported_urls():
    with contextlib.closing(__import__("socket").socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        message = source_error(f"http://127.0.0.1:{port}/scan_rdp.csv", timeout=2)
    assert message.startswith(f"http://127.0.0.1:{port}/scan_rdp.csv could not be fetched: ")
    for url, scheme in [("ftp://192.0.2.1/report.csv", "ftp"), ("file:///etc/passwd", "file")]:
        with pytest.raises(SourceError) as raised:
            iter_sources(url)
        assert str(raised.value) == f"only http and https URLs can be read, not '{scheme}'"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pass@feeds.example/r.csv?token=abc#x", "https://feeds.example/r.csv"),
        ("https://[2001:db8::1]:8443/dl/scan_rdp.csv", "https://[2001:db8::1]:8443/dl/scan_rdp.csv"),
        ("https://feeds.example/\x1b[2Ja.csv", "https://feeds.example/\\x1b[2Ja.csv"),
    ],
)  # fmt: skip
def test_urls_are_shown_without_secrets(url, shown):
    assert display_url(url) == shown


def test_gzip_served_compressed_over_http_reads_like_the_file(feeds):
    with open_source(f"{feeds.base}/epss_scores-current.csv.gz") as stream:
        assert stream.read(2) == b"\x1f\x8b"  # delivered as stored; the reader decompresses
    assert gzip.decompress(EPSS_GZ.read_bytes()).startswith(b"#model_version:")
