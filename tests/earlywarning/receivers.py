"""Real webhook receivers for the tests: HTTP(S) servers on loopback started by the test.

:func:`tls_certificate` makes a self-signed certificate with the openssl command-line tool
(for ``hooks.example.com``, ``127.0.0.1`` and ``::1``); :func:`receiver` serves with one
behaviour — answer 200, answer 500, redirect, hang after reading the request, drip the answer
one byte at a time, send a huge body, or answer something that is not HTTP — and records every
request with the TLS server name (SNI) the client sent. :func:`silent_listener` is a port that
accepts TCP connections and never says a word (a TLS handshake that never completes).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import BaseRequestHandler, ThreadingTCPServer

RECEIVER_NAME = "hooks.example.com"


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate alone."""
        context = ssl.create_default_context(cafile=str(self.cert))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


def tls_certificate(directory: Path) -> Certificate:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the webhook delivery tests need the openssl command-line tool")
    cert, key = directory / "receiver.pem", directory / "receiver.key"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={RECEIVER_NAME}",
            "-addext",
            f"subjectAltName=DNS:{RECEIVER_NAME},IP:127.0.0.1,IP:::1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return Certificate(cert=cert, key=key)


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


@dataclass
class Receiver:
    host: str
    port: int
    tls: bool
    requests: list[Received] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)  # SNI of each TLS handshake
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many deliveries at once must not find the backlog full
    block_on_close = False  # a hanging handler must not hold the test's teardown

    def handle_error(self, request, client_address):
        pass  # clients that give up (the point of the timeout tests) are not errors


class _Server6(_Server):
    address_family = socket.AF_INET6


def _handler(record: Receiver, behaviour: str, location: str | None, answer=None):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as separate writes; with Nagle's algorithm the second waits
        # for the client's delayed ACK, 40 ms per request.
        disable_nagle_algorithm = True

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            received = Received(
                method="POST",
                path=self.path,
                headers={key.lower(): value for key, value in self.headers.items()},
                body=body,
            )
            record.requests.append(received)
            if answer is not None:
                status = answer(received)
                self._answer(status, b"ok" if status < 300 else b"boom: the receiver failed")
            elif behaviour == "hang":
                record.stop.wait(30)
            elif behaviour == "drip":
                self._drip()
            elif behaviour == "huge":
                self._huge()
            elif behaviour == "redirect":
                self._answer(302, b"moved", {"Location": location or "/"})
            elif behaviour == "error":
                self._answer(500, b"boom: the receiver failed")
            else:
                self._answer(200, b"ok")

        def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None):
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _drip(self):
            """A status line, then one header byte every 0.2 s: each read succeeds well
            within any per-read timeout, the answer never completes."""
            with contextlib.suppress(OSError):
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                self.wfile.flush()
                while not record.stop.wait(0.2):
                    self.wfile.write(b"a")
                    self.wfile.flush()

        def _huge(self):
            chunk = b"x" * 65536
            with contextlib.suppress(OSError):
                self.send_response(200)
                self.send_header("Content-Length", str(len(chunk) * 160))  # 10 MiB
                self.end_headers()
                for _chunk in range(160):
                    self.wfile.write(chunk)

        def log_message(self, *args):
            pass

    return Handler


@contextlib.contextmanager
def receiver(
    behaviour: str = "ok",
    *,
    certificate: Certificate | None = None,
    host: str = "127.0.0.1",
    location: str | None = None,
    answer: Callable[[Received], int] | None = None,
) -> Iterator[Receiver]:
    """A receiver on ``host`` (TLS when ``certificate`` is given) with ``behaviour``: ``ok``,
    ``error``, ``redirect`` (to ``location``), ``hang``, ``drip`` or ``huge``; or, with
    ``answer``, the status that function gives for each request (called from the request's
    thread)."""
    server_class = _Server6 if ":" in host else _Server
    record = Receiver(host=host, port=0, tls=certificate is not None)
    server = server_class((host, 0), _handler(record, behaviour, location, answer))
    record.port = server.server_address[1]
    if certificate is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate.cert, certificate.key)
        context.sni_callback = lambda _socket, name, _context: record.server_names.append(name)
        # The handshake happens on the first read, in the request's thread, so a client that
        # stalls it holds only its own thread, not the server's accept loop.
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield record
    finally:
        record.stop.set()
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def not_http_server() -> Iterator[int]:
    """A plain TCP server on 127.0.0.1 that answers any request with a line that is not HTTP."""

    class Garbage(BaseRequestHandler):
        def handle(self):
            with contextlib.suppress(OSError):
                self.request.recv(65536)
                self.request.sendall(b"SSH-2.0-OpenSSH_9.6 this is not HTTP\r\n\r\n")
                time.sleep(0.1)

    server = ThreadingTCPServer(("127.0.0.1", 0), Garbage)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port on 127.0.0.1 whose connections the kernel accepts and nobody ever reads."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 and ::1 where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    yield port
