"""Outcome events shipped from the outbox to a real HTTP receiver on loopback and
to the accounting log, on a virtual clock: a receiver that is down for a while
gets every event afterwards, duplicates only with the same id."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from warmup.adapters.db.store import SQLStore
from warmup.adapters.event_log import EventLog
from warmup.adapters.metrics import MetricsExporter
from warmup.adapters.webhook import Webhook
from warmup.app.ports import TemplateRecord
from warmup.app.shipping import DeliveryError, Shipper
from warmup.core.attempt import AttemptRecord, TickRecord
from warmup.core.lanes.backoff import RetryDecision
from warmup.core.lanes.lane import Lane
from warmup.core.model import RecipientState, Verdict
from warmup.core.recipients.recipient import NewRecipient
from warmup.core.settings import EventLogSettings, WebhookSettings
from warmup.testing.clock import FakeClock

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
SECRET = b"hook-secret"


@dataclass
class Receiver:
    """A minimal HTTP/1.1 server: records each POST, answers ``status``."""

    status: int = 200
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    taken: list[bytes] = field(default_factory=list)  # bodies answered 2xx
    port: int = 0

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            for _ in range(10_000):  # keep-alive: bounded
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                self.requests.append((headers, body))
                if self.status < 300:
                    self.taken.append(body)
                reply = f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\n\r\n"
                writer.write(reply.encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def ids(self) -> list[int]:
        """Event ids of the batches the receiver took."""
        return [e["id"] for body in self.taken for e in json.loads(body)["events"]]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    server = await asyncio.start_server(found.handle, "127.0.0.1", 0)
    found.port = server.sockets[0].getsockname()[1]
    async with server:
        yield found


async def _outcomes(store: SQLStore) -> int:
    """40 cancelled, 10 bounced: 50 events in the outbox."""
    template = TemplateRecord(name="t", sha256="b" * 64, content=b"Subject: x\r\n\r\n")
    campaign = await store.ensure_campaign("spring", template, NOW)
    rows = [
        NewRecipient(
            address=f"u{i}@gmail.com",
            domain="gmail.com",
            engagement_score=None,
            engaged_at=None,
            fields={},
        )
        for i in range(50)
    ]
    await store.insert_recipients(campaign.id, rows, ["gmail"] * 50, NOW)
    lane_id, _ = await store.ensure_lane(Lane(ip="127.0.0.2", isp="gmail"), NOW)
    tick = TickRecord(
        attempts=[
            AttemptRecord(
                recipient_id=rid,
                lane_id=lane_id,
                attempted_at=NOW,
                verdict=Verdict.hard,
                reason="userunknown",
                code=550,
                enhanced="5.1.1",
                reply="550 5.1.1 no such user",
                rule="t",
                decision=RetryDecision(state=RecipientState.bounced),
                attempts=1,
            )
            for rid in range(1, 11)
        ]
    )
    await store.record(tick, NOW)
    await store.set_campaign_cancelled(
        "spring", cancel=True, actor="ops@host", reason="", now=NOW
    )
    return len(await store.read_events())


def _hook(receiver: Receiver, **kw: Any) -> Webhook:
    settings = WebhookSettings(url=f"http://127.0.0.1:{receiver.port}/hook", **kw)
    return Webhook(settings, SECRET)


async def _ship_until(
    shipper: Shipper, clock: FakeClock, hook: Webhook, span: timedelta
) -> None:
    end = clock.now() + span
    for _ in range(100_000):  # bounded
        if clock.now() >= end:
            return
        await shipper.ship(hook)
        # As the shipper's task sleeps: a second, or until the next retry.
        due = (await shipper.store.cursor(hook.name)).next_try_at
        step = max(due - clock.now(), timedelta(seconds=1)) if due else None
        clock.advance(min(step or timedelta(seconds=1), end - clock.now()))
    raise AssertionError("not done")


async def test_a_receiver_down_for_a_while_gets_every_event_after(
    store: SQLStore, receiver: Receiver
) -> None:
    total = await _outcomes(store)
    assert total == 50
    clock = FakeClock(NOW)
    hook = _hook(receiver, batch=20)
    shipper = Shipper(store, [hook], clock)
    try:
        receiver.status = 500
        await _ship_until(shipper, clock, hook, timedelta(minutes=30))
        # Exponential backoff: 2 s, 4 s, 8 s … 10 min, not one try a second.
        assert 5 <= len(receiver.requests) <= 12
        assert (await store.cursor(hook.name)).last_id == 0
        receiver.status = 200
        await _ship_until(shipper, clock, hook, timedelta(minutes=11))
    finally:
        await hook.close()
    ids = receiver.ids()
    outbox = [e["id"] for e in await store.read_events()]
    assert sorted(set(ids)) == outbox  # none lost
    seen: dict[int, dict[str, Any]] = {}
    for headers, body in receiver.requests:
        timestamp = headers["x-warmup-timestamp"]
        expected = hmac.new(
            SECRET, timestamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        assert hmac.compare_digest(headers["x-warmup-signature"], f"sha256={expected}")
        for event in json.loads(body)["events"]:
            # A duplicate is the same event: same id, same content.
            assert seen.setdefault(event["id"], event) == event
    kinds = {e["type"] for e in seen.values()}
    assert kinds == {"bounced", "cancelled"}
    bounced = next(e for e in seen.values() if e["type"] == "bounced")
    assert bounced["recipient"] == "u0@gmail.com" and bounced["ip"] == "127.0.0.2"
    assert bounced["status"] == "5.1.1" and bounced["campaign"] == "spring"


async def test_a_dead_endpoint_is_given_up_after_retry_for(
    store: SQLStore, receiver: Receiver
) -> None:
    await _outcomes(store)
    clock = FakeClock(NOW)
    hook = _hook(receiver, retry_for=timedelta(hours=1), batch=100)
    shipper = Shipper(store, [hook], clock)
    receiver.status = 503
    try:
        await _ship_until(shipper, clock, hook, timedelta(hours=1, minutes=15))
    finally:
        await hook.close()
    cursor = await store.cursor(hook.name)
    assert cursor.last_id == 50 and cursor.failures == 0  # given up, moved on


async def test_listmonk_format_posts_each_bounce_as_listmonk_expects(
    store: SQLStore, receiver: Receiver
) -> None:
    await _outcomes(store)
    clock = FakeClock(NOW)
    hook = _hook(receiver, format="listmonk", batch=100)
    try:
        assert await Shipper(store, [hook], clock).ship(hook) == 10
    finally:
        await hook.close()
    bodies = [json.loads(body) for _, body in receiver.requests]
    assert len(bodies) == 10  # one bounce per request; cancelled are not sent
    for body in bodies:
        assert set(body) == {"email", "source", "type", "meta"}
        assert body["type"] == "hard" and body["source"] == "warmup"
        assert body["email"].endswith("@gmail.com")
        meta = json.loads(body["meta"])  # an escaped JSON string
        assert meta["status"] == "5.1.1" and meta["campaign"] == "spring"


async def test_the_accounting_log_gets_every_event_and_rotates(
    store: SQLStore, tmp_path: Path
) -> None:
    await _outcomes(store)
    path = tmp_path / "events.jsonl"
    log = EventLog(EventLogSettings(log=str(path), rotate_bytes=4096, keep=2))
    shipper = Shipper(store, [log], FakeClock(NOW))
    for _ in range(10):  # bounded
        await shipper.ship(log)
    files = [path, path.with_name("events.jsonl.1"), path.with_name("events.jsonl.2")]
    assert all(f.exists() for f in files)
    assert all(f.stat().st_size <= 4096 for f in files)
    lines = [json.loads(x) for f in files for x in f.read_text().splitlines()]
    assert {e["id"] for e in lines} <= set(range(1, 51))
    assert 50 in {e["id"] for e in lines}  # the newest are kept


async def test_the_backlog_is_a_metric_per_consumer(
    store: SQLStore, receiver: Receiver
) -> None:
    await _outcomes(store)
    clock = FakeClock(NOW)
    hook = _hook(receiver, batch=20)
    exporter = MetricsExporter(store, clock, consumers=[hook.name])
    sample = ("warmup_event_backlog", {"consumer": hook.name})
    try:
        assert await exporter.refresh()
        assert exporter.registry.get_sample_value(*sample) == 50
        await Shipper(store, [hook], clock).ship(hook)
        assert await exporter.refresh()
        assert exporter.registry.get_sample_value(*sample) == 30
    finally:
        await hook.close()


async def test_an_endpoint_nobody_listens_on_is_a_delivery_error(
    store: SQLStore,
) -> None:
    """aiohttp's connection errors become DeliveryError (a retry), never escape."""
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()  # the port is free again: connecting is refused
    hook = Webhook(WebhookSettings(url=f"http://127.0.0.1:{port}/hook"), SECRET)
    try:
        with pytest.raises(DeliveryError, match="not delivered: Client"):
            await hook.deliver([{"id": 1, "type": "delivered"}], NOW)
    finally:
        await hook.close()
