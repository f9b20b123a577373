"""Is this instance ready to serve? One check per component, for ``/readyz`` and ``mamori doctor``.

``/healthz`` answers whether this process and its database are up, and nothing else, so that it
stays cheap. Readiness looks further: the database, the shared cache, the broker, the worker and
the beat (through the heartbeat rows, core/tasks.py), the mail server (connect and EHLO when mail
goes out by SMTP) and free space where files are written. Each check is bounded by a short
timeout and says what it found in a line with no address, user name or password in it: the
answer is public.
"""

from __future__ import annotations

import os
import shutil
import smtplib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from mamori.core.models import Heartbeat

OK = "ok"
FAIL = "fail"
SKIP = "skip"  # does not apply to this set-up; not a failure
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str


@dataclass(frozen=True)
class Report:
    checks: tuple[Check, ...]

    @property
    def ready(self) -> bool:
        return all(check.status != FAIL for check in self.checks)

    def as_json(self) -> dict:
        return {
            "status": OK if self.ready else FAIL,
            "checks": {c.name: {"status": c.status, "detail": c.detail} for c in self.checks},
        }


def reason(exc: BaseException) -> str:
    """What went wrong, without the address it went wrong at: the operating system's words
    ("Connection refused", "timed out") where there are some, else the kind of error."""
    seen = exc
    while seen is not None:
        if isinstance(seen, TimeoutError | socket.timeout):
            return "timed out"
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return type(exc).__name__


def _timeout() -> float:
    return float(settings.READINESS_TIMEOUT_SECONDS)


def check_database() -> Check:
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return Check("database", OK, f"answers ({(time.monotonic() - started) * 1000:.0f} ms)")


def check_cache() -> Check:
    kind = "Redis" if settings.CACHE_IS_REDIS else "database table"
    stamp = time.time()
    cache.set("readiness-probe", stamp, timeout=60)
    if cache.get("readiness-probe") != stamp:
        return Check("cache", FAIL, f"{kind}: a value written could not be read back")
    return Check("cache", OK, f"{kind}: writes and reads")


def check_broker() -> Check:
    if settings.EMBEDDED_TASKS:
        return Check("broker", SKIP, "embedded: no broker service to reach")
    from kombu import Connection

    timeout = _timeout()
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "max_retries": 0}
    with Connection(
        settings.CELERY_BROKER_URL, connect_timeout=timeout, transport_options=options
    ) as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
    return Check("broker", OK, "accepts connections")


def _heartbeat(component: str, what: str) -> Check:
    seen = Heartbeat.objects.filter(component=component).values_list("at", flat=True).first()
    if seen is None:
        return Check(component, FAIL, f"no heartbeat yet: is the {what} running?")
    age = (timezone.now() - seen).total_seconds()
    detail = f"last heartbeat {age:.0f} s ago"
    if age > settings.HEARTBEAT_STALE_SECONDS:
        limit = settings.HEARTBEAT_STALE_SECONDS
        return Check(component, FAIL, f"{detail} (stale after {limit} s): is the {what} running?")
    return Check(component, OK, detail)


def check_worker() -> Check:
    return _heartbeat(Heartbeat.WORKER, "Celery worker")


def check_beat() -> Check:
    return _heartbeat(Heartbeat.BEAT, "Celery beat")


def check_mail() -> Check:
    if settings.EMAIL_BACKEND != SMTP_BACKEND:
        backend = settings.EMAIL_BACKEND.rsplit(".", 2)[-2]
        return Check("mail", SKIP, f"not sent by SMTP ({backend} backend)")
    client = smtplib.SMTP_SSL if settings.EMAIL_USE_SSL else smtplib.SMTP
    with client(settings.EMAIL_HOST, settings.EMAIL_PORT, timeout=_timeout()) as server:
        code, _message = server.ehlo()
        if code != 250:
            return Check("mail", FAIL, f"the mail server answered EHLO with {code}")
        if settings.EMAIL_USE_TLS and not server.has_extn("starttls"):
            return Check("mail", FAIL, "the mail server does not offer STARTTLS")
    return Check("mail", OK, "the mail server answers EHLO")


def _existing(path: Path) -> Path:
    """The directory itself, or the nearest parent that exists (a directory made on first use)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk() -> Check:
    needed = settings.DISK_MIN_FREE_MB
    found, short = [], []
    for label, path in (("var", Path(settings.VAR_DIR)), ("files", settings.PRIVATE_FILES_ROOT)):
        place = _existing(Path(path))
        free = shutil.disk_usage(place).free // (1024 * 1024)
        found.append(f"{label} {free} MB free")
        if free < needed:
            short.append(label)
        elif not os.access(place, os.W_OK):
            return Check("disk", FAIL, f"{label} is not writable")
    detail = f"{', '.join(found)} (at least {needed} MB needed)"
    return Check("disk", FAIL if short else OK, detail)


CHECKS: tuple[tuple[str, Callable[[], Check]], ...] = (
    ("database", check_database),
    ("cache", check_cache),
    ("broker", check_broker),
    ("worker", check_worker),
    ("beat", check_beat),
    ("mail", check_mail),
    ("disk", check_disk),
)


def run() -> Report:
    checks = []
    for name, check in CHECKS:
        try:
            checks.append(check())
        except Exception as exc:  # a check reports a failure; it never raises one
            checks.append(Check(name, FAIL, f"error: {reason(exc)}"))
    return Report(tuple(checks))


_last: tuple[float, Report] | None = None


def recent_report() -> Report:
    """``run()``, at most once per ``MAMORI_READINESS_CACHE_SECONDS`` in this process: the
    endpoint needs no login, and polling it must not become a way to hammer the mail server."""
    global _last
    now = time.monotonic()
    if _last is None or now - _last[0] >= settings.READINESS_CACHE_SECONDS:
        _last = (now, run())
    return _last[1]
