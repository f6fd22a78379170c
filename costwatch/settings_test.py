"""Test settings: the real PostgreSQL and Redis that scripts/run_tests.py started."""

import os

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("SECRET_KEY", "test-secret-key")
# The suite's receivers are pytest-httpserver on 127.0.0.1 (also for worker subprocesses, which
# inherit the environment); the SSRF tests turn this off.
os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE_IPS", "true")

from .settings import *  # noqa: E402,F403
from .settings import CELERY_BEAT_SCHEDULE  # noqa: E402,F401

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if "EMAIL_URL" not in os.environ:  # a worker subprocess given a real local SMTP server keeps it
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
ALLOWED_HOSTS = ["*"]
CONN_MAX_AGE = 0
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
INGEST_RATE_LIMIT = 0
