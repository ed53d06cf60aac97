"""The reputation feeds over real HTTP on loopback (warmup.testing.reputation):
what is read, and every failure as one clear FetchError."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from warmup.adapters.db.store import SQLStore
from warmup.adapters.reputation_feeds import HTTPReputationFeeds, read_token
from warmup.app.reputation import fetch_reputation
from warmup.core.errors import FetchError
from warmup.core.lanes.reputation import SNDSRow
from warmup.core.settings import PostmasterSettings, ReputationSettings, SNDSSettings
from warmup.testing.reputation import (
    FakeReputationServer,
    serving_reputation,
    snds_line,
    traffic_stats,
)

DAY = date(2030, 3, 1)
NOW = datetime(2030, 3, 2, 7, tzinfo=UTC)


def _settings(
    url: str, token_file: Path, *, timeout: float = 5.0
) -> ReputationSettings:
    return ReputationSettings(
        google_postmaster=PostmasterSettings(
            credentials_file=str(token_file), domains=("shop.test",), endpoint=url
        ),
        snds=SNDSSettings(key_env="TEST_SNDS_KEY", endpoint=f"{url}/snds/data.aspx"),
        timeout=timedelta(seconds=timeout),
    )


@pytest.fixture
def token_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TEST_SNDS_KEY", "snds-key-1")
    path = tmp_path / "token"
    path.write_text("token-1\n")
    return path


@pytest.mark.parametrize(
    ("text", "token"),
    [("tok\n", "tok"), ('{"access_token": "ya29.x", "expires_in": 3599}', "ya29.x")],
)
def test_a_token_is_read_bare_or_as_json(tmp_path: Path, text: str, token: str) -> None:
    path = tmp_path / "t"
    path.write_text(text)
    assert read_token(str(path)) == token


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"type": "service_account", "private_key": "k"}', "service-account key"),
        ("", "no access token"),
        ('{"refresh_token": "r"}', "no access token"),
        ("{nope", "not valid JSON"),
    ],
)
def test_a_file_without_a_usable_token_says_why(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "t"
    path.write_text(text)
    with pytest.raises(FetchError, match=message):
        read_token(str(path))
    with pytest.raises(FetchError, match="cannot read credentials_file"):
        read_token(str(tmp_path / "missing"))


async def test_pages_are_followed_and_the_dates_asked(token_file: Path) -> None:
    fake = FakeReputationServer(page_size=2)
    fake.postmaster["shop.test"] = [
        traffic_stats("shop.test", DAY - timedelta(days=n), spam_rate=0.001 * n)
        for n in range(5)
    ]
    async with serving_reputation(fake):
        feeds = HTTPReputationFeeds(_settings(fake.url, token_file))
        days = await feeds.postmaster("shop.test", date(2030, 2, 23), DAY)
    assert [d.day for d in days] == [DAY - timedelta(days=n) for n in range(5)]
    assert days[3].spam_rate == pytest.approx(0.003)
    assert [query.get("pageToken") for _, query in fake.requests] == [None, "2", "4"]
    first = fake.requests[0][1]
    assert (first["startDate.month"], first["startDate.day"]) == ("2", "23")
    assert (first["endDate.month"], first["endDate.day"]) == ("3", "1")


async def test_snds_rows_are_read(token_file: Path) -> None:
    fake = FakeReputationServer()
    fake.snds_csv = snds_line("203.0.113.10", DAY, "YELLOW", complaint_rate="0.4%")
    async with serving_reputation(fake):
        rows = await HTTPReputationFeeds(_settings(fake.url, token_file)).snds()
    assert rows == [
        SNDSRow(
            ip="203.0.113.10",
            day=DAY,
            filter_result="YELLOW",
            complaint_rate=0.4 / 100,
            trap_hits=0,
        )
    ]


async def test_a_refused_token_and_a_wrong_key_are_clear_errors(
    token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await asyncio.to_thread(token_file.write_text, "stale")
    monkeypatch.setenv("TEST_SNDS_KEY", "secret-wrong-key")
    async with serving_reputation() as fake:
        feeds = HTTPReputationFeeds(_settings(fake.url, token_file))
        with pytest.raises(FetchError, match="HTTP 401") as refused:
            await feeds.postmaster("shop.test", DAY, DAY)
        assert "invalid authentication credentials" in str(refused.value)
        assert "Google Postmaster Tools (shop.test)" in str(refused.value)
        with pytest.raises(FetchError, match="HTTP 403") as denied:
            await feeds.snds()
        assert "secret-wrong-key" not in str(denied.value)
    monkeypatch.delenv("TEST_SNDS_KEY")
    with pytest.raises(FetchError, match=r"\$TEST_SNDS_KEY is not set"):
        await feeds.snds()


@asynccontextmanager
async def _answering(
    handler: Callable[[web.Request], Awaitable[web.Response]],
) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def test_no_answer_nonsense_and_no_server_are_fetch_errors(
    token_file: Path,
) -> None:
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await never.wait()  # released when the server is cleaned up
        return web.Response()

    async def nonsense(request: web.Request) -> web.Response:
        return web.Response(text="<html>maintenance</html>")

    async with _answering(hang) as url:
        feeds = HTTPReputationFeeds(_settings(url, token_file, timeout=0.3))
        with pytest.raises(FetchError, match=r"no answer within 0\.3 s"):
            await feeds.postmaster("shop.test", DAY, DAY)
    async with _answering(nonsense) as url:
        feeds = HTTPReputationFeeds(_settings(url, token_file))
        with pytest.raises(FetchError, match="not JSON"):
            await feeds.postmaster("shop.test", DAY, DAY)
    with pytest.raises(FetchError, match="ClientConnectorError"):
        await feeds.postmaster("shop.test", DAY, DAY)  # the server is gone


async def test_one_feed_failing_is_logged_once_and_the_other_is_stored(
    token_file: Path, store: SQLStore, caplog: pytest.LogCaptureFixture
) -> None:
    await asyncio.to_thread(token_file.write_text, "stale")
    fake = FakeReputationServer()
    fake.snds_csv = snds_line("203.0.113.10", DAY, "RED")
    async with serving_reputation(fake):
        settings = _settings(fake.url, token_file)
        with caplog.at_level(logging.WARNING, logger="warmup.app.reputation"):
            result = await fetch_reputation(
                HTTPReputationFeeds(settings), store, settings, NOW
            )
    assert [e.source for e in result.errors] == ["Google Postmaster Tools (shop.test)"]
    assert [r.message for r in caplog.records if r.levelno >= logging.WARNING] == [
        str(result.errors[0])
    ]
    postmaster, snds = await store.reputation_days()
    assert postmaster == [] and [(r.ip, r.filter_result) for r in snds] == [
        ("203.0.113.10", "RED")
    ]
