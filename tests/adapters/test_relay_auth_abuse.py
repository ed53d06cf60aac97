"""AUTH under attack (issue 12, items 2 and 9): real aiosmtplib clients over
loopback and STARTTLS, the lockout on the injected clock."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiosmtplib
import pytest

from tests.adapters.relay_harness import (
    OUTSIDE,
    PASSWORD,
    USER,
    RawClient,
    Relay,
    client_context,
    running_relay,
)


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[Relay]:
    async with running_relay(tmp_path) as running:
        yield running


async def _client(relay: Relay, source: str = OUTSIDE) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=relay.port,
        source_address=(source, 0),
        start_tls=True,
        tls_context=client_context(relay.cert),
        timeout=20,
    )
    await client.connect()
    await client.ehlo()
    return client


async def _attempt(
    relay: Relay, password: str, *, user: str = USER, source: str = OUTSIDE
) -> int:
    """One AUTH PLAIN on a fresh session: its reply code."""
    client = await _client(relay, source)
    try:
        return (await client.auth_plain(user, password)).code
    except aiosmtplib.SMTPAuthenticationError as exc:
        return exc.code
    finally:
        client.close()


async def _parallel(relay: Relay, count: int) -> Counter[int]:
    codes = await asyncio.wait_for(
        asyncio.gather(*(_attempt(relay, f"guess{n}") for n in range(count))), 60
    )
    return Counter(codes)


async def test_parallel_wrong_passwords_lock_the_client(relay: Relay) -> None:
    """The bug: the lockout was checked before the check was awaited, so parallel
    attempts all went through (20 at once, none refused)."""
    first = await _parallel(relay, 8)
    # Five checked (the limit), the other three refused before any check.
    assert first == {535: 5, 454: 3}, first
    second = await _parallel(relay, 20)
    assert second == {454: 20}, second
    assert await _attempt(relay, PASSWORD) == 454
    relay.clock.advance(timedelta(minutes=14))
    assert await _attempt(relay, PASSWORD) == 454
    relay.clock.advance(timedelta(minutes=1))
    assert await _attempt(relay, PASSWORD) == 235


async def test_a_lock_is_logged_once_and_refusals_are_quiet(
    relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="warmup.adapters")
    await _parallel(relay, 8)
    await _parallel(relay, 4)
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert said.count("relay: AUTH failed from 127.0.0.2") == 5
    locks = [m for m in said if "locked" in m]
    assert locks == ["relay: AUTH from 127.0.0.2 locked for 0:15:00"], said


async def test_a_failure_after_the_lock_does_not_lift_it(relay: Relay) -> None:
    """The bug: six parallel guesses all got checked; the sixth failure, after
    the lock, restarted the count and lifted the lock, so the right password
    right after was accepted."""
    assert await _parallel(relay, 6) == {535: 5, 454: 1}
    assert await _attempt(relay, PASSWORD) == 454
    relay.clock.advance(timedelta(minutes=5))
    assert await _attempt(relay, "one more") == 454
    assert await _attempt(relay, PASSWORD) == 454


async def test_forty_addresses_cannot_guess_one_account_two_hundred_times(
    relay: Relay,
) -> None:
    async def five_guesses(host: int) -> list[int]:
        client = await _client(relay, f"127.0.0.{10 + host}")
        codes = []
        try:
            for n in range(5):
                try:
                    codes.append((await client.auth_plain(USER, f"g{n}")).code)
                except aiosmtplib.SMTPAuthenticationError as exc:
                    codes.append(exc.code)
        finally:
            client.close()
        return codes

    results = await asyncio.wait_for(
        asyncio.gather(*(five_guesses(h) for h in range(40))), 120
    )
    counts = Counter(code for codes in results for code in codes)
    # user_auth_failures_before_lockout (10) passwords checked, not 200.
    assert counts == {535: 10, 454: 190}, counts
    assert await _attempt(relay, PASSWORD, source="127.0.0.99") == 454


async def test_a_differing_authzid_is_refused_not_ignored(relay: Relay) -> None:
    client = await RawClient.connect(relay.port)
    await client.reply()
    await client.send("EHLO probe.example")
    await client.starttls(client_context(relay.cert))
    await client.send("EHLO probe.example")
    admin = base64.b64encode(f"admin\0{USER}\0{PASSWORD}".encode()).decode()
    assert (await client.send(f"AUTH PLAIN {admin}")).startswith("535 5.7.8")
    assert (await client.send("MAIL FROM:<a@b.example>")).startswith("530")
    same = base64.b64encode(f"{USER}\0{USER}\0{PASSWORD}".encode()).decode()
    assert (await client.send(f"AUTH PLAIN {same}")).startswith("235")
    await client.close()


@pytest.mark.parametrize("length", [5_000, 100_000])
@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
async def test_a_long_auth_line_gets_a_clean_500(
    relay: Relay, caplog: pytest.LogCaptureFixture, mechanism: str, length: int
) -> None:
    """The bug: ``500 Error: (ValueError) Separator is not found…`` and a
    traceback in the log. 5,000 bytes: longer than a line may be, shorter than
    the read buffer (smtp_server.READ_LIMIT)."""
    caplog.set_level(logging.INFO)
    client = await RawClient.connect(relay.port)
    await client.reply()
    await client.send("EHLO probe.example")
    await client.starttls(client_context(relay.cert))
    await client.send("EHLO probe.example")
    assert (await client.send(f"AUTH {mechanism}")).startswith("334")
    answer = await client.send(b"A" * length)
    assert answer.startswith("500 5.5.6"), answer
    assert "Error" not in answer
    long_command = await client.send(f"AUTH {mechanism} " + "A" * length)
    assert long_command.startswith("500"), long_command
    assert "Error" not in long_command
    # The session goes on, in step with the client.
    assert (await client.send("NOOP")).startswith("250")
    assert (await client.send("AUTH LOGIN")).startswith("334")
    assert (await client.send(base64.b64encode(USER.encode()))).startswith("334")
    password = base64.b64encode(PASSWORD.encode())
    assert (await client.send(password)).startswith("235")
    await client.close()
    assert not [r for r in caplog.records if r.exc_info], caplog.text


async def test_parallel_right_passwords_all_log_in(relay: Relay) -> None:
    """The bug (bench.relay, 10 connections of one campaign tool): checks in
    progress count against the limit, so the sixth parallel login with the right
    password got 454 though nothing had failed; now it waits for a check to end."""
    codes = await asyncio.wait_for(
        asyncio.gather(*(_attempt(relay, PASSWORD) for _ in range(12))), 60
    )
    assert Counter(codes) == {235: 12}
    # Guessing is still bounded: five failures lock the client as before.
    assert await _parallel(relay, 8) == {535: 5, 454: 3}
    assert await _attempt(relay, PASSWORD) == 454
