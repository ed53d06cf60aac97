"""A relay on loopback for the relay tests: real store, real TLS, fake clock."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from warmup.adapters.db.relay_store import SQLRelayStore
from warmup.adapters.db.schema import messages
from warmup.adapters.db.store import SQLStore
from warmup.adapters.relay import RelayServer, server_tls_context
from warmup.adapters.relay_users import UserFile, add_user
from warmup.adapters.tls_cert import write_self_signed
from warmup.app.clock import SystemClock
from warmup.app.ports import RelayStore
from warmup.app.relay import BounceSink, RelayIntake
from warmup.core.bounces.late import Reporter
from warmup.core.settings import RelaySettings
from warmup.testing.clock import FakeClock

USER, PASSWORD = "news", "correct horse battery"
OUTSIDE = "127.0.0.2"  # not in the allowed network (127.0.0.1/32)
BOUNCE_DOMAIN = "bounce.test"


def make_cert(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    if not cert.exists():
        write_self_signed(
            cert,
            key,
            hostnames=["localhost", "127.0.0.1"],
            days=2,
            now=SystemClock().now(),
        )
    return cert, key


def client_context(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


@dataclass
class Relay:
    server: RelayServer
    store: SQLStore
    clock: FakeClock
    cert: Path
    sunk: list[tuple[bytes, str]] = field(default_factory=list)
    reporters: list[Reporter] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.port

    async def counts(self) -> dict[str, int]:
        return await self.store.count_recipients()

    async def messages(self) -> int:
        async with self.store.engine.connect() as conn:
            query = select(func.count()).select_from(messages)
            return int((await conn.execute(query)).scalar_one())


@asynccontextmanager
async def running_relay(
    directory: Path,
    database_url: str | None = None,
    *,
    sink: bool | BounceSink = False,
    tls: bool = True,
    users: bool = True,
    submissions: RelayStore | None = None,
    **options: Any,
) -> AsyncIterator[Relay]:
    cert, key = make_cert(directory)
    users_file = None
    if users:
        path = directory / "users"
        if not path.exists():
            add_user(path, USER, PASSWORD.encode())
        users_file = UserFile(path)
    settings = RelaySettings(
        enabled=True,
        listen_port=0,
        allowed_networks=("127.0.0.1/32",),
        tls_cert=str(cert) if tls else None,
        tls_key=str(key) if tls else None,
        **options,
    )
    store = await SQLStore.open(database_url or f"sqlite:///{directory / 'w.db'}")
    clock = FakeClock()
    sunk: list[tuple[bytes, str]] = []
    reporters: list[Reporter] = []

    async def sink_(content: bytes, recipient: str, reporter: Reporter) -> None:
        sunk.append((content, recipient))
        reporters.append(reporter)
        if callable(sink):
            await sink(content, recipient, reporter)

    intake = RelayIntake(
        submissions or SQLRelayStore(store),
        clock=clock,
        settings=settings,
        bounce_domain=BOUNCE_DOMAIN,
        hostname="relay.test",
        isp_of={"gmail.com": "gmail"}.get,
        bounce_sink=sink_ if sink is not False else None,
        priority_of=None if users_file is None else users_file.priority,
    )
    server = RelayServer(
        settings=settings,
        intake=intake,
        clock=clock,
        hostname="relay.test",
        users=users_file,
        tls_context=server_tls_context(str(cert), str(key)) if tls else None,
    )
    try:
        async with server:
            yield Relay(
                server=server,
                store=store,
                clock=clock,
                cert=cert,
                sunk=sunk,
                reporters=reporters,
            )
    finally:
        await store.close()


class RawClient:
    """Exact command lines over TCP (and TLS), for the probes smtplib would tidy."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, source: str = OUTSIDE) -> RawClient:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), 10
        )
        return cls(reader, writer)

    async def reply(self) -> str:
        lines = []
        for _ in range(50):
            line = await asyncio.wait_for(self.reader.readline(), 10)
            if not line:
                return "EOF"
            text = line.decode("utf-8", errors="replace").rstrip("\r\n")
            lines.append(text)
            if text[3:4] != "-":
                return "\n".join(lines)
        raise AssertionError("endless reply")

    async def send(self, line: str | bytes) -> str:
        data = line.encode() if isinstance(line, str) else line
        self.writer.write(data + b"\r\n")
        await self.writer.drain()
        return await self.reply()

    async def starttls(self, context: ssl.SSLContext) -> str:
        answer = await self.send("STARTTLS")
        await asyncio.wait_for(
            self.writer.start_tls(context, server_hostname="127.0.0.1"), 10
        )
        return answer

    async def closed_by_server(self, within: float = 10) -> bool:
        """True once the server hangs up (bounded wait; data read is discarded)."""
        for _ in range(1000):
            chunk = await asyncio.wait_for(self.reader.read(4096), within)
            if not chunk:
                return True
        return False

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()
