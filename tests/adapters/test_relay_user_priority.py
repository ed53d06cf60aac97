"""Per-user default priority and user removal, over real SMTP on loopback: the
running relay reads the users file again when it changes."""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.adapters.relay_harness import (
    OUTSIDE,
    PASSWORD,
    USER,
    client_context,
    running_relay,
)
from warmup.adapters.db.schema import recipients
from warmup.adapters.db.store import SQLStore
from warmup.adapters.relay_users import add_user, remove_user

MESSAGE = "From: shop@shop.example\r\nSubject: s\r\n{extra}\r\nbody\r\n"


def _submit(port: int, cert: Path, user: str, password: str, extra: str = "") -> None:
    with smtplib.SMTP(
        "127.0.0.1", port, source_address=(OUTSIDE, 0), timeout=10
    ) as client:
        client.starttls(context=client_context(cert))
        client.login(user, password)
        message = MESSAGE.format(extra=extra).encode()
        client.sendmail("shop@shop.example", ["ann@gmail.com"], message)


async def _priorities(store: SQLStore) -> list[float]:
    async with store.engine.connect() as conn:
        query = select(recipients.c.priority).order_by(recipients.c.id)
        return [float(p) for p in (await conn.execute(query)).scalars()]


async def test_a_users_default_priority_applies_without_the_header(
    tmp_path: Path,
) -> None:
    users = tmp_path / "users"
    add_user(users, USER, PASSWORD.encode())
    add_user(users, "plain", b"plain password")
    async with running_relay(tmp_path) as relay:
        send = asyncio.to_thread
        await send(_submit, relay.port, relay.cert, USER, PASSWORD)  # none set yet
        add_user(users, USER, None, priority="high")  # picked up, no restart
        await send(_submit, relay.port, relay.cert, USER, PASSWORD)
        await send(
            _submit, relay.port, relay.cert, USER, PASSWORD, "X-Warmup-Priority: 40\r\n"
        )
        await send(_submit, relay.port, relay.cert, "plain", "plain password")
        assert await _priorities(relay.store) == [-1.0, 2e12, 1e12 + 40, -1.0]


async def test_a_removed_user_cannot_log_in_any_more(tmp_path: Path) -> None:
    users = tmp_path / "users"
    add_user(users, USER, PASSWORD.encode())
    add_user(users, "other", b"other password")
    async with running_relay(tmp_path) as relay:
        await asyncio.to_thread(_submit, relay.port, relay.cert, USER, PASSWORD)
        remove_user(users, USER)
        with pytest.raises(smtplib.SMTPAuthenticationError):
            await asyncio.to_thread(_submit, relay.port, relay.cert, USER, PASSWORD)
        await asyncio.to_thread(
            _submit, relay.port, relay.cert, "other", "other password"
        )
        assert len(await _priorities(relay.store)) == 2
