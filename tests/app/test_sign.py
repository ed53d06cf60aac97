"""MessageSigner: keys by From domain, the body hash cache, hold or send."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from warmup.app.sign import HELD_PREFIX, Held, MessageSigner
from warmup.core.auth.dkim import DEFAULT_HEADERS, SigningKey

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _key(domain: str, sign: Callable[[bytes], bytes] = _digest) -> SigningKey:
    return SigningKey(
        domain=domain,
        selector="s",
        algorithm="rsa-sha256",
        headers=DEFAULT_HEADERS,
        sign=sign,
    )


def _message(sender: str, to: str, body: bytes = b"Same body\r\n") -> bytes:
    return f"From: {sender}\r\nTo: {to}\r\nSubject: s\r\n\r\n".encode() + body


def test_one_body_is_hashed_once_for_many_recipients() -> None:
    signer = MessageSigner([_key("shop.example")])
    for n in range(5):
        signed = signer.sign(_message("a@shop.example", f"u{n}@x.test"), NOW)
        assert isinstance(signed, bytes) and signed.startswith(b"DKIM-Signature: ")
    assert signer.body_hashes == 1
    signer.sign(_message("a@shop.example", "u@x.test", b"Other\r\n"), NOW)
    assert signer.body_hashes == 2


def test_a_huge_body_is_not_kept() -> None:
    signer = MessageSigner([_key("shop.example")])
    huge = b"x" * (5 * 1024 * 1024) + b"\r\n"
    for _ in range(2):
        signer.sign(_message("a@shop.example", "u@x.test", huge), NOW)
    assert signer.body_hashes == 2


def test_unkeyed_from_is_held_or_sent_and_no_keys_signs_nothing() -> None:
    message = _message("a@other.example", "u@x.test")
    held = MessageSigner([_key("shop.example")]).sign(message, NOW)
    assert isinstance(held, Held)
    assert held.reason.startswith(HELD_PREFIX)
    assert "From domain other.example" in held.reason
    sent = MessageSigner([_key("shop.example")], unsigned="send").sign(message, NOW)
    assert sent == message
    assert MessageSigner([]).sign(message, NOW) == message
    no_from = MessageSigner([_key("shop.example")]).sign(b"Subject: x\r\n\r\nb", NOW)
    assert isinstance(no_from, Held) and "without a From address" in no_from.reason


async def test_signing_off_the_loop_gives_the_same_bytes_and_holds_alike() -> None:
    """The send path signs in a worker thread (sign_off_loop): same signatures,
    one body hash for many recipients, the key run off the loop's thread."""
    threads: list[int] = []

    def sign(data: bytes) -> bytes:
        threads.append(threading.get_ident())
        return hashlib.sha256(data).digest()

    key = _key("shop.example", sign)
    on_loop, off_loop = MessageSigner([key]), MessageSigner([key])
    messages = [_message("a@shop.example", f"u{n}@x.test") for n in range(4)]
    for message in messages:
        expected = on_loop.sign(message, NOW)
        assert await off_loop.sign_off_loop(message, NOW) == expected
    assert off_loop.body_hashes == 1
    assert len(threads) == 8  # sign() and sign_off_loop() in turn
    assert set(threads[0::2]) == {threading.get_ident()}  # sign(): the caller's
    assert threading.get_ident() not in threads[1::2]  # sign_off_loop(): a worker
    unkeyed = _message("a@other.example", "u@x.test")
    assert isinstance(await off_loop.sign_off_loop(unkeyed, NOW), Held)
    assert await MessageSigner([]).sign_off_loop(unkeyed, NOW) == unkeyed


async def test_signing_uses_one_thread_fewer_than_the_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Many lanes signing at once share the signer's own threads, one core fewer
    than the machine has (more would only queue for the cores and the GIL);
    at least one thread on a single core."""
    names: set[str] = set()
    started = threading.Barrier(1)

    def sign(data: bytes) -> bytes:
        names.add(threading.current_thread().name)
        started.wait()  # with two threads: both sign at once, so both are used
        return hashlib.sha256(data).digest()

    key = _key("shop.example", sign)
    for cores, threads in ((3, 2), (2, 1), (1, 1), (None, 1)):
        monkeypatch.setattr(os, "cpu_count", lambda cores=cores: cores)
        names.clear()
        started = threading.Barrier(threads, timeout=10)
        signer = MessageSigner([key])
        messages = [_message("a@shop.example", f"u{n}@x.test") for n in range(6)]
        await asyncio.gather(*(signer.sign_off_loop(m, NOW) for m in messages))
        assert len(names) == threads, (cores, names)
        assert all(name.startswith("dkim") for name in names)
