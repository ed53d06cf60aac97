"""DKIM signatures (RFC 6376, relaxed/relaxed; Ed25519-SHA256 per RFC 8463).

Signing is two steps, so a body shared by many recipients is hashed once:

1. :func:`body_hash` canonicalises the body (relaxed, §3.4.4) and hashes it;
2. :func:`signature_field` canonicalises the chosen header fields (relaxed,
   §3.4.2), builds the ``DKIM-Signature`` field and has the key sign it.

The private-key operation is a callable on :class:`SigningKey` (the adapter wraps
``cryptography``), so this module stays pure. Line ends are taken as the sender
puts them on the wire: CRLF, a bare LF and a bare CR each end a line.

Rules:

- The key is chosen by the From domain (DMARC alignment): the entries whose
  ``domain`` equals it or is its nearest parent; several such entries sign twice.
- Headers are signed in the order of the key's list, each name taking the next
  field of that name from the bottom (§5.4.2). A name listed more often than the
  message has it is over-signed: the extra listing covers a field that must not
  be added later (From by default).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import getaddresses

__all__ = [
    "ALGORITHMS",
    "DEFAULT_HEADERS",
    "SigningKey",
    "aligned_domain",
    "body_hash",
    "canonical_body",
    "canonical_header",
    "from_domain",
    "keys_for",
    "sign_message",
    "signature_field",
    "split_message",
]

ALGORITHMS = ("rsa-sha256", "ed25519-sha256")

#: Signed by default; From twice: the second listing over-signs it.
DEFAULT_HEADERS = (
    "from",
    "from",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "reply-to",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "feedback-id",
)

_EOL = re.compile(rb"\r\n|\n|\r")
_WSP = re.compile(rb"[ \t]+")
# One header field with its folded continuation lines and its line end.
_FIELD_RAW = re.compile(
    rb"([!-9;-~]+)[ \t]*:[^\r\n]*(?:(?:\r\n|\n|\r)[ \t][^\r\n]*)*(?:\r\n|\n|\r)?"
)
# A From value holding one plain address: "Name <a@b>" or "a@b".
_SIMPLE_FROM = re.compile(rb'^[^"(@\\]*<?[^\s<>@"()\\]+@([A-Za-z0-9.-]+)>?[ \t]*$')
_BLANK = re.compile(rb"(?:\r\n|\n|\r)(?:\r\n|\n|\r)")


@dataclass(frozen=True, slots=True, kw_only=True)
class SigningKey:
    """One ``dkim.keys`` entry, loaded: ``sign`` turns the signing input into the
    raw signature (for Ed25519 it hashes with SHA-256 first, RFC 8463 §3)."""

    domain: str
    selector: str
    algorithm: str
    headers: tuple[str, ...]
    sign: Callable[[bytes], bytes]

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(
                f"algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}"
            )
        if "from" not in self.headers:
            raise ValueError(f"signed headers must include From, got {self.headers!r}")


def split_message(message: bytes) -> tuple[list[tuple[str, bytes]], int]:
    """Header fields as (lower-cased name, raw bytes with folds and line end) and
    the offset where the body starts (after the blank line)."""
    fields: list[tuple[str, bytes]] = []
    position = 0
    match = _FIELD_RAW.match(message)
    while match is not None:
        fields.append((match.group(1).decode("ascii").lower(), match.group(0)))
        position = match.end()
        match = _FIELD_RAW.match(message, position)
    blank = _EOL.match(message, position)
    return fields, blank.end() if blank is not None else position


def canonical_body(body: bytes) -> bytes:
    """Relaxed body canonicalisation (§3.4.4): runs of WSP to one SP, no WSP at
    line ends, no empty lines at the end; an empty body stays empty."""
    lines = body.count(b"\n")
    if lines != body.count(b"\r") or lines != body.count(b"\r\n"):
        body = _EOL.sub(b"\r\n", body)  # a bare CR or LF: as the wire will have it
    if b"\t" in body:
        body = body.replace(b"\t", b" ")
    while b"  " in body:  # C-speed passes; each halves the longest run of SP
        body = body.replace(b"  ", b" ")
    text = body.replace(b" \r\n", b"\r\n").rstrip(b" \r\n")
    return text + b"\r\n" if text else b""


def body_hash(body: bytes) -> bytes:
    """SHA-256 of the canonical body: the ``bh=`` value before base64."""
    return hashlib.sha256(canonical_body(body)).digest()


def canonical_header(raw: bytes) -> bytes:
    """Relaxed header canonicalisation (§3.4.2) of one field, CRLF-terminated."""
    name, _, value = raw.partition(b":")
    value = value.rstrip(b"\r\n")
    if b"\n" in value or b"\r" in value:
        value = _EOL.sub(b"", value)
    if b"\t" in value or b"  " in value:
        value = _WSP.sub(b" ", value)
    return name.rstrip(b" \t").lower() + b":" + value.strip(b" ") + b"\r\n"


def from_domain(fields: Sequence[tuple[str, bytes]]) -> str | None:
    """The domain of the (first) From address, lower-cased; None without one."""
    for name, raw in fields:
        if name != "from":
            continue
        value = _EOL.sub(b"", raw.partition(b":")[2])
        simple = _SIMPLE_FROM.match(value.strip())
        if simple is not None:
            return simple.group(1).decode("ascii").rstrip(".").lower() or None
        text = value.decode("utf-8", "replace")
        for _, address in getaddresses([text]):
            domain = address.rpartition("@")[2].strip().rstrip(".").lower()
            if "@" in address and domain:
                return domain
        return None
    return None


def aligned_domain(domain: str, key_domains: Iterable[str]) -> str | None:
    """The nearest of ``key_domains`` that is ``domain`` or a parent of it."""
    best = ""
    for candidate in key_domains:
        aligned = domain == candidate or domain.endswith("." + candidate)
        if aligned and len(candidate) > len(best):
            best = candidate
    return best or None


def keys_for(domain: str, keys: Sequence[SigningKey]) -> list[SigningKey]:
    """The keys aligned with ``domain``: the nearest configured domain, all its
    entries (two during a key rotation)."""
    best = aligned_domain(domain, (key.domain for key in keys))
    return [key for key in keys if key.domain == best] if best else []


def _chosen(
    fields: Sequence[tuple[str, bytes]], names: Sequence[str]
) -> tuple[list[str], list[bytes]]:
    """(h= names, canonical fields) per §5.4.2, bottom-up per name."""
    wanted = set(names)
    left: dict[str, list[bytes]] = {}
    for name, raw in fields:
        if name in wanted:
            left.setdefault(name, []).append(raw)
    listed: set[str] = set()
    tags: list[str] = []
    signed: list[bytes] = []
    for name in names:
        stack = left.get(name)
        if stack:
            tags.append(name)
            signed.append(canonical_header(stack.pop()))
        elif name in listed:
            tags.append(name)  # over-signed: covers a field that is absent
        listed.add(name)
    return tags, signed


def _folded(prefix: str, text: str, width: int = 72) -> str:
    """``text`` split into continuation lines (relaxed ignores the folds)."""
    chunks = [text[i : i + width] for i in range(0, len(text), width)] or [""]
    return prefix + "\r\n\t ".join(chunks)


def signature_field(
    fields: Sequence[tuple[str, bytes]],
    hashed_body: bytes,
    key: SigningKey,
    *,
    now: datetime,
) -> bytes:
    """The ``DKIM-Signature`` field (with CRLF) for a message's header fields and
    its :func:`body_hash`."""
    names, signed = _chosen(fields, key.headers)
    tags = (
        f"v=1; a={key.algorithm}; c=relaxed/relaxed; d={key.domain};"
        f" s={key.selector};\r\n\tt={int(now.timestamp())};"
        f" h={':'.join(names)};\r\n"
        f"\tbh={base64.b64encode(hashed_body).decode('ascii')};\r\n\tb="
    )
    unsigned = f"DKIM-Signature: {tags}".encode("ascii")
    data = b"".join([*signed, canonical_header(unsigned)[:-2]])
    signature = base64.b64encode(key.sign(data)).decode("ascii")
    return unsigned + _folded("", signature).encode("ascii") + b"\r\n"


def sign_message(
    message: bytes,
    keys: Sequence[SigningKey],
    *,
    now: datetime,
    hashed_body: bytes | None = None,
) -> bytes:
    """``message`` with one ``DKIM-Signature`` per key on top; ``hashed_body``
    when the caller already has the body's :func:`body_hash`."""
    if not keys:
        return message
    fields, start = split_message(message)
    if hashed_body is None:
        hashed_body = body_hash(message[start:])
    added = [signature_field(fields, hashed_body, key, now=now) for key in keys]
    return b"".join([*added, message])
