"""Hostile headers through the relay (issue 12, items 3 and 6): a control
character or an oversize field is refused at the end of DATA, nothing queued,
and the relay goes on serving."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.adapters.relay_harness import RawClient, Relay, running_relay
from warmup.core.relay_message import MAX_FIELD_BYTES


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
