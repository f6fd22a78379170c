"""Helpers for commands and tests that start local processes (gunicorn, Celery, servers)."""

import socket
from urllib.parse import quote


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """DATABASE_URL of the database this process uses, for the processes it starts
    (under pytest, the test database)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    host, port = db.get("HOST") or "", db.get("PORT") or ""
    if host.startswith("/"):  # a Unix socket folder
        return f"postgres://{user}{password}@/{db['NAME']}?host={quote(host, safe='/')}"
    return f"postgres://{user}{password}@{host}{':' + str(port) if port else ''}/{db['NAME']}"
