"""The deployed stack of deploy/ on loopback: nginx with a self-signed certificate in front of
gunicorn, a Celery worker and beat, on a database and a Redis database that the caller names.

It follows deploy/README.md step by step, with the deployment's own files: an environment file
with the settings, the nginx templates rendered by ``deploy/nginx/render.sh`` (with the
configuration that needs no root), ``mamori collectstatic``, then ``honcho start`` on
``deploy/Procfile``. Everything is written under one folder and every port is a free one on
127.0.0.1, so several stacks (and other test runs) can run side by side.

``tests/deploy/test_stack.py`` drives it over HTTPS; ``bench/load.py`` loads it, and for its
chaos run starts the same Procfile under ``Supervisor``, which restarts a process that dies
(what the systemd units do with ``Restart=always``); honcho stops every process when one ends.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
SERVER_NAME = "localhost"
# Variables of the calling process that would leak into the stack's configuration.
PRIVATE_PREFIXES = ("MAMORI_", "DATABASE_URL", "CELERY_", "SECRET_KEY", "ALLOWED_HOSTS", "EMAIL_")
PRIVATE_NAMES = {"PORT", "CSRF_TRUSTED_ORIGINS", "DEFAULT_FROM_EMAIL", "DJANGO_SETTINGS_MODULE"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_environment() -> dict[str, str]:
    """The caller's environment without its Mamori settings, with the virtualenv's bin/ (and
    /usr/sbin, where Debian puts nginx) on PATH, as deploy/README.md asks for honcho."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(PRIVATE_PREFIXES) and name not in PRIVATE_NAMES
    }
    env["PATH"] = os.pathsep.join([str(BIN), "/usr/sbin", env.get("PATH", "/usr/bin:/bin")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Stack:
    folder: Path
    database_url: str
    redis_url: str
    web_workers: int = 2
    worker_concurrency: int = 1
    settings: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folder = self.folder.resolve()
        self.var_dir = self.folder / "var"
        self.files_dir = self.var_dir / "files"
        self.static_dir = self.var_dir / "static"
        self.mail_dir = self.var_dir / "mail"
        self.nginx_dir = self.folder / "nginx"
        self.tls_dir = self.folder / "tls"
        self.cert = self.tls_dir / "cert.pem"
        self.key = self.tls_dir / "key.pem"
        self.env_file = self.folder / "mamori.env"
        self.log_path = self.folder / "stack.log"
        self.http_port, self.https_port, self.web_port = free_port(), free_port(), free_port()
        self.site_url = f"https://{SERVER_NAME}:{self.https_port}"
        self.process: subprocess.Popen | None = None
        self.supervisor: Supervisor | None = None

    # --- preparing: deploy/README.md, "Install" ----------------------------------------------
    def environment_file(self) -> dict[str, str]:
        """The instance's environment file: the application's settings and the deployment's."""
        values = {
            "SECRET_KEY_FILE": str(self.folder / "secret_key"),
            "ALLOWED_HOSTS": SERVER_NAME,
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": self.redis_url,
            "MAMORI_VAR_DIR": str(self.var_dir),
            "MAMORI_FILES_DIR": str(self.files_dir),
            "MAMORI_SITE_URL": self.site_url,
            "MAMORI_TRUSTED_PROXIES": "127.0.0.1",
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "MAMORI_EMAIL_DIR": str(self.mail_dir),
            # gunicorn, Celery
            "MAMORI_BIND": f"127.0.0.1:{self.web_port}",
            "MAMORI_WEB_WORKERS": str(self.web_workers),
            "MAMORI_WORKER_CONCURRENCY": str(self.worker_concurrency),
            # nginx
            "MAMORI_SERVER_NAME": SERVER_NAME,
            "MAMORI_HTTP_LISTEN": f"127.0.0.1:{self.http_port}",
            "MAMORI_HTTPS_LISTEN": f"127.0.0.1:{self.https_port}",
            "MAMORI_TLS_CERT": str(self.cert),
            "MAMORI_TLS_KEY": str(self.key),
            "MAMORI_STATIC_ROOT": str(self.static_dir),
            "MAMORI_NGINX_ACCESS_LOG": str(self.nginx_dir / "access.log"),
            "MAMORI_NGINX_DIR": str(self.nginx_dir),
            "MAMORI_NGINX_CACHE_DIR": str(self.nginx_dir / "cache"),
            "MAMORI_NGINX_USER": pwd.getpwuid(os.geteuid()).pw_name,
        }
        values.update(self.settings)
        return values

    def environment(self) -> dict[str, str]:
        return {**clean_environment(), **self.environment_file()}

    def prepare(self) -> Stack:
        for folder in (self.var_dir, self.nginx_dir, self.tls_dir, self.mail_dir):
            folder.mkdir(parents=True, exist_ok=True)
        secret = self.folder / "secret_key"
        secret.write_text(secrets.token_urlsafe(48) + "\n", encoding="utf-8")
        secret.chmod(0o600)
        self.env_file.write_text(
            "".join(
                f"{name}={shlex.quote(value)}\n" for name, value in self.environment_file().items()
            ),
            encoding="utf-8",
        )
        self.make_certificate()
        env = self.environment()
        render = str(DEPLOY / "nginx" / "render.sh")
        for template, output in (
            ("mamori.conf.template", "mamori.conf"),
            ("nginx.conf.template", "nginx.conf"),
        ):
            run([render, str(DEPLOY / "nginx" / template), str(self.nginx_dir / output)], env)
        run(["nginx", "-t", "-q", "-p", str(self.nginx_dir), "-c", "nginx.conf"], env)
        run([str(BIN / "mamori"), "collectstatic", "--noinput", "-v0"], env)
        return self

    def make_certificate(self) -> None:
        """A self-signed certificate for localhost and 127.0.0.1, valid for two days."""
        run(
            [
                "openssl",
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
                f"/CN={SERVER_NAME}",
                "-addext",
                f"subjectAltName=DNS:{SERVER_NAME},IP:127.0.0.1",
                "-keyout",
                str(self.key),
                "-out",
                str(self.cert),
            ],
            clean_environment(),
        )

    def tls_context(self) -> ssl.SSLContext:
        """Clients trust this certificate and nothing else."""
        return ssl.create_default_context(cafile=str(self.cert))

    # --- running --------------------------------------------------------------------------------
    def start(self, *, restart: bool = False, timeout: float = 60.0) -> Stack:
        """``honcho start`` on deploy/Procfile; with ``restart`` the Supervisor instead."""
        if restart:
            self.supervisor = Supervisor(
                DEPLOY / "Procfile", self.environment(), self.log_path, cwd=ROOT
            ).start()
        else:
            self.log = self.log_path.open("ab")
            self.process = subprocess.Popen(
                [
                    str(BIN / "honcho"),
                    "--no-colour",
                    "--procfile",
                    str(DEPLOY / "Procfile"),
                    "--app-root",
                    str(ROOT),
                    "--env",
                    str(self.env_file),
                    "start",
                ],
                cwd=ROOT,
                env=clean_environment(),
                stdout=self.log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_until_ready(timeout)
        return self

    def wait_until_ready(self, timeout: float) -> None:
        """Until /healthz answers through nginx, the worker says it is ready and beat started."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_running()
            log = self.output()
            if "ready." in log and "beat: Starting" in log and self.healthy():
                return
            time.sleep(0.2)
        raise RuntimeError(f"the stack did not come up in {timeout:.0f} s:\n{self.output()}")

    def healthy(self) -> bool:
        import http.client

        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.https_port, timeout=2, context=self.tls_context()
        )
        try:
            connection.request("GET", "/healthz", headers={"Host": SERVER_NAME})
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def check_running(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"honcho exited ({self.process.returncode}); its log:\n{self.output()}"
            )

    def output(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def lines_of(self, process: str) -> list[str]:
        """What one process (``web``, ``worker``, ``beat``, ``proxy``) printed."""
        marker = f" {process}.1"
        return [
            line.split("| ", 1)[1] if "| " in line else line
            for line in self.output().splitlines()
            if marker in line.split("|", 1)[0]
        ]

    def wait_for(self, what: str, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_running()
            if condition():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; the stack's log:\n{self.output()}")

    def stop(self) -> int | None:
        """SIGTERM, as a service manager stops it: each process shuts down gracefully."""
        if self.supervisor is not None:
            self.supervisor.stop()
            return 0
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
        return self.process.returncode


def run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(command)} failed ({result.returncode}): {result.stderr.strip()}"
        )


class Supervisor:
    """Runs every line of a Procfile as honcho does (a shell, the environment file's
    variables) and, like systemd's ``Restart=always``, starts a process again a second after it
    ends, for as long as the supervisor runs. Output goes to one log, prefixed like honcho's."""

    RESTART_DELAY = 1.0

    def __init__(self, procfile: Path, env: dict[str, str], log_path: Path, cwd: Path) -> None:
        from honcho.environ import parse_procfile

        self.commands = parse_procfile(procfile.read_text(encoding="utf-8")).processes
        self.env = env
        self.cwd = cwd
        self.log = log_path.open("ab", buffering=0)
        self.lock = threading.Lock()
        self.processes: dict[str, subprocess.Popen] = {}
        self.restarts: dict[str, int] = dict.fromkeys(self.commands, 0)
        self.stopping = threading.Event()
        self.watcher = threading.Thread(target=self.watch, daemon=True)

    def start(self) -> Supervisor:
        for name in self.commands:
            self.spawn(name)
        self.watcher.start()
        return self

    def spawn(self, name: str) -> None:
        process = subprocess.Popen(
            ["/bin/sh", "-c", self.commands[name]],
            cwd=self.cwd,
            env={**self.env, "HONCHO_PROCESS_NAME": f"{name}.1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(target=self.copy_output, args=(name, process), daemon=True).start()
        with self.lock:
            self.processes[name] = process

    def copy_output(self, name: str, process: subprocess.Popen) -> None:
        prefix = f"{name}.1 | ".encode()
        for line in process.stdout:
            self.log.write(time.strftime("%H:%M:%S ").encode() + prefix + line)

    def watch(self) -> None:
        while not self.stopping.wait(0.2):
            for name, process in list(self.processes.items()):
                if process.poll() is not None and not self.stopping.is_set():
                    # What is left of it (a Celery pool's children) goes with it, as systemd
                    # stops a unit's whole control group before restarting it.
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(process.pid, signal.SIGKILL)
                    self.log.write(
                        f"{time.strftime('%H:%M:%S')} system | {name}.1 exited "
                        f"({process.returncode}); restarting\n".encode()
                    )
                    time.sleep(self.RESTART_DELAY)
                    self.restarts[name] += 1
                    self.spawn(name)

    def pid(self, name: str) -> int:
        with self.lock:
            return self.processes[name].pid

    def stop(self) -> None:
        self.stopping.set()
        self.watcher.join(timeout=5)
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.log.close()
