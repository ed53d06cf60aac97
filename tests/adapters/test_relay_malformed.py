"""The relay on malformed input (bytes that are not UTF-8, messages the store
refuses, headers hidden behind a bare CR), each reachable from a real client."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiosmtplib.protocol import normalize_message_line_endings
from sqlalchemy import select

from tests.adapters.relay_harness import RawClient, running_relay
from warmup.adapters.db.relay_store import SQLRelayStore
from warmup.adapters.db.schema import messages
from warmup.adapters.db.store import SQLStore
from warmup.app.ports import RelayedMessage
from warmup.core.errors import StoreError
from warmup.core.recipients.address import Address
from warmup.core.relay.message import header_names

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "lines",
    [
        [b"MAIL FROM:<\xff@shop.example> SMTPUTF8", b"RCPT TO:<ann@gmail.com>"],
        [b"MAIL FROM:<a@shop.example> SMTPUTF8", b"RCPT TO:<\xffann@gmail.com>"],
    ],
    ids=["sender", "recipient"],
)
async def test_an_address_that_is_not_utf8_is_refused_not_left_hanging(
    tmp_path: Path, lines: list[bytes]
) -> None:
    """aiosmtpd hands such bytes on as surrogates; the database cannot store them."""
    async with running_relay(tmp_path) as relay:
        client = await RawClient.connect(relay.port, source="127.0.0.1")
        await client.reply()
        await client.send("EHLO t.example")
        replies = [await client.send(line) for line in lines]
        assert any(r.startswith("553") for r in replies), replies
        await client.close()
        assert await relay.messages() == 0


async def test_an_unstorable_message_fails_alone_and_answers(store: SQLStore) -> None:
    """Anything the store raises settles every waiting caller; a group commit's
    other messages are still filed."""

    def message(sender: str) -> RelayedMessage:
        return RelayedMessage(
            campaign="spring",
            content=b"Subject: x\r\n\r\n",
            mail_from=sender,
            peer="127.0.0.1",
            auth_user=None,
            received_at=NOW,
            recipients=[(Address("ann", "gmail.com"), "gmail")],
        )

    submissions = SQLRelayStore(store)
    results = await asyncio.wait_for(
        asyncio.gather(
            submissions.commit_message(message("good@shop.example")),
            submissions.commit_message(message("\udcff@shop.example")),
            return_exceptions=True,
        ),
        10,
    )
    assert not isinstance(results[0], BaseException)
    assert isinstance(results[1], StoreError)
    assert await store.count_recipients() == {"queued": 1}


async def _stored(store: SQLStore) -> bytes:
    async with store.engine.connect() as conn:
        return bytes((await conn.execute(select(messages.c.content))).scalar_one())


@pytest.mark.parametrize(
    "head",
    [
        b"Subject: hi\rBcc: secret@gmail.com\r\n",
        b"Subject: hi\rX-Warmup-Id: r1-a1-0123456789\r\n",
    ],
    ids=["bcc-after-bare-cr", "trace-after-bare-cr"],
)
async def test_headers_behind_a_bare_cr_are_stripped_too(
    tmp_path: Path, head: bytes
) -> None:
    """The sender turns a bare CR into CRLF (aiosmtplib does), so a Bcc behind one
    would reach every recipient."""
    async with running_relay(tmp_path) as relay:
        client = await RawClient.connect(relay.port, source="127.0.0.1")
        await client.reply()
        for line in (
            "EHLO t.example",
            "MAIL FROM:<shop@shop.example>",
            "RCPT TO:<ann@gmail.com>",
            "DATA",
        ):
            await client.send(line)
        data = b"From: shop@shop.example\r\n" + head + b"\r\nbody\r\n."
        assert (await client.send(data)).startswith("250")
        await client.close()
        sent = normalize_message_line_endings(await _stored(relay.store))
        names = header_names(sent)
        assert "bcc" not in names and "x-warmup-id" not in names, sent
        assert b"secret@gmail.com" not in sent
        assert {"from", "subject", "received"} <= names


@pytest.mark.parametrize("length", [1_500, 5_000, 100_000])
async def test_overlong_lines_get_aiosmtpds_replies_whatever_the_read_buffer(
    tmp_path: Path, length: int
) -> None:
    """Lines over SMTP's limits but within the session's read buffer
    (smtp_server.READ_LIMIT, 64 KiB) are refused as those beyond it are: a
    command with 500, a message with a long line with 500 after its end, and
    nothing is filed; the session goes on."""
    async with running_relay(tmp_path) as relay:
        client = await RawClient.connect(relay.port, source="127.0.0.1")
        await client.reply()
        assert (await client.send("EHLO t.example" + "x" * length)).startswith(
            "500 Command line too long"
        )
        await client.send("EHLO t.example")
        await client.send("MAIL FROM:<shop@shop.example>")
        assert (await client.send("RCPT TO:<ann@gmail.com>")).startswith("250")
        assert (await client.send("DATA")).startswith("354")
        body = b"Subject: x\r\n\r\n" + b"y" * length + b"\r\n."
        assert (await client.send(body)).startswith("500 Line too long")
        assert (await client.send("NOOP")).startswith("250")
        await client.close()
        assert await relay.messages() == 0
