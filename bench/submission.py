"""The relay's group commit alone (SQLRelayStore on SQLite), no SMTP.

``--concurrency`` callers each commit their share of ``--messages`` one-recipient
messages of ~2 KB; callers that arrive while a batch is written go into the next
one. Compares, interleaved, the writer as shipped (each batch in one call on a
writer thread over a plain sqlite3 connection) with the same statements on the
store's aiosqlite connection (a thread hop per statement), both durability modes.

    .venv/bin/python -m bench.submission [--messages 2000] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime

from warmup.adapters.db.relay_store import SQLRelayStore
from warmup.adapters.db.store import SQLStore
from warmup.app.ports import RelayedMessage
from warmup.core.recipients.address import Address

NOW = datetime(2030, 1, 1, tzinfo=UTC)
BODY = b"Subject: bench\r\n\r\n" + b"x" * 2000


def _message(n: int) -> RelayedMessage:
    return RelayedMessage(
        campaign="bench",
        content=BODY,
        mail_from="shop@shop.example",
        peer="127.0.0.1",
        auth_user=None,
        received_at=NOW,
        recipients=[(Address(f"u{n}", "gmail.com"), "gmail")],
    )


async def rate(
    *, thread: bool, durable: bool, messages: int, concurrency: int
) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store = await SQLStore.open(f"sqlite:///{tmp}/bench.db")
        submissions = SQLRelayStore(store, durable=durable)
        if not thread:
            submissions.close()
            submissions._sync = None  # the statements on aiosqlite, as before
        await submissions.commit_message(_message(-1))  # the campaign row

        async def caller(first: int) -> None:
            for n in range(first, messages, concurrency):
                await submissions.commit_message(_message(n))

        start = time.perf_counter()
        await asyncio.gather(*(caller(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - start
        submissions.close()
        await store.close()
    return messages / elapsed


async def main_async(args: argparse.Namespace) -> None:
    for durable in (False, True):
        found: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.rounds):  # interleaved: load changes hit both alike
            for thread in (False, True):
                found[thread].append(
                    await rate(
                        thread=thread,
                        durable=durable,
                        messages=args.messages,
                        concurrency=args.concurrency,
                    )
                )
        before, after = max(found[False]), max(found[True])
        print(
            f"fsync {'on ' if durable else 'off'}: statements on aiosqlite "
            f"{before:7,.0f} msg/s, one call on the writer thread {after:7,.0f} "
            f"msg/s = {after / before:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
