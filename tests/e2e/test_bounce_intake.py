"""Bounces that arrive later, end to end: the engine sends over real SMTP to a
simulated ISP that accepts with 250 and then mails a DSN (or an ARF complaint)
into a maildir; `warmup bounces ingest` reads it; the next engine beat applies it
to the lane that sent the original."""

from __future__ import annotations

import asyncio
import json
import mailbox
import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.e2e.helpers import enqueue_via_cli
from warmup.adapters.db.schema import bounce_events, lanes, recipients, suppressions
from warmup.adapters.db.store import SQLStore
from warmup.adapters.mailboxes import MaildirInbox
from warmup.adapters.smtp import SMTPSender
from warmup.app.clock import SystemClock
from warmup.app.dispatcher import Dispatcher
from warmup.app.ingest import BounceIntake
from warmup.cli import cli
from warmup.cli.engine import build_dispatcher
from warmup.config import EXAMPLE_CONFIG, load_config
from warmup.core.bounces.late import UnsignedRule
from warmup.sim.isp import SimulatedISP
from warmup.sim.profile import PROFILES
from warmup.sim.reports import build_dsn, returned_headers
from warmup.testing.clock import FakeClock
from warmup.testing.fakes import FakeResolver

SECRET = "bounce-secret"
GMAIL = """\
isp: gmail
match: {domains: [gmail.com]}
ramp:
  - {days: 1-30, per_hour: 60}
"""
DEFAULT = "isp: default\nramp:\n  - {days: 1, per_hour: 5}\n"
NORMAL = [f"user{i}@gmail.com" for i in range(20)]
ADDRESSES = [*NORMAL, "dsnbounce1@gmail.com", "complain1@gmail.com"]


@pytest.fixture
def secret_env() -> Iterator[None]:
    old = os.environ.get("WARMUP_VERP_SECRET")
    os.environ["WARMUP_VERP_SECRET"] = SECRET
    yield
    if old is None:
        del os.environ["WARMUP_VERP_SECRET"]
    else:
        os.environ["WARMUP_VERP_SECRET"] = old


def _project(tmp_path: Path, database_url: str, port: int) -> Path:
    (tmp_path / "schedules").mkdir()
    (tmp_path / "schedules" / "gmail.yaml").write_text(GMAIL)
    (tmp_path / "schedules" / "default.yaml").write_text(DEFAULT)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: {database_url}\ntimezone: UTC\nschedules: schedules/\n"
        "ips:\n  - {address: 127.0.0.2, helo: a.test}\n"
        f"delivery:\n  routes: {{gmail: '127.0.0.1:{port}'}}\n"
        "  timeouts: {connect: 5s, command: 5s, data: 5s}\n  tls: {starttls: 'off'}\n"
        "bounces: {return_path: bounces@bounce.test}\n"
    )
    return config


def _gmail(clock: FakeClock, reports: Path | None = None) -> SimulatedISP:
    """A simulated Gmail where every mailbox exists: only the prefixed test
    addresses (dsnbounce…, complain…) bounce or complain, by mail."""
    return SimulatedISP(
        PROFILES["gmail"],
        now=clock.now,
        rng=random.Random(7),
        unknown_share=0.0,
        full_share=0.0,
        greylist_share=0.0,
        dsn_share=0.0,
        reports_maildir=reports,
    )


async def _drive(engine: Dispatcher, clock: FakeClock, span: timedelta) -> None:
    until = clock.now() + span
    for _ in range(10_000):  # bounded; each tick jumps to the next event
        wake = await engine.tick()
        if wake >= until:
            return
        clock.advance(max(wake - clock.now(), timedelta(0)))
    raise AssertionError("the engine did not reach its end")


def _engine(config_path: Path, store: SQLStore, clock: FakeClock) -> Dispatcher:
    config = load_config(config_path)
    return build_dispatcher(
        config,
        store=store,
        sender=SMTPSender(
            timeouts=config.settings.delivery.timeouts, tls=config.settings.delivery.tls
        ),
        resolver=FakeResolver(),
        clock=clock,
        secret=SECRET.encode(),
        maintenance_every=timedelta(minutes=5),
    )


async def _rows(store: SQLStore, table: Any) -> list[dict[str, Any]]:
    async with store.engine.connect() as conn:
        return [dict(r._mapping) for r in (await conn.execute(select(table))).all()]


async def _ingest(config: Path, *paths: str) -> list[dict[str, Any]]:
    """`warmup bounces ingest` (in a thread: the CLI runs its own event loop)."""
    args = ["-c", str(config), "bounces", "ingest", *paths]
    result = await asyncio.to_thread(CliRunner().invoke, cli, args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


async def test_dsn_and_arf_after_250_act_like_live_replies(
    tmp_path: Path, database_url: str, secret_env: None
) -> None:
    clock = FakeClock(datetime(2030, 3, 1, 9, tzinfo=UTC))
    reports = tmp_path / "bouncebox"
    isp = _gmail(clock, reports)
    async with isp:
        config = _project(tmp_path, database_url, isp.port)
        await enqueue_via_cli(tmp_path, config, ADDRESSES)
        store = await SQLStore.open(load_config(config).settings.database)
        try:
            engine = _engine(config, store, clock)
            await _drive(engine, clock, timedelta(hours=1))
            await engine.sender.close()
            # Everyone was accepted with 250; two reports came back by mail.
            states = {r["address"]: r["state"] for r in await _rows(store, recipients)}
            assert set(states.values()) == {"delivered"}, states
            assert isp.reports_sent == 2
            lane_before = (await _rows(store, lanes))[0]

            lines = await _ingest(config, str(reports))
            by_recipient = {line["recipient"]: line for line in lines}
            assert by_recipient["dsnbounce1@gmail.com"]["outcome"] == "suppressed"
            assert by_recipient["dsnbounce1@gmail.com"]["found_by"] == "verp"
            assert by_recipient["dsnbounce1@gmail.com"]["verdict"] == "hard"
            assert by_recipient["complain1@gmail.com"]["outcome"] == "complaint"
            assert by_recipient["complain1@gmail.com"]["kind"] == "feedback"

            suppressed = {
                r["address"]: r["reason"] for r in await _rows(store, suppressions)
            }
            assert set(suppressed) == {"dsnbounce1@gmail.com", "complain1@gmail.com"}
            assert suppressed["complain1@gmail.com"] == "complaint"
            states = {r["address"]: r["state"] for r in await _rows(store, recipients)}
            assert states["dsnbounce1@gmail.com"] == "bounced"
            assert states["complain1@gmail.com"] == "delivered"

            # The same mails again: recorded once, acted on once.
            again = await _ingest(config, str(reports))
            assert {line["outcome"] for line in again} == {"duplicate"}
            assert len(await _rows(store, bounce_events)) == 2

            # Nothing changed on the lane yet: only its sending node applies it.
            assert (await _rows(store, lanes))[0]["day_hard"] == lane_before["day_hard"]
            engine = _engine(config, store, clock)
            clock.advance(timedelta(minutes=10))
            await engine.tick()
            await engine.sender.close()
            lane = (await _rows(store, lanes))[0]
            assert lane["day_hard"] == lane_before["day_hard"] + 1
            assert lane["day_complaints"] == lane_before["day_complaints"] + 1
            assert lane["day_delivered"] == lane_before["day_delivered"] - 1
            assert lane["day_attempted"] == lane_before["day_attempted"]
            events = await _rows(store, bounce_events)
            assert all(e["applied_at"] is not None for e in events)
            # A further beat applies nothing twice.
            clock.advance(timedelta(minutes=10))
            engine = _engine(config, store, clock)
            await engine.tick()
            await engine.sender.close()
            assert (await _rows(store, lanes))[0]["day_hard"] == lane["day_hard"]
        finally:
            await store.close()


async def test_forged_token_changes_nothing(
    tmp_path: Path, database_url: str, secret_env: None
) -> None:
    clock = FakeClock(datetime(2030, 3, 1, 9, tzinfo=UTC))
    isp = _gmail(clock)
    async with isp:
        config = _project(tmp_path, database_url, isp.port)
        await enqueue_via_cli(tmp_path, config, NORMAL)
        store = await SQLStore.open(load_config(config).settings.database)
        try:
            engine = _engine(config, store, clock)
            await _drive(engine, clock, timedelta(hours=1))
            await engine.sender.close()
            victim = next(r for r in await _rows(store, recipients))
            headers = (
                f"From: news@example.test\nTo: {victim['address']}\nSubject: hello\n"
            )
            forged_verp = build_dsn(
                to=f"bounces+r{victim['id']}-a1-0123456789@bounce.test",
                recipient=victim["address"],
                diagnostic="550 5.1.1 user unknown",
                reporting_mta="mx.attacker.test",
                original_headers=headers,
                now=clock.now(),
            )
            forged_trace = build_dsn(
                to="postmaster@bounce.test",
                recipient=victim["address"],
                diagnostic="550 5.1.1 user unknown",
                reporting_mta="mx.attacker.test",
                original_headers=headers
                + f"X-Warmup-Id: r{victim['id']}-a1-abcdef0123\n",
                now=clock.now(),
            )
            for number, mail in enumerate((forged_verp, forged_trace)):
                (tmp_path / f"forged{number}.eml").write_bytes(mail)
            lines = await _ingest(
                config, str(tmp_path / "forged0.eml"), str(tmp_path / "forged1.eml")
            )
            assert [line["outcome"] for line in lines] == ["forged", "forged"]
            assert await _rows(store, suppressions) == []
            assert await _rows(store, bounce_events) == []
            states = {r["state"] for r in await _rows(store, recipients)}
            assert states == {"delivered"}
        finally:
            await store.close()


async def test_trace_header_and_recipient_fallback_find_the_send(
    tmp_path: Path, database_url: str
) -> None:
    """No VERP envelope (a forwarding mailbox rewrote it): the trace header in the
    returned headers finds the send; with no trace either, the recipient's latest
    send does. A soft failure after acceptance is retried."""
    # Enqueue stamps queued_at from the wall clock; start the virtual one there,
    # so the retry is inside its 72 h.
    clock = FakeClock(SystemClock().now())
    captured: list[bytes] = []
    isp = _gmail(clock)
    original_on_data = isp.on_data

    def keep(ip: str, mail_from: str, rcpts: list[str], content: bytes = b"") -> None:
        captured.append(content)
        original_on_data(ip, mail_from, rcpts, content)

    isp.on_data = keep  # type: ignore[method-assign]
    async with isp:
        config = _project(tmp_path, database_url, isp.port)
        await enqueue_via_cli(tmp_path, config, NORMAL[:3])
        store = await SQLStore.open(load_config(config).settings.database)
        try:
            engine = _engine(config, store, clock)
            await _drive(engine, clock, timedelta(hours=1))
            await engine.sender.close()
            assert len(captured) == 3
            intake = BounceIntake(
                store,
                clock=clock,
                return_path="bounces@bounce.test",
                secret=SECRET.encode(),
                retry=load_config(config).settings.delivery.retry,
                unsigned=UnsignedRule(lookback=timedelta(days=7)),
            )
            first = returned_headers(captured[0])
            traced = build_dsn(
                to="postmaster@bounce.test",
                recipient="someone-else@gmail.com",
                diagnostic="550 5.1.1 user unknown",
                reporting_mta="mx.test",
                original_headers=first,
                now=clock.now(),
            )
            result = await intake.ingest(traced, source="traced")
            ((event, fresh),) = result.events
            assert fresh and event.found_by is not None
            assert event.found_by.value == "header"
            # The token names the recipient: the listed address is not trusted.
            assert event.address == NORMAL[0]

            soft = build_dsn(
                to="postmaster@bounce.test",
                recipient=NORMAL[1],
                diagnostic="452 4.2.2 mailbox full",
                reporting_mta="mx.test",
                original_headers="Subject: no trace here\n",
                now=clock.now(),
            )
            result = await intake.ingest(soft, source="soft")
            ((event, fresh),) = result.events
            assert event.found_by is not None and event.found_by.value == "recipient"
            assert event.effect.value == "retry"
            rows = {r["address"]: r for r in await _rows(store, recipients)}
            assert rows[NORMAL[0]]["state"] == "bounced"
            assert rows[NORMAL[1]]["state"] == "queued"
            assert rows[NORMAL[1]]["next_attempt_at"] > clock.now()
            assert rows[NORMAL[2]]["state"] == "delivered"

            # A dead domain reported without a token: matched by its recipient only,
            # it may cost that one address, never the whole domain.
            dead = build_dsn(
                to="postmaster@bounce.test",
                recipient=NORMAL[2],
                diagnostic="550 5.1.2 Host unknown (Name server: gmail.com: host "
                "not found)",
                reporting_mta="mx.test",
                original_headers="Subject: no trace here\n",
                now=clock.now(),
            )
            result = await intake.ingest(dead, source="dead")
            ((event, fresh),) = result.events
            assert (event.reason, event.effect.value) == ("hostunknown", "suppressed")
            assert event.suppression is not None
            assert event.suppression.address == NORMAL[2]

            stranger = build_dsn(
                to="postmaster@bounce.test",
                recipient="never-sent@gmail.com",
                diagnostic="550 5.1.1 user unknown",
                reporting_mta="mx.test",
                original_headers="Subject: x\n",
                now=clock.now(),
            )
            result = await intake.ingest(stranger, source="stranger")
            ((event, fresh),) = result.events
            assert event.effect.value == "unmatched"
            # With recipient_lookback off (the default), an unsigned report
            # changes nothing.
            strict = BounceIntake(
                store,
                clock=clock,
                return_path="bounces@bounce.test",
                secret=SECRET.encode(),
                retry=load_config(config).settings.delivery.retry,
            )
            result = await strict.ingest(
                soft.replace(b"452 4.2.2", b"550 5.1.1"), source="strict"
            )
            ((event, fresh),) = result.events
            assert (event.effect.value, event.found_by) == ("unmatched", None)
            addresses = {r["address"] for r in await _rows(store, suppressions)}
            assert addresses == {NORMAL[0], NORMAL[2]}
        finally:
            await store.close()


async def test_maildir_inbox_marks_mail_seen_only_after_it_was_handled(
    tmp_path: Path,
) -> None:
    inbox = MaildirInbox(tmp_path / "box")
    box = mailbox.Maildir(tmp_path / "box")
    keys = [box.add(f"Subject: {n}\n\nbody\n".encode()) for n in range(3)]
    assert [key for key, _ in inbox.unseen()] == sorted(keys)
    inbox.mark_seen(sorted(keys)[0])
    assert [key for key, _ in inbox.unseen()] == sorted(keys)[1:]
    assert [key for key, _ in inbox.unseen(limit=1)] == sorted(keys)[1:2]


async def test_a_large_bounce_is_parsed_like_a_small_one(store: SQLStore) -> None:
    """Mails over 64 KB are parsed off the event loop; the outcome is the same."""
    clock = FakeClock(datetime(2030, 3, 1, 9, tzinfo=UTC))
    intake = BounceIntake(
        store,
        clock=clock,
        return_path="bounces@bounce.test",
        secret=SECRET.encode(),
        retry=load_config(EXAMPLE_CONFIG).settings.delivery.retry,
    )
    headers = "Subject: hello\n" + "".join(
        f"X-Pad-{n}: {'x' * 70}\n" for n in range(1200)
    )
    results = []
    for number, extra in enumerate(("", headers)):
        dsn = build_dsn(
            to="postmaster@bounce.test",
            recipient=f"nobody{number}@gmail.com",
            diagnostic="550 5.1.1 user unknown",
            reporting_mta="mx.test",
            original_headers=extra or "Subject: hello\n",
            now=clock.now(),
        )
        results.append((len(dsn), await intake.ingest(dsn, source=f"m{number}")))
    (small_size, small), (large_size, large) = results
    assert small_size < 64 * 1024 < large_size
    for result in (small, large):
        ((event, fresh),) = result.events
        assert fresh and event.effect.value == "unmatched"
        assert (event.verdict.value, event.reason) == ("hard", "userunknown")
