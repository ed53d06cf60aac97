"""Operator controls on a running dispatcher over real SMTP, on a virtual clock:
`warmup pause`/`resume` and `warmup campaign cancel`/`resume` through the CLI
while the engine sends."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.e2e.helpers import enqueue_via_cli, smtp_engine
from warmup.adapters.db.store import SQLStore
from warmup.app.clock import SystemClock
from warmup.app.dispatcher import Dispatcher
from warmup.app.ingest import BounceIntake
from warmup.cli import cli
from warmup.config import load_config
from warmup.core.model import LaneState
from warmup.sim.reports import build_dsn
from warmup.testing.clock import FakeClock
from warmup.testing.smtp import ScriptedSMTPServer

SCHEDULE = (
    "isp: {isp}\nmatch: {{domains: [{domain}]}}\n"
    "ramp:\n  - {{days: 1-30, per_hour: 60}}\n"
)


def _project(tmp_path: Path, database_url: str, port: int) -> Path:
    schedules = tmp_path / "schedules"
    schedules.mkdir()
    for isp, domain in (("gmail", "gmail.com"), ("yahoo", "yahoo.com")):
        (schedules / f"{isp}.yaml").write_text(SCHEDULE.format(isp=isp, domain=domain))
    (schedules / "default.yaml").write_text(
        "isp: default\nramp:\n  - {days: 1, per_hour: 5}\n"
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: {database_url}\ntimezone: UTC\nschedules: schedules/\n"
        "ips:\n  - {address: 127.0.0.2, helo: a.test}\n"
        "  - {address: 127.0.0.3, helo: b.test}\n"
        f"delivery:\n  routes: {{gmail: '127.0.0.1:{port}', "
        f"yahoo: '127.0.0.1:{port}'}}\n  batch_size: 40\n"
        "  timeouts: {connect: 5s, command: 5s, data: 5s}\n  tls: {starttls: 'off'}\n"
        "bounces: {return_path: bounces@bounce.test}\n"
    )
    return config


@dataclass
class Daemon:
    engine: Dispatcher
    store: SQLStore
    clock: FakeClock
    server: ScriptedSMTPServer
    config: Path
    sent: list[tuple[str, str, datetime]]  # (source IP, recipient, at)
    start: datetime
    # Replies to the next RCPTs of an address, in order (then 250).
    script: dict[str, list[str]]

    async def run_for(self, span: timedelta) -> None:
        """Tick as the daemon does, never sleeping more than a second of clock."""
        end = self.clock.now() + span
        for _ in range(100_000):  # bounded
            wake = await self.engine.tick()
            if self.clock.now() >= end:
                return
            step = min(max(wake - self.clock.now(), timedelta(0)), timedelta(seconds=1))
            self.clock.advance(
                min(step, end - self.clock.now()) or timedelta(seconds=1)
            )
        raise AssertionError("did not reach the end")

    def sent_since(self, moment: datetime) -> Counter[tuple[str, str]]:
        return Counter(
            (ip, rcpt.rpartition("@")[2]) for ip, rcpt, at in self.sent if at >= moment
        )

    async def events(self, *args: str) -> list[dict[str, Any]]:
        output = await self.cli("events", "--json", *args)
        return [json.loads(line) for line in output.splitlines()]

    async def cli(self, *args: str) -> str:
        result = await asyncio.to_thread(
            CliRunner().invoke, cli, ["-c", str(self.config), *args]
        )
        assert result.exit_code == 0, result.output
        return result.output


@pytest.fixture
async def daemon(tmp_path: Path, database_url: str) -> AsyncIterator[Daemon]:
    # The CLI stamps what it queues with the real time: start there.
    clock = FakeClock(SystemClock().now().replace(second=0, microsecond=0))
    sent: list[tuple[str, str, datetime]] = []
    script: dict[str, list[str]] = {}

    def observe(peer: str, command: str, arg: str) -> str | None:
        if command != "RCPT":
            return None
        rcpt = arg.strip("<>")
        if script.get(rcpt):
            return script[rcpt].pop(0)
        sent.append((peer, rcpt, clock.now()))
        return None

    async with ScriptedSMTPServer(reply_for=observe) as server:
        config_path = _project(tmp_path, database_url, server.port)
        addresses = [f"g{i}@gmail.com" for i in range(300)]
        addresses += [f"y{i}@yahoo.com" for i in range(300)]
        await enqueue_via_cli(tmp_path, config_path, addresses, campaign="spring")
        every = timedelta(minutes=10)
        opened = smtp_engine(
            config_path, clock, maintenance_every=every, idle_wake=every
        )
        async with opened as (store, engine):
            yield Daemon(
                engine, store, clock, server, config_path, sent, clock.now(), script
            )
            await engine.finish()


async def test_pause_one_lane_stops_it_at_the_next_beat_and_resume_restarts_it(
    daemon: Daemon,
) -> None:
    await daemon.run_for(timedelta(minutes=10))
    assert daemon.sent_since(daemon.start)[("127.0.0.2", "gmail.com")] >= 9
    output = await daemon.cli(
        "pause", "--ip", "127.0.0.2", "--isp", "gmail", "--reason", "incident 7"
    )
    assert "paused 127.0.0.2 / gmail" in output
    await daemon.run_for(timedelta(seconds=2))  # the controls' beat
    paused_at = daemon.clock.now()
    await daemon.run_for(timedelta(minutes=30))
    during = daemon.sent_since(paused_at)
    assert during[("127.0.0.2", "gmail.com")] == 0
    for other in (("127.0.0.3", "gmail.com"), ("127.0.0.2", "yahoo.com")):
        assert during[other] >= 25  # 60/h: the other lanes go on
    lane = daemon.engine.lanes[("127.0.0.2", "gmail")]
    assert lane.lane.state is LaneState.paused and lane.lane.operator
    assert not lane.buffer  # its claims went back to the queue
    events = [e for e in await daemon.store.all_events() if e["ip"] == "127.0.0.2"]
    pause = next(e for e in events if e["cause"] == "operator_pause")
    assert pause["isp"] == "gmail"
    assert "paused by " in (pause["detail"] or "")
    assert "incident 7" in (pause["detail"] or "")
    counts = await daemon.store.count_recipients()
    assert "suppressed" not in counts  # an operator act suppresses no one
    shown = [json.loads(x) for x in (await daemon.cli("status", "--json")).splitlines()]
    paused = [o for o in shown if o["kind"] == "lane" and o["operator_paused"]]
    assert [(o["ip"], o["isp"], o["state"]) for o in paused] == [
        ("127.0.0.2", "gmail", "paused")
    ]
    wide = await asyncio.to_thread(
        CliRunner(env={"COLUMNS": "250"}).invoke,
        cli,
        ["-c", str(daemon.config), "status"],
    )
    assert "paused by operator until resumed" in wide.output

    await daemon.cli("resume", "--ip", "127.0.0.2", "--isp", "gmail")
    await daemon.run_for(timedelta(seconds=2))
    resumed_at = daemon.clock.now()
    await daemon.run_for(timedelta(minutes=30))
    assert daemon.sent_since(resumed_at)[("127.0.0.2", "gmail.com")] >= 25
    causes = [e["cause"] for e in await daemon.store.all_events()]
    assert causes.count("operator_resume") == 1


async def test_pause_of_an_isp_until_a_time_ends_by_itself(daemon: Daemon) -> None:
    await daemon.run_for(timedelta(minutes=5))
    until = (daemon.clock.now() + timedelta(minutes=20)).isoformat()
    await daemon.cli("pause", "--isp", "yahoo", "--until", until)
    await daemon.run_for(timedelta(seconds=2))
    paused_at = daemon.clock.now()
    await daemon.run_for(timedelta(minutes=18))
    during = daemon.sent_since(paused_at)
    assert during[("127.0.0.2", "yahoo.com")] == during[("127.0.0.3", "yahoo.com")] == 0
    assert during[("127.0.0.2", "gmail.com")] >= 15
    await daemon.run_for(timedelta(minutes=30))
    after = daemon.sent_since(paused_at + timedelta(minutes=21))
    assert after[("127.0.0.2", "yahoo.com")] >= 25
    assert after[("127.0.0.3", "yahoo.com")] >= 25


async def test_campaign_cancel_sends_nothing_more_even_of_held_claims(
    daemon: Daemon,
) -> None:
    await daemon.run_for(timedelta(minutes=10))
    held = sum(len(r.buffer) for r in daemon.engine.lanes.values())
    assert held > 0  # the node holds claims of the campaign
    output = await daemon.cli("campaign", "cancel", "spring", "--reason", "typo")
    assert "cancelled spring" in output
    await daemon.run_for(timedelta(seconds=2))
    cancelled_at = daemon.clock.now()
    await daemon.run_for(timedelta(hours=1))
    assert sum(daemon.sent_since(cancelled_at).values()) == 0
    shown = json.loads(await daemon.cli("campaign", "show", "spring", "--json"))
    assert shown["state"] == "cancelled"
    assert shown["queued"] == shown["sending"] == 0
    sent_total = len(daemon.sent)
    assert shown["delivered"] == sent_total
    assert shown["cancelled"] == 600 - sent_total
    cancelled = await daemon.events("--type", "cancelled")
    assert len(cancelled) == 600 - sent_total
    assert {e["recipient"] for e in cancelled}.isdisjoint(r for _, r, _ in daemon.sent)
    assert all(e["campaign"] == "spring" for e in cancelled)

    await daemon.cli("campaign", "resume", "spring")
    await daemon.run_for(timedelta(seconds=2))
    resumed_at = daemon.clock.now()
    await daemon.run_for(timedelta(minutes=30))
    assert sum(daemon.sent_since(resumed_at).values()) >= 100
    listed = json.loads(await daemon.cli("campaign", "list", "--json"))
    assert listed["state"] == "active" and listed["cancelled"] == 0


async def test_what_is_not_sent_by_the_deadline_expires_unsent(
    daemon: Daemon, tmp_path: Path
) -> None:
    await daemon.cli("campaign", "cancel", "spring")  # only the flash sale goes
    listing = tmp_path / "flash.csv"
    listing.write_text(
        "email,name\n" + "".join(f"f{i}@gmail.com,N\n" for i in range(200))
    )
    deadline = daemon.start + timedelta(minutes=30)
    output = await daemon.cli(
        "enqueue",
        str(listing),
        "--template",
        str(tmp_path / "t.eml"),
        "--campaign",
        "flash",
        "--deadline",
        deadline.isoformat(),
        "--json",
    )
    assert json.loads(output)["queued"] == 200
    await daemon.run_for(timedelta(hours=2))
    flash = [at for _, rcpt, at in daemon.sent if rcpt.startswith("f")]
    assert 40 <= len(flash) <= 62  # two gmail lanes at 60/h for 30 minutes
    assert max(flash) < deadline
    shown = json.loads(await daemon.cli("campaign", "show", "flash", "--json"))
    assert shown["delivered"] == len(flash)
    assert shown["expired"] == 200 - len(flash)
    expired = await daemon.events("--type", "expired")
    assert len(expired) == 200 - len(flash)
    assert {e["source"] for e in expired} == {"deadline"}
    assert shown["queued"] == shown["sending"] == 0


async def test_trace_tells_each_step_of_a_deferred_then_dsn_bounced_address(
    daemon: Daemon,
) -> None:
    address = "g7@gmail.com"
    daemon.script[address] = ["450 4.2.1 mailbox busy, try later"]
    await daemon.run_for(timedelta(hours=2))
    mail_from = next(
        m.mail_from for m in daemon.server.received if address in m.rcpt_tos
    )
    dsn = build_dsn(
        to=mail_from,
        recipient=address,
        diagnostic="550 5.1.1 user unknown",
        reporting_mta="mx.gmail.test",
        original_headers=f"From: shop@shop.example\nTo: {address}\n",
        now=daemon.clock.now(),
    )
    # As `warmup run` ingests it (the CLI would stamp it with the real time).
    intake = BounceIntake(
        daemon.store,
        clock=daemon.clock,
        return_path="bounces@bounce.test",
        secret=b"s",
        retry=load_config(daemon.config).settings.delivery.retry,
    )
    await intake.ingest(dsn, source="maildir:dsn")

    lines = await daemon.cli("trace", "g7@GMAIL.com")  # the domain normalised
    steps = [
        json.loads(line)
        for line in (await daemon.cli("trace", address, "--json")).splitlines()
    ]
    assert [s["step"] for s in steps if s["step"] == "event"] == ["event"] * 3
    steps = [s for s in steps if s["step"] != "event"]
    assert [s["step"] for s in steps] == [
        "enqueued",
        "attempt",
        "attempt",
        "late_report",
        "suppressed",
    ]
    queued, deferred, delivered, report, suppressed = steps
    assert queued["campaign"] == "spring" and queued["state"] == "bounced"
    assert deferred["verdict"] == "soft"
    assert deferred["reply"].startswith("450 4.2.1")
    assert delivered["verdict"] == "delivered" and delivered["ip"] in (
        "127.0.0.2",
        "127.0.0.3",
    )
    assert delivered["at"] > deferred["at"]
    assert (report["verdict"], report["status"]) == ("hard", "5.1.1")
    assert report["outcome"] == "suppressed" and report["found_by"] == "verp"
    assert suppressed["reason"] == "userunknown"
    assert "attempt" in lines and "450 4.2.1" in lines and "late_report" in lines

    # The same story as outcome events, one per outcome, with stable ids.
    every = await daemon.events()
    assert len({e["id"] for e in every}) == len(every)
    assert [e["id"] for e in every] == sorted(e["id"] for e in every)
    assert sum(e["type"] == "delivered" for e in every) == len(daemon.sent)
    mine = [e for e in every if e["recipient"] == address]
    assert [e["type"] for e in mine] == ["deferred", "delivered", "bounced"]
    deferred_event, delivered_event, bounced_event = mine
    assert deferred_event["reply"].startswith("450 4.2.1")
    assert deferred_event["isp"] == "gmail" and deferred_event["source"] == "smtp"
    assert delivered_event["ip"] == delivered["ip"]
    assert delivered_event["campaign"] == "spring"
    assert (bounced_event["status"], bounced_event["reason"]) == (
        "5.1.1",
        "userunknown",
    )
    assert bounced_event["source"] == "maildir:dsn"
    assert bounced_event["ip"] == delivered["ip"]  # the lane that sent it
    only = await daemon.events("--type", "bounced")
    assert [e["id"] for e in only] == [bounced_event["id"]]


async def test_trace_of_an_unknown_address_says_so(daemon: Daemon) -> None:
    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["-c", str(daemon.config), "trace", "nobody@nowhere.test"],
    )
    assert result.exit_code == 1
    assert "nothing known about nobody@nowhere.test" in result.output
