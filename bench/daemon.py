"""`warmup run` as a process against bare aiosmtplib, on the same sink, same run.

A minimal sink (bench.smtp_send's responder, 250 to everything) runs in a child
process and stamps the first and the last message it receives in shared memory.
Each round:

1. the daemon: a temp project with the shipped defaults (only what the bench must
   say is written: SQLite, 8 source IPs 127.0.0.2-9, one ISP at a rate of
   36,000,000/h, its route to the sink), ``--messages`` recipients loaded with
   ``warmup enqueue``, then ``warmup run`` as a process until the sink has them all;
2. bare aiosmtplib ``sendmail`` over 8 connections to the same sink.

Both rates are messages from the first to the last delivery seen by the sink.
Rounds are interleaved; prints each round, the best of each and their ratio.

    .venv/bin/python -m bench.daemon [--messages 8000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from pathlib import Path
from typing import Any

from bench.smtp_send import HOST, _Sink, bare

IPS = [f"127.0.0.{n}" for n in range(2, 10)]
SCHEDULE = """\
isp: gmail
match: {domains: [gmail.com]}
ramp:
  - {days: 1-30, per_hour: 36000000}
"""
DEFAULT = "isp: default\nramp:\n  - {days: 1, per_hour: 5}\n"
TEMPLATE = b"From: shop@shop.example\r\nTo: {{ email }}\r\nSubject: Hello\r\n\r\n" + (
    b"Hello there, this is the body of a typical short campaign message.\r\n" * 20
)
WARMUP = [sys.executable, "-m", "warmup"]
ENV = {**os.environ, "WARMUP_VERP_SECRET": "bench-secret"}


class _Stamps:
    """Message count and first/last arrival (CLOCK_MONOTONIC), shared with the sink."""

    def __init__(self) -> None:
        self.count: Synchronized[int] = multiprocessing.Value("q", 0, lock=False)
        self.times: SynchronizedArray[float] = multiprocessing.Array("d", 2, lock=False)

    def reset(self) -> None:
        self.count.value = 0
        self.times[0] = self.times[1] = 0.0

    def rate(self) -> float:
        return (self.count.value - 1) / (self.times[1] - self.times[0])


def _serve(stamps: _Stamps, ports: multiprocessing.Queue[int]) -> None:
    class Stamping(_Sink):
        def message_ended(self) -> None:
            now = time.monotonic()
            if stamps.count.value == 0:
                stamps.times[0] = now
            stamps.count.value += 1
            stamps.times[1] = now

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Stamping, HOST, 0, backlog=1024)
        ports.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


def _project(directory: Path, port: int, messages: int) -> Path:
    (directory / "schedules").mkdir()
    (directory / "schedules" / "gmail.yaml").write_text(SCHEDULE)
    (directory / "schedules" / "default.yaml").write_text(DEFAULT)
    ips = "".join(f"  - {{address: {ip}, helo: m{ip[-1]}.test}}\n" for ip in IPS)
    config = directory / "config.yaml"
    config.write_text(
        f"database: sqlite:///{directory / 'warmup.db'}\ntimezone: UTC\n"
        f"schedules: schedules/\nips:\n{ips}"
        f"delivery:\n  routes: {{gmail: '{HOST}:{port}'}}\n"
        "bounces: {return_path: bounces@bounce.test}\n"
    )
    enqueue(directory, config, messages)
    return config


def enqueue(directory: Path, config: Path, messages: int) -> None:
    """``warmup enqueue`` of u0@gmail.com … u<messages-1>@gmail.com."""
    listing = directory / "list.csv"
    listing.write_text(
        "email\n" + "".join(f"u{i}@gmail.com\n" for i in range(messages))
    )
    (directory / "t.eml").write_bytes(TEMPLATE)
    options = ["--template", str(directory / "t.eml"), "--campaign", "bench"]
    subprocess.run(
        [*WARMUP, "-c", str(config), "enqueue", str(listing), *options],
        check=True,
        env=ENV,
        cwd=directory,
        stdout=subprocess.DEVNULL,
    )


def _wait_for(
    stamps: _Stamps, messages: int, within: float, alive: Callable[[], bool]
) -> None:
    deadline = time.monotonic() + within
    while stamps.count.value < messages:  # bounded by the deadline
        if time.monotonic() > deadline or not alive():
            raise SystemExit(f"only {stamps.count.value} of {messages} arrived")
        time.sleep(0.05)


def daemon(
    stamps: _Stamps,
    port: int,
    messages: int,
    log: Path | None,
    profile: Path | None = None,
    *,
    plain_loop: bool = False,
) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        config = _project(Path(tmp), port, messages)
        stamps.reset()
        with (log or Path(tmp) / "run.log").open("ab") as errors:
            process = subprocess.Popen(
                [*_warmup(profile, plain_loop), "-c", str(config), "run"],
                env=ENV,
                cwd=tmp,
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
            try:
                _wait_for(stamps, messages, 600, lambda: process.poll() is None)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
    return stamps.rate()


def _python(profile: Path | None) -> list[str]:
    if profile is None:
        return [sys.executable]
    return [sys.executable, "-m", "cProfile", "-o", str(profile)]


def _warmup(profile: Path | None, plain_loop: bool) -> list[str]:
    if not plain_loop:
        return [*_python(profile), "-m", "warmup"]
    # uvloop hidden: asyncio's own loop, as without warmup[fast]
    hide = (
        "import sys; sys.modules['uvloop'] = None; from warmup.cli import main; main()"
    )
    return [*_python(profile), "-c", hide]


def bare_rate(stamps: _Stamps, port: int, messages: int) -> float:
    stamps.reset()
    asyncio.run(bare(port, messages, len(IPS)))
    _wait_for(stamps, messages, 60, lambda: True)
    return stamps.rate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=8_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--log", type=Path, help="append the daemons' stderr here")
    parser.add_argument("--profile", type=Path, help="cProfile the daemon into this")
    parser.add_argument(
        "--plain-loop",
        action="store_true",
        help="also run the daemon on asyncio's own loop (uvloop hidden) each round",
    )
    args = parser.parse_args()
    stamps = _Stamps()
    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    sink = multiprocessing.Process(target=_serve, args=(stamps, ports), daemon=True)
    sink.start()
    port = ports.get(timeout=30)
    rates: dict[str, list[float]] = {"bare": [], "daemon": [], "plain": []}
    try:
        for n in range(args.rounds):  # interleaved: load changes hit both alike
            rates["bare"].append(bare_rate(stamps, port, args.messages))
            rates["daemon"].append(
                daemon(stamps, port, args.messages, args.log, args.profile)
            )
            line = (
                f"round {n + 1}: bare aiosmtplib {rates['bare'][-1]:,.0f} msg/s, "
                f"warmup run {rates['daemon'][-1]:,.0f} msg/s "
                f"= {rates['daemon'][-1] / rates['bare'][-1]:.2f}x"
            )
            if args.plain_loop:
                rates["plain"].append(
                    daemon(stamps, port, args.messages, args.log, plain_loop=True)
                )
                line += (
                    f"; on asyncio's loop {rates['plain'][-1]:,.0f} msg/s "
                    f"= {rates['plain'][-1] / rates['bare'][-1]:.2f}x"
                )
            print(line, flush=True)
    finally:
        sink.terminate()
    best: dict[str, Any] = {name: max(v) for name, v in rates.items() if v}
    print(f"bare aiosmtplib, {len(IPS)} connections: {best['bare']:8,.0f} msg/s (best)")
    print(
        f"warmup run, {len(IPS)} IPs, shipped defaults: {best['daemon']:8,.0f} msg/s "
        f"= {best['daemon'] / best['bare']:.2f}x bare (goal >= 0.8)"
    )
    if "plain" in best:
        print(
            f"warmup run on asyncio's own loop: {best['plain']:8,.0f} msg/s "
            f"= {best['plain'] / best['bare']:.2f}x bare"
        )


if __name__ == "__main__":
    main()
