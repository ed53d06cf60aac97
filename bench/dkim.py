"""DKIM signing per message, next to a bare RSA-2048 signature in the same run.

Measured on one ~4 KB template message (its headers differ per recipient, its
body does not), all in one process:

- bare: ``cryptography`` RSA-2048 PKCS#1 v1.5 SHA-256 over 500 bytes (the floor:
  every DKIM signature costs one of these);
- warmup: ``MessageSigner.sign`` as the send path calls it (body hash cached:
  the body is the same for every recipient), and with the cache cold (a new body
  each time, relaxed canonicalisation + SHA-256 of the body per message);
- dkimpy: ``dkim.sign`` with the same key and headers (relaxed/relaxed);
- Ed25519 next to it, as the optional second signature.

Goal: warmup's per-message cost at most the bare signature + 20 %.

    .venv/bin/python -m bench.dkim [--messages 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from warmup.app.sign import MessageSigner
from warmup.core.dkim import DEFAULT_HEADERS, SigningKey

NOW = datetime(2026, 12, 1, tzinfo=UTC)
BODY = ("Hello, this is the spring sale. " * 2 + "\r\n") * 60  # ~4 KB


def _message(index: int, body: str = BODY) -> bytes:
    return (
        f"X-Warmup-Id: t{index}\r\nMessage-ID: <t{index}@bounce.example>\r\n"
        "Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
        f"To: user{index}@example.net\r\nFrom: Shop <news@shop.example>\r\n"
        "Subject: Spring sale\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "List-Unsubscribe: <https://shop.example/u/x>\r\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\n" + body
    ).encode()


def _per_call(count: int, call: Callable[[int], object]) -> float:
    """Median of 5 rounds, microseconds per call."""
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for index in range(count):
            call(index)
        rounds.append((time.perf_counter() - start) / count * 1e6)
    return statistics.median(rounds)


def _signing_key(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> SigningKey:
    if isinstance(key, rsa.RSAPrivateKey):
        return SigningKey(
            domain="shop.example",
            selector="s1",
            algorithm="rsa-sha256",
            headers=DEFAULT_HEADERS,
            sign=lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256()),
        )
    return SigningKey(
        domain="shop.example",
        selector="e1",
        algorithm="ed25519-sha256",
        headers=DEFAULT_HEADERS,
        sign=key.sign,  # the pre-hash does not change the cost measurably
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    count = parser.parse_args().messages
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data = b"x" * 500
    bare = _per_call(
        count, lambda _: key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    )
    messages = [_message(i) for i in range(count)]
    cold = [_message(i, BODY + f"{i}\r\n") for i in range(count)]
    signer = MessageSigner([_signing_key(key)])
    warm = _per_call(count, lambda i: signer.sign(messages[i], NOW))
    cold_signer = MessageSigner([_signing_key(key)])
    uncached = _per_call(count, lambda i: cold_signer.sign(cold[i], NOW))
    null_key = SigningKey(
        domain="shop.example",
        selector="n",
        algorithm="rsa-sha256",
        headers=DEFAULT_HEADERS,
        sign=lambda data: b"\0" * 256,
    )
    null_signer = MessageSigner([null_key])
    overhead = _per_call(count, lambda i: null_signer.sign(messages[i], NOW))
    ed = ed25519.Ed25519PrivateKey.generate()
    ed_signer = MessageSigner([_signing_key(ed)])
    ed_time = _per_call(count, lambda i: ed_signer.sign(messages[i], NOW))
    rows = [
        ("bare RSA-2048 signature (cryptography)", bare),
        ("warmup RSA-2048, body hash cached", warm),
        ("warmup RSA-2048, new body each message", uncached),
        ("warmup Ed25519, body hash cached", ed_time),
        ("warmup DKIM format only (no key operation)", overhead),
    ]
    try:
        import dkim
    except ImportError:
        dkim = None
    if dkim is not None:
        pem = key.private_bytes(
            Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption()
        )
        names = [n.encode() for n in DEFAULT_HEADERS[1:]]

        def dkimpy(index: int) -> None:
            dkim.sign(
                messages[index], b"s1", b"shop.example", pem,
                canonicalize=(b"relaxed", b"relaxed"), include_headers=names,
            )  # fmt: skip

        rows.append(
            ("dkimpy 1.1 dkim.sign, RSA-2048", _per_call(max(count // 10, 20), dkimpy))
        )
    print(f"{count} messages of {len(messages[0]):,} bytes, median of 5 rounds")
    for name, micros in rows:
        print(f"  {name:<44} {micros:9.1f} us  {micros / bare:5.2f}x bare")
    met = "met" if warm <= 1.2 * bare else "MISSED"
    print(f"  goal: warmup cached <= 1.20x bare: {met}")


if __name__ == "__main__":
    main()
