"""Settings from the environment: production mode refuses to start without a real SECRET_KEY and
ALLOWED_HOSTS, malformed values stop start-up with a one-line reason, DATABASE_URL and
CELERY_BROKER_URL choose the set-up. Each case starts a fresh interpreter with a controlled
environment, since settings are read once at start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

MAMORI = Path(sys.executable).parent / "mamori"
GOOD_KEY = "settings-test-key-0123456789abcdefghijklmnopqrstuvwxyz"
SHOW_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
db = s.DATABASES["default"]
print(json.dumps({
    "DEBUG": s.DEBUG,
    "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
    "ENGINE": db["ENGINE"],
    "NAME": str(db["NAME"]),
    "HOST": db.get("HOST"),
    "PORT": db.get("PORT"),
    "USER": db.get("USER"),
    "TEST_NAME": db.get("TEST", {}).get("NAME"),
    "EMBEDDED_TASKS": s.EMBEDDED_TASKS,
    "EAGER": s.CELERY_TASK_ALWAYS_EAGER,
    "SESSION_COOKIE_SECURE": s.SESSION_COOKIE_SECURE,
    "SITE_URL": s.SITE_URL,
    "CACHE": [s.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1], s.CACHES["default"]["LOCATION"]],
}))
"""


def start(tmp_path: Path, command: list[str] | None = None, **variables: str):
    """Start Python (or ``command``) with only the variables given, plus what any process
    needs; nothing of this test run's own configuration leaks in."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "mamori.settings",
        "MAMORI_VAR_DIR": str(tmp_path / "var"),
        **variables,
    }
    env = {name: value for name, value in env.items() if value is not None}
    return subprocess.run(
        command or [sys.executable, "-c", SHOW_SETTINGS],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def settings_in(tmp_path: Path, **variables: str) -> dict:
    result = start(tmp_path, **variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def last_line(result) -> str:
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"ALLOWED_HOSTS": "example.jp"},
            "SECRET_KEY (or SECRET_KEY_FILE) must be set in production mode",
        ),
        (
            {"MAMORI_DEBUG": "0", "ALLOWED_HOSTS": "example.jp"},
            "SECRET_KEY (or SECRET_KEY_FILE) must be set in production mode",
        ),
        ({"SECRET_KEY": GOOD_KEY}, "ALLOWED_HOSTS must be set in production mode."),
        (
            {"SECRET_KEY": GOOD_KEY, "ALLOWED_HOSTS": " , "},
            "ALLOWED_HOSTS must be set in production mode.",
        ),
        (
            {"SECRET_KEY": "short", "ALLOWED_HOSTS": "example.jp"},
            "SECRET_KEY must be a random string of at least 32 characters.",
        ),
        (
            {
                "SECRET_KEY": "dev-only-insecure-key-never-use-in-production-0123456789abcdef",
                "ALLOWED_HOSTS": "example.jp",
            },
            "SECRET_KEY must be a random string of at least 32 characters.",
        ),
        (
            {"SECRET_KEY_FILE": "/nonexistent/secret", "ALLOWED_HOSTS": "example.jp"},
            "SECRET_KEY_FILE='/nonexistent/secret' cannot be read: No such file or directory",
        ),
        (
            {"MAMORI_DEBUG": "maybe"},
            "MAMORI_DEBUG='maybe' is not a boolean (use 1/0, true/false, yes/no, on/off)",
        ),
        (
            {"MAMORI_DEBUG": "1", "MAMORI_REMINDER_INTERVAL_SECONDS": "hourly"},
            "MAMORI_REMINDER_INTERVAL_SECONDS='hourly' is not an integer",
        ),
        (
            {"MAMORI_DEBUG": "1", "DATABASE_URL": "mongodb://127.0.0.1/mamori"},
            "DATABASE_URL is not a database URL",
        ),
        (
            {"MAMORI_DEBUG": "1", "EMAIL_PORT": "smtp"},
            "EMAIL_PORT='smtp' is not an integer",
        ),
        (
            {"MAMORI_DEBUG": "1", "EMAIL_USE_TLS": "1", "EMAIL_USE_SSL": "1"},
            "EMAIL_USE_TLS and EMAIL_USE_SSL exclude each other; set one.",
        ),
        (
            {"MAMORI_DEBUG": "1", "MAMORI_TRUSTED_PROXIES": "127.0.0.1, nginx"},
            "MAMORI_TRUSTED_PROXIES: 'nginx' is not an IP address or CIDR range",
        ),
        (
            {"MAMORI_DEBUG": "1", "MAMORI_LOGIN_ADDRESS_FAILURE_LIMIT": "3"},
            "Login failure limits must be at least 1 and grow from MAMORI_LOGIN_FAILURE_LIMIT",
        ),
        (
            {"MAMORI_DEBUG": "1", "MAMORI_AGENT_TOKEN_LIFETIME_DAYS": "400"},
            "MAMORI_AGENT_TOKEN_LIFETIME_DAYS must be between 1 and MAMORI_TOKEN_MAX_LIFETIME_DAYS",
        ),
        (
            {"MAMORI_DEBUG": "1", "MAMORI_CACHE_URL": "memcached://127.0.0.1:11211"},
            "MAMORI_CACHE_URL must be a redis:// or rediss:// URL, or 'database'.",
        ),
        (
            {
                "SECRET_KEY": GOOD_KEY,
                "ALLOWED_HOSTS": "example.jp",
                "MAMORI_WEBHOOK_ALLOW_LOOPBACK": "1",
            },
            "MAMORI_WEBHOOK_ALLOW_LOOPBACK is for tests and development only (MAMORI_DEBUG=1)",
        ),
        (
            {"MAMORI_DEBUG": "1", "MAMORI_WEBHOOK_TIMEOUT_SECONDS": "600"},
            "MAMORI_WEBHOOK_TIMEOUT_SECONDS must be between 1 and 60.",
        ),
        (
            {"MAMORI_DEBUG": "1", "MAMORI_WEBHOOK_CA_FILE": "/nonexistent/ca.pem"},
            "MAMORI_WEBHOOK_CA_FILE='/nonexistent/ca.pem' is not a file of PEM certificates.",
        ),
        (
            {"MAMORI_DEBUG": "1", "MAMORI_EARLYWARNING_DIGEST_HOUR": "24"},
            "MAMORI_EARLYWARNING_DIGEST_HOUR must be an hour from 0 to 23.",
        ),
    ],
    ids=[
        "no-secret-key",
        "no-secret-key-debug-off",
        "no-allowed-hosts",
        "blank-allowed-hosts",
        "short-secret-key",
        "dev-key-in-production",
        "unreadable-key-file",
        "malformed-debug",
        "malformed-integer",
        "unknown-database",
        "malformed-mail-port",
        "tls-and-ssl",
        "malformed-trusted-proxy",
        "login-limits-out-of-order",
        "token-lifetime-over-maximum",
        "unknown-cache",
        "webhooks-to-loopback-in-production",
        "webhook-timeout-too-long",
        "missing-webhook-authorities",
        "digest-hour-out-of-range",
    ],
)
def test_misconfiguration_stops_start_up(tmp_path, variables, message):
    result = start(tmp_path, **variables)
    assert result.returncode != 0
    assert result.stdout == ""
    assert last_line(result).startswith("django.core.exceptions.ImproperlyConfigured: ")
    assert message in last_line(result)


def test_the_mamori_command_reports_a_bad_setting_in_one_line(tmp_path):
    result = start(tmp_path, [str(MAMORI), "check"], MAMORI_DEBUG="maybe")
    assert result.returncode == 2
    assert result.stderr == (
        "mamori: configuration error: MAMORI_DEBUG='maybe' is not a boolean "
        "(use 1/0, true/false, yes/no, on/off)\n"
    )
    missing_key = start(tmp_path, [str(MAMORI), "check"], ALLOWED_HOSTS="example.jp")
    assert missing_key.returncode == 2
    assert len(missing_key.stderr.splitlines()) == 1
    assert "SECRET_KEY (or SECRET_KEY_FILE) must be set" in missing_key.stderr


def test_production_mode_starts_with_a_key_and_hosts(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text(GOOD_KEY + "\n", encoding="utf-8")
    for variables in (
        {"SECRET_KEY": GOOD_KEY},
        {"SECRET_KEY_FILE": str(key_file)},
    ):
        shown = settings_in(tmp_path, ALLOWED_HOSTS="mamori.example.jp, 127.0.0.1", **variables)
        assert shown["DEBUG"] is False
        assert shown["ALLOWED_HOSTS"] == ["mamori.example.jp", "127.0.0.1"]
        assert shown["SESSION_COOKIE_SECURE"] is True


def test_development_mode_needs_no_key(tmp_path):
    shown = settings_in(tmp_path, MAMORI_DEBUG="1")
    assert shown["DEBUG"] is True
    assert shown["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost"]


def test_database_url_selects_postgresql_or_sqlite(tmp_path):
    base = {"SECRET_KEY": GOOD_KEY, "ALLOWED_HOSTS": "localhost"}

    postgres = settings_in(
        tmp_path, DATABASE_URL="postgres://mamori@db.example.jp:5433/mamori_prod", **base
    )
    assert postgres["ENGINE"] == "django.db.backends.postgresql"
    assert postgres["NAME"] == "mamori_prod"
    assert postgres["HOST"] == "db.example.jp"
    assert postgres["PORT"] == 5433
    assert postgres["USER"] == "mamori"

    database = tmp_path / "data" / "mamori.sqlite3"
    sqlite = settings_in(tmp_path, DATABASE_URL=f"sqlite:///{database}", **base)
    assert sqlite["ENGINE"] == "django.db.backends.sqlite3"
    assert sqlite["NAME"] == str(database)
    # A file-based test database, so a worker started by a test can open it too.
    assert sqlite["TEST_NAME"] == f"{database}-test"

    # Without DATABASE_URL: the embedded SQLite file under MAMORI_VAR_DIR.
    default = settings_in(tmp_path, **base)
    assert default["ENGINE"] == "django.db.backends.sqlite3"
    assert default["NAME"] == str(tmp_path / "var" / "mamori.sqlite3")


def test_celery_broker_url_selects_real_workers(tmp_path):
    base = {"SECRET_KEY": GOOD_KEY, "ALLOWED_HOSTS": "localhost"}
    embedded = settings_in(tmp_path, **base)
    assert embedded["EMBEDDED_TASKS"] is True
    assert embedded["EAGER"] is True  # web and CLI run tasks in-process
    worker = settings_in(tmp_path, MAMORI_WORKER_PROCESS="1", **base)
    assert worker["EMBEDDED_TASKS"] is True
    assert worker["EAGER"] is False  # the embedded worker takes them from the file broker
    redis = settings_in(tmp_path, CELERY_BROKER_URL="redis://127.0.0.1:6379/0", **base)
    assert redis["EMBEDDED_TASKS"] is False
    assert redis["EAGER"] is False


def test_the_shared_cache_is_redis_when_configured_else_the_database(tmp_path):
    base = {"SECRET_KEY": GOOD_KEY, "ALLOWED_HOSTS": "localhost"}
    assert settings_in(tmp_path, **base)["CACHE"] == ["DatabaseCache", "mamori_cache"]
    broker = "redis://127.0.0.1:6379/0"
    assert settings_in(tmp_path, CELERY_BROKER_URL=broker, **base)["CACHE"] == [
        "RedisCache",
        broker,
    ]
    own = settings_in(
        tmp_path, CELERY_BROKER_URL=broker, MAMORI_CACHE_URL="redis://cache.internal:6379/3", **base
    )
    assert own["CACHE"] == ["RedisCache", "redis://cache.internal:6379/3"]


def test_the_site_address_follows_the_served_port_unless_configured(tmp_path):
    base = {"SECRET_KEY": GOOD_KEY, "ALLOWED_HOSTS": "localhost"}
    assert settings_in(tmp_path, **base)["SITE_URL"] == "http://127.0.0.1:8000"
    assert settings_in(tmp_path, PORT="8741", **base)["SITE_URL"] == "http://127.0.0.1:8741"
    configured = settings_in(
        tmp_path, PORT="8741", MAMORI_SITE_URL="https://mamori.example.jp/", **base
    )
    assert configured["SITE_URL"] == "https://mamori.example.jp"


def write_instance(tmp_path: Path, *lines: str) -> Path:
    """What ``make run`` leaves behind: a key file and var/instance.env naming it."""
    key_file = tmp_path / "var" / "secret_key"
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(GOOD_KEY + "\n", encoding="utf-8")
    instance = tmp_path / "var" / "instance.env"
    instance.write_text(
        "\n".join(
            [
                "# written by make run",
                f"SECRET_KEY_FILE={key_file}",
                "ALLOWED_HOSTS=127.0.0.1,localhost",
                "MAMORI_HTTPS=0",
                "",
                *lines,
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return instance


def test_commands_reach_the_local_instance_with_no_variables(tmp_path):
    """After ``make run``, ``mamori …`` in another terminal needs nothing exported."""
    write_instance(tmp_path, "MAMORI_SITE_URL=http://127.0.0.1:8741")
    shown = settings_in(tmp_path)
    assert (shown["DEBUG"], shown["ALLOWED_HOSTS"]) == (False, ["127.0.0.1", "localhost"])
    assert shown["SESSION_COOKIE_SECURE"] is False
    assert shown["SITE_URL"] == "http://127.0.0.1:8741"
    assert start(tmp_path, [str(MAMORI), "migrate", "--noinput"]).returncode == 0
    listed = start(tmp_path, [str(MAMORI), "certificates", "list", "--format", "json"])
    assert (listed.returncode, listed.stderr) == (0, "")
    assert json.loads(listed.stdout) == []
    # The environment always wins over the file.
    overridden = settings_in(tmp_path, ALLOWED_HOSTS="mamori.example.jp", MAMORI_HTTPS="1")
    assert overridden["ALLOWED_HOSTS"] == ["mamori.example.jp"]
    assert overridden["SESSION_COOKIE_SECURE"] is True


def test_a_malformed_instance_file_stops_start_up_with_its_line(tmp_path):
    instance = write_instance(tmp_path, "export MAMORI_DEBUG 1")
    result = start(tmp_path, [str(MAMORI), "check"])
    assert result.returncode == 2
    assert result.stderr == (
        f"mamori: configuration error: {instance}:6: expected NAME=value, "
        "found 'export MAMORI_DEBUG 1'\n"
    )


def test_file_commands_run_with_no_configuration_at_all(tmp_path):
    """``catalogue check`` and ``supplychain analyse`` read a file and print: they run right
    after ``make install``, create nothing, and have no database to touch."""
    bundled = Path(__file__).resolve().parents[2] / "src/mamori/catalogue/data/ce-jp-2026.yaml"
    graph = tmp_path / "graph.json"
    graph.write_text(
        json.dumps(
            {
                "schema": "mamori.supplygraph/1",
                "nodes": [
                    {
                        "id": node,
                        "entity": node.split(":")[0],
                        "name": node,
                        "country": "JP",
                        "critical": node == "bank:core",
                        "certified": True,
                        "disclosure": "full",
                    }
                    for node in ("bank:core", "dc")
                ],
                "requirements": [{"node": "bank:core", "need": "hosting", "providers": ["dc"]}],
            }
        ),
        encoding="utf-8",
    )
    nothing = {"MAMORI_VAR_DIR": None}  # not even the variable ``start`` sets
    checked = start(tmp_path, [str(MAMORI), "catalogue", "check", str(bundled)], **nothing)
    assert (checked.returncode, checked.stderr) == (0, "")
    assert "ok: CE-JP 2026" in checked.stdout
    analysed = start(
        tmp_path, [str(MAMORI), "supplychain", "analyse", str(graph), "--format", "json"], **nothing
    )
    assert (analysed.returncode, analysed.stderr) == (0, "")
    assert json.loads(analysed.stdout)["spof"] == {"bank:core": ["dc"]}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["graph.json"]
    # Every other command still refuses to start without real settings.
    refused = start(tmp_path, [str(MAMORI), "certificates", "list"], **nothing)
    assert refused.returncode == 2
    assert "SECRET_KEY (or SECRET_KEY_FILE) must be set" in refused.stderr


@pytest.mark.django_db
def test_healthz_answers_ok_without_login(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_webhooks_to_loopback_are_for_development_mode_only(tmp_path):
    show = "import django; django.setup(); from django.conf import settings as s; "
    show += "print(s.WEBHOOK_ALLOW_LOOPBACK)"
    result = start(
        tmp_path,
        [sys.executable, "-c", show],
        MAMORI_DEBUG="1",
        MAMORI_WEBHOOK_ALLOW_LOOPBACK="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
