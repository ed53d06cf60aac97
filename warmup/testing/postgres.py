"""Start a throw-away PostgreSQL server for tests and benchmarks.

PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` user (``runuser``) in a temporary directory it owns.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PostgresServer", "PostgresUnavailable", "find_bindir", "start_postgres"]


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


@dataclass(slots=True)
class PostgresServer:
    bindir: Path
    root: Path
    port: int
    as_user: str | None

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def pause(self) -> None:
        """Stop the server but keep its data: a database outage, until resume()."""
        _run(self, "pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the server (again) on its port."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        _run(
            self,
            "pg_ctl",
            "-D",
            str(self.root / "data"),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        with contextlib.suppress(
            subprocess.SubprocessError, OSError, PostgresUnavailable
        ):
            _run(
                self,
                "pg_ctl",
                "-D",
                str(self.root / "data"),
                "-m",
                "immediate",
                "stop",
                timeout=30,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def find_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in ("/usr/lib/postgresql/15/bin", *candidates):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run(server: PostgresServer, tool: str, *args: str, timeout: float = 60) -> None:
    command = [str(server.bindir / tool), *args]
    if server.as_user:
        command = ["runuser", "-u", server.as_user, "--", *command]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise PostgresUnavailable(f"{tool} failed: {' '.join(detail)}")


def start_postgres() -> PostgresServer:
    """initdb + pg_ctl start on a free loopback port; PostgresUnavailable if not."""
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable("no PostgreSQL binaries (initdb) found")
    as_user = None
    root = Path(tempfile.mkdtemp(prefix="warmup-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable(
                "running as root and no 'postgres' user"
            ) from None
        as_user = "postgres"
        os.chown(root, user.pw_uid, user.pw_gid)
    server = PostgresServer(
        bindir=bindir, root=root, port=_free_port(), as_user=as_user
    )
    try:
        _run(
            server,
            "initdb",
            "-D",
            str(root / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        server.resume()
    except (PostgresUnavailable, subprocess.SubprocessError, OSError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise PostgresUnavailable(str(exc)) from exc
    return server
