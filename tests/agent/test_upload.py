"""``mamori-agent upload`` against an HTTP(S) server in a thread: what it sends, what it prints,
and how it fails (HTTP errors with the server's reason, TLS, timeouts, refused connections)."""

from __future__ import annotations

import contextlib
import gzip
import itertools
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mamori_agent.cli import main

from .conftest import agent_environment

TOKEN = "agt_0123456789abcdef-SECRET"


class Recorder:
    """What the server saw, and what it answers next."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 201
        self.body: bytes = json.dumps(
            {"host": 3, "evidence": 7, "duplicate": False, "controls": {"firewalls": "pass"}}
        ).encode()
        self.content_type = "application/json"
        self.headers: dict[str, str] = {}
        self.delay = 0.0
        # What GET (the status URL) answers, in turn: (status, body, headers); the last repeats.
        self.statuses: list[tuple[int, dict, dict]] = []
        self.polls: list[dict] = []


def make_handler(recorder: Recorder):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            recorder.requests.append(
                {"path": self.path, "headers": dict(self.headers.items()), "body": body}
            )
            if recorder.delay:
                time.sleep(recorder.delay)
            self.send_response(recorder.status)
            self.send_header("Content-Type", recorder.content_type)
            self.send_header("Content-Length", str(len(recorder.body)))
            for key, value in recorder.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(recorder.body)

        def do_GET(self):
            recorder.polls.append(
                {"path": self.path, "headers": dict(self.headers.items()), "at": time.monotonic()}
            )
            status, body, headers = (
                recorder.statuses.pop(0) if len(recorder.statuses) > 1 else recorder.statuses[0]
            )
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args):
            pass

    return Handler


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # failed TLS handshakes are the point of some tests


@contextlib.contextmanager
def serve(tls: ssl.SSLContext | None = None):
    recorder = Recorder()
    server = QuietServer(("127.0.0.1", 0), make_handler(recorder))
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield recorder, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def evidence_file(tmp_path_factory, debian_root) -> Path:
    path = tmp_path_factory.mktemp("upload") / "evidence.json"
    assert main(["collect", "--root", str(debian_root), "-o", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> dict[str, Path]:
    """A test CA and a server certificate for localhost signed by it, made with openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the TLS tests need the openssl command-line tool")
    directory = tmp_path_factory.mktemp("tls")

    def run(*arguments: str) -> None:
        subprocess.run([openssl, *arguments], cwd=directory, check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Mamori Test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    run(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    )
    (directory / "server.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    run(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    )
    return {name: directory / name for name in ("ca.pem", "server.pem", "server.key")}


def upload(port: int, *extra: str, scheme: str = "http", host: str = "127.0.0.1") -> list[str]:
    return ["upload", "--url", f"{scheme}://{host}:{port}", "--token", TOKEN, *extra]


def one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert TOKEN not in text
    return lines[0]


def test_upload_sends_gzip_json_with_the_token(evidence_file, capsys):
    with serve() as (recorder, port):
        assert main(upload(port, "--file", str(evidence_file))) == 0
    out = one_line(capsys.readouterr().out)
    assert out == "mamori-agent: evidence 7 for host 3: stored (HTTP 201); firewalls=pass"
    (request,) = recorder.requests
    assert request["path"] == "/api/evidence/"
    headers = {key.lower(): value for key, value in request["headers"].items()}
    assert headers["content-encoding"] == "gzip"
    assert headers["content-type"] == "application/json"
    assert headers["authorization"] == f"Token {TOKEN}"
    assert json.loads(gzip.decompress(request["body"])) == json.loads(evidence_file.read_text())


def test_duplicate_and_explicit_endpoint(evidence_file, capsys):
    with serve() as (recorder, port):
        recorder.status = 200
        recorder.body = json.dumps({"host": 3, "evidence": 7, "duplicate": True}).encode()
        url = f"http://localhost:{port}/tenant/api/evidence/?v=1"
        assert main(["upload", "--url", url, "--token", TOKEN, "--file", str(evidence_file)]) == 0
    assert recorder.requests[0]["path"] == "/tenant/api/evidence/?v=1"
    assert "already received (duplicate) (HTTP 200)" in one_line(capsys.readouterr().out)


# --- A server that evaluates in a worker: 202 and a status URL to poll ------------------------


def accepted(recorder: Recorder, port: int, *, status_url: str | None = None) -> str:
    """The server accepts the upload (202) and points to its status; returns that URL."""
    url = status_url or f"http://127.0.0.1:{port}/api/evidence/uploads/12/"
    recorder.status = 202
    recorder.body = json.dumps(
        {"upload": 12, "status": "pending", "status_url": url, "duplicate": False, "host": None}
    ).encode()
    recorder.headers = {"Location": url, "Retry-After": "0"}
    return url


PENDING = (200, {"upload": 12, "status": "pending"}, {"Retry-After": "0"})
DONE = (
    200,
    {
        "upload": 12,
        "status": "done",
        "host": 3,
        "evidence": 7,
        "controls": {"firewalls": "pass", "malware_protection": "fail"},
    },
    {},
)


def test_an_accepted_upload_is_polled_until_evaluated(evidence_file, capsys):
    with serve() as (recorder, port):
        url = accepted(recorder, port)
        recorder.statuses = [PENDING, PENDING, DONE]
        started = time.monotonic()
        assert main(upload(port, "--file", str(evidence_file))) == 0
        elapsed = time.monotonic() - started
    out = one_line(capsys.readouterr().out)
    assert out == (
        "mamori-agent: evidence 7 for host 3: stored and evaluated (HTTP 202); "
        "firewalls=pass, malware_protection=fail"
    )
    assert [poll["path"] for poll in recorder.polls] == ["/api/evidence/uploads/12/"] * 3
    for poll in recorder.polls:  # the same token, to the same server
        assert poll["headers"]["Authorization"] == f"Token {TOKEN}"
    assert url.endswith(recorder.polls[0]["path"])
    # Retry-After: 0 is kept at the lower bound (half a second) between polls.
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(recorder.polls)]
    assert all(gap >= 0.45 for gap in gaps), gaps
    assert elapsed < 5


def test_a_refused_evaluation_fails_with_the_reason(evidence_file, capsys):
    with serve() as (recorder, port):
        accepted(recorder, port)
        recorder.statuses = [
            (
                200,
                {
                    "upload": 12,
                    "status": "failed",
                    "code": "invalid_evidence",
                    "detail": "$.packages.items[3].name: 5 is not of type 'string'",
                },
                {},
            )
        ]
        assert main(upload(port, "--file", str(evidence_file))) == 1
    err = one_line(capsys.readouterr().err)
    assert err == (
        "mamori-agent: upload failed: the server refused the evidence (invalid_evidence): "
        "$.packages.items[3].name: 5 is not of type 'string'"
    )


def test_the_wait_is_bounded(evidence_file, capsys):
    """Still pending when --wait runs out: the evidence is stored, so this is no failure; the
    operator gets the status URL."""
    with serve() as (recorder, port):
        url = accepted(recorder, port)
        recorder.statuses = [PENDING]
        started = time.monotonic()
        assert main(upload(port, "--file", str(evidence_file), "--wait", "1.5")) == 0
        elapsed = time.monotonic() - started
    out = one_line(capsys.readouterr().out)
    assert out == (
        f"mamori-agent: upload 12 accepted (HTTP 202); still being evaluated after 1.5 s; "
        f"status: {url}"
    )
    assert 1.4 < elapsed < 3.5, elapsed
    assert 2 <= len(recorder.polls) <= 4


def test_no_wait(evidence_file, capsys):
    with serve() as (recorder, port):
        url = accepted(recorder, port)
        recorder.statuses = [DONE]
        assert main(upload(port, "--file", str(evidence_file), "--wait", "0")) == 0
    assert recorder.polls == []
    out = one_line(capsys.readouterr().out)
    assert out == f"mamori-agent: upload 12 accepted (HTTP 202); being evaluated; status: {url}"


def test_a_server_error_while_polling_is_tried_again(evidence_file, capsys):
    with serve() as (recorder, port):
        accepted(recorder, port)
        recorder.statuses = [(503, {"detail": "restarting"}, {}), PENDING, DONE]
        assert main(upload(port, "--file", str(evidence_file))) == 0
    assert "stored and evaluated (HTTP 202)" in one_line(capsys.readouterr().out)
    assert len(recorder.polls) == 3


def test_an_answer_already_evaluated_is_not_polled(evidence_file, capsys):
    """A server without a broker evaluates before answering: 202 with the status done."""
    with serve() as (recorder, port):
        recorder.status = 202
        recorder.body = json.dumps({**DONE[1], "duplicate": False}).encode()
        assert main(upload(port, "--file", str(evidence_file))) == 0
    assert recorder.polls == []
    assert "stored and evaluated (HTTP 202)" in one_line(capsys.readouterr().out)


@pytest.mark.parametrize(
    "elsewhere",
    ["http://attacker.example/api/evidence/uploads/12/", "https://127.0.0.1:{port}/status/"],
    ids=["other-host", "other-scheme"],
)
def test_a_status_url_on_another_server_is_not_followed(evidence_file, capsys, elsewhere):
    """The token is only ever sent to the server given with --url."""
    with serve() as (recorder, port):
        accepted(recorder, port, status_url=elsewhere.format(port=port))
        recorder.statuses = [DONE]
        assert main(upload(port, "--file", str(evidence_file))) == 1
    assert recorder.polls == []
    assert "not sending the token there" in one_line(capsys.readouterr().err)


def test_a_relative_status_url_is_on_the_same_server(evidence_file, capsys):
    with serve() as (recorder, port):
        accepted(recorder, port, status_url="/api/evidence/uploads/12/")
        recorder.statuses = [DONE]
        assert main(upload(port, "--file", str(evidence_file))) == 0
    assert [poll["path"] for poll in recorder.polls] == ["/api/evidence/uploads/12/"]


def test_upload_collects_first(debian_root, capsys):
    with serve() as (recorder, port):
        assert main(upload(port, "--root", str(debian_root))) == 0
    evidence = json.loads(gzip.decompress(recorder.requests[0]["body"]))
    assert (evidence["mode"], evidence["host"]["hostname"]) == ("root", "bank-web-01")
    one_line(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected"),
    [
        (
            400,
            {"detail": "packages.items[3].version: None is not of type 'string'"},
            None,
            "HTTP 400: packages.items[3].version: None is not of type 'string'",
        ),
        (401, {"detail": "Invalid token."}, None, "HTTP 401: Invalid token."),
        (
            413,
            {"detail": "evidence larger than 16 MiB"},
            None,
            "HTTP 413: evidence larger than 16 MiB",
        ),
        (
            500,
            b"<html><body>Server Error\n(500)</body></html>",
            "text/html",
            "HTTP 500: Internal Server Error",
        ),
        (
            400,
            {"detail": {"schema": ["wrong", "version"]}},
            None,
            'HTTP 400: {"schema": ["wrong", "version"]}',
        ),
    ],
)
def test_http_errors_give_the_servers_reason(
    evidence_file, capsys, status, body, content_type, expected
):
    with serve() as (recorder, port):
        recorder.status = status
        recorder.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        recorder.content_type = content_type or "application/json"
        assert main(upload(port, "--file", str(evidence_file))) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert one_line(captured.err) == f"mamori-agent: upload failed: {expected}"


def test_a_redirect_is_not_followed(evidence_file, capsys):
    with serve() as (recorder, port):
        recorder.status = 302
        recorder.headers = {"Location": "http://elsewhere.example/api/evidence/"}
        assert main(upload(port, "--file", str(evidence_file))) == 1
    assert len(recorder.requests) == 1
    assert "redirected (HTTP 302) to http://elsewhere.example/api/evidence/" in one_line(
        capsys.readouterr().err
    )


def test_an_answer_that_is_not_json(evidence_file, capsys):
    with serve() as (recorder, port):
        recorder.body = b"ok"
        assert main(upload(port, "--file", str(evidence_file))) == 1
    assert one_line(capsys.readouterr().err).endswith("HTTP 201: the server's answer is not JSON")


def test_connection_refused(evidence_file, capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(upload(port, "--file", str(evidence_file))) == 1
    assert one_line(capsys.readouterr().err) == "mamori-agent: upload failed: connection refused"


def test_timeout(evidence_file, capsys):
    with serve() as (recorder, port):
        recorder.delay = 2.0
        started = time.monotonic()
        assert main(upload(port, "--file", str(evidence_file), "--timeout", "0.3")) == 1
        assert time.monotonic() - started < 2.0
    assert one_line(capsys.readouterr().err) == "mamori-agent: upload failed: timed out after 0.3 s"


def test_tls_needs_a_trusted_certificate(evidence_file, certificates, capsys):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates["server.pem"], certificates["server.key"])
    with serve(tls=context) as (recorder, port):
        assert (
            main(upload(port, "--file", str(evidence_file), scheme="https", host="localhost")) == 1
        )
        error = one_line(capsys.readouterr().err)
        assert error.startswith("mamori-agent: upload failed: TLS certificate verification failed")
        assert recorder.requests == []
        assert (
            main(
                upload(
                    port,
                    "--file",
                    str(evidence_file),
                    "--ca-bundle",
                    str(certificates["ca.pem"]),
                    scheme="https",
                    host="localhost",
                )
            )
            == 0
        )
        assert one_line(capsys.readouterr().out).startswith("mamori-agent: evidence 7")
        assert len(recorder.requests) == 1
        # the certificate names localhost and 127.0.0.1, not this name
        assert (
            main(
                upload(
                    port,
                    "--file",
                    str(evidence_file),
                    "--ca-bundle",
                    str(certificates["ca.pem"]),
                    scheme="https",
                    host="127.0.0.2",
                )
            )
            == 1
        )
        assert "upload failed:" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize("interpreter", ["python39", "python311"])
def test_tls_in_a_child_process_with_a_clean_environment(
    evidence_file, certificates, interpreter, request
):
    """The same as the operator runs it: one line on stdout, nothing on stderr."""
    python = request.getfixturevalue(interpreter)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates["server.pem"], certificates["server.key"])
    with serve(tls=context) as (recorder, port):
        untrusted = subprocess.run(
            [
                python,
                "-m",
                "mamori_agent",
                "upload",
                "--url",
                f"https://localhost:{port}",
                "--file",
                str(evidence_file),
            ],
            capture_output=True,
            text=True,
            env=agent_environment(MAMORI_AGENT_TOKEN=TOKEN),
            check=False,
        )
        assert untrusted.returncode == 1
        assert "TLS certificate verification failed" in one_line(untrusted.stderr)
        result = subprocess.run(
            [
                python,
                "-m",
                "mamori_agent",
                "upload",
                "--url",
                f"https://localhost:{port}",
                "--file",
                str(evidence_file),
                "--ca-bundle",
                str(certificates["ca.pem"]),
            ],
            capture_output=True,
            text=True,
            env=agent_environment(MAMORI_AGENT_TOKEN=TOKEN),
            check=False,
        )
    assert (result.returncode, result.stderr) == (0, "")
    one_line(result.stdout)
    assert json.loads(gzip.decompress(recorder.requests[0]["body"])) == json.loads(
        evidence_file.read_text()
    )


def test_token_sources(evidence_file, tmp_path, capsys, monkeypatch):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with serve() as (recorder, port):
        base = ["upload", "--url", f"http://127.0.0.1:{port}", "--file", str(evidence_file)]
        assert main([*base, "--token-file", str(token_file)]) == 0
        monkeypatch.setenv("MAMORI_AGENT_TOKEN", TOKEN)
        assert main(base) == 0
    assert [r["headers"]["Authorization"] for r in recorder.requests] == [f"Token {TOKEN}"] * 2
    assert TOKEN not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--url", "http://mamori.example.jp", "--token", "t"],
            "plain http:// is refused except for 127.0.0.1, localhost and ::1",
        ),
        (["--url", "ftp://mamori.example.jp", "--token", "t"], "--url must be an https:// URL"),
        (
            ["--url", "https://user:pw@mamori.example.jp", "--token", "t"],
            "must not contain credentials",
        ),
        (["--url", "https://mamori.example.jp:99999", "--token", "t"], "--url is not a valid URL"),
        (
            ["--url", "https://mamori.example.jp"],
            "no token: give --token, --token-file or set MAMORI_AGENT_TOKEN",
        ),
        (
            ["--url", "https://mamori.example.jp", "--token", "two words"],
            "the token is empty or contains spaces",
        ),
        (
            ["--url", "https://mamori.example.jp", "--token-file", "/nonexistent/token"],
            "--token-file /nonexistent/token: no such file or directory",
        ),
        (
            ["--url", "https://mamori.example.jp", "--token", "t", "--timeout", "0"],
            "--timeout must be positive",
        ),
        (
            [
                "--url",
                "https://mamori.example.jp",
                "--token",
                "t",
                "--ca-bundle",
                "/nonexistent.pem",
            ],
            "--ca-bundle /nonexistent.pem: no such file",
        ),
        (
            ["--url", "https://mamori.example.jp", "--token", "t", "--file", "/nonexistent.json"],
            "--file /nonexistent.json: no such file or directory",
        ),
    ],
)
def test_usage_errors(arguments, message, capsys, monkeypatch):
    monkeypatch.delenv("MAMORI_AGENT_TOKEN", raising=False)
    assert main(["upload", *arguments]) == 2
    captured = capsys.readouterr()
    assert message in one_line(captured.err)
    assert captured.out == ""


def test_files_that_are_not_evidence(tmp_path, capsys):
    cases = {
        "not-json": b"{not json",
        "binary": b"\xff\xfe\x00",
        "list": b"[]",
        "other-schema": b'{"schema": "mamori.evaluation/1"}',
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        command = [
            "upload",
            "--url",
            "https://mamori.example.jp",
            "--token",
            "t",
            "--file",
            str(path),
        ]
        assert main(command) == 2, name
        assert one_line(capsys.readouterr().err).startswith(f"mamori-agent: --file {path}: not")


def test_a_bad_ca_bundle(tmp_path, evidence_file, capsys):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    command = [
        "upload",
        "--url",
        "https://localhost:1",
        "--token",
        "t",
        "--file",
        str(evidence_file),
        "--ca-bundle",
        str(bundle),
    ]
    assert main(command) == 2
    assert "not a readable PEM CA bundle" in one_line(capsys.readouterr().err)
