"""The one-click endpoint alone, on loopback, over an in-memory store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from tests.e2e.test_unsubscribe import ONE_CLICK, http, request
from warmup.adapters.unsubscribe_http import RUNNER_OPTIONS, unsubscribe_app
from warmup.app.unsubscribe import Unsubscriber
from warmup.core.errors import StoreError
from warmup.core.recipients.suppression import Suppression
from warmup.core.recipients.unsubscribe import UnsubscribeToken, encode_unsubscribe
from warmup.testing.clock import FakeClock

TOKEN = encode_unsubscribe(UnsubscribeToken(recipient_id=7, campaign_id=2), secret=b"k")


class MemoryStore:
    def __init__(self, *, broken: bool = False) -> None:
        self.suppressed: list[Suppression] = []
        self.broken = broken

    async def unsubscribe_target(self, recipient_id: int) -> tuple[str, int] | None:
        if self.broken:
            raise StoreError("finding an unsubscribe", "connection refused")
        return ("ann@shop.test", 2) if recipient_id == 7 else None

    async def unsubscribe(
        self, recipient_id: int, entry: Suppression, *, campaign_id: int | None
    ) -> bool:
        assert campaign_id is None, "scope is global here"
        new = entry.address not in {s.address for s in self.suppressed}
        self.suppressed.append(entry)
        return new


@asynccontextmanager
async def serving(
    store: MemoryStore, **options: float
) -> AsyncIterator[tuple[str, int]]:
    unsubscriber = Unsubscriber(
        store, clock=FakeClock(), secret=b"k", mail_domain="bounce.test"
    )
    app = unsubscribe_app(unsubscriber, **options)
    runner = web.AppRunner(app, **RUNNER_OPTIONS)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        yield str(host), int(port)
    finally:
        await runner.cleanup()


async def test_head_and_get_change_nothing_post_does() -> None:
    store = MemoryStore()
    async with serving(store) as address:
        assert (await http(address, request("HEAD", f"/u/{TOKEN}")))[0] == 200
        status, page = await http(address, request("GET", f"/u/{TOKEN}"))
        assert status == 200 and b"<button" in page
        assert store.suppressed == []
        assert (await http(address, request("POST", f"/u/{TOKEN}", ONE_CLICK)))[
            0
        ] == 200
    [entry] = store.suppressed
    assert (entry.address, entry.reason, entry.source) == (
        "ann@shop.test",
        "unsubscribe",
        "one-click",
    )


async def test_a_body_that_never_comes_gets_408() -> None:
    store = MemoryStore()
    async with serving(store, body_timeout=0.2) as address:
        head = request("POST", f"/u/{TOKEN}", ONE_CLICK)[: -len(ONE_CLICK)]
        status, _ = await asyncio.wait_for(http(address, head + b"List-"), 10)
        assert status == 408
    assert store.suppressed == []


async def test_a_database_outage_is_503_not_a_crash() -> None:
    store = MemoryStore(broken=True)
    async with serving(store) as address:
        status, page = await http(address, request("POST", f"/u/{TOKEN}", ONE_CLICK))
        assert status == 503 and b"try again" in page.lower()


async def test_multipart_form_posts_work_too() -> None:
    """RFC 8058 allows multipart/form-data as well as urlencoded."""
    store = MemoryStore()
    body = (
        b'--b\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        b"One-Click\r\n--b--\r\n"
    )
    raw = (
        f"POST /u/{TOKEN} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    async with serving(store) as address:
        assert (await http(address, raw))[0] == 200
    assert len(store.suppressed) == 1


async def test_a_chunked_body_past_the_limit_is_refused_without_reading_it() -> None:
    """No Content-Length to refuse up front: the reader stops at the limit."""
    store = MemoryStore()
    chunk = b"a" * 4000
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(50))
    raw = (
        f"POST /u/{TOKEN} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode() + body
    async with serving(store) as address:
        status, _ = await asyncio.wait_for(http(address, raw), 10)
        assert status == 413
        # A well-formed request after it is served as usual.
        assert (await http(address, request("POST", f"/u/{TOKEN}", ONE_CLICK)))[
            0
        ] == 200
    assert len(store.suppressed) == 1


async def test_a_flood_of_clicks_waits_for_the_store_and_loses_none() -> None:
    """Many parallel clicks on a slow store: at most a few reach it at once, and
    every one is answered (200 for ours, 404 for forged)."""
    store = SlowStore()
    forged = TOKEN[:-1] + ("0" if TOKEN[-1] != "0" else "1")
    async with serving(store) as address:
        answers = await asyncio.wait_for(
            asyncio.gather(
                *(
                    http(address, request("POST", f"/u/{token}", ONE_CLICK))
                    for token in [TOKEN, forged] * 30
                )
            ),
            30,
        )
    assert [status for status, _ in answers] == [200, 404] * 30
    assert len(store.suppressed) == 30
    assert store.most_at_once <= 8


class SlowStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.at_once = 0
        self.most_at_once = 0

    async def unsubscribe_target(self, recipient_id: int) -> tuple[str, int] | None:
        self.at_once += 1
        self.most_at_once = max(self.most_at_once, self.at_once)
        try:
            for _ in range(1_000):  # bounded: a slow database, others pile up
                if self.at_once > 8:
                    break
                await asyncio.sleep(0)
            return await super().unsubscribe_target(recipient_id)
        finally:
            self.at_once -= 1
