"""Open-relay probes: each refused with the right code, the relay still serving,
nothing queued. Exact command lines over a raw socket (smtplib would tidy them)."""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path

import aiosmtplib
import pytest

from tests.adapters.relay_harness import (
    BOUNCE_DOMAIN,
    PASSWORD,
    USER,
    RawClient,
    Relay,
    client_context,
    running_relay,
)


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[Relay]:
    async with running_relay(tmp_path, max_message_bytes=4096) as running:
        yield running
        await _still_serving_nothing_queued(running)


@pytest.fixture
async def intake_relay(tmp_path: Path) -> AsyncIterator[Relay]:
    """A relay with a bounce sink: outsiders may talk to it in plain text."""
    async with running_relay(tmp_path, sink=True) as running:
        yield running
        await _still_serving_nothing_queued(running)


async def _still_serving_nothing_queued(relay: Relay) -> None:
    client = await RawClient.connect(relay.port, source="127.0.0.1")
    assert (await client.reply()).startswith("220")
    assert (await client.send("NOOP")).startswith("250")
    await client.close()
    assert await relay.counts() == {}
    assert await relay.messages() == 0


async def _session(port: int, source: str, lines: Sequence[str | bytes]) -> list[str]:
    client = await RawClient.connect(port, source)
    replies = [await client.reply()]
    replies += [await client.send(line) for line in lines]
    await client.close()
    return [r.splitlines()[-1] for r in replies]


def _plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


async def _tls_session(relay: Relay, lines: Sequence[str | bytes]) -> list[str]:
    client = await RawClient.connect(relay.port)
    await client.reply()
    await client.send("EHLO probe.example")
    await client.starttls(client_context(relay.cert))
    replies = [await client.send("EHLO probe.example")]
    replies += [await client.send(line) for line in lines]
    await client.close()
    return [r.splitlines()[-1] for r in replies]


async def test_unauthenticated_relay_from_outside(relay: Relay) -> None:
    replies = await _session(
        relay.port,
        "127.0.0.2",
        ["EHLO probe.example", "MAIL FROM:<a@probe.example>", "RCPT TO:<v@gmail.com>"],
    )
    assert replies[2].startswith("530")  # STARTTLS first: nothing else to do here
    after_tls = await _tls_session(
        relay, ["MAIL FROM:<a@probe.example>", "RCPT TO:<v@gmail.com>", "DATA"]
    )
    assert after_tls[1].startswith("530 5.7.0 Authentication required")
    assert after_tls[2].startswith("503")  # no MAIL, no RCPT
    assert after_tls[3].startswith("503")


async def test_unauthenticated_relay_past_the_bounce_intake(
    intake_relay: Relay,
) -> None:
    replies = await _session(
        intake_relay.port,
        "127.0.0.2",
        [
            "EHLO probe.example",
            "MAIL FROM:<a@probe.example>",
            "RCPT TO:<victim@gmail.com>",
            f"RCPT TO:<victim@gmail.com@{BOUNCE_DOMAIN}>",
            "DATA",
        ],
    )
    assert replies[3] == "554 5.7.1 Relay access denied"
    assert replies[4].startswith("553")
    assert replies[5].startswith("503")
    assert intake_relay.sunk == []


@pytest.mark.parametrize(
    ("rcpt", "expected"),
    [
        (f"<@{BOUNCE_DOMAIN}:victim@gmail.com>", "553 5.1.3 Source routes"),
        (f"<@a.example,@{BOUNCE_DOMAIN}:victim@gmail.com>", "553 5.1.3 Source routes"),
        (f"<victim%gmail.com@{BOUNCE_DOMAIN}>", "553 5.1.3 Percent-hack"),
        (f"<gmail.com!victim@{BOUNCE_DOMAIN}>", "553 5.1.3 Bang paths"),
        (f'<"victim@gmail.com"@{BOUNCE_DOMAIN}>', "553 5.1.3 Quoted"),
        (f'<"victim%gmail.com"@{BOUNCE_DOMAIN}>', "553 5.1.3 Quoted"),
        ("<victim@[192.0.2.1]>", "553 5.1.3 Bad recipient"),
        ("<josé@gmail.com>", "553 5.6.7 Non-ASCII"),
        (f"<postmaster@{BOUNCE_DOMAIN}>\rBcc: x@gmail.com", "501 5.5.2"),
    ],
)
async def test_tricky_recipients_are_refused(
    intake_relay: Relay, rcpt: str, expected: str
) -> None:
    replies = await _session(
        intake_relay.port,
        "127.0.0.2",
        ["EHLO probe.example", "MAIL FROM:<>", f"RCPT TO:{rcpt}", "DATA"],
    )
    assert replies[3].startswith(expected), replies
    assert replies[4].startswith("503")
    assert intake_relay.sunk == []


async def test_tricky_recipients_refused_from_the_allowed_network_too(
    relay: Relay,
) -> None:
    replies = await _session(
        relay.port,
        "127.0.0.1",
        [
            "EHLO tool.example",
            "MAIL FROM:<a@shop.example>",
            "RCPT TO:<@relay.test:victim@gmail.com>",
            "RCPT TO:<victim%gmail.com@relay.test>",
            f"RCPT TO:<x@{BOUNCE_DOMAIN}>",  # no bounce sink here
        ],
    )
    assert [r[:9] for r in replies[3:]] == ["553 5.1.3", "553 5.1.3", "550 5.1.1"]


async def test_auth_before_starttls(relay: Relay) -> None:
    replies = await _session(
        relay.port,
        "127.0.0.2",
        ["EHLO probe.example", f"AUTH PLAIN {_plain(USER, PASSWORD)}"],
    )
    # require_starttls answers first; without it aiosmtpd says 538 5.7.11.
    assert replies[2].startswith("530")


async def test_auth_before_starttls_with_a_bounce_intake(intake_relay: Relay) -> None:
    replies = await _session(
        intake_relay.port,
        "127.0.0.2",
        [
            "EHLO probe.example",
            f"AUTH PLAIN {_plain(USER, PASSWORD)}",
            "MAIL FROM:<a@probe.example>",
            "RCPT TO:<v@gmail.com>",
        ],
    )
    assert replies[2].startswith("538 5.7.11")
    assert replies[4] == "554 5.7.1 Relay access denied"


async def test_wrong_passwords_are_slowed_then_locked_out(relay: Relay) -> None:
    start = relay.clock.now()
    wrong = [f"AUTH PLAIN {_plain(USER, 'guess' + str(n))}" for n in range(5)]
    replies = await _tls_session(relay, wrong)
    assert all(r.startswith("535 5.7.8") for r in replies[1:])
    # 1 + 2 + 4 + 8 + 8 s of (fake) time went by answering them.
    assert relay.clock.now() - start == timedelta(seconds=23)
    right = f"AUTH PLAIN {_plain(USER, PASSWORD)}"
    locked = await _tls_session(relay, [right, "MAIL FROM:<a@b.example>"])
    assert locked[1].startswith("454 4.7.0")
    assert locked[2].startswith("530 5.7.0")
    relay.clock.advance(timedelta(minutes=15))
    again = await _tls_session(relay, [right])
    assert again[1].startswith("235")


@pytest.mark.parametrize(
    "login",
    [
        f"AUTH PLAIN {_plain(USER + chr(13) + chr(10) + 'Bcc: x@gmail.com', PASSWORD)}",
        f"AUTH PLAIN {_plain('nobody', PASSWORD)}",
        "AUTH PLAIN " + base64.b64encode(b"\0\xff\xfe\0pw").decode(),
        "AUTH PLAIN not-base64!",
        "AUTH PLAIN " + base64.b64encode(b"no-nulls").decode(),
        "AUTH LOGIN " + base64.b64encode(b"news").decode(),
        "AUTH CRAM-MD5",
    ],
)
async def test_auth_garbage_and_injection(relay: Relay, login: str) -> None:
    lines: list[str | bytes] = [login]
    if login.startswith("AUTH LOGIN"):
        lines.append(base64.b64encode(b"wrong password").decode())
    replies = await _tls_session(relay, [*lines, "MAIL FROM:<a@b.example>"])
    assert replies[-2][:3] in {"535", "501", "504"}, replies
    assert replies[-1].startswith("530 5.7.0")


async def test_auth_aborted_with_a_star(relay: Relay) -> None:
    replies = await _tls_session(relay, ["AUTH LOGIN", "*", "NOOP"])
    assert replies[1].startswith("334") and replies[2].startswith("501")
    assert replies[3].startswith("250")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("MAIL FROM:<a@shop.example> SIZE=10\rBcc: x@gmail.com", "501 5.5.2"),
        ("MAIL FROM:<a@shop.example>\x00", "501 5.5.2"),
        ("MAIL FROM:<a@shop.example> X-HEADER=Bcc:x", "501"),
        ("MAIL FROM:<a@shop.example> AUTH=<x@y>", "555"),
        ("MAIL FROM:<@evil.example:a@shop.example>", "553 5.1.7"),
        ("MAIL FROM:<a@shop.example> SIZE=99999999", "552"),
        ("MAIL FROM:<a@shop.example> BODY=BINARYMIME", "501"),
        ("EHLO evil.example\rBcc: x@gmail.com", "501 5.5.2"),
    ],
)
async def test_header_injection_and_bad_parameters(
    relay: Relay, line: str, expected: str
) -> None:
    replies = await _session(relay.port, "127.0.0.1", ["EHLO tool.example", line])
    assert replies[2].startswith(expected), replies


async def test_oversize_data_gets_552(relay: Relay) -> None:
    client = await RawClient.connect(relay.port, source="127.0.0.1")
    await client.reply()
    await client.send("EHLO tool.example")
    await client.send("MAIL FROM:<a@shop.example>")
    await client.send("RCPT TO:<ann@gmail.com>")
    assert (await client.send("DATA")).startswith("354")
    body = b"Subject: big\r\n\r\n" + b"x" * 70 + b"\r\n"
    client.writer.write(body * 100)
    assert (await client.send(".")).startswith("552")
    await client.close()


async def test_too_many_recipients(tmp_path: Path) -> None:
    async with running_relay(tmp_path, max_recipients=2) as relay:
        replies = await _session(
            relay.port,
            "127.0.0.1",
            ["EHLO t.example", "MAIL FROM:<a@shop.example>"]
            + [f"RCPT TO:<u{n}@gmail.com>" for n in range(3)],
        )
        assert replies[-1].startswith("452 4.5.3")


async def test_garbage_gets_500s_then_the_door(relay: Relay) -> None:
    rng = random.Random(7)
    client = await RawClient.connect(relay.port, source="127.0.0.1")
    await client.reply()
    answers = []
    for _ in range(20):
        junk = bytes(rng.randrange(33, 256) for _ in range(40)).replace(b"\n", b"")
        client.writer.write(junk + b"\r\n")
        answer = await client.reply()
        answers.append(answer[:3])
        if answer.startswith("421"):
            break
    assert answers == ["500"] * 10 + ["421"], answers
    assert await client.closed_by_server()
    long_line = await RawClient.connect(relay.port, source="127.0.0.1")
    await long_line.reply()
    assert (await long_line.send(b"NOOP " + b"x" * 5000)).startswith("500")
    await long_line.close()
    await client.close()


async def test_a_stalled_client_is_dropped(tmp_path: Path) -> None:
    async with running_relay(tmp_path, timeout=timedelta(seconds=0.3)) as relay:
        idle = await RawClient.connect(relay.port)
        await idle.reply()
        assert await idle.closed_by_server()
        mid_data = await RawClient.connect(relay.port, source="127.0.0.1")
        await mid_data.reply()
        await mid_data.send("EHLO t.example")
        await mid_data.send("MAIL FROM:<a@shop.example>")
        await mid_data.send("RCPT TO:<ann@gmail.com>")
        await mid_data.send("DATA")
        mid_data.writer.write(b"Subject: half a message\r\n")
        assert await mid_data.closed_by_server()
        await idle.close()
        await mid_data.close()
        await _still_serving_nothing_queued(relay)


async def test_connection_and_message_rate_limits(tmp_path: Path) -> None:
    async with running_relay(
        tmp_path, max_connections_per_client=2, messages_per_minute_per_client=2
    ) as relay:
        first = await RawClient.connect(relay.port)
        second = await RawClient.connect(relay.port)
        third = await RawClient.connect(relay.port)
        assert (await third.reply()).startswith("421 4.7.0 Too many connections")
        assert await third.closed_by_server()
        for client in (first, second, third):
            await client.close()
        for _ in range(100):  # until the server has seen the hang-ups
            if not relay.server.limits.connections:
                break
            await asyncio.sleep(0.01)
        assert relay.server.limits.connections == {}

        async def send() -> None:
            await aiosmtplib.send(
                "Subject: x\r\n\r\nhi\r\n",
                sender="a@shop.example",
                recipients=["ann@gmail.com"],
                hostname="127.0.0.1",
                port=relay.port,
                start_tls=False,
                timeout=10,
            )

        await send()
        await send()
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await send()
        assert refused.value.code == 450
        relay.clock.advance(timedelta(seconds=30))
        await send()
        assert await relay.counts() == {"queued": 3}


async def test_a_message_without_headers_is_refused(relay: Relay) -> None:
    client = await RawClient.connect(relay.port, source="127.0.0.1")
    await client.reply()
    for line in (
        "EHLO t.example",
        "MAIL FROM:<a@shop.example>",
        "RCPT TO:<a@gmail.com>",
    ):
        await client.send(line)
    await client.send("DATA")
    assert (await client.send(b"no header at all\r\n.")).startswith("550 5.6.0")
    await client.close()


async def test_non_ascii_with_smtputf8_is_accepted(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        replies = await _session(
            relay.port,
            "127.0.0.1",
            [
                "EHLO t.example",
                "MAIL FROM:<a@shop.example> SMTPUTF8",
                "RCPT TO:<josé@gmail.com>",
            ],
        )
        assert replies[3].startswith("250")
