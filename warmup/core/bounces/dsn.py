"""RFC 3464 delivery-status fields: per-recipient blocks from a DSN.

Rules:

1. A ``message/delivery-status`` body is a per-message block followed by one block per
   recipient, blocks separated by blank lines (RFC 3464 §2.1). A block is a recipient
   block when it has ``Final-Recipient`` or ``Original-Recipient``.
2. Field names are case-insensitive; folded values are unfolded; address types
   (``rfc822;``) are dropped. ``Final-Recipient`` wins over ``X-Actual-Recipient`` and
   ``Original-Recipient`` for the address.
3. The same fields written into a plain-text body by non-standard MTAs are read the
   same way (:func:`parse_field_text`).
4. A block that names a recipient field twice is split there: some MTAs leave out the
   blank lines between recipient blocks.
5. A block without ``Diagnostic-Code`` whose ``Status`` carries a comment
   (``4.0.0 (example.net: host name lookup failure)``) takes the comment as its
   diagnostic. The diagnostic's type (``smtp``, ``x-unix``, ...) is kept apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.message import Message

from warmup.core.bounces.mime import decode_header_text, first_address

__all__ = ["DSNRecipient", "dsn_recipients", "message_fields", "parse_field_text"]

Field = tuple[str, str]

_FIELD = re.compile(r"([A-Za-z][A-Za-z0-9-]{1,40})[ \t]*:[ \t]*(.*)")
_RECIPIENT_FIELDS = ("final-recipient", "x-actual-recipient", "original-recipient")


@dataclass(frozen=True, slots=True, kw_only=True)
class DSNRecipient:
    """One per-recipient block of a DSN, fields as written."""

    recipient: str
    action: str
    status: str
    diagnostic: str
    remote_mta: str
    diagnostic_type: str = ""


def parse_field_text(text: str) -> list[list[Field]]:
    """Split ``text`` into blocks of ``(lower-case name, value)`` fields."""
    blocks: list[list[Field]] = []
    current: list[Field] = []
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = []
            continue
        if line[0] in " \t" and current:
            name, value = current[-1]
            current[-1] = (name, f"{value} {line.strip()}")
            continue
        found = _FIELD.match(line)
        if found is not None:
            current.append((found[1].lower(), found[2].strip()))
    if current:
        blocks.append(current)
    return blocks


def message_fields(blocks: Sequence[Message]) -> list[list[Field]]:
    """The blocks of a ``message/delivery-status`` part the stdlib already split."""
    return [
        [(str(name).lower(), " ".join(str(value).split())) for name, value in items]
        for items in (block.items() for block in blocks)
    ]


def dsn_recipients(blocks: Iterable[list[Field]]) -> list[DSNRecipient]:
    """The recipient blocks among ``blocks``, in order."""
    found: list[DSNRecipient] = []
    for block in (part for whole in blocks for part in _split(whole)):
        fields: dict[str, str] = {}
        for name, value in block:
            fields.setdefault(name, value)
        recipient = _recipient(fields)
        if not recipient:
            continue
        status = _typed(fields.get("status", ""))
        raw = decode_header_text(fields.get("diagnostic-code", ""))
        found.append(
            DSNRecipient(
                recipient=recipient,
                action=_typed(fields.get("action", "")).lower(),
                status=status,
                diagnostic=_typed(raw) or _comment(status),
                remote_mta=_typed(fields.get("remote-mta", "")),
                diagnostic_type=_type(raw),
            )
        )
    return found


def _split(block: list[Field]) -> list[list[Field]]:
    """A block that names a recipient twice is two blocks (blank line left out)."""
    parts: list[list[Field]] = [[]]
    seen: set[str] = set()
    for name, value in block:
        if name in _RECIPIENT_FIELDS:
            if name in seen:
                parts.append([])
                seen = set()
            seen.add(name)
        parts[-1].append((name, value))
    return parts


def _comment(status: str) -> str:
    """The comment after a status code: ``5.0.0 (permanent failure)`` -> the text."""
    head, sep, rest = status.partition("(")
    return rest.rstrip(" )").strip() if sep and head.strip() else ""


def _type(value: str) -> str:
    """The RFC 3464 type of a typed value (``smtp``, ``x-unix``), lower-cased."""
    head, sep, _ = value.partition(";")
    head = head.strip()
    return head.lower() if sep and len(head) <= 24 and " " not in head else ""


def _recipient(fields: dict[str, str]) -> str:
    for name in _RECIPIENT_FIELDS:
        address = first_address(_typed(fields.get(name, "")))
        if address:
            return address
    return ""


def _typed(value: str) -> str:
    """Drop an RFC 3464 type prefix (``rfc822;``, ``dns;``, ``smtp;``)."""
    head, sep, rest = value.partition(";")
    if sep and len(head) <= 12 and " " not in head.strip():
        return rest.strip()
    return value.strip()
