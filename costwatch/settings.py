"""Settings read from the environment (django-environ, the cookiecutter-django way).

Defaults suit the embedded quickstart (`make run`): an embedded PostgreSQL whose socket
lives in `.data/pg` and Celery's filesystem broker under `.data/broker`. With DEBUG off
the strict production checks apply and a SECRET_KEY must be given.
"""

import os
import re
import sys
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(environ.Env().str("COSTWATCH_DATA_DIR", default=str(BASE_DIR / ".data")))


def _quickstart_environment():
    """`manage.py` by hand next to a `make run`: use the settings it saved in DATA_DIR.

    Only when neither DEBUG nor SECRET_KEY is in the environment, so a deployment that sets
    them (or tests) never falls back; one line on stderr says that it happened.
    """
    if {"DEBUG", "SECRET_KEY"} & os.environ.keys() or not (DATA_DIR / "secret_key").is_file():
        return
    os.environ["DEBUG"] = "true"
    os.environ["SECRET_KEY"] = (DATA_DIR / "secret_key").read_text().strip()
    if (DATA_DIR / "site_url").is_file():
        os.environ.setdefault("SITE_URL", (DATA_DIR / "site_url").read_text().strip())
    print(f"[costwatch] DEBUG and SECRET_KEY not set: using the quickstart's settings saved in {DATA_DIR} "
          "(DEBUG on)", file=sys.stderr)


_quickstart_environment()


TRUE_WORDS, FALSE_WORDS = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def _strict_bool(env, name, default):
    raw = env.str(name, default=None)
    if raw is None:
        if default is environ.Env.NOTSET:
            raise ImproperlyConfigured(f"Environment variable {name} is required")
        return default
    if raw.strip().lower() not in TRUE_WORDS | FALSE_WORDS:
        raise ValueError("use true/false, yes/no, on/off or 1/0")
    return raw.strip().lower() in TRUE_WORDS


def _postgres_url(env, name, default):
    config = env.db_url(name, default=default)
    if config.get("ENGINE") != "django.db.backends.postgresql":
        raise ValueError("costwatch needs PostgreSQL: postgres://user:password@host:port/dbname")
    return config


def _int_list(env, name, default):
    return [int(value) for value in env.list(name, default=default)]


def _env_value(env, name, cast, default):
    """Read one variable and fail at start-up with its name when the value is bad."""
    readers = {"bool": _strict_bool, "postgres_url": _postgres_url, "int_list": _int_list}
    try:
        if cast in readers:
            return readers[cast](env, name, default)
        return getattr(env, cast)(name, default=default)
    except (ValueError, TypeError, ImproperlyConfigured) as exc:
        raw = env.str(name, default=None)
        if raw is None:
            raise ImproperlyConfigured(f"Environment variable {name} is required when DEBUG is off "
                                       "(set it, or DEBUG=true for local development)") from None
        raise ImproperlyConfigured(f"Environment variable {name}={_without_secrets(name, raw)!r} is invalid: "
                                   f"{_without_secrets(name, str(exc))}") from exc


def _without_secrets(name, text):
    """An error message may show a bad value, never a password inside it."""
    if any(word in name for word in ("SECRET", "PASSWORD", "TOKEN")):
        return "***" if text else text
    return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


env = environ.Env()
setting = lambda name, cast, default=environ.Env.NOTSET: _env_value(env, name, cast, default)  # noqa: E731

DEBUG = setting("DEBUG", "bool", False)
SECRET_KEY = setting("SECRET_KEY", "str", "insecure-dev-only-key" if DEBUG else environ.Env.NOTSET)
ALLOWED_HOSTS = setting("ALLOWED_HOSTS", "list", ["127.0.0.1", "localhost"] if DEBUG else environ.Env.NOTSET)
CSRF_TRUSTED_ORIGINS = setting("CSRF_TRUSTED_ORIGINS", "list", [])
SITE_URL = setting("SITE_URL", "url", "http://127.0.0.1:8000").geturl().rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "costwatch.projects",
    "ingest",
    "costwatch.metrics",
    "budgets",
    "costwatch.dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "costwatch.dbrouting.ReplicaReadsMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "costwatch.urls"
WSGI_APPLICATION = "costwatch.wsgi.application"

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
                "costwatch.projects.context_processors.projects",
            ],
        },
    },
]

EMBEDDED_PG_DIR = DATA_DIR / "pg"
DATABASES = {
    "default": setting("DATABASE_URL", "postgres_url", f"postgres://postgres@/costwatch?host={EMBEDDED_PG_DIR}"),
}
# A PostgreSQL streaming replica of the same database: pages and the read API read usage data
# there (costwatch/dbrouting.py); writes, rules and everything else stay on the primary.
if setting("DATABASE_REPLICA_URL", "str", ""):
    DATABASES["replica"] = setting("DATABASE_REPLICA_URL", "postgres_url")
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
for _alias in DATABASES:
    if "host" in DATABASES[_alias].get("OPTIONS", {}):  # a Unix socket given as ?host=/dir
        DATABASES[_alias]["HOST"] = DATABASES[_alias]["OPTIONS"].pop("host")
    DATABASES[_alias]["CONN_MAX_AGE"] = setting("CONN_MAX_AGE", "int", 60)
    DATABASES[_alias]["CONN_HEALTH_CHECKS"] = True
    DATABASES[_alias].setdefault("OPTIONS", {})["connect_timeout"] = 5
DATABASE_ROUTERS = ["costwatch.dbrouting.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = setting("REDIS_URL", "str", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# plotly.js comes from the plotly python package (vendor/plotly.min.js), never a CDN or a committed copy.
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "costwatch.dashboard.staticfiles.PlotlyFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# --- Security: strict when DEBUG is off -------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = setting("SESSION_COOKIE_SECURE", "bool", not DEBUG)
CSRF_COOKIE_SECURE = setting("CSRF_COOKIE_SECURE", "bool", not DEBUG)
SECURE_SSL_REDIRECT = setting("SECURE_SSL_REDIRECT", "bool", not DEBUG)
SECURE_HSTS_SECONDS = setting("SECURE_HSTS_SECONDS", "int", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Email ------------------------------------------------------------------------------
vars().update(setting("EMAIL_URL", "email_url", "consolemail://"))
EMAIL_TIMEOUT = setting("EMAIL_TIMEOUT", "int", 10)
DEFAULT_FROM_EMAIL = setting("DEFAULT_FROM_EMAIL", "str", "costwatch <costwatch@localhost>")

# --- REST framework ---------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "costwatch.projects.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["costwatch.api.BoundedJSONParser"],  # the API speaks JSON only (else 415)
    "DEFAULT_SCHEMA_CLASS": "costwatch.openapi.ContractSchema",  # adds the errors every operation can answer
    "EXCEPTION_HANDLER": "costwatch.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "costwatch API",
    "DESCRIPTION": "Usage events in, per-feature LLM cost, Lite/Pro share and budget alerts out.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and Redoc are served from static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"PriceTierEnum": ["lite", "pro"]},  # ingest: a price's/event's own tier
}

# --- Celery -----------------------------------------------------------------------------
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = setting("CELERY_BROKER_URL", "str", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT = "costwatch.broker:Transport"  # atomic writes; see costwatch/broker.py
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
CELERY_RESULT_BACKEND = setting("CELERY_RESULT_BACKEND", "str", "") or None
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_TIME_LIMIT = setting("CELERY_TASK_TIME_LIMIT", "int", 600)
CELERY_TASK_SOFT_TIME_LIMIT = setting("CELERY_TASK_SOFT_TIME_LIMIT", "int", 540)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Periodic work: every interval is a setting so tests can shorten it. Beat enqueues small
# fan-out tasks with `expires` ~1.5x their period (STYLE.md).
HEARTBEAT_INTERVAL_SECONDS = setting("HEARTBEAT_INTERVAL_SECONDS", "float", 60.0)
ROLLUP_REFRESH_SECONDS = setting("ROLLUP_REFRESH_SECONDS", "float", 20.0)
RULES_INTERVAL_SECONDS = setting("RULES_INTERVAL_SECONDS", "float", 60.0)
DELIVERY_SWEEP_SECONDS = setting("DELIVERY_SWEEP_SECONDS", "float", 15.0)
DIGEST_CHECK_SECONDS = setting("DIGEST_CHECK_SECONDS", "float", 3600.0)
RETENTION_SECONDS = setting("RETENTION_SECONDS", "float", 86400.0)
RECOMPUTE_SWEEP_SECONDS = setting("RECOMPUTE_SWEEP_SECONDS", "float", 60.0)
# Leases on claimed work: a worker killed mid-work leaves it to another after this long.
RECOMPUTE_LEASE_SECONDS = setting("RECOMPUTE_LEASE_SECONDS", "float", 300.0)  # renewed after every batch
RECOMPUTE_BATCH_SIZE = setting("RECOMPUTE_BATCH_SIZE", "int", 5000)
DELIVERY_LEASE_SECONDS = setting("DELIVERY_LEASE_SECONDS", "float", 300.0)  # > 3x DELIVERY_TIMEOUT_SECONDS
DIGEST_LEASE_SECONDS = setting("DIGEST_LEASE_SECONDS", "float", 600.0)
PRICES_IMPORT_SECONDS = setting("PRICES_IMPORT_SECONDS", "float", 86400.0)


def _every(task, seconds):
    return {"task": task, "schedule": seconds, "options": {"expires": seconds * 1.5}}


CELERY_BEAT_SCHEDULE = {
    "heartbeat": _every("costwatch.projects.tasks.heartbeat", HEARTBEAT_INTERVAL_SECONDS),
    "refresh-rollups": _every("costwatch.metrics.tasks.refresh_dirty_rollups", ROLLUP_REFRESH_SECONDS),
    "evaluate-rules": _every("budgets.tasks.evaluate_all_projects", RULES_INTERVAL_SECONDS),
    "send-deliveries": _every("budgets.tasks.send_due_deliveries", DELIVERY_SWEEP_SECONDS),
    "daily-digests": _every("budgets.tasks.send_daily_digests", DIGEST_CHECK_SECONDS),
    "purge-old-events": _every("ingest.tasks.purge_old_events", RETENTION_SECONDS),
    "resume-stale-recomputes": _every("ingest.tasks.resume_stale_recomputes", RECOMPUTE_SWEEP_SECONDS),
    "import-prices": _every("ingest.tasks.import_prices_source", PRICES_IMPORT_SECONDS),
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

# --- Product settings -------------------------------------------------------------------
INGEST_MAX_AGE_DAYS = setting("INGEST_MAX_AGE_DAYS", "int", 90)
INGEST_RATE_LIMIT = setting("INGEST_RATE_LIMIT", "int", 20000)
# Redis (the rate limiter's store) unreachable: true lets ingest through unthrottled, false answers 503.
INGEST_RATE_LIMIT_FAIL_OPEN = setting("INGEST_RATE_LIMIT_FAIL_OPEN", "bool", True)
RAW_RETENTION_DAYS = setting("RAW_RETENTION_DAYS", "int", 400)
# A URL or path of a price file in LiteLLM's format, imported daily into the global catalogue
# (docs/prices.md#keeping-the-catalogue-current); empty = off.
PRICES_SOURCE = setting("PRICES_SOURCE", "str", "")
PRICES_SOURCE_MAX_BYTES = setting("PRICES_SOURCE_MAX_BYTES", "int", 50 * 1024 * 1024)
API_KEY_LAST_USED_RESOLUTION_SECONDS = 60
# Alerts and deliveries (docs/alerts.md#delivery-and-retries): backoff for transient failures, then hourly up to the max age.
DELIVERY_BACKOFF_SECONDS = setting("DELIVERY_BACKOFF_SECONDS", "int_list", [60, 300, 900, 3600])
DELIVERY_MAX_AGE_SECONDS = setting("DELIVERY_MAX_AGE_SECONDS", "int", 24 * 3600)
# One total deadline per outbound send (DNS, connect, TLS, request, answer), not per socket read.
DELIVERY_TIMEOUT_SECONDS = setting("DELIVERY_TIMEOUT_SECONDS", "float", 10.0)
if DELIVERY_LEASE_SECONDS <= 3 * DELIVERY_TIMEOUT_SECONDS:  # a send task expires 3 timeouts before its lease ends
    raise ImproperlyConfigured(f"DELIVERY_LEASE_SECONDS={DELIVERY_LEASE_SECONDS} must exceed 3 x "
                               f"DELIVERY_TIMEOUT_SECONDS={DELIVERY_TIMEOUT_SECONDS}")
# Outbound sends refuse loopback/private/link-local/multicast/reserved addresses unless this is on
# (tests, on-premise receivers); it also lets a Slack channel name a receiver other than hooks.slack.com.
WEBHOOK_ALLOW_PRIVATE_IPS = setting("WEBHOOK_ALLOW_PRIVATE_IPS", "bool", False)
ALERT_RESOLVE_AFTER_MINUTES = setting("ALERT_RESOLVE_AFTER_MINUTES", "int", 60)
DIGEST_LOCAL_HOUR = setting("DIGEST_LOCAL_HOUR", "int", 8)
if not 0 <= DIGEST_LOCAL_HOUR <= 23:
    raise ImproperlyConfigured(f"Environment variable DIGEST_LOCAL_HOUR={DIGEST_LOCAL_HOUR} is invalid: use 0-23")
BUDGET_STATUS_CACHE_SECONDS = setting("BUDGET_STATUS_CACHE_SECONDS", "int", 60)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": setting("LOG_LEVEL", "str", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
