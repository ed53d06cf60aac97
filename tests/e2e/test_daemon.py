"""`warmup run` as a real process: SIGKILL at random moments, and two nodes on one
PostgreSQL. Every loop is bounded; waits are on messages arriving, with timeouts."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import sys
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from tests.conftest import _fresh_pg_database
from tests.e2e.helpers import enqueue_via_cli
from warmup.cli.run_cmd import RUN_BURST_SENDS
from warmup.testing.smtp import ScriptedSMTPServer

FAST = """\
isp: gmail
match: {domains: [gmail.com]}
ramp:
  - {days: 1-30, per_hour: 360000}
"""
DEFAULT = "isp: default\nramp:\n  - {days: 1, per_hour: 5}\n"
ENV = {**os.environ, "WARMUP_VERP_SECRET": "test-secret"}


class Tracker:
    """Counts accepted messages per recipient; wakes waiters at a given total."""

    def __init__(self) -> None:
        self.accepted: Counter[str] = Counter()
        self.refused: set[str] = set()  # addresses answered 550 at RCPT
        self.changed = asyncio.Event()  # set at every DATA and every refusal
        self.by_peer: dict[str, set[str]] = {}
        self.total = 0
        self._waiters: list[tuple[int, asyncio.Event]] = []

    def reply(self, peer: str, command: str, arg: str) -> str | None:
        if command == "RCPT" and arg.startswith("dead"):
            self.refused.add(arg)
            self.changed.set()
            return "550 5.1.1 The email account that you tried to reach does not exist."
        if command == "DATA":
            self.accepted[arg] += 1
            self.by_peer.setdefault(peer, set()).add(arg)
            self.total += 1
            self.changed.set()
            for target, event in self._waiters:
                if self.total >= target:
                    event.set()
        return None

    async def reach(self, total: int, within: float) -> None:
        event = asyncio.Event()
        if self.total >= total:
            return
        self._waiters.append((total, event))
        await asyncio.wait_for(event.wait(), within)


def _write_project(
    directory: Path, database: str, port: int, node: str, ips: list[str]
) -> Path:
    (directory / "schedules").mkdir(parents=True, exist_ok=True)
    (directory / "schedules" / "gmail.yaml").write_text(FAST)
    (directory / "schedules" / "default.yaml").write_text(DEFAULT)
    listed = "".join(
        f"  - {{address: {ip}, helo: mta-{ip}.test, host: {node}}}\n" for ip in ips
    )
    config = directory / f"{node}.yaml"
    config.write_text(
        f"database: {database}\ntimezone: UTC\nschedules: schedules/\nnode: {node}\n"
        f"ips:\n{listed}"
        f"delivery:\n  routes: {{gmail: '127.0.0.1:{port}'}}\n  batch_size: 100\n"
        "  lease: 30s\n  timeouts: {connect: 5s, command: 5s, data: 5s}\n"
        "  tls: {starttls: 'off'}\n"
        "bounces: {return_path: bounces@bounce.test}\n"
    )
    return config


async def _start(config: Path, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as handle:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "warmup",
            "-c",
            str(config),
            "run",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=handle,
            env=ENV,
        )


async def _stop(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), 10)  # exits within 10 s


def _states(database: str) -> Counter[str]:
    if database.startswith("sqlite"):
        with sqlite3.connect(database.removeprefix("sqlite:///")) as db:
            return Counter(
                dict(
                    db.execute(
                        "SELECT state, count(*) FROM recipients GROUP BY state"
                    ).fetchall()
                )
            )
    with psycopg.connect(database.replace("+psycopg", "")) as db:
        rows = db.execute("SELECT state, count(*) FROM recipients GROUP BY state")
        return Counter(dict(rows.fetchall()))


async def test_sigkill_ten_times_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(4)
    tracker = Tracker()
    database = f"sqlite:///{tmp_path / 'warmup.db'}"
    ips = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
    addresses = [f"u{i}@gmail.com" for i in range(9_900)] + [
        f"dead{i}@gmail.com" for i in range(100)
    ]
    async with ScriptedSMTPServer(reply_for=tracker.reply) as server:
        config = _write_project(tmp_path, database, server.port, "node-a", ips)
        await enqueue_via_cli(tmp_path, config, addresses)
        log = tmp_path / "run.log"
        kills = []
        process = await _start(config, log)
        try:
            for _ in range(10):
                await tracker.reach(tracker.total + rng.randint(100, 800), within=120)
                process.kill()  # SIGKILL: no chance to clean up
                await process.wait()
                kills.append(tracker.total)
                process = await _start(config, log)
            await tracker.reach(9_900 + 0, within=300)
            # Every live address arrived at least once, every dead one was
            # refused at least once; now stop cleanly (what a stop's tick sent
            # is recorded then).
            while len(tracker.accepted) < 9_900 or len(tracker.refused) < 100:
                tracker.changed.clear()  # bounded: each wait has a timeout
                await asyncio.wait_for(tracker.changed.wait(), 60)
        finally:
            code = await _stop(process)
    assert code == 0, log.read_text()[-2000:]
    states = _states(database)
    assert states == Counter({"delivered": 9_900, "bounced": 100}), states
    duplicates = sum(n - 1 for n in tracker.accepted.values())
    print(f"{duplicates} duplicates over {len(kills)} kills at totals {kills}")
    # A kill repeats at most the sends of the tick in progress: up to
    # EngineSettings.burst_sends per lane (4 lanes, 10 kills).
    assert duplicates <= RUN_BURST_SENDS * 4 * len(kills), (duplicates, kills)
    assert not any(a.startswith("dead") for a in tracker.accepted)


@pytest.mark.external_service
async def test_two_nodes_share_one_postgres(tmp_path: Path, pg_admin: str) -> None:
    tracker = Tracker()
    database = _fresh_pg_database(pg_admin)
    addresses = [f"u{i}@gmail.com" for i in range(4_000)]
    async with ScriptedSMTPServer(reply_for=tracker.reply) as server:
        a = _write_project(
            tmp_path, database, server.port, "node-a", ["127.0.0.2", "127.0.0.3"]
        )
        b = _write_project(
            tmp_path, database, server.port, "node-b", ["127.0.0.4", "127.0.0.5"]
        )
        await enqueue_via_cli(tmp_path, a, addresses)
        log = tmp_path / "run.log"
        first, second = await _start(a, log), await _start(b, log)
        try:
            await tracker.reach(4_000, within=300)
        finally:
            codes = [await _stop(first), await _stop(second)]
    assert codes == [0, 0], log.read_text()[-2000:]
    assert tracker.total == 4_000  # none sent twice
    assert set(tracker.accepted) == set(addresses)  # none lost
    assert _states(database) == Counter({"delivered": 4_000})
    by_node = {ip: len(rcpts) for ip, rcpts in tracker.by_peer.items()}
    assert set(by_node) == {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}
    assert min(by_node.values()) > 0
