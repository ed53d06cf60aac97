"""Several `warmup run` nodes on one PostgreSQL: throughput and exactly-once.

A throw-away PostgreSQL (fsync off, as the test suite runs it), a fresh
database per run, ``--messages`` recipients enqueued with ``warmup enqueue``,
then N ``warmup run`` processes (node names node-0..node-N-1) with the shipped
defaults and 8 source IPs 127.0.0.2-9 split between them (``host:`` of each
IP), one ISP at an unlimited rate routed to a sink. The sink, in its own
process, counts deliveries per recipient (a completed DATA counts each of its
RCPTs) and stamps the first and last. A run ends when the sink has every
recipient (bounded), plus --linger seconds for late duplicates. Per run:
msg/s from the first to the last delivery, recipients missing, recipients
delivered more than once, and the database's states. Node counts are
interleaved over --rounds; the ratio is against 1 node of the same round.

    .venv/bin/python -m bench.nodes [--nodes 1 2 4] [--messages 4000]
                                    [--rounds 2] [--linger 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from pathlib import Path

import psycopg

from bench.daemon import DEFAULT, ENV, IPS, SCHEDULE, WARMUP, enqueue
from bench.smtp_send import HOST, _Sink
from warmup.testing.postgres import PostgresServer, start_postgres

_RCPT = re.compile(rb"<u(\d+)@")


class Tally:
    """Deliveries per recipient and first/last arrival, shared with the sink."""

    def __init__(self, size: int) -> None:
        self.per: SynchronizedArray[int] = multiprocessing.Array("i", size, lock=False)
        self.count: Synchronized[int] = multiprocessing.Value("q", 0, lock=False)
        self.times: SynchronizedArray[float] = multiprocessing.Array("d", 2, lock=False)

    def reset(self) -> None:
        for n in range(len(self.per)):
            self.per[n] = 0
        self.count.value = 0
        self.times[0] = self.times[1] = 0.0

    def delivered(self, indexes: list[int]) -> None:
        now = time.monotonic()
        if self.count.value == 0:
            self.times[0] = now
        for index in indexes:
            self.per[index] += 1
        self.count.value += len(indexes)
        self.times[1] = now


class _Counting(_Sink):
    """250 to everything; each completed DATA counts its RCPTs."""

    def __init__(self, tally: Tally) -> None:
        super().__init__()
        self.tally = tally
        self.rcpts: list[int] = []

    def command(self, verb: bytes, line: bytes) -> None:
        if verb == b"RCPT":
            found = _RCPT.search(line)
            if found:
                self.rcpts.append(int(found.group(1)))
        if verb in (b"MAIL", b"RSET"):
            self.rcpts = []

    def message_ended(self) -> None:
        self.tally.delivered(self.rcpts)
        self.rcpts = []


def _serve(tally: Tally, ports: multiprocessing.Queue[int]) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Counting(tally), HOST, 0, backlog=1024
        )
        ports.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


def _database(server: PostgresServer, name: str) -> str:
    admin = server.admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.url(name)


def _configs(directory: Path, database: str, port: int, nodes: int) -> list[Path]:
    (directory / "schedules").mkdir()
    (directory / "schedules" / "gmail.yaml").write_text(SCHEDULE)
    (directory / "schedules" / "default.yaml").write_text(DEFAULT)
    ips = "".join(
        f"  - {{address: {ip}, helo: m{n}.test, host: node-{n % nodes}}}\n"
        for n, ip in enumerate(IPS)
    )
    paths = []
    for k in range(nodes):
        path = directory / f"node-{k}.yaml"
        path.write_text(
            f"database: {database}\ntimezone: UTC\nschedules: schedules/\n"
            f"node: node-{k}\nips:\n{ips}"
            f"delivery:\n  routes: {{gmail: '{HOST}:{port}'}}\n"
            "bounces: {return_path: bounces@bounce.test}\n"
        )
        paths.append(path)
    return paths


@dataclass
class Run:
    nodes: int
    rate: float
    missing: int
    twice: int
    states: dict[str, int]


def _states(database: str) -> dict[str, int]:
    plain = database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn:
        rows = conn.execute("SELECT state, count(*) FROM recipients GROUP BY state")
        return {str(state): int(n) for state, n in rows}


def _wait(tally: Tally, messages: int, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 600
    while tally.count.value < messages:  # bounded by the deadline
        if time.monotonic() > deadline or all(p.poll() is not None for p in procs):
            return  # reported as missing
        time.sleep(0.05)


def run(
    server: PostgresServer,
    tally: Tally,
    port: int,
    nodes: int,
    args: argparse.Namespace,
) -> Run:
    name = f"nodes{nodes}_{time.monotonic_ns()}"
    database = _database(server, name)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        configs = _configs(directory, database, port, nodes)
        enqueue(directory, configs[0], args.messages)
        tally.reset()
        log = (directory / "run.log").open("ab")
        procs = [
            subprocess.Popen(
                [*WARMUP, "-c", str(config), "run"],
                env=ENV,
                cwd=tmp,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            for config in configs
        ]
        try:
            _wait(tally, args.messages, procs)
            time.sleep(args.linger)  # late duplicates would arrive now
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(30)
            log.close()
        if tally.count.value < args.messages:
            print((directory / "run.log").read_text()[-3000:])
    per = [tally.per[n] for n in range(len(tally.per))]
    span = tally.times[1] - tally.times[0]
    return Run(
        nodes=nodes,
        rate=(tally.count.value - 1) / span if span > 0 else 0.0,
        missing=sum(1 for n in per if n == 0),
        twice=sum(1 for n in per if n > 1),
        states=_states(database),
    )


def _table(runs: list[Run], base: dict[int, float]) -> None:
    head = f"{'nodes':>5} {'msg/s':>8} {'x 1 node':>9} {'missing':>8} {'twice':>6}"
    print(f"\n{head}  states")
    sizes = len({r.nodes for r in runs})
    for n, item in enumerate(runs):
        ratio = item.rate / base[n // sizes] if base[n // sizes] else 0.0
        print(
            f"{item.nodes:>5} {item.rate:>8,.0f} {ratio:>9.2f} {item.missing:>8} "
            f"{item.twice:>6}  {item.states}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--messages", type=int, default=4_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--linger", type=float, default=3.0)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    tally = Tally(args.messages)
    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    sink = multiprocessing.Process(target=_serve, args=(tally, ports), daemon=True)
    sink.start()
    port = ports.get(timeout=30)
    server = start_postgres()
    runs: list[Run] = []
    base: dict[int, float] = {}
    try:
        for round_ in range(args.rounds):  # interleaved: load changes hit all alike
            for nodes in args.nodes:
                item = run(server, tally, port, nodes, args)
                if nodes == args.nodes[0]:
                    base[round_] = item.rate
                runs.append(item)
                print(
                    f"round {round_ + 1}, {nodes} node(s): {item.rate:,.0f} msg/s, "
                    f"missing {item.missing}, twice {item.twice}, {item.states}",
                    flush=True,
                )
    finally:
        server.stop()
        sink.terminate()
    _table(runs, base)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
