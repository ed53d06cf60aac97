"""Rendering never holds the event loop for long (issue 12, item 3): a recipient
with large values, or a long non-ASCII value for a header, renders in a thread
while the loop goes on; small recipients keep the fast path on the loop."""

from __future__ import annotations

import asyncio
import email
import email.policy
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from warmup.app.ports import EngineStore
from warmup.app.render import Renderer, renders_inline
from warmup.core.attempt import Claimed
from warmup.core.recipients.recipient import MAX_HEADER_FIELD_CHARS
from warmup.core.recipients.template import parse_template

NOW = datetime(2030, 1, 1, tzinfo=UTC)
TEMPLATE = (
    b"From: Shop <news@shop.example>\n"
    b"Subject: Hi {{ name }}\n"
    b"Content-Type: text/plain; charset=utf-8\n\n"
    b"Hello {{ name }}! {{ story }}\n"
)


class _Templates:
    async def template_for(self, campaign_id: int) -> bytes:
        return TEMPLATE

    async def message_for(self, message_id: int) -> bytes:
        raise AssertionError("no relayed mail here")

    async def relayed_message(self, message_id: int) -> tuple[bytes, bool]:
        raise AssertionError("no relayed mail here")


def _claimed(name: str, story: str) -> Claimed:
    return Claimed(
        id=7,
        campaign_id=1,
        address="ann@gmail.com",
        domain="gmail.com",
        fields={"name": name, "story": story},
        attempts=0,
        queued_at=NOW,
    )


async def _loop_turns_during_render(claimed: Claimed) -> tuple[int, bytes]:
    """How often another task ran while ``claimed`` was rendered."""
    renderer = Renderer(
        cast(EngineStore, _Templates()), return_path="b@bounce.test", secret=b"k" * 32
    )
    await renderer.template(1)  # cached: the inline path then never yields
    turns = 0
    stop = asyncio.Event()

    async def count() -> None:
        nonlocal turns
        while not stop.is_set():
            turns += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(count())
    await asyncio.sleep(0)
    before = turns
    _, message = await renderer.render(claimed, NOW)
    during = turns - before
    stop.set()
    await counter
    return during, message


def _parsed(message: bytes) -> Any:
    return email.message_from_bytes(message, policy=email.policy.default)


async def test_900_kb_values_render_off_the_loop() -> None:
    story = "ü" * 450_000  # 900 KB of UTF-8
    during, message = await _loop_turns_during_render(_claimed("Ann", story))
    assert during > 0
    assert story in _parsed(message).get_content()


async def test_a_long_non_ascii_subject_is_encoded_off_the_loop() -> None:
    name = "名" * MAX_HEADER_FIELD_CHARS
    during, message = await _loop_turns_during_render(_claimed(name, "s"))
    assert during > 0
    assert message.isascii() or b"=?utf-8?" in message.split(b"\r\n\r\n")[0]
    assert str(_parsed(message)["Subject"]) == f"Hi {name}"


async def test_small_recipients_keep_the_fast_path_on_the_loop() -> None:
    during, message = await _loop_turns_during_render(_claimed("Zoë", "a story"))
    assert during == 0
    assert str(_parsed(message)["Subject"]) == "Hi Zoë"


@pytest.mark.parametrize(
    ("values", "inline"),
    [
        ({"name": "Ann", "story": "x" * 60_000}, True),
        ({"name": "Ann", "story": "x" * 70_000}, False),
        ({"name": "é" * 64, "story": ""}, True),
        ({"name": "é" * 65, "story": ""}, False),
        # Non-ASCII in the body costs no RFC 2047 encoding.
        ({"name": "Ann", "story": "é" * 1000}, True),
    ],
)
def test_what_renders_on_the_loop(values: dict[str, str], inline: bool) -> None:
    assert renders_inline(parse_template(TEMPLATE), values) is inline
