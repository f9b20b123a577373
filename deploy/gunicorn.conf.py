"""gunicorn settings for Mamori behind nginx: ``gunicorn --config deploy/gunicorn.conf.py
mamori.wsgi:application`` (deploy/README.md).

Every value can be changed with an environment variable, read from the same environment file as
the application's own settings, so one file describes an instance.
"""

import os
import re

from gunicorn.glogging import Logger


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not an integer") from None


# Loopback only: nginx is the one client, and the application trusts the client address it
# forwards only from there (MAMORI_TRUSTED_PROXIES). A Unix socket would hide that address.
bind = [os.environ.get("MAMORI_BIND", "127.0.0.1:8001")]

# Synchronous workers: nginx buffers slow clients (request bodies and responses), so a worker
# is busy only while Django works. (2 x cores) + 1 is gunicorn's own rule of thumb.
workers = _int("MAMORI_WEB_WORKERS", 2 * (os.cpu_count() or 1) + 1)
worker_class = "sync"

# A request that runs longer than this has its worker killed and replaced (nginx answers 502);
# heavy work belongs in the Celery worker, so 30 s is already generous.
timeout = _int("MAMORI_WEB_TIMEOUT", 30)
# SIGTERM or SIGHUP: workers finish the requests they are serving for this long first.
graceful_timeout = _int("MAMORI_WEB_GRACEFUL_TIMEOUT", 30)

# Each worker is replaced after about this many requests, so a slow leak never grows; the
# jitter spreads the restarts so the workers never all restart at the same moment.
max_requests = _int("MAMORI_WEB_MAX_REQUESTS", 2000)
max_requests_jitter = _int("MAMORI_WEB_MAX_REQUESTS_JITTER", 200)

# Workers report their heartbeat through a file; memory keeps a slow disk from looking like a
# hung worker.
if os.path.isdir("/dev/shm"):  # noqa: S108  (a folder of its own per worker, mode 0600)
    worker_tmp_dir = "/dev/shm"  # noqa: S108

# X-Forwarded-Proto (https) is believed only from nginx on this machine.
forwarded_allow_ips = "127.0.0.1,::1"

# The runtime control socket (gunicorn 25.1+) would live in the home directory, shared by every
# gunicorn of the same user; signals do the same work (HUP reloads, TERM stops gracefully).
control_socket_disable = True

proc_name = os.environ.get("MAMORI_WEB_NAME", "mamori-web")

# Logs go to standard output and error for the supervisor (journald, honcho). gunicorn never
# logs request bodies; the access log has the address nginx forwarded, the request line with
# invitation tokens masked (they are passwords in a URL), the status, size and duration.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("MAMORI_LOG_LEVEL", "info").lower()
access_log_format = '%(h)s forwarded-for=%({x-forwarded-for}i)s "%(r)s" %(s)s %(b)s %(M)sms'

# Paths whose segment after the prefix is a secret (supplier invitation links).
_SECRET_PATH = re.compile(r"^(/supply/i/)[^/?]+")
_MASK = r"\1[redacted]"


class RedactingLogger(Logger):
    """gunicorn's logger with secrets in request paths replaced before they are written."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        method, space, rest = atoms["r"].partition(" ")
        atoms["r"] = method + space + _SECRET_PATH.sub(_MASK, rest)
        atoms["U"] = _SECRET_PATH.sub(_MASK, atoms["U"] or "")
        return atoms


logger_class = RedactingLogger
