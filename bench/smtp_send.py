"""SMTP sending: SMTPSender against bare aiosmtplib, on the same sink, same concurrency.

The sink is a minimal SMTP responder (an asyncio Protocol, no parsing beyond lines)
in a child process, so the sending side's CPU is what is measured. Both senders keep
``--connections`` sessions open and reuse them for every message: bare aiosmtplib as
one ``SMTP`` per worker calling ``sendmail``; SMTPSender with ``connections_per_lane``
set to the same number. The sink offers PIPELINING and answers a pipelined group in
one write: SMTPSender sends MAIL, RCPT and DATA in one write (RFC 2920), which bare
aiosmtplib cannot do. Prints messages/s of each and the ratio; asserts nothing.

    .venv/bin/python -m bench.smtp_send [--messages 20000] [--connections 50]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

import aiosmtplib

from warmup.adapters.smtp import SMTPSender
from warmup.core.settings import SourceIP, Timeouts, TLSSettings

HOST = "127.0.0.1"
SOURCE = SourceIP(address="127.0.0.1", helo="bench.example.test")
MESSAGE = (
    b"From: shop@example.test\r\nTo: user@example.test\r\nSubject: Hello\r\n"
    b"\r\n" + b"Hello there, this is the benchmark body.\r\n" * 40
)
TIMEOUTS = Timeouts(
    connect=timedelta(seconds=10),
    command=timedelta(seconds=10),
    data=timedelta(seconds=10),
)


class _Sink(asyncio.Protocol):
    """Answers every command with the reply a willing server would give."""

    def __init__(self) -> None:
        self.buffer = b""
        self.in_data = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies: list[bytes] = []
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    break
                self.buffer = self.buffer[end + 5 :]
                self.in_data = False
                self.message_ended()
                replies.append(b"250 2.0.0 queued\r\n")
                continue
            line, found, rest = self.buffer.partition(b"\r\n")
            if not found:
                break
            self.buffer = rest
            replies.append(self._answer(line))
        if replies and self.transport is not None:
            self.transport.write(b"".join(replies))

    def message_ended(self) -> None:
        """Called once per message received (bench.daemon stamps arrivals)."""

    def command(self, verb: bytes, line: bytes) -> None:
        """Called with each command line before it is answered (bench.nodes
        notes the recipients)."""

    def _answer(self, line: bytes) -> bytes:
        verb = line[:4].upper()
        self.command(verb, line)
        if verb == b"EHLO":
            return b"250-sink\r\n250-8BITMIME\r\n250 PIPELINING\r\n"
        if verb == b"DATA":
            self.in_data = True
            self.buffer = b"\r\n" + self.buffer  # so an empty body still ends
            return b"354 go ahead\r\n"
        if verb == b"QUIT":
            if self.transport is not None:
                self.transport.write(b"221 bye\r\n")
                self.transport.close()
            return b""
        return b"250 OK\r\n"


def _serve(port_queue: multiprocessing.Queue[int]) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Sink, HOST, 0, backlog=1024)
        port_queue.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


async def bare(port: int, messages: int, connections: int) -> float:
    async def worker(count: int) -> None:
        client = aiosmtplib.SMTP(
            hostname=HOST, port=port, local_hostname=SOURCE.helo, start_tls=False
        )
        await client.connect()
        for n in range(count):
            await client.sendmail("bounces@example.test", [f"u{n}@ex.test"], MESSAGE)
        await client.quit()

    return await _timed(worker, messages, connections)


async def pooled(port: int, messages: int, connections: int) -> float:
    sender = SMTPSender(
        timeouts=TIMEOUTS,
        tls=TLSSettings(starttls="off"),
        connections_per_lane=connections,
        messages_per_connection=messages,
    )

    async def worker(count: int) -> None:
        for n in range(count):
            outcome = await sender.send(
                source=SOURCE,
                host=HOST,
                port=port,
                sender="bounces@example.test",
                recipient=f"u{n}@ex.test",
                message=MESSAGE,
            )
            if not outcome.accepted:
                raise SystemExit(f"send failed: {outcome}")

    async with sender:
        return await _timed(worker, messages, connections)


async def _timed(
    worker: Callable[[int], Coroutine[Any, Any, None]], messages: int, connections: int
) -> float:
    share = [messages // connections] * connections
    share[0] += messages - sum(share)
    start = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for count in share:
            group.create_task(worker(count))
    return messages / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    queue: multiprocessing.Queue[int] = multiprocessing.Queue()
    sink = multiprocessing.Process(target=_serve, args=(queue,), daemon=True)
    sink.start()
    port = queue.get(timeout=30)
    try:
        results: dict[str, list[float]] = {"bare aiosmtplib": [], "SMTPSender": []}
        for _ in range(args.rounds):  # interleaved, best of N: less noise
            for name, run in (("bare aiosmtplib", bare), ("SMTPSender", pooled)):
                rate = asyncio.run(run(port, args.messages, args.connections))
                results[name].append(rate)
    finally:
        sink.terminate()
        sink.join()
    best = {name: max(rates) for name, rates in results.items()}
    for name, rate in best.items():
        print(f"{name:>16}: {rate:8.0f} msg/s  (rounds: {results[name]!r})")
    ratio = best["SMTPSender"] / best["bare aiosmtplib"]
    print(f"{'ratio':>16}: {ratio:8.2f}  ({args.connections} connections, reused)")


if __name__ == "__main__":
    main()
