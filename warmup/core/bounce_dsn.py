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
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.message import Message

from warmup.core.bounce_mime import decode_header_text, first_address

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
    for block in blocks:
        fields: dict[str, str] = {}
        for name, value in block:
            fields.setdefault(name, value)
        recipient = _recipient(fields)
        if not recipient:
            continue
        found.append(
            DSNRecipient(
                recipient=recipient,
                action=_typed(fields.get("action", "")).lower(),
                status=_typed(fields.get("status", "")),
                diagnostic=_typed(
                    decode_header_text(fields.get("diagnostic-code", ""))
                ),
                remote_mta=_typed(fields.get("remote-mta", "")),
            )
        )
    return found


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
