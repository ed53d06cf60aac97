"""DKIM canonicalisation and signature layout (RFC 6376 §3.4, §5.4.2)."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest

from warmup.core.auth.dkim import (
    DEFAULT_HEADERS,
    SigningKey,
    body_hash,
    canonical_body,
    canonical_header,
    from_domain,
    keys_for,
    sign_message,
    split_message,
)

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def _key(
    domain: str,
    selector: str = "s1",
    *,
    algorithm: str = "rsa-sha256",
    headers: tuple[str, ...] = DEFAULT_HEADERS,
) -> SigningKey:
    seen: list[bytes] = []

    def sign(data: bytes) -> bytes:
        seen.append(data)
        return hashlib.sha256(data).digest()

    return SigningKey(
        domain=domain,
        selector=selector,
        algorithm=algorithm,
        headers=headers,
        sign=sign,
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", b""),
        (b"\r\n\r\n", b""),
        (b"a  b\t \tc \r\n", b"a b c\r\n"),
        (b"line\r\n\r\n\r\n", b"line\r\n"),
        (b"no end", b"no end\r\n"),
        (b"trailing \r\n  \r\n", b"trailing\r\n"),
        (b"bare\nlf\rcr", b"bare\r\nlf\r\ncr\r\n"),  # as the sender puts it on the wire
        (b" lead\r\n\r\nkept\r\n", b" lead\r\n\r\nkept\r\n"),
    ],
)
def test_relaxed_body(body: bytes, expected: bytes) -> None:
    assert canonical_body(body) == expected


def test_rfc6376_example_body_and_header() -> None:
    # RFC 6376 §3.4.5.
    assert canonical_header(b"A: X\r\n") == b"a:X\r\n"
    assert canonical_header(b"B : Y\t\r\n\tZ  \r\n") == b"b:Y Z\r\n"
    assert canonical_body(b" C \r\nD \t E\r\n\r\n\r\n") == b" C\r\nD E\r\n"
    assert body_hash(b"") == hashlib.sha256(b"").digest()


def test_split_keeps_folds_and_finds_the_body() -> None:
    message = b"From: a@x.test\r\nSubject: one\r\n two\r\n\r\nbody\r\n"
    fields, start = split_message(message)
    assert fields == [
        ("from", b"From: a@x.test\r\n"),
        ("subject", b"Subject: one\r\n two\r\n"),
    ]
    assert message[start:] == b"body\r\n"


@pytest.mark.parametrize(
    ("header", "domain"),
    [
        (b"From: Shop <News@Mail.Shop.Example>\r\n", "mail.shop.example"),
        (b"From: =?utf-8?q?Caf=C3=A9?= <a@b.test>\r\n", "b.test"),
        (b"From: undisclosed\r\n", None),
        (b'From: "a@evil.test" <x@Y.test>\r\n', "y.test"),
        (b"From: x@y.test (a@evil.test)\r\n", "y.test"),
        (b"From:\r\n\tplain@folded.test\r\n", "folded.test"),
    ],
)
def test_from_domain(header: bytes, domain: str | None) -> None:
    assert from_domain(split_message(header + b"\r\n")[0]) == domain


def test_keys_for_picks_the_nearest_aligned_domain_and_all_its_entries() -> None:
    parent, child, old, other = (
        _key("shop.example"),
        _key("mail.shop.example", "new"),
        _key("mail.shop.example", "old"),
        _key("evilshop.example"),
    )
    keys = [parent, child, old, other]
    assert keys_for("mail.shop.example", keys) == [child, old]
    assert keys_for("news.shop.example", keys) == [parent]
    assert keys_for("shop.example", keys) == [parent]
    assert keys_for("xshop.example", keys) == []  # a suffix is not a parent


def test_signature_oversigns_from_and_signs_present_headers_bottom_up() -> None:
    key = _key("x.test")
    message = (
        b"Received: by relay\r\nFrom: a@x.test\r\nTo: b@y.test\r\nSubject: hi\r\n"
        b"Subject: second\r\n\r\nHello  world\r\n"
    )
    signed = sign_message(message, [key], now=NOW)
    field, rest = signed.split(b"\r\nReceived:", 1)
    assert rest.startswith(b" by relay")
    text = field.decode()
    assert text.startswith("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
    tags = {
        k.strip(): v.strip()
        for k, _, v in (
            t.partition("=") for t in "".join(text.split(": ", 1)[1].split()).split(";")
        )
    }
    assert tags["h"] == "from:from:to:subject"
    assert tags["d"] == "x.test" and tags["s"] == "s1"
    assert tags["t"] == str(int(NOW.timestamp()))
    bh = base64.b64encode(hashlib.sha256(b"Hello world\r\n").digest()).decode()
    assert tags["bh"] == bh
    # The fake key's "signature" is the SHA-256 of the input: check what it signed.
    data = (
        b"from:a@x.test\r\nto:b@y.test\r\nsubject:second\r\n"
        + b"dkim-signature:"
        + b" ".join(field.split(b"b=")[0].split(b": ", 1)[1].split())
        + b" b="
    )
    assert tags["b"] == base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_given_body_hash_is_used_and_two_keys_sign_twice() -> None:
    keys = [_key("x.test", "a"), _key("x.test", "b")]
    message = b"From: a@x.test\r\n\r\nbody\r\n"
    signed = sign_message(message, keys, now=NOW, hashed_body=b"\x00" * 32)
    assert signed.count(b"DKIM-Signature:") == 2
    assert signed.count(b"bh=" + base64.b64encode(b"\x00" * 32)) == 2
    assert sign_message(message, [], now=NOW) == message


def test_key_invariants() -> None:
    with pytest.raises(ValueError, match="algorithm"):
        _key("x.test", algorithm="rsa-sha1")
    with pytest.raises(ValueError, match="From"):
        _key("x.test", headers=("subject",))
