"""MIME helpers for bounce parsing: decoding that never raises.

Rules:

1. Every helper here swallows decoding trouble: a bad charset, a broken base64 body or
   a malformed header gives replacement characters or an empty value, never an error.
2. Text bodies are decoded with the declared charset first, then the charsets
   Japanese carriers use without declaring them (ISO-2022-JP, Shift_JIS), then UTF-8,
   then Latin-1, which always succeeds.
3. Addresses are found with one permissive pattern and returned lower-cased in the
   domain only; the local part keeps its case.
"""

from __future__ import annotations

import re
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message

__all__ = [
    "decode_bytes",
    "decode_header_text",
    "find_addresses",
    "first_address",
    "header_text",
    "part_text",
    "payload_messages",
]

_ADDRESS = re.compile(
    r"(?<![\w.+%=-])([\w.!#$%&'*+/=?^`{|}~-]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
    r"(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+)",
    re.IGNORECASE,
)
_FALLBACK_CHARSETS = ("utf-8", "iso-2022-jp", "shift_jis", "latin-1")


def decode_bytes(raw: bytes, charset: str | None = None) -> str:
    """Decode ``raw`` with ``charset`` if it works, else with the fallbacks."""
    if charset:
        try:
            return raw.decode(_charset_name(charset))
        except (LookupError, UnicodeDecodeError, ValueError):
            pass
    if b"\x1b$" in raw:
        try:
            return raw.decode("iso-2022-jp")
        except UnicodeDecodeError:
            pass
    for name in _FALLBACK_CHARSETS:
        try:
            return raw.decode(name)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")  # pragma: no cover - latin-1 decodes anything


def _charset_name(charset: str) -> str:
    name = charset.strip().strip('"').lower()
    return {"x-sjis": "shift_jis", "sjis": "shift_jis", "unknown-8bit": "utf-8"}.get(
        name, name
    )


def part_text(part: Message) -> str:
    """The decoded text of a non-multipart part ('' for containers)."""
    try:
        if part.is_multipart():
            return ""
        raw = part.get_payload(decode=True)
        if not isinstance(raw, bytes):
            return ""
        return decode_bytes(raw, part.get_content_charset())
    except (LookupError, ValueError, TypeError, AssertionError, MessageError):
        return ""


def payload_messages(part: Message) -> list[Message]:
    """The sub-messages of a ``message/*`` or multipart part, else []."""
    try:
        payload = part.get_payload()
    except (LookupError, ValueError, TypeError):  # pragma: no cover - defensive
        return []
    if isinstance(payload, list):
        return [item for item in payload if isinstance(item, Message)]
    return []


def decode_header_text(value: str) -> str:
    """Decode RFC 2047 encoded words in a header value; raw value on failure."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, ValueError, TypeError, AssertionError, MessageError):
        return value


def header_text(message: Message, name: str) -> str:
    """One header, decoded and unfolded; '' when absent or unreadable."""
    try:
        value = message.get(name)
    except (LookupError, ValueError, TypeError):  # pragma: no cover - defensive
        return ""
    if value is None:
        return ""
    text = str(value)
    if not text.isascii():
        raw = text.encode("utf-8", "surrogateescape")
        text = decode_bytes(raw)
    return " ".join(decode_header_text(text).split())


def find_addresses(text: str) -> list[str]:
    """Every address in ``text``, in order, duplicates removed."""
    seen: dict[str, None] = {}
    for found in _ADDRESS.finditer(text):
        seen.setdefault(_normal(found[1]), None)
    return list(seen)


def first_address(text: str) -> str:
    """The first address in ``text``, or ''."""
    found = _ADDRESS.search(text)
    return _normal(found[1]) if found else ""


def _normal(address: str) -> str:
    local, _, domain = address.strip(".").rpartition("@")
    return f"{local}@{domain.lower()}"
