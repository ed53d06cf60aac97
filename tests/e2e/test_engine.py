"""The engine end to end: CLI enqueue -> real store -> dispatcher on a virtual
clock -> aiosmtplib -> a real aiosmtpd server that tells source IPs apart."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from click.testing import CliRunner

from tests.e2e.helpers import enqueue_via_cli, smtp_engine
from warmup.app.dispatcher import Dispatcher
from warmup.app.store_rows import LaneDayRow, LaneEventRow
from warmup.cli import cli
from warmup.config import load_config
from warmup.core.model import LaneState
from warmup.testing.clock import FakeClock
from warmup.testing.smtp import ReplyHook, ScriptedSMTPServer

GMAIL = """\
isp: gmail
match: {domains: [gmail.com]}
window: {start: "01:00", end: "03:00"}
ramp:
  - {days: 1-10, per_hour: 6}
  - {days: 11-20, per_hour: 12}
  - {days: 21-30, per_hour: 18}
reactions:
  throttle:
    {factor: 0.5, hold: 1h, recover_step: 0.5, recover_every: 1h, pause_after: 3}
  block: {pause_for: 6h}
"""
DEFAULT = "isp: default\nramp:\n  - {days: 1, per_hour: 5}\n"
TZ_NAME = "Asia/Tokyo"


def _project(tmp_path: Path, database_url: str, port: int) -> Path:
    (tmp_path / "schedules").mkdir()
    (tmp_path / "schedules" / "gmail.yaml").write_text(GMAIL)
    (tmp_path / "schedules" / "default.yaml").write_text(DEFAULT)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: {database_url}\ntimezone: {TZ_NAME}\nschedules: schedules/\n"
        "ips:\n  - {address: 127.0.0.2, helo: a.test}\n"
        "  - {address: 127.0.0.3, helo: b.test}\n"
        f"delivery:\n  routes: {{gmail: '127.0.0.1:{port}'}}\n  batch_size: 40\n"
        "  timeouts: {connect: 5s, command: 5s, data: 5s}\n  tls: {starttls: 'off'}\n"
        "bounces: {return_path: bounces@bounce.test}\n"
    )
    return config


async def _drive(engine: Dispatcher, clock: FakeClock, until: datetime) -> None:
    for _ in range(100_000):  # bounded; each tick jumps to the next event
        wake = await engine.tick()
        if wake >= until:
            return
        clock.advance(max(wake - clock.now(), timedelta(0)))
    raise AssertionError("the simulation did not reach its end")


@dataclass
class Run:
    engine: Dispatcher
    config: Path
    events: list[LaneEventRow]
    days: list[LaneDayRow]


async def _run_engine(
    tmp_path: Path,
    database_url: str,
    clock: FakeClock,
    reply: ReplyHook,
    addresses: list[str],
    span: timedelta,
) -> tuple[Run, ScriptedSMTPServer]:
    """Enqueue through the CLI, then run the engine over real SMTP for ``span``."""
    async with ScriptedSMTPServer(reply_for=reply) as server:
        config_path = _project(tmp_path, database_url, server.port)
        await enqueue_via_cli(tmp_path, config_path, addresses)
        every = timedelta(hours=6)
        opened = smtp_engine(
            config_path, clock, maintenance_every=every, idle_wake=every
        )
        async with opened as (store, engine):
            await _drive(engine, clock, clock.now() + span)
            await engine.finish()
            run = Run(
                engine=engine,
                config=config_path,
                events=await store.all_events(),
                days=await store.lane_history(),
            )
    return run, server


async def test_thirty_ramp_days_over_real_smtp(
    tmp_path: Path, database_url: str
) -> None:
    clock = FakeClock(datetime(2030, 3, 1, tzinfo=UTC))
    seen: list[tuple[str, datetime]] = []

    def observe(peer: str, command: str, _arg: str) -> None:
        if command == "DATA":
            seen.append((peer, clock.now()))
        return None

    run, server = await _run_engine(
        tmp_path,
        database_url,
        clock,
        observe,
        [f"u{i}@gmail.com" for i in range(2_000)],
        timedelta(days=30),
    )
    history = run.days
    config = load_config(run.config)
    tz = config.tz
    per_day = Counter((peer, moment.astimezone(tz).date()) for peer, moment in seen)
    start = clock.now().astimezone(tz).date() - timedelta(days=30)
    expected = [12] * 10 + [24] * 10 + [36] * 10
    for peer in ("127.0.0.2", "127.0.0.3"):
        counts = [per_day[(peer, start + timedelta(days=d))] for d in range(1, 31)]
        assert counts == expected, peer
    assert all(time(1) <= m.astimezone(tz).time() < time(3) for _, m in seen)
    assert {r.peer_ip for r in server.received} == {"127.0.0.2", "127.0.0.3"}
    assert len({tuple(r.rcpt_tos) for r in server.received}) == len(server.received)
    # The store's roll-ups agree with what the server saw, lane by lane.
    rolled: Counter[str] = Counter()
    for row in history:
        rolled[row["ip"]] += row["attempted"]
    assert rolled == Counter(peer for peer, _ in seen)
    # Envelope sender is signed VERP; the HELO name is the IP's.
    assert all(r.mail_from.startswith("bounces+r") for r in server.received)
    assert {r.helo for r in server.received} == {"a.test", "b.test"}


async def test_throttle_backs_off_one_lane_and_block_pauses_it(
    tmp_path: Path, database_url: str
) -> None:
    clock = FakeClock(datetime(2030, 3, 1, tzinfo=UTC))
    sent: Counter[str] = Counter()
    times: dict[str, list[datetime]] = {"127.0.0.2": [], "127.0.0.3": []}

    def reply(peer: str, command: str, arg: str) -> str | None:
        if command != "RCPT":
            return None
        times[peer].append(clock.now())
        sent[peer] += 1
        if peer == "127.0.0.2" and sent[peer] == 4:
            return (
                "421 4.7.28 [127.0.0.2] Our system has detected an unusual rate of "
                "unsolicited mail originating from your IP address."
            )
        if arg.startswith("dead"):
            return "550 5.1.1 The email account that you tried to reach does not exist."
        return None

    dead = ["dead1@gmail.com", "dead2@gmail.com"]
    run, _ = await _run_engine(
        tmp_path,
        database_url,
        clock,
        reply,
        dead + [f"u{i}@gmail.com" for i in range(200)],
        timedelta(days=1),
    )
    engine, history, config_path = run.engine, run.events, run.config
    mine, other = times["127.0.0.2"], times["127.0.0.3"]
    gaps = [b - a for a, b in itertools.pairwise(mine)]
    assert gaps[:3] == [timedelta(minutes=10)] * 3
    assert gaps[3] == timedelta(minutes=20)  # the very next send at half the rate
    other_gaps = {b - a for a, b in itertools.pairwise(other)}
    assert other_gaps == {timedelta(minutes=10)}
    events = [e for e in history if e["ip"] == "127.0.0.2"]
    assert events[0]["cause"] == "throttle"
    assert "4.7.28" in (events[0]["reply"] or "")
    assert not [e for e in history if e["ip"] == "127.0.0.3"]
    assert (
        engine.lanes[("127.0.0.2", "gmail")].lane.state is LaneState.ramping
    )  # recovered
    # The dead addresses were suppressed at once; a later campaign does not queue them.
    summary = await enqueue_via_cli(
        tmp_path, config_path, [*dead, "new@gmail.com"], "later"
    )
    assert '"suppressed": 2' in summary and '"queued": 1' in summary


async def test_a_block_pauses_only_that_lane(tmp_path: Path, database_url: str) -> None:
    clock = FakeClock(datetime(2030, 3, 1, tzinfo=UTC))
    times: dict[str, list[datetime]] = {"127.0.0.2": [], "127.0.0.3": []}

    def reply(peer: str, command: str, _arg: str) -> str | None:
        if command != "RCPT":
            return None
        times[peer].append(clock.now())
        if peer == "127.0.0.2" and len(times[peer]) == 3:
            return (
                "550 5.7.1 [127.0.0.2] Our system has detected that this message is "
                "likely unsolicited mail. Blocked (IP on the Spamhaus SBL)."
            )
        return None

    run, _ = await _run_engine(
        tmp_path,
        database_url,
        clock,
        reply,
        [f"u{i}@gmail.com" for i in range(200)],
        timedelta(hours=30),
    )
    blocked, other = times["127.0.0.2"], times["127.0.0.3"]
    # The block pauses 127.0.0.2 for 6 h: nothing more from it in today's window
    # (01:00-03:00), and the next day it resumes at half rate; 127.0.0.3 goes on.
    first_day = [t for t in blocked if t < blocked[0] + timedelta(hours=6)]
    assert len(first_day) == 3
    assert len([t for t in other if t < other[0] + timedelta(hours=6)]) == 12
    events = [(e["ip"], e["cause"], e["new_state"]) for e in run.events]
    assert ("127.0.0.2", "block", "paused") in events
    assert all(
        ip == "127.0.0.2" for ip, cause, _ in events if cause in ("block", "resume")
    )
    assert "Spamhaus" in next(
        e["reply"] or "" for e in run.events if e["cause"] == "block"
    )
    # The blocked recipient was not suppressed: the block was about our IP.
    listed = await asyncio.to_thread(
        CliRunner().invoke, cli, ["-c", str(run.config), "suppress", "list", "--json"]
    )
    assert listed.output.strip() == ""
