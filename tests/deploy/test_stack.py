"""The deployment of deploy/, started whole on loopback and driven over HTTPS.

Debian's nginx with a self-signed certificate made here (openssl), gunicorn, a Celery worker and
beat on Redis database 13 and the test database, all started by ``honcho start`` on
deploy/Procfile with the nginx templates rendered by deploy/nginx/render.sh (bench/stack.py
follows deploy/README.md). One stack serves the whole module.

The module's data is committed (the stack's processes must see it) and removed when the module
ends. The tests read and write only through the stack; the transaction pytest-django opens
around each test stays empty, and on SQLite it is made a deferred one, which takes no lock
(an immediate one, the suite's setting, would hold the write lock the stack needs).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import redis
from bench.stack import ROOT, Stack
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.db import connection
from pypdf import PdfReader

from mamori.accounts.models import TokenKind
from mamori.catalogue.services import load_bundled
from tests.certificates import certificate_expiring, database_url_of_test_db, days_from_today
from tests.conftest import PASSWORD, World, api_token

# One stack for the module: under pytest-xdist its tests all go to one worker
# (ONE_WORKER_MODULES in tests/conftest.py), so only one stack ever uses Redis database 13.
pytestmark = [pytest.mark.services, pytest.mark.scale_out, pytest.mark.django_db]

# The Redis database reserved for this module (other modules use others).
REDIS_URL = "redis://127.0.0.1:6379/13"
HSTS = "max-age=31536000; includeSubDomains"
MiB = 1024 * 1024


@dataclass
class Deployed:
    stack: Stack
    world: World
    assessment_id: int
    assessor_token: str
    certificate_number: str

    def client(self, **options) -> httpx.Client:
        transport = httpx.HTTPTransport(verify=self.stack.tls_context(), **options)
        return httpx.Client(base_url=self.stack.site_url, transport=transport, timeout=20)

    @contextlib.contextmanager
    def logged_in(self, user) -> Iterator[httpx.Client]:
        with self.client() as client:
            self.log_in(client, user)
            yield client

    def log_in(self, client: httpx.Client, user) -> None:
        login = client.get("/accounts/login/")
        assert login.status_code == 200
        answer = client.post(
            "/accounts/login/",
            data={
                "username": user.username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
            # A browser's POST carries its origin; Django checks it against the forwarded Host.
            headers={"Origin": self.stack.site_url},
        )
        assert answer.status_code == 302, answer.text[:500]
        assert "sessionid" in client.cookies

    def web_log(self) -> str:
        return "\n".join(self.stack.lines_of("web"))

    def access_log(self) -> str:
        return (self.stack.nginx_dir / "access.log").read_text(encoding="utf-8")


def commit_world(database_blocker) -> tuple[World, int, str, str]:
    """The bank's assessment submitted and marked, ready for a decision; the users who sign
    in over HTTPS get a password the stack verifies (the suite's fast hasher is not in the
    production list the stack runs with)."""
    with database_blocker.unblock():
        world = World()
        for user in (world.admin, world.other_admin):
            user.password = make_password(PASSWORD, hasher="argon2")
            user.save(update_fields=["password"])
        assessment = world.mark_all(world.submitted())
        token = api_token(world.assessor, world.body, kind=TokenKind.USER)
        certificate = certificate_expiring(world, world.other_bank, days_from_today(200))
    return world, assessment.pk, token, certificate.number


@pytest.fixture(scope="module")
def deployed(django_db_setup, django_db_blocker, tmp_path_factory):
    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    stack = None
    immediate = getattr(connection, "transaction_mode", None)
    try:
        world, assessment_id, token, number = commit_world(django_db_blocker)
        with django_db_blocker.unblock():
            database_url = database_url_of_test_db()
            connection.ensure_connection()
        stack = Stack(
            tmp_path_factory.mktemp("stack"),
            database_url,
            REDIS_URL,
            # Beat sends the reminder task every 2 s, so its work shows while the module runs.
            settings={"MAMORI_REMINDER_INTERVAL_SECONDS": "2"},
        ).prepare()
        if connection.vendor == "sqlite":
            connection.transaction_mode = "DEFERRED"
        stack.start()
        yield Deployed(stack, world, assessment_id, token, number)
    finally:
        if stack is not None:
            stack.stop()
        if connection.vendor == "sqlite":
            connection.transaction_mode = immediate
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)
            load_bundled()
        broker.flushdb()
        broker.close()


def test_plain_http_is_redirected_to_https(deployed):
    plain = f"http://127.0.0.1:{deployed.stack.http_port}"
    with httpx.Client(timeout=10) as client:
        for method in ("GET", "POST"):
            answer = client.request(
                method,
                f"{plain}/accounts/login/?next=/certificates/",
                headers={"Host": "localhost"},
            )
            assert answer.status_code == 301
            assert answer.headers["location"] == (
                f"{deployed.stack.site_url}/accounts/login/?next=/certificates/"
            )
    # Only nginx answered: the application never saw a plain-HTTP request.
    assert "next=/certificates/" not in deployed.web_log()


def test_every_https_answer_has_one_hsts_header_with_subdomains(deployed):
    with deployed.client() as client:
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok"}
        static = client.get("/static/mamori/app.css")
        missing = client.get("/no-such-page/")
        for answer in (health, static, missing):
            assert answer.headers.get_list("strict-transport-security") == [HSTS]
            assert answer.headers.get_list("x-content-type-options") == ["nosniff"]
        assert missing.status_code == 404


def test_tls_with_the_certificate_made_here(deployed):
    with deployed.client() as client:
        answer = client.get("/healthz")
        tls = answer.extensions["network_stream"].get_extra_info("ssl_object")
        assert tls.version() == "TLSv1.3"
        assert tls.getpeercert()["subject"] == ((("commonName", "localhost"),),)
    # A client that trusts only the system's authorities refuses the self-signed certificate.
    with (
        httpx.Client(base_url=deployed.stack.site_url) as stranger,
        pytest.raises(httpx.ConnectError),
    ):
        stranger.get("/healthz")


def test_login_over_https_with_secure_cookies(deployed):
    with deployed.client() as client:
        page = client.get("/accounts/login/")
        csrf_cookie = cookie_attributes(page, "csrftoken")
        assert {"secure", "httponly", "samesite=lax"} <= csrf_cookie
        answer = client.post(
            "/accounts/login/",
            data={
                "username": "alice",
                "password": PASSWORD,
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
            headers={"Origin": deployed.stack.site_url},
        )
        assert answer.status_code == 302
        assert answer.headers["location"] == "/"
        assert {"secure", "httponly", "samesite=lax"} <= cookie_attributes(answer, "sessionid")
        home = client.get("/")
        assert home.status_code == 200
        assert "テスト銀行" in home.text

        # A wrong password is a form error over HTTPS too, not a server error.
        client.cookies.clear()
        client.get("/accounts/login/")
        wrong = client.post(
            "/accounts/login/",
            data={
                "username": "alice",
                "password": "not-the-password",
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
            headers={"Origin": deployed.stack.site_url},
        )
        assert wrong.status_code == 200
        assert "sessionid" not in client.cookies


def cookie_attributes(answer: httpx.Response, name: str) -> set[str]:
    for header in answer.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return {part.strip().lower() for part in header.split(";")[1:]}
    raise AssertionError(f"no {name} cookie in {answer.headers.get_list('set-cookie')}")


def test_a_body_over_the_applications_largest_upload_is_refused_by_nginx(deployed):
    # nginx's limit is the application's largest upload: an agent's evidence.
    rendered = (deployed.stack.nginx_dir / "mamori.conf").read_text(encoding="utf-8")
    limit_mib = int(re.search(r"client_max_body_size (\d+)m;", rendered).group(1))
    assert limit_mib * MiB == settings.MAMORI_EVIDENCE_UPLOAD_MAX_BYTES
    assert limit_mib * MiB - 64 * 1024 > settings.EVIDENCE_MAX_BYTES  # with a form's overhead

    headers = {"Authorization": "Token not-a-token", "Content-Type": "application/json"}
    with deployed.client() as client:
        over = client.post(
            "/api/evidence/?probe=over", content=b"x" * (limit_mib * MiB + 1), headers=headers
        )
        assert over.status_code == 413
        assert "Request Entity Too Large" in over.text
        assert over.headers.get_list("strict-transport-security") == [HSTS]
        at_limit = client.post(
            "/api/evidence/?probe=at", content=b"x" * (limit_mib * MiB), headers=headers
        )
        # The application answered this one (the token is wrong), not nginx.
        assert at_limit.status_code == 401
        assert at_limit.headers["content-type"] == "application/json"
    deployed.stack.wait_for("the application's log line", lambda: "probe=at" in deployed.web_log())
    assert "probe=over" not in deployed.web_log()


def test_the_client_address_is_forwarded_and_a_forged_one_dropped(deployed):
    with deployed.client(local_address="127.0.0.2") as client:
        answer = client.get("/healthz?probe=forwarded", headers={"X-Forwarded-For": "203.0.113.7"})
        assert answer.status_code == 200
    deployed.stack.wait_for(
        "the request in the log", lambda: "probe=forwarded" in deployed.web_log()
    )
    line = next(line for line in deployed.stack.lines_of("web") if "probe=forwarded" in line)
    # gunicorn's peer is nginx on loopback; the address nginx forwards is the client's own.
    assert line.startswith("127.0.0.1 forwarded-for=127.0.0.2 ")
    assert "203.0.113.7" not in deployed.stack.output()
    # nginx writes its line once the answer has gone out, so it may come a moment later.
    deployed.stack.wait_for(
        "nginx's line with the client's own address",
        lambda: re.search(r"^127\.0\.0\.2 .*probe=forwarded", deployed.access_log(), re.M),
    )


def test_logs_hold_no_invitation_token_and_no_request_body(deployed):
    secret = "Zm9yLXRoZS1sb2dzLW9ubHk"
    with deployed.client() as client:
        assert client.get(f"/supply/i/{secret}/").status_code == 404
        client.post("/healthz", content=f"password={secret}".encode())
    deployed.stack.wait_for(
        "the masked link in the log", lambda: "/supply/i/[redacted]/" in deployed.web_log()
    )
    deployed.stack.wait_for(
        "nginx's masked line", lambda: "/supply/i/[redacted]/" in deployed.access_log()
    )
    assert secret not in deployed.access_log()
    assert secret not in deployed.stack.output()


def test_static_files_are_served_by_nginx_and_private_files_never(deployed):
    source = ROOT / "src" / "mamori" / "static" / "mamori" / "app.css"
    with deployed.client() as client:
        answer = client.get("/static/mamori/app.css")
        assert answer.status_code == 200
        assert answer.content == source.read_bytes()
        assert answer.headers["content-type"].startswith("text/css")
        assert "max-age=3600" in answer.headers["cache-control"]
    assert "app.css" not in deployed.web_log()

    # The private store is next to the static folder, out of every location's reach.
    private = deployed.stack.files_dir / "certificates" / "probe.pdf"
    private.parent.mkdir(parents=True, exist_ok=True)
    private.write_bytes(b"%PDF-1.7 private")
    with deployed.client() as client:
        for path in (
            "/static/../files/certificates/probe.pdf",
            "/static/..%2ffiles/certificates/probe.pdf",
            "/static../files/certificates/probe.pdf",
            "/static/files/certificates/probe.pdf",
            "/files/certificates/probe.pdf",
            "/media/certificates/probe.pdf",
        ):
            answer = client.get(path)
            assert answer.status_code in (400, 404), path
            assert b"private" not in answer.content, path
    private.unlink()


def test_the_worker_renders_the_certificate_and_only_its_owner_downloads_it(deployed):
    world = deployed.world
    assessor_api = {"Authorization": f"Token {deployed.assessor_token}"}
    with deployed.client() as assessor:
        decided = assessor.post(
            f"/api/assessments/{deployed.assessment_id}/decision/",
            json={"outcome": "pass", "summary": "all five controls in place"},
            headers=assessor_api,
        )
        assert decided.status_code == 201, decided.text
        listed = assessor.get("/api/certificates/", headers=assessor_api).json()["results"]
    # The other bank's certificate (for the public page's tests) is listed too.
    [number] = [item["number"] for item in listed if item["number"] != deployed.certificate_number]

    # The decision queued the PDF; until the worker has rendered it the page says so.
    with deployed.logged_in(world.admin) as owner:
        url = f"/certificates/{number}/pdf/"
        deployed.stack.wait_for(
            "the certificate PDF from the worker",
            lambda: owner.get(url).status_code == 200,
            timeout=45,
        )
        download = owner.get(url)
        assert download.headers["content-type"] == "application/pdf"
        assert download.headers["content-disposition"].startswith("attachment")
    stored = deployed.stack.files_dir / "certificates" / f"{number}.pdf"
    assert download.content == stored.read_bytes()
    assert any(
        "render_certificate_pdf" in line and "received" in line
        for line in deployed.stack.lines_of("worker")
    )
    text = "".join(page.extract_text() for page in PdfReader(stored).pages)
    assert number in text
    assert f"{deployed.stack.site_url}/verify/{number}" in text.replace("\n", "")

    with deployed.logged_in(world.other_admin) as outsider:
        assert outsider.get(url).status_code == 404
    with deployed.client() as anonymous:
        answer = anonymous.get(url)
        assert answer.status_code == 302
        assert answer.headers["location"].startswith("/accounts/login/")


def test_beat_schedules_and_the_worker_runs_the_periodic_work(deployed):
    deployed.stack.wait_for(
        "beat's reminder task received by the worker",
        lambda: (
            any("Sending due task" in line for line in deployed.stack.lines_of("beat"))
            and any(
                "send_expiry_reminders[" in line and "received" in line
                for line in deployed.stack.lines_of("worker")
            )
        ),
    )
    # Celery logs a task's success only at INFO, which Mamori's logging leaves out; a failure
    # is an error line.
    assert not [line for line in deployed.stack.lines_of("worker") if "ERROR" in line]


def test_a_graceful_reload_keeps_answering(deployed):
    started = re.search(r"web\.1 started \(pid=(\d+)\)", deployed.stack.output())
    master = int(started.group(1))
    os.kill(master, signal.SIGHUP)
    statuses = []
    with deployed.client() as client:
        while len(re.findall(r"Booting worker", deployed.web_log())) < 4:
            statuses.append(client.get("/healthz").status_code)
            assert len(statuses) < 500, deployed.web_log()
    assert "Handling signal: hup" in deployed.web_log()
    assert set(statuses) == {200}


def test_public_verification_pages_are_kept_by_nginx_for_a_few_seconds(deployed):
    """Readers who are not signed in share one page per certificate and language for up to 5 s
    (the application's Cache-Control); a signed-in reader always reaches the application."""
    path = f"/verify/{deployed.certificate_number}"

    def cache_states() -> list[str]:
        return re.findall(
            rf"GET {re.escape(path)}\S* HTTP/1.1" + r'" \d+ \d+ \S+ cache=(\S+)',
            deployed.access_log(),
        )

    def application_saw() -> int:
        return len(re.findall(rf'"GET {re.escape(path)}\S* HTTP', deployed.web_log()))

    with deployed.client() as client:
        pages = [client.get(path) for _ in range(5)]
    assert [page.status_code for page in pages] == [200] * 5
    assert len({page.content for page in pages}) == 1
    assert all(page.headers.get_list("strict-transport-security") == [HSTS] for page in pages)
    assert "set-cookie" not in pages[0].headers
    deployed.stack.wait_for("five log lines", lambda: len(cache_states()) == 5)
    assert cache_states() == ["MISS", "HIT", "HIT", "HIT", "HIT"]
    deployed.stack.wait_for("the application's line", lambda: application_saw() >= 1)
    assert application_saw() == 1
    with deployed.client() as client:
        english = client.get(path + "?lang=en")
    assert f"Certificate {deployed.certificate_number} is valid until" in english.text
    with deployed.logged_in(deployed.world.other_admin) as client:
        own = client.get(path)
        assert own.status_code == 200
        assert deployed.world.other_admin.username in own.text
    deployed.stack.wait_for("the signed-in reader's line", lambda: len(cache_states()) == 7)
    assert cache_states()[-1] == "BYPASS"
    # gunicorn writes its line once the answer has gone out, so it may come a moment later.
    deployed.stack.wait_for("the application's third line", lambda: application_saw() == 3)
