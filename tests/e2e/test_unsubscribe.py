"""One-click unsubscribe end to end: a campaign delivered over real SMTP, its
List-Unsubscribe URL POSTed over real HTTP on loopback, the next campaign."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.e2e.helpers import e2e_dispatcher, enqueue_via_cli, smtp_sender
from warmup.adapters.db.store import SQLStore
from warmup.adapters.unsubscribe_http import serving_unsubscribe
from warmup.app.dispatcher import Dispatcher
from warmup.app.ingest import BounceIntake
from warmup.app.ports import MXAnswer
from warmup.cli import cli
from warmup.cli.engine import build_unsubscriber, mail_handlers
from warmup.config import Config, load_config
from warmup.core.recipients.suppression import make_suppression
from warmup.core.recipients.unsubscribe import UnsubscribeToken, encode_unsubscribe
from warmup.testing.clock import FakeClock
from warmup.testing.fakes import FakeResolver
from warmup.testing.smtp import ScriptedSMTPServer

SECRET = b"s"
SCHEDULE = "isp: default\nramp:\n  - {days: 1-30, per_hour: 600}\n"
ADDRESSES = ["ann@shop.test", "bob@shop.test"]


def _project(tmp_path: Path, database_url: str, port: int, scope: str) -> Path:
    (tmp_path / "schedules").mkdir(exist_ok=True)
    (tmp_path / "schedules" / "default.yaml").write_text(SCHEDULE)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: {database_url}\nschedules: schedules/\n"
        "ips:\n  - {address: 127.0.0.2, helo: a.test}\n"
        f"delivery:\n  routes: {{default: '127.0.0.1:{port}'}}\n"
        "  timeouts: {connect: 5s, command: 5s, data: 5s}\n  tls: {starttls: 'off'}\n"
        "bounces: {return_path: bounces@bounce.test}\n"
        "unsubscribe:\n  base_url: https://mail.shop.test/\n"
        f"  listen: 127.0.0.1:0\n  scope: {scope}\n"
    )
    return config


async def _drive(engine: Dispatcher, clock: FakeClock, span: timedelta) -> None:
    until = clock.now() + span
    for _ in range(10_000):  # bounded; each tick jumps to the next event
        wake = await engine.tick()
        if wake >= until:
            await engine.finish()
            return
        clock.advance(max(wake - clock.now(), timedelta(0)))
    raise AssertionError("the engine did not reach its end")


@dataclass
class Site:
    config: Config
    config_path: Path
    store: SQLStore
    server: ScriptedSMTPServer
    engine: Dispatcher
    clock: FakeClock
    http: tuple[str, int]

    async def deliver(self, campaign: str) -> dict[str, object]:
        """Enqueue ``campaign`` to ADDRESSES through the CLI, then send it."""
        out = await enqueue_via_cli(
            self.config_path.parent, self.config_path, ADDRESSES, campaign
        )
        await _drive(self.engine, self.clock, timedelta(hours=1))
        summary: dict[str, object] = json.loads(out)
        return summary

    def links(self, address: str) -> list[tuple[str, str]]:
        """(https path, mailto) of each message ``address`` received, in order."""
        found = []
        for received in self.server.received:
            if address not in received.rcpt_tos:
                continue
            header = str(message_from_bytes(received.content)["List-Unsubscribe"])
            match = re.fullmatch(
                r"<https://mail\.shop\.test(/u/\S+)>, <mailto:(\S+)>", header
            )
            assert match, header
            found.append((match.group(1), match.group(2)))
        return found

    async def suppressed(self) -> dict[str, tuple[str, str]]:
        return {
            s.address: (s.reason, s.source)
            async for s in self.store.iter_suppressions()
        }


@asynccontextmanager
async def site(
    tmp_path: Path, database_url: str, scope: str = "global"
) -> AsyncIterator[Site]:
    clock = FakeClock(datetime(2030, 3, 1, 9, tzinfo=UTC))
    async with ScriptedSMTPServer() as server:
        config_path = _project(tmp_path, database_url, server.port, scope)
        config = load_config(config_path)
        store = await SQLStore.open(config.settings.database)
        sender = smtp_sender(config)
        engine = e2e_dispatcher(
            config,
            store,
            sender,
            clock,
            resolver=FakeResolver({"shop.test": MXAnswer(hosts=("mx.shop.test",))}),
            secret=SECRET,
            maintenance_every=timedelta(minutes=5),
        )
        unsubscriber = build_unsubscriber(
            config, store=store, clock=clock, secret=SECRET
        )
        try:
            async with serving_unsubscribe(
                config.settings.unsubscribe, unsubscriber
            ) as http:
                assert http is not None
                yield Site(config, config_path, store, server, engine, clock, http)
        finally:
            await sender.close()
            await store.close()


async def http(address: tuple[str, int], raw: bytes) -> tuple[int, bytes]:
    """Send raw bytes, read the whole answer: (status, body)."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(raw)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def request(method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: mail.shop.test", "Connection: close"]
    if body or method == "POST":
        lines.append("Content-Type: application/x-www-form-urlencoded")
        lines.append(f"Content-Length: {len(body)}")
    lines.extend(
        f"{name.replace('_', '-')}: {value}" for name, value in headers.items()
    )
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


ONE_CLICK = b"List-Unsubscribe=One-Click"


async def test_one_click_post_suppresses_and_the_next_campaign_skips(
    tmp_path: Path, database_url: str
) -> None:
    async with site(tmp_path, database_url) as s:
        assert (await s.deliver("spring"))["queued"] == 2
        received = s.server.received[0]
        message = message_from_bytes(received.content)
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        ((path, mailto),) = s.links("ann@shop.test")
        assert mailto.startswith("unsubscribe+") and mailto.endswith("@bounce.test")
        assert path.rpartition("/")[2] in mailto

        # A link scanner's GET changes nothing; its page posts the one-click body.
        status, page = await http(s.http, request("GET", path))
        assert status == 200
        assert b'method="post"' in page
        assert b'name="List-Unsubscribe" value="One-Click"' in page
        assert await s.suppressed() == {}

        status, _ = await http(s.http, request("POST", path, ONE_CLICK))
        assert status == 200
        assert await s.suppressed() == {"ann@shop.test": ("unsubscribe", "one-click")}
        # The same click again: still 200, still one entry.
        assert (await http(s.http, request("POST", path, ONE_CLICK)))[0] == 200
        # One outcome event for the campaign tool, written with the suppression.
        unsubscribed = await s.store.read_events(types=["unsubscribed"])
        assert [(e["recipient"], e["campaign"], e["source"]) for e in unsubscribed] == [
            ("ann@shop.test", "spring", "one-click")
        ]

        before = len(s.server.received)
        summary = await s.deliver("summer")
        assert (summary["queued"], summary["suppressed"]) == (1, 1)
        later = [r.rcpt_tos for r in s.server.received[before:]]
        assert later == [("bob@shop.test",)]


async def test_tampered_tokens_and_probes_change_nothing(
    tmp_path: Path, database_url: str
) -> None:
    async with site(tmp_path, database_url) as s:
        await s.deliver("spring")
        ((path, _),) = s.links("ann@shop.test")
        flipped = path[:-1] + ("0" if path[-1] != "0" else "1")
        probes = [
            request("POST", flipped, ONE_CLICK),  # one character changed
            request("GET", flipped),
            request("POST", "/u/", ONE_CLICK),  # no token
            request("POST", "/u/u1-c1-0000000000000000", ONE_CLICK),
            request("POST", path.replace("-c1-", "-c2-"), ONE_CLICK),
            request("POST", path, b"List-Unsubscribe=Yes"),  # not the one-click body
            request("POST", path, b"x=" + b"a" * 5000),  # oversized body
            request("PUT", path, ONE_CLICK),
            request("DELETE", path),
            b"GARBAGE \x00\xff not http\r\n\r\n",  # malformed request line
            b"GET /u/" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        ]
        statuses = [(await http(s.http, raw))[0] for raw in probes]
        assert statuses[:6] == [404, 404, 404, 404, 404, 400]
        assert statuses[6] == 413
        assert statuses[7:9] == [405, 405]
        assert all(400 <= code < 500 for code in statuses[9:]), statuses
        assert await s.suppressed() == {}
        # The server is still up, and the real link still works.
        assert (await http(s.http, request("POST", path, ONE_CLICK)))[0] == 200
        assert set(await s.suppressed()) == {"ann@shop.test"}


async def test_many_parallel_clicks_suppress_once(
    tmp_path: Path, database_url: str
) -> None:
    async with site(tmp_path, database_url) as s:
        await s.deliver("spring")
        ((ann, _),) = s.links("ann@shop.test")
        ((bob, _),) = s.links("bob@shop.test")
        bad = ann[:-1] + ("0" if ann[-1] != "0" else "1")
        paths = [ann, bob, bad] * 40
        answers = await asyncio.gather(
            *(http(s.http, request("POST", p, ONE_CLICK)) for p in paths)
        )
        statuses = [status for status, _ in answers]
        assert statuses == [200, 200, 404] * 40
        assert set(await s.suppressed()) == {"ann@shop.test", "bob@shop.test"}
        events = await s.store.read_events(types=["unsubscribed"])
        assert sorted(str(e["recipient"]) for e in events) == [
            "ann@shop.test",
            "bob@shop.test",
        ]


async def test_campaign_scope_stops_only_the_campaign_mailed(
    tmp_path: Path, database_url: str
) -> None:
    async with site(tmp_path, database_url, scope="campaign") as s:
        await s.deliver("spring")
        ((spring, _),) = s.links("ann@shop.test")
        assert (await http(s.http, request("POST", spring, ONE_CLICK)))[0] == 200
        assert await s.suppressed() == {}  # not on the global list
        # The spring token replayed with the summer campaign's id: refused.
        await enqueue_via_cli(tmp_path, s.config_path, ADDRESSES, "summer")
        summer_id = 2
        replayed = spring.replace("-c1-", f"-c{summer_id}-")
        assert (await http(s.http, request("POST", replayed, ONE_CLICK)))[0] == 404
        before = len(s.server.received)
        await _drive(s.engine, s.clock, timedelta(hours=1))
        later = sorted(r.rcpt_tos for r in s.server.received[before:])
        assert later == [("ann@shop.test",), ("bob@shop.test",)]
        # Unsubscribed from "autumn" while it is still queued: the claim skips ann.
        await enqueue_via_cli(tmp_path, s.config_path, ADDRESSES, "autumn")
        token = encode_unsubscribe(
            UnsubscribeToken(recipient_id=5, campaign_id=3), secret=SECRET
        )
        assert (await s.store.unsubscribe_target(5)) == ("ann@shop.test", 3)
        assert (await http(s.http, request("POST", f"/u/{token}", ONE_CLICK)))[0] == 200
        before = len(s.server.received)
        await _drive(s.engine, s.clock, timedelta(hours=1))
        assert [r.rcpt_tos for r in s.server.received[before:]] == [("bob@shop.test",)]
        assert await s.store.campaign_suppressed(
            [(1, "ann@shop.test"), (2, "ann@shop.test"), (3, "ann@shop.test")]
        ) == {(1, "ann@shop.test"), (3, "ann@shop.test")}
        assert await s.suppressed() == {}


async def test_mail_to_the_mailto_address_unsubscribes(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARMUP_VERP_SECRET", SECRET.decode())
    async with site(tmp_path, database_url) as s:
        await s.deliver("spring")
        ((_, mailto),) = s.links("ann@shop.test")
        ((_, bob),) = s.links("bob@shop.test")
        forged = bob.replace("-c1-", "-c2-")
        mails = tmp_path / "mails"
        mails.mkdir()
        for name, to in (("a.eml", mailto), ("b.eml", forged)):
            (mails / name).write_text(
                f"From: ann@shop.test\nTo: {to}\nSubject: unsubscribe\n\nplease\n"
            )
        args = ["-c", str(s.config_path), "bounces", "ingest", str(mails)]
        result = await asyncio.to_thread(CliRunner().invoke, cli, args)
        assert result.exit_code == 0, result.output
        outcomes = [json.loads(line)["outcome"] for line in result.stdout.splitlines()]
        assert outcomes == ["unsubscribe", "forged"]
        assert await s.suppressed() == {"ann@shop.test": ("unsubscribe", "mailto")}


async def test_the_relay_envelope_alone_routes_an_unsubscribe(
    tmp_path: Path, database_url: str
) -> None:
    """The relay's bounce sink hands over the RCPT TO; the headers may name
    someone else entirely (a forwarding mail client)."""
    async with site(tmp_path, database_url) as s:
        await s.deliver("spring")
        ((_, mailto),) = s.links("ann@shop.test")
        intake = BounceIntake.configured(
            s.store,
            clock=s.clock,
            settings=s.config.settings.bounces,
            retry=s.config.settings.delivery.retry,
            secret=SECRET,
            handlers=mail_handlers(
                s.config, store=s.store, clock=s.clock, secret=SECRET
            ),
        )
        mail = b"From: ann@shop.test\r\nTo: list@shop.test\r\n\r\nunsubscribe\r\n"
        result = await intake.ingest(mail, source="relay", envelope_to=(mailto,))
        assert result.handled_as == "unsubscribe"
        assert await s.suppressed() == {"ann@shop.test": ("unsubscribe", "mailto")}
        other = await intake.ingest(
            mail, source="relay", envelope_to=("x@bounce.test",)
        )
        assert other.handled_as is None and other.label == "not-bounce"


async def test_campaign_unsubscribes_kept_from_before_still_count(
    tmp_path: Path, database_url: str
) -> None:
    """scope: campaign was switched back to global: what was recorded under it is
    still honoured (the dispatcher looks once it knows there are some)."""
    async with site(tmp_path, database_url) as s:
        await enqueue_via_cli(tmp_path, s.config_path, ADDRESSES, "spring")
        entry = make_suppression(
            "ann@shop.test", reason="unsubscribe", source="one-click", now=s.clock.now()
        )
        assert await s.store.add_campaign_suppression(1, entry)
        assert not await s.store.add_campaign_suppression(1, entry)  # once
        assert await s.store.any_campaign_suppressions()
        await _drive(s.engine, s.clock, timedelta(hours=1))
        assert [r.rcpt_tos for r in s.server.received] == [("bob@shop.test",)]


async def test_an_unauthenticated_block_pauses_with_cause_authentication(
    tmp_path: Path, database_url: str
) -> None:
    """Gmail's 550 5.7.26 over real SMTP: the lane pauses, and the event says
    why and what to run."""
    async with site(tmp_path, database_url) as s:
        s.server.script.on_data(
            "550 5.7.26 This mail is unauthenticated, which poses a security risk "
            "to the sender and Gmail users, and has been blocked."
        )
        await s.deliver("spring")
        events = await s.store.all_events()
        [event] = [e for e in events if e["cause"] == "authentication"]
        assert event["new_state"] == "paused"
        assert "run `warmup doctor`" in (event["detail"] or "")
        assert "5.7.26" in (event["reply"] or "")
