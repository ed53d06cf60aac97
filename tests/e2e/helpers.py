"""Shared by the end-to-end tests: loading a list and running commands through
the real CLI, the dispatcher as ``warmup run`` builds it, a run on a virtual clock."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from warmup.adapters.db.store import SQLStore
from warmup.adapters.smtp import SMTPSender
from warmup.app.dispatcher import Dispatcher
from warmup.app.ports import Clock, MXAnswer, Resolver, Sender
from warmup.cli import cli
from warmup.cli.engine import build_dispatcher
from warmup.config import Config, load_config
from warmup.testing.clock import FakeClock
from warmup.testing.fakes import FakeResolver

TEMPLATE = b"From: shop@shop.example\nSubject: Hi {{ name }}\n\nHello {{ name }}\n"


async def enqueue_via_cli(
    directory: Path, config: Path, addresses: list[str], campaign: str = "e2e"
) -> str:
    """`warmup enqueue --json` (in a thread: the CLI runs its own event loop)."""
    listing = directory / f"{campaign}.csv"
    listing.write_text("email,name\n" + "".join(f"{a},N\n" for a in addresses))
    template = directory / "t.eml"
    template.write_bytes(TEMPLATE)
    args = [
        "-c",
        str(config),
        "enqueue",
        str(listing),
        "--template",
        str(template),
        "--campaign",
        campaign,
        "--json",
    ]
    result = await asyncio.to_thread(CliRunner().invoke, cli, args)
    assert result.exit_code == 0, result.output
    return result.output


async def cli_run(config: Path, *args: str) -> Result:
    """`warmup -c CONFIG ARGS…` in a thread (the CLI runs its own event loop), wide."""
    runner = CliRunner(env={"COLUMNS": "250"})
    return await asyncio.to_thread(
        runner.invoke, cli, ["-c", str(config), *args], catch_exceptions=False
    )


def smtp_sender(config: Config) -> SMTPSender:
    """The real sender with the configuration's timeouts and TLS policy."""
    delivery = config.settings.delivery
    return SMTPSender(timeouts=delivery.timeouts, tls=delivery.tls)


@asynccontextmanager
async def smtp_engine(
    config_path: Path, clock: Clock, **options: Any
) -> AsyncIterator[tuple[SQLStore, Dispatcher]]:
    """The configuration's store and :func:`e2e_dispatcher` over real SMTP;
    sender and store closed on the way out."""
    config = load_config(config_path)
    store = await SQLStore.open(config.settings.database)
    sender = smtp_sender(config)
    try:
        yield store, e2e_dispatcher(config, store, sender, clock, **options)
    finally:
        await sender.close()
        await store.close()


def e2e_dispatcher(
    config: Config,
    store: SQLStore,
    sender: Sender,
    clock: Clock,
    *,
    resolver: Resolver | None = None,
    secret: bytes = b"s",
    **options: Any,
) -> Dispatcher:
    """The CLI's dispatcher, with a fake DNS (every domain its own MX unless
    ``resolver`` says otherwise) and a fixed secret."""
    return build_dispatcher(
        config,
        store=store,
        sender=sender,
        resolver=resolver or FakeResolver(),
        clock=clock,
        secret=secret,
        **options,
    )


@dataclass
class EngineRun:
    """A dispatcher driven tick by tick on a virtual clock."""

    engine: Dispatcher
    clock: FakeClock
    store: SQLStore

    async def drive_until(self, until: datetime) -> None:
        for _ in range(100_000):  # bounded; each tick jumps to the next event
            wake = await self.engine.tick()
            if wake >= until:
                self.clock.advance(max(until - self.clock.now(), timedelta(0)))
                return
            self.clock.advance(max(wake - self.clock.now(), timedelta(0)))
        raise AssertionError("the engine did not reach its end")

    async def ramp_days(self) -> dict[str, int]:
        return {lane.ip: lane.ramp_day for _, lane, _ in await self.store.all_lanes()}

    async def causes(self, ip: str) -> list[str]:
        return [e["cause"] for e in await self.store.all_events() if e["ip"] == ip]


def free_port() -> int:
    """A loopback TCP port free now (for a listener the CLI itself opens)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def relay_credentials(config: Path, user: str, password: str) -> None:
    """`warmup relay cert` (for 127.0.0.1) and `warmup relay adduser USER`."""
    runner = CliRunner()
    made = runner.invoke(
        cli, ["-c", str(config), "relay", "cert", "--hostname", "127.0.0.1"]
    )
    assert made.exit_code == 0, made.output
    added = runner.invoke(
        cli,
        ["-c", str(config), "relay", "adduser", user, "--password-stdin"],
        input=password + "\n",
    )
    assert added.exit_code == 0 and f"added {user}" in added.output, added.output


def mx_of(domain: str) -> FakeResolver:
    """A fake DNS that answers ``mx.DOMAIN`` for ``domain``."""
    return FakeResolver(answers={domain: MXAnswer(hosts=(f"mx.{domain}",))})
