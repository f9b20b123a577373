"""``mamori serve``: the web server, plus (on the embedded default) one Celery worker with an
embedded beat so periodic work such as expiry reminders runs with no other service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Serve Mamori on 127.0.0.1 with gunicorn (and a worker with beat on the embedded default)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument(
            "--no-worker", action="store_true", help="do not start the embedded Celery worker"
        )

    def handle(self, *args, host, port, workers, no_worker, **options):
        children: list[subprocess.Popen] = []
        served = {**os.environ}
        # Links in e-mail point at the port really served unless an address is configured.
        if not os.environ.get("MAMORI_SITE_URL"):
            loopback = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
            served["MAMORI_SITE_URL"] = f"http://{loopback}:{port}"
        if settings.EMBEDDED_TASKS and not no_worker:
            env = {**served, "MAMORI_WORKER_PROCESS": "1"}
            children.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "mamori.celery",
                        "worker",
                        "--beat",
                        "--pool",
                        "solo",
                        "--loglevel",
                        "INFO",
                    ],
                    env=env,
                )
            )
        children.append(
            subprocess.Popen(  # noqa: S603
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "mamori.wsgi:application",
                    "--bind",
                    f"{host}:{port}",
                    "--workers",
                    str(workers),
                    "--access-logfile",
                    "-",
                ],
                env=served,
            )
        )
        self.stdout.write(f"Mamori is serving on http://{host}:{port}/  (Ctrl-C stops it)")

        def stop(*_args):
            for child in children:
                if child.poll() is None:
                    child.terminate()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            # Stop everything when any child ends: a half-running service helps no one.
            while all(child.poll() is None for child in children):
                try:
                    children[-1].wait(timeout=1)
                except subprocess.TimeoutExpired:
                    continue
        finally:
            stop()
            for child in children:
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
