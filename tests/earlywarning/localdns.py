"""A real DNS server on 127.0.0.1 for the tests (dnslib), answering over UDP and TCP on one port.

It serves the records it is given and answers NXDOMAIN for other names, NOERROR with no answer
(NODATA) for a name that exists without the asked type, and SERVFAIL for names listed as
failing. Answers over UDP larger than 512 bytes are truncated, as a classic server's are, so a
large record is fetched again over TCP — the path real resolvers take.

Also :func:`silent_dns_port`: a port where a UDP socket is bound and a TCP socket listens but
nothing ever answers, to prove that look-ups give up in bounded time.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping

from dnslib import QTYPE, RCODE, RR, TXT, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

HOST = "127.0.0.1"

TxtValue = str | list[str]  # one string, or the character-strings of one multi-string record


class RecordsResolver(BaseResolver):
    """Answers from ``txt`` (name → TXT records) and ``servfail`` (names that fail)."""

    def __init__(self) -> None:
        self.txt: dict[str, list[TxtValue]] = {}
        self.servfail: set[str] = set()
        self.queries: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).lower()
        qtype = QTYPE[request.q.qtype]
        with self._lock:
            self.queries.append((name, handler.protocol))
            records = self.txt.get(name)
            failing = name in self.servfail
        if failing:
            reply.header.rcode = RCODE.SERVFAIL
        elif records is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif qtype == "TXT":
            for value in records:
                strings = [value] if isinstance(value, str) else list(value)
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(strings), ttl=60))
        return reply


class ClassicHandler(DNSHandler):
    """Truncates UDP answers larger than 512 bytes, setting TC so that the client retries over
    TCP. dnslib's own truncation drops the question too, which clients reject as an answer to
    another question; this one keeps it, as real servers do."""

    def get_reply(self, data):
        request = DNSRecord.parse(data)
        reply = self.server.resolver.resolve(request, self)
        packed = reply.pack()
        if self.protocol == "udp" and len(packed) > 512:
            truncated = reply.truncate()
            truncated.add_question(*reply.questions)
            packed = truncated.pack()
        return packed


class LocalDNSServer:
    def __init__(self, resolver: RecordsResolver, port: int) -> None:
        self.resolver = resolver
        self.host = HOST
        self.port = port
        quiet = DNSLogger(log="-request,-reply,-truncated,-error", prefix=False)
        self._servers = [
            DNSServer(
                resolver, address=HOST, port=port, tcp=tcp, logger=quiet, handler=ClassicHandler
            )
            for tcp in (False, True)
        ]

    def serve(self, txt: Mapping[str, Iterable[TxtValue]], *, servfail: Iterable[str] = ()) -> None:
        """Replace what the server answers; names are absolute (trailing dot) or not."""

        def absolute(name: str) -> str:
            return name.lower().rstrip(".") + "."

        with self.resolver._lock:
            self.resolver.txt = {absolute(name): list(values) for name, values in txt.items()}
            self.resolver.servfail = {absolute(name) for name in servfail}
            self.resolver.queries.clear()

    def start(self) -> None:
        for server in self._servers:
            # dnslib's start_thread polls for shutdown every 0.5 s; a short poll ends it at once.
            server.thread = threading.Thread(
                target=server.server.serve_forever, args=(0.05,), daemon=True
            )
            server.thread.start()

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()


def _free_udp_and_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (the kernel picks the UDP one)."""
    for _attempt in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((HOST, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((HOST, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free for both UDP and TCP on 127.0.0.1")


@contextlib.contextmanager
def local_dns_server() -> Iterator[LocalDNSServer]:
    for _attempt in range(5):
        port = _free_udp_and_tcp_port()
        try:
            server = LocalDNSServer(RecordsResolver(), port)
        except OSError:  # taken between the probe and the bind by another test process
            continue
        break
    else:
        raise RuntimeError("could not start the local DNS server")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def silent_dns_port() -> Iterator[int]:
    """A UDP socket bound and a TCP socket listening on one port, neither ever answering."""
    port = _free_udp_and_tcp_port()
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
    ):
        udp.bind((HOST, port))
        tcp.bind((HOST, port))
        tcp.listen()
        yield port
