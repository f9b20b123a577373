"""Request body limits against a real server: gunicorn (one sync worker, as deployed) started
once for the module, with its own temporary directory so what an upload writes there can be
watched. A 300 MiB upload, announced with Content-Length or streamed chunked from a generator,
is refused with 413 and never reaches the temporary directory; anonymous visitors included.

Before the limits, Django's CSRF check parsed the multipart body of any POST and streamed its
file to a temporary file in full (300 MiB) before a view could refuse it; a chunked body was
read as empty instead."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.test import TestCase

MIB = 1024 * 1024
HOSTILE = 300 * MIB
CHUNK = 256 * 1024
BOUNDARY = "mamori-test-boundary"
# Anonymous link holders reach these pages: the supplier's answer form (a 10 MB evidence file)
# and the offline questionnaire upload (2 MiB). The ids need not exist: the limit is checked
# before any view looks anything up.
ANSWER_PAGE = "/supply/responses/999999/answer/"
OFFLINE_PAGE = "/supply/responses/999999/offline/"


class Gunicorn:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.temp = folder / "tmp"
        self.temp.mkdir()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        env = {
            **os.environ,
            "TMPDIR": str(self.temp),
            "MAMORI_VAR_DIR": str(folder / "var"),
            # A database nobody created: refusing a body must not need one.
            "DATABASE_URL": f"sqlite:///{folder / 'none.sqlite3'}",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("CELERY_BROKER_URL", None)
        self.log_path = folder / "gunicorn.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "mamori.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "1",
                "--timeout",
                "60",
            ],
            env=env,
            cwd=folder,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited:\n{self.output()}")
            try:
                if request(self.port, "GET", "/healthz", b"").status:
                    return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"gunicorn did not start:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Gunicorn]:
    started = Gunicorn(tmp_path_factory.mktemp("gunicorn"))
    yield started
    started.stop()


class TempWatch:
    """The most bytes the server's temporary directory held while the block ran, sampled every
    few milliseconds from another thread."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.peak = 0
        self._stop = threading.Event()

    def _size(self) -> int:
        total = 0
        for root, _dirs, files in os.walk(self.folder):
            for name in files:
                with contextlib.suppress(FileNotFoundError):  # removed meanwhile
                    total += os.stat(os.path.join(root, name)).st_size
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._size())
            time.sleep(0.005)

    def __enter__(self) -> TempWatch:
        self.before = self._size()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._size()) - self.before


def multipart_head(field: str = "certification_file", name: str = "big.pdf") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="{name}"\r\nContent-Type: application/pdf\r\n\r\n'
    ).encode()


def hostile_file(size: int = HOSTILE) -> Iterator[bytes]:
    """A multipart body of ``size`` bytes of file content, made as it is sent."""
    yield multipart_head() + b"%PDF-1.7\n"
    block = b"0" * CHUNK
    for _ in range(size // CHUNK):
        yield block
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the client sent before the answer came


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | Iterator[bytes],
    *,
    headers: dict[str, str] | None = None,
    content_length: int | None = None,
    timeout: float = 30,
) -> Answer:
    """Send a request on a raw socket and read the answer. An iterator body is sent chunked
    unless ``content_length`` is given; sending stops as soon as the server answers (as a
    browser or curl does), so an early 413 is read rather than lost in a reset."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sent = 0
    try:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        lines += [f"{key}: {value}" for key, value in (headers or {}).items()]
        chunked = not isinstance(body, bytes) and content_length is None
        if isinstance(body, bytes):
            lines.append(f"Content-Length: {len(body)}")
        elif content_length is not None:
            lines.append(f"Content-Length: {content_length}")
        else:
            lines.append("Transfer-Encoding: chunked")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            for piece in [body] if isinstance(body, bytes) else body:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server has answered: stop sending
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
            else:
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
        except ConnectionResetError:
            pass
    finally:
        sock.close()
    head, _sep, content = answer.partition(b"\r\n\r\n")
    if not head:
        return Answer(0, {}, b"", sent)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    received = {}
    for line in header_lines:
        key, _colon, value = line.partition(":")
        received[key.strip().lower()] = value.strip()
    if "chunked" in received.get("transfer-encoding", ""):
        content = _dechunk(content)
    return Answer(int(status_line.split()[1]), received, content, sent)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _sep, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


# A CSRF cookie of the right shape, as any visitor has one: with it Django's CSRF check reads
# the body to compare the form's token (without one it refuses unread).
MULTIPART = {
    "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
    "Cookie": "csrftoken=" + "a" * 32,
}


def test_an_announced_300_mib_upload_is_refused_before_it_is_sent(server):
    with TempWatch(server.temp) as watch:
        started = time.perf_counter()
        answer = request(
            server.port,
            "POST",
            ANSWER_PAGE,
            hostile_file(),
            headers={**MULTIPART, "Accept-Language": "en"},
            content_length=HOSTILE + 200,
        )
        elapsed = time.perf_counter() - started
    assert answer.status == 413, (answer.status, answer.body[:500], server.output()[-2000:])
    assert answer.headers["content-type"].startswith("text/html")
    text = answer.body.decode()
    # Above MAMORI_REQUEST_MAX_BYTES: refused before the page's own limit is looked at.
    assert "The request is larger than the limit of 20,971,520 bytes (20.0" in text
    assert answer.sent < 16 * MIB  # what the client pushed before the answer arrived
    assert watch.peak == 0
    assert elapsed < 2.0, elapsed
    print(f"announced 300 MiB: 413 after {elapsed:.3f} s, {answer.sent:,} bytes sent, temp +0")


def test_an_upload_above_the_pages_limit_is_refused_before_it_is_sent(server):
    """13 MiB to the answer page: under the global maximum, above the page's 10 MB evidence
    file plus 2 MiB for the form."""
    with TempWatch(server.temp) as watch:
        answer = request(
            server.port,
            "POST",
            ANSWER_PAGE,
            hostile_file(13 * MIB),
            headers={**MULTIPART, "Accept-Language": "en"},
            content_length=13 * MIB + 200,
        )
    assert answer.status == 413
    assert b"larger than the limit of 12,582,912 bytes (12.0" in answer.body
    assert watch.peak == 0


def test_a_chunked_300_mib_upload_stops_at_the_limit(server):
    """Streamed from a generator without Content-Length: the server reads up to the page's
    limit (the 2 MiB questionnaire and its form) and answers 413; the temporary directory
    never holds more than that one limit."""
    with TempWatch(server.temp) as watch:
        started = time.perf_counter()
        answer = request(
            server.port,
            "POST",
            OFFLINE_PAGE,
            hostile_file(),
            headers={**MULTIPART, "Accept-Language": "ja"},
        )
        elapsed = time.perf_counter() - started
    assert answer.status == 413, (answer.status, answer.body[:500], server.output()[-2000:])
    text = answer.body.decode()
    # 2 MiB file + 2 MiB for the form, in the visitor's language
    assert "リクエストが上限の 4,194,304 バイト（4.0" in text
    assert answer.sent < 64 * MIB
    assert watch.peak <= 4 * MIB, watch.peak
    print(
        f"chunked 300 MiB: 413 after {elapsed:.3f} s, {answer.sent:,} bytes sent, "
        f"temp peak +{watch.peak:,} bytes"
    )


def test_the_api_answers_413_in_json_for_chunked_and_announced_bodies(server):
    for content_length in (None, 18 * MIB):  # above the agent's 16 MiB, below the global 20
        answer = request(
            server.port,
            "POST",
            "/api/evidence/",
            hostile_file(),
            headers={"Content-Type": "application/json", "Accept-Language": "en"},
            content_length=content_length,
        )
        assert answer.status == 413, (answer.status, answer.body[:300])
        assert answer.headers["content-type"] == "application/json"
        refusal = json.loads(answer.body)
        assert refusal["code"] == "too_large"
        assert "16,777,216 bytes" in refusal["detail"]


def test_pages_without_a_file_take_no_more_than_the_form_limit(server):
    """The sign-in page takes no file: a multipart body above Django's form-data limit
    (2 MiB) is refused, announced or chunked."""
    for content_length in (3 * MIB, None):
        answer = request(
            server.port,
            "POST",
            "/accounts/login/",
            hostile_file(3 * MIB),
            headers={**MULTIPART, "Accept-Language": "en"},
            content_length=content_length,
        )
        assert answer.status == 413, (answer.status, answer.body[:300])
        assert b"2,097,152 bytes" in answer.body


def test_the_global_maximum_is_checked_before_anything_else(server):
    """Above MAMORI_REQUEST_MAX_BYTES (20 MiB) even a URL that does not exist answers 413."""
    answer = request(
        server.port,
        "PUT",
        "/no/such/page/",
        hostile_file(),
        headers={"Accept-Language": "en"},
        content_length=HOSTILE,
    )
    assert answer.status == 413
    assert b"20,971,520 bytes" in answer.body


# --- Within the limit, a chunked body reaches the view whole --------------------------------


def call_wsgi(environ: dict) -> tuple[str, bytes]:
    """Django's own WSGI handler, called as a server that de-chunks bodies (gunicorn) does."""
    answer: dict = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = status
        answer["headers"] = dict(headers)

    # As Django's test client does: the test's database connection stays open across the
    # request (the handler's signals would close it).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        content = b"".join(WSGIHandler()(environ, start_response))
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return answer["status"], answer["headers"], content


def wsgi_environ(path: str, body: bytes, headers: dict[str, str], *, terminated: bool) -> dict:
    import io

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if terminated:
        environ["wsgi.input_terminated"] = True
    for key, value in headers.items():
        name = key.upper().replace("-", "_")
        environ[name if name == "CONTENT_TYPE" else f"HTTP_{name}"] = value
    return environ


@pytest.mark.django_db
def test_a_chunked_upload_within_the_limit_is_received_whole(world):
    """Without the limit's reading, Django took a body without Content-Length as empty: an
    agent streaming its evidence got "the body is empty"."""
    from mamori.accounts.models import TokenKind
    from mamori.verification.models import Evidence
    from tests.conftest import api_token
    from tests.verification.factory import debian12_evidence

    key = api_token(world.admin, world.bank, TokenKind.AGENT)
    evidence = debian12_evidence()
    environ = wsgi_environ(
        "/api/evidence/",
        json.dumps(evidence).encode(),
        {
            "Content-Type": "application/json",
            "Authorization": f"Token {key}",
            "Accept-Language": "en",
        },
        terminated=True,
    )
    with TestCase.captureOnCommitCallbacks(execute=True):  # the evaluation, after the commit
        status, _headers, content = call_wsgi(environ)
    assert status.startswith("202"), (status, content[:300])
    assert Evidence.objects.get().payload == evidence


def test_a_chunked_body_the_server_did_not_dechunk_is_411():
    status, _headers, content = call_wsgi(
        wsgi_environ("/api/evidence/", b"5\r\nhello\r\n0\r\n\r\n", {}, terminated=False)
    )
    assert status.startswith("411"), status
    assert json.loads(content)["code"] == "length_required"
