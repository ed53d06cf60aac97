"""The Prometheus endpoint over a real store (SQLite and PostgreSQL): scraped over
HTTP on a free loopback port, values checked against what was written."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, text, update

from warmup.adapters.db.metrics_queries import queue_totals
from warmup.adapters.db.schema import lane_days, lanes, recipients
from warmup.adapters.db.store import SQLStore
from warmup.adapters.metrics import MetricsExporter, exporting
from warmup.app.ports import TemplateRecord
from warmup.core.errors import StoreError, WarmupError
from warmup.core.recipients.recipient import NewRecipient
from warmup.core.settings import MetricsSettings

NOW = datetime(2030, 1, 10, 12, tzinfo=UTC)
D1, D2, D3 = date(2030, 1, 8), date(2030, 1, 9), date(2030, 1, 10)
ON = MetricsSettings(enabled=True, listen_host="127.0.0.1", listen_port=0)
ZERO = dict.fromkeys(
    ("day_" + n for n in ("attempted", "delivered", "soft", "hard", "throttle")), 0
) | {"day_block": 0, "day_complaints": 0}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class StepClock:
    """Fixed time; each sleep lasts until the test calls step()."""

    def __init__(self) -> None:
        self.sleeps = 0
        self.asleep = asyncio.Event()
        self._tick = asyncio.Event()

    def now(self) -> datetime:
        return NOW

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.asleep.set()
        await self._tick.wait()
        self._tick.clear()

    async def step(self) -> None:
        """End the current sleep; return once the sleeper sleeps again."""
        await asyncio.wait_for(self.asleep.wait(), 5)
        before = self.sleeps
        self.asleep.clear()
        self._tick.set()
        await asyncio.wait_for(self.asleep.wait(), 5)
        assert self.sleeps == before + 1


def _lane(ip: str, isp: str, **values: Any) -> dict[str, Any]:
    return {
        "ip": ip,
        "isp": isp,
        "state": "ramping",
        "ramp_day": 1,
        "allowance_per_hour": 10.0,
        "backoff_factor": 1.0,
        "throttles": 0,
        "created_at": NOW,
        "updated_at": NOW,
        **ZERO,
        **values,
    }


def _day(lane_id: int, day: date, **counts: int) -> dict[str, Any]:
    base = dict.fromkeys(("delivered", "soft", "hard", "throttle", "block"), 0)
    return {
        "lane_id": lane_id,
        "day": day,
        "ramp_day": 1,
        "allowance_per_hour": 10.0,
        "planned": 40,
        "complaints": 0,
        "max_per_minute": 1,
        **base,
        **counts,
    }


async def _fill(store: SQLStore) -> None:
    """Three lanes with days (one already rolled up), five recipients."""
    async with store.engine.begin() as conn:
        ids = []
        for row in (
            _lane(
                "127.0.0.2",
                "gmail",
                state="backed_off",
                ramp_day=5,
                allowance_per_hour=30.0,
                backoff_factor=0.5,
                local_day=D3,
                day_attempted=10,
                day_delivered=7,
                day_soft=1,
                day_throttle=2,
            ),
            _lane("127.0.0.2", "yahoo", local_day=D3, day_attempted=4, day_delivered=4),
            _lane("127.0.0.9", "yahoo", day_attempted=99, local_day=D3),
        ):
            result = await conn.execute(insert(lanes).values(**row))
            key = result.inserted_primary_key
            assert key is not None
            ids.append(int(key[0]))
        await conn.execute(
            insert(lane_days),
            [
                _day(ids[0], D1, attempted=20, delivered=18, soft=1, hard=1),
                _day(ids[0], D2, attempted=30, delivered=25, hard=2, throttle=3)
                | {"complaints": 1},
                # The current day, also written at a shutdown: counted once.
                _day(ids[0], D3, attempted=8, delivered=6, throttle=2),
            ],
        )
    template = TemplateRecord(name="t.eml", sha256="b" * 64, content=b"Subject: x\n\n")
    campaign = await store.ensure_campaign("c", template, NOW)
    people = ["a@gmail.com", "b@gmail.com", "c@yahoo.com", "d@unrouted.test"]
    people.append("e@gmail.com")
    await store.insert_recipients(
        campaign.id,
        [
            NewRecipient(
                address=a,
                domain=a.partition("@")[2],
                engagement_score=None,
                engaged_at=None,
                fields={},
            )
            for a in people
        ],
        ["gmail", "gmail", "yahoo", None, "gmail"],
        NOW - timedelta(hours=2),
    )
    changes: dict[str, dict[str, Any]] = {
        "a@gmail.com": {"state": "delivered", "queued_at": NOW - timedelta(hours=10)},
        "b@gmail.com": {"attempts": 2},
        "c@yahoo.com": {"queued_at": NOW - timedelta(hours=5)},
        "e@gmail.com": {"state": "sending"},
    }
    async with store.engine.begin() as conn:
        for address, values in changes.items():
            await conn.execute(
                update(recipients)
                .where(recipients.c.address == address)
                .values(**values)
            )


async def _scrape(exporter: MetricsExporter) -> Samples:
    assert exporter.address is not None
    host, port = exporter.address
    url = f"http://{host}:{port}/metrics"

    def fetch() -> str:
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200
            return str(response.read().decode())

    body = await asyncio.to_thread(fetch)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def _get(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
async def filled(store: SQLStore) -> SQLStore:
    await _fill(store)
    return store


async def test_lane_counters_and_gauges_over_http(filled: SQLStore) -> None:
    clock = StepClock()
    async with exporting(ON, store=filled, clock=clock, ips=["127.0.0.2"]) as exporter:
        assert exporter is not None
        samples = await _scrape(exporter)
    gmail = {"ip": "127.0.0.2", "isp": "gmail"}
    expected = {
        # D1 + D2 + the current day's counters (the D3 roll-up is not added).
        "warmup_lane_sent_total": 20 + 30 + 10,
        "warmup_lane_delivered_total": 18 + 25 + 7,
        "warmup_lane_deferred_total": (1 + 0) + (0 + 3) + (1 + 2),
        "warmup_lane_bounced_total": 1 + 2,
        "warmup_lane_throttled_total": 3 + 2,
        "warmup_lane_blocked_total": 0,
        "warmup_lane_complaints_total": 1,
        "warmup_lane_allowance_per_hour": 30.0,
        "warmup_lane_backoff_factor": 0.5,
        "warmup_lane_ramp_day": 5,
    }
    assert {name: _get(samples, name, **gmail) for name in expected} == expected
    states = {
        state: _get(samples, "warmup_lane_state", **gmail, state=state)
        for state in ("ramping", "warmed", "backed_off", "paused")
    }
    assert states == {"ramping": 0, "warmed": 0, "backed_off": 1, "paused": 0}
    assert _get(samples, "warmup_lane_sent_total", ip="127.0.0.2", isp="yahoo") == 4
    # Another node's IP is not this node's to report.
    assert not any(dict(labels).get("ip") == "127.0.0.9" for _, labels in samples)


async def test_queue_gauges_over_http(filled: SQLStore) -> None:
    async with exporting(ON, store=filled, clock=StepClock()) as exporter:
        assert exporter is not None
        samples = await _scrape(exporter)
    by_state = {
        state: _get(samples, "warmup_recipients", state=state)
        for state in ("delivered", "queued", "sending")
    }
    assert by_state == {"delivered": 1, "queued": 3, "sending": 1}
    depth = {
        isp: _get(samples, "warmup_queue_depth", isp=isp)
        for isp in ("gmail", "yahoo", "")
    }
    assert depth == {"gmail": 1, "yahoo": 1, "": 1}
    assert _get(samples, "warmup_retry_backlog") == 1
    assert _get(samples, "warmup_oldest_pending_age_seconds") == 5 * 3600
    assert _get(samples, "warmup_metrics_refreshed_timestamp_seconds") == (
        NOW.timestamp()
    )
    assert _get(samples, "warmup_metrics_refresh_errors_total") == 0
    assert any(name.startswith("process_") for name, _ in samples)
    # Every node reports every lane when not limited to its IPs.
    assert _get(samples, "warmup_lane_sent_total", ip="127.0.0.9", isp="yahoo") == 99


async def test_refresh_every_interval_and_keep_the_last_figures_on_failure(
    filled: SQLStore,
) -> None:
    clock = StepClock()
    async with exporting(ON, store=filled, clock=clock) as exporter:
        assert exporter is not None
        async with filled.engine.begin() as conn:
            await conn.execute(
                update(lanes)
                .where(lanes.c.isp == "yahoo", lanes.c.ip == "127.0.0.2")
                .values(day_attempted=6)
            )
        before = await _scrape(exporter)
        await clock.step()  # one refresh
        after = await _scrape(exporter)
        yahoo = {"ip": "127.0.0.2", "isp": "yahoo"}
        assert _get(before, "warmup_lane_sent_total", **yahoo) == 4
        assert _get(after, "warmup_lane_sent_total", **yahoo) == 6
        async with filled.engine.begin() as conn:
            await conn.execute(text("DROP TABLE lane_days"))
        assert not await exporter.refresh()
        failed = await _scrape(exporter)
    assert _get(failed, "warmup_lane_sent_total", **yahoo) == 6
    assert _get(failed, "warmup_metrics_refresh_errors_total") == 1


async def test_nothing_but_the_error_count_before_a_first_good_read(
    filled: SQLStore,
) -> None:
    async with filled.engine.begin() as conn:
        await conn.execute(text("DROP TABLE lane_days"))
    exporter = MetricsExporter(filled, StepClock())
    assert not await exporter.refresh()
    body = generate_latest(exporter.registry).decode()
    assert "warmup_metrics_refresh_errors_total 1.0" in body
    assert "warmup_recipients" not in body and "warmup_lane_sent_total{" not in body


async def test_queue_totals_failure_is_a_store_error(filled: SQLStore) -> None:
    async with filled.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE recipients RENAME TO gone"))
    with pytest.raises(StoreError, match="reading queue totals"):
        await queue_totals(filled)


async def test_disabled_metrics_serve_nothing(filled: SQLStore) -> None:
    off = MetricsSettings(enabled=False)
    async with exporting(off, store=filled, clock=StepClock()) as exporter:
        assert exporter is None


async def test_a_port_in_use_is_a_clear_error(filled: SQLStore) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = MetricsSettings(enabled=True, listen_host="127.0.0.1", listen_port=port)
        with pytest.raises(WarmupError, match=f"127.0.0.1:{port}"):
            async with exporting(busy, store=filled, clock=StepClock()):
                pass  # pragma: no cover - never entered
