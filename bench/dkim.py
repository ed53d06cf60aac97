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
from warmup.core.auth.dkim import DEFAULT_HEADERS, SigningKey

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
    """Microseconds per call over ``count`` calls."""
    start = time.perf_counter()
    for index in range(count):
        call(index)
    return (time.perf_counter() - start) / count * 1e6


def _interleaved(
    count: int, calls: dict[str, tuple[int, Callable[[int], object]]], rounds: int = 7
) -> dict[str, float]:
    """Median per call of each, the variants taking turns in every round (so a
    change of load on a shared machine hits them alike)."""
    seen: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, (share, call) in calls.items():
            seen[name].append(_per_call(max(count // share, 20), call))
    return {name: statistics.median(values) for name, values in seen.items()}


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
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    messages = [_message(i) for i in range(count)]
    cold = [_message(i, BODY + f"{i}\r\n") for i in range(count)]
    signer = MessageSigner([_signing_key(key)])
    cold_signer = MessageSigner([_signing_key(key)])
    ed_signer = MessageSigner([_signing_key(ed25519.Ed25519PrivateKey.generate())])
    null_signer = MessageSigner(
        [
            SigningKey(
                domain="shop.example",
                selector="n",
                algorithm="rsa-sha256",
                headers=DEFAULT_HEADERS,
                sign=lambda data: b"\0" * 256,
            )
        ]
    )
    calls: dict[str, tuple[int, Callable[[int], object]]] = {
        "bare RSA-2048 signature (cryptography)": (
            1,
            lambda _: key.sign(data, pkcs1, sha256),
        ),
        "warmup RSA-2048, body hash cached": (
            1,
            lambda i: signer.sign(messages[i], NOW),
        ),
        "warmup RSA-2048, new body each message": (
            1,
            lambda i: cold_signer.sign(cold[i], NOW),
        ),
        "warmup Ed25519, body hash cached": (
            1,
            lambda i: ed_signer.sign(messages[i], NOW),
        ),
        "warmup DKIM format only (no key operation)": (
            1,
            lambda i: null_signer.sign(messages[i], NOW),
        ),
    }
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

        calls["dkimpy 1.1 dkim.sign, RSA-2048"] = (20, dkimpy)
    figures = _interleaved(count, calls)
    bare = figures["bare RSA-2048 signature (cryptography)"]
    warm = figures["warmup RSA-2048, body hash cached"]
    print(
        f"{count} messages of {len(messages[0]):,} bytes, "
        "median of 7 interleaved rounds"
    )
    for name, micros in figures.items():
        print(f"  {name:<44} {micros:9.1f} us  {micros / bare:5.2f}x bare")
    met = "met" if warm <= 1.2 * bare else "MISSED"
    print(f"  goal: warmup cached <= 1.20x bare: {met}")


if __name__ == "__main__":
    main()
