"""Health and readiness: ``/healthz`` stays one query; ``/readyz`` and ``mamori doctor`` check
the database, the shared cache, the broker, the worker and beat heartbeats, the mail server and
disk space, against real components: Redis and a closed port, an SMTP server started here and
none, a real Celery worker with its beat and no worker at all."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import timezone

from mamori.core import readiness
from mamori.core.models import Heartbeat
from mamori.organisations.models import Category, Organisation, Role
from tests.certificates import database_url_of_test_db
from tests.conftest import client_for, make_user

REDIS_URL = "redis://127.0.0.1:6379/14"
SMTP = "django.core.mail.backends.smtp.EmailBackend"
# Each check once; the endpoint reuses its answer for a few seconds, which these tests turn off.
pytestmark = pytest.mark.usefixtures("_fresh_answers")


@pytest.fixture
def _fresh_answers():
    with override_settings(READINESS_CACHE_SECONDS=0):
        yield


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def checks() -> dict[str, readiness.Check]:
    return {check.name: check for check in readiness.run().checks}


@pytest.fixture
def alive(db):
    """A worker and a beat that were heard from just now."""
    for component in (Heartbeat.WORKER, Heartbeat.BEAT):
        Heartbeat.record(component)


def readyz():
    response = Client().get("/readyz")
    return response.status_code, response.json()


# --- /healthz and /readyz ------------------------------------------------------------------------


def test_healthz_stays_one_query(db, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = Client().get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_answers_200_when_everything_is_ready(alive):
    status, body = readyz()
    assert status == 200, body
    assert body["status"] == "ok"
    assert list(body["checks"]) == ["database", "cache", "broker", "worker", "beat", "mail", "disk"]
    # The embedded default has no broker service and writes mail to files: nothing to reach.
    assert body["checks"]["broker"] == {
        "status": "skip",
        "detail": "embedded: no broker service to reach",
    }
    assert body["checks"]["mail"]["status"] == "skip"
    assert body["checks"]["worker"]["detail"].startswith("last heartbeat ")


def test_readyz_answers_503_naming_what_is_not_ready(db):
    status, body = readyz()
    assert status == 503
    assert body["status"] == "fail"
    failed = {name for name, check in body["checks"].items() if check["status"] == "fail"}
    assert failed == {"worker", "beat"}
    assert body["checks"]["worker"]["detail"] == ("no heartbeat yet: is the Celery worker running?")


@override_settings(
    EMBEDDED_TASKS=False,
    EMAIL_BACKEND=SMTP,
    EMAIL_HOST="127.0.0.1",
    EMAIL_HOST_USER="mamori-mailer",
    EMAIL_HOST_PASSWORD="mail-password-never-shown",
)
def test_readyz_shows_no_address_or_secret(alive):
    port = closed_port()
    with override_settings(
        CELERY_BROKER_URL=f"redis://:broker-password@127.0.0.1:{port}/0", EMAIL_PORT=port
    ):
        response = Client().get("/readyz")
    text = response.content.decode()
    assert response.status_code == 503
    for secret in (
        "127.0.0.1",
        str(port),
        "broker-password",
        "mail-password",
        "mamori-mailer",
        settings.SECRET_KEY,
        settings.DATABASES["default"]["NAME"],
    ):
        assert str(secret) not in text, secret
    assert response.json()["checks"]["broker"]["detail"] == "error: Connection refused"


def test_readyz_is_open_before_the_second_factor(alive):
    """A monitor may carry anyone's session; the answer is the same for everyone."""
    body = Organisation.objects.create(
        name_ja="認定機関", name_en="Body", category=Category.CERTIFICATION_BODY
    )
    assessor = make_user("ada", body, Role.ASSESSOR, mfa=True)
    unverified = client_for(assessor, verified=False)
    assert unverified.get("/certificates/").status_code == 302  # sent to the second factor
    assert unverified.get("/readyz").status_code == 200


def test_the_endpoint_reuses_its_answer_for_a_few_seconds(db):
    with override_settings(READINESS_CACHE_SECONDS=60):
        readiness._last = None
        assert readyz()[0] == 503
        for component in (Heartbeat.WORKER, Heartbeat.BEAT):
            Heartbeat.record(component)
        assert readyz()[0] == 503  # the answer of a moment ago
    readiness._last = None
    assert readyz()[0] == 200


# --- Each check against the real thing -----------------------------------------------------------


@override_settings(EMBEDDED_TASKS=False)
def test_broker_reachable_and_not(db):
    with override_settings(CELERY_BROKER_URL=REDIS_URL):
        assert checks()["broker"].status == "ok"
    with override_settings(CELERY_BROKER_URL=f"redis://127.0.0.1:{closed_port()}/0"):
        started = time.monotonic()
        broker = checks()["broker"]
    assert (broker.status, broker.detail) == ("fail", "error: Connection refused")
    assert time.monotonic() - started < 5


def redis_cache(url: str) -> dict:
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "mamori-test",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }


def test_cache_on_redis_reachable_and_not(db):
    with override_settings(CACHES=redis_cache(REDIS_URL), CACHE_IS_REDIS=True):
        assert checks()["cache"] == readiness.Check("cache", "ok", "Redis: writes and reads")
    down = redis_cache(f"redis://127.0.0.1:{closed_port()}/0")
    with override_settings(CACHES=down, CACHE_IS_REDIS=True):
        cache = checks()["cache"]
    assert (cache.status, cache.detail) == ("fail", "error: Connection refused")
    # The embedded default's table, which migrate made.
    assert checks()["cache"] == readiness.Check("cache", "ok", "database table: writes and reads")


class Greeter:
    """An aiosmtpd handler: the server itself answers EHLO; nothing is ever sent here."""


@pytest.fixture
def smtp_server():
    controller = Controller(Greeter(), hostname="127.0.0.1", port=closed_port())
    controller.start()
    yield controller
    controller.stop()


def test_mail_server_answering_and_not(db, smtp_server):
    with override_settings(EMAIL_BACKEND=SMTP, EMAIL_HOST="127.0.0.1"):
        with override_settings(EMAIL_PORT=smtp_server.port):
            assert checks()["mail"] == readiness.Check("mail", "ok", "the mail server answers EHLO")
            # A server that offers no STARTTLS cannot take mail sent with EMAIL_USE_TLS.
            with override_settings(EMAIL_USE_TLS=True):
                mail = checks()["mail"]
            assert (mail.status, mail.detail) == (
                "fail",
                "the mail server does not offer STARTTLS",
            )
        with override_settings(EMAIL_PORT=closed_port()):
            mail = checks()["mail"]
    assert (mail.status, mail.detail) == ("fail", "error: Connection refused")


def test_disk_space_below_the_threshold(db):
    disk = checks()["disk"]
    assert disk.status == "ok"
    assert disk.detail.startswith("var ")
    assert "files " in disk.detail
    with override_settings(DISK_MIN_FREE_MB=10**9):
        disk = checks()["disk"]
    assert disk.status == "fail"
    assert disk.detail.endswith("(at least 1000000000 MB needed)")


def test_a_stale_heartbeat_is_not_ready(db):
    stale = settings.HEARTBEAT_STALE_SECONDS
    assert stale == 3 * settings.HEARTBEAT_SECONDS == 180
    Heartbeat.objects.create(component=Heartbeat.WORKER, at=timezone.now())
    Heartbeat.objects.create(
        component=Heartbeat.BEAT, at=timezone.now() - dt.timedelta(seconds=stale + 5)
    )
    found = checks()
    assert found["worker"].status == "ok"
    assert found["beat"].status == "fail"
    assert found["beat"].detail == (
        f"last heartbeat {stale + 5} s ago (stale after {stale} s): is the Celery beat running?"
    )


# --- mamori doctor -------------------------------------------------------------------------------


def doctor(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("doctor", *args, stdout=out)
    except SystemExit as exit_:
        return int(exit_.code), out.getvalue()
    return 0, out.getvalue()


def test_doctor_prints_one_line_per_check(alive):
    code, text = doctor()
    assert code == 0, text
    lines = text.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["database", "ok"],
        ["cache", "ok"],
        ["broker", "skip"],
        ["worker", "ok"],
        ["beat", "ok"],
        ["mail", "skip"],
        ["disk", "ok"],
    ]
    Heartbeat.objects.all().delete()
    code, text = doctor("--format", "json")
    assert code == 1
    body = json.loads(text)
    assert body["status"] == "fail"
    assert body["checks"]["worker"]["status"] == "fail"


def test_the_doctor_command_exits_non_zero_on_a_database_never_migrated(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
        "MAMORI_VAR_DIR": str(tmp_path / "var"),
    }
    result = subprocess.run(
        [str(Path(sys.executable).parent / "mamori"), "doctor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 7
    assert lines[0].split()[:2] == ["database", "ok"]
    assert lines[1].split()[:2] == ["cache", "fail"]  # no table: `mamori migrate` makes it
    assert lines[3].startswith("worker    fail error: ")


# --- A real worker and beat ---------------------------------------------------------------------


@pytest.mark.services
@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
def test_a_running_worker_and_beat_are_seen_and_a_stopped_one_is_not(tmp_path):
    """``celery worker --beat`` on the embedded broker with a heartbeat every second: the beat
    sends, the worker runs, both rows move on; once it is stopped, the rows go stale."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "MAMORI_VAR_DIR": str(tmp_path / "var"),
        "MAMORI_WORKER_PROCESS": "1",
        "MAMORI_HEARTBEAT_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CELERY_BROKER_URL", None)
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "mamori.celery", "worker", "--beat",
             "--pool", "solo", "--loglevel", "INFO"],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
        try:
            assert {c.name: c.status for c in readiness.run().checks}["worker"] == "fail"
            started = timezone.now()

            def heartbeats_after(moment) -> bool:
                seen = dict(Heartbeat.objects.values_list("component", "at"))
                return all(seen.get(c, moment) > moment for c in (Heartbeat.WORKER, "beat"))

            def wait_for(what: str, condition) -> None:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    if condition():
                        return
                    assert worker.poll() is None, log_path.read_text()
                    time.sleep(0.2)
                pytest.fail(f"timed out waiting for {what}:\n{log_path.read_text()}")

            wait_for("the first heartbeats", lambda: heartbeats_after(started))
            # Sent by the beat and run by the worker again and again, not only noted at start.
            later = timezone.now()
            wait_for("heartbeats from the task", lambda: heartbeats_after(later))
            assert "mamori.core.tasks.heartbeat" in log_path.read_text()
            found = checks()
            assert (found["worker"].status, found["beat"].status) == ("ok", "ok")
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    stopped = timezone.now()
    with override_settings(HEARTBEAT_STALE_SECONDS=1):
        deadline = time.monotonic() + 10
        while checks()["worker"].status == "ok" and time.monotonic() < deadline:
            time.sleep(0.2)
        found = checks()
    assert (found["worker"].status, found["beat"].status) == ("fail", "fail")
    assert Heartbeat.objects.get(component=Heartbeat.WORKER).at <= stopped
