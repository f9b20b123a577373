"""Mamori settings, read from environment variables.

Embedded default: SQLite under ``var/`` and background tasks run in-process. Scale-out: set
``DATABASE_URL`` (PostgreSQL) and ``CELERY_BROKER_URL`` (Redis). Production mode (``MAMORI_DEBUG``
unset or false) refuses to start without a real ``SECRET_KEY`` and ``ALLOWED_HOSTS``.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from mamori.core.client_address import parse_networks
from mamori.envconfig import (
    ConfigError,
    env_bool,
    env_int,
    env_list,
    env_secret,
    env_str,
    load_instance_file,
)

PACKAGE_DIR = Path(__file__).resolve().parent
BASE_DIR = Path(env_str("MAMORI_HOME", str(Path.cwd())))
VAR_DIR = Path(env_str("MAMORI_VAR_DIR", str(BASE_DIR / "var")))
# Commands that read a file and print a result (``catalogue check``, ``supplychain analyse``)
# run with no configuration at all: ``mamori`` sets this for them only. They get a key that
# dies with the process and no database, so nothing they could do would outlive them.
OFFLINE_COMMAND = env_str("MAMORI_OFFLINE_COMMAND") == "1"
# The local instance ``make run`` wrote, for every other command run from the same checkout.
INSTANCE_FILE = VAR_DIR / "instance.env"

try:
    if not OFFLINE_COMMAND:
        load_instance_file(INSTANCE_FILE)
    DEBUG = env_bool("MAMORI_DEBUG", False)
    # Plain HTTP on loopback (``make run``) cannot carry Secure cookies in every browser.
    HTTPS = env_bool("MAMORI_HTTPS", True)
    SESSION_IDLE_MINUTES = env_int("MAMORI_SESSION_IDLE_MINUTES", 60)
    EVIDENCE_MAX_BYTES = env_int("MAMORI_EVIDENCE_MAX_BYTES", 10 * 1024 * 1024)
    REMINDER_INTERVAL_SECONDS = env_int("MAMORI_REMINDER_INTERVAL_SECONDS", 3600)
    # Agent uploads: the largest evidence accepted (after gzip), and how recent a check-in must
    # be to count on a certificate's continuous-assurance panel.
    MAMORI_EVIDENCE_UPLOAD_MAX_BYTES = env_int("MAMORI_AGENT_UPLOAD_MAX_BYTES", 16 * 1024 * 1024)
    # No request body larger than this is read, whatever the URL (core/bodylimit.py); each
    # upload has its own, smaller limit below, and other views take Django's form-data limit.
    REQUEST_MAX_BYTES = env_int("MAMORI_REQUEST_MAX_BYTES", 20 * 1024 * 1024)
    # The offline supplier questionnaire (xlsx/CSV): the largest file, and the rows of answers
    # read per sheet (the template has room for this many; see supplychain/offline.py).
    OFFLINE_UPLOAD_MAX_BYTES = env_int("MAMORI_OFFLINE_UPLOAD_MAX_BYTES", 2 * 1024 * 1024)
    OFFLINE_MAX_ROWS = env_int("MAMORI_OFFLINE_MAX_ROWS", 500)
    MAMORI_ASSURANCE_CHECKIN_DAYS = env_int("MAMORI_ASSURANCE_CHECKIN_DAYS", 7)
    # Login lock-out tiers (accounts/lockout.py): one account from one address, one account
    # from anywhere, one address for every account (higher: many people may share it).
    LOGIN_FAILURE_LIMIT = env_int("MAMORI_LOGIN_FAILURE_LIMIT", 5)
    LOGIN_ACCOUNT_FAILURE_LIMIT = env_int("MAMORI_LOGIN_ACCOUNT_FAILURE_LIMIT", 10)
    LOGIN_ADDRESS_FAILURE_LIMIT = env_int("MAMORI_LOGIN_ADDRESS_FAILURE_LIMIT", 50)
    # API tokens expire: a default lifetime per kind, the longest an issuer may choose, how long
    # a rotated key keeps working beside its replacement, and when the pages start to warn.
    TOKEN_LIFETIME_DAYS = {
        "user": env_int("MAMORI_TOKEN_LIFETIME_DAYS", 90),
        "agent": env_int("MAMORI_AGENT_TOKEN_LIFETIME_DAYS", 365),
    }
    TOKEN_MAX_LIFETIME_DAYS = env_int("MAMORI_TOKEN_MAX_LIFETIME_DAYS", 365)
    TOKEN_ROTATION_OVERLAP_HOURS = env_int("MAMORI_TOKEN_ROTATION_OVERLAP_HOURS", 72)
    TOKEN_EXPIRY_WARNING_DAYS = env_int("MAMORI_TOKEN_EXPIRY_WARNING_DAYS", 14)
    # Readiness (core/readiness.py): the beat sends a heartbeat every HEARTBEAT_SECONDS and a
    # worker or beat silent for three of them is not ready; free space under var/ and the files
    # directory; how long each probe may take; how long a process reuses its last answer.
    HEARTBEAT_SECONDS = env_int("MAMORI_HEARTBEAT_SECONDS", 60)
    HEARTBEAT_STALE_SECONDS = 3 * HEARTBEAT_SECONDS
    DISK_MIN_FREE_MB = env_int("MAMORI_DISK_MIN_FREE_MB", 1024)
    READINESS_TIMEOUT_SECONDS = env_int("MAMORI_READINESS_TIMEOUT_SECONDS", 2)
    READINESS_CACHE_SECONDS = env_int("MAMORI_READINESS_CACHE_SECONDS", 5)
    # Early warning. Documentation address ranges and example domains (RFC 5737, 3849, 2606)
    # can be registered only where nothing real is watched: the demo and the tests, whose
    # fictitious organisations must not be given addresses that belong to real ones.
    EARLYWARNING_DOCUMENTATION_ASSETS = env_bool("MAMORI_EARLYWARNING_DOCUMENTATION_ASSETS", False)
    # The recursive resolver that domain ownership checks ask (an IP address and port): by
    # default the machine's own (the first nameserver of /etc/resolv.conf).
    DNS_RESOLVER = env_str("MAMORI_DNS_RESOLVER", "")
    DNS_PORT = env_int("MAMORI_DNS_PORT", 53)
    DNS_TIMEOUT_SECONDS = env_int("MAMORI_DNS_TIMEOUT_SECONDS", 5)
    # Webhooks (earlywarning/delivery.py): how long one delivery may take in all, whatever the
    # receiver does; a file of trusted authorities for receivers' certificates instead of the
    # system's (empty: the system's); and, for tests and local development only, receivers on
    # loopback addresses (refused below in production mode: webhooks reach public hosts only).
    WEBHOOK_TIMEOUT_SECONDS = env_int("MAMORI_WEBHOOK_TIMEOUT_SECONDS", 10)
    WEBHOOK_CA_FILE = env_str("MAMORI_WEBHOOK_CA_FILE", "")
    WEBHOOK_ALLOW_LOOPBACK = env_bool("MAMORI_WEBHOOK_ALLOW_LOOPBACK", False)
    # Early-warning daily digests of the previous day go out from this hour (local time).
    EARLYWARNING_DIGEST_HOUR = env_int("MAMORI_EARLYWARNING_DIGEST_HOUR", 8)
    # How often beat looks for feeds whose own interval (set per feed) has elapsed.
    EARLYWARNING_FEED_CHECK_SECONDS = env_int("MAMORI_EARLYWARNING_FEED_CHECK_SECONDS", 60)
    # Reverse proxies whose X-Forwarded-For names the client (core/client_address.py).
    TRUSTED_PROXIES = env_list("MAMORI_TRUSTED_PROXIES", [])
    SECRET_KEY = env_secret("SECRET_KEY")
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
    # The public address of this instance, for links in e-mail and PDFs (no request at hand
    # there). By default the loopback address on the port ``mamori serve`` is given.
    SITE_URL = env_str("MAMORI_SITE_URL", "").rstrip("/") or (
        f"http://127.0.0.1:{env_int('PORT', 8000)}"
    )
except ConfigError as exc:
    raise ImproperlyConfigured(str(exc)) from None
try:
    parse_networks(TRUSTED_PROXIES)
except ValueError as exc:
    raise ImproperlyConfigured(f"MAMORI_TRUSTED_PROXIES: {exc}") from None
if not 1 <= LOGIN_FAILURE_LIMIT <= LOGIN_ACCOUNT_FAILURE_LIMIT <= LOGIN_ADDRESS_FAILURE_LIMIT:
    raise ImproperlyConfigured(
        "Login failure limits must be at least 1 and grow from MAMORI_LOGIN_FAILURE_LIMIT to "
        "MAMORI_LOGIN_ACCOUNT_FAILURE_LIMIT to MAMORI_LOGIN_ADDRESS_FAILURE_LIMIT."
    )
if not all(1 <= days <= TOKEN_MAX_LIFETIME_DAYS for days in TOKEN_LIFETIME_DAYS.values()):
    raise ImproperlyConfigured(
        "MAMORI_TOKEN_LIFETIME_DAYS and MAMORI_AGENT_TOKEN_LIFETIME_DAYS must be between 1 and "
        "MAMORI_TOKEN_MAX_LIFETIME_DAYS."
    )
if HEARTBEAT_SECONDS < 1 or READINESS_TIMEOUT_SECONDS < 1:
    raise ImproperlyConfigured(
        "MAMORI_HEARTBEAT_SECONDS and MAMORI_READINESS_TIMEOUT_SECONDS must be at least 1."
    )
if WEBHOOK_ALLOW_LOOPBACK and not DEBUG:
    raise ImproperlyConfigured(
        "MAMORI_WEBHOOK_ALLOW_LOOPBACK is for tests and development only (MAMORI_DEBUG=1): in "
        "production webhooks go to public internet addresses only."
    )
if not 1 <= WEBHOOK_TIMEOUT_SECONDS <= 60:
    raise ImproperlyConfigured("MAMORI_WEBHOOK_TIMEOUT_SECONDS must be between 1 and 60.")
if WEBHOOK_CA_FILE and not Path(WEBHOOK_CA_FILE).is_file():
    raise ImproperlyConfigured(
        f"MAMORI_WEBHOOK_CA_FILE={WEBHOOK_CA_FILE!r} is not a file of PEM certificates."
    )
if not 0 <= EARLYWARNING_DIGEST_HOUR <= 23:
    raise ImproperlyConfigured("MAMORI_EARLYWARNING_DIGEST_HOUR must be an hour from 0 to 23.")
if TOKEN_ROTATION_OVERLAP_HOURS < 0 or TOKEN_EXPIRY_WARNING_DAYS < 0:
    raise ImproperlyConfigured(
        "MAMORI_TOKEN_ROTATION_OVERLAP_HOURS and MAMORI_TOKEN_EXPIRY_WARNING_DAYS cannot be negative."
    )

_DEV_ONLY_KEY = "dev-only-insecure-key-never-use-in-production-0123456789abcdef"
if OFFLINE_COMMAND and not SECRET_KEY:
    SECRET_KEY = secrets.token_urlsafe(48)
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY (or SECRET_KEY_FILE) must be set in production mode; "
            "set MAMORI_DEBUG=1 for a development server."
        )
    SECRET_KEY = _DEV_ONLY_KEY
elif len(SECRET_KEY) < 32 or SECRET_KEY == _DEV_ONLY_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be a random string of at least 32 characters.")
if not DEBUG and not ALLOWED_HOSTS and not OFFLINE_COMMAND:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set in production mode.")

INSTALLED_APPS = [
    # The Django admin for staff, behind our login and the second factor (core/admin_site.py).
    "mamori.core.admin_site.MamoriAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "django_htmx",
    "csp",
    "mamori.core",
    "mamori.accounts",
    "mamori.organisations",
    "mamori.audit",
    "mamori.catalogue",
    "mamori.assessments",
    "mamori.certificates",
    "mamori.advisories",
    "mamori.verification",
    "mamori.plus",
    "mamori.supplychain",
    "mamori.earlywarning",
    "mamori.reporting",
    "mamori.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Keeps a session in use alive (idle timeout), writing it at most once a minute.
    "mamori.core.middleware.SlidingSessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "mamori.core.middleware.RejectNulPathMiddleware",
    # Before the CSRF check, the first to read a body: oversized bodies are refused unread.
    "mamori.core.bodylimit.RequestBodyLimitMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "mamori.accounts.middleware.MfaRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mamori.urls"
WSGI_APPLICATION = "mamori.wsgi.application"
AUTH_USER_MODEL = "accounts.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "mamori.organisations.context_processors.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
_default_sqlite = VAR_DIR / "mamori.sqlite3"
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{_default_sqlite}")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
if OFFLINE_COMMAND:
    # Any database access is a bug in such a command, and fails loudly on the dummy backend.
    DATABASES = {"default": {"ENGINE": "django.db.backends.dummy"}}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    _sqlite_name = str(DATABASES["default"]["NAME"])
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL and a busy timeout let the web server, the worker and the CLI share one file.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
    }
    # A file-based test database, so a Celery worker started by a test can open it too.
    DATABASES["default"]["TEST"] = {"NAME": env_str("MAMORI_TEST_SQLITE", _sqlite_name + "-test")}
    if _sqlite_name != ":memory:":
        Path(_sqlite_name).parent.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Authentication and security --------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# Our own catalogue's password rule: at least 12 characters, common passwords blocked, no
# maximum length and no composition or expiry rules.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

# django-axes: lock out after repeated failures in three tiers with a limit each (per account and
# address, per account, per address: accounts/lockout.py), keyed on the real client address.
AXES_HANDLER = "mamori.accounts.lockout.TieredLockoutHandler"
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "username", "ip_address"]
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False
AXES_CLIENT_IP_CALLABLE = "mamori.core.client_address.client_address"

OTP_TOTP_ISSUER = "Mamori"
# django-otp's throttle makes one wait after the first wrong code; accounts/mfa.py lets a few
# wrong codes go first and throttles after them (django-otp still counts them on the device).
OTP_TOTP_THROTTLE_FACTOR = 0

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60
SESSION_SAVE_EVERY_REQUEST = False  # core.middleware.SlidingSessionMiddleware
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = HTTPS
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if HTTPS and not DEBUG:
    SECURE_HSTS_SECONDS = 31536000
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
TIME_ZONE = "Asia/Tokyo"
# One date and one date-time format per language (mamori/formats/<language>/formats.py).
FORMAT_MODULE_PATH = ["mamori.formats"]
USE_I18N = True
USE_TZ = True

# --- Files ----------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
if not OFFLINE_COMMAND:  # whitenoise expects it even when serving finders
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [PACKAGE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
# Evidence and generated documents live outside the web root and have no URL of their own:
# only views that check permissions hand them out, always as attachments.
PRIVATE_FILES_ROOT = Path(env_str("MAMORI_FILES_DIR", str(VAR_DIR / "files")))
STORAGES = {
    "default": {
        # Django's file system storage, but a failed write leaves no partial file behind.
        "BACKEND": "mamori.core.storage.PrivateFileStorage",
        "OPTIONS": {"location": PRIVATE_FILES_ROOT, "base_url": None},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# An inventory table posts one field per cell: room for its 500 rows of up to 8 columns, where
# Django's default of 1,000 fields refused tables of more than ~160 rows with a bare 400.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 5000
FILE_UPLOAD_PERMISSIONS = 0o640

# --- E-mail ---------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = env_str("MAMORI_EMAIL_DIR", str(VAR_DIR / "mail"))
try:
    EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
    EMAIL_PORT = env_int("EMAIL_PORT", 25)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)  # STARTTLS, usually port 587
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)  # TLS from the start, usually port 465
    EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)
except ConfigError as exc:
    raise ImproperlyConfigured(str(exc)) from None
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL exclude each other; set one.")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "mamori@localhost")

# --- Background work --------------------------------------------------------------------------
# Without CELERY_BROKER_URL tasks run in-process, and ``mamori serve`` runs a worker with an
# embedded beat on a broker kept in files under var/, so no extra service is needed.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "")
EMBEDDED_TASKS = CELERY_BROKER_URL == ""
CELERY_BROKER_DIR = VAR_DIR / "broker"
CELERY_TASK_ALWAYS_EAGER = EMBEDDED_TASKS and not env_bool("MAMORI_WORKER_PROCESS", False)
try:
    # A task a worker took but never finished (the worker was killed) goes back to the queue
    # after this long on Redis; it must exceed the longest task's run time.
    CELERY_VISIBILITY_TIMEOUT = env_int("MAMORI_TASK_VISIBILITY_TIMEOUT", 90)
    # How long a request waits for the broker before leaving its work to the outbox's beat.
    BROKER_CONNECT_TIMEOUT = env_int("MAMORI_BROKER_CONNECT_TIMEOUT", 2)
    # The outbox (core/outbox.py): how often the beat hands over what is due; the first
    # backoff after a failure (doubling up to an hour); how long a published task may take to
    # report back before it is published again; how many attempts before it is given up; how
    # long done rows are kept.
    OUTBOX_INTERVAL_SECONDS = env_int("MAMORI_OUTBOX_INTERVAL_SECONDS", 30)
    OUTBOX_RETRY_SECONDS = env_int("MAMORI_OUTBOX_RETRY_SECONDS", 30)
    OUTBOX_REDELIVER_SECONDS = env_int("MAMORI_OUTBOX_REDELIVER_SECONDS", 150)
    OUTBOX_MAX_ATTEMPTS = env_int("MAMORI_OUTBOX_MAX_ATTEMPTS", 100)
    OUTBOX_RETENTION_DAYS = env_int("MAMORI_OUTBOX_RETENTION_DAYS", 7)
    # Periodic clean-up (``mamori cleanup``, daily on the beat).
    LOGIN_RECORDS_RETENTION_DAYS = env_int("MAMORI_LOGIN_RECORDS_RETENTION_DAYS", 90)
    ORPHAN_FILE_GRACE_HOURS = env_int("MAMORI_ORPHAN_FILE_GRACE_HOURS", 24)
except ConfigError as exc:
    raise ImproperlyConfigured(str(exc)) from None
if CELERY_VISIBILITY_TIMEOUT < 1 or BROKER_CONNECT_TIMEOUT < 1:
    raise ImproperlyConfigured(
        "MAMORI_TASK_VISIBILITY_TIMEOUT and MAMORI_BROKER_CONNECT_TIMEOUT are seconds, at least 1."
    )
if OUTBOX_REDELIVER_SECONDS <= CELERY_VISIBILITY_TIMEOUT:
    raise ImproperlyConfigured(
        "MAMORI_OUTBOX_REDELIVER_SECONDS must exceed MAMORI_TASK_VISIBILITY_TIMEOUT: the broker "
        "gets the first chance to hand a killed worker's task to another."
    )
if (
    min(OUTBOX_INTERVAL_SECONDS, OUTBOX_RETRY_SECONDS, OUTBOX_MAX_ATTEMPTS) < 1
    or min(OUTBOX_RETENTION_DAYS, LOGIN_RECORDS_RETENTION_DAYS, ORPHAN_FILE_GRACE_HOURS) < 0
):
    raise ImproperlyConfigured("The outbox and clean-up settings must be positive numbers.")
if LOGIN_RECORDS_RETENTION_DAYS < 1:
    raise ImproperlyConfigured(
        "MAMORI_LOGIN_RECORDS_RETENTION_DAYS must be at least 1: the records hold the lockouts."
    )

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "mamori.accounts.authentication.OrganisationTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # DRF's limit/offset pages with a ceiling on the limit (core/pagination.py).
    "DEFAULT_PAGINATION_CLASS": "mamori.core.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "mamori.core.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_RATES": {"public": env_str("MAMORI_PUBLIC_API_RATE", "120/minute")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Mamori API",
    "DESCRIPTION": "Scheme core: organisations, assessments, marks, decisions and certificates.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Early warning's choices have names of their own (other apps have "state" and "kind" too).
    "ENUM_NAME_OVERRIDES": {
        "AlertStateEnum": "mamori.earlywarning.models.AlertState",
        "AssetKindEnum": "mamori.earlywarning.models.AssetKind",
        "AssetStateEnum": "mamori.earlywarning.models.AssetState",
        # The Plus device kind keeps the name it had before the assets' kind came.
        "KindEnum": "mamori.plus.models.DeviceKind",
    },
}

# --- Cache -----------------------------------------------------------------------------------
# One cache for every web process, so that what is counted there (the public API's rate limit,
# core/ratelimit.py) is counted once for the whole site, not once per gunicorn worker: Redis when
# MAMORI_CACHE_URL (or else a Redis CELERY_BROKER_URL) names one, otherwise a table in the
# database (created by ``mamori migrate``).
CACHE_URL = env_str("MAMORI_CACHE_URL", "") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else ""
)
CACHE_IS_REDIS = CACHE_URL.startswith(("redis://", "rediss://"))
if CACHE_IS_REDIS:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "mamori",
            # A cache that does not answer must not hold up requests (the rate limit lets
            # requests through then, and the readiness check reports it).
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
elif CACHE_URL in ("", "database"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "mamori_cache",
        }
    }
else:
    raise ImproperlyConfigured(
        "MAMORI_CACHE_URL must be a redis:// or rediss:// URL, or 'database'."
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("MAMORI_LOG_LEVEL", "INFO")},
    "loggers": {
        # Request bodies never reach the logs; 4xx responses are expected, not noise.
        "django.request": {"level": "ERROR"},
        "axes": {"level": "WARNING"},
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING"},
        # A line per webhook delivery otherwise; the delivery log has each attempt.
        "httpx": {"level": "WARNING"},
        # In-process tasks open a broker connection object they never use; its notice is noise.
        "kombu.connection": {"level": "ERROR"},
    },
}
