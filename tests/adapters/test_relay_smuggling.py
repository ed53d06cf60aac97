"""Regression probes kept from the issue 12 audit: SMTP smuggling through
end-of-data variants, and more open-relay variants from an outside address.
Exact bytes over a raw socket (a client library would tidy them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.adapters.relay_harness import (
    BOUNCE_DOMAIN,
    OUTSIDE,
    RawClient,
    Relay,
    running_relay,
)
from warmup.adapters.db.schema import messages, recipients
from warmup.adapters.smtp import SMTPSender
from warmup.core.settings import SourceIP, Timeouts, TLSSettings
from warmup.testing.smtp import ScriptedSMTPServer

SMUGGLED = (
    b"MAIL FROM:<ceo@shop.example>\r\n"
    b"RCPT TO:<victim@gmail.com>\r\n"
    b"DATA\r\n"
    b"From: ceo@shop.example\r\nSubject: smuggled\r\n\r\nevil\r\n"
)


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[Relay]:
    async with running_relay(tmp_path, sink=True) as running:
        yield running


async def _stored(relay: Relay) -> bytes:
    async with relay.store.engine.connect() as conn:
        return bytes((await conn.execute(select(messages.c.content))).scalar_one())


async def _sent_on(content: bytes) -> ScriptedSMTPServer:
    """``content`` sent to a next hop by the engine's sender."""
    seconds = timedelta(seconds=5)
    sender = SMTPSender(
        timeouts=Timeouts(connect=seconds, command=seconds, data=seconds),
        tls=TLSSettings(starttls="off"),
    )
    async with ScriptedSMTPServer() as hop:
        try:
            outcome = await sender.send(
                source=SourceIP(address="127.0.0.2", helo="mta.test"),
                host=hop.host,
                port=hop.port,
                sender="bounces@bounce.test",
                recipient="ann@gmail.com",
                message=content,
            )
        finally:
            await sender.close()
    assert outcome.accepted, outcome
    return hop


async def _addresses(relay: Relay) -> list[str]:
    async with relay.store.engine.connect() as conn:
        rows = (await conn.execute(select(recipients.c.address))).all()
    return sorted(str(r[0]) for r in rows)


@pytest.mark.parametrize(
    "end",
    [
        b"\n.\n",
        b"\n.\r\n",
        b"\r.\r",
        b"\r.\r\n",
        b"\r\n.\n",
        b"\r\n.\r",
        b"\n.\r",
        b"\r\n\x00.\r\n",
        b"\r\n.\x00\r\n",
        b"\r\n .\r\n",
    ],
    ids=repr,
)
async def test_no_smuggling_through_a_false_end_of_data(
    relay: Relay, end: bytes
) -> None:
    """Only CRLF.CRLF ends the data: what follows a look-alike stays inside the
    one message (or the message is refused), never a second transaction."""
    client = await RawClient.connect(relay.port, source="127.0.0.1")
    await client.reply()
    for line in (
        "EHLO tool.example",
        "MAIL FROM:<shop@shop.example>",
        "RCPT TO:<ann@gmail.com>",
    ):
        await client.send(line)
    assert (await client.send("DATA")).startswith("354")
    body = b"From: shop@shop.example\r\nSubject: hi\r\n\r\nhello" + end + SMUGGLED
    answer = await client.send(body + b".")
    assert answer[:1] in ("2", "5"), answer
    # In step: the next reply is the NOOP's, not a smuggled transaction's.
    assert (await client.send("NOOP")).startswith("250")
    await client.close()
    assert "victim@gmail.com" not in await _addresses(relay)
    assert await relay.messages() == (1 if answer.startswith("2") else 0)
    if answer.startswith("2"):
        # Nor at the next hop: what was stored goes out as one message.
        hop = await _sent_on(await _stored(relay))
        assert [m.rcpt_tos for m in hop.received] == [("ann@gmail.com",)]
        assert b"smuggled" in hop.received[0].content


@pytest.mark.parametrize(
    ("rcpt", "expected"),
    [
        ("<victim@gmail.com.>", ("553", "554")),
        (f"<victim@{BOUNCE_DOMAIN}.gmail.com>", ("554",)),
        (f"<victim@gmail.com%{BOUNCE_DOMAIN}>", ("553",)),
        ('<"victim"@gmail.com>', ("554",)),
        (f"<victim@gmail.com>@{BOUNCE_DOMAIN}", ("501", "553", "554")),
        ("victim@gmail.com", ("554",)),
        ("<victim@gmail.com> NOTIFY=NEVER", ("554", "555")),
    ],
)
async def test_more_open_relay_variants_from_outside(
    relay: Relay, rcpt: str, expected: tuple[str, ...]
) -> None:
    client = await RawClient.connect(relay.port, source=OUTSIDE)
    await client.reply()
    await client.send("EHLO probe.example")
    assert (await client.send("MAIL FROM:<a@probe.example>")).startswith("250")
    answer = await client.send(f"RCPT TO:{rcpt}")
    assert answer[:3] in expected, answer
    assert (await client.send("DATA")).startswith("503")
    await client.close()
    assert relay.sunk == [] and await relay.messages() == 0


async def test_the_bounce_domain_in_any_case_reaches_the_intake_only(
    relay: Relay,
) -> None:
    client = await RawClient.connect(relay.port, source=OUTSIDE)
    await client.reply()
    await client.send("EHLO mx.example")
    await client.send("MAIL FROM:<>")
    rcpt = f"RCPT TO:<Postmaster@{BOUNCE_DOMAIN.upper()}>"
    assert (await client.send(rcpt)).startswith("250")
    assert (await client.send("DATA")).startswith("354")
    assert (await client.send(b"Subject: report\r\n\r\nx\r\n.")).startswith("250")
    await client.close()
    assert len(relay.sunk) == 1 and await relay.messages() == 0
