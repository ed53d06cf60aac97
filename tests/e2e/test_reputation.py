"""The ISPs' reputation data end to end: a fake Postmaster Tools API and SNDS
feed on loopback (the published formats), `warmup reputation fetch`, `warmup
status`, and the engine pausing and holding lanes on a virtual clock."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.helpers import EngineRun, cli_run, enqueue_via_cli
from warmup.adapters.db.store import SQLStore
from warmup.adapters.reputation_feeds import HTTPReputationFeeds
from warmup.adapters.scheduler import CalendarJobs
from warmup.app.clock import SystemClock
from warmup.app.ports import MXAnswer
from warmup.app.reputation import fetch_reputation
from warmup.cli.engine import build_dispatcher
from warmup.cli.run_cmd import _fetch_reputation_daily
from warmup.config import Config, load_config
from warmup.core.model import LaneState
from warmup.testing.clock import FakeClock
from warmup.testing.fakes import FakeResolver, FakeSender
from warmup.testing.reputation import (
    FakeReputationServer,
    serving_reputation,
    snds_line,
    traffic_stats,
)

SCHEDULE = "isp: {isp}\n{match}ramp:\n  - {{days: 1-30, per_hour: 2}}\n"
IP2, IP3 = "127.0.0.2", "127.0.0.3"
D1, D2, D3 = date(2030, 3, 1), date(2030, 3, 2), date(2030, 3, 3)


def _project(tmp_path: Path, database_url: str, url: str) -> Path:
    (tmp_path / "schedules").mkdir()
    for isp, domain in (("gmail", "gmail.test"), ("microsoft", "outlook.test")):
        match = f"match: {{domains: [{domain}]}}\n"
        text = SCHEDULE.format(isp=isp, match=match)
        (tmp_path / "schedules" / f"{isp}.yaml").write_text(text)
    default = SCHEDULE.format(isp="default", match="")
    (tmp_path / "schedules" / "default.yaml").write_text(default)
    (tmp_path / "token").write_text('{"access_token": "token-1"}\n')
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: {database_url}\nschedules: schedules/\n"
        f"ips:\n  - {{address: {IP2}, helo: a.test}}\n"
        f"  - {{address: {IP3}, helo: b.test}}\n"
        "bounces: {return_path: bounces@bounce.test}\n"
        "reputation:\n"
        "  google_postmaster:\n"
        f"    credentials_file: {tmp_path / 'token'}\n"
        "    domains: [shop.test]\n"
        f"    endpoint: {url}\n"
        f"  snds: {{key_env: WARMUP_SNDS_KEY, endpoint: {url}/snds/data.aspx}}\n"
        "  timeout: 5s\n"
    )
    return config


@dataclass
class Engine(EngineRun):
    config: Config

    async def fetch(self) -> None:
        """The daily job's work, on the virtual clock; then the next beat."""
        settings = self.config.settings.reputation
        feeds = HTTPReputationFeeds(settings)
        result = await fetch_reputation(feeds, self.store, settings, self.clock.now())
        assert result.errors == []
        self.engine.poke()

    async def lanes(self) -> dict[tuple[str, str], tuple[LaneState, int]]:
        return {
            (lane.ip, lane.isp): (lane.state, lane.ramp_day)
            for _, lane, _ in await self.store.all_lanes()
        }

    async def events(self, ip: str, isp: str) -> list[tuple[str, str]]:
        return [
            (e["cause"], e["detail"] or "")
            for e in await self.store.all_events()
            if (e["ip"], e["isp"]) == (ip, isp)
        ]


def _pm(fake: FakeReputationServer, day: date, rate: float) -> None:
    """Postmaster Tools now says ``rate`` for ``day`` (days before stay)."""
    days = fake.postmaster.setdefault(
        "shop.test",
        [traffic_stats("shop.test", day - timedelta(days=1), spam_rate=0.0002)],
    )
    name = traffic_stats("shop.test", day, spam_rate=rate)["name"]
    days[:] = [d for d in days if d["name"] != name]
    days.append(traffic_stats("shop.test", day, spam_rate=rate))


async def test_postmaster_and_snds_pause_hold_and_release_the_right_lanes(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARMUP_SNDS_KEY", "snds-key-1")
    async with serving_reputation() as fake:
        config_path = _project(tmp_path, database_url, fake.url)
        addresses = [f"u{i}@gmail.test" for i in range(500)]
        addresses += [f"u{i}@outlook.test" for i in range(500)]
        await enqueue_via_cli(tmp_path, config_path, addresses)
        config = load_config(config_path)
        clock = FakeClock(datetime(2030, 3, 1, 0, 30, tzinfo=UTC))
        store = await SQLStore.open(config.settings.database)
        mx = MXAnswer(hosts=("mx.test",))
        engine = build_dispatcher(
            config,
            store=store,
            sender=FakeSender(now=clock.now),
            resolver=FakeResolver({"gmail.test": mx, "outlook.test": mx}),
            clock=clock,
            secret=b"s",
            maintenance_every=timedelta(minutes=30),
            catch_up=4,
        )
        run = Engine(engine, clock, store, config)
        try:
            await _scenario(run, fake, config_path)
        finally:
            await store.close()


async def _scenario(run: Engine, fake: FakeReputationServer, config: Path) -> None:
    await run.drive_until(datetime(2030, 3, 1, 22, tzinfo=UTC))
    # SNDS marks one IP red (Postmaster clean): only its microsoft lane pauses.
    _pm(fake, D1, 0.0002)
    fake.snds_csv = snds_line(IP2, D1, "GREEN") + snds_line(
        IP3, D1, "RED", complaint_rate="2.5%", trap_hits=4
    )
    fetched = await cli_run(config, "reputation", "fetch", "--json")
    assert fetched.exit_code == 0, fetched.output
    lines = [json.loads(x) for x in fetched.stdout.splitlines()]
    assert [(x["source"], x["action"]) for x in lines if x["source"] == "snds"] == [
        ("snds", None),
        ("snds", "pause"),
    ]
    # Two Postmaster days came over two pages (page size 2, one domain).
    assert [x["day"] for x in lines if x["source"] == "postmaster"] == [
        "2030-02-28",
        "2030-03-01",
    ]
    run.engine.poke()
    await run.drive_until(datetime(2030, 3, 1, 22, 30, tzinfo=UTC))
    lanes = await run.lanes()
    assert lanes[(IP3, "microsoft")][0] is LaneState.paused
    assert [
        lanes[k][0] for k in ((IP2, "microsoft"), (IP2, "gmail"), (IP3, "gmail"))
    ] == [LaneState.ramping] * 3
    [(cause, detail)] = (await run.events(IP3, "microsoft"))[-1:]
    assert cause == "reputation"
    assert "SNDS filter result RED for 127.0.0.3 on 2030-03-01" in detail
    assert "complaints 2.5%, trap hits 4" in detail

    # Gmail spam rate 0.35 % for the domain: the gmail lanes of its IPs pause.
    _pm(fake, D1, 0.0035)
    await run.fetch()
    await run.drive_until(datetime(2030, 3, 1, 23, tzinfo=UTC))
    lanes = await run.lanes()
    for ip in (IP2, IP3):
        assert lanes[(ip, "gmail")][0] is LaneState.paused
        cause, detail = (await run.events(ip, "gmail"))[-1]
        assert cause == "reputation"
        assert "gmail spam rate 0.35% for shop.test on 2030-03-01" in detail
    assert lanes[(IP2, "microsoft")][0] is LaneState.ramping
    status = await cli_run(config, "status", "--json")
    [rep] = [
        json.loads(x)["figures"]
        for x in status.stdout.splitlines()
        if json.loads(x).get("kind") == "reputation"
    ]
    assert {(r["source"], r["domain"] or r["ip"], r["action"]) for r in rep} == {
        ("postmaster", "shop.test", "pause"),
        ("snds", IP2, None),
        ("snds", IP3, "pause"),
    }
    table = " ".join((await cli_run(config, "status")).stdout.split())
    assert "reputation (Google Postmaster Tools" in table
    assert "spam 0.35%" in table and "RED, complaints 2.5%" in table

    # Day 1 met its volume, but a paused figure holds the ramp at day close.
    await run.drive_until(datetime(2030, 3, 2, 23, tzinfo=UTC))
    lanes = await run.lanes()
    assert lanes[(IP2, "microsoft")][1] == 2  # the clean lane advanced
    assert lanes[(IP2, "gmail")][1] == 1 and lanes[(IP3, "microsoft")][1] == 1
    causes = [c for c, _ in await run.events(IP2, "gmail")]
    assert "reputation_hold" in causes and "advance" not in causes

    # 0.15 %: the ramp holds (no advance) though the lane sends again.
    _pm(fake, D2, 0.0015)
    fake.snds_csv = snds_line(IP2, D2, "GREEN") + snds_line(IP3, D2, "GREEN")
    await run.fetch()
    await run.drive_until(datetime(2030, 3, 4, 1, tzinfo=UTC))
    lanes = await run.lanes()
    assert lanes[(IP2, "gmail")] == (LaneState.ramping, 1)
    assert lanes[(IP3, "microsoft")][1] == 2  # SNDS green again: advanced
    holds = [d for c, d in await run.events(IP2, "gmail") if c == "reputation_hold"]
    assert any("gmail spam rate 0.15%" in d and "held" in d for d in holds)

    # Back to 0.02 %: the next day close advances again.
    _pm(fake, D3, 0.0002)
    await run.fetch()
    await run.drive_until(datetime(2030, 3, 5, 1, tzinfo=UTC))
    lanes = await run.lanes()
    assert lanes[(IP2, "gmail")][1] == 2 and lanes[(IP3, "gmail")][1] == 2
    assert (await run.events(IP2, "gmail"))[-1][0] == "advance"
    await run.engine.finish()
    page = config.parent / "report.html"
    made = await cli_run(config, "report", "--html", str(page))
    assert made.exit_code == 0, made.output
    text = await asyncio.to_thread(page.read_text)
    assert '<table id="reputation"' in text
    auth = "SPF 100.0% DKIM 100.0% DMARC 100.0%"
    assert (
        f"<td>2030-03-01</td><td>spam 0.35%; domain HIGH; {auth}</td><td>pauses" in text
    )
    assert (
        f"<td>2030-03-02</td><td>spam 0.15%; domain HIGH; {auth}</td><td>holds" in text
    )
    assert "<td>RED; complaints 2.5%; trap hits 4</td><td>pauses</td>" in text


async def test_fetch_says_what_is_missing_and_which_feed_failed(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARMUP_SNDS_KEY", "snds-key-1")
    fake = FakeReputationServer(token="another-token")
    fake.snds_csv = snds_line(IP3, D1, "YELLOW")
    async with serving_reputation(fake):
        config = _project(tmp_path, database_url, fake.url)
        bare = tmp_path / "bare.yaml"
        text = (await asyncio.to_thread(config.read_text)).split("reputation:")[0]
        await asyncio.to_thread(bare.write_text, text)
        off = await cli_run(bare, "reputation", "fetch")
        assert off.exit_code == 2 and "nothing to fetch" in off.stderr
        result = await cli_run(config, "reputation", "fetch", "--json")
        table = await cli_run(config, "reputation", "fetch")
    assert result.exit_code == 1
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [(x["source"], x.get("action")) for x in lines] == [
        ("snds", "hold"),
        ("error", None),
    ]
    assert lines[1]["feed"] == "Google Postmaster Tools (shop.test)"
    assert lines[1]["error"].startswith("HTTP 401")
    assert table.exit_code == 1 and "YELLOW" in table.stdout
    assert "error: could not read Google Postmaster Tools" in table.stderr


async def test_the_daemon_fetches_daily_and_a_failure_does_not_escape(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARMUP_SNDS_KEY", "snds-key-1")
    fake = FakeReputationServer()
    fake.snds_csv = snds_line(IP3, D1, "RED")
    async with serving_reputation(fake):
        config = load_config(_project(tmp_path, database_url, fake.url))
        store = await SQLStore.open(config.settings.database)
        jobs = CalendarJobs(tz=config.tz, schedules=[], beat=timedelta(minutes=1))
        try:
            _fetch_reputation_daily(config, store, SystemClock(), jobs)
            assert "reputation-fetch" in jobs.job_names()
            job = jobs._scheduler.get_job("reputation-fetch")
            await job.func()  # what the scheduler runs at 07:00
            fake.token = "rotated"  # the token file is stale now: one feed fails
            await job.func()  # logged, not raised
            assert jobs.fired["reputation-fetch"] == 2
            _, snds = await store.reputation_days()
            assert [(r.ip, r.filter_result) for r in snds] == [(IP3, "RED")]
        finally:
            jobs.shutdown()
            await store.close()
