"""Settings for Activity Monitor, read from the environment (see .env.example)."""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import dj_database_url
import django_stubs_ext
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

# Django's generic classes (ModelAdmin[Organization], admin inlines) can then be subscripted at
# run time, as make lint's type check (mypy with django-stubs) wants them written.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent


# A local run's settings live in a git-ignored .env beside manage.py (`make run` writes one with
# DEBUG=1 and a generated SECRET_KEY when there is none), so every manage.py command sees what the
# server sees. A variable set in the environment wins over the file. DOTENV_FILE names another
# file (which must exist); set empty, no file is read. The test suite reads none: pytest sets
# PYTEST_VERSION for its run, the servers and workers that tests start inherit it, and tests state
# their environment themselves, so a developer's .env never changes what they see.
def dotenv_file(environ: Mapping[str, str]) -> str:
    """Return the path of the .env file to read under this environment, or "" for none."""
    if "DOTENV_FILE" not in environ:
        return "" if "PYTEST_VERSION" in environ else str(BASE_DIR / ".env")
    path = environ["DOTENV_FILE"]
    if path and not Path(path).is_file():
        raise ImproperlyConfigured(f"DOTENV_FILE={path!r} is not a file.")
    return path


if _dotenv_file := dotenv_file(os.environ):
    load_dotenv(_dotenv_file, override=False)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _unparsable(name: str, value: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name}={value!r} is not {expected}.")


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool = False) -> bool:
    """Return the variable as a boolean; empty or unset is the default, a typo stops start-up."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise _unparsable(name, value, "a boolean (1, true, yes, on or 0, false, no, off)")


def envint(name: str, default: int) -> int:
    """Return the variable as an integer; empty or unset is the default."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise _unparsable(name, value, "an integer") from None


def envfloat(name: str, default: float, *, minimum: float | None = None) -> float:
    """Return the variable as a finite number, at least `minimum`; empty or unset is the default."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise _unparsable(name, value, "a number")
    if minimum is not None and number < minimum:
        raise _unparsable(name, value, f"a number of at least {minimum:g}")
    return number


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def envints(name: str) -> list[int]:
    """Return the variable's comma-separated whole numbers."""
    numbers: list[int] = []
    for item in envlist(name):
        try:
            numbers.append(int(item))
        except ValueError:
            raise _unparsable(name, item, "a whole number") from None
    return numbers


def envnetworks(name: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Return the variable's comma-separated addresses and CIDRs as networks."""
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for item in envlist(name):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise _unparsable(name, item, "an IP address or network (CIDR)") from None
    return networks


DEBUG = envbool("DEBUG", False)
SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "Set SECRET_KEY (in the environment or .env; only DEBUG=1 runs get a development key)."
        )
    SECRET_KEY = "development-only-key-never-use-in-production"  # noqa: S105

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

# Client IP resolution: REMOTE_ADDR unless the peer is one of these networks, then the right-most
# X-Forwarded-For address that is not. Empty by default: no proxy is trusted.
TRUSTED_PROXIES = envnetworks("TRUSTED_PROXIES")

GEOIP_CITY_DB = env("GEOIP_CITY_DB")
# A MaxMind ASN database (GeoLite2-ASN or GeoIP2-ISP): which network operator an address belongs
# to, for the anonymising-network alert rule's hosting providers. Empty: no ASN lookups.
GEOIP_ASN_DB = env("GEOIP_ASN_DB")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    # Passkeys: its WebAuthnCredential is a django-otp Device; our own views drive the ceremonies
    # (accounts.passkeys) so that they fit the two-step sign-in, the lockout and the audit events.
    "django_otp_webauthn",
    "accounts",
    "audit",
    "alerts",
    "exports",
    "api",
    "retention",
    "integrity",
    "operations",
    "compliance",
    "reports",
    "streams",
    "policies",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "audit.middleware.RequestContextMiddleware",
    # An address the throttle already refused is answered here, before sessions and CSRF:
    # one Redis round trip, no database (accounts.throttle_fast; README, "Throttling").
    "accounts.throttle_fast.ThrottleFastPathMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Pages show times in the signed-in person's zone (CSV and the API stay in UTC).
    "accounts.middleware.TimeZoneMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Session last-activity (at most once a minute) and the MFA enrolment an org requires.
    "accounts.middleware.AccountSecurityMiddleware",
]

ROOT_URLCONF = "activity_monitor.urls"
WSGI_APPLICATION = "activity_monitor.wsgi.application"
ASGI_APPLICATION = "activity_monitor.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.navigation",
                "alerts.context_processors.navigation",
            ],
        },
    },
]

# --- Database ------------------------------------------------------------------------------
DATABASE_URL = env("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
_default_db = dj_database_url.parse(DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", 60))
# Every request runs in one transaction; the few writes that must survive its rollback (failed
# sign-ins and other refusals), when made inside a transaction, go through the "audit" alias, a
# second connection to the same database that commits on its own (audit.services.durable_alias).
_default_db["ATOMIC_REQUESTS"] = True
if _default_db["ENGINE"].endswith("sqlite3"):
    # WAL lets the "audit" connection commit while a request's transaction is reading.
    _default_db.setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
DATABASES: dict[str, dj_database_url.DBConfig] = {
    "default": _default_db,
    "audit": {**_default_db, "ATOMIC_REQUESTS": False, "TEST": {"MIRROR": "default"}},
}
# PostgreSQL with two roles (README, "Database roles"): DATABASE_URL is the app's role, which may
# insert and read events but not change, delete or own them; DATABASE_OWNER_URL is the role that
# owns the tables, used only by `manage.py migrate --database owner` (which then grants the app's
# role what it needs, audit.roles) and by the tests to create their database.
DATABASE_OWNER_URL = env("DATABASE_OWNER_URL")
if DATABASE_OWNER_URL:
    _owner_db = dj_database_url.parse(DATABASE_OWNER_URL, conn_max_age=0)
    _where = ("ENGINE", "NAME", "HOST", "PORT")
    if [_owner_db.get(key) for key in _where] != [_default_db.get(key) for key in _where]:
        raise ImproperlyConfigured("DATABASE_OWNER_URL must name DATABASE_URL's database.")
    DATABASES["owner"] = {**_owner_db, "ATOMIC_REQUESTS": False}
    # Tests create and migrate their database as the owner; the app's connections then use it
    # as the app's role.
    DATABASES["default"]["TEST"] = {"MIRROR": "owner"}
    DATABASES["audit"]["TEST"] = {"MIRROR": "owner"}
# PostgreSQL out of reach: connecting gives up after DB_CONNECT_TIMEOUT seconds and the page
# answers 503 (activity_monitor/errors.py); a kept connection is checked before a request reuses it.
for _database in DATABASES.values():
    _database["CONN_HEALTH_CHECKS"] = True
    if _database["ENGINE"].endswith("postgresql"):
        _database.setdefault("OPTIONS", {})["connect_timeout"] = envint("DB_CONNECT_TIMEOUT", 3)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Authentication --------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.EmailBackend"]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:profile"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Argon2id first, as Django recommends: new passwords are hashed with it, and a password stored
# with one of the others is re-hashed with it when its owner next signs in (check_password).
PASSWORD_HASHERS = envlist(
    "PASSWORD_HASHERS",
    "django.contrib.auth.hashers.Argon2PasswordHasher,"
    "django.contrib.auth.hashers.PBKDF2PasswordHasher,"
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
)
PASSWORD_RESET_TIMEOUT = envint("PASSWORD_RESET_TIMEOUT", 60 * 60)

SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", 60 * 60 * 12)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# A long-lived random cookie that tells one browser from another (new-device alerts).
DEVICE_COOKIE_NAME = "am_device"
DEVICE_COOKIE_AGE = 60 * 60 * 24 * 400  # browsers cap cookie lifetime at 400 days

# Shown as the account's issuer in authenticator apps.
OTP_TOTP_ISSUER = "Activity Monitor"

# Passkeys (WebAuthn). A passkey is bound to the RP ID (a domain, never an IP address: browsers
# refuse those) and answered only from the allowed origins. The defaults fit `make run` opened
# at http://localhost:8000 (browsers treat http://localhost as a secure context).
WEBAUTHN_RP_ID = env("WEBAUTHN_RP_ID", "localhost")
WEBAUTHN_ALLOWED_ORIGINS = envlist("WEBAUTHN_ALLOWED_ORIGINS", "http://localhost:8000")
OTP_WEBAUTHN_RP_ID = WEBAUTHN_RP_ID
OTP_WEBAUTHN_ALLOWED_ORIGINS = WEBAUTHN_ALLOWED_ORIGINS
OTP_WEBAUTHN_RP_NAME = "Activity Monitor"
# Passkeys hold the sign-in itself: each must be discoverable (resident) and verify its user.
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = True
OTP_WEBAUTHN_TIMEOUT_SECONDS = 2 * 60

# --- Celery ----------------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL")
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = REDIS_URL or "memory://"
# kombu's Redis transport with an acknowledgement that cannot stop the worker once the broker
# connection is gone (activity_monitor.broker).
CELERY_BROKER_TRANSPORT = "activity_monitor.broker:Transport" if REDIS_URL else None
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Database connections are kept across tasks as across requests (CONN_MAX_AGE, health checks:
# activity_monitor.celery); this stops Celery's Django fixup from closing them after every task.
CELERY_DB_REUSE_MAX = 2**31
# The worker logs through LOGGING below (its redacting filter), not through handlers of its own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
# Every task can be redone (each claims its work with a conditional UPDATE, see the sweeps
# below): a message is acknowledged after its task ran, so a worker that dies mid-task leaves it
# to be delivered again.
# A worker outlives a broker outage: it reconnects, at startup and after losing the connection,
# for as long as it takes (None: no limit; kombu waits 2 s, 4 s, ... at most 30 s between tries)
# instead of exiting; docker-compose restarts one that exits all the same. Tasks running when
# the connection drops are cancelled, since their acknowledgement is lost with the connection and
# they will be delivered again (Celery 6's default; the sweeps redo them if the message is lost).
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# Publishing gives up fast when the broker is down: a request never waits seconds to queue a task
# (activity_monitor.celery.enqueue; the sweeps find the work later). kombu's default retries
# took about 6 s.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
    "socket_connect_timeout": 2,
}
CELERY_TIMEZONE = "UTC"
# The sweeps: work is written to the database before its task is queued, so what was never
# queued (broker down) or whose worker died is found there and done when the broker is back.
# A sweep leaves work this long to its own task first (alerts: ALERTS_SWEEP_DELAY_SECONDS) ...
SWEEP_DELAY_SECONDS = envint("SWEEP_DELAY_SECONDS", 20)
# ... and gives up on what is older than this.
SWEEP_HORIZON_HOURS = envint("SWEEP_HORIZON_HOURS", 24)
# A sender claims an email for this long before sending, and marks it sent after: past the lease
# the sender is taken for dead and a sweep sends it (at least once; never lost). The email tasks'
# time limits stay below it.
SWEEP_CLAIM_LEASE_SECONDS = envint("SWEEP_CLAIM_LEASE_SECONDS", 60)
# Each blocking step of an SMTP send (connect, each command) gives up after this long.
SWEEP_EMAIL_TIMEOUT_SECONDS = envint("SWEEP_EMAIL_TIMEOUT_SECONDS", 10)
# A running export build whose heartbeat is older than this has died: it is rebuilt from scratch.
EXPORTS_STALE_SECONDS = envint("EXPORTS_STALE_SECONDS", 60)
# Every periodic job, in one place: (entry name, task, when), each with its reason above it.
CELERY_BEAT_SCHEDULE = {
    name: {"task": task, "schedule": schedule}
    for name, task, schedule in [
        # The events table's monthly partitions (PostgreSQL), made AUDIT_PARTITIONS_AHEAD_MONTHS
        # ahead: a daily run has months of retries before a month goes without its partition.
        ("audit-partitions-ensure", "audit.tasks.events_partitions_ensure", timedelta(hours=6)),
        # Background CSV exports past EXPORT_TTL_HOURS lose their file and show as expired.
        ("exports-expire", "exports.tasks.exports_expire", timedelta(hours=1)),
        # Sessions that ran out without a sign-out get their session.expired event within
        # minutes.
        ("session-expire-stale", "accounts.tasks.session_expire_stale", timedelta(minutes=5)),
        # Lockouts whose time is up get their lockout.released (expired) event even if the user
        # never tries again.
        (
            "lockout-release-expired",
            "accounts.tasks.lockout_release_expired",
            timedelta(minutes=1),
        ),
        # The sign-in throttle's database buckets (used without Redis) idle for a day are full
        # again: their rows go, as Redis expires its keys.
        (
            "throttle-buckets-purge",
            "accounts.tasks.throttle_buckets_purge",
            timedelta(hours=1),
        ),
        # Daily at 03:15 UTC (a quiet hour): delete each organization's events past its
        # retention, archiving them first where the organization asked; safe to run twice or
        # concurrently.
        (
            "retention-purge-expired",
            "retention.tasks.events_purge_expired_all",
            crontab(hour=3, minute=15),
        ),
        # Every minute: seal each organization's new events into a signed block
        # (integrity.services.events_seal; docs/integrity.md).
        ("integrity-seal-events", "integrity.tasks.events_seal_pending", timedelta(minutes=1)),
        # Every 10 minutes: produce the scheduled CSV exports that are due (each claimed once).
        (
            "retention-export-schedules-run-due",
            "retention.tasks.export_schedules_run_due",
            timedelta(minutes=10),
        ),
        # The sweeps run every 30 seconds, so that work left behind by a broker outage or a dead
        # worker is done within a minute of the broker's return: an event recorded just before
        # it waits ALERTS_SWEEP_DELAY_SECONDS (20 s) for its own task, then at most one period.
        # Each run is one indexed query when there is nothing to do.
        # Evaluate alert rules on committed events that no task evaluated (broker down, worker
        # lost); the database, not the broker, says what is still to do.
        ("alerts-events-sweep", "alerts.tasks.events_sweep", timedelta(seconds=30)),
        # Alert emails not sent (never queued, sender died, mail server down) and webhook
        # attempts that are due (retries, and deliveries whose sender died).
        ("alerts-notifications-sweep", "alerts.tasks.notifications_sweep", timedelta(seconds=30)),
        # Security emails to users (password changed, MFA device added ...) that no task sent.
        (
            "accounts-security-notices-sweep",
            "accounts.tasks.security_notices_sweep",
            timedelta(seconds=30),
        ),
        # Background exports never queued (pending) or whose builder died (running, silent):
        # queued again and built from scratch.
        ("exports-sweep", "exports.tasks.exports_sweep", timedelta(seconds=30)),
        # Every 15 minutes: open each schedule's review once its period has ended, mark reviews
        # past their due time overdue (review.overdue once each) and email their assignees;
        # a day's review is due a day after its period, so a quarter hour late is nothing.
        ("compliance-reviews-sweep", "compliance.tasks.reviews_sweep", timedelta(minutes=15)),
        # Compliance reports never queued (broker down) or whose builder died: built again.
        ("reports-sweep", "reports.tasks.reports_sweep", timedelta(minutes=1)),
        # Every 2 seconds: queue a delivery for each stream destination that is due (has not
        # paused, is not waiting out a retry's backoff). The cursor lives in the database, so
        # this is also what picks streams up again after a broker outage; each run is one query.
        ("streams-deliver-due", "streams.tasks.streams_deliver_due", timedelta(seconds=2)),
    ]
}

# --- Cache -----------------------------------------------------------------------------------
# Redis is an accelerator: with it unreachable, the cache answers as no cache at all (every read a
# miss) instead of raising, and the short timeouts make a dead Redis cost milliseconds per call
# (see activity_monitor.cache). Nothing that must be correct may live only in the cache.
CACHE_REDIS_TIMEOUT_SECONDS = envfloat("CACHE_REDIS_TIMEOUT_SECONDS", 0.25, minimum=0.0)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "activity_monitor.cache.FailSoftRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "socket_connect_timeout": CACHE_REDIS_TIMEOUT_SECONDS,
                "socket_timeout": CACHE_REDIS_TIMEOUT_SECONDS,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Email -----------------------------------------------------------------------------------
# Production sends through SMTP. DEBUG=1 prints messages with reset links and other secrets
# redacted (activity_monitor.mail); Django's own console backend would print live reset links
# into the process's output. docker compose sends to its Mailpit (http://127.0.0.1:8025).
EMAIL_BACKEND = env("EMAIL_BACKEND") or (
    "activity_monitor.mail.RedactingConsoleEmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
# An unreachable mail server fails a send within seconds instead of holding a request or worker.
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Activity Monitor <no-reply@activity-monitor.test>")

# --- HTTPS and browser security headers ------------------------------------------------------
# Secure by default: with DEBUG off every switch below is on, as are the cookies' Secure flags
# (SECURE_COOKIES, above), and `manage.py check --deploy` passes. Plain-http runs opt out by
# name: `make run` (DEBUG=1), docker compose's local stack (SECURE_SSL_REDIRECT=0,
# SECURE_HSTS_SECONDS=0, SECURE_COOKIES=0) and the test suite (conftest.py).
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", not DEBUG)
# Load balancers and container health checks probe /health/ over plain http.
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
# Sent on https responses only. One year by default; start lower (e.g. 300) for a first rollout,
# since a browser that saw the header refuses plain http to this host until it runs out.
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# Only a signal: nothing is preloaded until the owner of the registrable domain submits it to
# hstspreload.org. Set 0 where that must never happen.
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", True)
# Behind a proxy that terminates TLS, Django sees plain http and SECURE_SSL_REDIRECT would loop.
# Name the header the proxy sets, e.g. SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto, only when the
# proxy always sets it (overwriting any a client sent): Django then trusts "https" in it. Unset,
# no header is trusted.
# Written as the header (X-Forwarded-Proto) or as Django's META key (HTTP_X_FORWARDED_PROTO).
_proxy_ssl_header = env("SECURE_PROXY_SSL_HEADER").strip().upper().replace("-", "_")
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = (
        _proxy_ssl_header if _proxy_ssl_header.startswith("HTTP_") else f"HTTP_{_proxy_ssl_header}",
        "https",
    )
# Every response says: our own scripts, styles and images only (static/, htmx vendored under
# static/vendor/), no inline script or style, no plugins, no framing, forms post only to us.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

# --- Internationalisation, static ------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Logging: secrets never reach a log line -------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "audit.logging.RedactSecretsFilter"},
        "drop_throttled": {"()": "audit.logging.DropThrottledFilter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact"]},
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's default logging gives "django" a console handler of its own (printing when
        # DEBUG is on) and an AdminEmailHandler, both without our filter: "Not Found: <path>"
        # printed the reset token twice, once in clear. Without them every django.* line goes
        # up to the root's redacting handler, once.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # A 4xx is logged as a warning per request; a throttled flood's 429s are not
        # (accounts.throttling records them as login.throttled, one per window).
        "django.request": {"handlers": [], "filters": ["drop_throttled"], "propagate": True},
        # runserver's access log. gunicorn's logs are configured by gunicorn.conf.py, in the
        # master process, with the same filter.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# --- Tests -----------------------------------------------------------------------------------
# CI sets this so that a PostgreSQL-only test can never pass by being skipped.
REQUIRE_POSTGRES = envbool("REQUIRE_POSTGRES", False)

# --- Retention, archives and scheduled exports (retention app) -------------------------------
# Events without an organization (failed sign-ins for unknown usernames) are kept this long.
PLATFORM_EVENT_RETENTION_DAYS = envint("PLATFORM_EVENT_RETENTION_DAYS", 365)
# An organization whose retention is shortened (a downgrade) keeps its events the longer
# retention for this many days more. On PostgreSQL both settings are copied into the database at
# migrate (audit.roles.retention_policy_write) and take effect there from the next migrate.
RETENTION_DOWNGRADE_GRACE_DAYS = envint("RETENTION_DOWNGRADE_GRACE_DAYS", 30)
# Event ids per purge batch; each batch is its own short transaction (about half a second at
# 100,000) and locks only expired rows, so sign-ins never wait for it (see bench/purge.py).
RETENTION_PURGE_BATCH_SIZE = envint("RETENTION_PURGE_BATCH_SIZE", 100_000)
# On PostgreSQL a month of the events table whose every row is expired (and claimed, and
# archived where asked) is dropped whole instead of deleted row by row (audit migration 0014).
# Off only to measure the batched delete against it (bench/purge.py).
RETENTION_PURGE_BY_PARTITION = envbool("RETENTION_PURGE_BY_PARTITION", True)
# Rest between purge batches for this many times a batch's duration (0: no rest; 1: half speed),
# for machines where the purge's CPU and disk use would slow sign-ins.
RETENTION_PURGE_PAUSE_RATIO = envfloat("RETENTION_PURGE_PAUSE_RATIO", 0.0, minimum=0.0)
# PostgreSQL: compress the WAL's full-page images in the purge's own transactions (lz4, zstd or
# pglz; empty leaves the server's wal_compression). A purge writes about one full page per
# 20 rows deleted, so lz4 halves its WAL. Applied where the app's role may set it (a superuser,
# or on PostgreSQL 15+ GRANT SET ON PARAMETER wal_compression TO <role>); skipped elsewhere.
RETENTION_PURGE_WAL_COMPRESSION = env("RETENTION_PURGE_WAL_COMPRESSION", "lz4")
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(BASE_DIR / "media")))
# Archives and scheduled exports: local disk by default; any Django storage by setting, e.g.
# ARCHIVE_STORAGE_BACKEND=storages.backends.s3.S3Storage (pip install ".[s3]") with
# ARCHIVE_S3_BUCKET, ARCHIVE_S3_ENDPOINT_URL and the usual AWS_* credentials.
ARCHIVE_STORAGE_BACKEND = env(
    "ARCHIVE_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"
)
if ARCHIVE_STORAGE_BACKEND.endswith("FileSystemStorage"):
    _archive_options: dict[str, object] = {"location": MEDIA_ROOT / "archives"}
else:
    _archive_options = {
        key: value
        for key, value in {
            "bucket_name": env("ARCHIVE_S3_BUCKET"),
            "endpoint_url": env("ARCHIVE_S3_ENDPOINT_URL"),
            "region_name": env("ARCHIVE_S3_REGION"),
            "location": env("ARCHIVE_S3_PREFIX", "archives"),
        }.items()
        if value
    }
# --- Tamper evidence (integrity; docs/integrity.md) -------------------------------------------
# The Ed25519 private key seals are signed with: base64 of its 32-byte seed
# (`manage.py seal_events --new-key`) or a PKCS#8 PEM. Unset: nothing is sealed and
# verify_integrity says it cannot verify; `manage.py check` names the setting.
INTEGRITY_SIGNING_KEY = env("INTEGRITY_SIGNING_KEY")
# The most events one seal holds (a block's entries are 56 bytes per event).
INTEGRITY_BLOCK_MAX_EVENTS = envint("INTEGRITY_BLOCK_MAX_EVENTS", 50_000)

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "archives": {"BACKEND": ARCHIVE_STORAGE_BACKEND, "OPTIONS": _archive_options},
}

# --- Organization email domains (accounts.domains) -------------------------------------------
# The DNS servers a domain's TXT record is looked up on, by IP address ("192.0.2.53",
# "192.0.2.53:5353", "[2001:db8::53]:53"). Empty: the system's resolver (/etc/resolv.conf).
# Tests point it at their own.
DOMAIN_VERIFICATION_NAMESERVERS = envlist("DOMAIN_VERIFICATION_NAMESERVERS")
# What one verification may spend on DNS in all (an administrator's request waits for it).
DOMAIN_VERIFICATION_TIMEOUT_SECONDS = envfloat(
    "DOMAIN_VERIFICATION_TIMEOUT_SECONDS", 3.0, minimum=0.1
)
# At most this many domains (pending or verified) per organization.
ORGANIZATION_DOMAINS_MAX = envint("ORGANIZATION_DOMAINS_MAX", 20)

# --- Sign-in throttling (accounts.throttling; README, "Throttling") --------------------------
# Token buckets charged before any password check: one per client IP (an IPv6 client by its /64)
# and one per submitted address (known or not). A bucket holds BURST attempts and gets one back
# every REFILL_SECONDS; an attempt that finds it empty is answered 429 with Retry-After and costs
# no hash. A successful sign-in gives its tokens back, so only failures use a bucket up.
# The per-IP figures are Auth0's suspicious-IP throttling defaults (100 attempts, one more every
# 14.4 minutes: 100 a day); organizations may set their own within accounts.models' bounds.
THROTTLE_ENABLED = envbool("THROTTLE_ENABLED", True)
THROTTLE_IP_BURST = envint("THROTTLE_IP_BURST", 100)
THROTTLE_IP_REFILL_SECONDS = envint("THROTTLE_IP_REFILL_SECONDS", 864)
# Per account: more than two lockout thresholds (the smart lockout counts familiar and
# unfamiliar failures apart, 10 each by default), so the lockout, not the throttle, answers a
# guesser at a known account; then one attempt every 2 minutes (30 an hour).
THROTTLE_ACCOUNT_BURST = envint("THROTTLE_ACCOUNT_BURST", 30)
THROTTLE_ACCOUNT_REFILL_SECONDS = envint("THROTTLE_ACCOUNT_REFILL_SECONDS", 120)
# Opt-in load shedding, sized to the hardware: a budget of password checks per organization
# (and one for attempts that belong to none) for unfamiliar sign-in attempts (unknown addresses,
# and known accounts from a device and network they never signed in from). Many addresses each
# spending their per-IP burst against one organization meet this one budget; the organization's
# people on their familiar devices are not charged. 0 (the default): no budget.
THROTTLE_UNFAMILIAR_BURST = envint("THROTTLE_UNFAMILIAR_BURST", 0)
THROTTLE_UNFAMILIAR_REFILL_SECONDS = envfloat(
    "THROTTLE_UNFAMILIAR_REFILL_SECONDS", 1.0, minimum=0.001
)


# Addresses and networks never throttled (load-test hosts, an operator's own offices), comma
# separated; an entry wider than an IPv4 /8 or an IPv6 /32 stops start-up.
def _allowlist(name: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    from audit.ip import network_parse

    networks = []
    for item in envlist(name):
        try:
            networks.append(network_parse(item, widest_v4=8, widest_v6=32))
        except ValueError as refusal:
            raise ImproperlyConfigured(f"{name}: {refusal}") from None
    return networks


THROTTLE_ALLOWLIST = _allowlist("THROTTLE_ALLOWLIST")
# Where the buckets live: Redis (this URL, REDIS_URL by default) or, without one, the database.
THROTTLE_REDIS_URL = env("THROTTLE_REDIS_URL") or REDIS_URL
# While that Redis cannot be reached: "database" keeps throttling with the database's buckets
# (a row lock per attempt), "allow" lets every attempt through unthrottled (each is still
# checked, locked out and recorded as without throttling).
# A throttle call that gets no answer within this long counts as Redis down. Longer than the
# cache's: on a loaded web node a slow answer is not an outage, and falling back hands an
# attacker fresh (full) database buckets. A stopped Redis refuses at once whatever this says.
THROTTLE_REDIS_TIMEOUT_SECONDS = envfloat("THROTTLE_REDIS_TIMEOUT_SECONDS", 2.0, minimum=0.0)
THROTTLE_REDIS_DOWN = env("THROTTLE_REDIS_DOWN", "database").strip().lower()
if THROTTLE_REDIS_DOWN not in {"database", "allow"}:
    raise _unparsable("THROTTLE_REDIS_DOWN", THROTTLE_REDIS_DOWN, "database or allow")
# Throttled attempts are recorded as one login.throttled per client IP or account,
# organization and window of this many seconds, with the count (README, "Throttling").
THROTTLE_EVENT_WINDOW_SECONDS = envint("THROTTLE_EVENT_WINDOW_SECONDS", 900)

# --- Alerts (alerts app) ---------------------------------------------------------------------
# Links in alert emails and webhook bodies.
ALERTS_BASE_URL = env("ALERTS_BASE_URL", "http://127.0.0.1:8000")
# Development and tests only: let webhooks use http:// and private or loopback addresses.
ALERTS_WEBHOOK_ALLOW_PRIVATE = envbool("ALERTS_WEBHOOK_ALLOW_PRIVATE", False)
ALERTS_WEBHOOK_TIMEOUT_SECONDS = envint("ALERTS_WEBHOOK_TIMEOUT_SECONDS", 5)
ALERTS_WEBHOOK_MAX_ATTEMPTS = envint("ALERTS_WEBHOOK_MAX_ATTEMPTS", 5)
# Retries wait 30 s, 60 s, 120 s, ... (doubling).
ALERTS_WEBHOOK_BACKOFF_SECONDS = envint("ALERTS_WEBHOOK_BACKOFF_SECONDS", 30)
# The sweep leaves an event this long to its own task before evaluating it itself ...
# Months of the events table's partitions made ahead of the current one (PostgreSQL; audit
# migration 0013 bounds it to 24).
AUDIT_PARTITIONS_AHEAD_MONTHS = min(max(envint("AUDIT_PARTITIONS_AHEAD_MONTHS", 3), 0), 24)
ALERTS_SWEEP_DELAY_SECONDS = envint("ALERTS_SWEEP_DELAY_SECONDS", 20)
# ... never moves its mark past an event younger than this (a lower id may commit later) ...
ALERTS_SWEEP_SETTLE_SECONDS = envint("ALERTS_SWEEP_SETTLE_SECONDS", 300)
# ... and skips unevaluated events older than this (no one acts on a day-old sign-in alert).
ALERTS_SWEEP_HORIZON_HOURS = envint("ALERTS_SWEEP_HORIZON_HOURS", 24)
# An evaluation takes at most this many of an organization's events at once (its own and the
# pending ones it gathers); the rules read each batch's windows in a few queries.
ALERTS_EVALUATION_BATCH = envint("ALERTS_EVALUATION_BATCH", 5000)
# An evaluator holds its claimed events this long; past it (the worker died) the sweep takes
# them. Longer than the evaluation task's time limit, so a live evaluator is never overtaken.
ALERTS_EVALUATION_LEASE_SECONDS = envint("ALERTS_EVALUATION_LEASE_SECONDS", 150)
# The AS numbers the anonymising-network rule counts as hosting providers (looked up in
# GEOIP_ASN_DB). Empty: the built-in list, alerts.anonymising.DEFAULT_HOSTING_ASNS.
ALERTS_HOSTING_ASNS = envints("ALERTS_HOSTING_ASNS")

# --- Streams to SIEMs (streams app) -----------------------------------------------------------
# Development and tests only: let stream destinations use http:// and private or loopback
# addresses (by default as the webhooks' setting says).
STREAMS_ALLOW_PRIVATE = envbool("STREAMS_ALLOW_PRIVATE", ALERTS_WEBHOOK_ALLOW_PRIVATE)
# Each connect, TLS handshake, send and wait for an answer gives up after this long.
STREAMS_TIMEOUT_SECONDS = envfloat("STREAMS_TIMEOUT_SECONDS", 10.0, minimum=0.1)
# Events per request (HTTPS, Splunk HEC) or per write (syslog).
STREAMS_BATCH_SIZE = envint("STREAMS_BATCH_SIZE", 500)
# One delivery task sends batches for at most this long, then leaves the rest to the next.
STREAMS_TASK_BUDGET_SECONDS = envint("STREAMS_TASK_BUDGET_SECONDS", 60)
# A deliverer holds its destination this long at most (longer than the task's time limit).
STREAMS_LEASE_SECONDS = envint("STREAMS_LEASE_SECONDS", 180)
# After a failed batch: wait 10 s, 20 s, 40 s ... at most STREAMS_BACKOFF_MAX_SECONDS.
STREAMS_BACKOFF_SECONDS = envint("STREAMS_BACKOFF_SECONDS", 10)
STREAMS_BACKOFF_MAX_SECONDS = envint("STREAMS_BACKOFF_MAX_SECONDS", 600)
# A destination failing without a success for this long is paused and its administrators told.
STREAMS_PAUSE_AFTER_HOURS = envfloat("STREAMS_PAUSE_AFTER_HOURS", 24.0, minimum=0.0)

# --- Audit Log, CSV export, API (audit, exports, api apps) -----------------------------------
# The same person re-running the same Audit Log filter within this time is one audit_log.viewed.
AUDIT_LOG_VIEWED_DEDUP_SECONDS = envint("AUDIT_LOG_VIEWED_DEDUP_SECONDS", 300)
# CSV exports of more rows than this run as a background job instead of streaming.
EXPORT_STREAM_MAX_ROWS = envint("EXPORT_STREAM_MAX_ROWS", 100_000)
EXPORT_ROOT = Path(env("EXPORT_ROOT", str(BASE_DIR / "var" / "exports")))
EXPORT_TTL_HOURS = envint("EXPORT_TTL_HOURS", 72)

# --- Operations (operations app) ---------------------------------------------------------------
# The bearer token Prometheus sends to /metrics (Authorization: Bearer <token>). Empty: only a
# signed-in platform operator (is_staff) may read it.
METRICS_TOKEN = env("METRICS_TOKEN")
