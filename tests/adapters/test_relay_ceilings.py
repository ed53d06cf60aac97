"""Ceilings on what the relay holds (issue 12, item 4): the size of what an
outsider may send, sessions open at once, messages received at once, and the age
of a session. Real clients on loopback; session age on the injected clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from tests.adapters.relay_harness import (
    BOUNCE_DOMAIN,
    OUTSIDE,
    RawClient,
    Relay,
    running_relay,
)

REPORT = b"Subject: report\r\n\r\n" + (b"x" * 70 + b"\r\n") * 70  # ~5 KB


async def _to_data(client: RawClient, rcpt: str, *, mail: str = "<>") -> str:
    await client.reply()
    await client.send("EHLO mx.example")
    await client.send(f"MAIL FROM:{mail}")
    await client.send(f"RCPT TO:{rcpt}")
    return await client.send("DATA")


async def _settled(relay: Relay, sessions: int) -> None:
    for _ in range(200):  # until the server has seen the hang-ups
        if relay.server.sessions == sessions:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{relay.server.sessions} sessions, not {sessions}")


async def test_an_outsider_may_send_only_a_small_report(tmp_path: Path) -> None:
    """The bug: mail to the bounce domain was taken from anyone at the full
    message size (12 x 24 MB at once: 1.3 GB)."""
    async with running_relay(tmp_path, sink=True, max_bounce_bytes=4096) as relay:
        outsider = await RawClient.connect(relay.port, source=OUTSIDE)
        await outsider.reply()
        ehlo = await outsider.send("EHLO mx.example")
        assert "250-SIZE 26214400" in ehlo  # may still log in, so the full size
        sized = await outsider.send("MAIL FROM:<> SIZE=5000")
        assert sized.startswith("552"), sized
        assert (await outsider.send("MAIL FROM:<>")).startswith("250")
        await outsider.send(f"RCPT TO:<postmaster@{BOUNCE_DOMAIN}>")
        assert (await outsider.send("DATA")).startswith("354")
        assert (await outsider.send(REPORT + b".")).startswith("552")
        await outsider.close()
        assert relay.sunk == []
        inside = await RawClient.connect(relay.port, source="127.0.0.1")
        assert (await _to_data(inside, f"<p@{BOUNCE_DOMAIN}>")).startswith("354")
        assert (await inside.send(REPORT + b".")).startswith("250")
        await inside.close()
        assert len(relay.sunk) == 1


async def test_sessions_are_capped_across_all_clients(tmp_path: Path) -> None:
    """The bug: 2,000 idle connections from 2,000 addresses were all taken."""
    async with running_relay(tmp_path, max_connections=3) as relay:
        clients = [
            await RawClient.connect(relay.port, source=f"127.0.0.{10 + n}")
            for n in range(3)
        ]
        for client in clients:
            assert (await client.reply()).startswith("220")
        extra = await RawClient.connect(relay.port, source="127.0.0.20")
        assert (await extra.reply()).startswith("421 4.7.0 Too many connections")
        assert await extra.closed_by_server()
        await extra.close()
        assert relay.server.sessions == 3
        # The campaign tool (allowed network) is never locked out by strangers.
        tool = await RawClient.connect(relay.port, source="127.0.0.1")
        assert (await tool.reply()).startswith("220")
        await tool.close()
        await _settled(relay, 3)
        await clients.pop().close()
        await _settled(relay, 2)
        again = await RawClient.connect(relay.port, source="127.0.0.21")
        assert (await again.reply()).startswith("220")
        for client in [*clients, again]:
            await client.close()
        await _settled(relay, 0)
        assert relay.server.limits.connections == {}


async def test_messages_received_at_once_are_capped(tmp_path: Path) -> None:
    async with running_relay(
        tmp_path, max_concurrent_data=1, timeout=timedelta(seconds=4)
    ) as relay:
        first = await RawClient.connect(relay.port, source="127.0.0.1")
        assert (await _to_data(first, "<ann@gmail.com>", mail="<a@shop.example>"))[
            :3
        ] == "354"
        first.writer.write(b"Subject: one\r\n\r\nhalf of it\r\n")
        second = await RawClient.connect(relay.port, source="127.0.0.1")
        await second.reply()
        for line in (
            "EHLO t.example",
            "MAIL FROM:<a@shop.example>",
            "RCPT TO:<b@x.example>",
        ):
            await second.send(line)
        second.writer.write(b"DATA\r\n")
        waiting = asyncio.ensure_future(second.reply())
        await asyncio.sleep(0.1)
        assert not waiting.done()  # no 354 while the first message is received
        assert (await first.send(b"the rest\r\n.")).startswith("250")
        assert (await asyncio.wait_for(waiting, 10)).startswith("354")
        # The second holds the slot now: a third waits half the timeout, then 451.
        third = await RawClient.connect(relay.port, source="127.0.0.1")
        busy = await _to_data(third, "<c@x.example>", mail="<a@shop.example>")
        assert busy.startswith("451 4.3.2"), busy
        assert (await second.send(b"Subject: two\r\n\r\nhi\r\n.")).startswith("250")
        for client in (first, second, third):
            await client.close()
        assert await relay.counts() == {"queued": 2}
        assert not relay.server.data_all.locked()


async def test_a_session_is_closed_at_its_age_limit(tmp_path: Path) -> None:
    """The bug: a NOOP every 40 s kept a session open forever."""
    async with running_relay(tmp_path, max_session_age=timedelta(minutes=2)) as relay:
        client = await RawClient.connect(relay.port, source="127.0.0.1")
        await client.reply()
        replies = []
        for _ in range(10):  # bounded: the age limit comes at the fourth
            answer = await client.send("NOOP")
            replies.append(answer[:3])
            if not answer.startswith("250"):
                break
            relay.clock.advance(timedelta(seconds=40))
        assert replies == ["250", "250", "250", "421"], replies
        assert await client.closed_by_server()
        await client.close()
        await _settled(relay, 0)
        # A message whose recipients were taken is received, then the door.
        tool = await RawClient.connect(relay.port, source="127.0.0.1")
        await tool.reply()
        for line in ("EHLO t.example", "MAIL FROM:<a@shop.example>"):
            await tool.send(line)
        assert (await tool.send("RCPT TO:<ann@gmail.com>")).startswith("250")
        relay.clock.advance(timedelta(minutes=2))
        assert (await tool.send("DATA")).startswith("354")
        assert (await tool.send(b"Subject: x\r\n\r\nhi\r\n.")).startswith("250")
        assert (await tool.send("MAIL FROM:<a@shop.example>")).startswith("421")
        await tool.close()
        assert await relay.counts() == {"queued": 1}


async def test_commands_behind_the_age_check_keep_their_help(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        client = await RawClient.connect(relay.port, source="127.0.0.1")
        await client.reply()
        listed = (await client.send("HELP")).split(": ", 1)[1].split()
        assert {"DATA", "EHLO", "HELO", "MAIL", "NOOP", "RCPT", "RSET"} <= set(listed)
        assert (await client.send("HELP DATA")) == "250 Syntax: DATA"
        await client.close()


async def test_outsiders_get_half_of_the_data_slots(tmp_path: Path) -> None:
    """Strangers trickling reports cannot hold every slot the tool needs."""
    async with running_relay(
        tmp_path, sink=True, max_concurrent_data=2, timeout=timedelta(seconds=4)
    ) as relay:
        rcpt = f"<postmaster@{BOUNCE_DOMAIN}>"
        slow = await RawClient.connect(relay.port, source="127.0.0.30")
        assert (await _to_data(slow, rcpt)).startswith("354")
        slow.writer.write(b"Subject: report\r\n")
        other = await RawClient.connect(relay.port, source="127.0.0.31")
        assert (await _to_data(other, rcpt)).startswith("451 4.3.2")
        tool = await RawClient.connect(relay.port, source="127.0.0.1")
        queued = await _to_data(tool, "<ann@gmail.com>", mail="<a@shop.example>")
        assert queued.startswith("354")
        assert (await tool.send(b"Subject: hi\r\n\r\nhi\r\n.")).startswith("250")
        assert (await slow.send(b"\r\nbody\r\n.")).startswith("250")
        for client in (slow, other, tool):
            await client.close()
        assert len(relay.sunk) == 1
