"""The submission relay: messages accepted per second over parallel connections.

The server runs in a child process (so the clients' CPU is not counted against
it); ``--connections`` aiosmtplib clients each reuse one session for their share
of ``--messages`` (one recipient, ~2 KB each). Measured in the same run:

- baseline: bare aiosmtpd with a handler that answers 250 and keeps nothing (the
  SMTP parsing every relay pays);
- the relay from the allowed network, SQLite ``fsync: false`` (WAL,
  synchronous=NORMAL: survives a crash of warmup, not of the machine);
- the same with ``fsync: true`` (synchronous=FULL: the WAL is fsynced before each
  250), the share of the previous rate that survives durable commits;
- the durable relay over STARTTLS with AUTH PLAIN (clients outside the allowed
  network, the campaign-tool setup).

    .venv/bin/python -m bench.relay [--messages 5000] [--connections 10] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import ssl
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session

from warmup.adapters.db.relay_store import SQLRelayStore
from warmup.adapters.db.store import SQLStore
from warmup.adapters.relay import RelayServer, server_tls_context
from warmup.adapters.relay_users import UserFile, add_user
from warmup.adapters.tls_cert import write_self_signed
from warmup.app.clock import SystemClock
from warmup.app.relay import RelayIntake
from warmup.core.settings import RelaySettings
from warmup.testing.postgres import PostgresUnavailable, start_postgres

MESSAGE = (
    b"From: Shop <shop@shop.example>\r\nTo: user@gmail.com\r\n"
    b"X-Warmup-Campaign: bench\r\nSubject: Spring sale\r\n\r\n"
    + b"Everything must go, this is the benchmark body, 2 KB of it.\r\n"
    * 33
)
PASSWORD = "bench password"


@dataclass(frozen=True, slots=True)
class Setup:
    kind: str  # "bare" or "relay"
    database: str = ""
    fsync: bool = False
    tls: bool = False
    directory: str = ""


class _Discard:
    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        return "250 2.0.0 OK"


async def _relay(setup: Setup) -> tuple[RelayServer, SQLStore]:
    directory = Path(setup.directory)
    settings = RelaySettings(
        enabled=True,
        listen_port=0,
        allowed_networks=("127.0.0.1/32",),
        max_connections_per_client=1000,
        messages_per_minute_per_client=10**9,
        fsync=setup.fsync,
    )
    store = await SQLStore.open(setup.database)
    clock = SystemClock()
    intake = RelayIntake(
        SQLRelayStore(store, durable=setup.fsync),
        clock=clock,
        settings=settings,
        bounce_domain="bounce.example",
        hostname="relay.bench",
        isp_of={"gmail.com": "gmail"}.get,
    )
    tls = None
    if setup.tls:
        tls = server_tls_context(
            str(directory / "cert.pem"), str(directory / "key.pem")
        )
    server = RelayServer(
        settings=settings,
        intake=intake,
        clock=clock,
        hostname="relay.bench",
        users=UserFile(directory / "users") if setup.tls else None,
        tls_context=tls,
    )
    await server.start()
    return server, store


async def _serve(setup: Setup, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    if setup.kind == "bare":
        server: Any = await loop.create_server(
            lambda: SMTP(_Discard(), hostname="bare.bench", loop=loop),
            "127.0.0.1",
            0,
        )
        port = server.sockets[0].getsockname()[1]
        store = None
    else:
        server, store = await _relay(setup)
        port = server.port
    conn.send(port)
    await loop.run_in_executor(None, conn.recv)  # wait for "stop"
    if store is not None:
        await server.stop()
        await store.close()
    else:
        server.close()


def _child(setup: Setup, conn: Connection) -> None:
    asyncio.run(_serve(setup, conn))


async def _client(
    port: int, count: int, setup: Setup, context: ssl.SSLContext | None
) -> None:
    source = ("127.0.0.2", 0) if setup.tls else ("127.0.0.1", 0)
    smtp = aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=port,
        source_address=source,
        start_tls=setup.tls,
        tls_context=context,
        timeout=60,
    )
    async with smtp:
        if setup.tls:
            await smtp.ehlo()
            await smtp.auth_plain("bench", PASSWORD)
        for _ in range(count):
            await smtp.sendmail("shop@shop.example", ["user@gmail.com"], MESSAGE)


async def _load(port: int, setup: Setup, messages: int, connections: int) -> float:
    context = None
    if setup.tls:
        context = ssl.create_default_context(
            cafile=str(Path(setup.directory) / "cert.pem")
        )
    share = messages // connections
    start = time.perf_counter()
    await asyncio.gather(
        *(_client(port, share, setup, context) for _ in range(connections))
    )
    return share * connections / (time.perf_counter() - start)


def measure(setup: Setup, messages: int, connections: int) -> float:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=_child, args=(setup, child)
    )
    process.start()
    try:
        if not parent.poll(60):
            raise SystemExit("the server did not start")
        port = parent.recv()
        return asyncio.run(_load(port, setup, messages, connections))
    finally:
        parent.send("stop")
        process.join(60)


def _prepare(directory: Path) -> None:
    write_self_signed(
        directory / "cert.pem",
        directory / "key.pem",
        hostnames=["127.0.0.1"],
        days=1,
        now=SystemClock().now(),
    )
    add_user(directory / "users", "bench", PASSWORD.encode())


def fsync_latency(directory: Path, rounds: int = 200) -> float:
    """Seconds one write + fdatasync takes where the databases live."""
    path = directory / "fsync.probe"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        start = time.perf_counter()
        for _ in range(rounds):
            os.pwrite(descriptor, b"x" * 4096, 0)
            os.fdatasync(descriptor)
        return (time.perf_counter() - start) / rounds
    finally:
        os.close(descriptor)
        path.unlink()


def _sqlite(directory: Path, name: str) -> str:
    return f"sqlite:///{directory / name}.db"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument(
        "--dir", help="where the databases go (default: a temporary directory)"
    )
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL")
    args = parser.parse_args()
    n, c = args.messages, args.connections
    with tempfile.TemporaryDirectory(prefix="warmup-bench-", dir=args.dir) as tmp:
        directory = Path(tmp)
        _prepare(directory)
        bare = measure(Setup(kind="bare"), n, c)
        print(f"{n:,} messages, {c} connections, 1 recipient, {len(MESSAGE):,} bytes")
        print(f"write + fdatasync here: {fsync_latency(directory) * 1e6:,.0f} µs")
        print(f"baseline: bare aiosmtpd, keeps nothing     {bare:8,.0f} msg/s")
        fast = measure(
            Setup(kind="relay", database=_sqlite(directory, "a"), directory=tmp),
            n,
            c,
        )
        print(
            f"relay, SQLite fsync: false              {fast:8,.0f} msg/s"
            f" = {fast / bare:.2f}x bare"
        )
        durable = measure(
            Setup(
                kind="relay",
                database=_sqlite(directory, "b"),
                fsync=True,
                directory=tmp,
            ),
            n,
            c,
        )
        print(
            f"relay, SQLite fsync: true (durable)     {durable:8,.0f} msg/s"
            f" = {durable / fast:.2f}x non-durable, {durable / bare:.2f}x bare"
        )
        tls = measure(
            Setup(
                kind="relay",
                database=_sqlite(directory, "c"),
                fsync=True,
                tls=True,
                directory=tmp,
            ),
            n,
            c,
        )
        print(
            f"  + STARTTLS and AUTH PLAIN             {tls:8,.0f} msg/s"
            f" = {tls / durable:.2f}x durable"
        )
        if args.postgres:
            _postgres(directory, n, c, bare, tmp)


def _postgres(directory: Path, n: int, c: int, bare: float, tmp: str) -> None:
    try:
        server = start_postgres()
    except PostgresUnavailable as exc:
        print(f"postgres: skipped ({exc})")
        return
    try:
        import psycopg

        with psycopg.connect(
            server.admin_url.replace("+psycopg", ""), autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE bench")
        rate = measure(
            Setup(kind="relay", database=server.url("bench"), directory=tmp), n, c
        )
        print(
            f"relay, PostgreSQL (commits durable)     {rate:8,.0f} msg/s"
            f" = {rate / bare:.2f}x bare"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
