"""The public API's rate limit holds for the whole site, not per web process.

With the limit kept in each gunicorn worker's memory, three workers let three times the rate
through. Here a real gunicorn with three workers serves the public certificate API, once with
the embedded default's database cache and once with Redis; requests arrive in parallel, so every
worker serves some, and exactly the rate gets through. The client is the address behind the
trusted proxy, and a forged ``X-Forwarded-For`` from anyone else buys no fresh allowance.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from django.core.cache import cache
from django.db import connection
from django.test import Client, override_settings

from mamori.core import ratelimit
from tests.certificates import database_url_of_test_db

RATE = 10
# Database 12 of the local Redis is these tests' own.
REDIS_URL = "redis://127.0.0.1:6379/12"
URL = "/api/public/certificates/CE-0000-00000"  # no such certificate: 404 until throttled
STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Gunicorn:
    """``gunicorn mamori.wsgi`` with three workers on the test database, logging each request's
    worker process id and status."""

    def __init__(self, folder: Path, cache_url: str) -> None:
        self.port = free_port()
        self.access_log = folder / "access.log"
        self.error_log = folder / "error.log"
        env = {
            **os.environ,
            "DATABASE_URL": database_url_of_test_db(),
            "MAMORI_VAR_DIR": str(folder / "var"),
            "MAMORI_CACHE_URL": cache_url,
            "MAMORI_PUBLIC_API_RATE": f"{RATE}/hour",
            "MAMORI_TRUSTED_PROXIES": "127.0.0.1",
        }
        env.pop("CELERY_BROKER_URL", None)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "mamori.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "3",
                # The application is loaded once and the workers forked from it: a start in
                # seconds rather than three imports of Django side by side.
                "--preload",
                # Nothing is in flight when a test stops it; and no control socket in $HOME,
                # which every other gunicorn on the machine would share.
                "--graceful-timeout",
                "0",
                "--no-control-socket",
                "--access-logfile",
                str(self.access_log),
                "--access-logformat",
                "%(p)s %(s)s",
                "--error-logfile",
                str(self.error_log),
            ],
            env=env,
            cwd=folder,
        )
        self.wait_until_up()

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited:\n{self.error_log.read_text()}")
            with contextlib.suppress(OSError):
                if self.get("/healthz", None) == 200:
                    return
            time.sleep(0.2)
        pytest.fail(f"gunicorn did not answer:\n{self.error_log.read_text()}")

    def get(self, path: str, forwarded_for: str | None) -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        request.add_header("Connection", "close")
        if forwarded_for:
            request.add_header("X-Forwarded-For", forwarded_for)
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def worker_pids(self, status: int) -> set[str]:
        lines = self.access_log.read_text().split("\n")
        return {line.split()[0] for line in lines if line.endswith(f" {status}")}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def database_cache_server(tmp_path_factory, django_db_setup, django_db_blocker):
    """The embedded default: the count in a table of the database, shared by the workers."""
    with django_db_blocker.unblock():
        cache.clear()
    gunicorn = Gunicorn(tmp_path_factory.mktemp("gunicorn-db"), "database")
    yield gunicorn
    gunicorn.stop()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory, django_db_setup):
    store = redis.Redis.from_url(REDIS_URL)
    store.flushdb()
    gunicorn = Gunicorn(tmp_path_factory.mktemp("gunicorn-redis"), REDIS_URL)
    yield gunicorn
    gunicorn.stop()
    store.flushdb()
    store.close()


def assert_the_limit_holds_across_workers(server: Gunicorn) -> None:
    """Thirty requests from one client, six at a time over fresh connections: exactly the rate
    is served, whichever of the three workers takes each request."""
    client = "198.51.100.10"
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(lambda _n: server.get(URL, client), range(30)))
    assert statuses.count(404) == RATE, statuses
    assert statuses.count(429) == 30 - RATE, statuses
    # The requests were spread over the workers: with a count per worker, each would have let
    # the whole rate through.
    assert len(server.worker_pids(404) | server.worker_pids(429)) >= 2, server.access_log
    # Another client behind the same proxy has its own allowance.
    assert server.get(URL, "198.51.100.11") == 404


@pytest.mark.embedded
def test_the_limit_holds_across_workers_on_the_database_cache(database_cache_server):
    # No database fixture, so no transaction held open here: the workers write their counts to
    # the database, and SQLite would keep them waiting for this process's lock. (Run once, on
    # SQLite, the embedded default; the PostgreSQL lock is taken by the tests below.)
    assert_the_limit_holds_across_workers(database_cache_server)


@pytest.mark.scale_out
def test_the_limit_holds_across_workers_on_redis(redis_server):
    assert_the_limit_holds_across_workers(redis_server)


# --- In one process: who the client is, the wait, and an unreachable store ----------------------


@pytest.fixture
def three_an_hour(db, monkeypatch):
    cache.clear()
    monkeypatch.setattr(ratelimit.SiteWideRateThrottle, "THROTTLE_RATES", {"public": "3/hour"})


def public(address: str, forwarded: str | None = None):
    headers = {"REMOTE_ADDR": address}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return Client(**headers).get(URL)


def test_a_forged_forwarded_address_buys_no_fresh_allowance(three_an_hour):
    with override_settings(TRUSTED_PROXIES=["127.0.0.1"]):
        codes = [public("203.0.113.5", f"10.0.0.{n}").status_code for n in range(5)]
        assert codes == [404, 404, 404, 429, 429]
        # Behind the trusted proxy, each client address has its own allowance.
        assert public("127.0.0.1", "10.0.0.1").status_code == 404
        assert public("127.0.0.1", "198.51.100.1, 10.0.0.2").status_code == 404


def test_a_throttled_client_is_told_how_long_to_wait(three_an_hour):
    for _ in range(3):
        assert public("203.0.113.6").status_code == 404
    throttled = public("203.0.113.6")
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "throttled"
    assert 3590 <= int(throttled["Retry-After"]) <= 3600


def test_an_unreachable_store_lets_requests_through(three_an_hour, caplog):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with override_settings(CACHE_IS_REDIS=True, CACHE_URL=f"redis://127.0.0.1:{port}/0"):
        caplog.set_level(logging.WARNING, logger="mamori.core.ratelimit")
        started = time.monotonic()
        codes = [public("203.0.113.7").status_code for _ in range(5)]
    assert codes == [404] * 5
    assert time.monotonic() - started < 5
    assert "rate limit store unavailable" in caplog.text


def test_the_count_is_shared_through_the_store(three_an_hour):
    """What the workers above rely on, seen from here: the count is in the database cache, so
    another process would read it (and a cleared cache starts it again)."""
    # ``mamori migrate`` made the table (core/apps.py), as it did in the test database.
    assert "mamori_cache" in connection.introspection.table_names()
    for _ in range(3):
        assert public("203.0.113.8").status_code == 404
    count, remaining = cache.get("ratelimit:throttle_public_203.0.113.8")
    assert count == 3
    assert remaining > time.time() + 3500
    assert public("203.0.113.8").status_code == 429
    cache.clear()
    assert public("203.0.113.8").status_code == 404
