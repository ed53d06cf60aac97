"""Hostile headers through the relay (issue 12, items 3 and 6): a control
character or an oversize field is refused at the end of DATA, nothing queued,
and the relay goes on serving."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.adapters.relay_harness import RawClient, Relay, running_relay
from warmup.core.relay.message import MAX_FIELD_BYTES


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[Relay]:
    async with running_relay(tmp_path, max_message_bytes=4 << 20) as running:
        yield running


async def _submit(relay: Relay, content: bytes) -> str:
    client = await RawClient.connect(relay.port, source="127.0.0.1")
    await client.reply()
    await client.send("EHLO tool.example")
    await client.send("MAIL FROM:<a@shop.example>")
    await client.send("RCPT TO:<ann@gmail.com>")
    assert (await client.send("DATA")).startswith("354")
    client.writer.write(content)
    reply = await client.send(".")
    await client.close()
    return reply.splitlines()[-1]


@pytest.mark.parametrize("control", [b"\x00", b"\x1b", b"\x7f", b"\x0b"])
async def test_a_control_character_in_a_header_is_refused(
    relay: Relay, control: bytes
) -> None:
    content = b"From: a@shop.example\r\nSubject: Hi " + control + b"x\r\n\r\nbody\r\n"
    reply = await _submit(relay, content)
    assert reply == f"550 5.6.0 Control character {control!r} in header subject"
    assert await relay.counts() == {}
    assert await relay.messages() == 0


async def test_an_oversize_folded_header_is_refused(relay: Relay) -> None:
    fold = b"\r\n x" * (MAX_FIELD_BYTES // 4 + 1)
    content = b"From: a@shop.example\r\nX-Long: start" + fold + b"\r\n\r\nbody\r\n"
    reply = await _submit(relay, content)
    assert reply == f"552 5.3.4 Header x-long longer than {MAX_FIELD_BYTES} bytes"
    assert await relay.messages() == 0


async def test_tabs_folds_and_controls_in_the_body_pass(relay: Relay) -> None:
    content = (
        b"From: a@shop.example\r\nSubject: Hi\tthere,\r\n\tfolded\r\n\r\n"
        b"a body may hold \x00 and \x1b: it goes out as written\r\n"
    )
    reply = await _submit(relay, content)
    assert reply.startswith("250 2.0.0 OK queued as")
    assert await relay.counts() == {"queued": 1}


async def test_a_database_fault_answers_451_with_one_log_line(
    relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 12, item 7: the table the message goes to is renamed away (a real
    fault in the real SQLite file); each 451 logs one line, no traceback."""
    async with relay.store.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE messages RENAME TO messages_away"))
    caplog.set_level(logging.WARNING)
    content = b"From: a@shop.example\r\nSubject: Hi\r\n\r\nbody\r\n"
    for _ in range(3):
        assert (await _submit(relay, content)).startswith("451 4.3.0")
    assert relay.server.store_failures == 3
    lines = [r for r in caplog.records if r.name == "warmup.adapters.relay"]
    assert len(lines) == 3
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in lines)
    assert "could not file a message from 127.0.0.1 (451): database error" in (
        lines[0].getMessage()
    )
    async with relay.store.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE messages_away RENAME TO messages"))
    assert (await _submit(relay, content)).startswith("250 2.0.0 OK queued as")
