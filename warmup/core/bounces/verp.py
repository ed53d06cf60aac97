"""Signed VERP return paths: ``bounces+<token>@<bounce domain>``.

The token names one attempt (recipient id and attempt number) and carries an
HMAC-SHA256 prefix, so a forged bounce cannot suppress arbitrary addresses.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

__all__ = [
    "TRACE_HEADER",
    "VERPToken",
    "decode_verp",
    "encode_verp",
    "mac_matches",
    "token_mac",
]

#: The header that carries the same token in every message we send, so a bounce
#: that quotes the original can be traced when its envelope was rewritten.
TRACE_HEADER = "X-Warmup-Id"

_MAC_CHARS = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class VERPToken:
    recipient_id: int
    attempt: int


def token_mac(secret: bytes, body: str, *, chars: int = _MAC_CHARS) -> str:
    """The first ``chars`` hex digits of HMAC-SHA256(secret, body): the signature
    of every token warmup hands out (VERP, one-click unsubscribe)."""
    return hmac.new(secret, body.encode("ascii"), hashlib.sha256).hexdigest()[:chars]


def mac_matches(secret: bytes, body: str, mac: str, *, chars: int = _MAC_CHARS) -> bool:
    """Whether ``mac`` signs ``body`` (constant time; case-insensitive hex)."""
    if not body.isascii() or not mac.isascii():
        return False
    return hmac.compare_digest(mac.lower(), token_mac(secret, body, chars=chars))


def encode_verp(token: VERPToken, *, return_path: str, secret: bytes) -> str:
    """``bounces@bounce.example`` -> ``bounces+r12-a3-<mac>@bounce.example``."""
    local, _, domain = return_path.rpartition("@")
    body = f"r{token.recipient_id}-a{token.attempt}"
    return f"{local}+{body}-{token_mac(secret, body)}@{domain}"


def decode_verp(address: str, *, secret: bytes) -> VERPToken | None:
    """The token of a VERP address, or None when absent, malformed or forged."""
    local = address.strip().strip("<>").rpartition("@")[0]
    _, plus, tag = local.partition("+")
    parts = tag.split("-")
    if not plus or len(parts) != 3 or not tag.isascii():
        return None  # (a non-ASCII tag is no token, and would not encode)
    recipient, attempt, mac = parts
    body = f"{recipient}-{attempt}"
    if not mac_matches(secret, body, mac):
        return None
    if not (recipient[:1] == "r" and attempt[:1] == "a"):
        return None
    if not (recipient[1:].isdigit() and attempt[1:].isdigit()):
        return None
    return VERPToken(recipient_id=int(recipient[1:]), attempt=int(attempt[1:]))
